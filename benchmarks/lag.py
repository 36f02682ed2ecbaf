#!/usr/bin/env python3
"""Replication lag under the demo writer: commit-to-visible-in-replica, p50/p95/p99, S3 and file.

Setup (one lab host): two apps provisioned by the provision playbook with default replication
settings (no sync_interval given, so Litestream's default 1 s): `lag-s3` replicating to the lab's moto
S3 and `lag-file` to a file replica under /srv/lab-replicas. The lab's demo writer is deployed into
both; it commits one row every 100 ms, each row carrying `committed_at` (time.time() at commit).

Method ("visible" = the moment a reader of the replica could restore the row):
1. While sampling (default 120 s), the replica's level-0 LTX files are polled every --poll seconds
   (default 0.1): S3 by ListObjectsV2 (boto3 against moto on 127.0.0.1), the file replica by listing
   its ltx/0 directory (the lab host's /srv/lab-replicas is a directory of the controller). Each new
   file `<minTXID>-<maxTXID>.ltx` gets the time the poll first saw it: the primary "visible" time,
   the same for both stores, late by at most one poll interval plus one listing. The store's own
   time is kept as a second figure: the file's mtime (ns, exact), and S3 LastModified, which moto
   truncates to whole seconds (so that column is a lower bound for S3).
2. As soon as a file is seen, `litestream restore -txid <maxTXID>` (the venv's 0.5.17, in a pool of
   --workers threads) restores the replica exactly up to that file, and the newest row id in the
   result says which rows that file made visible: rows (previous max id, this max id] became
   visible at its time. (Restoring later fails: level-0 files are deleted a few minutes after their
   compaction.) Rows next to a failed restore are left out, never counted with a later file.
3. Lag of a row = visible time - committed_at. Rows committed before sampling began, or whose file
   appeared after it ended, are left out. Everything runs on one machine (one clock).
Percentiles use linear interpolation between closest ranks.

    benchmarks/lag.py [--seconds 120] [--poll 0.1] [--lab-up] [--lab-down] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _lab
from test_replication import app_running, live_rows, wait_for, writer_active

PROVISION = "dokku_sqlite.litestream.provision"
DEPLOY_DEMO = str(_lab.REPO / "tests" / "lab" / "deploy-demo.yml")
DB = "production.sqlite3"


def apps_vars(run_id: str) -> dict:
    return {
        "dokku_litestream_hosts": "lab-dokku-1",
        "litestream_apps": [
            {"app": "lag-s3", "create": True,
             "replica": {"type": "s3", "bucket": "{{ lab_s3_bucket }}", "path": f"bench-lag/{run_id}/lag-s3",
                         "endpoint": "{{ lab_s3_endpoint }}", "region": "{{ lab_s3_region }}",
                         "credentials": "lab-s3"}},
            {"app": "lag-file", "create": True,
             "replica": {"type": "file", "path": f"{{{{ lab_file_replica_dir }}}}/bench-lag-{run_id}/lag-file"}},
        ],
    }


class Poller(threading.Thread):
    """Records every level-0 LTX file of one replica: {name: (visible time, first seen time)}."""

    def __init__(self, kind: str, list_files, interval: float, on_new=None):
        super().__init__(daemon=True)
        self.kind, self.list_files, self.interval, self.on_new = kind, list_files, interval, on_new
        self.files: dict[str, tuple[float, float]] = {}
        self.stop = threading.Event()
        self.errors = 0

    def run(self):
        while not self.stop.is_set():
            try:
                for name, stamp in self.list_files():
                    if name not in self.files:
                        self.files[name] = (stamp, time.time())
                        if self.on_new:
                            self.on_new(name)
            except Exception:  # a transient listing error must not end the sampling
                self.errors += 1
            self.stop.wait(self.interval)


def s3_lister(lab, prefix: str):
    s3 = _lab.s3_client(lab)
    bucket = lab.facts["s3"]["bucket"]

    def list_files():
        out = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/{DB}/0000/"):
            out += [(o["Key"].rsplit("/", 1)[1], o["LastModified"].timestamp()) for o in page.get("Contents", [])]
        return out
    return list_files


def file_lister(directory: Path):
    def list_files():
        try:
            return [(e.name, e.stat().st_mtime_ns / 1e9) for e in os.scandir(directory) if e.name.endswith(".ltx")]
        except FileNotFoundError:
            return []
    return list_files


def max_row_at(url: str, txid: str, env: dict, tmp: Path) -> tuple[int, float] | None:
    out = tmp / f"r-{txid}.sqlite3"
    proc = subprocess.run([str(_lab.BIN / "litestream"), "restore", "-txid", txid, "-o", str(out), url],
                          capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0 or not out.exists():
        return None
    conn = sqlite3.connect(f"file:{out}?immutable=1", uri=True)
    try:
        row = conn.execute("SELECT max(id), max(committed_at) FROM events").fetchone()
    except sqlite3.Error:
        row = None
    finally:
        conn.close()
        for f in tmp.glob(out.name + "*"):
            f.unlink()
    return (row[0] or 0, row[1] or 0.0) if row else (0, 0.0)


def txid_of(name: str) -> str:
    return name.split("-")[1].split(".")[0]


def lags_of(files: dict, positions: dict, rows: list, window: tuple[float, float]) -> dict:
    """Rows (max id at the previous file, max id at this file] became visible with this file.

    positions: {file name: (max id, max committed_at) restored at its max txid, or None if that
    restore failed}. Rows next to a failed restore are left out, never lumped into a later file.
    """
    committed = dict(rows)
    ordered = sorted(files.items(), key=lambda kv: int(txid_of(kv[0]), 16))
    prev_max = None
    by_store, by_poll = [], []
    for name, (visible, seen) in ordered:
        got = positions.get(name)
        if got is None:
            prev_max = None
            continue
        max_id = got[0]
        if prev_max is not None:
            for rid in range(prev_max + 1, max_id + 1):
                t = committed.get(rid)
                if t is not None and window[0] <= t and seen <= window[1]:
                    by_store.append(visible - t)
                    by_poll.append(seen - t)
        prev_max = max_id
    return {"store_time": by_store, "first_seen": by_poll, "files": len(ordered),
            "restore_failures": sum(1 for name in files if positions.get(name) is None)}


def summary(values: list[float]) -> dict:
    return {"n": len(values), **{f"p{p}": _lab.percentile(values, p) for p in (50, 95, 99)},
            "max": max(values) if values else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="sampling time (default 120)")
    parser.add_argument("--poll", type=float, default=0.1, help="replica listing interval in seconds (default 0.1)")
    parser.add_argument("--workers", type=int, default=4, help="parallel restores while sampling (default 4)")
    _lab.common_args(parser)
    args = parser.parse_args(argv)
    lab = _lab.lab_for(args, hosts=1)
    host = lab.hosts[0]
    run_id = secrets.token_hex(3)
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-lag-") as tmpdir:
            tmp = Path(tmpdir)
            vars_file = tmp / "vars.json"
            vars_file.write_text(json.dumps(apps_vars(run_id)))
            _lab.clean_apps(lab, host, "lag-")
            _lab.log("provisioning lag-s3 and lag-file, deploying the demo writer")
            _lab.run_playbook(lab, PROVISION, "-e", f"@{vars_file}")
            _lab.run_playbook(lab, DEPLOY_DEMO, "-e", f"@{vars_file}", "--limit", host["name"])
            for app in ("lag-s3", "lag-file"):
                if not app_running(lab, host, app):
                    lab.dokku(host, "ps:start", app)
                wait_for(f"the demo writer of {app}", lambda: writer_active(lab, host, app), 60)
            time.sleep(5)  # past the first snapshot
            s3_prefix = f"bench-lag/{run_id}/lag-s3"
            file_dir = lab.state / "replicas" / f"bench-lag-{run_id}" / "lag-file" / DB
            env = dict(os.environ, **{"LITESTREAM_ACCESS_KEY_ID": _lab.s3_credentials(lab)["access_key_id"],
                                      "LITESTREAM_SECRET_ACCESS_KEY": _lab.s3_credentials(lab)["secret_access_key"]})
            env.pop("AWS_CA_BUNDLE", None)
            s3 = lab.facts["s3"]
            urls = {"s3": f"s3://{s3['bucket']}/{s3_prefix}/{DB}?endpoint={s3['endpoint']}&region={s3['region']}",
                    "file": f"file://{file_dir}"}
            apps = {"s3": "lag-s3", "file": "lag-file"}
            # each new file is restored at its txid right away: level-0 files are removed some minutes
            # after compaction (l0-retention), and a later -txid restore can then no longer stop there
            pool = ThreadPoolExecutor(max_workers=args.workers)
            futures = {kind: {} for kind in urls}

            def submitter(kind):
                def on_new(name):
                    futures[kind][name] = pool.submit(max_row_at, urls[kind], txid_of(name), env, tmp / kind)
                return on_new
            for kind in urls:
                (tmp / kind).mkdir()
            pollers = {"s3": Poller("s3", s3_lister(lab, s3_prefix), args.poll, submitter("s3")),
                       "file": Poller("file", file_lister(file_dir / "ltx" / "0"), args.poll, submitter("file"))}
            for p in pollers.values():
                p.files = {name: (0.0, 0.0) for name, _ in p.list_files()}  # already there: not sampled
            start = time.time()
            for p in pollers.values():
                p.start()
            _lab.log(f"sampling for {args.seconds:.0f} s")
            time.sleep(args.seconds)
            end = time.time()
            for p in pollers.values():
                p.stop.set()
                p.join()
            _lab.log("waiting for the restores")
            pool.shutdown(wait=True)
            for kind, poller in pollers.items():
                rows = live_rows(lab, host, apps[kind])
                new = {k: v for k, v in poller.files.items() if v[1] > 0}
                positions = {name: (None if f.exception() else f.result()) for name, f in futures[kind].items()}
                lags = lags_of(new, positions, rows, (start, end))
                results[kind] = {"l0_files": lags["files"], "restore_failures": lags["restore_failures"],
                                 "poll_errors": poller.errors,
                                 "lag_s": summary(lags["first_seen"]), "lag_store_time_s": summary(lags["store_time"]),
                                 "rows_committed_in_window": sum(1 for _i, t in rows if start <= t <= end)}
    finally:
        _lab.clean_apps(lab, host, "lag-", check=False)
        if args.lab_down:
            _lab.lab_down()

    table_rows = []
    for kind, r in results.items():
        for label, key in (("first seen by poll", "lag_s"), ("store time" + (" (1 s floor)" if kind == "s3" else " (mtime)"),
                                                           "lag_store_time_s")):
            s = r[key]
            table_rows.append([kind, label, s["n"], s["p50"], s["p95"], s["p99"], s["max"], r["l0_files"]])
    print(f"Commit-to-visible lag in seconds (default settings: sync-interval 1s; {args.seconds:.0f} s of the "
          "demo writer, one row every 100 ms):")
    print(_lab.table(["replica", "visible by", "rows", "p50", "p95", "p99", "max", "L0 files"], table_rows))
    path = _lab.write_json("lag", {"seconds": args.seconds, "poll_s": args.poll, "results": results}, args.out)
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
