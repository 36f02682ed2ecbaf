# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One restore of one database from its Litestream replica: litestream_restore runs one; litestream_drill runs
several at once, one per thread. RestoreManager orchestrates the steps, each in a module of its own:

- restore_plan: the options and their checks (Request), what the replica holds (Planner: the dry run);
- restore_container: Litestream in a throw-away container, its configuration and keys in a root-only directory;
- restore_stage: dest and the root-only stage Litestream restores into, through checked directory handles;
- restore_verify: the restore's exit, its file, its position, SQLite's integrity check and the tables asked for;
- restore_swap: the owner and mode, the old files moved aside and the new one renamed in (undone on failure);
- restore_report: the module's result and the words of its messages.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import signal
import threading
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors, guarded
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore as rs
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore_swap as swap
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore_verify as verify
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerError, DockerRunner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import HostLock, LockTimeout
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_container import LitestreamContainer
# the argument spec lives with the checks it feeds; litestream_restore, litestream_drill and drill_core import it here
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_plan import (
    RESTORE_MUTUALLY_EXCLUSIVE, VERIFY_OPTIONS, Planner, Request, restore_argument_spec)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_report import (
    Report, StepFailed, describe_existing, no_space)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_stage import Stage

__all__ = ("CLEANUP_SIGNALS", "RESTORE_MUTUALLY_EXCLUSIVE", "VERIFY_OPTIONS", "RestoreFailed", "RestoreManager",
           "restore_argument_spec")

# a signal from the controller (task timeout, ^C) must not leave keys in /tmp or a half file in dest
CLEANUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class RestoreFailed(errors.CollectionError):
    """The restore failed; ``result`` holds what the module returns with the message."""

    def __init__(self, msg, result):
        super(RestoreFailed, self).__init__(msg)
        self.msg = msg
        self.result = result


class RestoreManager:
    """One restore. ``params`` are litestream_restore's (the module's own by default); execute() returns the
    result or raises RestoreFailed. ``signals``: clean up on SIGTERM/SIGHUP/SIGINT (only in the main thread;
    litestream_drill, which runs several managers in threads, cleans them up itself)."""

    def __init__(self, module, params=None, signals=True):
        self.module = module
        self.params = module.params if params is None else params
        self.signals = signals
        self.docker = DockerRunner(module, self.params["docker_binary"])
        self.request = Request(self.params)
        self.report = Report(self.docker.commands)
        self.result = self.report.result
        self.owner_ids = None
        self.stage = Stage(self.request, self.ownership)
        self.container = LitestreamContainer(self.docker, self.request, self.stage)
        self.planner = Planner(self.request, self.container)
        self.thread = None     # the thread that runs execute(): the only one that closes the descriptors

    # ------------------------------------------------------------------ the run
    def execute(self):
        """The whole restore: returns the result (exit_json's keyword arguments); raises RestoreFailed."""
        self.thread = threading.current_thread()
        try:
            before, after = self.run()
        except StepFailed as exc:
            raise self.failure(exc.msg, **exc.extra)
        except (DockerError, LockTimeout, guarded.OutsideRoot) as exc:
            raise self.failure(str(exc))
        return self.report.finished(before, after, self.module.check_mode, self.module._diff)

    def run(self):
        """Check the request, then restore under the target's lock with the cleanup signals caught; (before, after)."""
        self.request.validate()
        self.report.locate(self.request)
        previous = {}
        if self.signals:
            previous = dict((signum, signal.signal(signum, self.on_signal)) for signum in CLEANUP_SIGNALS)
        target = self.request.target
        try:
            # from the look at what exists to the rename: two restores into one file would both find it free
            with HostLock(self.module, "restore-%s" % target, "the restore target %s" % target,
                          timeout=self.params["lock_timeout"]) as lock:
                self.result["lock_wait"] = lock.waited
                return self.converge()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def converge(self):
        """What exists decides (on_existing); then restore, or plan only. Returns the diff's (before, after)."""
        request = self.request
        existing = rs.existing_paths(request.dest, request.name)
        before = {"path": request.target, "exists": bool(existing), "files": sorted(existing)}
        if existing and request.params["on_existing"] == "fail":
            raise StepFailed("%s already exists; set on_existing: replace to move it aside to a timestamped backup, "
                             "or skip to leave it" % describe_existing(request.target, existing))
        if existing and request.params["on_existing"] == "skip":
            self.result["msg"] = "%s exists; skipped (on_existing: skip)" % describe_existing(request.target, existing)
            return before, before
        try:
            return before, self.from_replica(existing, before)
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOSPC:
                self.cleanup()  # the partial files go first, so the free space shown is what the disk really has
                raise StepFailed(no_space(request.dest, "files were", exc))
            raise StepFailed("%s" % exc)
        finally:
            self.cleanup()

    def from_replica(self, existing, before):
        """Read the replica and restore (in one container when Request.one_run), or in check mode announce what
        would be done; returns the diff's after."""
        request, check_mode = self.request, self.module.check_mode
        replica_checked = self.container.prepare(check_mode, self.module.warn)
        if replica_checked and request.one_run(check_mode):
            self.restore(existing)
            return self.after()
        summary = self.planner.plan() if replica_checked else None
        if replica_checked and summary is None:
            if not request.params["if_replica_exists"]:
                raise self.planner.no_backup()
            self.report.no_backup_accepted(request)
            return before
        if summary:
            # read right after the dry run: container start-up and the restore itself do not count
            self.report.planned(summary, time.time())
        planned = self.report.announce(request, summary, existing, not os.path.isdir(request.dest))
        if check_mode:
            self.report.backup.extend(planned)
            return {"path": request.target, "exists": True, "position": self.result.get("position")}
        self.restore(existing, summary)
        return self.after()

    def after(self):
        return {"path": self.request.target, "exists": True, "position": self.result.get("position"),
                "backup": list(self.report.backup)}

    # ------------------------------------------------------------------ the steps
    def restore(self, existing, summary=None):
        """Restore into the stage, verify, put in place. Without a summary, the dry run runs first in the same
        container (one_run); the stage, and dest when missing, are made before it and removed when it fails."""
        request = self.request
        self.ownership()  # its docker read (user namespaces) before the first change
        dest_missing = not os.path.isdir(request.dest)
        self.stage.make_dest()
        self.stage.make()
        if summary is None:
            rc, out, err = self.plan_and_restore(existing, dest_missing)
        else:
            rc, out, err = self.container.litestream(request.restore_args(summary), mount_dest=True)
        verify.check_exit(rc, out, err, self.docker, request.dest, self.cleanup)
        if not verify.written(self.stage.proc_path(request.name), out, err, request.params["if_replica_exists"]):
            self.report.no_backup_accepted(request)  # the replica went away between the dry run and the restore
            return
        position = verify.restored_txid(out, request.v03)
        if position:
            self.result["position"] = position
        size = self.settle()
        self.report.backup.extend(swap.put_in_place(self.stage.fd, self.stage.dest_fd, request.dest, request.name))
        self.result["restored"] = True
        self.result["size"] = size

    def plan_and_restore(self, existing, dest_missing):
        """The dry run and the restore in one container; the restore's (rc, stdout, stderr)."""
        summary, read_at, ran = self.planner.plan_and_restore()
        self.report.planned(summary, read_at)
        self.report.announce(self.request, summary, existing, dest_missing)
        if ran is None:
            # the image lacks the tools the script reads the plan with (grep, sort): restore in a second container
            return self.container.litestream(self.request.restore_args(summary), mount_dest=True)
        return self.planner.reached(ran, summary)

    def settle(self):
        """Verify the restored file, then give it its owner and mode through its own descriptor; its size."""
        request = self.request
        fd = self.stage.open_file(request.name)
        try:
            inspected = verify.inspect(self.stage.proc_path(request.name), request.integrity)
            verify.check(inspected, request.required_tables, request.min_rows)
            # SQLite opened the file by its path (it resolves /proc/self/fd/N back to the stage's name): what it
            # read counts only if that path still named our stage
            self.stage.check("the verification may have read another file; nothing was put in place")
            self.result.update(tables=inspected["tables"], integrity=inspected["integrity"])
            return swap.settle(fd, self.ownership(), request.mode)
        finally:
            os.close(fd)

    def ownership(self):
        """(uid, gid) for the restored file and the directories made for it; resolved once, when first needed."""
        if self.owner_ids is None:
            self.owner_ids = swap.owner_ids(self.params, self.request.dest, self.docker.userns_remap)
        return self.owner_ids

    # ------------------------------------------------------------------ the end
    def where(self):
        return "restore of %s into %s" % (self.request.database, self.request.target)

    def failure(self, msg, **extra):
        """RestoreFailed with the result, once this run's files are removed."""
        self.cleanup()
        self.report.locate(self.request)
        # before the target is known, validation failed and the message names the option
        msg, result = self.report.failed(self.where() if self.request.target is not None else None, msg, extra)
        return RestoreFailed(msg, result)

    def on_signal(self, signum, _frame):
        raise self.failure("stopped by signal %d: the temporary files of this run were removed" % signum)

    def cleanup(self):
        """Remove what this run created and did not hand over: the stage, the work directory, new empty dirs. The
        descriptors are closed only by the thread that runs the restore (see Stage.cleanup)."""
        self.stage.cleanup(restored=bool(self.result.get("restored")),
                           close=self.thread in (None, threading.current_thread()))
        self.container.cleanup()
