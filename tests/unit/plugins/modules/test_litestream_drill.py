# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_drill against the fake docker of test_litestream_restore (a real /bin/sh runs the restore script,
real SQLite files are written and verified): selection, records, verdicts, parallelism, cleanup, bad input."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sqlite3
import stat
import threading
import time

import pytest

from ansible.module_utils import basic

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import drill_core
from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_drill, litestream_drill_report

from .conftest import assert_no_secret, run_module, snapshot
from .test_litestream_restore import SECRET, docker, write_db  # noqa: F401  pylint: disable=unused-import

REPLICA = {"type": "s3", "bucket": "bkt", "endpoint": "http://127.0.0.1:9000", "credentials": "lab"}


@pytest.fixture
def host(tmp_path):
    """A drill host's directories: credentials written by the module itself, live databases in storage."""
    (tmp_path / "storage").mkdir()
    (tmp_path / "credentials").mkdir(mode=0o700)
    return tmp_path


def app(name, **extra):
    entry = {"app": name, "replica": dict(REPLICA, path="drill/%s" % name)}
    entry.update(extra)
    return entry


def args(root, entries, **overrides):
    base = {"apps": entries, "host": "dokku-1", "scratch_dir": str(root / "scratch" / "drill"),
            "storage_root": str(root / "storage"), "credentials_root": str(root / "credentials"),
            "image": "litestream/litestream:0.5.17",
            "credential_sets": [{"name": "lab", "access_key_id": "AKIALAB", "secret_access_key": SECRET,
                                 "credentials_root": str(root / "credentials")}]}
    base.update(overrides)
    return base


def live(host, name, count, database="production.sqlite3"):
    directory = host / "storage" / ("%s--db" % name)
    directory.mkdir(exist_ok=True)
    write_db(directory / database, count)


def test_every_database_is_restored_verified_and_judged_in_inventory_order(host, docker):
    live(host, "blog", 80)    # the same rows as the replica's newest state: current, however old
    live(host, "shop", 80)
    live(host, "shop", 3, "audit.sqlite3")  # moved on since the replica's newest data, long ago: stale
    apps = [app("blog"), app("shop", databases=["production.sqlite3", "audit.sqlite3"]),
            app("nobackup", state="absent"), {"app": "plain", "state": "absent"}]
    result = run_module(litestream_drill.main, args(host, apps))
    records = result["results"]
    assert [(r["app"], r["database"]) for r in records] == [
        ("blog", "production.sqlite3"), ("shop", "production.sqlite3"), ("shop", "audit.sqlite3")]
    blog, shop, audit = records
    assert blog["status"] == "ok" and blog["integrity"] == "ok" and blog["rows"] == 80 and blog["live_rows"] == 80
    assert blog["tables"] == {"events": 80} and blog["host"] == blog["drill_host"] == "dokku-1"
    assert blog["replica"].startswith("s3://bkt/drill/blog/production.sqlite3") and blog["position"] == "0000000000000002"
    assert blog["lag_seconds"] > 86400 and blog["message"] is None
    assert shop["status"] == "ok"
    assert audit["status"] == "failed" and audit["live_rows"] == 3
    assert audit["message"].startswith("dokku-1/shop/audit.sqlite3: stale: the newest replicated data is ")
    assert "(max 300.0s) and the live database has changed since" in audit["message"]
    assert result["summary"] == {"total": 3, "ok": 2, "failed": 1}
    # one container per database (dry run and restore in one), one look at the user namespaces each
    assert len([c for c in docker.calls if c[:2] == ["run", "--rm"]]) == 3
    assert os.listdir(str(host / "scratch" / "drill")) == []  # the run's own directory is gone, nothing else was there
    creds = host / "credentials" / "lab" / "credentials.json"
    assert stat.S_IMODE(os.stat(str(creds)).st_mode) == 0o600 and result["changed"]
    assert_no_secret(result, SECRET)
    # the records are what the report module takes, unchanged
    report = run_module(litestream_drill_report.main, {"results": records, "dest": str(host / "report")})
    assert report["summary"]["failed"] == 1 and not report["passed"]


def test_apps_are_drilled_in_parallel_up_to_the_bound(host, docker, monkeypatch):
    state = {"now": 0, "most": 0}
    guard = threading.Lock()
    fake_run = basic.AnsibleModule.run_command

    def slow(self, argv, **kwargs):
        if list(argv[1:3]) != ["run", "--rm"]:
            return fake_run(self, argv, **kwargs)
        with guard:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            time.sleep(1.0)  # long enough for every worker to be in, even on a loaded machine
            return fake_run(self, argv, **kwargs)
        finally:
            with guard:
                state["now"] -= 1
    monkeypatch.setattr(basic.AnsibleModule, "run_command", slow)
    apps = [app("app-%d" % i) for i in range(6)]
    result = run_module(litestream_drill.main, args(host, apps, parallel=3, compare_live=False, max_lag_seconds=3e7))
    assert state["most"] == 3
    assert [r["app"] for r in result["results"]] == ["app-%d" % i for i in range(6)]
    assert [r["message"] for r in result["results"] if r["status"] != "ok"] == []
    state["most"] = 0
    run_module(litestream_drill.main, args(host, apps[:3], parallel=1, compare_live=False, max_lag_seconds=3e7))
    assert state["most"] == 1


def test_a_failing_drill_is_recorded_in_the_drills_words_and_the_others_still_run(host, docker, monkeypatch):
    fake_run = basic.AnsibleModule.run_command

    def empty_for_ghost(self, argv, **kwargs):
        configs = [str(a).split(":", maxsplit=1)[0] for a in argv if str(a).endswith(":/etc/litestream:ro")]
        if configs and "drill/ghost" in open(os.path.join(configs[0], "litestream.yml")).read():
            docker.replica, saved = [], docker.replica  # parallel: 1, so no other restore sees this
            try:
                return fake_run(self, argv, **kwargs)
            finally:
                docker.replica = saved
        return fake_run(self, argv, **kwargs)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", empty_for_ghost)
    apps = [app("ghost"), app("blog")]
    result = run_module(litestream_drill.main, args(host, apps, parallel=1, compare_live=False, max_lag_seconds=3e7))
    ghost, blog = result["results"]
    assert ghost["status"] == "failed" and blog["status"] == "ok"
    assert ghost["message"].startswith("dokku-1/ghost/production.sqlite3: the replica s3://bkt/drill/ghost/"
                                       "production.sqlite3 (endpoint http://127.0.0.1:9000) holds no backup of "
                                       "production.sqlite3: nothing was ever replicated there")
    assert "Check the replica of app ghost in restore_drill_apps (litestream_apps)" in ghost["message"]
    assert "if_replica_exists" not in ghost["message"]


def test_a_corrupt_restore_fails_its_drill_with_the_reason(host, docker):
    docker.corrupt = True
    result = run_module(litestream_drill.main, args(host, [app("blog")], compare_live=False, max_lag_seconds=3e7))
    record = result["results"][0]
    assert record["status"] == "failed" and "not a readable SQLite database" in record["message"]
    assert os.listdir(str(host / "scratch" / "drill")) == []


def test_live_only_reads_the_live_databases_read_only_and_restores_nothing(host, docker):
    live(host, "blog", 5)
    db = host / "storage" / "blog--db" / "production.sqlite3"
    writer = sqlite3.connect(str(db))
    writer.execute("pragma journal_mode=wal")
    writer.execute("begin immediate")  # the app is writing: a read-only reader must not wait for it
    writer.execute("insert into events (note) values ('uncommitted')")
    before = os.stat(str(db)).st_mtime_ns
    result = run_module(litestream_drill.main, args(host, [app("blog"), app("gone")], live_only=True))
    writer.rollback()
    writer.close()
    assert result["live_tables"]["blog/production.sqlite3"] == {"events": 5}
    assert result["live_tables"]["gone/production.sqlite3"].startswith("the live database could not be read: no database at")
    assert "results" not in result and docker.calls == [] and os.stat(str(db)).st_mtime_ns == before


def test_a_drill_elsewhere_is_judged_on_the_apps_host_after_the_restores(host, docker):
    """defer_verdict on the drill host, then live_only with its results on the app's host: the live databases are
    read after the restores, so a database that moved on since what the replica held is stale, an idle one is not."""
    elsewhere = run_module(litestream_drill.main, args(host, [app("blog"), app("shop")], defer_verdict=True,
                                                       compare_live=False, drill_host="drill-1",
                                                       storage_root="/nonexistent"))
    assert [r["status"] for r in elsewhere["results"]] == ["ok", "ok"]
    assert all(r["live_rows"] is None and r["lag_seconds"] > 86400 for r in elsewhere["results"])
    live(host, "blog", 80)   # as restored: idle, current however old
    live(host, "shop", 81)   # one row more than the replica held: stale
    judged = run_module(litestream_drill.main, args(host, [app("blog"), app("shop")], live_only=True,
                                                    results=elsewhere["results"], credential_sets=[]))
    blog, shop = judged["results"]
    assert blog["status"] == "ok" and blog["live_rows"] == 80 and blog["drill_host"] == "drill-1"
    assert shop["status"] == "failed" and shop["live_rows"] == 81 and "stale" in shop["message"]
    assert judged["summary"] == {"total": 2, "ok": 1, "failed": 1}
    assert len([c for c in docker.calls if c[:2] == ["run", "--rm"]]) == 2  # the judging run restored nothing


def test_only_limits_the_drill_and_check_mode_writes_nothing(host, docker):
    (host / "credentials" / "lab").mkdir()
    (host / "credentials" / "lab" / "credentials.json").write_text(
        json.dumps({"access_key_id": "AKIALAB", "secret_access_key": SECRET}))
    result = run_module(litestream_drill.main, args(host, [app("blog"), app("shop")], only=["shop", "elsewhere"],
                                                    compare_live=False, credential_sets=[]), check=True)
    assert [r["app"] for r in result["results"]] == ["shop"]
    assert result["results"][0]["message"] == "check mode: restore planned, not run"
    assert result["results"][0]["position"] == "0000000000000002"
    assert not os.path.exists(str(host / "scratch")) and os.listdir(str(host / "credentials")) == ["lab"]


@pytest.mark.parametrize("overrides, message", [
    ({"host": "../etc"}, "host: '../etc' is not a plain host name"),
    ({"host": ".."}, "host: '..' is not a plain host name"),
    ({"drill_host": "a/b"}, "drill_host: 'a/b' is not a plain host name"),
    # the run's directory is <scratch_dir>/<host>.<random>: a 253-character host made mkdtemp fail with ENAMETOOLONG
    ({"host": "h" * 253}, "host: '%s...hhhhh' (253 characters) is longer than 200 characters: the drill names its "
     "directory in the scratch directory <host>.<random>, and a file name holds at most 255 bytes" % ("h" * 49)),
    ({"drill_host": "d" * 201}, "drill_host: '%s...ddddd' (201 characters) is longer than 200 characters"
     % ("d" * 49)),
    ({"scratch_dir": "/tmp"}, "scratch_dir: '/tmp' must be at least two levels deep"),
    ({"scratch_dir": "/var/../etc/x"}, "scratch_dir: '/var/../etc/x' must not contain '..'"),
    ({"only": ["Bad Name"]}, "only: 'Bad Name' is not a valid Dokku app name"),
    ({"parallel": 0}, "parallel: 0 is not a whole number from 1 (one app after the other) to 64"),
    ({"max_lag_seconds": float("nan")}, "max_lag_seconds: nan is not a number of seconds from 0 (no lag allowed) to "
     "31536000 (a year)"),
    ({"apps": [{"app": "blog", "replica": dict(REPLICA, path="x")}, {"app": "blog", "state": "absent"}]}, "the app is listed twice"),
])
def test_bad_input_is_refused_before_anything_runs(host, docker, overrides, message):
    result = run_module(litestream_drill.main, args(host, [app("blog")], **overrides), fail=True)
    assert message in result["msg"]
    assert docker.calls == [] and os.listdir(str(host / "credentials")) == []
    assert_no_secret(result, SECRET)


def test_a_host_name_of_200_characters_still_drills(host, docker):
    """The longest host name allowed leaves room for the run's directory <host>.<random> (mkdtemp) in scratch_dir."""
    live(host, "blog", 80)
    name = "h" * 200
    result = run_module(litestream_drill.main, args(host, [app("blog")], host=name))
    assert result["results"][0]["status"] == "ok" and result["results"][0]["host"] == name


def test_the_records_hold_only_what_the_report_takes(host, docker):
    result = run_module(litestream_drill.main, args(host, [app("blog")], compare_live=False, max_lag_seconds=3e7))
    assert set(result["results"][0]) == set(drill_core.RECORD_KEYS)
    assert json.loads(json.dumps(result["results"])) == result["results"]


def test_the_drill_removes_only_the_directory_it_made_whatever_the_scratch_dir_and_host(tmp_path, docker):
    """Issue 20's data loss: scratch_dir the parent of a Dokku tree and a host named after a directory in it
    (scratch_dir /var/lib, host dokku) removed /var/lib/dokku. The drill now works in a fresh directory of its own
    (<scratch_dir>/<host>.<random>) and removes that alone: the Dokku tree and files placed in <scratch_dir>/<host>
    before the run are exactly as they were, and the drill still drills."""
    var_lib = tmp_path / "var" / "lib"
    dokku = var_lib / "dokku"
    (dokku / "config" / "litestream" / "apps" / "blog").mkdir(parents=True)
    (dokku / "config" / "litestream" / "apps" / "blog" / "litestream.yml").write_text("dbs: []\n")
    (dokku / "data" / "storage" / "blog--db").mkdir(parents=True)
    write_db(dokku / "data" / "storage" / "blog--db" / "production.sqlite3", 80)
    (dokku / "blog").mkdir()
    (dokku / "blog" / "ENV").write_text("SECRET=1\n")
    (tmp_path / "credentials").mkdir(mode=0o700)
    before = snapshot(dokku)
    result = run_module(litestream_drill.main, args(tmp_path, [app("blog")], host="dokku", scratch_dir=str(var_lib),
                                                    storage_root=str(dokku / "data" / "storage")))
    assert [(r["app"], r["status"], r["rows"], r["live_rows"]) for r in result["results"]] == [("blog", "ok", 80, 80)]
    assert snapshot(dokku) == before
    assert sorted(os.listdir(str(var_lib))) == ["dokku"]  # the run's own directory is gone, and only it


def test_a_run_directory_that_is_not_the_drills_own_is_never_removed(host, docker, monkeypatch):
    """Were the run's directory swapped for another (its marker gone), the drill refuses to remove it and says so."""
    from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import owned
    live(host, "blog", 80)
    made = []
    real_make = owned.make_temp

    def make_then_swap(parent, prefix, kind, hold=False):
        path, lock = real_make(parent, prefix, kind, hold=True)
        os.unlink(os.path.join(path, owned.MARKER))  # as if someone else's directory stood there now
        made.append(path)
        return path, lock
    monkeypatch.setattr(drill_core.owned, "make_temp", make_then_swap)
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: warnings.append(text))
    result = run_module(litestream_drill.main, args(host, [app("blog")]))
    assert result["results"][0]["status"] == "ok" and os.path.isdir(made[0])
    assert any("was not removed: refusing to remove %s: it has no marker" % made[0] in w for w in warnings), warnings


def test_a_run_directory_left_by_an_interrupted_run_is_removed_by_the_next_run(host, docker, monkeypatch):
    """A drill killed (or stopped by a reboot) leaves <scratch_dir>/<host>.<random> with root-owned copies of the
    databases; the next run of that host removes it, and never one whose run is still going (it holds its lock)."""
    import subprocess
    import sys
    from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import owned
    live(host, "blog", 80)
    scratch = str(host / "scratch" / "drill")
    stale = owned.make_temp(scratch, "dokku-1.", owned.DRILL_RUN)
    os.makedirs(os.path.join(stale, "blog"))
    going = owned.make_temp(scratch, "dokku-1.", owned.DRILL_RUN)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               "fd = os.open(sys.argv[1], os.O_RDONLY)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "print('locked', flush=True)\ntime.sleep(60)", going],
                              stdout=subprocess.PIPE, universal_newlines=True)
    other = os.path.join(scratch, "dokku-1.mine")  # not the drill's: no marker
    os.makedirs(other)
    try:
        assert holder.stdout.readline().strip() == "locked"
        warnings = []
        monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: warnings.append(text))
        result = run_module(litestream_drill.main, args(host, [app("blog")]))
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert result["results"][0]["status"] == "ok"
    assert sorted(os.listdir(scratch)) == sorted([os.path.basename(going), "dokku-1.mine"])
    assert warnings == ["removed %s: a drill run of this host that was interrupted (killed, or by a reboot) left it "
                        "behind" % stale]
