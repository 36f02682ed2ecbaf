"""What the Dokku commands users run by hand do to replication (issue #11), on the corrected stand-in.

Real Dokku's ps:stop (from 0.36.0) stops every container labelled com.dokku.app-name=<app> after setting
its restart policy to `no`, and nothing in Dokku starts it again (tests/standin/SOURCE-EVIDENCE.md,
sections 1 and 2; the stand-in's own tests assert it). The sidecar therefore carries no such label:
these tests prove, on both lab generations (0.38.27 and 0.37.10), that a maintenance stop and start by
hand, a restore with the restore playbook followed by a reboot, and a restore of a stopped app leave the
sidecar running with restart policy unless-stopped and replicating, with no playbook run in between, and
that the next provision run then reports changed=0. They also prove the outcomes of apps:destroy, apps:rename
and apps:clone that the README's table "What each Dokku command does to replication" lists.
"""
import sqlite3
import subprocess
import time

import pytest

from test_replication import (  # noqa: F401  (replicating is a fixture)
    CONFIG_ROOT, DEPLOY_DEMO, LAG, STORAGE_ROOT, extra_vars_file, inventory_apps, app_running, apps_of, assert_replica_current, assert_replication_resumes, provision, recap, replicating,
    live_rows, restore, sidecar, sidecar_states, wait_for, writer_active,
)

RESTORE = "dokku_sqlite.litestream.restore"
MOUNT_PATH = "/app/db/litestream"  # the entries' default mount_path
GENERATIONS = ["dokku-0.38.27", "dokku-0.37.10"]


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


def app_exists(lab, host, app):
    """True or False from `dokku apps:exists` (exit 20 for a missing app); anything else fails."""
    rc = lab.dokku(host, "apps:exists", app, check=False).returncode
    assert rc in (0, 20), f"dokku apps:exists {app} on {host['name']}: exit {rc}"
    return rc == 0


def storage_list(lab, host, app):
    """The app's mounts as Dokku lists them (`host:container` per line)."""
    return lab.dokku(host, "--quiet", "storage:list", app).stdout.split()


def container_state(lab, host, name):
    """(container id, running) of any container by name, None when there is none."""
    proc = lab.ssh(host, f"docker container inspect --format '{{{{.Id}}}} {{{{.State.Running}}}}' {name}", check=False)
    if proc.returncode != 0:
        assert "No such" in proc.stderr, f"docker container inspect {name} on {host['name']}: {proc.stderr}"
        return None
    cid, running = proc.stdout.split()
    return cid, running == "true"


def container_mounts(lab, host, name):
    out = lab.ssh(host, f"docker container inspect --format '{{{{range .Mounts}}}}{{{{.Source}}}}:{{{{.Destination}}}} "
                        f"{{{{end}}}}' {name}").stdout
    return set(out.split())


def users_of(lab, host, directory):
    """Names of the running containers that mount `directory`."""
    out = lab.ssh(host, "docker ps -q | xargs -r docker container inspect --format "
                        "'{{.Name}}{{range .Mounts}} {{.Source}}{{end}}'").stdout
    return {name.lstrip("/") for name, *sources in map(str.split, out.splitlines()) if directory in sources}


def live_writers(lab, host, app, since):
    """The writers of the rows committed after `since` in the database under <app>--db on the host."""
    db = f"{STORAGE_ROOT}/{app}--db/production.sqlite3"
    query = f"select distinct writer from events where committed_at > {since!r}"
    return set(lab.ssh(host, f"sqlite3 {db} '{query}'").stdout.split())


def replica_writers(lab, host, app, kind, tmp_path, since):
    """The writers of the rows committed after `since` in a restore of the replica at the path of <app>."""
    out = tmp_path / f"writers-{host['name']}-{app}.sqlite3"
    proc = restore(lab, host, app, kind, out)
    assert proc.returncode == 0, f"restore of the {kind} replica of {app}: {proc.stderr}"
    conn = sqlite3.connect(out)
    try:
        return {w for (w,) in conn.execute("select distinct writer from events where committed_at > ?", (since,))}
    finally:
        conn.close()


def rename_vars(lab, tmp_path, name, old, new, storage):
    """Extra vars for one host: the README's fix after `apps:rename <old> <new>`. The inventory's entry of <old>
    under its new name (same replica), after `{app: <old>, state: absent}`, so that the old sidecar is gone
    before the new one starts on the same database; `storage` None leaves the entry's default (<app>--db)."""
    assert old.startswith("shop-"), f"{old} is not the S3 app of the lab's inventory"
    apps = inventory_apps(lab)
    entry = next(a for a in apps if str(a["app"]).startswith("shop-"))
    renamed = dict(entry, app=new, **({"storage": storage} if storage else {}))
    listed = [{"app": old, "state": "absent"}] + [renamed if a is entry else a for a in apps]
    return extra_vars_file(tmp_path, name, {"litestream_apps": listed})


@pytest.mark.parametrize("index", [0, 1], ids=GENERATIONS)
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


@pytest.mark.parametrize("index", [0, 1], ids=GENERATIONS)
def test_apps_rename_keeps_replicating_until_the_renamed_entry_takes_over(replicating, tmp_path, index):
    """apps:rename destroys <old> after copying its mounts to <new> and rebuilds <new> (SOURCE-EVIDENCE.md section
    5): the storage directory <old>--db stays and is mounted by <new>, and the unlabelled sidecar
    dokku.litestream.<old> keeps replicating what <new> writes to the old replica path. The README's fix (the
    entry renamed with `storage: <old>--db`, after `{app: <old>, state: absent}`) then swaps the sidecar in one
    run; without `storage` the entry means <new>--db and provisioning stops on the mount Dokku copied."""
    lab = replicating
    host = lab.hosts[index]
    old, kind = s3_app(lab, host)
    new = f"{old}-renamed"
    data_dir = f"{STORAGE_ROOT}/{old}--db"
    mount = f"{data_dir}:{MOUNT_PATH}"
    assert storage_list(lab, host, old) == [mount]
    before = sidecar_states(lab)
    assert users_of(lab, host, data_dir) == {f"{old}.web.1", sidecar(old)}
    rows_before = live_rows(lab, host, old)
    assert rows_before, f"no rows in {data_dir}: is the demo writer running?"

    lab.dokku(host, "apps:rename", old, new)
    assert app_exists(lab, host, new) and not app_exists(lab, host, old)
    assert container_state(lab, host, f"{old}.web.1") is None, f"{old}.web.1 outlived the rename"
    assert storage_list(lab, host, new) == [mount], "the renamed app does not mount the old storage directory"
    assert lab.ssh(host, f"test -e {STORAGE_ROOT}/{new}--db", check=False).returncode == 1, \
        f"apps:rename made a storage directory {new}--db"
    assert live_rows(lab, host, old)[:len(rows_before)] == rows_before, f"rows of {data_dir} lost in the rename"
    assert sidecar_states(lab) == before, "apps:rename replaced, stopped or started a sidecar"
    assert policy(lab, host, old) == "unless-stopped"
    assert container_state(lab, host, sidecar(new)) is None
    # <new> runs (rebuilt under its name) and is the only writer of <old>--db; dokku.litestream.<old> replicates
    # what it writes to the old replica path
    assert app_running(lab, host, new)
    assert users_of(lab, host, data_dir) == {f"{new}.web.1", sidecar(old)}
    renamed_at = time.time()
    wait_for(f"rows of {new} in {data_dir}", lambda: writer_active(lab, host, old), 30)
    time.sleep(LAG + 1)
    assert_replica_current(lab, host, old, kind, tmp_path, newer_than=renamed_at)

    # the entry renamed without `storage`: it means {new}--db, which {new} cannot mount at the same path
    proc = provision(lab, "--limit", host["name"], "-e",
                     rename_vars(lab, tmp_path, "no-storage.json", old, new, storage=None), check=False)
    assert proc.returncode != 0, "the renamed entry without storage was accepted"
    assert f"app '{new}' already mounts {data_dir} at {MOUNT_PATH}" in proc.stdout, proc.stdout[-3000:]
    assert sidecar_states(lab) == before and container_state(lab, host, sidecar(new)) is None, \
        "the refused run changed a sidecar"
    assert lab.ssh(host, f"test -e {STORAGE_ROOT}/{new}--db", check=False).returncode == 1
    assert storage_list(lab, host, new) == [mount]

    # the entry left as it was (create: true): <old> is not created again on the directory <new> mounts
    proc = provision(lab, "--limit", host["name"], check=False)
    assert proc.returncode != 0, "the unchanged entry re-created the renamed app's old name"
    out = " ".join(proc.stdout.split())
    assert f"its storage directory {data_dir} is mounted by {new}" in out, out[-3000:]
    assert not app_exists(lab, host, old) and sidecar_states(lab) == before

    # the README's fix: one run swaps the sidecars on the same directory, a second run changes nothing
    extra = rename_vars(lab, tmp_path, "renamed.json", old, new, storage=f"{old}--db")
    changed = recap(provision(lab, "--limit", host["name"], "-e", extra))
    assert changed[host["name"]] > 0
    took_over = time.time()
    assert container_state(lab, host, sidecar(old)) is None, f"{sidecar(old)} outlived state: absent"
    assert lab.ssh(host, f"test -e {CONFIG_ROOT}/apps/{old}", check=False).returncode == 1, \
        f"{CONFIG_ROOT}/apps/{old} outlived state: absent"
    swapped = container_state(lab, host, sidecar(new))
    assert swapped and swapped[1], f"{sidecar(new)} does not run"
    assert policy(lab, host, new) == "unless-stopped"
    assert f"{data_dir}:/data" in container_mounts(lab, host, sidecar(new)), \
        f"{sidecar(new)} does not replicate {data_dir}"
    assert users_of(lab, host, data_dir) == {f"{new}.web.1", sidecar(new)}
    assert storage_list(lab, host, new) == [mount]
    assert lab.ssh(host, f"test -e {STORAGE_ROOT}/{new}--db", check=False).returncode == 1
    assert live_rows(lab, host, old)[:len(rows_before)] == rows_before
    others = sidecar_states(lab)
    assert all(others[key] == before[key] for key in before if key != (host["name"], old)), \
        "the fix touched another sidecar"
    changed = recap(provision(lab, "--limit", host["name"], "-e", extra))
    assert changed[host["name"]] == 0, f"a second run with the renamed entry changed something: {changed}"
    assert container_state(lab, host, sidecar(new)) == swapped
    time.sleep(LAG + 1)
    assert_replica_current(lab, host, old, kind, tmp_path, newer_than=took_over)

    # back as the inventory lists it (the same fix the other way round), for the tests that follow
    lab.dokku(host, "apps:rename", new, old)
    back = extra_vars_file(tmp_path, "back.json", {"litestream_apps": [{"app": new, "state": "absent"}]
                                                   + inventory_apps(lab)})
    recap(provision(lab, "--limit", host["name"], "-e", back))
    assert container_state(lab, host, sidecar(new)) is None
    assert lab.ssh(host, f"test -e {CONFIG_ROOT}/apps/{new}", check=False).returncode == 1
    assert sidecar_states(lab)[(host["name"], old)][1] and policy(lab, host, old) == "unless-stopped"
    assert storage_list(lab, host, old) == [mount]
    assert users_of(lab, host, data_dir) == {f"{old}.web.1", sidecar(old)}
    wait_for(f"the demo writer of {old} after the rename back", lambda: writer_active(lab, host, old), 30)
    assert_nothing_to_repair(lab)


@pytest.mark.parametrize("index", [0, 1], ids=GENERATIONS)
def test_apps_clone_shares_the_storage_directory_and_the_sidecar(replicating, tmp_path, index):
    """apps:clone copies the app's settings, its mounts included, and builds the clone (SOURCE-EVIDENCE.md section
    5): the clone writes into the same database, which the one unchanged sidecar replicates; the next provision
    changes nothing. Destroying the clone leaves the original app, its data and its sidecar alone.
    The demo writers share the lab host's name (host network): DEMO_WRITER_ID tells the clone's rows apart."""
    lab = replicating
    host = lab.hosts[index]
    app, kind = s3_app(lab, host)
    clone = f"{app}-clone"
    data_dir = f"{STORAGE_ROOT}/{app}--db"
    mount = f"{data_dir}:{MOUNT_PATH}"
    before = sidecar_states(lab)
    original = container_state(lab, host, f"{app}.web.1")
    assert original and original[1], f"{app}.web.1 does not run"
    assert users_of(lab, host, data_dir) == {f"{app}.web.1", sidecar(app)}
    app_writers = live_writers(lab, host, app, time.time() - 2)
    assert len(app_writers) == 1, f"writers of {data_dir} in the last 2 s: {app_writers}"

    lab.dokku(host, "apps:clone", app, clone)
    assert app_exists(lab, host, clone) and app_exists(lab, host, app)
    assert storage_list(lab, host, clone) == [mount], "the clone does not mount the app's storage directory"
    assert storage_list(lab, host, app) == [mount]
    assert lab.ssh(host, f"test -e {STORAGE_ROOT}/{clone}--db", check=False).returncode == 1
    assert container_state(lab, host, f"{app}.web.1") == original, "apps:clone touched the app's container"
    assert sidecar_states(lab) == before, "apps:clone replaced, stopped or started a sidecar"
    assert policy(lab, host, app) == "unless-stopped"
    assert container_state(lab, host, sidecar(clone)) is None
    # both write into the one database, and the one sidecar replicates both
    assert app_running(lab, host, clone)
    assert users_of(lab, host, data_dir) == {f"{app}.web.1", f"{clone}.web.1", sidecar(app)}
    assert clone not in app_writers
    lab.dokku(host, "config:set", clone, f"DEMO_WRITER_ID={clone}")
    assert container_state(lab, host, f"{app}.web.1") == original, "config:set on the clone touched the app"
    both = app_writers | {clone}
    cloned_at = time.time()
    wait_for(f"rows of {clone} and {app} in {data_dir}", lambda: both <= live_writers(lab, host, app, cloned_at), 30)
    time.sleep(LAG + 1)
    assert_replica_current(lab, host, app, kind, tmp_path, newer_than=cloned_at)
    assert replica_writers(lab, host, app, kind, tmp_path, cloned_at) == both
    assert_nothing_to_repair(lab)
    assert sidecar_states(lab) == before, "the provision after apps:clone touched a sidecar"

    rows_before = live_rows(lab, host, app)
    lab.dokku(host, "--force", "apps:destroy", clone)
    destroyed_at = time.time()
    assert not app_exists(lab, host, clone) and app_exists(lab, host, app)
    assert container_state(lab, host, f"{clone}.web.1") is None
    assert container_state(lab, host, f"{app}.web.1") == original, "destroying the clone touched the app"
    assert storage_list(lab, host, app) == [mount]
    assert users_of(lab, host, data_dir) == {f"{app}.web.1", sidecar(app)}
    assert live_rows(lab, host, app)[:len(rows_before)] == rows_before, f"rows of {data_dir} lost"
    assert sidecar_states(lab) == before and policy(lab, host, app) == "unless-stopped", \
        "destroying the clone touched the sidecar"
    wait_for(f"the demo writer of {app} after the clone was destroyed", lambda: writer_active(lab, host, app), 30)
    time.sleep(LAG + 1)
    assert_replica_current(lab, host, app, kind, tmp_path, newer_than=destroyed_at)
    assert replica_writers(lab, host, app, kind, tmp_path, destroyed_at) == app_writers
    assert_nothing_to_repair(lab)
