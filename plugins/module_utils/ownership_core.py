# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_ownership: read who owns an app's replica, or take it over for this host (a new epoch and lineage).

The restore role reads it before anything stops (a fenced host is refused unless told to take over), restores from
the lineage it names, and claims the next epoch once the restore is verified; the move playbook claims with reason
"move" and the exact branch point.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import socket

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import claim_store, defaults, errors, owned
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import ownership
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import (
    MissingCredentials, load_credentials)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends


def ownership_argument_spec():
    return dict(
        app=dict(type="str", required=True),
        replica=dict(type="dict", required=True, options=ls.replica_argument_spec()),
        databases=dict(type="list", elements="str", default=list(defaults.DATABASES)),
        take_over=dict(type="bool", default=False),
        reason=dict(type="str", choices=["take-over", "move"], default="take-over"),
        branch_txids=dict(type="dict", default={}),
        expected_epoch=dict(type="int"),
        host=dict(type="str"),
        config_root=dict(type="str", default=defaults.CONFIG_ROOT),
        credentials_root=dict(type="str", default=defaults.CREDENTIALS_ROOT),
        lineage_at=dict(type="str"),
        lineage_epoch=dict(type="int"),
    )


def check_branch_txids(txids, databases, option="branch_txids"):
    """{database: TXID as 16 hex digits}; each key a database of the app, each value a TXID."""
    checked = {}
    for name, txid in sorted(txids.items()):
        if name not in databases:
            raise v.InvalidValue("%s: %s is not one of the app's databases (%s)" % (
                option, v.shown(name), ", ".join(databases)))
        try:  # the project's one TXID grammar, as restore's txid option reads it
            checked[name] = ls.hex_txid(ls.txid_number(txid))
        except ValueError:
            raise v.InvalidValue("%s: the TXID of %s, %s, is not a hexadecimal TXID (at most 16 digits)"
                                 % (option, name, v.shown(txid)))
    return checked


class OwnershipRun:
    """One app's ownership: read, and with take_over claim the next epoch unless this host owns the replica."""

    def __init__(self, params, check_mode):
        self.params, self.check_mode = params, check_mode
        self.result = dict(changed=False, app=params["app"])
        self.moment = None

    def validate(self):
        """Every input check before the store is read; returns (fields, credentials, branch txids)."""
        params = self.params
        v.app_name(params["app"])
        for db in params["databases"]:
            v.db_file_name(db, "databases")
        v.collection_root(params["config_root"], "config_root")
        v.absolute_path(params["credentials_root"], "credentials_root")
        if params["host"] is not None:
            v.check_line(params["host"], "host")
        fields = ls.normalize_replica(params["replica"])
        ownership.check_configured(fields)
        v.check_bounds(params)
        # checked here, not by mutually_exclusive, which counts an option given as null (a role's unset variable)
        if params["lineage_at"] is not None and params["lineage_epoch"] is not None:
            raise v.InvalidValue("lineage_at: not with lineage_epoch (give one of them)")
        for option in ("lineage_at", "lineage_epoch"):
            if params[option] is not None and params["take_over"]:
                raise v.InvalidValue("%s: not with take_over, which claims from the current lineage" % option)
        if params["lineage_at"] is not None:
            try:
                self.moment = ls.epoch(params["lineage_at"])
            except ValueError as exc:
                raise v.InvalidValue("lineage_at: %s" % exc)
        txids = check_branch_txids(params["branch_txids"], params["databases"])
        creds = {}
        if backends.of(fields).needs_credentials and backends.of(fields).claims:  # no records elsewhere: no read
            creds = load_credentials(params["credentials_root"], fields.get("credentials") or defaults.CREDENTIAL_SET,
                                     fields["type"])
        return fields, creds, txids

    def run(self):
        try:
            fields, creds, txids = self.validate()
        except MissingCredentials as exc:
            if not self.check_mode:
                raise
            # --check on a fresh host: the task that writes the set only predicted it, so the store cannot be read
            fields = ls.normalize_replica(self.params["replica"])
            self.result.update(ownership={"standing": "unknown", "reason": "check mode: %s" % exc},
                               read_replica=fields, write_replica=fields, fenced=False)
            return self.result
        found = claim_store.Ownership(fields, creds, self.params["app"], self.params["config_root"]).read()
        self.result.update(ownership=found.summary(), read_replica=found.lineage(), write_replica=found.lineage(),
                           read_epoch=found.epoch)
        self.result["fenced"] = found.standing == ownership.FENCED
        if self.params["lineage_at"] is not None or self.params["lineage_epoch"] is not None:
            self.read_older(found, fields)
        if not self.params["take_over"] or found.standing == ownership.OWNER:
            return self.result
        if found.standing == claim_store.UNSUPPORTED:
            raise errors.AppFailure("app %s: cannot take the replica over: %s" % (self.params["app"], found.reason))
        previous = found.claim
        expected = self.params["expected_epoch"]
        if expected is not None and (previous["epoch"] if previous else 0) != expected:
            # another host took the replica over since this run read it (two disaster recoveries at once)
            raise errors.AppFailure("app %s: the replica's owner changed since epoch %d was read: now %s; nothing "
                                    "was claimed" % (self.params["app"], expected, ownership.describe(previous)
                                                     if previous else "unclaimed"))
        self.result["changed"] = True
        next_epoch = previous["epoch"] + 1 if previous else 1
        self.result["claimed_epoch"] = next_epoch
        if self.check_mode:
            return self.result
        branch = None
        if previous:
            branch = {"epoch": previous["epoch"], "owner": previous["owner"], "final": self.params["reason"] == "move",
                      "txids": txids}
        # the configuration root holds the host id; the app's directory in it is the one its sidecar uses
        owned.ensure(os.path.join(self.params["config_root"], self.params["app"]), owned.APP_CONFIG)
        now = datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
        found.claim_next(self.params["host"] or socket.gethostname(), self.params["reason"] if previous else "first",
                         self.params["databases"], now, branch)
        self.result.update(ownership=found.summary(), write_replica=found.lineage(), fenced=False)
        return self.result

    def read_older(self, found, fields):
        """read_replica at the lineage lineage_at or lineage_epoch names: every epoch's lineage stays readable after
        a move or a take-over, so a point in time before it is restored from the lineage that was current then."""
        app, wanted = self.params["app"], self.params["lineage_epoch"]
        if found.claim is None:
            # no records (unsupported) or never claimed: the configured path is the replica's only lineage, epoch 1
            if wanted not in (None, 1):
                raise v.InvalidValue("lineage_epoch: app %s's replica has no epoch %d: %s" % (
                    app, wanted, found.reason if found.standing == claim_store.UNSUPPORTED else "it was never "
                    "claimed, so the configured path is its only lineage (epoch 1)"))
            self.result.update(read_replica=ownership.lineage_fields(fields, app, 1), read_epoch=1)
            return
        if wanted is not None:
            if wanted > found.epoch:
                raise v.InvalidValue("lineage_epoch: app %s's replica has no epoch %d; the newest is %s" % (
                    app, wanted, ownership.describe(found.claim)))
            epoch = wanted
        else:
            claims = []
            for claim in found.history():
                try:
                    claims.append((claim["epoch"], ls.epoch(claim["created_at"])))
                except ValueError:
                    raise ownership.ClaimProblem("the claim of epoch %d of app %s has no valid created_at (%s)" % (
                        claim["epoch"], app, v.shown(claim["created_at"])))
            epoch = ownership.epoch_at(claims, self.moment)
        self.result.update(read_replica=ownership.lineage_fields(fields, app, epoch), read_epoch=epoch)
