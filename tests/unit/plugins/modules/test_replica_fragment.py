# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `replica` doc fragment against the argument spec and the backend table it documents."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
import yaml

from ansible_collections.dokku_sqlite.litestream.plugins.doc_fragments.replica import ModuleDocFragment
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_core import restore_argument_spec


def replica_doc(text):
    return yaml.safe_load(text)["options"]["replica"]


@pytest.mark.parametrize("spec", [ls.replica_argument_spec(), restore_argument_spec()["replica"]["options"]],
                         ids=["litestream_replica", "litestream_restore"])
def test_the_fragment_documents_every_suboption_of_the_spec(spec):
    doc = replica_doc(ModuleDocFragment.DOCUMENTATION)["suboptions"]
    assert sorted(doc) == sorted(spec)
    for name, option in spec.items():
        assert doc[name]["type"] == option["type"], name
        assert doc[name].get("default") == option.get("default"), name
        assert sorted(doc[name].get("choices") or []) == sorted(option.get("choices") or []), name


def test_the_fragment_names_every_backend():
    choices = replica_doc(ModuleDocFragment.DOCUMENTATION)["suboptions"]["type"]["choices"]
    assert sorted(choices) == sorted(backends.NAMES)
