# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""owned.py: the collection removes, chmods and chowns only directories it made (marker, or an earlier release's
exact shape), through descriptors that never follow a symlink."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import owned


def dokku_user(name):
    """pwd.getpwnam of a host whose dokku user is uid 4242."""
    import pwd
    if name != "dokku":
        raise KeyError(name)
    return pwd.struct_passwd(("dokku", "x", 4242, 4242, "", "/home/dokku", "/bin/sh"))


def mode(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


def test_ensure_makes_a_marked_root_only_directory_and_missing_parents(tmp_path):
    path = tmp_path / "a" / "b" / "apps"
    assert owned.ensure(str(path), owned.APP_CONFIG) is True
    assert mode(path) == 0o700 and mode(path.parent) == 0o700
    assert (path / owned.MARKER).read_text() == "app configuration directory\n" and mode(path / owned.MARKER) == 0o600
    assert owned.ensure(str(path), owned.APP_CONFIG) is False  # a second time: nothing to do
    assert owned.problem(str(path), owned.APP_CONFIG) is None


def test_an_existing_parent_is_never_changed(tmp_path):
    parent = tmp_path / "shared"
    parent.mkdir(mode=0o755)
    owned.ensure(str(parent / "apps"), owned.APP_CONFIG)
    assert mode(parent) == 0o755


def test_a_marked_directory_with_a_wrong_mode_is_fixed_through_its_descriptor(tmp_path):
    path = tmp_path / "apps"
    owned.ensure(str(path), owned.APP_CONFIG)
    os.chmod(str(path), 0o755)
    assert owned.ensure(str(path), owned.APP_CONFIG) is True and mode(path) == 0o700


@pytest.mark.parametrize("prepare, reason", [
    (lambda p: p.mkdir(mode=0o755), "it has no marker .dokku-sqlite-litestream and is mode 0755, owner 0:0, not mode "
                                    "0700 as this collection makes it"),
    (lambda p: (p.mkdir(mode=0o700), (p / "notes.txt").write_text("x")),
     "it holds 'notes.txt', which this collection did not write there"),
    (lambda p: (p.mkdir(mode=0o700), (p / "sub").mkdir()), "it holds 'sub', which this collection did not write there"),
    (lambda p: (p.mkdir(mode=0o700), os.symlink("/etc/passwd", str(p / "litestream.yml"))),
     "it holds 'litestream.yml', which this collection did not write there"),
    (lambda p: os.symlink("/etc", str(p)), "it is a symbolic link or not a directory"),
    (lambda p: p.write_text("x"), "it is a symbolic link or not a directory"),
    (lambda p: (p.mkdir(mode=0o700), (p / owned.MARKER).write_text("credential set\n"), os.chmod(str(p / owned.MARKER), 0o600)),
     "its marker names it 'credential set', not app configuration directory"),
    (lambda p: (p.mkdir(mode=0o755), (p / owned.MARKER).write_text("app configuration directory\n"),
                os.chmod(str(p / owned.MARKER), 0o644)),
     "its marker .dokku-sqlite-litestream is not a 0600 file of ours (mode 0644, owner 0:0)"),
    (lambda p: (p.mkdir(mode=0o700), os.chown(str(p), 1234, 1234)), "it is not owned by this collection's user"),
], ids=["foreign_mode", "foreign_file", "subdirectory", "symlinked_file", "symlink", "file", "other_kind",
        "marker_mode", "other_owner"])
def test_what_is_not_ours_is_refused_and_left_as_it_was(tmp_path, prepare, reason):
    path = tmp_path / "blog"
    prepare(path)
    before = sorted(os.listdir(str(tmp_path))), os.lstat(str(path))
    assert owned.problem(str(path), owned.APP_CONFIG).startswith(reason)
    with pytest.raises(owned.NotOurs, match="refusing to remove"):
        owned.remove(str(path), owned.APP_CONFIG)
    if not os.path.islink(str(path)) and os.path.isdir(str(path)):
        with pytest.raises(owned.NotOurs, match="refusing to use"):
            owned.ensure(str(path), owned.APP_CONFIG)
    after = sorted(os.listdir(str(tmp_path))), os.lstat(str(path))
    assert after == before


def test_an_earlier_releases_directory_is_adopted_and_removed_file_by_file(tmp_path):
    path = tmp_path / "blog"
    path.mkdir(mode=0o700)
    (path / "litestream.yml").write_text("dbs: []\n")
    (path / ".litestream.yml.abc123").write_text("left by a crash")
    assert owned.problem(str(path), owned.APP_CONFIG) is None
    owned.ensure(str(path), owned.APP_CONFIG)  # the next write adopts it
    assert (path / owned.MARKER).exists()
    owned.remove(str(path), owned.APP_CONFIG)
    assert not path.exists()


def test_a_drill_run_is_removed_whole_and_only_with_its_marker(tmp_path):
    run = owned.make_temp(str(tmp_path / "scratch"), "dokku.", owned.DRILL_RUN)
    assert os.path.basename(run).startswith("dokku.") and mode(run) == 0o700
    os.makedirs(os.path.join(run, "blog", "deep"))
    os.symlink(str(tmp_path), os.path.join(run, "blog", "link"))  # removed as a link, never followed
    (tmp_path / "keep").write_text("keep")
    owned.remove(run, owned.DRILL_RUN)
    assert os.listdir(str(tmp_path / "scratch")) == [] and (tmp_path / "keep").read_text() == "keep"
    unmarked = tmp_path / "scratch" / "dokku"
    unmarked.mkdir(mode=0o700)
    (unmarked / "x").write_text("x")
    with pytest.raises(owned.NotOurs, match="it has no marker"):
        owned.remove(str(unmarked), owned.DRILL_RUN)
    assert (unmarked / "x").exists()


def test_a_credentials_root_holds_sets_and_the_plugin_files(tmp_path):
    root = tmp_path / "credentials"
    root.mkdir(mode=0o710)
    (root / "lab").mkdir(mode=0o700)
    (root / "lab" / "credentials.json").write_text("{}")
    (root / "ACCESS_KEY_ID").write_text("AKIA\n")
    assert owned.problem(str(root), owned.CREDENTIALS_ROOT) is None
    (root / "lab" / "credentials.json").unlink()  # an empty directory is no credential set of ours
    assert owned.problem(str(root), owned.CREDENTIALS_ROOT) == "it holds 'lab', which this collection did not write there"
    (root / "lab").rmdir()
    (root / "Not A Set").mkdir()
    assert owned.problem(str(root), owned.CREDENTIALS_ROOT) == (
        "it holds 'Not A Set', which this collection did not write there")


def test_the_plugins_own_credentials_directory_is_taken_over_only_with_the_plugins_files(tmp_path, monkeypatch):
    """dokku-litestream's litestream:auth leaves /var/lib/dokku/config/litestream/credentials dokku:dokku 0755 with its
    two files: litestream_auth takes it over (guide_migrate_plugin.rst). Another user's directory is never taken."""
    import pwd
    monkeypatch.setattr(pwd, "getpwnam", dokku_user)
    root = tmp_path / "credentials"
    root.mkdir(mode=0o755)
    for name in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY"):
        (root / name).write_text("x\n")
        os.chown(str(root / name), 4242, 4242)
    os.chown(str(root), 4242, 4242)
    assert owned.problem(str(root), owned.CREDENTIALS_ROOT) is None
    assert owned.problem(str(root), owned.APP_CONFIG) is not None
    os.chown(str(root), 1234, 1234)
    assert owned.problem(str(root), owned.CREDENTIALS_ROOT).startswith("it is not owned by this collection's user")


def test_a_marker_taken_from_us_falls_back_to_the_shape_of_the_kind(tmp_path, monkeypatch):
    """The plugin's install runs chown -R dokku:dokku on /var/lib/dokku/config/litestream, our marker included: the
    credentials root is then judged by its shape (owner dokku or root, a plain mode, only sets and plugin files)."""
    import pwd
    monkeypatch.setattr(pwd, "getpwnam", dokku_user)
    root = tmp_path / "credentials"
    owned.ensure(str(root), owned.CREDENTIALS_ROOT)
    owned.ensure(str(root / "lab"), owned.CREDENTIAL_SET)
    (root / "lab" / "credentials.json").write_text("{}")
    for path in (root, root / owned.MARKER, root / "lab", root / "lab" / owned.MARKER, root / "lab" / "credentials.json"):
        os.chown(str(path), 4242, 4242)
    os.chmod(str(root), 0o755)
    assert owned.problem(str(root), owned.CREDENTIALS_ROOT) is None
    assert owned.ensure(str(root), owned.CREDENTIALS_ROOT) is True  # taken back: root 0700
    assert mode(root) == 0o700 and os.stat(str(root)).st_uid == 0
    (root / "notes.txt").write_text("x")
    os.chown(str(root / owned.MARKER), 4242, 4242)
    assert owned.problem(str(root), owned.CREDENTIALS_ROOT) == "it holds 'notes.txt', which this collection did not write there"


def test_an_empty_or_foreign_directory_is_never_taken_over(tmp_path):
    """Without a marker, only a directory that holds what the kind writes is an earlier release's: an empty 0700 one
    is not (the credentials root emptied of its sets must not become an app's configuration directory), and a
    credentials root holding a directory that is no credential set (Dokku's storage root) is not either."""
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    assert "holds nothing this collection writes there" in owned.problem(str(empty), owned.APP_CONFIG)
    storage = tmp_path / "storage"
    (storage / "blog--db").mkdir(parents=True)
    (storage / "blog--db" / "production.sqlite3").write_text("x")
    os.chmod(str(storage), 0o755)
    assert owned.problem(str(storage), owned.CREDENTIALS_ROOT) == (
        "it holds 'blog--db', which this collection did not write there")


def test_a_directory_swapped_in_right_after_the_mkdir_is_never_changed(tmp_path, monkeypatch):
    """Whoever may write the parent could replace the new directory with one of theirs between mkdir and chown."""
    path = tmp_path / "apps"
    real_mkdir = os.mkdir

    def mkdir_then_swap(target, mode=0o777, **kwargs):
        real_mkdir(target, mode, **kwargs)
        os.rmdir(target)
        real_mkdir(target, 0o755)
        (path / "notes").write_text("theirs")
        os.chown(str(path), 1234, 1234)
    monkeypatch.setattr(os, "mkdir", mkdir_then_swap)
    with pytest.raises(owned.NotOurs, match="it was replaced while this run made it"):
        owned.ensure(str(path), owned.APP_CONFIG)
    st = os.lstat(str(path))
    assert (st.st_uid, mode(path)) == (1234, 0o755) and sorted(os.listdir(str(path))) == ["notes"]
