# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_health against a fake Dokku host: litestream_host converges the fake (so the sidecars carry the real
config hash labels), then each sidecar's `docker exec` answers as Litestream 0.5.17 does (outputs copied from real
runs, docs/litestream-health-facts.md) and `docker logs` with the lines Litestream writes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import json
import os
import re
import stat
import threading
import time

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import health_core as hc
from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_health, litestream_host, litestream_ownership

from . import test_litestream_host as th
from ..module_utils.test_sidecar_reads import SocketServer
from .conftest import assert_no_secret, run_module, snapshot

HEARTBEAT_TOKEN = "hb-SECRET-TOKEN-77"


def rfc3339(epoch, nanos=False):
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    return text + (".%09dZ" % int((epoch % 1) * 1e9) if nanos else "Z")


class Sidecar:
    """What one sidecar's Litestream answers: per database the local and replica TXIDs and the newest file's age."""

    def __init__(self, databases, age=5.0):
        self.dbs = dict((db, dict(local=7, replica=7, age=age, listed=True, status="ok")) for db in databases)
        self.order = list(databases)
        self.list_rc, self.list_out = 0, None
        self.ltx_error = None   # text of an `Error:` the replica listing ends with
        self.ltx_rc = 1
        self.logs = ""
        self.delay = 0.0

    def output(self):
        now = time.time()
        parts = []
        listing = {"databases": [dict(path="/data/" + db, status="replicating", last_sync_at=rfc3339(now - 1, True))
                                 for db in self.order if self.dbs[db]["listed"]]}
        parts.append(("list", self.list_out if self.list_out is not None else json.dumps(listing, indent=2),
                      self.list_rc))
        status = [dict(database="/data/" + db, status=d["status"], local_txid="%016x" % d["local"], wal_size="16 kB")
                  for db, d in self.dbs.items()]
        parts.append(("status", json.dumps(status, indent=2), 0))
        for index, db in enumerate(self.order):
            d = self.dbs[db]
            if self.ltx_error is not None:
                parts.append(("ltx %d" % index, "Error: " + self.ltx_error, self.ltx_rc))
                continue
            files = [dict(level=0, min_txid="%016x" % t, max_txid="%016x" % t, size=100,
                          timestamp=rfc3339(now - d["age"] - (d["replica"] - t))) for t in range(1, d["replica"] + 1)]
            parts.append(("ltx %d" % index, json.dumps(files, indent=2), 0))
        return "".join("%s %s\n%s\n%s rc %s\n" % (hc.MARK, name, body, hc.MARK, rc) for name, body, rc in parts)


class HealthHost(th.FakeHost):
    """The fake host of test_litestream_host plus `docker exec` and `docker logs` of the sidecars."""

    def __init__(self, storage_root):
        super(HealthHost, self).__init__(storage_root)
        self.sidecars = {}
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def docker(self, tail):
        # the provision's first-sync wait (before provision() fills self.sidecars) gets test_litestream_host's answers
        if tail[0] == "exec" and tail[1] in self.sidecars:
            return self.exec_(tail)
        if tail[0] == "logs" and tail[-1] in self.sidecars:
            return 0, self.sidecars[tail[-1]].logs, ""
        return super(HealthHost, self).docker(tail)

    def exec_(self, tail):
        name = tail[1]
        assert tail[2:4] == ["/bin/sh", "-c"]
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.sidecars[name].delay)
            return 0, self.sidecars[name].output(), ""
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture
def host(tmp_path, monkeypatch):
    fake = HealthHost(str(tmp_path / "storage"))
    (tmp_path / "storage").mkdir()
    monkeypatch.setattr(th.storage_core, "STORAGE_ROOT", str(tmp_path / "storage"))
    monkeypatch.setattr(th.auth_core, "dokku_ids", lambda: None)

    def run_command(self, argv, **kwargs):
        return fake(self, argv, **kwargs)
    monkeypatch.setattr(th.basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(th.basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    fake.tmp = tmp_path
    return fake


def file_entry(name, **extra):
    base = {"app": name, "create": True, "replica": {"type": "file", "path": "/srv/replicas/%s" % name, "sync_interval": "1s"}}
    base.update(extra)
    return base


def provision(host, apps):
    """litestream_host converges the fake; every sidecar answers healthy until a test changes it."""
    run_module(litestream_host.main, th.host_args(host, apps))
    for entry in apps:
        host.sidecars["dokku.litestream.%s" % entry["app"]] = Sidecar(entry.get("databases") or ["production.sqlite3"])
    host.calls[:] = []


def health_args(host, apps, **overrides):
    args = th.host_args(host, apps)
    args.pop("credential_sets")
    args["state_dir"] = str(host.tmp / "health")
    args.update(overrides)
    return args


def check(host, apps, check_mode=False, **overrides):
    return run_module(litestream_health.main, health_args(host, apps, **overrides), check=check_mode)


def db_result(result, app, database="production.sqlite3"):
    record = next(r for r in result["apps"] if r["app"] == app)
    return next(d for d in record["databases"] if d["database"] == database)


APPS = [th.entry("shop"), file_entry("notes", databases=["a.sqlite3", "b.sqlite3"])]


def test_all_ok_reads_the_host_once_and_each_sidecar_once(host):
    provision(host, APPS)
    result = check(host, APPS)
    assert result["changed"] is False and result["failed_databases"] == []
    assert result["summary"]["ok"] == 3 and result["summary"]["healthy"] is True
    assert result["summary"]["apps"] == 2 and result["summary"]["databases"] == 3
    # one inspect for every sidecar, one exec per app, no log read when all is ok
    assert [c[:2] for c in host.calls] == [["docker", "inspect"], ["docker", "exec"], ["docker", "exec"]]
    assert result["commands"] == ["docker inspect --type container dokku.litestream.shop dokku.litestream.notes"]
    for record in result["apps"]:
        assert record["config_hash"]["matches"] is True, record["config_hash"]
        assert record["sidecar_state"]["running"] and record["sidecar_state"]["policy_ok"]
        assert record["socket"] == "ok"
        for db in record["databases"]:
            assert db["status"] == "ok" and db["reason"] is None
            assert db["local_txid"] == db["replica_txid"] == 7 and db["lag_txid"] == 0
            assert db["replica_age_seconds"] == 0.0 and 0 <= db["last_sync_age_seconds"] < 5
    assert db_result(result, "shop")["replica_type"] == "s3"
    assert [r["message"] for r in result["results"]] == [None] * 3
    assert_no_secret(result, th.SECRET)


def test_the_exec_script_reads_level_0_only_and_sources_the_credentials_for_ltx_alone(host):
    provision(host, APPS)
    check(host, APPS, timeout=7)
    script = next(c for c in host.calls if c[:3] == ["docker", "exec", "dokku.litestream.notes"])[-1]
    lines = script.splitlines()
    source = next(i for i, line in enumerate(lines) if ". '/etc/litestream/credentials.env'" in line)
    assert "list -json -socket '/var/run/litestream.sock' -timeout 7" in lines[1] and "status -json -config '/etc/litestream/litestream.yml'" in lines[2]
    assert source == 3 and all("ltx -level 0 -json" in line for line in lines[4:6])
    assert "'/data/a.sqlite3'" in lines[4] and "'/data/b.sqlite3'" in lines[5]
    assert 'T="timeout 7"' in lines[0] and "-level all" not in script


def test_an_idle_database_whose_replica_holds_its_last_transaction_is_ok_however_old(host):
    provision(host, APPS)
    host.sidecars["dokku.litestream.shop"].dbs["production.sqlite3"]["age"] = 30 * 86400
    result = check(host, APPS)
    assert db_result(result, "shop")["status"] == "ok" and db_result(result, "shop")["replica_age_seconds"] == 0.0


def test_a_replica_behind_within_max_lag_is_ok_with_the_transactions_on_the_way(host):
    provision(host, APPS)
    host.sidecars["dokku.litestream.shop"].dbs["production.sqlite3"].update(local=9, age=3)
    db = db_result(check(host, APPS), "shop")
    assert db["status"] == "ok" and db["lag_txid"] == 2 and db["reason"] == "2 transactions on the way to the replica"
    assert 2 <= db["replica_age_seconds"] < 10


def test_a_replica_behind_and_older_than_max_lag_is_stale(host):
    provision(host, APPS)
    host.sidecars["dokku.litestream.shop"].dbs["production.sqlite3"].update(local=12, age=600)
    result = check(host, APPS)
    db = db_result(result, "shop")
    assert db["status"] == "stale"
    assert re.match(r"the replica is 5 transactions behind and its newest file is 60\d+s old \(max_lag 60s\)$",
                    db["reason"]), db["reason"]
    assert result["failed_databases"] == ["this host/shop/production.sqlite3"]
    assert result["summary"]["stale"] == 1 and result["summary"]["healthy"] is False
    # the same with a wider threshold per run: ok
    assert db_result(check(host, APPS, max_lag_seconds=3600), "shop")["status"] == "ok"


def test_an_entrys_own_max_lag_wins_over_the_option_and_the_default(host):
    provision(host, APPS)
    host.sidecars["dokku.litestream.shop"].dbs["production.sqlite3"].update(local=12, age=600)
    apps = [dict(APPS[0], max_lag="15m"), APPS[1]]
    result = check(host, apps, max_lag_seconds=30)
    shop = next(r for r in result["apps"] if r["app"] == "shop")
    notes = next(r for r in result["apps"] if r["app"] == "notes")
    assert shop["max_lag_seconds"] == 900 and db_result(result, "shop")["status"] == "ok"
    assert notes["max_lag_seconds"] == 30
    stale = check(host, [dict(APPS[0], max_lag="2m"), APPS[1]], max_lag_seconds=3600)
    assert db_result(stale, "shop")["status"] == "stale" and "(max_lag 120s)" in db_result(stale, "shop")["reason"]


def test_the_default_max_lag_is_five_sync_intervals_and_at_least_a_minute():
    assert hc.default_max_lag({"sync_interval": "1s"}) == 60
    assert hc.default_max_lag({"sync_interval": "1m"}) == 300
    assert hc.default_max_lag({"sync_interval": "1m30s"}) == 450
    assert hc.default_max_lag({}) == 60


@pytest.mark.parametrize("error, reason", [
    ("operation error S3: ListObjectsV2, https response error StatusCode: 404, RequestID: x, api error NoSuchBucket: "
     "The specified bucket does not exist", "the bucket does not exist (NoSuchBucket)"),
    ("operation error S3: ListObjectsV2, https response error StatusCode: 403, api error InvalidAccessKeyId: The AWS "
     "Access Key Id you provided does not exist in our records.", "authentication failed: the store does not know"),
    ("api error SignatureDoesNotMatch: The request signature we calculated does not match",
     "authentication failed: the secret access key is wrong"),
    ("StatusCode: 403, api error AccessDenied: Access Denied", "access denied"),
    ("operation error S3: ListObjectsV2, exceeded maximum number of attempts, 10, https response error: dial tcp "
     "127.0.0.1:39469: connect: connection refused", "the replica store is unreachable (connection refused)"),
    ("initialize replica client: ssh: handshake failed: ssh: host key mismatch",
     "the sftp server's host key does not match the replica's host_key"),
    ("ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey]",
     "authentication failed: the sftp server refused the key"),
])
def test_a_replica_that_cannot_be_listed_is_failing_with_the_stores_reason_in_words(host, error, reason):
    provision(host, APPS)
    host.sidecars["dokku.litestream.shop"].ltx_error = error
    db = db_result(check(host, APPS), "shop")
    assert db["status"] == "failing"
    assert db["reason"].startswith("listing the replica failed: " + reason), db["reason"]


def test_a_listing_that_times_out_is_failing(host):
    provision(host, APPS)
    host.sidecars["dokku.litestream.shop"].ltx_error, host.sidecars["dokku.litestream.shop"].ltx_rc = "", 124
    db = db_result(check(host, APPS, timeout=3), "shop")
    assert db["status"] == "failing"
    assert db["reason"].startswith("listing the replica did not finish within 3s")


@pytest.mark.parametrize("rc", [124, 137])  # timeout's own exit, or the SIGKILL 5 s after its SIGTERM
def test_each_docker_exec_is_bounded_on_the_host_and_a_hung_one_is_failing(host, rc):
    provision(host, APPS)
    real = host.exec_
    host.exec_ = lambda tail: (rc, "", "") if tail[1] == "dokku.litestream.shop" else real(tail)
    result = check(host, APPS, timeout=3)
    # 3 s for list, status and each database's ltx, plus 15 s for the exec itself: shop 1 database, notes 2
    assert sorted(b for b in host.bounds if b[:2] == ("docker", "exec")) == [("docker", "exec", 24), ("docker", "exec", 27)]
    db = db_result(result, "shop")
    assert db["status"] == "failing"
    assert "docker exec did not finish within 24s (the docker daemon or the sidecar hangs)" in db["reason"]
    assert db_result(result, "notes", "a.sqlite3")["status"] == "ok"
    assert all(c.startswith("docker ") for r in result["apps"] for c in r["commands"])  # the bound is not shown


def test_a_socket_that_does_not_answer_is_failing_and_the_log_gives_the_reason(host):
    provision(host, APPS)
    sidecar = host.sidecars["dokku.litestream.shop"]
    sidecar.list_out, sidecar.list_rc = "", 124
    sidecar.logs = ('time=2026-11-30T21:09:42Z level=ERROR msg="sync error" system=store db=production.sqlite3 '
                    'error="check database behind replica: get replica position: operation error S3: ListObjectsV2, '
                    'exceeded maximum number of attempts, 10, dial tcp 127.0.0.1:39469: connect: connection refused" '
                    'consecutive_errors=3 backoff=4000000000\n')
    result = check(host, APPS)
    db = db_result(result, "shop")
    assert db["status"] == "failing" and db["reason"].startswith("Litestream's control socket did not answer within 10s")
    assert db["reason"].endswith("the sidecar's log says: the replica store is unreachable (connection refused)")
    assert db["sync_errors"] == 1
    record = next(r for r in result["apps"] if r["app"] == "shop")
    assert record["socket"] == "timeout" and len(record["log_errors"]) == 1
    assert ["docker", "logs", "--tail", "200", "dokku.litestream.shop"] in host.calls
    assert all(d["status"] == "ok" for d in next(r for r in result["apps"] if r["app"] == "notes")["databases"])


def test_authentication_failures_in_the_log_are_named_as_such(host):
    provision(host, APPS)
    sidecar = host.sidecars["dokku.litestream.shop"]
    sidecar.dbs["production.sqlite3"].update(local=12, age=900)
    sidecar.logs = ('time=x level=ERROR msg="monitor error" system=store db=production.sqlite3 replica=s3 error="write '
                    'ltx file: s3: put object: operation error S3: PutObject, https response error StatusCode: 403, api '
                    'error InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records." '
                    'consecutive_errors=5 backoff=16000000000\n')
    db = db_result(check(host, APPS), "shop")
    assert db["status"] == "stale" and "the sidecar's log says: authentication failed" in db["reason"]


def test_no_sidecar_a_stopped_one_and_an_unlisted_database_are_missing(host):
    provision(host, APPS + [file_entry("blog")])
    del host.containers["dokku.litestream.blog"]
    host.containers["dokku.litestream.shop"]["State"] = {"Running": False, "Status": "exited", "ExitCode": 0}
    host.sidecars["dokku.litestream.notes"].dbs["b.sqlite3"]["listed"] = False
    result = check(host, APPS + [file_entry("blog")])
    assert db_result(result, "blog") == dict(db_result(result, "blog"), status="missing",
                                             reason="no sidecar dokku.litestream.blog on this host")
    assert db_result(result, "shop")["status"] == "missing"
    assert db_result(result, "shop")["reason"] == "the sidecar is not running (exited, exit code 0)"
    assert db_result(result, "notes", "b.sqlite3")["status"] == "missing"
    assert db_result(result, "notes", "b.sqlite3")["reason"] == "Litestream does not replicate /data/b.sqlite3 (not in its list)"
    assert db_result(result, "notes", "a.sqlite3")["status"] == "ok"
    assert sorted(result["failed_databases"]) == ["this host/blog/production.sqlite3", "this host/notes/b.sqlite3",
                                                  "this host/shop/production.sqlite3"]
    # no exec into a sidecar that is not running
    not_running = (["docker", "exec", "dokku.litestream.blog"], ["docker", "exec", "dokku.litestream.shop"])
    assert not [c for c in host.calls if c[:3] in not_running]
    shop = next(r for r in result["apps"] if r["app"] == "shop")
    assert shop["sidecar_state"]["running"] is False and shop["sidecar_state"]["exists"] is True


def test_a_database_file_that_does_not_exist_is_missing(host):
    provision(host, APPS)
    host.sidecars["dokku.litestream.shop"].dbs["production.sqlite3"]["status"] = "no database"
    db = db_result(check(host, APPS), "shop")
    assert db["status"] == "missing" and db["reason"] == "the database file /data/production.sqlite3 does not exist"


def test_restarts_are_counted_since_the_last_check_and_a_restart_loop_is_failing(host):
    provision(host, APPS)
    doc = host.containers["dokku.litestream.shop"]
    first = check(host, APPS)
    assert next(r for r in first["apps"] if r["app"] == "shop")["sidecar_state"]["restarts_since_last_check"] is None
    doc["RestartCount"] = 1
    second = check(host, APPS)
    assert next(r for r in second["apps"] if r["app"] == "shop")["sidecar_state"]["restarts_since_last_check"] == 1
    assert db_result(second, "shop")["status"] == "ok"
    doc["RestartCount"] = 4
    third = check(host, APPS)
    assert db_result(third, "shop")["status"] == "failing"
    assert db_result(third, "shop")["reason"] == "the sidecar restarted 3 times since the last check (restart loop)"
    # the log is read from the previous check on
    logs = [c for c in host.calls if c[:2] == ["docker", "logs"]][-1]
    assert logs[4] == "--since" and int(logs[5]) <= time.time()
    doc["State"] = {"Running": True, "Restarting": True, "Status": "restarting", "ExitCode": 1}
    db = db_result(check(host, APPS), "shop")
    assert db["status"] == "failing" and db["reason"] == "the sidecar is in a restart loop (4 restarts, last exit code 1)"


def test_a_replaced_sidecar_counts_its_own_restarts(host):
    provision(host, APPS)
    check(host, APPS)
    host.containers["dokku.litestream.shop"].update(Id="new-container", RestartCount=0)
    record = next(r for r in check(host, APPS)["apps"] if r["app"] == "shop")
    assert record["sidecar_state"]["restarts_since_last_check"] == 0
    assert "the sidecar was replaced since the last check" in record["notes"]


def test_config_hash_policy_and_socket_are_reported_per_app(host):
    provision(host, APPS)
    doc = host.containers["dokku.litestream.shop"]
    doc["Config"]["Labels"]["dokku_sqlite.litestream.config-hash"] = "0" * 32
    doc["HostConfig"]["RestartPolicy"]["Name"] = "no"
    host.sidecars["dokku.litestream.shop"].list_out = (
        'Error: failed to connect to control socket: Get "http://localhost/list": dial unix /var/run/litestream.sock: '
        'connect: no such file or directory')
    host.sidecars["dokku.litestream.shop"].list_rc = 1
    result = check(host, APPS)
    shop = next(r for r in result["apps"] if r["app"] == "shop")
    assert shop["config_hash"]["matches"] is False and shop["config_hash"]["actual"] == "0" * 32
    assert shop["sidecar_state"]["policy_ok"] is False and shop["sidecar_state"]["restart_policy"] == "no"
    assert shop["socket"] == "unavailable"
    assert shop["notes"] == ["socket: Error: failed to connect to control socket: Get \"http://localhost/<redacted>\": "
                             "dial unix /var/run/litestream.sock: connect: no such file or directory"]
    # judged without the socket, from status and the replica listing
    assert db_result(result, "shop")["status"] == "ok" and db_result(result, "shop")["last_sync_at"] is None


def test_apps_are_checked_in_parallel_within_the_bound(host):
    apps = [file_entry("app%d" % i) for i in range(6)]
    provision(host, apps)
    for sidecar in host.sidecars.values():
        sidecar.delay = 0.2
    started = time.time()
    result = check(host, apps, parallel=2)
    assert host.max_active == 2 and result["summary"]["ok"] == 6
    assert time.time() - started < 6 * 0.2
    host.max_active = 0
    check(host, apps, parallel=1)
    assert host.max_active == 1


def test_check_mode_reads_and_judges_but_writes_nothing(host, tmp_path):
    provision(host, APPS)
    textfile = tmp_path / "textfile" / "litestream.prom"
    textfile.parent.mkdir()
    before = snapshot(tmp_path)
    result = check(host, APPS, check_mode=True, textfile=str(textfile))
    assert result["summary"]["ok"] == 3 and result["textfile"] is None
    assert snapshot(tmp_path) == before
    assert not os.path.exists(str(tmp_path / "health"))


def test_a_real_run_writes_the_state_root_only_and_the_textfile_readable(host, tmp_path):
    provision(host, APPS)
    textfile = tmp_path / "textfile" / "litestream.prom"
    textfile.parent.mkdir()
    result = check(host, APPS, textfile=str(textfile))
    assert result["textfile"] == str(textfile) and result["changed"] is False
    assert stat.S_IMODE(os.stat(str(tmp_path / "health")).st_mode) == 0o700
    state_file = tmp_path / "health" / "state.json"
    assert stat.S_IMODE(os.stat(str(state_file)).st_mode) == 0o600
    state = json.loads(state_file.read_text())
    assert sorted(state) == ["notes", "shop"] and state["shop"]["restart_count"] == 0
    assert stat.S_IMODE(os.stat(str(textfile)).st_mode) == 0o644
    # atomic: no temporary file left beside it
    assert sorted(os.listdir(str(textfile.parent))) == ["litestream.prom"]


SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? '
                       r'(-?[0-9.e+]+|NaN|\+Inf|-Inf)$')


def parse_prometheus(text):
    """The text exposition format, strictly: HELP and TYPE before a metric's samples, each metric once."""
    metrics, current = {}, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in metrics, "metric %s twice" % name
            metrics[name] = dict(type=None, samples=[])
            current = name
        elif line.startswith("# TYPE "):
            _hash, _type, name, kind = line.split(" ")
            assert name == current and kind in ("gauge", "counter")
            metrics[name]["type"] = kind
        else:
            match = SAMPLE_RE.match(line)
            assert match, "not a sample line: %r" % line
            assert match.group(1) == current
            pairs = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            metrics[current]["samples"].append((pairs, float(match.group(3))))
    return metrics


def test_the_textfile_parses_back_with_one_hot_status_and_escaped_labels(host, tmp_path):
    provision(host, APPS)
    host.sidecars["dokku.litestream.shop"].dbs["production.sqlite3"].update(local=12, age=600)
    textfile = tmp_path / "litestream.prom"
    check(host, APPS, textfile=str(textfile))
    metrics = parse_prometheus(textfile.read_text())
    assert all(m["type"] == "gauge" for m in metrics.values())
    assert set(metrics) >= {"litestream_replica_age_seconds", "litestream_sync_errors", "litestream_sidecar_up",
                            "litestream_health_last_check_timestamp_seconds", "litestream_database_status"}
    status = dict(((s["app"], s["database"], s["status"]), value)
                  for s, value in metrics["litestream_database_status"]["samples"])
    assert status[("shop", "production.sqlite3", "stale")] == 1 and status[("shop", "production.sqlite3", "ok")] == 0
    assert status[("notes", "a.sqlite3", "ok")] == 1 and sum(status.values()) == 3
    ages = dict((s["app"], v) for s, v in metrics["litestream_replica_age_seconds"]["samples"])
    assert ages["shop"] >= 600 and ages["notes"] == 0
    up = dict((s["app"], v) for s, v in metrics["litestream_sidecar_up"]["samples"])
    assert up == {"shop": 1, "notes": 1}
    stamp = metrics["litestream_health_last_check_timestamp_seconds"]["samples"]
    assert len(stamp) == 1 and stamp[0][0] == {} and abs(stamp[0][1] - time.time()) < 60
    assert hc.labels(app='a"b\\c\nd') == '{app="a\\"b\\\\c\\nd"}'


def test_no_secret_reaches_the_result_nor_the_textfile(host, tmp_path):
    apps = [th.entry("shop", heartbeat_url="https://hc-ping.example/%s" % HEARTBEAT_TOKEN)] + APPS[1:]
    provision(host, apps)
    sidecar = host.sidecars["dokku.litestream.shop"]
    sidecar.ltx_error = "operation error S3: AccessDenied for key AKIALAB secret %s" % th.SECRET
    sidecar.logs = ('level=ERROR msg="heartbeat ping failed" url=https://hc-ping.example/%s error="Get '
                    '\\"https://user:pw@hc-ping.example/%s\\": connection refused"\n'
                    'Error: cannot open store: %s\n' % (HEARTBEAT_TOKEN, HEARTBEAT_TOKEN, th.SECRET))
    textfile = tmp_path / "litestream.prom"
    result = check(host, apps, textfile=str(textfile))
    assert db_result(result, "shop")["status"] == "failing"
    assert next(r for r in result["apps"] if r["app"] == "shop")["config_hash"]["matches"] is True
    assert_no_secret(result, th.SECRET, "AKIALAB", HEARTBEAT_TOKEN, "user:pw")
    assert th.SECRET not in textfile.read_text() and HEARTBEAT_TOKEN not in textfile.read_text()
    lines = next(r for r in result["apps"] if r["app"] == "shop")["log_errors"]
    assert "url=https://hc-ping.example/<redacted>" in lines[0]


@pytest.mark.parametrize("overrides, message", [
    (dict(parallel=0), "parallel: 0 is not a whole number from 1 (one app after the other) to 64"),
    (dict(timeout=0), "timeout: 0 is not a whole number of seconds from 1 to 3600 (an hour)"),
    (dict(max_lag_seconds=-1), "max_lag_seconds: -1.0 is not a number of seconds from 0 (no lag allowed) to 31536000"),
    (dict(state_dir="relative/dir"), "state_dir"),
    (dict(textfile="/tmp/litestream.txt"), "does not end in .prom"),
    (dict(textfile="/nonexistent-dir/litestream.prom"), "textfile: the directory /nonexistent-dir does not exist"),
    (dict(apps=[{"app": "shop", "replica": {"type": "file", "path": "/x"}, "colour": "red"}]), "unknown key colour"),
    (dict(apps=[{"app": "Bad App!", "replica": {"type": "file", "path": "/x"}}]), "litestream_apps[0]"),
    (dict(apps=[{"app": "shop"}]), "replica is required unless state is absent"),
    (dict(apps=[dict(th.entry("shop"), max_lag="soon")]), "max_lag: 'soon' is not a duration"),
    (dict(apps=[dict(th.entry("shop"), max_lag="8761h")]), "max_lag: '8761h' is not a duration from 0s (no lag allowed) to "
     "8760h"),
])
def test_bad_input_fails_before_anything_is_read(host, overrides, message):
    args = health_args(host, overrides.pop("apps", APPS), **overrides)
    result = run_module(litestream_health.main, args, fail=True)
    assert message in result["msg"]
    assert host.calls == []


def test_absent_and_stopped_entries_are_not_checked(host):
    apps = [file_entry("gone", state="absent"), file_entry("paused", state="stopped"), file_entry("notes")]
    provision(host, [file_entry("notes")])
    result = check(host, apps)
    assert result["skipped"] == ["gone (state absent)", "paused (state stopped)"]
    assert [r["app"] for r in result["apps"]] == ["notes"]


def test_parsers_take_litestreams_real_output():
    base = calendar.timegm((2026, 11, 30, 21, 19, 48, 0, 0, 0))
    assert hc.parse_time("2026-11-30T21:19:52.677750901Z") == pytest.approx(base + 4.677750901, abs=1e-5)
    assert hc.parse_time("2026-11-30T21:19:48Z") == base
    assert hc.parse_time("2026-11-30T22:19:48+01:00") == base
    assert hc.parse_time("0001-01-01T00:00:00Z") is None
    assert hc.txid("0000000000000011") == 17 and hc.txid("-") is None
    assert hc.first_json('level=INFO msg=x\n[\n  {"a": 1}\n]\n') == [{"a": 1}]
    text = "%s list\n{}\n%s rc 0\n%s status\n[]\n" % (hc.MARK, hc.MARK, hc.MARK)
    assert hc.parse_sections(text) == {"list": ("{}", 0), "status": ("[]", None)}


# ---------------------------------------------------------------------------------------------- reads from the host
def serve_list(path, databases):
    """A unix socket that answers `GET /list` as Litestream's control server does (test_sidecar_reads' server)."""
    server = SocketServer(path, listing={"databases": [dict(path="/data/" + db, status="replicating",
                                                            last_sync_at=rfc3339(time.time() - 1, True))
                                                       for db in databases]})
    server.start()
    return server.sock


def write_ltx(directory, txid):
    if not os.path.isdir(directory):
        os.makedirs(directory)
    for t in range(1, txid + 1):
        with open(os.path.join(directory, "%016x-%016x.ltx" % (t, t)), "w") as handle:
            handle.write("x")


class FakeS3(threading.Thread):
    """ListObjectsV2 on 127.0.0.1 (the XML of S3's answer), recording each request; its signature is checked
    against botocore's in test_s3_listing.py and against moto's with auth on the lab."""

    def __init__(self, keys):
        from http.server import BaseHTTPRequestHandler, HTTPServer
        super(FakeS3, self).__init__(daemon=True)
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.requests.append((self.path, dict(self.headers)))
                contents = "".join("<Contents><Key>%s</Key><LastModified>%s</LastModified><Size>1</Size></Contents>"
                                   % (key, stamp) for key, stamp in keys)
                body = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
                        '2006-03-01/"><IsTruncated>false</IsTruncated>%s</ListBucketResult>' % contents).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.server = HTTPServer(("127.0.0.1", 0), Handler)

    def run(self):
        self.server.serve_forever()


def test_as_root_the_socket_local_txid_and_the_replicas_are_read_without_a_docker_exec(host, monkeypatch):
    import shutil
    import tempfile
    proc = tempfile.mkdtemp(prefix="hp", dir="/tmp")  # a unix socket path has at most 107 bytes
    listeners = []
    s3 = FakeS3([("shop/production.sqlite3/0000/%016x-%016x.ltx" % (t, t), rfc3339(time.time() - 30 + t))
                 for t in range(1, 8)])
    s3.start()
    try:
        monkeypatch.setattr(hc, "PROC_ROOT", proc)
        replica = str(host.tmp / "replicas" / "notes")
        shop = th.entry("shop")
        shop["replica"]["endpoint"] = "http://127.0.0.1:%d" % s3.server.server_port
        apps = [shop, dict(file_entry("notes", databases=["a.sqlite3", "b.sqlite3"]),
                           replica={"type": "file", "path": replica, "sync_interval": "1s"})]
        provision(host, apps)
        # the socket's other end must be the sidecar's process: here this one, for both sidecars
        pid = os.getpid()
        os.makedirs(os.path.join(proc, str(pid), "root", "var", "run"))
        listeners.append(serve_list(os.path.join(proc, str(pid), "root", "var", "run", "litestream.sock"),
                                    ["production.sqlite3", "a.sqlite3", "b.sqlite3"]))
        for name, databases in (("shop", ["production.sqlite3"]), ("notes", ["a.sqlite3", "b.sqlite3"])):
            host.containers["dokku.litestream.%s" % name]["State"]["Pid"] = pid
            storage = host.tmp / "storage" / ("%s--db" % name)
            for db in databases:
                (storage / db).write_text("")
                write_ltx(str(storage / (".%s-litestream" % db) / "ltx" / "0"), 7)
        write_ltx(os.path.join(replica, "a.sqlite3", "ltx", "0"), 7)
        write_ltx(os.path.join(replica, "b.sqlite3", "ltx", "0"), 5)  # two transactions behind
        os.utime(os.path.join(replica, "b.sqlite3", "ltx", "0", "%016x-%016x.ltx" % (5, 5)),
                 (time.time() - 3, time.time() - 3))
        host.sidecars["dokku.litestream.shop"].list_out = "not read: the host reads the socket"
        result = check(host, apps)
        assert [c[:2] for c in host.calls] == [["docker", "inspect"]], "a sidecar was exec'd"
        # the S3 replica: one signed ListObjectsV2 of its level-0 prefix, path-style
        assert [r[0] for r in s3.requests] == ["/bkt?list-type=2&prefix=shop%2Fproduction.sqlite3%2F0000%2F"]
        auth = s3.requests[0][1]["authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIALAB/") and "/s3/aws4_request" in auth
        assert th.SECRET not in json.dumps(s3.requests)
        for record in result["apps"]:
            assert record["socket"] == "ok"
        shop, a, b = db_result(result, "shop"), db_result(result, "notes", "a.sqlite3"), db_result(result, "notes", "b.sqlite3")
        assert shop["status"] == "ok" and shop["local_txid"] == shop["replica_txid"] == 7
        assert 0 <= shop["last_sync_age_seconds"] < 5
        assert a["status"] == "ok" and a["local_txid"] == a["replica_txid"] == 7 and a["replica_type"] == "file"
        assert b["status"] == "ok" and b["lag_txid"] == 2 and 2 <= b["replica_age_seconds"] < 10, b
        assert b["reason"] == "2 transactions on the way to the replica"
        # the file replica's files gone: nothing replicated, the whole local history on the way
        shutil.rmtree(os.path.join(replica, "b.sqlite3"))
        b = db_result(check(host, apps), "notes", "b.sqlite3")
        assert b["replica_txid"] == 0 and b["lag_txid"] == 7, b
    finally:
        s3.server.shutdown()
        for listener in listeners:
            listener.close()
        shutil.rmtree(proc)


def sqlite_file(path, written_ago=0):
    import sqlite3
    with sqlite3.connect(str(path)) as conn:
        conn.execute("create table t (x)")
    conn.close()
    stamp = time.time() - written_ago
    os.utime(str(path), (stamp, stamp))


def test_a_database_the_app_writes_but_nothing_replicates_is_warned_noted_and_counted(host, tmp_path, monkeypatch):
    """An app that writes another file than the one replicated was reported ok; now health names that file."""
    provision(host, APPS)
    storage = host.tmp / "storage" / "shop--db"
    sqlite_file(storage / "production.sqlite3")
    sqlite_file(storage / "other.sqlite3", written_ago=30)                 # written now: unlisted
    sqlite_file(storage / "quiet.sqlite3", written_ago=3 * 86400)          # old, but its WAL is new: unlisted
    (storage / "quiet.sqlite3-wal").write_bytes(b"")
    sqlite_file(storage / "archive.sqlite3", written_ago=3 * 86400)        # not written for days: left alone
    sqlite_file(storage / "production.sqlite3.20261207T100000Z.bak")       # the restore's backup
    (storage / "notes.txt").write_text("SQLite format 2, not a database\n")
    os.symlink(str(storage / "other.sqlite3"), str(storage / "link.sqlite3"))  # a link is not followed
    os.mkfifo(str(storage / "fifo.sqlite3"))                               # a fifo is never opened for reading
    warnings = []
    monkeypatch.setattr(th.basic.AnsibleModule, "warn", lambda self, text: warnings.append(text))
    textfile = tmp_path / "litestream.prom"
    result = check(host, APPS, textfile=str(textfile))
    shop = next(r for r in result["apps"] if r["app"] == "shop")
    assert [u["database"] for u in shop["unlisted_databases"]] == ["other.sqlite3", "quiet.sqlite3"]
    assert 25 <= shop["unlisted_databases"][0]["written_seconds_ago"] < 120
    assert next(r for r in result["apps"] if r["app"] == "notes")["unlisted_databases"] == []
    assert db_result(result, "shop")["status"] == "ok" and result["summary"]["healthy"] is True
    said = ("this host/shop: unlisted database: %s in %s was written %ds ago and is not replicated: add it to the "
            "app's databases in litestream_apps (or move it out of the storage directory)")
    assert [w for w in warnings if "unlisted database" in w] == [
        said % (u["database"], storage, u["written_seconds_ago"]) for u in shop["unlisted_databases"]]
    counted = dict((s["app"], v) for s, v in
                   parse_prometheus(textfile.read_text())["litestream_unlisted_databases"]["samples"])
    assert counted == {"shop": 2, "notes": 0}


def test_a_host_another_host_took_the_replica_from_is_fenced_naming_the_owner(host):
    """After a move or a take-over by another host (its own configuration root: another host id), this host's
    databases are fenced, not ok, and the reason says its sidecar still runs on a dead branch."""
    provision(host, APPS)
    notes = file_entry("notes", databases=["a.sqlite3", "b.sqlite3"])
    other = dict(app="notes", replica=notes["replica"], databases=notes["databases"], take_over=True,
                 config_root=str(host.tmp / "other-host"), host="dokku-b",
                 credentials_root=health_args(host, APPS)["credentials_root"])
    assert run_module(litestream_ownership.main, other)["claimed_epoch"] == 2
    result = check(host, APPS)
    for database in ("a.sqlite3", "b.sqlite3"):
        found = db_result(result, "notes", database)
        assert found["status"] == "fenced", found
        assert "owned by dokku-b since epoch 2 (take-over" in found["reason"]
        assert found["reason"].endswith("this host's sidecar still runs, on a dead branch nothing restores")
    assert db_result(result, "shop")["status"] == "ok"  # another app's replica: this host still owns it
    assert result["summary"]["fenced"] == 2 and result["summary"]["healthy"] is False
    assert sorted(result["failed_databases"]) == ["this host/notes/a.sqlite3", "this host/notes/b.sqlite3"]
