# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drive a module's main() for real: exit_json/fail_json raise, run_command answers from a script."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import lock


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise ExitJson(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs.update(failed=True, msg=msg)
    raise FailJson(kwargs)


@pytest.fixture(autouse=True)
def patched_exits(monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)


@pytest.fixture(autouse=True)
def lock_dir(monkeypatch, tmp_path_factory):
    """The modules' host locks live in a directory of the test (not in tmp_path, which tests list), never
    in this machine's /run/lock."""
    path = tmp_path_factory.mktemp("run-lock") / "dokku-sqlite-litestream"
    monkeypatch.setattr(lock, "LOCK_DIR", str(path))
    return path


def run_module(main, args, check=False, diff=False, fail=False):
    """Run main() with args; returns the result dict of exit_json (or fail_json with fail=True)."""
    args = dict(args)
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = diff
    with patch_module_args(args):
        with pytest.raises(FailJson if fail else ExitJson) as caught:
            main()
    return caught.value.args[0]


class ScriptedCommands:
    """Stands in for AnsibleModule.run_command: answers each argv from rules, records every call."""

    def __init__(self, rules):
        self.rules = rules  # list of (argv tail prefix tuple, rc, stdout, stderr)
        self.calls = []

    def __call__(self, module, argv, **kwargs):
        tail = list(argv[1:])
        self.calls.append(tail)
        for prefix, rc, out, err in self.rules:
            if tail[:len(prefix)] == list(prefix):
                return rc, out, err
        raise AssertionError("unexpected command: %r" % (argv,))


def answer_commands(monkeypatch, answer):
    """Every command a module runs is answered by answer(module, argv, **kwargs); every program is found."""
    def run_command(self, argv, **kwargs):  # a plain function, so it binds like the real method
        return answer(self, argv, **kwargs)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    return answer


@pytest.fixture
def commands(monkeypatch):
    """Install scripted answers: commands([...rules]) -> the recorder."""
    return lambda rules: answer_commands(monkeypatch, ScriptedCommands(rules))


def snapshot(top):
    """Every path under top with its mode, owner, mtime and content: equal snapshots = nothing written."""
    top = str(top)
    if not os.path.exists(top):
        return {}
    found = {}
    for dirpath, _dirnames, filenames in os.walk(top):
        for entry in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
            st = os.lstat(entry)
            content = None
            if stat.S_ISREG(st.st_mode):
                with open(entry, "rb") as handle:
                    content = handle.read()
            found[entry] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, content)
    return found


def assert_no_secret(result, *secrets):
    text = json.dumps(result, ensure_ascii=False)
    for secret in secrets:
        assert secret not in text


class SidecarProcess:
    """What a running sidecar answers to `docker exec <sidecar> litestream ...` and `docker logs`, for the fake
    docker CLIs: a store that works (every database synced, level 0 listable), or one that refuses it with
    ``error`` (Litestream's own words, as its log and `ltx` print them, docs/litestream-health-facts.md)."""

    def __init__(self):
        self.error = None
        self.synced = True
        self.databases = ["production.sqlite3"]

    def answer(self, tail):
        """(rc, stdout, stderr) for an exec or logs call; None for any other docker call."""
        if tail[:1] == ["exec"] and tail[2:4] == ["/bin/sh", "-c"] and " ltx -level 0 " in tail[4]:
            return (1, "", "Error: %s\n" % self.error) if self.error else (0, "[]\n", "")
        if tail[:1] == ["exec"] and tail[3:5] == ["list", "-json"]:
            listed = [dict({"path": "/data/%s" % db, "status": "replicating"},
                           **({"last_sync_at": "2026-11-30T12:00:00Z"} if self.synced and not self.error else {}))
                      for db in self.databases]
            return 0, json.dumps({"databases": listed}) + "\n", ""
        if tail[:1] == ["logs"]:
            line = ('time=2026-11-30T12:00:00Z level=ERROR msg="sync error" db=production.sqlite3 '
                    'error="check database behind replica: %s" consecutive_errors=1 backoff=1s\n')
            return 0, line % self.error.replace('"', '\\"') if self.error else "", ""
        return None
