#!/usr/bin/env python3
"""Restore-drill time for N apps (default 10) on one lab host.

N apps `drill-01..` are provisioned by the provision playbook (odd ones replicating to moto S3, even
ones to a file replica, default settings) and run the lab's demo writer (a row every 100 ms), so
the replicas are live. After --settle seconds the writers are stopped (`dokku ps:stop`; the sidecars
go on), so both drills below restore the same replicas, and the drill playbook
(dokku_sqlite.litestream.drill) runs twice for the host, restoring on the same host:
  single    restore_drill_parallel: 1 - one app after the other: each app's restore alone;
  parallel  restore_drill_parallel: --parallel (default 4) - the drill as it ships.
Reported, per run: the playbook's wall time (ansible-playbook process: start-up, the live reads, the
drills, the report), per app `duration` from drill-report.json (dry run, restore, verification) with
p50 / max and their sum, and every app's status (each must pass, or the benchmark fails). Issue #13's
measures, from the two runs of the same process:
  bound     max(1.5 x the slowest single restore, 1.1 x sum of single restores / CPU cores);
            the parallel drill's wall time against it;
  outside   (single wall - sum of single restores) / apps: seconds per app spent outside restores.

    benchmarks/drill.py [--apps 10] [--settle 20] [--parallel 4] [--lab-up] [--lab-down] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import _lab

DRILL = "dokku_sqlite.litestream.drill"


def drill_module_seconds(data: dict) -> float:
    """The litestream_drill run's own `duration` (the drills, not ansible-playbook's start-up or the report)."""
    return _lab.module_duration(data, "litestream_drill", lambda r: r.get("duration") if isinstance(
        r.get("results"), list) and isinstance(r.get("summary"), dict) else None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, default=10, help="number of apps (default 10)")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds of writing before the drill (default 20)")
    parser.add_argument("--parallel", type=int, default=4, help="restore_drill_parallel of the shipped drill (default 4)")
    _lab.common_args(parser)
    args = parser.parse_args(argv)
    lab = _lab.lab_for(args, hosts=1)
    host = lab.hosts[0]
    run_id = time.strftime("%H%M%S")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-drill-") as tmpdir:
            tmp = Path(tmpdir)
            vars_file = tmp / "vars.json"
            data = _lab.mixed_apps_vars("drill", args.apps, run_id)
            vars_file.write_text(json.dumps(data))
            apps = [a["app"] for a in data["litestream_apps"]]
            _lab.clean_apps(lab, host, "drill-")
            _lab.provision_with_writers(lab, host, vars_file, apps)
            time.sleep(args.settle)
            for app in apps:
                lab.dokku(host, "ps:stop", app)
            runs = {}
            for label, parallel in (("single", 1), ("parallel", args.parallel)):
                report_dir = tmp / f"reports-{label}"
                extra = tmp / f"drill-{label}.json"
                extra.write_text(json.dumps({"restore_drill_report_dir": str(report_dir),
                                             "restore_drill_parallel": parallel}))
                _lab.log(f"drilling, {parallel} at a time")
                wall, data, _proc = _lab.run_playbook(lab, DRILL, "-e", f"@{vars_file}", "-e", f"@{extra}",
                                                      "--limit", host["name"])
                runs[label] = (wall, drill_module_seconds(data),
                               json.loads((report_dir / "drill-report.json").read_text()))
    finally:
        _lab.clean_apps(lab, host, "drill-", check=False)
        if args.lab_down:
            _lab.lab_down()

    figures = {"apps": args.apps, "parallel": args.parallel, "cpu_cores": os.cpu_count()}
    for label, (wall, module_s, report) in runs.items():
        results = report["results"]
        bad = [r for r in results if r.get("status") != "ok"]
        if bad or len(results) != args.apps:
            raise SystemExit(f"the {label} drill did not pass for every app: {len(results)} results, failed: "
                             f"{[(r.get('app'), r.get('message')) for r in bad]}")
        durations = [float(r["duration"]) for r in results]
        figures[label] = {
            "wall_s": round(wall, 3), "module_s": module_s, "sum_durations_s": round(sum(durations), 3),
            "per_app_p50_s": _lab.percentile(durations, 50), "per_app_max_s": max(durations),
            "summary": report.get("summary"),
            "per_app": [{"app": r["app"], "duration_s": float(r["duration"]), "rows": r.get("rows"),
                         "lag_seconds": r.get("lag_seconds"), "replica": r.get("replica")} for r in results]}
    single, parallel = figures["single"], figures["parallel"]
    bound = max(1.5 * single["per_app_max_s"], 1.1 * single["sum_durations_s"] / figures["cpu_cores"])
    figures["bound_s"] = round(bound, 3)
    figures["parallel_vs_bound"] = round(parallel["module_s"] / bound, 3)
    figures["parallel_wall_vs_bound"] = round(parallel["wall_s"] / bound, 3)
    figures["outside_restores_per_app_s"] = round((single["wall_s"] - single["sum_durations_s"]) / args.apps, 3)
    figures["module_outside_restores_per_app_s"] = round(
        (single["module_s"] - single["sum_durations_s"]) / args.apps, 3)
    print(f"Restore drill of {args.apps} apps on one host (seconds; {figures['cpu_cores']} CPU cores):")
    print(_lab.table(["run", "playbook wall", "drill module", "sum of restores", "restore p50", "restore max"],
                     [[label, figures[label]["wall_s"], figures[label]["module_s"], figures[label]["sum_durations_s"],
                       figures[label]["per_app_p50_s"], figures[label]["per_app_max_s"]] for label in runs]))
    print()
    print(f"bound max(1.5 x slowest single, 1.1 x sum / cores) = {figures['bound_s']} s; parallel drill module / "
          f"bound = {figures['parallel_vs_bound']} (target <= 1); whole playbook / bound = "
          f"{figures['parallel_wall_vs_bound']}")
    print(f"outside the restores, per app: {figures['outside_restores_per_app_s']} s in the whole playbook, "
          f"{figures['module_outside_restores_per_app_s']} s in the drill module (target <= 1)")
    print()
    print(_lab.table(["app", "replica", "single s", "parallel s", "rows", "lag s"],
                     [[p["app"], (p["replica"] or "").split(" ")[0], p["duration_s"], q["duration_s"], p["rows"],
                       p["lag_seconds"]] for p, q in zip(single["per_app"], parallel["per_app"])]))
    path = _lab.write_json("drill", figures, args.out)
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
