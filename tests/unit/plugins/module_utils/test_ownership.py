# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ownership.py: claim names, lineage paths, the claim schema, and the file store's create-only claims."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends, claim_store, ownership
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.tests import claims_race

S3 = {"type": "s3", "bucket": "b", "path": "apps/shop", "endpoint": "http://127.0.0.1:9000/"}
NOW = "2026-12-07T12:00:00Z"


def claim(fields, epoch=1, owner="dokku-a", host_id="a" * 32, nonce="n1", **kwargs):
    return ownership.new_claim("shop", epoch, owner, host_id, kwargs.pop("reason", "first"), fields,
                               ["production.sqlite3"], NOW, nonce, **kwargs)


def test_epoch_one_keeps_the_configured_path_and_later_epochs_never_share_one():
    assert ownership.lineage_fields(S3, "shop", 1) == S3
    paths = {ls.replica_path(ownership.lineage_fields(S3, "shop", e), "production.sqlite3") for e in range(1, 6)}
    assert len(paths) == 5
    assert ls.replica_path(ownership.lineage_fields(S3, "shop", 2), "production.sqlite3") == \
        "apps/shop/.dokku-litestream/shop/epochs/2/production.sqlite3"
    one_path = dict(S3, location="path")
    assert ls.replica_path(ownership.lineage_fields(one_path, "shop", 3), "x") == \
        "apps/shop/.dokku-litestream/shop/epochs/3"
    # absolute paths stay absolute (file, sftp), a relative server path stays relative, an empty path is the bucket
    lineage = ownership.lineage_fields
    assert lineage({"type": "file", "path": "/srv/r/"}, "a", 2)["path"] == "/srv/r/.dokku-litestream/a/epochs/2"
    assert lineage({"type": "sftp", "path": "backups"}, "a", 2)["path"] == "backups/.dokku-litestream/a/epochs/2"
    assert ownership.lineage_fields({"type": "s3", "path": ""}, "a", 2)["path"] == ".dokku-litestream/a/epochs/2"
    assert ownership.claims_dir({"type": "file", "path": "/"}, "a") == "/.dokku-litestream/a/claims"


def test_the_reserved_directory_is_no_name_litestream_or_a_user_gives():
    """Litestream 0.5 lists level directories (s3 `%04x`, file/sftp/gs/abs `ltx/<level>`) and 0.3 `generations`
    below a replica path; databases and apps cannot start with '.', so nothing else is ever written there."""
    levels = {"%04x" % level for level in range(10)} | {"ltx", "generations"}
    assert ownership.RESERVED_DIR not in levels and ownership.RESERVED_DIR.startswith(".")
    with pytest.raises(v.InvalidValue):
        v.db_file_name(ownership.RESERVED_DIR)
    with pytest.raises(v.InvalidValue):
        v.app_name(ownership.RESERVED_DIR)
    with pytest.raises(v.InvalidValue):
        v.app_name(claim_store.PROBE_NAME)
    assert all(e.startswith(".") for e in (ownership.RESERVED_DIR, claim_store.PROBE_NAME))


def test_claim_names_sort_as_epochs_and_strays_are_ignored():
    names = [ownership.claim_name(e) for e in (1, 2, 10)]
    names += [".tmp-0000000011.json-77", "0000000012.json.bak", "notes.txt", "0000000000.json"]
    assert ownership.newest_epoch(names) == 10
    assert ownership.newest_epoch([]) is None
    assert sorted(names[:3]) == names[:3]


def test_a_claim_round_trips_and_is_checked_against_its_place():
    first = claim(S3)
    data = ownership.encode(first)
    assert ownership.decode(data, S3, "shop", 1) == first
    # the same replica spelled differently is the same replica
    assert ownership.decode(data, dict(S3, endpoint="HTTP://127.0.0.1:9000"), "shop", 1) == first
    with pytest.raises(ownership.ClaimProblem, match="epoch"):
        ownership.decode(data, S3, "shop", 2)
    with pytest.raises(ownership.ClaimProblem, match="replica"):
        ownership.decode(data, dict(S3, bucket="other"), "shop", 1)
    with pytest.raises(ownership.ClaimProblem, match="app"):
        ownership.decode(data, S3, "blog", 1)
    for bad in (b"not json", b"[1]", json.dumps(dict(first, format=2)).encode(),
                json.dumps(dict(first, owner="")).encode(), b"[" * 100000, b" " * (ownership.MAX_CLAIM_BYTES + 1)):
        with pytest.raises(ownership.ClaimProblem):
            ownership.decode(bad, S3, "shop", 1)


def test_standing_is_by_host_id_and_messages_name_the_owner():
    current = claim(S3, epoch=3, owner="dokku-b", host_id="b" * 32, reason="move",
                    branch={"epoch": 2, "owner": "dokku-a", "final": True, "txids": {"production.sqlite3": "d4"}})
    assert ownership.standing(None, "a" * 32) == ownership.UNCLAIMED
    assert ownership.standing(current, "b" * 32) == ownership.OWNER
    assert ownership.standing(current, "a" * 32) == ownership.FENCED
    message = ownership.fenced_message("shop", current, "dokku-a")
    for needle in ("dokku-b since epoch 3 (move, %s)" % NOW, "fenced", "dokku_sqlite.litestream.move",
                   "restore_take_over: true"):
        assert needle in message
    assert "dokku-b" in ownership.lost_claim_message("shop", 3, current)
    with pytest.raises(ValueError):
        claim(S3, reason="because")


def test_every_backend_says_how_it_claims():
    primitives = {b.name: b.claims for b in backends.BACKENDS}
    assert set(primitives.values()) <= {None, "conditional-put", "link", "legacy-rename"}
    for name, primitive in primitives.items():
        fields = {"type": name, "bucket": "b", "path": "/r", "host": "h", "user": "u", "host_key": "k"}
        if primitive is None:
            with pytest.raises(claim_store.Unsupported, match="cannot be recorded"):
                claim_store.store_for(fields, {})


def test_file_claims_are_create_only_and_the_loser_reads_the_winner(tmp_path):
    fields = {"type": "file", "path": str(tmp_path / "replica")}
    store = claim_store.FileClaims()  # not store_for: tests/unit/conftest.py roots that in a directory of its own
    assert claim_store.current(store, fields, "shop") is None
    ours = claim_store.create(store, fields, claim(fields))
    assert claim_store.current(store, fields, "shop") == ours
    with pytest.raises(claim_store.LostClaim, match="another host claimed epoch 1 first") as lost:
        claim_store.create(store, fields, claim(fields, owner="dokku-b", host_id="b" * 32, nonce="n2"))
    assert "dokku-a since epoch 1" in str(lost.value)
    directory = tmp_path / "replica" / ".dokku-litestream" / "shop" / "claims"
    assert sorted(os.listdir(str(directory))) == ["0000000001.json"]  # no temporary file left
    assert json.loads((directory / "0000000001.json").read_text())["owner"] == "dokku-a"


def test_a_claim_made_by_another_run_of_the_same_host_is_this_hosts(tmp_path):
    fields = {"type": "file", "path": str(tmp_path / "replica")}
    store = claim_store.FileClaims()
    first = claim_store.create(store, fields, claim(fields, nonce="run-1"))
    assert claim_store.create(store, fields, claim(fields, nonce="run-2")) == first  # same host id: no loss


def test_twenty_concurrent_file_claims_have_one_winner(tmp_path):
    fields = {"type": "file", "path": str(tmp_path / "replica")}

    def claim_of(fields, owner, nonce):  # twenty hosts: twenty host ids
        return claim(fields, owner=owner, nonce=nonce, host_id=hashlib.md5(owner.encode()).hexdigest())
    outcomes, answers = claims_race.race(claim_store.FileClaims, fields, claim_of)
    winner = claims_race.one_winner(outcomes, answers)
    assert claim_store.current(claim_store.FileClaims(), fields, "shop")["owner"] == winner


def test_host_id_is_made_once(tmp_path):
    config_root = str(tmp_path / "apps")
    os.mkdir(config_root)
    assert claim_store.host_id(config_root, create=False) is None
    made = claim_store.host_id(config_root)
    assert len(made) == 32 and claim_store.host_id(config_root) == made
    assert claim_store.host_id(config_root, create=False) == made
    (tmp_path / "apps" / claim_store.HOST_ID_FILE).write_text("garbage\n")
    with pytest.raises(claim_store.StoreFailed, match="host id"):
        claim_store.host_id(config_root)
