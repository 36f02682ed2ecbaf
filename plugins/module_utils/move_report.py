# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_move_report: the move's report (RPO, downtime, each step's time, the inventory change), written as
JSON on the controller. Its action plugin runs this in Ansible's own process (plugins/action)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors, move
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import report as rp
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.ownership_core import check_branch_txids


def move_report_argument_spec():
    return dict(
        move.move_argument_spec(),
        listed_on=dict(type="str", choices=["move_from", "move_to", "both"], default="move_from"),
        epoch=dict(type="int"),
        lineage=dict(type="str"),
        final_txids=dict(type="dict", required=True),
        final_tables=dict(type="dict", default={}),
        restored=dict(type="list", elements="dict", default=[]),
        marks=dict(type="dict", default={}),
        resumed=dict(type="bool", default=False),
        warm=dict(type="bool", default=False),
        dest=dict(type="str"),
        name=dict(type="str"),
    )


# the keys of a restore result the report reads; the rest of a loop result (its invocation, commands) is left alone
RESTORED_KEYS = {"item": str, "database": str, "restored": bool, "position": str, "tables": dict}


def restored_position(index, position):
    """A restore's position as 16 hex digits, None when it gave none. The report is written unmasked (the action
    plugin runs outside AnsibleModule), so only a TXID reaches it; anything else is refused, shown redacted."""
    if position is None or position == "":
        return None
    try:
        return ls.hex_txid(ls.txid_number(position))
    except ValueError:
        raise errors.InvalidValue("restored[%d]: the position %s is not a hexadecimal TXID" % (
            index, v.shown(position)))


def restored_by_database(results):
    """The restore task's loop results -> {database: {"position", "tables"}}; a skipped item is left out."""
    found = {}
    for index, result in enumerate(results):
        db = result.get("item") if isinstance(result.get("item"), str) else result.get("database")
        if isinstance(db, str) and result.get("restored"):
            found[db] = dict(position=restored_position(index, result.get("position")), tables=result.get("tables"))
    return found


def check_marks(marks):
    checked = {}
    for name, value in marks.items():
        if name not in move.MARKS:
            raise errors.InvalidValue("marks: %s is not a mark of the move (%s)" % (v.shown(name), ", ".join(move.MARKS)))
        if value is None:
            continue
        try:
            checked[name] = float(value)
        except (TypeError, ValueError):
            raise errors.InvalidValue("marks: %s is %s, not a time in seconds" % (name, v.shown(value)))
    return checked


def build(params):
    """The report and its lines; raises InvalidValue."""
    v.app_name(params["app"], "app")
    v.check_bounds(params)  # epoch
    move.check_hosts(params["move_from"], params["move_to"])
    final = check_branch_txids(params["final_txids"], sorted(params["final_txids"]), "final_txids")
    doc = move.report(dict(params, final_txids=final, marks=check_marks(params["marks"]),
                           restored=restored_by_database(params["restored"])))
    lines = ["%s moved %s -> %s (epoch %s, %s): RPO %s transactions, %s rows; downtime %s s" % (
        doc["app"], doc["move_from"], doc["move_to"], doc["epoch"], doc["cut_over"], doc["rpo_transactions"],
        doc["rpo_rows"], doc["downtime_seconds"])]
    steps = ["%s %s" % (name, doc["steps"][name]) for name, _a, _b in move.STEPS if name in doc["steps"]]
    lines.append("steps (s): " + ", ".join(steps))
    lines.append("inventory: " + doc["inventory"])
    return doc, lines


def write(params, check_mode):
    """exit_json's keyword arguments (failed=True with msg when the RPO is not 0); raises ReportError."""
    try:
        doc, lines = build(params)
    except errors.InvalidValue as exc:
        raise rp.ReportError(str(exc))
    result = dict(changed=False, report=doc, lines=lines)
    # a resumed run's report does not replace the first run's, which holds the RPO it measured
    name = params["name"] or "move-%s%s.json" % (params["app"], ".resumed" if params["resumed"] else "")
    if params["dest"] and not check_mode:
        dest = os.path.abspath(params["dest"])
        problem = rp.check_destination(dest, name)
        if problem:
            raise rp.ReportError(problem)
        try:
            if not os.path.isdir(dest):
                os.makedirs(dest, 0o755)
            rp.write_file(os.path.join(dest, name), json.dumps(doc, indent=2, sort_keys=True) + "\n")
        except (IOError, OSError) as exc:
            raise rp.ReportError("the move report was not written: %s" % exc)
        result.update(changed=True, json_path=os.path.join(dest, name))
    unknown = doc["rpo_transactions"] is None
    if params["resumed"] and unknown:
        # a re-run after the claim keeps the database the first run restored and verified: nothing to compare
        result["lines"].append("resumed: the first run's restore stands; its report holds its RPO")
    elif unknown or doc["rpo_rows"] is None:  # unknown rows prove nothing
        result.update(failed=True, msg="%s: RPO 0 is not proven: RPO %s transactions, %s rows (a database not "
                      "restored, or rows not counted; see the report)" % (
                          doc["app"], doc["rpo_transactions"], doc["rpo_rows"]))
    elif doc["rpo_transactions"] != 0 or doc["rpo_rows"] != 0:
        result.update(failed=True, msg="%s: the move lost data: RPO %s transactions, %s rows (see the report)" % (
            doc["app"], doc["rpo_transactions"], doc["rpo_rows"]))
    return result
