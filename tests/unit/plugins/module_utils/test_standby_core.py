# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of litestream_standby, without Ansible or docker: reading the follower's `<name>-txid` and putting
page 1 back in WAL mode. test_litestream_standby runs them through the module against a fake docker."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import sqlite3

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import standby_core
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_report import StepFailed


def write_db(path, count):
    """A database as a cold restore leaves it: WAL mode, checkpointed, no -wal beside it."""
    conn = sqlite3.connect(str(path))
    conn.execute("pragma journal_mode=wal")
    conn.execute("create table events (id integer primary key, note text)")
    conn.executemany("insert into events (note) values (?)", [("row %d" % i,) for i in range(count)])
    conn.commit()
    conn.close()


def as_follow_mode_writes_it(path):
    """Page 1 as Litestream's follow mode writes it (replica.go applyLTXFile): the file format bytes 18-19 in
    rollback-journal mode (1, 1) and a change counter (24-27) that is not SQLite's."""
    with open(str(path), "r+b") as handle:
        handle.seek(18)
        handle.write(b"\x01\x01")
        handle.seek(24)
        handle.write(os.urandom(4))


def header(path):
    with open(str(path), "rb") as handle:
        return handle.read(100)


@pytest.fixture
def folder(tmp_path):
    fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)


# --------------------------------------------------------------------------- read_txid
def test_no_txid_file_yet_is_none(folder):
    _path, fd = folder
    assert standby_core.read_txid(fd, "app.sqlite3") is None


@pytest.mark.parametrize("text, number", [("00000000000000d4\n", 0xd4), ("0000000000000001", 1),
                                          ("ffffffffffffffff\n", 2 ** 64 - 1)])
def test_litestreams_txid_file_is_read_as_a_number(folder, text, number):
    path, fd = folder
    (path / "app.sqlite3-txid").write_text(text)  # WriteTXIDFile: fmt.Fprintln of 16 hex digits
    assert standby_core.read_txid(fd, "app.sqlite3") == number
    assert ls.hex_txid(number) == text.strip()


@pytest.mark.parametrize("content, shown", [(b"not a txid\n", "'not a txid\\n'"), (b"", "''"),
                                            (b"\xff\xfe00d4", "'\ufffd\ufffd00d4'")])
def test_a_txid_file_of_anything_else_fails_naming_the_file(folder, content, shown):
    path, fd = folder
    (path / "app.sqlite3-txid").write_bytes(content)
    with pytest.raises(StepFailed) as caught:
        standby_core.read_txid(fd, "app.sqlite3")
    assert caught.value.msg == "the follower's app.sqlite3-txid holds no TXID (%s)" % shown


def test_a_link_in_place_of_the_txid_file_is_not_followed(folder):
    path, fd = folder
    (path / "elsewhere").write_text("0000000000000005\n")
    os.symlink(str(path / "elsewhere"), str(path / "app.sqlite3-txid"))
    with pytest.raises(OSError) as caught:
        standby_core.read_txid(fd, "app.sqlite3")
    assert caught.value.errno == errno.ELOOP


# --------------------------------------------------------------------------- wal_mode_back
def test_page_1_in_rollback_journal_mode_gets_its_wal_mode_back(tmp_path):
    path = tmp_path / "app.sqlite3"
    write_db(path, 40)
    as_follow_mode_writes_it(path)
    assert header(path)[18:20] == b"\x01\x01"
    fd = os.open(str(path), os.O_RDONLY)
    try:
        assert standby_core.wal_mode_back(fd, str(path)) is True
    finally:
        os.close(fd)
    assert header(path)[18:20] == b"\x02\x02"
    assert sorted(os.listdir(str(tmp_path))) == ["app.sqlite3"]  # SQLite's -wal and -shm went with its connection
    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
        assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
        assert conn.execute("select count(*), max(note) from events").fetchone() == (40, "row 9")
    finally:
        conn.close()


def test_a_database_already_in_wal_mode_is_left_untouched(tmp_path):
    path = tmp_path / "app.sqlite3"
    write_db(path, 3)
    before = path.read_bytes()
    mtime = os.stat(str(path)).st_mtime_ns
    fd = os.open(str(path), os.O_RDONLY)
    try:
        assert standby_core.wal_mode_back(fd, str(path)) is False
    finally:
        os.close(fd)
    assert path.read_bytes() == before and os.stat(str(path)).st_mtime_ns == mtime
    assert sorted(os.listdir(str(tmp_path))) == ["app.sqlite3"]


# --------------------------------------------------------------------------- names and the spec
def test_names_follow_the_target_and_the_spec_hash_follows_what_the_follower_reads():
    target = "/var/lib/dokku/data/storage/shop--db/production.sqlite3"
    key = standby_core.standby_key(target)
    assert len(key) == 16 and key != standby_core.standby_key(target + "x")
    assert standby_core.container_name(target) == "dokku.litestream.standby." + key
    assert standby_core.dir_name(target) == ".litestream-standby-" + key
    fields = {"type": "s3", "bucket": "bkt", "path": "shop"}
    spec = standby_core.spec_hash(fields, "litestream/litestream:0.5.17", 1, "production.sqlite3")
    assert spec == standby_core.spec_hash(dict(fields), "litestream/litestream:0.5.17", 1, "production.sqlite3")
    assert spec != standby_core.spec_hash(fields, "litestream/litestream:0.5.16", 1, "production.sqlite3")
    assert spec != standby_core.spec_hash(fields, "litestream/litestream:0.5.17", 2, "production.sqlite3")
    assert spec != standby_core.spec_hash(dict(fields, path="blog"), "litestream/litestream:0.5.17", 1,
                                          "production.sqlite3")


def test_the_standby_takes_no_option_it_has_no_use_for():
    spec = standby_core.standby_argument_spec()
    assert not set(standby_core.RESTORE_ONLY) & set(spec)
    assert spec["state"]["choices"] == ["following", "promoted", "absent"]
    params = dict((name, option.get("default")) for name, option in spec.items())
    full = standby_core.restore_params(dict(params, state="promoted", txid="5"))
    assert full["on_existing"] == "replace" and full["txid"] == "5" and "state" not in full
    assert full["timestamp"] is None and full["if_replica_exists"] is False
