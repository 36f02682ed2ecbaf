# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one restore reports: litestream_restore's result (path, replica, actions, backup, position, duration,
diff) and the words of its messages. Every step of a restore (restore_plan, restore_stage, restore_verify,
restore_swap) raises StepFailed; restore_core's manager turns it into the module's failure with this result."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore as rs
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.errors import CollectionError


class StepFailed(CollectionError):
    """A step of the restore refused or failed: ``msg`` for the user, ``extra`` the result keys that go with it."""

    def __init__(self, msg, **extra):
        super(StepFailed, self).__init__(msg)
        self.msg = msg
        self.extra = extra


class Report:
    """The result of one restore, built up as it runs; ``commands`` is the docker runner's record (the same list)."""

    def __init__(self, commands):
        self.started = time.time()
        self.actions = []
        self.backup = []
        self.result = dict(changed=False, restored=False, path=None, replica=None, backup=self.backup,
                           actions=self.actions, commands=commands, lock_wait=0.0)

    def locate(self, request):
        """path and replica, as far as the request's checks got (None before)."""
        self.result.update(path=request.target, replica=request.replica)

    def failed(self, where, msg, extra):
        """(message, result) of a failure; `where` names the restore once dest is known (before that, the message
        names the option that was refused)."""
        self.result.update(extra)
        self.result["duration"] = round(time.time() - self.started, 3)
        return ("%s: %s" % (where, msg) if where else msg), self.result

    def finished(self, before, after, check_mode, diff):
        """The result of a restore that ended well: done, skipped, nothing to restore, or (check mode) planned."""
        self.result["changed"] = bool(self.result["restored"] or (check_mode and self.actions))
        self.result["duration"] = round(time.time() - self.started, 3)
        if diff:
            self.result["diff"] = {"before": before, "after": after}
        return self.result

    def planned(self, summary, read_at):
        """position, position_time and position_age (against read_at, when the dry run ended) from a plan."""
        self.result.update(position=summary["position"], position_time=summary["newest_file_time"])
        if summary["newest_file_time"]:
            age = rs.seconds_since(summary["newest_file_time"], read_at)
            self.result["position_age"] = round(max(0.0, age), 1)

    def announce(self, request, summary, existing, dest_missing):
        """The actions, once the replica is known to hold what is wanted; returns the planned backup paths."""
        if dest_missing:
            self.actions.append("create directory %s" % request.dest)
        reached = ""
        if summary:
            reached = ", %s %s" % ("generation" if request.v03 else "txid", summary["position"])
        self.actions.append("restore %s (%s%s) into %s" % (
            request.replica, request.point_in_time(), reached, request.target))
        if not existing:
            return []
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        planned = [rs.backup_path(p, request.dest, request.name, stamp) for p in existing]
        self.actions.append("move aside %s" % ", ".join(
            "%s -> %s" % (os.path.basename(p), os.path.basename(n)) for p, n in zip(existing, planned)))
        return planned

    def no_backup_accepted(self, request):
        """The replica holds no backup and if_replica_exists accepts that: nothing restored, nothing planned."""
        self.result["msg"] = "no backup of %s in %s; nothing restored (if_replica_exists)" % (
            request.database, request.replica)
        for key in ("position", "position_time", "position_age"):
            self.result.pop(key, None)
        self.actions[:] = []


def no_space(dest, partial, detail):
    """A full disk, with the space left once this run's partial file(s) were removed (`partial`: 'file was',
    'files were')."""
    return "no space left on device in %s (%s once the partial %s removed): %s" % (
        dest, rs.space_left(dest), partial, detail)


def describe_existing(target, existing):
    others = [p for p in existing if p != target]
    if target in existing:
        return target + (" (with %s)" % ", ".join(others) if others else "")
    return "%s (not the file itself, but %s)" % (target, ", ".join(others))


def last_line(out, err):
    for text in (err, out):
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "(no output)"


def describe(docker, rc, out, err):
    """Litestream's own last words, the command that ran (the script holds no secret) and a known cause."""
    text = "%s (exit %d; command: %s)" % (last_line(out, err), rc, docker.commands[-1])
    hint = rs.failure_hint(out, err)
    return text + ("; likely cause: %s" % hint if hint else "")
