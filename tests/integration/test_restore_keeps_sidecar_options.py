"""The restore playbook keeps the sidecar as provision left it (issue #21), against the lab.

shop-1 on the first host gets `metrics_port` and a heartbeat (a small HTTP server of this test on 127.0.0.1; the
lab's containers use the host network). After provision, the restore playbook (restore_on_existing=replace) stops
and starts the sidecar around the restore: right after it the sidecar serves its metrics on that port, its
root-only litestream.yml still has the metrics address and the heartbeat, and its config-hash label is the one
provision set, and the heartbeat URL (a secret) is in none of the restore's output at -vvv. A provision run after
the restore then reports changed=0 for the host.
The entry is put back as the lab inventory has it at the end.
"""
import socket
import urllib.request

from test_heartbeat import TOKEN, PingServer
from test_replication import (APPS_ROOT, PROVISION, changed_tasks, extra_vars_file, inventory_apps, recap, sidecar,
                              wait_for)
from test_restore_role import RESTORE, running  # noqa: F401  (running is a fixture: provision + demo writers)

APP = "shop-1"
LABEL_HASH = "dokku_sqlite.litestream.config-hash"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def apps_file(lab, tmp_path, extra=None):
    """The lab inventory's litestream_apps, with `extra` set on the shop apps."""
    apps = [dict(entry, **extra) if extra and str(entry["app"]).startswith("shop-") else entry
            for entry in inventory_apps(lab)]
    return extra_vars_file(tmp_path, "apps.json", {"litestream_apps": apps})


def sidecar_now(lab, host):
    """(running, config-hash label, litestream.yml) of the app's sidecar."""
    fmt = "{{.State.Running}} {{index .Config.Labels \"%s\"}}" % LABEL_HASH
    running_, label = lab.ssh(host, f"docker container inspect --format '{fmt}' {sidecar(APP)}").stdout.split()
    config = lab.ssh(host, f"cat {APPS_ROOT}/{APP}/litestream.yml").stdout
    return running_ == "true", label, config


def metrics(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return "litestream_" in response.read().decode()
    except OSError:
        return False


def test_restore_keeps_metrics_port_and_heartbeat_and_provision_after_it_changes_nothing(running, tmp_path):
    lab = running
    host = lab.hosts[0]
    port, server = free_port(), PingServer()
    addr = f'addr: "127.0.0.1:{port}"'  # as litestream.yml quotes it
    options = apps_file(lab, tmp_path, {"metrics_port": port, "heartbeat_url": server.url, "heartbeat_interval": "1m"})
    try:
        proc = lab.playbook(PROVISION, "--limit", host["name"], "-e", options)
        assert recap(proc)[host["name"]] > 0
        provisioned = sidecar_now(lab, host)
        assert provisioned[0] and addr in provisioned[2] and TOKEN in provisioned[2]

        proc = lab.playbook(RESTORE, "--limit", host["name"], "-e", f"restore_app={APP}",
                            "-e", "restore_on_existing=replace", "-e", options, "-vvv")
        assert recap(proc)[host["name"]] > 0
        assert TOKEN not in proc.stdout + proc.stderr, "the heartbeat URL reached the restore's output"
        assert "production.sqlite3 restored" in proc.stdout
        restored = sidecar_now(lab, host)
        assert restored[0], "the sidecar is not running after the restore"
        assert addr in restored[2], "the restore dropped metrics_port:\n" + restored[2]
        assert TOKEN in restored[2] and 'heartbeat-interval: "1m"' in restored[2], "the restore dropped the heartbeat"
        assert restored[1] == provisioned[1], "the sidecar's config hash differs from the one provision set"
        wait_for(f"the sidecar's metrics on 127.0.0.1:{port}", lambda: metrics(port), 30)

        proc = lab.playbook(PROVISION, "--limit", host["name"], "-e", options, "-v")
        assert recap(proc)[host["name"]] == 0, "provision after the restore changed:\n" + "\n".join(changed_tasks(proc))
    finally:
        server.close()
        lab.playbook(PROVISION, "--limit", host["name"], "-e", apps_file(lab, tmp_path))
