# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_move_report, driven through main() with a report directory under tmp_path, and move_report.write as
the action plugin calls it (outside AnsibleModule: nothing masks what it returns)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import move, move_report
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import report as rp
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_move_report

from .conftest import run_module

DB = "production.sqlite3"
FINAL = "000000000000002a"
MARKS = {"begin": 1000.0, "checked": 1001.5, "app_stopped": 1003.0, "sidecar_stopped": 1004.0, "handed_off": 1005.0,
         "restored": 1010.0, "claimed": 1011.0, "sidecar_started": 1012.0, "app_started": 1014.25}


def restored(position=FINAL, tables=None, **extra):
    """One result of the move's restore loop, as registered (item, restored, position, tables and the rest)."""
    result = {"item": DB, "restored": True, "changed": True, "position": position,
              "tables": {"events": 120, "users": 3} if tables is None else tables, "ansible_loop_var": "item"}
    result.update(extra)
    return result


def args(**extra):
    base = dict(app="shop", move_from="dokku-a", move_to="dokku-b", epoch=2, final_txids={DB: FINAL},
                final_tables={DB: {"events": 120, "users": 3}}, restored=[restored()], marks=dict(MARKS))
    base.update(extra)
    return base


def params(**extra):
    """The options as AnsibleModule would give them to write(): every option present."""
    spec = move_report.move_report_argument_spec()
    full = dict((name, option.get("default")) for name, option in spec.items())
    full.update(args(**extra))
    return full


def run(options, check=False, fail=False):
    return run_module(litestream_move_report.main, options, check=check, fail=fail)


def test_check_mode_computes_the_report_and_writes_no_file(tmp_path):
    dest = tmp_path / "reports"
    result = run(args(dest=str(dest)), check=True)
    assert not dest.exists()
    assert result["changed"] is False and "json_path" not in result
    report = result["report"]
    assert (report["rpo_transactions"], report["rpo_rows"], report["downtime_seconds"]) == (0, 0, 12.75)
    assert report["steps"]["restore"] == 5.0 and report["epoch"] == 2
    assert result["lines"][0] == ("shop moved dokku-a -> dokku-b (epoch 2, cold): RPO 0 transactions, 0 rows; "
                                  "downtime 12.75 s")
    assert result["lines"][2] == "inventory: " + report["inventory"]


def test_dest_gets_the_json_report_0644(tmp_path):
    dest = tmp_path / "reports" / "moves"  # created when missing
    result = run(args(dest=str(dest)))
    path = dest / "move-shop.json"
    assert result["changed"] is True and result["json_path"] == str(path)
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o644
    written = json.loads(path.read_text())
    assert written == result["report"]
    assert written["databases"][DB] == dict(final_txid=FINAL, restored_txid=FINAL, rpo_transactions=0, rpo_rows=0)
    assert sorted(os.listdir(str(dest))) == ["move-shop.json"]  # no temporary file left beside it


def test_name_gives_the_file_name(tmp_path):
    result = run(args(dest=str(tmp_path), name="shop-move.json"))
    assert result["json_path"] == str(tmp_path / "shop-move.json") and (tmp_path / "shop-move.json").is_file()


def test_a_non_zero_rpo_fails_the_task_after_the_report_is_written(tmp_path):
    behind = restored(position="0000000000000028", tables={"events": 119, "users": 3})
    result = run(args(dest=str(tmp_path), restored=[behind]), fail=True)
    assert result["msg"] == "shop: the move lost data: RPO 2 transactions, 1 rows (see the report)"
    assert result["changed"] is True
    written = json.loads((tmp_path / "move-shop.json").read_text())
    assert (written["rpo_transactions"], written["rpo_rows"]) == (2, 1)


def test_a_database_that_was_not_restored_is_an_unknown_rpo_and_fails():
    skipped = restored(restored=False, changed=False)
    result = run(args(restored=[skipped]), fail=True)
    assert result["msg"].startswith("shop: RPO 0 is not proven: RPO None transactions, None rows")
    assert result["report"]["databases"][DB]["restored_txid"] is None


def test_a_resumed_move_keeps_the_first_runs_report_and_does_not_fail_on_what_it_did_not_restore(tmp_path):
    skipped = restored(restored=False, changed=False)
    (tmp_path / "move-shop.json").write_text('{"rpo_transactions": 0}\n')  # the first run's report
    result = run(args(restored=[skipped], resumed=True, dest=str(tmp_path)))
    assert "failed" not in result and result["report"]["rpo_transactions"] is None
    assert result["json_path"] == str(tmp_path / "move-shop.resumed.json")
    assert json.loads((tmp_path / "move-shop.json").read_text()) == {"rpo_transactions": 0}
    assert result["lines"][-1] == "resumed: the first run's restore stands; its report holds its RPO"


@pytest.mark.parametrize("marks, message", [
    ({"stopped": 1.0}, "marks: 'stopped' is not a mark of the move (%s)" % ", ".join(move.MARKS)),
    ({"begin": "soon"}, "marks: begin is 'soon', not a time in seconds"),
], ids=["unknown_mark", "not_a_time"])
def test_a_bad_mark_is_refused_and_nothing_is_written(tmp_path, marks, message):
    result = run(args(dest=str(tmp_path), marks=marks), fail=True)
    assert result["msg"] == message
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize("epoch", [0, 10 ** 10])
def test_an_epoch_out_of_bounds_is_refused_and_nothing_is_written(tmp_path, epoch):
    result = run(args(dest=str(tmp_path), epoch=epoch), fail=True)
    assert v.BOUNDS["epoch"].refusal("epoch", epoch) in result["msg"]
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize("extra, message", [
    ({"app": "Shop!"}, "app: 'Shop!' is not a valid Dokku app name"),
    ({"move_to": "dokku-a"}, "move_to: 'dokku-a' is also move_from; a move needs two hosts"),
    ({"name": "../move.json"}, "name must be a plain file name without '/'"),
], ids=["app", "same_host", "name"])
def test_bad_options_are_refused(tmp_path, extra, message):
    result = run(args(dest=str(tmp_path), **extra), fail=True)
    assert result["msg"].startswith(message)
    assert os.listdir(str(tmp_path)) == []


def test_a_dest_that_is_a_file_is_refused_and_left_alone(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("not a directory\n")
    result = run(args(dest=str(taken)), fail=True)
    assert result["msg"] == "dest %s exists and is not a directory" % taken
    assert taken.read_text() == "not a directory\n"


SECRET = "wJalr/K7MDENG+bPxRfiCYzEXAMPLEKEY"


def test_no_secret_in_a_restore_result_reaches_the_unmasked_report(tmp_path):
    """The action plugin returns write()'s result as it is and the file is plain JSON: a secret pasted into a restore
    result (its position, or any key the report does not read) must not get there."""
    leaky = restored(position="s3://AKIA:%s@bkt/shop" % SECRET,
                     invocation={"module_args": {"replica": {"url": "s3://AKIA:%s@bkt" % SECRET}}})
    with pytest.raises(rp.ReportError) as caught:
        move_report.write(params(dest=str(tmp_path), restored=[leaky]), check_mode=False)
    assert str(caught.value).startswith("restored[0]: the position ") and SECRET not in str(caught.value)
    assert os.listdir(str(tmp_path)) == []
    # the keys the report does not read stay out of it
    fine = restored(invocation={"module_args": {"replica": {"url": "s3://AKIA:%s@bkt" % SECRET}}},
                    msg="s3://AKIA:%s@bkt" % SECRET)
    result = move_report.write(params(dest=str(tmp_path), restored=[fine]), check_mode=False)
    assert SECRET not in json.dumps(result) and SECRET not in (tmp_path / "move-shop.json").read_text()


def test_a_restored_position_is_read_as_a_txid():
    """The restore returns 16 hex digits; a shorter spelling of the same TXID is the same position."""
    result = move_report.write(params(restored=[restored(position="0x2a")]), check_mode=True)
    assert result["report"]["databases"][DB]["restored_txid"] == FINAL and "failed" not in result


def test_rows_that_could_not_be_counted_prove_nothing_and_fail():
    result = run(args(final_tables={DB: None}), fail=True)
    assert result["msg"] == ("shop: RPO 0 is not proven: RPO 0 transactions, None rows (a database not restored, or "
                             "rows not counted; see the report)")
