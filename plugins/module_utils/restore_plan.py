# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one restore will do, decided before the first change: litestream_restore's options (the argument spec),
their checks (Request: which database, from which replica, to which point, verified how, into which directory)
and what the replica holds (Planner: Litestream's dry run, or Litestream 0.3's generations)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends, defaults
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore as rs
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import common_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import lock_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_container import (
    CONFIG_IN_CONTAINER, ENV_IN_CONTAINER, RESTORE_DIR)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_report import (
    StepFailed, describe, last_line)

V03_HINT = ("; a replica that Litestream 0.3 wrote (the generations/ layout, such as the dokku-litestream plugin's "
            "at the URL itself) is read with a 0.3 image (image: litestream/litestream:0.3.13) and "
            "replica.location: path")
# the replica types a Litestream 0.3 image restores here
V03_TYPES = tuple(backend.name for backend in backends.BACKENDS if backend.v03_restore)
# the verify option of litestream_restore and litestream_drill
VERIFY_OPTIONS = dict(
    integrity=dict(type="str", choices=["full", "quick", "none"], default="quick"),
    tables=dict(type="list", elements="str", default=[]),
    min_rows=dict(type="dict", default={}),
)
# the ownership comes either from chown or from owner/group
RESTORE_MUTUALLY_EXCLUSIVE = [("chown", "owner"), ("chown", "group")]


def restore_argument_spec():
    """litestream_restore's options; litestream_drill builds each restore's options with it."""
    argument_spec = common_argument_spec()
    argument_spec.update(lock_argument_spec())
    argument_spec.update(
        replica=dict(type="dict", required=True, options=ls.replica_argument_spec()),
        database=dict(type="str", default=defaults.DATABASE),
        # type str, not path: Ansible would expand '~' and '$VARS' in a path; validate.py normalises it
        dest=dict(type="str", required=True),
        name=dict(type="str"),
        timestamp=dict(type="str"),
        txid=dict(type="str"),
        if_replica_exists=dict(type="bool", default=False),
        on_existing=dict(type="str", choices=["fail", "skip", "replace"], default="fail"),
        owner=dict(type="int"),
        group=dict(type="int"),
        chown=dict(type="str"),
        mode=dict(type="raw", default="0644"),
        verify=dict(type="dict", default={}, options=VERIFY_OPTIONS),
        image=dict(type="str", default=defaults.IMAGE),
        network=dict(type="str", default="host"),
        dry_run_timeout=dict(type="int", default=0),
        credentials_root=dict(type="str", default=defaults.CREDENTIALS_ROOT),
    )
    return argument_spec


class Request:
    """litestream_restore's parameters, checked and normalised by validate(). Until then (and where validate()
    stopped) dest, target and the rest are None: a failure names the restore only once its target is known."""

    def __init__(self, params):
        self.params = params
        self.database = params["database"]
        self.name = params["name"] or self.database
        self.dest = self.target = self.credentials_root = self.mode = None
        self.fields = None
        self.v03 = False       # the image is a Litestream 0.3: generations/ layout, 0.3's commands
        self.replica = None    # where the database's replica is, as messages show it
        self.timestamp = self.txid = None
        self.integrity = "quick"
        self.required_tables = []
        self.min_rows = {}

    def validate(self):
        """Every input check, before a file is read or a docker command runs; raises StepFailed."""
        params = self.params
        try:
            self.check_values(params)
            if params["timestamp"] is not None and params["txid"] is not None:
                raise StepFailed("give either timestamp or txid, not both")
            self.fields = ls.normalize_replica(params["replica"])
            self.check_image(params["image"])
            self.replica = rs.replica_location(self.fields, self.database)
            self.read_point(params["timestamp"], params["txid"])
            self.read_verify(params["verify"] or {})
        except v.InvalidValue as exc:
            raise StepFailed(str(exc))
        if os.path.lexists(self.dest) and not os.path.isdir(self.dest):
            raise StepFailed("dest %s exists and is not a directory" % self.dest)
        if os.path.isdir(self.target) and not os.path.islink(self.target):
            raise StepFailed("%s is a directory, not a database file" % self.target)

    def check_values(self, params):
        v.db_file_name(self.database, "database")
        v.db_file_name(self.name, "name")
        # type str, not path: no '~' or '$VAR' expansion; one spelling per directory (and per lock)
        self.dest = v.absolute_path(params["dest"], "dest", mount=True)
        self.target = os.path.join(self.dest, self.name)
        self.credentials_root = v.absolute_path(params["credentials_root"], "credentials_root")
        self.mode = v.file_mode(params["mode"], "mode")
        v.check_bounds(params)  # owner, group, dry_run_timeout, lock_timeout
        if params["chown"] is not None:
            v.chown(params["chown"])
        v.docker_word(params["image"], "image")
        v.docker_word(params["network"], "network")

    def check_image(self, image):
        """A Litestream 0.3 image reads only some replica types, and knows no transaction ids."""
        self.v03 = ls.is_v03_image(image)
        if not self.v03:
            return
        if self.params["txid"] is not None:
            raise StepFailed("txid: the image %s runs Litestream 0.3, which has no transaction ids: restore at a "
                             "timestamp instead" % image)
        if not backends.of(self.fields).v03_restore:
            raise StepFailed("image: %s runs Litestream 0.3, which reads %s replicas here, not %s" % (
                image, " and ".join(V03_TYPES), self.fields["type"]))

    def read_point(self, timestamp, txid):
        try:
            self.timestamp = ls.parse_timestamp(timestamp) if timestamp is not None else None
            self.txid = ls.parse_txid(txid) if txid is not None else None
        except ValueError as exc:
            raise StepFailed(str(exc))

    def read_verify(self, verify):
        self.integrity = verify.get("integrity") or "quick"
        self.required_tables = list(verify.get("tables") or [])
        for table in self.required_tables + list((verify.get("min_rows") or {}).keys()):
            if not str(table).strip():
                raise StepFailed("verify.tables and verify.min_rows name tables: an empty name (%r) is no table"
                                 % (table,))
        self.min_rows = {}
        for table, value in (verify.get("min_rows") or {}).items():
            # '5' from a template counts; .inf is refused (int() raised OverflowError)
            self.min_rows[str(table)] = v.in_range(value, "verify.min_rows.%s" % table, v.BOUNDS["min_rows"])

    # ------------------------------------------------------------------ what follows from it
    def point_in_time(self):
        if self.timestamp:
            return "at %s" % self.timestamp
        if self.txid:
            return "at txid %s" % self.txid
        return "latest"

    def point_args(self):
        return ["-timestamp", self.timestamp] if self.timestamp else ["-txid", self.txid] if self.txid else []

    def dry_run_args(self, point_args):
        return ["-dry-run", "-json"] + point_args + ["-o", "%s/%s" % (RESTORE_DIR, self.name)]

    def restore_args(self, summary=None):
        """The restore's arguments; with a summary, -txid of the transaction to reach (none for Litestream 0.3)."""
        args = ["-o", "%s/%s" % (RESTORE_DIR, self.name)]
        if self.params["if_replica_exists"]:
            args.append("-if-replica-exists")
        if self.v03:
            if self.timestamp:
                args += ["-timestamp", self.timestamp]
            return args
        # No -integrity-check: the one check is restore_verify's (see verify.integrity). Always -txid, also for the
        # latest: the restore reaches exactly what the dry run planned and reported, a replica that moved on
        # meanwhile included, with no second listing for Litestream to work out its latest, and a time is
        # never passed to -timestamp (broken in some 0.5 releases).
        args.append("-json")
        if summary is not None:
            args += ["-txid", self.txid or summary["max_txid"]]
        return args

    def replica_dir_missing(self):
        """A replica in a directory of this host that does not exist: no backup, and docker would create it for
        the mount."""
        return backends.of(self.fields).host_path and not os.path.isdir(self.fields["path"])

    def one_run(self, check_mode):
        """Whether the dry run and the restore share one container (Planner.plan_and_restore): one container start
        and one look at the replica fewer. The dry run keeps a container of its own, before anything is written,
        - in check mode, where it is all that runs;
        - with if_replica_exists, where a replica without a backup must leave dest untouched (one run needs dest
          made, and the stage next to it mounted, before the dry run starts);
        - for a Litestream 0.3 image, whose plan is the table `generations` prints, read here;
        - for a host directory replica that is missing: no backup, and docker would create it for the mount.
        """
        return not (check_mode or self.params["if_replica_exists"] or self.v03 or self.replica_dir_missing())


class Planner:
    """What the replica holds for a Request, read in throw-away containers (restore_container); raises StepFailed
    when the replica cannot be read, or holds backups but none that matches the point asked for."""

    def __init__(self, request, container):
        self.request = request
        self.container = container

    def plan(self):
        """Plan the restore; returns the plan summary, or None when the replica has no backup of the database."""
        if self.request.v03:
            return self.plan_v03()
        return self.summarize(self.dry_run(self.request.point_args()))

    def no_backup(self):
        """The failure of a replica that holds no backup (unless if_replica_exists, which the caller checks)."""
        return StepFailed("the replica %s holds no backup of %s (set if_replica_exists: true to accept that)%s" % (
            self.request.replica, self.request.database, "" if self.request.v03 else V03_HINT), replica_missing=True)

    def unreachable(self, rc, out, err):
        return StepFailed("the replica %s is unreachable: no answer within %d s (dry_run_timeout); Litestream's last "
                          "words: %s" % (self.request.replica, self.request.params["dry_run_timeout"],
                                         describe(self.container.docker, rc, out, err)))

    def unreadable(self, rc, out, err):
        return StepFailed("the replica %s cannot be read: %s" % (
            self.request.replica, describe(self.container.docker, rc, out, err)))

    def dry_run(self, point_args):
        """The restore plan (dict), None when the replica holds nothing that matches; fails on other errors."""
        if self.request.replica_dir_missing():
            return None  # nothing to read, and docker would create the directory for the mount
        rc, out, err = self.container.litestream(self.request.dry_run_args(point_args), mount_dest=False,
                                                 timeout=self.request.params["dry_run_timeout"])
        return self.read_plan(rc, out, err)

    def read_plan(self, rc, out, err):
        """What a dry run's exit status and output say: the plan, None for no backup; fails on other errors."""
        if rc == 0:
            plan = rs.parse_json_output(out)
            if not isinstance(plan, dict):
                raise StepFailed("litestream restore -dry-run printed no plan (exit 0): %s" % last_line(out, err))
            return plan
        if rs.is_no_backup(err) or rs.is_no_backup(out):
            return None
        if self.request.params["dry_run_timeout"] and rc == rs.TIMEOUT_RC:
            raise self.unreachable(rc, out, err)
        raise self.unreadable(rc, out, err)

    def summarize(self, plan):
        """The summary of a dry run's plan; None (no backup) only when the replica holds nothing at all."""
        if plan is not None:
            return rs.plan_summary(plan)
        if not self.request.point_args():
            return None
        # nothing at that point: tell "no replica at all" from "not that far back"
        whole = self.dry_run([])
        if whole is None:
            return None
        summary = rs.plan_summary(whole)
        held = "the replica %s holds transactions %s to %s (newest file %s)" % (
            self.request.replica, summary["min_txid"], summary["max_txid"], summary["newest_file_time"])
        if self.request.timestamp:
            raise StepFailed("%s, none at or before %s" % (held, self.request.timestamp))
        raise StepFailed("%s; txid %s cannot be restored from it" % (held, self.request.txid))

    def generations(self):
        """Litestream 0.3's view of the replica: its generations (a list, empty when none); fails on errors."""
        if self.request.replica_dir_missing():
            return []
        timeout = self.request.params["dry_run_timeout"]
        rc, out, err = self.container.litestream([], mount_dest=False, timeout=timeout, command="generations")
        if timeout and rc == rs.TIMEOUT_RC:
            raise self.unreachable(rc, out, err)
        listing_error = rs.generations_error(err) or rs.generations_error(out)
        if listing_error:
            raise StepFailed("the replica %s cannot be read: %s (command: %s)" % (
                self.request.replica, listing_error, self.container.docker.commands[-1]))
        if rc != 0:
            raise self.unreadable(rc, out, err)
        return rs.parse_generations(out)

    def plan_v03(self):
        rows = self.generations()
        if not rows:
            return None
        summary = rs.generations_summary(rows, self.request.timestamp)
        if summary is None:
            raise StepFailed("the replica %s holds generations from %s to %s (Litestream 0.3, to the second), none "
                             "of which spans %s" % (self.request.replica, min(row["start"] for row in rows),
                                                    max(row["end"] for row in rows), self.request.timestamp))
        return summary

    def plan_and_restore(self):
        """The dry run and, when it found the plan, the restore, in one container (the stage is mounted). Returns
        (summary, read_at: when the dry run ended, ran: the restore's (rc, out, err, txid reached) or None when
        the image lacks the tools the script reads the plan with: grep, sort). Raises as the dry run of its own
        would, no backup included."""
        request = self.request
        script = rs.plan_and_restore_script(
            CONFIG_IN_CONTAINER, ENV_IN_CONTAINER,
            self.container.litestream_args("restore", request.dry_run_args(request.point_args())),
            self.container.litestream_args("restore", request.restore_args()), txid=request.txid,
            timeout=request.params["dry_run_timeout"])
        rc, out, err = self.container.run(script, mount_dest=True)
        parts = rs.split_planned_output(out, err)
        if parts is None:  # the script never got past the dry run: no shell, or docker could not start it
            if rc == 0:
                raise StepFailed("litestream restore -dry-run printed no plan (exit 0): %s" % last_line(out, err))
            parts = {"rc": rc, "at": None, "txid": "", "plan_out": out, "plan_err": err, "out": "", "err": ""}
        summary = self.summarize(self.read_plan(parts["rc"], parts["plan_out"], parts["plan_err"]))
        if summary is None:
            raise self.no_backup()
        read_at = parts["at"]
        if read_at is None:  # an image without `date`: the end of the run, less the restore's own duration
            report = rs.parse_json_output(parts["out"])
            took = report.get("duration_ms") if isinstance(report, dict) else None
            read_at = time.time() - (took or 0) / 1000.0
        ran = (rc, parts["out"], parts["err"], parts["txid"]) if parts["txid"] else None
        return summary, read_at, ran

    def reached(self, ran, summary):
        """The one run's restore (rc, out, err), once it is known to have reached the txid the dry run planned."""
        rc, out, err, txid = ran
        wanted = self.request.txid or summary["max_txid"]
        if txid != wanted:
            raise StepFailed("the restore ran to txid %s, but the dry run planned %s (command: %s)" % (
                txid, wanted, self.container.docker.commands[-1]))
        return rc, out, err
