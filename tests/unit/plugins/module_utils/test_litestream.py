# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/litestream.py: replica validation and rendering, checked against the real binary too."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

LITESTREAM = os.path.join(os.path.dirname(sys.executable), "litestream")
S3 = {"type": "s3", "bucket": "backups", "path": "blog", "endpoint": "http://127.0.0.1:9000"}


@pytest.mark.parametrize("name, fragment", [
    ("", "non-empty"), ("   ", "non-empty"), ("a/b.sqlite3", "plain file name"), ("..", "plain file name"),
    ("../x", "plain file name"), ("x..y", "plain file name"), (".hidden", "must not start with '.'"),
    ("production.sqlite3-wal", "is the name of a SQLite -wal file"), ("a\nb", "plain file name"),
])
def test_bad_database_names(name, fragment):
    with pytest.raises(v.InvalidValue) as err:
        v.db_file_name(name)
    assert fragment in str(err.value)


def test_good_database_name():
    assert v.db_file_name("production.sqlite3") == "production.sqlite3"


@pytest.mark.parametrize("spec, fragment", [
    ({"url": "ftp://host/x"}, "unknown scheme 'ftp'"),
    ({"url": "gcs://bucket/x"}, "calls Google Cloud Storage 'gs'"),
    ({"url": "bucket/x"}, "has no scheme"),
    ({"type": "s3", "path": "x"}, "s3 replica needs a bucket"),
    ({"type": "s3", "bucket": "bkt", "endpoint": "127.0.0.1:9000"}, "has no scheme: write http:// or https://"),
    ({"type": "s3", "bucket": "bkt", "retention": "72h"}, "Litestream 0.3 option: retention is global"),
    ({"type": "s3", "bucket": "bkt", "age": {"recipients": ["x"]}}, "age encryption exists only in Litestream 0.3"),
    ({"type": "file", "path": "/x", "snapshot_interval": "1h"}, "Litestream 0.3 option"),
    ([{"type": "file", "path": "/a"}, {"type": "file", "path": "/b"}], "one replica per database, 2 were given"),
    ({"type": "file", "path": "relative"}, "must be an absolute path"),
    ({"type": "sftp", "host": "h", "user": "u", "path": "/p"}, "sftp replica needs host_key"),
    ({"type": "s3", "bucket": "bkt", "sync_interval": "fast"}, "is not a duration"),
    ({"type": "file", "path": "/x", "bucket": "bkt"}, "does not take bucket"),
    ({"type": "gcs", "bucket": "bkt"}, "is called 'gs'"),
    ({"url": "s3://bkt/x", "bucket": "c"}, "either url or bucket"),
    ({"url": "sftp://u:pw@h/x"}, "the URL carries credentials before '@' (the value is not shown)"),
    ({}, "a dictionary with a type or a url"),
    ({"type": "s3", "bucket": "bkt", "credentials": "Bad Name"}, "is not a valid credential set name"),
])
def test_bad_replicas_are_refused_with_a_reason(spec, fragment):
    with pytest.raises(v.InvalidValue) as err:
        ls.normalize_replica(spec)
    assert fragment in str(err.value)


def test_url_becomes_explicit_fields():
    fields = ls.normalize_replica({"url": "s3://backups/apps/blog?endpoint=http://127.0.0.1:9000&region=eu-1"})
    assert fields == {"type": "s3", "bucket": "backups", "path": "apps/blog", "endpoint": "http://127.0.0.1:9000",
                      "region": "eu-1", "force_path_style": True}
    assert ls.normalize_replica({"url": "file:///srv/r/blog"}) == {"type": "file", "path": "/srv/r/blog"}
    sftp = ls.normalize_replica({"url": "sftp://bk@10.9.8.7:2222/srv/blog", "host_key": "ssh-ed25519 AAAA"})
    assert (sftp["host"], sftp["user"], sftp["path"]) == ("10.9.8.7:2222", "bk", "/srv/blog")


SFTP_FIELDS = {"type": "sftp", "host": "backup:2222", "user": "bk", "host_key": "ssh-ed25519 AAAA"}


@pytest.mark.parametrize("url, path", [("sftp://bk@backup:2222/srv/blog", "/srv/blog"),
                                       ("sftp://bk@backup:2222/srv/blog/", "/srv/blog"),
                                       ("sftp://bk@backup:2222/~/blog", "blog")])
def test_sftp_url_and_field_forms_render_the_same_config(url, path):
    """The URL form keeps the leading '/' like the field form: Litestream reads a path that starts with '/'
    as absolute on the server, any other as relative to the login directory."""
    by_url = ls.normalize_replica({"url": url, "host_key": "ssh-ed25519 AAAA"})
    by_fields = ls.normalize_replica(dict(SFTP_FIELDS, path=path))
    assert by_url["path"] == by_fields["path"] == path
    creds = {"ssh_private_key": "KEY"}
    assert ls.render_config(["production.sqlite3"], by_url, creds) == ls.render_config(
        ["production.sqlite3"], by_fields, creds)
    assert '"%s/production.sqlite3"' % path in ls.render_config(["production.sqlite3"], by_url, creds)


@pytest.mark.parametrize("path, shown", [("/srv/blog", "sftp://bk@backup:2222/srv/blog/production.sqlite3"),
                                         ("blog", "sftp://bk@backup:2222/~/blog/production.sqlite3")])
def test_sftp_location_reads_back_as_the_same_path(path, shown):
    from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore as rs
    fields = ls.normalize_replica(dict(SFTP_FIELDS, path=path))
    assert rs.replica_location(fields, "production.sqlite3") == shown
    again = ls.normalize_replica({"url": shown, "host_key": "ssh-ed25519 AAAA"})
    assert again["path"] == ls.replica_path(fields, "production.sqlite3")


S3_RULES = ("S3 bucket names are 3 to 63 characters: lowercase letters, digits, '.' and '-', starting and ending "
            "with a letter or digit")
GS_RULES = ("Cloud Storage bucket names are 3 to 63 characters (up to 222 with dots, at most 63 between two dots): "
            "lowercase letters, digits, '.', '-' and '_', starting and ending with a letter or digit")
ABS_RULES = ("Azure container names are 3 to 63 characters: lowercase letters, digits and single '-', starting and "
             "ending with a letter or digit")


@pytest.mark.parametrize("kind, name, rule", [
    ("s3", "ab", S3_RULES), ("s3", "a" * 64, S3_RULES), ("s3", "My-Bucket", S3_RULES), ("s3", "my_bucket", S3_RULES),
    ("s3", "-bucket", S3_RULES), ("s3", "bucket-", S3_RULES), ("s3", "bucket.", S3_RULES), ("s3", "bu cket", S3_RULES),
    ("s3", "bucket\n", S3_RULES),
    ("s3", "my..bucket", "S3 bucket names have no two adjacent dots"),
    ("s3", "192.168.5.4", "S3 bucket names are not formatted as an IP address"),
    ("s3", "xn--bucket", "S3 bucket names do not start with 'xn--', 'sthree-' or 'amzn-s3-demo-'"),
    ("s3", "sthree-bucket", "S3 bucket names do not start with 'xn--', 'sthree-' or 'amzn-s3-demo-'"),
    ("s3", "bucket-s3alias", "S3 bucket names do not end with '-s3alias', '--ol-s3', '.mrap', '--x-s3' or "
                             "'--table-s3'"),
    ("s3", "bucket--ol-s3", "S3 bucket names do not end with '-s3alias', '--ol-s3', '.mrap', '--x-s3' or "
                            "'--table-s3'"),
    ("gs", "ab", GS_RULES), ("gs", "Bucket", GS_RULES), ("gs", "_bucket", GS_RULES), ("gs", "a" * 64, GS_RULES),
    ("gs", ".".join(["a" * 63] * 4), GS_RULES), ("gs", "a..b", GS_RULES),
    ("gs", "10.0.0.1", "Cloud Storage bucket names are not formatted as an IP address"),
    ("gs", "goog-backups", "Cloud Storage bucket names do not start with 'goog' or hold 'google'"),
    ("gs", "my-google-bucket", "Cloud Storage bucket names do not start with 'goog' or hold 'google'"),
    ("abs", "ab", ABS_RULES), ("abs", "a" * 64, ABS_RULES), ("abs", "my_container", ABS_RULES),
    ("abs", "my.container", ABS_RULES), ("abs", "my--container", ABS_RULES), ("abs", "-container", ABS_RULES),
    ("abs", "container-", ABS_RULES), ("abs", "Container", ABS_RULES),
])
def test_bucket_names_the_store_refuses(kind, name, rule):
    with pytest.raises(v.InvalidValue) as err:
        ls.normalize_replica({"type": kind, "bucket": name})
    kind_word = "container" if kind == "abs" else "bucket"
    assert str(err.value) == "replica.bucket: %s is not a valid %s name: %s" % (v.shown(name), kind_word, rule)


@pytest.mark.parametrize("kind, name", [
    ("s3", "abc"), ("s3", "a" * 63), ("s3", "my.backups-2"), ("s3", "dsl-lab-replicas"), ("s3", "1bucket9"),
    ("gs", "my_backups"), ("gs", "a" * 63), ("gs", ".".join(["a" * 63] * 3)), ("gs", "backups.example.com"),
    ("abs", "abc"), ("abs", "my-container-1"), ("abs", "a" * 63),
])
def test_bucket_names_the_store_accepts(kind, name):
    # an abs replica also needs its account (or an endpoint): abs/replica_client.go Init
    spec = dict({"type": kind, "bucket": name}, **({"account_name": "acct"} if kind == "abs" else {}))
    assert ls.normalize_replica(spec)["bucket"] == name


@pytest.mark.parametrize("url, message", [
    ("s3://My_Bucket/blog", "replica.url: 'My_Bucket' is not a valid bucket name: " + S3_RULES),
    ("s3://b/blog", "replica.url: 'b' is not a valid bucket name: " + S3_RULES),
    ("gs://goog/blog", "replica.url: 'goog' is not a valid bucket name: Cloud Storage bucket names do not start "
                       "with 'goog' or hold 'google'"),
    ("abs://account@My_Container/blog", "replica.url: 'My_Container' is not a valid container name: " + ABS_RULES),
])
def test_bucket_names_in_a_url_are_checked_too(url, message):
    with pytest.raises(v.InvalidValue) as err:
        ls.normalize_replica({"url": url})
    assert str(err.value) == message


def test_s3_defaults_region_and_path_style():
    fields = ls.normalize_replica(dict(S3))
    assert fields["region"] == "us-east-1" and fields["force_path_style"] is True


def test_rendered_config_holds_no_key_and_one_replica_per_database():
    fields = ls.normalize_replica(dict(S3, sync_interval="1s"))
    creds = {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr$t'key"}
    text = ls.render_config(["production.sqlite3", "queue.sqlite3"], fields, creds, metrics_port=9091)
    assert "AKIAEXAMPLE" not in text and "s3cr$t" not in text
    assert 'addr: "127.0.0.1:9091"' in text
    assert text.count("replica:") == 2
    assert '"blog/production.sqlite3"' in text and '"blog/queue.sqlite3"' in text


def test_database_listed_twice_is_two_replicas():
    with pytest.raises(ls.ConfigError, match="one replica per database"):
        ls.render_config(["a.db", "a.db"], ls.normalize_replica({"type": "file", "path": "/r"}))


def test_credentials_env_is_shell_safe():
    creds = {"access_key_id": "AK", "secret_access_key": "it's $HOME `x`", "session_token": "tok"}
    env = ls.credentials_env(ls.normalize_replica(dict(S3)), creds)
    out = subprocess.run(["sh", "-c", "set -a; . /dev/stdin; set +a; printf %s \"$LITESTREAM_SECRET_ACCESS_KEY\""],
                         input=env, capture_output=True, text=True, check=True).stdout
    assert out == "it's $HOME `x`"
    assert "AWS_SESSION_TOKEN='tok'" in env
    assert ls.credentials_env(ls.normalize_replica({"type": "file", "path": "/r"}), creds) == ""


def test_redaction_of_a_config_on_disk():
    text = 'dbs:\n  - path: "/data/x"\n    replica:\n      password: "hunter2"\n      type: "sftp"\n'
    assert "hunter2" not in ls.redact_text(text)
    assert ls.redact_text(None) is None


def test_hash_changes_with_config_and_image_only():
    base = ls.config_hash("a", "img:1")
    assert base == ls.config_hash("a", "img:1")
    assert base != ls.config_hash("b", "img:1") and base != ls.config_hash("a", "img:2")


@pytest.mark.parametrize("spec", [
    dict(S3, sync_interval="1s"),
    {"type": "file", "path": "/srv/replicas/blog"},
    {"type": "sftp", "host": "127.0.0.1:2222", "user": "bk", "path": "/srv/b", "host_key": "ssh-ed25519 AAAA"},
    {"type": "gs", "bucket": "bkt", "path": "x"},
])
def test_real_litestream_accepts_every_rendered_kind(spec, tmp_path):
    """The pinned binary parses what we render: `litestream databases` lists each database and its replica."""
    fields = ls.normalize_replica(spec)
    creds = {"ssh_private_key": True} if fields["type"] == "sftp" else {}
    config = tmp_path / "litestream.yml"
    config.write_text(ls.render_config(["production.sqlite3", "queue.sqlite3"], fields, creds,
                                       mount_dir=str(tmp_path), shutdown_sync_timeout="30s",
                                       snapshot_interval="1h", snapshot_retention="72h"))
    env = dict(os.environ)
    env.pop("AWS_CA_BUNDLE", None)
    proc = subprocess.run([LITESTREAM, "databases", "-config", str(config), "-no-expand-env"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert str(tmp_path / "production.sqlite3") in proc.stdout
    assert proc.stdout.count(fields["type"]) >= 2


@pytest.mark.parametrize("image, expected", [
    ("litestream/litestream:0.5.17", (0, 5, 17)),
    ("registry.example.invalid:5000/litestream/litestream:v0.5.16-scratch", (0, 5, 16)),
    ("dsl-lab/litestream:0.5.17", (0, 5, 17)),
    ("litestream/litestream", None),
    ("litestream/litestream:latest", None),
    ("litestream/litestream:0.5", None),
    ("registry.example.invalid:5000/litestream", None),
    ("litestream/litestream@sha256:abcd", None),
    (None, None),
])
def test_image_version(image, expected):
    assert ls.image_version(image) == expected


@pytest.mark.parametrize("current, wanted, refused", [
    ("litestream/litestream:0.5.17", "litestream/litestream:0.5.15", True),
    ("litestream/litestream:0.5.17", "other/litestream:v0.4.9", True),
    ("litestream/litestream:0.5.15", "litestream/litestream:0.5.17", False),
    ("litestream/litestream:0.5.17", "litestream/litestream:0.5.17", False),
    ("litestream/litestream", "litestream/litestream:0.5.15", False),  # the plugin's untagged image: unknown
    (None, "litestream/litestream:0.5.15", False),
])
def test_downgrade_problem(current, wanted, refused):
    assert (ls.downgrade_problem(current, wanted) is not None) is refused
