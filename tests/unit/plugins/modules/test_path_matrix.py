# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The generated path matrix of issue 20: every path-like option of every module (found in the module's own
argument spec, so a new option joins by being declared) x dangerous existing directories x every state, each run
through the module's main() in a sandbox.

The sandbox is a fake root with an /etc, a Dokku data tree (with the collection's own, marked directories in it), a
directory of another user, and a symlink to each; the parent of each default root is one of them. After each run,
every entry that existed before must be as it was (mode, owner, content), unless it lies inside one of the
collection's own marked directories. Literal system paths (/, /etc, /var/lib/dokku, ...) are tried too, behind a
tripwire: any remove, rename, chmod or chown outside the test's temporary directory is recorded as a violation and
refused, and anything created there is refused, so the test never touches this machine.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import importlib
import os
import pkgutil
import re
import shutil
import stat
import tempfile

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import owned
from ansible_collections.dokku_sqlite.litestream.plugins import modules as modules_package

from .conftest import ExitJson, FailJson
from .test_litestream_restore import FakeLitestream

# every module of plugins/modules, read from the package: a new module joins the matrix by existing
MODULES = dict((info.name, importlib.import_module("%s.%s" % (modules_package.__name__, info.name)).main)
               for info in pkgutil.iter_modules(modules_package.__path__))
# a path-like option: its name says it names a place on the host
PATH_OPTION_RE = re.compile(r"(.*_)?(root|dir|dest|path|textfile)")
# options that name a place inside a container or a replica, never on the host the module changes
NOT_HOST_PATHS = {"mount_path"}
LITERAL = ["/", "/etc", "/var/lib", "/var/lib/dokku", "/var/lib/dokku/config", "/root", "/usr/lib"]
S3 = {"type": "s3", "bucket": "bkt", "path": "blog", "endpoint": "http://127.0.0.1:9000", "credentials": "lab"}
APP = "blog"  # also the name of a directory inside every dangerous directory
# options a state needs beside it (litestream_standby's promoted requires a txid, which the other states refuse)
STATE_ARGS = {("litestream_standby", "promoted"): {"txid": "0000000000000005"}}


class Captured(BaseException):
    pass


class Tripwire(object):
    """os functions that refuse to act outside the allowed directory; destructive ones are recorded."""

    DESTRUCTIVE = ("unlink", "remove", "rmdir", "rename", "replace", "chmod", "chown", "lchown", "fchmod", "fchown")
    CREATING = ("mkdir", "makedirs", "open", "symlink", "link")

    def __init__(self, allowed, monkeypatch):
        self.allowed = os.path.realpath(allowed) + "/"
        self.violations = []
        for name in self.DESTRUCTIVE + self.CREATING:
            monkeypatch.setattr(os, name, self.wrap(name, getattr(os, name)))
        monkeypatch.setattr(shutil, "rmtree", self.wrap("rmtree", shutil.rmtree))

    def where(self, name, args, kwargs):
        if name in ("fchmod", "fchown"):
            return os.readlink("/proc/self/fd/%d" % args[0])
        target = args[0]
        if isinstance(target, int):
            return os.readlink("/proc/self/fd/%d" % target)
        target = os.fsdecode(target)
        dir_fd = kwargs.get("dir_fd") or kwargs.get("src_dir_fd")
        if dir_fd is not None and not target.startswith("/"):
            target = os.path.join(os.readlink("/proc/self/fd/%d" % dir_fd), target)
        return os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(target))), os.path.basename(target))

    def wrap(self, name, real):
        def guarded(*args, **kwargs):
            writes = name != "open" or (len(args) > 1 and args[1] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if writes:
                targets = [self.where(name, args, kwargs)]
                if name in ("rename", "replace", "link", "symlink") and len(args) > 1:
                    dst_kwargs = dict(dir_fd=kwargs.get("dst_dir_fd") or kwargs.get("dir_fd"))
                    targets.append(self.where(name, args[1:], dst_kwargs))
                outside = [t for t in targets if not (t + "/").startswith(self.allowed)]
                if outside:
                    if name in self.DESTRUCTIVE or name == "rmtree":
                        self.violations.append((name, outside))
                    raise OSError(errno.EROFS, "the test's tripwire refuses %s outside %s" % (name, self.allowed),
                                  outside[0])
            return real(*args, **kwargs)
        return guarded


def spec_of(main):
    """The module's argument spec, as its main() declares it."""
    def capture(self, argument_spec, **kwargs):
        raise Captured(argument_spec)
    original = basic.AnsibleModule.__init__
    basic.AnsibleModule.__init__ = capture
    try:
        with patch_module_args({}):
            main()
    except Captured as exc:
        return exc.args[0]
    finally:
        basic.AnsibleModule.__init__ = original
    raise AssertionError("main() made no module")


def path_options(spec):
    return sorted(name for name, option in spec.items()
                  if option.get("type", "str") in ("str", "path") and PATH_OPTION_RE.fullmatch(name)
                  and name not in NOT_HOST_PATHS)


def states(spec):
    """Every state a module takes: its `state` choices, or the restore's `on_existing` (what it does to a database
    already there), else just one run."""
    for option in ("state", "on_existing"):
        if option in spec and spec[option].get("choices"):
            return [(option, choice) for choice in spec[option]["choices"]]
    return [(None, None)]


def matrix():
    rows = []
    for module in sorted(MODULES):
        spec = spec_of(MODULES[module])
        for option in path_options(spec):
            for state in states(spec):
                for target in sorted(DANGEROUS) + ["link:" + name for name in sorted(DANGEROUS)] + LITERAL:
                    rows.append(pytest.param(module, option, state, target,
                                             id="%s-%s-%s-%s" % (module, option, state[1], target)))
    return rows


# the dangerous directories, relative to the sandbox's fake root
DANGEROUS = {
    "root": "",
    "etc": "etc",
    "var_lib": "var/lib",
    "dokku_tree": "var/lib/dokku",
    "dokku_config": "var/lib/dokku/config",
    "config_parent": "var/lib/dokku/config/litestream",   # the parent of the default roots
    "storage": "var/lib/dokku/data/storage",
    "app_storage": "var/lib/dokku/data/storage/blog--db",
    "other_user": "home/alice",
}


@pytest.fixture
def sandbox(tmp_path):
    """<tmp>/root: a fake root; <tmp>/links/<name>: a symlink to each dangerous directory."""
    top = tmp_path / "root"
    for rel in DANGEROUS.values():
        path = top / rel
        (path / APP).mkdir(parents=True, exist_ok=True)
        for name in ("litestream.yml", "state.json", "credentials.json", "notes.txt"):  # tempting names
            (path / APP / name).write_text("not the collection's\n")
    (top / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (top / "var/lib/dokku/blog/ENV").write_text("export SECRET=1\n")
    live = top / "var/lib/dokku/data/storage/blog--db/production.sqlite3"
    live.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84)
    # the collection's own directories, as this release makes them
    config = top / "var/lib/dokku/config/litestream"
    owned.ensure(str(config / "apps" / "shop"), owned.APP_CONFIG)
    (config / "apps" / "shop" / "litestream.yml").write_text("dbs: []\n")
    owned.ensure(str(config / "credentials"), owned.CREDENTIALS_ROOT)
    owned.ensure(str(config / "credentials" / "lab"), owned.CREDENTIAL_SET)
    (config / "credentials" / "lab" / "credentials.json").write_text('{"access_key_id": "AKIA", '
                                                                     '"secret_access_key": "s3cr3t"}')
    alice = top / "home" / "alice"
    for dirpath, _dirs, files in os.walk(str(alice)):
        for entry in [dirpath] + [os.path.join(dirpath, f) for f in files]:
            os.chown(entry, 1234, 1234)
    os.chmod(str(alice), 0o750)
    (tmp_path / "links").mkdir()
    for name, rel in DANGEROUS.items():
        os.symlink(str(top / rel), str(tmp_path / "links" / name))
    return tmp_path


def legit(top):
    """Every path option of every module, pointing at the sandbox's own Dokku tree."""
    config = top / "root/var/lib/dokku/config/litestream"
    return {"credentials_root": str(config / "credentials"), "config_root": str(config / "apps"),
            "storage_root": str(top / "root/var/lib/dokku/data/storage"), "state_dir": str(config / "health"),
            "scratch_dir": str(top / "root/var/lib/dokku-litestream-drill"), "dest": str(top / "reports"),
            "textfile": None}


def base_args(module, top):
    roots = legit(top)
    entry = {"app": APP, "replica": dict(S3), "storage": "blog--db"}
    sets = [{"name": "lab", "access_key_id": "AKIA", "secret_access_key": "s3cr3t",
             "credentials_root": roots["credentials_root"]}]
    record = {"host": "h", "app": APP, "database": "production.sqlite3", "status": "ok"}
    return {
        "dokku_storage": {"app": APP},
        # a set name found nowhere yet: the root itself is then what the run would change (with "blog", planning the
        # set inside a dangerous directory fails first and the root's chmod is never reached)
        "litestream_auth": {"name": "fresh", "credentials_root": roots["credentials_root"], "access_key_id": "AKIA",
                            "secret_access_key": "s3cr3t"},
        "litestream_replica": {"app": APP, "replica": dict(S3), "first_sync_timeout": 0,
                               **dict((k, roots[k]) for k in ("config_root", "credentials_root", "storage_root"))},
        "litestream_ownership": {"app": APP, "replica": dict(S3), "take_over": True,
                                 **dict((k, roots[k]) for k in ("config_root", "credentials_root"))},
        "litestream_restore": {"replica": dict(S3), "dest": str(top / "root/var/lib/dokku/data/storage/blog--db"),
                               "credentials_root": roots["credentials_root"], "owner": 0, "group": 0},
        # as the restore: its follower's stage sits next to dest (the fake docker runs no follower, so it fails fast)
        "litestream_standby": {"replica": dict(S3), "dest": str(top / "root/var/lib/dokku/data/storage/blog--db"),
                               "credentials_root": roots["credentials_root"], "owner": 0, "group": 0},
        "litestream_drill": {"apps": [entry], "host": APP, "credential_sets": sets, "parallel": 1,
                             **dict((k, roots[k]) for k in ("scratch_dir", "storage_root", "credentials_root"))},
        "litestream_health": {"apps": [entry], "host": APP, "timeout": 1,
                              **dict((k, roots[k]) for k in ("state_dir", "storage_root", "config_root", "credentials_root"))},
        "litestream_host": {"apps": [entry], "credential_sets": sets, "first_sync_timeout": 0,
                            **dict((k, roots[k]) for k in ("config_root", "credentials_root", "storage_root"))},
        "litestream_validate": {"apps": [entry]},
        "litestream_drill_report": {"results": [record], "dest": roots["dest"]},
        "litestream_health_report": {"results": [record], "dest": roots["dest"]},
        # handoff only reads: its roots are where it looks (the entry listed under the old host, as before a move)
        "litestream_handoff": {"app": APP, "move_from": "dokku-1", "move_to": "dokku-2", "from_apps": [entry],
                               **dict((k, roots[k]) for k in ("config_root", "credentials_root", "storage_root"))},
        # the move report's dest is a controller directory the JSON report is written into, as the drill report's
        "litestream_move_report": {"app": APP, "move_from": "dokku-1", "move_to": "dokku-2",
                                   "final_txids": {"production.sqlite3": "0000000000000005"},
                                   "restored": [{"item": "production.sqlite3", "restored": True,
                                                 "position": "0000000000000005"}],
                                   "dest": roots["dest"]},
    }[module]


def fake_host(tmp_path_factory):
    """What the host's docker and dokku answer: restores from FakeLitestream; no sidecar exists yet; every other
    docker command succeeds; dokku knows no app."""
    restores = FakeLitestream(tmp_path_factory.mktemp("fake-litestream"))

    def run_command(self, argv, **kwargs):
        tail = list(argv[1:])
        if os.path.basename(argv[0]) == "dokku":
            return 1, "", " !     App %s does not exist\n" % APP
        if tail[:2] == ["run", "--rm"] or tail[:1] == ["info"]:
            return restores(self, argv, **kwargs)
        if tail[:2] == ["container", "inspect"] or tail[:1] == ["inspect"]:
            return 1, "[]\n", "Error: No such container: dokku.litestream.%s\n" % APP
        if tail[:2] == ["image", "inspect"]:
            return 0, "sha256:abc\n", ""
        return 0, "", ""
    return run_command


def snapshot(top):
    found = {}
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for entry in [dirpath] + [os.path.join(dirpath, f) for f in filenames + dirnames]:
            st = os.lstat(entry)
            content = None
            if stat.S_ISREG(st.st_mode):
                with open(entry, "rb") as handle:
                    content = handle.read()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(entry)
            found[entry] = (stat.S_IMODE(st.st_mode), stat.S_IFMT(st.st_mode), st.st_uid, st.st_gid, content)
    return found


def ours_before(before):
    """The collection's own marked directories in a snapshot: what may change inside them is its business."""
    return [os.path.dirname(path) for path in before if os.path.basename(path) == owned.MARKER]


def value_for(target, top):
    if target.startswith("/"):
        return target
    if target.startswith("link:"):
        return str(top / "links" / target[5:])
    return str(top / "root" / DANGEROUS[target]).rstrip("/")


@pytest.mark.parametrize("module, option, state, target", matrix())
def test_a_path_option_never_changes_what_the_collection_did_not_make(
        sandbox, monkeypatch, tmp_path_factory, module, option, state, target):
    args = base_args(module, sandbox)
    args[option] = value_for(target, sandbox)
    if option == "textfile":
        args[option] += "/blog.prom"
    if state[0]:
        args[state[0]] = state[1]
        args.update(STATE_ARGS.get((module, state[1]), {}))
    args["_ansible_check_mode"] = False
    monkeypatch.setattr(basic.AnsibleModule, "run_command", fake_host(tmp_path_factory))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    before = snapshot(sandbox)
    tripwire = Tripwire(tempfile.gettempdir(), monkeypatch)
    with patch_module_args(args):
        with pytest.raises((ExitJson, FailJson)):  # anything else (a traceback) fails the test
            MODULES[module]()
    monkeypatch.undo()
    assert tripwire.violations == []
    after = snapshot(sandbox)
    ours = ours_before(before)
    changed = [path for path, facts in before.items()
               if after.get(path) != facts and not any(path.startswith(d + "/") for d in ours)
               and not (facts[1] == stat.S_IFDIR and path in after and after[path][0] == facts[0]
                        and after[path][2:4] == facts[2:4])]
    assert changed == []


def test_the_matrix_covers_every_path_option_of_every_module():
    """The options found by declaration, so a new one cannot be forgotten: this list grows with the modules."""
    found = dict((module, path_options(spec_of(main))) for module, main in MODULES.items())
    assert found == {
        "dokku_storage": [],
        "litestream_auth": ["credentials_root"],
        "litestream_drill": ["credentials_root", "scratch_dir", "storage_root"],
        "litestream_drill_report": ["dest"],
        "litestream_handoff": ["config_root", "credentials_root", "storage_root"],
        "litestream_health": ["config_root", "credentials_root", "state_dir", "storage_root", "textfile"],
        "litestream_health_report": ["dest"],
        "litestream_host": ["config_root", "credentials_root", "storage_root"],
        "litestream_move_report": ["dest"],
        "litestream_replica": ["config_root", "credentials_root", "storage_root"],
        "litestream_ownership": ["config_root", "credentials_root"],
        "litestream_restore": ["credentials_root", "dest"],
        "litestream_standby": ["credentials_root", "dest"],
        "litestream_validate": [],
    }
