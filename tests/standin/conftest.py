"""Fixtures for the Dokku stand-in tests (tests/lab/standin/dokku).

Every test runs the stand-in as a subprocess without a TTY, with DOKKU_LAB_ROOT pointing at a
fresh temporary directory. Tests that deploy use the machine's real Docker engine; without it
they fail (never skip).
"""

import json
import os
import pathlib
import secrets
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "lab" / "standin" / "dokku"
LAB = REPO / "tests" / "lab" / "lab.py"
TEST_IMAGE = "dsl-standin-test:latest"
TEST_IMAGE_V2 = "dsl-standin-test:v2"
APP_PREFIX = "dslt-"


# Runs the stand-in file as a module so that its bytecode is cached (in PYTHONPYCACHEPREFIX):
# compiling the 2000-line script on every one of the suite's ~450 calls would double its run
# time. Semantics are those of `dokku ARGS`; test_standin_is_an_executable_script runs the file
# itself through its shebang.
RUNNER = """
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.SourceFileLoader("dokku_standin", sys.argv[1])
module = importlib.util.module_from_spec(importlib.util.spec_from_loader("dokku_standin", loader))
sys.argv = sys.argv[1:]
loader.exec_module(module)
sys.exit(module.main())
"""
PYCACHE = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"dsl-standin-pycache-{os.getuid()}"


class Dokku:
    """Runs the stand-in against one lab root and one Dokku version."""

    def __init__(self, root: pathlib.Path, version: str):
        self.root = root
        self.version = version
        self.extra_env = {"DOKKU_LAB_SYSTEM_USER": "dsl-no-such-user"}

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if (not k.startswith("DOKKU_") or k == "DOKKU_LAB_DOCKER")
               and k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
        env.update({"DOKKU_LAB_ROOT": str(self.root), "DOKKU_LAB_VERSION": self.version})
        env.update(self.extra_env)
        env.update({k: v for k, v in extra.items() if v is not None})
        return {k: v for k, v in env.items() if v is not None}

    def __call__(self, *args, input=None, version=None, **env):
        extra = dict(env)
        if version is not None:
            extra["DOKKU_LAB_VERSION"] = version
        return subprocess.run([sys.executable, "-c", RUNNER, str(STANDIN), *args],
                              capture_output=True, text=True,
                              input=input if input is not None else "",
                              env=self.env(**extra), timeout=120)

    def ok(self, *args, **kw):
        res = self(*args, **kw)
        assert res.returncode == 0, f"{args}: rc={res.returncode}\n{res.stdout}\n{res.stderr}"
        return res

    def path(self, logical: str) -> pathlib.Path:
        return pathlib.Path(str(self.root) + logical)

    def calls(self):
        log = self.path("/var/log/dokku-lab/calls.jsonl")
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def lab_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def make_dokku(lab_root):
    def make(version="0.38.27"):
        return Dokku(lab_root, version)
    return make


@pytest.fixture
def dokku(make_dokku):
    return make_dokku("0.38.27")


def docker(*args, **kw):
    return subprocess.run(["docker", *args], capture_output=True, text=True, **kw)


@pytest.fixture(scope="session")
def docker_engine():
    try:
        res = docker("version", "--format", "{{.Server.Version}}", timeout=30)
    except FileNotFoundError:
        pytest.fail("docker CLI not found: the stand-in deploy tests need a Docker engine")
    if res.returncode != 0:
        pytest.fail(f"Docker engine not reachable: {res.stderr.strip()}")
    return res.stdout.strip()


@pytest.fixture(scope="session")
def base_image(docker_engine):
    """The lab's own Debian base image, built by tests/lab/lab.py when the engine lacks it (reused
    when present): never an image that merely happens to be on the machine."""
    res = subprocess.run([sys.executable, str(LAB), "images", "--only-base"],
                         capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        pytest.fail(f"building the lab base image failed:\n{res.stderr}")
    image = json.loads(res.stdout)["base"]
    assert docker("image", "inspect", image).returncode == 0, f"lab.py reported {image} but the engine lacks it"
    return image


@pytest.fixture(scope="session")
def app_image(base_image):
    """A tiny app image whose default command runs forever, plus a second tag of it."""
    dockerfile = f'FROM {base_image}\nCMD ["sleep", "infinity"]\n'
    res = docker("build", "-q", "-t", TEST_IMAGE, "-", input=dockerfile, timeout=300)
    if res.returncode != 0:
        pytest.fail(f"building {TEST_IMAGE} failed: {res.stderr}")
    assert docker("tag", TEST_IMAGE, TEST_IMAGE_V2).returncode == 0
    return TEST_IMAGE


@pytest.fixture
def app_name(docker_engine):
    name = APP_PREFIX + secrets.token_hex(4)
    yield name
    res = docker("ps", "-aq", "--filter", f"label=com.dokku.app-name={name}")
    ids = res.stdout.split()
    if ids:
        docker("rm", "-f", *ids)


def container(name_or_id):
    res = docker("container", "inspect", name_or_id)
    if res.returncode != 0:
        return None
    return json.loads(res.stdout)[0]
