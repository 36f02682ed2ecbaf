# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/ARCHITECTURE.md's layer table is the rule: every file of plugins/module_utils is in it, and none imports
from a layer below its own. The doc cannot go stale without this test failing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE_UTILS = os.path.join(ROOT, "plugins", "module_utils")
ROW_RE = re.compile(r"^\| (\d+)\. [^|]+\| ([^|]+)\|", re.M)


def layers():
    """{module name: layer number} from the doc's table."""
    with open(os.path.join(ROOT, "docs", "ARCHITECTURE.md"), encoding="utf-8") as handle:
        text = handle.read()
    found = {}
    for number, files in ROW_RE.findall(text):
        for name in re.findall(r"`([a-z0-9_]+)\.py`", files):
            assert name not in found, "%s.py is listed in two layers" % name
            found[name] = int(number)
    return found


def collection_imports(path):
    """The module_utils names a file imports."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and ".plugins.module_utils" in node.module:
            if node.module.endswith(".module_utils"):
                names.update(alias.name for alias in node.names)
            else:
                names.add(node.module.rsplit(".", 1)[1])
    return names


def module_utils():
    return sorted(name[:-3] for name in os.listdir(MODULE_UTILS) if name.endswith(".py") and name != "__init__.py")


def test_every_file_of_module_utils_has_a_layer_and_every_listed_file_exists():
    table = layers()
    assert len(table) > 30  # the table was read
    assert sorted(set(module_utils()) - set(table)) == [], "add these files to docs/ARCHITECTURE.md's layer table"
    assert sorted(set(table) - set(module_utils())) == [], "the layer table names files that do not exist"


def test_no_file_imports_from_a_layer_below_its_own():
    table = layers()
    wrong = []
    for name in module_utils():
        for imported in sorted(collection_imports(os.path.join(MODULE_UTILS, name + ".py"))):
            if imported in table and table[imported] > table.get(name, 0):
                wrong.append("%s (layer %d) imports %s (layer %d)" % (name, table[name], imported, table[imported]))
    assert wrong == []


def test_a_wrong_import_is_found():
    """The check itself reads imports of both spellings (from x import y; from x.y import z)."""
    names = collection_imports(os.path.join(MODULE_UTILS, "host_core.py"))
    assert {"inventory", "sidecar_core", "errors"} <= names
