# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module shares: the common argument spec and safe file writes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile


def common_argument_spec():
    return dict(
        dokku_binary=dict(type="str", default="dokku"),
        docker_binary=dict(type="str", default="docker"),
    )


def text_diff(before, after, header):
    """One entry of a module's diff in Ansible's text form, so --diff shows lines (not one JSON string with
    \\n escapes). before/after are texts (already redacted) or None for a file that does not exist."""
    return {"before": before or "", "after": after or "", "before_header": header, "after_header": header}


def state_text(state):
    """Non-text state (a container, a set's fields) as indented JSON lines for text_diff."""
    return json.dumps(state, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def read_text(path):
    """File content, or None when the file does not exist."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == 2:
            return None
        raise


def file_needs_fix(path, mode, uid=0, gid=0):
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_mode & 0o7777) != mode or (st.st_uid, st.st_gid) != (uid, gid)


def write_atomic(path, content, mode=0o600, uid=0, gid=0):
    """Write a file so that readers see the old or the new content, never half of it.

    The temporary file is created with the final mode from the start, so a secret is never
    readable by anyone else, not even for a moment.
    """
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        os.fchmod(fd, mode)
        os.fchown(fd, uid, gid)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # not the locale's: a C locale cannot write an emoji
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
