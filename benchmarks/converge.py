#!/usr/bin/env python3
"""Converge cost against app count: the provision playbook vs a naive one-command-per-step playbook.

For each app count N (default 1, 10, 50) on ONE lab host, and for each of two playbooks
  ours      dokku_sqlite.litestream.provision (one litestream_host run per host)
  baseline  benchmarks/baseline/provision-naive.yml (ansible.builtin.command per dokku/docker step,
            ansible.builtin.copy for credentials.env and litestream.yml, same sidecar image and flags)
the host is cleaned (sidecars, bench-* apps, storage and config removed), then the playbook runs
twice against an inventory of N apps `bench-001..` (create: true, S3 replica on the lab's moto):
a first run (everything created) and a no-change run. Per run it records
  wall       seconds of the ansible-playbook process (same machine, same process, same lab)
  tasks      tasks that ran at least one item; module runs = loop items run on the host (not skipped;
             include_role and argument_specs validation, which run on the controller, left out)
  dokku      calls of the Dokku stand-in, from /var/log/dokku-lab/calls.jsonl on the host (offsets)
  docker     docker CLI calls, from a counting wrapper put first on the host's PATH
             (/usr/local/bin/docker -> /usr/bin/docker); calls whose parent is the Dokku stand-in are
             counted apart (docker_via_dokku). The modules' own `commands` lists are kept as a
             cross-check (module_commands): they must agree with the wrapper for our playbook.
  changed    changed items (the no-change run must report 0 for both playbooks)
and prints ours/baseline ratios. The floor, `ping`, is benchmarks/baseline/ping.yml (one ansible.builtin.ping
per host, the median of three runs per N, same inventory and process): ours/ping is issue #13's measure. The demo writer is not deployed: the sidecars idle, waiting for
their database, which is what a converge touches anyway. Run order per N: ours, then baseline.

    benchmarks/converge.py [--apps 1,10,50] [--baseline-up-to N] [--lab-up] [--lab-down] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import _lab

PROVISION = "dokku_sqlite.litestream.provision"
BASELINE = str(_lab.HERE / "baseline" / "provision-naive.yml")
PING = str(_lab.HERE / "baseline" / "ping.yml")
PLAYBOOKS = {"ours": PROVISION, "baseline": BASELINE}
PING_RUNS = 3  # the floor is short and noisy: its median of three
def inventory_vars(n: int, variant: str) -> dict:
    """litestream_apps for N apps, each replicating to its own prefix on moto (as the lab's shop-N)."""
    return {
        "dokku_litestream_hosts": "lab-dokku-1",
        "litestream_image": "{{ lab_litestream_image }}",
        "litestream_credential_sets": [{
            "name": "bench-s3",
            "access_key_id": "{{ (lookup('ansible.builtin.file', lab_s3_credentials_file) | from_json).access_key_id }}",
            "secret_access_key":
                "{{ (lookup('ansible.builtin.file', lab_s3_credentials_file) | from_json).secret_access_key }}",
        }],
        "litestream_apps": [{
            "app": f"bench-{i:03d}", "create": True,
            "replica": {"type": "s3", "bucket": "{{ lab_s3_bucket }}", "path": f"bench-converge/{variant}/bench-{i:03d}",
                        "endpoint": "{{ lab_s3_endpoint }}", "region": "{{ lab_s3_region }}",
                        "credentials": "bench-s3", "sync_interval": "1s"},
        } for i in range(1, n + 1)],
    }


def clean(lab, host, check=True) -> None:
    """No bench-* app, sidecar, storage or config left, nor the bench-s3 credential set: the next run is a
    first run. Other apps on the host are left alone."""
    _lab.clean_apps(lab, host, "bench-", check=check)
    _lab.sh(lab, host, f"rm -rf {_lab.CONFIG_ROOT}/credentials/bench-s3", check=check)


def running_sidecars(lab, host) -> int:
    out = _lab.sh(lab, host, "/usr/bin/docker ps -q --filter name=dokku.litestream.bench- --filter status=running | wc -l")
    return int(out.stdout.strip() or 0)


def one_run(lab, host, playbook: str, vars_file: Path) -> dict:
    counter = _lab.CallCounter(lab, host)
    wall, data, _proc = _lab.run_playbook(lab, playbook, "-e", f"@{vars_file}")
    figures = {"wall_s": round(wall, 3), **_lab.task_stats(data), **counter.read()}
    return figures


def measure(lab, host, n: int, variant: str, tmp: Path) -> dict:
    clean(lab, host)
    vars_file = tmp / f"vars-{variant}-{n}.json"
    vars_file.write_text(json.dumps(inventory_vars(n, variant)))
    result = {}
    for run in ("first", "no_change"):
        _lab.log(f"{n} app(s), {variant}: {run} run")
        figures = one_run(lab, host, PLAYBOOKS[variant], vars_file)
        figures["sidecars_running"] = running_sidecars(lab, host)
        if figures["sidecars_running"] != n:
            raise SystemExit(f"{variant} {run} run with {n} apps left {figures['sidecars_running']} sidecars running")
        result[run] = figures
    if result["no_change"]["changed_items"]:
        _lab.log(f"WARNING: {variant} no-change run changed {result['no_change']['changed_items']} item(s)")
    return result


def ping_floor(lab, vars_file: Path) -> dict:
    walls = sorted(_lab.run_playbook(lab, PING, "-e", f"@{vars_file}")[0] for _ in range(PING_RUNS))
    return {"wall_s": round(walls[len(walls) // 2], 3), "runs": [round(w, 3) for w in walls]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", default="1,10,50", help="comma-separated app counts (default 1,10,50)")
    parser.add_argument("--baseline-up-to", type=int, default=None,
                        help="run the naive baseline only for app counts up to this (it takes minutes per 10 apps)")
    _lab.common_args(parser)
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.apps.split(",") if x.strip()]
    lab = _lab.lab_for(args, hosts=1)
    host = lab.hosts[0]
    _lab.install_docker_wrapper(lab, host)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-converge-") as tmp:
            for n in counts:
                entry = {"apps": n}
                variants = ("ours", "baseline") if args.baseline_up_to is None or n <= args.baseline_up_to else ("ours",)
                for variant in variants:
                    entry[variant] = measure(lab, host, n, variant, Path(tmp))
                entry["ping"] = ping_floor(lab, Path(tmp) / f"vars-ours-{n}.json")
                results.append(entry)
                # after each app count, so an interrupted run keeps what it measured
                _lab.write_json("converge", {"apps": counts, "partial": True, "results": results}, args.out)
    finally:
        clean(lab, host, check=False)
        _lab.remove_docker_wrapper(lab, host)
        if args.lab_down:
            _lab.lab_down()

    rows, ratio_rows = [], []
    for entry in results:
        n = entry["apps"]
        for run in ("first", "no_change"):
            o, b = entry["ours"][run], entry.get("baseline", {}).get(run)
            for name, fig in (("ours", o), ("baseline", b)):
                if fig:
                    rows.append([n, run, name, fig["wall_s"], fig["tasks"], fig["host_invocations"], fig["changed_items"],
                                 fig["dokku"] / n, fig["docker"] / n, fig["docker_via_dokku"]])
            r = {k: _lab.ratio(o[k], b[k]) if b else None for k in ("wall_s", "dokku", "docker", "tasks", "host_invocations")}
            r["wall_vs_ping"] = _lab.ratio(o["wall_s"], entry["ping"]["wall_s"])
            entry.setdefault("ratios", {})[run] = r
            ratio_rows.append([n, run, r["wall_vs_ping"], r["wall_s"], r["dokku"], r["docker"], r["tasks"],
                               r["host_invocations"]])
        rows.append([n, "-", "ping (floor)", entry["ping"]["wall_s"], 1, 1, 0, 0, 0, 0])
        mismatch = entry["ours"]["first"]["module_commands"]["docker"] != entry["ours"]["first"]["docker"]
        entry["ours_docker_wrapper_matches_module_commands"] = not mismatch
    print("Converge cost per run (dokku/docker calls per app):")
    print(_lab.table(["apps", "run", "playbook", "wall s", "tasks", "module runs", "changed", "dokku/app",
                      "docker/app", "docker via dokku"], rows))
    print("\nRatios: ours / ping, and ours / baseline (lower is better; - where the baseline did not run):")
    print(_lab.table(["apps", "run", "wall / ping", "wall", "dokku calls", "docker calls", "tasks", "module runs"],
                     ratio_rows))
    path = _lab.write_json("converge", {"apps": counts, "results": results}, args.out)
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
