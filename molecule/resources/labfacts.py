"""Shared by the molecule scenarios' testinfra tests: the lab's facts and plain-Litestream restores.

The lab (tests/lab/lab.py) writes lab.json into its state dir; the scenario's molecule.yml sets
DSL_LAB_NAME, and MOLECULE_PROJECT_DIRECTORY is the repository root.
"""
import json
import os
import shlex
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY") or Path(__file__).resolve().parents[2])
LAB_NAME = os.environ["DSL_LAB_NAME"]
STATE = REPO / f".lab-{LAB_NAME}"
STORAGE = "/var/lib/dokku/data/storage"
CONFIG = "/var/lib/dokku/config/litestream"
DB_NAME = "production.sqlite3"
LITESTREAM = str(Path(sys.executable).parent / "litestream")


def facts():
    return json.loads((STATE / "lab.json").read_text())


def live_rows(host, app):
    """[(id, committed_at)] of the app's live database, read-only on the host."""
    code = ("import json,sqlite3,sys\n"
            "c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True,timeout=10)\n"
            "print(json.dumps(c.execute('select id, committed_at from events order by id').fetchall()))\n")
    out = host.check_output(f"python3 -c {shlex.quote(code)} {STORAGE}/{app}--db/{DB_NAME}")
    return [tuple(r) for r in json.loads(out)]


def restore_from_s3(path, app, out):
    """Restore <bucket>/<path>/<app>/<db> from the lab's S3 with the plain binary on the controller."""
    lab = facts()
    s3 = lab["s3"]
    creds = json.loads((STATE / "s3-credentials.json").read_text())
    env = dict(os.environ, LITESTREAM_ACCESS_KEY_ID=creds["access_key_id"],
               LITESTREAM_SECRET_ACCESS_KEY=creds["secret_access_key"])
    env.pop("AWS_CA_BUNDLE", None)  # breaks every Litestream 0.5 S3 client
    url = f"s3://{s3['bucket']}/{path}/{app}/{DB_NAME}?endpoint={s3['endpoint']}&region={s3['region']}"
    proc = subprocess.run([LITESTREAM, "restore", "-o", str(out), url],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, f"litestream restore {url}: rc={proc.returncode}\n{proc.stderr}"
    conn = sqlite3.connect(out)
    try:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        return [tuple(r) for r in conn.execute("select id, committed_at from events order by id")]
    finally:
        conn.close()


def wait_for(what, predicate, timeout=60, interval=1.0):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.time() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)
