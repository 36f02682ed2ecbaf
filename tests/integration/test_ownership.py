"""Who owns an app's replica, across two lab hosts and separate plays (issue 22).

One app, listed on both hosts with one S3 replica (a prefix of its own on the lab's moto):
- provision of lab-dokku-1 alone claims epoch 1; provision of lab-dokku-2 alone, in another play, is refused naming
  lab-dokku-1 (the in-play duplicate check cannot see it) and starts nothing there;
- health on lab-dokku-2 reports the app failing because the host is fenced;
- disaster recovery while lab-dokku-1 keeps running and writing (a partition): a restore onto lab-dokku-2 without
  restore_take_over is refused; with it, lab-dokku-2 restores, claims epoch 2 and replicates to its own lineage.
  lab-dokku-1 goes on writing rows into its dead lineage, lab-dokku-2 writes rows of its own. A restore of the
  current lineage then holds lab-dokku-1's rows up to the take-over and lab-dokku-2's rows, and not one row
  lab-dokku-1 wrote after it; the epoch-1 lineage never received lab-dokku-2's rows; provision on lab-dokku-1 is
  refused naming lab-dokku-2.
"""
import json
import re
import secrets
import time

import boto3
import pytest

from test_replication import PROVISION, STORAGE_ROOT, extra_vars_file, inventory_apps, recap, sidecar

RESTORE = "dokku_sqlite.litestream.restore"
HEALTH = "dokku_sqlite.litestream.health"
TAG = secrets.token_hex(2)
APP = f"owned-{TAG}"
DB = "production.sqlite3"


def entry(state="started"):
    return {"app": APP, "create": True, "state": state,
            "replica": {"type": "s3", "bucket": "{{ lab_s3_bucket }}", "path": f"ownership/{APP}",
                        "endpoint": "{{ lab_s3_endpoint }}", "region": "{{ lab_s3_region }}",
                        "credentials": "lab-s3", "sync_interval": "1s"}}


def apps_file(lab, tmp_path, name, state="started"):
    return extra_vars_file(tmp_path, name, {"litestream_apps": inventory_apps(lab) + [entry(state)]})


def insert(lab, host, note, rows):
    lab.ssh(host, f"sqlite3 {STORAGE_ROOT}/{APP}--db/{DB} \"with recursive n(i) as (select 1 union all select i + 1 "
                  f"from n where i < {rows}) insert into events (note) select '{note}-' || i from n\"")


def notes(lab, host, path):
    out = lab.ssh(host, f"sqlite3 {path} 'select note from events order by id'").stdout.split()
    return out


def ownership_of(lab, host):
    """litestream_ownership ad hoc on a host: its view of the app's replica."""
    args = {"app": APP, "replica": {"type": "s3", "bucket": lab.facts["s3"]["bucket"], "path": f"ownership/{APP}",
                                    "endpoint": lab.facts["s3"]["endpoint"], "region": "us-east-1",
                                    "credentials": "lab-s3"}}
    proc = lab.ansible(host["name"], "-m", "dokku_sqlite.litestream.litestream_ownership", "-a", json.dumps(args))
    return json.loads(proc.stdout.split(" => ", 1)[1])


def level0_txids(lab, prefix):
    """The max TXIDs of the level-0 files under a replica prefix, read from the lab's S3 server."""
    keys = json.loads((lab.state / "s3-credentials.json").read_text())
    s3 = boto3.client("s3", endpoint_url=lab.facts["s3"]["endpoint"], region_name="us-east-1",
                      aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"])
    listed = s3.list_objects_v2(Bucket=lab.facts["s3"]["bucket"], Prefix=f"{prefix}/0000/")
    return sorted(m.group(1) for m in (re.search(r"-([0-9a-f]{16})\.ltx$", o["Key"])
                                       for o in listed.get("Contents", [])) if m)


def restore_to(lab, host, replica, dest, txid=None):
    lab.ssh(host, f"rm -rf {dest} && mkdir -p {dest}")
    args = {"replica": replica, "database": DB, "dest": dest, "owner": 0, "group": 0,
            "image": lab.facts["images"]["litestream"]}  # the lab's own build of the image (no registry here)
    if txid:
        args["txid"] = txid
    proc = lab.ansible(host["name"], "-m", "dokku_sqlite.litestream.litestream_restore", "-a", json.dumps(args))
    assert '"restored": true' in proc.stdout, proc.stdout[-3000:]
    return f"{dest}/{DB}"


@pytest.fixture(scope="module")
def owned_by_first(lab, tmp_path_factory):
    """The app on lab-dokku-1 with a database of its own, provisioned there alone: epoch 1 is lab-dokku-1's."""
    tmp = tmp_path_factory.mktemp("ownership")
    first, second = lab.hosts[0], lab.hosts[1]
    for host in (first, second):
        lab.ssh(host, f"mkdir -p {STORAGE_ROOT}/{APP}--db && chown 32767:32767 {STORAGE_ROOT}/{APP}--db")
    lab.ssh(first, f"sqlite3 {STORAGE_ROOT}/{APP}--db/{DB} 'pragma journal_mode=wal; create table events "
                   f"(id integer primary key, note text)' && chown 32767:32767 {STORAGE_ROOT}/{APP}--db/{DB}")
    insert(lab, first, "a-pre", 20)
    try:
        recap(lab.playbook(PROVISION, "--limit", first["name"], "-e", apps_file(lab, tmp, "first.json")))
        yield tmp
    finally:
        gone = apps_file(lab, tmp, "gone.json", state="absent")
        for host in (first, second):
            lab.playbook(PROVISION, "--limit", host["name"], "-e", gone, check=False)
            lab.dokku(host, "--force", "apps:destroy", APP, check=False)
            lab.ssh(host, f"rm -rf {STORAGE_ROOT}/{APP}--db /tmp/{APP}-restored", check=False)


def test_a_second_host_in_another_play_is_refused_naming_the_owner(lab, owned_by_first):
    first, second = lab.hosts[0], lab.hosts[1]
    assert ownership_of(lab, first)["ownership"]["standing"] == "owner"
    proc = lab.playbook(PROVISION, "--limit", second["name"], "-e", apps_file(lab, owned_by_first, "second.json"),
                        check=False)
    out = proc.stdout
    assert proc.returncode != 0, out[-3000:]
    assert f"app {APP}: its replica is owned by {first['name']} since epoch 1 (first," in out, out[-4000:]
    assert "is fenced and must not write into it" in out
    assert lab.ssh(second, f"docker container inspect {sidecar(APP)}", check=False).returncode != 0
    seen = ownership_of(lab, second)
    assert seen["fenced"] and seen["ownership"]["owner"] == first["name"]


def test_health_on_the_fenced_host_says_so(lab, owned_by_first):
    second = lab.hosts[1]
    proc = lab.playbook(HEALTH, "--limit", second["name"], "-e", apps_file(lab, owned_by_first, "health.json"),
                        "-e", f"health_report_dir={owned_by_first / 'health-reports'}", check=False)
    assert f"{second['name']}/{APP}" in proc.stdout and "is fenced" in proc.stdout, proc.stdout[-4000:]


def test_a_take_over_during_a_partition_fences_the_old_owner(lab, owned_by_first):
    first, second = lab.hosts[0], lab.hosts[1]
    apps = apps_file(lab, owned_by_first, "restore.json")
    insert(lab, first, "a-before", 10)
    time.sleep(4)  # lab-dokku-1's sidecar ships them (sync-interval 1 s)
    refused = lab.playbook(RESTORE, "--limit", second["name"], "-e", f"restore_app={APP}", "-e", apps, check=False)
    assert refused.returncode != 0 and "nothing was stopped or changed" in refused.stdout, refused.stdout[-3000:]
    lab.playbook(RESTORE, "--limit", second["name"], "-e", f"restore_app={APP}", "-e", "restore_take_over=true",
                 "-e", apps)
    taken = ownership_of(lab, second)
    assert taken["ownership"]["standing"] == "owner" and taken["ownership"]["epoch"] == 2
    assert taken["read_replica"]["path"] == f"ownership/{APP}/.dokku-litestream/{APP}/epochs/2"
    restored_at_take_over = notes(lab, second, f"{STORAGE_ROOT}/{APP}--db/{DB}")
    assert restored_at_take_over == [f"a-pre-{i}" for i in range(1, 21)] + [f"a-before-{i}" for i in range(1, 11)]

    # the partition: lab-dokku-1 never learnt of it and goes on writing; lab-dokku-2 writes as the owner
    insert(lab, first, "a-after", 15)
    insert(lab, second, "b", 12)
    time.sleep(4)
    current = restore_to(lab, second, taken["read_replica"], f"/tmp/{APP}-restored/current")
    assert notes(lab, second, current) == restored_at_take_over + [f"b-{i}" for i in range(1, 13)]
    assert lab.ssh(second, f"sqlite3 {current} 'pragma integrity_check'").stdout.strip() == "ok"
    # point-in-time restores of the new lineage (first, middle, last TXID): intact, and only rows it holds
    txids = level0_txids(lab, f"{taken['read_replica']['path']}/{DB}")
    assert len(txids) >= 2, txids
    allowed = set(restored_at_take_over) | {f"b-{i}" for i in range(1, 13)}
    for txid in (txids[0], txids[len(txids) // 2], txids[-1]):
        at = restore_to(lab, second, taken["read_replica"], f"/tmp/{APP}-restored/{txid}", txid=txid)
        assert lab.ssh(second, f"sqlite3 {at} 'pragma integrity_check'").stdout.strip() == "ok", txid
        assert set(notes(lab, second, at)) <= allowed, txid
    old = restore_to(lab, second, dict(taken["read_replica"], path=f"ownership/{APP}"), f"/tmp/{APP}-restored/old")
    assert not any(note.startswith("b-") for note in notes(lab, second, old)), "the new owner wrote the old lineage"
    assert "a-after-15" in notes(lab, second, old)  # the old owner's writes went to its own, dead, lineage

    again = lab.playbook(PROVISION, "--limit", first["name"], "-e", apps_file(lab, owned_by_first, "back.json"),
                         check=False)
    assert again.returncode != 0 and f"owned by {second['name']} since epoch 2 (take-over" in again.stdout, \
        again.stdout[-4000:]
