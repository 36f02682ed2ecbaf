# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's own directories: the one answer to "may I remove or change this directory?".

Private to this collection. A user option may name any path; the collection only ever removes, chmods
or chowns a directory that it made itself. Each such directory is of a known Kind (an app's
configuration, a credential set, the health state, a drill run) and is recognised by:

- a marker file, MARKER, written when the directory is made: a regular file owned by us, mode 0600,
  holding the kind's name. A marker of another kind, or one that is not ours, means "not ours";
- its shape: a real directory (never a symlink), owned by us, holding only the regular files the
  kind writes (a drill run holds restores of any name, so it needs its marker).

A directory without a marker that has exactly the kind's owner and mode and holds only the kind's own
files was made by an earlier release (before markers); it is adopted (the marker is written) the next
time the collection writes into it. Every check and act goes through a descriptor opened with
O_NOFOLLOW | O_DIRECTORY, so swapping the path for a symlink after the check does not redirect it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import pwd
import re
import stat
import tempfile

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends, guarded
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.validate import CREDENTIAL_SET_RE, shown

MARKER = ".dokku-sqlite-litestream"
MARKER_MODE = 0o600
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
# write_atomic's and litestream_auth's temporary names: .<file>.<random>[.tmp], left only by a crash
_TMP = r"\.(?:%s)\.[A-Za-z0-9_]+(?:\.tmp)?"


class NotOurs(guarded.OutsideRoot):
    """The directory was not made by this collection (or no longer looks like it); nothing was done."""


class Kind:
    """A kind of directory the collection makes: its name (in the marker and in messages), its mode, and what an
    earlier maker (a release before markers, or the dokku-litestream plugin, whose install runs chown -R dokku:dokku
    on /var/lib/dokku/config/litestream) may have left: other modes, other owners, and the entries it holds
    (entry_ok(dir_fd, name, lstat) -> bool; None: anything, then its marker alone tells it is ours). ``main``: an
    entry (name, or a predicate as entry_ok) such a directory must hold, so an empty one is never taken over."""

    def __init__(self, name, entry_ok, main=None, mode=0o700, legacy_modes=(), legacy_users=("dokku",)):
        self.name = name
        self.mode = mode
        self.modes = (mode,) + tuple(legacy_modes)
        self.entry_ok = entry_ok
        self.main = main
        self.legacy_users = legacy_users

    def legacy_uids(self):
        """The owners an unmarked directory of this kind may have: us, and the legacy users this host has."""
        uids = [os.geteuid()]
        for name in self.legacy_users:
            try:
                uids.append(pwd.getpwnam(name).pw_uid)
            except KeyError:
                pass
        return uids

    def is_main(self, fd, name, st):
        return self.main(fd, name, st) if callable(self.main) else name == self.main


def own_files(*names):
    """entry_ok for a directory of these regular files (and their temporary files, left only by a crash)."""
    pattern = re.compile("(?:%s)|%s" % ("|".join(re.escape(n) for n in names), _TMP % "|".join(re.escape(n) for n in names)))
    return lambda fd, name, st: bool(pattern.fullmatch(name)) and stat.S_ISREG(st.st_mode)


def _credential_set_entry(fd, name, st):
    """A credentials root's directory is a credential set only when it passes that kind's own check."""
    if not stat.S_ISDIR(st.st_mode) or not CREDENTIAL_SET_RE.fullmatch(name):
        return False
    sub = os.open(name, DIR_FLAGS, dir_fd=fd)
    try:
        return _problem(sub, CREDENTIAL_SET, adopting=True) is None
    finally:
        os.close(sub)


def _credentials_root_entry(fd, name, st):
    return _credential_set_entry(fd, name, st) or _PLUGIN_FILE(fd, name, st)


# the dokku-litestream plugin's two files, which litestream_auth's plugin_compat writes into the root
_PLUGIN_FILE = own_files("ACCESS_KEY_ID", "SECRET_ACCESS_KEY")
# the credential files a backend reads from a file (sftp's ssh_key, gs's service account) sit in both
_CREDENTIAL_FILES = tuple(sorted(backends.credential_files().values()))
APP_CONFIG = Kind("app configuration directory", own_files("litestream.yml", "credentials.env", *_CREDENTIAL_FILES),
                  main="litestream.yml")
CREDENTIAL_SET = Kind("credential set", own_files("credentials.json", *_CREDENTIAL_FILES), main="credentials.json")
# the plugin's own directory (its `litestream:auth` leaves it dokku:dokku, mode by the umask), which litestream_auth
# takes over with the plugin's files in it (README, "Migrating from the dokku-litestream plugin")
CREDENTIALS_ROOT = Kind("credentials root", _credentials_root_entry, main=_credentials_root_entry,
                        legacy_modes=(0o710, 0o750, 0o755, 0o775))
HEALTH_STATE = Kind("health state directory", own_files("state.json"), main="state.json", legacy_users=())
DRILL_RUN = Kind("drill run directory", None, legacy_users=())
# sftp_claims.py: the root-only directory of its sessions, and each session's directory (the private key, the
# pinned host key): whatever a session holds is removed with it, its marker alone tells it is ours
SFTP_SESSIONS = Kind("sftp sessions directory", None, legacy_users=())
SFTP_SESSION = Kind("sftp session directory", None, legacy_users=())


def _describe(st):
    return "mode %04o, owner %d:%d" % (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def _open_dir(path):
    """A descriptor of the directory itself (never a symlink's target); None when nothing is there."""
    try:
        return os.open(path, DIR_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise NotOurs("it is a symbolic link or not a directory")
        raise


def _marker(fd):
    """The kind named by the directory's marker, None without one; raises NotOurs for a marker that is not ours."""
    try:
        mfd = os.open(MARKER, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise NotOurs("its marker %s is a symbolic link or cannot be read" % MARKER)
    try:
        st = os.fstat(mfd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) != MARKER_MODE:
            raise NotOurs("its marker %s is not a 0600 file of ours (%s)" % (MARKER, _describe(st)))
        return os.read(mfd, 256).decode("utf-8", "replace").strip()
    finally:
        os.close(mfd)


def _problem(fd, kind, adopting):
    """Why the open directory is not ours (a text), or None. ``adopting``: also accept a directory whose marker is
    missing (or was taken from us: the plugin's install chowns its whole tree to dokku) that has the kind's owner and
    mode, as an earlier maker left it, and only the kind's entries."""
    st = os.fstat(fd)
    try:
        marked, unusable = _marker(fd), None
    except NotOurs as exc:
        marked, unusable = None, str(exc)
    if marked is not None and marked != kind.name:
        return "its marker names it %s, not %s" % (shown(marked), kind.name)
    if marked is not None and st.st_uid == os.geteuid():
        return _foreign_entry(fd, kind)
    if kind.entry_ok is None or not adopting:
        return unusable or ("it is not owned by this collection's user (%s)" % _describe(st) if marked else
                            "it has no marker %s, so this collection did not make it" % MARKER)
    if st.st_uid not in kind.legacy_uids():
        return unusable or "it is not owned by this collection's user (%s)" % _describe(st)
    if stat.S_IMODE(st.st_mode) not in kind.modes:
        return unusable or "it has no marker %s and is %s, not mode %04o as this collection makes it" % (
            MARKER, _describe(st), kind.mode)
    return _foreign_entry(fd, kind, need_main=True)


def _foreign_entry(fd, kind, need_main=False):
    """Why the directory holds what the kind never writes, or (need_main) lacks the kind's main entry (a text), or
    None."""
    has_main = False
    for entry in os.listdir(fd):
        if entry == MARKER:
            continue
        st = os.lstat(entry, dir_fd=fd)
        if kind.entry_ok is not None and not kind.entry_ok(fd, entry, st):
            return "it holds %s, which this collection did not write there" % shown(entry)
        has_main = has_main or (need_main and kind.is_main(fd, entry, st))
    if need_main and not has_main:
        return "it has no marker %s and holds nothing this collection writes there, so it did not make it" % MARKER
    return None


def problem(path, kind):
    """Why this collection may not remove or change the directory at path (a text), or None when it may (it is
    ours, or it does not exist). The one check every module runs before it removes, chmods or chowns a directory."""
    try:
        fd = _open_dir(path)
    except NotOurs as exc:
        return str(exc)
    if fd is None:
        return None
    try:
        return _problem(fd, kind, adopting=True)
    finally:
        os.close(fd)


def _mark(fd, kind):
    mfd = os.open(MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), MARKER_MODE, dir_fd=fd)
    try:
        os.fchmod(mfd, MARKER_MODE)
        os.write(mfd, (kind.name + "\n").encode("utf-8"))
        os.fsync(mfd)
    finally:
        os.close(mfd)


def mark(path, kind):
    """Mark a directory of ours, made or taken over by this run (a marker that is not ours is replaced, after the
    directory passed the kind's check on this very handle); raises NotOurs when it does not pass."""
    fd = _open_dir(path)
    try:
        reason = _problem(fd, kind, adopting=True)
        if reason:
            raise NotOurs("refusing to mark %s as the %s: %s" % (path, kind.name, reason))
        _remark(fd, kind)
    finally:
        os.close(fd)


def _remark(fd, kind):
    """The kind's marker in a directory that passed its check: kept when ours, replaced when not (the plugin's
    chown -R takes it), written when missing."""
    try:
        _marker(fd)
    except NotOurs:
        os.unlink(MARKER, dir_fd=fd)
    try:
        _mark(fd, kind)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise


def problem_fd(fd, kind):
    """problem() for a directory already open (an earlier check's handle)."""
    return _problem(fd, kind, adopting=True)


def make(path, mode, uid=0, gid=0, kind=None):
    """Make a directory with this mode and owner (and the kind's marker), through its handle: a directory swapped in
    between the mkdir and the chown (by a user who may write the parent) is refused, never changed."""
    os.mkdir(path, 0o700)
    fd = _open_dir(path)
    try:
        if fd is None or os.fstat(fd).st_uid != os.geteuid() or os.listdir(fd):
            raise NotOurs("refusing to use %s: it was replaced while this run made it (nothing was changed)" % path)
        if (uid, gid) != (os.geteuid(), os.getegid()):
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)  # after chown, which may clear set-id bits
        if kind is not None:
            _mark(fd, kind)
    finally:
        if fd is not None:
            os.close(fd)


def ensure(path, kind, uid=0, gid=0):
    """The directory at path, made (with missing parents 0700) and marked when missing; an existing one only when
    it is ours, its mode and owner fixed through its descriptor. True when the mode or owner changed or it was made."""
    parent = os.path.dirname(path.rstrip("/"))
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, 0o700)  # only what is missing: an existing parent is never changed
    try:
        make(path, kind.mode, uid, gid, kind)
        return True
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
    try:
        fd = _open_dir(path)
        reason = _problem(fd, kind, adopting=True)
    except NotOurs as exc:
        fd, reason = None, str(exc)
    if reason:
        if fd is not None:
            os.close(fd)
        raise NotOurs("refusing to use %s as the %s: %s (nothing was changed)" % (path, kind.name, reason))
    try:
        return _fix(fd, kind, uid, gid)
    finally:
        os.close(fd)


def _fix(fd, kind, uid, gid):
    """Mode and owner of a directory that passed the kind's check on this handle; its marker written (or one that is
    not ours replaced: the plugin's chown -R takes it). True when the mode or owner changed."""
    changed = False
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.fchown(fd, uid, gid)
        changed = True
    if stat.S_IMODE(os.fstat(fd).st_mode) != kind.mode:  # after chown, which may clear set-id bits
        os.fchmod(fd, kind.mode)
        changed = True
    _remark(fd, kind)
    return changed


def make_temp(parent, prefix, kind, hold=False):
    """A new directory of ours inside parent (mkdtemp: a fresh name, 0700), marked; its path, or with ``hold`` (path,
    handle) where the handle holds an exclusive flock for as long as it is open: remove_stale() then leaves the
    directory alone. The lock is taken before the marker is written, so no other run ever sees it marked and free.
    The parent is made when missing, never changed when it exists."""
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o700)
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    fd = _open_dir(path)
    try:
        if hold:
            fcntl.flock(fd, fcntl.LOCK_EX)
        _mark(fd, kind)
    except BaseException:
        os.close(fd)
        raise
    if hold:
        return path, fd
    os.close(fd)
    return path


def remove_stale(parent, prefix, kind):
    """Remove the directories of ours in parent whose names start with prefix and whose maker is gone (no process
    holds its flock: a run killed, or stopped by a reboot); their paths. Anything else is left as it is."""
    removed = []
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return removed
    for name in names:
        if not name.startswith(prefix):
            continue
        path = os.path.join(parent, name)
        try:
            fd = _open_dir(path)
        except NotOurs:
            continue
        if fd is None:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by a run that is still going: not stale
            if _problem(fd, kind, adopting=False) is None:
                remove(path, kind)
                removed.append(path)
        except (IOError, OSError):
            pass
        finally:
            os.close(fd)
    return removed


def remove(path, kind):
    """Remove a directory of ours: checked first, then (for a kind with known files) each of its files and the
    marker, then the empty directory; a drill run is removed whole. Nothing is removed when the check fails."""
    try:
        fd = _open_dir(path)
    except NotOurs as exc:
        raise NotOurs("refusing to remove %s: %s (nothing was removed)" % (path, exc))
    if fd is None:
        return
    try:
        reason = _problem(fd, kind, adopting=True)
        if reason:
            raise NotOurs("refusing to remove %s: %s (nothing was removed)" % (path, reason))
        for entry in os.listdir(fd):
            _remove_entry(fd, entry)  # a kind with known entries: those, checked above; a drill run: anything
    finally:
        os.close(fd)
    os.rmdir(path)


def _remove_entry(fd, entry):
    """Remove entry of the open directory fd, a directory with all it holds; a symlink is removed, never followed
    (shutil.rmtree takes dir_fd only from Python 3.11)."""
    if not stat.S_ISDIR(os.lstat(entry, dir_fd=fd).st_mode):
        os.unlink(entry, dir_fd=fd)
        return
    sub = os.open(entry, DIR_FLAGS, dir_fd=fd)
    try:
        for name in os.listdir(sub):
            _remove_entry(sub, name)
    finally:
        os.close(sub)
    os.rmdir(entry, dir_fd=fd)
