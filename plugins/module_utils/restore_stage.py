# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The directories of one restore, through checked handles: dest (and its missing parents) and the stage, the
root-only directory Litestream restores into.

dest belongs to the app's user, who may rename or replace anything in it at any moment. So the stage is made next
to dest, in the nearest directory above it that the app's user cannot write (on dest's own mount, so the restored
file is renamed from it into dest), and every directory made, changed or written into - dest's missing parents,
dest, the stage - is opened once without following a link and then used only through that descriptor."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import errno
import os
import stat

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_report import StepFailed

STAGE_PREFIX = ".litestream-restore-"
# a directory opened as itself: a symbolic link there is refused (ELOOP), never followed
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


class Stage:
    """dest and the stage of one restore. ``request``: restore_plan.Request (its dest and name are read once it is
    validated); ``ownership``: a function that returns the (uid, gid) of what the restore makes."""

    def __init__(self, request, ownership):
        self.request = request
        self.ownership = ownership
        self.path = None       # the stage's path (docker mounts it by its path)
        self.fd = None         # the stage, opened once and checked: later paths go through this handle
        self.at = None         # (descriptor of the directory holding the stage, the stage's name, (st_dev, st_ino))
        self.dest_fd = None    # dest, opened once by make_dest(): the restored file is put in place through it
        self.dir_fds = []      # every directory descriptor this run holds (dest's, its parents'), closed at the end
        self.created_dirs = []  # (descriptor of the parent, name) of each directory this run made, outermost first

    def make_dest(self):
        """Open dest once (self.dest_fd), making it and its missing parents first. Each directory made here is made
        through the descriptor of the one above it, opened without following a link, checked to be the directory
        just made (ours, root's) and only then given its mode and owner through its own descriptor: a link or another
        directory put in its place meanwhile is refused, never followed. A link at dest itself is refused too."""
        missing = []
        path = self.request.dest.rstrip("/") or "/"
        while not os.path.isdir(path) and not os.path.islink(path):
            missing.append(os.path.basename(path))
            path = os.path.dirname(path)
        # an existing parent is the user's path and is followed as any path is; dest itself never is
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY) if missing else self.open_dir(path, None, path)
        fd = self.hold(top, path)
        for name in reversed(missing):
            path = os.path.join(path, name)
            fd = self.make_dir(fd, name, path)
        self.dest_fd = fd

    def make_dir(self, parent_fd, name, path):
        """The directory `name` in parent_fd, made (0755, the restore's owner) unless it is there; its descriptor."""
        made = True
        try:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
        except OSError as exc:
            # another restore (litestream_drill runs several at once) made the same parent meanwhile
            if exc.errno != errno.EEXIST:
                raise
            made = False
        child = self.hold(self.open_dir(name, parent_fd, path), path)
        if made:
            st = os.fstat(child)
            if st.st_uid != os.geteuid():
                raise StepFailed("%s was replaced while this run made it (it now belongs to uid %d); refusing to "
                                 "change its mode or owner" % (path, st.st_uid))
            self.created_dirs.append((parent_fd, name))
            os.fchmod(child, 0o755)
            os.fchown(child, *self.ownership())
        return child

    def hold(self, fd, path):
        """Keep a directory descriptor until cleanup(); refuse anything but a directory (a link, a file)."""
        self.dir_fds.append(fd)
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise StepFailed("%s is not a directory" % path)
        return fd

    @staticmethod
    def open_dir(name, dir_fd, path):
        """The directory `name` in dir_fd, opened as itself; fails on a symbolic link there, naming `path`."""
        try:
            return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):  # Linux says ENOTDIR for a link with O_DIRECTORY
                raise
            if exists_at(dir_fd, name) and stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
                raise StepFailed("%s is a symbolic link; the restore does not follow a link there (give the "
                                 "directory it points to)" % path)
            raise StepFailed("%s is not a directory" % path)

    def app_ids(self):
        """The uids and gids that may act for the app in dest (its owner, the restored file's owner): never root."""
        st = os.fstat(self.dest_fd)
        uids = set((st.st_uid, self.ownership()[0])) - set((0,))
        gids = set((st.st_gid, self.ownership()[1])) - set((0,))
        return uids, gids

    def parent(self):
        """(path, descriptor) of the directory the stage is made in: the deepest one above dest that is on dest's
        mount and that, like every directory above it, the app's user cannot write (it could rename the stage or a
        directory on its way and put a link there before docker mounts it). dest itself when there is none (dest is
        a mount point of its own): check() then checks the stage before and after docker mounts it."""
        dest = self.request.dest
        real = os.path.realpath(dest)
        dest_st = os.fstat(self.dest_fd)
        try:
            real_st = os.stat(real)
        except OSError:
            real_st = None
        if real_st is None or (real_st.st_dev, real_st.st_ino) != (dest_st.st_dev, dest_st.st_ino):
            raise StepFailed("dest %s changed while the restore opened it" % dest)
        uids, gids = self.app_ids()
        found = None
        for path in ancestors(real):
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or writable_by(st, uids, gids):
                break
            if st.st_dev == dest_st.st_dev:
                found = (path, st)
        if found is not None:
            fd = self.hold(os.open(found[0], DIR_FLAGS), found[0])
            st = os.fstat(fd)
            same = mount_id(fd) == mount_id(self.dest_fd)  # on one mount: a rename from there into dest works
            if (st.st_dev, st.st_ino) == (found[1].st_dev, found[1].st_ino) and same:
                return found[0], fd
        return real, self.dest_fd

    def make(self):
        """A fresh directory (0700 root, like mkdtemp) next to dest, opened once and checked: nobody else can place
        anything in it, and every later path goes through the open handle, so swapping it does not help."""
        parent, parent_fd = self.parent()
        for _attempt in range(100):
            name = STAGE_PREFIX + binascii.hexlify(os.urandom(6)).decode("ascii")
            try:
                os.mkdir(name, 0o700, dir_fd=parent_fd)
                break
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
        else:
            raise StepFailed("no free name for a stage directory in %s" % parent)
        self.path = os.path.join(parent, name)
        fd = self.open_dir(name, parent_fd, self.path)
        st = os.fstat(fd)
        # our own directory, or nothing of it is used (never removed either: `at` is only set for ours)
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
            os.close(fd)
            raise StepFailed("the stage directory %s was replaced while this run made it; refusing to use it"
                             % self.path)
        self.fd = fd
        self.at = (parent_fd, name, (st.st_dev, st.st_ino))

    def check(self, consequence):
        """Fail unless the stage's path still names the stage this run made (docker mounts it by its path)."""
        try:
            st = os.lstat(self.path)
        except OSError:
            st = None
        if st is None or not stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) != self.at[2]:
            raise StepFailed("the stage directory %s was moved away or replaced (by a link or another directory): %s"
                             % (self.path, consequence))

    def proc_path(self, name):
        """A path to `name` in the stage through the stage's descriptor, for what opens files by path (SQLite)."""
        return "/proc/self/fd/%d/%s" % (self.fd, name)

    def open_file(self, name):
        """The restored file, opened without following a symlink; fails unless it is a regular file."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StepFailed("the restored file is a symbolic link; refusing to touch it (nothing was put in "
                                 "place)")
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise StepFailed("the restored file is not a regular file; refusing it (nothing was put in place)")
        return fd

    def cleanup(self, restored, close):
        """Remove the stage and, unless the file was restored, the directories made for it. The descriptors are
        closed only when `close` (by the thread that runs the restore: litestream_drill cleans up after a signal
        from its main thread, while a worker may still use them, and a closed number reused by another open would
        send that worker's next rename elsewhere; its process ends right after)."""
        if self.fd is not None:
            try:
                empty_dir(self.fd)
            except OSError:
                pass
        if self.at is not None:
            parent_fd, name, identity = self.at
            try:
                st = os.lstat(name, dir_fd=parent_fd)
                if stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == identity:
                    os.rmdir(name, dir_fd=parent_fd)  # emptied above; only ever our own, empty, directory
            except OSError:
                pass  # gone, or no longer ours (swapped for a link): never follow it
        if not restored:
            for parent_fd, name in reversed(self.created_dirs):
                try:
                    os.rmdir(name, dir_fd=parent_fd)  # only while empty: never anything but our own directory
                except OSError:
                    break
        if close:
            self.close()

    def close(self):
        self.created_dirs = []
        self.path = self.at = self.dest_fd = None
        for fd in ([self.fd] if self.fd is not None else []) + self.dir_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fd = None
        self.dir_fds = []


def exists_at(dir_fd, name):
    """Whether dir_fd holds an entry `name` (a link counts as itself, never followed)."""
    try:
        os.lstat(name, dir_fd=dir_fd)
    except OSError:
        return False
    return True


def empty_dir(fd):
    """Remove everything inside the open directory fd, through descriptors: a link is removed, never followed."""
    for name in os.listdir(fd):
        st = os.lstat(name, dir_fd=fd)
        if stat.S_ISDIR(st.st_mode):
            child = os.open(name, DIR_FLAGS, dir_fd=fd)
            try:
                empty_dir(child)
            finally:
                os.close(child)
            os.rmdir(name, dir_fd=fd)
        else:
            os.unlink(name, dir_fd=fd)


def ancestors(path):
    """'/', '/a', '/a/b' for '/a/b/c': every directory above path, outermost first ([] for '/')."""
    parts = [part for part in path.split("/") if part]
    if not parts:
        return []
    return ["/"] + ["/" + "/".join(parts[:i + 1]) for i in range(len(parts) - 1)]


def writable_by(st, uids, gids):
    """Whether a user of uids/gids (or anyone) may rename the entries of the directory that st describes. Its owner
    can always (a chmod away); in a sticky directory (/tmp) nobody else can rename another user's entry."""
    if st.st_uid in uids:
        return True
    if st.st_mode & stat.S_ISVTX:
        return False
    return bool(st.st_mode & stat.S_IWOTH or (st.st_mode & stat.S_IWGRP and st.st_gid in gids))


def mount_id(fd):
    """The id of the mount that the open file fd is on (/proc/self/fdinfo, Linux 3.15+); None when unknown."""
    try:
        with open("/proc/self/fdinfo/%d" % fd) as handle:
            for line in handle:
                if line.startswith("mnt_id:"):
                    return int(line.split()[1])
    except (IOError, OSError, ValueError):
        pass
    return None
