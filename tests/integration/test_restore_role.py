"""Role restore / playbook restore against the lab: refusal first, skip, replace, and a disaster recovery."""
import subprocess
import time

import pytest

from conftest import LAB
from test_replication import (DEPLOY_DEMO, STORAGE_ROOT, live_rows, provision, recap, sidecar_states, start_writers,
                              wait_for, writer_active)

RESTORE = "dokku_sqlite.litestream.restore"
APP = "shop-1"


@pytest.fixture(scope="module")
def running(lab):
    start_writers(lab)
    time.sleep(4)  # a first snapshot in the replica
    return lab


def app_container(lab, host, app):
    return lab.ssh(host, f"docker inspect --format '{{{{.Id}}}} {{{{.State.Running}}}}' {app}.web.1",
                   check=False).stdout.strip()


def restore(lab, host, *extra, check=True):
    return lab.playbook(RESTORE, "--limit", host["name"], "-e", f"restore_app={APP}", *extra, check=check)


def test_existing_database_is_refused_before_anything_stops(running):
    lab = running
    host = lab.hosts[0]
    before = (app_container(lab, host, APP), sidecar_states(lab)[(host["name"], APP)])
    proc = restore(lab, host, check=False)
    assert proc.returncode != 0
    assert (f"{STORAGE_ROOT}/{APP}--db/production.sqlite3 already exists; nothing was stopped or changed. "
            "Set restore_on_existing=replace") in " ".join(proc.stdout.split())
    assert (app_container(lab, host, APP), sidecar_states(lab)[(host["name"], APP)]) == before
    assert before[0].endswith("true")


def test_skip_leaves_everything_alone(running):
    lab = running
    host = lab.hosts[0]
    before = app_container(lab, host, APP)
    proc = restore(lab, host, "-e", "restore_on_existing=skip")
    assert recap(proc)[host["name"]] == 0
    assert app_container(lab, host, APP) == before


def test_replace_restores_keeps_a_backup_and_starts_everything_again(running):
    lab = running
    host = lab.hosts[0]
    started = time.time()
    old_rows = live_rows(lab, host, APP, cutoff=started - 3.0)  # surely replicated by now
    proc = restore(lab, host, "-e", "restore_on_existing=replace")
    assert recap(proc)[host["name"]] > 0
    assert "production.sqlite3 restored" in proc.stdout and "integrity ok" in proc.stdout
    backups = lab.ssh(host, f"ls {STORAGE_ROOT}/{APP}--db/ | grep -c 'production.sqlite3.*\\.bak$'").stdout
    assert int(backups) >= 1, "the old database was not kept"
    new_rows = live_rows(lab, host, APP)
    assert new_rows[:len(old_rows)] == old_rows, "rows replicated before the restore are missing"
    assert sidecar_states(lab)[(host["name"], APP)][1], "the sidecar is not running again"
    wait_for("the app writing again", lambda: writer_active(lab, host, APP), 30)
    owner = lab.ssh(host, f"stat -c %u:%g {STORAGE_ROOT}/{APP}--db/production.sqlite3").stdout.strip()
    assert owner == "32767:32767"


def test_disaster_recovery_on_a_fresh_host(running):
    """Host A is destroyed entirely; a fresh host gets provision + restore; every replicated row comes back.

    The fresh host has a new host id, so the replica's owner (the lost host, epoch 1) is another host to it:
    provision refuses the app's sidecar and a plain restore is refused before anything stops; the restore with
    restore_take_over=true restores, claims epoch 2 and starts the sidecar on the new lineage, and a provision
    afterwards is content."""
    lab = running
    host = lab.hosts[0]
    lab.dokku(host, "ps:stop", APP)
    time.sleep(4)  # the sidecar ships the last rows (sync-interval 1 s)
    rows = live_rows(lab, host, APP)
    assert len(rows) > 10
    subprocess.run(["docker", "rm", "-f", "-v", host["container"]], check=True, capture_output=True)
    subprocess.run(["docker", "volume", "rm", "-f", f"{host['container']}-docker"], check=True, capture_output=True)
    proc = subprocess.run([*LAB, "up"], capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr
    assert lab.dokku(host, "apps:exists", APP, check=False).returncode == 20, "the host is not fresh"
    refused = provision(lab, "--limit", host["name"], check=False)
    assert refused.returncode != 0 and "is fenced and must not write into it" in refused.stdout, refused.stdout[-3000:]
    assert "restore_take_over: true" in refused.stdout
    assert sidecar_states(lab).get((host["name"], APP)) is None, "a fenced host started the app's sidecar"
    plain = restore(lab, host, check=False)
    assert plain.returncode != 0 and "nothing was stopped or changed" in plain.stdout, plain.stdout[-3000:]
    assert "restore_take_over=true" in plain.stdout
    restore(lab, host, "-e", "restore_take_over=true")
    config = lab.ssh(host, f"cat /var/lib/dokku/config/litestream/apps/{APP}/litestream.yml").stdout
    assert f"/.dokku-litestream/{APP}/epochs/2/production.sqlite3" in config, config
    # every app of the lost host is taken over, each by its restore (notes-1: a file replica)
    lab.playbook(RESTORE, "--limit", host["name"], "-e", "restore_app=notes-1", "-e", "restore_take_over=true")
    recap(provision(lab, "--limit", host["name"]))  # asserts no host failed
    restored = live_rows(lab, host, APP)
    assert restored[:len(rows)] == rows, f"{len(rows)} rows replicated, {len(restored)} restored"
    lab.playbook(DEPLOY_DEMO, "--limit", host["name"])
    wait_for("the restored app writing again", lambda: writer_active(lab, host, APP), 30)
    assert live_rows(lab, host, APP)[:len(rows)] == rows
