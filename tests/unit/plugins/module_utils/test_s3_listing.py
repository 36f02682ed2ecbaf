# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""s3_listing: the signature is botocore's (the AWS SDK for Python, signing the same request at the same time), the
store's refusals keep the codes the health check finds its reasons by, and only the plain case is listed here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re
import threading

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


# --------------------------------------------------------------------------- bounds of what is read (issue 20)
class PagedS3(threading.Thread):
    """ListObjectsV2 on 127.0.0.1: `pages` pages of one level-0 key each, every page but the last truncated;
    `pad` bytes of padding in each answer, sent with a Content-Length (`declared`) or streamed until the end."""

    def __init__(self, pages=1, pad=0, declared=True):
        from http.server import BaseHTTPRequestHandler, HTTPServer
        super(PagedS3, self).__init__(daemon=True)
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                fake.requests.append(self.path)
                page = len(fake.requests)
                key = "app/db.sqlite3/0000/%016x-%016x.ltx" % (page, page)
                more = "<IsTruncated>true</IsTruncated><NextContinuationToken>t%d</NextContinuationToken>" % page
                body = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>%s<Contents><Key>%s</Key>'
                        '<LastModified>2026-12-01T03:00:%02dZ</LastModified></Contents><!-- %s --></ListBucketResult>'
                        % (more if page < pages else "<IsTruncated>false</IsTruncated>", key, page % 60,
                           "x" * pad)).encode()
                self.send_response(200)
                if declared is True:
                    self.send_header("Content-Length", str(len(body)))
                elif declared:  # a Content-Length of the test's own, and no request after it
                    self.send_header("Content-Length", declared)
                    self.send_header("Connection", "close")
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:  # the client refused the answer and hung up
                    pass

            def log_message(self, *args):
                pass
        self.server = HTTPServer(("127.0.0.1", 0), Handler)

    def run(self):
        self.server.serve_forever()

    def fields(self):
        return {"type": "s3", "bucket": "b", "path": "app", "endpoint": "http://127.0.0.1:%d" % self.server.server_port}


@pytest.fixture
def paged():
    servers = []

    def start(**kwargs):
        server = PagedS3(**kwargs)
        server.start()
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.server.shutdown()
        server.server.server_close()


KEYS = {"access_key_id": "A", "secret_access_key": "S"}


def test_pages_are_followed_to_the_newest_file(paged):
    server = paged(pages=3)
    text, rc = s3.level0_newest(server.fields(), KEYS, "db.sqlite3", 2)
    assert rc == 0 and json.loads(text) == [{"level": 0, "min_txid": "%016x" % 3, "max_txid": "%016x" % 3,
                                             "timestamp": "2026-12-01T03:00:03Z"}]
    assert len(server.requests) == 3 and "continuation-token=t2" in server.requests[2]


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "streamed"])
def test_an_answer_larger_than_the_bound_is_refused_not_parsed(paged, monkeypatch, declared):
    monkeypatch.setattr(s3, "MAX_RESPONSE", 4096)
    server = paged(pad=10000, declared=declared)
    text, rc = s3.level0_newest(server.fields(), KEYS, "db.sqlite3", 2)
    assert rc == 1
    if declared:
        assert re.fullmatch(r"Error: operation error S3: ListObjectsV2: the store's answer is \d+ bytes, more than the "
                            r"4096 this read takes; refusing it", text), text
    else:
        assert text == ("Error: operation error S3: ListObjectsV2: the store's answer is more than the 4096 bytes this "
                        "read takes; refusing it")


@pytest.mark.parametrize("length", [u"\u00b2", "-1", "1e3", "0x10", "99999999999999999999"],
                         ids=["superscript-two", "negative", "exponent", "hex", "twenty-digits"])
def test_a_content_length_that_is_no_byte_count_is_refused(paged, length):
    """(issue 20, review) '²'.isdigit() is True and int('²') raised a ValueError nothing caught."""
    server = paged(declared=length)
    text, rc = s3.level0_newest(server.fields(), KEYS, "db.sqlite3", 2)
    assert rc == 1 and text == ("Error: operation error S3: ListObjectsV2: the store's answer has the Content-Length %r, "
                                "which is not a byte count (at most 19 digits 0-9); refusing it" % length)


def test_more_pages_than_the_bound_are_refused(paged, monkeypatch):
    monkeypatch.setattr(s3, "MAX_PAGES", 3)
    server = paged(pages=10)
    text, rc = s3.level0_newest(server.fields(), KEYS, "db.sqlite3", 2)
    assert rc == 1 and text == "Error: more than 3 pages of level-0 files under app/db.sqlite3/0000/"
    assert len(server.requests) == 3
