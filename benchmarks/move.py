#!/usr/bin/env python3
"""A planned move's downtime (playbook dokku_sqlite.litestream.move) against a plain `litestream restore`.

For each size (default 4M, 256M and 1G), on a lab of two hosts:
1. a SQLite database of about that size (table `bulk`: rows of 600 random bytes plus a 200-character hex note,
   mostly incompressible) is generated on the controller and copied into a new app's storage directory on
   lab-dokku-1; provision replicates it to the lab's moto S3 (its first snapshot, not timed) and the lab's demo
   writer is deployed into the app on both hosts (it commits a row every 100 ms into the same database on
   lab-dokku-1; on lab-dokku-2 the move stops it);
2. baseline: plain `litestream restore -o FILE s3://...` of the app's replica on the controller (the venv's
   0.5.17, the lab image's binary), timed in this process;
3. the move playbook from lab-dokku-1 to lab-dokku-2 (cold: nothing on lab-dokku-2 follows the replica before the
   old host stops); its own report gives the downtime (from ps:stop on the old host to ps:start on the new one,
   the controller's clock) and each step's seconds; the RPO must be 0 transactions and 0 rows or this script
   fails.
Printed: per size the downtime, the restore step and the other steps, and each as a ratio to the plain restore of
the same database. Warm standby (a follower on the new host before the cut-over) is not built yet, so there is
no warm column.

    benchmarks/move.py [--sizes 4M,256M,1G] [--lab-up] [--lab-down] [--out FILE] [--tmp DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import _lab
from restore import generate, human, parse_size, plain_restore

DB = "production.sqlite3"
MOVE = "dokku_sqlite.litestream.move"
PROVISION = "dokku_sqlite.litestream.provision"
DEMO_IMAGE = "dsl-lab/demo-app:latest"


def apps_vars(tmp: Path, app: str, prefix: str) -> Path:
    entry = {"app": app, "create": True, "replica": {
        "type": "s3", "bucket": "{{ lab_s3_bucket }}", "path": prefix, "endpoint": "{{ lab_s3_endpoint }}",
        "region": "{{ lab_s3_region }}", "credentials": "lab-s3", "sync_interval": "1s"}}
    path = tmp / f"{app}.json"
    path.write_text(json.dumps({"litestream_apps": [entry], "litestream_first_sync_timeout": 1800}))
    return path


def one_size(lab, tmp: Path, label: str, size: int) -> dict:
    from test_replication import wait_for, writer_active  # the integration tests' own checks
    first, second = lab.hosts[0], lab.hosts[1]
    run = secrets.token_hex(3)
    app, prefix = f"bm-move-{label.lower()}-{run}", f"bench-move/{run}"
    db = tmp / DB
    _lab.log(f"{label}: generating")
    rows = generate(db, size, table="bulk")  # the demo writer adds its own `events`
    db_bytes = db.stat().st_size
    storage = f"{_lab.STORAGE_ROOT}/{app}--db"
    _lab.sh(lab, first, f"mkdir -p {storage}")
    subprocess.run(["docker", "cp", str(db), f"{first['container']}:{storage}/{DB}"], check=True, capture_output=True)
    db.unlink()
    _lab.sh(lab, first, f"chown -R 32767:32767 {storage}")
    vars_file = apps_vars(tmp, app, prefix)
    try:
        _lab.log(f"{label}: {human(db_bytes)}, {rows} rows; provision (first snapshot) and the demo writer")
        _lab.run_playbook(lab, PROVISION, "--limit", first["name"], "-e", f"@{vars_file}")
        lab.dokku(first, "git:from-image", app, DEMO_IMAGE)
        wait_for(f"the demo writer of {app}", lambda: writer_active(lab, first, app), 60)
        lab.dokku(second, "apps:create", app)
        lab.dokku(second, "git:from-image", app, DEMO_IMAGE)
        _lab.log(f"{label}: plain litestream restore")
        plain = plain_restore(lab, prefix, tmp / "plain.sqlite3", None)  # the writer's rows keep coming
        _lab.log(f"{label}: move (cold)")
        wall, _data, _proc = _lab.run_playbook(
            lab, MOVE, "-e", f"move_app={app}", "-e", f"move_from={first['name']}", "-e", f"move_to={second['name']}",
            "-e", f"@{vars_file}", "-e", f"move_report_dir={tmp}")
        report = json.loads((tmp / f"move-{app}.json").read_text())
    finally:
        for host in (first, second):
            lab.dokku(host, "--force", "apps:destroy", app, check=False)
            _lab.sh(lab, host, f"rm -rf {storage} {_lab.CONFIG_ROOT}/apps/{app}", check=False)
    if report["rpo_transactions"] != 0 or report["rpo_rows"] != 0:
        raise SystemExit(f"{label}: the move lost data: {json.dumps(report)}")
    steps = report["steps"]
    return {"size_label": label, "db_bytes": db_bytes, "rows": rows, "plain_restore_s": round(plain, 3),
            "cold": {"downtime_s": report["downtime_seconds"], "steps": steps, "playbook_wall_s": round(wall, 3),
                     "rpo_transactions": report["rpo_transactions"], "rpo_rows": report["rpo_rows"],
                     "downtime_vs_plain_restore": _lab.ratio(report["downtime_seconds"], plain),
                     "restore_step_vs_plain_restore": _lab.ratio(steps.get("restore"), plain)}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="4M,256M,1G", help="database sizes (default 4M,256M,1G)")
    parser.add_argument("--tmp", help="directory for the generated databases (default: system temp)")
    _lab.common_args(parser)
    args = parser.parse_args(argv)
    sizes = [(s.strip(), parse_size(s)) for s in args.sizes.split(",") if s.strip()]
    lab = _lab.lab_for(args, hosts=2)
    results = []
    try:
        for label, size in sizes:
            with tempfile.TemporaryDirectory(prefix="bench-move-", dir=args.tmp) as tmpdir:
                results.append(one_size(lab, Path(tmpdir), label, size))
    finally:
        if args.lab_down:
            _lab.lab_down()
    rows_out = []
    for e in results:
        cold, plain = e["cold"], e["plain_restore_s"]
        others = round(cold["downtime_s"] - cold["steps"].get("restore", 0), 3)
        rows_out.append([e["size_label"], human(e["db_bytes"]), plain, cold["downtime_s"], cold["steps"].get("restore"),
                         others, cold["downtime_vs_plain_restore"], cold["restore_step_vs_plain_restore"]])
    print("Planned move, cold (seconds; ratios to a plain `litestream restore` of the same replica, same process):")
    print(_lab.table(["size", "db", "plain restore", "downtime", "restore step", "other steps", "downtime x plain",
                      "restore x plain"], rows_out))
    print("warm standby: not built yet (no follower before the cut-over), so no warm figures")
    print(f"load average (1 min): {_lab.LOAD_AT_START[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    path = _lab.write_json("move", {"sizes": [s for s, _ in sizes], "results": results}, args.out)
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
