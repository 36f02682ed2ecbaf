"""What the Dokku commands users run by hand do to replication (issue #11), on the corrected stand-in.

Real Dokku's ps:stop (from 0.36.0) stops every container labelled com.dokku.app-name=<app> after setting
its restart policy to `no`, and nothing in Dokku starts it again (tests/standin/SOURCE-EVIDENCE.md,
sections 1 and 2; the stand-in's own tests assert it). The sidecar therefore carries no such label:
these tests prove, on both lab generations (0.38.27 and 0.37.10), that a maintenance stop and start by
hand, a restore with the restore playbook followed by a reboot, and a restore of a stopped app leave the
sidecar running with restart policy unless-stopped and replicating, with no playbook run in between, and
that the next provision run then reports changed=0.
"""
import subprocess
import time

import pytest

from test_replication import (  # noqa: F401  (replicating is a fixture)
    CONFIG_ROOT, DEPLOY_DEMO, LAG, STORAGE_ROOT, extra_vars_file, inventory_apps, app_running, apps_of, assert_replica_current, assert_replication_resumes, provision, recap, replicating,
    sidecar, sidecar_states, wait_for, writer_active,
)

RESTORE = "dokku_sqlite.litestream.restore"


def s3_app(lab, host):
    return next((app, kind) for h, app, kind in apps_of(lab) if h is host and kind == "s3")


def policy(lab, host, app):
    return lab.ssh(host, f"docker inspect --format '{{{{.HostConfig.RestartPolicy.Name}}}}' {sidecar(app)}").stdout.strip()


def restore_state(lab, host, app):
    """Dokku's restore-at-boot state of the app, as `ps:report --restore` tells it (all generations)."""
    return lab.dokku(host, "--quiet", "ps:report", app, "--restore").stdout.strip()


def remove_restore_backups(lab, host, app):
    """The replace restores here keep the old database as *.bak files; later tests expect none."""
    lab.ssh(host, f"rm -rf {STORAGE_ROOT}/{app}--db/*.bak {STORAGE_ROOT}/{app}--db/*.bak-* "
                  f"{STORAGE_ROOT}/{app}--db/.*.bak-litestream")


def assert_nothing_to_repair(lab):
    changed = recap(provision(lab))
    assert all(n == 0 for n in changed.values()), f"provision after the commands changed something: {changed}"


@pytest.mark.parametrize("index", [0, 1], ids=["dokku-0.38.27", "dokku-0.37.10"])
def test_ps_stop_and_ps_start_by_hand_leave_the_sidecar_replicating(replicating, tmp_path, index):
    lab = replicating
    host = lab.hosts[index]
    app, kind = s3_app(lab, host)
    before = sidecar_states(lab)[(host["name"], app)]
    lab.dokku(host, "ps:stop", app)
    assert not app_running(lab, host, app)
    assert restore_state(lab, host, app) == "false"  # Dokku's post-stop trigger ran
    during = sidecar_states(lab)[(host["name"], app)]
    assert during == before, "ps:stop reached the sidecar"
    assert policy(lab, host, app) == "unless-stopped"
    lab.dokku(host, "ps:start", app)
    assert sidecar_states(lab)[(host["name"], app)] == before and policy(lab, host, app) == "unless-stopped"
    wait_for(f"the demo writer of {app} after ps:start", lambda: writer_active(lab, host, app), 30)
    started = time.time()
    time.sleep(LAG + 1)
    assert_replica_current(lab, host, app, kind, tmp_path, newer_than=started)
    assert_nothing_to_repair(lab)


def test_restore_then_reboot_the_host_keeps_replicating(replicating, tmp_path):
    lab = replicating
    host = lab.hosts[0]
    app, _kind = s3_app(lab, host)
    lab.playbook(RESTORE, "--limit", host["name"], "-e", f"restore_app={app}", "-e", "restore_on_existing=replace")
    assert policy(lab, host, app) == "unless-stopped"
    assert restore_state(lab, host, app) == "true"
    assert app_running(lab, host, app)

    def reboot():
        proc = subprocess.run(["docker", "restart", host["container"]], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        wait_for(f"sshd of {host['name']} after the reboot",
                 lambda: lab.ssh(host, "docker info --format '{{.ID}}'", check=False).returncode == 0, 90)

    figures = assert_replication_resumes(lab, host, tmp_path, reboot, "a reboot after a restore", apps_come_back=True)
    print(f"reboot after a restore: {figures}")
    assert_nothing_to_repair(lab)
    remove_restore_backups(lab, host, app)


def test_restoring_a_stopped_app_leaves_it_stopped(replicating):
    lab = replicating
    host = lab.hosts[1]
    app, _kind = s3_app(lab, host)
    lab.dokku(host, "ps:stop", app)
    proc = lab.playbook(RESTORE, "--limit", host["name"], "-e", f"restore_app={app}",
                        "-e", "restore_on_existing=replace")
    assert "production.sqlite3 restored" in proc.stdout
    remove_restore_backups(lab, host, app)
    assert not app_running(lab, host, app), "the restore started an app that was stopped"
    assert restore_state(lab, host, app) == "false", "the restore changed Dokku's restore-at-boot state"
    assert sidecar_states(lab)[(host["name"], app)][1] and policy(lab, host, app) == "unless-stopped"
    lab.dokku(host, "ps:start", app)
    wait_for(f"the demo writer of {app} after ps:start", lambda: writer_active(lab, host, app), 30)
    assert restore_state(lab, host, app) == "true"


def test_ps_rebuild_by_hand_leaves_the_sidecar_replicating(replicating, tmp_path):
    """ps:rebuild runs Dokku's cleanup (exited containers with the `dokku` label) and a full deploy: the sidecar
    has neither label, so the same container keeps replicating (SOURCE-EVIDENCE.md sections 2 and 3)."""
    lab = replicating
    host = lab.hosts[0]
    app, kind = s3_app(lab, host)
    before = sidecar_states(lab)[(host["name"], app)]
    lab.dokku(host, "ps:rebuild", app)
    assert sidecar_states(lab)[(host["name"], app)] == before and policy(lab, host, app) == "unless-stopped"
    wait_for(f"the demo writer of {app} after ps:rebuild", lambda: writer_active(lab, host, app), 30)
    started = time.time()
    time.sleep(LAG + 1)
    assert_replica_current(lab, host, app, kind, tmp_path, newer_than=started)
    assert_nothing_to_repair(lab)


def test_apps_destroy_keeps_data_and_replica_and_state_absent_then_removes_the_sidecar(replicating, tmp_path):
    """apps:destroy keeps the storage directory (storage post-delete only drops its properties) and, without the
    app label, never touches the sidecar (section 4). The entry's `state: absent` then removes the sidecar and
    its configuration, never the data or the replica; listing the app again brings everything back."""
    lab = replicating
    host = lab.hosts[1]
    app, kind = s3_app(lab, host)
    db = f"{STORAGE_ROOT}/{app}--db/production.sqlite3"
    lab.dokku(host, "ps:stop", app)
    time.sleep(LAG)  # the last rows reach the replica
    rows_before = lab.ssh(host, f"sqlite3 {db} 'select count(*) from events'").stdout.strip()
    lab.dokku(host, "--force", "apps:destroy", app)
    assert lab.dokku(host, "apps:exists", app, check=False).returncode == 20
    assert lab.ssh(host, f"sqlite3 {db} 'select count(*) from events'").stdout.strip() == rows_before
    assert sidecar_states(lab)[(host["name"], app)][1], "apps:destroy stopped the sidecar"
    apps = inventory_apps(lab)
    shop_entry = next(a for a in apps if str(a["app"]).startswith("shop-"))
    shop_entry["state"] = f"{{{{ 'absent' if inventory_hostname == {host['name']!r} else 'started' }}}}"
    proc = provision(lab, "--limit", host["name"], "-e",
                     extra_vars_file(tmp_path, "absent.json", {"litestream_apps": apps}))
    assert recap(proc)[host["name"]] > 0
    assert (host["name"], app) not in sidecar_states(lab)
    assert lab.ssh(host, f"test -e {CONFIG_ROOT}/apps/{app}", check=False).returncode != 0
    assert lab.ssh(host, f"sqlite3 {db} 'select count(*) from events'").stdout.strip() == rows_before
    out = tmp_path / "after-destroy.sqlite3"
    from test_replication import restore, restored_rows
    assert restore(lab, host, app, kind, out).returncode == 0
    assert len(restored_rows(out)[0]) == int(rows_before), "the replica lost rows"
    # back as the inventory lists it: app created again on the kept data, sidecar, demo writer
    provision(lab, "--limit", host["name"])
    lab.playbook(DEPLOY_DEMO, "--limit", host["name"])
    wait_for(f"the demo writer of {app} after the app came back", lambda: writer_active(lab, host, app), 30)
    assert sidecar_states(lab)[(host["name"], app)][1] and policy(lab, host, app) == "unless-stopped"
