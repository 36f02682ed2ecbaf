"""Shared by the benchmark scripts: lab access, ansible runs, timing, percentiles, tables, JSON.

Lab access comes from tests/integration/conftest.py (Lab, ansible_env), so the benchmarks talk to
the lab exactly as the integration tests do: ansible-playbook over each host's real sshd, with this
worktree as the installed collection. The lab is chosen by DSL_LAB_NAME / DSL_LAB_PORT_BASE.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

from conftest import BIN, LAB, Lab, ansible_env  # noqa: E402  (the integration tests' lab access)

RESULTS = HERE / "results"
LOAD_AT_START = os.getloadavg()  # when the benchmark script started: write_json runs at its end
STORAGE_ROOT = "/var/lib/dokku/data/storage"
CONFIG_ROOT = "/var/lib/dokku/config/litestream"
DOKKU_CALLS = "/var/log/dokku-lab/calls.jsonl"
DOCKER_CALLS = "/var/log/dokku-lab/docker-calls.log"
# A counting docker wrapper placed before /usr/bin/docker on a lab host's PATH: one line per call,
# with the calling process, so calls made by the Dokku stand-in can be told from the playbook's own.
# Only the subcommand is logged: argv may hold paths but never a secret, still, keep the log small.
DOCKER_WRAPPER = f"""#!/bin/sh
caller=$(tr '\\000' ' ' </proc/$PPID/cmdline 2>/dev/null | cut -c1-120)
printf '%s\\t%s\\t%s\\n' "$(date +%s.%N)" "$caller" "$1" >>{DOCKER_CALLS}
exec /usr/bin/docker "$@"
"""


# --------------------------------------------------------------------------- lab
def lab_up(hosts: int = 1) -> Lab:
    """Bring the lab up (reusing what runs) with `hosts` Dokku hosts; returns the Lab."""
    proc = subprocess.run([*LAB, "up", "--hosts", str(hosts)], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"lab up failed:\n{proc.stderr}")
    inventory = Path(proc.stdout.strip().splitlines()[-1])
    return Lab(json.loads((inventory.parent / "lab.json").read_text()))


def lab_down() -> None:
    subprocess.run([*LAB, "down"], capture_output=True, text=True, timeout=600)


def lab_current() -> Lab:
    """The lab that is up now (lab.py status), or exit with a hint."""
    proc = subprocess.run([*LAB, "status"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit("the lab is not up: run with --lab-up, or tests/lab/lab.py up --hosts 1 first")
    facts = json.loads(proc.stdout)
    return Lab(facts)


def s3_credentials(lab: Lab) -> dict:
    return json.loads((lab.state / "s3-credentials.json").read_text())


def s3_client(lab: Lab):
    import boto3  # the venv has it (moto's client side)
    creds = s3_credentials(lab)
    os.environ.pop("AWS_CA_BUNDLE", None)
    return boto3.client("s3", endpoint_url=lab.facts["s3"]["endpoint"], region_name=lab.facts["s3"]["region"],
                        aws_access_key_id=creds["access_key_id"], aws_secret_access_key=creds["secret_access_key"])


def sh(lab: Lab, host: dict, command: str, check: bool = True) -> subprocess.CompletedProcess:
    return lab.ssh(host, command, check=check)


def line_count(lab: Lab, host: dict, path: str) -> int:
    out = sh(lab, host, f"[ -f {path} ] && wc -l < {path} || echo 0").stdout.strip()
    return int(out or 0)


def lines_since(lab: Lab, host: dict, path: str, offset: int) -> list[str]:
    out = sh(lab, host, f"[ -f {path} ] && tail -n +{offset + 1} {path} || true").stdout
    return [line for line in out.splitlines() if line.strip()]


def clean_apps(lab: Lab, host: dict, prefix: str, check: bool = True) -> None:
    """Remove every app named <prefix>*: sidecar, app (and its containers), storage directory, config."""
    sh(lab, host,
       f"/usr/bin/docker ps -aq --filter name=dokku.litestream.{prefix} | xargs -r /usr/bin/docker rm -f >/dev/null; "
       f"for a in $(dokku apps:list 2>/dev/null | grep '^{prefix}'); do dokku apps:destroy --force \"$a\" >/dev/null; done; "
       f"rm -rf {STORAGE_ROOT}/{prefix}*--db {CONFIG_ROOT}/apps/{prefix}*", check=check)


def install_docker_wrapper(lab: Lab, host: dict) -> None:
    """Put the counting wrapper at /usr/local/bin/docker and prove the ssh PATH finds it first."""
    lab.ssh(host, "mkdir -p /var/log/dokku-lab && cat > /usr/local/bin/docker && chmod 0755 /usr/local/bin/docker",
            input_text=DOCKER_WRAPPER)
    found = sh(lab, host, "command -v docker").stdout.strip()
    if found != "/usr/local/bin/docker":
        raise SystemExit(f"{host['name']}: docker resolves to {found}, the counting wrapper would miss calls")


def remove_docker_wrapper(lab: Lab, host: dict) -> None:
    sh(lab, host, "rm -f /usr/local/bin/docker", check=False)


class CallCounter:
    """Counts dokku calls (the stand-in's calls.jsonl) and docker calls (the wrapper's log) from now on."""

    def __init__(self, lab: Lab, host: dict):
        self.lab, self.host = lab, host
        self.dokku_offset = line_count(lab, host, DOKKU_CALLS)
        self.docker_offset = line_count(lab, host, DOCKER_CALLS)

    def read(self) -> dict:
        dokku = [json.loads(line) for line in lines_since(self.lab, self.host, DOKKU_CALLS, self.dokku_offset)]
        docker = [line.split("\t") for line in lines_since(self.lab, self.host, DOCKER_CALLS, self.docker_offset)]
        via_dokku = [d for d in docker if len(d) > 1 and "/usr/bin/dokku" in d[1]]
        subcommands: dict[str, int] = {}
        for entry in dokku:
            argv = [a for a in entry.get("argv", []) if not a.startswith("--")]
            key = argv[0] if argv else "?"
            subcommands[key] = subcommands.get(key, 0) + 1
        return {"dokku": len(dokku), "dokku_by_command": dict(sorted(subcommands.items())),
                "docker": len(docker) - len(via_dokku), "docker_via_dokku": len(via_dokku)}


# --------------------------------------------------------------------------- ansible
def bench_env(record: Path, **extra: str) -> dict:
    """ansible_env() plus the recording callback (benchmarks/callback_plugins/bench_record.py)."""
    env = ansible_env()
    # pipelining: one ssh exec per module run (a common production setting), for both playbooks alike
    env.update(ANSIBLE_PIPELINING="true", ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"), ANSIBLE_CALLBACKS_ENABLED="bench_record",
               BENCH_RECORD=str(record), **extra)
    return env


def run_playbook(lab: Lab, playbook: str, *args: str, env_extra: dict | None = None,
                 timeout: float = 3600) -> tuple[float, dict, subprocess.CompletedProcess]:
    """Run ansible-playbook; returns (wall seconds, recorded results, process). Fails loudly on rc != 0."""
    with tempfile.TemporaryDirectory(prefix="bench-record-") as tmp:
        record = Path(tmp) / "record.json"
        argv = [str(BIN / "ansible-playbook"), "-i", lab.inventory, playbook, *args]
        started = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, env=bench_env(record, **(env_extra or {})),
                              timeout=timeout)
        wall = time.monotonic() - started
        data = json.loads(record.read_text()) if record.exists() else {"plays": [], "stats": {}}
    if proc.returncode != 0:
        raise SystemExit(f"{playbook} failed (rc={proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return wall, data, proc


def task_seconds(data: dict) -> dict:
    """{phase: seconds} of one recorded run: "start-up" (the callback loading to the first play), then each task
    (its start to the next task's start, or to the recap), from the recording callback's start_s marks."""
    marks = [("start-up", 0.0)]
    for play in data.get("plays", []):
        marks += [(task["task"]["name"], task["task"].get("start_s", 0.0)) for task in play["tasks"]]
        if len(marks) == 1 and "start_s" in play.get("play", {}):
            marks.append(("play start", play["play"]["start_s"]))
    ends = [start for _name, start in marks[1:]] + [data.get("end_s", marks[-1][1])]
    return dict((name, round(end - start, 3)) for (name, start), end in zip(marks, ends))


def task_stats(data: dict) -> dict:
    """From json-callback output: tasks run, module invocations (loop items), changed, module commands."""
    tasks = invocations = on_host = changed = 0
    commands: list[str] = []
    for play in data.get("plays", []):
        for task in play["tasks"]:
            ran = False
            for result in task["hosts"].values():
                items = result.get("results") if isinstance(result.get("results"), list) else [result]
                for item in items:
                    if item.get("skipped"):
                        continue
                    ran = True
                    invocations += 1
                    # include_role and the roles' argument_specs validation run on the controller
                    on_host += not any(k in item for k in ("include_args", "validate_args_context"))
                    changed += bool(item.get("changed"))
                    commands += [c for c in item.get("commands") or [] if "# check mode" not in c]
                    for app in item.get("apps") or []:  # litestream_host: each app's own commands
                        if isinstance(app, dict):
                            commands += [c for c in app.get("commands") or [] if "# check mode" not in c]
            tasks += ran
    stats = {host: {k: v for k, v in s.items() if k in ("ok", "changed", "failures", "unreachable", "skipped")}
             for host, s in data.get("stats", {}).items()}
    return {"tasks": tasks, "invocations": invocations, "host_invocations": on_host, "changed_items": changed, "recap": stats,
            "module_commands": {"dokku": sum(c.startswith("dokku ") for c in commands),
                                "docker": sum(c.startswith("docker ") for c in commands)}}


# --------------------------------------------------------------------------- figures
def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ratio(ours: float | None, base: float | None) -> float | None:
    if ours is None or not base:
        return None
    return ours / base


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: list[str], rows: list[list]) -> str:
    """A GitHub markdown table (it reads as plain text too)."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def machine() -> dict:
    mem = 0
    try:
        mem = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")).split()[1]) // 1024
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "memory_mib": mem, "python": platform.python_version(),
            "load_avg_at_start": LOAD_AT_START, "load_avg_at_end": os.getloadavg()}


def write_json(name: str, data: dict, out: str | None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(), **data}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", help="write the JSON here (default benchmarks/results/<name>.json)")
    parser.add_argument("--lab-up", action="store_true", help="bring the lab up first (and leave it up)")
    parser.add_argument("--lab-down", action="store_true", help="take the lab down at the end")


def lab_for(args: argparse.Namespace, hosts: int = 1) -> Lab:
    lab = lab_up(hosts) if args.lab_up else lab_current()
    if len(lab.hosts) < hosts:
        raise SystemExit(f"this benchmark needs {hosts} lab host(s), the lab has {len(lab.hosts)}")
    return lab


def mixed_apps_vars(prefix: str, n: int, run_id: str) -> dict:
    """N apps `<prefix>-01..` on lab-dokku-1: odd ones replicating to moto S3, even ones to a file replica."""
    apps = []
    for i in range(1, n + 1):
        app = f"{prefix}-{i:02d}"
        replica = ({"type": "s3", "bucket": "{{ lab_s3_bucket }}", "path": f"bench-{prefix}/{run_id}/{app}",
                    "endpoint": "{{ lab_s3_endpoint }}", "region": "{{ lab_s3_region }}", "credentials": "lab-s3"}
                   if i % 2 else {"type": "file", "path": f"{{{{ lab_file_replica_dir }}}}/bench-{prefix}-{run_id}/{app}"})
        apps.append({"app": app, "create": True, "replica": replica})
    return {"dokku_litestream_hosts": "lab-dokku-1", "litestream_apps": apps}


def provision_with_writers(lab: Lab, host: dict, vars_file: Path, apps: list[str]) -> None:
    """The provision playbook for vars_file, the lab's demo writer in every app, and each app writing."""
    from test_replication import app_running, wait_for, writer_active  # the integration tests' own checks
    log(f"provisioning {len(apps)} apps and deploying the demo writer")
    run_playbook(lab, "dokku_sqlite.litestream.provision", "-e", f"@{vars_file}")
    run_playbook(lab, str(REPO / "tests" / "lab" / "deploy-demo.yml"), "-e", f"@{vars_file}", "--limit", host["name"])
    for app in apps:
        if not app_running(lab, host, app):
            lab.dokku(host, "ps:start", app)
        wait_for(f"the demo writer of {app}", lambda: writer_active(lab, host, app), 60)


def module_duration(data: dict, what: str, has) -> float:
    """From a playbook's record: the `duration` that has(result) finds in the first result it accepts."""
    for play in data.get("plays", []):
        for task in play["tasks"]:
            for result in task["hosts"].values():
                found = has(result)
                if found is not None:
                    return float(found)
    raise SystemExit(f"no {what} result in the playbook's record")


def quote(*args: str) -> str:
    return " ".join(shlex.quote(a) for a in args)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
