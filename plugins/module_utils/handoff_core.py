# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_handoff: on the old host of a planned move, prove that the app's replica holds each database's final
transaction (what the new host restores to), or refuse.

Before the old host stops anything (check mode) it checks the move: the entry, that this host owns the replica, the
databases, and it reads how far the replica is behind. After the app and the sidecar stopped (the sidecar's last act
is a final sync), it compares each database's final TXID (the newest level-0 file Litestream wrote in
.<db>-litestream) with the replica's newest TXID (a dry-run restore of the lineage this host writes): equal is the
TXID the new host restores, never a sleep. A re-run after the new host claimed the replica for this move reads the
TXIDs from that claim.

After the claim (after_claim), before the new host starts the app, it proves that nothing changed on the old host
since the handoff: no app container runs, and each database and its WAL have the size and modification time the
handoff saw (its fingerprints). Whatever the old host committed after the final TXID is not in the new owner's
lineage, so the new host must not start on a copy that lacks it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sqlite3

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import (
    backends, claim_store, common, defaults, errors, inventory, move, ownership)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import load_credentials
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerRunner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.drill_core import read_live_tables
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import lock_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_core import RestoreFailed, RestoreManager
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_plan import restore_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.sidecar_core import sidecar_name
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.sidecar_reads import txid_names, unsynced_commit


def handoff_argument_spec():
    spec = common.common_argument_spec()
    spec.update(lock_argument_spec())
    spec.update(move.move_argument_spec())
    spec.update(
        from_apps=dict(type="list", elements="raw", default=[]),
        to_apps=dict(type="list", elements="raw", default=[]),
        image=dict(type="str", default=defaults.IMAGE),
        storage_root=dict(type="str", default=defaults.STORAGE_ROOT),
        config_root=dict(type="str", default=defaults.CONFIG_ROOT),
        credentials_root=dict(type="str", default=defaults.CREDENTIALS_ROOT),
        replica_timeout=dict(type="int", default=120),
        sidecar_id=dict(type="str"),
        after_claim=dict(type="bool", default=False),
        fingerprints=dict(type="dict"),
    )
    return spec


def fingerprint(path):
    """What any write to a database changes, without reading it: the size and modification time (ns) of the file and
    of its WAL ("size:mtime_ns"; an empty or missing WAL is None, which a reader's open and close may leave behind)."""
    found = {}
    for key, name in (("database", path), ("wal", path + "-wal")):
        try:
            st = os.lstat(name)
        except OSError:
            found[key] = None
            continue
        found[key] = None if key == "wal" and st.st_size == 0 else "%d:%d" % (st.st_size, st.st_mtime_ns)
    return found


class ReadOnlyModule:
    """The module as a restore sees it in check mode: the dry run reads the replica, nothing is written."""

    check_mode = True
    _diff = False

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)


class Handoff:
    """One app's handoff on the host that owns its replica (module: the AnsibleModule)."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.docker = DockerRunner(module, self.params["docker_binary"])
        self.result = dict(changed=False, app=self.params["app"], resumed=False)

    # ------------------------------------------------------------------ input
    def validate(self):
        """Every check of the inputs before anything is read: (entry params, replica fields, credentials)."""
        params = self.params
        entry, listed_on = move.pick_entry(params["app"], params["move_from"], params["move_to"], params["from_apps"],
                                           params["to_apps"])
        params["storage_root"] = v.absolute_path(params["storage_root"], "storage_root")
        v.collection_root(params["config_root"], "config_root")
        v.absolute_path(params["credentials_root"], "credentials_root")
        v.check_bounds(params)
        try:
            inventory.check_entry(entry, params["image"], params["storage_root"])
        except errors.InvalidValue as exc:
            raise errors.InvalidValue("the entry of app %s: %s" % (params["app"], exc), option="from_apps")
        sidecar = inventory.sidecar_params(entry, params["image"], storage_root=params["storage_root"])
        fields = ls.normalize_replica(sidecar["replica"])
        backend = backends.of(fields)
        if not backend.claims:
            raise move.MoveRefused(
                "app %s: a %s replica keeps no ownership record (%s), so nothing would fence %s after the move. "
                "Move it by hand: stop the app and its sidecar on %s first, then restore on %s"
                % (params["app"], fields["type"], claim_store.UNSUPPORTED, params["move_from"], params["move_from"],
                   params["move_to"]))
        if params["fingerprints"] is not None:
            if not params["after_claim"]:
                raise errors.InvalidValue("fingerprints: only with after_claim", option="fingerprints")
            for db in sidecar["databases"]:
                found = params["fingerprints"].get(db)
                if not (isinstance(found, dict) and set(found) == {"database", "wal"}
                        and all(value is None or isinstance(value, str) for value in found.values())):
                    raise errors.InvalidValue("fingerprints: %s has no fingerprint from the handoff (%s)" % (
                        db, v.shown(found)), option="fingerprints")
        creds = {}
        if backend.needs_credentials:
            creds = load_credentials(params["credentials_root"], fields.get("credentials") or defaults.CREDENTIAL_SET,
                                     fields["type"])
        self.result.update(listed_on=listed_on, databases=list(sidecar["databases"]),
                           storage_dir=os.path.join(params["storage_root"], sidecar["storage"] or
                                                    "%s--db" % params["app"]),
                           image=sidecar["image"])
        return sidecar, fields, creds

    # ------------------------------------------------------------------ the run
    def run(self):
        sidecar, fields, creds = self.validate()
        params, app = self.params, self.params["app"]
        found = claim_store.Ownership(fields, creds, app, params["config_root"]).read()
        self.result["ownership"] = found.summary()
        if found.standing == claim_store.UNSUPPORTED:
            raise move.MoveRefused("app %s: cannot move: %s" % (app, found.reason))
        if found.standing == ownership.UNCLAIMED:
            raise move.MoveRefused("app %s: no host owns its replica yet (provision %s first, which claims it)" % (
                app, params["move_from"]))
        if params["after_claim"]:
            return self.after_claim(found, fields, sidecar)
        if found.standing == ownership.FENCED:
            return self.resumed(found, fields)
        self.result.update(epoch=found.epoch, read_replica=found.lineage())
        local = self.local_txids(sidecar["databases"])
        replica = self.replica_txids(found.lineage(), sidecar)
        self.result.update(local_txids=dict((db, ls.hex_txid(n)) for db, n in local.items()),
                           replica_txids=dict((db, ls.hex_txid(n)) for db, n in replica.items()))
        if self.module.check_mode:
            # the app still runs: how far behind the replica is now, not a verdict
            self.check_running(app)
            self.result["lag_txids"] = dict((db, max(0, local[db] - (replica[db] or 0))) for db in local)
            return self.result  # the rows are counted once the app stopped, when they are final
        self.check_stopped(app)
        for db in sidecar["databases"]:
            meta = os.path.join(self.result["storage_dir"], ".%s-litestream" % db)
            unread = unsynced_commit(os.path.join(self.result["storage_dir"], db), meta)
            if unread:
                raise move.MoveRefused("app %s: %s: %s, so the replica lacks it; start the sidecar again (provision), "
                                       "let it catch up, and move again" % (app, db, unread))
        self.result["final_txids"] = move.final_positions(local, replica)
        self.result["tables"] = self.tables(sidecar["databases"])
        # after the count, which opens each database read-only: what after_claim compares
        self.result["fingerprints"] = dict((db, fingerprint(os.path.join(self.result["storage_dir"], db)))
                                           for db in sidecar["databases"])
        return self.result

    def after_claim(self, found, fields, sidecar):
        """After the new host's claim: the old host must be as the handoff left it, or the new owner's lineage (from
        the final TXIDs) lacks what the old host committed since; refused naming what changed."""
        app, params = self.params["app"], self.params
        if found.standing != ownership.FENCED:
            raise move.MoveRefused("app %s: after_claim: this host (%s) still owns the replica: the new host did not "
                                   "claim it" % (app, params["move_from"]))
        if not self.this_moves(found.claim):
            raise move.MoveRefused("app %s: after_claim: the replica's newest claim is not this move's: it is owned by "
                                   "%s" % (app, ownership.describe(found.claim)))
        self.resumed(found, fields)
        self.result["resumed"] = False
        changed = []
        _rc, out, _err = self.docker.run(["ps", "--quiet", "--filter", "label=com.dokku.app-name=%s" % app])
        if out.strip():
            changed.append("the app runs again (containers %s)" % " ".join(out.split()))
        # without fingerprints (a re-run after the claim, the handoff's are gone) only that the app stays stopped
        for db in sidecar["databases"] if params["fingerprints"] is not None else ():
            if db not in self.result["final_txids"]:
                raise move.MoveRefused("app %s: after_claim: this move's claim records no final TXID for %s" % (
                    app, db))
            path = os.path.join(self.result["storage_dir"], db)
            if not os.path.isfile(path):
                changed.append("%s is gone" % db)
                continue
            local, final = self.local_txids([db])[db], ls.txid_number(self.result["final_txids"][db])
            now = fingerprint(path)
            if local > final:
                changed.append("%s has %d transactions past the final TXID %s" % (db, local - final, ls.hex_txid(final)))
            elif params["fingerprints"][db] != now:
                changed.append("%s was written since the handoff (size:mtime %s, now %s)" % (
                    db, _shown_fingerprint(params["fingerprints"][db]), _shown_fingerprint(now)))
        if changed:
            raise move.MoveRefused(
                "app %s: %s changed after the handoff: %s. %s owns the replica now (epoch %s, from the final TXIDs): "
                "what %s committed since is not in it, so the app was not started on %s. Stop the app on %s (dokku "
                "ps:stop %s) and save what it wrote since the handoff if it matters (%s), then run the move again: "
                "it resumes from the claim" % (
                    app, params["move_from"], "; ".join(changed), params["move_to"], found.claim.get("epoch"),
                    params["move_from"], params["move_to"], params["move_from"], app, self.result["storage_dir"]))
        return self.result

    def this_moves(self, claim):
        """Whether the claim is this move's: move_to's, reason move, branching from move_from's final state."""
        branch = claim.get("from") or {}
        return (claim["owner"] == self.params["move_to"] and claim["reason"] == "move" and bool(branch.get("final"))
                and branch.get("owner") == self.params["move_from"])

    def resumed(self, found, fields):
        """The replica is another host's: this move's own claim for move_to (a re-run) gives the final TXIDs."""
        claim, params = found.claim, self.params
        branch = claim.get("from") or {}
        if not self.this_moves(claim):
            raise move.MoveRefused("app %s: this host (%s) does not own the replica: it is owned by %s; only the "
                                   "owner can hand it over" % (params["app"], params["move_from"],
                                                               ownership.describe(claim)))
        self.result.update(resumed=True, epoch=branch["epoch"], final_txids=dict(branch.get("txids") or {}),
                           read_replica=ownership.lineage_fields(fields, params["app"], branch["epoch"]))
        return self.result

    # ------------------------------------------------------------------ the reads
    def local_txids(self, databases):
        """{database: the newest TXID Litestream wrote for it on this host, 0 for none}."""
        found = {}
        for db in databases:
            path = os.path.join(self.result["storage_dir"], db)
            if not os.path.isfile(path):
                raise move.MoveRefused("app %s: %s does not exist on %s: nothing to move" % (
                    self.params["app"], path, self.params["move_from"]))
            names = txid_names(os.path.join(self.result["storage_dir"], ".%s-litestream" % db, "ltx", "0"))
            found[db] = max(names) if names else 0
        return found

    def replica_txids(self, lineage, sidecar):
        """{database: the newest TXID the lineage holds, None for no backup}, by a dry-run restore of each."""
        found = {}
        for db in sidecar["databases"]:
            given = dict(replica=dict((k, val) for k, val in lineage.items() if val is not None), database=db,
                         dest=self.result["storage_dir"], on_existing="replace", if_replica_exists=True,
                         image=sidecar["image"], dry_run_timeout=self.params["replica_timeout"],
                         lock_timeout=self.params["lock_timeout"], credentials_root=self.params["credentials_root"],
                         docker_binary=self.params["docker_binary"], dokku_binary=self.params["dokku_binary"])
            try:
                read = RestoreManager(ReadOnlyModule(self.module),
                                      inventory.module_params(restore_argument_spec(), given)).execute()
            except RestoreFailed as exc:
                raise move.MoveRefused("app %s: the replica of %s cannot be read: %s" % (
                    self.params["app"], db, exc.msg))
            position = read.get("position")
            found[db] = ls.txid_number(position) if position else None
        return found

    def check_running(self, app):
        """Before the move: the sidecar runs, so its stop ends with a final sync; its id, which must be the one
        that stops."""
        doc = self.docker.inspect_container(sidecar_name(app))
        state = (doc or {}).get("State") or {}
        if not state.get("Running") or state.get("Restarting"):
            raise move.MoveRefused("app %s: its sidecar %s does not run on %s (%s), so no final sync would end the "
                                   "replica; start it (provision) and move again" % (
                                       app, sidecar_name(app), self.params["move_from"],
                                       state.get("Status") or "no such container"))
        self.result["sidecar_id"] = doc.get("Id")

    def check_stopped(self, app):
        """The app's containers and its sidecar must have stopped: a writer could commit after the final TXID."""
        _rc, out, _err = self.docker.run(["ps", "--quiet", "--filter", "label=com.dokku.app-name=%s" % app])
        if out.strip():
            raise move.MoveRefused("app %s still runs on %s (containers %s): stop it first (dokku ps:stop %s)" % (
                app, self.params["move_from"], " ".join(out.split()), app))
        doc = self.docker.inspect_container(sidecar_name(app))
        state = (doc or {}).get("State") or {}
        if doc is None:
            raise move.MoveRefused("app %s: no sidecar %s on %s, so nothing made the final sync" % (
                app, sidecar_name(app), self.params["move_from"]))
        if state.get("Running"):
            raise move.MoveRefused("app %s: its sidecar %s still runs: stop it first (its final sync ends the "
                                   "replica)" % (app, sidecar_name(app)))
        if self.params["sidecar_id"] and doc.get("Id") != self.params["sidecar_id"]:
            # recreated since the check: the container that stopped never ran, so its exit says nothing
            raise move.MoveRefused("app %s: its sidecar %s is not the container that ran when the move started "
                                   "(%s, now %s)" % (app, sidecar_name(app), self.params["sidecar_id"][:12],
                                                     (doc.get("Id") or "")[:12]))
        self.result["sidecar_exit_code"] = state.get("ExitCode")
        if state.get("ExitCode") == 137 or state.get("OOMKilled"):
            # killed (docker stop's timeout, the OOM killer): its final sync may not have read the last WAL frames,
            # which no TXID shows; the owner must sync again before anything moves
            raise move.MoveRefused("app %s: its sidecar %s was killed (exit code %s%s), so its final sync may be "
                                   "incomplete; start it again (provision), let it catch up, and move again" % (
                                       app, sidecar_name(app), state.get("ExitCode"),
                                       ", out of memory" if state.get("OOMKilled") else ""))
        if state.get("ExitCode") != 0:
            raise move.MoveRefused("app %s: its sidecar %s stopped with exit code %s, not after a clean final sync; "
                                   "start it again (provision), let it catch up, and move again" % (
                                       app, sidecar_name(app), state.get("ExitCode")))

    def tables(self, databases):
        """{database: {table: rows}} of the old host's databases, read-only (the report's RPO in rows)."""
        counts = {}
        for db in databases:
            try:
                counts[db] = read_live_tables(os.path.join(self.result["storage_dir"], db))
            except (IOError, OSError, sqlite3.Error) as exc:
                # no count, no proof of RPO 0: the report before the claim fails on it
                self.module.warn("the rows of %s were not counted: %s" % (db, exc))
                counts[db] = None
        return counts


def _shown_fingerprint(found):
    return "%s, WAL %s" % (found.get("database") or "missing", found.get("wal") or "empty")


def run(module):
    """The module's one exit: exit_json or fail_json."""
    try:
        result = Handoff(module).run()
    except errors.CollectionError as exc:  # DockerError too
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg="app %s: %s" % (module.params["app"], exc))
    module.exit_json(**result)
