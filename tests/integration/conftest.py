"""Fixtures for tests that run against the local lab (tests/lab/lab.py).

The lab is brought up once per session (it reuses images and running hosts). A machine without a
working Docker engine fails these tests: they never skip.
"""
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LAB = [str(BIN / "python"), str(REPO / "tests" / "lab" / "lab.py")]

# the lab's S3 server and the tests' own S3 stores check keys through one implementation: tests/lab/motoauth.py
sys.path.insert(0, str(REPO / "tests" / "lab"))
import motoauth  # noqa: E402,F401  (re-exported: from conftest import motoauth)

# the tests that call the collection's Python directly (claim stores) import it as Ansible does, from the
# ansible_collections tree scripts/ansible-env links to this checkout
if str(REPO / "build" / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "build" / "collections"))


def ansible_env():
    env = dict(os.environ)
    env.pop("AWS_CA_BUNDLE", None)
    collections = REPO / "build" / "collections"
    link = collections / "ansible_collections" / "dokku_sqlite" / "litestream"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO)
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="false",
               PATH=f"{BIN}:{env.get('PATH', '')}")
    return env


class Lab:
    def __init__(self, facts):
        self.facts = facts
        self.inventory = facts["inventory"]
        self.hosts = facts["hosts"]
        self.state = Path(facts["state_dir"])

    def ssh(self, host, command, check=True, input_text=None):
        """Run a shell command on a lab host over its real sshd, as Ansible does."""
        argv = ["ssh", "-i", str(self.state / "ssh" / "id_ed25519"), "-p", str(host["port"]),
                "-o", f"UserKnownHostsFile={self.state / 'ssh' / 'known_hosts'}",
                "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "root@127.0.0.1", command]
        proc = subprocess.run(argv, capture_output=True, text=True, input=input_text, timeout=300)
        if check:
            assert proc.returncode == 0, f"{command!r} on {host['name']}: rc={proc.returncode}\n{proc.stderr}"
        return proc

    def dokku(self, host, *args, check=True):
        return self.ssh(host, "dokku " + " ".join(shlex.quote(a) for a in args), check=check)

    def ansible(self, *args, check=True):
        return self._run("ansible", args, check)

    def playbook(self, *args, check=True):
        return self._run("ansible-playbook", args, check)

    def _run(self, program, args, check):
        proc = subprocess.run([str(BIN / program), "-i", self.inventory, *args],
                              capture_output=True, text=True, env=ansible_env(), timeout=1200)
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc


@pytest.fixture(scope="session")
def lab():
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail("no Docker engine answers (run scripts/bootstrap): the lab tests need one\n" + probe.stderr)
    proc = subprocess.run([*LAB, "up"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"lab up failed:\n{proc.stderr}"
    inventory = Path(proc.stdout.strip().splitlines()[-1])
    return Lab(json.loads((inventory.parent / "lab.json").read_text()))
