"""The planned move (playbook dokku_sqlite.litestream.move) with the demo writer running, issue 22.

For each replica type the collection keeps an ownership record on (s3, file, sftp): an app replicated from
lab-dokku-1, deployed on lab-dokku-2 too (as a user deploys their code before the move), moves to lab-dokku-2.
- every row the writer committed on lab-dokku-1 is on lab-dokku-2 (RPO 0 transactions and rows, in the move's JSON
  report with the downtime and each step's time), and the writer goes on there;
- lab-dokku-1 keeps the app from starting at boot (Dokku's restore property is false);
- lab-dokku-1 comes back by hand, with no Ansible run (dokku ps:start, docker start of its sidecar) and writes rows:
  a restore of the replica's current lineage holds lab-dokku-2's rows only, never one of lab-dokku-1's new rows;
  health on lab-dokku-1 says it is fenced; provision there is refused, naming lab-dokku-2;
- on s3, point-in-time restores of the new lineage at its first, middle and last TXID pass integrity_check and hold
  only rows the new owner wrote (lineage 2 starts from the old host's final state).
"""
import json
import os
import re
import secrets
import shlex
import subprocess
import time

import pytest

from conftest import BIN, ansible_env
from test_ownership import level0_txids
from test_replication import (PROVISION, STORAGE_ROOT, app_running, extra_vars_file, inventory_apps, live_rows,
                              recap, sidecar, wait_for, writer_active)

MOVE = "dokku_sqlite.litestream.move"
RESTORE = "dokku_sqlite.litestream.restore"
HEALTH = "dokku_sqlite.litestream.health"
TAG = secrets.token_hex(2)
DB = "production.sqlite3"
STEPS = {"check", "stop_app", "final_sync", "compare", "restore", "claim", "start_sidecar", "start_app"}


def replica(kind, app):
    if kind == "s3":
        return {"type": "s3", "bucket": "{{ lab_s3_bucket }}", "path": f"moves/{app}", "endpoint": "{{ lab_s3_endpoint }}",
                "region": "{{ lab_s3_region }}", "credentials": "lab-s3", "sync_interval": "1s"}
    if kind == "file":
        return {"type": "file", "path": "{{ lab_file_replica_dir }}/moves/" + app, "sync_interval": "1s"}
    return {"type": "sftp", "host": "{{ lab_sftp_host }}", "user": "{{ lab_sftp_user }}",
            "path": "{{ lab_sftp_path }}/moves/" + app, "host_key": "{{ lab_sftp_host_key }}",
            "credentials": "lab-sftp", "sync_interval": "1s"}


def apps_file(lab, tmp_path, kind, app, only_on=None):
    """Extra vars: the lab's apps plus this app; listed under every host, or (only_on) under one host only."""
    entry = {"app": app, "create": True, "replica": replica(kind, app)}
    data = {"lab_base_apps": inventory_apps(lab), "lab_moving_apps": [entry]}
    if only_on is None:
        data["litestream_apps"] = "{{ lab_base_apps + lab_moving_apps }}"
    else:
        data["litestream_apps"] = "{{ lab_base_apps + (lab_moving_apps if inventory_hostname == %r else []) }}" % only_on
    return extra_vars_file(tmp_path, f"apps-{app}.json", data), entry


def rows_in(lab, host, path):
    code = ("import json,sqlite3,sys\n"
            "c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True)\n"
            "print(json.dumps(c.execute('select id, committed_at from events order by id').fetchall()))\n")
    out = lab.ssh(host, f"python3 -c {shlex.quote(code)} {shlex.quote(path)}").stdout
    return [tuple(r) for r in json.loads(out)]


def module(lab, host, name, args, check=True):
    proc = lab.ansible(host["name"], "-m", f"dokku_sqlite.litestream.{name}", "-a", json.dumps(args), check=check)
    return json.loads(proc.stdout.split(" => ", 1)[1])


def restore_at(lab, host, fields, dest, txid=None):
    lab.ssh(host, f"rm -rf {dest} && mkdir -p {dest}")
    args = {"replica": fields, "database": DB, "dest": dest, "owner": 0, "group": 0,
            "image": lab.facts["images"]["litestream"]}
    if txid:
        args["txid"] = txid
    result = module(lab, host, "litestream_restore", args)
    assert result.get("restored"), result
    return f"{dest}/{DB}"


def clean_up(lab, tmp_path, kind, app):
    gone, _entry = apps_file(lab, tmp_path, kind, app)
    gone_file = tmp_path / f"apps-{app}.json"
    data = json.loads(gone_file.read_text())
    data["lab_moving_apps"][0]["state"] = "absent"
    gone_file.write_text(json.dumps(data))
    for host in lab.hosts:
        lab.playbook(PROVISION, "--limit", host["name"], "-e", gone, check=False)
        lab.dokku(host, "--force", "apps:destroy", app, check=False)
        lab.ssh(host, f"rm -rf {STORAGE_ROOT}/{app}--db /tmp/{app}-restored", check=False)


def running_on_first_deployed_on_second(lab, apps, app):
    """The app provisioned on lab-dokku-1 with the demo writer committing; on lab-dokku-2 deployed too, the user's
    part of a move (it runs there on a database of its own until the move stops it)."""
    first, second = lab.hosts[0], lab.hosts[1]
    recap(lab.playbook(PROVISION, "--limit", first["name"], "-e", apps))
    lab.dokku(first, "git:from-image", app, "dsl-lab/demo-app:latest")
    wait_for(f"the demo writer of {app} on {first['name']}", lambda: writer_active(lab, first, app), 30)
    lab.dokku(second, "apps:create", app)
    lab.dokku(second, "git:from-image", app, "dsl-lab/demo-app:latest")


@pytest.mark.parametrize("kind", ["s3", "file", "sftp"])
def test_a_planned_move_loses_no_row_and_the_returning_old_host_is_fenced(lab, tmp_path, kind):
    first, second = lab.hosts[0], lab.hosts[1]
    app = f"mv-{kind}-{TAG}"
    # s3: listed under the old host only (before the inventory change); file, sftp: under both, the same entry
    apps, entry = apps_file(lab, tmp_path, kind, app, only_on=first["name"] if kind == "s3" else None)
    try:
        running_on_first_deployed_on_second(lab, apps, app)
        time.sleep(3)  # the old host's writer commits on while the move starts

        names = ["-e", f"move_app={app}", "-e", f"move_from={first['name']}", "-e", f"move_to={second['name']}",
                 "-e", apps, "-e", f"move_report_dir={tmp_path}"]
        if kind == "s3":  # --check runs the checks and stops nothing
            checked = lab.playbook(MOVE, *names, "--check")
            assert "passed its checks" in checked.stdout and "nothing was stopped" in checked.stdout
            assert writer_active(lab, first, app) and not (tmp_path / f"move-{app}.json").exists()
            assert module(lab, first, "litestream_ownership", {"app": app, "replica": entry["replica"]})[
                "ownership"]["standing"] == "owner"
        proc = lab.playbook(MOVE, *names)
        report = json.loads((tmp_path / f"move-{app}.json").read_text())
        assert report["rpo_transactions"] == 0 and report["rpo_rows"] == 0, report
        assert report["epoch"] == 2 and report["move_to"] == second["name"]
        assert set(report["steps"]) == STEPS and report["downtime_seconds"] > 0, report
        assert abs(sum(report["steps"][s] for s in STEPS - {"check"}) - report["downtime_seconds"]) < 0.01, report
        assert "rpo_transactions" in proc.stdout and "inventory:" in proc.stdout

        # every row lab-dokku-1 committed is on lab-dokku-2, and the writer goes on there
        final = live_rows(lab, first, app)
        assert len(final) > 20, "the writer did not run long enough"
        assert not app_running(lab, first, app)
        assert lab.dokku(first, "ps:report", app, "--restore").stdout.strip() == "false", "it would start at boot"
        wait_for(f"the demo writer of {app} on {second['name']}", lambda: writer_active(lab, second, app), 30)
        moved = live_rows(lab, second, app)
        assert moved[:len(final)] == final, f"{len(final)} rows on the old host, the new one starts differently"
        assert len(moved) > len(final)

        # lab-dokku-1 comes back by hand, no Ansible: its app and its sidecar start and it writes rows
        lab.dokku(first, "ps:start", app)
        lab.ssh(first, f"docker start {sidecar(app)}")
        wait_for(f"the returned writer of {app} on {first['name']}", lambda: writer_active(lab, first, app), 30)
        time.sleep(4)  # its sidecar ships what it can (sync-interval 1 s), into its own, dead, lineage
        returned = set(live_rows(lab, first, app)[len(final):])
        assert returned, "the old host wrote nothing after its return"
        time.sleep(2)
        owner = module(lab, second, "litestream_ownership", {"app": app, "replica": entry["replica"]})
        assert owner["ownership"]["standing"] == "owner" and owner["ownership"]["epoch"] == 2, owner
        current = restore_at(lab, second, owner["read_replica"], f"/tmp/{app}-restored/current")
        rows = rows_in(lab, second, current)
        assert rows[:len(final)] == final, "the current lineage lost the old host's committed rows"
        assert rows == live_rows(lab, second, app)[:len(rows)], "the current lineage holds rows the new owner lacks"
        assert not returned & set(rows), "the returned old host wrote into the current lineage"
        assert lab.ssh(second, f"sqlite3 {current} 'pragma integrity_check'").stdout.strip() == "ok"

        health = lab.playbook(HEALTH, "--limit", first["name"], "-e", apps,
                              "-e", f"health_report_dir={tmp_path / 'health'}", check=False)
        assert health.returncode != 0, health.stdout[-3000:]
        results = json.loads((tmp_path / "health" / "health-report.json").read_text())["results"]
        mine = [r for r in results if r["host"] == first["name"] and r["app"] == app]
        assert [r["status"] for r in mine] == ["fenced"], mine
        assert f"owned by {second['name']} since epoch 2 (move" in mine[0]["message"], mine
        again = lab.playbook(PROVISION, "--limit", first["name"], "-e", apps, check=False)
        assert again.returncode != 0 and f"owned by {second['name']} since epoch 2 (move" in again.stdout, \
            again.stdout[-3000:]

        if kind == "s3":
            lineage = owner["read_replica"]["path"]
            txids = level0_txids(lab, f"{lineage}/{DB}")
            assert len(txids) >= 2, txids
            allowed = set(live_rows(lab, second, app))
            for txid in (txids[0], txids[len(txids) // 2], txids[-1]):
                at = restore_at(lab, second, owner["read_replica"], f"/tmp/{app}-restored/{txid}", txid=txid)
                assert lab.ssh(second, f"sqlite3 {at} 'pragma integrity_check'").stdout.strip() == "ok", txid
                held = rows_in(lab, second, at)
                assert set(held) <= allowed and held[:len(final)] == final, txid

            # a point in time before the move, through the restore playbook into a new app: the restore reads the
            # lineage that was current then (epoch 1, the old host's); the current one holds nothing that old
            moment = final[-1][1] - 3  # 3 s before the old host's last commit: well after its first sync
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + ".%03dZ" % int(moment % 1 * 1000)
            then = lab.playbook(RESTORE, "--limit", second["name"], "-e", apps, "-e", f"restore_app={app}-then",
                                "-e", f"restore_from_app={app}", "-e", f"restore_from_host={first['name']}",
                                "-e", f"restore_timestamp={stamp}")
            held = rows_in(lab, second, f"{STORAGE_ROOT}/{app}-then--db/{DB}")
            assert held and held == final[:len(held)], then.stdout[-2000:]
            assert all(at <= moment for _id, at in held) and len(held) < len(final), (stamp, held[-3:])
            lineage1 = module(lab, second, "litestream_ownership",
                              {"app": app, "replica": entry["replica"], "lineage_at": stamp})
            assert lineage1["read_epoch"] == 1 and lineage1["read_replica"]["path"] == f"moves/{app}", lineage1
    finally:
        if kind == "s3":
            lab.dokku(second, "--force", "apps:destroy", f"{app}-then", check=False)
            lab.ssh(second, f"rm -rf {STORAGE_ROOT}/{app}-then--db", check=False)
        clean_up(lab, tmp_path, kind, app)


def standby_left(lab, host, dest):
    """The standby container and directory of the database in dest that are still on a host."""
    from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.standby_core import (
        container_name, dir_name)
    target = f"{dest}/{DB}"
    left = lab.ssh(host, f"docker container inspect --format '{{{{.Name}}}}' {container_name(target)}; "
                         f"ls -d {os.path.dirname(dest)}/{dir_name(target)}", check=False).stdout
    return [line.strip() for line in left.splitlines() if line.strip()]


@pytest.mark.parametrize("kind", ["s3", "sftp"])
def test_a_warm_move_follows_the_replica_before_the_stop_and_loses_no_row(lab, tmp_path, kind):
    """move_warm=true: the new host follows the replica (litestream_standby, Litestream's follow mode) before the old
    host stops; the cut-over puts the followed database in place at the final TXID. The module on its own first:
    a promotion without a standby and one at a TXID the follower is past are refused, nothing put in place."""
    first, second = lab.hosts[0], lab.hosts[1]
    app = f"mw-{kind}-{TAG}"
    apps, entry = apps_file(lab, tmp_path, kind, app, only_on=first["name"])
    scratch = f"/tmp/{app}-standby"
    try:
        running_on_first_deployed_on_second(lab, apps, app)
        owner = module(lab, first, "litestream_ownership", {"app": app, "replica": entry["replica"]})
        args = {"replica": owner["read_replica"], "database": DB, "dest": scratch, "owner": 0, "group": 0,
                "image": lab.facts["images"]["litestream"], "wait_timeout": 60}
        if kind == "s3":
            nothing = module(lab, second, "litestream_standby", dict(args, state="promoted", txid="1"), check=False)
            assert "no standby follows the replica" in nothing.get("msg", ""), nothing
            started = module(lab, second, "litestream_standby", args)
            assert started["changed"] and started["following"] and started["txid"], started
            again = module(lab, second, "litestream_standby", args)
            assert not again["changed"] and again["following"], again
            time.sleep(2)  # the writer commits on, the follower follows: it is past txid 1
            past = module(lab, second, "litestream_standby", dict(args, state="promoted", txid="1"), check=False)
            assert not past.get("restored") and "past 0000000000000001" in past.get("msg", ""), past
            assert lab.ssh(second, f"test -e {scratch}/{DB}", check=False).returncode != 0, "something was put in place"
            gone = module(lab, second, "litestream_standby", dict(args, state="absent"))
            assert gone["changed"] and standby_left(lab, second, scratch) == [], gone

        names = ["-e", f"move_app={app}", "-e", f"move_from={first['name']}", "-e", f"move_to={second['name']}",
                 "-e", apps, "-e", f"move_report_dir={tmp_path}", "-e", "move_warm=true"]
        time.sleep(2)
        proc = lab.playbook(MOVE, *names)
        report = json.loads((tmp_path / f"move-{app}.json").read_text())
        assert report["rpo_transactions"] == 0 and report["rpo_rows"] == 0, report
        print(f"warm move ({kind}): downtime {report['downtime_seconds']} s, steps {report['steps']}")
        assert report["cut_over"] == "warm" and report["epoch"] == 2 and set(report["steps"]) == STEPS, report
        assert "(warm standby)" in proc.stdout and standby_left(lab, second, f"{STORAGE_ROOT}/{app}--db") == []

        final = live_rows(lab, first, app)
        assert len(final) > 20, "the writer did not run long enough"
        wait_for(f"the demo writer of {app} on {second['name']}", lambda: writer_active(lab, second, app), 30)
        moved = live_rows(lab, second, app)
        assert moved[:len(final)] == final and len(moved) > len(final)
        mode = lab.ssh(second, f"sqlite3 {STORAGE_ROOT}/{app}--db/{DB} 'pragma journal_mode'").stdout.strip()
        assert mode == "wal", mode
    finally:
        lab.ssh(second, f"docker rm -f $(docker ps -aq --filter name=dokku.litestream.standby.) 2>/dev/null; "
                        f"rm -rf {scratch}", check=False)
        clean_up(lab, tmp_path, kind, app)


def test_a_move_is_refused_before_anything_stops(lab, tmp_path):
    """Wrong names and an app not deployed on the new host: refused, the old host's app and sidecar still run."""
    first, second = lab.hosts[0], lab.hosts[1]
    app = f"mv-refused-{TAG}"
    apps, _entry = apps_file(lab, tmp_path, "s3", app, only_on=first["name"])
    try:
        recap(lab.playbook(PROVISION, "--limit", first["name"], "-e", apps))
        lab.dokku(first, "git:from-image", app, "dsl-lab/demo-app:latest")
        wait_for(f"the demo writer of {app}", lambda: writer_active(lab, first, app), 30)
        same = lab.playbook(MOVE, "-e", f"move_app={app}", "-e", f"move_from={first['name']}",
                            "-e", f"move_to={first['name']}", "-e", apps, check=False)
        assert same.returncode != 0 and "Set move_app" in same.stdout, same.stdout[-2000:]
        proc = lab.playbook(MOVE, "-e", f"move_app={app}", "-e", f"move_from={first['name']}",
                            "-e", f"move_to={second['name']}", "-e", apps, check=False)
        out = " ".join(proc.stdout.split())
        assert proc.returncode != 0 and f"app {app} is not deployed there" in out, out[-2000:]
        assert writer_active(lab, first, app), "the old host's app was stopped"
        state = lab.ssh(first, f"docker inspect --format '{{{{.State.Running}}}}' {sidecar(app)}").stdout.strip()
        assert state == "true"
        nobody = lab.playbook(MOVE, "-e", "move_app=no-such-app", "-e", f"move_from={first['name']}",
                              "-e", f"move_to={second['name']}", "-e", apps, check=False)
        assert nobody.returncode != 0 and re.search(r"neither \S+ nor \S+ lists app no-such-app", nobody.stdout), \
            nobody.stdout[-2000:]
    finally:
        clean_up(lab, tmp_path, "s3", app)


@pytest.mark.parametrize("cut_over", ["cold", "warm"])
def test_a_restore_that_fails_before_the_claim_starts_the_old_host_again_and_a_rerun_moves(lab, tmp_path, cut_over):
    """The new host's restore (cold) or promotion of its standby (warm) cannot take its target's lock (held by hand,
    lock_timeout 0): the old host still owns the replica, so its sidecar and app run again; the move run again once
    the lock is free moves the app. Warm, the promotion fails the same way (the standby itself has a lock of its own)
    and the rollback removes the standby; the re-run starts a fresh one and promotes it."""
    first, second = lab.hosts[0], lab.hosts[1]
    app = f"mv-rollback-{cut_over}-{TAG}"
    apps, entry = apps_file(lab, tmp_path, "s3", app)
    lock = restore_lock(app)
    names = ["-e", f"move_app={app}", "-e", f"move_from={first['name']}", "-e", f"move_to={second['name']}",
             "-e", apps, "-e", f"move_report_dir={tmp_path}", "-e", f"move_warm={str(cut_over == 'warm').lower()}"]
    try:
        running_on_first_deployed_on_second(lab, apps, app)
        hold(lab, second, lock)
        failed = lab.playbook(MOVE, *names, "-e", "move_lock_timeout=0", check=False)
        out = " ".join(failed.stdout.split())
        assert failed.returncode != 0, out[-3000:]
        assert f"The move of {app} to {second['name']} failed before the new host could take the replica over" in out
        assert "waiting for the lock" in out.split("take the replica over:", 1)[1][:400], out[-3000:]
        assert f"The replica is owned by {first['name']} (epoch 1); {first['name']} runs its sidecar again and the app" \
            in out, out[-3000:]
        assert standby_left(lab, second, f"{STORAGE_ROOT}/{app}--db") == [], "the rollback left the standby"
        wait_for(f"the writer of {app} back on {first['name']}", lambda: writer_active(lab, first, app), 30)
        state = lab.ssh(first, f"docker inspect --format '{{{{.State.Running}}}}' {sidecar(app)}").stdout.strip()
        assert state == "true"
        assert module(lab, first, "litestream_ownership", {"app": app, "replica": entry["replica"]})[
            "ownership"]["standing"] == "owner"

        free(lab, second, lock)
        again = lab.playbook(MOVE, *names)
        report = json.loads((tmp_path / f"move-{app}.json").read_text())
        assert report["rpo_transactions"] == 0 and report["rpo_rows"] == 0 and report["epoch"] == 2, report
        assert report["cut_over"] == cut_over and standby_left(lab, second, f"{STORAGE_ROOT}/{app}--db") == [], report
        if cut_over == "warm":  # the rollback removed the standby: the re-run started a fresh one
            task = again.stdout.split("Follow the replica on the new host (warm standby)]", 1)[1].split("TASK [", 1)[0]
            assert f"changed: [{second['name']}]" in task, task
        final = live_rows(lab, first, app)
        wait_for(f"the demo writer of {app} on {second['name']}", lambda: writer_active(lab, second, app), 30)
        assert live_rows(lab, second, app)[:len(final)] == final
    finally:
        free(lab, second, lock)
        lab.ssh(second, "docker rm -f $(docker ps -aq --filter name=dokku.litestream.standby.) 2>/dev/null",
                check=False)
        clean_up(lab, tmp_path, "s3", app)


def test_an_old_host_that_writes_between_the_handoff_and_the_claim_stops_the_move_before_the_new_app_starts(
        lab, tmp_path):
    """The old host's app starts again by hand after the handoff (as a deploy would), commits rows and stops again,
    while the new host's restore waits for its target's lock (held by hand): the restore, the row proof (against
    the handoff's counts) and the claim pass, then the after-claim check sees the database written since the handoff
    and stops the move before the new host starts the app. The re-run resumes from the claim and starts it."""
    first, second = lab.hosts[0], lab.hosts[1]
    app = f"mv-late-{TAG}"
    apps, entry = apps_file(lab, tmp_path, "s3", app)
    lock = restore_lock(app)
    names = ["-e", f"move_app={app}", "-e", f"move_from={first['name']}", "-e", f"move_to={second['name']}",
             "-e", apps, "-e", f"move_report_dir={tmp_path}", "-e", "move_lock_timeout=300"]
    mover = None
    try:
        running_on_first_deployed_on_second(lab, apps, app)
        hold(lab, second, lock)
        output = tmp_path / "move-output.txt"
        with output.open("w") as sink:
            mover = subprocess.Popen([str(BIN / "ansible-playbook"), "-i", lab.inventory, MOVE, *names],
                                     stdout=sink, stderr=subprocess.STDOUT, env=ansible_env())
        # the handoff is done once the new host's restore started (it waits for the lock)
        wait_for(f"the restore of {app} on {second['name']}",
                 lambda: "Restore each database to its final transaction]" in output.read_text(), 240)
        time.sleep(1)
        assert mover.poll() is None, output.read_text()[-3000:]
        handed_off = live_rows(lab, first, app)
        lab.dokku(first, "ps:start", app)
        wait_for(f"rows after the handoff on {first['name']}",
                 lambda: len(live_rows(lab, first, app)) > len(handed_off) + 5, 30)
        lab.dokku(first, "ps:stop", app)
        late = live_rows(lab, first, app)[len(handed_off):]
        free(lab, second, lock)
        mover.wait(timeout=600)
        out = " ".join(output.read_text().split())
        assert mover.returncode != 0, out[-3000:]
        assert (f"app {app}: {first['name']} changed after the handoff: {DB} was written since the handoff" in out
                or f"{DB} has " in out), out[-3000:]
        assert (f"{second['name']} owns the replica now (epoch 2, from the final TXIDs): what {first['name']} "
                f"committed since is not in it, so the app was not started on {second['name']}") in out, out[-3000:]
        assert not app_running(lab, second, app), "the new host started the app on a copy without the late rows"
        owner = module(lab, second, "litestream_ownership", {"app": app, "replica": entry["replica"]})
        assert owner["ownership"]["standing"] == "owner" and owner["ownership"]["epoch"] == 2, owner
        restored = rows_in(lab, second, f"{STORAGE_ROOT}/{app}--db/{DB}")
        assert restored == handed_off and not set(late) & set(restored), "the claim's restore is the handoff's state"

        # the user saw it (the late rows stay on the old host); the re-run resumes from the claim and starts the app
        again = lab.playbook(MOVE, *names)
        report = json.loads((tmp_path / f"move-{app}.resumed.json").read_text())
        assert report["epoch"] == 2 and report["rpo_transactions"] is None, report  # resumed: no RPO to compare
        wait_for(f"the demo writer of {app} on {second['name']}", lambda: writer_active(lab, second, app), 30)
        assert live_rows(lab, second, app)[:len(handed_off)] == handed_off, again.stdout[-2000:]
    finally:
        if mover is not None and mover.poll() is None:
            mover.kill()
        free(lab, second, lock)
        clean_up(lab, tmp_path, "s3", app)


def restore_lock(app):
    """The lock file of the restore target of the app's database on the new host."""
    from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import LOCK_DIR, scope_name
    return f"{LOCK_DIR}/{scope_name(f'restore-{STORAGE_ROOT}/{app}--db/{DB}')}.lock"


def hold(lab, host, lock):
    """A restore target's lock held by hand (what another run on the host would hold), until free()."""
    from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import LOCK_DIR
    lab.ssh(host, f"mkdir -p -m 0700 {LOCK_DIR} && (setsid flock {lock} sleep 611 >/dev/null 2>&1 </dev/null &) "
                  f"&& sleep 0.5")


def free(lab, host, lock):
    """The lock held by hand is released: flock and the sleep that holds its descriptor."""
    # [s]leep: the pattern must not match this very shell's command line, which holds it too
    lab.ssh(host, "pkill -f '[s]leep 611'; pkill -f '[f]lock .*restore-'; true", check=False)
