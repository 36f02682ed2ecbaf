"""The health check under faults (issue #14's lab proofs), against the lab with the demo writers committing:

- S3 endpoint down (`lab.py s3 down`, the lab's proxy in front of moto): within max_lag plus one check the S3 apps
  (shop-1, shop-2) report stale or failing with the reason in words, while the file and sftp apps (notes-1,
  notes-2) stay ok; after `lab.py s3 up` all four return to ok without a playbook run (Litestream's own retries,
  whose backoff can reach five minutes, so the bound is generous). The figures are printed (pytest -s).
- Keys that may read but not write (a read-only IAM user on an authenticating moto): the replica stops advancing
  while the database goes on, and within the entry's own `max_lag` (15s) the health check says stale, with the
  transactions behind and the age of the newest replica file; the listing itself still works, so this is the one
  fault that is `stale` rather than `failing`.
- Keys that the store rejects: an app on lab-dokku-1 provisioned against an authenticating moto (the fixture of
  test_first_sync.py) with a credential set whose secret is wrong (first_sync_timeout 0, so provision does not
  fail first) and a live database: the health check says failing, authentication failed (SignatureDoesNotMatch),
  and the lab's own apps stay ok.
"""
import json
import re
import shlex
import time

import pytest

from test_faults_outage import lab_cmd
from test_first_sync import (  # noqa: F401  (auth_s3 is a fixture)
    BUCKET, WRONG_SECRET, auth_s3, authenticating_moto, group_vars,
)
from test_health import TEXTFILE, TEXTFILE_DIR, health, statuses
from test_replication import (  # noqa: F401  (replicating is a fixture)
    PROVISION, apps_of, extra_vars_file, inventory_apps, leaked, replicating, secret_needles, sidecar, wait_for,
    writer_active,
)

MAX_LAG = 20  # health_max_lag_seconds for these tests: small, so the outage shows quickly
RECOVERY_BOUND = 300  # Litestream's retry backoff doubles up to 5 min
OUTAGE_MIN = 75  # seconds S3 stays down at least: past max_lag and a few backoff doublings
S3_APPS = ("shop-1", "shop-2")
OTHER_APPS = ("notes-1", "notes-2")


def run_health(lab, tmp_path, extra=None, limit=None):
    """test_health's run of the health playbook, with this module's max_lag and optionally one host."""
    data = {"health_max_lag_seconds": MAX_LAG}
    data.update(extra or {})
    return health(lab, tmp_path, data, ["--limit", limit] if limit else [])


def by_app(report):
    return {app: result for (_host, app), result in statuses(report).items()}


def prepare(lab):
    for host in lab.hosts:
        lab.ssh(host, f"mkdir -p {TEXTFILE_DIR}")


def wait_all_ok(lab, tmp_path, bound, what):
    """Run the health playbook until every database is ok; (seconds it took, runs, last report)."""
    started = time.time()
    runs = 0
    while True:
        runs += 1
        proc, report, _elapsed = run_health(lab, tmp_path / f"{what}-{runs}")
        if proc.returncode == 0 and report and report["passed"]:
            return time.time() - started, runs, report
        assert time.time() - started < bound, (
            f"{what}: not all ok after {bound} s ({runs} runs): "
            + json.dumps(report and [(r["app"], r["status"], r["message"]) for r in report["results"]], indent=1)
            + proc.stdout[-3000:])
        time.sleep(3)


def test_s3_down_makes_the_s3_apps_stale_or_failing_and_they_recover_by_themselves(replicating, tmp_path):
    lab = replicating
    prepare(lab)
    assert sorted(app for _h, app, kind in apps_of(lab) if kind == "s3") == list(S3_APPS)
    wait_all_ok(lab, tmp_path, 90, "before")
    # one check's duration, measured while all is well
    proc, report, check_took = run_health(lab, tmp_path / "baseline")
    assert proc.returncode == 0, proc.stdout[-4000:]
    print(f"\nbefore the outage: all ok; one health run (playbook, 2 hosts) {check_took:.1f} s")

    down_at = time.time()
    lab_cmd("s3", "down")
    try:
        seen = None
        runs = 0
        bound = MAX_LAG + 3 * check_took + 60  # max_lag plus one check, with room for a loaded machine
        while True:
            runs += 1
            proc, report, elapsed = run_health(lab, tmp_path / f"down-{runs}")
            assert report is not None, proc.stdout[-4000:] + proc.stderr[-2000:]
            results = by_app(report)
            for app in OTHER_APPS:  # file and sftp replicas never depend on S3
                assert results[app]["status"] == "ok", (app, results[app])
            if all(results[app]["status"] in ("stale", "failing") for app in S3_APPS):
                seen = time.time() - down_at
                break
            assert time.time() - down_at < bound, (
                f"the S3 apps were not stale/failing {bound:.0f} s after S3 went down: "
                + json.dumps({a: (results[a]["status"], results[a]["message"]) for a in S3_APPS}))
            time.sleep(2)
        assert proc.returncode != 0, "the play must fail while a database is not ok"
        assert sorted(report["failed_databases"]) == sorted(
            f"{h['name']}/{app}/production.sqlite3" for h, app, kind in apps_of(lab) if kind == "s3")
        for app in S3_APPS:
            message = results[app]["message"] or ""
            assert re.search(r"unreachable|did not answer|did not finish|connection refused|behind", message), (
                app, message)
        assert lab_cmd("s3", "status").stdout and json.loads(lab_cmd("s3", "status").stdout)["state"] == "down"
        for host, app, kind in apps_of(lab):
            if kind == "s3":
                assert writer_active(lab, host, app), f"the demo writer of {app} stopped during the outage"
        assert leaked(proc.stdout + proc.stderr, secret_needles(lab)) == []
        print(f"S3 down: the S3 apps not ok {seen:.1f} s after the endpoint closed (max_lag {MAX_LAG} s, "
              f"{runs} health run(s), the last {elapsed:.1f} s); notes-1 and notes-2 ok in every run")
        for app in S3_APPS + OTHER_APPS:
            print(f"  {app}: {results[app]['status']}: {results[app].get('message')}")
        # keep S3 down past max_lag and into Litestream's retry backoff, checking meanwhile: the verdicts hold
        held = 0
        while time.time() - down_at < OUTAGE_MIN or held == 0:
            held += 1
            proc, report, elapsed = run_health(lab, tmp_path / f"held-{held}")
            results = by_app(report)
            assert [results[app]["status"] for app in OTHER_APPS] == ["ok", "ok"], results
            assert all(results[app]["status"] in ("stale", "failing") for app in S3_APPS), results
        print(f"S3 still down {time.time() - down_at:.0f} s after it closed ({held} more health run(s)):")
        for app in S3_APPS:
            print(f"  {app}: {results[app]['status']}: {results[app].get('message')}")
    finally:
        lab_cmd("s3", "up")
    up_at = time.time()
    _took, runs, report = wait_all_ok(lab, tmp_path, RECOVERY_BOUND, "after")
    results = by_app(report)
    print(f"S3 up again: all 4 ok {time.time() - up_at:.1f} s later ({runs} health run(s), no provision run); "
          f"outage {up_at - down_at:.0f} s")
    for app in S3_APPS:
        print(f"  {app}: ok, local txid {results[app]['local_txid']} replica {results[app]['replica_txid']} "
              f"lag {results[app]['lag_txid']}")


ROTATED_HOST_INDEX = 0
ROTATED_APP = "rotkey-1"
ROTATED_SET = "health-rotated"
DB_FILE = "/var/lib/dokku/data/storage/%s--db/production.sqlite3" % ROTATED_APP
MAKE_DB = ("import sqlite3,sys\n"
           "c=sqlite3.connect(sys.argv[1])\n"
           "c.execute('pragma journal_mode=wal')\n"
           "c.execute('create table if not exists events (id integer primary key, note text)')\n"
           "c.executemany('insert into events (note) values (?)', [('row %d' % i,) for i in range(20)])\n"
           "c.commit()\n")


def write_rows(lab, host, db_file=DB_FILE):
    lab.ssh(host, f"python3 -c {shlex.quote(MAKE_DB)} {shlex.quote(db_file)} && "
                  f"chown --reference={shlex.quote(db_file.rsplit('/', 1)[0])} {shlex.quote(db_file)}*")


def provision_host(lab, host, tmp_path, name, apps, sets, secrets):
    """The provision playbook for one host without the first-sync judgement (first_sync_timeout 0): it must
    succeed and print none of `secrets`."""
    data = {"litestream_apps": apps, "litestream_credential_sets": sets, "litestream_first_sync_timeout": 0}
    proc = lab.playbook(PROVISION, "--limit", host["name"], "-e", extra_vars_file(tmp_path, name, data), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert not any(secret in out for secret in secrets)
    return proc


def remove_test_app(lab, host, tmp_path, entry, base_sets, credential_set):
    """The test's app and credential set gone (provision with state absent, then apps:destroy)."""
    gone = {"litestream_apps": inventory_apps(lab) + [dict(entry, state="absent")],
            "litestream_credential_sets": base_sets + [{"name": credential_set, "state": "absent"}]}
    lab.playbook(PROVISION, "--limit", host["name"], "-e", extra_vars_file(tmp_path, "cleanup.json", gone))
    lab.dokku(host, "--force", "apps:destroy", entry["app"], check=False)
    wait_for("the test's sidecar to be gone", lambda: lab.ssh(
        host, f"docker container inspect {sidecar(entry['app'])}", check=False).returncode != 0, 30)


def started_at(lab, host):
    return lab.ssh(host, f"docker container inspect --format '{{{{.State.StartedAt}}}}' {sidecar(ROTATED_APP)}"
                   ).stdout.strip()


def test_keys_rotated_to_wrong_values_on_the_host_fail_with_authentication(replicating, auth_s3, tmp_path):
    lab = replicating
    prepare(lab)
    host = lab.hosts[ROTATED_HOST_INDEX]
    entry = {"app": ROTATED_APP, "create": True,
             "replica": {"type": "s3", "bucket": BUCKET, "path": ROTATED_APP, "endpoint": auth_s3["endpoint"],
                         "region": "us-east-1", "credentials": ROTATED_SET, "sync_interval": "1s"}}
    base_sets = group_vars(lab)["litestream_credential_sets"]
    good = {"name": ROTATED_SET, "access_key_id": auth_s3["access_key_id"],
            "secret_access_key": auth_s3["secret_access_key"]}
    wrong = dict(good, secret_access_key=WRONG_SECRET)
    apps = inventory_apps(lab) + [entry]

    def provision(name, credential_set):
        return provision_host(lab, host, tmp_path, name, apps, base_sets + [credential_set],
                              (WRONG_SECRET, auth_s3["secret_access_key"]))

    def health_of_host(name, credential_set):
        return run_health(lab, tmp_path / name, {"litestream_apps": apps,
                                                  "litestream_credential_sets": base_sets + [credential_set]},
                          limit=host["name"])

    try:
        # the right keys first: the app replicates, the health check says ok
        provision("good.json", good)
        write_rows(lab, host)
        lab.ssh(host, f"docker restart {sidecar(ROTATED_APP)}")  # the database is new: start from it
        deadline = time.time() + 90
        while True:
            proc, report, _elapsed = health_of_host(f"good-{int(time.time())}", good)
            results = by_app(report) if report else {}
            if results.get(ROTATED_APP, {}).get("status") == "ok":
                break
            assert time.time() < deadline, json.dumps(results.get(ROTATED_APP), indent=1) + proc.stdout[-3000:]
            time.sleep(3)
        before = started_at(lab, host)
        print(f"\n{ROTATED_APP} with the right keys: ok, replica txid {results[ROTATED_APP]['replica_txid']}")

        # keys rotated on the host to a wrong secret (the credential set's file rewritten by provision, which
        # restarts the sidecar so it reads the credentials again); first_sync_timeout 0: provision does not judge
        rotated_at = time.time()
        provision("wrong.json", wrong)
        after = started_at(lab, host)
        assert after != before, "provision did not restart the sidecar after the secret changed"
        write_rows(lab, host)  # new transactions the replica cannot get
        deadline = time.time() + 90
        while True:
            proc, report, elapsed = health_of_host(f"wrong-{int(time.time())}", wrong)
            results = by_app(report) if report else {}
            if results.get(ROTATED_APP, {}).get("status") == "failing":
                break
            assert time.time() < deadline, json.dumps(results.get(ROTATED_APP), indent=1) + proc.stdout[-3000:]
            time.sleep(3)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, "the play must fail while a database is not ok"
        message = results[ROTATED_APP]["message"]
        assert "authentication failed" in message and "SignatureDoesNotMatch" in message, message
        for app in ("shop-1", "notes-1"):
            assert results[app]["status"] == "ok", (app, results[app])
        assert report["failed_databases"] == [f"{host['name']}/{ROTATED_APP}/production.sqlite3"]
        report_text = json.dumps(report)
        for text in (out, report_text):
            assert WRONG_SECRET not in text and auth_s3["secret_access_key"] not in text
            assert leaked(text, secret_needles(lab)) == []
        print(f"keys rotated to a wrong secret: {ROTATED_APP} failing {time.time() - rotated_at:.1f} s after the "
              f"provision run began (health run {elapsed:.1f} s): {message}")
        print("  the others: " + ", ".join(f"{a} {results[a]['status']}" for a in ("shop-1", "notes-1")))
    finally:
        remove_test_app(lab, host, tmp_path, entry, base_sets, ROTATED_SET)


@pytest.fixture
def readonly_s3(tmp_path):
    """An authenticating moto with two IAM users: `writer` (s3:*) and `reader` (list and get only); yields
    {"endpoint", "writer": [key id, secret], "reader": [key id, secret]}."""
    users = {"writer": ["s3:*"], "reader": ["s3:ListBucket", "s3:GetObject"]}
    with authenticating_moto(tmp_path, users, "moto-readonly") as found:
        yield dict(((user, [keys[0]["access_key_id"], keys[0]["secret_access_key"]])
                    for user, keys in found["users"].items()), endpoint=found["endpoint"])


STALE_APP = "readonly-1"
STALE_SET = "health-readonly"
STALE_DB = "/var/lib/dokku/data/storage/%s--db/production.sqlite3" % STALE_APP
STALE_MAX_LAG = 15  # the entry's own max_lag: it wins over health_max_lag_seconds (20)


def test_keys_that_may_list_but_not_write_make_the_database_stale_within_its_max_lag(replicating, readonly_s3,
                                                                                      tmp_path):
    lab = replicating
    prepare(lab)
    host = lab.hosts[ROTATED_HOST_INDEX]
    entry = {"app": STALE_APP, "create": True, "max_lag": "%ds" % STALE_MAX_LAG,
             "replica": {"type": "s3", "bucket": BUCKET, "path": STALE_APP, "endpoint": readonly_s3["endpoint"],
                         "region": "us-east-1", "credentials": STALE_SET, "sync_interval": "1s"}}
    base_sets = group_vars(lab)["litestream_credential_sets"]
    writer = {"name": STALE_SET, "access_key_id": readonly_s3["writer"][0], "secret_access_key": readonly_s3["writer"][1]}
    reader = {"name": STALE_SET, "access_key_id": readonly_s3["reader"][0], "secret_access_key": readonly_s3["reader"][1]}
    apps = inventory_apps(lab) + [entry]
    secrets = (readonly_s3["writer"][1], readonly_s3["reader"][1])

    def provision(name, credential_set):
        return provision_host(lab, host, tmp_path, name, apps, base_sets + [credential_set], secrets)

    def health_until(status, name, credential_set, bound):
        deadline = time.time() + bound
        while True:
            write_rows(lab, host, STALE_DB)  # the database goes on: new transactions every round
            proc, report, _elapsed = run_health(lab, tmp_path / f"{name}-{int(time.time())}", {
                "litestream_apps": apps, "litestream_credential_sets": base_sets + [credential_set]},
                limit=host["name"])
            results = by_app(report) if report else {}
            if results.get(STALE_APP, {}).get("status") == status:
                return proc, report, results
            assert time.time() < deadline, json.dumps(results.get(STALE_APP), indent=1) + proc.stdout[-3000:]
            time.sleep(3)

    try:
        provision("writer.json", writer)
        write_rows(lab, host, STALE_DB)
        lab.ssh(host, f"docker restart {sidecar(STALE_APP)}")  # the database is new: start from it
        _proc, _report, results = health_until("ok", "writer", writer, 90)
        print(f"\n{STALE_APP} with the writer's keys: ok, replica txid {results[STALE_APP]['replica_txid']}")

        # the set's keys become the reader's: provision rewrites the credentials and restarts the sidecar
        rotated_at = time.time()
        provision("reader.json", reader)
        proc, report, results = health_until("stale", "reader", reader, STALE_MAX_LAG + 90)
        took = time.time() - rotated_at
        result = results[STALE_APP]
        message = result["message"]
        assert re.search(r"the replica is \d+ transactions? behind and its newest file is \d+s old "
                         r"\(max_lag %ds\)" % STALE_MAX_LAG, message), message
        assert result["lag_txid"] > 0 and result["replica_age_seconds"] > STALE_MAX_LAG, result
        assert proc.returncode != 0, "the play must fail while a database is stale"
        for app in ("shop-1", "notes-1"):
            assert results[app]["status"] == "ok", (app, results[app])
        for text in (proc.stdout + proc.stderr, json.dumps(report)):
            assert not any(secret in text for secret in secrets)
            assert leaked(text, secret_needles(lab)) == []
        print(f"keys that may only list: {STALE_APP} stale {took:.1f} s after the provision run began: {message}")
    finally:
        remove_test_app(lab, host, tmp_path, entry, base_sets, STALE_SET)
