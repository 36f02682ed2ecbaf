"""Replication end to end against the lab: provision + the demo writer, then restores made with the
plain Litestream binary (independent of the collection) prove what reached each replica.

Per host i the lab inventory (tests/lab/inventory/group_vars/dokku.yml) has two apps: shop-i
replicating to S3 (moto) and notes-i replicating to a file replica (odd i) or over sftp (even i).
The demo writer commits one row every 100 ms, each row carrying its commit time.
"""
import json
import os
import re
import shlex
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import BIN, REPO

STORAGE_ROOT = "/var/lib/dokku/data/storage"
CONFIG_ROOT = "/var/lib/dokku/config/litestream"
APPS_ROOT = f"{CONFIG_ROOT}/apps"
DB_NAME = "production.sqlite3"
LAG = 3.0  # every row must be in the replica this many seconds after its commit
PROVISION = "dokku_sqlite.litestream.provision"
DEPLOY_DEMO = str(REPO / "tests" / "lab" / "deploy-demo.yml")
RESULT_RE = re.compile(r"^(ok|changed|failed|fatal): \[(\S+)\](?: => \(item=(.*?)\))? => (\{.*\})$", re.M)
# what a module may run when nothing changes: inspections and reports only
READ_RE = re.compile(r"^(docker (inspect|container inspect|image inspect|container ls|ps|info)\b"
                     r"|dokku (version|apps:exists|apps:list|storage:list|[a-z-]+:report)\b)")
CHECK_MODE_MARK = "# check mode: not run"
RECAP_RE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


# --------------------------------------------------------------------------- helpers
def apps_of(lab):
    """[(host, app, replica kind)] in the shape of the lab's example inventory."""
    out = []
    for index, host in enumerate(lab.hosts, start=1):
        out.append((host, f"shop-{index}", "s3"))
        out.append((host, f"notes-{index}", "file" if index % 2 else "sftp"))
    return out


def sidecar(app):
    return f"dokku.litestream.{app}"


def s3_creds(lab):
    return json.loads((lab.state / "s3-credentials.json").read_text())


def litestream_env(lab):
    creds = s3_creds(lab)
    env = dict(os.environ, LITESTREAM_ACCESS_KEY_ID=creds["access_key_id"],
               LITESTREAM_SECRET_ACCESS_KEY=creds["secret_access_key"])
    env.pop("AWS_CA_BUNDLE", None)  # breaks every Litestream 0.5 S3 client
    return env


def recap(proc):
    """{host: changed count} from the PLAY RECAP; every host must be reachable and not failed."""
    found = {m.group(1): (int(m.group(3)), int(m.group(4)), int(m.group(5))) for m in RECAP_RE.finditer(proc.stdout)}
    assert found, f"no PLAY RECAP in the output:\n{proc.stdout[-3000:]}"
    for host, (_changed, unreachable, failed) in found.items():
        assert unreachable == 0 and failed == 0, f"{host}: unreachable={unreachable} failed={failed}\n" \
                                                 f"{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
    return {host: changed for host, (changed, _u, _f) in found.items()}


def module_commands(proc):
    """[(host, item, command)] from every task result printed by `-v` that carries `commands`."""
    out = []
    for match in RESULT_RE.finditer(proc.stdout):
        result = json.loads(match.group(4))
        out += [(match.group(2), match.group(3), c) for c in result.get("commands") or []]
        # litestream_host: the host-level reads above, each app's own commands in its result
        for app in result.get("apps") or []:
            if isinstance(app, dict):
                out += [(match.group(2), app.get("app"), c) for c in app.get("commands") or []]
    return out


def module_apps(proc):
    """{(host, app)} of every per-app result litestream_host printed with -v."""
    found = set()
    for match in RESULT_RE.finditer(proc.stdout):
        for app in json.loads(match.group(4)).get("apps") or []:
            if isinstance(app, dict):
                found.add((match.group(2), app.get("app")))
    return found


def changed_tasks(proc):
    """Names of the tasks/items reported changed, for assertion messages."""
    return [line for line in proc.stdout.splitlines() if line.startswith("changed:")]


def provision(lab, *args, check=True):
    return lab.playbook(PROVISION, *args, check=check)


def extra_vars_file(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return f"@{path}"


def inventory_apps(lab):
    """litestream_apps as the lab inventory writes it (Jinja left in, templated per host by Ansible)."""
    return yaml.safe_load((lab.state / "group_vars" / "dokku.yml").read_text())["litestream_apps"]


def override_sync_interval(lab, host, app_prefix, value):
    """Extra vars: the inventory's litestream_apps with one replica option changed on one host only."""
    apps = inventory_apps(lab)
    entry = next(a for a in apps if str(a["app"]).startswith(app_prefix))
    assert isinstance(entry["replica"], dict), f"{app_prefix} replica is not a mapping in the inventory"
    original = entry["replica"].get("sync_interval", "1s")
    entry["replica"]["sync_interval"] = (
        f"{{{{ {value!r} if inventory_hostname == {host['name']!r} else {str(original)!r} }}}}")
    return {"litestream_apps": apps}


def sidecar_states(lab):
    """{(host name, app): (container id, running)} for every sidecar of the inventory."""
    states = {}
    for host in lab.hosts:
        names = [sidecar(app) for h, app, _k in apps_of(lab) if h is host]
        proc = lab.ssh(host, "docker container inspect --format '{{.Name}} {{.Id}} {{.State.Running}}' "
                       + " ".join(names), check=False)
        for line in proc.stdout.split("\n"):
            if line.strip():
                name, cid, running = line.split()
                states[(host["name"], name.lstrip("/").removeprefix("dokku.litestream."))] = (cid, running == "true")
    return states


def config_snapshot(lab):
    """{host: [path, type, mode, uid, gid, mtime, sha256]} for everything under the config root."""
    script = (f"cd / && find {CONFIG_ROOT} -printf '%p\\t%y\\t%m\\t%U\\t%G\\t%T@\\n' 2>/dev/null | sort; "
              f"echo ===; find {CONFIG_ROOT} -type f -exec sha256sum {{}} + 2>/dev/null | sort -k2")
    return {host["name"]: lab.ssh(host, script, check=False).stdout for host in lab.hosts}


def live_rows(lab, host, app, cutoff=None):
    """[(id, committed_at)] of the live DB on the host (read-only), optionally only up to cutoff."""
    db = f"{STORAGE_ROOT}/{app}--db/{DB_NAME}"
    code = ("import json,sqlite3,sys\n"
            "c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True,timeout=10)\n"
            "c.execute('pragma busy_timeout=10000')\n"
            "q='select id, committed_at from events'+(' where committed_at <= ?' if len(sys.argv)>2 else '')\n"
            "print(json.dumps(c.execute(q+' order by id', [float(a) for a in sys.argv[2:]]).fetchall()))\n")
    args = [db] + ([repr(cutoff)] if cutoff is not None else [])
    proc = lab.ssh(host, f"python3 -c {shlex.quote(code)} " + " ".join(shlex.quote(a) for a in args))
    return [tuple(r) for r in json.loads(proc.stdout)]


def restore(lab, host, app, kind, out):
    """Restore the app's replica into `out` with the plain binary; returns the CompletedProcess."""
    out.unlink(missing_ok=True)
    env = litestream_env(lab)
    litestream = str(BIN / "litestream")
    if kind == "s3":
        s3 = lab.facts["s3"]
        url = (f"s3://{s3['bucket']}/{host['name']}/{app}/{DB_NAME}"
               f"?endpoint={s3['endpoint']}&region={s3['region']}")
        argv = [litestream, "restore", "-o", str(out), url]
    elif kind == "file":
        # /srv/lab-replicas on the hosts is lab.state/replicas here
        argv = [litestream, "restore", "-o", str(out),
                f"file://{lab.state / 'replicas' / host['name'] / app / DB_NAME}"]
    else:
        # over sftp itself (key + host key checked), not through the shared data directory
        sftp = lab.facts["sftp"]
        config = out.with_suffix(".sftp.yml")
        config.write_text(
            f"dbs:\n  - path: {out.with_suffix('.src')}\n    replica:\n      type: sftp\n"
            f"      host: \"{sftp['host']}\"\n      user: {sftp['user']}\n      key-path: {sftp['key_file']}\n"
            f"      host-key: \"{sftp['host_key']}\"\n      path: {sftp['path']}/{host['name']}/{app}/{DB_NAME}\n")
        argv = [litestream, "restore", "-config", str(config), "-o", str(out), str(out.with_suffix(".src"))]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)


def restored_rows(path):
    conn = sqlite3.connect(path)
    try:
        rows = [tuple(r) for r in conn.execute("select id, committed_at from events order by id")]
        integrity = conn.execute("pragma integrity_check").fetchone()[0]
    finally:
        conn.close()
    return rows, integrity


def assert_replica_current(lab, host, app, kind, tmp_path, newer_than=None):
    """Restore now (R); every row committed at or before R - LAG must be in it, intact.

    newer_than: the restore must also hold a row committed after this time (replication resumed).
    """
    out = tmp_path / f"{host['name']}-{app}.sqlite3"
    started = time.time()
    proc = restore(lab, host, app, kind, out)
    where = f"{app} on {host['name']} ({kind} replica)"
    assert proc.returncode == 0 and out.exists(), f"{where}: restore failed rc={proc.returncode}\n{proc.stderr}"
    rows, integrity = restored_rows(out)
    assert integrity == "ok", f"{where}: restored copy fails integrity_check: {integrity}"
    live = live_rows(lab, host, app, cutoff=started - LAG)
    assert live, f"{where}: the live DB has no row older than {LAG} s: is the demo writer running?"
    restored = dict(rows)
    missing = [(i, t) for i, t in live if i not in restored]
    assert not missing, (
        f"{where}: {len(missing)} of {len(live)} rows committed more than {LAG} s before the restore are not "
        f"in the replica; oldest missing id {missing[0][0]} committed {started - missing[0][1]:.1f} s before "
        f"the restore, newest restored row committed {started - max(restored.values(), default=0):.1f} s before")
    wrong = [i for i, t in live if restored[i] != t]
    assert not wrong, f"{where}: rows {wrong[:5]} differ between the live DB and the restored copy"
    if newer_than is not None:
        newest = max(restored.values(), default=0)
        assert newest > newer_than, (
            f"{where}: the replica holds no row committed after {time.ctime(newer_than)} "
            f"(newest {newest - newer_than:+.1f} s): replication did not resume")
    return len(rows)


def wait_for(what, predicate, timeout, interval=0.5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def app_running(lab, host, app):
    return lab.dokku(host, "ps:report", app, "--running", check=False).stdout.strip() == "true"


def ensure_apps_running(lab, host):
    """What Dokku's boot service does after a daemon restart: ps:start the apps that are down."""
    started = []
    for h, app, _kind in apps_of(lab):
        if h is host and not app_running(lab, host, app):
            lab.dokku(host, "ps:start", app)
            started.append(app)
    return started


def writer_active(lab, host, app):
    """True when the live DB got a row in the last second."""
    rows = live_rows(lab, host, app)
    return bool(rows) and rows[-1][1] > time.time() - 1.5


def secret_needles(lab):
    """(label, text) pairs that must never show up anywhere: the S3 secret and the sftp private key."""
    needles = [("S3 secret_access_key", s3_creds(lab)["secret_access_key"])]
    spare = json.loads(Path(lab.facts["s3"]["spare_credentials_file"]).read_text())  # test_check_mode rotates to it
    needles.append(("S3 spare secret_access_key", spare["secret_access_key"]))
    key = (lab.state / "sftp" / "id_ed25519").read_text()
    needles.append(("sftp private key", key.strip()))
    body = [line for line in key.splitlines() if line and not line.startswith("-----")]
    needles += [(f"sftp private key line {n}", line) for n, line in enumerate(body, 1) if len(line) >= 16]
    return needles


def leaked(text, needles):
    return [label for label, needle in needles if needle in text]


def start_writers(lab):
    """Provision every host, deploy the demo writer into every app, wait until each commits rows."""
    provision(lab)
    lab.playbook(DEPLOY_DEMO)
    for host in lab.hosts:
        ensure_apps_running(lab, host)
    for host, app, _kind in apps_of(lab):
        wait_for(f"the demo writer of {app} on {host['name']}", lambda: writer_active(lab, host, app), 30)


# --------------------------------------------------------------------------- fixture
@pytest.fixture(scope="module")
def replicating(lab, tmp_path_factory):
    """Provision both hosts, deploy the demo writer into every app, wait until replication runs."""
    assert len(lab.hosts) == 2, "these tests expect the default two-host lab (four apps)"
    start_writers(lab)
    for host, app, _kind in apps_of(lab):
        states = sidecar_states(lab)
        assert states.get((host["name"], app), (None, False))[1], f"sidecar {sidecar(app)} is not running"
    probe = tmp_path_factory.mktemp("probe") / "restore.sqlite3"
    for host, app, kind in apps_of(lab):
        wait_for(f"a first restorable replica of {app} on {host['name']} ({kind})",
                 lambda: restore(lab, host, app, kind, probe).returncode == 0, 30, interval=1)
    time.sleep(LAG + 1)  # let replication settle past the first snapshot
    return lab


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("which", range(4), ids=["host1-shop-s3", "host1-notes", "host2-shop-s3", "host2-notes"])
def test_every_committed_row_reaches_the_replica_within_3s(replicating, tmp_path, which):
    lab = replicating
    host, app, kind = apps_of(lab)[which]
    count = assert_replica_current(lab, host, app, kind, tmp_path)
    assert count > 0


def test_second_provision_changes_nothing_and_check_mode_touches_nothing(replicating, tmp_path):
    lab = replicating
    ids_before, config_before = sidecar_states(lab), config_snapshot(lab)
    proc = provision(lab, "-v")
    changed = recap(proc)
    assert set(changed) == {h["name"] for h in lab.hosts}
    assert all(n == 0 for n in changed.values()), \
        f"a repeat provision must report changed=0 everywhere, got {changed}:\n" + "\n".join(changed_tasks(proc))
    commands = module_commands(proc)
    assert module_apps(proc) == {(h["name"], app) for h, app, _k in apps_of(lab)}, \
        f"-v shows no result for some apps: {sorted(module_apps(proc))}"
    writes = [f"{h} ({item}): {c}" for h, item, c in commands if not READ_RE.match(c)]
    assert not writes, "a repeat provision ran more than reads:\n" + "\n".join(writes)
    # issue #13: one module run per host reads the host once: 1 dokku call per app plus 1, 2 docker calls
    for host in lab.hosts:
        ran = [c for h, _item, c in commands if h == host["name"]]
        apps = sum(1 for h, _a, _k in apps_of(lab) if h is host)
        assert sum(c.startswith("dokku ") for c in ran) <= apps + 1 and sum(c.startswith("docker ") for c in ran) <= 2, \
            f"{host['name']}: more reads than one per app plus one per host:\n" + "\n".join(ran)
        if apps > 1:  # one storage:report showed every app's mount: no storage:list at all
            assert [c for c in ran if c.startswith("dokku ")] == ["dokku version", "dokku storage:report"], \
                f"{host['name']}: a no-change run read more than Dokku's version and one report:\n" + "\n".join(ran)
    assert sidecar_states(lab) == ids_before, "a repeat provision replaced or restarted a sidecar"
    assert config_snapshot(lab) == config_before, "a repeat provision rewrote files under " + CONFIG_ROOT

    # --check with a changed inventory: reports the change, makes none
    host = lab.hosts[0]
    extra = extra_vars_file(tmp_path, "check.json", override_sync_interval(lab, host, "shop-", "2s"))
    proc = provision(lab, "--check", "--diff", "-v", "-e", extra)
    changed = recap(proc)
    commands = module_commands(proc)
    would = [c for h, item, c in commands if c.endswith(CHECK_MODE_MARK)]
    assert would, "--check recorded no command it would run for the changed app"
    ran = [f"{h} ({item}): {c}" for h, item, c in commands if not READ_RE.match(c) and not c.endswith(CHECK_MODE_MARK)]
    assert not ran, "--check ran writing commands:\n" + "\n".join(ran)
    assert changed[host["name"]] > 0, f"--check with sync_interval 2s must report a change on {host['name']}"
    assert all(n == 0 for name, n in changed.items() if name != host["name"]), \
        f"only {host['name']} has a changed inventory, got {changed}"
    assert sidecar_states(lab) == ids_before, "--check replaced, started or stopped a sidecar"
    assert config_snapshot(lab) == config_before, "--check wrote files under " + CONFIG_ROOT
    assert '"2s"' not in lab.ssh(host, f"cat {APPS_ROOT}/shop-1/litestream.yml").stdout


def assert_replication_resumes(lab, host, tmp_path, disrupt, what, apps_come_back=False, timeout=120):
    """Run disrupt() (something that stops every container of the host), then prove that, without any
    playbook run, the same sidecars run again by their restart policy and every row reaches the replicas.

    apps_come_back: the apps must run again by themselves too (a boot runs Dokku's `ps:restore`); otherwise
    they are started as Dokku's boot service would (their on-failure policy may leave them down).
    Returns {"back": seconds until the sidecars ran again, "resumed": seconds until every replica held
    rows committed after the disruption}.
    """
    mine = [(app, kind) for h, app, kind in apps_of(lab) if h is host]
    before = sidecar_states(lab)
    disrupted_at = time.time()
    disrupt()

    def sidecars_running():
        now = sidecar_states(lab)
        return all(now.get((host["name"], app), (None, False))[1] for app, _k in mine)

    # the sidecars come back by themselves (unless-stopped), before anybody starts the apps
    wait_for(f"the sidecars of {host['name']} to run again without help after {what}", sidecars_running, timeout)
    sidecars_back = time.time() - disrupted_at
    after = sidecar_states(lab)
    for app, _kind in mine:
        assert after[(host["name"], app)][0] == before[(host["name"], app)][0], \
            f"{sidecar(app)} is a new container: the daemon should restart the same one"
        policy = lab.ssh(host, f"docker inspect --format '{{{{.HostConfig.RestartPolicy.Name}}}}' {sidecar(app)}")
        assert policy.stdout.strip() == "unless-stopped"

    if apps_come_back:
        for app, _kind in mine:
            wait_for(f"{app} on {host['name']} to run again by itself after {what}",
                     lambda: app_running(lab, host, app), timeout)
    else:
        started = ensure_apps_running(lab, host)
        print(f"apps that needed dokku ps:start after {what}: {started}")
    for app, _kind in mine:
        wait_for(f"the demo writer of {app} to write again", lambda: writer_active(lab, host, app), 30)
    back = time.time()
    # rows committed after the restart reach the replica
    for app, kind in mine:
        out = tmp_path / f"resume-{app}.sqlite3"

        def has_new_rows():
            if restore(lab, host, app, kind, out).returncode != 0:
                return False
            return max((t for _i, t in restored_rows(out)[0]), default=0) > back

        wait_for(f"rows committed after {what} in the {kind} replica of {app}", has_new_rows, 20)
    resumed = time.time() - disrupted_at
    time.sleep(LAG)
    for app, kind in mine:
        assert_replica_current(lab, host, app, kind, tmp_path, newer_than=back)
    return {"back": round(sidecars_back, 1), "resumed": round(resumed, 1)}


def test_sidecars_come_back_after_a_docker_daemon_restart(replicating, tmp_path):
    lab = replicating
    host = lab.hosts[-1]
    old_pid = lab.ssh(host, "pgrep -x dockerd").stdout.strip()
    assert old_pid, "no dockerd runs on the lab host"

    def restart_dockerd():
        lab.ssh(host, "pkill -TERM -x dockerd")

        def daemon_back():
            pid = lab.ssh(host, "pgrep -x dockerd", check=False).stdout.strip()
            return pid and pid != old_pid and \
                lab.ssh(host, "docker info --format '{{.ID}}'", check=False).returncode == 0

        wait_for(f"the inner dockerd of {host['name']} to answer again", daemon_back, 90)

    figures = assert_replication_resumes(lab, host, tmp_path, restart_dockerd, "a docker daemon restart")
    print(f"docker daemon restart: {figures}")


def test_one_changed_option_recreates_only_that_sidecar(replicating, tmp_path):
    lab = replicating
    host = lab.hosts[0]
    target = (host["name"], "shop-1")
    before = sidecar_states(lab)
    extra = extra_vars_file(tmp_path, "sync2s.json", override_sync_interval(lab, host, "shop-", "2s"))
    try:
        proc = provision(lab, "-e", extra)
        changed = recap(proc)
        assert changed[host["name"]] > 0, f"sync_interval 2s must change {host['name']}"
        assert all(n == 0 for name, n in changed.items() if name != host["name"]), \
            f"only {host['name']} changed its inventory, got {changed}:\n" + "\n".join(changed_tasks(proc))
        after = sidecar_states(lab)
        assert after[target][0] != before[target][0], "the sidecar of shop-1 was not recreated"
        assert after[target][1], "the recreated sidecar of shop-1 is not running"
        for key in before:
            if key != target:
                assert after[key] == before[key], f"the sidecar of {key[1]} on {key[0]} was touched"
        config = lab.ssh(host, f"cat {APPS_ROOT}/shop-1/litestream.yml").stdout
        assert re.search(r'sync-interval:\s*"?2s"?', config), f"sync-interval 2s not rendered:\n{config}"

        proc = provision(lab, "-e", extra)
        changed = recap(proc)
        assert all(n == 0 for n in changed.values()), \
            f"a repeat run with the same change must report changed=0, got {changed}:\n" \
            + "\n".join(changed_tasks(proc))
        assert sidecar_states(lab) == after, "a repeat run replaced a sidecar"
    finally:
        # back to the inventory's own settings, so the test order does not matter
        proc = provision(lab)
    changed = recap(proc)
    restored = sidecar_states(lab)
    assert restored[target][1], "the sidecar of shop-1 does not run after restoring the settings"
    assert all(restored[key] == before[key] for key in before if key != target)
    config = lab.ssh(host, f"cat {APPS_ROOT}/shop-1/litestream.yml").stdout
    assert not re.search(r'sync-interval:\s*"?2s"?', config), "restoring the inventory left sync-interval 2s"
    # the recreated sidecar replicates
    time.sleep(LAG)
    assert_replica_current(lab, host, "shop-1", "s3", tmp_path)


def test_secrets_stay_out_of_logs_containers_and_litestream_yml(replicating):
    lab = replicating
    needles = secret_needles(lab)
    proc = provision(lab, "-vvv")
    recap(proc)
    assert not leaked(proc.stdout, needles), f"provision -vvv printed {leaked(proc.stdout, needles)} on stdout"
    assert not leaked(proc.stderr, needles), f"provision -vvv printed {leaked(proc.stderr, needles)} on stderr"

    for host, app, _kind in apps_of(lab):
        inspect = lab.ssh(host, f"docker container inspect {sidecar(app)}").stdout
        assert not leaked(inspect, needles), f"docker inspect {sidecar(app)} on {host['name']} shows " \
                                             f"{leaked(inspect, needles)}"
        env = json.loads(inspect)[0]["Config"].get("Env") or []
        assert not [e for e in env if e.startswith("AWS_CA_BUNDLE=")], f"{sidecar(app)} gets AWS_CA_BUNDLE"

    secret = s3_creds(lab)["secret_access_key"]
    for host in lab.hosts:
        # litestream.yml must hold no secret (credentials live in a separate root-only file)
        ymls = lab.ssh(host, f"find {APPS_ROOT} -name litestream.yml -type f").stdout.split()
        assert len(ymls) == 2, f"expected two litestream.yml on {host['name']}, found {ymls}"
        with_secret = lab.ssh(host, f"grep -lF -f - {' '.join(ymls)}", check=False, input_text=secret + "\n")
        assert with_secret.stdout.strip() == "", \
            f"litestream.yml files on {host['name']} contain the S3 secret: {with_secret.stdout.split()}"
        key_lines = "\n".join(n for label, n in needles if label.startswith("sftp private key line")) + "\n"
        assert key_lines.strip(), "no line of the sftp private key to look for"
        with_key = lab.ssh(host, f"grep -lF -f - {' '.join(ymls)}", check=False, input_text=key_lines)
        assert with_key.stdout.strip() == "", \
            f"litestream.yml files on {host['name']} contain the sftp private key: {with_key.stdout.split()}"
        # the only file of the app configuration directories that may hold it is the root-only
        # credentials file of the S3 app (its mode is checked below with everything else)
        anywhere = lab.ssh(host, f"grep -rlF -f - {APPS_ROOT}", check=False, input_text=secret + "\n")
        holders = sorted(anywhere.stdout.split())
        shop = next(app for h, app, kind in apps_of(lab) if h is host and kind == "s3")
        assert holders == [f"{APPS_ROOT}/{shop}/credentials.env"], \
            f"files under {APPS_ROOT} on {host['name']} holding the S3 secret: {holders} " \
            f"(expected only {shop}/credentials.env)"
        # nor does any process's command line (the sidecars' processes are visible from the host)
        procs = lab.ssh(host, "ps -eww -o args").stdout
        assert "litestream" in procs, f"no Litestream process visible on {host['name']}"
        assert not leaked(procs, needles), f"a command line on {host['name']} shows {leaked(procs, needles)}"

        # every file root-only 0600, every directory 0700 (or 0710), all owned by root
        listing = lab.ssh(host, f"find {CONFIG_ROOT} -printf '%p %y %m %U\\n'").stdout.splitlines()
        assert listing, f"nothing under {CONFIG_ROOT} on {host['name']}"
        bad = []
        for line in listing:
            path, kind, mode, uid = line.rsplit(" ", 3)
            ok_mode = mode == "600" if kind == "f" else mode in ("700", "710") if kind == "d" else False
            if not ok_mode or uid != "0":
                bad.append(f"{path} type={kind} mode={mode} uid={uid}")
        assert not bad, f"on {host['name']} these are not root-owned 0600 files / 0700|0710 dirs:\n" + "\n".join(bad)
