"""The documentation must run as written: module EXAMPLES use FQCNs and real options, and the inventory examples of
the README and the guides (docs/docsite/rst) use only the variables and keys the roles and modules take."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py"))
TASK_KEYWORDS = {"name", "when", "register", "become", "delegate_to", "run_once", "loop", "no_log", "vars", "check_mode"}
# what a user reads: the front page and the guides of the docs site
USER_DOCS = [REPO / "README.md"] + sorted((REPO / "docs" / "docsite" / "rst").glob("*.rst"))
# a guide's label names the docs site's namespace, not a playbook, role or module
GUIDE_LABEL = re.compile(r"ansible_collections\.dokku_sqlite\.litestream\.docsite\.[\w.]+")


def user_docs_text():
    return "\n".join(path.read_text(encoding="utf-8") for path in USER_DOCS)


def yaml_blocks(path):
    """The YAML examples of a Markdown page (```yaml fences) or a guide (.. code-block:: yaml, indented)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        return re.findall(r"```yaml\n(.*?)```", text, re.S)
    blocks = []
    for match in re.finditer(r"^( *)\.\. code-block:: yaml\n((?:\1 +.*\n|[ \t]*\n)+)", text, re.M):
        lines = match.group(2).split("\n")
        indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        blocks.append("\n".join(line[indent:] for line in lines))
    return blocks


def docs_yaml():
    return [yaml.safe_load(block) for path in USER_DOCS for block in yaml_blocks(path)]


@pytest.fixture(scope="module")
def module_docs():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", HOME=str(REPO / "build"))
    proc = subprocess.run([BIN / "ansible-doc", "--json", "-t", "module"]
                          + ["dokku_sqlite.litestream.%s" % name for name in MODULES],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert sorted(docs) == ["dokku_sqlite.litestream.%s" % name for name in MODULES], proc.stderr
    return docs


def unknown_options(options, given, where):
    problems = []
    for key, value in given.items():
        if key not in options:
            problems.append("%s: unknown option %s" % (where, key))
            continue
        spec = options[key]
        if spec.get("suboptions") and isinstance(value, dict):
            problems += unknown_options(spec["suboptions"], value, "%s.%s" % (where, key))
        templated = isinstance(value, str) and "{{" in value
        values = value if spec.get("type") == "list" and isinstance(value, list) else [value]
        for one in values:
            if spec.get("choices") and not templated and one not in spec["choices"]:
                problems.append("%s: %s=%r is not one of %s" % (where, key, one, spec["choices"]))
    return problems


@pytest.mark.parametrize("module", MODULES)
def test_examples_use_fqcn_and_documented_options(module_docs, module):
    examples = yaml.safe_load(module_docs["dokku_sqlite.litestream.%s" % module]["examples"])
    problems = []
    for task in examples:
        actions = [key for key in task if key not in TASK_KEYWORDS]
        assert len(actions) == 1 and actions[0].count(".") == 2, "not one FQCN action: %r" % task
        if not actions[0].startswith("dokku_sqlite.litestream."):
            assert actions[0].startswith("ansible.builtin."), actions[0]
            continue
        options = module_docs[actions[0]]["doc"]["options"]
        problems += unknown_options(options, task[actions[0]], task["name"])
        problems += ["%s: required option %s missing" % (task["name"], key)
                     for key, spec in options.items() if spec.get("required") and key not in task[actions[0]]]
    assert problems == []


def role_options(role):
    spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return spec["argument_specs"]["main"]["options"]


def docs_inventories():
    """The YAML blocks of the README and the guides that set litestream_* variables."""
    return [block for block in docs_yaml() if isinstance(block, dict) and any(k.startswith("litestream_") for k in block)]


def test_docs_yaml_blocks_are_found_in_markdown_and_in_guides():
    """Guards yaml_blocks(): a parser that found nothing in the guides would let the checks below pass on nothing."""
    guides = [path for path in USER_DOCS if path.suffix == ".rst"]
    assert guides and sum(len(yaml_blocks(path)) for path in guides) >= 4
    assert yaml_blocks(REPO / "README.md")


def test_docs_inventory_examples_use_real_keys():
    inventories = docs_inventories()
    assert len(inventories) >= 2  # the quick start and the complete example (inventory guide)
    replication = role_options("replication")
    app_keys = set(replication["replication_apps"]["options"])
    set_keys = set(replication["replication_credential_sets"]["options"])
    replica_keys = set(ls.replica_argument_spec()) - set(ls.V03_ONLY)
    problems = []
    for inventory in inventories:
        known = {"litestream_apps", "litestream_credential_sets", "litestream_image", "ansible_pipelining"}
        problems += ["variable %s" % k for k in set(inventory) - known]
        names = set()
        for entry in inventory.get("litestream_credential_sets", []):
            problems += ["credential set key %s" % k for k in set(entry) - set_keys]
            names.add(entry.get("name", "default"))
        for app in inventory.get("litestream_apps", []):
            problems += ["app key %s" % k for k in set(app) - app_keys]
            replica = app.get("replica")
            if replica is None:
                continue
            problems += ["replica key %s" % k for k in set(replica) - replica_keys]
            fields = ls.normalize_replica(replica)  # raises on anything the modules would refuse
            if backends.of(fields).needs_credentials:
                assert fields.get("credentials", "default") in names, app["app"]
    assert problems == []


def test_docs_name_only_existing_playbooks_roles_and_modules():
    text = GUIDE_LABEL.sub("", user_docs_text())
    known = set(MODULES) | {p.name for p in (REPO / "roles").iterdir()} | {p.stem for p in (REPO / "playbooks").glob("*.yml")}
    named = set(re.findall(r"dokku_sqlite\.litestream\.([a-z_]+)", text))
    assert named and named - known == set()


def test_docs_role_variables_exist():
    text = GUIDE_LABEL.sub("", user_docs_text())
    known = set()
    for role in ("storage", "replication", "restore", "restore_drill"):
        known |= set(role_options(role))
    named = set(re.findall(r"\b((?:restore|replication|restore_drill)_[a-z_]+)\b", text))
    named -= {"restore_drill"}  # the role's own name
    assert named and named - known == set()


def test_docs_yaml_blocks_parse_and_the_alert_rules_use_the_metrics_the_health_check_writes():
    from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import health_core
    blocks = docs_yaml()
    metrics = {name for name, _help in health_core.METRICS}
    rules = [rule for block in blocks if isinstance(block, dict) and "groups" in block
             for group in block["groups"] for rule in group["rules"]]
    assert len(rules) >= 3, "the Prometheus alert rule example (guide_drills_health.rst) is gone"
    problems = []
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        named = set(re.findall(r"\b(litestream_[a-z_]+)\b", rule["expr"]))
        problems += ["%s: unknown metric %s" % (rule["alert"], name) for name in named - metrics]
        problems += ["%s: unknown status %s" % (rule["alert"], s)
                     for s in re.findall(r'status!?=~?"([a-z]+)"', rule["expr"]) if s not in health_core.STATUSES]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule
    assert problems == []
    written = {m for b in blocks for m in re.findall(r"\blitestream_[a-z_]+\b", json.dumps(b)) if m in metrics}
    assert {"litestream_database_status", "litestream_sidecar_up",
            "litestream_health_last_check_timestamp_seconds"} <= written
    schedules = [task for block in blocks if isinstance(block, list) for task in block
                 if isinstance(task, dict) and "awx.awx.schedule" in task]
    assert len(schedules) == 2 and all("RRULE:" in t["awx.awx.schedule"]["rrule"] for t in schedules)


@pytest.mark.parametrize("role, option", [("storage", "storage_apps"), ("replication", "replication_apps"),
                                          ("restore_drill", "restore_drill_apps")])
def test_every_role_that_lists_the_entry_keys_lists_every_key_the_modules_accept(role, option):
    """A role's argument check refuses an entry key its spec does not list, before any module sees it: a key added
    to the inventory (module_utils/inventory.py) but not to a role's spec would fail that role's playbook."""
    from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import inventory
    accepted = set(inventory.STORAGE_KEYS) | set(inventory.SIDECAR_KEYS) | set(inventory.HEALTH_KEYS)
    assert set(role_options(role)[option]["options"]) == accepted
