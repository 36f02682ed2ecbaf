# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What no_log.py counts as a secret (the modules' matrix, test_secret_matrix.py, proves none is printed)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import no_log

SECRET = "wJalr/XUtn+K7?MDENG#bPx"


@pytest.mark.parametrize("text, expected", [
    ("s3://AKIA:%s@bucket/x" % SECRET, {"AKIA:" + SECRET, SECRET}),
    ("s3://bucket/x?endpoint=https://AKIA:%s@minio:9000" % SECRET, {"AKIA:" + SECRET, SECRET}),
    ("sftp://backup:%s@host/srv/b" % SECRET, {"backup:" + SECRET, SECRET}),
    ("https://%s@hc-ping.com/x" % SECRET, {SECRET}),
    ("backup:%s@host" % SECRET, {"backup:" + SECRET, SECRET}),
    ("s3://bucket/x?secret-access-key=%s&region=eu" % "ABCDEFGH", {"ABCDEFGH"}),
    # a password that itself looks like a scheme: the outer URL's whole user part is masked
    ("s3://AKIA:pa://ss@bucket", {"AKIA:pa://ss", "pa://ss", "ss"}),
    # (issue 20, review) every query value is masked, whatever its key's name, but the harmless keys' (region, ...)
    ("abs://acct@container/p?sig=SASSIGNATURE0123&region=eu", {"SASSIGNATURE0123"}),
    ("sftp://bk@host/srv/b?pwd=PWDSECRET&skipVerify=true&forcePathStyle=1", {"PWDSECRET"}),
    ("s3://bucket/x?endpoint=https://minio:9000/?token=NESTED1&region=eu", {"NESTED1"}),
    ("s3://bucket/x?X-Amz-Signature=SIG#frag", {"SIG#frag", "SIG"}),
    ("s3://bucket/x?key=abcd#fragment", {"abcd#fragment", "abcd"}),
], ids=["s3", "query-endpoint", "sftp", "token", "schemeless", "query-secret", "password-with-scheme", "abs-sig",
        "sftp-pwd", "nested-in-endpoint", "value-with-hash", "value-before-hash"])
def test_url_credentials_are_found(text, expected):
    assert set(no_log.string_secrets(text, False)) == expected


@pytest.mark.parametrize("text", [
    "sftp://backup@host/srv/b",  # the login, not a secret
    "abs://account@container/x",  # the storage account
    "litestream/litestream:0.5.17@sha256:" + "a" * 64,  # an image pinned by digest
    "ops@example.net",
    "https://s3.example.net:9000/bucket",
    "/var/lib/dokku/data/storage",
], ids=["sftp-user", "abs-account", "image-digest", "address", "endpoint", "path"])
def test_innocuous_strings_are_not_masked(text):
    assert no_log.string_secrets(text, False) == []


def test_declared_and_raw_secrets_are_found_at_any_depth():
    spec = {"apps": {"type": "list", "elements": "raw"},
            "credential_sets": {"type": "list", "elements": "dict", "options": {
                "name": {"type": "str"}, "sftp_password": {"type": "str", "no_log": True}}}}
    params = {"apps": [{"app": "blog", "heartbeat_url": "https://hc-ping.com/uuid-1234",
                        "replica": {"url": "s3://AKIA:%s@b" % SECRET}, "secret_acess_key": "typo-secret"}],
              "credential_sets": [{"name": "lab", "sftp_password": "line-one\nline-two"}]}
    found = no_log.param_secrets(params, spec)
    assert {"https://hc-ping.com/uuid-1234", SECRET, "typo-secret", "line-one\nline-two", "line-one"} <= found
    assert not {"blog", "lab"} & found


def test_a_dict_given_as_a_string_is_read_as_ansible_converts_it():
    spec = {"replica": {"type": "dict", "options": {"url": {"type": "str"}}}}
    found = no_log.param_secrets({"replica": '{"url": "s3://AKIA:pa\\"ss1@b"}'}, spec)
    assert 'pa"ss1' in found  # the JSON escape is gone once Ansible decodes it


def test_harmless_query_keys_are_one_list_shared_with_the_messages():
    """validate.shown() redacts in messages exactly the query values no_log masks in outputs."""
    assert no_log.v.HARMLESS_QUERY_KEYS == frozenset(("endpoint", "region", "forcePathStyle", "skipVerify"))
    text = "s3://b/x?region=eu-central-1&sig=SASSIG1&forcePathStyle=true"
    assert no_log.string_secrets(text, False) == ["SASSIG1", "SASSIG1"]
    assert no_log.v.redacted(text) == "s3://b/x?region=eu-central-1&sig=********&forcePathStyle=true"


def test_query_values_keep_the_minimum_length():
    spec = {"replica": {"type": "dict", "options": {"url": {"type": "str"}}}}
    found = no_log.param_secrets({"replica": {"url": "abs://acct@cont/p?sv=2024-11-04&sig=SIGNATURE1&sp=r"}}, spec)
    assert found == {"SIGNATURE1", "2024-11-04"}  # 'r' is too short to mask (Ansible would blank every r)


def test_short_values_and_ansible_settings_are_never_masked():
    spec = {"token": {"type": "str", "no_log": True}}
    assert no_log.param_secrets({"token": "abc", "_ansible_tmpdir": "u:pass@x"}, spec) == set()


def test_a_declared_no_log_false_wins_over_a_secret_looking_name():
    spec = {"host_token_check": {"type": "str", "no_log": False}}
    assert no_log.param_secrets({"host_token_check": "visible-value"}, spec) == set()


def test_a_failing_walk_masks_every_string(monkeypatch):
    class Module(no_log.SecretMaskingModule):
        def __init__(self):  # only the hook: no AnsibleModule construction
            self.no_log_values = set()
            self.argument_spec = {}

    def broken(params, spec):
        raise RecursionError()

    monkeypatch.setattr(no_log.AnsibleModule, "_load_params", lambda self: setattr(self, "params", {"a": ["value"]}))
    monkeypatch.setattr(no_log, "param_secrets", broken)
    module = Module()
    module._load_params()
    assert module.no_log_values == {"value"}
