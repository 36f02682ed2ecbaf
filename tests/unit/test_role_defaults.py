"""The roles repeat some of the collection's facts, because Ansible reads their YAML, not Python: each copy must equal
plugins/module_utils/defaults.py (roots, the image, the default database) and plugins/module_utils/inventory.py (the
entry schema), and each role's defaults/main.yml must agree with its meta/argument_specs.yml."""
import ast
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import defaults, inventory
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import auth_argument_spec

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())

# Role variable -> the defaults.py fact its default names. By suffix for the facts every role shares, by full
# name for the ones a single role has.
BY_SUFFIX = (("_image", "IMAGE"), ("_storage_root", "STORAGE_ROOT"), ("_default_databases", "DATABASES"))
BY_NAME = {"health_state_dir": "HEALTH_STATE_DIR", "restore_drill_scratch_dir": "DRILL_SCRATCH_DIR"}
# every one of them must be found, so a renamed variable cannot silently leave the check
EXPECTED = {"health_image", "replication_image", "restore_image", "restore_drill_image", "storage_image",
            "restore_storage_root", "restore_drill_storage_root", "health_state_dir", "restore_drill_scratch_dir",
            "restore_default_databases"}
# images of another era the roles name on purpose: Litestream 0.3 reads the dokku-litestream plugin's replicas
OTHER_IMAGES = {"litestream/litestream:0.3.13"}
ROOTS = {defaults.STORAGE_ROOT, defaults.COLLECTION_ROOT, defaults.CONFIG_ROOT, defaults.CREDENTIALS_ROOT,
         defaults.HEALTH_STATE_DIR, defaults.DRILL_SCRATCH_DIR}
# a Jinja default with a literal fallback: "{{ litestream_image | default('litestream/litestream:0.5.17') }}"
FALLBACK_RE = re.compile(r"^\{\{.*\|\s*default\((.*)\)\s*\}\}$", re.S)
ENTRY_OPTIONS = {"storage": "storage_apps", "replication": "replication_apps", "restore_drill": "restore_drill_apps"}


def load(role, *parts):
    path = REPO.joinpath("roles", role, *parts)
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def spec_options(role):
    return load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]


def literal(value):
    """The value a variable has when the inventory sets nothing: a Jinja default's fallback, else the value; None
    for a template without a literal fallback."""
    if not isinstance(value, str) or "{{" not in value:
        return value
    match = FALLBACK_RE.match(value.strip())
    try:
        return ast.literal_eval(match.group(1)) if match else None
    except (ValueError, SyntaxError):
        return None  # another variable, not a literal


def fact_of(name):
    for suffix, fact in BY_SUFFIX:
        if name.endswith(suffix):
            return fact
    return BY_NAME.get(name)


def role_defaults():
    """[(role, where, variable, literal value)] of every default the roles write down."""
    out = []
    for role in ROLES:
        for where in (("defaults", "main.yml"), ("vars", "main.yml")):
            out += [(role, "/".join(where), name, literal(value)) for name, value in load(role, *where).items()]
        out += [(role, "argument_specs", name, option["default"]) for name, option in spec_options(role).items()
                if "default" in option]
    return out


def names_a_fact(value):
    texts = value if isinstance(value, list) else [value]
    return any(isinstance(t, str) and ("/var/lib/" in t or t.startswith("litestream/") or t == defaults.DATABASE)
               for t in texts)


def test_every_default_that_names_a_root_an_image_or_a_database_equals_defaults_py():
    problems, seen = [], set()
    for role, where, name, value in role_defaults():
        fact = fact_of(name)
        if fact is None:
            if names_a_fact(value):
                problems.append("%s %s: %s=%r names a root, an image or a database but maps to no fact of defaults.py "
                                "(add it to this test)" % (role, where, name, value))
            continue
        seen.add(name)
        wanted = getattr(defaults, fact)
        wanted = list(wanted) if isinstance(wanted, tuple) else wanted
        if value is not None and value != wanted:
            problems.append("%s %s: %s=%r, defaults.py %s=%r" % (role, where, name, value, fact, wanted))
    assert problems == []
    assert EXPECTED - seen == set(), "variables this test checks are gone: rename them here too"


def test_every_image_and_root_a_role_or_playbook_mentions_is_the_collections():
    """Descriptions too ("defaults to litestream_image, else C(litestream/litestream:0.5.17)")."""
    problems = []
    for path in sorted(list((REPO / "roles").rglob("*.yml")) + list((REPO / "playbooks").glob("*.yml"))):
        text = path.read_text()
        where = path.relative_to(REPO)
        for image in re.findall(r"litestream/litestream:[\w.-]+", text):
            if image != defaults.IMAGE and image not in OTHER_IMAGES:
                problems.append("%s: image %s, defaults.py IMAGE %s" % (where, image, defaults.IMAGE))
        for root in re.findall(r"/var/lib/dokku[\w./-]*", text):
            root = root.rstrip("/.")
            if not any(root == r or root.startswith(r + "/") for r in ROOTS):
                problems.append("%s: %s is none of defaults.py's roots nor below one" % (where, root))
    assert problems == []


@pytest.mark.parametrize("role", ROLES)
def test_defaults_main_and_argument_specs_agree(role):
    options = spec_options(role)
    values = load(role, "defaults", "main.yml")
    problems = ["%s: in defaults/main.yml, not in argument_specs" % name for name in sorted(set(values) - set(options))]
    for name, option in options.items():
        if "default" in option:
            if name not in values:
                problems.append("%s: argument_specs default %r, none in defaults/main.yml" % (name, option["default"]))
            elif literal(values[name]) != option["default"]:
                problems.append("%s: defaults/main.yml %r, argument_specs %r" % (name, values[name], option["default"]))
        elif name in values and literal(values[name]) not in (None, [], {}):
            # a default taken from another variable: the description names the fallback ("..., else 300")
            described = option.get("description") or []
            if str(literal(values[name])) not in " ".join([described] if isinstance(described, str) else described):
                problems.append("%s: defaults/main.yml %r, the argument_specs description names no %r"
                                % (name, values[name], literal(values[name])))
    assert problems == []


def same_option(role_option, spec):
    """The differences between a role's argument_specs option and the module spec it documents."""
    out = []
    for key in ("type", "elements"):
        if role_option.get(key) != spec.get(key, "str" if key == "type" else None):
            out.append("%s %r, module %r" % (key, role_option.get(key), spec.get(key)))
    if set(role_option.get("choices") or ()) != set(spec.get("choices") or ()):
        out.append("choices %r, module %r" % (role_option.get("choices"), spec.get("choices")))
    if bool(role_option.get("no_log")) != bool(spec.get("no_log")):
        out.append("no_log %r, module %r" % (role_option.get("no_log"), spec.get("no_log")))
    if "default" in role_option and role_option["default"] != spec.get("default"):
        out.append("default %r, module %r" % (role_option["default"], spec.get("default")))
    # "(default C(/app/db/litestream))" in a description is a default too
    written = re.findall(r"\(default C\((.+?)\)\)", str(role_option.get("description")))
    written = [w for w in written if not re.match(r"^[a-z]+_[a-z_]+$", w)]  # a variable's name, not a value
    if written and spec.get("default") is not None and yaml.safe_load(written[0]) != spec["default"]:
        out.append("description's default %s, module %r" % (written[0], spec["default"]))
    return out


@pytest.mark.parametrize("role, option", sorted(ENTRY_OPTIONS.items()))
def test_a_roles_entry_keys_are_the_inventory_schema(role, option):
    """Types, choices, no_log and defaults of the entry keys a role documents equal inventory.entry_spec()."""
    schema = inventory.entry_spec()
    documented = spec_options(role)[option]["options"]
    assert sorted(documented) == sorted(inventory.ENTRY_KEYS)
    problems = ["%s: %s" % (key, p) for key in sorted(documented) for p in same_option(documented[key], schema[key])]
    assert problems == []


def test_the_replication_roles_credential_set_keys_are_litestream_auths_options():
    spec = auth_argument_spec()
    spec.pop("credentials_root")  # a host's root, not a key of an inventory's credential set
    documented = spec_options("replication")["replication_credential_sets"]["options"]
    assert sorted(documented) == sorted(spec)
    problems = ["%s: %s" % (key, p) for key in sorted(documented) for p in same_option(documented[key], spec[key])]
    assert problems == []
