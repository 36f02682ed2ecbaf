# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Destructive file operations that only ever act strictly inside one of the collection's roots.

Private to this collection. Whether a directory is the collection's to remove or change at all is
owned.py's question; this module keeps each act on an entry inside a directory that is: the path's
directory is resolved (os.path.realpath) and the operation is refused unless the entry lies strictly
inside the resolved root that the caller names (config_root, credentials_root, a drill's run
directory), never the root itself. The last component is not followed: a symlink is acted on as a
link (unlink) or refused (rmtree, chmod).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import stat

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors


class OutsideRoot(errors.UnsafePath):
    """A destructive operation would touch something outside the collection's root; nothing was done."""


def checked(path, root, what):
    """The entry's path with its directory resolved, after checking it lies strictly inside root."""
    real_root = os.path.realpath(root)
    path = os.path.normpath(path)
    base = os.path.basename(path)
    entry = os.path.join(os.path.realpath(os.path.dirname(path)), base)
    if real_root == "/" or base in ("", ".", "..") or not entry.startswith(real_root.rstrip("/") + "/"):
        raise OutsideRoot("refusing to %s %s: it is not inside %s, the directory this task manages"
                          % (what, path, root))
    return entry


def remove_tree(path, root):
    entry = checked(path, root, "remove")
    st = os.lstat(entry)
    if not stat.S_ISDIR(st.st_mode):  # a symlink or a file where our directory should be
        raise OutsideRoot("refusing to remove %s: it is not a directory" % path)
    shutil.rmtree(entry)


def unlink(path, root):
    os.unlink(checked(path, root, "remove"))


def chmod(path, mode, root):
    entry = checked(path, root, "change the mode of")
    if os.path.islink(entry):
        raise OutsideRoot("refusing to change the mode of %s: it is a symbolic link" % path)
    os.chmod(entry, mode)


def chown(path, uid, gid, root):
    entry = checked(path, root, "change the owner of")
    os.lchown(entry, uid, gid)
