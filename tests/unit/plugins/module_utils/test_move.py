# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""move.py: which inventory entry moves, whether the replica holds each final transaction, the RPO, the step times
and the inventory hint of a planned move."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import move
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

S3 = {"type": "s3", "bucket": "bkt", "path": "apps/shop", "credentials": "lab"}
ENTRY = {"app": "shop", "replica": S3, "storage": "shop--db"}
OTHER = {"app": "blog", "replica": {"type": "file", "path": "/srv/r/blog"}}


def pick(from_apps, to_apps, app="shop", move_from="dokku-a", move_to="dokku-b"):
    return move.pick_entry(app, move_from, move_to, from_apps, to_apps)


def refused(from_apps, to_apps, **names):
    with pytest.raises(v.InvalidValue) as caught:
        pick(from_apps, to_apps, **names)
    return str(caught.value)


# ---- pick_entry -----------------------------------------------------------------------------------------------

def test_an_entry_listed_under_one_host_is_picked_and_says_where():
    assert pick([OTHER, ENTRY], [OTHER]) == (ENTRY, "move_from")
    assert pick([], [ENTRY]) == (ENTRY, "move_to")


def test_the_same_entry_under_both_hosts_is_picked_once():
    assert pick([ENTRY], [dict(ENTRY)]) == (ENTRY, "both")


def test_two_different_entries_are_refused_naming_the_keys_that_differ():
    other = dict(ENTRY, storage="shop-data", replica=dict(S3, path="apps/shop2"), image="litestream/litestream:0.5.16")
    msg = refused([ENTRY], [other])
    assert msg == ("move_app: dokku-a and dokku-b both list app shop, with different entries (image, replica, storage "
                   "differ): make them the same, or list it under one of the hosts only")


def test_an_app_listed_nowhere_is_refused():
    assert refused([OTHER], [OTHER]) == ("move_app: neither dokku-a nor dokku-b lists app shop in litestream_apps: "
                                         "nothing to move")


def test_an_app_listed_twice_under_one_host_is_refused():
    assert refused([ENTRY, dict(ENTRY)], []) == "litestream_apps of 'dokku-a' lists app shop 2 times"
    assert refused([ENTRY], [ENTRY, ENTRY, ENTRY]) == "litestream_apps of 'dokku-b' lists app shop 3 times"


def test_litestream_apps_that_is_no_list_is_refused():
    assert refused({"app": "shop"}, []) == "litestream_apps of 'dokku-a' is not a list"


@pytest.mark.parametrize("entry", [{"app": "shop"}, {"app": "shop", "replica": None},
                                   dict(ENTRY, state="absent")], ids=["no_replica", "null_replica", "absent"])
def test_an_entry_without_a_replica_to_carry_the_data_is_refused(entry):
    assert refused([entry], []).startswith("move_app: app shop has no replica (or its state is absent)")


def test_a_replica_url_counts_as_a_replica():
    entry = {"app": "shop", "replica": "s3://bkt/apps/shop"}
    assert pick([entry], []) == (entry, "move_from")


@pytest.mark.parametrize("names, option", [
    ({"app": "shop\nx"}, "move_app"),
    ({"app": ".."}, "move_app"),
    ({"app": "../shop"}, "move_app"),
    ({"move_from": "dokku-a\nevil"}, "move_from"),
    ({"move_to": "dokku-b\r"}, "move_to"),
    ({"move_from": ""}, "move_from"),
    ({"move_to": "   "}, "move_to"),
    ({"move_from": None}, "move_from"),
], ids=["app_newline", "app_dotdot", "app_climbs", "from_newline", "to_return", "from_empty", "to_blank", "from_none"])
def test_bad_names_are_refused_naming_their_option(names, option):
    assert refused([ENTRY], [], **names).startswith(option + ": ")


def test_a_move_to_the_same_host_is_refused():
    assert refused([ENTRY], [ENTRY], move_to="dokku-a") == (
        "move_to: 'dokku-a' is also move_from; a move needs two hosts")


def test_bad_names_are_refused_before_the_entries_are_read():
    """A bad host name wins over a bad inventory: nothing of the inventory is looked at."""
    assert refused("not a list", [], move_from="a\nb").startswith("move_from: ")


# ---- final_positions ------------------------------------------------------------------------------------------

def test_a_replica_at_every_final_transaction_gives_the_txids_to_restore():
    assert move.final_positions({"a.sqlite3": 5, "b.sqlite3": 0x1f}, {"a.sqlite3": 5, "b.sqlite3": 0x1f}) == {
        "a.sqlite3": "0000000000000005", "b.sqlite3": "000000000000001f"}


def refusal(local, replica):
    with pytest.raises(move.MoveRefused) as caught:
        move.final_positions(local, replica)
    return str(caught.value)


def test_a_replica_behind_is_refused_with_the_count_of_missing_transactions():
    assert refusal({"a.sqlite3": 7}, {"a.sqlite3": 5}) == (
        "the replica does not hold the final transaction of every database: a.sqlite3: the replica holds TXID "
        "0000000000000005, the database is at 0000000000000007 (2 transactions missing)")
    assert "(1 transaction missing)" in refusal({"a.sqlite3": 6}, {"a.sqlite3": 5})


def test_a_database_without_a_backup_is_refused():
    assert refusal({"a.sqlite3": 3}, {"a.sqlite3": None}).endswith(
        "a.sqlite3: the replica holds no backup of it (the database is at TXID 0000000000000003)")
    assert "holds no backup" in refusal({"a.sqlite3": 3}, {})  # not read at all counts the same


def test_a_replica_ahead_of_the_database_is_refused_as_another_writer():
    assert refusal({"a.sqlite3": 3}, {"a.sqlite3": 9}).endswith(
        "a.sqlite3: the replica holds TXID 0000000000000009, beyond the database's 0000000000000003 (another writer "
        "wrote it)")


def test_a_database_litestream_never_wrote_is_refused():
    assert refusal({"a.sqlite3": 0}, {"a.sqlite3": None}).endswith(
        "a.sqlite3: Litestream never wrote a transaction of it on this host")


def test_every_database_that_is_not_there_is_named_in_one_message_in_order():
    msg = refusal({"c.sqlite3": 4, "a.sqlite3": 2, "b.sqlite3": 1}, {"c.sqlite3": 3, "a.sqlite3": None, "b.sqlite3": 1})
    assert "b.sqlite3" not in msg  # at its final transaction
    assert msg.index("a.sqlite3: the replica holds no backup") < msg.index("; c.sqlite3: the replica holds TXID")


# ---- rows_apart and rpo ---------------------------------------------------------------------------------------

def test_rows_apart_counts_each_tables_difference_and_a_table_on_one_side_whole():
    assert move.rows_apart({"t": 3, "u": 1}, {"t": 3, "u": 1}) == 0
    assert move.rows_apart({"t": 5, "u": 1}, {"t": 3, "u": 2}) == 3
    assert move.rows_apart({"t": 5, "gone": 4}, {"t": 5, "new": 2}) == 6


@pytest.mark.parametrize("before, after", [(None, {"t": 1}), ({"t": 1}, None), ({"t": None}, {"t": 1}),
                                           ({"t": "3"}, {"t": 3}), ([], {})])
def test_rows_apart_is_unknown_when_a_count_is(before, after):
    assert move.rows_apart(before, after) is None


FINAL = {"a.sqlite3": "0000000000000009", "b.sqlite3": "0000000000000004"}
TABLES = {"a.sqlite3": {"events": 10}, "b.sqlite3": {"users": 2}}


def test_an_rpo_of_zero_when_every_database_was_restored_to_its_final_state():
    restored = {"a.sqlite3": {"position": "0000000000000009", "tables": {"events": 10}},
                "b.sqlite3": {"position": "4", "tables": {"users": 2}}}
    point = move.rpo(FINAL, TABLES, restored)
    assert (point["rpo_transactions"], point["rpo_rows"]) == (0, 0)
    assert point["databases"]["b.sqlite3"] == dict(final_txid="0000000000000004", restored_txid="4",
                                                   rpo_transactions=0, rpo_rows=0)


def test_lost_transactions_and_rows_are_counted_per_database_and_in_total():
    restored = {"a.sqlite3": {"position": "0000000000000007", "tables": {"events": 8, "extra": 1}},
                "b.sqlite3": {"position": "0000000000000004", "tables": {"users": 2}}}
    point = move.rpo(FINAL, TABLES, restored)
    assert (point["rpo_transactions"], point["rpo_rows"]) == (2, 3)
    assert point["databases"]["a.sqlite3"]["rpo_transactions"] == 2
    assert point["databases"]["a.sqlite3"]["rpo_rows"] == 3  # 2 events fewer, a table the old host did not have


def test_a_database_not_restored_makes_the_rpo_unknown_not_zero():
    restored = {"a.sqlite3": {"position": "0000000000000009", "tables": {"events": 10}}}
    point = move.rpo(FINAL, TABLES, restored)
    assert point["rpo_transactions"] is None and point["rpo_rows"] is None
    assert point["databases"]["a.sqlite3"]["rpo_transactions"] == 0
    assert point["databases"]["b.sqlite3"] == dict(final_txid="0000000000000004", restored_txid=None,
                                                   rpo_transactions=None, rpo_rows=None)


def test_unknown_row_counts_leave_the_transactions_known():
    restored = {"a.sqlite3": {"position": "0000000000000009", "tables": None},
                "b.sqlite3": {"position": "0000000000000004", "tables": {"users": 2}}}
    point = move.rpo(FINAL, {"b.sqlite3": {"users": 2}}, restored)
    assert point["rpo_transactions"] == 0 and point["rpo_rows"] is None
    assert point["databases"]["b.sqlite3"]["rpo_rows"] == 0
    assert move.rpo(FINAL, None, restored)["rpo_rows"] is None


# ---- step_times -----------------------------------------------------------------------------------------------

def test_each_step_runs_from_its_mark_to_the_next_and_the_downtime_from_checked_to_app_started():
    marks = dict((name, 100.0 + index) for index, name in enumerate(move.MARKS))
    marks["app_started"] = 120.25
    steps, downtime = move.step_times(marks)
    assert list(steps) == [name for name, _start, _end in move.STEPS]
    assert steps["check"] == 1.0 and steps["restore"] == 1.0
    assert steps["start_app"] == 13.25  # from sidecar_started, mark 7 (107.0)
    assert downtime == 19.25  # checked (101) to app_started


def test_a_step_without_both_marks_is_left_out_and_the_downtime_unknown_until_the_app_started():
    steps, downtime = move.step_times({"begin": "10", "checked": 12.5, "app_stopped": None, "sidecar_stopped": 20})
    assert steps == {"check": 2.5}
    assert downtime is None


# ---- inventory_hint -------------------------------------------------------------------------------------------

def test_the_hint_for_an_entry_under_the_old_host_moves_it():
    assert move.inventory_hint("shop", "dokku-a", "dokku-b", "move_from") == (
        "Move app shop's entry from dokku-a's litestream_apps to dokku-b's, unchanged (the same replica). Provision "
        "dokku-b from then on; on dokku-a the app and its sidecar stay stopped and fenced (its data stays in place "
        "until you destroy the app there).")


def test_the_hint_for_an_entry_under_the_new_host_changes_nothing():
    hint = move.inventory_hint("shop", "dokku-a", "dokku-b", "move_to")
    assert hint.startswith("The litestream_apps of dokku-b already lists app shop. Provision dokku-b from then on;")
    assert "remove" not in hint


def test_the_hint_for_an_entry_under_both_removes_the_old_hosts_and_never_says_move_it():
    hint = move.inventory_hint("shop", "dokku-a", "dokku-b", "both")
    assert hint.startswith("The litestream_apps of dokku-b already lists app shop; remove it from dokku-a's. Provision "
                           "dokku-b from then on;")
    assert "Move app" not in hint  # the new host has the entry already: a second copy would list it twice


# ---- report ---------------------------------------------------------------------------------------------------

def test_the_report_holds_the_rpo_the_steps_and_the_hint():
    params = dict(app="shop", move_from="dokku-a", move_to="dokku-b", epoch=2, listed_on="both",
                  final_txids={"a.sqlite3": "0000000000000009"}, final_tables={"a.sqlite3": {"events": 10}},
                  restored={"a.sqlite3": {"position": "0000000000000009", "tables": {"events": 10}, "other": "x"}},
                  marks={"checked": 1.0, "app_started": 3.5, "begin": None})
    doc = move.report(params)
    assert (doc["rpo_transactions"], doc["rpo_rows"], doc["downtime_seconds"], doc["epoch"]) == (0, 0, 2.5, 2)
    assert doc["steps"] == {} and "remove it from dokku-a's" in doc["inventory"]
    assert doc["databases"]["a.sqlite3"]["restored_txid"] == "0000000000000009"
