#!/usr/bin/env python3
"""Lab demo app: commits one row every DEMO_INTERVAL_MS into the app's SQLite DB.

It behaves like a small Rails app on Dokku: the DB lives under the storage mount
(/app/db/litestream/production.sqlite3), WAL mode, busy_timeout 5000 ms so that a
Litestream sidecar (or a second app container during a deploy) can hold locks briefly.
Each row carries its commit time so replication lag can be measured from a restore.
"""
import os
import signal
import sqlite3
import sys
import time

DB_PATH = os.environ.get("DEMO_DB_PATH", "/app/db/litestream/production.sqlite3")
INTERVAL = int(os.environ.get("DEMO_INTERVAL_MS", "100")) / 1000.0
HOSTNAME = os.environ.get("DEMO_WRITER_ID", os.uname().nodename)

running = True


def stop(_signum, _frame):
    global running
    running = False


def main():
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    os.makedirs(os.path.dirname(DB_PATH), exist_ok=True)
    conn = sqlite3.connect(DB_PATH, timeout=5.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS events ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " committed_at REAL NOT NULL,"
        " writer TEXT NOT NULL,"
        " payload TEXT NOT NULL)"
    )
    print(f"demo writer: {DB_PATH} every {INTERVAL * 1000:.0f} ms", flush=True)
    seq = 0
    while running:
        seq += 1
        # The timestamp is taken inside the transaction: the row is visible to readers
        # (and to Litestream) only once COMMIT returns, a few microseconds later.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO events (committed_at, writer, payload) VALUES (?, ?, ?)",
            (time.time(), HOSTNAME, f"row {seq}"),
        )
        conn.execute("COMMIT")
        time.sleep(INTERVAL)
    conn.close()
    print(f"demo writer: stopped after {seq} rows", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
