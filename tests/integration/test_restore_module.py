"""litestream_restore end to end against the lab: replicas written for real by litestream_replica
sidecars (S3 on moto, a file replica, sftp), restored with the module from ad-hoc playbooks.

Everything lives under a random root on the first lab host (/srv/rt-<id>) with its own credential
sets, so the tests rerun on a dirty lab and leave the lab's own apps alone.
"""
import json
import re
import secrets
import shlex
import time
from datetime import datetime, timezone

import pytest
import yaml

DB = "app.sqlite3"
MODULE = "dokku_sqlite.litestream.litestream_restore"
TASK_RE = re.compile(r"^TASK \[(.+?)\] \*+$", re.M)
RESULT_RE = re.compile(r"^(ok|changed|fatal|failed): \[([^\]]+)\](?:: FAILED!)? => (\{.*\})$", re.M)
RECAP_RE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
WRITE_ROWS = (
    "import sqlite3, sys\n"
    "c = sqlite3.connect(sys.argv[1], timeout=30)\n"
    "c.execute('pragma journal_mode=wal')\n"
    "c.execute('create table if not exists events (id integer primary key, batch integer, note text)')\n"
    "c.executemany('insert into events (batch, note) values (?, ?)',"
    " [(int(sys.argv[2]), 'row %d' % i) for i in range(int(sys.argv[3]))])\n"
    "c.commit()\n")
COUNT_ROWS = (
    "import json, sqlite3, sys\n"
    "live = len(sys.argv) > 2  # a replicating database: read it through its WAL like the app would\n"
    "c = sqlite3.connect(sys.argv[1] if live else 'file:' + sys.argv[1] + '?immutable=1', uri=not live, timeout=30)\n"
    "print(json.dumps(c.execute('select batch, count(*) from events group by batch').fetchall()))\n")


# --------------------------------------------------------------------------- helpers
class Env:
    """One random root on one lab host, with helpers to write playbooks and read results."""

    def __init__(self, lab, tmp_path_factory):
        self.lab = lab
        self.host = lab.hosts[0]
        self.id = secrets.token_hex(4)
        self.root = f"/srv/rt-{self.id}"
        self.creds_root = f"{self.root}/credentials"
        self.storage_root = f"{self.root}/storage"
        self.tmp = tmp_path_factory.mktemp(f"rt-{self.id}")
        self.runs = 0
        self.secret = json.loads((lab.state / "s3-credentials.json").read_text())["secret_access_key"]

    def app(self, kind):
        return f"rt-{self.id}-{kind}"

    def source_db(self, kind):
        return f"{self.storage_root}/{self.app(kind)}--db/{DB}"

    def replica(self, kind):
        if kind == "s3":
            return {"type": "s3", "bucket": "{{ lab_s3_bucket }}", "path": f"restore-tests/{self.app(kind)}",
                    "endpoint": "{{ lab_s3_endpoint }}", "region": "{{ lab_s3_region }}", "credentials": "rt-s3"}
        if kind == "file":
            return {"type": "file", "path": f"{{{{ lab_file_replica_dir }}}}/{self.app(kind)}"}
        return {"type": "sftp", "host": "{{ lab_sftp_host }}", "user": "{{ lab_sftp_user }}",
                "path": f"{{{{ lab_sftp_path }}}}/{self.app(kind)}", "host_key": "{{ lab_sftp_host_key }}",
                "credentials": "rt-sftp"}

    def restore_task(self, name, kind="s3", **args):
        params = {"replica": self.replica(kind), "database": DB, "credentials_root": self.creds_root,
                  "image": "{{ lab_litestream_image }}"}
        params.update(args)
        return {"name": name, MODULE: params, "ignore_errors": True}

    def play(self, tasks, *options):
        """Run one play on the host; returns ({task name: (status, result)}, completed process)."""
        self.runs += 1
        path = self.tmp / f"play-{self.runs}.yml"
        path.write_text(yaml.safe_dump([{"name": "restore tests", "hosts": self.host["name"],
                                         "gather_facts": False, "tasks": tasks}], sort_keys=False))
        proc = self.lab.playbook(str(path), "-v", *options, check=False)
        assert "PLAY RECAP" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert self.secret not in proc.stdout + proc.stderr, "a playbook run printed the S3 secret"
        results = {}
        chunks = TASK_RE.split(proc.stdout)
        for name, body in zip(chunks[1::2], chunks[2::2]):
            match = RESULT_RE.search(body)
            if match:
                results[name] = (match.group(1), json.loads(match.group(3)))
        return results, proc

    def sh(self, command, check=True):
        return self.lab.ssh(self.host, command, check=check)

    def write_rows(self, kind, batch, count):
        self.sh(f"python3 -c {shlex.quote(WRITE_ROWS)} {self.source_db(kind)} {batch} {count}")

    def batches(self, path, live=False):
        """{batch: rows} of a database file on the host (a restored one read immutable: no -wal/-shm appears)."""
        out = self.sh(f"python3 -c {shlex.quote(COUNT_ROWS)} {shlex.quote(path)}{' live' if live else ''}").stdout
        return dict(json.loads(out))

    def listing(self, directory):
        """Every path under a directory with type, mode, owner, mtime and checksum; '' when it does not exist."""
        return self.sh(f"cd / && [ -e {directory} ] && find {directory} -printf '%p %y %m %U:%G %T@\\n' | sort "
                       f"&& find {directory} -type f -exec sha256sum {{}} + | sort -k2 || true").stdout

    def stat(self, path):
        return self.sh(f"stat -c '%a %u:%g' {shlex.quote(path)}").stdout.strip()


def ok(results, name, changed):
    status, result = results[name]
    assert status in ("ok", "changed") and not result.get("failed"), f"{name}: {result.get('msg')}"
    assert result["changed"] is changed, f"{name}: changed={result['changed']}, expected {changed}"
    return result


def failed(results, name):
    status, result = results[name]
    assert status in ("fatal", "failed"), f"{name} did not fail: {result}"
    return result


def wait_for_replicas(env, kinds, timeout=60):
    """Until a dry run (--check) finds a backup of every database: the module itself is the probe."""
    deadline = time.time() + timeout
    while True:
        tasks = [env.restore_task(f"probe {kind}", kind=kind, dest=f"{env.root}/r/probe", if_replica_exists=True)
                 for kind in kinds]
        results, _proc = env.play(tasks, "--check")
        missing = [kind for kind in kinds if not results.get(f"probe {kind}", ("", {}))[1].get("position")]
        if not missing:
            return
        assert time.time() < deadline, f"no backup in the {missing} replicas {timeout} s after the sidecars started"
        time.sleep(2)


# --------------------------------------------------------------------------- fixture
@pytest.fixture(scope="module")
def env(lab, tmp_path_factory):
    """Three replicating databases: S3 with two batches of rows (and a time between them), file and sftp."""
    env = Env(lab, tmp_path_factory)
    kinds = ("s3", "file", "sftp")
    env.sh(" && ".join(f"mkdir -p {env.storage_root}/{env.app(k)}--db" for k in kinds))
    for kind in kinds:
        env.write_rows(kind, 1, 50)
    s3_file = "(lookup('ansible.builtin.file', lab_s3_credentials_file) | from_json)"
    tasks = [
        {"name": "S3 credential set", "dokku_sqlite.litestream.litestream_auth": {
            "name": "rt-s3", "credentials_root": env.creds_root,
            "access_key_id": "{{ %s.access_key_id }}" % s3_file,
            "secret_access_key": "{{ %s.secret_access_key }}" % s3_file}},
        {"name": "sftp credential set", "dokku_sqlite.litestream.litestream_auth": {
            "name": "rt-sftp", "credentials_root": env.creds_root,
            "ssh_private_key": "{{ lookup('ansible.builtin.file', lab_sftp_key_file) }}"}},
    ]
    for kind in kinds:
        tasks.append({"name": f"replicate {kind}", "dokku_sqlite.litestream.litestream_replica": {
            "app": env.app(kind), "databases": [DB], "storage_root": env.storage_root,
            "config_root": f"{env.root}/apps", "credentials_root": env.creds_root,
            "image": "{{ lab_litestream_image }}", "replica": dict(env.replica(kind), sync_interval="1s")}})
    try:
        results, proc = env.play(tasks)
        assert proc.returncode == 0, proc.stdout[-4000:]
        wait_for_replicas(env, kinds)

        # the first batch is in the replica: remember its position, and a time after it
        results, _proc = env.play([env.restore_task("latest after batch 1", dest=f"{env.root}/r/first")])
        first = ok(results, "latest after batch 1", True)
        assert env.batches(f"{env.root}/r/first/{DB}") == {1: 50}
        env.first_position = first["position"]
        time.sleep(2)
        env.between = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        time.sleep(2)
        env.write_rows("s3", 2, 30)
        time.sleep(4)
        yield env
    finally:
        cleanup = [{"name": f"stop replicating {kind}", "dokku_sqlite.litestream.litestream_replica": {
            "app": env.app(kind), "config_root": f"{env.root}/apps", "state": "absent"}, "ignore_errors": True}
            for kind in kinds]
        env.play(cleanup)
        env.sh(f"rm -rf {env.root} /srv/lab-replicas/{env.app('file')}", check=False)
        sftp_data = lab.state / "sftp-data" / env.app("sftp")
        if sftp_data.exists():
            import shutil
            shutil.rmtree(sftp_data, ignore_errors=True)


# --------------------------------------------------------------------------- tests
def test_latest_and_point_in_time_restores(env):
    results, _proc = env.play([
        env.restore_task("latest", dest=f"{env.root}/r/latest/deeper",
                         verify={"integrity": "full", "tables": ["events"], "min_rows": {"events": 80}}),
        env.restore_task("by timestamp", dest=f"{env.root}/r/at-time", timestamp=env.between),
        env.restore_task("by txid", dest=f"{env.root}/r/at-txid", txid=env.first_position),
    ])
    latest = ok(results, "latest", True)
    path = f"{env.root}/r/latest/deeper/{DB}"
    assert latest["restored"] is True and latest["path"] == path
    assert latest["tables"] == {"events": 80} and latest["integrity"] == "ok"
    assert env.batches(path) == {1: 50, 2: 30} == env.batches(env.source_db("s3"), live=True)
    assert int(latest["position"], 16) > int(env.first_position, 16)
    assert latest["size"] > 0 and latest["duration"] > 0
    assert env.stat(path) == "644 32767:32767"
    for directory in (f"{env.root}/r/latest", f"{env.root}/r/latest/deeper"):
        assert env.stat(directory) == "755 32767:32767", directory  # not Litestream's 0700 root
    assert env.sh(f"ls -A {env.root}/r/latest/deeper").stdout.split() == [DB]  # no temp file left
    assert all(c.startswith("docker run --rm") for c in latest["commands"])
    assert not any(env.secret in c for c in latest["commands"])

    at_time = ok(results, "by timestamp", True)
    assert env.batches(f"{env.root}/r/at-time/{DB}") == {1: 50}, f"timestamp {env.between}"
    assert at_time["position"] == env.first_position
    at_txid = ok(results, "by txid", True)
    assert env.batches(f"{env.root}/r/at-txid/{DB}") == {1: 50}
    assert at_txid["position"] == env.first_position


@pytest.mark.parametrize("kind", ["file", "sftp"])
def test_latest_restore_from_file_and_sftp_replicas(env, kind):
    dest = f"{env.root}/r/{kind}"
    results, _proc = env.play([env.restore_task(f"latest {kind}", kind=kind, dest=dest)])
    result = ok(results, f"latest {kind}", True)
    assert result["tables"] == {"events": 50}
    assert env.batches(f"{dest}/{DB}") == {1: 50}
    assert env.stat(f"{dest}/{DB}") == "644 32767:32767"


def test_existing_database_fail_skip_replace(env):
    dest = f"{env.root}/r/existing"
    results, _proc = env.play([env.restore_task("first", dest=dest)])
    ok(results, "first", True)
    before = env.listing(dest)

    results, proc = env.play([env.restore_task("default", dest=dest), env.restore_task("skip", dest=dest,
                                                                                         on_existing="skip")])
    message = failed(results, "default")["msg"]
    assert message == (f"restore of {DB} into {dest}/{DB}: {dest}/{DB} already exists; set on_existing: replace "
                       "to move it aside to a timestamped backup, or skip to leave it")
    assert failed(results, "default")["commands"] == []
    skipped = ok(results, "skip", False)
    assert skipped["commands"] == [] and skipped["restored"] is False
    assert re.search(r"changed=0\s", proc.stdout)
    assert env.listing(dest) == before, "fail or skip touched the existing database"

    # --check with replace: reports the change and the backup it would make, moves nothing
    results, _proc = env.play([env.restore_task("replace", dest=dest, on_existing="replace",
                                                txid=env.first_position)], "--check")
    predicted = ok(results, "replace", True)
    assert predicted["restored"] is False and len(predicted["backup"]) == 1
    assert env.listing(dest) == before, "--check moved or wrote files"

    results, _proc = env.play([env.restore_task("replace", dest=dest, on_existing="replace",
                                                txid=env.first_position)])
    replaced = ok(results, "replace", True)
    assert len(replaced["backup"]) == 1 and re.fullmatch(
        re.escape(f"{dest}/{DB}.") + r"\d{8}T\d{6}Z\.bak", replaced["backup"][0]), replaced["backup"]
    assert env.batches(f"{dest}/{DB}") == {1: 50}
    assert env.batches(replaced["backup"][0]) == {1: 50, 2: 30}  # the old database, kept
    assert env.sh(f"ls -A {dest}").stdout.split() == sorted([DB, replaced["backup"][0].rsplit("/", 1)[1]])


def test_missing_replica_and_check_mode_write_nothing(env):
    missing_dest = f"{env.root}/r/missing"
    check_dest = f"{env.root}/r/check-only"
    results, _proc = env.play([
        env.restore_task("no replica, accepted", dest=missing_dest, database="nothing-here.sqlite3",
                         if_replica_exists=True),
        env.restore_task("no replica", dest=missing_dest, database="nothing-here.sqlite3"),
    ])
    accepted = ok(results, "no replica, accepted", False)
    assert accepted["restored"] is False and "position" not in accepted
    refused = failed(results, "no replica")
    assert "holds no backup of nothing-here.sqlite3 (set if_replica_exists: true to accept that)" in refused["msg"]
    assert env.listing(missing_dest) == ""

    results, proc = env.play([env.restore_task("would restore", dest=check_dest)], "--check", "--diff")
    predicted = ok(results, "would restore", True)
    assert predicted["restored"] is False and predicted["position"]
    assert predicted["actions"][0] == f"create directory {check_dest}"
    assert env.listing(check_dest) == ""
    # the dry run's temporary configuration directory is gone too
    assert env.sh("ls -d /tmp/dokku-sqlite-restore-* 2>/dev/null || true").stdout.strip() == ""
