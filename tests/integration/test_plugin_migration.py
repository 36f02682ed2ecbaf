"""The dokku-litestream plugin's own replicas and leftovers (issue #11, item 5), with the real Litestream 0.3.13.

The plugin's `litestream:create <app> <dir> <db> <url>` runs Litestream 0.3 (`replicate /data/<db> <url>`), so
its replica has the 0.3 `generations/` layout at the URL itself, not under `<url>/<db>` as ours. Here a
container shaped as the plugin makes it (name `dokku.litestream.<app>`, the storage directory at /data, the keys
in its environment, no restart policy, no labels) runs the lab's Litestream 0.3.13 image, next to the plugin's two
world-readable credential files. Then:
- the restore playbook brings that replica back on the other host, named with `restore_replica`
  (`location: path`) and read by `restore_replica_image` (0.3.13);
- a drill of it passes (fresh, intact, the same rows as the live database);
- one provision run with the app in `litestream_apps` migrates the leftovers: our sidecar replaces the plugin's
  container, the credentials directory becomes root-only, new rows reach our replica under `<url>/<db>`, the
  plugin's replica stays intact beside it, and a second run reports changed=0.

One deviation from the plugin, for the lab's rule that every connection stays on 127.0.0.1: the plugin passes the
URL on the command line, and Litestream 0.3 takes an S3 endpoint from a URL only as a provider host name
(`bucket.localhost:port`, which may resolve to ::1). The container gets the same URL in a config file with the
endpoint beside it; the replica it writes, at the URL itself, is the same.
"""
import json
import secrets
import time

import pytest

from test_replication import CONFIG_ROOT, STORAGE_ROOT, extra_vars_file, inventory_apps, provision, recap

RESTORE = "dokku_sqlite.litestream.restore"
DRILL = "dokku_sqlite.litestream.drill"
APP = "legacy-1"
DB = "production.sqlite3"
CREDENTIALS = "/var/lib/dokku/config/litestream/credentials"


def count(lab, host, path):
    return int(lab.ssh(host, f"sqlite3 {path} 'select count(*) from events'").stdout.strip())


def insert(lab, host, path, rows):
    lab.ssh(host, f"sqlite3 {path} \"with recursive n(i) as (select 1 union all select i + 1 from n where i < {rows}) "
                  "insert into events (note) select 'row ' || i from n\"")


def restore_with(lab, host, module_args):
    """litestream_restore ad hoc on the host, as a user would run it by hand."""
    proc = lab.ansible(host["name"], "-m", "dokku_sqlite.litestream.litestream_restore",
                       "-a", json.dumps(dict(module_args, owner=0, group=0)), check=False)
    assert proc.returncode == 0 and '"restored": true' in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="module")
def plugin_era(lab, tmp_path_factory):
    """Host 1 as the plugin left it: app, storage, database, the plugin's credential files and its running sidecar."""
    host = lab.hosts[0]
    s3 = lab.facts["s3"]
    creds = json.loads((lab.state / "s3-credentials.json").read_text())
    prefix = f"plugin-era-{secrets.token_hex(3)}"
    url = f"s3://{s3['bucket']}/{prefix}"
    storage = f"{STORAGE_ROOT}/{APP}--db"
    db = f"{storage}/{DB}"
    lab.dokku(host, "apps:create", APP)
    lab.dokku(host, "storage:ensure-directory", f"{APP}--db")
    lab.dokku(host, "storage:mount", APP, f"{storage}:/app/db/litestream")
    lab.ssh(host, f"sqlite3 {db} 'pragma journal_mode=wal; create table events (id integer primary key, note text)' "
                  f"&& chown 32767:32767 {db}")
    insert(lab, host, db, 100)
    # litestream:auth, run as the dokku user with umask 022: one world-readable pair, a value and a newline each
    lab.ssh(host, f"mkdir -p {CREDENTIALS} && chown dokku:dokku {CREDENTIALS} && chmod 0755 {CREDENTIALS} && "
                  f"printf '%s\\n' {creds['access_key_id']} > {CREDENTIALS}/ACCESS_KEY_ID && "
                  f"printf '%s\\n' '{creds['secret_access_key']}' > {CREDENTIALS}/SECRET_ACCESS_KEY && "
                  f"chown dokku:dokku {CREDENTIALS}/ACCESS_KEY_ID {CREDENTIALS}/SECRET_ACCESS_KEY && "
                  f"chmod 0644 {CREDENTIALS}/ACCESS_KEY_ID {CREDENTIALS}/SECRET_ACCESS_KEY")
    config = (f"dbs:\n  - path: /data/{DB}\n    replicas:\n      - url: {url}\n"
              f"        endpoint: {s3['endpoint']}\n        region: {s3['region']}\n")
    lab.ssh(host, f"cat > /root/{APP}-plugin-litestream.yml", input_text=config)
    # litestream:create + litestream:start (docker create, then docker start; no --restart, no labels)
    lab.ssh(host, f"docker create --name dokku.litestream.{APP} --network host "
                  f"--env LITESTREAM_ACCESS_KEY_ID={creds['access_key_id']} "
                  f"--env LITESTREAM_SECRET_ACCESS_KEY='{creds['secret_access_key']}' "
                  f"-v {storage}:/data -v /root/{APP}-plugin-litestream.yml:/etc/litestream.yml:ro "
                  f"{lab.facts['images']['litestream-v03']} replicate && docker start dokku.litestream.{APP}")
    time.sleep(3)
    insert(lab, host, db, 50)
    time.sleep(4)  # Litestream 0.3 syncs every second
    logs = lab.ssh(host, f"docker logs dokku.litestream.{APP} 2>&1").stdout
    assert "litestream version=v0.3.13" in logs and "wal segment written" in logs, logs
    replica = {"url": url, "endpoint": s3["endpoint"], "region": s3["region"], "credentials": "lab-s3",
               "location": "path"}
    yield {"host": host, "url": url, "prefix": prefix, "db": db, "replica": replica, "creds": creds,
           "image": lab.facts["images"]["litestream-v03"]}
    for h in lab.hosts:
        lab.ssh(h, f"docker rm -f dokku.litestream.{APP}; rm -rf {CONFIG_ROOT}/apps/{APP} {storage} "
                   f"/root/{APP}-plugin-litestream.yml {CREDENTIALS}/ACCESS_KEY_ID {CREDENTIALS}/SECRET_ACCESS_KEY",
                check=False)
        lab.dokku(h, "--force", "apps:destroy", APP, check=False)


def test_a_drill_of_the_plugins_replica_passes(lab, plugin_era, tmp_path):
    source = plugin_era["host"]
    report_dir = tmp_path / "reports"
    extra = {"restore_drill_apps": [{"app": APP, "replica": plugin_era["replica"], "image": plugin_era["image"]}],
             "restore_drill_report_dir": str(report_dir)}
    proc = lab.playbook(DRILL, "--limit", source["name"], "-e", extra_vars_file(tmp_path, "drill.json", extra),
                        check=False)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    report = json.loads((report_dir / "drill-report.json").read_text())
    assert report["summary"] == {"total": 1, "ok": 1, "failed": 0}, report
    result = report["results"][0]
    assert result["app"] == APP and result["status"] == "ok" and result["integrity"] == "ok", result
    assert isinstance(result["lag_seconds"], (int, float)) and result["rows"] == result["live_rows"] == 150, result


def test_the_restore_playbook_brings_the_plugins_replica_back_on_another_host(lab, plugin_era, tmp_path):
    source, target = plugin_era["host"], lab.hosts[1]
    live = count(lab, source, plugin_era["db"])
    assert live == 150
    extra = {"restore_app": APP, "restore_replica": plugin_era["replica"],
             "restore_replica_image": plugin_era["image"]}
    proc = lab.playbook(RESTORE, "--limit", target["name"], "-e", extra_vars_file(tmp_path, "restore.json", extra))
    assert recap(proc)[target["name"]] > 0
    restored = f"{STORAGE_ROOT}/{APP}--db/{DB}"
    assert f"{APP}: {DB} restored (" in proc.stdout and ", generation " in proc.stdout, proc.stdout[-3000:]
    assert count(lab, target, restored) == live
    assert lab.ssh(target, f"sqlite3 {restored} 'pragma integrity_check'").stdout.strip() == "ok"
    assert lab.ssh(target, f"stat -c %u:%g:%a {restored}").stdout.strip() == "32767:32767:644"
    assert lab.dokku(target, "apps:exists", APP, check=False).returncode == 0
    # nothing of the restore left behind: no container, no root-only stage, no keys outside the credential sets
    assert lab.ssh(target, f"docker ps -aq --filter ancestor={plugin_era['image']}").stdout.strip() == ""
    assert lab.ssh(target, f"ls -A {STORAGE_ROOT}/{APP}--db").stdout.split() == [DB]
    assert plugin_era["creds"]["secret_access_key"] not in proc.stdout + proc.stderr


def test_a_wrong_plugin_location_fails_before_the_app_stops(lab, plugin_era, tmp_path):
    target = lab.hosts[1]
    lab.ssh(target, f"rm -f {STORAGE_ROOT}/{APP}--db/{DB}")
    wrong = dict(plugin_era["replica"], url=plugin_era["url"] + "-typo")
    extra = {"restore_app": APP, "restore_replica": wrong, "restore_replica_image": plugin_era["image"]}
    proc = lab.playbook(RESTORE, "--limit", target["name"], "-e", extra_vars_file(tmp_path, "typo.json", extra),
                        check=False)
    assert proc.returncode != 0
    assert f"holds no backup of {DB}" in proc.stdout and "Read the named replica before anything stops" in proc.stdout
    assert "Stop the app" not in proc.stdout


def test_one_provision_run_migrates_the_plugins_leftovers(lab, plugin_era, tmp_path):
    host = plugin_era["host"]
    name = f"dokku.litestream.{APP}"
    before = json.loads(lab.ssh(host, f"docker inspect {name}").stdout)[0]
    assert before["HostConfig"]["RestartPolicy"]["Name"] == "no" and before["State"]["Running"]
    # the app as a user lists it after the plugin: the URL it gave litestream:create (the run is limited to this host)
    apps = inventory_apps(lab) + [{
        "app": APP,
        "replica": {"url": plugin_era["url"], "endpoint": plugin_era["replica"]["endpoint"],
                    "region": plugin_era["replica"]["region"], "credentials": "lab-s3", "sync_interval": "1s"}}]
    vars_file = extra_vars_file(tmp_path, "migrate.json", {"litestream_apps": apps})
    proc = provision(lab, "--limit", host["name"], "-e", vars_file)
    assert recap(proc)[host["name"]] > 0
    after = json.loads(lab.ssh(host, f"docker inspect {name}").stdout)[0]
    assert after["Id"] != before["Id"] and after["State"]["Running"]
    assert after["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert after["Config"]["Image"] == lab.facts["images"]["litestream"]
    assert not any("SECRET" in e or "ACCESS_KEY" in e for e in after["Config"]["Env"] or []), after["Config"]["Env"]
    assert plugin_era["creds"]["secret_access_key"] not in json.dumps(after)
    # the plugin's world-readable pair sits in a directory only root may enter now
    assert lab.ssh(host, f"stat -c %U:%G:%a {CREDENTIALS}").stdout.strip() == "root:root:700"
    assert lab.ssh(host, f"su -s /bin/sh dokku -c 'cat {CREDENTIALS}/SECRET_ACCESS_KEY'", check=False).returncode != 0
    # new rows reach our replica under <url>/<db> (Litestream 0.5), the plugin's stays at the URL itself
    insert(lab, host, plugin_era["db"], 25)
    time.sleep(4)
    live = count(lab, host, plugin_era["db"])
    ours = dict(plugin_era["replica"])
    ours.pop("location")
    out = f"/tmp/{APP}-ours"
    lab.ssh(host, f"rm -rf {out}")
    restore_with(lab, host, {"replica": ours, "dest": out, "image": lab.facts["images"]["litestream"]})
    assert count(lab, host, f"{out}/{DB}") == live == 175
    old = f"/tmp/{APP}-old"
    lab.ssh(host, f"rm -rf {old}")
    restore_with(lab, host, {"replica": plugin_era["replica"], "dest": old, "image": plugin_era["image"]})
    assert count(lab, host, f"{old}/{DB}") == 150  # what the plugin's sidecar had replicated when it was replaced
    lab.ssh(host, f"rm -rf {out} {old}")
    again = provision(lab, "--limit", host["name"], "-e", vars_file)
    assert recap(again)[host["name"]] == 0, again.stdout[-4000:]
