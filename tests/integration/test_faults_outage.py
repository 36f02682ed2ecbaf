"""Fault tests (issue #6) against the lab: an S3 outage, a crashed sidecar and a rebooted host, each
while the demo writers keep committing. After each, a restore made with the plain Litestream binary
must hold every row the live database committed: nothing is lost.

- S3 outage: `lab.py s3 down` closes the lab's S3 endpoint (tests/lab/s3proxy.py in front of moto,
  which keeps the bucket: a stopped server, not a lost one) for 60 s. A restore drill run meanwhile
  must fail for that app, clearly: the replica is unreachable, named with its host, app and database
  (the drill bounds the replica's first read with restore_drill_replica_timeout, otherwise Litestream
  retries for ~2 min and a drill during a short outage would pass once S3 is back).
- Sidecar crash: SIGKILL of the sidecar's process from the lab host (a real crash, not `docker
  kill`); Docker's restart policy (unless-stopped) restarts the same container.
- Host reboot: `docker restart` of the lab host container. The inner dockerd restarts the sidecars
  (unless-stopped); the apps come back through the lab's model of Dokku's boot service
  (`dokku ps:restore`, run by tests/lab/images/dokku-host/lab-host-init). No playbook runs. A restart
  of the inner dockerd alone is tested in test_replication.py with the same helper.
- A WAL restarted while the sidecar was down: the sidecar stopped as a recreate stops it, the app's
  checkpoint and next commit restart the WAL, the sidecar starts again at once. Litestream 0.5.17 alone
  would resume at the new WAL's start and never replicate the commits of the downtime (the real-binary
  proof is tests/unit/plugins/module_utils/test_sidecar_restart.py); the sidecar's start script empties
  the WAL first, so its first sync is a full snapshot.

The figures (rows written during the outage, catch-up and restart times) are printed (pytest -s).
"""
import json
import shlex
import subprocess
import time

from conftest import LAB
from test_drill import DRILL_HOST, SOURCE, by_app, drill
from test_replication import (  # noqa: F401  (replicating is a fixture)
    DB_NAME, STORAGE_ROOT, apps_of, assert_replica_current, assert_replication_resumes, live_rows, replicating,
    restore, restored_rows, sidecar, wait_for, writer_active,
)

OUTAGE = 60  # seconds the S3 server stays stopped (at least: the drill run during it must end first)


def lab_cmd(*args):
    proc = subprocess.run([*LAB, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"lab.py {' '.join(args)} failed:\n{proc.stderr}"
    return proc


def sidecar_inspect(lab, host, app):
    fmt = "{{json .State}} {{.Id}} {{.RestartCount}}"
    out = lab.ssh(host, f"docker container inspect --format '{fmt}' {sidecar(app)}").stdout.strip()
    state, cid, count = out.rsplit(" ", 2)
    return json.loads(state), cid, int(count)


def restore_holds(lab, host, app, kind, out, rows):
    """True when a restore made now holds every row of `rows` [(id, committed_at)], unchanged."""
    if restore(lab, host, app, kind, out).returncode != 0:
        return False
    restored = dict(restored_rows(out)[0])
    return all(restored.get(i) == t for i, t in rows)


def wait_for_rows_after(lab, host, app, kind, out, since, event, timeout=30):
    """Until a restore made now (into `out`) holds a row committed after `since` (the time of `event`)."""
    def has_new_rows():
        if restore(lab, host, app, kind, out).returncode != 0:
            return False
        return max((t for _i, t in restored_rows(out)[0]), default=0) > since

    wait_for(f"rows committed after {event} in the replica of {app}", has_new_rows, timeout, interval=1)


def test_s3_outage_loses_nothing_and_a_drill_meanwhile_reports_it(replicating, tmp_path):
    lab = replicating
    s3_apps = [(host, app, kind) for host, app, kind in apps_of(lab) if kind == "s3"]
    assert len(s3_apps) == 2
    down_at = time.time()
    lab_cmd("s3", "down")
    try:
        # a drill during the outage: it must fail for shop-1 and say why, not wait for S3 to come back
        drill_started = time.time()
        proc, report, junit = drill(lab, tmp_path, {"restore_drill_apps_only": ["shop-1"]})
        drill_took = time.time() - drill_started
        drill_ended_in_outage = lab_cmd("s3", "status").stdout.strip()
        out = proc.stdout + proc.stderr
        assert json.loads(drill_ended_in_outage)["state"] == "down"
        assert proc.returncode != 0, out[-4000:]
        assert "restore drill failed for 1 of 1" in out, out[-4000:]
        result = by_app(report)["shop-1"]
        name = f"{SOURCE}/shop-1/production.sqlite3"
        assert result["status"] == "failed" and result["drill_host"] == DRILL_HOST, result
        assert result["message"].startswith(f"{name}: "), result
        assert "is unreachable: no answer within 30 s" in result["message"], result
        assert f"s3://{lab.facts['s3']['bucket']}/{SOURCE}/shop-1/production.sqlite3" in result["message"], result
        assert result.get("lag_seconds") is None and result.get("rows") is None, result
        failure = junit.find(f".//testcase[@name='{name}']/failure")
        assert failure is not None and "unreachable" in failure.get("message"), "no JUnit failure for shop-1"

        time.sleep(max(0.0, down_at + OUTAGE - time.time()))
        # the sidecars ride the outage out: still running, same containers
        for host, app, _kind in s3_apps:
            state, _cid, _count = sidecar_inspect(lab, host, app)
            assert state["Running"], f"{sidecar(app)} on {host['name']} stopped during the S3 outage: {state}"
    finally:
        lab_cmd("s3", "up")
    up_at = time.time()
    outage = up_at - down_at

    # catch-up: every row committed before S3 came back reaches the replica
    figures = {"outage_s": round(outage, 1), "drill_during_outage_s": round(drill_took, 1)}
    for host, app, kind in s3_apps:
        during = live_rows(lab, host, app, cutoff=up_at)
        during = [(i, t) for i, t in during if t >= down_at]
        assert len(during) > OUTAGE, f"{app}: only {len(during)} rows written during the {outage:.0f} s outage"
        before_up = live_rows(lab, host, app, cutoff=up_at)
        out = tmp_path / f"catchup-{app}.sqlite3"
        wait_for(f"the S3 replica of {app} on {host['name']} to catch up after the outage",
                 lambda: restore_holds(lab, host, app, kind, out, before_up), 120, interval=1)
        figures[app] = {"rows_during_outage": len(during), "caught_up_after_s": round(time.time() - up_at, 1)}

    # stop the writers; after the sidecars' final sync a restore holds every committed row
    try:
        for host, app, _kind in s3_apps:
            lab.dokku(host, "ps:stop", app)
        for host, app, kind in s3_apps:
            committed = live_rows(lab, host, app)
            out = tmp_path / f"final-{app}.sqlite3"
            wait_for(f"every row of {app} on {host['name']} in its S3 replica",
                     lambda: restore_holds(lab, host, app, kind, out, committed), 30, interval=1)
            rows, integrity = restored_rows(out)
            assert integrity == "ok", f"{app}: the restored copy fails integrity_check: {integrity}"
            assert rows == committed, f"{app}: the restore and the live DB differ ({len(rows)} vs {len(committed)} rows)"
            figures[app]["rows_total"] = len(committed)
    finally:
        for host, app, _kind in s3_apps:
            lab.dokku(host, "ps:start", app, check=False)
    for host, app, _kind in s3_apps:
        wait_for(f"the demo writer of {app} to write again", lambda: writer_active(lab, host, app), 30)
    print(f"S3 outage: {figures}")


def test_sigkilled_sidecar_is_restarted_by_its_policy_and_loses_nothing(replicating, tmp_path):
    lab = replicating
    host, app, kind = apps_of(lab)[0]
    state, cid, count = sidecar_inspect(lab, host, app)
    assert state["Running"] and state["Pid"] > 0, state
    # a crash, seen from the host: SIGKILL of the container's process (`docker kill` would count as a stop)
    lab.ssh(host, f"kill -KILL {state['Pid']}")
    killed_at = time.time()

    def restarted():
        now, now_cid, now_count = sidecar_inspect(lab, host, app)
        return (now, now_cid, now_count) if now["Running"] and now_count > count else None

    now, now_cid, now_count = wait_for(f"{sidecar(app)} to be restarted by its restart policy", restarted, 60)
    back = time.time()
    assert now_cid == cid, f"{sidecar(app)} is a new container: the restart policy should restart the same one"
    assert now_count == count + 1, f"RestartCount went from {count} to {now_count}"
    assert now["StartedAt"] != state["StartedAt"] and now["Pid"] != state["Pid"], now
    policy = lab.ssh(host, f"docker inspect --format '{{{{.HostConfig.RestartPolicy.Name}}}}' {sidecar(app)}")
    assert policy.stdout.strip() == "unless-stopped"

    wait_for_rows_after(lab, host, app, kind, tmp_path / "after-kill.sqlite3", back, "the restart")
    resumed = time.time() - killed_at
    time.sleep(3)
    assert_replica_current(lab, host, app, kind, tmp_path, newer_than=back)
    print(f"sidecar SIGKILL: restarted after {back - killed_at:.1f} s, replicating new rows after {resumed:.1f} s")


def wal_state(lab, host, app, checkpoint=""):
    """(WAL size, WAL salts) of the app's live database on the host; checkpoint ("passive", "truncate"): run one
    first, from a connection that reads and writes no row, as the app's own connection would."""
    code = ("import os,sqlite3,struct,sys\n"
            "db,mode=sys.argv[1],sys.argv[2:]\n"
            "if mode:\n"
            "    c=sqlite3.connect(db,timeout=10)\n"
            "    assert c.execute('pragma wal_checkpoint(%s)'%mode[0]).fetchone()[0]==0,'checkpoint busy'\n"
            "    c.close()\n"
            "h=open(db+'-wal','rb').read(32)\n"
            "print(os.path.getsize(db+'-wal'),*(struct.unpack('>II',h[16:24]) if len(h)==32 else (0,0)))\n")
    out = lab.ssh(host, f"python3 -c {shlex.quote(code)} {STORAGE_ROOT}/{app}--db/{DB_NAME} {checkpoint}").stdout.split()
    return int(out[0]), (int(out[1]), int(out[2]))


def test_a_wal_the_app_restarted_while_the_sidecar_was_down_loses_nothing(replicating, tmp_path):
    lab = replicating
    host, app, kind = apps_of(lab)[1]  # the file replica, where CI once found 21 rows missing
    # A WAL file that holds one generation of frames only, as after the app's last connection closed (a deploy,
    # a reboot): frames of an older generation further on would make Litestream snapshot by itself.
    lab.ssh(host, f"docker stop {sidecar(app)}")
    wal_state(lab, host, app, checkpoint="truncate")
    lab.ssh(host, f"docker start {sidecar(app)}")
    # the sidecar stops on a long WAL: its last position lies far beyond where the restarted WAL will be when the
    # sidecar is back (the writer adds about 80 kB/s; were the old frame overwritten, Litestream would snapshot)
    wait_for(f"a WAL of {app} of at least 1 MB", lambda: wal_state(lab, host, app)[0] >= 1_000_000, 120)
    time.sleep(1.5)  # replicated
    lab.ssh(host, f"docker stop {sidecar(app)}")
    stopped_at = time.time()
    _size, salts = wal_state(lab, host, app)
    # commits only the database holds, for longer than the writer takes to fill a leaf page (~100 of its rows):
    # the page that was last at the stop is then never written again, and only a snapshot carries its last rows
    time.sleep(15)
    wal_state(lab, host, app, checkpoint="passive")
    wait_for(f"the next commit of {app} to restart the WAL", lambda: wal_state(lab, host, app)[1] != salts, 10,
             interval=0.05)
    lab.ssh(host, f"docker start {sidecar(app)}")
    back = time.time()
    wait_for_rows_after(lab, host, app, kind, tmp_path / "after-restart.sqlite3", back, "the start")
    time.sleep(3)
    logs = lab.ssh(host, f"docker logs --since {int(stopped_at)} {sidecar(app)} 2>&1").stdout
    assert "sidecar:" not in logs, f"the start script could not empty the WAL:\n{logs[-2000:]}"
    assert_replica_current(lab, host, app, kind, tmp_path, newer_than=back)
    print(f"WAL restarted during a sidecar stop: down {back - stopped_at:.1f} s, nothing lost")


def test_rebooted_host_resumes_replication_without_a_playbook(replicating, tmp_path):
    lab = replicating
    host = lab.hosts[-1]
    container = host["container"]

    def reboot():
        proc = subprocess.run(["docker", "restart", container], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        wait_for(f"sshd of {host['name']} after the reboot",
                 lambda: lab.ssh(host, "docker info --format '{{.ID}}'", check=False).returncode == 0, 90)

    started = lab.ssh(host, "cat /proc/1/stat | cut -d' ' -f22").stdout.strip()
    figures = assert_replication_resumes(lab, host, tmp_path, reboot, "a reboot of the host", apps_come_back=True)
    assert lab.ssh(host, "cat /proc/1/stat | cut -d' ' -f22").stdout.strip() != started, "the host did not reboot"
    boot = lab.ssh(host, "cat /var/log/dokku-lab/boot.log").stdout
    assert "dokku ps:restore" in boot, boot
    print(f"host reboot: {figures}")
