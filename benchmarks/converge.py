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

With --hosts N every run converges N lab hosts, each with the same apps (their replicas under a prefix per
host), and the calls are counted on every host. --plot FILE.png writes the scaling figure (wall seconds against
apps per host, log-log: ours and the naive playbook, first and no-change runs, and the ping floor; runs on
several hosts as separate markers) and the markdown table beside it (FILE.md, also in the JSON);
--include FILE.json adds an earlier run's results (e.g. the --hosts 4 run) to that table and figure.

    benchmarks/converge.py [--apps 1,10,50] [--hosts N] [--baseline-up-to N] [--plot FILE.png] [--include FILE.json]
                           [--lab-up] [--lab-down] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import _lab

PROVISION = "dokku_sqlite.litestream.provision"
BASELINE = str(_lab.HERE / "baseline" / "provision-naive.yml")
PING = str(_lab.HERE / "baseline" / "ping.yml")
PLAYBOOKS = {"ours": PROVISION, "baseline": BASELINE}
PING_RUNS = 3  # the floor is short and noisy: its median of three
def inventory_vars(n: int, variant: str, hosts: list[str]) -> dict:
    """litestream_apps for N apps on each host, each replicating to its own prefix on moto (as the lab's shop-N);
    the host's name in the prefix, since one replica location written from two hosts is refused."""
    return {
        "dokku_litestream_hosts": ":".join(hosts),
        "litestream_image": "{{ lab_litestream_image }}",
        "litestream_credential_sets": [{
            "name": "bench-s3",
            "access_key_id": "{{ (lookup('ansible.builtin.file', lab_s3_credentials_file) | from_json).access_key_id }}",
            "secret_access_key":
                "{{ (lookup('ansible.builtin.file', lab_s3_credentials_file) | from_json).secret_access_key }}",
        }],
        "litestream_apps": [{
            "app": f"bench-{i:03d}", "create": True,
            "replica": {"type": "s3", "bucket": "{{ lab_s3_bucket }}",
                        "path": "bench-converge/%s/{{ inventory_hostname }}/bench-%03d" % (variant, i),
                        "endpoint": "{{ lab_s3_endpoint }}", "region": "{{ lab_s3_region }}",
                        "credentials": "bench-s3", "sync_interval": "1s"},
        } for i in range(1, n + 1)],
    }


def clean(lab, hosts, check=True) -> None:
    """No bench-* app, sidecar, storage or config left, nor the bench-s3 credential set: the next run is a
    first run. Other apps on the hosts are left alone."""
    for host in hosts:
        _lab.clean_apps(lab, host, "bench-", check=check)
        _lab.sh(lab, host, f"rm -rf {_lab.CONFIG_ROOT}/credentials/bench-s3", check=check)


def running_sidecars(lab, host) -> int:
    out = _lab.sh(lab, host, "/usr/bin/docker ps -q --filter name=dokku.litestream.bench- --filter status=running | wc -l")
    return int(out.stdout.strip() or 0)


def one_run(lab, hosts, playbook: str, vars_file: Path) -> dict:
    counters = [_lab.CallCounter(lab, host) for host in hosts]
    wall, data, _proc = _lab.run_playbook(lab, playbook, "-e", f"@{vars_file}")
    calls = [counter.read() for counter in counters]
    figures = {"wall_s": round(wall, 3), **_lab.task_stats(data), "module_s": module_seconds(data)}
    for key in ("dokku", "docker", "docker_via_dokku"):  # every host's calls together
        figures[key] = sum(c[key] for c in calls)
    figures["dokku_by_command"] = {}
    for c in calls:
        for command, count in c["dokku_by_command"].items():
            figures["dokku_by_command"][command] = figures["dokku_by_command"].get(command, 0) + count
    return figures


def module_seconds(data: dict) -> dict:
    """litestream_host's own `duration` per host (from its first read to its last write, on the host): what the
    wall time holds besides Ansible's start-up, ssh and the module's transfer."""
    return {host: result["duration"] for play in data.get("plays", []) for task in play["tasks"]
            for host, result in task["hosts"].items() if isinstance(result.get("apps"), list) and "duration" in result}


def measure(lab, hosts, n: int, variant: str, tmp: Path) -> dict:
    clean(lab, hosts)
    vars_file = tmp / f"vars-{variant}-{n}.json"
    vars_file.write_text(json.dumps(inventory_vars(n, variant, [h["name"] for h in hosts])))
    result = {}
    for run in ("first", "no_change"):
        _lab.log(f"{len(hosts)} host(s) x {n} app(s), {variant}: {run} run")
        figures = one_run(lab, hosts, PLAYBOOKS[variant], vars_file)
        figures["sidecars_running"] = sum(running_sidecars(lab, host) for host in hosts)
        if figures["sidecars_running"] != n * len(hosts):
            raise SystemExit(f"{variant} {run} run with {len(hosts)} x {n} apps left {figures['sidecars_running']} "
                             "sidecars running")
        result[run] = figures
    if result["no_change"]["changed_items"]:
        _lab.log(f"WARNING: {variant} no-change run changed {result['no_change']['changed_items']} item(s)")
    return result


def ping_floor(lab, vars_file: Path) -> dict:
    walls = sorted(_lab.run_playbook(lab, PING, "-e", f"@{vars_file}")[0] for _ in range(PING_RUNS))
    return {"wall_s": round(walls[len(walls) // 2], 3), "runs": [round(w, 3) for w in walls]}


# --------------------------------------------------------------------------- the scaling table and figure
RUNS = (("first", "first"), ("no_change", "no change"))


def wall(entry: dict, variant: str, run: str) -> float | None:
    return ((entry.get(variant) or {}).get(run) or {}).get("wall_s")


def scaling_table(entries: list[dict]) -> str:
    """Markdown: per host count and app count, wall seconds of ours, the naive playbook ("not run" when
    --baseline-up-to skipped it) and the ping floor, and the ratios issue #13 sets targets for."""
    rows = []
    for entry in sorted(entries, key=lambda e: (e.get("hosts", 1), e["apps"])):
        ping = entry["ping"]["wall_s"]
        for run, label in RUNS:
            ours, naive = wall(entry, "ours", run), wall(entry, "baseline", run)
            rows.append([entry.get("hosts", 1), entry["apps"], label, ours, "not run" if naive is None else naive, ping,
                         _lab.ratio(ours, ping), "not run" if naive is None else _lab.ratio(ours, naive),
                         (entry["ours"][run]["dokku"] / (entry["apps"] * entry.get("hosts", 1))),
                         entry["ours"][run]["docker"] / entry.get("hosts", 1)])
    return _lab.table(["hosts", "apps per host", "run", "ours s", "naive s", "ping s", "ours / ping", "ours / naive",
                       "ours dokku calls per app", "ours docker calls per host"], rows)


def plot(entries: list[dict], path: Path, title: str) -> None:
    """Wall seconds against apps per host, log-log: ours and the naive playbook (first and no-change runs) and
    the ping floor on one host as lines; runs on several hosts as separate markers at their apps per host."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [("ours", "first", "ours, first run", "tab:blue", "-"),
              ("ours", "no_change", "ours, no-change run", "tab:blue", "--"),
              ("baseline", "first", "naive playbook, first run", "tab:red", "-"),
              ("baseline", "no_change", "naive playbook, no-change run", "tab:red", "--"),
              ("ping", None, "ansible.builtin.ping (floor)", "tab:gray", ":")]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    single = sorted((e for e in entries if e.get("hosts", 1) == 1), key=lambda e: e["apps"])
    for variant, run, label, color, style in series:
        points = [(e["apps"], e["ping"]["wall_s"] if variant == "ping" else wall(e, variant, run)) for e in single]
        points = [(x, y) for x, y in points if y is not None]
        if points:
            ax.plot(*zip(*points), style, marker="o", color=color, label=label + " (1 host)")
    for entry in (e for e in entries if e.get("hosts", 1) > 1):
        hosts = entry["hosts"]
        for variant, run, label, color, _style in series:
            y = entry["ping"]["wall_s"] if variant == "ping" else wall(entry, variant, run)
            if y is not None:
                ax.scatter([entry["apps"]], [y], marker="*" if run != "no_change" else "X", s=140, color=color,
                           edgecolors="black", zorder=5)
        ax.annotate(f"{hosts} hosts x {entry['apps']} apps", (entry["apps"], wall(entry, "ours", "first")),
                    textcoords="offset points", xytext=(8, -4), fontsize=8)
    if any(e.get("hosts", 1) > 1 for e in entries):
        ax.scatter([], [], marker="*", s=140, color="white", edgecolors="black", label="several hosts, first run")
        ax.scatter([], [], marker="X", s=140, color="white", edgecolors="black", label="several hosts, no-change run")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("apps per host")
    ax.set_ylabel("wall seconds of the ansible-playbook run")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", default="1,10,50", help="comma-separated app counts per host (default 1,10,50)")
    parser.add_argument("--hosts", type=int, default=1,
                        help="lab hosts converged in each run, each with the same apps (default 1; the lab must have "
                             "as many: tests/lab/lab.py up --hosts N, or --lab-up)")
    parser.add_argument("--baseline-up-to", type=int, default=None,
                        help="run the naive baseline only for app counts up to this (it takes minutes per 10 apps); "
                             "the table says 'not run' for the others")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="write the scaling figure (matplotlib) here, and its table beside it as FILE.md")
    parser.add_argument("--include", metavar="FILE.json", action="append", default=[],
                        help="also tabulate and plot the results of an earlier run (e.g. --hosts 4), repeatable")
    _lab.common_args(parser)
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.apps.split(",") if x.strip()]
    if args.hosts < 1:
        parser.error("--hosts must be 1 or more")
    lab = _lab.lab_for(args, hosts=args.hosts)
    hosts = lab.hosts[:args.hosts]
    for host in hosts:
        _lab.install_docker_wrapper(lab, host)
    results = []
    meta = {"apps": counts, "hosts": args.hosts, "host_names": [h["name"] for h in hosts],
            "dokku_versions": [h.get("dokku_version") for h in hosts], "baseline_up_to": args.baseline_up_to}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-converge-") as tmp:
            for n in counts:
                entry = {"apps": n, "hosts": args.hosts}
                variants = ("ours", "baseline") if args.baseline_up_to is None or n <= args.baseline_up_to else ("ours",)
                for variant in variants:
                    entry[variant] = measure(lab, hosts, n, variant, Path(tmp))
                entry["ping"] = ping_floor(lab, Path(tmp) / f"vars-ours-{n}.json")
                entry["load_avg"] = os.getloadavg()
                results.append(entry)
                # after each app count, so an interrupted run keeps what it measured
                _lab.write_json("converge", {**meta, "partial": True, "results": results}, args.out)
    finally:
        clean(lab, hosts, check=False)
        for host in hosts:
            _lab.remove_docker_wrapper(lab, host)
        if args.lab_down:
            _lab.lab_down()

    rows, ratio_rows = [], []
    for entry in results:
        n = entry["apps"]
        total = n * args.hosts
        for run in ("first", "no_change"):
            o, b = entry["ours"][run], entry.get("baseline", {}).get(run)
            for name, fig in (("ours", o), ("baseline", b)):
                if fig:
                    rows.append([n, run, name, fig["wall_s"], fig["tasks"], fig["host_invocations"], fig["changed_items"],
                                 fig["dokku"] / total, fig["docker"] / total, fig["docker_via_dokku"]])
            r = {k: _lab.ratio(o[k], b[k]) if b else None for k in ("wall_s", "dokku", "docker", "tasks", "host_invocations")}
            r["wall_vs_ping"] = _lab.ratio(o["wall_s"], entry["ping"]["wall_s"])
            entry.setdefault("ratios", {})[run] = r
            ratio_rows.append([n, run, r["wall_vs_ping"], r["wall_s"], r["dokku"], r["docker"], r["tasks"],
                               r["host_invocations"]])
        rows.append([n, "-", "ping (floor)", entry["ping"]["wall_s"], 1, args.hosts, 0, 0, 0, 0])
        mismatch = entry["ours"]["first"]["module_commands"]["docker"] != entry["ours"]["first"]["docker"]
        entry["ours_docker_wrapper_matches_module_commands"] = not mismatch
    print(f"Converge cost per run, {args.hosts} host(s) (dokku/docker calls per app):")
    print(_lab.table(["apps per host", "run", "playbook", "wall s", "tasks", "module runs", "changed", "dokku/app",
                      "docker/app", "docker via dokku"], rows))
    print("\nRatios: ours / ping, and ours / baseline (lower is better; - where the baseline did not run):")
    print(_lab.table(["apps per host", "run", "wall / ping", "wall", "dokku calls", "docker calls", "tasks", "module runs"],
                     ratio_rows))
    entries = list(results)
    for extra in args.include:
        entries += json.loads(Path(extra).read_text())["results"]
    markdown = scaling_table(entries)
    print("\nScaling (wall seconds; ratios within one run of the script):")
    print(markdown)
    data = {**meta, "results": results, "scaling_table_md": markdown, "included": args.include}
    if args.plot:
        png = Path(args.plot)
        load = os.getloadavg()
        plot(entries, png, "Converge cost, dokku_sqlite.litestream (litestream_host) vs a naive playbook and ping\n"
                           f"lab on a shared {os.cpu_count()}-core machine, load average {load[0]:.1f} at the end")
        png.with_suffix(".md").write_text(markdown + "\n")
        data["plot"] = str(png)
        print(f"\nFigure: {png} (table: {png.with_suffix('.md')})")
    path = _lab.write_json("converge", data, args.out)
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
