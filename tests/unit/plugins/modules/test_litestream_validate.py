# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_validate: a host's whole inventory checked with the modules' own checks, every problem at once."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.modules import dokku_storage, litestream_validate

from .conftest import assert_no_secret, run_module

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY$secret"


def shop(**overrides):
    entry = {"app": "shop", "create": True,
             "replica": {"type": "s3", "bucket": "replicas", "path": "host1/shop", "endpoint": "http://127.0.0.1:9000",
                         "credentials": "lab"}}
    entry.update(overrides)
    return entry


def notes(**overrides):
    entry = {"app": "notes", "databases": ["notes.sqlite3"], "replica": {"url": "file:///srv/replicas/host1/notes"}}
    entry.update(overrides)
    return entry


def lab_set(**overrides):
    cset = {"name": "lab", "access_key_id": "AKIALAB", "secret_access_key": SECRET, "endpoint": "http://127.0.0.1:9000"}
    cset.update(overrides)
    return cset


def validate(apps, sets=(), **extra):
    args = {"apps": apps, "credential_sets": list(sets), "host": "host1"}
    args.update(extra)
    return args


def test_a_good_inventory_passes_and_changes_nothing():
    result = run_module(litestream_validate.main, validate([shop(), notes()], [lab_set()]), check=True)
    assert result == dict(result, changed=False, apps=2, credential_sets=1, problems=[])
    assert_no_secret(result, SECRET)


def test_every_problem_is_reported_at_once_with_its_entry():
    apps = [shop(chown="²"), notes(databases=["production.sqlite3-wal"]), {"app": "blog", "replcia": {}},
            shop(app="Bad_Name"), notes(app="notes2", replica=None)]
    result = run_module(litestream_validate.main, validate(apps, [lab_set(endpoint="127.0.0.1:9000")]), fail=True)
    problems = result["problems"]
    assert [p.split(":")[0] for p in problems] == [
        "litestream_apps[0] (shop)", "litestream_apps[1] (notes)", "litestream_apps[2] (blog)",
        "litestream_apps[3] (Bad_Name)", "litestream_apps[4] (notes2)", "litestream_credential_sets[0] (lab)"]
    assert "chown: '²' is not allowed" in problems[0]
    assert "databases: 'production.sqlite3-wal' is the name of a SQLite -wal file" in problems[1]
    assert "unknown key replcia" in problems[2]
    assert "is not a valid Dokku app name" in problems[3]
    assert "replica is required unless state is absent" in problems[4]
    assert "endpoint: '127.0.0.1:9000' has no scheme" in problems[5]
    assert result["msg"].startswith("6 problems in the inventory of host1, nothing was changed: ")
    assert_no_secret(result, SECRET)


def test_the_message_is_the_one_the_module_itself_gives(commands):
    """One check per value: the inventory check and dokku_storage say the same words for the same mistake."""
    commands([])
    alone = run_module(dokku_storage.main, {"app": "shop", "mount_path": "/app/db:x"}, fail=True)["msg"]
    together = run_module(litestream_validate.main, validate([shop(mount_path="/app/db:x")]), fail=True)
    assert together["problems"] == ["litestream_apps[0] (shop): " + alone]


def test_an_app_listed_twice_and_two_apps_on_one_replica_are_refused():
    apps = [shop(), shop(), notes(app="copy", databases=["notes.sqlite3"])] + [notes()]
    result = run_module(litestream_validate.main, validate(apps), fail=True)
    assert "litestream_apps[1] (shop): the app is listed twice on host1 (also litestream_apps[0] (shop))" \
        in result["problems"]
    assert any(p.startswith("litestream_apps[0] (shop) and litestream_apps[1] (shop) both replicate to "
                            "s3://replicas/host1/shop/production.sqlite3") for p in result["problems"])
    assert any(p.startswith("litestream_apps[2] (copy) and litestream_apps[3] (notes) both replicate to "
                            "file:///srv/replicas/host1/notes/notes.sqlite3") for p in result["problems"])


@pytest.mark.parametrize("peer_app,conflict", [(shop(), True), (notes(), False), (shop(replica=dict(
    shop()["replica"], path="host2/shop")), False)])
def test_a_replica_shared_with_another_host_is_refused_except_a_file_replica(peer_app, conflict):
    """File replicas live on each host's own disk; an S3 location is the same for every host."""
    args = validate([shop(), notes()], peers={"host1": [shop(), notes()], "host2": [peer_app, {"app": "x"}]})
    if conflict:
        result = run_module(litestream_validate.main, args, fail=True)
        assert result["problems"] == [
            "litestream_apps[0] (shop) on host1 and shop on host2 both replicate to s3://replicas/host1/shop/"
            "production.sqlite3 (endpoint http://127.0.0.1:9000): two writers on one replica corrupt each other's "
            "lineage; give each app its own replica path"]
    else:
        assert run_module(litestream_validate.main, args)["problems"] == []


def test_an_absent_app_needs_no_replica_and_claims_no_location():
    apps = [shop(state="absent", replica=None), shop(app="shop2")]
    assert run_module(litestream_validate.main, validate(apps))["problems"] == []


SFTP = {"host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIlab", "credentials": "lab"}
LAB_S3 = "http://127.0.0.1:9000"


def s3(url, **fields):
    return dict(fields, url=url, credentials="lab")


@pytest.mark.parametrize("first,second", [
    # an endpoint with and without its trailing slash, its default port, or another case writes the same keys
    (s3("s3://replicas/host1/shop?endpoint=%s/" % LAB_S3), s3("s3://replicas/host1/shop/", endpoint=LAB_S3)),
    (s3("s3://replicas/host1/shop?endpoint=https://S3.Example.NET:443"),
     s3("s3://replicas//host1/shop?endpoint=https://s3.example.net/")),
    ({"type": "s3", "bucket": "replicas", "path": "/host1/shop/", "endpoint": LAB_S3, "credentials": "lab"},
     s3("s3://replicas/host1/shop?endpoint=%s" % LAB_S3)),
    (dict(SFTP, url="sftp://lit@Backup.example.net/~/shop"), dict(SFTP, url="sftp://lit@backup.example.net:22/~/shop/")),
    (dict(SFTP, url="sftp://lit@[::1]:0022/srv/shop"), dict(SFTP, url="sftp://lit@[::1]:22/srv//shop")),
    (s3("abs://Account@container/shop"), s3("abs://account@container/shop/")),
])
def test_two_spellings_of_one_replica_are_one_replica(first, second):
    apps = [shop(replica=first), shop(app="copy", replica=second)]
    problems = run_module(litestream_validate.main, validate(apps), fail=True)["problems"]
    assert len(problems) == 1 and problems[0].startswith("litestream_apps[0] (shop) and litestream_apps[1] (copy) "
                                                         "both replicate to ")


@pytest.mark.parametrize("first,second", [
    (s3("s3://replicas/host1/shop?endpoint=%s" % LAB_S3), s3("s3://replicas/host1/shop?endpoint=http://127.0.0.1:9001")),
    # object keys are case-sensitive
    (s3("s3://replicas/host1/shop?endpoint=%s" % LAB_S3), s3("s3://replicas/host1/Shop?endpoint=%s" % LAB_S3)),
    # ~/shop is below the login directory, /shop at the root
    (dict(SFTP, url="sftp://lit@backup.example.net/~/shop"), dict(SFTP, url="sftp://lit@backup.example.net/shop")),
    (dict(SFTP, url="sftp://lit@backup.example.net/~/shop"), dict(SFTP, url="sftp://other@backup.example.net/~/shop")),
])
def test_different_replicas_stay_different(first, second):
    apps = [shop(replica=first), shop(app="copy", replica=second)]
    assert run_module(litestream_validate.main, validate(apps))["problems"] == []
