"""The documentation holds together: every relative link of the Markdown pages and the guides reaches a file of the
repository (and a heading, for a Markdown anchor), the README's links reach files that ship in the collection tarball
(Galaxy shows the README), every :ref: reaches a label of a guide, extra-docs.yml lists exactly the guides, the README
stays a front page with every playbook, role and module in its table, and links.yml uses galaxy.yml's URLs
(placeholders until the first Galaxy upload)."""
import fnmatch
import re
import unicodedata
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCSITE = REPO / "docs" / "docsite"
GUIDES = DOCSITE / "rst"
LABEL_PREFIX = "ansible_collections.dokku_sqlite.litestream.docsite."
MARKDOWN = sorted([REPO / "README.md", REPO / "CONTRIBUTING.md"] + list((REPO / "docs").glob("*.md")))
RST = sorted(GUIDES.glob("*.rst"))
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
# Contributor material that stays in the repository on purpose (build_ignore drops it): the README on GitHub links
# it for contributors, and on Galaxy these two links are the only ones that lead nowhere.
REPO_ONLY_README_LINKS = {"CONTRIBUTING.md", "docs/development.md"}
# What ansible-galaxy collection build always leaves out besides build_ignore (ansible-core's
# _build_files_manifest_walk): these patterns, earlier tarballs, and directories with these names at any depth.
GALAXY_IGNORE_PATTERNS = ["MANIFEST.json", "FILES.json", "galaxy.yml", "galaxy.yaml", ".git", "*.pyc", "*.retry",
                          "tests/output"]
GALAXY_IGNORE_DIRS = {"CVS", ".bzr", ".hg", ".git", ".svn", "__pycache__", ".tox"}


def rel(path):
    return str(path.relative_to(REPO))


def markdown_prose(text):
    """The text outside fenced code blocks and code spans: links written as code are examples, not links."""
    text = re.sub(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"(`+)(?!`).+?(?<!`)\1(?!`)", "", text, flags=re.S)


def github_slug(heading):
    """The anchor GitHub gives a heading: lower case, punctuation but - and _ dropped, spaces to hyphens."""
    heading = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip()).lower()
    kept = "".join(ch for ch in heading if ch in " -_" or unicodedata.category(ch)[0] in "LNM")
    return kept.replace(" ", "-")


def markdown_anchors(path):
    anchors, seen = set(), {}
    text = re.sub(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, flags=re.M):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else "%s-%d" % (slug, count))
    return anchors


def markdown_links(path):
    prose = markdown_prose(path.read_text(encoding="utf-8"))
    inline = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose)
    defined = re.findall(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", prose, flags=re.M)
    return inline + defined


def rst_without_literals(text):
    """A guide without its code blocks and inline literals, whose contents are examples."""
    out, skip_indent = [], None
    for line in text.split("\n"):
        if skip_indent is not None:
            if not line.strip() or len(line) - len(line.lstrip()) > skip_indent:
                continue
            skip_indent = None
        directive = re.match(r"\s*\.\. ([a-z-]+)::", line)
        if directive and directive.group(1) in ("code-block", "code", "sourcecode"):
            skip_indent = len(line) - len(line.lstrip())
            continue
        if not directive and line.rstrip().endswith("::"):  # a paragraph that opens a literal block
            skip_indent = len(line) - len(line.lstrip())
            out.append(line.rstrip()[:-2])
            continue
        out.append(line)
    return re.sub(r"``.+?``", "", "\n".join(out), flags=re.S)


def rst_links(path):
    text = rst_without_literals(path.read_text(encoding="utf-8"))
    targets = re.findall(r"`[^`<]*<([^`>]+)>`__?", text)
    targets += re.findall(r"^[ \t]*\.\. _[^:\n]+:[ \t]+(\S+)[ \t]*$", text, flags=re.M)
    targets += re.findall(r"^[ \t]*\.\. (?:image|figure|include|literalinclude)::[ \t]*(\S+)", text, flags=re.M)
    return targets


def rst_labels(path):
    return re.findall(r"^\.\. _([^:]+):\s*$", path.read_text(encoding="utf-8"), flags=re.M)


def rst_refs(path):
    refs = re.findall(r":ref:`([^`]+)`", rst_without_literals(path.read_text(encoding="utf-8")))
    return [re.sub(r"^.*<(.+)>$", r"\1", ref, flags=re.S).strip() for ref in refs]


def check_target(source, target):
    """None when a relative link from source reaches a file (and Markdown heading) of the repository, else why not."""
    if SCHEME.match(target) or target.startswith("//"):
        return None
    path_part, anchor = (target.split("#", 1) + [""])[:2]
    dest = source if not path_part else (source.parent / path_part).resolve()
    if REPO.resolve() not in dest.parents and dest != REPO.resolve():
        return "%s: %s leaves the repository" % (rel(source), target)
    if not dest.exists():
        return "%s: %s does not exist" % (rel(source), target)
    if anchor and dest.suffix == ".md" and anchor not in markdown_anchors(dest):
        return "%s: %s has no heading #%s" % (rel(source), path_part or rel(source), anchor)
    return None


def build_ignored(path, patterns):
    """Whether ansible-galaxy collection build leaves out a path relative to the collection root: it walks the tree
    and skips a directory (with all below it) or a file whose relative path fnmatch-es a pattern."""
    parts = PurePosixPath(path).parts
    directories = parts if (REPO / path).is_dir() else parts[:-1]
    if any(part in GALAXY_IGNORE_DIRS for part in directories):
        return True
    leading = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(rel_path, pattern) for rel_path in leading for pattern in patterns)


def galaxy_ignore_patterns():
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))
    tarballs = "%s-%s-*.tar.gz" % (galaxy["namespace"], galaxy["name"])
    return GALAXY_IGNORE_PATTERNS + [tarballs] + galaxy.get("build_ignore", [])


def unshipped_links(readme, patterns):
    """The README's relative links to files that the collection tarball leaves out, but the allowed ones."""
    unshipped = []
    for link in markdown_links(readme):
        path_part = link.split("#", 1)[0]
        if SCHEME.match(link) or link.startswith("//") or not path_part:
            continue
        dest = (readme.parent / path_part).resolve()
        if REPO.resolve() not in dest.parents:
            continue  # the link leaves the repository: test_relative_links_reach_files_of_the_repository says so
        path = dest.relative_to(REPO.resolve()).as_posix()
        if build_ignored(path, patterns) and path not in REPO_ONLY_README_LINKS:
            unshipped.append(link)
    return unshipped


def test_the_checks_find_links_where_the_documents_have_them():
    """Guards the parsers: a regex that stopped matching would make every link test below pass on nothing."""
    assert len(markdown_links(REPO / "README.md")) >= 20
    assert "docs/docsite/rst/guide_restore.rst" in markdown_links(REPO / "README.md")
    assert "#what-it-does" in markdown_links(REPO / "README.md")
    assert len(RST) >= 10 and sum(len(rst_refs(p)) for p in RST) >= 20
    assert github_slug("Execution environment (AWX, Automation Platform)") == "execution-environment-awx-automation-platform"
    assert github_slug("The local lab (`tests/lab/`)") == "the-local-lab-testslab"
    patterns = galaxy_ignore_patterns()
    assert build_ignored("docs/ARCHITECTURE.md", patterns) and build_ignored("tests/unit/test_docs.py", patterns)
    assert build_ignored("roles/restore/__pycache__/x.py", patterns)
    assert not build_ignored("docs/docsite/rst/guide_restore.rst", patterns) and not build_ignored("README.md", patterns)
    # the exemptions are needed: both are left out of the tarball
    assert all(build_ignored(path, patterns) for path in REPO_ONLY_README_LINKS)


@pytest.mark.parametrize("path", MARKDOWN + RST, ids=rel)
def test_relative_links_reach_files_of_the_repository(path):
    links = markdown_links(path) if path.suffix == ".md" else rst_links(path)
    problems = [why for why in (check_target(path, link) for link in links) if why]
    assert problems == []


def test_readme_links_reach_files_that_ship_in_the_collection():
    """Galaxy renders README.md from the tarball: a link to a file that build_ignore leaves out is dead there."""
    assert unshipped_links(REPO / "README.md", galaxy_ignore_patterns()) == []


def test_every_ref_reaches_a_label_of_a_guide_and_every_label_has_the_docsite_prefix():
    labels = [label for path in RST for label in rst_labels(path)]
    assert sorted(set(labels)) == sorted(labels), "a label is defined twice"
    # antsibull-docs refuses a guide label outside the collection's own prefix
    assert [label for label in labels if not label.startswith(LABEL_PREFIX)] == []
    missing = ["%s: %s" % (rel(path), ref) for path in RST for ref in rst_refs(path) if ref not in labels]
    assert missing == []


def extra_docs_entries():
    config = yaml.safe_load((DOCSITE / "extra-docs.yml").read_text(encoding="utf-8"))
    entries = []
    for section in config["sections"]:
        assert section["title"] and section["toctree"], section
        entries += [entry["ref"] if isinstance(entry, dict) else entry for entry in section["toctree"]]
    return entries


def test_extra_docs_lists_exactly_the_guides_and_each_guide_opens_with_its_label():
    entries = extra_docs_entries()
    assert sorted(set(entries)) == sorted(entries), "a guide is listed twice"
    assert sorted(entries) == sorted(path.stem for path in RST)
    for path in RST:
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        assert first == ".. _%s%s:" % (LABEL_PREFIX, path.stem), rel(path)


def test_readme_is_a_front_page():
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 300, "README.md has %d lines: move the detail into a guide in docs/docsite/rst" % lines


def test_readme_table_names_every_playbook_role_and_module_and_nothing_else():
    rows = re.findall(r"^\| *(playbook|role|module) *\| *\[?`([a-z0-9_]+)`", (REPO / "README.md").read_text(encoding="utf-8"),
                      flags=re.M)
    listed = sorted(rows)
    assert sorted(set(listed)) == listed, "a row is there twice"
    present = [("playbook", p.stem) for p in (REPO / "playbooks").glob("*.yml")]
    present += [("role", p.name) for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file()]
    present += [("module", p.stem) for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__"]
    assert listed == sorted(present)


def test_links_yml_uses_galaxy_yml_urls_and_antsibull_docs_keys():
    links = yaml.safe_load((DOCSITE / "links.yml").read_text(encoding="utf-8"))
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))
    # the keys of antsibull-docs' CollectionLinks schema (schemas/collection_links.py)
    assert set(links) <= {"edit_on_github", "authors", "description", "issue_tracker", "links", "extra_links",
                          "communication"}
    if "edit_on_github" in links:
        assert set(links["edit_on_github"]) <= {"repository", "branch", "path_prefix"}
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", links["edit_on_github"]["repository"])
    urls = [link["url"] for key in ("links", "extra_links") for link in links.get(key, [])]
    urls += [forum["url"] for forum in links.get("communication", {}).get("forums", [])]
    urls += [ml["url"] for ml in links.get("communication", {}).get("mailing_lists", [])]
    assert urls, "links.yml lists no link"
    homes = [galaxy[key].rstrip("/") for key in ("repository", "issues") if galaxy.get(key)]
    assert homes, "galaxy.yml has neither repository nor issues"
    strays = [url for url in urls if not any(url == home or url.startswith(home + "/") for home in homes)]
    assert strays == [], "links.yml must point where galaxy.yml does (change both files together)"
