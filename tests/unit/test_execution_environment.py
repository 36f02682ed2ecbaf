"""The execution environment guide (docs/docsite/rst/guide_execution_environment.rst): the documented ansible-builder
definition builds a context, and the collection it installs declares what the image needs
(meta/execution-environment.yml)."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .test_docs import yaml_blocks

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOC = REPO / "docs" / "docsite" / "rst" / "guide_execution_environment.rst"


def doc_yaml():
    """The guide's `.. code-block:: yaml` blocks, parsed (found by the parser test_docs.py checks every guide with)."""
    return [yaml.safe_load(block) for block in yaml_blocks(DOC)]


@pytest.fixture(scope="module")
def definition():
    found = [block for block in doc_yaml() if isinstance(block, dict) and block.get("version") == 3]
    assert len(found) == 1, "%s must hold exactly one version 3 definition" % DOC.relative_to(REPO)
    return found[0]


@pytest.fixture(scope="module")
def tarball_name():
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    return "dokku_sqlite-litestream-%s.tar.gz" % version


@pytest.fixture(scope="module")
def context(tmp_path_factory, definition, tarball_name):
    """`ansible-builder create` on the documented definition, next to a freshly built tarball."""
    work = tmp_path_factory.mktemp("ee")
    proc = subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path", str(work), str(REPO)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (work / tarball_name).is_file()
    (work / "execution-environment.yml").write_text(yaml.safe_dump(definition))
    proc = subprocess.run([BIN / "ansible-builder", "create", "--file", "execution-environment.yml",
                           "--context", "context"], cwd=work, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return work / "context"


def test_definition_leaves_the_base_image_to_the_user_and_installs_the_tarball(definition, tarball_name):
    assert definition["images"]["base_image"]["name"].startswith("<your-ee-base-image>:")
    assert definition["dependencies"]["galaxy"]["collections"] == [
        {"name": "collections/" + tarball_name, "type": "file"}]
    assert definition["additional_build_files"] == [{"src": tarball_name, "dest": "collections"}]
    assert definition["dependencies"]["ansible_core"]["package_pip"].startswith("ansible-core>=2.19.0")


def test_collection_declares_its_ee_dependencies():
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert meta["version"] == 1
    for key in ("python", "system"):
        assert (REPO / meta["dependencies"][key]).is_file()


def test_ansible_builder_creates_the_context(context, tarball_name):
    containerfile = next(p for p in (context / "Containerfile", context / "Dockerfile") if p.is_file())
    text = containerfile.read_text()
    assert 'ARG EE_BASE_IMAGE="<your-ee-base-image>:<tag>"' in text
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core>=2.19.0,<2.22 ansible-runner"' in text
    assert 'ARG PKGMGR="/usr/bin/dnf"' in text
    assert (context / "_build" / "collections" / tarball_name).is_file()
    assert yaml.safe_load((context / "_build" / "requirements.yml").read_text()) == {
        "collections": [{"name": "collections/" + tarball_name, "type": "file"}]}


def test_the_image_build_steps_install_the_collection_and_find_its_bindep(context, tmp_path):
    """What the Containerfile's galaxy and builder stages run, here without a container or a network."""
    build = context / "_build"
    dest = tmp_path / "collections"
    env = {"PATH": "%s:/usr/bin:/bin" % BIN, "HOME": str(tmp_path), "ANSIBLE_COLLECTIONS_PATH": str(dest)}
    proc = subprocess.run([BIN / "ansible-galaxy", "collection", "install", "--offline", "-r", "requirements.yml",
                           "--collections-path", str(dest)], cwd=build, capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (dest / "ansible_collections" / "dokku_sqlite" / "litestream" / "meta" / "runtime.yml").is_file()
    proc = subprocess.run([sys.executable, str(build / "scripts" / "introspect.py"), "introspect", str(dest),
                           "--write-bindep", str(tmp_path / "bindep.txt"), "--write-pip", str(tmp_path / "pip.txt")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = yaml.safe_load(proc.stdout)
    assert found["python"] == []
    wanted = [line for line in (REPO / "meta" / "ee-bindep.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    assert [line.split("  #")[0] for line in found["system"]] == wanted
    # the collection names no Python dependency, so ansible-builder writes no pip file
    assert (tmp_path / "bindep.txt").read_text().count("openssh-client") == 2
    assert not (tmp_path / "pip.txt").exists()


def test_documented_awx_wrapper_playbook_imports_the_collection_playbook(context, tmp_path):
    wrappers = [block for block in doc_yaml() if isinstance(block, list)]
    assert wrappers == [[{"name": "Provision Dokku hosts with Litestream replication",
                          "ansible.builtin.import_playbook": "dokku_sqlite.litestream.provision"}]]
    dest = tmp_path / "collections"
    env = {"PATH": "%s:/usr/bin:/bin" % BIN, "HOME": str(tmp_path), "ANSIBLE_COLLECTIONS_PATH": str(dest)}
    subprocess.run([BIN / "ansible-galaxy", "collection", "install", "--offline", "-r", "requirements.yml",
                    "--collections-path", str(dest)], cwd=context / "_build", env=env, check=True,
                   capture_output=True)
    playbook = tmp_path / "provision.yml"
    playbook.write_text(yaml.safe_dump(wrappers[0]))
    proc = subprocess.run([BIN / "ansible-playbook", "--syntax-check", "-i", "localhost,", str(playbook)],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
