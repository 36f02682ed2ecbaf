#!/usr/bin/env python3
"""Health-check cost for N apps (default 10) on one lab host, against the ping floor (issue #14).

N apps `health-01..` are provisioned (odd ones on moto S3, even ones on a file replica) and run the
lab's demo writer for --settle seconds, then the writers stop (the sidecars go on), so every database
exists and its replica is current. Then, alternating, --repeat times each:
  ping     benchmarks/baseline/ping.yml (one ansible.builtin.ping per host): the floor;
  health   dokku_sqlite.litestream.health for the host: one litestream_health run (one docker inspect, one
           docker exec per app, 4 at once), then the JSON/JUnit report on the controller.
Reported: the medians of the playbook wall times, the litestream_health module's own `duration`, and
health / ping (issue #14's target: at most 1.5 for 10 apps). Every database must be ok.

    benchmarks/health.py [--apps 10] [--settle 10] [--repeat 3] [--lab-up] [--lab-down] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _lab

HEALTH = "dokku_sqlite.litestream.health"
PING = str(_lab.HERE / "baseline" / "ping.yml")


def module_seconds(data: dict) -> float:
    """The litestream_health run's own `duration` (in its summary) from the playbook's record."""
    def has(result):
        summary = result.get("summary")
        return summary.get("duration") if isinstance(result.get("results"), list) and isinstance(summary, dict) else None
    return _lab.module_duration(data, "litestream_health", has)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, default=10, help="number of apps (default 10)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of writing first (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each playbook, alternating (default 3)")
    parser.add_argument("--parallel", type=int, default=None, help="health_parallel (default: the role's, 4)")
    _lab.common_args(parser)
    args = parser.parse_args(argv)
    lab = _lab.lab_for(args, hosts=1)
    host = lab.hosts[0]
    run_id = time.strftime("%H%M%S")
    ping_walls, health_walls, module_walls, phases = [], [], [], []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-health-") as tmpdir:
            tmp = Path(tmpdir)
            vars_file = tmp / "vars.json"
            data = _lab.mixed_apps_vars("health", args.apps, run_id)
            vars_file.write_text(json.dumps(data))
            apps = [a["app"] for a in data["litestream_apps"]]
            _lab.clean_apps(lab, host, "health-")
            _lab.provision_with_writers(lab, host, vars_file, apps)
            time.sleep(args.settle)
            for app in apps:
                lab.dokku(host, "ps:stop", app)
            time.sleep(3)  # the sidecars' last sync of what the writers committed
            extra = tmp / "health.json"
            extra_vars = {"health_report_dir": str(tmp / "reports")}
            if args.parallel:
                extra_vars["health_parallel"] = args.parallel
            extra.write_text(json.dumps(extra_vars))
            for round_no in range(args.repeat):
                _lab.log(f"round {round_no + 1}: ping, then health")
                wall, _data, _proc = _lab.run_playbook(lab, PING, "-e", f"@{vars_file}", "--limit", host["name"])
                ping_walls.append(wall)
                wall, record, _proc = _lab.run_playbook(lab, HEALTH, "-e", f"@{vars_file}", "-e", f"@{extra}",
                                                        "--limit", host["name"])
                health_walls.append(wall)
                module_walls.append(module_seconds(record))
                phases.append(_lab.task_seconds(record))
            report = json.loads((tmp / "reports" / "health-report.json").read_text())
    finally:
        _lab.clean_apps(lab, host, "health-", check=False)
        if args.lab_down:
            _lab.lab_down()

    ping, health, module = (statistics.median(w) for w in (ping_walls, health_walls, module_walls))
    figures = {"apps": args.apps, "repeat": args.repeat, "ping_wall_s": ping_walls, "health_wall_s": health_walls,
               "health_module_s": module_walls, "ping_median_s": round(ping, 3), "health_median_s": round(health, 3),
               "module_median_s": round(module, 3), "health_vs_ping": round(health / ping, 3),
               "module_vs_ping": round(module / ping, 3), "summary": report.get("summary"),
               "parallel": args.parallel, "health_phases_s": phases}
    print(f"Health check of {args.apps} apps on one host, medians of {args.repeat} (seconds):")
    print(_lab.table(["ping playbook", "health playbook", "litestream_health module", "health / ping",
                      "module / ping"],
                     [[figures["ping_median_s"], figures["health_median_s"], figures["module_median_s"],
                       figures["health_vs_ping"], figures["module_vs_ping"]]]))
    names = list(dict.fromkeys(name for run in phases for name in run))
    print("\nWhere a health run's time goes (medians, seconds; start-up: process start to the play's first task):")
    print(_lab.table(["phase", "seconds"], [[name, round(statistics.median(run.get(name, 0) for run in phases), 3)]
                                            for name in names]))
    path = _lab.write_json("health", figures, args.out)
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
