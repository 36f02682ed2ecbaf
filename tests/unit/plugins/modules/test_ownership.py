# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 20's medium findings, through the modules: `state: absent` with config_root at the parent of the default
root removed every credential set; litestream_health chmodded and chowned any existing state_dir."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

import pytest

from ansible.module_utils import basic

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import owned
from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_auth, litestream_health, litestream_replica

from .conftest import run_module, snapshot

S3 = {"type": "s3", "bucket": "bkt", "path": "blog", "endpoint": "http://127.0.0.1:9000", "credentials": "lab"}


@pytest.fixture
def no_sidecar(monkeypatch):
    calls = []

    def run_command(self, argv, **kwargs):
        calls.append(argv[1:])
        return 1, "[]\n", "Error: No such container: %s\n" % argv[-1]
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    return calls


@pytest.fixture
def litestream_tree(tmp_path):
    """<tmp>/litestream/{apps, credentials/lab}, as litestream_auth and litestream_replica make them."""
    top = tmp_path / "litestream"
    for name in ("lab", "other"):
        run_module(litestream_auth.main, {"name": name, "credentials_root": str(top / "credentials"),
                                          "access_key_id": "AKIA", "secret_access_key": "s3cr3t"})
    return top


@pytest.mark.parametrize("marked", [True, False], ids=["this_release", "earlier_release"])
def test_absent_with_config_root_at_the_parent_removes_no_credential_set(litestream_tree, no_sidecar, marked):
    credentials = litestream_tree / "credentials"
    if not marked:  # a root made before markers: 0700 root, the sets in it
        os.unlink(str(credentials / owned.MARKER))
    before = snapshot(litestream_tree)
    result = run_module(litestream_replica.main, {"app": "credentials", "state": "absent", "replica": dict(S3),
                                                  "config_root": str(litestream_tree),
                                                  "credentials_root": str(credentials)}, fail=True)
    reason = ("its marker names it 'credentials root', not app configuration directory" if marked
              else "it holds 'lab', which this collection did not write there")
    assert result["msg"] == ("app credentials: refusing to use %s as the app's configuration directory: %s; nothing "
                             "was changed (is config_root right?)" % (credentials, reason))
    assert snapshot(litestream_tree) == before
    assert result["actions"] == [] and [c for c in no_sidecar if c[:2] != ["container", "inspect"]] == []


def test_absent_removes_the_apps_own_configuration_file_by_file(litestream_tree, no_sidecar):
    apps = litestream_tree / "apps"
    owned.ensure(str(apps / "blog"), owned.APP_CONFIG)
    (apps / "blog" / "litestream.yml").write_text("dbs: []\n")
    result = run_module(litestream_replica.main, {"app": "blog", "state": "absent", "config_root": str(apps),
                                                  "credentials_root": str(litestream_tree / "credentials")})
    assert result["changed"] and result["actions"] == ["remove config"] and os.listdir(str(apps)) == []


def health_args(tmp_path, state_dir):
    return {"apps": [], "host": "dokku-1", "state_dir": str(state_dir), "storage_root": str(tmp_path / "storage"),
            "config_root": str(tmp_path / "apps"), "credentials_root": str(tmp_path / "credentials")}


@pytest.mark.parametrize("prepare, reason", [
    (lambda d: (d.mkdir(mode=0o755), (d / "notes.txt").write_text("mine")),
     "it has no marker .dokku-sqlite-litestream and is mode 0755, owner 0:0, not mode 0700 as this collection makes it"),
    (lambda d: (d.mkdir(mode=0o700), (d / "notes.txt").write_text("mine")),
     "it holds 'notes.txt', which this collection did not write there"),
    (lambda d: (d.mkdir(mode=0o700), os.chown(str(d), 1234, 1234)),
     "it is not owned by this collection's user (mode 0700, owner 1234:1234)"),
    (lambda d: os.symlink("/etc", str(d)), "it is a symbolic link or not a directory"),
], ids=["foreign_mode", "foreign_file", "other_user", "symlink"])
def test_health_never_takes_over_a_state_dir_it_did_not_make(tmp_path, no_sidecar, prepare, reason):
    state_dir = tmp_path / "somewhere"
    prepare(state_dir)
    before = snapshot(tmp_path), os.lstat(str(state_dir))
    result = run_module(litestream_health.main, health_args(tmp_path, state_dir), fail=True)
    assert result["msg"] == ("state_dir: refusing to use %s: %s; give a directory that does not exist yet (it is "
                             "made root-only) or one this module made" % (state_dir, reason))
    assert (snapshot(tmp_path), os.lstat(str(state_dir))) == before


def test_health_makes_its_state_dir_marked_and_uses_one_of_an_earlier_release(tmp_path, no_sidecar):
    state_dir = tmp_path / "health"
    run_module(litestream_health.main, health_args(tmp_path, state_dir))
    assert sorted(os.listdir(str(state_dir))) == [owned.MARKER, "state.json"]
    assert stat.S_IMODE(os.stat(str(state_dir)).st_mode) == 0o700
    earlier = tmp_path / "earlier"
    earlier.mkdir(mode=0o700)
    (earlier / "state.json").write_text("{}\n")
    run_module(litestream_health.main, health_args(tmp_path, earlier))
    assert sorted(os.listdir(str(earlier))) == [owned.MARKER, "state.json"]  # adopted


def test_an_earlier_releases_set_is_marked_at_the_next_write_and_a_swap_is_refused(tmp_path, monkeypatch):
    from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import auth_core
    root = tmp_path / "credentials"
    args = {"name": "lab", "credentials_root": str(root), "access_key_id": "AKIA", "secret_access_key": "s3cr3t"}
    run_module(litestream_auth.main, args)
    for path in (root / "lab" / owned.MARKER, root / owned.MARKER):
        path.unlink()  # as a release before markers left them
    assert run_module(litestream_auth.main, args)["changed"] is False  # nothing to write: nothing written
    run_module(litestream_auth.main, dict(args, secret_access_key="rotated"))
    assert (root / "lab" / owned.MARKER).exists() and (root / owned.MARKER).exists()
    # between the plan and the chmod, the set directory is replaced by another one
    os.chmod(str(root / "lab"), 0o750)
    real = auth_core.LitestreamAuth.set_owner_mode

    def swap_first(path, *rest):
        if path == str(root / "lab"):
            os.rename(path, str(tmp_path / "away"))
            os.mkdir(path, 0o755)
        return real(path, *rest)
    monkeypatch.setattr(auth_core.LitestreamAuth, "set_owner_mode", staticmethod(swap_first))
    result = run_module(litestream_auth.main, dict(args, secret_access_key="again"), fail=True)
    assert result["msg"] == ("refusing to change the mode or owner of %s: it was replaced since it was checked "
                             "(nothing was changed)" % (root / "lab"))
    assert stat.S_IMODE(os.stat(str(root / "lab")).st_mode) == 0o755
