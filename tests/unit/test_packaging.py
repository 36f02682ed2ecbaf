"""The collection as users get it: galaxy metadata, the built tarball, an offline install."""
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def galaxy():
    return yaml.safe_load((REPO / "galaxy.yml").read_text())


@pytest.fixture(scope="module")
def tarball(built_tarball):
    return built_tarball


def test_galaxy_identity(galaxy):
    assert (galaxy["namespace"], galaxy["name"]) == ("dokku_sqlite", "litestream")
    assert galaxy["version"] == "0.1.0"
    # hosts need only Python, dokku and docker: no other collection may be required
    assert not galaxy.get("dependencies")


def test_runtime_requires_supported_core():
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"] == ">=2.19.0"


def test_tarball_ships_collection_but_not_the_lab(tarball):
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    assert "MANIFEST.json" in names and "playbooks/provision.yml" in names
    leaked = [n for n in names if n.startswith(("tests/lab", "tests/standin", "tests/integration", ".venv",
                                                ".lab", "build/", "benchmarks", "scripts", ".ansible/"))]
    assert leaked == []


def test_offline_install_and_fqcn_playbook_resolves(tarball, tmp_path):
    dest = tmp_path / "collections"
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_COLLECTIONS_PATH": str(dest)}
    proc = subprocess.run([BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", str(dest),
                           str(tarball)], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    installed = dest / "ansible_collections" / "dokku_sqlite" / "litestream"
    assert (installed / "playbooks" / "provision.yml").is_file()
    # the installed copy, not this checkout, answers to the FQCN
    proc = subprocess.run([BIN / "ansible-playbook", "--syntax-check", "-i", "localhost,",
                           "dokku_sqlite.litestream.provision"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_playbooks_use_fqcn_modules():
    non_fqcn = []
    task_keys = {"name", "when", "register", "changed_when", "failed_when", "loop", "vars", "tags", "notify",
                 "become", "no_log", "args", "block", "rescue", "always", "delegate_to", "run_once",
                 "ignore_errors", "loop_control", "check_mode", "diff", "environment", "until", "retries", "delay"}
    for playbook in (REPO / "playbooks").glob("*.yml"):
        for play in yaml.safe_load(playbook.read_text()):
            for section in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                for task in play.get(section, []) or []:
                    for key in set(task) - task_keys:
                        if key.count(".") < 2:
                            non_fqcn.append(f"{playbook.name}: {key}")
    assert non_fqcn == []


def _doc_env(tmp_path):
    link = REPO / "build" / "collections" / "ansible_collections" / "dokku_sqlite" / "litestream"
    assert link.exists()
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / "build" / "collections")}


@pytest.mark.parametrize("module", sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py")))
def test_ansible_doc_renders_every_module(module, tmp_path):
    proc = subprocess.run([BIN / "ansible-doc", "--json", f"dokku_sqlite.litestream.{module}"],
                          capture_output=True, text=True, env=_doc_env(tmp_path), check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)[f"dokku_sqlite.litestream.{module}"]
    assert doc["doc"]["options"] and doc["examples"] and doc["return"]
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"


@pytest.mark.parametrize("role", sorted(p.name for p in (REPO / "roles").iterdir()))
def test_ansible_doc_renders_every_role(role, tmp_path):
    proc = subprocess.run([BIN / "ansible-doc", "--json", "-t", "role", f"dokku_sqlite.litestream.{role}"],
                          capture_output=True, text=True, env=_doc_env(tmp_path), check=False)
    assert proc.returncode == 0, proc.stderr
    main = json.loads(proc.stdout)[f"dokku_sqlite.litestream.{role}"]["entry_points"]["main"]
    assert main["short_description"] and main["options"]


def test_action_group_lists_every_module():
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    modules = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py"))
    assert sorted(runtime["action_groups"]["litestream"]) == modules
