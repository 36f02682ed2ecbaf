# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A gs replica's service-account key through litestream_host, as a play runs it: stored and copied root 0600,
named by GOOGLE_APPLICATION_CREDENTIALS only in the credentials file, never printed; --check predicts its rotation
and a set's move between backends; a key the decoder cannot even read fails with a message, not a traceback."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import auth_core
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import service_account_problem
from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_host

from .conftest import run_module
from .test_litestream_host import IMAGE, SECRET, host  # noqa: F401 pylint: disable=unused-import
from .test_secret_matrix import real_ansible_exits, run_printed  # noqa: F401 pylint: disable=unused-import

PRIVATE = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjSECRETPRIVATEKEYBODY0123456789"
EMAIL = "ls-backup@proj.iam.gserviceaccount.com"
KEY_ID = "abc123def456"
# nested deeper than Python's recursion limit: json.loads raises RecursionError, not ValueError
DEEP = '{"type": "service_account", "client_email": "a@b", "x": ' + "[" * 100000 + "]" * 100000 + "}"


def service_account(private=PRIVATE):
    return json.dumps({"type": "service_account", "client_email": EMAIL, "private_key_id": KEY_ID,
                       "private_key": "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % private},
                      indent=2)


GS_SET = {"name": "gcs", "service_account_json": service_account()}
S3_SET = {"name": "gcs", "access_key_id": "AKIALAB", "secret_access_key": SECRET}


def gs_entry():
    replica = {"type": "gs", "bucket": "my-bkt", "path": "blog", "credentials": "gcs"}
    return {"app": "blog", "create": True, "replica": replica}


def s3_entry():
    return dict(gs_entry(), replica={"type": "s3", "bucket": "bkt", "path": "blog", "endpoint": "http://127.0.0.1:9000",
                                     "credentials": "gcs"})


def args(host, entry, cset):
    return {"apps": [entry], "credential_sets": [dict(cset, credentials_root=str(host.tmp / "credentials"))],
            "storage_root": str(host.tmp / "storage"), "config_root": str(host.tmp / "apps"),
            "credentials_root": str(host.tmp / "credentials"), "image": IMAGE, "first_sync_timeout": 0}


def leaks(result):
    text = json.dumps(result)
    return [s for s in (PRIVATE[10:30], EMAIL, KEY_ID, "R0TATED") if s in text]


def test_the_key_is_copied_root_only_named_in_the_credentials_file_and_never_shown(host):
    first = run_module(litestream_host.main, args(host, gs_entry(), GS_SET), diff=True)
    assert leaks(first) == []
    copied = host.tmp / "apps" / "blog" / "gcp-service-account.json"
    assert json.loads(copied.read_text())["private_key_id"] == KEY_ID
    assert stat.S_IMODE(os.lstat(str(copied)).st_mode) == 0o600
    env = (host.tmp / "apps" / "blog" / "credentials.env").read_text()
    assert env == "GOOGLE_APPLICATION_CREDENTIALS='/etc/litestream/gcp-service-account.json'\n"
    created = [c for c in host.calls if c[:3] == ["docker", "container", "create"]][0]
    assert not any(PRIVATE in a or "GOOGLE" in a for a in created), created
    assert run_module(litestream_host.main, args(host, gs_entry(), GS_SET), check=True, diff=True)["changed"] is False


def test_check_mode_predicts_a_rotated_key(host):
    run_module(litestream_host.main, args(host, gs_entry(), GS_SET))
    rotated = dict(GS_SET, service_account_json=service_account("R0TATED" + PRIVATE))
    predicted = run_module(litestream_host.main, args(host, gs_entry(), rotated), check=True, diff=True)
    real = run_module(litestream_host.main, args(host, gs_entry(), rotated), diff=True)
    assert leaks(predicted) == [] and leaks(real) == []
    assert predicted["apps"][0]["actions"] == real["apps"][0]["actions"]
    assert "restart container (secret rotated)" in real["apps"][0]["actions"]


@pytest.mark.parametrize("start,end", [((s3_entry, S3_SET), (gs_entry, GS_SET)), ((gs_entry, GS_SET), (s3_entry, S3_SET))],
                         ids=["keys-to-service-account", "service-account-to-keys"])
def test_check_mode_predicts_a_set_moving_between_backends(host, start, end):
    """Every gs user moves a set from access keys to service_account_json: --check must predict that run."""
    run_module(litestream_host.main, args(host, start[0](), start[1]))
    predicted = run_module(litestream_host.main, args(host, end[0](), end[1]), check=True)
    real = run_module(litestream_host.main, args(host, end[0](), end[1]))
    assert predicted["apps"][0]["actions"] == real["apps"][0]["actions"]
    stale = host.tmp / "apps" / "blog" / "gcp-service-account.json"
    assert stale.exists() == (end[1] is GS_SET)
    assert (host.tmp / "credentials" / "gcs" / "gcp-service-account.json").exists() == (end[1] is GS_SET)


def test_a_key_nested_too_deep_to_decode_is_not_json():
    assert service_account_problem(DEEP).startswith("service_account_json: is not JSON (the value is not shown")


@pytest.mark.parametrize("module", ["litestream_auth", "litestream_host", "litestream_validate", "litestream_drill"])
def test_a_key_nested_too_deep_fails_every_module_cleanly(real_ansible_exits, capsys, tmp_path, monkeypatch, module):
    monkeypatch.setattr(auth_core, "dokku_ids", lambda: None)
    cset = dict(name="gcs", credentials_root=str(tmp_path / "c"), service_account_json=DEEP)
    given = dict(cset) if module == "litestream_auth" else dict(credential_sets=[cset])
    if module == "litestream_drill":
        given.update(host="dokku-1", scratch_dir=str(tmp_path / "s" / "x"))
    if module == "litestream_host":
        given.update(parts=["credentials"], credentials_root=str(tmp_path / "c"), config_root=str(tmp_path / "a"),
                     storage_root=str(tmp_path / "st"))
    out, _err, crash = run_printed(module, given, capsys)
    assert not crash, crash.splitlines()[-1]
    assert json.loads(out.strip().splitlines()[-1])["failed"] is True
