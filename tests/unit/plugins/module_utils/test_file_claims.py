# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""claim_store.FileClaims below a file replica's path: the replica path R is followed as the user gave it, while
.dokku-litestream, <app> and claims below it are the collection's own and are never followed. A symbolic link (or a
file) in place of one of them is refused for a create, a list and a read alike: refusing the read too (rather than
answering "no claim") keeps a host from taking another directory's claims, or their absence, as this replica's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import claim_store, ownership

NOW = "2026-12-07T12:00:00Z"
LEVELS = (".dokku-litestream", "shop", "claims")


@pytest.fixture(autouse=True)
def claims_on_disk():
    """Overrides tests/unit/conftest.py's fixture, which roots every store elsewhere: here store_for is the real one."""


def claim(fields, owner="dokku-a", host_id="a" * 32, nonce="n1"):
    return ownership.new_claim("shop", 1, owner, host_id, "first", fields, ["production.sqlite3"], NOW, nonce)


def snapshot(top):
    """Every entry below top, as itself (links not followed): its type, mode and content or target."""
    found = {}
    for directory, dirs, files in os.walk(str(top)):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[path] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[path] = ("dir", st.st_mode)
            else:
                with open(path, "rb") as handle:
                    found[path] = ("file", st.st_mode, handle.read())
    return found


@pytest.fixture
def replica(tmp_path):
    fields = {"type": "file", "path": str(tmp_path / "replica")}
    return fields, claim_store.store_for(fields, {})


def plant(tmp_path, level, what):
    """R with the directories above `level` made, and at `level` a link to `outside` (which holds the directories
    that would lie below that level, and a file of its own), a dangling link, or a file. (The path planted, the
    directory in outside where the claims would be.)"""
    outside = tmp_path / "outside"
    below = outside.joinpath(*LEVELS[LEVELS.index(level) + 1:])
    below.mkdir(parents=True)
    (below / "keep.txt").write_text("not the replica's\n")
    parent = tmp_path.joinpath("replica", *LEVELS[:LEVELS.index(level)])
    parent.mkdir(parents=True)
    planted = parent / level
    if what == "link":
        planted.symlink_to(outside)
    elif what == "dangling link":
        planted.symlink_to(tmp_path / "missing")
    else:
        planted.write_text("not a directory\n")
    return str(planted), below


@pytest.mark.parametrize("what", ["link", "dangling link", "file"])
@pytest.mark.parametrize("level", LEVELS)
def test_a_link_or_a_file_below_the_replica_path_is_refused_and_nothing_is_written(replica, tmp_path, level, what):
    fields, store = replica
    planted, below = plant(tmp_path, level, what)
    before = snapshot(tmp_path)
    reason = ("is a symbolic link, which is not followed" if "link" in what else "is not a directory")
    claims = ownership.claims_dir(fields, "shop")
    with pytest.raises(claim_store.StoreFailed, match="^create %s/0000000001.json: %s %s" % (claims, planted, reason)):
        claim_store.create(store, fields, claim(fields))
    assert snapshot(tmp_path) == before  # no claim, no .tmp file, no directory: not outside, not anywhere
    assert not (tmp_path / "missing").exists()
    # the list and the read of a claim are refused too: another directory's claims are never this replica's
    other = {"type": "file", "path": str(tmp_path / "other")}
    (below / ownership.claim_name(1)).write_bytes(ownership.encode(claim(other, owner="dokku-z", host_id="z" * 32)))
    before = snapshot(tmp_path)
    with pytest.raises(claim_store.StoreFailed, match="^list %s: %s %s" % (claims, planted, reason)):
        store.names(claims)
    with pytest.raises(claim_store.StoreFailed, match="^read %s/0000000001.json: %s %s" % (claims, planted, reason)):
        store.read(claims + "/0000000001.json")
    with pytest.raises(claim_store.StoreFailed, match=reason):
        claim_store.Ownership(fields, {}, "shop", str(tmp_path / "config")).read()
    assert snapshot(tmp_path) == before


def test_a_claim_is_made_below_the_replica_path_and_read_back(replica, tmp_path):
    fields, store = replica
    claims = ownership.claims_dir(fields, "shop")
    assert store.names(claims) == [] and store.read(claims + "/0000000001.json") is None  # nothing there yet
    ours = claim_store.create(store, fields, claim(fields))
    assert claim_store.current(store, fields, "shop") == ours
    assert store.create(claims + "/0000000001.json", b"{}") is False
    assert sorted(store.names(claims)) == ["0000000001.json"]  # no temporary file left
    for depth in range(len(LEVELS)):
        st = os.lstat(str(tmp_path.joinpath("replica", *LEVELS[:depth + 1])))
        assert stat.S_ISDIR(st.st_mode)
    os.mkdir(claims + "/0000000002.json")  # a directory or a FIFO at a claim's name is no claim (nor a hang)
    os.mkfifo(claims + "/0000000003.json")
    for name in ("0000000002.json", "0000000003.json"):
        with pytest.raises(claim_store.StoreFailed, match="^read %s/%s: it is not a regular file$" % (claims, name)):
            store.read("%s/%s" % (claims, name))


def test_the_replica_path_itself_is_followed_and_made_when_missing(tmp_path):
    """R is the user's path: a link there (a mount moved elsewhere) is followed like any path the user gives."""
    real = tmp_path / "disk" / "replica"
    real.mkdir(parents=True)
    (tmp_path / "replica").symlink_to(real)
    for path in (str(tmp_path / "replica") + "/", str(tmp_path / "new" / "deep" / "replica")):
        fields = {"type": "file", "path": path}
        store = claim_store.store_for(fields, {})
        assert claim_store.create(store, fields, claim(fields))["owner"] == "dokku-a"
    assert os.listdir(str(real / ".dokku-litestream" / "shop" / "claims")) == ["0000000001.json"]
    assert os.path.isfile(str(tmp_path / "new" / "deep" / "replica" / ".dokku-litestream" / "shop" / "claims" /
                              "0000000001.json"))


def test_a_store_refuses_a_path_outside_its_replica(replica, tmp_path):
    _fields, store = replica
    for path in (str(tmp_path / "elsewhere" / "claims" / "0000000001.json"),
                 str(tmp_path / "replica-2" / "0000000001.json"),
                 str(tmp_path / "replica" / ".dokku-litestream" / ".." / ".." / "x" / "0000000001.json")):
        with pytest.raises(claim_store.StoreFailed, match="^create %s: " % path):
            store.create(path, b"{}")
    assert os.listdir(str(tmp_path)) == []  # refused before anything was made
