# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads of an app's storage directory on the host, through handles (never following a link the app may have
placed there): which SQLite databases it holds that the inventory does not replicate."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

SQLITE_HEADER = b"SQLite format 3\x00"
# the side files of a database (each judged with its database), and what the restore moves aside
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
BACKUP_MARK = ".bak"
# an app that writes a file it does not replicate writes it often; a day finds a quiet one too
RECENT_SECONDS = 24 * 3600
# a storage directory is the app's: read no more of it than this
MOST_ENTRIES = 2000


def unlisted_databases(storage_dir, databases, now, recent=RECENT_SECONDS):
    """[(file name, seconds since its last write)] of the SQLite databases in storage_dir that `databases` does not
    list and that were written (the file or its -wal) within `recent` seconds; [] when the directory cannot be read
    (a missing directory is the check's other finding)."""
    try:
        fd = os.open(storage_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return []
    try:
        names = sorted(_names(fd))
        found = []
        for name in names:
            if name in databases or name.endswith(SIDE_SUFFIXES) or BACKUP_MARK in name or name.startswith("."):
                continue
            written = _written_at(fd, name)
            if written is not None and now - written <= recent and _is_sqlite(fd, name):
                found.append((name, max(0, int(now - written))))
        return found
    finally:
        os.close(fd)


def _names(fd):
    names = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if len(names) >= MOST_ENTRIES:
                break
            if entry.is_file(follow_symlinks=False):
                names.append(entry.name)
    return names


def _written_at(fd, name):
    """The newest modification time of the file and its -wal; None when the file is gone or not a regular file."""
    times = []
    for candidate in (name, name + "-wal"):
        try:
            st = os.stat(candidate, dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            times.append(st.st_mtime)
        elif candidate == name:
            return None
    return max(times) if times else None


def _is_sqlite(fd, name):
    """The file starts with SQLite's header (read through a handle: a fifo or a link placed meanwhile is no file)."""
    try:
        handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    except OSError:  # gone, a link, unreadable: not a database this check can name
        return False
    try:
        return stat.S_ISREG(os.fstat(handle).st_mode) and os.read(handle, len(SQLITE_HEADER)) == SQLITE_HEADER
    finally:
        os.close(handle)
