# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_restore decisions against a fake docker whose `litestream restore` writes a real SQLite file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import errno
import json
import os
import re
import shlex
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore as rs
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore_core
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore_stage
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore_swap
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_restore

from .conftest import answer_commands, assert_no_secret, run_module, snapshot

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY$secret'x"
UID, GID = os.getuid(), os.getgid()
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"
# Litestream's exact words (0.5.15 restoring a 0.5.17 replica; 0.5.17 with AWS_CA_BUNDLE set), as seen in the lab
DOWNGRADE = "Error: decode database: decode page 1: read page header 0: no flags allowed, reserved for future use\n"
CA_BUNDLE = ("Error: s3: cannot load aws config: unable to add custom RootCAs HTTPClient, has no "
             "WithTransportOptions, *http.Client\n")


BINARY = "/usr/local/bin/litestream"
# What the one-run script's litestream runs as, under a real /bin/sh: it records its arguments, the process
# that started it (`timeout N` or the shell) and the LITESTREAM_* variables it got, then answers a dry run
# from the file the fake wrote for it. A restore only records: the fake does it once the shell has exited
# (it is the script's last command, exec'd), from the arguments the shell really passed.
STUB = r"""#!%s -I
import json, os, sys
work = os.environ["FAKE_LITESTREAM"]
args = sys.argv[1:]
parent = open("/proc/%%d/cmdline" %% os.getppid(), "rb").read().split(b"\0")
timeout = int(parent[1]) if os.path.basename(parent[0].decode()) == "timeout" else None
with open(os.path.join(work, "log"), "a") as log:
    log.write(json.dumps({"args": args, "timeout": timeout,
                          "env": dict((k, v) for k, v in os.environ.items() if k.startswith("LITESTREAM_"))}) + "\n")
if "-dry-run" in args:
    with open(os.path.join(work, "dry-run.json")) as handle:
        answer = json.load(handle)
    sys.stdout.write(answer["out"])
    sys.stderr.write(answer["err"])
    sys.exit(answer["rc"])
"""
# What the one-run script may use besides the shell's builtins: an image has these (Debian's coreutils, grep and
# sed; Alpine's busybox). The fake's shell finds nothing else on its PATH.
IMAGE_TOOLS = ("timeout", "date", "grep", "sort", "tail")
DRY_RUN_IN_SCRIPT = re.compile(r"plan=\$\((?:\$\(command -v timeout >/dev/null && echo timeout (\d+)\) )?(.*?)\); rc=\$\?; ")


class FakeLitestream:
    """`docker run ... <image> -c '<script>'` where the script execs `litestream restore ...`, or is the one-run
    script (dry run, then restore) that a real /bin/sh runs with a stand-in litestream (STUB).

    The replica is a list of (txid, timestamp, rows): restoring up to a txid writes a database whose
    `events` table holds that many rows, at the path the -o argument names through the /restore mount.
    """

    def __init__(self, tmp_path=None):
        self.tmp_path = tmp_path  # where a one-run script's stand-ins go (None: the system's temp directory)
        self.replica = [(1, "2026-11-25T12:00:00Z", 50), (2, "2026-11-25T12:00:10Z", 80)]
        self.calls = []
        self.runs = []  # one per litestream run: (argv tail, litestream args, mounts, config text, env text)
        self.tables = ("events",)
        self.corrupt = False
        self.fail_restore = None
        self.fail_every_run = None  # stderr of a failure before anything is read (dry run included)
        self.disk_full = False
        self.keys = []
        self.unreachable = False  # the replica never answers: with a timeout, `timeout` ends Litestream (124)
        self.timeouts = []  # the timeout each litestream run was given (None: none)
        self.process_env = []  # the LITESTREAM_* variables each litestream run of a one-run script had
        self.security_options = []  # what `docker info` lists ("name=userns" when users are remapped)
        self.missing_tools = ()  # IMAGE_TOOLS the image lacks

    def __call__(self, module, argv, **kwargs):
        tail = list(argv[1:])
        self.calls.append(tail)
        if tail[:1] == ["info"]:
            return 0, json.dumps(self.security_options) + "\n", ""
        assert tail[:2] == ["run", "--rm"], "unexpected docker call %r" % (tail,)
        assert "--env" not in tail and "-e" not in tail and "--env-file" not in tail
        mounts = {}
        for i, arg in enumerate(tail):
            if arg == "-v":
                parts = tail[i + 1].split(":")
                mounts[parts[1]] = parts[0]
        assert tail[tail.index("--entrypoint") + 1] == "/bin/sh"
        script = tail[tail.index("-c") + 1]
        config_dir = mounts["/etc/litestream"]
        assert stat.S_IMODE(os.stat(config_dir).st_mode) == 0o700
        key_path = os.path.join(config_dir, "ssh_key")
        if os.path.exists(key_path):
            self.keys.append((open(key_path).read(), stat.S_IMODE(os.stat(key_path).st_mode)))
        if rs.PLANNED_MARK in script:
            return self.plan_and_restore(tail, mounts, script)
        command = script.split("exec ", 1)[1]
        timeout = None
        if command.startswith("$(command -v timeout >/dev/null && echo timeout "):
            prefix, command = command.split(") ", 1)
            timeout = int(prefix.rsplit(" ", 1)[1])
        words = shlex.split(command)
        assert words[0] == BINARY and words[1] in ("restore", "generations")
        return self.litestream(tail, words[1], words[2:], mounts, timeout, script)

    def litestream(self, tail, command, args, mounts, timeout, script=None):
        config_dir = mounts["/etc/litestream"]
        config = open(os.path.join(config_dir, "litestream.yml")).read()
        env_path = os.path.join(config_dir, "credentials.env")
        env = open(env_path).read() if os.path.exists(env_path) else None
        self.timeouts.append(timeout)
        self.runs.append((tail, args, mounts, config, env))
        if self.fail_every_run:
            return 1, "", self.fail_every_run
        assert args[:3] == ["-config", "/etc/litestream/litestream.yml", "-no-expand-env"]
        assert args[-1] == "/data/" + json.loads(config.split("path: ", 1)[1].split("\n")[0]).split("/")[-1]
        if "replicas:" in config:
            return self.litestream_v03(command, args, mounts, script)
        return self.litestream_05(args, mounts, timeout)

    def plan_and_restore(self, tail, mounts, script):
        """rs.plan_and_restore_script, run by /bin/sh: the shell's own logic (which exit status stops it, how it
        reads the transaction from the plan, what it passes to the restore, where the timeout applies) is real."""
        match = DRY_RUN_IN_SCRIPT.search(script)
        assert match, script
        timeout = int(match.group(1)) if match.group(1) else None
        words = shlex.split(match.group(2))
        assert words[:2] == [BINARY, "restore"] and "-dry-run" in words
        config_dir = mounts["/etc/litestream"]
        runs_before = len(self.runs)
        rc, out, err = self.litestream(tail, "restore", words[2:], mounts, timeout)
        del self.runs[runs_before:], self.timeouts[runs_before:]  # recorded below, as the shell ran them
        work = tempfile.mkdtemp(dir=None if self.tmp_path is None else str(self.tmp_path))
        with open(os.path.join(work, "dry-run.json"), "w") as handle:
            json.dump({"rc": rc, "out": out, "err": err}, handle)
        stub = os.path.join(work, "litestream")
        with open(stub, "w") as handle:
            handle.write(STUB % sys.executable)
        os.chmod(stub, 0o755)
        tools = os.path.join(work, "bin")
        os.mkdir(tools)
        for tool in IMAGE_TOOLS:
            if tool not in self.missing_tools:
                os.symlink(shutil.which(tool), os.path.join(tools, tool))
        real = script.replace(BINARY, stub).replace("/etc/litestream/", config_dir + "/")
        proc = subprocess.run(["/bin/sh", "-c", real], capture_output=True, text=True, timeout=60, check=False,
                              env={"PATH": tools, "FAKE_LITESTREAM": work})
        with open(os.path.join(work, "log")) as handle:
            ran = [json.loads(line) for line in handle]
        shutil.rmtree(work)
        ran_args = [[a.replace(config_dir + "/", "/etc/litestream/") for a in entry["args"]] for entry in ran]
        assert 1 <= len(ran) <= 2 and ran_args[0] == words[1:]
        assert ran[0]["timeout"] == timeout  # the real `timeout` wraps the dry run, and nothing else
        self.process_env.extend(entry["env"] for entry in ran)
        self.litestream(tail, "restore", words[2:], mounts, timeout)  # the dry run, as the shell ran it
        if len(ran) == 1:
            return proc.returncode, proc.stdout, proc.stderr
        assert proc.returncode == 0 and ran[1]["timeout"] is None
        assert ran_args[1][0] == "restore" and "-dry-run" not in ran_args[1]
        args = ran_args[1][1:]
        rc, out, err = self.litestream(tail, "restore", args, mounts, None)
        return rc, proc.stdout + out, proc.stderr + err

    def litestream_05(self, args, mounts, timeout):
        if self.unreachable:
            if timeout:
                return 124, "", ""
            return 1, "", ("Error: created at: operation error S3: ListObjectsV2, exceeded maximum number of "
                           "attempts, 10, dial tcp 127.0.0.1:9000: connect: connection refused\n")
        chosen = list(self.replica)
        if "-txid" in args:
            wanted = int(args[args.index("-txid") + 1], 16)
            if wanted > max([t for t, _s, _r in chosen] or [0]):
                chosen = []
            chosen = [c for c in chosen if c[0] <= wanted]
        if "-timestamp" in args:
            stamp = args[args.index("-timestamp") + 1]
            chosen = [c for c in chosen if c[1] <= stamp]
        if not chosen:
            if "-if-replica-exists" in args and "-dry-run" not in args:
                return 0, 'time=x level=INFO msg="no matching backups found"\n', ""
            return 1, "", "Error: no matching backup files available\n"
        txid, stamp, rows = chosen[-1]
        if "-dry-run" in args:
            plan = {"source": args[-1], "target_path": args[args.index("-o") + 1], "replica": "s3",
                    "min_txid": "%016x" % chosen[0][0], "max_txid": "%016x" % txid,
                    "files": [{"level": 0, "name": "%016x-%016x.ltx" % (t, t), "min_txid": "%016x" % t,
                               "max_txid": "%016x" % t, "size": 4096, "timestamp": s} for t, s, _r in chosen]}
            return 0, json.dumps(plan, indent=2) + "\n", ""
        if self.fail_restore:
            return 1, "", self.fail_restore
        out = args[args.index("-o") + 1]
        assert out.startswith("/restore/")
        path = os.path.join(mounts["/restore"], out[len("/restore/"):])
        if self.disk_full:
            # as Litestream 0.5.17 fails on a full disk: its own temp file half written, then the error
            with open(path + ".tmp", "wb") as handle:
                handle.write(b"SQLite format 3\0" + b"\0" * 8192)
            return 1, "", "Error: decode database: write page 512: write %s.tmp: no space left on device\n" % out
        if self.corrupt:
            with open(path, "wb") as handle:
                handle.write(b"SQLite format 3\0" + b"\xff" * 4080)
        else:
            conn = sqlite3.connect(path)
            conn.execute("pragma journal_mode=wal")
            for table in self.tables:
                conn.execute("create table %s (id integer primary key, note text)" % table)
                conn.executemany("insert into %s (note) values (?)" % table, [("row %d" % i,) for i in range(rows)])
            conn.execute("create table _litestream_seq (id integer)")
            conn.commit()
            conn.close()
        report = {"db_path": out, "replica": "s3", "txid": "%016x" % txid, "duration_ms": 3,
                  "integrity_check": args[args.index("-integrity-check") + 1] if "-integrity-check" in args else "none"}
        return 0, 'time=x level=INFO msg="post-restore integrity check passed"\n' + json.dumps(report, indent=2), ""

    def litestream_v03(self, command, args, mounts, script):
        """Litestream 0.3.13's generations and restore, in the words the real one prints (test_litestream_v03.py
        runs the real binary and parses the same table). The whole replica is one generation."""
        generation = "5f4d35e0a1b2c3d4"
        if command == "generations":
            assert script.startswith("mkdir -p /data && : > '/data/")  # 0.3 stats the database it lists for
            table = "name  generation        lag    start                 end\n"
            if self.replica:
                table += "s3    %s  1s     %s  %s\n" % (generation, self.replica[0][1], self.replica[-1][1])
            return 0, table, ""
        assert "-json" not in args and "-integrity-check" not in args and "-txid" not in args and "-dry-run" not in args
        chosen = list(self.replica)
        if "-timestamp" in args:
            stamp = args[args.index("-timestamp") + 1]
            chosen = [c for c in chosen if c[1] <= stamp]
        if not chosen:
            if "-if-replica-exists" in args:
                return 0, 'time=x level=INFO msg="no matching backups found"\n', ""
            return 1, 'time=x level=ERROR msg="failed to run" error="no matching backups found"\n', ""
        out = args[args.index("-o") + 1]
        path = os.path.join(mounts["/restore"], out[len("/restore/"):])
        conn = sqlite3.connect(path)
        conn.execute("create table events (id integer primary key, note text)")
        conn.executemany("insert into events (note) values (?)", [("row %d" % i,) for i in range(chosen[-1][2])])
        conn.commit()
        conn.close()
        return 0, 'time=x level=INFO msg="renaming database from temporary location"\n', ""


@pytest.fixture
def docker(monkeypatch, tmp_path_factory):
    return answer_commands(monkeypatch, FakeLitestream(tmp_path_factory.mktemp("fake-litestream")))


@pytest.fixture
def roots(tmp_path):
    setdir = tmp_path / "credentials" / "lab"
    setdir.mkdir(parents=True)
    (setdir / "credentials.json").write_text(json.dumps({"access_key_id": "AKIALAB", "secret_access_key": SECRET}))
    (tmp_path / "srv").mkdir()
    return tmp_path


def args(roots, **overrides):
    base = {"credentials_root": str(roots / "credentials"), "dest": str(roots / "srv" / "blog--db"),
            "database": "app.sqlite3", "owner": UID, "group": GID,
            "replica": {"type": "s3", "bucket": "bkt", "path": "blog", "endpoint": "http://127.0.0.1:9000",
                        "credentials": "lab"}}
    base.update(overrides)
    return base


def rows(path, table="events"):
    conn = sqlite3.connect("file:%s?immutable=1" % path, uri=True)  # reading must not touch a -wal
    try:
        return conn.execute("select count(*) from %s" % table).fetchone()[0]
    finally:
        conn.close()


def files_only(top):
    """snapshot() without directory mtimes: a temp file that came and went leaves only those behind."""
    return dict((path, value if value[4] is not None else value[:3]) for path, value in snapshot(top).items())


def entries(directory):
    return sorted(os.listdir(str(directory))) if os.path.isdir(str(directory)) else None


def full_path(path, dir_fd=None):
    """The path that os.mkdir(path, dir_fd=dir_fd) acts on."""
    return str(path) if dir_fd is None else os.path.join(os.readlink("/proc/self/fd/%d" % dir_fd), str(path))


def write_db(path, count):
    conn = sqlite3.connect(str(path))
    conn.execute("create table events (id integer primary key, note text)")
    conn.executemany("insert into events (note) values (?)", [("old %d" % i,) for i in range(count)])
    conn.commit()
    conn.close()


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("overrides, message", [
    ({"database": "../app.sqlite3"}, "must be a plain file name inside the storage directory"),
    ({"database": "db/app.sqlite3"}, "must be a plain file name inside the storage directory"),
    ({"name": ".hidden"}, "name: database name '.hidden' must not start with '.'"),
    ({"timestamp": "2026-11-25T12:00:00Z", "txid": "2"}, "give either timestamp or txid, not both"),
    ({"timestamp": "2026-11-25 12:00:00"}, "timestamp '2026-11-25 12:00:00' is not an RFC 3339 time"),
    ({"timestamp": "2026-02-30T12:00:00Z"}, "is not a valid time"),
    ({"txid": "xyz"}, "txid 'xyz' is not a hexadecimal transaction id"),
    ({"txid": "0"}, "transaction ids start at 1"),
    ({"mode": "u+rw"}, "mode: 'u+rw' must be an octal number"),
    ({"dest": "relative/dir"}, "dest: 'relative/dir' must be an absolute path"),
    ({"dry_run_timeout": -1}, "dry_run_timeout: -1 is not a whole number of seconds from 0 (no limit) to 86400 (a day)"),
    ({"verify": {"min_rows": {"events": "many"}}}, "verify.min_rows.events: 'many' is not a whole number of rows"),
    ({"replica": {"type": "s3", "bucket": "bkt", "credentials": "missing"}}, "credential set 'missing' not found"),
    ({"replica": {"type": "s3", "path": "x", "credentials": "lab"}}, "s3 replica needs a bucket"),
    ({"replica": {"type": "s3", "bucket": "bkt", "endpoint": "127.0.0.1:9000", "credentials": "lab"}},
     "has no scheme: write http:// or https://"),
    # the replica option's one spec and doc fragment: a 0.3 option is refused with the reason, as the sidecar does
    ({"replica": {"type": "s3", "bucket": "bkt", "credentials": "lab", "retention": "72h"}},
     "replica option 'retention' is a Litestream 0.3 option"),
])
def test_bad_input_fails_before_anything_runs(roots, docker, overrides, message):
    before = snapshot(roots)
    result = run_module(litestream_restore.main, args(roots, **overrides), fail=True)
    assert message in result["msg"], result["msg"]
    # names the database and the target, or (for a name, path or mode) the option that is wrong
    assert result["msg"].startswith(("restore of ", "database: ", "name: ", "dest: ", "mode: "))
    assert docker.calls == []
    assert snapshot(roots) == before
    assert result["changed"] is False


def test_existing_database_fails_by_default_naming_path_and_options(roots, docker):
    dest = roots / "srv" / "blog--db"
    dest.mkdir()
    write_db(dest / "app.sqlite3", 3)
    (dest / "app.sqlite3-wal").write_bytes(b"")
    before = snapshot(roots)
    result = run_module(litestream_restore.main, args(roots), fail=True)
    target = str(dest / "app.sqlite3")
    assert result["msg"] == (
        "restore of app.sqlite3 into %s: %s (with %s-wal) already exists; set on_existing: replace to move it "
        "aside to a timestamped backup, or skip to leave it" % (target, target, target))
    assert docker.calls == [] and snapshot(roots) == before


def test_a_stale_litestream_state_directory_counts_as_existing(roots, docker):
    dest = roots / "srv" / "blog--db"
    (dest / ".app.sqlite3-litestream").mkdir(parents=True)
    result = run_module(litestream_restore.main, args(roots), fail=True)
    assert "not the file itself, but %s" % (dest / ".app.sqlite3-litestream") in result["msg"]


def test_skip_changes_nothing_and_reads_no_replica(roots, docker):
    dest = roots / "srv" / "blog--db"
    dest.mkdir()
    write_db(dest / "app.sqlite3", 3)
    before = snapshot(roots)
    result = run_module(litestream_restore.main, args(roots, on_existing="skip"), diff=True)
    assert result["changed"] is False and result["restored"] is False
    assert docker.calls == [] and result["commands"] == []
    assert snapshot(roots) == before


# --------------------------------------------------------------------------- restores
def test_latest_restore_into_a_new_directory(roots, docker, tmp_path):
    dest = roots / "srv" / "new" / "blog--db"
    result = run_module(litestream_restore.main, args(roots, dest=str(dest), verify={"tables": ["events"],
                                                                                     "min_rows": {"events": 80}}),
                        diff=True)
    target = dest / "app.sqlite3"
    assert result["changed"] is True and result["restored"] is True
    assert result["path"] == str(target) and result["size"] == os.path.getsize(str(target))
    assert result["tables"] == {"events": 80}  # _litestream_* left out
    assert result["integrity"] == "ok" and result["position"] == "0000000000000002"
    assert result["position_time"] == "2026-11-25T12:00:10Z"
    # the replica's newest file is from the past: its age is when the dry run read it, minus that time
    expected = time.time() - calendar.timegm((2026, 11, 25, 12, 0, 10, 0, 0, 0))
    assert abs(result["position_age"] - expected) < 5
    assert result["backup"] == [] and isinstance(result["duration"], float)
    assert result["replica"] == "s3://bkt/blog/app.sqlite3 (endpoint http://127.0.0.1:9000)"
    assert rows(target) == 80
    assert entries(dest) == ["app.sqlite3"]  # no temp file, no -wal/-shm left behind
    assert stat.S_IMODE(os.stat(str(target)).st_mode) == 0o644
    for directory in (dest, dest.parent):
        assert stat.S_IMODE(os.stat(str(directory)).st_mode) == 0o755
    # one container: the dry run first, then the restore to the transaction the plan ends at
    assert len(docker.calls) == 1
    (dry, dry_args, dry_mounts, _c, _e), (real, real_args, mounts, config, env) = docker.runs
    assert dry is real and dry_mounts == mounts
    assert "-dry-run" in dry_args and "-dry-run" not in real_args
    assert real_args[real_args.index("-txid") + 1] == "0000000000000002"
    # Litestream writes into a root-only stage next to dest (here the app is root: its parent), never into dest
    assert os.path.dirname(mounts["/restore"]) == str(dest.parent)
    assert os.path.basename(mounts["/restore"]).startswith(".litestream-restore-")
    # one integrity check, the module's (its messages are the integrity result): Litestream is not asked for one
    assert "-integrity-check" not in real_args and result["integrity"] == "ok"
    # the keys reached Litestream's own process, through the sourced file, in both runs
    assert docker.process_env == [{"LITESTREAM_ACCESS_KEY_ID": "AKIALAB", "LITESTREAM_SECRET_ACCESS_KEY": SECRET}] * 2
    assert real[real.index("--network") + 1] == "host" and "litestream/litestream:0.5.17" in real
    assert SECRET not in config and SECRET in env.replace("'\"'\"'", "'")
    assert '"blog/app.sqlite3"' in config
    assert not os.path.exists(mounts["/etc/litestream"])  # the work directory is gone
    assert_no_secret(result, SECRET, "AKIALAB")
    assert_no_secret(docker.calls, SECRET, "AKIALAB")
    assert len(result["commands"]) == 1 and result["commands"][0].startswith("docker run --rm")
    assert result["diff"]["before"]["exists"] is False and result["diff"]["after"]["exists"] is True


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
def test_default_owner_is_herokuish(roots, docker):
    dest = roots / "srv" / "blog--db"
    params = args(roots)
    del params["owner"], params["group"]
    run_module(litestream_restore.main, params)
    for path in (dest, dest / "app.sqlite3"):
        st = os.stat(str(path))
        assert (st.st_uid, st.st_gid) == (32767, 32767)
    assert (os.stat(str(roots / "srv")).st_uid) == 0  # an existing parent keeps its owner


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
@pytest.mark.parametrize("chown,userns,owner", [("heroku", False, 1000), ("heroku", True, 1000 + 165536),
                                                ("herokuish", False, 32767), ("4242", False, 4242)])
def test_chown_names_the_owner_as_dokku_storage_does(roots, docker, chown, userns, owner):
    """One list of chown names and uids (validate.CHOWN_NAMES) for dokku_storage and the restore, with Dokku's
    user-namespace offset when `docker info` lists name=userns."""
    dest = roots / "srv" / "blog--db"
    docker.security_options = ["name=seccomp,profile=builtin"] + (["name=userns"] if userns else [])
    params = args(roots, chown=chown)
    del params["owner"], params["group"]
    run_module(litestream_restore.main, params)
    for path in (dest, dest / "app.sqlite3"):
        st = os.stat(str(path))
        assert (st.st_uid, st.st_gid) == (owner, owner)


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
def test_chown_false_gives_the_database_the_directorys_owner(roots, docker):
    """`chown: false` leaves the storage directory's owner alone in dokku_storage; the restored database takes
    that owner, not root (the restore role's old `'false' | int` gave 0)."""
    dest = roots / "srv" / "blog--db"
    dest.mkdir()
    os.chown(str(dest), 4321, 4322)
    params = args(roots, chown="false")
    del params["owner"], params["group"]
    run_module(litestream_restore.main, params)
    st = os.stat(str(dest / "app.sqlite3"))
    assert (st.st_uid, st.st_gid) == (4321, 4322)
    assert not any(c[:1] == ["info"] for c in docker.calls)  # nothing to offset


def test_chown_and_owner_are_mutually_exclusive(roots, docker):
    result = run_module(litestream_restore.main, args(roots, chown="heroku"), fail=True)
    assert "mutually exclusive" in result["msg"] and "chown" in result["msg"]
    assert docker.calls == []


def test_point_in_time_by_timestamp_restores_by_the_txid_the_dry_run_found(roots, docker):
    result = run_module(litestream_restore.main, args(roots, timestamp="2026-11-25T13:00:05+01:00"))
    assert result["position"] == "0000000000000001"
    assert rows(roots / "srv" / "blog--db" / "app.sqlite3") == 50
    (_d, dry_args, _m, _c, _e), (_r, real_args, _m2, _c2, _e2) = docker.runs
    assert dry_args[dry_args.index("-timestamp") + 1] == "2026-11-25T12:00:05Z"
    assert "-timestamp" not in real_args and real_args[real_args.index("-txid") + 1] == "0000000000000001"


def test_point_in_time_by_txid(roots, docker):
    result = run_module(litestream_restore.main, args(roots, txid="1"))
    assert result["position"] == "0000000000000001"
    assert rows(roots / "srv" / "blog--db" / "app.sqlite3") == 50


def test_a_point_before_the_first_backup_fails_with_the_range(roots, docker):
    before = snapshot(roots)
    result = run_module(litestream_restore.main, args(roots, timestamp="2026-11-25T11:00:00Z",
                                                      if_replica_exists=True), fail=True)
    assert ("holds transactions 0000000000000001 to 0000000000000002 (newest file 2026-11-25T12:00:10Z), "
            "none at or before 2026-11-25T11:00:00Z") in result["msg"]
    assert snapshot(roots) == before


def test_a_txid_beyond_the_replica_fails_with_the_range(roots, docker):
    result = run_module(litestream_restore.main, args(roots, txid="9"), fail=True)
    assert result["msg"].endswith("holds transactions 0000000000000001 to 0000000000000002 (newest file "
                                  "2026-11-25T12:00:10Z); txid 0000000000000009 cannot be restored from it")


def test_dest_that_is_a_file_fails_cleanly(roots, docker):
    (roots / "srv" / "blog--db").write_text("not a directory")
    result = run_module(litestream_restore.main, args(roots), fail=True)
    assert "dest %s exists and is not a directory" % (roots / "srv" / "blog--db") in result["msg"]
    assert docker.calls == []


def test_replace_keeps_the_old_files_as_a_consistent_backup(roots, docker, monkeypatch):
    dest = roots / "srv" / "blog--db"
    dest.mkdir()
    write_db(dest / "app.sqlite3", 3)
    (dest / "app.sqlite3-wal").write_bytes(b"old wal")
    (dest / "app.sqlite3-shm").write_bytes(b"old shm")
    (dest / ".app.sqlite3-litestream").mkdir()
    (dest / ".app.sqlite3-litestream" / "txid").write_text("42")
    monkeypatch.setattr(restore_core.time, "gmtime", lambda *a: (2026, 11, 25, 12, 0, 0, 2, 329, 0))
    result = run_module(litestream_restore.main, args(roots, on_existing="replace"))
    stamp = "app.sqlite3.20261125T120000Z.bak"
    assert result["restored"] is True and rows(dest / "app.sqlite3") == 80
    assert sorted(os.path.basename(p) for p in result["backup"]) == sorted(
        [stamp, stamp + "-wal", stamp + "-shm", ".%s-litestream" % stamp])
    assert rows(dest / stamp) == 3
    assert (dest / (stamp + "-wal")).read_bytes() == b"old wal"
    assert (dest / ("." + stamp + "-litestream") / "txid").read_text() == "42"
    assert entries(dest) == sorted(["app.sqlite3", stamp, stamp + "-wal", stamp + "-shm", ".%s-litestream" % stamp])

    # a second replace in the same second gets its own backup names: nothing is overwritten
    result = run_module(litestream_restore.main, args(roots, on_existing="replace", txid="1"))
    assert sorted(os.path.basename(p) for p in result["backup"]) == ["app.sqlite3.20261125T120000Z-2.bak"]
    assert rows(dest / "app.sqlite3") == 50 and rows(dest / stamp) == 3
    assert rows(dest / "app.sqlite3.20261125T120000Z-2.bak") == 80


@pytest.mark.parametrize("setup, verify, message", [
    ({}, {"tables": ["users"]}, "required table 'users' is missing"),
    ({}, {"min_rows": {"events": 81}}, "table 'events' has 80 rows, fewer than min_rows 81"),
    ({"corrupt": True}, {}, "the restored file is not a readable SQLite database"),
])
def test_verification_failure_removes_the_temp_file(roots, docker, setup, verify, message):
    for key, value in setup.items():
        setattr(docker, key, value)
    dest = roots / "srv" / "blog--db"
    dest.mkdir()
    write_db(dest / "app.sqlite3", 3)
    before = files_only(roots)
    result = run_module(litestream_restore.main, args(roots, on_existing="replace", verify=verify), fail=True)
    assert message in result["msg"]
    assert result["msg"].startswith("restore of app.sqlite3 into %s: " % (dest / "app.sqlite3"))
    assert files_only(roots) == before  # the old database untouched, no temp file, no backup


def test_a_failed_restore_leaves_no_directory_behind(roots, docker):
    docker.fail_restore = "Error: decode database: unexpected EOF\n"
    before = files_only(roots)
    result = run_module(litestream_restore.main, args(roots, dest=str(roots / "srv" / "a" / "b")), fail=True)
    assert "litestream restore failed: Error: decode database: unexpected EOF (exit 1; command: docker run" \
        in result["msg"]
    assert files_only(roots) == before


def test_an_unreachable_replica_fails_after_dry_run_timeout_and_says_so(roots, docker):
    docker.unreachable = True
    before = files_only(roots)
    result = run_module(litestream_restore.main, args(roots, dry_run_timeout=20), fail=True)
    assert ("the replica s3://bkt/blog/app.sqlite3 (endpoint http://127.0.0.1:9000) is unreachable: no answer within "
            "20 s (dry_run_timeout)") in result["msg"]
    assert docker.timeouts == [20] and files_only(roots) == before
    # without a limit Litestream's own error after its retries is the message
    result = run_module(litestream_restore.main, args(roots), fail=True)
    assert "cannot be read: Error: created at: operation error S3" in result["msg"] and docker.timeouts[-1] is None


def test_dry_run_timeout_limits_the_dry_run_only(roots, docker):
    run_module(litestream_restore.main, args(roots, dry_run_timeout=20))
    assert docker.timeouts == [20, None]  # the restore itself may take as long as the database needs


@pytest.mark.parametrize("overrides, containers, restored_to", [
    ({}, 1, "0000000000000002"),
    ({"timestamp": "2026-11-25T12:00:05Z"}, 1, "0000000000000001"),
    ({"txid": "1"}, 1, "0000000000000001"),
    ({"on_existing": "replace"}, 1, "0000000000000002"),
    # a replica without a backup must leave dest untouched: the dry run runs before the stage exists
    ({"if_replica_exists": True}, 2, "0000000000000002"),
])
def test_one_container_plans_and_restores(roots, docker, overrides, containers, restored_to):
    dest = roots / "srv" / "blog--db"
    dest.mkdir()
    if overrides.get("on_existing") == "replace":
        write_db(dest / "app.sqlite3", 3)
    result = run_module(litestream_restore.main, args(roots, **overrides))
    assert result["restored"] is True and result["position"] == restored_to
    assert len(docker.calls) == containers and len(result["commands"]) == containers
    dry, restore = docker.runs
    assert "-dry-run" in dry[1] and ("/restore" in dry[2]) == (containers == 1)
    assert restore[1][restore[1].index("-txid") + 1] == restored_to and "-timestamp" not in restore[1]
    assert rows(dest / "app.sqlite3") == {"0000000000000001": 50, "0000000000000002": 80}[restored_to]


def test_position_age_is_taken_when_the_dry_run_ended_not_after_the_restore(roots, docker, monkeypatch):
    """The drill reads position_age as the replica's lag: the restore's own time must not count. In one run the
    container's clock (the host's) says when the dry run ended; a slow restore is simulated by the module's
    clock running 1000 s ahead once the container returned."""
    real_time = time.time
    monkeypatch.setattr(restore_core.time, "time", lambda: real_time() + 1000)
    result = run_module(litestream_restore.main, args(roots))
    expected = real_time() - calendar.timegm((2026, 11, 25, 12, 0, 10, 0, 0, 0))
    assert abs(result["position_age"] - expected) < 5


def test_an_image_without_date_still_gets_a_position_age_without_the_restore(roots, docker, monkeypatch):
    docker.missing_tools = ("date",)
    result = run_module(litestream_restore.main, args(roots))
    expected = time.time() - 0.003 - calendar.timegm((2026, 11, 25, 12, 0, 10, 0, 0, 0))  # the report's duration_ms
    assert result["restored"] is True and abs(result["position_age"] - expected) < 5


def test_an_image_without_grep_restores_in_a_second_container(roots, docker):
    """The script cannot read the plan's transaction there: it stops after the dry run, and the module restores
    to the transaction it read from the plan itself."""
    docker.missing_tools = ("grep",)
    result = run_module(litestream_restore.main, args(roots, timestamp="2026-11-25T12:00:05Z"))
    assert result["restored"] is True and result["position"] == "0000000000000001"
    assert rows(result["path"]) == 50 and len(docker.calls) == 2
    dry, restore = docker.runs
    assert "-dry-run" in dry[1] and restore[1][restore[1].index("-txid") + 1] == "0000000000000001"
    assert entries(roots / "srv" / "blog--db") == ["app.sqlite3"]


@pytest.mark.parametrize("setup, message", [
    ({"fail_every_run": CA_BUNDLE}, "cannot be read: Error: s3: cannot load aws config"),
    ({"replica": []}, "holds no backup of app.sqlite3"),
    ({"fail_restore": "Error: decode database: unexpected EOF\n"}, "litestream restore failed: Error: decode database"),
])
def test_one_run_that_fails_leaves_dest_as_it_was(roots, docker, setup, message):
    """The stage (and dest, when missing) exist before the dry run in one run: a failure removes them."""
    for key, value in setup.items():
        setattr(docker, key, value)
    existing = roots / "srv" / "blog--db"
    existing.mkdir()
    (existing / "other-file").write_text("not ours")
    for dest in (existing, roots / "srv" / "new" / "blog--db"):
        before = files_only(roots)
        result = run_module(litestream_restore.main, args(roots, dest=str(dest)), fail=True)
        assert message in result["msg"] and result["restored"] is False
        assert files_only(roots) == before
    assert entries(existing) == ["other-file"] and not (roots / "srv" / "new").exists()
    assert len(docker.calls) == 2  # one container each


def test_a_point_before_the_first_backup_in_one_run_fails_with_the_range(roots, docker):
    before = files_only(roots)
    result = run_module(litestream_restore.main, args(roots, timestamp="2026-11-25T11:00:00Z"), fail=True)
    assert ("holds transactions 0000000000000001 to 0000000000000002 (newest file 2026-11-25T12:00:10Z), "
            "none at or before 2026-11-25T11:00:00Z") in result["msg"]
    assert files_only(roots) == before
    # the one run's dry run found nothing at that time; a second dry run read the whole replica for the message
    assert len(docker.calls) == 2 and [("-timestamp" in r[1]) for r in docker.runs] == [True, False]


def test_container_script_timeout_ends_a_hanging_litestream_in_a_real_shell(tmp_path):
    binary = tmp_path / "litestream"
    binary.write_text("#!/bin/sh\nsleep 30\n")
    binary.chmod(0o755)
    script = rs.container_script(str(tmp_path / "none.yml"), str(tmp_path / "none.env"), ["restore"],
                                 binary=str(binary), timeout=1)
    proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, timeout=20, check=False)
    assert proc.returncode == rs.TIMEOUT_RC
    binary.write_text("#!/bin/sh\necho \"$@\"\n")
    proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=20, check=False)
    assert proc.returncode == 0 and proc.stdout == "restore\n"


PLAN_STUB = """#!/bin/sh
case " $* " in
  *" -dry-run "*) cat "$PLAN"; exit "$DRY_RC";;
esac
echo "ran $*"
"""


@pytest.mark.parametrize("indent", [None, 2, 4])
@pytest.mark.parametrize("txid, dry_rc", [(None, 0), ("0000000000000005", 0), (None, 1)])
def test_plan_and_restore_script_in_a_real_shell(tmp_path, indent, txid, dry_rc):
    """The restore runs only after a dry run that exited 0, to the plan's newest transaction (read without a
    JSON parser, whatever the layout) or to the one asked for; the mark splits the two runs' output."""
    plan = {"min_txid": "0000000000000001", "max_txid": "00000000000000ff",
            "files": [{"level": 9, "max_txid": "0000000000000010"}, {"level": 0, "max_txid": "00000000000000ff"},
                      {"level": 1, "max_txid": "00000000000000a0"}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan, indent=indent) + "\n")
    binary = tmp_path / "litestream"
    binary.write_text(PLAN_STUB)
    binary.chmod(0o755)
    script = rs.plan_and_restore_script(str(tmp_path / "none.yml"), str(tmp_path / "none.env"),
                                        ["restore", "-dry-run", "-json", "/data/db"], ["restore", "-json", "/data/db"],
                                        txid=txid, binary=str(binary))
    proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=20, check=False,
                          env=dict(os.environ, PLAN=str(tmp_path / "plan.json"), DRY_RC=str(dry_rc)))
    parts = rs.split_planned_output(proc.stdout, proc.stderr)
    assert proc.returncode == dry_rc and parts["rc"] == dry_rc
    assert json.loads(parts["plan_out"]) == plan and abs(parts["at"] - time.time()) < 20
    if dry_rc:
        assert parts["out"] == "" and parts["err"] == ""  # the restore never started
    else:
        wanted = txid or "00000000000000ff"
        assert parts["txid"] == wanted and parts["out"] == "ran restore -json -txid %s /data/db\n" % wanted


@pytest.mark.parametrize("stamp, seconds", [("1764000000.123456789", 1764000000.123456789), ("1764000000", 1764000000.0),
                                            ("1764000000.N", 1764000000.0), ("", None)])
def test_marker_time(stamp, seconds):
    assert rs.marker_time(stamp) == seconds


def test_a_replica_from_a_newer_litestream_is_named_as_the_cause(roots, docker):
    docker.fail_restore = DOWNGRADE
    result = run_module(litestream_restore.main, args(roots), fail=True)
    assert "litestream restore failed: Error: decode database: decode page 1: read page header 0: no flags allowed, " \
        "reserved for future use (exit 1; command: docker run" in result["msg"]
    assert result["msg"].endswith(
        "; likely cause: the replica was written by a newer Litestream than this image (the LTX format of 0.5.16+ "
        "cannot be read by 0.5.15 or older): use the version that wrote the replica or a newer one, never an older one")


def test_aws_ca_bundle_in_the_image_is_named_as_the_cause(roots, docker):
    docker.fail_every_run = CA_BUNDLE
    result = run_module(litestream_restore.main, args(roots), fail=True)
    assert "the replica s3://bkt/blog/app.sqlite3 (endpoint http://127.0.0.1:9000) cannot be read: Error: s3: cannot " \
        "load aws config" in result["msg"]
    assert result["msg"].endswith("; likely cause: AWS_CA_BUNDLE is set inside the Litestream container (by the "
                                  "image?) and no Litestream 0.5 S3 client works with it: use an image that does "
                                  "not set it")
    assert len(docker.runs) == 1  # the dry run failed: nothing was restored


def test_an_unknown_failure_gets_no_made_up_cause(roots, docker):
    docker.fail_restore = "Error: decode database: unexpected EOF\n"
    result = run_module(litestream_restore.main, args(roots), fail=True)
    assert "likely cause" not in result["msg"]


@pytest.mark.parametrize("where", ["litestream", "fsync"])
def test_a_full_disk_fails_clearly_and_leaves_no_partial_file(roots, docker, monkeypatch, where):
    dest = roots / "srv" / "blog--db"
    dest.mkdir()
    (dest / "other-file").write_text("not ours")
    if where == "litestream":
        docker.disk_full = True
    else:
        def full(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        monkeypatch.setattr(restore_swap, "fsync_fd", full)
    before = files_only(roots)
    result = run_module(litestream_restore.main, args(roots), fail=True)
    assert result["msg"].startswith("restore of app.sqlite3 into %s: no space left on device in %s (" % (
        dest / "app.sqlite3", dest)), result["msg"]
    assert re.search(r"\(\d+\.\d MiB free of \d+\.\d MiB once the partial files? (was|were) removed\)", result["msg"])
    assert ("write /restore/app.sqlite3.tmp" in result["msg"]) == (where == "litestream")
    assert entries(dest) == ["other-file"]  # neither our temp file nor Litestream's .tmp is left
    assert files_only(roots) == before
    assert result["restored"] is False


def test_missing_replica_fails_unless_if_replica_exists(roots, docker):
    docker.replica = []
    before = files_only(roots)
    result = run_module(litestream_restore.main, args(roots), fail=True)
    assert "holds no backup of app.sqlite3 (set if_replica_exists: true to accept that)" in result["msg"]
    assert result["replica_missing"] is True  # what the restore drill reads to say it in its own terms
    # one container, whose dry run found nothing: the restore never ran, the stage and dest were removed
    assert len(docker.calls) == 1 and len(docker.runs) == 1 and result["actions"] == []
    assert files_only(roots) == before and not (roots / "srv" / "blog--db").exists()
    before = snapshot(roots)
    result = run_module(litestream_restore.main, args(roots, if_replica_exists=True))
    assert "replica_missing" not in result
    assert result["changed"] is False and result["restored"] is False
    assert snapshot(roots) == before  # not even dest was created
    assert len(docker.runs) == 2 and all("-dry-run" in r[1] for r in docker.runs)


def test_check_mode_reports_and_writes_nothing(roots, docker):
    dest = roots / "srv" / "blog--db"
    dest.mkdir()
    write_db(dest / "app.sqlite3", 3)
    before = snapshot(roots)
    result = run_module(litestream_restore.main, args(roots, on_existing="replace"), check=True, diff=True)
    assert result["changed"] is True and result["restored"] is False
    assert result["position"] == "0000000000000002"
    assert [os.path.basename(p) for p in result["backup"]][0].startswith("app.sqlite3.")
    assert [a.split(" ")[0] for a in result["actions"]] == ["restore", "move"]
    assert len(docker.runs) == 1 and "-dry-run" in docker.runs[0][1]
    assert "/restore" not in docker.runs[0][2]  # the dry run of its own mounts no target directory
    assert snapshot(roots) == before
    # a new directory: reported, not created
    result = run_module(litestream_restore.main, args(roots, dest=str(roots / "srv" / "other")), check=True)
    assert result["actions"][0] == "create directory %s" % (roots / "srv" / "other")
    assert snapshot(roots) == before


def test_check_mode_with_a_credential_set_not_written_yet_predicts(roots, docker):
    before = snapshot(roots)
    params = args(roots, replica={"type": "s3", "bucket": "bkt", "credentials": "later"})
    result = run_module(litestream_restore.main, params, check=True)
    assert result["changed"] is True and docker.calls == []
    assert snapshot(roots) == before


def test_file_replica_is_mounted_read_only_and_a_missing_one_is_no_replica(roots, docker):
    replica_dir = roots / "replicas" / "blog"
    replica_dir.mkdir(parents=True)
    params = args(roots, replica={"type": "file", "path": str(replica_dir)})
    result = run_module(litestream_restore.main, params)
    assert result["restored"] is True and result["replica"] == "file://%s/app.sqlite3" % replica_dir
    mounts = docker.runs[-1][2]
    assert mounts[str(replica_dir)] == str(replica_dir) and "/etc/litestream-credentials" not in mounts
    assert docker.runs[-1][4] is None  # a file replica needs no credentials file
    docker.runs[:] = []
    missing = args(roots, dest=str(roots / "srv" / "x"), if_replica_exists=True,
                   replica={"type": "file", "path": str(roots / "nowhere")})
    result = run_module(litestream_restore.main, missing)
    assert result["changed"] is False and docker.runs == []  # docker would have created the directory
    assert not (roots / "nowhere").exists() and not (roots / "srv" / "x").exists()


def test_sftp_mounts_the_credential_set_for_its_key(roots, docker):
    setdir = roots / "credentials" / "sftp"
    setdir.mkdir()
    (setdir / "ssh_key").write_text(KEY)
    params = args(roots, replica={"type": "sftp", "host": "backup:2222", "user": "ls", "path": "/srv/b",
                                  "host_key": "ssh-ed25519 AAAAkey", "credentials": "sftp"})
    result = run_module(litestream_restore.main, params)
    assert result["restored"] is True
    _tail, _args, mounts, config, env = docker.runs[-1]
    assert docker.keys[-1] == (KEY, 0o600)  # copied beside the config, root-only; the set is not mounted
    assert sorted(mounts) == ["/etc/litestream", "/restore"]
    assert '"/etc/litestream/ssh_key"' in config and "abc" not in config
    assert_no_secret(result, "abc\n")
    assert_no_secret(docker.calls, "abc\n")


# --------------------------------------------------------------------------- Litestream 0.3 replicas
V03 = "litestream/litestream:0.3.13"
PLUGIN_REPLICA = {"url": "s3://my-backup-bucket/my-sqlite-application?endpoint=http://127.0.0.1:9000",
                  "location": "path", "credentials": "lab"}


def test_a_0_3_image_lists_generations_then_restores_the_latest_with_0_3_flags(roots, docker):
    result = run_module(litestream_restore.main, args(roots, image=V03, replica=PLUGIN_REPLICA))
    assert result["restored"] is True and rows(result["path"]) == 80
    assert result["replica"] == "s3://my-backup-bucket/my-sqlite-application (endpoint http://127.0.0.1:9000)"
    assert result["position"] == "5f4d35e0a1b2c3d4" and result["position_time"] == "2026-11-25T12:00:10Z"
    assert [shlex.split(r[0][-1].split("exec ", 1)[1])[1] for r in docker.runs] == ["generations", "restore"]
    config = docker.runs[-1][3]
    assert "replicas:\n      - type: \"s3\"\n        path: \"my-sqlite-application\"\n" in config
    assert "LITESTREAM_SECRET_ACCESS_KEY" in docker.runs[-1][4] and SECRET not in config
    assert_no_secret(result, SECRET)
    assert "restore s3://my-backup-bucket/my-sqlite-application (endpoint http://127.0.0.1:9000) (latest, " \
           "generation 5f4d35e0a1b2c3d4)" in result["actions"][-1]


def test_a_0_3_point_in_time_restore_passes_the_timestamp_to_litestream(roots, docker):
    result = run_module(litestream_restore.main, args(roots, image=V03, replica=PLUGIN_REPLICA,
                                                      timestamp="2026-11-25T13:00:05+01:00"))
    assert rows(result["path"]) == 50 and result["position_time"] == "2026-11-25T12:00:05Z"
    assert docker.runs[-1][1][-3:-1] == ["-timestamp", "2026-11-25T12:00:05Z"]


def test_a_0_3_timestamp_outside_every_generation_fails_with_the_range(roots, docker):
    result = run_module(litestream_restore.main, args(roots, image=V03, replica=PLUGIN_REPLICA,
                                                      timestamp="2026-11-24T12:00:00Z"), fail=True)
    assert "holds generations from 2026-11-25T12:00:00Z to 2026-11-25T12:00:10Z (Litestream 0.3, to the second), " \
           "none of which spans 2026-11-24T12:00:00Z" in result["msg"]
    assert len(docker.runs) == 1 and not os.path.exists(str(roots / "srv" / "blog--db"))


def test_an_empty_0_3_replica_is_no_backup_and_a_0_5_one_names_the_0_3_layout(roots, docker):
    docker.replica = []
    result = run_module(litestream_restore.main, args(roots, image=V03, replica=PLUGIN_REPLICA), fail=True)
    assert result["msg"].endswith("holds no backup of app.sqlite3 (set if_replica_exists: true to accept that)")
    result = run_module(litestream_restore.main, args(roots), fail=True)
    assert "read with a 0.3 image (image: litestream/litestream:0.3.13) and replica.location: path" in result["msg"]


@pytest.mark.parametrize("overrides, message", [
    ({"txid": "2"}, "txid: the image litestream/litestream:0.3.13 runs Litestream 0.3, which has no transaction ids"),
    ({"replica": {"type": "sftp", "host": "backup:2222", "user": "ls", "path": "/srv/b", "host_key": "ssh-ed25519 A",
                  "location": "path"}},
     "image: litestream/litestream:0.3.13 runs Litestream 0.3, which reads s3 and file replicas here, not sftp"),
])
def test_what_0_3_cannot_do_is_refused_before_docker_runs(roots, docker, overrides, message):
    params = args(roots, image=V03, replica=PLUGIN_REPLICA)
    params.update(overrides)
    result = run_module(litestream_restore.main, params, fail=True)
    assert message in result["msg"] and docker.calls == []


# --------------------------------------------------------------------------- pure helpers
@pytest.mark.parametrize("given, expected", [
    ("2026-11-25T12:00:00Z", "2026-11-25T12:00:00Z"),
    ("2026-11-25T12:00:00.123456789Z", "2026-11-25T12:00:00.123456789Z"),
    ("2026-11-25T00:30:00+01:00", "2026-11-24T23:30:00Z"),
    ("2026-11-25T23:30:00.5-01:30", "2026-11-26T01:00:00.5Z"),
])
def test_parse_timestamp(given, expected):
    assert ls.parse_timestamp(given) == expected


@pytest.mark.parametrize("stamp, age", [
    ("2026-11-25T12:00:00Z", 1.5),
    ("2026-11-25T11:59:58.75Z", 2.75),
    ("2026-11-25T13:00:01.5+01:00", 0.0),
])
def test_seconds_since(stamp, age):
    now = calendar.timegm((2026, 11, 25, 12, 0, 1, 0, 0, 0)) + 0.5
    assert rs.seconds_since(stamp, now) == pytest.approx(age)


@pytest.mark.parametrize("given, expected", [
    ("2", "0000000000000002"), ("0x2A", "000000000000002a"), ("000000000000002a", "000000000000002a"),
])
def test_parse_txid(given, expected):
    assert ls.parse_txid(given) == expected


@pytest.mark.parametrize("given, expected", [("0644", 0o644), ("600", 0o600), (420, 0o644), ("0o640", 0o640)])
def test_file_mode(given, expected):
    assert v.file_mode(given) == expected


def test_json_after_log_lines():
    out = 'time=x level=INFO msg="post-restore integrity check passed"\n{\n  "txid": "0000000000000002"\n}\n'
    assert rs.parse_json_output(out) == {"txid": "0000000000000002"}
    assert rs.parse_json_output("Error: nothing\n") is None


def test_inspect_database_reads_the_file_through_a_memory_map(tmp_path, monkeypatch):
    """Counting rows and the quick check read every page: through a map they took a quarter and half the time."""
    path = tmp_path / "restored.sqlite3"
    write_db(path, 5)
    executed = []
    real_connect = sqlite3.connect

    class Recording:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql, *params):
            executed.append(sql)
            return self.conn.execute(sql, *params)

        def close(self):
            self.conn.close()
    monkeypatch.setattr(rs.sqlite3, "connect", lambda *a, **k: Recording(real_connect(*a, **k)))
    inspected = rs.inspect_database(str(path))
    assert inspected["tables"] == {"events": 5} and inspected["integrity"] == "ok"
    assert executed[0] == "PRAGMA mmap_size = %d" % os.path.getsize(str(path))


def test_a_parent_made_meanwhile_by_another_restore_is_no_failure(roots, docker, monkeypatch):
    """litestream_drill runs restores at once: two may make the same missing parent of dest at the same time."""
    real_mkdir = os.mkdir
    raced = []

    def mkdir(path, mode=0o777, **kwargs):
        full = full_path(path, kwargs.get("dir_fd"))
        if not raced and full.startswith(str(roots / "srv")):
            raced.append(full)
            real_mkdir(path, mode, **kwargs)  # the other restore was first
            raise OSError(errno.EEXIST, "File exists", path)
        return real_mkdir(path, mode, **kwargs)
    monkeypatch.setattr(restore_core.os, "mkdir", mkdir)  # os itself: the lock directory is made through it too
    dest = roots / "srv" / "drill" / "host" / "blog"
    result = run_module(litestream_restore.main, args(roots, dest=str(dest)))
    assert result["restored"] and raced == [str(roots / "srv" / "drill")]
    assert rows(dest / "app.sqlite3") == 80


# --------------------------------------------------------------------------- races with the app's user (issue 20)
APP_UID = 4242  # the app's user: it owns dest and may rename or replace anything in it at any moment


def swap_for_link(directory, entry, target):
    """What the app's user can do to any entry of its own directory: move it away, put a link in its place."""
    os.rename(os.path.join(directory, entry), os.path.join(directory, entry + ".moved"))
    os.symlink(str(target), os.path.join(directory, entry))


@pytest.fixture
def victim(tmp_path):
    """A root-only directory elsewhere, which no restore may write into, chmod or chown."""
    path = tmp_path / "victim"
    path.mkdir()
    os.chmod(str(path), 0o700)
    (path / "secret.sqlite3").write_text("root's")
    return path


def untouched(victim):
    st = os.stat(str(victim))
    return (sorted(os.listdir(str(victim))) == ["secret.sqlite3"] and stat.S_IMODE(st.st_mode) == 0o700
            and (st.st_uid, st.st_gid) == (0, 0) and os.stat(str(victim / "secret.sqlite3")).st_nlink == 1)


@pytest.mark.skipif(os.getuid() != 0, reason="the app's user is another uid: chown needs root")
def test_the_stage_is_out_of_the_apps_reach_so_a_link_in_dest_redirects_nothing(roots, docker, monkeypatch, victim):
    """Between the stage's creation and docker's mount, the app renames every stage it can reach in dest and puts a
    link to a root-only directory in its place: there is none in dest, so Litestream writes into the real stage."""
    dest = roots / "srv" / "blog--db"
    dest.mkdir()
    os.chown(str(dest), APP_UID, APP_UID)
    swapped = []
    real_make_stage = restore_stage.Stage.make

    def make_stage(self):
        real_make_stage(self)
        for entry in os.listdir(str(dest)):
            if entry.startswith(restore_stage.STAGE_PREFIX):
                swap_for_link(str(dest), entry, victim)
                swapped.append(entry)
    monkeypatch.setattr(restore_stage.Stage, "make", make_stage)
    result = run_module(litestream_restore.main, args(roots, owner=APP_UID, group=APP_UID))
    assert result["restored"] is True and swapped == [] and untouched(victim)
    stage = docker.runs[-1][2]["/restore"]
    assert os.path.dirname(stage) == str(roots / "srv") and not os.path.exists(stage)  # root's, next to dest
    assert entries(dest) == ["app.sqlite3"] and rows(dest / "app.sqlite3") == 80
    st = os.stat(str(dest / "app.sqlite3"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (APP_UID, APP_UID, 0o644)


@pytest.mark.skipif(os.getuid() != 0, reason="the app's user is another uid: chown needs root")
@pytest.mark.parametrize("when", ["before docker", "while Litestream runs", "while verifying"])
def test_a_stage_inside_dest_is_checked_around_the_docker_mount(roots, docker, monkeypatch, victim, when):
    """When no directory above dest will do (every one the app's user can write, or dest a mount of its own), the
    stage is made inside dest: a swap before the mount fails before docker runs, one during it or during the
    verification (SQLite opens the file by its path) fails the restore."""
    dest = roots / "srv" / "blog--db"
    dest.mkdir()
    os.chown(str(dest), APP_UID, APP_UID)
    monkeypatch.setattr(restore_stage, "writable_by", lambda st, uids, gids: True)

    def swap():
        entry = [e for e in os.listdir(str(dest)) if e.startswith(restore_stage.STAGE_PREFIX)][0]
        swap_for_link(str(dest), entry, victim)
    if when == "before docker":
        real_make_stage = restore_stage.Stage.make

        def make_stage(self):
            real_make_stage(self)
            swap()
        monkeypatch.setattr(restore_stage.Stage, "make", make_stage)
    elif when == "while verifying":
        decoy = roots / "decoy"
        decoy.mkdir()
        write_db(decoy / "app.sqlite3", 3)
        real_inspect = rs.inspect_database

        def inspect(path, integrity="quick"):
            entry = [e for e in os.listdir(str(dest)) if e.startswith(restore_stage.STAGE_PREFIX)][0]
            swap_for_link(str(dest), entry, decoy)
            return real_inspect(path, integrity)
        monkeypatch.setattr(rs, "inspect_database", inspect)
    else:
        real_call = docker.__call__

        def call(module, argv, **kwargs):
            swap()
            return real_call(module, argv, **kwargs)
        from ansible.module_utils import basic
        monkeypatch.setattr(basic.AnsibleModule, "run_command", call)
    result = run_module(litestream_restore.main, args(roots, owner=APP_UID, group=APP_UID), fail=True)
    assert re.search(r"the stage directory %s/\.litestream-restore-[0-9a-f]+ was moved away or replaced \(by a link "
                     r"or another directory\): " % re.escape(str(dest)), result["msg"]), result["msg"]
    if when == "before docker":
        assert result["msg"].endswith("docker would mount it at /restore, so nothing ran")
        assert docker.calls == [] and untouched(victim)
    elif when == "while verifying":
        assert result["msg"].endswith("the verification may have read another file; nothing was put in place")
        assert rows(roots / "decoy" / "app.sqlite3") == 3 and "tables" not in result  # not the decoy's
    else:
        assert result["msg"].endswith("Litestream may have written elsewhere than the stage; nothing was put in place")
    assert result["restored"] is False and not os.path.lexists(str(dest / "app.sqlite3"))


@pytest.mark.skipif(os.getuid() != 0, reason="the app's user is another uid: chown needs root")
@pytest.mark.parametrize("swap_in, message", [
    ("link", "%s is a symbolic link; the restore does not follow a link there (give the directory it points to)"),
    ("directory", "%s was replaced while this run made it (it now belongs to uid 4242); refusing to change its mode "
                  "or owner"),
])
def test_a_directory_swapped_while_make_dest_makes_it_is_never_chmodded_or_chowned(
        roots, docker, monkeypatch, victim, swap_in, message):
    """Between the mkdir of a missing dest and its chmod/chown, dest is moved away and a link to a root-only directory
    (or a directory of the app's) put in its place: neither is followed, changed or written into."""
    dest = roots / "srv" / "blog--db"
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777, **kwargs):
        real_mkdir(path, mode, **kwargs)
        full = full_path(path, kwargs.get("dir_fd"))
        if full == str(dest):
            if swap_in == "link":
                swap_for_link(str(dest.parent), dest.name, victim)
            else:
                os.rename(full, full + ".moved")
                real_mkdir(full, 0o700)
                os.chown(full, APP_UID, APP_UID)
    monkeypatch.setattr(restore_core.os, "mkdir", mkdir)
    result = run_module(litestream_restore.main, args(roots, owner=APP_UID, group=APP_UID), fail=True)
    assert result["msg"] == "restore of app.sqlite3 into %s: %s" % (dest / "app.sqlite3", message % dest)
    assert untouched(victim) and docker.calls == []
    if swap_in == "directory":
        st = os.stat(str(dest))
        assert (st.st_uid, stat.S_IMODE(st.st_mode), os.listdir(str(dest))) == (APP_UID, 0o700, [])


def test_a_link_at_dest_is_refused_not_followed(roots, docker, victim):
    dest = roots / "srv" / "blog--db"
    os.symlink(str(victim), str(dest))
    result = run_module(litestream_restore.main, args(roots), fail=True)
    assert result["msg"] == ("restore of app.sqlite3 into %s: %s is a symbolic link; the restore does not follow a "
                             "link there (give the directory it points to)" % (dest / "app.sqlite3", dest))
    assert untouched(victim) and os.path.islink(str(dest))


def test_replace_moves_a_link_at_the_database_aside_as_a_link(roots, docker, victim):
    """on_existing: replace keeps the old file by a hard link; a link the app put there is kept as that link, never
    as a hard link to the root-only file it points to."""
    dest = roots / "srv" / "blog--db"
    dest.mkdir()
    os.symlink(str(victim / "secret.sqlite3"), str(dest / "app.sqlite3"))
    result = run_module(litestream_restore.main, args(roots, on_existing="replace"))
    assert result["restored"] is True and rows(dest / "app.sqlite3") == 80
    backup = result["backup"][0]
    assert os.path.islink(backup) and os.readlink(backup) == str(victim / "secret.sqlite3")
    assert untouched(victim)


@pytest.mark.skipif(os.getuid() != 0, reason="the app's user is another uid: chown needs root")
@pytest.mark.parametrize("layout, where", [
    ("root", "parent"),           # a root-owned parent (Dokku's storage root): next to dest
    ("app_parent", "srv"),        # a parent the app's user owns (made by an earlier restore): one level higher
    ("world_writable", "srv"),    # a world-writable parent without the sticky bit: one level higher too
    ("sticky", "parent"),         # a sticky one (like /tmp): nobody else renames root's entry there
    ("own_mount", "dest"),        # no directory above dest on dest's mount: inside dest, checked around docker
])
def test_where_the_stage_goes(roots, docker, monkeypatch, layout, where):
    srv = roots / "srv"
    parent = srv / "p"
    parent.mkdir()
    dest = parent / "blog--db"
    if layout == "app_parent":
        os.chown(str(parent), APP_UID, APP_UID)
    if layout in ("world_writable", "sticky"):
        os.chmod(str(parent), 0o777 | (stat.S_ISVTX if layout == "sticky" else 0))
    if layout == "own_mount":
        real = restore_stage.mount_id
        monkeypatch.setattr(restore_stage, "mount_id", lambda fd: -1 if os.fstat(fd).st_ino == os.stat(str(dest)).st_ino
                            else real(fd))
    result = run_module(litestream_restore.main, args(roots, dest=str(dest), owner=APP_UID, group=APP_UID))
    assert result["restored"] is True and entries(dest) == ["app.sqlite3"]
    stage = docker.runs[-1][2]["/restore"]
    assert os.path.dirname(stage) == str({"parent": parent, "srv": srv, "dest": dest}[where])
    assert not os.path.lexists(stage)
