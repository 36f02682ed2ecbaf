# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""No secret in any output: every string option of every module x secret-looking values, generated.

The modules and their options are read from the modules themselves (each main() is run with AnsibleModule's
constructor replaced by a recorder, as ansible-test's validate-modules does), so a new module or option joins the
matrix by being declared. Raw entries (litestream_apps, peers, results, restored) are enumerated from the specs and
keys inventory.py, the report kinds and litestream_move_report check them against.

Each case runs main() through Ansible's REAL exit_json/fail_json (conftest's patched ones bypass the masking) with
every dokku/docker command failing, and asserts the secret appears nowhere in what the module prints: result,
invocation, msg, warnings, exception text, nor in a traceback if main() crashed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import importlib
import json
import pkgutil
import socket
import traceback
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common import parameters
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dokku_sqlite.litestream.plugins import modules as modules_package
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import inventory
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.dokku import storage_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.drill_report import DRILL
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.health_report import HEALTH
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.move_report import RESTORED_KEYS

# conftest patches these for every test of this directory; this test needs Ansible's own
REAL_EXIT_JSON = basic.AnsibleModule.exit_json
REAL_FAIL_JSON = basic.AnsibleModule.fail_json

STRING_TYPES = ("str", "path", "raw")
MASKS = ("********", "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER")
PEER = "dokku-2"
BASE_REPLICA = {"type": "s3", "bucket": "bkt", "path": "blog", "credentials": "lab"}
BASE_ENTRY = {"app": "blog", "replica": BASE_REPLICA}
BASE_RESULT = {"host": "dokku-1", "app": "blog", "database": "production.sqlite3", "status": "ok"}
# what makes each module get as far as it can; sandbox paths are added for every root by declaration
BASE_ARGS = {
    "dokku_storage": {"app": "blog"},
    "litestream_auth": {"name": "lab"},
    "litestream_drill": {"host": "dokku-1"},
    "litestream_replica": {"app": "blog", "replica": BASE_REPLICA, "state": "present"},
    "litestream_restore": {"replica": BASE_REPLICA},
    "litestream_standby": {"replica": BASE_REPLICA},
    "litestream_move_report": {"move_from": "dokku-1", "move_to": PEER,
                               "final_txids": {"production.sqlite3": "0000000000000005"}},
}
# one result of the move's restore loop, as litestream_move_report reads it (restored)
BASE_RESTORED = {"item": "production.sqlite3", "restored": True, "position": "0000000000000005",
                 "tables": {"events": 3}}


class Recorded(Exception):
    """Raised by the recording constructor: the module's declaration is all that was wanted."""


def module_names():
    return sorted(info.name for info in pkgutil.iter_modules(modules_package.__path__))


def module_main(name):
    return importlib.import_module("%s.%s" % (modules_package.__name__, name)).main


def declaration(name):
    """The keyword arguments the module builds its AnsibleModule with (argument_spec, required_if, ...)."""
    record = {}

    def recording_init(self, *args, **kwargs):
        record.update(kwargs)
        raise Recorded()

    with mock.patch.object(basic.AnsibleModule, "__init__", recording_init), patch_module_args({}):
        try:
            module_main(name)()
        except Recorded:
            pass
    assert "argument_spec" in record, "%s builds no AnsibleModule with an argument_spec keyword" % name
    return record


def entry_spec():
    """A litestream_apps entry as inventory.py checks it: its keys and the module options they stand for."""
    storage, sidecar = storage_argument_spec(), ls.sidecar_argument_spec()
    spec = dict((key, storage[option]) for key, option in inventory.STORAGE_KEYS.items())
    spec.update((key, sidecar[key]) for key in inventory.SIDECAR_KEYS)
    spec.update((key, {"type": "str"}) for key in inventory.HEALTH_KEYS)
    return spec


def result_spec(kind):
    """A report result's string keys, from the report kind's own key types."""
    return dict((key, {"type": "str"}) for key, kind_type in kind.keys.items() if kind_type is str)


def restored_spec():
    """A restore result's string keys, from the keys litestream_move_report reads (restored)."""
    return dict((key, {"type": "str"}) for key, kind in RESTORED_KEYS.items() if kind is str)


def raw_shapes(module):
    """Where the raw (undeclared) options' entries come from: option -> (path prefix, spec of an entry)."""
    results = HEALTH if module == "litestream_health_report" else DRILL
    return {"apps": ((0,), entry_spec()), "peers": ((PEER, 0), entry_spec()), "results": ((0,), result_spec(results)),
            "restored": ((0,), restored_spec())}


def string_slots(spec, shapes, path=()):
    """(path, declaration) of every place a string can go: options, suboptions, list elements, raw entries."""
    for name, option in sorted(spec.items()):
        kind, here = option.get("type", "str"), path + (name,)
        if option.get("options"):
            yield from string_slots(option["options"], {}, here + ((0,) if kind == "list" else ()))
        elif name in shapes:
            prefix, entry = shapes[name]
            yield from string_slots(entry, {}, here + prefix)
        elif kind in STRING_TYPES:
            yield here, option
        elif kind == "list" and option.get("elements", "str") in STRING_TYPES:
            yield here + (0,), option
        elif kind in ("dict", "list"):  # a raw container: one string inside it
            yield here + ((0,) if kind == "list" else ("note",)), {"type": "str"}


def sandbox_defaults(spec, top):
    """Every option whose default is an absolute path, moved under top: no case may touch this machine's roots."""
    return dict((name, str(top / name)) for name, option in spec.items()
                if isinstance(option.get("default"), str) and option["default"].startswith("/"))


def required_fillers(spec, top):
    """A plain value for each required option no BASE_ARGS entry gives."""
    fill = {"str": "blog", "path": None, "list": [], "dict": {}}
    out = {}
    for name, option in spec.items():
        if option.get("required"):
            kind = option.get("type", "str")
            out[name] = str(top / name) if kind == "path" else copy.deepcopy(fill.get(kind, "blog"))
    return out


def base_args(module, spec, top):
    args = sandbox_defaults(spec, top)
    args.update(required_fillers(spec, top))
    args.update(copy.deepcopy(BASE_ARGS.get(module, {})))
    return args


def templates(spec, top):
    """The first element put into a list that a slot descends into, by the list's name."""
    out = {"apps": BASE_ENTRY, PEER: BASE_ENTRY, "results": BASE_RESULT, "restored": BASE_RESTORED}
    for name, option in spec.items():
        if option.get("type") == "list" and option.get("options"):
            out[name] = sandbox_defaults(option["options"], top)
            out[name].update(name="lab")
    return out


def put(args, path, value, fill):
    """args with value at path (keys and list indexes), creating what is missing from the templates."""
    node, owner = args, None
    for key, following in zip(path, path[1:]):
        if isinstance(key, int):
            if not node:
                node.append(copy.deepcopy(fill.get(owner, {})))
            node = node[0]
            continue
        if not isinstance(node.get(key), (dict, list)):
            node[key] = [] if isinstance(following, int) else {}
        node[key] = copy.deepcopy(node[key])
        node, owner = node[key], key
    if isinstance(path[-1], int):
        node[:] = [value]
    else:
        node[path[-1]] = value
    return args


def secret_for(case_id):
    """A secret unique to the case, with the characters real secrets hold ('/', '+', '?', '#')."""
    digest = hashlib.sha256(case_id.encode("utf-8")).hexdigest()
    return "wJalr/%s+K7?MDENG#%s" % (digest[:12], digest[12:24])


def secret_values(secret):
    """The secret-looking values every string slot is tried with: kind -> value."""
    return {
        "url_userinfo": "s3://AKIAEXAMPLE:%s@bkt/blog" % secret,
        "query_endpoint": "s3://bkt/blog?endpoint=https://AKIAEXAMPLE:%s@minio.example.net" % secret,
        "sftp_password": "sftp://backup:%s@sftp.example.net/srv/b" % secret,
        "https_token": "https://%s@hc-ping.example.net/ping" % secret,
    }


def is_declared_secret(option):
    return bool(option.get("no_log"))


def slot_cases():
    for module in module_names():
        spec = declaration(module)["argument_spec"]
        for path, option in string_slots(spec, raw_shapes(module)):
            slot = ".".join(str(part) for part in path)
            kinds = list(secret_values("x")) + (["plain"] if is_declared_secret(option) else [])
            for kind in kinds:
                yield pytest.param(module, path, kind, id="%s:%s:%s" % (module, slot, kind))


def first(spec, wanted):
    """The name of the first option (sorted) for which wanted(option) holds, or None."""
    return next((name for name, option in sorted(spec.items()) if wanted(option)), None)


def validation_cases():
    """Cases that make AnsibleModule's own checks fail, a secret URL in the first string option beside them."""
    for module in module_names():
        spec = declaration(module)["argument_spec"]
        breakers = {"unknown_option": {"no_such_option": 1},
                    "unknown_secret_key": {"secret_acess_key": "{secret}"},
                    "secret_url_in_unknown_option": {"no_such_url": "s3://AKIAEXAMPLE:{secret}@bkt/x"}}
        number = first(spec, lambda o: o.get("type") in ("int", "float"))
        if number:
            breakers["wrong_type"] = {number: "not-a-number"}
        choice = first(spec, lambda o: o.get("choices") and o.get("type", "str") == "str")
        if choice:
            breakers["bad_choice"] = {choice: "no-such-choice"}
        mapping = first(spec, lambda o: o.get("type") == "dict")
        if mapping:
            breakers["url_for_a_dict"] = {mapping: "s3://AKIAEXAMPLE:{secret}@bkt/x"}
        for kind, extra in sorted(breakers.items()):
            yield pytest.param(module, extra, id="%s:%s" % (module, kind))


@pytest.fixture
def real_ansible_exits(monkeypatch, patched_exits, tmp_path):
    """Ansible's own exit_json/fail_json (with its masking), tracebacks on, every command failing, no network,
    no warning of an earlier test carried over, and the working directory a scratch one."""
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", REAL_EXIT_JSON)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", REAL_FAIL_JSON)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, argv, **kw: (1, "", "simulated failure"))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **kw: "/usr/bin/" + name)

    def no_network(*args, **kwargs):
        raise OSError("no network in unit tests")
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    fresh_warnings(monkeypatch)
    fresh_tracebacks(monkeypatch)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


def fresh_warnings(monkeypatch):
    """ansible-core keeps warnings in module globals across runs in one process: start each case empty."""
    from ansible.module_utils.common import warnings as ansible_warnings
    for name, value in vars(ansible_warnings).items():
        if name.startswith("_global_") and isinstance(value, (dict, list)):
            monkeypatch.setattr(ansible_warnings, name, type(value)())


def fresh_tracebacks(monkeypatch):
    """ansible-core caches which events get a traceback the first time it asks: ask again for this case."""
    try:
        from ansible.module_utils._internal import _traceback
    except ImportError:
        return
    if hasattr(_traceback, "_module_tracebacks_enabled_events"):
        monkeypatch.setattr(_traceback, "_module_tracebacks_enabled_events", None)


def run_printed(module, args, capsys):
    """Run the module's main() as Ansible would; returns all it printed (and the traceback if it crashed)."""
    args = dict(args, _ansible_tracebacks_for=["error", "warning", "deprecated"])
    if "inject_invocation" in parameters.PASS_VARS:  # ansible-core 2.21 echoes the invocation only when asked
        args["_ansible_inject_invocation"] = True
    crash = ""
    with patch_module_args(args):
        try:
            module_main(module)()
        except SystemExit:
            pass
        except Exception:  # a crash shows its traceback to the user: it must not hold the secret either
            crash = traceback.format_exc()
    out, err = capsys.readouterr()
    return out, err, crash


def assert_masked(module, out, err, crash, secret):
    assert not crash, "%s crashed instead of refusing: %s" % (module, crash.splitlines()[-1])
    printed = out.strip().splitlines()
    assert printed, "%s printed no result" % module
    result = json.loads(printed[-1])
    for text in (out, err, crash):
        assert secret not in text
    assert any(mask in out for mask in MASKS), "the secret was not in the invocation: the case tested nothing"
    return result


@pytest.mark.parametrize("module, path, kind", list(slot_cases()))
def test_no_secret_in_any_output(real_ansible_exits, capsys, tmp_path, module, path, kind):
    spec = declaration(module)["argument_spec"]
    secret = secret_for("%s:%s:%s" % (module, path, kind))
    value = secret if kind == "plain" else secret_values(secret)[kind]
    args = put(base_args(module, spec, tmp_path), path, value, templates(spec, tmp_path))
    assert_masked(module, *run_printed(module, args, capsys), secret=secret)


@pytest.mark.parametrize("module, extra", list(validation_cases()))
def test_no_secret_when_ansible_refuses_the_arguments(real_ansible_exits, capsys, tmp_path, module, extra):
    spec = declaration(module)["argument_spec"]
    secret = secret_for("%s:%r" % (module, sorted(extra)))
    args = base_args(module, spec, tmp_path)
    path, _option = next(string_slots(spec, raw_shapes(module)))
    put(args, path, secret_values(secret)["url_userinfo"], templates(spec, tmp_path))
    args.update((key, value.format(secret=secret) if isinstance(value, str) else value) for key, value in extra.items())
    result = assert_masked(module, *run_printed(module, args, capsys), secret=secret)
    assert result.get("failed"), "%s accepted %s" % (module, sorted(extra))


def test_every_module_is_in_the_matrix():
    """The matrix reads plugins/modules itself: all ten modules, each with string options."""
    names = module_names()
    assert len(names) >= 10
    covered = set(case.values[0] for case in slot_cases())
    assert covered == set(names)


# ---- (issue 20, review) no piece of a secret either: a message's cut or repr()-escaped part of one escapes Ansible's
# masking, which replaces a secret only where it stands whole; and a query value is a secret whatever its key's name
LONG = "Tq7vXkPzRmWbNcJhLfDgYsAeQuIoKy4Z"
SHOWN_CASES = {
    # litestream._parse_url's unknown scheme: the URL was cut to its first 50 and last 5 characters
    "query_value_in_a_refused_url": ({"url": "s3x://bkt/p?secret_access_key=" + LONG}, LONG),
    # validate.host_port's port: the endpoint was cut as well
    "token_in_a_refused_endpoint": (dict(BASE_REPLICA, endpoint="https://minio.example.net:99999/?token=" + LONG), LONG),
    # repr() writes a backslash as two: the secret no longer stood whole for the masking
    "backslash_in_a_refused_endpoint": (dict(BASE_REPLICA, endpoint="https://minio:99999/?token=Kq7v\\Xk9P"),
                                        "Kq7v\\Xk9P"),
    # echoed whole in the invocation: only secret-looking names were masked
    "abs_sas_signature": ({"url": "abs://acct@container/p?sv=2024-11-04&sig=" + LONG, "credentials": "lab"}, LONG),
    "sftp_password_in_the_query": ({"url": "sftp://bk@backup.example.net/srv/b?pwd=" + LONG,
                                    "host_key": "ssh-ed25519 AAAA", "credentials": "lab"}, LONG),
}


def all_strings_of(value):
    """Every string in a decoded result (JSON escapes undone: a repr()-escaped secret shows as it was printed)."""
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [str(key)] + all_strings_of(item)]
    if isinstance(value, list):
        return [text for item in value for text in all_strings_of(item)]
    return [value] if isinstance(value, str) else []


def leaked_pieces(texts, secret, size=5):
    pieces = set(secret[index:index + size] for index in range(len(secret) - size + 1))
    return sorted(piece for piece in pieces if any(piece in text for text in texts))


@pytest.mark.parametrize("module", ["litestream_replica", "litestream_restore", "litestream_standby"])
@pytest.mark.parametrize("case", sorted(SHOWN_CASES))
def test_no_piece_of_a_secret_in_any_output(real_ansible_exits, capsys, tmp_path, module, case):
    replica, secret = SHOWN_CASES[case]
    spec = declaration(module)["argument_spec"]
    args = dict(base_args(module, spec, tmp_path), replica=copy.deepcopy(replica))
    if module in ("litestream_restore", "litestream_standby"):  # so far that the replica is read
        args.update(dest=str(tmp_path / "storage" / "blog--db"), database="production.sqlite3")
    out, err, crash = run_printed(module, args, capsys)
    result = assert_masked(module, out, err, crash, secret)
    texts = [out, err] + all_strings_of(result)
    assert leaked_pieces(texts, secret) == [], result.get("msg")


@pytest.mark.parametrize("key", ["rows", "status"])
def test_no_piece_of_a_secret_in_a_report_refusal(real_ansible_exits, capsys, tmp_path, key):
    """A report result's bad value was quoted with %r: a backslash in it doubled, and the masking missed the rest."""
    secret = "Kq7v\\Xk9PzRmW"
    module = "litestream_drill_report"
    spec = declaration(module)["argument_spec"]
    args = dict(base_args(module, spec, tmp_path), results=[dict(BASE_RESULT, **{key: "s3://AKIA:%s@b" % secret})])
    out, err, crash = run_printed(module, args, capsys)
    result = assert_masked(module, out, err, crash, secret)
    assert result.get("failed") and "s3://********@b" in result["msg"]
    assert leaked_pieces([out, err] + all_strings_of(result), secret) == [], result["msg"]
