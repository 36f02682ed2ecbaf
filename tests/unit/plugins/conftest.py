# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the module_utils and module tests: another process holding a host lock."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys

import pytest

HOLDER = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


class Holder:
    """Another process holding the flock for `seconds` (or until stopped)."""

    def __init__(self, path, seconds=60):
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, path, str(seconds)], stdout=subprocess.PIPE,
                                     universal_newlines=True)
        assert self.proc.stdout.readline().strip() == "locked"

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def holders():
    started = []

    def start(path, seconds=60):
        holder = Holder(str(path), seconds)
        started.append(holder)
        return holder
    yield start
    for holder in started:
        holder.stop()
