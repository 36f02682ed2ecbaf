# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One app's storage directory and mount: plan from what was read, then apply.

Shared by dokku_storage (one app, its own reads) and litestream_host (every app of the host, read in
one pass). The caller reads; this module decides and writes, and raises AppFailure instead of ending
the module, so a host-level run can go on with the other apps.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import defaults
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.dokku import chown_argument, owner_uid
# defined with the other kinds of error; importable from here as before
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.errors import AppFailure

STORAGE_ROOT = defaults.STORAGE_ROOT


def fmt(version):
    return ".".join(str(part) for part in version)


def directory_state(path):
    try:
        st = os.stat(path)
    except OSError:
        return {"exists": False, "uid": None}
    return {"exists": True, "uid": st.st_uid}


class StoragePlan:
    """Converge one app's storage. `reads` answers version, userns() and app_running(app);
    `mounts` is the app's mounts as read ([(host, container, options)]) or None when the app is missing."""

    def __init__(self, params, container_path, reads, dokku, check_mode, restart=True):
        self.params = params
        self.app = params["app"]
        self.storage = params["storage"] or "%s--db" % self.app
        self.host_path = os.path.join(STORAGE_ROOT, self.storage)
        self.container_path = container_path
        self.reads = reads
        self.dokku = dokku
        self.check_mode = check_mode
        self.restart_wanted = restart
        self.result = dict(changed=False, app=self.app, storage_dir=self.host_path,
                           mount=dict(host_path=self.host_path, container_path=self.container_path),
                           app_created=False, directory_changed=False, mount_changed=False, restarted=False,
                           commands=dokku.commands)
        self.diff = None

    def write(self, args):
        """A writing dokku command: run it, or in check mode only record what would run."""
        if self.check_mode:
            self.dokku.commands.append("dokku " + " ".join(args) + "  # check mode: not run")
            return
        self.dokku.run(args)

    def wanted_uid(self):
        """The uid Dokku chowns the directory to (None: chown false), user-namespace offset included."""
        if self.params["chown"] == "false":
            return None
        return owner_uid(self.params["chown"], self.reads.userns())

    def mount_present(self, mounts):
        """The wanted mount as Dokku stores it, or None: unmount matches it exactly, so a trailing slash must be
        Dokku's own."""
        return next(("%s:%s" % (host, cont) for host, cont, _opts in mounts or []
                     if host == self.host_path and cont.rstrip("/") == self.container_path.rstrip("/")), None)

    def converge(self, mounts, confirm=None):
        """`confirm`, when given, reads the app's mounts again (storage:list): `mounts` came from a read that
        may show a mount as missing (the all-apps report), so it alone decides only that a present mount is
        there; a missing app, a missing mount and every `absent` entry are read again."""
        if confirm is not None and (self.params["state"] == "absent" or not self.mount_present(mounts)):
            mounts = confirm()
        version = self.reads.version
        self.result["dokku_version"] = fmt(version)
        chown_word, error = chown_argument(self.params["chown"], version)
        if error:
            raise AppFailure(error)
        exists = mounts is not None
        before = {"app_exists": exists, "directory": directory_state(self.host_path), "mounts": []}
        if not exists:
            if self.params["state"] == "absent":
                return self.finish(before, before)
            if not self.params["create_app"]:
                raise AppFailure("app %r does not exist on this host (dokku storage:list exit 20); create it first or set "
                                 "create_app: true" % self.app)
            self.refuse_a_directory_another_app_mounts()
            self.write(["apps:create", self.app])
            self.result["app_created"] = True
        mounts = mounts or []
        before["mounts"] = ["%s:%s" % (host, cont) for host, cont, _opts in mounts]
        after = {"app_exists": True, "directory": dict(before["directory"]), "mounts": list(before["mounts"])}
        wanted = "%s:%s" % (self.host_path, self.container_path)
        present = self.mount_present(mounts)

        if self.params["state"] == "present":
            clash = [host for host, cont, _opts in mounts
                     if cont.rstrip("/") == self.container_path.rstrip("/") and host != self.host_path]
            if clash:
                raise AppFailure("app %r already mounts %s at %s; unmount it first or choose another mount_path "
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

        if self.result["mount_changed"] and self.restart_wanted and exists:
            self.restart()
        return self.finish(before, after)

    def refuse_a_directory_another_app_mounts(self):
        """Before an app is created: after `dokku apps:rename` (or apps:destroy and a new app) by hand, the entry's
        old name would be created again on the storage directory the renamed app still mounts, and two apps would
        write one database. storage:report, read once per run and only when an app is about to be created (in check
        mode too)."""
        wanted = self.host_path.rstrip("/")
        others = sorted(app for app, mounts in self.reads.storage_report().items()
                        if app != self.app and any(host.rstrip("/") == wanted for host, _cont, _opts in mounts or []))
        if others:
            raise AppFailure("app %r does not exist on this host, and its storage directory %s is mounted by %s (an "
                             "app renamed with apps:rename keeps its mounts): creating %r on it would make two apps "
                             "write one database. Change the entry to the app's new name (or give it another storage), "
                             "or unmount the directory from %s first; nothing was changed"
                             % (self.app, self.host_path, ", ".join(others), self.app, ", ".join(others)))

    def restart(self):
        """ps:restart, only for an app that runs: it would start a stopped one (which, unmounted, crash-loops)."""
        running = self.reads.app_running(self.app)
        self.result["app_running"] = running
        if running == "false":
            return
        self.write(["ps:restart", self.app])
        self.result["restarted"] = True

    def finish(self, before, after):
        self.result["changed"] = any(self.result[key] for key in
                                     ("app_created", "directory_changed", "mount_changed", "restarted"))
        self.diff = {"before": before, "after": after}
        return self.result
