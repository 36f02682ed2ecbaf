# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_auth, driven through main() against a credentials_root under tmp_path."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import auth_core, owned
from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_auth

from .conftest import assert_no_secret, run_module, snapshot

KEY = "AKIAEXAMPLEKEY123456"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYsecretONE"
SECRET2 = "Zm9vYmFyYmF6cXV4c2Vjb25kLXNlY3JldC12YWx1ZQ"
TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKEN"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUtEXAMPLE\n-----END OPENSSH PRIVATE KEY-----"
SFTP_PASSWORD = "hunter2-sftp-password"


@pytest.fixture(autouse=True)
def patched(monkeypatch):
    # deterministic whatever the machine: no dokku user unless a test says so
    monkeypatch.setattr(auth_core, "dokku_ids", lambda: None)


@pytest.fixture
def root(tmp_path):
    return tmp_path / "config" / "litestream" / "credentials"


def run(args, check=False, diff=False, fail=False):
    return run_module(litestream_auth.main, args, check=check, diff=diff, fail=fail)


def s3_args(root, **extra):
    args = dict(credentials_root=str(root), access_key_id=KEY, secret_access_key=SECRET)
    args.update(extra)
    return args


def mode(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


# ---- present -----------------------------------------------------------------------------------

def test_create_writes_root_only_files(root):
    result = run(s3_args(root, endpoint="http://127.0.0.1:9000", region="us-east-1"))
    setdir = root / "default"
    cred = setdir / "credentials.json"
    assert result["changed"] is True
    assert result["name"] == "default"
    assert result["path"] == str(setdir)
    assert result["fields"] == ["access_key_id", "endpoint", "region", "secret_access_key"]
    assert result["changed_fields"] == result["fields"]
    assert result["files"] == [str(root.parent.parent), str(root.parent), str(root), str(setdir), str(cred)]
    for directory in (root.parent.parent, root.parent, root, setdir):
        assert mode(directory) == 0o700
    assert mode(cred) == 0o600
    st = os.stat(str(cred))
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert json.loads(cred.read_text()) == {
        "access_key_id": KEY, "secret_access_key": SECRET,
        "endpoint": "http://127.0.0.1:9000", "region": "us-east-1",
    }
    # no temp file left behind; the marker tells later runs that this module made the directory
    assert sorted(os.listdir(str(setdir))) == [owned.MARKER, "credentials.json"]
    assert (setdir / owned.MARKER).read_text() == "credential set\n" and mode(setdir / owned.MARKER) == 0o600
    assert (root / owned.MARKER).read_text() == "credentials root\n"
    assert_no_secret(result, SECRET)


def test_second_run_changes_nothing(root):
    args = s3_args(root, session_token=TOKEN, region="auto")
    run(args)
    before = snapshot(root)
    result = run(args, diff=True)
    assert result["changed"] is False
    assert result["changed_fields"] == []
    assert result["files"] == []
    assert result["fields"] == ["access_key_id", "region", "secret_access_key", "session_token"]
    assert json.loads(result["diff"]["before"]) == json.loads(result["diff"]["after"])
    assert snapshot(root) == before


def test_changed_secret_is_reported_by_name_only(root):
    run(s3_args(root))
    result = run(s3_args(root, secret_access_key=SECRET2), diff=True)
    assert result["changed"] is True
    assert result["changed_fields"] == ["secret_access_key"]
    assert result["files"] == [str(root / "default" / "credentials.json")]
    assert json.loads((root / "default" / "credentials.json").read_text())["secret_access_key"] == SECRET2
    assert_no_secret(result, SECRET, SECRET2)


def test_fields_not_given_any_more_are_dropped(root):
    run(s3_args(root, region="eu-central-1", endpoint="https://s3.example.test"))
    result = run(s3_args(root, endpoint="https://s3.example.test"))
    assert result["changed"] is True
    assert result["changed_fields"] == ["region"]
    assert json.loads((root / "default" / "credentials.json").read_text()) == {
        "access_key_id": KEY, "secret_access_key": SECRET, "endpoint": "https://s3.example.test"}


def test_sets_are_independent(root):
    run(s3_args(root))
    other = run(s3_args(root, name="r2_backup-2", secret_access_key=SECRET2))
    assert other["path"] == str(root / "r2_backup-2")
    assert json.loads((root / "default" / "credentials.json").read_text())["secret_access_key"] == SECRET
    assert json.loads((root / "r2_backup-2" / "credentials.json").read_text())["secret_access_key"] == SECRET2


def test_ssh_key_gets_its_own_file_with_trailing_newline(root):
    result = run(dict(credentials_root=str(root), name="sftp", ssh_private_key=SSH_KEY))
    key = root / "sftp" / "ssh_key"
    assert result["fields"] == ["ssh_private_key"]
    assert key.read_text() == SSH_KEY + "\n"
    assert mode(key) == 0o600
    assert json.loads((root / "sftp" / "credentials.json").read_text()) == {}
    assert run(dict(credentials_root=str(root), name="sftp", ssh_private_key=SSH_KEY + "\n"))["changed"] is False
    assert_no_secret(result, "OPENSSH PRIVATE KEY")


def test_switching_from_ssh_key_to_password_removes_the_key(root):
    run(dict(credentials_root=str(root), name="sftp", ssh_private_key=SSH_KEY))
    result = run(dict(credentials_root=str(root), name="sftp", sftp_password=SFTP_PASSWORD), diff=True)
    assert result["changed_fields"] == ["sftp_password", "ssh_private_key"]
    assert not (root / "sftp" / "ssh_key").exists()
    assert json.loads((root / "sftp" / "credentials.json").read_text()) == {"sftp_password": SFTP_PASSWORD}
    assert json.loads(result["diff"]["before"])["ssh_private_key"] == "<redacted>"
    assert "ssh_private_key" not in json.loads(result["diff"]["after"])
    assert_no_secret(result, SFTP_PASSWORD, "OPENSSH PRIVATE KEY")


SA_SECRET = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjEXAMPLEserviceACCOUNT"
SERVICE_ACCOUNT = json.dumps({
    "type": "service_account", "client_email": "ls@lab.iam.gserviceaccount.com",
    "private_key": "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % SA_SECRET})


def test_a_service_account_gets_its_own_root_only_file_and_is_never_shown(root):
    result = run(dict(credentials_root=str(root), name="gcs", service_account_json=SERVICE_ACCOUNT), diff=True)
    stored = root / "gcs" / "gcp-service-account.json"
    assert result["fields"] == ["service_account_json"] and result["changed"] is True
    assert stored.read_text() == SERVICE_ACCOUNT + "\n" and mode(stored) == 0o600
    assert (os.lstat(str(stored)).st_uid, os.lstat(str(stored)).st_gid) == (0, 0)
    assert json.loads((root / "gcs" / "credentials.json").read_text()) == {}
    assert json.loads(result["diff"]["after"])["service_account_json"] == "<redacted>"
    assert_no_secret(result, SA_SECRET, "ls@lab.iam")
    before = snapshot(root)
    assert run(dict(credentials_root=str(root), name="gcs", service_account_json=SERVICE_ACCOUNT))["changed"] is False
    assert snapshot(root) == before
    # an access key pair instead: the key file goes
    result = run(dict(credentials_root=str(root), name="gcs", access_key_id=KEY, secret_access_key=SECRET))
    assert "service_account_json" in result["changed_fields"] and not stored.exists()


@pytest.mark.parametrize("value, message", [
    ("{'type': 'service_account', 'private_key': '%s'}" % SA_SECRET,
     "service_account_json: is not JSON (the value is not shown: it is a secret)"),
    (json.dumps({"type": "service_account", "private_key": SA_SECRET}),
     "service_account_json: the JSON object has no client_email (the value is not shown)"),
    (json.dumps([SA_SECRET]), "service_account_json: holds a JSON array, not an object (the value is not shown)"),
])
def test_a_service_account_that_is_no_key_file_fails_and_writes_nothing(root, value, message):
    result = run(dict(credentials_root=str(root), name="gcs", service_account_json=value), fail=True)
    assert result["msg"].startswith(message)
    assert_no_secret(result, SA_SECRET)
    assert not root.exists()


def test_unreadable_json_is_rewritten(root):
    run(s3_args(root))
    cred = root / "default" / "credentials.json"
    cred.write_text('{"secret_access_key": "' + SECRET + '"')  # truncated: not JSON
    result = run(s3_args(root))
    assert result["changed"] is True
    assert result["changed_fields"] == ["access_key_id", "secret_access_key"]
    assert json.loads(cred.read_text())["secret_access_key"] == SECRET
    assert_no_secret(result, SECRET)


# ---- check mode and diff -----------------------------------------------------------------------

def test_check_mode_creates_nothing(root):
    result = run(s3_args(root, region="auto"), check=True, diff=True)
    assert result["changed"] is True
    assert result["fields"] == ["access_key_id", "region", "secret_access_key"]
    assert str(root / "default" / "credentials.json") in result["files"]
    assert not root.parent.parent.exists()
    assert_no_secret(result, SECRET)


def test_check_mode_changes_nothing_on_an_existing_set(root):
    run(s3_args(root))
    os.chmod(str(root / "default" / "credentials.json"), 0o644)
    before = snapshot(root)
    result = run(s3_args(root, secret_access_key=SECRET2), check=True)
    assert result["changed"] is True
    assert result["changed_fields"] == ["secret_access_key"]
    assert snapshot(root) == before


def test_check_mode_absent_removes_nothing(root):
    run(s3_args(root))
    before = snapshot(root)
    result = run(dict(credentials_root=str(root), state="absent"), check=True)
    assert result["changed"] is True
    assert snapshot(root) == before


def test_diff_redacts_secrets_and_shortens_the_key_id(root):
    cred = str(root / "default" / "credentials.json")
    first = run(s3_args(root, session_token=TOKEN, endpoint="http://127.0.0.1:9000", region="us-east-1"),
                diff=True)
    # Ansible's text form: --diff shows one line per field and file, under the set's path
    assert first["diff"]["before_header"] == first["diff"]["after_header"] == str(root / "default")
    assert '\n  "secret_access_key": "<redacted>",\n' in first["diff"]["after"]
    assert json.loads(first["diff"]["before"]) == {"files": {}}
    after = json.loads(first["diff"]["after"])
    assert after["access_key_id"] == u"AKIA\u2026"
    assert after["secret_access_key"] == "<redacted>"
    assert after["session_token"] == "<redacted>"
    assert after["endpoint"] == "http://127.0.0.1:9000"
    assert after["region"] == "us-east-1"
    assert after["files"][cred] == "0600 root:root"
    assert after["files"][str(root / "default")] == "0700 root:root"
    assert_no_secret(first, KEY, SECRET, TOKEN)

    second = run(s3_args(root, secret_access_key=SECRET2, session_token=TOKEN, endpoint="http://127.0.0.1:9000",
                         region="us-east-1"), diff=True)
    assert json.loads(second["diff"]["before"])["secret_access_key"] == "<redacted>"
    assert json.loads(second["diff"]["after"])["secret_access_key"] == "<redacted> (changed)"
    assert json.loads(second["diff"]["after"])["session_token"] == "<redacted>"
    assert json.loads(second["diff"]["before"])["files"][cred] == "0600 root:root"
    assert_no_secret(second, KEY, SECRET, SECRET2, TOKEN)


def test_diff_marks_a_changed_key_id_with_the_same_prefix(root):
    run(s3_args(root))
    result = run(s3_args(root, access_key_id="AKIAOTHERKEY"), diff=True)
    assert result["changed_fields"] == ["access_key_id"]
    assert json.loads(result["diff"]["before"])["access_key_id"] == u"AKIA\u2026"
    assert json.loads(result["diff"]["after"])["access_key_id"] == u"AKIA\u2026 (changed)"


# ---- drift -------------------------------------------------------------------------------------

def test_mode_and_owner_drift_is_put_back(root):
    run(s3_args(root))
    setdir, cred = root / "default", root / "default" / "credentials.json"
    os.chmod(str(cred), 0o644)
    os.chown(str(cred), 4242, 4242)
    os.chmod(str(setdir), 0o755)
    os.chmod(str(root), 0o755)
    content = cred.read_bytes()
    result = run(s3_args(root), diff=True)
    assert result["changed"] is True
    assert result["changed_fields"] == []
    assert result["files"] == [str(root), str(setdir), str(cred)]
    assert (mode(root), mode(setdir), mode(cred)) == (0o700, 0o700, 0o600)
    assert (os.stat(str(cred)).st_uid, os.stat(str(cred)).st_gid) == (0, 0)
    assert cred.read_bytes() == content
    assert json.loads(result["diff"]["before"])["files"][str(cred)] == "0644 4242:4242"
    assert json.loads(result["diff"]["after"])["files"][str(cred)] == "0600 root:root"
    assert run(s3_args(root))["changed"] is False


def test_set_path_that_is_not_a_directory_fails(root):
    root.mkdir(parents=True)
    (root / "default").write_text("not a set")
    result = run(s3_args(root), fail=True)
    assert "is not a directory" in result["msg"]
    assert (root / "default").read_text() == "not a set"


# ---- absent ------------------------------------------------------------------------------------

def test_absent_removes_only_that_set(root):
    run(s3_args(root))
    run(dict(credentials_root=str(root), name="sftp", ssh_private_key=SSH_KEY))
    result = run(dict(credentials_root=str(root), name="sftp", state="absent"), diff=True)
    assert result["changed"] is True
    assert result["fields"] == []
    assert result["changed_fields"] == ["ssh_private_key"]
    assert result["files"] == [str(root / "sftp")]
    assert not (root / "sftp").exists()
    assert (root / "default" / "credentials.json").exists()
    assert json.loads(result["diff"]["after"]) == {"files": {}}
    assert str(root / "sftp" / "ssh_key") in json.loads(result["diff"]["before"])["files"]
    assert_no_secret(result, "OPENSSH PRIVATE KEY")


def test_absent_on_a_missing_set_is_unchanged(root):
    result = run(dict(credentials_root=str(root), name="nothing-here", state="absent"))
    assert result["changed"] is False
    assert result["files"] == []
    assert result["changed_fields"] == []
    assert not root.exists()


# ---- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (dict(name="Default"), "name: 'Default' is not a valid credential set name"),
    (dict(name="../escape"), "name: '../escape' is not a valid credential set name"),
    (dict(name="-dash"), "name: '-dash' is not a valid credential set name"),
    (dict(endpoint="127.0.0.1:9000"),
     "endpoint: '127.0.0.1:9000' has no scheme: write http:// or https:// (Litestream 0.5 forces https on a "
     "bare host:port and then hangs against a plain-HTTP server)"),
    (dict(secret_access_key=None), "access_key_id needs secret_access_key: give both or neither"),
    (dict(access_key_id=None), "secret_access_key needs access_key_id: give both or neither"),
    (dict(access_key_id=None, secret_access_key=None, session_token=TOKEN),
     "session_token needs access_key_id and secret_access_key"),
    (dict(access_key_id=None, secret_access_key=None, region="auto"),
     "state=present needs a secret to store: access_key_id with secret_access_key, ssh_private_key or "
     "sftp_password"),
    (dict(secret_access_key=""), "secret_access_key is empty"),
    (dict(access_key_id=None, secret_access_key=None, sftp_password="x", plugin_compat=True),
     "plugin_compat needs access_key_id and secret_access_key"),
    (dict(credentials_root="relative/creds"), "credentials_root: 'relative/creds' must be an absolute path"),
])
def test_bad_input_fails_and_writes_nothing(tmp_path, root, args, message):
    full = s3_args(root)
    full.update(args)
    full = dict((k, v) for k, v in full.items() if v is not None)
    result = run(full, fail=True)
    assert result["msg"].startswith(message)
    assert_no_secret(result, SECRET, TOKEN)
    assert os.listdir(str(tmp_path)) == []


def test_not_root_fails(root, monkeypatch):
    monkeypatch.setattr(litestream_auth.os, "geteuid", lambda: 1000)
    result = run(s3_args(root), fail=True)
    assert result["msg"].startswith("litestream_auth must run as root")
    assert not root.exists()


# ---- plugin_compat -----------------------------------------------------------------------------

def test_plugin_compat_writes_the_plugin_files(root):
    result = run(s3_args(root, plugin_compat=True))
    files = [root / "ACCESS_KEY_ID", root / "SECRET_ACCESS_KEY"]
    assert [str(f) for f in files] == result["files"][-2:]
    assert files[0].read_text() == KEY + "\n"
    assert files[1].read_text() == SECRET + "\n"
    for path in files:
        assert mode(path) == 0o600
        assert (os.stat(str(path)).st_uid, os.stat(str(path)).st_gid) == (0, 0)  # no dokku user here
    assert mode(root) == 0o700
    assert run(s3_args(root, plugin_compat=True))["changed"] is False

    changed = run(s3_args(root, plugin_compat=True, secret_access_key=SECRET2))
    assert changed["files"] == [str(root / "default" / "credentials.json"), str(files[1])]
    assert files[1].read_text() == SECRET2 + "\n"
    assert_no_secret(changed, SECRET, SECRET2)


def test_plugin_compat_files_belong_to_the_dokku_user(root, monkeypatch):
    monkeypatch.setattr(auth_core, "dokku_ids", lambda: (4242, 4343))
    run(s3_args(root, plugin_compat=True))
    for name in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY"):
        st = os.stat(str(root / name))
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 4242, 4343)
    st = os.stat(str(root))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o710, 0, 4343)
    assert mode(root.parent) == 0o711
    assert mode(root / "default") == 0o700
    assert run(s3_args(root, plugin_compat=True))["changed"] is False
    # another set without plugin_compat leaves the compat root alone (no tug of war between tasks)
    assert run(s3_args(root, name="other"))["files"] == [str(root / "other"), str(root / "other" / "credentials.json")]
    assert run(s3_args(root, plugin_compat=True))["changed"] is False


def test_plugin_compat_absent_removes_the_plugin_files(root):
    run(s3_args(root, plugin_compat=True))
    result = run(dict(credentials_root=str(root), state="absent", plugin_compat=True))
    assert result["files"] == [str(root / "default"), str(root / "ACCESS_KEY_ID"), str(root / "SECRET_ACCESS_KEY")]
    assert os.listdir(str(root)) == [owned.MARKER]
    assert run(dict(credentials_root=str(root), state="absent", plugin_compat=True))["changed"] is False


def test_absent_without_plugin_compat_keeps_the_plugin_files(root):
    run(s3_args(root, plugin_compat=True))
    run(dict(credentials_root=str(root), state="absent"))
    assert sorted(os.listdir(str(root))) == [owned.MARKER, "ACCESS_KEY_ID", "SECRET_ACCESS_KEY"]
