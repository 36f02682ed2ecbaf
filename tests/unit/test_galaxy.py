"""Publishing: galaxy.yml's metadata, what the built tarball holds (only the collection), the role READMEs that
Galaxy requires, and the pinned tools of scripts/docs-check."""
import re
import tarfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
URL_KEYS = ("repository", "documentation", "homepage", "issues")
# what a user installs; anything else at the top of the checkout is for developers and goes into build_ignore
SHIPPED_FILES = {"MANIFEST.json", "FILES.json", "README.md", "CHANGELOG.rst", "LICENSE", "COPYING",
                 "changelogs/changelog.yaml"}
SHIPPED_TREES = ("plugins/", "roles/", "playbooks/", "meta/", "docs/docsite/")


@pytest.fixture(scope="module")
def galaxy_text():
    return (REPO / "galaxy.yml").read_text()


@pytest.fixture(scope="module")
def tarball_names(built_tarball):
    with tarfile.open(built_tarball) as tar:
        return {member.name: member.isdir() for member in tar.getmembers()}


def test_galaxy_has_the_publishing_urls(galaxy_text):
    galaxy = yaml.safe_load(galaxy_text)
    for key in URL_KEYS:
        url = urlparse(galaxy.get(key) or "")
        assert url.scheme == "https" and url.hostname, "%s: %r" % (key, galaxy.get(key))


def test_placeholder_urls_are_marked_and_set_together(galaxy_text):
    """Until the project has a public home the four URLs are placeholders under example.invalid (a name that
    never resolves), said so at the top of galaxy.yml; a maintainer replaces all four and the note at once."""
    galaxy = yaml.safe_load(galaxy_text)
    placeholders = [key for key in URL_KEYS if urlparse(galaxy[key]).hostname.endswith(".invalid")]
    if placeholders:
        assert placeholders == list(URL_KEYS), "some URLs are real, some placeholders: %s" % placeholders
        header = galaxy_text.split("\nnamespace:")[0]
        assert "PLACEHOLDERS" in header and all(key in header for key in URL_KEYS)
    else:
        assert "PLACEHOLDER" not in galaxy_text, "the URLs are real: remove the placeholder note"


def test_tarball_holds_only_the_collection(tarball_names):
    def shipped(name, is_dir):
        if name in SHIPPED_FILES or name.startswith(SHIPPED_TREES):
            return "__pycache__" not in name and not name.endswith(".pyc")
        # the directories above a shipped tree or file
        return is_dir and any(allowed.startswith(name + "/") for allowed in SHIPPED_FILES | set(SHIPPED_TREES))

    leaked = sorted(name for name, is_dir in tarball_names.items() if not shipped(name, is_dir))
    assert leaked == [], "add these to galaxy.yml's build_ignore (or to the shipped list here): %s" % leaked


def test_tarball_holds_every_plugin_role_and_playbook(tarball_names):
    expected = ["changelogs/changelog.yaml", "meta/runtime.yml", "README.md"]
    for pattern in ("plugins/*/*.py", "playbooks/*.yml", "roles/*/*/*.yml", "roles/*/README.md"):
        expected += [str(p.relative_to(REPO)) for p in REPO.glob(pattern) if "__pycache__" not in p.parts]
    assert sorted(set(expected) - set(tarball_names)) == []


def _readme(role):
    path = REPO / "roles" / role / "README.md"
    assert path.is_file(), "galaxy-importer refuses a role without README.md: %s" % path
    return path.read_text()


def _options(role):
    spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return spec["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_role_readme_points_at_the_argument_spec(role):
    text = _readme(role)
    assert text.startswith("# dokku_sqlite.litestream.%s\n" % role)
    assert "meta/argument_specs.yml" in text
    assert "ansible-doc -t role dokku_sqlite.litestream.%s" % role in text
    # the options are documented once, in the spec: a copied table would drift
    assert not re.search(r"^\|.*\|\s*$", text, re.M), "an option table in the README"
    assert 30 <= len(text.splitlines()) <= 80


@pytest.mark.parametrize("role", ROLES)
def test_role_readme_example_plays_the_role_by_fqcn_with_real_options(role):
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", _readme(role), re.S)]
    plays = [play for block in blocks if isinstance(block, list) for play in block if isinstance(play, dict)]
    uses = [entry for play in plays for entry in play.get("roles", [])
            if isinstance(entry, dict) and entry.get("role") == "dokku_sqlite.litestream.%s" % role]
    assert uses, "no example play with role: dokku_sqlite.litestream.%s" % role
    options = _options(role)
    for entry in uses:
        given = entry.get("vars", {})
        assert sorted(set(given) - set(options)) == []
        assert sorted(key for key, spec in options.items() if spec.get("required") and key not in given) == []


def _pins(path):
    lines = [line.split("#")[0].strip() for line in (REPO / path).read_text().splitlines()]
    return dict(line.split("==", 1) for line in lines if line)


def test_docs_tools_are_pinned_and_constrained():
    wanted = _pins("requirements-docs.txt")
    frozen = {name.lower().replace("_", "-"): version for name, version in _pins("constraints-docs.txt").items()}
    assert {"galaxy-importer", "antsibull-docs", "ansible-core", "ansible-lint", "sphinx"} <= set(wanted)
    assert {name: frozen.get(name.lower()) for name in wanted} == wanted
