# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One credential set on disk: read it once, plan the wanted files, diff, then act (unless in check mode).

Shared by litestream_auth (one set) and litestream_host (every set of the host, in the same run as the
apps). Failures raise CredentialFailure, so a host-level run reports them with the set's name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import json
import os
import pwd
import stat

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import state_text, text_diff
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import guarded, owned
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import (
    CREDENTIALS_FILE, FIELDS, FILE_FIELDS, JSON_FIELDS, SECRET_FIELDS)


class CredentialFailure(errors.CollectionError):
    """The set cannot be written or removed; the message names the path, never a secret."""

    def __init__(self, msg, name, path):
        super(CredentialFailure, self).__init__(msg)
        self.name = name
        self.path = path


# file name in credentials_root -> field, as the dokku-litestream plugin reads them
PLUGIN_FILES = (("ACCESS_KEY_ID", "access_key_id"), ("SECRET_ACCESS_KEY", "secret_access_key"))
REDACTED = "<redacted>"
ELLIPSIS = u"\u2026"
DIR_MODE = 0o700
FILE_MODE = 0o600
COMPAT_ROOT_MODE = 0o710    # root:dokku, the dokku user may open the plugin files but not list
COMPAT_PARENT_MODE = 0o711  # parents created for plugin_compat: traversable, not listable


def dokku_ids():
    """(uid, gid) of the dokku user, or None when the host has none."""
    try:
        entry = pwd.getpwnam("dokku")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def show(field, value):
    """How a field's value appears in a diff."""
    if field in SECRET_FIELDS:
        return REDACTED
    if field == "access_key_id":
        return value[:4] + ELLIPSIS
    return value


def owner_name(uid, gid):
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return "%s:%s" % (user, group)


def describe(mode, uid, gid):
    return "%04o %s" % (mode, owner_name(uid, gid))


def lstat_or_none(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


class LitestreamAuth(object):
    """Read the stored set once, compute the wanted one, diff them, then act (unless in check mode)."""

    def __init__(self, params, check_mode, want_diff=False):
        self.check_mode = check_mode
        self.want_diff = want_diff
        self.name = params["name"]
        self.state = params["state"]
        self.root = v.collection_root(params["credentials_root"], "credentials_root")
        self.path = os.path.join(self.root, self.name)
        self.plugin_compat = params["plugin_compat"]
        self.given = dict((f, params[f]) for f in FIELDS if params.get(f) is not None)
        for field in FILE_FIELDS:  # a file of its own ends with a newline (an OpenSSH key must)
            if field in self.given and not self.given[field].endswith("\n"):
                self.given[field] += "\n"
        self.dokku = dokku_ids()
        self.current = {}        # field -> stored value
        self.ops = []            # planned operations, applied in order
        self.before_files = {}   # path -> "0600 root:root"
        self.after_files = {}

    # ---- reading -------------------------------------------------------------------------------
    def fail(self, msg):
        raise CredentialFailure(msg, self.name, self.path)

    def read_bytes(self, path):
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except OSError as exc:
            self.fail("cannot read %s: %s" % (path, exc.strerror))

    def read(self):
        """Load the stored fields of the set (the files are root-only; this module runs as root)."""
        st = lstat_or_none(self.path)
        if st is None:
            return
        if not stat.S_ISDIR(st.st_mode):
            self.fail("%s exists and is not a directory; refusing to touch it" % self.path)
        cred = os.path.join(self.path, CREDENTIALS_FILE)
        st = lstat_or_none(cred)
        if st is not None and stat.S_ISREG(st.st_mode):
            try:
                data = json.loads(self.read_bytes(cred).decode("utf-8"))
            except ValueError:  # unreadable content is rewritten; never quote it (it may hold a secret)
                data = {}
            if isinstance(data, dict):
                for field in JSON_FIELDS:
                    if isinstance(data.get(field), str):
                        self.current[field] = data[field]
        for field, file_name in FILE_FIELDS.items():
            path = os.path.join(self.path, file_name)
            st = lstat_or_none(path)
            if st is not None and stat.S_ISREG(st.st_mode):
                self.current[field] = self.read_bytes(path).decode("utf-8", "replace")

    # ---- planning ------------------------------------------------------------------------------
    def want_dir(self, path, kind, mode, uid, gid, accept=()):
        """Plan a directory (of owned.py's ``kind``) with this mode and owner; ``accept`` lists other (mode, uid, gid)
        that are fine. An existing one is chmodded or chowned only when this collection made it."""
        st = lstat_or_none(path)
        wanted = describe(mode, uid, gid)
        if st is None:
            self.ops.append(("mkdir", path, mode, uid, gid, kind))
            self.after_files[path] = wanted
            return
        if not stat.S_ISDIR(st.st_mode):
            self.fail("%s exists and is not a directory; refusing to touch it" % path)
        have = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        self.before_files[path] = describe(*have)
        if have == (mode, uid, gid) or have in accept:
            self.after_files[path] = self.before_files[path]
            return
        problem = owned.problem(path, kind)
        if problem:
            self.fail("%s: refusing to change the mode or owner of %s (%s): %s; nothing was changed. Give a directory "
                      "of its own for the credential sets%s" % (
                          "credentials_root" if path == self.root else "name", path, self.before_files[path], problem,
                          "" if path == self.root else " or another set name"))
        # what was checked is what is changed: the same directory (device, inode), checked again through its handle
        self.ops.append(("fix", path, mode, uid, gid, kind, (st.st_dev, st.st_ino)))
        self.after_files[path] = wanted

    def want_file(self, path, data, mode, uid, gid):
        """Plan a regular file with exactly this content, mode and owner."""
        st = lstat_or_none(path)
        self.after_files[path] = describe(mode, uid, gid)
        if st is not None:
            self.before_files[path] = describe(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        if st is None or not stat.S_ISREG(st.st_mode) or self.read_bytes(path) != data:
            self.ops.append(("write", path, data, mode, uid, gid))
        elif (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) != (mode, uid, gid):
            self.ops.append(("fix", path, mode, uid, gid))

    def want_gone(self, path):
        st = lstat_or_none(path)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            self.fail("%s is a directory; refusing to remove it" % path)
        self.before_files[path] = describe(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        self.ops.append(("unlink", path))

    def missing_parents(self):
        """Ancestors of credentials_root that do not exist yet, outermost first."""
        missing = []
        parent = os.path.dirname(self.root)
        while parent and lstat_or_none(parent) is None and parent != os.path.dirname(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        return list(reversed(missing))

    def plan_present(self):
        compat = self.plugin_compat and self.dokku is not None
        parent_mode = COMPAT_PARENT_MODE if compat else DIR_MODE
        for parent in self.missing_parents():
            self.ops.append(("mkdir", parent, parent_mode, 0, 0, None))
            self.after_files[parent] = describe(parent_mode, 0, 0)
        if compat:
            self.want_dir(self.root, owned.CREDENTIALS_ROOT, COMPAT_ROOT_MODE, 0, self.dokku[1])
        else:
            accept = [(COMPAT_ROOT_MODE, 0, self.dokku[1])] if self.dokku else []
            self.want_dir(self.root, owned.CREDENTIALS_ROOT, DIR_MODE, 0, 0, accept)
        self.want_dir(self.path, owned.CREDENTIAL_SET, DIR_MODE, 0, 0)
        stored = dict((f, v) for f, v in self.given.items() if f in JSON_FIELDS)
        content = json.dumps(stored, indent=2, sort_keys=True) + "\n"
        self.want_file(os.path.join(self.path, CREDENTIALS_FILE), content.encode("utf-8"), FILE_MODE, 0, 0)
        for field, file_name in FILE_FIELDS.items():
            path = os.path.join(self.path, file_name)
            if field in self.given:
                self.want_file(path, self.given[field].encode("utf-8"), FILE_MODE, 0, 0)
            else:
                self.want_gone(path)
        if self.plugin_compat:
            uid, gid = self.dokku if compat else (0, 0)
            for filename, field in PLUGIN_FILES:
                data = (self.given[field] + "\n").encode("utf-8")
                self.want_file(os.path.join(self.root, filename), data, FILE_MODE, uid, gid)

    def plan_absent(self):
        st = lstat_or_none(self.path)
        if st is not None:
            problem = owned.problem(self.path, owned.CREDENTIAL_SET)
            if problem:
                self.fail("name: refusing to remove the set %s: %s (nothing was removed; is credentials_root right?)"
                          % (self.path, problem))
            entries = [os.path.join(self.path, entry) for entry in sorted(os.listdir(self.path))]
            for full in entries:
                est = os.lstat(full)
                self.before_files[full] = describe(stat.S_IMODE(est.st_mode), est.st_uid, est.st_gid)
            self.before_files[self.path] = describe(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
            # file by file, then the empty directory: never a recursive removal
            self.ops.append(("remove set", self.path, entries))
        if self.plugin_compat:
            for filename, dummy in PLUGIN_FILES:
                self.want_gone(os.path.join(self.root, filename))

    # ---- acting --------------------------------------------------------------------------------
    @staticmethod
    def set_owner_mode(path, mode, uid, gid, kind=None, identity=None):
        """Through a descriptor that never follows a symlink: a parent writable by another user (the plugin's
        dokku-owned directory) cannot redirect the chown or chmod by swapping the path. A directory (``kind``) must be
        the one planned on (``identity``: device, inode) and pass owned.py's check again, on that handle."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags | (owned.DIR_FLAGS if kind is not None else 0))
        try:
            st = os.fstat(fd)
            if identity is not None and (st.st_dev, st.st_ino) != identity:
                raise owned.NotOurs("refusing to change the mode or owner of %s: it was replaced since it was checked "
                                    "(nothing was changed)" % path)
            problem = owned.problem_fd(fd, kind) if kind is not None and identity is not None else None
            if problem:
                raise owned.NotOurs("refusing to change the mode or owner of %s: %s (nothing was changed)"
                                    % (path, problem))
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)  # after chown, which may clear set-id bits
        finally:
            os.close(fd)

    @staticmethod
    def fsync_dir(path):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def write_atomic(self, path, data, mode, uid, gid):
        """Temp file in the same directory, 0600 from its creation, fsync, rename over the old file."""
        directory, base = os.path.split(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        while True:
            tmp = os.path.join(directory, ".%s.%s.tmp" % (base, os.urandom(6).hex()))
            try:
                fd = os.open(tmp, flags, 0o600)
                break
            except FileExistsError:
                continue
        try:
            with os.fdopen(fd, "wb") as handle:
                if (uid, gid) != (os.geteuid(), os.getegid()):
                    os.fchown(handle.fileno(), uid, gid)
                os.fchmod(handle.fileno(), mode)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self.fsync_dir(directory)

    def apply(self):
        for op in self.ops:
            kind, path = op[0], op[1]
            try:
                if kind == "mkdir":
                    owned.make(path, *op[2:])
                elif kind == "fix":
                    if path not in (self.root, self.path):
                        guarded.checked(path, self.root, "change the mode of")
                    self.set_owner_mode(path, *op[2:])
                    if len(op) > 5:
                        owned.mark(path, op[5])  # taken over from an earlier release: ours from now on
                elif kind == "write":
                    guarded.checked(path, self.root, "write")
                    self.write_atomic(path, *op[2:])
                elif kind == "unlink":
                    guarded.unlink(path, self.root)
                    self.fsync_dir(os.path.dirname(path))
                elif kind == "remove set":
                    guarded.checked(path, self.root, "remove")
                    owned.remove(path, owned.CREDENTIAL_SET)  # checked again, then file by file: never recursive
                    self.fsync_dir(os.path.dirname(path))
            except guarded.OutsideRoot as exc:
                self.fail(str(exc))
            except OSError as exc:  # the message names the path and the OS error, never file content
                self.fail("cannot %s %s: %s" % (kind, path, exc.strerror or exc))
        if self.state == "present":
            self.mark_taken_over()

    def mark_taken_over(self):
        """At a write, directories an earlier release made (they passed owned.py's check) get their marker."""
        for path, kind in ((self.root, owned.CREDENTIALS_ROOT), (self.path, owned.CREDENTIAL_SET)):
            try:
                if not os.path.lexists(os.path.join(path, owned.MARKER)):
                    owned.mark(path, kind)
            except (guarded.OutsideRoot, OSError) as exc:
                self.fail("cannot mark %s as this collection's: %s" % (path, exc))

    # ---- the whole run -------------------------------------------------------------------------
    def run(self):
        self.read()
        if self.state == "present":
            self.plan_present()
            wanted = self.given
        else:
            self.plan_absent()
            wanted = {}
        changed_fields = sorted(f for f in FIELDS if self.current.get(f) != wanted.get(f))
        changed = bool(self.ops)
        if changed and not self.check_mode:
            self.apply()
        result = dict(
            changed=changed,
            name=self.name,
            path=self.path,
            fields=sorted(wanted),
            changed_fields=changed_fields,
            files=[op[1] for op in self.ops],
        )
        if self.want_diff:
            result["diff"] = self.diff(wanted, changed_fields)
        return result

    def diff(self, wanted, changed_fields):
        before = dict((f, show(f, v)) for f, v in self.current.items())
        after = dict((f, show(f, v)) for f, v in wanted.items())
        for field in changed_fields:
            # a masked value hides the change; say so when both sides look alike
            if field in before and field in after and before[field] == after[field]:
                after[field] += " (changed)"
        before["files"] = self.before_files
        after["files"] = dict((p, d) for p, d in self.after_files.items())
        # text lines, so --diff shows which field or file changed (secrets redacted above)
        return text_diff(state_text(before), state_text(after), self.path)
