"""The health check end to end against the lab: both hosts provisioned (sidecars with the control socket) and the
demo writer committing in every app, then the health playbook by FQCN. All ok, with the figures printed; a sidecar
stopped by hand makes that app's database missing and leaves the others ok (the play fails after all hosts);
started again, all are ok without a provision run.
"""
import json
import os
import re
import shlex
import time
import xml.etree.ElementTree as ET

import pytest

from test_replication import apps_of, leaked, secret_needles, start_writers

HEALTH = "dokku_sqlite.litestream.health"
TEXTFILE_DIR = "/var/lib/dsl-health-textfile"
TEXTFILE = f"{TEXTFILE_DIR}/litestream.prom"
STOPPED_HOST, STOPPED_APP = "lab-dokku-1", "notes-1"


@pytest.fixture(scope="module")
def health_lab(lab):
    assert len(lab.hosts) == 2, "the health tests expect the default two-host lab (four apps)"
    start_writers(lab)
    for host in lab.hosts:
        lab.ssh(host, f"mkdir -p {TEXTFILE_DIR}")
    time.sleep(3)  # a first snapshot and a few L0 files in every replica
    return lab


def host(lab, name):
    return next(h for h in lab.hosts if h["name"] == name)


def health(lab, tmp_path, extra=None, playbook_args=("-v",)):
    """The health playbook by FQCN, its report in tmp_path; (CompletedProcess, report or None, seconds)."""
    report_dir = tmp_path / "reports"
    data = {"health_report_dir": str(report_dir), "health_textfile": TEXTFILE}
    data.update(extra or {})
    tmp_path.mkdir(parents=True, exist_ok=True)
    vars_file = tmp_path / "health-vars.json"
    vars_file.write_text(json.dumps(data))
    started = time.time()
    proc = lab.playbook(HEALTH, "-e", f"@{vars_file}", *playbook_args, check=False)
    elapsed = time.time() - started
    (tmp_path / "health-output.txt").write_text(proc.stdout + proc.stderr)
    path = report_dir / "health-report.json"
    report = json.loads(path.read_text()) if path.exists() else None
    return proc, report, elapsed


def statuses(report):
    return {(r["host"], r["app"]): r for r in report["results"]}


def module_results(proc):
    """The litestream_health results of the run (-v prints each host's result as JSON)."""
    out = {}
    for match in re.finditer(r"^ok: \[(\S+)\] => (\{.*\})$", proc.stdout, re.M):
        data = json.loads(match.group(2))
        if "apps" in data and "summary" in data:
            out[match.group(1)] = data
    return out


def test_all_ok_on_a_provisioned_lab_with_figures(health_lab, tmp_path):
    lab = health_lab
    proc, report, elapsed = health(lab, tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert report["passed"] is True
    assert report["summary"] == dict(total=4, ok=4, stale=0, failing=0, missing=0, fenced=0)
    results = statuses(report)
    assert sorted(results) == sorted((h["name"], app) for h, app, _kind in apps_of(lab))
    for result in results.values():
        assert result["status"] == "ok" and result["sidecar_running"] and result["config_hash_matches"], result
        assert result["local_txid"] > 0 and result["replica_txid"] > 0
    per_host = module_results(proc)
    assert sorted(per_host) == ["lab-dokku-1", "lab-dokku-2"]
    kinds = {(h["name"], app): kind for h, app, kind in apps_of(lab)}
    for name, data in per_host.items():
        for record in data["apps"]:
            assert record["socket"] == "ok" and record["sidecar_state"]["policy_ok"], record
            # as root the socket, the local TXID, a file replica and an S3 replica (one signed ListObjectsV2) are
            # read from the host: an exec only to list an sftp replica, with Litestream's client and the key
            remote = kinds[(name, record["app"])] == "sftp"
            assert [c.split(" ")[1] for c in record["commands"]] == (["exec"] if remote else []), record["commands"]
            assert all(" list -json" not in c and " status -json" not in c for c in record["commands"])
        assert data["commands"][0].startswith("docker inspect --type container")
    junit = ET.parse(str(tmp_path / "reports" / "health-report.xml")).getroot().find("testsuite")
    assert junit.get("tests") == "4" and junit.get("failures") == "0"
    # the Prometheus text file on each host
    prom = lab.ssh(host(lab, "lab-dokku-1"), f"stat -c %a {TEXTFILE}; cat {TEXTFILE}").stdout
    assert prom.startswith("644\n")
    assert re.search(r'^litestream_database_status\{app="shop-1",database="production.sqlite3",status="ok"\} 1$',
                     prom, re.M)
    assert re.search(r'^litestream_sidecar_up\{app="notes-1"\} 1$', prom, re.M)
    text = proc.stdout + proc.stderr + (tmp_path / "reports" / "health-report.json").read_text() + prom
    assert leaked(text, secret_needles(lab)) == []
    print(f"\nhealth playbook, 2 hosts, 4 apps: {elapsed:.1f}s wall (ansible-playbook included)")
    for name, data in sorted(per_host.items()):
        print(f"  {name}: module {data['summary']['duration']:.2f}s for {data['summary']['apps']} apps")
        for record in data["apps"]:
            for db in record["databases"]:
                print(f"    {record['app']}/{db['database']}: {db['status']} local txid {db['local_txid']} replica "
                      f"{db['replica_txid']} lag {db['lag_txid']} age {db['replica_age_seconds']}s last sync "
                      f"{db['last_sync_age_seconds']}s ago ({db['replica_type']}), exec {record['duration']:.2f}s")


def test_a_sidecar_stopped_by_hand_is_missing_and_the_others_stay_ok(health_lab, tmp_path):
    lab = health_lab
    target = host(lab, STOPPED_HOST)
    sidecar = shlex.quote(f"dokku.litestream.{STOPPED_APP}")
    lab.ssh(target, f"docker stop {sidecar}")
    try:
        proc, report, _elapsed = health(lab, tmp_path / "stopped")
        assert proc.returncode != 0, "the play must fail when a database is not ok"
        assert re.search(r"^lab-dokku-2\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", proc.stdout, re.M)
        results = statuses(report)
        stopped = results[(STOPPED_HOST, STOPPED_APP)]
        assert stopped["status"] in ("missing", "failing"), stopped
        assert stopped["message"].startswith("the sidecar is not running (exited"), stopped
        assert report["failed_databases"] == [f"{STOPPED_HOST}/{STOPPED_APP}/production.sqlite3"]
        assert all(r["status"] == "ok" for key, r in results.items() if key != (STOPPED_HOST, STOPPED_APP)), results
        assert "replication not healthy for 1 of 4" in proc.stdout
        prom = lab.ssh(target, f"cat {TEXTFILE}").stdout
        assert re.search(r'^litestream_sidecar_up\{app="%s"\} 0$' % STOPPED_APP, prom, re.M)
        print(f"\nstopped {STOPPED_APP}: {stopped['status']}: {stopped['message']}")
    finally:
        lab.ssh(target, f"docker start {sidecar}")
    deadline = time.time() + 60
    while True:
        proc, report, _elapsed = health(lab, tmp_path / "started")
        if proc.returncode == 0 or time.time() > deadline:
            break
        time.sleep(3)
    assert proc.returncode == 0, json.dumps(report and report["results"], indent=2) + proc.stdout[-3000:]
    assert report["summary"]["ok"] == 4
    again = statuses(report)[(STOPPED_HOST, STOPPED_APP)]
    print(f"started again: {again['status']}, replica txid {again['replica_txid']}, lag {again['lag_txid']}")


def test_the_report_sent_to_a_host_runs_there_as_the_module(health_lab, tmp_path):
    """The report's action plugin writes in Ansible's process only with a local connection; sent over SSH to a
    lab host (no delegate_to) the module runs there, and the files are on the host, not the controller."""
    lab = health_lab
    target = host(lab, "lab-dokku-1")
    dest = "/tmp/dsl-health-report-remote"
    lab.ssh(target, f"rm -rf {dest}")
    args = json.dumps({"results": [{"host": "lab-dokku-1", "app": "blog", "status": "ok"}],
                       "lost_hosts": ["lab-dokku-9"], "dest": dest})
    proc = lab.ansible("lab-dokku-1", "-m", "dokku_sqlite.litestream.litestream_health_report", "-a", args, "-vvv")
    assert "SSH: EXEC" in proc.stdout  # the module was sent over SSH and run there
    data = json.loads(lab.ssh(target, f"cat {dest}/health-report.json").stdout)
    assert data["summary"] == dict(total=2, ok=1, stale=0, failing=1, missing=0, fenced=0)
    assert data["failed_databases"] == ["lab-dokku-9/*/*"]
    assert not os.path.exists(dest)
    lab.ssh(target, f"rm -rf {dest}")
