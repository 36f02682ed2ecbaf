"""The restore drill end to end against the lab: provision + the demo writer on both hosts, then the
drill playbook by FQCN for lab-dokku-1's apps (shop-1 on S3, notes-1 on the shared file replica),
restoring on lab-dokku-2. Then drills that must fail: a missing replica, a wrong credential set and a
corrupted replica file, next to the healthy apps: the play fails only after every app was drilled.
Last, issue 20's proof: the scratch directory set to /var/lib (the parent of /var/lib/dokku) for a source
host whose inventory name is `dokku` (an alias of lab-dokku-2) drills that host and leaves /var/lib/dokku
exactly as it was.
"""
import json
import re
import secrets
import shlex
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from conftest import LAB, Lab
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
    # a corrupted copy of notes-1's file replica: every LTX file overwritten with garbage of its size.
    # Not only level 0's newest: Litestream's restore plan (CalcRestorePlan, v0.5.16 replica.go:1514)
    # takes the file of any level that reaches furthest, so a compaction that covered the newest
    # level-0 file made the restore skip it and pass (CI, stop 28: "failed for 2 of 5").
    corrupt = f"/srv/lab-replicas/drill-corrupt-{tag}"
    lab.ssh(drill_host, f"cp -a /srv/lab-replicas/{SOURCE}/notes-1 {corrupt} && "
                        f"find {corrupt} -name '*.ltx' -type f | grep -q . && "
                        f"find {corrupt} -name '*.ltx' -type f | while read -r f; do "
                        f"head -c $(stat -c %s \"$f\") /dev/urandom > \"$f.tmp\" && mv \"$f.tmp\" \"$f\"; done")
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
    results = by_app(report)
    assert report["summary"] == {"total": 5, "ok": 2, "failed": 3}, json.dumps(report["results"], indent=1)
    assert "restore drill failed for 3 of 5" in out
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


# --------------------------------------------------------------------------- issue 20: the scratch directory
# A scratch directory that is the parent of /var/lib/dokku, and a source host whose inventory name is `dokku`:
# <scratch>/<host> is /var/lib/dokku itself. The drill must still only remove what it made in that run.
DOKKU_ROOT = "/var/lib/dokku"
ALIAS, ALIASED = "dokku", "lab-dokku-2"  # the inventory alias and the lab host it points at (shop-2 S3, notes-2 sftp)
# A listing of a tree with what identifies each entry: type and mode, owner, inode, mtime, and the sha256 of a
# regular file (a symlink's target). The live databases and Litestream's own directory beside them change while
# the test runs (the demo writers commit, the sidecars replicate): of those only the type is kept.
SNAPSHOT = r"""
import hashlib, json, os, re, stat, sys
root = sys.argv[1]
live = re.compile(r"^data/storage/[^/]+/(production\.sqlite3(-wal|-shm)?|\.production\.sqlite3-litestream)$")
storage_dir = re.compile(r"^data/storage/[^/]+$")  # SQLite may make and remove -wal/-shm files in it
def entry(path, rel):
    st = os.lstat(path)
    if live.match(rel):
        return [stat.filemode(st.st_mode)[0]]
    out = [stat.filemode(st.st_mode), st.st_uid, st.st_gid, st.st_ino]
    if not storage_dir.match(rel):
        out.append(st.st_mtime_ns)
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            out.append(hashlib.sha256(f.read()).hexdigest())
    elif stat.S_ISLNK(st.st_mode):
        out.append(os.readlink(path))
    return out
tree = {".": entry(root, ".")}
for dirpath, dirnames, filenames in os.walk(root):
    base = os.path.relpath(dirpath, root)
    for name in dirnames + filenames:
        rel = os.path.normpath(os.path.join(base, name))
        tree[rel] = entry(os.path.join(dirpath, name), rel)
    dirnames[:] = [d for d in dirnames if not live.match(os.path.normpath(os.path.join(base, d)))]
print(json.dumps({"tree": tree, "parent": sorted(os.listdir(os.path.dirname(root)))}))
"""


def snapshot(lab, lab_host):
    proc = lab.ssh(lab_host, f"test -d {DOKKU_ROOT} && python3 -c {shlex.quote(SNAPSHOT)} {DOKKU_ROOT}", check=False)
    if proc.returncode != 0:
        return {"tree": None, "parent": lab.ssh(lab_host, f"ls -A {shlex.quote(str(Path(DOKKU_ROOT).parent))}")
                .stdout.split(), "error": proc.stderr.strip()}
    return json.loads(proc.stdout)


def tree_changes(before, after):
    """What differs between two snapshots of the tree, in words (empty when nothing)."""
    if after is None:
        return [f"{DOKKU_ROOT} is gone"]
    changes = [f"removed: {p}" for p in sorted(set(before) - set(after))]
    changes += [f"added: {p}" for p in sorted(set(after) - set(before))]
    changes += [f"changed: {p}: {before[p]} -> {after[p]}" for p in sorted(set(before) & set(after))
                if before[p] != after[p]]
    return changes


def alias_inventory(lab, tmp_path):
    """An inventory whose only host is named `dokku` and points at lab-dokku-2's sshd, with the lab's variables."""
    source = yaml.safe_load(Path(lab.inventory).read_text())
    hostvars = source["all"]["children"]["dokku"]["hosts"][ALIASED]
    path = tmp_path / "alias-inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {ALIAS: hostvars}, "vars": source["all"]["vars"]}}))
    return Lab(dict(lab.facts, inventory=str(path)))


def aliased_apps(lab):
    """The lab's example configuration (group_vars/dokku.yml) as lab-dokku-2 reads it, for a host of another name:
    every `inventory_hostname` (replica paths) is lab-dokku-2's name, so the alias drills that host's replicas."""
    text = (lab.state / "group_vars" / "dokku.yml").read_text()
    return yaml.safe_load(text.replace("inventory_hostname", repr(ALIASED)))


def rebuild_host(lab, lab_host):
    """After a drill removed files of /var/lib/dokku (the fault test below is for): rebuild that lab host from
    nothing, so that the tests after it find the lab they expect. Its container and inner Docker volume go, its
    replicas go (its new databases start over), `lab.py up` starts it again, provision and the demo writers."""
    import boto3
    subprocess.run(["docker", "rm", "-f", "-v", lab_host["container"]], capture_output=True, check=False)
    subprocess.run(["docker", "volume", "rm", "-f", f"{lab_host['container']}-docker"], capture_output=True, check=False)
    for replicas in (lab.state / "replicas" / lab_host["name"], lab.state / "sftp-data" / lab_host["name"]):
        shutil.rmtree(replicas, ignore_errors=True)
    s3 = lab.facts["s3"]
    creds = json.loads((lab.state / "s3-credentials.json").read_text())
    client = boto3.client("s3", endpoint_url=s3["endpoint"], region_name=s3["region"],
                          aws_access_key_id=creds["access_key_id"], aws_secret_access_key=creds["secret_access_key"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3["bucket"], Prefix=f"{lab_host['name']}/"):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=s3["bucket"], Delete={"Objects": keys})
    proc = subprocess.run([*LAB, "up"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"lab up failed while rebuilding {lab_host['name']}:\n{proc.stderr}"
    start_writers(lab)


def test_scratch_dir_parent_of_dokku_data_with_a_host_named_dokku_leaves_it_untouched(drill_lab, tmp_path):
    """Issue 20: scratch_dir /var/lib and a source host named `dokku` (so <scratch>/<host> is /var/lib/dokku): the
    drill still drills that host's apps, and /var/lib/dokku is exactly as it was: every entry, owner, mode, inode,
    mtime and checksum (the live databases aside), a canary file at its top and one in <scratch>/<host>/<app> for
    each drilled app (where a drill of old restored); nothing of the drill is left in /var/lib either."""
    lab = drill_lab
    lab_host = host(lab, ALIASED)
    alias = alias_inventory(lab, tmp_path)
    tag = secrets.token_hex(4)
    apps = ("shop-2", "notes-2")
    canaries = [f"{DOKKU_ROOT}/dsl-drill-canary-{tag}"] + [f"{DOKKU_ROOT}/{app}/dsl-drill-canary-{tag}" for app in apps]
    # <scratch>/<host>/<app> is no directory of Dokku's: the test makes it, and removes it after
    lab.ssh(lab_host, " && ".join(f"test ! -e {DOKKU_ROOT}/{app}" for app in apps))
    lab.ssh(lab_host, " && ".join(f"mkdir -p {shlex.quote(str(Path(c).parent))} && echo {tag} > {shlex.quote(c)}"
                                  for c in canaries))
    before = snapshot(lab, lab_host)
    assert before["tree"] is not None and all(c.removeprefix(DOKKU_ROOT + "/") in before["tree"] for c in canaries)
    assert {"config/litestream/apps/shop-2/litestream.yml", "data/storage/shop-2--db/production.sqlite3",
            "config/litestream/credentials/lab-s3/credentials.json"} <= set(before["tree"]), sorted(before["tree"])
    damaged = True
    try:
        report_dir = tmp_path / "reports"
        data = dict(aliased_apps(lab), restore_drill_scratch_dir=str(Path(DOKKU_ROOT).parent),
                    restore_drill_report_dir=str(report_dir))
        vars_file = tmp_path / "drill-vars.json"
        vars_file.write_text(json.dumps(data))
        proc = alias.playbook(DRILL, "-e", f"@{vars_file}", check=False)
        out = proc.stdout + proc.stderr
        (tmp_path / "drill-output.txt").write_text(out)
        after = snapshot(lab, lab_host)
        left = lab.ssh(lab_host, " ; ".join(f"cat {shlex.quote(c)} 2>/dev/null || echo MISSING" for c in canaries)
                       ).stdout.split()
        changes = tree_changes(before["tree"], after["tree"])
        damaged = bool(changes) or left != [tag] * len(canaries)
        report_file = report_dir / "drill-report.json"
        problems = [f"canary {c}: {'kept' if got == tag else 'GONE'}" for c, got in zip(canaries, left) if got != tag]
        if changes:
            problems += [f"{DOKKU_ROOT} on {ALIASED} changed in {len(changes)} entries, first:"] + changes[:25]
        if after["parent"] != before["parent"]:
            problems.append(f"{Path(DOKKU_ROOT).parent} differs: {sorted(set(after['parent']) ^ set(before['parent']))}")
        assert not problems, (
            f"the drill (rc={proc.returncode}, report summary "
            f"{json.loads(report_file.read_text())['summary'] if report_file.exists() else None}) touched what is "
            f"not its own:\n" + "\n".join(problems))

        # and it drilled: both apps of the host, restored, checked and compared with their live databases
        assert proc.returncode == 0, out[-6000:]
        assert re.search(RECAP_RE.format(host=ALIAS, failed=0), proc.stdout, re.M), proc.stdout[-3000:]
        report = json.loads(report_file.read_text())
        assert report["passed"] is True and report["summary"] == {"total": 2, "ok": 2, "failed": 0}, report
        results = by_app(report)
        assert sorted(results) == sorted(apps)
        for app, result in results.items():
            assert result["status"] == "ok" and result["integrity"] == "ok", result
            assert result["host"] == ALIAS and result["drill_host"] == ALIAS, result
            assert result["rows"] > 0 and result["tables"]["events"] == result["rows"], result
        assert results["shop-2"]["replica"].startswith(f"s3://{lab.facts['s3']['bucket']}/{ALIASED}/shop-2")
        assert results["notes-2"]["replica"].startswith("sftp://")
        assert sorted(junit_cases(ET.parse(str(report_dir / "drill-report.xml")).getroot())) == sorted(
            f"{ALIAS}/{app}/production.sqlite3" for app in apps)
        print(f"\nscratch dir {Path(DOKKU_ROOT).parent}, host {ALIAS!r}: {DOKKU_ROOT} unchanged "
              f"({len(before['tree'])} entries), {len(canaries)} canaries kept, both apps drilled ok")
    finally:
        lab.ssh(lab_host, "rm -rf " + " ".join(shlex.quote(c) for c in canaries) + " "
                + " ".join(f"{DOKKU_ROOT}/{app}" for app in apps) + " 2>/dev/null; true", check=False)
        if damaged:
            rebuild_host(lab, lab_host)
