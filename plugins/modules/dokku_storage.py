#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: dokku_storage
short_description: Persistent storage directory and mount for a Dokku app's SQLite databases
version_added: "0.1.0"
description:
  - Ensures the storage directory C(/var/lib/dokku/data/storage/<storage>) exists and belongs to the
    app's user, and that it is mounted into the app at O(mount_path).
  - Reads the app's mounts once per run and writes only what is missing, so a second run executes no
    writing command. Restarts the app once, and only when a mount was actually added or removed and
    the app is running.
  - Works with every Dokku generation (bash-era storage up to 0.37.4, the Go rewrite, 0.38 named
    entries); the version is detected with C(dokku version).
options:
  mount_path:
    description:
      - Absolute path inside the app's containers where the directory is mounted.
      - Normalised; C(..), C(:), whitespace and control characters are refused (older Dokku splits its docker
        options on whitespace, and C(:) separates the fields of a docker mount).
      - Do not mount over a directory the app ships (for Rails, not C(/app/db) itself).
    type: str
    default: /app/db/litestream
  chown:
    description:
      - Owner of the directory, as C(storage:ensure-directory --chown) understands it.
      - V(herokuish) is uid 32767, V(heroku) 1000, V(paketo) 2000, V(root) 0, V(false) leaves the owner alone.
      - A numeric uid (digits C(0-9) only, up to 2147483646) needs Dokku 0.38.22 or newer; V(root) needs 0.37.5 or
        newer. Anything else is refused before any command runs.
      - V(paketo) is sent as C(packeto) to Dokku older than 0.35.17, which knows only that spelling.
      - When Docker remaps users (C(userns-remap), read from C(docker info)), Dokku chowns to the uid plus 165536,
        and the module expects that owner, so a remapped host is not chowned again on every run.
    type: str
    default: herokuish
  create_app:
    description: Create the app with C(apps:create) when it does not exist, instead of failing.
    type: bool
    default: false
  restart:
    description:
      - Restart the app (C(ps:restart)) once when a mount was added or removed, and only when it is running.
      - Whether it runs is read with C(dokku --quiet ps:report <app> --running) just before; an app that is stopped
        (V(false)) is left stopped, so removing a mount never starts an app its user had stopped. The new mount
        takes effect at its next start.
    type: bool
    default: true
  state:
    description:
      - V(present) ensures directory and mount; V(absent) removes the mount.
      - The directory and the databases in it are never deleted.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - dokku_sqlite.litestream.app
  - dokku_sqlite.litestream.common
  - dokku_sqlite.litestream.lock
  - dokku_sqlite.litestream.common.attributes
notes:
  - Runs on the Dokku host as root.
  - Dokku 0.38 prints a deprecation notice for C(storage:ensure-directory); it is still the one command
    that creates and chowns the directory on every generation, so the module uses it.
seealso:
  - module: dokku_sqlite.litestream.litestream_replica
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Storage for the blog's SQLite databases, mounted at /app/db/litestream
  dokku_sqlite.litestream.dokku_storage:
    app: blog

- name: A Dockerfile app running as uid 1000, mounted at /data, created when missing
  dokku_sqlite.litestream.dokku_storage:
    app: notes
    storage: notes-data
    mount_path: /data
    chown: heroku
    create_app: true
"""

RETURN = r"""
app:
  description: The app.
  returned: always
  type: str
  sample: blog
storage_dir:
  description: The storage directory on the host.
  returned: always
  type: str
  sample: /var/lib/dokku/data/storage/blog--db
mount:
  description: The mount this module manages.
  returned: always
  type: dict
  sample: {host_path: /var/lib/dokku/data/storage/blog--db, container_path: /app/db/litestream}
app_created:
  description: Whether the app was (or in check mode would be) created.
  returned: always
  type: bool
directory_changed:
  description: Whether the directory was (or would be) created or chowned.
  returned: always
  type: bool
mount_changed:
  description: Whether the mount was (or would be) added or removed.
  returned: always
  type: bool
restarted:
  description: Whether the app was (or would be) restarted.
  returned: always
  type: bool
app_running:
  description:
    - Whether the app ran before the restart, as C(ps:report --running) says (V(true), V(false) or V(mixed)).
    - Read only when a mount changed on an existing app and O(restart) is true; a V(false) app is not restarted.
  returned: when read
  type: str
  sample: "true"
dokku_version:
  description: The Dokku version found on the host.
  returned: success
  type: str
  sample: 0.38.27
commands:
  description:
    - The dokku commands run, in order (reads included), and the C(docker info) read of the user-namespace setting.
    - A run that changes nothing runs only reads.
  returned: always
  type: list
  elements: str
  sample: ["dokku version", "dokku apps:exists blog", "dokku storage:list blog --format json",
           "docker info --format {{json .SecurityOptions}}"]
lock_wait:
  description: Seconds the task waited for another run's lock on this host (V(0) when it was free, and in check mode).
  returned: success
  type: float
  sample: 0.0
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import common_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerError, DockerRunner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.dokku import (
    DokkuError, DokkuRunner, check_storage_options, chown_argument, owner_uid, storage_argument_spec)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import (
    HostLock, LockTimeout, lock_argument_spec)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

STORAGE_ROOT = "/var/lib/dokku/data/storage"


def fmt(version):
    return ".".join(str(part) for part in version)


class StorageManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.dokku = DokkuRunner(module, module.params["dokku_binary"])
        self.app = module.params["app"]
        self.storage = module.params["storage"] or "%s--db" % self.app
        self.host_path = os.path.join(STORAGE_ROOT, self.storage)
        self.container_path = module.params["mount_path"]
        self.result = dict(changed=False, app=self.app, storage_dir=self.host_path,
                           mount=dict(host_path=self.host_path, container_path=self.container_path),
                           app_created=False, directory_changed=False, mount_changed=False, restarted=False,
                           commands=self.dokku.commands, lock_wait=0.0)

    def fail(self, msg):
        self.module.fail_json(msg=msg, **self.result)

    def validate(self):
        """Every input check, before the first dokku command (reads included)."""
        try:
            self.container_path = check_storage_options(self.params)
        except v.InvalidValue as exc:
            self.fail(str(exc))
        self.result["mount"]["container_path"] = self.container_path

    def wanted_uid(self):
        """The uid Dokku chowns the directory to (None: chown false), user-namespace offset included."""
        if self.params["chown"] == "false":
            return None
        docker = DockerRunner(self.module, self.params["docker_binary"], commands=self.dokku.commands)
        return owner_uid(self.params["chown"], docker.userns_remap())

    def write(self, args):
        """A writing dokku command: run it, or in check mode only record what would run."""
        if self.module.check_mode:
            self.dokku.commands.append("dokku " + " ".join(args) + "  # check mode: not run")
            return
        self.dokku.run(args)

    def run(self):
        self.validate()
        # from the first read to the restart: a parallel run would mount twice (Dokku refuses the second)
        with HostLock(self.module, "app-%s" % self.app, "app %s" % self.app) as lock:
            self.result["lock_wait"] = lock.waited
            self.converge()

    def converge(self):
        version = self.dokku.version
        self.result["dokku_version"] = fmt(version)
        chown_word, error = chown_argument(self.params["chown"], version)
        if error:
            self.fail(error)
        before = {"app_exists": True, "directory": self.directory_state(), "mounts": []}
        exists = self.dokku.app_exists(self.app)
        before["app_exists"] = exists
        if not exists:
            if self.params["state"] == "absent":
                self.finish(before, before)
                return
            if not self.params["create_app"]:
                self.fail("app %r does not exist on this host (dokku apps:exists exit 20); create it first or "
                          "set create_app: true" % self.app)
            self.write(["apps:create", self.app])
            self.result["app_created"] = True
        mounts = self.dokku.storage_mounts(self.app) if exists else []
        before["mounts"] = ["%s:%s" % (host, cont) for host, cont, _opts in mounts]
        after = {"app_exists": True, "directory": dict(before["directory"]), "mounts": list(before["mounts"])}
        wanted = "%s:%s" % (self.host_path, self.container_path)
        # the mount as Dokku stores it: unmount matches it exactly, so a trailing slash must be Dokku's own
        present = next(("%s:%s" % (host, cont) for host, cont, _opts in mounts
                        if host == self.host_path and cont.rstrip("/") == self.container_path.rstrip("/")), None)

        if self.params["state"] == "present":
            clash = [host for host, cont, _opts in mounts
                     if cont.rstrip("/") == self.container_path.rstrip("/") and host != self.host_path]
            if clash:
                self.fail("app %r already mounts %s at %s; unmount it first or choose another mount_path "
                          "(nothing was changed)" % (self.app, clash[0], self.container_path))
            directory = before["directory"]
            uid = self.wanted_uid()
            if not directory["exists"] or (uid is not None and directory["uid"] != uid):
                # --chown and its value as two words: the only form bash-era Dokku parses
                self.write(["storage:ensure-directory", "--chown", chown_word, self.storage])
                self.result["directory_changed"] = True
                after["directory"] = {"exists": True, "uid": uid if uid is not None else directory["uid"]}
            if not present:
                self.write(["storage:mount", self.app, wanted])
                self.result["mount_changed"] = True
                after["mounts"].append(wanted)
        elif present:
            self.write(["storage:unmount", self.app, present])
            self.result["mount_changed"] = True
            after["mounts"] = [m for m in after["mounts"] if m != present]

        if self.result["mount_changed"] and self.params["restart"] and exists:
            self.restart()
        self.finish(before, after)

    def restart(self):
        """ps:restart, only for an app that runs: it would start a stopped one (which, unmounted, crash-loops)."""
        running = self.dokku.app_running(self.app)
        self.result["app_running"] = running
        if running == "false":
            return
        self.write(["ps:restart", self.app])
        self.result["restarted"] = True

    def directory_state(self):
        try:
            st = os.stat(self.host_path)
        except OSError:
            return {"exists": False, "uid": None}
        return {"exists": True, "uid": st.st_uid}

    def finish(self, before, after):
        self.result["changed"] = any(self.result[key] for key in
                                     ("app_created", "directory_changed", "mount_changed", "restarted"))
        if self.module._diff:
            self.result["diff"] = {"before": before, "after": after}
        self.module.exit_json(**self.result)


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(lock_argument_spec())
    argument_spec.update(storage_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    manager = StorageManager(module)
    try:
        manager.run()
    except (DokkuError, DockerError, LockTimeout) as exc:
        manager.fail(str(exc))


if __name__ == "__main__":
    main()
