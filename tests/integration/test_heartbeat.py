"""Heartbeats (issue #14) against the lab, with the real Litestream 0.5.17 of the sidecar image.

shop-1 (S3, demo writer committing every 100 ms) gets `heartbeat_url` pointing at a small HTTP server of
this test on 127.0.0.1 (the lab's containers use the host network) and `heartbeat_interval: 1m`, the
shortest Litestream accepts. Then:
- the server receives pings about once a minute while replication works;
- the URL, a secret capability, is in no output of the provision run at -vvv, in no label or argument
  of the sidecar (`docker inspect`), and in the root-only `litestream.yml` only;
- the sidecar's control socket answers `litestream list` with the database's last sync;
- with the lab's S3 endpoint closed (`lab.py s3 down`) while the writer goes on, the pings stop: none
  comes later than one interval plus the 15 s monitor tick after the outage began (Litestream pings
  only while every database synced within the interval; see docs/litestream-health-facts.md);
- with S3 back, the pings resume without a playbook run.
The entry is put back as the lab inventory has it at the end.
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from test_faults_outage import lab_cmd
from test_replication import (  # noqa: F401  (replicating is a fixture)
    PROVISION, extra_vars_file, inventory_apps, recap, replicating, sidecar, wait_for,
)

TOKEN = "7c1d2e9a-heartbeat-capability"
INTERVAL = 60  # heartbeat_interval: 1m, Litestream's minimum
TICK = 15      # Litestream checks whether to ping every 15 s
OUTAGE = INTERVAL + TICK + 45  # long enough to see the pings stop, with a margin for the last sync's age


class PingServer:
    """Records the time of every GET to /ping/<TOKEN>; anything else is a 404."""

    def __init__(self):
        self.pings = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (http.server's name)
                ok = self.path == f"/ping/{TOKEN}"
                if ok:
                    server.pings.append(time.time())
                self.send_response(200 if ok else 404)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ping/{TOKEN}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def provision_host1(lab, tmp_path, heartbeat=None):
    apps = inventory_apps(lab)
    if heartbeat:
        apps = [dict(entry, **heartbeat) if entry["app"].startswith("shop-") else entry for entry in apps]
    data = {"litestream_apps": apps}
    return lab.playbook(PROVISION, "--limit", lab.hosts[0]["name"], "-e", extra_vars_file(tmp_path, "apps.json", data),
                        "-vvv")


def test_heartbeat_pings_while_replication_works_and_stops_while_s3_is_down(replicating, tmp_path):
    lab = replicating
    host, app = lab.hosts[0], "shop-1"
    server = PingServer()
    try:
        proc = provision_host1(lab, tmp_path, {"heartbeat_url": server.url, "heartbeat_interval": "1m"})
        started = time.time()
        assert recap(proc)[host["name"]] > 0
        output = proc.stdout + proc.stderr
        assert TOKEN not in output and "7c1d2e9a" not in output, "the heartbeat URL reached the playbook's output"
        inspect = lab.ssh(host, f"docker container inspect {sidecar(app)}").stdout
        assert TOKEN not in inspect, "the heartbeat URL is in docker inspect"
        config = f"/var/lib/dokku/config/litestream/apps/{app}/litestream.yml"
        stat = lab.ssh(host, f"stat -c '%a %U:%G' {config}").stdout.strip()
        assert stat == "600 root:root", stat
        assert lab.ssh(host, f"grep -c {TOKEN} {config}").stdout.strip() == "1"

        # Litestream's control socket (on in every sidecar): the database's last successful sync
        assert wait_for("the sidecar's control socket to list the database as synced", lambda: _synced(lab, host, app),
                        60, interval=2)

        wait_for("two heartbeat pings", lambda: len(server.pings) >= 2, 2 * INTERVAL + 3 * TICK, interval=1)
        gaps = [b - a for a, b in zip(server.pings, server.pings[1:])]
        assert all(INTERVAL - 1 <= gap <= INTERVAL + 2 * TICK for gap in gaps), gaps
        first_after = round(server.pings[0] - started, 1)

        down_at = time.time()
        lab_cmd("s3", "down")
        try:
            time.sleep(OUTAGE)
        finally:
            lab_cmd("s3", "up")
        up_at = time.time()
        late = [round(t - down_at, 1) for t in server.pings if t > down_at + INTERVAL + 2 * TICK]
        assert late == [], f"pings {late} s after S3 went down, while the writer could not replicate"
        during = [round(t - down_at, 1) for t in server.pings if down_at <= t <= up_at]

        # S3 back: replication catches up (Litestream's backoff, at most 5 min) and the pings resume
        count = len(server.pings)
        wait_for("a heartbeat ping after S3 came back", lambda: len(server.pings) > count, 300 + INTERVAL + TICK,
                 interval=1)
        resumed = round(server.pings[count] - up_at, 1)
        print(f"heartbeat: first ping {first_after} s after provision, gaps {[round(g, 1) for g in gaps]} s, "
              f"pings during the {round(up_at - down_at)} s outage at {during} s, resumed {resumed} s after S3 came back")
    finally:
        server.close()
        proc = provision_host1(lab, tmp_path)  # the entry as the lab inventory has it, no heartbeat
        assert TOKEN not in proc.stdout + proc.stderr
    config_text = lab.ssh(host, f"cat /var/lib/dokku/config/litestream/apps/{app}/litestream.yml").stdout
    assert "heartbeat" not in config_text


def _synced(lab, host, app):
    out = lab.ssh(host, f"docker exec {sidecar(app)} /usr/local/bin/litestream list -json -timeout 5",
                  check=False).stdout
    databases = json.loads(out or "{}").get("databases") or []
    return [d for d in databases if d.get("path", "").endswith("/production.sqlite3") and d.get("last_sync_at")]
