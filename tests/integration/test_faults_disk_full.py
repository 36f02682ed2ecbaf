"""Fault test: the drill's scratch directory runs out of space (issue #6, fault 5).

A 2 MiB tmpfs is mounted on the drill scratch directory of lab-dokku-1 (the lab hosts have
CAP_SYS_ADMIN); one app's replicated database is about 4 MiB of incompressible rows, another's is
small. The drill must fail after drilling both, name the full disk for the big app in its report,
pass the small app (drilled after the big one, in the space the big one's partial file took), and
leave no file in the scratch directory. The module itself is also run into a directory of the full
tmpfs that holds a file of someone else's: its own partial files and Litestream's `.tmp` must go,
the other file must stay.
"""
import json
import re
import secrets
import shlex
import time
import xml.etree.ElementTree as ET

import pytest

from test_faults_concurrency import lab_host, remove_apps
from test_replication import PROVISION, STORAGE_ROOT, wait_for

HOST = "lab-dokku-1"
DRILL = "dokku_sqlite.litestream.drill"
SCRATCH = "/var/lib/dokku-litestream-drill"
TMPFS_MIB = 2
BIG_ROWS, BIG_PAYLOAD = 1000, 4000  # about 4 MiB of random bytes: twice the tmpfs, even compressed
SMALL_ROWS = 50
FILL = (
    "import sqlite3, sys, time\n"
    "c = sqlite3.connect(sys.argv[1]); c.execute('pragma journal_mode=wal')\n"
    "c.execute('create table if not exists events (id integer primary key, committed_at real, payload blob)')\n"
    "for i in range(int(sys.argv[2])):\n"
    "    c.execute('insert into events (committed_at, payload) values (?, randomblob(?))', (time.time(), int(sys.argv[3])))\n"
    "    if i % 100 == 99: c.commit()\n"
    "c.commit()\n"
)


def du(lab, host, path):
    out = lab.ssh(host, f"du -sb {path} 2>/dev/null | cut -f1", check=False).stdout.strip()
    return int(out or 0)


def scratch_listing(lab, host):
    """Everything left under the scratch directory (the tmpfs root itself excluded), and the bytes in use."""
    listing = lab.ssh(host, f"find {SCRATCH} -mindepth 1 -printf '%P\\n'").stdout.split()
    used = int(lab.ssh(host, f"df -B1 --output=used {SCRATCH} | tail -n 1").stdout.strip())
    return listing, used


@pytest.fixture(scope="module")
def full_scratch(lab, tmp_path_factory):
    """Two apps replicated to file replicas (a big and a small database), and a small tmpfs on the scratch dir."""
    host = lab_host(lab, HOST)
    tag = secrets.token_hex(3)
    replicas = f"/srv/lab-replicas/diskfull-{tag}"
    apps = [{"app": f"big-{tag}", "create": True, "replica": {"type": "file", "path": f"{replicas}/big"}},
            {"app": f"small-{tag}", "create": True, "replica": {"type": "file", "path": f"{replicas}/small"}}]
    extra = tmp_path_factory.mktemp("diskfull") / "apps.json"
    extra.write_text(json.dumps({"litestream_apps": apps}))
    mounted = False
    try:
        lab.playbook(PROVISION, "--limit", HOST, "-e", f"@{extra}")
        for app, rows, payload in ((apps[0]["app"], BIG_ROWS, BIG_PAYLOAD), (apps[1]["app"], SMALL_ROWS, 100)):
            lab.ssh(host, f"python3 -c {shlex.quote(FILL)} {STORAGE_ROOT}/{app}--db/production.sqlite3 {rows} {payload}")
        need = (TMPFS_MIB + 1) * 1024 * 1024
        wait_for("the big database in its replica", lambda: du(lab, host, f"{replicas}/big") >= need, 60, interval=1)
        wait_for("the small database in its replica",
                 lambda: lab.ssh(host, f"ls {replicas}/small/production.sqlite3/ltx/0/", check=False).stdout.strip(), 60,
                 interval=1)
        time.sleep(2)  # the last sync of both
        assert lab.ssh(host, f"grep -q ' {SCRATCH} ' /proc/mounts", check=False).returncode != 0, \
            f"something is mounted on {SCRATCH} already"
        lab.ssh(host, f"mkdir -p {SCRATCH} && mount -t tmpfs -o size={TMPFS_MIB}m,mode=0755 dsl-drill-full {SCRATCH}")
        mounted = True
        yield host, apps, extra
    finally:
        if mounted:
            lab.ssh(host, f"umount {SCRATCH}")  # fails the test loudly if it cannot
        remove_apps(lab, host, apps, replicas)


def test_a_full_scratch_disk_fails_that_drill_cleanly_and_the_others_pass(lab, full_scratch, tmp_path):
    host, apps, _extra = full_scratch
    big, small = apps[0]["app"], apps[1]["app"]
    report_dir = tmp_path / "reports"
    extra = tmp_path / "drill.json"
    extra.write_text(json.dumps({"litestream_apps": apps, "restore_drill_report_dir": str(report_dir)}))
    started = time.time()
    proc = lab.playbook(DRILL, "--limit", HOST, "-e", f"@{extra}", check=False)
    took = time.time() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    # it failed in its last task, after the report: every app was drilled
    assert "TASK [dokku_sqlite.litestream.restore_drill : Fail when any drill failed]" in out, out[-4000:]
    assert "restore drill failed for 1 of 2" in out

    report = json.loads((report_dir / "drill-report.json").read_text())
    assert report["summary"] == {"total": 2, "ok": 1, "failed": 1}, report
    results = {r["app"]: r for r in report["results"]}
    failed = results[big]
    assert failed["status"] == "failed"
    prefix = f"{HOST}/{big}/production.sqlite3: "
    assert failed["message"].startswith(prefix), failed["message"]
    # the run's own directory, <scratch>/<host>.<random>
    assert re.search(r"no space left on device in %s/%s\.[A-Za-z0-9_]+/%s \(" % (
        re.escape(SCRATCH), re.escape(HOST), re.escape(big)), failed["message"]), failed["message"]
    assert re.search(r"\(\d+\.\d MiB free of 2\.0 MiB once the partial file was removed\)", failed["message"]), \
        failed["message"]
    passed = results[small]
    assert passed["status"] == "ok" and passed["integrity"] == "ok" and passed["rows"] == SMALL_ROWS, passed

    cases = {c.get("name"): c for c in ET.parse(str(report_dir / "drill-report.xml")).getroot().iter("testcase")}
    assert cases[f"{HOST}/{big}/production.sqlite3"].find("failure").get("message").startswith(prefix)
    assert cases[f"{HOST}/{small}/production.sqlite3"].find("failure") is None

    listing, used = scratch_listing(lab, host)
    assert listing == [], f"files left in the scratch directory: {listing}"
    assert used < 64 * 1024, f"{used} bytes still in use on the scratch tmpfs"
    print(f"\ndrill with a full scratch disk: {took:.1f} s; message: {failed['message'][:160]}...")


def test_the_restore_module_removes_its_partial_files_and_keeps_the_others(lab, full_scratch):
    host, apps, _extra = full_scratch
    dest = f"{SCRATCH}/module-{apps[0]['app']}"
    lab.ssh(host, f"mkdir -p {dest} && echo keep > {dest}/not-ours")
    args = {"replica": apps[0]["replica"], "dest": dest, "owner": 0, "group": 0, "mode": "0600",
            "image": lab.facts["images"]["litestream"]}
    try:
        proc = lab.ansible(HOST, "-m", "dokku_sqlite.litestream.litestream_restore", "-a", json.dumps(args), check=False)
        listing, used = scratch_listing(lab, host)
    finally:
        lab.ssh(host, f"rm -rf {dest}")
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert f"restore of production.sqlite3 into {dest}/production.sqlite3: no space left on device in {dest} (" \
        in proc.stdout, proc.stdout[-3000:]
    # Litestream's own words, naming its file in the module's root-only stage directory (mounted at /restore)
    assert "write /restore/production.sqlite3" in proc.stdout
    assert sorted(listing) == [f"module-{apps[0]['app']}", f"module-{apps[0]['app']}/not-ours"], listing
    assert used < 64 * 1024, f"{used} bytes still in use on the scratch tmpfs"
