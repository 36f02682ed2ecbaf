# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""s3_listing: the signature is botocore's (the AWS SDK for Python, signing the same request at the same time), the
store's refusals keep the codes the health check finds its reasons by, and only the plain case is listed here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import first_sync
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import s3_listing as s3

NOW = datetime.datetime(2026, 12, 1, 3, 4, 5)


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE-session"])
def test_the_signature_is_the_one_botocore_computes(monkeypatch, token):
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    query = {"list-type": "2", "prefix": "lab-dokku-1/shop 1/production.sqlite3/0000/", "continuation-token": "a+b/c="}
    ours = s3.signed_headers("GET", "127.0.0.1:9000", "/lab-bucket", query, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG",
                             "eu-west-3", token, now=NOW)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: NOW)
    url = "http://127.0.0.1:9000/lab-bucket?" + "&".join("%s=%s" % (s3._quote(k), s3._quote(v))
                                                         for k, v in sorted(query.items()))
    request = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": s3.EMPTY_SHA256})
    botocore.auth.S3SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token), "s3", "eu-west-3") \
        .add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"] == "20261201T030405Z"


def test_a_refusal_keeps_the_stores_code_for_the_reasons():
    body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request '
            b'signature we calculated does not match the signature you provided.</Message></Error>')
    text = s3.error_text(403, body)
    assert text.startswith("Error: operation error S3: ListObjectsV2, https response error StatusCode: 403, "
                           "api error SignatureDoesNotMatch: The request signature")
    assert first_sync.reason(text)[0] == "authentication failed: the secret access key is wrong (SignatureDoesNotMatch)"
    assert "NoSuchBucket" in s3.error_text(404, b"<Error><Code>NoSuchBucket</Code></Error>")
    assert s3.error_text(502, b"bad gateway").endswith("api error Unknown: bad gateway")


def test_an_endpoint_nobody_listens_on_is_unreachable_in_litestreams_words():
    fields = {"type": "s3", "bucket": "b", "path": "app", "endpoint": "http://127.0.0.1:9"}
    text, rc = s3.level0_newest(fields, {"access_key_id": "A", "secret_access_key": "S"}, "db.sqlite3", 2)
    assert rc == 1 and first_sync.reason(text)[0] == "the replica store is unreachable (connection refused)", text


@pytest.mark.parametrize("fields, creds, listable", [
    ({"type": "s3", "endpoint": "http://127.0.0.1:9000"}, {"access_key_id": "A", "secret_access_key": "S"}, True),
    ({"type": "s3"}, {"access_key_id": "A", "secret_access_key": "S", "endpoint": "https://minio:9000"}, True),
    ({"type": "s3"}, {"access_key_id": "A", "secret_access_key": "S"}, False),  # AWS itself: Litestream lists it
    ({"type": "s3", "endpoint": "http://h", "force_path_style": False}, {"access_key_id": "A", "secret_access_key": "S"},
     False),
    ({"type": "s3", "endpoint": "http://h"}, {}, False),  # keys from the instance role: Litestream's client finds them
    ({"type": "sftp"}, {"ssh_private_key": "k"}, False),
    ({"type": "gs", "endpoint": "http://h"}, {"access_key_id": "A", "secret_access_key": "S"}, False),
])
def test_only_the_plain_case_is_listed_here(fields, creds, listable):
    assert s3.listable(fields, creds) is listable
