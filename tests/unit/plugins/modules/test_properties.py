# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Properties of every module's main(), over generated input (Hypothesis).

`replica` is generated as a dictionary (or null), not as text: for text, ansible-core's own argument
check fails with "dictionary requested, could not parse JSON or key=value", before the module runs and
without the option's name.

For any input, a module either exits successfully or fails with a message that names one of the options
it was given. It never raises anything else, never writes or removes anything outside the sandbox roots
it was given (a parent directory with a canary file is snapshotted around each run, and temporary files
must be gone afterwards), and never returns a generated secret anywhere in its result.

dokku and docker are fakes (answers like a healthy host; `litestream restore` writes a real SQLite file),
so every example runs in-process in milliseconds. derandomize=True: the same examples on every run and in
CI; a failure prints the input that shows it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import storage_core
from ansible_collections.dokku_sqlite.litestream.plugins.modules import (
    dokku_storage, litestream_auth, litestream_drill_report, litestream_replica, litestream_restore)

from .conftest import ExitJson, FailJson
from .test_litestream_restore import FakeLitestream

SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
UID, GID = os.getuid(), os.getgid()

# ---- strategies ------------------------------------------------------------------------------------------

NASTY = ["", ".", "..", "/", "//", "../..", "a/../../b", "./x", "$HOME", "${HOME}/x", "$(id)", "`id`", "%s",
         "%(x)s", "%", "100%", "~", "~root/x", "\n", "x\n", "\r\n", "\t", "-rf", "--privileged", "a:b", "a b", " ",
         "'", '"', "\\", "\x00", "\x1b[31m", u"\U0001F600", u"\u00b2", u"\u202e", "a" * 300, "x" * 5000,
         "production.sqlite3-wal", ".hidden", "blog", "lab", "0644", "644", "4755", "-1", "true", "null", "[]",
         "s3://bucket/x", "file:///etc", "file://relative", "sftp://u@h/srv", "http://127.0.0.1:9000",
         "https://minio:9000/", "gs://b/x", "abs://acct@c/x"]
# characters that break naive code: separators, quoting, format directives, control, non-ASCII. No lone
# surrogate: AnsibleModule itself fails on one in an option that is not no_log (it logs the invocation as
# UTF-8) before a module's code runs; test_hostile_inputs.py has the rows where one reaches the modules.
ALPHABET = st.sampled_from(list("/.$%~:@?#&=' \"\\\n\t-_aZ9") + [u"\x00", u"\x7f", u"\u00e9", u"\U0001F600",
                                                                 u"\u2028"])
TEXT = st.one_of(
    st.sampled_from(NASTY),
    st.text(ALPHABET, max_size=30),
    st.text(max_size=30),
    st.builds(lambda a, b: a + b, st.sampled_from(NASTY), st.text(ALPHABET, max_size=10)),
    st.text(ALPHABET, min_size=250, max_size=400),
)


def secret_text():
    """A distinctive secret (so finding it in a result is a leak, not a coincidence) with hostile characters.

    Valid Unicode: it is also stored in the sandbox's credential set (a lone surrogate is TEXT's job)."""
    alphabet = st.sampled_from(list("/.$%~:@?#&=' \"\\\n\t-_aZ9") + [u"\x7f", u"\u00e9", u"\U0001F600", u"\u2028"])
    return st.builds(lambda body: u"S3cr3T-" + body + u"-9zQ", st.text(alphabet, max_size=12))


def url_with_credentials(secret):
    return st.builds(lambda scheme, user, host, path: "%s://%s:%s@%s/%s" % (scheme, user, secret, host, path),
                     st.sampled_from(["s3", "sftp", "https", "http", "gs", "abs", "file"]),
                     st.sampled_from(["AKIA", "bk", "", "u:v"]), st.sampled_from(["bucket", "minio:9000", "h", ""]),
                     st.sampled_from(["x", "", "../..", "a/b"]))


def weighted(valid, others, valid_share):
    """`valid` in valid_share of (valid_share + 2) draws, else one of `others` or hostile text (a sampled index:
    Hypothesis does not weight the branches of one_of)."""
    def pick(index):
        if index < valid_share:
            return st.just(valid)
        return st.sampled_from(others) if others and index == valid_share else TEXT
    return st.sampled_from(range(valid_share + 2)).flatmap(pick)


def one_in(n, rare, usual):
    """`rare` in one draw of n, else `usual`."""
    return st.sampled_from(range(n)).flatmap(lambda index: rare if index == 0 else usual)


def maybe(valid, *others):
    """A value for a text option: mostly a valid one (so runs also get past validation and act), else hostile
    text or one of `others` (other sensible values, wrong types)."""
    return weighted(valid, others, 6)


def typed(valid, *others):
    """A value for a typed option (int, bool, list): rarely text, which Ansible's own check refuses by name."""
    return weighted(valid, others, 10)


def replica_strategy(secret, sandbox):
    good_s3 = {"type": "s3", "bucket": "backups", "path": "blog", "endpoint": "http://127.0.0.1:9000",
               "credentials": "lab"}
    fields = st.fixed_dictionaries({}, optional={
        "type": maybe("s3", "file", "sftp", "gs", "abs", "gcs"),
        "url": st.one_of(TEXT, url_with_credentials(secret), st.just("s3://backups/blog"),
                         st.just("file://%s/replicas/blog" % sandbox), st.just("sftp://bk@h:22/srv/b")),
        "bucket": maybe("backups", "My_Bucket", "192.168.0.1"),
        "path": maybe("blog", "/srv/r", sandbox + "/replicas"),
        "endpoint": st.one_of(maybe("http://127.0.0.1:9000"), url_with_credentials(secret)),
        "region": maybe("eu-1"),
        "sync_interval": maybe("1s", 5),
        "host": maybe("backup:22"), "user": maybe("bk"), "host_key": maybe("ssh-ed25519 AAAA"),
        "credentials": maybe("lab", "missing"),
        "force_path_style": typed(True, False), "skip_verify": typed(False, True),
    })
    good_file = {"type": "file", "path": sandbox + "/replicas/blog"}
    return st.sampled_from(range(6)).flatmap(lambda index: [
        fields, st.builds(lambda extra: dict(good_s3, **extra), fields), st.just(good_file)][index] if index < 3
        else st.just(good_s3))


@st.composite
def storage_args(draw, sandbox, secret):
    return draw(st.fixed_dictionaries({"app": maybe("blog", "..", "")}, optional={
        "storage": maybe("blog--db"), "mount_path": maybe("/app/db/litestream", "/"),
        "chown": maybe("herokuish", "paketo", "root", "false", "1000"), "create_app": typed(True, False),
        "restart": typed(True, False), "state": maybe("present", "absent"), "lock_timeout": typed(5, -1),
    }))


@st.composite
def replica_args(draw, sandbox, secret):
    args = draw(st.fixed_dictionaries({"app": maybe("blog", "..", ".", "")}, optional={
        "storage": maybe("blog--db"), "databases": st.one_of(st.lists(maybe("production.sqlite3"), max_size=3), TEXT),
        "image": maybe("litestream/litestream:0.5.17"), "network": maybe("host"),
        "metrics_port": typed(9090, 0, 70000, "x"), "shutdown_sync_timeout": typed(30, -5),
        "snapshot_interval": maybe("1h"), "snapshot_retention": maybe("24h"),
        "state": maybe("started", "present", "stopped", "absent"),
    }))
    args["replica"] = draw(one_in(10, st.none(), replica_strategy(secret, sandbox)))
    roots = {"config_root": "apps", "credentials_root": "credentials", "storage_root": "storage"}
    for option, sub in roots.items():
        args[option] = "%s/%s%s" % (sandbox, sub, draw(one_in(8, TEXT.map(lambda t: "/" + t), st.sampled_from(["", "/"]))))
    return args


@st.composite
def auth_args(draw, sandbox, secret):
    args = draw(st.fixed_dictionaries({}, optional={
        "name": maybe("lab", "default", "..", "new-set"), "state": maybe("present", "absent"),
        "access_key_id": maybe("AKIANEW"), "endpoint": st.one_of(maybe("http://127.0.0.1:9000"),
                                                                 url_with_credentials(secret)),
        "region": maybe("eu-1"), "plugin_compat": typed(False, True),
    }))
    if draw(st.booleans()):  # a key pair, mostly: the common case, which gets past the option checks
        args.update(access_key_id=args.get("access_key_id", "AKIANEW"), secret_access_key=secret)
    for field in ("secret_access_key", "session_token", "ssh_private_key", "sftp_password"):
        if draw(st.integers(0, 3)) == 0:
            args[field] = secret
    args["credentials_root"] = "%s/credentials%s" % (sandbox, draw(st.one_of(st.just(""), TEXT.map(lambda t: "/" + t))))
    return args


@st.composite
def restore_args(draw, sandbox, secret):
    args = draw(st.fixed_dictionaries({}, optional={
        "database": maybe("production.sqlite3"), "name": maybe("restored.sqlite3"),
        "timestamp": maybe("2026-11-25T12:00:05Z"), "txid": maybe("0000000000000001", "zz"),
        "if_replica_exists": typed(True, False), "on_existing": maybe("fail", "skip", "replace"),
        "chown": maybe("false", "herokuish"), "mode": maybe("0644", 644, "4755", True),
        "verify": st.one_of(st.just({"tables": ["events"], "min_rows": {"events": 1}}), st.just({"integrity": "quick"}),
                            st.fixed_dictionaries({}, optional={"tables": st.lists(TEXT, max_size=2),
                                                                "integrity": maybe("full", "none")})),
        "image": maybe("litestream/litestream:0.5.17"), "dry_run_timeout": typed(0, 5, -1),
    }))
    if "chown" not in args:
        args.update(owner=UID, group=GID)
    args["replica"] = draw(one_in(10, st.none(), replica_strategy(secret, sandbox)))
    args["credentials_root"] = "%s/credentials" % sandbox
    args["dest"] = "%s/storage%s" % (sandbox, draw(st.one_of(st.just("/blog--db"), TEXT.map(lambda t: "/" + t))))
    return args


@st.composite
def drill_report_args(draw, sandbox, secret):
    result = st.fixed_dictionaries({"host": maybe("h1"), "app": maybe("blog"), "status": maybe("ok", "failed")},
                                   optional={"database": maybe("production.sqlite3"), "message": TEXT,
                                             "lag_seconds": typed(1.5, None), "rows": typed(3, None)})
    args = {"results": draw(one_in(8, TEXT, st.lists(result, max_size=3))),
            # the report's directory is the user's own choice on the controller, where '../reports' is a fair
            # way to name one: '..' is allowed there, so it is not generated here (it would leave the sandbox)
            "dest": "%s/reports%s" % (sandbox, draw(st.one_of(st.just(""), TEXT.map(
                lambda t: "/" + "/".join("_" if part == ".." else part for part in t.split("/"))))))}
    args.update(draw(st.fixed_dictionaries({}, optional={"name": maybe("drill-report"), "suite": maybe("drill")})))
    return args


# ---- the sandbox and the fakes ---------------------------------------------------------------------------

def make_sandbox(parent, secret):
    """<parent>/canary.txt beside <parent>/sandbox/{apps/blog, credentials/lab, storage/blog--db, tmp}."""
    (parent / "canary.txt").write_text("do not touch")
    top = parent / "sandbox"
    (top / "apps" / "blog").mkdir(parents=True)
    (top / "apps" / "blog" / "litestream.yml").write_text("dbs: []\n")
    creds = top / "credentials" / "lab"
    creds.mkdir(parents=True)
    os.chmod(str(top / "credentials"), 0o700)
    os.chmod(str(creds), 0o700)
    data = {"access_key_id": "AKIALAB", "secret_access_key": secret, "sftp_password": secret}
    (creds / "credentials.json").write_text(json.dumps(data))
    os.chmod(str(creds / "credentials.json"), 0o600)
    (creds / "ssh_key").write_text(secret + "\n")
    os.chmod(str(creds / "ssh_key"), 0o600)
    (top / "storage" / "blog--db").mkdir(parents=True)
    (top / "tmp").mkdir()
    return top


def outside(parent):
    """Everything under parent except the sandbox, with mode, owner, mtime and content."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(str(parent)):
        if dirpath == str(parent):
            dirnames[:] = [d for d in dirnames if d != "sandbox"]
        for entry in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
            st_ = os.lstat(entry)
            content = open(entry, "rb").read() if stat.S_ISREG(st_.st_mode) else None
            found[entry] = (st_.st_mode, st_.st_uid, st_.st_gid, st_.st_mtime_ns, content)
    return found


class GenericHost:
    """A healthy Dokku host: the app exists with no mounts and runs; no sidecar yet; images present."""

    def __call__(self, module, argv, **kwargs):
        tail = list(argv[1:])
        if argv[0].endswith("dokku"):
            answers = {"version": "dokku version 0.38.27\n", "storage:list": "[]", "--quiet": "true\n"}
            return 0, answers.get(tail[0], ""), ""
        if tail[:1] == ["info"]:
            return 0, "[]\n", ""
        if tail[:2] == ["container", "inspect"]:
            return 1, "", "Error: No such container: %s" % tail[-1]
        if tail[:2] == ["image", "inspect"]:
            return 0, "sha256:abc\n", ""
        return 0, "", ""


def _fail_json(self, msg, **kwargs):
    kwargs.update(failed=True, msg=msg, _options=spec_names(getattr(self, "argument_spec", None)))
    raise FailJson(kwargs)


@pytest.fixture
def host(monkeypatch):
    """The fake answering run_command for the current example (restore: a fake `litestream restore`)."""
    current = {"fake": GenericHost()}

    def run_command(self, argv, **kwargs):
        return current["fake"](self, argv, **kwargs)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)
    return current


def strings(value):
    """Every string in a result, keys included, at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


def spec_names(spec):
    """Every option and suboption name of an argument spec."""
    names = set()
    for name, options in (spec or {}).items():
        names.add(name)
        names.update(spec_names(options.get("options")))
    return names


def names_an_option(msg, names):
    """The message holds an option's name as a word of its own ('replica.url', 'dest:', 'state=present')."""
    return any(re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(name), msg) for name in names)


def check_run(main, args, parent, sandbox, secret, check, diff):
    before = outside(parent)
    try:
        result = run_module_any(main, args, check, diff)
    finally:
        leftovers = os.listdir(str(sandbox / "tmp"))
    assert outside(parent) == before, "something outside the sandbox changed"
    assert leftovers == [], "temporary files left behind: %r" % leftovers
    for text in strings(result):
        assert secret not in text, "the secret is in the result: %r" % text[:200]
    # pytest --hypothesis-show-statistics shows how many runs got past validation and acted
    event("failed" if result.get("failed") else "changed" if result.get("changed") else "ok")
    if result.get("failed"):
        msg = result["msg"]
        assert names_an_option(msg, result["_options"]), "the message names no option: %r" % msg
    return result


def run_module_any(main, args, check, diff):
    """main()'s result whether it exited or failed; any other exception propagates (and fails the property).

    A failure's result also gets `_options`: the option names of the module's argument spec (with the
    suboptions), which the message must name one of (a missing option is named too: "sftp replica needs
    host_key")."""
    args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args):
        try:
            main()
        except ExitJson as exc:
            return exc.args[0]
        except FailJson as exc:
            return exc.args[0]
    raise AssertionError("main() returned without exit_json or fail_json")


def property_test(build, main, fake=None, patch=None):
    @SETTINGS
    @given(data=st.data(), check=st.booleans(), diff=st.booleans(), secret=secret_text())
    def test(tmp_path, host, monkeypatch, data, check, diff, secret):
        parent = Path(tempfile.mkdtemp(dir=str(tmp_path)))
        sandbox = make_sandbox(parent, secret)
        monkeypatch.setattr(tempfile, "tempdir", str(sandbox / "tmp"))
        monkeypatch.setattr(storage_core, "STORAGE_ROOT", str(sandbox / "storage"))
        host["fake"] = fake() if fake else GenericHost()
        args = data.draw(build(str(sandbox), secret), label="args")
        try:
            check_run(main, args, parent, sandbox, secret, check, diff)
        finally:
            shutil.rmtree(str(parent))
    return test


test_dokku_storage_properties = property_test(storage_args, dokku_storage.main)
test_litestream_replica_properties = property_test(replica_args, litestream_replica.main)
test_litestream_auth_properties = property_test(auth_args, litestream_auth.main)
test_litestream_restore_properties = property_test(restore_args, litestream_restore.main, fake=FakeLitestream)
test_litestream_drill_report_properties = property_test(drill_report_args, litestream_drill_report.main)


def test_the_property_runner_sees_both_outcomes(tmp_path, host):
    """run_module_any returns exit_json and fail_json results alike, and lets other exceptions through."""
    ok = run_module_any(litestream_drill_report.main, {"results": [], "dest": str(tmp_path / "r")}, False, False)
    assert not ok.get("failed")
    bad = run_module_any(litestream_drill_report.main, {"results": "x", "dest": str(tmp_path / "r")}, False, False)
    assert bad["failed"] and "results" in bad["msg"]
