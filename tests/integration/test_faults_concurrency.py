"""Fault test: two provision runs at the same time on one host (issue #6, fault 4).

Without a lock the second run fails in a way nobody understands: both runs find no mount and both run
`dokku storage:mount` (Dokku: "Mount path already exists."), or both `docker create` the sidecar
(docker: "Conflict. The container name ... is already in use"). The mutating modules take a per-app
(or per-credential-store) flock on the host, so the runs take turns: both succeed, and the work is
done once.

The two runs are released together: a `flock` on the first lock litestream_host takes (the credential sets',
then each app's in a fixed order) holds both at the gate until both are waiting, so they contend for every lock,
not only when the scheduler happens to line them up.
"""
import json
import re
import secrets
import shlex
import subprocess
import time

import pytest
import yaml

from conftest import BIN, ansible_env
from test_replication import CONFIG_ROOT, PROVISION, RECAP_RE, RESULT_RE, STORAGE_ROOT, sidecar

HOST = "lab-dokku-1"
LOCK_DIR = "/run/lock/dokku-sqlite-litestream"
CALLS_LOG = "/var/log/dokku-lab/calls.jsonl"


# --------------------------------------------------------------------------- helpers
def lab_host(lab, name=HOST):
    return next(h for h in lab.hosts if h["name"] == name)


def fresh_apps(lab, tag):
    """Three new apps: one that exists already and runs (adding its mount restarts it), one created on a file replica,
    one created on S3 (with the lab's credential sets, which both runs write too)."""
    group_vars = yaml.safe_load((lab.state / "group_vars" / "dokku.yml").read_text())
    s3 = dict(group_vars["litestream_apps"][0]["replica"], path=f"faults-{tag}/s3")
    return [
        {"app": f"existing-{tag}", "replica": {"type": "file", "path": f"/srv/lab-replicas/faults-{tag}/existing"}},
        {"app": f"file1-{tag}", "create": True, "replica": {"type": "file", "path": f"/srv/lab-replicas/faults-{tag}/1"}},
        {"app": f"s3-{tag}", "create": True, "replica": s3},
    ]


def remove_apps(lab, host, apps, replica_dir=None):
    """Sidecars, apps, configuration, storage and replicas of test apps: gone, whatever state they are in."""
    names = [a["app"] for a in apps]
    script = "; ".join(
        f"docker rm -f {sidecar(n)} >/dev/null 2>&1; dokku apps:destroy --force {n} >/dev/null 2>&1; "
        f"rm -rf {CONFIG_ROOT}/apps/{n} {STORAGE_ROOT}/{n}--db {LOCK_DIR}/app-{n}.lock" for n in names)
    if replica_dir:
        script += f"; rm -rf {replica_dir}"
    lab.ssh(host, script, check=False)


def results(output):
    """[(item, result)] of every task result `-v` printed; litestream_host's per-app results as items of their own."""
    found = []
    for m in RESULT_RE.finditer(output):
        result = json.loads(m.group(4))
        found.append((m.group(3), result))
        found += [(app.get("app"), app) for app in result.get("apps") or [] if isinstance(app, dict)]
    return found


def recap(output):
    found = {m.group(1): tuple(int(m.group(i)) for i in (3, 4, 5)) for m in RECAP_RE.finditer(output)}
    assert HOST in found, f"no PLAY RECAP for {HOST}:\n{output[-3000:]}"
    return found[HOST]  # (changed, unreachable, failed)


def dokku_calls(lab, host, since):
    """The stand-in's log of dokku commands on the host since `since` (epoch seconds): [(argv, rc)]."""
    lines = lab.ssh(host, f"cat {CALLS_LOG}").stdout.splitlines()
    calls = [json.loads(line) for line in lines if line.strip()]
    return [(c["argv"], c["rc"]) for c in calls if c["ts"] >= since]


def start_holder(lab, host, lock_name, seconds):
    """Hold a module lock from the host's shell with flock(1); returns the pid of the flock process.

    setsid makes it a process group of its own, so stop_holder ends exactly what was started here.
    """
    path = f"{LOCK_DIR}/{lock_name}"
    pid_file = f"/tmp/lock-holder-{lock_name}.pid"
    # every fd of the holder redirected, so the ssh session ends at once; then wait until the lock is held
    proc = lab.ssh(host, f"mkdir -p -m 0700 {LOCK_DIR}; "
                         f"setsid sh -c 'echo $$ > {pid_file}; exec flock {path} sleep {seconds}' "
                         f"</dev/null >/dev/null 2>&1 & "
                         f"for i in $(seq 100); do flock -n {path} true || {{ cat {pid_file}; rm -f {pid_file}; exit 0; }}; "
                         f"sleep 0.1; done; exit 1")
    pid = proc.stdout.strip()
    assert pid.isdigit(), f"no pid from the lock holder: {proc.stdout!r}"
    return int(pid)


def stop_holder(lab, host, pid):
    lab.ssh(host, f"kill -TERM -- -{pid} 2>/dev/null; true", check=False)


def lock_users(lab, host, lock_name):
    """How many processes on the host have the lock file open (the holder's two, plus every waiter)."""
    proc = lab.ssh(host, f"find /proc/[0-9]*/fd -lname '{LOCK_DIR}/{lock_name}' 2>/dev/null | wc -l", check=False)
    return int(proc.stdout.strip() or 0)


def playbook_argv(lab, *args):
    return [str(BIN / "ansible-playbook"), "-i", lab.inventory, PROVISION, "--limit", HOST, *args]


# --------------------------------------------------------------------------- tests
@pytest.fixture
def apps(lab, tmp_path):
    tag = secrets.token_hex(3)
    host = lab_host(lab)
    apps = fresh_apps(lab, tag)
    # an app that exists already and runs: adding its mount restarts it, and that must happen once (a stopped
    # app is not restarted at all). Its writer keeps its database in /tmp until the mount exists.
    lab.dokku(host, "apps:create", apps[0]["app"])
    lab.dokku(host, "config:set", "--no-restart", apps[0]["app"], "DEMO_DB_PATH=/tmp/demo.sqlite3")
    lab.dokku(host, "git:from-image", apps[0]["app"], "dsl-lab/demo-app:latest")
    yield tag, apps
    remove_apps(lab, host, apps, f"/srv/lab-replicas/faults-{tag}")


def test_two_parallel_provision_runs_both_succeed_and_do_the_work_once(lab, apps, tmp_path):
    tag, apps = apps
    host = lab_host(lab)
    names = [a["app"] for a in apps]
    extra = tmp_path / "apps.json"
    extra.write_text(json.dumps({"litestream_apps": apps}))
    since = float(lab.ssh(host, "date +%s.%N").stdout)

    # the gate: both runs queue on the first lock they take (the credential sets'), then are let go together
    gate = start_holder(lab, host, "credentials.lock", 120)
    outputs, procs = [], []
    started = time.time()
    try:
        try:
            for n in range(2):
                out = tmp_path / f"run{n}.txt"
                outputs.append(out)
                procs.append(subprocess.Popen(playbook_argv(lab, "-v", "-e", f"@{extra}"), stdout=out.open("w"),
                                              stderr=subprocess.STDOUT, env=ansible_env()))
            deadline = time.time() + 120
            while lock_users(lab, host, "credentials.lock") < 4:  # flock, its sleep, two waiting modules
                assert time.time() < deadline, "the two runs never both reached the gate"
                assert all(p.poll() is None for p in procs), "a run ended before reaching the gate"
                time.sleep(0.5)
        finally:
            stop_holder(lab, host, gate)
        for proc in procs:
            proc.wait(timeout=600)
    finally:
        for proc in procs:  # a failed test must not leave a run working on the apps it removes
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    elapsed = time.time() - started
    texts = [o.read_text() for o in outputs]

    for n, (proc, text) in enumerate(zip(procs, texts)):
        assert proc.returncode == 0, f"run {n} failed:\n{text[-5000:]}"
        changed, unreachable, failed = recap(text)
        assert unreachable == 0 and failed == 0, text[-3000:]

    # the work was done once: every dokku command succeeded, each write ran once (the stand-in logs them)
    calls = [(argv, rc) for argv, rc in dokku_calls(lab, host, since) if set(argv) & set(names)]
    # rc 20: "no such app", how apps:exists and storage:list answer for an app about to be created
    failures = [f"dokku {' '.join(argv)} -> rc {rc}" for argv, rc in calls
                if rc != 0 and not (rc == 20 and argv[0] in ("apps:exists", "storage:list"))]
    assert not failures, "dokku commands failed during the parallel runs:\n" + "\n".join(failures)
    for name in names:
        mounts = [argv for argv, _rc in calls if argv[:2] == ["storage:mount", name]]
        assert len(mounts) == 1, f"{name}: storage:mount ran {len(mounts)} times"
    for app in apps[1:]:
        creates = [argv for argv, _rc in calls if argv == ["apps:create", app["app"]]]
        assert len(creates) == 1, f"{app['app']}: apps:create ran {len(creates)} times"
    restarts = [argv for argv, _rc in calls if argv[:1] == ["ps:restart"]]
    assert restarts == [["ps:restart", names[0]]], f"expected one restart of {names[0]}, got {restarts}"
    creates = [c for text in texts for _item, r in results(text) for c in r.get("commands") or []
               if c.startswith("docker container create")]
    for name in names:
        assert len([c for c in creates if f"--name {sidecar(name)} " in c]) == 1, \
            f"{sidecar(name)} was created {len([c for c in creates if sidecar(name) in c])} times"

    # how long they waited (both at the gate; the second also for the first run's locks): one module run each
    waits = [[r["lock_wait"] for item, r in results(text) if "lock_wait" in r] for text in texts]
    assert all(len(w) == 1 and w[0] > 0 for w in waits), f"both runs should have waited at the gate: {waits}"
    print(f"\nparallel provision of {len(names)} apps: both runs done in {elapsed:.1f} s; "
          f"lock waits {waits[0][0]:.2f} s and {waits[1][0]:.2f} s")

    # what the runs left: every file parses, no temp file, one mount and one running sidecar per app
    # (the collection's markers, .dokku-sqlite-litestream, are no temporary files)
    check = lab.ssh(host, f"find {CONFIG_ROOT} -name '.*' ! -name .dokku-sqlite-litestream -print; echo ===; "
                          f"for f in $(find {CONFIG_ROOT} -name credentials.json); do echo \"$f\"; cat \"$f\"; "
                          f"echo; echo ---; done").stdout
    temp_files, _sep, creds = check.partition("===")
    assert temp_files.strip() == "", f"temporary files left under {CONFIG_ROOT}: {temp_files.split()}"
    for block in [b.strip() for b in creds.split("---") if b.strip()]:
        path, _nl, content = block.partition("\n")
        assert isinstance(json.loads(content), dict), f"{path} is not a JSON object"
    for name in names:
        config = lab.ssh(host, f"cat {CONFIG_ROOT}/apps/{name}/litestream.yml").stdout
        parsed = yaml.safe_load(config)
        assert parsed["dbs"][0]["path"].endswith("/production.sqlite3"), f"{name}: litestream.yml is\n{config}"
        listed = json.loads(lab.dokku(host, "storage:list", name, "--format", "json").stdout)
        assert [m["host_path"] for m in listed] == [f"{STORAGE_ROOT}/{name}--db"], f"{name}: mounts {listed}"
        sidecars = lab.ssh(host, "docker ps -a --filter label=dokku_sqlite.litestream.app=" + shlex.quote(name)
                           + " --format '{{.Names}} {{.State}}'").stdout.split("\n")
        assert [s for s in sidecars if s] == [f"{sidecar(name)} running"], f"{name}: sidecars {sidecars}"

    # a third run finds nothing to do
    third = lab.playbook(PROVISION, "--limit", HOST, "-e", f"@{extra}")
    changed, _unreachable, _failed = recap(third.stdout)
    assert changed == 0, f"a third run reported changed={changed}:\n" + "\n".join(
        line for line in third.stdout.splitlines() if line.startswith("changed:"))


def test_a_run_that_cannot_get_the_lock_fails_naming_the_lock_and_its_holder(lab, tmp_path):
    tag = secrets.token_hex(3)
    host = lab_host(lab)
    app = {"app": f"locked-{tag}", "create": True, "replica": {"type": "file", "path": f"/srv/lab-replicas/locked-{tag}"}}
    extra = tmp_path / "apps.json"
    extra.write_text(json.dumps({"litestream_apps": [app], "litestream_lock_timeout": 3}))
    holder = start_holder(lab, host, f"app-{app['app']}.lock", 120)
    try:
        started = time.time()
        proc = lab.playbook(PROVISION, "--limit", HOST, "-e", f"@{extra}", check=False)
        took = time.time() - started
        # it failed at the lock, before it read or wrote anything: the app was never created
        exists = lab.dokku(host, "apps:exists", app["app"], check=False).returncode
    finally:
        stop_holder(lab, host, holder)
        remove_apps(lab, host, [app], f"/srv/lab-replicas/locked-{tag}")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert recap(proc.stdout)[2] == 1
    message = re.search(r'"msg": "([^"]*timed out[^"]*)"', out)
    assert message, f"no lock time-out message in the output:\n{out[-3000:]}"
    assert message.group(1) == (
        f"timed out after 3 s waiting for the lock {LOCK_DIR}/app-{app['app']}.lock (app {app['app']}), held by "
        f"pid {holder} (flock): another run is changing app {app['app']} on this host. Wait for it to finish, "
        f"or raise lock_timeout"), message.group(1)
    assert exists == 20, f"apps:exists {app['app']} exited {exists}: the app was created although the lock was held"
    print(f"\nprovision with lock_timeout=3 against a held lock failed after {took:.1f} s (whole playbook)")
