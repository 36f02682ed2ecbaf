# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Litestream in a throw-away container, for one restore: its configuration and secret files in a fresh root-only
work directory mounted read-only, the stage mounted at /restore and checked before and after docker runs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends, defaults, guarded
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore as rs
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import write_atomic
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import (
    MissingCredentials, load_credentials)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_report import StepFailed

RESTORE_DIR = "/restore"  # where the stage is mounted: Litestream restores into it
CONFIG_IN_CONTAINER = "%s/%s" % (ls.CONFIG_DIR_IN_CONTAINER, ls.CONFIG_FILE)
ENV_IN_CONTAINER = "%s/%s" % (ls.CONFIG_DIR_IN_CONTAINER, ls.CREDENTIALS_ENV_FILE)
WORKDIR_PREFIX = "dokku-sqlite-restore-"


class LitestreamContainer:
    """``request``: restore_plan.Request (validated); ``stage``: restore_stage.Stage, mounted when a run writes."""

    def __init__(self, docker, request, stage):
        self.docker = docker
        self.request = request
        self.stage = stage
        self.workdir = None

    def prepare(self, check_mode, warn):
        """Load the replica's credential set and write the work directory; False when, in check mode only, the set
        does not exist yet (the replica is then not read)."""
        fields = self.request.fields
        creds = {}
        if backends.of(fields).needs_credentials:
            set_name = fields.get("credentials") or defaults.CREDENTIAL_SET
            try:
                creds = load_credentials(self.request.credentials_root, set_name, fields["type"])
            except MissingCredentials as exc:
                if not check_mode:
                    raise StepFailed(str(exc))
                # --check on a fresh host: the litestream_auth task before this one wrote nothing
                warn("%s (check mode: assuming an earlier task creates it; the replica was not read)" % exc)
                return False
            except v.InvalidValue as exc:
                raise StepFailed(str(exc))
        self.write_workdir(creds)
        return True

    def write_workdir(self, creds):
        """The restore configuration and the secret files (credentials.env, a key file) in a fresh root-only
        directory."""
        request = self.request
        try:
            if request.v03:
                config = ls.render_config_v03(request.database, request.fields, creds, mount_dir=ls.DEFAULT_MOUNT_DIR)
            else:
                config = ls.render_config([request.database], request.fields, creds, mount_dir=ls.DEFAULT_MOUNT_DIR)
        except ls.ConfigError as exc:
            raise StepFailed(str(exc))
        env_text = ls.credentials_env(request.fields, creds)
        self.workdir = self.make_workdir()
        write_atomic(os.path.join(self.workdir, ls.CONFIG_FILE), config, 0o600)
        if env_text:
            write_atomic(os.path.join(self.workdir, ls.CREDENTIALS_ENV_FILE), env_text, 0o600)
        # a key the backend reads from a file (sftp's ssh_key, gs's service account) goes beside the configuration
        for field, file_name, _variable in backends.of(request.fields).credential_files:
            if creds.get(field):
                write_atomic(os.path.join(self.workdir, file_name), creds[field], 0o600)

    def make_workdir(self):
        """A fresh root-only directory for the configuration and the keys (litestream_standby keeps its own)."""
        workdir = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
        os.chmod(workdir, 0o700)
        return workdir

    def litestream_args(self, command, args):
        db_path = "%s/%s" % (ls.DEFAULT_MOUNT_DIR, self.request.database)
        return [command, "-config", CONFIG_IN_CONTAINER, "-no-expand-env"] + args + [db_path]

    def litestream(self, args, mount_dest, timeout=0, command="restore"):
        """Run `litestream <command> <args> /data/<database>` in a throw-away container."""
        script = rs.container_script(CONFIG_IN_CONTAINER, ENV_IN_CONTAINER, self.litestream_args(command, args),
                                     timeout=timeout)
        if command == "generations":
            # 0.3's generations stats the database it lists for (never read): an empty file in the container
            db_path = "%s/%s" % (ls.DEFAULT_MOUNT_DIR, self.request.database)
            script = "mkdir -p %s && : > %s && %s" % (ls.DEFAULT_MOUNT_DIR, ls.shell_quote(db_path), script)
        return self.run(script, mount_dest)

    def run(self, script, mount_dest):
        """`sh -c <script>` in a throw-away container of the image, with the configuration mounted read-only."""
        params = self.request.params
        docker = ["run", "--rm", "--network", params["network"], "--entrypoint", "/bin/sh"]
        docker += self.mounts(mount_dest) + [params["image"], "-c", script]
        if mount_dest:
            self.stage.check("docker would mount it at %s, so nothing ran" % RESTORE_DIR)
        answer = self.docker.run(docker, check=False)
        if mount_dest:
            self.stage.check("Litestream may have written elsewhere than the stage; nothing was put in place")
        return answer

    def mounts(self, mount_dest):
        """docker's -v options: the stage (when Litestream writes), the configuration, a host directory replica."""
        fields = self.request.fields
        mounts = ["-v", "%s:%s" % (self.stage.path, RESTORE_DIR)] if mount_dest else []
        mounts += ["-v", "%s:%s:ro" % (self.workdir, ls.CONFIG_DIR_IN_CONTAINER)]
        if backends.of(fields).host_path:
            mounts += ["-v", "%s:%s:ro" % (fields["path"], fields["path"])]
        return mounts

    def cleanup(self):
        """Remove the work directory (the keys in it) if it is there."""
        if self.workdir:
            try:
                guarded.remove_tree(self.workdir, os.path.dirname(self.workdir))
            except (guarded.OutsideRoot, OSError):
                pass
            self.workdir = None
