# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host locks: two runs on one host take turns on what they change, instead of racing.

Without them two parallel provision runs both see "no mount" and both run `storage:mount` (Dokku:
"Mount path already exists."), or both `docker create` the same sidecar (docker: "Conflict. The
container name ... is already in use"). Each mutating module takes the lock of what it changes
(an app, the credential sets, a restore target) around its read-decide-write section:

    with HostLock(module, "app-" + app, "app %s" % app) as lock:
        ...                      # lock.waited: seconds spent waiting for another run

The lock is flock(2) on a root-only file in LOCK_DIR, so it is released when the holder's process
ends, however it ends; `flock FILE COMMAND` from a shell takes the same lock. Check mode writes
nothing and takes no lock.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import fcntl
import os
import re
import stat
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors

LOCK_DIR = "/run/lock/dokku-sqlite-litestream"
DEFAULT_TIMEOUT = 300
SCOPE_RE = re.compile(r"[^A-Za-z0-9._-]")


def lock_argument_spec():
    return dict(lock_timeout=dict(type="int", default=DEFAULT_TIMEOUT))


class LockTimeout(errors.CollectionError):
    """The lock stayed held for lock_timeout seconds; the message names the lock and its holder."""


def lock_dir():
    """Where the lock files live: /run/lock (a tmpfs on systemd hosts), else /run."""
    if os.path.isdir(os.path.dirname(LOCK_DIR)):
        return LOCK_DIR
    return os.path.join("/run", os.path.basename(LOCK_DIR))


def scope_name(text):
    """A lock file name for any text (a path, an app): readable, no '/', bounded length."""
    name = SCOPE_RE.sub("_", text.strip("/")) or "_"
    if len(name) > 120:  # keep it unique with a hash of the whole text
        name = "%s-%s" % (name[:100], hashlib.sha1(text.encode("utf-8")).hexdigest()[:12])
    return name


def holder_pids(path):
    """PIDs holding a flock(2) on the file, from /proc/locks (waiters left out); [] when unknown."""
    try:
        st = os.stat(path)
        with open("/proc/locks") as handle:
            lines = handle.read().splitlines()
    except (IOError, OSError):
        return []
    inode = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    pids = []
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 00:2e:5678 0 EOF"; waiters have "->" after the number
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode and fields[4].isdigit():
            pid = int(fields[4])
            if pid > 0 and pid != os.getpid() and pid not in pids:
                pids.append(pid)
    return pids


def describe_pid(pid):
    """'pid 1234 (flock)': the process name only, never its arguments (they may hold anything)."""
    try:
        with open("/proc/%d/comm" % pid) as handle:
            return "pid %d (%s)" % (pid, handle.read().strip())
    except (IOError, OSError):
        return "pid %d" % pid


def check_lock_dir(directory):
    """Create the lock directory owned by this user (root) with mode 0700, or check the one that is there.

    Its parent /run/lock is world-writable: any local user could plant the directory (or a symlink) first and
    then block, or read, every run. Such a directory is refused with a message naming it, never used.
    """
    try:
        os.mkdir(directory, 0o700)
        os.chmod(directory, 0o700)  # whatever the umask
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise LockTimeout("cannot create the lock directory %s: %s" % (directory, exc.strerror))
    st = os.lstat(directory)
    problem = None
    if stat.S_ISLNK(st.st_mode):
        problem = "it is a symbolic link"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "it is not a directory"
    elif st.st_uid != os.geteuid():
        problem = "it is owned by uid %d, not by uid %d (this run's user)" % (st.st_uid, os.geteuid())
    elif st.st_mode & 0o022:
        problem = "its mode %04o lets %s write in it" % (
            stat.S_IMODE(st.st_mode), "everyone" if st.st_mode & 0o002 else "its group")
    if problem:
        raise LockTimeout("refusing the lock directory %s: %s. This collection creates it owned by uid %d with "
                          "mode 0700; another user may have planted it to block or watch these runs. Remove it "
                          "(rm -r %s) and run again" % (directory, problem, os.geteuid(), directory))


class HostLock:
    """An exclusive flock on LOCK_DIR/<scope>.lock, waited for at most `timeout` seconds."""

    def __init__(self, module, scope, what, timeout=None, directory=None):
        self.module = module
        self.what = what
        self.timeout = module.params.get("lock_timeout", DEFAULT_TIMEOUT) if timeout is None else timeout
        self.directory = directory or lock_dir()
        self.path = os.path.join(self.directory, scope_name(scope) + ".lock")
        self.fd = None
        self.waited = 0.0

    def __enter__(self):
        if not self.module.check_mode:
            self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()
        return False

    def open(self):
        check_lock_dir(self.directory)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise LockTimeout("cannot open the lock file %s: %s" % (self.path, exc.strerror))

    def acquire(self):
        if self.timeout < 0:
            raise LockTimeout("lock_timeout must be 0 or more seconds, got %d" % self.timeout,
                              option="lock_timeout")
        fd = self.open()
        started = time.time()
        pause = 0.05
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
            waited = time.time() - started
            if waited >= self.timeout:
                message = self.timeout_message(fd)
                os.close(fd)
                raise LockTimeout(message)
            time.sleep(min(pause, max(self.timeout - waited, 0.01)))
            pause = min(pause * 2, 0.5)
        self.fd = fd
        self.waited = round(time.time() - started, 3)
        # who holds it, for the message of a run that times out waiting (never a secret: pid, module, scope)
        note = "pid %d: %s %s, since %s\n" % (
            os.getpid(), getattr(self.module, "_name", "module"), self.what,
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        os.ftruncate(fd, 0)
        os.write(fd, note.encode("utf-8"))

    def timeout_message(self, fd):
        holders = [describe_pid(pid) for pid in holder_pids(self.path)]
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            note = os.read(fd, 512).decode("utf-8", "replace").strip()
        except OSError:
            note = ""
        held = "held by %s" % ", ".join(holders) if holders else "held by another process"
        if note and (not holders or note.startswith("pid %s:" % holders[0].split()[1])):
            held += " [%s]" % note  # only when it is the holder's own note, not an earlier run's
        return ("timed out after %d s waiting for the lock %s (%s), %s: another run is changing %s on this "
                "host. Wait for it to finish, or raise lock_timeout" % (
                    self.timeout, self.path, self.what, held, self.what))

    def release(self):
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None
