# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dokku_storage decisions: what it writes, once, and nothing in check mode or when all is in place."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import storage_core
from ansible_collections.dokku_sqlite.litestream.plugins.modules import dokku_storage

from .conftest import run_module

MOUNT = {"host_path": "/STORAGE/blog--db", "container_path": "/app/db/litestream"}


@pytest.fixture
def storage_root(tmp_path, monkeypatch):
    monkeypatch.setattr(storage_core, "STORAGE_ROOT", str(tmp_path))
    return tmp_path


NO_USERNS = '["name=seccomp,profile=builtin"]\n'
USERNS = '["name=seccomp,profile=builtin","name=userns"]\n'


def rules(version, mounts, exists=True, security=NO_USERNS, running="true", report=""):
    return [
        (("--quiet", "ps:report"), 0, running + "\n", ""),
        (("info", "--format"), 0, security, ""),
        (("version",), 0, "dokku version %s\n" % version, ""),
        # every storage command verifies the app first: exit 20 for a missing one
        (("storage:list",), 0 if exists else 20, json.dumps(mounts) if exists else "", "" if exists else
         " !     App blog does not exist\n"),
        (("storage:report",), 0, report, ""),
        (("apps:create",), 0, "", ""),
        (("storage:ensure-directory",), 0, "", ""),
        (("storage:mount",), 0, "", ""),
        (("storage:unmount",), 0, "", ""),
        (("ps:restart",), 0, "", ""),
    ]


@pytest.mark.parametrize("version", ["0.30.5", "0.37.10", "0.38.27"])
def test_first_run_writes_directory_mount_and_restarts_once(version, storage_root, commands):
    recorder = commands(rules(version, []))
    result = run_module(dokku_storage.main, {"app": "blog"})
    host = os.path.join(str(storage_root), "blog--db")
    assert [c for c in recorder.calls if c[0] not in ("version", "storage:list", "info", "--quiet")] == [
        ["storage:ensure-directory", "--chown", "herokuish", "blog--db"],
        ["storage:mount", "blog", host + ":/app/db/litestream"],
        ["ps:restart", "blog"],
    ]
    assert result["changed"] and result["mount_changed"] and result["restarted"]
    assert result["dokku_version"] == version


def test_everything_in_place_runs_only_reads(storage_root, commands):
    host = storage_root / "blog--db"
    host.mkdir()
    os.chown(str(host), 32767, 32767)
    recorder = commands(rules("0.38.27", [dict(MOUNT, host_path=str(host))]))
    result = run_module(dokku_storage.main, {"app": "blog"})
    assert result["changed"] is False
    assert [c[0] for c in recorder.calls] == ["version", "storage:list", "info"]
    assert result["commands"] == ["dokku version", "dokku storage:list blog --format json",
                                  "docker info --format {{json .SecurityOptions}}"]


def test_wrong_owner_is_repaired_without_remounting(storage_root, commands):
    host = storage_root / "blog--db"
    host.mkdir()
    recorder = commands(rules("0.37.10", [dict(MOUNT, host_path=str(host))]))
    result = run_module(dokku_storage.main, {"app": "blog"})
    assert result["directory_changed"] and not result["mount_changed"] and not result["restarted"]
    assert ["storage:ensure-directory", "--chown", "herokuish", "blog--db"] in recorder.calls


def test_check_mode_predicts_and_runs_only_reads(storage_root, commands):
    recorder = commands(rules("0.38.27", [], exists=False))
    result = run_module(dokku_storage.main, {"app": "blog", "create_app": True}, check=True, diff=True)
    assert result["changed"] and result["app_created"] and result["mount_changed"]
    # the report: is the directory another app's (see the test of a renamed app)?
    assert [c[0] for c in recorder.calls] == ["version", "storage:list", "storage:report", "info"]
    assert "dokku apps:create blog  # check mode: not run" in result["commands"]
    assert result["diff"]["before"]["app_exists"] is False and result["diff"]["after"]["app_exists"] is True
    assert not (storage_root / "blog--db").exists()


@pytest.mark.parametrize("state", ["absent", "present"])
@pytest.mark.parametrize("check", [False, True])
def test_a_stopped_app_is_not_restarted(storage_root, commands, state, check):
    """ps:restart starts a stopped app (which, without its mount, then crash-loops): read --running first."""
    host = storage_root / "blog--db"
    host.mkdir()
    os.chown(str(host), 32767, 32767)
    mounts = [dict(MOUNT, host_path=str(host))] if state == "absent" else []
    recorder = commands(rules("0.38.27", mounts, running="false"))
    result = run_module(dokku_storage.main, {"app": "blog", "state": state}, check=check)
    assert result["mount_changed"] and result["changed"]
    assert result["restarted"] is False and result["app_running"] == "false"
    assert ["--quiet", "ps:report", "blog", "--running"] in recorder.calls
    assert "dokku --quiet ps:report blog --running" in result["commands"]
    assert not any("ps:restart" in command for command in result["commands"])
    assert ["ps:restart", "blog"] not in recorder.calls


@pytest.mark.parametrize("running", ["true", "mixed"])
@pytest.mark.parametrize("state", ["absent", "present"])
@pytest.mark.parametrize("check", [False, True])
def test_a_running_app_is_restarted_once(storage_root, commands, state, check, running):
    host = storage_root / "blog--db"
    host.mkdir()
    os.chown(str(host), 32767, 32767)
    mounts = [dict(MOUNT, host_path=str(host))] if state == "absent" else []
    recorder = commands(rules("0.38.27", mounts, running=running))
    result = run_module(dokku_storage.main, {"app": "blog", "state": state}, check=check)
    assert result["restarted"] is True and result["app_running"] == running
    restarts = [c for c in result["commands"] if "ps:restart" in c]
    assert restarts == ["dokku ps:restart blog  # check mode: not run" if check else "dokku ps:restart blog"]
    assert result["commands"].index("dokku --quiet ps:report blog --running") < result["commands"].index(restarts[0])
    assert (["ps:restart", "blog"] in recorder.calls) is not check


def test_absent_unmounts_but_keeps_the_data(storage_root, commands):
    host = storage_root / "blog--db"
    host.mkdir()
    (host / "production.sqlite3").write_text("data")
    recorder = commands(rules("0.38.27", [dict(MOUNT, host_path=str(host))]))
    result = run_module(dokku_storage.main, {"app": "blog", "state": "absent"})
    assert ["storage:unmount", "blog", str(host) + ":/app/db/litestream"] in recorder.calls
    assert result["mount_changed"] and (host / "production.sqlite3").read_text() == "data"


@pytest.mark.parametrize("stored,asked", [("/app/db/litestream/", "/app/db/litestream"),
                                          ("/app/db/litestream", "/app/db/litestream/")])
def test_absent_unmounts_the_mount_as_dokku_stores_it(storage_root, commands, stored, asked):
    """storage:unmount matches exactly (storage/storage.go@v0.37.10:L39-52, attachment.go@v0.38.27:L169-190):
    a trailing slash that differs from the stored mount would get ' !     Mount path does not exist.'."""
    host = storage_root / "blog--db"
    host.mkdir()
    recorder = commands(rules("0.38.27", [dict(MOUNT, host_path=str(host), container_path=stored)]))
    result = run_module(dokku_storage.main, {"app": "blog", "state": "absent", "mount_path": asked})
    assert ["storage:unmount", "blog", "%s:%s" % (host, stored)] in recorder.calls
    assert result["mount_changed"]


@pytest.mark.parametrize("owner,userns,repaired", [(32767, False, False), (32767 + 165536, True, False),
                                                   (32767, True, True), (32767 + 165536, False, True)])
def test_the_owner_dokku_gives_under_user_namespaces_is_expected(storage_root, commands, owner, userns, repaired):
    """Dokku adds 165536 to the uid when `docker info` lists name=userns (storage subcommands.go@v0.38.27:
    L106-117): that owner is in place, not a reason to chown again on every run."""
    host = storage_root / "blog--db"
    host.mkdir()
    os.chown(str(host), owner, owner)
    recorder = commands(rules("0.38.27", [dict(MOUNT, host_path=str(host))], security=USERNS if userns else NO_USERNS))
    result = run_module(dokku_storage.main, {"app": "blog"})
    assert result["directory_changed"] is repaired
    assert (["storage:ensure-directory", "--chown", "herokuish", "blog--db"] in recorder.calls) is repaired


def test_chown_false_leaves_the_owner_alone_and_asks_docker_nothing(storage_root, commands):
    host = storage_root / "blog--db"
    host.mkdir()
    recorder = commands(rules("0.38.27", [dict(MOUNT, host_path=str(host))]))
    result = run_module(dokku_storage.main, {"app": "blog", "chown": "false"})
    assert result["changed"] is False
    assert [c[0] for c in recorder.calls] == ["version", "storage:list"]


@pytest.mark.parametrize("version,word", [("0.30.5", "packeto"), ("0.35.17", "paketo"), ("0.38.27", "paketo")])
def test_paketo_is_spelled_the_way_the_dokku_version_knows_it(storage_root, commands, version, word):
    """`paketo` exists from Dokku 0.35.17; before, the same uid 2000 is `packeto` (storage.bats@v0.30.5:L93)."""
    recorder = commands(rules(version, []))
    run_module(dokku_storage.main, {"app": "blog", "chown": "paketo"})
    assert ["storage:ensure-directory", "--chown", word, "blog--db"] in recorder.calls


def test_an_app_is_not_created_on_a_storage_directory_another_app_mounts(storage_root, commands):
    """dokku apps:rename blog blog-new by hand, the entry left as `blog` with create_app: the renamed app still
    mounts blog--db, so creating `blog` again on it is refused (in check mode too) and nothing is written."""
    host = os.path.join(str(storage_root), "blog--db")
    report = ("=====> blog-new storage information\n       Storage build mounts:\n"
              "       Storage deploy mounts:         -v %s:/app/db/litestream\n"
              "       Storage run mounts:            -v %s:/app/db/litestream\n" % (host, host))
    for check in (False, True):
        recorder = commands(rules("0.38.27", [], exists=False, report=report))
        result = run_module(dokku_storage.main, {"app": "blog", "create_app": True}, check=check, fail=True)
        assert ("app 'blog' does not exist on this host, and its storage directory %s is mounted by blog-new" % host
                in result["msg"]), result["msg"]
        assert not any(c[0] in ("apps:create", "storage:ensure-directory", "storage:mount") for c in recorder.calls)


def test_an_app_is_created_when_no_other_app_mounts_its_directory(storage_root, commands):
    other = os.path.join(str(storage_root), "shop--db")
    report = ("=====> shop storage information\n"
              "       Storage deploy mounts:         -v %s:/app/db/litestream\n" % other)
    recorder = commands(rules("0.38.27", [], exists=False, report=report))
    result = run_module(dokku_storage.main, {"app": "blog", "create_app": True})
    assert result["app_created"] and ["apps:create", "blog"] in recorder.calls
