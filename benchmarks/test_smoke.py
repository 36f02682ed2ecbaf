"""Smoke test of the benchmark scripts: they run against the lab and write JSON with the expected
fields and sane values. Figures are not judged (no timing is asserted), only that the scripts work.

Not part of CI (it took 190 s on a loaded 2-core machine, over CI's budget for it); run it by hand:
    DSL_LAB_NAME=dsl-bench DSL_LAB_PORT_BASE=22700 .venv/bin/pytest -q benchmarks/test_smoke.py
A machine without Docker fails here: it never skips.
"""
import json
import os
import subprocess

import pytest

import _lab

BIN, BENCH = _lab.BIN, _lab.HERE


@pytest.fixture(scope="module")
def lab():
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail("no Docker engine answers (run scripts/bootstrap): the benchmarks need one\n" + probe.stderr)
    status = subprocess.run([*_lab.LAB, "status"], capture_output=True, text=True)
    # a lab that is up is used as it is (its other hosts and apps are left alone)
    return _lab.lab_current() if status.returncode == 0 else _lab.lab_up(1)


def run_bench(script, out, *args):
    env = dict(os.environ)
    env.pop("AWS_CA_BUNDLE", None)
    proc = subprocess.run([str(BIN / "python"), str(BENCH / script), "--out", str(out), *args],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc, json.loads(out.read_text())


def test_converge_with_one_app_counts_calls_and_compares_with_the_baseline(lab, tmp_path):
    proc, data = run_bench("converge.py", tmp_path / "converge.json", "--apps", "1")
    assert "Ratios: ours / ping, and ours / baseline" in proc.stdout
    (entry,) = data["results"]
    assert entry["apps"] == 1
    for variant in ("ours", "baseline"):
        first, again = entry[variant]["first"], entry[variant]["no_change"]
        assert first["sidecars_running"] == again["sidecars_running"] == 1
        assert first["wall_s"] > 0 and again["wall_s"] > 0
        assert first["changed_items"] > 0, f"{variant}: the first run changed nothing"
        assert again["changed_items"] == 0, f"{variant}: the no-change run changed {again['changed_items']} item(s)"
        assert first["dokku"] >= 3 and first["docker"] >= 3, f"{variant}: too few calls counted: {first}"
        # ours: one litestream_host run per host; the naive playbook: a module run per step and app
        least = 1 if variant == "ours" else 3
        assert first["host_invocations"] >= least and first["tasks"] >= least
    # the counting docker wrapper and the modules' own `commands` lists agree on our playbook
    assert entry["ours_docker_wrapper_matches_module_commands"], entry["ours"]["first"]
    for run in ("first", "no_change"):
        ratios = entry["ratios"][run]
        assert set(ratios) == {"wall_s", "dokku", "docker", "tasks", "host_invocations", "wall_vs_ping"}
        assert all(value is not None and value > 0 for value in ratios.values()), ratios
    assert entry["ping"]["wall_s"] > 0 and len(entry["ping"]["runs"]) == 3
    assert data["machine"]["cpus"] >= 1


def test_converge_on_two_hosts_plots_and_says_not_run_for_a_skipped_baseline(lab, tmp_path):
    if len(lab.hosts) < 2:
        pytest.fail("this test needs a lab with 2 hosts (tests/lab/lab.py up --hosts 2)")
    png = tmp_path / "scaling.png"
    proc, data = run_bench("converge.py", tmp_path / "converge.json", "--apps", "1", "--hosts", "2",
                           "--baseline-up-to", "0", "--plot", str(png))
    (entry,) = data["results"]
    assert entry["hosts"] == 2 and "baseline" not in entry
    assert entry["ours"]["first"]["sidecars_running"] == 2 and entry["ours"]["no_change"]["changed_items"] == 0
    assert entry["ours"]["no_change"]["dokku"] == 2 * 2, "apps + 1 dokku calls on each host"
    table = data["scaling_table_md"]
    assert "| 2 " in table and "not run" in table and table in proc.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.with_suffix(".md").read_text().strip() == table


def test_restore_of_a_tiny_database_is_timed_against_the_floor(lab, tmp_path):
    proc, data = run_bench("restore.py", tmp_path / "restore.json", "--sizes", "2M", "--verify", "none,quick")
    assert "x floor" in proc.stdout
    (entry,) = data["results"]
    assert entry["rows"] > 1000 and entry["db_bytes"] > 1_500_000
    assert entry["floor"]["bytes"] > 0 and entry["floor"]["objects"] >= 1
    for key in ("litestream", "module_none", "module_quick"):
        assert entry[key]["ratio_vs_floor"] > 0, (key, entry[key])
    for key in ("module_none", "module_quick"):
        assert 0 < entry[key]["module_duration_s"] < entry[key]["wall_s"], entry[key]
