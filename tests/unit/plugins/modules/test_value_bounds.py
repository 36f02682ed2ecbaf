# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every number and duration a module takes is finite and bounded, and refused out of range before anything runs.

Three parts:
- every module's argument spec is walked (and the keys of a litestream_apps entry): an int, float or duration option
  without a declared bound in validate.BOUNDS fails here, so a new option joins by being declared there;
- for every bounded option of every module (nested ones and entry keys included), a value above and a value below
  its bound are refused with the bound's own message, no dokku or docker command, nothing in the sandbox changed;
- one named row per finding of issue 20 for the modules test_hostile_inputs.py has no sandbox for (drill, health,
  host, validate), with its exact message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import importlib
import os
import re

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import inventory
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

from .conftest import assert_no_secret, run_module, snapshot
from .test_hostile_inputs import (  # noqa: F401 pylint: disable=unused-import
    SECRET, auth_args, fill, no_commands, replica_args, restore_args, sandbox, storage_args)

MODULE_DIR = os.path.join(os.path.dirname(__file__), *[os.pardir] * 4, "plugins", "modules")
MODULE_NAMES = sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(MODULE_DIR, "*.py"))
                      if not path.endswith("__init__.py"))
# a str option with one of these names holds a duration: it needs a bound as much as an int does
DURATION_NAME_RE = re.compile(r"(.*_)?(interval|retention|timeout|lag|duration|period|delay|age)")
HEARTBEAT_URL = "https://hc.example.net/ping/abc"


class Captured(Exception):
    pass


def argument_spec(name):
    """The argument spec main() builds (AnsibleModule, or a subclass, is stopped before it reads any input)."""
    module = importlib.import_module("ansible_collections.dokku_sqlite.litestream.plugins.modules." + name)

    def capture(self, argument_spec=None, **kwargs):
        raise Captured(argument_spec)
    original = basic.AnsibleModule.__init__
    basic.AnsibleModule.__init__ = capture
    try:
        with patch_module_args({}):
            module.main()
    except Captured as caught:
        return caught.args[0]
    finally:
        basic.AnsibleModule.__init__ = original
    raise AssertionError("%s: main() built no AnsibleModule" % name)


def walk(spec, prefix=""):
    """(path, name, option) of every option, suboptions included."""
    for name, option in sorted(spec.items()):
        yield prefix + name, name, option
        if option.get("options"):
            yield from walk(option["options"], prefix + name + ".")


def kind_of(option):
    return {"int": int, "float": float}.get(option.get("type", "str"))


def entry_spec():
    """The keys of a litestream_apps entry (a raw list: Ansible never sees them) with the options they become."""
    sidecar, storage = ls.sidecar_argument_spec(), inventory.storage_argument_spec()
    spec = dict((key, sidecar[key]) for key in inventory.SIDECAR_KEYS)
    spec.update((key, storage[option]) for key, option in inventory.STORAGE_KEYS.items())
    spec.update((key, dict(type="str")) for key in inventory.HEALTH_KEYS)  # max_lag: a duration
    return spec


SPECS = dict((name, argument_spec(name)) for name in MODULE_NAMES)


def unbounded(spec):
    """Options that hold a number or a duration but have no bound in BOUNDS (or a bound of the wrong kind)."""
    missing = []
    for path, name, option in walk(spec):
        if is_v03(path, name):
            continue
        kind = kind_of(option)
        bound = v.BOUNDS.get(name)
        if kind is not None:
            if bound is None or bound.kind is not kind:
                missing.append("%s (%s)" % (path, option["type"]))
        elif option.get("type", "str") == "str" and DURATION_NAME_RE.fullmatch(name):
            if bound is None or bound.kind != "duration":
                missing.append("%s (a duration)" % path)
        elif bound is not None and option.get("type") != "dict":
            missing.append("%s: BOUNDS holds a %s bound, the option is %s" % (path, bound.kind, option.get("type")))
    return missing


def test_the_walk_finds_the_options_it_must():
    assert MODULE_NAMES[:2] == ["dokku_storage", "litestream_auth"] and len(MODULE_NAMES) >= 10
    found = set(path for spec in SPECS.values() for path, _n, option in walk(spec) if kind_of(option))
    assert set(["lock_timeout", "parallel", "max_lag_seconds", "timeout", "owner", "dry_run_timeout"]) <= found
    assert unbounded({"new_timeout": dict(type="int"), "poll_interval": dict(type="str"),
                      "ratio": dict(type="float")}) == ["new_timeout (int)", "poll_interval (a duration)", "ratio (float)"]


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_every_number_and_duration_option_has_a_declared_bound(name):
    assert unbounded(SPECS[name]) == []


def test_every_entry_key_that_holds_a_number_or_a_duration_has_a_declared_bound():
    assert unbounded(entry_spec()) == []


def test_every_declared_bound_belongs_to_an_option_and_allows_its_default():
    options = {}
    for spec in list(SPECS.values()) + [entry_spec()]:
        for _path, name, option in walk(spec):
            options.setdefault(name, []).append(option)
    for name, bound in v.BOUNDS.items():
        assert name in options, "validate.BOUNDS[%r] belongs to no option" % name
        for option in options[name]:
            if option.get("default") is not None and option.get("type") != "dict":
                assert v.in_range(option["default"], name, bound) is not None
    for name, bound in v.BOUNDS.items():
        low, high = bound.seconds(bound.low), bound.seconds(bound.high)
        assert low < high < float("inf") and bound.allows(high) and bound.allows(low) is not bound.low_open


# ---- every bounded option refused out of range, before anything runs ---------------------------------------

def outside(bound):
    """(a value above, a value below) the bound; only above for a duration from 0s (none is shorter)."""
    if bound.kind == "duration":
        return ("99999999999999h",) if bound.allows(0) else ("99999999999999h", "0s")
    if bound.kind is float:
        return float(bound.high) * 2, float(bound.low if bound.low_open else bound.low - 1)
    return bound.high + 1, bound.low - 1


def entry(top, **extra):
    base = {"app": "blog", "replica": {"type": "file", "path": str(top / "replicas" / "blog")}}
    base.update(extra)
    return base


def drill_args(top, **extra):
    args = {"host": "h1", "apps": [], "scratch_dir": str(top / "scratch"), "storage_root": str(top / "storage"),
            "credentials_root": str(top / "credentials")}
    args.update(extra)
    return args


def health_args(top, **extra):
    args = {"apps": [], "state_dir": str(top / "health"), "storage_root": str(top / "storage"),
            "config_root": str(top / "apps"), "credentials_root": str(top / "credentials")}
    args.update(extra)
    return args


def host_args(top, **extra):
    args = {"apps": [], "storage_root": str(top / "storage"), "config_root": str(top / "apps"),
            "credentials_root": str(top / "credentials")}
    args.update(extra)
    return args


def validate_args(top, **extra):
    args = {"apps": []}
    args.update(extra)
    return args


def ownership_args(top, **extra):
    args = {"app": "blog", "replica": {"type": "file", "path": str(top / "replicas" / "blog")},
            "config_root": str(top / "apps"), "credentials_root": str(top / "credentials")}
    args.update(extra)
    return args


def handoff_args(top, **extra):
    args = {"app": "blog", "move_from": "h1", "move_to": "h2", "from_apps": [entry(top)],
            "storage_root": str(top / "storage"), "config_root": str(top / "apps"),
            "credentials_root": str(top / "credentials")}
    args.update(extra)
    return args


def move_report_args(top, **extra):
    args = {"app": "blog", "move_from": "h1", "move_to": "h2", "final_txids": {"production.sqlite3": "5"},
            "restored": [{"item": "production.sqlite3", "restored": True, "position": "0000000000000005"}]}
    args.update(extra)
    return args


# module -> options that pass every check; a module with a bounded option needs a row here (the test says so)
BASE = {
    "dokku_storage": storage_args,
    "litestream_auth": auth_args,
    "litestream_replica": replica_args,
    "litestream_restore": restore_args,
    "litestream_standby": restore_args,  # the restore's options, less those a standby has no use for
    "litestream_drill": drill_args,
    "litestream_health": health_args,
    "litestream_host": host_args,
    "litestream_validate": validate_args,
    "litestream_ownership": ownership_args,
    "litestream_handoff": handoff_args,
    "litestream_move_report": move_report_args,
}
# options a bounded one needs beside it
NEEDS = {"heartbeat_interval": {"heartbeat_url": HEARTBEAT_URL}}


def is_v03(path, name):
    """A Litestream 0.3 replica option: refused whatever the value."""
    return name in ls.V03_ONLY and path.startswith("replica.")


def bounded_paths(spec):
    return [(path, name) for path, name, _option in walk(spec) if name in v.BOUNDS and not is_v03(path, name)]


def bound_cases():
    cases = []
    for module, spec in sorted(SPECS.items()):
        paths = bounded_paths(spec)
        if "apps" in spec:  # the keys of an entry of apps, as litestream_host, _validate, _health and _drill check them
            paths += [("entry." + path, name) for path, name in bounded_paths(entry_spec())]
        for path, name in paths:
            for side, value in zip(("above", "below"), outside(v.BOUNDS[name])):
                cases.append(pytest.param(module, path, name, value, id="%s-%s-%s" % (module, path, side)))
    return cases


def with_value(args, path, value, top):
    """args with value at path ('replica.sync_interval', 'verify.min_rows', 'entry.metrics_port': in apps[0])."""
    parts = path.split(".")
    if parts[0] == "entry":
        args["apps"] = [entry(top)]
        target, parts = args["apps"][0], parts[1:]
    else:
        target = args
    for part in parts[:-1]:
        target[part] = dict(target.get(part) or {})
        target = target[part]
    target[parts[-1]] = {"events": value} if parts[-1] == "min_rows" else value
    target.update(NEEDS.get(parts[-1], {}))
    return args


@pytest.mark.parametrize("module, path, name, value", bound_cases())
def test_every_bounded_option_is_refused_out_of_range_before_anything_runs(sandbox, no_commands, module, path, name,
                                                                           value):
    assert module in BASE, "%s has bounded options: give it base options in BASE" % module
    main = importlib.import_module("ansible_collections.dokku_sqlite.litestream.plugins.modules." + module).main
    args = with_value(BASE[module](sandbox), path, value, sandbox)
    label = path.replace("entry.", "", 1)
    label += ".events" if name == "min_rows" else ""
    before = snapshot(sandbox.parent)
    result = run_module(main, args, fail=True)
    assert v.BOUNDS[name].refusal(label, value) in result["msg"]
    assert no_commands == [] and snapshot(sandbox.parent) == before
    assert result.get("changed", False) is False
    assert_no_secret(result, SECRET)


# ---- one named row per finding of issue 20, for the modules with no row in test_hostile_inputs.py ---------

MODULES = {"drill": ("litestream_drill", drill_args), "health": ("litestream_health", health_args),
           "host": ("litestream_host", host_args), "validate": ("litestream_validate", validate_args)}
INVENTORY = "1 problem in the inventory of %s, nothing was %s: litestream_apps[0] (blog): "
HOST_RULE = ("a host is an ASCII name of labels of 1 to 63 letters, digits, '-' and '_' joined by single dots (at most "
             "253 characters), an IPv4 address or an IPv6 address in brackets")
YEAR_SECONDS = "a number of seconds from 0 (no lag allowed) to 31536000 (a year)"

# (name, module, options, exact message); "{top}" in an option or message is the sandbox directory
CASES = [
    ("health_timeout_overflows", "health", {"timeout": 10 ** 12},
     "timeout: 1000000000000 is not a whole number of seconds from 1 to 3600 (an hour)"),
    ("health_max_lag_seconds_nan", "health", {"max_lag_seconds": float("nan")}, "max_lag_seconds: nan is not " + YEAR_SECONDS),
    ("health_max_lag_seconds_infinite", "health", {"max_lag_seconds": float("inf")},
     "max_lag_seconds: inf is not " + YEAR_SECONDS),
    ("health_max_lag_seconds_nan_text", "health", {"max_lag_seconds": "NaN"}, "max_lag_seconds: nan is not " + YEAR_SECONDS),
    ("health_parallel_huge", "health", {"parallel": 10 ** 6},
     "parallel: 1000000 is not a whole number from 1 (one app after the other) to 64"),
    ("health_entry_max_lag_overflows", "health", {"apps": [{"max_lag": "99999999999999h"}]},
     INVENTORY % ("this host", "checked") + "max_lag: '99999999999999h' is not a duration from 0s (no lag allowed) to 8760h "
     "(a year)"),
    ("health_entry_file_replica_in_the_apps_storage", "health",
     {"apps": [{"replica": {"type": "file", "path": "{top}/storage/blog--db/replica"}}]},
     INVENTORY % ("this host", "checked") + "replica.path: {top}/storage/blog--db/replica is inside the app's storage "
     "directory {top}/storage/blog--db: the replica would sit beside the live database, writable by the app, and be "
     "lost with it; give a directory outside it"),
    ("drill_max_lag_seconds_nan", "drill", {"max_lag_seconds": float("nan")}, "max_lag_seconds: nan is not " + YEAR_SECONDS),
    ("drill_max_lag_seconds_infinite", "drill", {"max_lag_seconds": float("-inf")},
     "max_lag_seconds: -inf is not " + YEAR_SECONDS),
    ("drill_replica_timeout_overflows", "drill", {"replica_timeout": 10 ** 12},
     "replica_timeout: 1000000000000 is not a whole number of seconds from 0 (no limit) to 86400 (a day)"),
    ("drill_lock_timeout_overflows", "drill", {"lock_timeout": 10 ** 12},
     "lock_timeout: 1000000000000 is not a whole number of seconds from 0 to 86400 (a day)"),
    ("drill_min_rows_infinite", "drill", {"verify": {"min_rows": {"events": float("inf")}}},
     "verify.min_rows.events: inf is not a whole number of rows from 0 to 9223372036854775807"),
    ("drill_entry_sftp_path_climbs_out", "drill",
     {"apps": [{"replica": {"url": "sftp://bk@backup.example.net/../../etc", "host_key": "ssh-ed25519 AAAA"}}]},
     INVENTORY % ("h1", "drilled") + "replica.path: '/../../etc' must not contain '..'"),
    ("host_parallel_overflows", "host", {"parallel": 10 ** 12},
     "parallel: 1000000000000 is not a whole number from 1 (one app after the other) to 64"),
    ("host_first_sync_timeout_overflows", "host", {"first_sync_timeout": 10 ** 12},
     "first_sync_timeout: 1000000000000 is not a whole number of seconds from 0 (do not wait) to 3600 (an hour)"),
    ("host_entry_sync_interval_0s", "host", {"apps": [{"replica": {"type": "file", "path": "/srv/r", "sync_interval": "0s"}}]},
     INVENTORY % ("this host", "changed") + "replica.sync_interval: '0s' is not a duration from 100ms to 24h (a day)"),
    ("host_entry_file_replica_root", "host", {"apps": [{"replica": {"url": "file:///"}}]},
     INVENTORY % ("this host", "changed") + "replica.path: / is a system directory: a file replica's directory is "
     "mounted read-write into the sidecar, a root container; give a directory of its own, such as "
     "/var/lib/litestream-replicas"),
    ("host_entry_file_replica_holds_the_storage_root", "host", {"apps": [{"replica": {"type": "file", "path": "{top}"}}]},
     INVENTORY % ("this host", "changed") + "replica.path: {top} holds the app's storage directory "
     "{top}/storage/blog--db: the replica's mount would hold the live database too; give a directory of its own, "
     "outside it"),
    ("validate_entry_metrics_port_0", "validate", {"apps": [{"metrics_port": 0}]},
     INVENTORY % ("this host", "changed") + "metrics_port: 0 is not a TCP port (a whole number from 1 to 65535)"),
    ("validate_entry_snapshot_retention_overflows", "validate", {"apps": [{"snapshot_retention": "99999999999999h"}]},
     INVENTORY % ("this host", "changed") + "snapshot_retention: '99999999999999h' is not a duration from 1m to 87600h "
     "(ten years)"),
    ("validate_entry_endpoint_port_70000", "validate",
     {"apps": [{"replica": {"type": "s3", "bucket": "bkt", "endpoint": "http://minio:70000"}}]},
     INVENTORY % ("this host", "changed") + "replica.endpoint: 'http://minio:70000' has the port '70000': a port is a "
     "whole number from 1 to 65535"),
    ("validate_entry_endpoint_empty_label", "validate",
     {"apps": [{"replica": {"url": "s3://bkt/blog?endpoint=http://minio.:9000"}}]},
     INVENTORY % ("this host", "changed") + "replica.endpoint: 'http://minio.:9000': the host name 'minio.' has an "
     "empty label (a leading, trailing or double dot): " + HOST_RULE),
    ("validate_entry_sftp_host_port_not_a_number", "validate",
     {"apps": [{"replica": {"type": "sftp", "host": "backup:ssh", "user": "bk", "path": "b", "host_key": "k"}}]},
     INVENTORY % ("this host", "changed") + "replica.host: 'backup:ssh' has the port 'ssh': a port is a whole number "
     "from 1 to 65535"),
]


def test_the_rows_have_distinct_names():
    names = [case[0] for case in CASES]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("module, options, message", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_out_of_range_input_is_refused_before_anything_happens(sandbox, no_commands, module, options, message):
    name, build = MODULES[module]
    main = importlib.import_module("ansible_collections.dokku_sqlite.litestream.plugins.modules." + name).main
    options = fill(options, sandbox)
    if options.get("apps"):  # an entry of app blog, its file replica outside the sandbox's storage
        options["apps"] = [dict(entry(sandbox), **item) for item in options["apps"]]
    args = build(sandbox, **options)
    before = snapshot(sandbox.parent)
    result = run_module(main, args, fail=True)
    assert result["msg"] == fill(message, sandbox)
    assert no_commands == [] and snapshot(sandbox.parent) == before
    assert result.get("changed", False) is False
