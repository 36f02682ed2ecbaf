# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_host's core: a host's credential sets, then every app's storage, then every sidecar, in one run.

The inventory is checked whole before anything is read; the host is read once (host_reads); each part of each app
is converged in a thread of its own, and a failure of one app ends that app only. HostConverge.run returns the
module's result or raises errors.CollectionError (the module fails with its message and HostConverge.result).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time
from contextlib import ExitStack

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.auth_core import CredentialFailure, LitestreamAuth
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerRunner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.dokku import DokkuRunner, check_storage_options
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.host_reads import HostReads, each, own_runner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.inventory import (
    inventory_problems, problems_message, sidecar_params, storage_params)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import HostLock
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.sidecar_core import SidecarPlan, sidecar_name
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.storage_core import StoragePlan
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

PARTS = ("credentials", "storage", "sidecars")
# the reads among an app's commands: listed with its commands, never as its actions
READ_COMMANDS = ("dokku --quiet ", "dokku storage:list ", "dokku storage:report")


# ---------------------------------------------------------------------- decisions (no Ansible)
def inventory_entries(params):
    """[(entry, storage options, sidecar options)]: the inventory checked whole, before anything is read.
    Raises InvalidValue naming every problem."""
    v.check_bounds(params)  # parallel, first_sync_timeout, lock_timeout
    storage_root = v.absolute_path(params["storage_root"], "storage_root", mount=True)
    problems = inventory_problems(params["apps"], params["credential_sets"], params["image"], params["peers"],
                                  params["host"], storage_root=storage_root)
    if problems:
        raise errors.InvalidValue(problems_message(problems, params["host"]), option="apps")
    out = []
    for entry in params["apps"]:
        storage = storage_params(entry, restart=params["restart"])
        sidecar = sidecar_params(entry, params["image"], storage_root=params["storage_root"],
                                 config_root=params["config_root"], credentials_root=params["credentials_root"],
                                 first_sync_timeout=params["first_sync_timeout"])
        out.append((entry, storage, sidecar))
    return out


def writes_credentials(parts, params):
    return "credentials" in parts and bool(params["credential_sets"])


def host_locks(parts, params, entries):
    """The (scope, description) of every lock the run holds, in a fixed order, so two host runs never wait for
    each other crosswise: the credential sets' when they are written, then each app's."""
    locks = [("credentials", "the credential sets")] if writes_credentials(parts, params) else []
    return locks + [("app-%s" % app, "app %s" % app) for app in sorted(set(e["app"] for e, _s, _c in entries))]


def app_failure_message(app, exc):
    """One app's failure: the message as it is when it names the app already, else after "app <name>: "."""
    message = str(exc)
    return message if message.startswith("app ") else "app %s: %s" % (app, message)


def failed_apps_message(outcomes, host):
    """The task's message when apps failed (None when none did)."""
    failures = [r for r in outcomes if r.get("failed")]
    if not failures:
        return None
    skipped = any(r.get("sidecar_skipped") for r in outcomes)
    return "%d of %d apps failed on %s (%s): %s" % (
        len(failures), len(outcomes), host,
        "the other apps' storage was converged, no sidecar was changed" if skipped else "the others were converged",
        " | ".join(r["msg"] for r in failures))


def storage_actions(commands):
    """The writes among an app's commands (the reads - ps:report, storage:list where the report did not show the
    mount - are listed in its commands, but are not actions)."""
    return [c.split("  #")[0] for c in commands if not c.startswith(READ_COMMANDS)]


def needs_owner_check(entries):
    """docker info (user namespaces) is read only when some app's storage owner will be checked."""
    return any(s["state"] == "present" and s["chown"] != "false" for _e, s, _c in entries)


# ---------------------------------------------------------------------- the run
class HostConverge:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.parts = set(self.params["parts"])
        self.dokku = DokkuRunner(module, self.params["dokku_binary"])
        self.docker = DockerRunner(module, self.params["docker_binary"], commands=self.dokku.commands)
        self.reads = HostReads(self.dokku, self.docker)
        self.diffs = []
        self.result = dict(changed=False, apps=[], credential_sets=[], failed_apps=[], commands=self.dokku.commands,
                           lock_wait=0.0)

    def run(self):
        """The module's result; raises errors.CollectionError (self.result then holds what was done)."""
        entries = inventory_entries(self.params)
        if writes_credentials(self.parts, self.params) and os.geteuid() != 0:
            raise errors.CollectionError(
                "litestream_host must run as root (become: true): the credential files are root-only")
        started = time.time()
        with ExitStack() as held:
            waited = [held.enter_context(HostLock(self.module, scope, what)).waited
                      for scope, what in host_locks(self.parts, self.params, entries)]
            self.result["lock_wait"] = round(sum(waited), 3)
            changed_sets = self.credentials()
            self.apps(entries, changed_sets)
        self.result["duration"] = round(time.time() - started, 3)
        self.result["changed"] = any(r["changed"] for r in self.result["apps"] + self.result["credential_sets"])
        if self.module._diff:
            self.result["diff"] = self.diffs
        message = failed_apps_message(self.result["apps"], self.params["host"])
        if message:
            raise errors.CollectionError(message)
        return self.result

    def credentials(self):
        """Write the sets first: the sidecars read them. Returns the names that changed (or would)."""
        changed = []
        if "credentials" not in self.parts:
            return changed
        for cset in self.params["credential_sets"]:
            try:
                outcome = LitestreamAuth(cset, self.module.check_mode, self.module._diff).run()
            except CredentialFailure as exc:
                self.result["credential_sets"].append(dict(changed=False, failed=True, name=exc.name, path=exc.path,
                                                           msg=str(exc)))
                raise errors.CollectionError("credential set %s: %s" % (exc.name, exc), option="credential_sets")
            if outcome.get("diff"):
                self.diffs.append(outcome.pop("diff"))
            self.result["credential_sets"].append(outcome)
            if outcome["changed"]:
                changed.append(cset["name"])
        return changed

    def read_host(self, entries):
        """The host's reads side by side: (mounts, confirmed, containers, image ids)."""
        if not entries:
            return {}, True, {}, {}
        names = [entry["app"] for entry, _s, _c in entries]
        images = [sidecar["image"] for _e, _s, sidecar in entries if sidecar["state"] != "absent"]
        storage_part = "storage" in self.parts
        return self.reads.read_at_once(
            names, [sidecar_name(name) for name in names], images, parallel=self.params["parallel"],
            mounts=storage_part, inspect="sidecars" in self.parts, userns=storage_part and needs_owner_check(entries))

    def apps(self, entries, changed_sets):
        parallel = self.params["parallel"]
        mounts, confirmed, current, image_ids = self.read_host(entries)
        outcomes = [dict(app=entry["app"], changed=False, failed=False, actions=[], commands=[])
                    for entry, _s, _c in entries]
        jobs = list(zip(outcomes, entries))

        def storage(job):
            outcome, (_entry, params, _sidecar) = job
            return self.app_part(outcome, self.storage, params, mounts.get(outcome["app"]), confirmed)

        def sidecar(job):
            outcome, (_entry, _storage, params) = job
            # in --check the storage part of this very run would make the directory: no warning that it is missing
            params = dict(params, changed_credentials=changed_sets, inventory_host=self.params["host"],
                          storage_in_run="storage" in self.parts)
            return self.app_part(outcome, self.sidecar, params, current.get(sidecar_name(outcome["app"])),
                                 image_ids.get(params["image"]))

        # each part of every app, `parallel` apps at a time; the diffs in the apps' order, as one after the other
        if "storage" in self.parts:
            for diffs in each(storage, jobs, parallel):
                self.diffs.extend(diffs)
        storage_failed = [o["app"] for o in outcomes if o["failed"]]
        if "sidecars" in self.parts and storage_failed:
            # as the roles always did: no sidecar changes while a storage directory or mount is wrong
            # (a renamed entry that cannot mount must not see its old sidecar removed meanwhile)
            for outcome in outcomes:
                outcome["sidecar_skipped"] = "the storage of %s failed" % ", ".join(storage_failed)
        elif "sidecars" in self.parts:
            for diffs in each(sidecar, jobs, parallel):
                self.diffs.extend(diffs)
        for outcome in outcomes:
            outcome["changed"] = any(outcome.get(part, {}).get("changed") for part in ("storage", "sidecar"))
            if outcome["failed"]:
                self.result["failed_apps"].append(outcome["app"])
        self.result["apps"] = outcomes

    @staticmethod
    def app_part(outcome, converge, *args):
        """One part of one app, in a thread of its own: it touches only `outcome` and returns its diffs.
        A failure ends this app only."""
        if outcome["failed"]:
            return []
        try:
            return converge(outcome, *args)
        except (errors.CollectionError, IOError, OSError) as exc:
            outcome.update(failed=True, msg=app_failure_message(outcome["app"], exc))
        return []

    def storage(self, outcome, storage, mounts, confirmed):
        app, commands = outcome["app"], outcome["commands"]
        dokku = own_runner(self.dokku, commands)
        plan = StoragePlan(storage, check_storage_options(storage), self.reads.for_app(dokku), dokku,
                           self.module.check_mode, restart=storage["restart"])
        outcome["storage"] = plan.converge(mounts, confirm=None if confirmed else lambda: dokku.storage_mounts(app))
        outcome["storage"].pop("commands", None)  # the app's commands are listed once, in order
        outcome["actions"] += storage_actions(commands)
        if self.module._diff and plan.result["changed"]:
            return [dict(plan.diff, before_header="storage of %s" % app, after_header="storage of %s" % app)]
        return []

    def sidecar(self, outcome, sidecar, container, image_id):
        docker = own_runner(self.docker, outcome["commands"])
        plan = SidecarPlan(sidecar, docker, self.module.check_mode, self.module.warn, want_diff=self.module._diff)
        rendered = plan.prepare()
        outcome["sidecar"] = plan.converge(rendered, container, image_id)
        outcome["sidecar"].pop("commands", None)
        outcome["actions"] += plan.actions
        diff = outcome["sidecar"].pop("diff", [])
        return diff if plan.result["changed"] else []
