# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HostLock against a real flock held by another process (the way a second run or `flock` holds it)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat
import time

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import lock


class FakeModule:
    def __init__(self, check_mode=False, lock_timeout=300):
        self.check_mode = check_mode
        self.params = {"lock_timeout": lock_timeout}
        self._name = "test_module"


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    (tmp_path / "run-lock").mkdir()
    path = tmp_path / "run-lock" / "dokku-sqlite-litestream"
    monkeypatch.setattr(lock, "LOCK_DIR", str(path))
    return path


def test_a_free_lock_is_taken_at_once_and_released(lock_dir):
    with lock.HostLock(FakeModule(), "app-blog", "app blog") as held:
        assert held.waited < 1
        path = lock_dir / "app-blog.lock"
        st = os.stat(str(path))
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
        assert stat.S_IMODE(os.stat(str(lock_dir)).st_mode) == 0o700
        note = path.read_text()
        assert note.startswith("pid %d: test_module app blog, since " % os.getpid())
        assert lock.holder_pids(str(path)) == []  # our own pid is left out
    # released: another taker gets it at once
    with lock.HostLock(FakeModule(lock_timeout=0), "app-blog", "app blog") as again:
        assert again.fd is not None


def test_a_held_lock_times_out_naming_the_lock_and_the_holder(lock_dir, holders):
    holder = holders(lock_dir / "app-blog.lock")
    started = time.time()
    with pytest.raises(lock.LockTimeout) as caught:
        with lock.HostLock(FakeModule(lock_timeout=1), "app-blog", "app blog"):
            pytest.fail("the lock was taken while another process held it")
    message = str(caught.value)
    assert time.time() - started >= 1
    assert message.startswith("timed out after 1 s waiting for the lock %s (app blog), held by pid %d (python"
                              % (lock_dir / "app-blog.lock", holder.proc.pid)), message
    assert message.endswith("another run is changing app blog on this host. Wait for it to finish, or raise "
                            "lock_timeout")


def test_the_holders_own_note_is_shown(lock_dir, holders):
    holder = holders(lock_dir / "credentials.lock")
    path = lock_dir / "credentials.lock"
    path.write_text("pid %d: litestream_auth the credential sets, since 2026-11-25T12:00:00Z\n" % holder.proc.pid)
    with pytest.raises(lock.LockTimeout) as caught:
        with lock.HostLock(FakeModule(lock_timeout=0), "credentials", "the credential sets"):
            pass
    assert "[pid %d: litestream_auth the credential sets, since 2026-11-25T12:00:00Z]" % holder.proc.pid \
        in str(caught.value)


def test_a_stale_note_of_an_earlier_run_is_not_shown(lock_dir, holders):
    (lock_dir).mkdir(mode=0o700)
    path = lock_dir / "app-blog.lock"
    path.write_text("pid 1: an earlier run, since 2026-01-01T00:00:00Z\n")
    holder = holders(path)
    with pytest.raises(lock.LockTimeout) as caught:
        with lock.HostLock(FakeModule(lock_timeout=0), "app-blog", "app blog"):
            pass
    assert "held by pid %d" % holder.proc.pid in str(caught.value)
    assert "an earlier run" not in str(caught.value)


def test_the_second_taker_waits_until_the_first_is_done(lock_dir, holders):
    holders(lock_dir / "app-blog.lock", seconds=1)  # lets go after a second, by exiting
    with lock.HostLock(FakeModule(lock_timeout=60), "app-blog", "app blog") as held:
        assert held.fd is not None
        assert held.waited > 0
        assert lock.holder_pids(str(lock_dir / "app-blog.lock")) == []


def test_check_mode_takes_no_lock(lock_dir, holders):
    holders(lock_dir / "app-blog.lock")
    with lock.HostLock(FakeModule(check_mode=True, lock_timeout=0), "app-blog", "app blog") as held:
        assert held.fd is None and held.waited == 0


def test_a_negative_timeout_is_refused(lock_dir):
    with pytest.raises(lock.LockTimeout, match="lock_timeout must be 0 or more seconds, got -1"):
        with lock.HostLock(FakeModule(lock_timeout=-1), "app-blog", "app blog"):
            pass


@pytest.mark.parametrize("plant, problem", [
    ("symlink", "it is a symbolic link"),
    ("file", "it is not a directory"),
    ("world-writable", "its mode 0777 lets everyone write in it"),
    ("group-writable", "its mode 0770 lets its group write in it"),
    ("other-owner", "it is owned by uid 4242, not by uid %d (this run's user)" % os.geteuid()),
])
def test_a_planted_lock_directory_is_refused(lock_dir, tmp_path, plant, problem):
    if plant == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        os.symlink(str(tmp_path / "elsewhere"), str(lock_dir))
    elif plant == "file":
        lock_dir.write_text("")
    else:
        lock_dir.mkdir()
        os.chmod(str(lock_dir), {"world-writable": 0o777, "group-writable": 0o770}.get(plant, 0o700))
        if plant == "other-owner":
            if os.geteuid() != 0:
                pytest.skip("needs root to give the directory another owner")
            os.chown(str(lock_dir), 4242, 4242)
    with pytest.raises(lock.LockTimeout) as err:
        with lock.HostLock(FakeModule(), "app-blog", "app blog"):
            pass
    assert str(err.value) == (
        "refusing the lock directory %s: %s. This collection creates it owned by uid %d with mode 0700; another "
        "user may have planted it to block or watch these runs. Remove it (rm -r %s) and run again"
        % (lock_dir, problem, os.geteuid(), lock_dir))
    assert not (tmp_path / "elsewhere" / "app-blog.lock").exists()


def test_the_lock_directory_is_created_0700_whatever_the_umask(lock_dir):
    old = os.umask(0)
    try:
        with lock.HostLock(FakeModule(), "app-blog", "app blog"):
            st = os.lstat(str(lock_dir))
    finally:
        os.umask(old)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()


def test_an_existing_directory_of_this_user_without_write_for_others_is_used(lock_dir):
    lock_dir.mkdir()
    os.chmod(str(lock_dir), 0o755)
    with lock.HostLock(FakeModule(), "app-blog", "app blog") as held:
        assert held.fd is not None


@pytest.mark.parametrize("scope, name", [
    ("app-blog", "app-blog"),
    ("restore-/var/lib/dokku/data/storage/blog--db/production.sqlite3",
     "restore-_var_lib_dokku_data_storage_blog--db_production.sqlite3"),
    ("credentials", "credentials"),
])
def test_scope_names(scope, name):
    assert lock.scope_name(scope) == name


def test_long_scopes_stay_unique():
    one, two = lock.scope_name("restore-/" + "x" * 200 + "/a.db"), lock.scope_name("restore-/" + "x" * 200 + "/b.db")
    assert one != two and len(one) <= 120 and "/" not in one
