"""Ownership claims on a real S3 server (issue #22, docs/move-design.md §7 step 3): create-only with If-None-Match.

The store is a moto server of the test's own on 127.0.0.1 with authentication on (tests/lab/motoauth.py), so every
request the claim store signs (a PUT with a body hash and a signed If-None-Match header, a GET, a listing with a
delimiter) is checked as a real store checks it. Then:
- a claim is created once; a second create of the same epoch is refused (412) and the loser is told the winner;
- the probe passes on a store that honours If-None-Match;
- 20 concurrent claims of one epoch on a single-threaded moto (moto's threaded server checks and writes in two
  steps, not atomically: motoauth.SINGLE_THREADED): exactly one wins, every loser names it;
- a wrong secret fails with the store's words and never prints the secret.
"""
import uuid

import pytest

from conftest import motoauth
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import claim_store, ownership
from ansible_collections.dokku_sqlite.litestream.tests import claims_race

BUCKET = "dsl-claims"
WRONG_SECRET = "Wr0ngClaimSecretThatMustNeverBePrinted/xyz"


def claim_of(fields, owner, nonce, epoch=1):
    return ownership.new_claim("shop", epoch, owner, uuid.uuid4().hex, "first", fields, ["production.sqlite3"],
                               "2026-12-07T12:00:00Z", nonce)


def s3_store(tmp_path, threaded):
    return motoauth.authenticating_moto(tmp_path, {"litestream": ["s3:*"]}, BUCKET, "moto-claims", threaded=threaded)


def replica(found, prefix):
    key = found["users"]["litestream"][0]
    fields = {"type": "s3", "bucket": BUCKET, "path": prefix, "endpoint": found["endpoint"] + "/"}
    return fields, dict(key, region="us-east-1")


def test_a_claim_is_created_once_and_the_loser_names_the_winner(tmp_path):
    with s3_store(tmp_path, threaded=True) as found:
        fields, credentials = replica(found, "apps/%s" % uuid.uuid4().hex[:8])
        store = claim_store.store_for(fields, credentials)
        store.probe(ownership.app_dir(fields, "shop").rsplit("/", 1)[0])
        assert claim_store.current(store, fields, "shop") is None
        ours = claim_store.create(store, fields, claim_of(fields, "dokku-a", "n-a"))
        assert ours["owner"] == "dokku-a"
        assert store.create("%s/%s" % (ownership.claims_dir(fields, "shop"), ownership.claim_name(1)), b"{}") is False
        with pytest.raises(claim_store.LostClaim, match="claimed epoch 1 first: dokku-a since epoch 1"):
            claim_store.create(store, fields, claim_of(fields, "dokku-b", "n-b"))
        second = claim_store.create(store, fields, claim_of(fields, "dokku-b", "n-b2", epoch=2))
        assert claim_store.current(store, fields, "shop") == second
        assert sorted(store.names(ownership.claims_dir(fields, "shop"))) == [ownership.claim_name(1),
                                                                              ownership.claim_name(2)]
        # another spelling of the endpoint reads the same claims
        other = dict(fields, endpoint=found["endpoint"].upper().replace("HTTP://", "http://"))
        assert claim_store.current(claim_store.store_for(other, credentials), other, "shop")["owner"] == "dokku-b"


def test_a_wrong_secret_fails_with_the_stores_words_and_no_secret(tmp_path):
    with s3_store(tmp_path, threaded=True) as found:
        fields, credentials = replica(found, "apps/wrong")
        store = claim_store.store_for(fields, dict(credentials, secret_access_key=WRONG_SECRET))
        with pytest.raises(claim_store.StoreFailed) as failed:
            claim_store.create(store, fields, claim_of(fields, "dokku-a", "n"))
        assert "SignatureDoesNotMatch" in str(failed.value) and WRONG_SECRET not in str(failed.value)


def test_twenty_concurrent_claims_have_exactly_one_winner(tmp_path):
    with s3_store(tmp_path, threaded=False) as found:
        fields, credentials = replica(found, "apps/race")
        outcomes, answers = claims_race.race(lambda: claim_store.S3Claims(fields, credentials, timeout=30), fields,
                                             claim_of)
        winner = claims_race.one_winner(outcomes, answers)  # one 200, nineteen 412
        store = claim_store.store_for(fields, credentials)
        assert claim_store.current(store, fields, "shop")["owner"] == winner
