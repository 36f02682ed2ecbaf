# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every mutating module takes its host lock before it reads anything: held by another process, the
module waits, or fails after lock_timeout naming the lock and the holder, having run and written nothing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible.module_utils import basic

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import auth_core
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import lock
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import storage_core
from ansible_collections.dokku_sqlite.litestream.plugins.modules import (
    dokku_storage, litestream_auth, litestream_replica, litestream_restore, litestream_standby)

from .conftest import run_module, snapshot

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYsecret"


def module_args(name, root):
    creds = root / "credentials"
    replica = {"type": "s3", "bucket": "bkt", "path": "blog", "endpoint": "http://127.0.0.1:9000", "credentials": "lab"}
    return {
        "dokku_storage": {"app": "blog"},
        "litestream_replica": {"app": "blog", "credentials_root": str(creds), "config_root": str(root / "apps"),
                               "storage_root": str(root / "storage"), "replica": replica},
        "litestream_auth": {"name": "lab", "credentials_root": str(creds), "access_key_id": "AKIALAB",
                            "secret_access_key": SECRET},
        "litestream_restore": {"dest": str(root / "srv" / "blog--db"), "database": "app.sqlite3",
                               "credentials_root": str(creds), "replica": replica},
        "litestream_standby": {"dest": str(root / "srv" / "blog--db"), "database": "app.sqlite3",
                               "credentials_root": str(creds), "replica": replica},
    }[name]


MODULES = {
    "dokku_storage": (dokku_storage.main, "app-blog.lock", "app blog"),
    "litestream_replica": (litestream_replica.main, "app-blog.lock", "app blog"),
    "litestream_auth": (litestream_auth.main, "credentials.lock", "the credential sets"),
    "litestream_restore": (litestream_restore.main, None, None),
    "litestream_standby": (litestream_standby.main, None, None),  # the standby's own lock (a promotion's: below)
}


@pytest.fixture
def root(tmp_path, monkeypatch):
    setdir = tmp_path / "credentials" / "lab"
    setdir.mkdir(parents=True)
    for directory in (setdir.parent, setdir):  # as litestream_auth made them: root-only
        directory.chmod(0o700)
    (setdir / "credentials.json").write_text(json.dumps({"access_key_id": "AKIALAB", "secret_access_key": SECRET}))
    (tmp_path / "storage" / "blog--db").mkdir(parents=True)
    (tmp_path / "srv").mkdir()
    monkeypatch.setattr(storage_core, "STORAGE_ROOT", str(tmp_path / "storage"))
    monkeypatch.setattr(auth_core, "dokku_ids", lambda: None)
    return tmp_path


@pytest.fixture
def no_commands(monkeypatch):
    calls = []

    def run_command(self, argv, **kwargs):
        calls.append(argv)
        raise AssertionError("a command ran although the lock was held: %r" % (argv,))
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    return calls


def lock_file(name, root, lock_dir):
    _main, file_name, what = MODULES[name]
    if file_name is None:  # the restore target's own lock, or the standby's of that target
        target = root / "srv" / "blog--db" / "app.sqlite3"
        scope, what = (("standby", "the standby of %s") if name == "litestream_standby"
                       else ("restore", "the restore target %s"))
        return lock_dir / (lock.scope_name("%s-%s" % (scope, target)) + ".lock"), what % target
    return lock_dir / file_name, what


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_held_lock_fails_the_module_clearly_before_it_reads_or_writes(name, root, lock_dir, no_commands, holders):
    path, what = lock_file(name, root, lock_dir)
    holder = holders(path)
    before = snapshot(root)
    args = dict(module_args(name, root), lock_timeout=0)
    result = run_module(MODULES[name][0], args, fail=True)
    expected = "timed out after 0 s waiting for the lock %s (%s), held by pid %d (python" % (path, what, holder.proc.pid)
    assert expected in result["msg"], result["msg"]
    assert "another run is changing %s on this host. Wait for it to finish, or raise lock_timeout" % what in result["msg"]
    assert no_commands == []
    assert snapshot(root) == before
    assert not result.get("changed")


def test_a_promotion_also_takes_the_restore_targets_lock(root, lock_dir, no_commands, holders):
    """A restore and a promotion into one file would both find it free: the promotion waits for the restore."""
    path, what = lock_file("litestream_restore", root, lock_dir)
    holder = holders(path)
    before = snapshot(root)
    args = dict(module_args("litestream_standby", root), state="promoted", txid="5", lock_timeout=0)
    result = run_module(litestream_standby.main, args, fail=True)
    expected = "timed out after 0 s waiting for the lock %s (%s), held by pid %d (python" % (path, what, holder.proc.pid)
    assert expected in result["msg"], result["msg"]
    assert no_commands == [] and snapshot(root) == before and not result.get("changed")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_check_mode_does_not_wait_for_a_held_lock(name, root, lock_dir, monkeypatch, holders):
    path, _what = lock_file(name, root, lock_dir)
    holders(path)
    if name == "dokku_storage":
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, n, required=False: "/usr/bin/" + n)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, argv, **kw: {
            "version": (0, "dokku version 0.38.27\n", ""), "storage:list": (0, "[]", ""), "info": (0, "[]\n", ""), "--quiet": (0, "true\n", "")}[argv[1]])
    elif name == "litestream_replica":
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, n, required=False: "/usr/bin/" + n)
        monkeypatch.setattr(basic.AnsibleModule, "run_command",
                            lambda self, argv, **kw: (1, "", "Error: No such container: x") if argv[2] == "inspect"
                            and argv[1] == "container" else (0, "sha256:1\n", ""))
    elif name == "litestream_restore":
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, n, required=False: "/usr/bin/" + n)
        monkeypatch.setattr(basic.AnsibleModule, "run_command",
                            lambda self, argv, **kw: (1, "", "Error: no matching backup files available\n"))
    elif name == "litestream_standby":  # no follower yet: check mode reports the start and runs nothing else
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, n, required=False: "/usr/bin/" + n)
        monkeypatch.setattr(basic.AnsibleModule, "run_command",
                            lambda self, argv, **kw: (1, "[]\n", "Error: No such container: x\n"))
    args = dict(module_args(name, root), lock_timeout=0)
    if name == "litestream_restore":
        args["if_replica_exists"] = True
    result = run_module(MODULES[name][0], args, check=True)
    assert result["lock_wait"] == 0


def test_the_second_run_waits_for_the_first_then_finds_the_work_done(root, lock_dir, monkeypatch, holders):
    """dokku_storage while a first run holds the app's lock (and mounts meanwhile): it waits, reads after the
    first run is done, and runs no writing command."""
    host = root / "storage" / "blog--db"
    os.chown(str(host), 32767, 32767)
    mounts = [{"host_path": str(host), "container_path": "/app/db/litestream"}]
    calls = []

    def run_command(self, argv, **kwargs):
        calls.append(argv[1])
        return {"version": (0, "dokku version 0.38.27\n", ""), "storage:list": (0, json.dumps(mounts), ""), "info": (0, "[]\n", "")}[argv[1]]
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, n, required=False: "/usr/bin/" + n)
    holders(lock_dir / "app-blog.lock", seconds=1)
    result = run_module(dokku_storage.main, {"app": "blog", "lock_timeout": 60})
    assert result["lock_wait"] > 0
    assert result["changed"] is False and calls == ["version", "storage:list", "info"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_mutating_module_documents_lock_timeout(name):
    module = {"dokku_storage": dokku_storage, "litestream_replica": litestream_replica,
              "litestream_auth": litestream_auth, "litestream_restore": litestream_restore,
              "litestream_standby": litestream_standby}[name]
    assert "dokku_sqlite.litestream.lock" in module.DOCUMENTATION
    assert "lock_wait:" in module.RETURN
