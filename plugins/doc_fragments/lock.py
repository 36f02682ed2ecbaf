# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared documentation for the modules that take a host lock (module_utils/lock.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  lock_timeout:
    description:
      - Seconds to wait for another run on the same host that is changing the same thing (the same app, the
        credential sets, the same restore target). Two runs take turns instead of racing; the second one then
        finds the work done and changes nothing.
      - The lock is C(flock(2)) on a root-only file in C(/run/lock/dokku-sqlite-litestream/) (C(app-<app>.lock),
        C(credentials.lock), C(restore-<path>.lock)), held from reading the current state to the last write,
        and released when the module ends however it ends. C(flock <file> <command>) on the host takes the same
        lock, to keep these modules away while doing something by hand.
      - The module creates that directory owned by root with mode C(0700). Since C(/run/lock) is world-writable, a
        directory found there that is a symlink, not a directory, owned by another user, or writable by its group or
        by everyone is refused with a message naming it (remove it and run again), never used.
      - When the lock is still held after this many seconds the task fails with a message that names the lock
        file and the process holding it. V(0) fails at once when the lock is held; at most V(86400) (a day).
      - Check mode writes nothing and takes no lock.
    type: int
    default: 300
"""
