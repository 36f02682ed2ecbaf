# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A warm standby of one database (litestream_standby): Litestream's follow mode (`litestream restore -f`, since
0.5.9) in a long-lived container, so that the cut-over of a move waits only for the last transactions instead of a
whole restore.

- following: the follower runs. It restores the replica into the standby directory (a root-only directory next to
  dest, as a restore's stage, but named after the target so that the later tasks find it), then applies each new
  file and writes the TXID it reached to `<name>-txid` (replica.go, v0.5.16 follow and WriteTXIDFile).
- promoted: once the follower reached the final TXID, it is stopped (SIGTERM, exit 0), page 1 gets its WAL mode
  back (follow mode writes it in rollback-journal mode, replica.go applyLTXFile), and the database is verified and
  put in place exactly as litestream_restore does it (restore_verify, restore_swap); the standby is removed.
- absent: the follower and its directory are removed; dest is not touched.

Follow mode cannot stop at a TXID (it refuses -txid), so the caller must know that no transaction after the one it
promotes at can reach the replica: a move promotes only after the old host's sidecar stopped and its final TXID was
proved to be the replica's newest (litestream_handoff)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import sqlite3
import stat
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors, guarded
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore as rs
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore_swap as swap
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore_verify as verify
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerError, DockerRunner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import HostLock, LockTimeout
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_container import (
    CONFIG_IN_CONTAINER, ENV_IN_CONTAINER, RESTORE_DIR, LitestreamContainer)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_plan import (
    RESTORE_MUTUALLY_EXCLUSIVE, Request, restore_argument_spec)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_report import StepFailed, last_line
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_stage import Stage, exists_at

__all__ = ("MUTUALLY_EXCLUSIVE", "REQUIRED_IF", "Standby", "StandbyFailed", "standby_argument_spec")

STATES = ("following", "promoted", "absent")
STANDBY_PREFIX = ".litestream-standby-"
CONFIG_DIR = ".config"  # in the standby directory: a database name never starts with '.'
CONTAINER_PREFIX = "dokku.litestream.standby."
TARGET_LABEL = "dokku_sqlite.litestream.standby"
SPEC_LABEL = "dokku_sqlite.litestream.standby.spec"  # a hash of what the follower reads: no secret is in it
STOP_TIMEOUT = 30      # seconds docker waits after SIGTERM; between two ticks follow mode stops at once
POLL = 0.2             # seconds between two reads of <name>-txid
INSPECT_EVERY = 10     # polls between two looks at the container (is it still running?)
# options of litestream_restore that a standby has no use for: it follows the latest and always replaces
RESTORE_ONLY = ("timestamp", "if_replica_exists", "on_existing", "dry_run_timeout")
MUTUALLY_EXCLUSIVE = RESTORE_MUTUALLY_EXCLUSIVE
REQUIRED_IF = [("state", "promoted", ("txid",))]


def standby_argument_spec():
    spec = restore_argument_spec()
    for option in RESTORE_ONLY:
        del spec[option]
    spec.update(
        state=dict(type="str", choices=list(STATES), default="following"),
        follow_interval=dict(type="int", default=1),
        wait_timeout=dict(type="int", default=600),
    )
    return spec


def restore_params(params):
    """The parameters restore_plan.Request checks: this module's, and litestream_restore's defaults for the rest."""
    full = dict((option, spec.get("default")) for option, spec in restore_argument_spec().items())
    full.update((option, value) for option, value in params.items() if option in full)
    full["on_existing"] = "replace"
    return full


def standby_key(target):
    return hashlib.sha256(target.encode("utf-8")).hexdigest()[:16]


def container_name(target):
    return CONTAINER_PREFIX + standby_key(target)


def dir_name(target):
    return STANDBY_PREFIX + standby_key(target)


def spec_hash(fields, image, interval, name):
    """What the follower reads and writes, hashed: a follower started with other values is replaced."""
    text = json.dumps(dict(replica=fields, image=image, interval=interval, name=name), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_txid(dir_fd, name):
    """The TXID the follower reached (`<name>-txid`, written after each applied file), None before its first
    restore ended."""
    try:
        fd = os.open(name + "-txid", os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    try:
        data = os.read(fd, 64)
    finally:
        os.close(fd)
    try:
        return ls.txid_number(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise StepFailed("the follower's %s-txid holds no TXID (%s)" % (
            name, v.shown(data[:32].decode("ascii", "replace"))))


def wal_mode_back(fd, path):
    """Page 1 in WAL mode again (bytes 18-19 = 2), as a cold restore leaves it: follow mode writes it in
    rollback-journal mode. SQLite changes it itself, in a transaction of its own; returns whether it had to."""
    header = os.pread(fd, 20, 0)
    if len(header) < 20 or header[18:20] == b"\x02\x02":
        return False
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    finally:
        conn.close()
    if str(mode).lower() != "wal":
        raise StepFailed("SQLite left the followed database in journal mode %s, not wal; nothing was put in place"
                         % mode)
    return True


class StandbyFailed(errors.CollectionError):
    """The standby failed; ``result`` holds what the module returns with the message."""

    def __init__(self, msg, result):
        super(StandbyFailed, self).__init__(msg)
        self.msg = msg
        self.result = result


class StandbyStage(Stage):
    """The standby directory: a restore's stage (root-only, next to dest on its mount, used through one descriptor),
    named after the target so that the next task finds it again."""

    def open_dest(self, create):
        """Open dest (make it, with its parents, when `create`); False when it is missing and not made."""
        if not create and not os.path.isdir(self.request.dest):
            return False
        self.make_dest()
        return True

    def make(self):
        parent, parent_fd = self.parent()
        name = dir_name(self.request.target)
        os.mkdir(name, 0o700, dir_fd=parent_fd)
        self.adopt(parent, parent_fd, name)

    def find(self):
        """Open the standby directory when there is one; whether there is."""
        parent, parent_fd = self.parent()
        name = dir_name(self.request.target)
        if not exists_at(parent_fd, name):
            return False
        self.adopt(parent, parent_fd, name)
        return True

    def adopt(self, parent, parent_fd, name):
        path = os.path.join(parent, name)
        fd = self.open_dir(name, parent_fd, path)
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
            os.close(fd)
            raise StepFailed("%s is not the root-only directory this module makes (uid %d, mode %04o); refusing to "
                             "use or remove it" % (path, st.st_uid, stat.S_IMODE(st.st_mode)))
        self.path, self.fd, self.at = path, fd, (parent_fd, name, (st.st_dev, st.st_ino))

    def remove(self, keep_dest=True):
        """Remove the standby directory (and what is in it, through its descriptor); dest and the parents this run
        made stay unless keep_dest is False (then only while empty)."""
        if keep_dest:
            self.created_dirs = []
        self.cleanup(restored=keep_dest, close=False)
        if self.fd is not None:
            os.close(self.fd)
        self.path = self.fd = self.at = None


class FollowerContainer(LitestreamContainer):
    """Litestream's follow mode in a container that outlives the task, its configuration in the standby directory."""

    def make_workdir(self):
        os.mkdir(CONFIG_DIR, 0o700, dir_fd=self.stage.fd)
        return os.path.join(self.stage.path, CONFIG_DIR)

    def cleanup(self):
        """The configuration goes with the standby directory (StandbyStage.remove)."""
        self.workdir = None

    def start(self, name, spec, interval):
        request, params = self.request, self.request.params
        args = ["-f", "-follow-interval", "%ds" % interval, "-o", "%s/%s" % (RESTORE_DIR, request.name)]
        script = rs.container_script(CONFIG_IN_CONTAINER, ENV_IN_CONTAINER, self.litestream_args("restore", args))
        docker = ["run", "--detach", "--name", name, "--restart", "no",
                  "--label", "%s=%s" % (TARGET_LABEL, request.target), "--label", "%s=%s" % (SPEC_LABEL, spec),
                  "--network", params["network"], "--entrypoint", "/bin/sh"]
        docker += self.mounts(True) + [params["image"], "-c", script]
        self.stage.check("docker would mount it at %s, so nothing ran" % RESTORE_DIR)
        self.docker.run(docker)


class Standby:
    """One standby of one database; execute() returns the module's result or raises StandbyFailed."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.docker = DockerRunner(module, self.params["docker_binary"])
        self.request = Request(restore_params(self.params))
        self.owner_ids = None
        self.stage = StandbyStage(self.request, self.ownership)
        self.follower = FollowerContainer(self.docker, self.request, self.stage)
        self.name = None
        self.result = dict(changed=False, state=self.params["state"], path=None, replica=None, container=None,
                           standby_dir=None, following=False, txid=None, restored=False, backup=[], actions=[],
                           lock_wait=0.0, commands=self.docker.commands)
        self.started = time.time()
        self.before = None

    # ------------------------------------------------------------------ the run
    def execute(self):
        try:
            self.validate()
            target = self.request.target
            # one run at a time per standby; a promotion also takes litestream_restore's lock of the target (a
            # restore and a promotion into one file would both find it free), always after this one
            with HostLock(self.module, "standby-%s" % target, "the standby of %s" % target,
                          timeout=self.params["lock_timeout"]) as lock:
                self.result["lock_wait"] = lock.waited
                if self.params["state"] == "promoted":
                    with HostLock(self.module, "restore-%s" % target, "the restore target %s" % target,
                                  timeout=self.params["lock_timeout"]) as restore_lock:
                        self.result["lock_wait"] += restore_lock.waited
                        before, after = self.converge()
                else:
                    before, after = self.converge()
        except StepFailed as exc:
            raise self.failure(exc.msg, **exc.extra)
        except (DockerError, LockTimeout, guarded.OutsideRoot) as exc:
            raise self.failure(str(exc))
        except (IOError, OSError) as exc:
            raise self.failure("%s" % exc)
        finally:
            self.stage.close()
        self.result["duration"] = round(time.time() - self.started, 3)
        if before is not None:
            self.result["diff"] = dict(before=before, after=after)
        return self.result

    def converge(self):
        """The state's work; the diff's (before, after), or (None, None) without --diff."""
        getattr(self, self.params["state"])()
        if not self.module._diff:
            return None, None
        if self.module.check_mode:
            return self.before, self.predicted(self.before)
        return self.before, dict(path=self.request.target, following=self.result["following"],
                                 txid=self.result.get("txid"))

    def validate(self):
        request, params = self.request, self.params
        request.validate()
        try:
            v.check_bounds(dict((option, params[option]) for option in ("follow_interval", "wait_timeout")))
        except v.InvalidValue as exc:
            raise StepFailed(str(exc))
        if request.v03:
            raise StepFailed("image: %s runs Litestream 0.3, which has no follow mode (Litestream 0.5.9 added "
                             "`restore -f`)" % params["image"])
        if params["state"] != "promoted" and params["txid"] is not None:
            raise StepFailed("txid: only state=promoted takes a TXID (follow mode cannot stop at one)")
        self.name = container_name(request.target)
        self.result.update(path=request.target, replica=request.replica, container=self.name)

    def look(self):
        """(the follower's inspect document or None, whether the standby directory exists: then it is open); what
        it shows is the diff's before."""
        doc = self.docker.inspect_container(self.name)
        found = self.stage.open_dest(create=False) and self.stage.find()
        txid = None
        if found:
            try:
                txid = read_txid(self.stage.fd, self.request.name)
            except StepFailed:
                pass  # shown as none; the state that needs it reads it again and fails there
        self.before = dict(path=self.request.target, following=bool(doc and (doc.get("State") or {}).get("Running")),
                           txid=ls.hex_txid(txid))
        return doc, found

    def predicted(self, before):
        state = self.params["state"]
        txid = {"promoted": self.request.txid, "absent": None}.get(state, before.get("txid"))
        return dict(before, following=state == "following", txid=txid)

    # ------------------------------------------------------------------ the states
    def following(self):
        request = self.request
        spec = spec_hash(request.fields, self.params["image"], self.params["follow_interval"], request.name)
        doc, found = self.look()
        labels = ((doc or {}).get("Config") or {}).get("Labels") or {}
        if doc and (doc.get("State") or {}).get("Running") and labels.get(SPEC_LABEL) == spec and found:
            self.result.update(following=True, standby_dir=self.stage.path)
            if not self.module.check_mode:
                self.wait_for("its first restore", lambda txid: txid is not None)
            return
        self.changed("start following %s into %s" % (request.replica, request.target))
        if self.module.check_mode:
            return
        self.remove(doc, found)  # a stopped follower, or one of another replica or image: a fresh start
        self.stage.close()
        self.ownership()
        self.stage.open_dest(create=True)
        self.stage.make()
        self.result["standby_dir"] = self.stage.path
        try:
            self.follower.prepare(False, self.module.warn)
            self.follower.start(self.name, spec, self.params["follow_interval"])
            self.result["following"] = True
            self.wait_for("its first restore", lambda txid: txid is not None)
        except Exception:
            self.remove(self.docker.inspect_container(self.name), True, keep_dest=False)
            raise

    def promoted(self):
        request = self.request
        final = ls.txid_number(request.txid)
        doc, found = self.look()
        if not found:
            raise StepFailed("no standby follows the replica into it; start one with state=following first, or "
                             "restore with litestream_restore")
        self.result["standby_dir"] = self.stage.path
        self.changed("stop the follower at txid %s and put its database in place" % request.txid)
        if self.module.check_mode:
            self.result["position"] = request.txid
            return
        if not doc or not (doc.get("State") or {}).get("Running"):
            raise StepFailed("its follower %s is not running (%s); what it wrote cannot be trusted to be at txid %s. "
                             "Remove the standby (state=absent) and restore with litestream_restore"
                             % (self.name, self.stopped(doc), request.txid))
        reached = self.wait_for("txid %s" % request.txid, lambda txid: txid is not None and txid >= final)
        if reached > final:
            raise StepFailed("the follower reached txid %s, past %s: the replica holds transactions after the one to "
                             "promote at; nothing was put in place" % (ls.hex_txid(reached), request.txid))
        self.docker.run(["container", "stop", "--time", str(STOP_TIMEOUT), self.name])
        doc = self.docker.inspect_container(self.name)
        code = ((doc or {}).get("State") or {}).get("ExitCode")
        if code != 0:
            raise StepFailed("the follower exited %s when it was stopped, not 0: %s; nothing was put in place"
                             % (code, self.logs()))
        after_stop = read_txid(self.stage.fd, request.name)
        if after_stop != final:
            raise StepFailed("the follower's TXID changed to %s while it stopped; nothing was put in place"
                             % ls.hex_txid(after_stop))
        self.docker.run(["container", "rm", self.name])
        self.result["following"] = False
        self.put_in_place()
        self.result.update(restored=True, position=request.txid)
        self.stage.remove()

    def absent(self):
        doc, found = self.look()
        if not doc and not found:
            return
        self.changed("remove the standby of %s" % self.request.target)
        if not self.module.check_mode:
            self.remove(doc, found)

    # ------------------------------------------------------------------ the parts
    def put_in_place(self):
        """Journal mode back to WAL, then litestream_restore's verification, owner, mode and swap."""
        request = self.request
        fd = self.stage.open_file(request.name)
        try:
            path = self.stage.proc_path(request.name)
            self.result["journal_mode_fixed"] = wal_mode_back(fd, path)
            inspected = verify.inspect(path, request.integrity)
            verify.check(inspected, request.required_tables, request.min_rows)
            self.stage.check("the verification may have read another file; nothing was put in place")
            self.result.update(tables=inspected["tables"], integrity=inspected["integrity"])
            self.result["size"] = swap.settle(fd, self.ownership(), request.mode)
        finally:
            os.close(fd)
        self.result["backup"].extend(swap.put_in_place(self.stage.fd, self.stage.dest_fd, request.dest, request.name))

    def wait_for(self, what, reached):
        """Poll `<name>-txid` until reached(txid); fail when the follower stops or wait_timeout runs out. Returns
        the TXID (also in the result)."""
        deadline = time.time() + self.params["wait_timeout"]
        polls = 0
        while True:
            txid = read_txid(self.stage.fd, self.request.name)
            self.result["txid"] = ls.hex_txid(txid)
            if reached(txid):
                return txid
            if polls % INSPECT_EVERY == 0 or time.time() >= deadline:
                doc = self.docker.inspect_container(self.name)
                if not doc or not (doc.get("State") or {}).get("Running"):
                    raise StepFailed("the follower stopped before %s (%s): %s" % (what, self.stopped(doc), self.logs()))
                if time.time() >= deadline:
                    raise StepFailed("the follower did not reach %s within wait_timeout (%d s); it is at txid %s"
                                     % (what, self.params["wait_timeout"], ls.hex_txid(txid) or "none yet"))
            polls += 1
            time.sleep(POLL)

    def remove(self, doc, found, keep_dest=True):
        """The follower and the standby directory; with keep_dest False also dest and its parents, if this run made
        them (a follower that failed to start leaves nothing)."""
        if doc:
            self.docker.run(["container", "rm", "--force", self.name])
        if found and self.stage.fd is not None:
            self.stage.remove(keep_dest)
        self.result["following"] = False

    def logs(self):
        rc, out, err = self.docker.run(["container", "logs", "--tail", "5", self.name], check=False)
        return last_line(out, err) if rc == 0 else "no logs (%s)" % last_line(out, err)

    @staticmethod
    def stopped(doc):
        if not doc:
            return "no such container"
        state = doc.get("State") or {}
        return "status %s, exit code %s" % (state.get("Status"), state.get("ExitCode"))

    def changed(self, action):
        self.result["changed"] = True
        self.result["actions"].append(action)

    def ownership(self):
        if self.owner_ids is None:
            self.owner_ids = swap.owner_ids(self.request.params, self.request.dest, self.docker.userns_remap)
        return self.owner_ids

    def failure(self, msg, **extra):
        self.result.update(extra)
        self.result["duration"] = round(time.time() - self.started, 3)
        where = self.request.target
        return StandbyFailed("standby of %s: %s" % (where, msg) if where else msg, self.result)
