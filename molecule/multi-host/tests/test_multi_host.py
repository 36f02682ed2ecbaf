"""Verify the multi-host scenario: lab-dokku-1's replicas were drilled on lab-dokku-2."""
import json
import os
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources"))
import labfacts  # noqa: E402  (shared by the scenarios, not a package)

PRIMARY, DRILL_HOST = "lab-dokku-1", "lab-dokku-2"
APPS = ("notes-1", "shop-1")
REPORTS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "drill-reports"


def lab_host(name):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=str(labfacts.STATE / "inventory.yml"))


@pytest.fixture(scope="module")
def report():
    return json.loads((REPORTS / "drill-report.json").read_text())


def test_every_app_of_the_primary_was_drilled_on_the_second_host_and_passed(report):
    results = {r["app"]: r for r in report["results"]}
    assert sorted(results) == list(APPS), report
    for app, result in results.items():
        assert result["host"] == PRIMARY and result["drill_host"] == DRILL_HOST, result
        assert result["status"] == "ok" and result["integrity"] == "ok", result
        assert result["rows"] > 0, f"{app}: the restored copy holds no row: {result}"
        # the live count is read just before the restore; the demo writer adds 10 rows a second,
        # so both counts agree within what it wrote during the lag and the restore (plus slack)
        assert result["live_rows"] > 0, result
        window = 10 * (result["lag_seconds"] + result["duration"] + 10)
        assert abs(result["rows"] - result["live_rows"]) <= window, result
        assert 0 <= result["lag_seconds"] < 60, result


def test_junit_report_has_one_passing_case_per_database():
    suite = ET.parse(REPORTS / "drill-report.xml").getroot()
    cases = suite.iter("testcase")
    names = sorted(c.get("name") for c in cases)
    assert names == [f"{PRIMARY}/{app}/{labfacts.DB_NAME}" for app in APPS]
    assert not list(suite.iter("failure")) and not list(suite.iter("error"))


def test_drill_host_keeps_no_restored_file_and_runs_no_sidecar():
    host = lab_host(DRILL_HOST)
    leftovers = host.run("find /var/lib/dokku-litestream-drill -type f 2>/dev/null").stdout.split()
    assert leftovers == [], leftovers
    names = host.check_output("docker ps -a --format '{{.Names}}'").split()
    assert not [n for n in names if n.startswith("dokku.litestream.")], names
    for app in APPS:  # the drill never provisions the source apps on the drill host
        assert not host.file(f"{labfacts.STORAGE}/{app}--db").exists


def test_primary_keeps_replicating_after_the_drill(tmp_path):
    host = lab_host(PRIMARY)
    for app in APPS:
        state = json.loads(host.check_output(f"docker container inspect dokku.litestream.{app}"))[0]["State"]
        assert state["Running"], (app, state)
    committed = labfacts.live_rows(host, "shop-1")
    time.sleep(3)
    restored = dict(labfacts.restore_from_s3(PRIMARY, "shop-1", tmp_path / "shop-1.sqlite3"))
    missing = [row_id for row_id, _ in committed if row_id not in restored]
    assert committed and not missing, f"{len(missing)} of {len(committed)} committed rows not replicated"
