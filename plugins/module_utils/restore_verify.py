# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether what Litestream restored into the stage may be put in place: its exit status and file, the position
it reports, and the database itself (SQLite's integrity check, the tables and rows verify asks for). Each check
raises StepFailed with the words the user reads; nothing here writes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore as rs
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_report import (
    StepFailed, describe, last_line, no_space)


def check_exit(rc, out, err, docker, dest, free_space):
    """Fail when the restore exited non-zero; on a full disk `free_space()` removes the partial file first, so the
    free space shown is what the disk really has."""
    if rc == 0:
        return
    if rs.is_no_space(err) or rs.is_no_space(out):
        free_space()
        raise StepFailed(no_space(dest, "file was", "litestream restore failed: %s" % describe(docker, rc, out, err)))
    raise StepFailed("litestream restore failed: %s" % describe(docker, rc, out, err))


def written(path, out, err, if_replica_exists):
    """Whether Litestream wrote the file at `path`. False when it did not because the replica went away between
    the dry run and the restore and if_replica_exists accepts that; a failure when it did not for another reason."""
    if os.path.lexists(path):
        return True
    if if_replica_exists and (rs.is_no_backup(out) or rs.is_no_backup(err)):
        return False
    raise StepFailed("litestream restore exited 0 but wrote no file: %s" % last_line(out, err))


def restored_txid(out, v03):
    """The txid the restore reports it reached (Litestream 0.5's -json report), or None."""
    report = None if v03 else rs.parse_json_output(out)
    if isinstance(report, dict) and report.get("txid"):
        return report["txid"]
    return None


def inspect(path, integrity):
    """The restored database's tables (with their rows) and integrity, read by `path`."""
    try:
        return rs.inspect_database(path, integrity)
    except Exception as exc:  # sqlite3.Error and OSError alike: the file is no usable database
        raise StepFailed("the restored file is not a readable SQLite database: %s" % exc)


def check(inspected, tables, min_rows):
    """Fail (with what was read) unless the database has the tables and rows asked for and passed its check."""
    problems = rs.verification_problems(inspected, tables, min_rows)
    if problems:
        raise StepFailed("verification failed, nothing was put in place: %s" % "; ".join(problems),
                         tables=inspected["tables"], integrity=inspected["integrity"])
