# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of a restore one by one, without Ansible or docker: the request's checks, the planner against a stand-in
container, the report, the verification, the stage's directories and the swap. test_litestream_restore runs them
together through the module."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sqlite3
import stat

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import defaults
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore_core
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore_stage
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore_swap as swap
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore_verify as verify
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_plan import (
    Planner, Request, restore_argument_spec)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_report import Report, StepFailed

UID, GID = os.getuid(), os.getgid()
PLAN = {"min_txid": "0000000000000001", "max_txid": "0000000000000002",
        "files": [{"timestamp": "2026-11-25T12:00:00Z"}, {"timestamp": "2026-11-25T12:00:10Z"}]}


def params(tmp_path, **overrides):
    """litestream_restore's parameters as AnsibleModule hands them over: every option, defaults filled in."""
    given = dict((name, spec.get("default")) for name, spec in restore_argument_spec().items())
    given.update(dest=str(tmp_path / "dest"), credentials_root=str(tmp_path / "credentials"),
                 replica={"type": "file", "path": str(tmp_path / "replica")})
    given.update(overrides)
    return given


def request(tmp_path, **overrides):
    req = Request(params(tmp_path, **overrides))
    req.validate()
    return req


def write_db(path, count):
    conn = sqlite3.connect(str(path))
    conn.execute("create table events (id integer primary key)")
    conn.executemany("insert into events (id) values (?)", [(i,) for i in range(count)])
    conn.commit()
    conn.close()


class Docker:
    def __init__(self):
        self.commands = []


class Container:
    """Stands in for restore_container.LitestreamContainer: answers each Litestream run from a list."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.docker = Docker()
        self.runs = []

    def litestream(self, args, mount_dest, timeout=0, command="restore"):
        self.runs.append((command, args))
        self.docker.commands.append("docker run ... litestream %s %s" % (command, " ".join(args)))
        return self.answers.pop(0)


# --------------------------------------------------------------------------- the argument spec and the request
def test_the_argument_spec_takes_its_defaults_from_defaults_py():
    spec = restore_argument_spec()
    assert spec["database"]["default"] == defaults.DATABASE
    assert spec["credentials_root"]["default"] == defaults.CREDENTIALS_ROOT
    assert spec["image"]["default"] == defaults.IMAGE
    assert restore_core.restore_argument_spec() == spec  # still importable where the modules import it


def test_a_valid_request_is_normalised(tmp_path):
    req = request(tmp_path, database="app.sqlite3", txid="0x2",
                  verify={"tables": ["events"], "min_rows": {"events": "5"}})
    assert req.target == str(tmp_path / "dest" / "app.sqlite3") and req.txid == "0000000000000002"
    assert req.point_args() == ["-txid", "0000000000000002"] and req.point_in_time() == "at txid 0000000000000002"
    assert req.required_tables == ["events"] and req.min_rows == {"events": 5} and req.integrity == "quick"
    assert req.restore_args(dict(PLAN)) == ["-o", "/restore/app.sqlite3", "-json", "-txid", "0000000000000002"]


@pytest.mark.parametrize("overrides, message, named", [
    ({"timestamp": "2026-11-25T12:00:00Z", "txid": "2"}, "give either timestamp or txid, not both", True),
    ({"dest": "relative/dir"}, "dest", False),
    ({"image": "litestream/litestream:0.3.13", "txid": "2"},
     "txid: the image litestream/litestream:0.3.13 runs Litestream 0.3, which has no transaction ids", True),
    ({"image": "litestream/litestream:0.3.13",
      "replica": {"type": "sftp", "host": "h", "user": "u", "path": "/p", "host_key": "ssh-ed25519 AAAA"}},
     "image: litestream/litestream:0.3.13 runs Litestream 0.3, which reads s3 and file replicas here, not sftp", True),
    ({"verify": {"tables": [" "]}}, "verify.tables and verify.min_rows name tables: an empty name", True),
])
def test_a_refused_request_says_why_and_whether_its_target_is_known(tmp_path, overrides, message, named):
    req = Request(params(tmp_path, **overrides))
    with pytest.raises(StepFailed) as failed:
        req.validate()
    assert message in failed.value.msg
    assert (req.target is not None) == named  # the manager names the restore only once its target is known


def test_a_missing_replica_directory_means_a_dry_run_of_its_own(tmp_path):
    req = request(tmp_path)
    assert req.replica_dir_missing() and not req.one_run(check_mode=False)
    (tmp_path / "replica").mkdir()
    assert not req.replica_dir_missing() and req.one_run(check_mode=False) and not req.one_run(check_mode=True)


# --------------------------------------------------------------------------- the planner
def test_the_plan_is_the_dry_runs_summary(tmp_path):
    (tmp_path / "replica").mkdir()
    container = Container((0, json.dumps(PLAN), ""))
    summary = Planner(request(tmp_path), container).plan()
    assert summary["position"] == "0000000000000002" and summary["newest_file_time"] == "2026-11-25T12:00:10Z"
    assert container.runs[0][1][:2] == ["-dry-run", "-json"]


def test_no_backup_at_a_point_is_told_apart_from_no_backup_at_all(tmp_path):
    (tmp_path / "replica").mkdir()
    nothing = (1, "", "Error: no matching backup files available\n")
    container = Container(nothing, (0, json.dumps(PLAN), ""))
    with pytest.raises(StepFailed) as failed:
        Planner(request(tmp_path, txid="ff"), container).plan()
    assert failed.value.msg.endswith("holds transactions 0000000000000001 to 0000000000000002 (newest file "
                                     "2026-11-25T12:00:10Z); txid 00000000000000ff cannot be restored from it")
    assert Planner(request(tmp_path), Container(nothing)).plan() is None
    no_backup = Planner(request(tmp_path), Container()).no_backup()
    assert no_backup.extra == {"replica_missing": True} and "set if_replica_exists: true" in no_backup.msg


def test_an_unanswered_dry_run_is_an_unreachable_replica(tmp_path):
    (tmp_path / "replica").mkdir()
    container = Container((124, "", "dial tcp: i/o timeout\n"))
    with pytest.raises(StepFailed) as failed:
        Planner(request(tmp_path, dry_run_timeout=5), container).plan()
    assert "is unreachable: no answer within 5 s (dry_run_timeout)" in failed.value.msg
    assert "dial tcp: i/o timeout (exit 124; command: docker run ... litestream restore -dry-run" in failed.value.msg


def test_the_one_run_must_reach_the_planned_txid(tmp_path):
    planner = Planner(request(tmp_path), Container())
    planner.container.docker.commands.append("docker run ... sh -c script")
    assert planner.reached((0, "out", "err", "0000000000000002"), dict(PLAN, max_txid="0000000000000002")) == (
        0, "out", "err")
    with pytest.raises(StepFailed, match="the restore ran to txid 0000000000000001, but the dry run planned "
                                         "0000000000000002"):
        planner.reached((0, "", "", "0000000000000001"), dict(PLAN))


# --------------------------------------------------------------------------- the report
def test_the_report_announces_the_restore_and_the_backups(tmp_path):
    req = request(tmp_path, database="app.sqlite3", on_existing="replace")
    report = Report([])
    report.locate(req)
    existing = [req.target, req.target + "-wal"]
    planned = report.announce(req, {"position": "0000000000000002"}, existing, dest_missing=True)
    assert report.actions[0] == "create directory %s" % req.dest
    assert report.actions[1] == "restore %s (latest, txid 0000000000000002) into %s" % (req.replica, req.target)
    assert [os.path.dirname(p) for p in planned] == [req.dest, req.dest]
    assert report.actions[2].startswith("move aside app.sqlite3 -> app.sqlite3.") and len(report.actions) == 3
    result = report.finished({}, {}, check_mode=True, diff=True)
    assert result["changed"] is True and result["path"] == req.target and result["diff"] == {"before": {}, "after": {}}


def test_a_failure_is_named_after_the_restore_once_it_is_known(tmp_path):
    report = Report([])
    assert report.failed(None, "dest: refused", {})[0] == "dest: refused"
    msg, result = report.failed("restore of a into b", "it broke", {"replica_missing": True})
    assert msg == "restore of a into b: it broke" and result["replica_missing"] is True and "duration" in result


def test_no_backup_accepted_takes_back_the_position_and_the_actions(tmp_path):
    req = request(tmp_path)
    report = Report([])
    report.planned(dict(position="02", newest_file_time="2026-11-25T12:00:10Z"), 0)
    report.actions.append("restore ...")
    report.no_backup_accepted(req)
    assert report.actions == [] and "position" not in report.result and "position_age" not in report.result
    assert report.result["msg"] == "no backup of %s in %s; nothing restored (if_replica_exists)" % (
        req.database, req.replica)


# --------------------------------------------------------------------------- the verification
def test_the_exit_status_and_the_file_decide_first(tmp_path):
    docker = Docker()
    docker.commands.append("docker run x")
    freed = []
    verify.check_exit(0, "", "", docker, str(tmp_path), lambda: freed.append(1))
    with pytest.raises(StepFailed, match=r"^no space left on device in .* once the partial file was removed\): "
                                         r"litestream restore failed: write: no space left on device \(exit 1"):
        verify.check_exit(1, "", "write: no space left on device\n", docker, str(tmp_path), lambda: freed.append(1))
    assert freed == [1]  # the partial file went before the free space was read
    gone = "no matching backup files available"
    assert verify.written(str(tmp_path / "none"), "", gone, if_replica_exists=True) is False
    with pytest.raises(StepFailed, match="litestream restore exited 0 but wrote no file: " + gone):
        verify.written(str(tmp_path / "none"), "", gone, if_replica_exists=False)
    assert verify.restored_txid('{"txid": "0000000000000002"}', v03=False) == "0000000000000002"
    assert verify.restored_txid('{"txid": "0000000000000002"}', v03=True) is None


def test_the_database_is_verified_and_a_failure_keeps_what_was_read(tmp_path):
    path = tmp_path / "app.sqlite3"
    write_db(path, 3)
    inspected = verify.inspect(str(path), "quick")
    assert inspected["tables"] == {"events": 3} and inspected["integrity"] == "ok"
    verify.check(inspected, ["events"], {"events": 3})
    with pytest.raises(StepFailed) as failed:
        verify.check(inspected, ["users"], {"events": 5})
    assert failed.value.msg.startswith("verification failed, nothing was put in place: ")
    assert failed.value.extra == {"tables": {"events": 3}, "integrity": "ok"}
    (tmp_path / "junk").write_bytes(b"not a database, long enough to have a header" * 10)
    with pytest.raises(StepFailed, match="the restored file is not a readable SQLite database"):
        verify.inspect(str(tmp_path / "junk"), "quick")


# --------------------------------------------------------------------------- the stage
def test_ancestors_and_who_may_rename_in_a_directory():
    assert restore_stage.ancestors("/a/b/c") == ["/", "/a", "/a/b"] and restore_stage.ancestors("/") == []
    st = os.stat_result((stat.S_IFDIR | 0o1777, 0, 0, 0, 0, 0, 0, 0, 0, 0))
    assert not restore_stage.writable_by(st, {4242}, {4242})  # sticky: /tmp
    st = os.stat_result((stat.S_IFDIR | 0o775, 0, 0, 0, 0, 4242, 0, 0, 0, 0))
    assert restore_stage.writable_by(st, {4242}, {4242})      # the app's group may write


def test_the_stage_is_made_checked_and_removed_with_the_directories_made_for_it(tmp_path):
    req = request(tmp_path, dest=str(tmp_path / "srv" / "new" / "dest"))
    (tmp_path / "srv").mkdir()
    stage = restore_stage.Stage(req, lambda: (UID, GID))
    stage.make_dest()
    stage.make()
    assert os.path.basename(stage.path).startswith(restore_stage.STAGE_PREFIX)
    assert stat.S_IMODE(os.stat(stage.path).st_mode) == 0o700
    with open(stage.proc_path("app.sqlite3"), "w") as handle:
        handle.write("restored")
    stage.check("nothing")
    os.rename(stage.path, stage.path + ".moved")
    os.mkdir(stage.path)
    with pytest.raises(StepFailed, match="was moved away or replaced .*: what happens next$"):
        stage.check("what happens next")
    os.rmdir(stage.path)
    os.rename(stage.path + ".moved", stage.path)
    stage.cleanup(restored=False, close=True)
    assert os.listdir(str(tmp_path / "srv")) == [] and stage.fd is None and stage.dir_fds == []


def test_a_link_in_dests_place_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    os.symlink(str(tmp_path / "elsewhere"), str(tmp_path / "dest"))
    stage = restore_stage.Stage(request(tmp_path), lambda: (UID, GID))
    with pytest.raises(StepFailed, match="dest is a symbolic link; the restore does not follow a link there"):
        stage.make_dest()
    stage.cleanup(restored=False, close=True)


# --------------------------------------------------------------------------- the swap
def test_the_owner_comes_from_chown_or_owner_and_group(tmp_path):
    base = dict(chown=None, owner=None, group=None)
    assert swap.owner_ids(base, str(tmp_path), None) == (swap.HEROKUISH_UID, swap.HEROKUISH_UID)
    assert swap.owner_ids(dict(base, owner=7, group=8), str(tmp_path), None) == (7, 8)
    assert swap.owner_ids(dict(base, chown="false"), str(tmp_path / "missing"), None) == (0, 0)
    st = os.stat(str(tmp_path))
    assert swap.owner_ids(dict(base, chown="false"), str(tmp_path), None) == (st.st_uid, st.st_gid)


def swap_dirs(tmp_path):
    stage, dest = tmp_path / "stage", tmp_path / "dest"
    stage.mkdir()
    dest.mkdir()
    (stage / "app.sqlite3").write_text("new")
    return stage, dest, os.open(str(stage), os.O_RDONLY), os.open(str(dest), os.O_RDONLY)


def test_replace_moves_the_old_files_aside_then_puts_the_new_one_in(tmp_path, monkeypatch):
    stage, dest, stage_fd, dest_fd = swap_dirs(tmp_path)
    (dest / "app.sqlite3").write_text("old")
    (dest / "app.sqlite3-wal").write_text("old wal")
    monkeypatch.setattr(swap.time, "gmtime", lambda *a: (2026, 11, 25, 12, 0, 0, 2, 329, 0))
    (dest / "app.sqlite3.20261125T120000Z.bak").write_text("an earlier backup")
    try:
        backups = swap.put_in_place(stage_fd, dest_fd, str(dest), "app.sqlite3")
    finally:
        os.close(stage_fd)
        os.close(dest_fd)
    stamp = "app.sqlite3.20261125T120000Z-2.bak"
    assert sorted(os.path.basename(p) for p in backups) == [stamp, stamp + "-wal"]
    assert (dest / "app.sqlite3").read_text() == "new" and (dest / stamp).read_text() == "old"
    assert not (dest / "app.sqlite3-wal").exists() and os.listdir(str(stage)) == []


def test_a_failed_swap_puts_the_old_files_back(tmp_path, monkeypatch):
    stage, dest, stage_fd, dest_fd = swap_dirs(tmp_path)
    (dest / "app.sqlite3").write_text("old")
    (dest / "app.sqlite3-shm").write_text("old shm")
    real_rename = os.rename

    def rename(src, dst, **kwargs):
        if kwargs.get("src_dir_fd") == stage_fd:
            raise OSError(18, "Invalid cross-device link")
        return real_rename(src, dst, **kwargs)
    monkeypatch.setattr(swap.os, "rename", rename)
    try:
        with pytest.raises(StepFailed, match=r"putting the restored file in place failed \(.*\); the existing files "
                                             r"were put back"):
            swap.put_in_place(stage_fd, dest_fd, str(dest), "app.sqlite3")
    finally:
        os.close(stage_fd)
        os.close(dest_fd)
    assert sorted(os.listdir(str(dest))) == ["app.sqlite3", "app.sqlite3-shm"]
    assert (dest / "app.sqlite3").read_text() == "old" and (stage / "app.sqlite3").read_text() == "new"
