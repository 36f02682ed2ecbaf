# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input gets a clear error and changes nothing: no writing dokku/docker command, no file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.modules import dokku_storage, litestream_replica

from .conftest import run_module, snapshot

READS = {"version", "apps:exists", "storage:list", "container", "image"}


def only_reads(calls):
    for call in calls:
        if call[0] == "container" and call[1] != "inspect":
            return False
        if call[0] not in READS:
            return False
    return True


def dokku_rules(version="0.38.27", app_exists=True, mounts="[]"):
    return [
        (("version",), 0, "dokku version %s\n" % version, ""),
        (("storage:list",), 0 if app_exists else 20, mounts if app_exists else "",
         "" if app_exists else " !     App blog does not exist\n"),
    ]


@pytest.mark.parametrize("args, rules, message", [
    ({"app": "blog"}, dokku_rules(app_exists=False),
     "app 'blog' does not exist on this host (dokku storage:list exit 20); create it first or set create_app: true"),
    ({"app": "Blog_App"}, dokku_rules(), "app: 'Blog_App' is not a valid Dokku app name"),
    ({"app": "blog", "storage": "blog/../db"}, dokku_rules(),
     "storage: 'blog/../db' is not a valid storage directory name: use 1 to 200 of the characters [A-Za-z0-9_-]"),
    ({"app": "blog", "mount_path": "db"}, dokku_rules(), "mount_path: 'db' must be an absolute path"),
    ({"app": "blog", "chown": "1001"}, dokku_rules(version="0.37.10"),
     "a numeric chown (1001) needs Dokku 0.38.22 or newer (this host runs 0.37.10)"),
    ({"app": "blog", "chown": "root"}, dokku_rules(version="0.30.5"), "chown 'root' needs Dokku 0.37.5 or newer"),
    ({"app": "blog", "chown": "nobody"}, dokku_rules(),
     "chown: 'nobody' is not allowed: use herokuish, heroku, paketo, root, false or a numeric uid"),
    ({"app": "blog"}, dokku_rules(mounts=json.dumps([{"host_path": "/srv/old", "container_path": "/app/db/litestream"}])),
     "app 'blog' already mounts /srv/old at /app/db/litestream"),
])
def test_dokku_storage_refuses(args, rules, message, commands):
    recorder = commands(rules)
    result = run_module(dokku_storage.main, args, fail=True)
    assert message in result["msg"]
    assert only_reads(recorder.calls), recorder.calls
    assert result["changed"] is False


@pytest.fixture
def roots(tmp_path):
    creds = tmp_path / "credentials"
    (creds / "lab").mkdir(parents=True)
    (creds / "lab" / "credentials.json").write_text(json.dumps({"access_key_id": "AK", "secret_access_key": "SK"}))
    (tmp_path / "storage" / "blog--db").mkdir(parents=True)
    return tmp_path


def replica_args(roots, **overrides):
    args = {"app": "blog", "credentials_root": str(roots / "credentials"), "config_root": str(roots / "apps"),
            "storage_root": str(roots / "storage"),
            "replica": {"type": "s3", "bucket": "bkt", "path": "blog", "endpoint": "http://127.0.0.1:9000",
                        "credentials": "lab"}}
    args.update(overrides)
    return args


S3 = {"type": "s3", "bucket": "bkt", "endpoint": "http://127.0.0.1:9000", "credentials": "lab"}


@pytest.mark.parametrize("overrides, message", [
    ({"app": "-blog"}, "app: '-blog' is not a valid Dokku app name"),
    ({"storage": "a b"}, "is not a valid storage directory name: use 1 to 200 of the characters [A-Za-z0-9_-]"),
    ({"databases": ["../prod.sqlite3"]}, "must be a plain file name inside the storage directory"),
    ({"databases": ["db/prod.sqlite3"]}, "must be a plain file name inside the storage directory"),
    ({"databases": [""]}, "database name must be a non-empty file name"),
    ({"databases": ["a.sqlite3", "a.sqlite3"]}, "one replica per database"),
    ({"replica": {"url": "ftp://b/x"}}, "unknown scheme 'ftp'"),
    ({"replica": {"type": "s3", "path": "x", "credentials": "lab"}}, "s3 replica needs a bucket"),
    ({"replica": dict(S3, endpoint="127.0.0.1:9000")}, "has no scheme: write http:// or https://"),
    ({"replica": dict(S3, credentials="missing")}, "credential set 'missing' not found"),
    ({"replica": dict(S3, retention="72h")}, "replica option 'retention' is a Litestream 0.3 option"),
    ({"replica": dict(S3, age={"identities": ["x"]})}, "age encryption exists only in Litestream 0.3"),
    ({"replica": None}, "replica is required unless state is absent"),
])
def test_litestream_replica_refuses(overrides, message, roots, commands):
    recorder = commands([(("container", "inspect"), 1, "", "Error: No such container: dokku.litestream.blog"),
                         (("image", "inspect"), 0, "sha256:abc\n", "")])
    before = snapshot(roots)
    result = run_module(litestream_replica.main, replica_args(roots, **overrides), fail=True)
    assert message in result["msg"]
    app = replica_args(roots, **overrides)["app"]
    assert result["msg"].startswith(("app %s: " % app, "app: ", "state is "))  # names the app, or the option
    assert recorder.calls == []  # validation happens before any docker command
    assert snapshot(roots) == before


def test_missing_credential_set_in_check_mode_is_a_prediction(roots, commands):
    """--check on a fresh host: the auth task before this one wrote nothing, so predict instead of failing."""
    recorder = commands([(("container", "inspect"), 1, "", "Error: No such container: dokku.litestream.blog"),
                         (("image", "inspect"), 0, "sha256:abc\n", "")])
    before = snapshot(roots)
    result = run_module(litestream_replica.main, replica_args(roots, replica=dict(S3, credentials="later")),
                        check=True)
    assert result["changed"] is True
    assert result["actions"] == ["claim the replica (epoch 1)", "write config", "write credentials.env",
                                 "create container", "start container"]
    assert only_reads(recorder.calls)
    assert snapshot(roots) == before
