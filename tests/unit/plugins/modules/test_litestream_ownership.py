# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_ownership and the sidecar's refusal: two hosts (two configuration roots, so two host ids) and one
replica whose claims live in the file store (tests/unit/conftest.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
from urllib.parse import urlsplit

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import claim_store, ownership
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.drill_core import HostDrill
from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_ownership, litestream_replica

from .conftest import run_module
from .test_litestream_replica import FakeDocker

S3 = {"type": "s3", "bucket": "bkt", "path": "apps/shop", "endpoint": "http://127.0.0.1:9000", "credentials": "lab"}
SECRET = "ownershipSecretNeverShown"


@pytest.fixture
def hosts(tmp_path):
    """Two hosts' roots (a, b), each with the credential set and the app's storage directory."""
    made = {}
    for name in ("a", "b"):
        top = tmp_path / name
        (top / "credentials" / "lab").mkdir(parents=True)
        (top / "credentials" / "lab" / "credentials.json").write_text(
            json.dumps({"access_key_id": "AKIALAB", "secret_access_key": SECRET}))
        (top / "storage" / "shop--db").mkdir(parents=True)
        made[name] = top
    return made


def args(top, **extra):
    base = {"app": "shop", "replica": dict(S3), "config_root": str(top / "apps"),
            "credentials_root": str(top / "credentials"), "host": "dokku-" + top.name}
    base.update(extra)
    return base


def provision_args(top):
    return {"app": "shop", "replica": dict(S3), "config_root": str(top / "apps"), "first_sync_timeout": 0,
            "credentials_root": str(top / "credentials"), "storage_root": str(top / "storage")}


@pytest.fixture
def dockers(monkeypatch):
    """One fake docker CLI per host; run_replica(host, ...) runs litestream_replica against that host's."""
    from ansible.module_utils import basic
    fakes = {"a": FakeDocker(), "b": FakeDocker()}
    current = {}

    def run_command(self, argv, **kwargs):
        return current["fake"](self, argv, **kwargs)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)

    def run_replica(top, fail=False, **extra):
        current["fake"] = fakes[top.name]
        return run_module(litestream_replica.main, dict(provision_args(top), **extra), fail=fail)
    run_replica.fakes = fakes
    return run_replica


def test_take_over_claims_the_next_epoch_and_fences_the_old_owner(hosts):
    unclaimed = run_module(litestream_ownership.main, args(hosts["a"]))
    assert unclaimed["ownership"]["standing"] == "unclaimed" and not unclaimed["changed"]
    first = run_module(litestream_ownership.main, args(hosts["a"], take_over=True))
    assert first["changed"] and first["claimed_epoch"] == 1 and first["ownership"]["reason"] == "first"
    assert first["write_replica"]["path"] == "apps/shop"  # epoch 1 replicates to the configured path itself

    seen_by_b = run_module(litestream_ownership.main, args(hosts["b"]))
    assert seen_by_b["fenced"] and seen_by_b["ownership"]["owner"] == "dokku-a"
    predicted = run_module(litestream_ownership.main, args(hosts["b"], take_over=True), check=True)
    assert predicted["changed"] and predicted["claimed_epoch"] == 2
    assert run_module(litestream_ownership.main, args(hosts["b"]))["ownership"]["epoch"] == 1  # check wrote nothing

    taken = run_module(litestream_ownership.main, args(hosts["b"], take_over=True,
                                                       branch_txids={"production.sqlite3": "D4"}))
    assert taken["ownership"] == dict(taken["ownership"], standing="owner", epoch=2, owner="dokku-b",
                                      reason="take-over", lineage=".dokku-litestream/shop/epochs/2")
    assert taken["read_replica"]["path"] == "apps/shop"  # restore from the lineage that was current
    assert taken["write_replica"]["path"] == "apps/shop/.dokku-litestream/shop/epochs/2"
    assert SECRET not in json.dumps(taken)
    again = run_module(litestream_ownership.main, args(hosts["b"], take_over=True))
    assert not again["changed"] and again["read_replica"] == taken["write_replica"]

    seen_by_a = run_module(litestream_ownership.main, args(hosts["a"]))
    assert seen_by_a["fenced"] and seen_by_a["ownership"]["owner"] == "dokku-b"


def test_a_fenced_host_cannot_run_the_sidecar_and_the_owner_writes_its_lineage(hosts, dockers, claims_on_disk):
    first = dockers(hosts["a"])
    assert first["actions"][0] == "claim the replica (epoch 1)" and first["ownership"]["standing"] == "owner"
    refused = dockers(hosts["b"], fail=True)
    assert "its replica is owned by" in refused["msg"] and "restore_take_over: true" in refused["msg"]
    # both fake hosts have this machine's name: the message says how a host that only lost its id gets it back
    host_id = claim_store.host_id(str(hosts["a"] / "apps"), create=False)
    assert "put the claim's host id %s into %s" % (host_id, hosts["b"] / "apps" / "_host-id") in refused["msg"]
    assert dockers.fakes["b"].container is None  # nothing was created on the fenced host
    run_module(litestream_ownership.main, args(hosts["b"], take_over=True))
    owner = dockers(hosts["b"])
    assert owner["ownership"]["epoch"] == 2
    assert 'path: "apps/shop/.dokku-litestream/shop/epochs/2/production.sqlite3"' in owner["config"]
    again = dockers(hosts["a"], fail=True)
    assert "since epoch 2 (take-over" in again["msg"] and "is fenced" in again["msg"]
    # the old owner's sidecar still ran: stopped by the refusal, its files left as they are (its own lineage)
    assert again["msg"].endswith("; its sidecar was stopped") and not dockers.fakes["a"].container["State"]["Running"]
    claims = claims_on_disk / "bkt" / "apps/shop/.dokku-litestream/shop/claims"
    assert sorted(os.listdir(str(claims))) == [ownership.claim_name(1), ownership.claim_name(2)]


@pytest.mark.parametrize("txids,message", [
    ({"production.sqlite3": "xyz"}, "branch_txids: the TXID of production.sqlite3, 'xyz', is not a hexadecimal TXID"),
    ({"other.sqlite3": "1"}, "branch_txids: 'other.sqlite3' is not one of the app's databases"),
    ({"production.sqlite3": "1" * 17}, "is not a hexadecimal TXID"),
])
def test_a_wrong_branch_txid_is_refused_naming_the_option(hosts, txids, message):
    failed = run_module(litestream_ownership.main, args(hosts["a"], take_over=True, branch_txids=txids), fail=True)
    assert message in failed["msg"]
    assert not os.path.exists(str(hosts["a"] / "apps"))  # nothing written


def test_a_replica_without_records_reads_unsupported_and_refuses_a_take_over(hosts):
    gs = {"type": "gs", "bucket": "bkt", "path": "apps/shop", "credentials": "lab"}  # the set holds no gs key
    read = run_module(litestream_ownership.main, args(hosts["a"], replica=gs))
    assert read["ownership"]["standing"] == "unsupported" and "Google Cloud Storage" in read["ownership"]["reason"]
    refused = run_module(litestream_ownership.main, args(hosts["a"], replica=gs, take_over=True), fail=True)
    assert "cannot take the replica over" in refused["msg"]


def test_a_drill_restores_the_lineage_the_owner_writes_now(hosts):
    options = {"verify": {}, "replica_timeout": 0, "lock_timeout": 5, "credentials_root": str(hosts["b"] / "credentials"),
               "docker_binary": "docker", "dokku_binary": "dokku", "scratch_dir": str(hosts["b"] / "scratch"),
               "host": "dokku-b"}
    drill = HostDrill(None, options, [])
    app = {"app": "shop", "replica": dict(S3, location=None), "image": "litestream/litestream:0.5.17"}
    assert drill.restore_params(app, "production.sqlite3", "/tmp/x")["replica"]["path"] == "apps/shop"
    run_module(litestream_ownership.main, args(hosts["a"], take_over=True))
    assert drill.restore_params(app, "production.sqlite3", "/tmp/x")["replica"]["path"] == "apps/shop"  # epoch 1
    run_module(litestream_ownership.main, args(hosts["b"], take_over=True))
    lineage = "apps/shop/.dokku-litestream/shop/epochs/2"
    assert drill.restore_params(app, "production.sqlite3", "/tmp/x")["replica"]["path"] == lineage
    assert claim_store.current_lineage(dict(S3), options["credentials_root"], "shop")["path"] == lineage


class Unanswering(claim_store.FileClaims):
    def names(self, directory):
        raise claim_store.StoreFailed("list %s: Error: api error SignatureDoesNotMatch: wrong" % directory)


def test_an_unreadable_record_keeps_the_lineage_the_configuration_names(hosts, dockers, monkeypatch):
    from ansible.module_utils import basic
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: warnings.append(text))
    real = claim_store.store_for
    monkeypatch.setattr(claim_store, "store_for", lambda fields, creds, timeout=10: Unanswering())
    refused = dockers(hosts["b"], fail=True)  # no configuration yet: nothing to keep, no claim possible
    assert ("cannot read who owns its replica, so no sidecar is started: authentication failed: the secret access "
            "key is wrong (SignatureDoesNotMatch)") in refused["msg"]
    assert dockers.fakes["b"].container is None
    monkeypatch.setattr(claim_store, "store_for", real)
    run_module(litestream_ownership.main, args(hosts["a"], take_over=True))
    run_module(litestream_ownership.main, args(hosts["b"], take_over=True))
    assert dockers(hosts["b"])["ownership"]["epoch"] == 2
    monkeypatch.setattr(claim_store, "store_for", lambda fields, creds, timeout=10: Unanswering())
    kept = dockers(hosts["b"])  # the store refuses the read now: the sidecar keeps epoch 2's lineage
    assert kept["ownership"]["standing"] == "unknown" and kept["ownership"]["epoch"] == 2 and not kept["changed"]
    assert any("the sidecar keeps the lineage of epoch 2" in w for w in warnings), warnings
    assert 'epochs/2/production.sqlite3"' in kept["config"]


def test_the_epoch_a_configuration_names():
    lineage = '      path: "apps/shop/.dokku-litestream/shop/epochs/12/production.sqlite3"\n'
    assert ownership.epoch_in_config(lineage, "shop") == 12
    assert ownership.epoch_in_config('      path: "apps/shop/production.sqlite3"\n', "shop") == 1
    assert ownership.epoch_in_config(lineage, "blog") == 1  # another app's lineage is not this one's
    assert ownership.epoch_in_config(None, "shop") is None


def test_a_take_over_claims_only_the_epoch_it_read(hosts):
    """Two disaster recoveries at once: the one that read epoch 1 must not fence the one that claimed epoch 2."""
    run_module(litestream_ownership.main, args(hosts["a"], take_over=True))
    read = run_module(litestream_ownership.main, args(hosts["b"]))["ownership"]["epoch"]
    third = dict(args(hosts["b"]), config_root=str(hosts["b"] / "other-host"), host="dokku-c")
    run_module(litestream_ownership.main, dict(third, take_over=True, expected_epoch=read))  # c claims epoch 2
    late = run_module(litestream_ownership.main, args(hosts["b"], take_over=True, expected_epoch=read), fail=True)
    assert "the replica's owner changed since epoch 1 was read: now dokku-c since epoch 2" in late["msg"]
    assert run_module(litestream_ownership.main, args(hosts["b"]))["ownership"]["owner"] == "dokku-c"


def test_a_replica_path_inside_the_reserved_directory_is_refused(hosts):
    lineage = dict(S3, path="apps/shop/.dokku-litestream/shop/epochs/2")
    refused = run_module(litestream_ownership.main, args(hosts["a"], replica=lineage, take_over=True), fail=True)
    assert "replica.path: apps/shop/.dokku-litestream/shop/epochs/2 lies inside .dokku-litestream" in refused["msg"]
    assert not os.path.exists(str(hosts["a"] / "apps"))


def test_a_stopped_sidecar_claims_nothing(hosts, dockers, claims_on_disk):
    result = dockers(hosts["a"], state="stopped")
    assert "claim the replica (epoch 1)" not in result["actions"]
    assert not (claims_on_disk / "bkt").exists()


class IgnoringConditions(claim_store.FileClaims):
    """A store that answers "created" to every create, as one that ignores If-None-Match; probed as S3 is."""

    endpoint = urlsplit("http://127.0.0.1:9000")
    probe = claim_store.S3Claims.probe

    def __init__(self, root):
        self.root = root

    def names(self, directory):
        return super().names("%s/%s" % (self.root, directory))

    def read(self, path):
        return super().read("%s/%s" % (self.root, path))

    def create(self, path, data):
        super().create("%s/%s" % (self.root, path), data)
        return True


def test_a_store_that_ignores_conditions_records_nothing_and_provision_goes_on(hosts, dockers, monkeypatch):
    from ansible.module_utils import basic
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: warnings.append(text))
    store = IgnoringConditions(str(hosts["a"] / "store"))
    monkeypatch.setattr(claim_store, "store_for", lambda fields, creds, timeout=10: store)
    result = dockers(hosts["a"])
    assert result["ownership"]["standing"] == "unsupported" and "claim the replica (epoch 1)" not in result["actions"]
    assert result["container"]["running"]
    assert any("it ignores If-None-Match" in w and "nothing fences another host" in w for w in warnings), warnings


# ---- lineage_at / lineage_epoch: a point in time before a move or a take-over ---------------------------------

def test_epoch_at_is_the_newest_claim_made_at_or_before_the_moment():
    claims = [(2, 200.0), (1, 100.0), (3, 300.0)]
    assert [ownership.epoch_at(claims, t) for t in (50, 100, 199.9, 200, 250, 300, 10 ** 9)] == [1, 1, 1, 2, 2, 3, 3]
    assert ownership.epoch_at([], 123) == 1  # never claimed: the configured path is the only lineage


class Clock:
    """ownership_core's datetime, with utcnow() at the time the test sets."""

    def __init__(self):
        import datetime
        self.real, self.now = datetime, None
        self.timedelta = datetime.timedelta

    @property
    def datetime(self):
        clock = self

        class Frozen:
            @staticmethod
            def utcnow():
                return clock.now
        return Frozen


def test_lineage_at_reads_the_lineage_that_was_current_then_and_lineage_epoch_names_one(hosts, monkeypatch):
    from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import ownership_core
    clock = Clock()
    monkeypatch.setattr(ownership_core, "datetime", clock)
    lineage2 = "apps/shop/.dokku-litestream/shop/epochs/2"
    before = run_module(litestream_ownership.main, args(hosts["a"], lineage_at="2026-11-01T00:00:00Z"))
    assert before["read_replica"]["path"] == "apps/shop" and before["read_epoch"] == 1  # never claimed

    clock.now = clock.real.datetime(2026, 11, 20, 12, 0, 0)
    run_module(litestream_ownership.main, args(hosts["a"], take_over=True))
    clock.now = clock.real.datetime(2026, 11, 25, 12, 0, 0)
    run_module(litestream_ownership.main, args(hosts["b"], take_over=True, reason="move",
                                               branch_txids={"production.sqlite3": "2a"}))
    for moment, epoch, path in [("2026-11-19T00:00:00Z", 1, "apps/shop"),  # data from before the first claim
                                ("2026-11-25T11:59:59.999Z", 1, "apps/shop"),
                                ("2026-11-25T13:00:00+01:00", 2, lineage2),  # the claim's very second, in UTC
                                ("2026-12-01T00:00:00Z", 2, lineage2)]:
        read = run_module(litestream_ownership.main, args(hosts["a"], lineage_at=moment))
        assert (read["read_epoch"], read["read_replica"]["path"]) == (epoch, path), moment
        assert read["ownership"]["epoch"] == 2 and read["fenced"] and not read["changed"]
    old = run_module(litestream_ownership.main, args(hosts["b"], lineage_epoch=1))
    assert old["read_replica"]["path"] == "apps/shop" and old["write_replica"]["path"] == lineage2
    assert run_module(litestream_ownership.main, args(hosts["b"]))["read_replica"]["path"] == lineage2


@pytest.mark.parametrize("extra, message", [
    ({"lineage_at": "yesterday"}, "lineage_at: timestamp 'yesterday' is not an RFC 3339 time"),
    ({"lineage_epoch": 3}, "lineage_epoch: app shop's replica has no epoch 3; the newest is dokku-a since epoch 1 "
                           "(first, "),
    ({"lineage_epoch": 0}, "lineage_epoch: "),
    ({"lineage_epoch": 1, "lineage_at": "2026-11-01T00:00:00Z"}, "lineage_at: not with lineage_epoch"),
    ({"lineage_epoch": 1, "take_over": True}, "lineage_epoch: not with take_over, which claims from the current "
                                              "lineage"),
    ({"lineage_at": "2026-11-01T00:00:00Z", "take_over": True}, "lineage_at: not with take_over"),
], ids=["bad_time", "no_such_epoch", "zero", "both", "epoch_with_take_over", "at_with_take_over"])
def test_a_lineage_that_cannot_be_read_is_refused_naming_the_option(hosts, extra, message):
    run_module(litestream_ownership.main, args(hosts["a"], take_over=True))
    refused = run_module(litestream_ownership.main, args(hosts["a"], **extra), fail=True)
    assert refused["msg"].startswith(message), refused["msg"]


def test_a_replica_without_records_has_one_lineage(hosts):
    gs = {"type": "gs", "bucket": "bkt", "path": "apps/shop", "credentials": "lab"}
    read = run_module(litestream_ownership.main, args(hosts["a"], replica=gs, lineage_at="2026-11-01T00:00:00Z"))
    assert read["read_epoch"] == 1 and read["read_replica"]["path"] == "apps/shop"
    refused = run_module(litestream_ownership.main, args(hosts["a"], replica=gs, lineage_epoch=2), fail=True)
    assert refused["msg"].startswith("lineage_epoch: app shop's replica has no epoch 2: "), refused["msg"]


def test_take_over_false_and_a_null_epoch_do_not_stop_lineage_at(hosts):
    run_module(litestream_ownership.main, args(hosts["a"], take_over=True))
    read = run_module(litestream_ownership.main, args(hosts["a"], take_over=False, lineage_epoch=None,
                                                      lineage_at="2026-11-01T00:00:00Z"))
    assert read["read_epoch"] == 1


@pytest.mark.parametrize("branch", [
    "x", {"epoch": 1, "owner": "dokku-a", "txids": {"production.sqlite3": "zz"}},
    {"epoch": 2, "owner": "dokku-a", "txids": {}}, {"epoch": 1, "txids": {}}, {"epoch": "1", "owner": "a", "txids": {}},
], ids=["not_a_dict", "bad_txid", "not_older", "no_owner", "epoch_text"])
def test_a_claim_with_a_malformed_branch_is_a_claim_problem(branch):
    claim = ownership.new_claim("shop", 2, "dokku-b", "id-b", "move", dict(S3), ["production.sqlite3"],
                                "2026-11-25T12:00:00Z", "n0nce", branch={"epoch": 1, "owner": "dokku-a", "txids": {}})
    assert ownership.decode(ownership.encode(claim), dict(S3), "shop", 2)["from"]["owner"] == "dokku-a"
    claim["from"] = branch
    with pytest.raises(ownership.ClaimProblem) as caught:
        ownership.decode(ownership.encode(claim), dict(S3), "shop", 2)
    assert str(caught.value).endswith("has no valid branch (from)")
    claim.pop("from")
    claim["reason"] = "because"
    with pytest.raises(ownership.ClaimProblem):
        ownership.decode(ownership.encode(claim), dict(S3), "shop", 2)
