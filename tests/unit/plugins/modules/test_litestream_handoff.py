# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_handoff without docker: the input checks, the local final TXIDs from the level-0 LTX names, the re-run
after the new host claimed the replica for the move, and the check that the app and its sidecar stopped (a scripted
docker). The dry-run restores of the replica and the whole move are proven on the lab (tests/integration/test_move.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import types

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors, handoff_core, move, ownership
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule
from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_handoff, litestream_ownership

from .conftest import run_module

DB = "production.sqlite3"
S3 = {"type": "s3", "bucket": "bkt", "path": "apps/shop", "endpoint": "http://127.0.0.1:9000", "credentials": "lab"}
ENTRY = {"app": "shop", "replica": S3}
SIDECAR = "dokku.litestream.shop"


@pytest.fixture
def top(tmp_path):
    """A host's roots: the credential set lab, the app's storage directory (empty)."""
    (tmp_path / "credentials" / "lab").mkdir(parents=True)
    (tmp_path / "credentials" / "lab" / "credentials.json").write_text(
        json.dumps({"access_key_id": "AKIALAB", "secret_access_key": "handoffSecret"}))
    (tmp_path / "storage" / "shop--db").mkdir(parents=True)
    return tmp_path


def args(top, **extra):
    base = {"app": "shop", "move_from": "dokku-a", "move_to": "dokku-b", "from_apps": [ENTRY], "to_apps": [],
            "storage_root": str(top / "storage"), "config_root": str(top / "apps"),
            "credentials_root": str(top / "credentials")}
    base.update(extra)
    return base


@pytest.fixture(autouse=True)
def docker(commands):
    """A scripted docker CLI (conftest's commands) in every test, answering nothing until docker.rules are set;
    docker.calls records what ran."""
    return commands([])


def handoff(options, check=False):
    """A Handoff over a real AnsibleModule built from the module's own argument spec."""
    with patch_module_args(dict(options, _ansible_check_mode=check)):
        module = SecretMaskingModule(argument_spec=handoff_core.handoff_argument_spec(), supports_check_mode=True)
    return handoff_core.Handoff(module)


# ---- validate -------------------------------------------------------------------------------------------------

def test_validate_gives_the_entry_its_replica_and_credentials(top, docker):
    run = handoff(args(top, to_apps=[dict(ENTRY)]))
    sidecar, fields, creds = run.validate()
    assert sidecar["databases"] == [DB] and fields["bucket"] == "bkt"
    assert creds["secret_access_key"] == "handoffSecret"
    assert run.result["listed_on"] == "both" and run.result["databases"] == [DB]
    assert run.result["storage_dir"] == str(top / "storage" / "shop--db")
    assert docker.calls == []  # validation reads nothing on the host


@pytest.mark.parametrize("extra, message", [
    ({"from_apps": []}, "move_app: neither dokku-a nor dokku-b lists app shop in litestream_apps: nothing to move"),
    ({"to_apps": [dict(ENTRY, storage="other--db")]},
     "move_app: dokku-a and dokku-b both list app shop, with different entries (storage differ)"),
    ({"from_apps": [ENTRY, ENTRY]}, "litestream_apps of 'dokku-a' lists app shop 2 times"),
    ({"move_to": "dokku-a"}, "move_to: 'dokku-a' is also move_from; a move needs two hosts"),
    ({"app": "../shop"}, "move_app: '../shop' is not a valid Dokku app name"),
    ({"from_apps": [{"app": "shop"}]}, "move_app: app shop has no replica"),
], ids=["neither", "different", "twice", "same_host", "bad_app", "no_replica"])
def test_validate_refuses_what_picks_no_entry(top, extra, message):
    with pytest.raises(errors.InvalidValue) as caught:
        handoff(args(top, **extra)).validate()
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("option, value", [("config_root", "/etc"), ("storage_root", "relative/storage"),
                                           ("credentials_root", "/srv/../etc")])
def test_validate_refuses_a_bad_root(top, option, value):
    with pytest.raises(errors.InvalidValue) as caught:
        handoff(args(top, **{option: value})).validate()
    assert str(caught.value).startswith(option + ": ")


def test_an_entry_the_host_would_refuse_is_refused_naming_the_app(top):
    with pytest.raises(errors.InvalidValue) as caught:
        handoff(args(top, from_apps=[dict(ENTRY, colour="blue")])).validate()
    assert str(caught.value).startswith("the entry of app shop: unknown key colour")


@pytest.mark.parametrize("kind, replica", [
    ("gs", {"type": "gs", "bucket": "bkt", "path": "apps/shop", "credentials": "lab"}),
    ("abs", {"url": "abs://acct@container/apps/shop", "credentials": "lab"}),
], ids=["gs", "abs"])
def test_a_replica_type_without_ownership_records_is_refused_with_the_manual_move(top, kind, replica):
    with pytest.raises(move.MoveRefused) as caught:
        handoff(args(top, from_apps=[{"app": "shop", "replica": replica}])).validate()
    message = str(caught.value)
    assert message.startswith("app shop: a %s replica keeps no ownership record" % kind)
    assert message.endswith("so nothing would fence dokku-a after the move. Move it by hand: stop the app and its "
                            "sidecar on dokku-a first, then restore on dokku-b")


def test_a_missing_credential_set_is_refused(top):
    with pytest.raises(errors.MissingCredentials) as caught:
        handoff(args(top, from_apps=[dict(ENTRY, replica=dict(S3, credentials="nowhere"))])).validate()
    assert str(caught.value).startswith("credential set 'nowhere' not found (%s/nowhere)" % (top / "credentials"))


# ---- local_txids ----------------------------------------------------------------------------------------------

def ltx(top, db, *names):
    level0 = top / "storage" / "shop--db" / (".%s-litestream" % db) / "ltx" / "0"
    level0.mkdir(parents=True, exist_ok=True)
    for name in names:
        (level0 / name).write_bytes(b"")


def test_local_txids_are_the_newest_level_0_file_of_each_database(top):
    entry = dict(ENTRY, databases=[DB, "queue.sqlite3", "cache.sqlite3"])
    for db in entry["databases"]:
        (top / "storage" / "shop--db" / db).write_bytes(b"SQLite format 3\x00")
    ltx(top, DB, "0000000000000001-0000000000000005.ltx", "0000000000000006-000000000000001f.ltx",
        "0000000000000020-00000000000000ff.ltx.tmp", "notes.txt", "00000000000000ff-0000000000000fff.LTX")
    ltx(top, "queue.sqlite3")  # Litestream made the directory, wrote nothing yet
    run = handoff(args(top, from_apps=[entry]))
    run.validate()
    assert run.local_txids(entry["databases"]) == {DB: 0x1f, "queue.sqlite3": 0, "cache.sqlite3": 0}


def test_a_missing_database_is_refused(top):
    run = handoff(args(top))
    run.validate()
    with pytest.raises(move.MoveRefused) as caught:
        run.local_txids([DB])
    assert str(caught.value) == "app shop: %s does not exist on dokku-a: nothing to move" % (
        top / "storage" / "shop--db" / DB)


# ---- resumed: a re-run after the new host claimed the replica ------------------------------------------------

def claim(owner="dokku-b", reason="move", epoch=2, final=True, txids=None):
    return {"owner": owner, "reason": reason, "epoch": epoch, "created_at": "2026-12-07T12:00:00Z",
            "from": {"epoch": epoch - 1, "owner": "dokku-a", "final": final,
                     "txids": {DB: "000000000000002a"} if txids is None else txids}}


def test_this_moves_own_claim_gives_the_final_txids(top):
    run = handoff(args(top))
    _sidecar, fields, _creds = run.validate()
    result = run.resumed(types.SimpleNamespace(claim=claim(epoch=3)), fields)
    assert result["resumed"] is True and result["epoch"] == 2
    assert result["final_txids"] == {DB: "000000000000002a"}
    assert result["read_replica"] == ownership.lineage_fields(fields, "shop", 2)
    assert result["read_replica"]["path"] == "apps/shop/.dokku-litestream/shop/epochs/2"


@pytest.mark.parametrize("found, owner", [
    (claim(owner="dokku-c"), "dokku-c since epoch 2 (move, 2026-12-07T12:00:00Z)"),
    (claim(reason="take-over", final=False), "dokku-b since epoch 2 (take-over, 2026-12-07T12:00:00Z)"),
    (claim(final=False), "dokku-b since epoch 2 (move, 2026-12-07T12:00:00Z)"),
    (dict(claim(), **{"from": None}), "dokku-b since epoch 2 (move, 2026-12-07T12:00:00Z)"),
], ids=["another_host", "a_take_over", "not_final", "no_branch"])
def test_any_other_owner_is_refused(top, found, owner):
    run = handoff(args(top))
    _sidecar, fields, _creds = run.validate()
    with pytest.raises(move.MoveRefused) as caught:
        run.resumed(types.SimpleNamespace(claim=found), fields)
    assert str(caught.value) == ("app shop: this host (dokku-a) does not own the replica: it is owned by %s; only "
                                 "the owner can hand it over" % owner)
    assert run.result["resumed"] is False and "final_txids" not in run.result


def ownership_args(top, **extra):
    base = {"app": "shop", "replica": dict(S3), "config_root": str(top / "apps"),
            "credentials_root": str(top / "credentials")}
    base.update(extra)
    return base


def test_the_module_resumes_from_the_claim_the_new_host_made_and_refuses_before_any_claim(tmp_path, docker):
    """Through main(): two hosts (two configuration roots, so two host ids), the replica's claims in the file
    store (tests/unit/conftest.py); the old host's re-run reads the final TXIDs from the new host's claim."""
    old, new = tmp_path / "a", tmp_path / "b"
    for host in (old, new):
        (host / "credentials" / "lab").mkdir(parents=True)
        (host / "credentials" / "lab" / "credentials.json").write_text(
            json.dumps({"access_key_id": "AKIALAB", "secret_access_key": "handoffSecret"}))
    refused = run_module(litestream_handoff.main, args(old), fail=True)
    assert refused["msg"] == "app shop: no host owns its replica yet (provision dokku-a first, which claims it)"
    run_module(litestream_ownership.main, ownership_args(old, take_over=True, host="dokku-a"))
    run_module(litestream_ownership.main, ownership_args(new, take_over=True, host="dokku-b", reason="move",
                                                         branch_txids={DB: "2a"}, expected_epoch=1))
    result = run_module(litestream_handoff.main, args(old))
    assert result["resumed"] is True and result["epoch"] == 1
    assert result["final_txids"] == {DB: "000000000000002a"}
    assert result["read_replica"]["path"] == "apps/shop"  # epoch 1 wrote the configured path itself
    assert docker.calls == []  # nothing on the host was looked at: the claim says it all


# ---- check_stopped --------------------------------------------------------------------------------------------

PS = ("ps", "--quiet", "--filter", "label=com.dokku.app-name=shop")
INSPECT = ("container", "inspect", SIDECAR)


def stopped(top, docker, rules):
    docker.rules[:] = rules
    run = handoff(args(top))
    run.check_stopped("shop")
    return run


def test_a_stopped_app_and_sidecar_pass_and_the_sidecars_exit_code_is_reported(top, docker):
    run = stopped(top, docker, [(PS, 0, "", ""),
                                (INSPECT, 0, json.dumps([{"State": {"Running": False, "ExitCode": 0}}]), "")])
    assert run.result["sidecar_exit_code"] == 0
    assert docker.calls == [list(PS), list(INSPECT)]


def test_running_app_containers_are_refused(top, docker):
    with pytest.raises(move.MoveRefused) as caught:
        stopped(top, docker, [(PS, 0, "3f2a9c\n7b1e04\n", "")])
    assert str(caught.value) == ("app shop still runs on dokku-a (containers 3f2a9c 7b1e04): stop it first "
                                 "(dokku ps:stop shop)")
    assert docker.calls == [list(PS)]


def test_a_running_sidecar_is_refused(top, docker):
    with pytest.raises(move.MoveRefused) as caught:
        stopped(top, docker, [(PS, 0, "", ""), (INSPECT, 0, json.dumps([{"State": {"Running": True}}]), "")])
    assert str(caught.value) == ("app shop: its sidecar dokku.litestream.shop still runs: stop it first (its final "
                                 "sync ends the replica)")


def test_a_missing_sidecar_is_refused(top, docker):
    with pytest.raises(move.MoveRefused) as caught:
        stopped(top, docker, [(PS, 0, "", ""), (INSPECT, 1, "[]\n", "Error: No such container: %s\n" % SIDECAR)])
    assert str(caught.value) == "app shop: no sidecar dokku.litestream.shop on dokku-a, so nothing made the final sync"


def test_a_docker_that_fails_is_an_error_not_a_pass(top, docker):
    with pytest.raises(errors.CollectionError):
        stopped(top, docker, [(PS, 1, "", "Cannot connect to the Docker daemon")])


@pytest.mark.parametrize("state,shown", [({"Running": False, "ExitCode": 137}, "exit code 137"),
                                         ({"Running": False, "ExitCode": 1, "OOMKilled": True}, "out of memory")])
def test_a_killed_sidecar_is_refused_its_final_sync_may_be_incomplete(top, docker, state, shown):
    with pytest.raises(move.MoveRefused) as caught:
        stopped(top, docker, [(PS, 0, "", ""), (INSPECT, 0, json.dumps([{"State": state}]), "")])
    assert "was killed (exit code" in str(caught.value) and shown in str(caught.value)
    assert "its final sync may be incomplete" in str(caught.value)


def test_a_sidecar_that_does_not_run_before_the_move_is_refused_and_a_running_ones_id_is_kept(top, docker):
    docker.rules[:] = [(INSPECT, 0, json.dumps([{"Id": "c0ffee" * 10, "State": {"Running": False,
                                                                                "Status": "exited"}}]), "")]
    run = handoff(args(top))
    with pytest.raises(move.MoveRefused) as caught:
        run.check_running("shop")
    assert str(caught.value) == ("app shop: its sidecar dokku.litestream.shop does not run on dokku-a (exited), so no "
                                 "final sync would end the replica; start it (provision) and move again")
    docker.rules[:] = [(INSPECT, 0, json.dumps([{"Id": "c0ffee" * 10, "State": {"Running": True}}]), "")]
    run.check_running("shop")
    assert run.result["sidecar_id"] == "c0ffee" * 10


@pytest.mark.parametrize("doc, message", [
    ({"Id": "beef" * 16, "State": {"Running": False, "ExitCode": 0}},
     "is not the container that ran when the move started (c0ffeec0ffee, now beefbeefbeef)"),
    ({"Id": "c0ffee" * 10, "State": {"Running": False, "ExitCode": 1}},
     "stopped with exit code 1, not after a clean final sync"),
], ids=["recreated", "exit_code_1"])
def test_a_sidecar_recreated_since_the_check_or_stopped_unclean_is_refused(top, docker, doc, message):
    docker.rules[:] = [(PS, 0, "", ""), (INSPECT, 0, json.dumps([doc]), "")]
    run = handoff(args(top, sidecar_id="c0ffee" * 10))
    with pytest.raises(move.MoveRefused) as caught:
        run.check_stopped("shop")
    assert message in str(caught.value)


# ---- after_claim: nothing changed on the old host between the handoff and the claim ---------------------------

def after_claim_run(top, docker, fingerprints, ps_out=""):
    """An after_claim run on the old host of a replica this move's claim (epoch 2) took over: the old host's
    database at TXID 0x2a on disk, a scripted docker answering ps."""
    docker.rules[:] = [(PS, 0, ps_out, "")]
    run = handoff(args(top, after_claim=True, fingerprints=fingerprints))
    sidecar, fields, _creds = run.validate()
    found = types.SimpleNamespace(standing=ownership.FENCED, claim=claim(epoch=2))
    return run, lambda: run.after_claim(found, fields, sidecar)


def live_db(top):
    path = top / "storage" / "shop--db" / DB
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 4080)
    ltx(top, DB, "0000000000000001-000000000000002a.ltx")
    return path


def test_after_claim_passes_when_the_old_host_is_as_the_handoff_left_it(top, docker):
    path = live_db(top)
    run, check = after_claim_run(top, docker, {DB: handoff_core.fingerprint(str(path))})
    result = check()
    assert result["final_txids"] == {DB: "000000000000002a"}
    assert result["resumed"] is False  # the first run's check, not a re-run
    assert docker.calls == [list(PS)]


def test_fingerprint_ignores_an_empty_wal_and_sees_any_write(top):
    path = live_db(top)
    before = handoff_core.fingerprint(str(path))
    assert before["wal"] is None and before["database"].startswith("4096:")
    (top / "storage" / "shop--db" / (DB + "-wal")).write_bytes(b"")  # a reader's open leaves an empty WAL
    assert handoff_core.fingerprint(str(path)) == before
    (top / "storage" / "shop--db" / (DB + "-wal")).write_bytes(b"\x37\x7f\x06\x82" + b"\x00" * 28)
    assert handoff_core.fingerprint(str(path))["wal"].startswith("32:")
    os.utime(str(path), ns=(1, 1))  # the same size, another time: a page rewritten in place by a checkpoint
    assert handoff_core.fingerprint(str(path))["database"] == "4096:1"


@pytest.mark.parametrize("change, shown", [
    ("wal", "production.sqlite3 was written since the handoff (size:mtime "),
    ("ltx", "production.sqlite3 has 1 transactions past the final TXID 000000000000002a"),
    ("app", "the app runs again (containers 3f2a9c)"),
], ids=["wal_written", "sidecar_synced_more", "app_runs"])
def test_after_claim_refuses_any_change_since_the_handoff_naming_it_and_the_new_owner(top, docker, change, shown):
    path = live_db(top)
    seen = {DB: handoff_core.fingerprint(str(path))}
    if change == "wal":
        (top / "storage" / "shop--db" / (DB + "-wal")).write_bytes(b"\x37\x7f\x06\x82" + b"\x00" * 28)
    elif change == "ltx":
        ltx(top, DB, "000000000000002b-000000000000002b.ltx")
    run, check = after_claim_run(top, docker, seen, ps_out="3f2a9c\n" if change == "app" else "")
    with pytest.raises(move.MoveRefused) as caught:
        check()
    message = str(caught.value)
    assert message.startswith("app shop: dokku-a changed after the handoff: " + shown), message
    assert ("dokku-b owns the replica now (epoch 2, from the final TXIDs): what dokku-a committed since is not in it, "
            "so the app was not started on dokku-b. Stop the app on dokku-a (dokku ps:stop shop)") in message
    assert message.endswith("then run the move again: it resumes from the claim")


def test_after_claim_on_a_replica_the_old_host_still_owns_is_refused(top, docker):
    path = live_db(top)
    run = handoff(args(top, after_claim=True, fingerprints={DB: handoff_core.fingerprint(str(path))}))
    sidecar, fields, _creds = run.validate()
    with pytest.raises(move.MoveRefused) as caught:
        run.after_claim(types.SimpleNamespace(standing=ownership.OWNER, claim=claim(owner="dokku-a")), fields, sidecar)
    assert str(caught.value) == ("app shop: after_claim: this host (dokku-a) still owns the replica: the new host did "
                                 "not claim it")
    assert docker.calls == []


@pytest.mark.parametrize("extra, message", [
    ({"fingerprints": {DB: {"database": "1:1", "wal": None}}}, "fingerprints: only with after_claim"),
    ({"after_claim": True, "fingerprints": {}}, "fingerprints: production.sqlite3 has no fingerprint from the handoff "
                                                "(None)"),
    ({"after_claim": True, "fingerprints": {DB: "x"}}, "fingerprints: production.sqlite3 has no fingerprint from the "
                                                       "handoff ('x')"),
    ({"after_claim": True, "fingerprints": {DB: {"database": 1, "wal": None}}}, "fingerprints: production.sqlite3 has "
                                                                                "no fingerprint"),
], ids=["without_after_claim", "empty", "not_a_dict", "not_a_string"])
def test_fingerprints_that_are_not_the_handoffs_are_refused_naming_the_option(top, docker, extra, message):
    refused = run_module(litestream_handoff.main, args(top, **extra), fail=True)
    assert refused["msg"].startswith(message), refused["msg"]
    assert docker.calls == []


def test_a_rerun_after_the_claim_checks_only_that_the_app_stays_stopped(top, docker):
    live_db(top)
    ltx(top, DB, "000000000000002b-000000000000002b.ltx")  # what the old host wrote is the first run's concern
    run, check = after_claim_run(top, docker, None)
    assert check()["final_txids"] == {DB: "000000000000002a"}
    run, check = after_claim_run(top, docker, None, ps_out="3f2a9c\n")
    with pytest.raises(move.MoveRefused) as caught:
        check()
    assert "changed after the handoff: the app runs again (containers 3f2a9c)" in str(caught.value)


def test_after_claim_names_a_database_that_is_gone(top, docker):
    path = live_db(top)
    seen = {DB: handoff_core.fingerprint(str(path))}
    path.unlink()
    _run, check = after_claim_run(top, docker, seen)
    with pytest.raises(move.MoveRefused) as caught:
        check()
    assert "changed after the handoff: production.sqlite3 is gone." in str(caught.value)


def test_after_claim_refuses_a_claim_that_is_not_this_moves(top, docker):
    path = live_db(top)
    run = handoff(args(top, after_claim=True, fingerprints={DB: handoff_core.fingerprint(str(path))}))
    sidecar, fields, _creds = run.validate()
    other = types.SimpleNamespace(standing=ownership.FENCED, claim=claim(owner="dokku-c", reason="take-over"))
    with pytest.raises(move.MoveRefused) as caught:
        run.after_claim(other, fields, sidecar)
    assert str(caught.value) == ("app shop: after_claim: the replica's newest claim is not this move's: it is owned "
                                 "by dokku-c since epoch 2 (take-over, 2026-12-07T12:00:00Z)")
    assert docker.calls == []
