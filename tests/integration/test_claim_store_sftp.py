"""Ownership claims on the lab's real sftp server (OpenSSH's sftp-server), create-only with `rename -l` (issue #22,
docs/move-design.md §5 and §7 step 3), run from this test process through the OpenSSH `sftp` client:
- a claim is created once; a second create of the same epoch is refused and the loser is told the winner;
- the probe passes on OpenSSH's sftp-server;
- 20 concurrent claims of one epoch from 20 threads: exactly one wins, every loser names it;
- a wrong host key is refused: the connection fails and nothing is created;
- a file larger than a claim at a claim's name is read only up to the bound and refused.
Each test works under a directory of its own inside the replica path and removes it afterwards.
"""
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import claim_store, ownership, sftp_claims
from ansible_collections.dokku_sqlite.litestream.tests import claims_race


@contextmanager
def replica(lab, name):
    """The sftp fields and credentials of a directory of this test's own, removed afterwards (only that one)."""
    sftp = lab.facts["sftp"]
    # a space, a quote and a '#' travel quoted through the batch script
    prefix = "claims it's #%s-%s" % (name, uuid.uuid4().hex[:8])
    fields = {"type": "sftp", "host": sftp["host"], "user": sftp["user"], "host_key": sftp["host_key"],
              "path": "%s/%s" % (sftp["path"], prefix)}
    try:
        yield fields, {"ssh_private_key": Path(sftp["key_file"]).read_text()}
    finally:
        subprocess.run(["docker", "exec", "%s-sftp" % lab.facts["name"], "rm", "-rf", "--", fields["path"]],
                       check=True, capture_output=True, timeout=60)


def claim_of(fields, owner, nonce, epoch=1):
    return ownership.new_claim("shop", epoch, owner, uuid.uuid4().hex, "first", fields, ["production.sqlite3"],
                               "2026-12-07T12:00:00Z", nonce)


def test_a_claim_is_created_once_and_the_loser_names_the_winner(lab):
    with replica(lab, "once") as (fields, credentials):
        store = claim_store.store_for(fields, credentials)
        assert isinstance(store, sftp_claims.SftpClaims)
        claims = ownership.claims_dir(fields, "shop")
        assert claim_store.current(store, fields, "shop") is None  # no directory yet
        assert store.read(claims + "/" + ownership.claim_name(1)) is None
        store.probe(ownership.app_dir(fields, "shop").rsplit("/", 1)[0])
        ours = claim_store.create(store, fields, claim_of(fields, "dokku-a", "n-a"))
        assert ours["owner"] == "dokku-a" and claim_store.current(store, fields, "shop") == ours
        assert store.create("%s/%s" % (claims, ownership.claim_name(1)), b"{}") is False
        with pytest.raises(claim_store.LostClaim, match="claimed epoch 1 first: dokku-a since epoch 1"):
            claim_store.create(store, fields, claim_of(fields, "dokku-b", "n-b"))
        second = claim_store.create(store, fields, claim_of(fields, "dokku-b", "n-b2", epoch=2))
        assert claim_store.current(store, fields, "shop") == second
        # the temporary files of the refused creates are gone: only the two claims are left
        assert sorted(store.names(claims)) == [ownership.claim_name(1), ownership.claim_name(2)]
        # another spelling of the replica (a trailing slash, the host key with its comment) reads the same claims
        other = dict(fields, path=fields["path"] + "/", host_key=fields["host_key"] + " root@sftp")
        assert claim_store.current(claim_store.store_for(other, credentials), other, "shop")["owner"] == "dokku-b"


def test_twenty_concurrent_claims_have_exactly_one_winner(lab):
    with replica(lab, "race") as (fields, credentials):
        started = time.time()
        outcomes, answers = claims_race.race(lambda: sftp_claims.SftpClaims(fields, credentials, timeout=30), fields,
                                             claim_of, lost=(claim_store.LostClaim, claim_store.StoreFailed))
        print("20 concurrent claims: %.1fs" % (time.time() - started))
        # the server made the name once (link) and refused it to every other rename
        winner = claims_race.one_winner(outcomes, answers)
        store = claim_store.store_for(fields, credentials)
        assert claim_store.current(store, fields, "shop")["owner"] == winner
        assert store.names(ownership.claims_dir(fields, "shop")) == [ownership.claim_name(1)]


def test_a_wrong_host_key_is_refused_and_nothing_is_created(lab):
    with replica(lab, "hostkey") as (fields, credentials):
        wrong = dict(fields, host_key=lab.hosts[0]["host_key"])  # a real key, of another server
        assert wrong["host_key"] != fields["host_key"]
        with pytest.raises(claim_store.StoreFailed, match="Host key verification failed.$") as failed:
            claim_store.create(claim_store.store_for(wrong, credentials), fields, claim_of(fields, "dokku-a", "n"))
        key_lines = credentials["ssh_private_key"].splitlines()
        assert not any(line in str(failed.value) for line in key_lines), failed.value
        store = claim_store.store_for(fields, credentials)
        assert store.names(fields["path"]) == []  # not even the directories
        assert claim_store.current(store, fields, "shop") is None


def test_a_file_larger_than_a_claim_is_read_only_up_to_the_bound(lab):
    with replica(lab, "large") as (fields, credentials):
        store = claim_store.store_for(fields, credentials)
        path = "%s/%s" % (ownership.claims_dir(fields, "shop"), ownership.claim_name(1))
        assert store.create(path, b"x" * 1000000) is True
        assert len(store.read(path)) == ownership.MAX_CLAIM_BYTES + 1
        with pytest.raises(ownership.ClaimProblem, match="is larger than a claim"):
            claim_store.current(store, fields, "shop")
