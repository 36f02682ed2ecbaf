"""Role behaviour that needs no Dokku host: plays on localhost that stop before any remote work."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run_role(tmp_path, role, variables):
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: all\n  gather_facts: false\n  roles:\n    - role: dokku_sqlite.litestream.%s\n" % role)
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(variables))
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_COLLECTIONS_PATH": str(REPO / "build" / "collections"),
           "ANSIBLE_LOCALHOST_WARNING": "false"}
    return subprocess.run([BIN / "ansible-playbook", "-i", "web1,web2,", "-c", "local", str(playbook),
                           "-e", f"@{extra}"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          check=False, timeout=120)


def test_drill_refuses_an_app_name_no_host_lists_before_touching_anything(tmp_path):
    apps = [{"app": "blog", "replica": {"type": "file", "path": "/srv/replicas/blog"}}]
    report_dir = tmp_path / "reports"
    proc = run_role(tmp_path, "restore_drill", {
        "restore_drill_apps": apps, "restore_drill_apps_only": ["blgo", "blog"],
        "restore_drill_report_dir": str(report_dir), "restore_drill_scratch_dir": str(tmp_path / "scratch")})
    assert proc.returncode != 0, proc.stdout
    assert ("restore_drill_apps_only names blgo, which no host of this play (web1, web2) lists in "
            "restore_drill_apps (litestream_apps); known apps: blog") in proc.stdout, proc.stdout
    # it stopped before any credential, scratch or report work
    assert "Ensure the credential sets" not in proc.stdout
    assert not report_dir.exists() and not (tmp_path / "scratch").exists()


@pytest.mark.parametrize("report, failed_key, name", [
    ("litestream_health_report", "failed_databases", "health-report"),
    ("litestream_drill_report", "failed_drills", "drill-report"),
])
def test_a_report_is_written_in_ansibles_own_process_on_the_controller(tmp_path, report, failed_key, name):
    """With a local connection the report's action plugin writes the files itself: no module is sent or started
    (no AnsiballZ, no EXEC), the result is the module's; a host that never reported is a record not ok."""
    playbook = tmp_path / "report.yml"
    dest = tmp_path / "reports"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - dokku_sqlite.litestream.%s:\n"
        "        results: [{host: web1, app: blog, status: ok}]\n"
        "        lost_hosts: [web2]\n"
        "        dest: %s\n"
        "      register: out\n"
        "    - ansible.builtin.assert:\n"
        "        that:\n"
        "          - out.changed and not out.passed and out.summary.total == 2\n"
        "          - \"out.%s == ['web2/*/*']\"\n"
        % (report, dest, failed_key))
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_COLLECTIONS_PATH": str(REPO / "build" / "collections"), "ANSIBLE_LOCALHOST_WARNING": "false"}
    proc = subprocess.run([BIN / "ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook), "-vvv"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "AnsiballZ" not in proc.stdout and "EXEC " not in proc.stdout, proc.stdout
    data = json.loads((dest / (name + ".json")).read_text())
    assert data[failed_key] == ["web2/*/*"] and data["results"][-1]["message"].startswith(
        "web2: the host failed or was unreachable before its")
    assert (dest / (name + ".xml")).exists()
