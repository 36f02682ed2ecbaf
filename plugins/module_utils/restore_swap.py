# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Putting a verified restore in place: its owner and mode, then the old database (and its -wal, -shm and state
directory) moved aside to a timestamped backup and the new file renamed in, all through dest's descriptor;
undone when a rename fails."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore as rs
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.dokku import owner_uid
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_report import StepFailed
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_stage import exists_at

HEROKUISH_UID = v.CHOWN_NAMES["herokuish"]  # the owner when neither owner/group nor chown is given


def owner_ids(params, dest, userns_remap):
    """(uid, gid) for the restored file and the directories made for it: from chown (a name, or 'false' for dest's
    own owner), else owner/group (herokuish's by default). `userns_remap` is read only for a chown name."""
    chown = params["chown"]
    if chown is None:
        return tuple(HEROKUISH_UID if params[o] is None else params[o] for o in ("owner", "group"))
    if chown == "false":
        st = os.stat(dest) if os.path.isdir(dest) else None
        return (st.st_uid, st.st_gid) if st else (0, 0)
    uid = owner_uid(chown, userns_remap())
    return (uid, uid)


def settle(fd, owner, mode):
    """Give the open restored file its owner and mode and write it to disk; returns its size."""
    os.fchown(fd, *owner)
    os.fchmod(fd, mode)  # after fchown, which may clear mode bits
    fsync_fd(fd)
    return os.fstat(fd).st_size


def fsync_fd(fd):
    os.fsync(fd)


def backup_stamp(dest_fd, name, existing):
    """A timestamp no backup of `existing` in dest holds yet (-2, -3, ... after it when one does)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate, n = stamp, 1
    while any(exists_at(dest_fd, rs.backup_path(p, "", name, candidate)) for p in existing):
        n += 1
        candidate = "%s-%d" % (stamp, n)
    return candidate


def put_in_place(stage_fd, dest_fd, dest, name):
    """Move the old files aside (replace), then the verified file from the stage into place; undo on failure.
    Every name is taken in dest's own descriptor: nothing here follows a link or leaves dest. Returns the backups'
    paths."""
    existing = [entry for entry in rs.file_names(name) if exists_at(dest_fd, entry)]
    moved = []  # (old name, or None while the old file is still in place too, backup name)
    try:
        if name in existing:
            replace(stage_fd, dest_fd, name, existing, moved)
        else:
            if existing:
                move_aside(dest_fd, name, existing, backup_stamp(dest_fd, name, existing), moved)
            link_into_place(stage_fd, dest_fd, name)
    except OSError as exc:
        undo(dest_fd, moved)
        raise StepFailed("putting the restored file in place failed (%s); the existing files were put back" % exc)
    try:
        fsync_fd(dest_fd)
    except OSError:
        pass
    return [os.path.join(dest, new) for _old, new in moved]


def move_aside(dest_fd, name, existing, stamp, moved):
    """The sidecars and the state directory first: a stale -wal must never meet the new file."""
    for entry in [e for e in existing if e != name]:
        new = rs.backup_path(entry, "", name, stamp)
        os.rename(entry, new, src_dir_fd=dest_fd, dst_dir_fd=dest_fd)
        moved.append((entry, new))


def replace(stage_fd, dest_fd, name, existing, moved):
    """The old database to its backup name and the new one in its place; the old file stays visible until the new
    one replaces it (a link is linked as a link)."""
    stamp = backup_stamp(dest_fd, name, existing)
    move_aside(dest_fd, name, existing, stamp, moved)
    new = rs.backup_path(name, "", name, stamp)
    try:
        os.link(name, new, src_dir_fd=dest_fd, dst_dir_fd=dest_fd, follow_symlinks=False)
        moved.append((None, new))
    except OSError:
        os.rename(name, new, src_dir_fd=dest_fd, dst_dir_fd=dest_fd)
        moved.append((name, new))
    os.rename(name, name, src_dir_fd=stage_fd, dst_dir_fd=dest_fd)
    if moved[-1][0] is None:
        moved[-1] = (name, new)


def undo(dest_fd, moved):
    """Put back what was moved aside (a backup that is only a second link to a file still in place is removed)."""
    for old, new in reversed(moved):
        try:
            if old is None:
                os.unlink(new, dir_fd=dest_fd)
            elif not exists_at(dest_fd, old):
                os.rename(new, old, src_dir_fd=dest_fd, dst_dir_fd=dest_fd)
        except OSError:
            pass


def link_into_place(stage_fd, dest_fd, name):
    """Rename from the stage into dest that refuses to overwrite: a file that appeared meanwhile is never clobbered."""
    try:
        os.link(name, name, src_dir_fd=stage_fd, dst_dir_fd=dest_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise
        os.rename(name, name, src_dir_fd=stage_fd, dst_dir_fd=dest_fd)  # no hard links on this filesystem
        return
    os.unlink(name, dir_fd=stage_fd)
