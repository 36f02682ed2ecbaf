# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A replica's level-0 files on an S3-compatible endpoint, listed in this process with one signed ListObjectsV2.

For the health check: `litestream ltx -level 0` in the sidecar costs a `docker exec` and a Go process per app; this
asks the store the same question (the keys under <path>/0000/, Litestream's S3 layout, s3/replica_client.go
newFileIterator, with each object's LastModified as Litestream takes it) with the standard library only. Used for
the plain case - an `endpoint`, path-style addressing, keys in the credential set; anything else (AWS's own
virtual-hosted endpoints, GCS, Azure, sftp) returns None and Litestream lists it in the sidecar.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import hashlib
import hmac
import json
import re
import socket
import ssl
import time
import xml.etree.ElementTree as ET

try:
    from http.client import HTTPConnection, HTTPException, HTTPSConnection
    from urllib.parse import quote, urlsplit
except ImportError:  # pragma: no cover - Python 2
    from httplib import HTTPConnection, HTTPException, HTTPSConnection
    from urllib import quote
    from urlparse import urlsplit

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.sidecar_reads import Refused, read_bounded

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_PAGES = 20  # 20,000 level-0 files: far beyond what Litestream's l0-retention (5 min by default) leaves
MAX_RESPONSE = 4 << 20  # bytes of one answer: a page of 1,000 keys is about half a MiB of XML
TIMED_OUT = 124
SIGV4_SERVICE = "s3"  # the AWS service a Signature Version 4 names (the S3 API), not a replica type
LTX_KEY_RE = re.compile(r"/([0-9a-f]{16})-([0-9a-f]{16})\.ltx$")


def _tag(element, name):
    """An element's child text, whatever the XML namespace."""
    for child in element:
        if child.tag == name or child.tag.endswith("}" + name):
            return child.text or ""
    return None


def _children(element, name):
    return [child for child in element if child.tag == name or child.tag.endswith("}" + name)]


def _quote(text):
    return quote(text, safe="-_.~")


def signed_headers(method, host, path, query, access_key, secret_key, region, token=None, now=None, body=b"",
                   extra=None):
    """AWS Signature Version 4 headers of a request (the service is s3); `extra` headers are signed too."""
    now = now or datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=time.time())
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    headers = dict((k.lower(), v) for k, v in (extra or {}).items())
    headers.update({"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date})
    if token:
        headers["x-amz-security-token"] = token
    names = sorted(headers)
    canonical_query = "&".join("%s=%s" % (_quote(k), _quote(v)) for k, v in sorted(query.items()))
    canonical = "\n".join([method, quote(path, safe="/-_.~"), canonical_query,
                           "".join("%s:%s\n" % (n, headers[n].strip()) for n in names), ";".join(names),
                           payload])
    scope = "%s/%s/%s/aws4_request" % (day, region, SIGV4_SERVICE)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = ("AWS4" + secret_key).encode("utf-8")
    for part in (day, region, SIGV4_SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    headers["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        access_key, scope, ";".join(names), signature)
    return headers


def listable(fields, credentials):
    """True when this replica can be listed here: S3 with an endpoint, path-style, keys in the set."""
    endpoint = fields.get("endpoint") or (credentials or {}).get("endpoint")
    backend = backends.BY_NAME.get(fields.get("type"))
    return (bool(backend and backend.in_process_listing) and bool(endpoint)
            and fields.get("force_path_style", True) is not False
            and bool((credentials or {}).get("access_key_id")) and bool((credentials or {}).get("secret_access_key"))
            and urlsplit(endpoint).scheme in ("http", "https"))


def endpoint_of(fields, credentials):
    return urlsplit(fields.get("endpoint") or credentials.get("endpoint"))


def region_of(fields, credentials):
    return credentials.get("region") or fields.get("region") or "us-east-1"


def connect(fields, credentials, timeout):
    """An HTTP(S) connection to a listable replica's endpoint, verifying TLS unless the replica says skip_verify."""
    endpoint = endpoint_of(fields, credentials)
    if endpoint.scheme == "https":
        context = ssl.create_default_context()
        if fields.get("skip_verify"):  # the replica's own skip_verify, as Litestream's client honours it
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return HTTPSConnection(endpoint.hostname, endpoint.port, timeout=timeout, context=context)
    return HTTPConnection(endpoint.hostname, endpoint.port, timeout=timeout)


def level0_newest(fields, credentials, db_name, timeout):
    """(output, exit code) in the shape of `litestream ltx -level 0 -json`, holding the newest file only (all the
    health check reads); errors as Litestream words them, so the same reasons are found in them."""
    endpoint, region = endpoint_of(fields, credentials), region_of(fields, credentials)
    prefix = ls.replica_path(fields, db_name).strip("/") + "/0000/"
    path = "%s/%s" % (endpoint.path.rstrip("/"), fields["bucket"])
    conn = connect(fields, credentials, timeout)
    newest, token = None, None
    try:
        for _page in range(MAX_PAGES):
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            headers = signed_headers("GET", endpoint.netloc, path, query, credentials["access_key_id"],
                                     credentials["secret_access_key"], region, credentials.get("session_token"))
            target = quote(path, safe="/-_.~") + "?" + "&".join(
                "%s=%s" % (_quote(k), _quote(v)) for k, v in sorted(query.items()))
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            body = read_bounded(response, MAX_RESPONSE, time.time() + timeout, "the store's answer")
            if response.status != 200:
                return error_text(response.status, body), 1
            root = ET.fromstring(body)
            for item in _children(root, "Contents"):
                match = LTX_KEY_RE.search(_tag(item, "Key") or "")
                if match and (newest is None or int(match.group(2), 16) > int(newest[1], 16)):
                    newest = (match.group(1), match.group(2), _tag(item, "LastModified"))
            token = _tag(root, "NextContinuationToken")
            if _tag(root, "IsTruncated") != "true" or not token:
                break
        else:
            return "Error: more than %d pages of level-0 files under %s" % (MAX_PAGES, prefix), 1
    except socket.timeout:
        return "Error: operation error S3: ListObjectsV2: i/o timeout", TIMED_OUT
    except Refused as exc:  # too large, or a Content-Length that is no byte count
        return "Error: operation error S3: ListObjectsV2: %s; refusing it" % exc, 1
    except ET.ParseError as exc:
        return "Error: operation error S3: ListObjectsV2: unreadable answer: %s" % exc, 1
    except socket.gaierror as exc:
        return "Error: operation error S3: ListObjectsV2: dial tcp: lookup %s: no such host (%s)" % (
            endpoint.hostname, exc), 1
    except (IOError, OSError) as exc:
        refused = "connection refused" if getattr(exc, "errno", None) == errno.ECONNREFUSED else str(exc)
        return "Error: operation error S3: ListObjectsV2: dial tcp %s: %s" % (endpoint.netloc, refused), 1
    except HTTPException as exc:
        return "Error: operation error S3: ListObjectsV2: %s" % (str(exc) or type(exc).__name__), 1
    finally:
        conn.close()
    if newest is None:
        return "[]", 0
    return json.dumps([dict(level=0, min_txid=newest[0], max_txid=newest[1], timestamp=newest[2])]), 0


def error_text(status, body):
    """Litestream's words for a refused ListObjectsV2: the store's error code is what the reasons are found by."""
    code = message = ""
    try:
        root = ET.fromstring(body)
        code, message = _tag(root, "Code") or "", _tag(root, "Message") or ""
    except ET.ParseError:
        message = body[:200].decode("utf-8", "replace") if isinstance(body, bytes) else str(body)[:200]
    return ("Error: operation error S3: ListObjectsV2, https response error StatusCode: %d, api error %s: %s"
            % (status, code or "Unknown", message.strip()))
