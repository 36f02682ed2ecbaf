# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A planned move of an app to another host, the pure parts: which inventory entry moves, whether the old host's
replica holds its final transaction, and the move's report (RPO, downtime and each step's time).

The move playbook (playbooks/move.yml) runs the steps; litestream_handoff (old host) and litestream_move_report
(controller) are the modules that call these functions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v


def move_argument_spec():
    """The options every step of a move names it by (doc fragment dokku_sqlite.litestream.move)."""
    return dict(
        app=dict(type="str", required=True),
        move_from=dict(type="str", required=True),
        move_to=dict(type="str", required=True),
    )


# The controller's marks, in the order the playbook sets them; each step runs from its mark to the next one.
MARKS = ("begin", "checked", "app_stopped", "sidecar_stopped", "handed_off", "restored", "claimed",
         "sidecar_started", "app_started")
STEPS = (("check", "begin", "checked"),
         ("stop_app", "checked", "app_stopped"),
         ("final_sync", "app_stopped", "sidecar_stopped"),
         ("compare", "sidecar_stopped", "handed_off"),
         ("restore", "handed_off", "restored"),
         ("claim", "restored", "claimed"),
         ("start_sidecar", "claimed", "sidecar_started"),
         ("start_app", "sidecar_started", "app_started"))
# Downtime: from the moment the old host's app is told to stop to the moment the new host's app has started.
DOWNTIME = ("checked", "app_started")


class MoveRefused(errors.AppFailure):
    """The move cannot go on; nothing of the step that raised it was changed."""


def check_hosts(move_from, move_to):
    for name, value in (("move_from", move_from), ("move_to", move_to)):
        if not isinstance(value, str) or not value.strip():
            raise v.InvalidValue("%s: an inventory host name is required" % name)
        v.check_line(value, name)
    if move_from == move_to:
        raise v.InvalidValue("move_to: %s is also move_from; a move needs two hosts" % v.shown(move_to))


def _listed(apps, app, host):
    if not isinstance(apps, list):
        raise v.InvalidValue("litestream_apps of %s is not a list" % v.shown(host))
    found = [entry for entry in apps if isinstance(entry, dict) and entry.get("app") == app]
    if len(found) > 1:
        raise v.InvalidValue("litestream_apps of %s lists app %s %d times" % (v.shown(host), app, len(found)))
    return found[0] if found else None


def pick_entry(app, move_from, move_to, from_apps, to_apps):
    """(the app's litestream_apps entry, where it is listed: "move_from", "move_to" or "both").

    The entry may be listed under the old host (before the inventory is changed) or already under the new one;
    under both, the two must be the same entry. Raises InvalidValue naming the option or the differing keys."""
    v.app_name(app, "move_app")
    check_hosts(move_from, move_to)
    old, new = _listed(from_apps, app, move_from), _listed(to_apps, app, move_to)
    if old is None and new is None:
        raise v.InvalidValue("move_app: neither %s nor %s lists app %s in litestream_apps: nothing to move" % (
            move_from, move_to, app))
    if old is not None and new is not None and old != new:
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise v.InvalidValue(
            "move_app: %s and %s both list app %s, with different entries (%s differ): make them the same, or list "
            "it under one of the hosts only" % (move_from, move_to, app, ", ".join(keys)))
    entry = old if old is not None else new
    if not isinstance(entry.get("replica"), (dict, str)) or entry.get("state") == "absent":
        raise v.InvalidValue("move_app: app %s has no replica (or its state is absent): a move carries the data "
                             "through the replica, so there is nothing to move it with" % app)
    listed_on = "both" if old is not None and new is not None else ("move_from" if old is not None else "move_to")
    return entry, listed_on


def final_positions(local, replica):
    """{database: TXID (16 hex digits)} when each database's replica holds the database's final transaction.

    local: {database: the newest TXID its Litestream wrote on the old host (0: none)}; replica: {database: the
    newest TXID the replica holds (None: no backup)}. Raises MoveRefused naming every database that is not there."""
    behind = []
    for db in sorted(local):
        have, held = local[db], replica.get(db)
        if not have:
            behind.append("%s: Litestream never wrote a transaction of it on this host" % db)
        elif held is None:
            behind.append("%s: the replica holds no backup of it (the database is at TXID %s)" % (db, ls.hex_txid(have)))
        elif held < have:
            behind.append("%s: the replica holds TXID %s, the database is at %s (%d transaction%s missing)" % (
                db, ls.hex_txid(held), ls.hex_txid(have), have - held, "" if have - held == 1 else "s"))
        elif held > have:
            behind.append("%s: the replica holds TXID %s, beyond the database's %s (another writer wrote it)" % (
                db, ls.hex_txid(held), ls.hex_txid(have)))
    if behind:
        raise MoveRefused("the replica does not hold the final transaction of every database: %s" % "; ".join(behind))
    return dict((db, ls.hex_txid(number)) for db, number in local.items())


def rows_apart(before, after):
    """Rows that differ between two {table: count} (a table only one of them has counts whole); None when a count
    is unknown."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return None
    total = 0
    for table in set(before) | set(after):
        old, new = before.get(table, 0), after.get(table, 0)
        if not isinstance(old, int) or not isinstance(new, int):
            return None
        total += abs(old - new)
    return total


def rpo(final_txids, final_tables, restored):
    """The move's recovery point: per database and in total, the transactions and rows between the old host's last
    commit and the restored database. restored: {database: {"position": TXID, "tables": {table: rows}}}."""
    per_database = {}
    transactions, rows = 0, 0
    for db in sorted(final_txids):
        got = restored.get(db) or {}
        try:
            lost = ls.txid_number(final_txids[db]) - ls.txid_number(got.get("position") or "")
        except ValueError:
            lost = None
        apart = rows_apart((final_tables or {}).get(db), got.get("tables"))
        per_database[db] = dict(final_txid=final_txids[db], restored_txid=got.get("position"),
                                rpo_transactions=lost, rpo_rows=apart)
        transactions = None if lost is None or transactions is None else transactions + lost
        rows = None if apart is None or rows is None else rows + apart
    return dict(rpo_transactions=transactions, rpo_rows=rows, databases=per_database)


def step_times(marks):
    """{step: seconds} for each step whose two marks are set, and the downtime (None until the app started)."""
    steps = {}
    for name, start, end in STEPS:
        if marks.get(start) is not None and marks.get(end) is not None:
            steps[name] = round(float(marks[end]) - float(marks[start]), 3)
    begin, end = (marks.get(mark) for mark in DOWNTIME)
    downtime = round(float(end) - float(begin), 3) if begin is not None and end is not None else None
    return steps, downtime


def inventory_hint(app, move_from, move_to, listed_on):
    """What to change in the inventory after the move, in one sentence."""
    if listed_on in ("move_to", "both"):  # both: the new host has it already, only the old one's goes
        done = "the litestream_apps of %s already lists app %s" % (move_to, app)
    else:
        done = "move app %s's entry from %s's litestream_apps to %s's, unchanged (the same replica)" % (
            app, move_from, move_to)
    if listed_on == "both":
        done += "; remove it from %s's" % move_from
    return ("%s. Provision %s from then on; on %s the app and its sidecar stay stopped and fenced (its data stays in "
            "place until you destroy the app there)." % (done[0].upper() + done[1:], move_to, move_from))


def report(params):
    """The move's JSON report from litestream_move_report's options."""
    # step_times skips unset marks and rpo reads only position and tables: the options go in as they are
    steps, downtime = step_times(params.get("marks") or {})
    point = rpo(params["final_txids"], params.get("final_tables"), params.get("restored") or {})
    doc = dict(app=params["app"], move_from=params["move_from"], move_to=params["move_to"],
               epoch=params.get("epoch"), lineage=params.get("lineage"),
               # warm: the new host followed the replica before the stop (litestream_standby); cold: it restored after
               cut_over="warm" if params.get("warm") else "cold",
               rpo_transactions=point["rpo_transactions"], rpo_rows=point["rpo_rows"],
               downtime_seconds=downtime, steps=steps, databases=point["databases"],
               inventory=inventory_hint(params["app"], params["move_from"], params["move_to"],
                                        params.get("listed_on") or "move_from"))
    return doc
