# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""drill_core.read_live_tables: the drill (root) reads a live database in a directory the app's user owns, so it
reads only the file that is there - never through a link the app put in its place, before or during the read."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sqlite3

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import drill_core as dc


def write_db(path, count, wal=False):
    conn = sqlite3.connect(str(path))
    if wal:
        conn.execute("pragma journal_mode=wal")
    conn.execute("create table events (id integer primary key, note text)")
    conn.executemany("insert into events (note) values (?)", [("row %d" % i,) for i in range(count)])
    conn.commit()
    return conn


@pytest.fixture
def storage(tmp_path):
    """A storage directory with an app's live database (5 rows) and, elsewhere, root's own database (7 rows)."""
    app_dir = tmp_path / "storage" / "blog--db"
    app_dir.mkdir(parents=True)
    write_db(app_dir / "production.sqlite3", 5).close()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    write_db(private / "root.sqlite3", 7).close()
    return tmp_path


def live(storage):
    return str(storage / "storage" / "blog--db" / "production.sqlite3")


def test_the_live_database_is_read(storage):
    assert dc.read_live_tables(live(storage)) == {"events": 5}
    assert dc.live_path(str(storage / "storage"), {"app": "blog", "storage": None}, "production.sqlite3") == live(storage)


def test_a_live_database_in_wal_mode_with_a_writer_is_read_through_its_checked_descriptor(tmp_path):
    path = tmp_path / "app.sqlite3"
    writer = write_db(path, 3, wal=True)
    writer.execute("begin immediate")
    writer.execute("insert into events (note) values ('uncommitted')")
    try:
        assert os.path.exists(str(path) + "-wal") and os.path.exists(str(path) + "-shm")
        assert dc.read_live_tables(str(path)) == {"events": 3}
    finally:
        writer.rollback()
        writer.close()


def test_a_percent_in_the_path_reads_that_path(tmp_path):
    directory = tmp_path / "100%2f-done"
    directory.mkdir()
    write_db(directory / "app.sqlite3", 2).close()
    assert dc.read_live_tables(str(directory / "app.sqlite3")) == {"events": 2}


@pytest.mark.parametrize("link, message", [
    ("production.sqlite3", "blog--db/production.sqlite3 is a symbolic link: the drill reads only the file that is there"),
    ("production.sqlite3-wal", "blog--db/production.sqlite3-wal is a symbolic link: the drill reads only the file that "
                               "is there"),
])
def test_a_link_at_the_live_database_or_its_wal_is_refused(storage, link, message):
    path = storage / "storage" / "blog--db" / link
    if path.exists():
        os.rename(str(path), str(path) + ".moved")
    os.symlink(str(storage / "private" / "root.sqlite3"), str(path))
    with pytest.raises(IOError) as caught:
        dc.read_live_tables(live(storage))
    assert str(caught.value).endswith(message), str(caught.value)
    entries = [{"app": "blog", "storage": None, "databases": ["production.sqlite3"]}]
    out = dc.read_all_live(str(storage / "storage"), entries)
    assert out == {"blog/production.sqlite3": "the live database could not be read: %s" % caught.value}


def test_a_linked_storage_directory_is_refused(storage):
    os.rename(str(storage / "storage" / "blog--db"), str(storage / "storage" / "moved"))
    os.symlink(str(storage / "private"), str(storage / "storage" / "blog--db"))
    os.rename(str(storage / "private" / "root.sqlite3"), str(storage / "private" / "production.sqlite3"))
    with pytest.raises(IOError) as caught:
        dc.read_live_tables(live(storage))
    assert str(caught.value) == ("the storage directory %s is a symbolic link: the drill reads a live database only "
                                 "in the directory itself" % (storage / "storage" / "blog--db"))


def test_a_fifo_or_a_missing_database_is_no_database(storage, tmp_path):
    missing = tmp_path / "nothing" / "production.sqlite3"
    with pytest.raises(IOError, match="^no database at %s$" % missing):
        dc.read_live_tables(str(missing))
    os.unlink(live(storage))
    os.mkfifo(live(storage))  # never opened for reading: that would block
    with pytest.raises(IOError, match="production.sqlite3 is not a regular file$"):
        dc.read_live_tables(live(storage))


@pytest.mark.parametrize("swap_back", [False, True], ids=["left", "swapped_back"])
def test_a_link_put_in_place_after_the_check_is_caught_before_its_counts_are_used(storage, monkeypatch, swap_back):
    """The app swaps the database for a link to root's own between the drill's check and SQLite's open (and, the
    harder case, swaps it back right after): the file SQLite read is not the one checked, so nothing is returned."""
    real_connect = sqlite3.connect
    path = live(storage)

    def connect(*args, **kwargs):
        os.rename(path, path + ".moved")
        os.symlink(str(storage / "private" / "root.sqlite3"), path)
        conn = real_connect(*args, **kwargs)
        conn.execute("select 1 from sqlite_master").fetchall()  # SQLite has opened the file behind the link
        if swap_back:
            os.unlink(path)
            os.rename(path + ".moved", path)
        return conn
    monkeypatch.setattr(dc.sqlite3, "connect", connect)
    with pytest.raises(IOError) as caught:
        dc.read_live_tables(path)
    assert str(caught.value) == ("%s changed while the drill read it (a link or another file was put in its place): "
                                 "its counts are not used" % path)
