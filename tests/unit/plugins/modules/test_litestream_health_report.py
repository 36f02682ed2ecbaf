# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_health_report: the health check's results as JSON and JUnit, in the drill report's shape."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat
import xml.etree.ElementTree as ET

from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_health_report

from .conftest import run_module, snapshot

RESULTS = [
    dict(host="dokku-1", app="blog", database="production.sqlite3", status="ok", message=None, replica_type="s3",
         replica_age_seconds=0.0, lag_txid=0, local_txid=42, replica_txid=42, last_sync_at="2026-11-30T21:19:52Z",
         sync_errors=0, sidecar_running=True, restarts_since_last_check=None, config_hash_matches=True, duration=0.4),
    dict(host="dokku-1", app="shop", database="production.sqlite3", status="failing",
         message="listing the replica failed: the bucket does not exist (NoSuchBucket)\x01", sync_errors=3,
         duration=0.5),
    dict(host="dokku-2", app="notes", status="stale", message="the replica is 5 transactions behind"),
]


def report(tmp_path, results, check=False, fail=False, **extra):
    args = dict(results=results, dest=str(tmp_path / "reports"))
    args.update(extra)
    return run_module(litestream_health_report.main, args, check=check, fail=fail)


def test_json_and_junit_in_the_drill_reports_shape(tmp_path):
    result = report(tmp_path, RESULTS)
    assert result["passed"] is False
    assert result["summary"] == dict(total=3, ok=1, stale=1, failing=1, missing=0, fenced=0)
    assert result["failed_databases"] == ["dokku-1/shop/production.sqlite3", "dokku-2/notes/production.sqlite3"]
    assert result["lines"][0].startswith("FAILING dokku-1/shop/production.sqlite3: listing the replica failed")
    assert result["lines"][-1] == "ok      dokku-1/blog/production.sqlite3: replica current (txid 42)"
    data = json.loads((tmp_path / "reports" / "health-report.json").read_text())
    assert data["summary"] == result["summary"] and len(data["results"]) == 3
    assert "restarts_since_last_check" not in data["results"][0]  # nulls are left out
    root = ET.parse(str(tmp_path / "reports" / "health-report.xml")).getroot()
    suite = root.find("testsuite")
    assert suite.get("name") == "litestream-health" and suite.get("tests") == "3" and suite.get("failures") == "2"
    cases = dict((c.get("name"), c) for c in suite.findall("testcase"))
    assert cases["dokku-1/shop/production.sqlite3"].find("failure").get("type") == "health"
    assert cases["dokku-1/shop/production.sqlite3"].find("failure").get("message").endswith("(NoSuchBucket)\ufffd")
    assert cases["dokku-1/blog/production.sqlite3"].find("failure") is None
    for name in ("health-report.json", "health-report.xml"):
        assert stat.S_IMODE(os.stat(str(tmp_path / "reports" / name)).st_mode) == 0o644


def test_check_mode_writes_nothing(tmp_path):
    before = snapshot(tmp_path)
    result = report(tmp_path, RESULTS[:1], check=True)
    assert result["passed"] is True and snapshot(tmp_path) == before


def test_bad_results_are_refused(tmp_path):
    assert "results[0]: unknown key(s) colour" in report(tmp_path, [dict(RESULTS[0], colour="red")], fail=True)["msg"]
    assert "results[0].status must be one of ok, stale, failing, missing" in report(
        tmp_path, [dict(RESULTS[0], status="failed")], fail=True)["msg"]
    assert "name must be a plain file name" in report(tmp_path, RESULTS, name="a/b", fail=True)["msg"]


def test_lost_hosts_are_failing_records_after_the_results(tmp_path):
    result = report(tmp_path, RESULTS[:1], lost_hosts=["dokku-3"])
    assert result["passed"] is False and result["summary"]["failing"] == 1 and result["summary"]["total"] == 2
    assert result["failed_databases"] == ["dokku-3/*/*"]
    assert result["lines"][0] == ("FAILING dokku-3/*/*: dokku-3: the host failed or was unreachable before its "
                                  "health check finished")
    assert "newline" in report(tmp_path, [], lost_hosts=["a\nb"], fail=True)["msg"]
