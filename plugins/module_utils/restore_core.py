# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One restore of one database from its Litestream replica: plan, restore into a root-only stage, verify,
put in place. litestream_restore runs one; litestream_drill runs several at once, one per thread.

dest belongs to the app's user, who may rename or replace anything in it at any moment. So the stage is made next
to dest, in the nearest directory above it that the app's user cannot write (on dest's own mount, so the restored
file is renamed from it into dest), and every directory made, changed or written into - dest's missing parents,
dest, the stage - is opened once without following a link and then used only through that descriptor."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import errno
import os
import signal
import stat
import tempfile
import threading
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import common_argument_spec, write_atomic
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import (
    MissingCredentials, load_credentials)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerError, DockerRunner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.dokku import owner_uid
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import guarded
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import (
    HostLock, LockTimeout, lock_argument_spec)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore as rs
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

RESTORE_DIR = "/restore"
HEROKUISH_UID = v.CHOWN_NAMES["herokuish"]  # the owner when neither owner/group nor chown is given
CONFIG_IN_CONTAINER = "%s/%s" % (ls.CONFIG_DIR_IN_CONTAINER, ls.CONFIG_FILE)
ENV_IN_CONTAINER = "%s/%s" % (ls.CONFIG_DIR_IN_CONTAINER, ls.CREDENTIALS_ENV_FILE)
STAGE_PREFIX = ".litestream-restore-"
# a directory opened as itself: a symbolic link there is refused (ELOOP), never followed
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
V03_HINT = ("; a replica that Litestream 0.3 wrote (the generations/ layout, such as the dokku-litestream plugin's "
            "at the URL itself) is read with a 0.3 image (image: litestream/litestream:0.3.13) and "
            "replica.location: path")
# a signal from the controller (task timeout, ^C) must not leave keys in /tmp or a half file in dest
CLEANUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
# the verify option of litestream_restore and litestream_drill
VERIFY_OPTIONS = dict(
    integrity=dict(type="str", choices=["full", "quick", "none"], default="quick"),
    tables=dict(type="list", elements="str", default=[]),
    min_rows=dict(type="dict", default={}),
)


def restore_argument_spec():
    """litestream_restore's options; litestream_drill builds each restore's options with it."""
    argument_spec = common_argument_spec()
    argument_spec.update(lock_argument_spec())
    argument_spec.update(
        replica=dict(type="dict", required=True, options=ls.replica_argument_spec(with_v03_options=False)),
        database=dict(type="str", default="production.sqlite3"),
        # type str, not path: Ansible would expand '~' and '$VARS' in a path; validate.py normalises it
        dest=dict(type="str", required=True),
        name=dict(type="str"),
        timestamp=dict(type="str"),
        txid=dict(type="str"),
        if_replica_exists=dict(type="bool", default=False),
        on_existing=dict(type="str", choices=["fail", "skip", "replace"], default="fail"),
        owner=dict(type="int"),
        group=dict(type="int"),
        chown=dict(type="str"),
        mode=dict(type="raw", default="0644"),
        verify=dict(type="dict", default={}, options=VERIFY_OPTIONS),
        image=dict(type="str", default=ls.DEFAULT_IMAGE),
        network=dict(type="str", default="host"),
        dry_run_timeout=dict(type="int", default=0),
        credentials_root=dict(type="str", default="/var/lib/dokku/config/litestream/credentials"),
    )
    return argument_spec


# the ownership comes either from chown or from owner/group
RESTORE_MUTUALLY_EXCLUSIVE = [("chown", "owner"), ("chown", "group")]


class RestoreFailed(Exception):
    """The restore failed; ``result`` holds what the module returns with the message."""

    def __init__(self, msg, result):
        super(RestoreFailed, self).__init__(msg)
        self.msg = msg
        self.result = result


class RestoreFinished(Exception):
    """The restore ended early or late, successfully: ``result`` is the module's result."""

    def __init__(self, result):
        super(RestoreFinished, self).__init__("finished")
        self.result = result


class RestoreManager:
    """One restore. ``params`` are litestream_restore's (the module's own by default); execute() returns the
    result or raises RestoreFailed. ``signals``: clean up on SIGTERM/SIGHUP/SIGINT (only in the main thread;
    litestream_drill, which runs several managers in threads, cleans them up itself)."""

    def __init__(self, module, params=None, signals=True):
        self.module = module
        self.params = module.params if params is None else params
        self.signals = signals
        self.started = time.time()
        self.docker = DockerRunner(module, self.params["docker_binary"])
        self.owner_ids = None
        self.database = self.params["database"]
        self.name = self.params["name"] or self.database
        self.dest = self.target = self.credentials_root = self.mode = None  # set by validate(), normalised
        self.actions = []
        self.backup = []
        self.fields = None
        self.v03 = False       # the image is a Litestream 0.3: generations/ layout, 0.3's commands
        self.creds = {}
        self.workdir = None
        self.stage = None      # the root-only directory Litestream restores into (its path: docker mounts it)
        self.stage_fd = None   # the stage, opened once and checked: later paths go through this handle
        self.stage_at = None   # (descriptor of the directory holding the stage, the stage's name, (st_dev, st_ino))
        self.dest_fd = None    # dest, opened once by make_dest(): the restored file is put in place through it
        self.dir_fds = []      # every directory descriptor this run holds (dest's, its parents'), closed at the end
        self.created_dirs = []  # (descriptor of the parent, name) of each directory this run made, outermost first
        self.thread = None     # the thread that runs execute(): the only one that closes the descriptors
        self.result = dict(changed=False, restored=False, path=None, replica=None, backup=self.backup,
                           actions=self.actions, commands=self.docker.commands, lock_wait=0.0)

    # ------------------------------------------------------------------ helpers
    def where(self):
        return "restore of %s into %s" % (self.database, self.target)

    def fail(self, msg, **extra):
        self.cleanup()
        self.result.update(extra)
        self.result["duration"] = round(time.time() - self.started, 3)
        if self.target is not None:  # before that, validation failed and the message names the option
            msg = "%s: %s" % (self.where(), msg)
        raise RestoreFailed(msg, self.result)

    def finish(self, before, after):
        self.result["changed"] = bool(self.result["restored"] or (self.module.check_mode and self.actions))
        self.result["duration"] = round(time.time() - self.started, 3)
        if self.module._diff:
            self.result["diff"] = {"before": before, "after": after}
        raise RestoreFinished(self.result)

    # ------------------------------------------------------------------ input
    def validate(self):
        """Every input check, before a file is read or a docker command runs."""
        params = self.params
        try:
            v.db_file_name(self.database, "database")
            v.db_file_name(self.name, "name")
            # type str, not path: no '~' or '$VAR' expansion; one spelling per directory (and per lock)
            self.dest = v.absolute_path(params["dest"], "dest", mount=True)
            self.target = os.path.join(self.dest, self.name)
            self.result["path"] = self.target
            self.credentials_root = v.absolute_path(params["credentials_root"], "credentials_root")
            self.mode = v.file_mode(params["mode"], "mode")
            v.check_bounds(params)  # owner, group, dry_run_timeout, lock_timeout
            if params["chown"] is not None:
                v.chown(params["chown"])
            v.docker_word(params["image"], "image")
            v.docker_word(params["network"], "network")
        except v.InvalidValue as exc:
            self.fail(str(exc))
        if params["timestamp"] is not None and params["txid"] is not None:
            self.fail("give either timestamp or txid, not both")
        try:
            self.fields = ls.normalize_replica(params["replica"])
        except v.InvalidValue as exc:
            self.fail(str(exc))
        self.v03 = ls.is_v03_image(params["image"])
        if self.v03:
            if params["txid"] is not None:
                self.fail("txid: the image %s runs Litestream 0.3, which has no transaction ids: restore at a "
                          "timestamp instead" % params["image"])
            if self.fields["type"] not in ls.V03_RESTORE_TYPES:
                self.fail("image: %s runs Litestream 0.3, which reads %s replicas here, not %s" % (
                    params["image"], " and ".join(ls.V03_RESTORE_TYPES), self.fields["type"]))
        self.result["replica"] = rs.replica_location(self.fields, self.database)
        try:
            self.timestamp = rs.parse_timestamp(params["timestamp"]) if params["timestamp"] is not None else None
            self.txid = rs.parse_txid(params["txid"]) if params["txid"] is not None else None
        except ValueError as exc:
            self.fail(str(exc))
        verify = params["verify"] or {}
        self.integrity = verify.get("integrity") or "quick"
        self.required_tables = list(verify.get("tables") or [])
        for table in self.required_tables + list((verify.get("min_rows") or {}).keys()):
            if not str(table).strip():
                self.fail("verify.tables and verify.min_rows name tables: an empty name (%r) is no table" % (table,))
        self.min_rows = {}
        for table, value in (verify.get("min_rows") or {}).items():
            try:  # '5' from a template counts; .inf is refused (int() raised OverflowError)
                self.min_rows[str(table)] = v.in_range(value, "verify.min_rows.%s" % table, v.BOUNDS["min_rows"])
            except v.InvalidValue as exc:
                self.fail(str(exc))
        if os.path.lexists(self.dest) and not os.path.isdir(self.dest):
            self.fail("dest %s exists and is not a directory" % self.dest)
        if os.path.isdir(self.target) and not os.path.islink(self.target):
            self.fail("%s is a directory, not a database file" % self.target)

    def point_in_time(self):
        if self.timestamp:
            return "at %s" % self.timestamp
        if self.txid:
            return "at txid %s" % self.txid
        return "latest"

    def load_credentials(self):
        if not ls.needs_credentials(self.fields):
            return True
        set_name = self.fields.get("credentials") or "default"
        try:
            self.creds = load_credentials(self.credentials_root, set_name, self.fields["type"])
        except MissingCredentials as exc:
            if not self.module.check_mode:
                self.fail(str(exc))
            # --check on a fresh host: the litestream_auth task before this one wrote nothing
            self.module.warn("%s (check mode: assuming an earlier task creates it; the replica was not read)" % exc)
            return False
        except v.InvalidValue as exc:
            self.fail(str(exc))
        return True

    # ------------------------------------------------------------------ litestream
    def write_workdir(self):
        """The restore configuration and the secret files (credentials.env, ssh_key) in a fresh root-only directory."""
        try:
            if self.v03:
                config = ls.render_config_v03(self.database, self.fields, self.creds, mount_dir=ls.DEFAULT_MOUNT_DIR)
            else:
                config = ls.render_config([self.database], self.fields, self.creds, mount_dir=ls.DEFAULT_MOUNT_DIR)
        except ls.ConfigError as exc:
            self.fail(str(exc))
        env_text = ls.credentials_env(self.fields, self.creds)
        self.workdir = tempfile.mkdtemp(prefix="dokku-sqlite-restore-")
        os.chmod(self.workdir, 0o700)
        write_atomic(os.path.join(self.workdir, ls.CONFIG_FILE), config, 0o600)
        if env_text:
            write_atomic(os.path.join(self.workdir, ls.CREDENTIALS_ENV_FILE), env_text, 0o600)
        if self.creds.get("ssh_private_key"):
            write_atomic(os.path.join(self.workdir, ls.SSH_KEY_FILE), self.creds["ssh_private_key"], 0o600)

    def litestream(self, restore_args, mount_dest, timeout=0, command="restore"):
        """Run `litestream <command> <restore_args> /data/<database>` in a throw-away container."""
        script = rs.container_script(CONFIG_IN_CONTAINER, ENV_IN_CONTAINER, self.litestream_args(command, restore_args),
                                     timeout=timeout)
        if command == "generations":
            # 0.3's generations stats the database it lists for (never read): an empty file in the container
            db_path = "%s/%s" % (ls.DEFAULT_MOUNT_DIR, self.database)
            script = "mkdir -p %s && : > %s && %s" % (ls.DEFAULT_MOUNT_DIR, ls.shell_quote(db_path), script)
        return self.container(script, mount_dest)

    def litestream_args(self, command, args):
        db_path = "%s/%s" % (ls.DEFAULT_MOUNT_DIR, self.database)
        return [command, "-config", CONFIG_IN_CONTAINER, "-no-expand-env"] + args + [db_path]

    def container(self, script, mount_dest):
        """`sh -c <script>` in a throw-away container of the image, with the configuration mounted read-only."""
        docker = ["run", "--rm", "--network", self.params["network"], "--entrypoint", "/bin/sh"]
        if mount_dest:
            docker += ["-v", "%s:%s" % (self.stage, RESTORE_DIR)]
        docker += ["-v", "%s:%s:ro" % (self.workdir, ls.CONFIG_DIR_IN_CONTAINER)]
        if self.fields["type"] == "file":
            docker += ["-v", "%s:%s:ro" % (self.fields["path"], self.fields["path"])]
        docker += [self.params["image"], "-c", script]
        if mount_dest:
            self.check_stage("docker would mount it at %s, so nothing ran" % RESTORE_DIR)
        answer = self.docker.run(docker, check=False)
        if mount_dest:
            self.check_stage("Litestream may have written elsewhere than the stage; nothing was put in place")
        return answer

    def point_args(self):
        return ["-timestamp", self.timestamp] if self.timestamp else ["-txid", self.txid] if self.txid else []

    def dry_run_args(self, point_args):
        return ["-dry-run", "-json"] + point_args + ["-o", "%s/%s" % (RESTORE_DIR, self.name)]

    def dry_run(self, point_args):
        """The restore plan (dict), None when the replica holds nothing that matches; fails on other errors."""
        if self.fields["type"] == "file" and not os.path.isdir(self.fields["path"]):
            return None  # nothing to read, and docker would create the directory for the mount
        rc, out, err = self.litestream(self.dry_run_args(point_args), mount_dest=False,
                                       timeout=self.params["dry_run_timeout"])
        return self.read_plan(rc, out, err)

    def read_plan(self, rc, out, err):
        """What a dry run's exit status and output say: the plan, None for no backup; fails on other errors."""
        timeout = self.params["dry_run_timeout"]
        if rc == 0:
            plan = rs.parse_json_output(out)
            if not isinstance(plan, dict):
                self.fail("litestream restore -dry-run printed no plan (exit 0): %s" % last_line(out, err))
            return plan
        if rs.is_no_backup(err) or rs.is_no_backup(out):
            return None
        if timeout and rc == rs.TIMEOUT_RC:
            self.fail("the replica %s is unreachable: no answer within %d s (dry_run_timeout); Litestream's last "
                      "words: %s" % (self.result["replica"], timeout, describe(self.docker, rc, out, err)))
        self.fail("the replica %s cannot be read: %s" % (self.result["replica"], describe(self.docker, rc, out, err)))

    def generations(self):
        """Litestream 0.3's view of the replica: its generations (a list, empty when none); fails on errors."""
        if self.fields["type"] == "file" and not os.path.isdir(self.fields["path"]):
            return []
        timeout = self.params["dry_run_timeout"]
        rc, out, err = self.litestream([], mount_dest=False, timeout=timeout, command="generations")
        if timeout and rc == rs.TIMEOUT_RC:
            self.fail("the replica %s is unreachable: no answer within %d s (dry_run_timeout); Litestream's last "
                      "words: %s" % (self.result["replica"], timeout, describe(self.docker, rc, out, err)))
        listing_error = rs.generations_error(err) or rs.generations_error(out)
        if rc != 0 or listing_error:
            if listing_error:
                self.fail("the replica %s cannot be read: %s (command: %s)" % (
                    self.result["replica"], listing_error, self.docker.commands[-1]))
            self.fail("the replica %s cannot be read: %s" % (self.result["replica"], describe(self.docker, rc, out, err)))
        return rs.parse_generations(out)

    def plan_v03(self):
        rows = self.generations()
        if not rows:
            return None
        summary = rs.generations_summary(rows, self.timestamp)
        if summary is None:
            self.fail("the replica %s holds generations from %s to %s (Litestream 0.3, to the second), none of which "
                      "spans %s" % (self.result["replica"], min(row["start"] for row in rows),
                                    max(row["end"] for row in rows), self.timestamp))
        return summary

    def plan(self):
        """Plan the restore; returns the plan summary, or None when the replica has no backup of the database."""
        if self.v03:
            return self.plan_v03()
        return self.summarize(self.dry_run(self.point_args()))

    def summarize(self, plan):
        """The summary of a dry run's plan; None (no backup) only when the replica holds nothing at all."""
        if plan is not None:
            return rs.plan_summary(plan)
        if not self.point_args():
            return None
        # nothing at that point: tell "no replica at all" from "not that far back"
        whole = self.dry_run([])
        if whole is None:
            return None
        summary = rs.plan_summary(whole)
        held = "the replica %s holds transactions %s to %s (newest file %s)" % (
            self.result["replica"], summary["min_txid"], summary["max_txid"], summary["newest_file_time"])
        if self.timestamp:
            self.fail("%s, none at or before %s" % (held, self.timestamp))
        self.fail("%s; txid %s cannot be restored from it" % (held, self.txid))

    # ------------------------------------------------------------------ files
    def ownership(self):
        """(uid, gid) for the restored file and the directories made for it; resolved once, when first needed."""
        if self.owner_ids is None:
            chown = self.params["chown"]
            if chown is None:
                self.owner_ids = tuple(HEROKUISH_UID if self.params[o] is None else self.params[o]
                                       for o in ("owner", "group"))
            elif chown == "false":
                st = os.stat(self.dest) if os.path.isdir(self.dest) else None
                self.owner_ids = (st.st_uid, st.st_gid) if st else (0, 0)
            else:
                uid = owner_uid(chown, self.docker.userns_remap())
                self.owner_ids = (uid, uid)
        return self.owner_ids

    def make_dest(self):
        """Open dest once (self.dest_fd), making it and its missing parents first. Each directory made here is made
        through the descriptor of the one above it, opened without following a link, checked to be the directory
        just made (ours, root's) and only then given its mode and owner through its own descriptor: a link or another
        directory put in its place meanwhile is refused, never followed. A link at dest itself is refused too."""
        missing = []
        path = self.dest.rstrip("/") or "/"
        while not os.path.isdir(path) and not os.path.islink(path):
            missing.append(os.path.basename(path))
            path = os.path.dirname(path)
        # an existing parent is the user's path and is followed as any path is; dest itself never is
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY) if missing else self.open_dir(path, None, path)
        fd = self.hold(top, path)
        for name in reversed(missing):
            path = os.path.join(path, name)
            made = True
            try:
                os.mkdir(name, 0o755, dir_fd=fd)
            except OSError as exc:
                # another restore (litestream_drill runs several at once) made the same parent meanwhile
                if exc.errno != errno.EEXIST:
                    raise
                made = False
            child = self.hold(self.open_dir(name, fd, path), path)
            if made:
                st = os.fstat(child)
                if st.st_uid != os.geteuid():
                    self.fail("%s was replaced while this run made it (it now belongs to uid %d); refusing to "
                              "change its mode or owner" % (path, st.st_uid))
                self.created_dirs.append((fd, name))
                os.fchmod(child, 0o755)
                os.fchown(child, *self.ownership())
            fd = child
        self.dest_fd = fd

    def hold(self, fd, path):
        """Keep a directory descriptor until cleanup(); refuse anything but a directory (a link, a file)."""
        self.dir_fds.append(fd)
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            self.fail("%s is not a directory" % path)
        return fd

    def open_dir(self, name, dir_fd, path):
        """The directory `name` in dir_fd, opened as itself; fails on a symbolic link there, naming `path`."""
        try:
            return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):  # Linux says ENOTDIR for a link with O_DIRECTORY
                raise
            if exists_at(dir_fd, name) and stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
                self.fail("%s is a symbolic link; the restore does not follow a link there (give the directory "
                          "it points to)" % path)
            self.fail("%s is not a directory" % path)

    def app_ids(self):
        """The uids and gids that may act for the app in dest (its owner, the restored file's owner): never root."""
        st = os.fstat(self.dest_fd)
        uids = set((st.st_uid, self.ownership()[0])) - set((0,))
        gids = set((st.st_gid, self.ownership()[1])) - set((0,))
        return uids, gids

    def stage_parent(self):
        """(path, descriptor) of the directory the stage is made in: the deepest one above dest that is on dest's
        mount and that, like every directory above it, the app's user cannot write (it could rename the stage or a
        directory on its way and put a link there before docker mounts it). dest itself when there is none (dest is
        a mount point of its own): check_stage() then checks the stage before and after docker mounts it."""
        real = os.path.realpath(self.dest)
        dest_st = os.fstat(self.dest_fd)
        try:
            real_st = os.stat(real)
        except OSError:
            real_st = None
        if real_st is None or (real_st.st_dev, real_st.st_ino) != (dest_st.st_dev, dest_st.st_ino):
            self.fail("dest %s changed while the restore opened it" % self.dest)
        uids, gids = self.app_ids()
        found = None
        for path in ancestors(real):
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or writable_by(st, uids, gids):
                break
            if st.st_dev == dest_st.st_dev:
                found = (path, st)
        if found is not None:
            fd = self.hold(os.open(found[0], DIR_FLAGS), found[0])
            st = os.fstat(fd)
            same = mount_id(fd) == mount_id(self.dest_fd)  # on one mount: a rename from there into dest works
            if (st.st_dev, st.st_ino) == (found[1].st_dev, found[1].st_ino) and same:
                return found[0], fd
        return real, self.dest_fd

    def make_stage(self):
        """A fresh directory (0700 root, like mkdtemp) next to dest, opened once and checked: nobody else can place
        anything in it, and every later path goes through the open handle, so swapping it does not help."""
        parent, parent_fd = self.stage_parent()
        for _attempt in range(100):
            name = STAGE_PREFIX + binascii.hexlify(os.urandom(6)).decode("ascii")
            try:
                os.mkdir(name, 0o700, dir_fd=parent_fd)
                break
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
        else:
            self.fail("no free name for a stage directory in %s" % parent)
        self.stage = os.path.join(parent, name)
        fd = self.open_dir(name, parent_fd, self.stage)
        st = os.fstat(fd)
        # our own directory, or nothing of it is used (never removed either: stage_at is only set for ours)
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
            os.close(fd)
            self.fail("the stage directory %s was replaced while this run made it; refusing to use it" % self.stage)
        self.stage_fd = fd
        self.stage_at = (parent_fd, name, (st.st_dev, st.st_ino))

    def check_stage(self, consequence, forget=()):
        """Fail unless the stage's path still names the stage this run made (docker mounts it by its path), without
        the result keys in `forget` (what was read through that path)."""
        try:
            st = os.lstat(self.stage)
        except OSError:
            st = None
        if st is None or not stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) != self.stage_at[2]:
            for key in forget:
                self.result.pop(key, None)
            self.fail("the stage directory %s was moved away or replaced (by a link or another directory): %s"
                      % (self.stage, consequence))

    def staged(self, name):
        return "/proc/self/fd/%d/%s" % (self.stage_fd, name)

    def open_restored(self):
        """The restored file, opened without following a symlink; fails unless it is a regular file."""
        try:
            fd = os.open(self.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=self.stage_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.fail("the restored file is a symbolic link; refusing to touch it (nothing was put in place)")
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self.fail("the restored file is not a regular file; refusing it (nothing was put in place)")
        return fd

    def cleanup(self):
        """Remove what this run created and did not hand over: the stage, the work directory, new empty dirs. The
        descriptors are closed only by the thread that runs the restore: litestream_drill cleans up after a signal
        from its main thread, while a worker may still use them (a closed number reused by another open would
        send that worker's next rename elsewhere); its process ends right after."""
        if self.stage_fd is not None:
            try:
                empty_dir(self.stage_fd)
            except OSError:
                pass
        if self.stage_at is not None:
            parent_fd, name, identity = self.stage_at
            try:
                st = os.lstat(name, dir_fd=parent_fd)
                if stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == identity:
                    os.rmdir(name, dir_fd=parent_fd)  # emptied above; only ever our own, empty, directory
            except OSError:
                pass  # gone, or no longer ours (swapped for a link): never follow it
        if self.workdir:
            try:
                guarded.remove_tree(self.workdir, os.path.dirname(self.workdir))
            except (guarded.OutsideRoot, OSError):
                pass
            self.workdir = None
        if not self.result.get("restored"):
            for parent_fd, name in reversed(self.created_dirs):
                try:
                    os.rmdir(name, dir_fd=parent_fd)  # only while empty: never anything but our own directory
                except OSError:
                    break
        if self.thread not in (None, threading.current_thread()):
            return
        self.created_dirs = []
        self.stage = self.stage_at = self.dest_fd = None
        for fd in ([self.stage_fd] if self.stage_fd is not None else []) + self.dir_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.stage_fd = None
        self.dir_fds = []

    def backup_stamp(self, existing):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        candidate, n = stamp, 1
        while any(exists_at(self.dest_fd, rs.backup_path(p, "", self.name, candidate)) for p in existing):
            n += 1
            candidate = "%s-%d" % (stamp, n)
        return candidate

    def put_in_place(self):
        """Move the old files aside (replace), then the verified file from the stage into place; undo on failure.
        Every name is taken in dest's own descriptor: nothing here follows a link or leaves dest."""
        dest_fd, name = self.dest_fd, self.name
        existing = [entry for entry in rs.file_names(name) if exists_at(dest_fd, entry)]
        moved = []  # (old name, or None while the old file is still in place too, backup name)
        try:
            if existing:
                stamp = self.backup_stamp(existing)
                # the sidecars and the state directory first: a stale -wal must never meet the new file
                for entry in [e for e in existing if e != name]:
                    new = rs.backup_path(entry, "", name, stamp)
                    os.rename(entry, new, src_dir_fd=dest_fd, dst_dir_fd=dest_fd)
                    moved.append((entry, new))
                if name in existing:
                    new = rs.backup_path(name, "", name, stamp)
                    try:
                        # the old file stays visible until the new one replaces it (a link is linked as a link)
                        os.link(name, new, src_dir_fd=dest_fd, dst_dir_fd=dest_fd, follow_symlinks=False)
                        moved.append((None, new))
                    except OSError:
                        os.rename(name, new, src_dir_fd=dest_fd, dst_dir_fd=dest_fd)
                        moved.append((name, new))
                    os.rename(name, name, src_dir_fd=self.stage_fd, dst_dir_fd=dest_fd)
                    if moved[-1][0] is None:
                        moved[-1] = (name, new)
                else:
                    link_into_place(self.stage_fd, dest_fd, name)
            else:
                link_into_place(self.stage_fd, dest_fd, name)
        except OSError as exc:
            for old, new in reversed(moved):
                try:
                    if old is None:
                        os.unlink(new, dir_fd=dest_fd)
                    elif not exists_at(dest_fd, old):
                        os.rename(new, old, src_dir_fd=dest_fd, dst_dir_fd=dest_fd)
                except OSError:
                    pass
            self.fail("putting the restored file in place failed (%s); the existing files were put back" % exc)
        self.backup.extend(os.path.join(self.dest, new) for _old, new in moved)
        try:
            fsync_fd(dest_fd)
        except OSError:
            pass

    # ------------------------------------------------------------------ the run
    def execute(self):
        """The whole restore: returns the result (exit_json's keyword arguments); raises RestoreFailed."""
        self.thread = threading.current_thread()
        try:
            self.run()
        except RestoreFinished as done:
            return done.result
        except (DockerError, LockTimeout, guarded.OutsideRoot) as exc:
            self.fail(str(exc))
        raise AssertionError("the restore ended without a result")  # converge() always finishes

    def run(self):
        self.validate()
        previous = {}
        if self.signals:
            previous = dict((signum, signal.signal(signum, self.on_signal)) for signum in CLEANUP_SIGNALS)
        try:
            # from the look at what exists to the rename: two restores into one file would both find it free
            with HostLock(self.module, "restore-%s" % self.target, "the restore target %s" % self.target,
                          timeout=self.params["lock_timeout"]) as lock:
                self.result["lock_wait"] = lock.waited
                self.converge()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def on_signal(self, signum, _frame):
        self.fail("stopped by signal %d: the temporary files of this run were removed" % signum)

    def converge(self):
        existing = rs.existing_paths(self.dest, self.name)
        before = {"path": self.target, "exists": bool(existing), "files": sorted(existing)}
        on_existing = self.params["on_existing"]
        if existing and on_existing == "fail":
            self.fail("%s already exists; set on_existing: replace to move it aside to a timestamped backup, "
                      "or skip to leave it" % describe_existing(self.target, existing))
        if existing and on_existing == "skip":
            self.result["msg"] = "%s exists; skipped (on_existing: skip)" % describe_existing(self.target, existing)
            self.finish(before, before)

        try:
            replica_checked = self.load_credentials()
            if replica_checked:
                self.write_workdir()
            if replica_checked and self.one_run():
                self.restore(existing)
            else:
                summary = self.plan() if replica_checked else None
                if replica_checked and summary is None:
                    if not self.params["if_replica_exists"]:
                        self.no_backup()
                    self.result["msg"] = "no backup of %s in %s; nothing restored (if_replica_exists)" % (
                        self.database, self.result["replica"])
                    self.cleanup()
                    self.finish(before, before)
                if summary:
                    # read right after the dry run: container start-up and the restore itself do not count
                    self.planned(summary, time.time())
                planned = self.announce(summary, existing, not os.path.isdir(self.dest))
                if self.module.check_mode:
                    self.backup.extend(planned)
                    self.cleanup()
                    after = {"path": self.target, "exists": True, "position": self.result.get("position")}
                    self.finish(before, after)
                self.restore(existing, summary)
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOSPC:
                self.cleanup()
                self.fail("no space left on device in %s (%s once the partial files were removed): %s" % (
                    self.dest, rs.space_left(self.dest), exc))
            self.fail("%s" % exc)
        finally:
            self.cleanup()
        after = {"path": self.target, "exists": True, "position": self.result.get("position"),
                 "backup": list(self.backup)}
        self.finish(before, after)

    def one_run(self):
        """Whether the dry run and the restore share one container (plan_and_restore): one container start and
        one look at the replica fewer. The dry run keeps a container of its own, before anything is written,
        - in check mode, where it is all that runs;
        - with if_replica_exists, where a replica without a backup must leave dest untouched (one run needs dest
          made, and the stage next to it mounted, before the dry run starts);
        - for a Litestream 0.3 image, whose plan is the table `generations` prints, read here;
        - for a file replica whose directory is missing: no backup, and docker would create it for the mount.
        """
        return not (self.module.check_mode or self.params["if_replica_exists"] or self.v03
                    or (self.fields["type"] == "file" and not os.path.isdir(self.fields["path"])))

    def no_backup(self):
        self.fail("the replica %s holds no backup of %s (set if_replica_exists: true to accept that)%s" % (
            self.result["replica"], self.database, "" if self.v03 else V03_HINT), replica_missing=True)

    def planned(self, summary, read_at):
        """position, position_time and position_age (against read_at, when the dry run ended) from a plan."""
        self.result.update(position=summary["position"], position_time=summary["newest_file_time"])
        if summary["newest_file_time"]:
            age = rs.seconds_since(summary["newest_file_time"], read_at)
            self.result["position_age"] = round(max(0.0, age), 1)

    def announce(self, summary, existing, dest_missing):
        """The actions, once the replica is known to hold what is wanted; returns the planned backup paths."""
        if dest_missing:
            self.actions.append("create directory %s" % self.dest)
        reached = ""
        if summary:
            reached = ", %s %s" % ("generation" if self.v03 else "txid", summary["position"])
        self.actions.append("restore %s (%s%s) into %s" % (
            self.result["replica"], self.point_in_time(), reached, self.target))
        if not existing:
            return []
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        planned = [rs.backup_path(p, self.dest, self.name, stamp) for p in existing]
        self.actions.append("move aside %s" % ", ".join(
            "%s -> %s" % (os.path.basename(p), os.path.basename(n)) for p, n in zip(existing, planned)))
        return planned

    def restore_args(self, summary=None):
        """The restore's arguments; with a summary, -txid of the transaction to reach (none for Litestream 0.3)."""
        args = ["-o", "%s/%s" % (RESTORE_DIR, self.name)]
        if self.params["if_replica_exists"]:
            args.append("-if-replica-exists")
        if self.v03:
            if self.timestamp:
                args += ["-timestamp", self.timestamp]
            return args
        # No -integrity-check: the one check is verify()'s (see verify.integrity). Always -txid, also for the
        # latest: the restore reaches exactly what the dry run planned and reported, a replica that moved on
        # meanwhile included, with no second listing for Litestream to work out its latest, and a time is
        # never passed to -timestamp (broken in some 0.5 releases).
        args.append("-json")
        if summary is not None:
            args += ["-txid", self.txid or summary["max_txid"]]
        return args

    def plan_and_restore(self, existing, dest_missing):
        """The dry run and, when it found the plan, the restore, in one container; returns the restore's
        (rc, stdout, stderr). Fails (and so removes the stage) as the dry run of its own would."""
        script = rs.plan_and_restore_script(
            CONFIG_IN_CONTAINER, ENV_IN_CONTAINER, self.litestream_args("restore", self.dry_run_args(self.point_args())),
            self.litestream_args("restore", self.restore_args()), txid=self.txid, timeout=self.params["dry_run_timeout"])
        rc, out, err = self.container(script, mount_dest=True)
        parts = rs.split_planned_output(out, err)
        if parts is None:  # the script never got past the dry run: no shell, or docker could not start it
            if rc == 0:
                self.fail("litestream restore -dry-run printed no plan (exit 0): %s" % last_line(out, err))
            parts = {"rc": rc, "at": None, "txid": "", "plan_out": out, "plan_err": err, "out": "", "err": ""}
        summary = self.summarize(self.read_plan(parts["rc"], parts["plan_out"], parts["plan_err"]))
        if summary is None:
            self.no_backup()
        read_at = parts["at"]
        if read_at is None:  # an image without `date`: the end of the run, less the restore's own duration
            report = rs.parse_json_output(parts["out"])
            took = report.get("duration_ms") if isinstance(report, dict) else None
            read_at = time.time() - (took or 0) / 1000.0
        self.planned(summary, read_at)
        self.announce(summary, existing, dest_missing)
        wanted = self.txid or summary["max_txid"]
        if not parts["txid"]:
            # the image lacks the tools the script reads the plan with (grep, sort): restore in a second container
            return self.litestream(self.restore_args(summary), mount_dest=True)
        if parts["txid"] != wanted:
            self.fail("the restore ran to txid %s, but the dry run planned %s (command: %s)" % (
                parts["txid"], wanted, self.docker.commands[-1]))
        return rc, parts["out"], parts["err"]

    def restore(self, existing, summary=None):
        """Restore into the stage, verify, put in place. Without a summary, the dry run runs first in the same
        container (one_run); the stage, and dest when missing, are made before it and removed when it fails."""
        self.ownership()  # its docker read (user namespaces) before the first change
        dest_missing = not os.path.isdir(self.dest)
        self.make_dest()
        self.make_stage()
        tmp_path = self.staged(self.name)
        if summary is None:
            rc, out, err = self.plan_and_restore(existing, dest_missing)
        else:
            rc, out, err = self.litestream(self.restore_args(summary), mount_dest=True)
        if rc != 0:
            if rs.is_no_space(err) or rs.is_no_space(out):
                self.cleanup()  # the partial file goes first, so the free space shown is what the disk really has
                self.fail("no space left on device in %s (%s once the partial file was removed): litestream "
                          "restore failed: %s" % (self.dest, rs.space_left(self.dest), describe(self.docker, rc, out, err)))
            self.fail("litestream restore failed: %s" % describe(self.docker, rc, out, err))
        if not os.path.lexists(tmp_path):
            if self.params["if_replica_exists"] and (rs.is_no_backup(out) or rs.is_no_backup(err)):
                # the replica went away between the dry run and the restore
                self.result["msg"] = "no backup of %s in %s; nothing restored (if_replica_exists)" % (
                    self.database, self.result["replica"])
                self.result.pop("position", None)
                self.result.pop("position_time", None)
                self.result.pop("position_age", None)
                self.actions[:] = []
                return
            self.fail("litestream restore exited 0 but wrote no file: %s" % last_line(out, err))
        report = None if self.v03 else rs.parse_json_output(out)
        if isinstance(report, dict) and report.get("txid"):
            self.result["position"] = report["txid"]

        fd = self.open_restored()
        try:
            self.verify(tmp_path)
            # SQLite opened the file by its path (it resolves /proc/self/fd/N back to the stage's name)
            self.check_stage("the verification may have read another file; nothing was put in place",
                             forget=("tables", "integrity"))
            os.fchown(fd, *self.ownership())
            os.fchmod(fd, self.mode)  # after fchown, which may clear mode bits
            fsync_fd(fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        self.put_in_place()
        self.result["restored"] = True
        self.result["size"] = size

    def verify(self, tmp_path):
        try:
            inspected = rs.inspect_database(tmp_path, self.integrity)
        except Exception as exc:  # sqlite3.Error and OSError alike: the file is no usable database
            self.fail("the restored file is not a readable SQLite database: %s" % exc)
        problems = rs.verification_problems(inspected, self.required_tables, self.min_rows)
        self.result.update(tables=inspected["tables"], integrity=inspected["integrity"])
        if problems:
            self.fail("verification failed, nothing was put in place: %s" % "; ".join(problems))


def link_into_place(stage_fd, dest_fd, name):
    """Rename from the stage into dest that refuses to overwrite: a file that appeared meanwhile is never clobbered."""
    try:
        os.link(name, name, src_dir_fd=stage_fd, dst_dir_fd=dest_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise
        os.rename(name, name, src_dir_fd=stage_fd, dst_dir_fd=dest_fd)  # no hard links on this filesystem
        return
    os.unlink(name, dir_fd=stage_fd)


def exists_at(dir_fd, name):
    """Whether dir_fd holds an entry `name` (a link counts as itself, never followed)."""
    try:
        os.lstat(name, dir_fd=dir_fd)
    except OSError:
        return False
    return True


def empty_dir(fd):
    """Remove everything inside the open directory fd, through descriptors: a link is removed, never followed."""
    for name in os.listdir(fd):
        st = os.lstat(name, dir_fd=fd)
        if stat.S_ISDIR(st.st_mode):
            child = os.open(name, DIR_FLAGS, dir_fd=fd)
            try:
                empty_dir(child)
            finally:
                os.close(child)
            os.rmdir(name, dir_fd=fd)
        else:
            os.unlink(name, dir_fd=fd)


def ancestors(path):
    """'/', '/a', '/a/b' for '/a/b/c': every directory above path, outermost first ([] for '/')."""
    parts = [part for part in path.split("/") if part]
    if not parts:
        return []
    return ["/"] + ["/" + "/".join(parts[:i + 1]) for i in range(len(parts) - 1)]


def writable_by(st, uids, gids):
    """Whether a user of uids/gids (or anyone) may rename the entries of the directory that st describes. Its owner
    can always (a chmod away); in a sticky directory (/tmp) nobody else can rename another user's entry."""
    if st.st_uid in uids:
        return True
    if st.st_mode & stat.S_ISVTX:
        return False
    return bool(st.st_mode & stat.S_IWOTH or (st.st_mode & stat.S_IWGRP and st.st_gid in gids))


def mount_id(fd):
    """The id of the mount that the open file fd is on (/proc/self/fdinfo, Linux 3.15+); None when unknown."""
    try:
        with open("/proc/self/fdinfo/%d" % fd) as handle:
            for line in handle:
                if line.startswith("mnt_id:"):
                    return int(line.split()[1])
    except (IOError, OSError, ValueError):
        pass
    return None


def fsync_fd(fd):
    os.fsync(fd)


def describe_existing(target, existing):
    others = [p for p in existing if p != target]
    if target in existing:
        return target + (" (with %s)" % ", ".join(others) if others else "")
    return "%s (not the file itself, but %s)" % (target, ", ".join(others))


def last_line(out, err):
    for text in (err, out):
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "(no output)"


def describe(docker, rc, out, err):
    """Litestream's own last words, the command that ran (the script holds no secret) and a known cause."""
    text = "%s (exit %d; command: %s)" % (last_line(out, err), rc, docker.commands[-1])
    hint = rs.failure_hint(out, err)
    return text + ("; likely cause: %s" % hint if hint else "")
