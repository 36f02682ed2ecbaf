# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_drill_report, driven through main() with a report directory under tmp_path."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_drill_report

from .conftest import run_module, snapshot

OK = dict(host="dokku-1", app="shop", database="production.sqlite3", status="ok", integrity="ok",
          tables={"events": 120, "users": 3}, rows=123, live_rows=125, lag_seconds=1.25, duration=2.5,
          drill_host="dokku-2", replica="s3://bkt/shop/production.sqlite3", position="000000000000002a",
          position_time="2026-11-25T12:00:01Z")
OK2 = dict(host="dokku-1", app="notes", status="ok", integrity="ok", tables={"notes": 4}, rows=4,
           lag_seconds=0.5, duration=1.0)
MISSING = dict(host="dokku-1", app="ghost", status="failed", duration=0.75,
               message="dokku-1/ghost/production.sqlite3: the replica holds no backup of production.sqlite3")
STALE = dict(host="dokku-2", app="blog", database="queue.sqlite3", status="failed", integrity="ok", rows=9,
             lag_seconds=900.0, duration=1.5, message="dokku-2/blog/queue.sqlite3: stale: replica is 900s old (max 300s)")


def run(args, check=False, fail=False):
    return run_module(litestream_drill_report.main, args, check=check, fail=fail)


def junit_cases(path):
    root = ET.parse(str(path)).getroot()
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    return suites, [case for suite in suites for case in suite.findall("testcase")]


def test_all_ok_writes_json_and_junit(tmp_path):
    dest = tmp_path / "reports"
    result = run(dict(results=[OK, OK2], dest=str(dest)))
    assert result["changed"] is True
    assert result["passed"] is True and result["failed_drills"] == []
    assert result["summary"] == {"total": 2, "ok": 2, "failed": 0}
    assert result["json_path"] == str(dest / "drill-report.json")
    assert result["junit_path"] == str(dest / "drill-report.xml")

    report = json.loads((dest / "drill-report.json").read_text())
    assert report["summary"] == result["summary"] and report["passed"] is True
    assert report["suite"] == "litestream-drill" and report["generated_at"].endswith("Z")
    first = report["results"][0]
    assert first["name"] == "dokku-1/shop/production.sqlite3"
    for key in ("host", "app", "database", "status", "integrity", "tables", "rows", "lag_seconds", "duration"):
        assert first[key] == OK[key]
    # defaults filled in, unset fields left out
    assert report["results"][1]["database"] == "production.sqlite3"
    assert "message" not in report["results"][1]

    suites, cases = junit_cases(dest / "drill-report.xml")
    assert [s.get("name") for s in suites] == ["litestream-drill"]
    assert suites[0].get("tests") == "2" and suites[0].get("failures") == "0"
    assert [c.get("name") for c in cases] == ["dokku-1/shop/production.sqlite3", "dokku-1/notes/production.sqlite3"]
    assert cases[0].get("time") == "2.500"
    assert all(c.find("failure") is None for c in cases)


def test_failures_are_marked(tmp_path):
    result = run(dict(results=[OK, MISSING, STALE], dest=str(tmp_path)))
    assert result["passed"] is False
    assert result["summary"] == {"total": 3, "ok": 1, "failed": 2}
    assert result["failed_drills"] == ["dokku-1/ghost/production.sqlite3", "dokku-2/blog/queue.sqlite3"]
    # failed lines first, each naming the drill and why
    assert result["lines"][0] == "FAILED " + MISSING["message"]  # the message already names the drill
    assert result["lines"][1].startswith("FAILED dokku-2/blog/queue.sqlite3: ") and "stale" in result["lines"][1]
    assert result["lines"][2].startswith("ok     dokku-1/shop/production.sqlite3: 123 rows (live 125), integrity ok")

    suites, cases = junit_cases(tmp_path / "drill-report.xml")
    assert len(suites) == 1 and suites[0].get("failures") == "2" and suites[0].get("tests") == "3"
    assert len(cases) == 3
    failures = {c.get("name"): c.find("failure") for c in cases}
    assert failures["dokku-1/shop/production.sqlite3"] is None
    assert failures["dokku-1/ghost/production.sqlite3"].get("message") == MISSING["message"]
    assert failures["dokku-2/blog/queue.sqlite3"].get("message") == STALE["message"]
    assert float(cases[1].get("time")) == 0.75

    report = json.loads((tmp_path / "drill-report.json").read_text())
    assert [r["status"] for r in report["results"]] == ["ok", "failed", "failed"]
    assert report["failed_drills"] == result["failed_drills"]


def test_message_without_the_name_gets_it(tmp_path):
    result = run(dict(results=[dict(MISSING, message="no backup")], dest=str(tmp_path)))
    assert result["lines"] == ["FAILED dokku-1/ghost/production.sqlite3: no backup"]
    assert "failed" not in result  # Ansible would take a truthy `failed` for the task's own failure


def test_message_with_xml_characters_survives(tmp_path):
    nasty = dict(MISSING, message='ghost: <error> & "quoted" \'text\'\nsecond line')
    run(dict(results=[nasty], dest=str(tmp_path)))
    _suites, cases = junit_cases(tmp_path / "drill-report.xml")
    assert cases[0].find("failure").get("message") == nasty["message"]


def test_check_mode_writes_nothing(tmp_path):
    dest = tmp_path / "reports"
    result = run(dict(results=[OK, MISSING], dest=str(dest)), check=True)
    assert result["changed"] is True and result["passed"] is False
    assert result["summary"] == {"total": 2, "ok": 1, "failed": 1}
    assert not dest.exists()

    dest.mkdir()
    (dest / "drill-report.json").write_text("old")
    before = snapshot(dest)
    run(dict(results=[OK], dest=str(dest)), check=True)
    assert snapshot(dest) == before


def test_rerun_replaces_the_report_and_custom_names(tmp_path):
    run(dict(results=[MISSING], dest=str(tmp_path)))
    run(dict(results=[OK], dest=str(tmp_path), name="nightly", suite="nightly-drill"))
    assert json.loads((tmp_path / "drill-report.json").read_text())["passed"] is False
    report = json.loads((tmp_path / "nightly.json").read_text())
    assert report["passed"] is True and report["suite"] == "nightly-drill"
    suites, _cases = junit_cases(tmp_path / "nightly.xml")
    assert suites[0].get("name") == "nightly-drill"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drill-report.json", "drill-report.xml",
                                                          "nightly.json", "nightly.xml"]


def test_empty_results_pass(tmp_path):
    result = run(dict(results=[], dest=str(tmp_path)))
    assert result["passed"] is True and result["summary"] == {"total": 0, "ok": 0, "failed": 0}
    suites, cases = junit_cases(tmp_path / "drill-report.xml")
    assert len(suites) == 1 and cases == []


@pytest.mark.parametrize("args, message", [
    (dict(name="a/b"), "name must be a plain file name"),
    (dict(results=[dict(OK, status="maybe")]), "results[0].status must be one of ok, failed"),
    (dict(results=[OK, dict(app="x", status="ok")]), "results[1]: missing required key(s) host"),
    (dict(results=[dict(OK, colour="red")]), "results[0]: unknown key(s) colour"),
    (dict(results=[dict(OK, rows="many")]), "results[0].rows: 'many' is not a int"),
    (dict(results=[dict(OK, tables=[1])]), "results[0].tables"),
])
def test_bad_input(tmp_path, args, message):
    params = dict(results=[OK], dest=str(tmp_path))
    params.update(args)
    result = run(params, fail=True)
    assert message in result["msg"]
    assert list(tmp_path.iterdir()) == []


def test_numbers_are_coerced_and_nulls_dropped(tmp_path):
    run(dict(results=[dict(OK, rows="123", lag_seconds="1.5", duration=2, message=None)], dest=str(tmp_path)))
    result = json.loads((tmp_path / "drill-report.json").read_text())["results"][0]
    assert (result["rows"], result["lag_seconds"], result["duration"]) == (123, 1.5, 2.0)
    assert "message" not in result


def test_dest_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = run(dict(results=[OK], dest=str(target)), fail=True)
    assert "is not a directory" in result["msg"]


def test_lost_hosts_are_failed_records_after_the_results(tmp_path):
    result = run_module(litestream_drill_report.main, dict(results=[], lost_hosts=["dokku-3"],
                                                           dest=str(tmp_path / "r")))
    assert result["passed"] is False and result["summary"] == dict(total=1, ok=0, failed=1)
    assert result["failed_drills"] == ["dokku-3/*/*"]
    assert result["lines"] == ["FAILED dokku-3/*/*: dokku-3: the host failed or was unreachable before its drills finished"]
