"""The restore drill end to end against the lab: provision + the demo writer on both hosts, then the
drill playbook by FQCN for lab-dokku-1's apps (shop-1 on S3, notes-1 on the shared file replica),
restoring on lab-dokku-2. Then drills that must fail: a missing replica, a wrong credential set and a
corrupted replica file, next to the healthy apps: the play fails only after every app was drilled.
"""
import json
import re
import secrets
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
import yaml

from test_replication import inventory_apps, live_rows, start_writers

DRILL = "dokku_sqlite.litestream.drill"
SCRATCH = "/var/lib/dokku-litestream-drill"
SOURCE, DRILL_HOST = "lab-dokku-1", "lab-dokku-2"
ROWS_PER_SECOND = 10  # the demo writer commits a row every 100 ms
RECAP_RE = r"^{host}\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=0\s+failed={failed}\b"


@pytest.fixture(scope="module")
def drill_lab(lab):
    """Both hosts provisioned and their demo writers committing, replicas written."""
    assert len(lab.hosts) == 2, "the drill tests expect the default two-host lab"
    start_writers(lab)
    time.sleep(5)  # let the sidecars write a first snapshot
    return lab


def host(lab, name):
    return next(h for h in lab.hosts if h["name"] == name)


def drill(lab, tmp_path, extra=None):
    report_dir = tmp_path / "reports"
    data = {"restore_drill_host": DRILL_HOST, "restore_drill_report_dir": str(report_dir)}
    data.update(extra or {})
    vars_file = tmp_path / "drill-vars.json"
    vars_file.write_text(json.dumps(data))
    proc = lab.playbook(DRILL, "-e", f"@{vars_file}", "--limit", SOURCE, check=False)
    (tmp_path / "drill-output.txt").write_text(proc.stdout + proc.stderr)
    report = json.loads((report_dir / "drill-report.json").read_text()) if (report_dir / "drill-report.json").exists() \
        else None
    junit = ET.parse(str(report_dir / "drill-report.xml")).getroot() if (report_dir / "drill-report.xml").exists() \
        else None
    return proc, report, junit


def by_app(report):
    return {r["app"]: r for r in report["results"]}


def junit_cases(root):
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    assert [s.get("name") for s in suites] == ["litestream-drill"]
    return {c.get("name"): c for c in suites[0].findall("testcase")}


def assert_scratch_gone(lab):
    proc = lab.ssh(host(lab, DRILL_HOST), f"ls -A {SCRATCH} 2>/dev/null; test ! -e {SCRATCH}/{SOURCE}", check=False)
    assert proc.returncode == 0, f"scratch files left on {DRILL_HOST}: {proc.stdout}"


def test_drill_passes_for_every_app_of_the_host(drill_lab, tmp_path):
    lab = drill_lab
    proc, report, junit = drill(lab, tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert re.search(RECAP_RE.format(host=SOURCE, failed=0), proc.stdout, re.M)

    assert report["passed"] is True and report["summary"] == {"total": 2, "ok": 2, "failed": 0}
    results = by_app(report)
    assert sorted(results) == ["notes-1", "shop-1"]
    for app, result in results.items():
        assert result["status"] == "ok", result
        assert result["integrity"] == "ok" and result["host"] == SOURCE and result["drill_host"] == DRILL_HOST
        assert result["database"] == "production.sqlite3"
        assert result["rows"] > 0 and result["tables"]["events"] == result["rows"]
        assert 0 <= result["lag_seconds"] < 10, result
        assert result["duration"] > 0
        # the live count was read just before the restore: the restore holds at least about as many rows
        # (minus what the replica lag allows), and no more than the live database holds afterwards
        allowed = ROWS_PER_SECOND * (result["lag_seconds"] + 2)
        assert result["live_rows"] - allowed <= result["rows"], result
        assert result["rows"] <= len(live_rows(lab, host(lab, SOURCE), app)), result
    assert results["notes-1"]["replica"].startswith("file:///srv/lab-replicas/")
    assert results["shop-1"]["replica"].startswith("s3://")

    cases = junit_cases(junit)
    assert sorted(cases) == [f"{SOURCE}/notes-1/production.sqlite3", f"{SOURCE}/shop-1/production.sqlite3"]
    assert all(c.find("failure") is None for c in cases.values())
    assert "ok     " in proc.stdout  # the human summary
    assert_scratch_gone(lab)


def test_failed_drills_are_reported_after_every_app_was_drilled(drill_lab, tmp_path):
    lab = drill_lab
    tag = secrets.token_hex(3)
    drill_host = host(lab, DRILL_HOST)
    # a corrupted copy of notes-1's file replica: the newest LTX file overwritten with garbage
    corrupt = f"/srv/lab-replicas/drill-corrupt-{tag}"
    lab.ssh(drill_host, f"cp -a /srv/lab-replicas/{SOURCE}/notes-1 {corrupt} && "
                        f"newest=$(ls {corrupt}/production.sqlite3/ltx/0/*.ltx | sort | tail -n 1) && "
                        f"head -c $(stat -c %s $newest) /dev/urandom > $newest.tmp && mv $newest.tmp $newest")
    # a credential set with a key the sftp server does not know
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "wrong_key")], check=True)
    group_vars = yaml.safe_load((lab.state / "group_vars" / "dokku.yml").read_text())
    apps = inventory_apps(lab) + [
        {"app": f"drill-ghost-{tag}", "replica": {"type": "file", "path": f"/srv/lab-replicas/drill-ghost-{tag}"}},
        {"app": f"drill-wrongkey-{tag}", "replica": dict(group_vars["lab_sftp_replica"], credentials=f"drill-wrong-{tag}",
                                                          path="{{ lab_sftp_path }}/lab-dokku-2/notes-2")},
        {"app": f"drill-corrupt-{tag}", "replica": {"type": "file", "path": corrupt}},
    ]
    sets = group_vars["litestream_credential_sets"] + [
        {"name": f"drill-wrong-{tag}", "ssh_private_key": (tmp_path / "wrong_key").read_text()}]
    try:
        started = time.time()
        proc, report, junit = drill(lab, tmp_path, {"litestream_apps": apps, "litestream_credential_sets": sets})
    finally:
        lab.ssh(drill_host, f"rm -rf {corrupt} /var/lib/dokku/config/litestream/credentials/drill-wrong-{tag}",
                check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert report is not None and junit is not None, out[-4000:]
    # the play failed in its last task, after the report: every app was drilled
    assert "TASK [dokku_sqlite.litestream.restore_drill : Fail when any drill failed]" in out
    assert "restore drill failed for 3 of 5" in out

    results = by_app(report)
    assert report["summary"] == {"total": 5, "ok": 2, "failed": 3}
    assert sorted(a for a, r in results.items() if r["status"] == "failed") == sorted(
        [f"drill-ghost-{tag}", f"drill-wrongkey-{tag}", f"drill-corrupt-{tag}"])
    assert results["shop-1"]["status"] == "ok" and results["notes-1"]["status"] == "ok"
    for app in (f"drill-ghost-{tag}", f"drill-wrongkey-{tag}", f"drill-corrupt-{tag}"):
        assert results[app]["message"].startswith(f"{SOURCE}/{app}/production.sqlite3: "), results[app]
    ghost = results[f"drill-ghost-{tag}"]["message"]
    assert "holds no backup of production.sqlite3" in ghost
    # the drill names what a drill user sets, not the module's if_replica_exists
    assert f"Check the replica of app drill-ghost-{tag} in restore_drill_apps (litestream_apps)" in ghost, ghost
    assert "if_replica_exists" not in ghost, ghost
    wrongkey = results[f"drill-wrongkey-{tag}"]["message"]
    assert "cannot be read" in wrongkey or "failed" in wrongkey, wrongkey
    assert "sftp://" in wrongkey, wrongkey
    assert results[f"drill-corrupt-{tag}"]["message"], results[f"drill-corrupt-{tag}"]

    cases = junit_cases(junit)
    assert len(cases) == 5
    failed = {name for name, case in cases.items() if case.find("failure") is not None}
    assert failed == {f"{SOURCE}/drill-{kind}-{tag}/production.sqlite3" for kind in ("ghost", "wrongkey", "corrupt")}
    for name in failed:
        assert cases[name].find("failure").get("message").startswith(name + ": ")
    assert_scratch_gone(lab)
    assert time.time() - started < 300


def test_apps_only_stale_replica_and_check_mode(drill_lab, tmp_path):
    lab = drill_lab
    source = host(lab, SOURCE)
    # with no lag allowed, a replica behind a live writer is stale: a failed drill, not a passed one
    proc, report, junit = drill(lab, tmp_path, {"restore_drill_apps_only": ["shop-1"], "restore_drill_max_lag_seconds": 0})
    assert proc.returncode != 0, proc.stdout[-4000:]
    assert [r["app"] for r in report["results"]] == ["shop-1"]
    result = report["results"][0]
    assert result["status"] == "failed" and result["integrity"] == "ok" and result["rows"] > 0, result
    assert result["message"].startswith(f"{SOURCE}/shop-1/production.sqlite3: stale: "), result
    assert list(junit_cases(junit)) == [f"{SOURCE}/shop-1/production.sqlite3"]

    # check mode: the dry runs read the replicas, but no file is written, not even the report
    check_dir = tmp_path / "check"
    proc = lab.playbook(DRILL, "--check", "-e", json.dumps({"restore_drill_host": DRILL_HOST,
                                                             "restore_drill_report_dir": str(check_dir)}),
                        "--limit", SOURCE, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert not check_dir.exists()
    assert "check mode: restore planned, not run" in proc.stdout
    assert_scratch_gone(lab)
    # the live database was only read: nothing new next to it (no backup, no temporary restore file)
    listing = lab.ssh(source, "ls -A /var/lib/dokku/data/storage/shop-1--db").stdout.split()
    expected = {"production.sqlite3", "production.sqlite3-wal", "production.sqlite3-shm", ".production.sqlite3-litestream"}
    assert set(listing) <= expected, listing
