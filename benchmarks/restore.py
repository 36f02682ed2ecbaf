#!/usr/bin/env python3
"""Restore speed: the litestream_restore module vs plain `litestream restore` vs the S3 transfer floor.

For each size (default 256M and 1G):
1. a SQLite database of about that size is generated on the controller (rows of 600 random bytes plus
   a 200-character hex note: mostly incompressible, like real data after LZ4), in WAL mode;
2. it is replicated to the lab's moto S3 under a fresh prefix with `litestream replicate -once`
   (the venv's litestream 0.5.17, the same binary as the lab image), which uploads the whole database;
3. then, one after the other, each timed on its own:
   - floor       every replica object under the prefix downloaded with boto3, one streamed GET per
                 object, into files on the controller: the bytes any restore must move, at the speed
                 this machine and moto allow (boto3's managed transfer, parallel ranged GETs, was
                 9x slower than Litestream itself against moto, so it is no floor here);
   - litestream  plain `litestream restore -o FILE s3://...` on the controller (same binary);
   - module      dokku_sqlite.litestream.litestream_restore through ansible-playbook on the lab host,
                 once per verify mode (default: none = verify off, quick = the default check). It runs
                 Litestream in one throw-away container of the lab image (the dry run, then the restore
                 with -txid of the planned transaction), inspects the file with Python's sqlite3 (table
                 row counts always; the integrity pragma unless none: Litestream checks nothing itself),
                 fsyncs and renames it into place. Its destination directory does not exist yet, as in
                 a restore drill. Reported: the playbook's wall time and the module's own `duration`
                 (no ansible start-up, no ssh).
   Every restored copy is checked for the source's row count, then deleted.
   With --repeat N, step 3 runs N rounds (each round all methods, one after the other, so load that
   comes and goes touches them alike); the table shows each method's median, the JSON every sample.
The controller and the lab host are containers on the same machine and disk, and moto listens on
127.0.0.1, so the three measure the same transfer. Ratios are against the floor and against plain
Litestream, from the same process.

    benchmarks/restore.py [--sizes 256M,1G] [--verify none,quick] [--repeat N] [--lab-up] [--lab-down] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _lab

DB = "production.sqlite3"
ROW_BYTES = 830  # what one generated row takes on disk, about
UNITS = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
HOST_ROOT = "/var/lib/bench-restore"


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in UNITS:
        return int(float(text[:-1]) * UNITS[text[-1]])
    return int(text)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def generate(path: Path, size: int, table: str = "events") -> int:
    """A database of about `size` bytes in WAL mode, one table of generated rows; returns its row count."""
    rows = max(1, size // ROW_BYTES)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, payload BLOB NOT NULL, note TEXT NOT NULL)")
    done, batch = 0, 100_000
    while done < rows:
        n = min(batch, rows - done)
        conn.execute("BEGIN")
        conn.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
                     f"INSERT INTO {table} (payload, note) SELECT randomblob(600), hex(randomblob(100)) FROM c", (n,))
        conn.execute("COMMIT")
        done += n
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    return rows


def litestream_env(lab) -> dict:
    creds = _lab.s3_credentials(lab)
    env = dict(os.environ, LITESTREAM_ACCESS_KEY_ID=creds["access_key_id"],
               LITESTREAM_SECRET_ACCESS_KEY=creds["secret_access_key"])
    env.pop("AWS_CA_BUNDLE", None)  # breaks every Litestream 0.5 S3 client
    return env


def replica_url(lab, prefix: str) -> str:
    s3 = lab.facts["s3"]
    return f"s3://{s3['bucket']}/{prefix}/{DB}?endpoint={s3['endpoint']}&region={s3['region']}"


def replicate(lab, db: Path, prefix: str) -> float:
    s3 = lab.facts["s3"]
    config = db.parent / "litestream.yml"
    config.write_text(
        f"dbs:\n  - path: {json.dumps(str(db))}\n    replica:\n      type: s3\n"
        f"      bucket: {s3['bucket']}\n      path: {prefix}/{DB}\n      endpoint: {s3['endpoint']}\n"
        f"      region: {s3['region']}\n      force-path-style: true\n")
    started = time.monotonic()
    proc = subprocess.run([str(_lab.BIN / "litestream"), "replicate", "-once", "-config", str(config)],
                          capture_output=True, text=True, env=litestream_env(lab), timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"litestream replicate -once failed: {proc.stderr[-2000:]}")
    return time.monotonic() - started


def rows_of(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()


def floor(lab, prefix: str, into: Path) -> tuple[float, int, int]:
    """Download every object under the prefix with boto3; (seconds, bytes, objects)."""
    s3 = _lab.s3_client(lab)
    bucket = lab.facts["s3"]["bucket"]
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        keys += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    into.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for n, (key, _size) in enumerate(keys):
        # one streamed GET per object, as a restore reads them: boto3's managed transfer (parallel
        # ranged GETs) was 9x slower than Litestream itself against moto, which re-reads for each range
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with open(into / f"{n}.ltx", "wb") as handle:
            shutil.copyfileobj(body, handle, 1 << 20)
    seconds = time.monotonic() - started
    got = sum(f.stat().st_size for f in into.iterdir())
    shutil.rmtree(into)
    return seconds, got, len(keys)


def plain_restore(lab, prefix: str, out: Path, rows: int | None) -> float:
    """Seconds of a plain `litestream restore` on the controller; rows (of `events`): the count it must hold."""
    started = time.monotonic()
    proc = subprocess.run([str(_lab.BIN / "litestream"), "restore", "-o", str(out), replica_url(lab, prefix)],
                          capture_output=True, text=True, env=litestream_env(lab), timeout=3600)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"litestream restore failed: {proc.stderr[-2000:]}")
    got = rows_of(out) if rows is not None else None
    if got != rows:
        raise SystemExit(f"plain restore holds {got} rows, the source {rows}")
    for f in out.parent.glob(out.name + "*"):
        f.unlink()
    return seconds


def module_restore(lab, host, prefix: str, integrity: str, rows: int, tmp: Path) -> tuple[float, float]:
    dest = f"{HOST_ROOT}/{secrets.token_hex(4)}"
    task = {"name": "restore", "dokku_sqlite.litestream.litestream_restore": {
        "replica": {"type": "s3", "bucket": "{{ lab_s3_bucket }}", "path": prefix, "endpoint": "{{ lab_s3_endpoint }}",
                    "region": "{{ lab_s3_region }}", "credentials": "bench-s3"},
        "database": DB, "dest": dest, "image": "{{ lab_litestream_image }}",
        "credentials_root": f"{HOST_ROOT}/credentials", "verify": {"integrity": integrity}}}
    play = tmp / f"restore-{integrity}.yml"
    play.write_text(json.dumps([{"name": "bench restore", "hosts": host["name"], "gather_facts": False,
                                 "tasks": [task]}]))
    wall, data, _proc = _lab.run_playbook(lab, str(play))
    result = data["plays"][0]["tasks"][0]["hosts"][host["name"]]
    _lab.sh(lab, host, f"rm -rf {dest}")
    got = (result.get("tables") or {}).get("events")
    if not result.get("restored") or got != rows:
        raise SystemExit(f"module restore ({integrity}): restored={result.get('restored')} rows={got}, source {rows}")
    return wall, float(result["duration"])


def setup_credentials(lab, host, tmp: Path) -> None:
    """The credential set the module reads, under a root of its own (not timed)."""
    task = {"name": "credential set", "no_log": True, "dokku_sqlite.litestream.litestream_auth": {
        "name": "bench-s3", "credentials_root": f"{HOST_ROOT}/credentials",
        "access_key_id": "{{ (lookup('ansible.builtin.file', lab_s3_credentials_file) | from_json).access_key_id }}",
        "secret_access_key":
            "{{ (lookup('ansible.builtin.file', lab_s3_credentials_file) | from_json).secret_access_key }}"}}
    play = tmp / "auth.yml"
    play.write_text(json.dumps([{"name": "bench auth", "hosts": host["name"], "gather_facts": False, "tasks": [task]}]))
    _lab.run_playbook(lab, str(play))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256M,1G", help="database sizes, e.g. 4M,256M,1G (default 256M,1G)")
    parser.add_argument("--verify", default="none,quick",
                        help="module verify.integrity modes to time: none (off), quick, full (default none,quick)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of restores per size; the table shows medians (default 1)")
    parser.add_argument("--tmp", help="directory for the generated databases (default: system temp)")
    _lab.common_args(parser)
    args = parser.parse_args(argv)
    sizes = [(s.strip(), parse_size(s)) for s in args.sizes.split(",") if s.strip()]
    modes = [m.strip() for m in args.verify.split(",") if m.strip()]
    lab = _lab.lab_for(args, hosts=1)
    host = lab.hosts[0]
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-restore-", dir=args.tmp) as tmpdir:
            tmp = Path(tmpdir)
            setup_credentials(lab, host, tmp)
            for label, size in sizes:
                work = tmp / label
                work.mkdir()
                db = work / DB
                _lab.log(f"{label}: generating")
                started = time.monotonic()
                rows = generate(db, size)
                gen_s = time.monotonic() - started
                prefix = f"bench-restore/{label}-{secrets.token_hex(3)}"
                _lab.log(f"{label}: {human(db.stat().st_size)}, {rows} rows; replicating to s3 {prefix}")
                rep_s = replicate(lab, db, prefix)
                entry = {"size_label": label, "db_bytes": db.stat().st_size, "rows": rows,
                         "generate_s": round(gen_s, 2), "replicate_once_s": round(rep_s, 2), "prefix": prefix}
                shutil.rmtree(work)
                samples: dict[str, list] = {"floor": [], "litestream": [], **{m: [] for m in modes}}
                for n in range(args.repeat):
                    round_label = f"{label}" + (f" round {n + 1}/{args.repeat}" if args.repeat > 1 else "")
                    _lab.log(f"{round_label}: floor (boto3)")
                    secs, nbytes, objects = floor(lab, prefix, tmp / "floor")
                    samples["floor"].append(secs)
                    _lab.log(f"{round_label}: plain litestream restore")
                    samples["litestream"].append(plain_restore(lab, prefix, tmp / "plain.sqlite3", rows))
                    for mode in modes:
                        _lab.log(f"{round_label}: module, verify {mode}")
                        samples[mode].append(module_restore(lab, host, prefix, mode, rows, tmp))
                secs = statistics.median(samples["floor"])
                entry["floor"] = {"seconds": round(secs, 3), "bytes": nbytes, "objects": objects,
                                  "mib_per_s": round(nbytes / 2 ** 20 / secs, 1),
                                  "samples": [round(x, 3) for x in samples["floor"]]}
                entry["litestream"] = {"seconds": round(statistics.median(samples["litestream"]), 3),
                                       "samples": [round(x, 3) for x in samples["litestream"]]}
                for mode in modes:
                    entry[f"module_{mode}"] = {
                        "wall_s": round(statistics.median(w for w, _d in samples[mode]), 3),
                        "module_duration_s": round(statistics.median(d for _w, d in samples[mode]), 3),
                        "samples": [{"wall_s": round(w, 3), "module_duration_s": round(d, 3)} for w, d in samples[mode]]}
                results.append(entry)
    finally:
        _lab.sh(lab, host, f"rm -rf {HOST_ROOT}", check=False)
        if args.lab_down:
            _lab.lab_down()

    rows_out = []
    for e in results:
        base, plain = e["floor"]["seconds"], e["litestream"]["seconds"]
        rows_out.append([e["size_label"], human(e["db_bytes"]), "boto3 download (floor)", base, None, 1.0,
                         _lab.ratio(base, plain)])
        rows_out.append([e["size_label"], human(e["db_bytes"]), "litestream restore", plain, None,
                         _lab.ratio(plain, base), 1.0])
        for mode in modes:
            m = e[f"module_{mode}"]
            e[f"module_{mode}"]["ratio_vs_floor"] = _lab.ratio(m["module_duration_s"], base)
            e[f"module_{mode}"]["ratio_vs_litestream"] = _lab.ratio(m["module_duration_s"], plain)
            rows_out.append([e["size_label"], human(e["db_bytes"]), f"litestream_restore, verify {mode}",
                             m["module_duration_s"], m["wall_s"], m["ratio_vs_floor"], m["ratio_vs_litestream"]])
        e["litestream"]["ratio_vs_floor"] = _lab.ratio(plain, base)
    medians = f", medians of {args.repeat} rounds" if args.repeat > 1 else ""
    print(f"Restore from moto S3 (seconds{medians}; module: its own duration, and the playbook's wall time):")
    print(_lab.table(["size", "db", "method", "seconds", "playbook wall s", "x floor", "x litestream"], rows_out))
    print(f"load average (1 min): {_lab.LOAD_AT_START[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    path = _lab.write_json("restore", {"sizes": [s for s, _ in sizes], "verify_modes": modes, "repeat": args.repeat,
                                       "results": results}, args.out)
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
