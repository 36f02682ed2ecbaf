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
3. the move playbook from lab-dokku-1 to lab-dokku-2, for each cut-over on an app of its own holding the same
   database:
   - cold: nothing on lab-dokku-2 follows the replica before the old host stops; it restores after the stop;
   - warm (move_warm=true): lab-dokku-2 follows the replica (litestream_standby, Litestream's follow mode) from
     before the stop, and the cut-over puts the followed database in place at the final TXID.
   The move's own report gives the downtime (from ps:stop on the old host to ps:start on the new one, the
   controller's clock) and each step's seconds; the RPO must be 0 transactions and 0 rows, and the report's
   cut_over the one asked for, or this script fails.
Printed: per size and cut-over the downtime, the restore step and the other steps, and each as a ratio to the
plain restore of the same database.

    benchmarks/move.py [--sizes 4M,256M,1G] [--modes cold,warm] [--lab-up] [--lab-down] [--out FILE] [--tmp DIR]
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


def one_move(lab, tmp: Path, label: str, db: Path, mode: str, with_plain: bool) -> dict:
    """A new app on lab-dokku-1 holding `db`, replicated and written to, moved to lab-dokku-2 (mode cold or warm);
    the plain restore of its replica first when `with_plain`."""
    from test_replication import wait_for, writer_active  # the integration tests' own checks
    first, second = lab.hosts[0], lab.hosts[1]
    run = secrets.token_hex(3)
    app, prefix = f"bm-move-{label.lower()}-{mode}-{run}", f"bench-move/{run}"
    storage = f"{_lab.STORAGE_ROOT}/{app}--db"
    _lab.sh(lab, first, f"mkdir -p {storage}")
    subprocess.run(["docker", "cp", str(db), f"{first['container']}:{storage}/{DB}"], check=True, capture_output=True)
    _lab.sh(lab, first, f"chown -R 32767:32767 {storage}")
    vars_file = apps_vars(tmp, app, prefix)
    plain = None
    try:
        _lab.log(f"{label} {mode}: provision (first snapshot) and the demo writer")
        _lab.run_playbook(lab, PROVISION, "--limit", first["name"], "-e", f"@{vars_file}")
        lab.dokku(first, "git:from-image", app, DEMO_IMAGE)
        wait_for(f"the demo writer of {app}", lambda: writer_active(lab, first, app), 60)
        lab.dokku(second, "apps:create", app)
        lab.dokku(second, "git:from-image", app, DEMO_IMAGE)
        if with_plain:
            _lab.log(f"{label}: plain litestream restore")
            plain = plain_restore(lab, prefix, tmp / "plain.sqlite3", None)  # the writer's rows keep coming
        _lab.log(f"{label}: move ({mode})")
        wall, _data, _proc = _lab.run_playbook(
            lab, MOVE, "-e", f"move_app={app}", "-e", f"move_from={first['name']}", "-e", f"move_to={second['name']}",
            "-e", f"@{vars_file}", "-e", f"move_report_dir={tmp}", "-e", f"move_warm={str(mode == 'warm').lower()}")
        report = json.loads((tmp / f"move-{app}.json").read_text())
    finally:
        for host in (first, second):
            lab.dokku(host, "--force", "apps:destroy", app, check=False)
            _lab.sh(lab, host, f"rm -rf {storage} {_lab.CONFIG_ROOT}/apps/{app}", check=False)
    if report["rpo_transactions"] != 0 or report["rpo_rows"] != 0 or report.get("cut_over") != mode:
        raise SystemExit(f"{label} {mode}: the move lost data or did not cut over {mode}: {json.dumps(report)}")
    return {"downtime_s": report["downtime_seconds"], "steps": report["steps"], "playbook_wall_s": round(wall, 3),
            "rpo_transactions": report["rpo_transactions"], "rpo_rows": report["rpo_rows"], "plain": plain}


def one_size(lab, tmp: Path, label: str, size: int, modes) -> dict:
    db = tmp / "generated" / DB
    db.parent.mkdir()
    _lab.log(f"{label}: generating")
    rows = generate(db, size, table="bulk")  # the demo writer adds its own `events`
    db_bytes = db.stat().st_size
    _lab.log(f"{label}: {human(db_bytes)}, {rows} rows")
    entry = {"size_label": label, "db_bytes": db_bytes, "rows": rows}
    for index, mode in enumerate(modes):
        moved = one_move(lab, tmp, label, db, mode, with_plain=index == 0)
        plain = moved.pop("plain")
        if plain is not None:
            entry["plain_restore_s"] = round(plain, 3)
        entry[mode] = moved
    for mode in modes:
        moved = entry[mode]
        moved["downtime_vs_plain_restore"] = _lab.ratio(moved["downtime_s"], entry["plain_restore_s"])
        moved["restore_step_vs_plain_restore"] = _lab.ratio(moved["steps"].get("restore"), entry["plain_restore_s"])
    return entry


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="4M,256M,1G", help="database sizes (default 4M,256M,1G)")
    parser.add_argument("--modes", default="cold,warm", help="cut-overs to measure (default cold,warm)")
    parser.add_argument("--tmp", help="directory for the generated databases (default: system temp)")
    _lab.common_args(parser)
    args = parser.parse_args(argv)
    sizes = [(s.strip(), parse_size(s)) for s in args.sizes.split(",") if s.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"cold", "warm"}:
        parser.error("--modes: cold, warm or both")
    lab = _lab.lab_for(args, hosts=2)
    results = []
    try:
        for label, size in sizes:
            with tempfile.TemporaryDirectory(prefix="bench-move-", dir=args.tmp) as tmpdir:
                results.append(one_size(lab, Path(tmpdir), label, size, modes))
    finally:
        if args.lab_down:
            _lab.lab_down()
    rows_out = []
    for e in results:
        for mode in modes:
            moved, plain = e[mode], e["plain_restore_s"]
            others = round(moved["downtime_s"] - moved["steps"].get("restore", 0), 3)
            rows_out.append([e["size_label"], mode, human(e["db_bytes"]), plain, moved["downtime_s"],
                             moved["steps"].get("restore"), others, moved["downtime_vs_plain_restore"],
                             moved["restore_step_vs_plain_restore"]])
    print("Planned move, cold and warm (seconds; ratios to a plain `litestream restore` of the same replica, same "
          "process):")
    print(_lab.table(["size", "cut-over", "db", "plain restore", "downtime", "restore step", "other steps",
                      "downtime x plain", "restore x plain"], rows_out))
    print(f"load average (1 min): {_lab.LOAD_AT_START[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    path = _lab.write_json("move", {"sizes": [s for s, _ in sizes], "modes": modes, "results": results}, args.out)
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
