#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: litestream_host
short_description: Converge a Dokku host's credential sets, app storage and Litestream sidecars in one run
version_added: "0.1.0"
description:
  - The whole of a host's C(litestream_apps) and C(litestream_credential_sets) in one module run, as the C(storage)
    and C(replication) roles and the C(provision) playbook run it. Per app it does exactly what
    M(dokku_sqlite.litestream.dokku_storage) and M(dokku_sqlite.litestream.litestream_replica) do, on the same code,
    and per credential set what M(dokku_sqlite.litestream.litestream_auth) does; those modules stay for ad-hoc use.
  - First every entry and set is checked as M(dokku_sqlite.litestream.litestream_validate) checks them (the same
    code); one problem fails the run before anything is read or changed.
  - Then the host is read once, the dokku reads, the C(docker inspect) and C(docker info) side by side. Dokku's
    version once; one C(dokku storage:report) for the mounts of every app (with two apps or more); one
    C(docker inspect) for every sidecar and image; C(docker info) once when an owner must be checked (user
    namespaces). A run that changes nothing runs nothing else, but for one C(storage:list) per entry the report
    leaves in doubt (below).
  - The report alone only ever decides that an app's mount is there. An app it does not show, or shows without its
    mount, and every entry with C(state=absent), is read again with C(dokku storage:list <app> --format json)
    before anything is written (Dokku's report shows a mount it cannot read as none; storage:list fails instead, and
    answers whether the app exists with exit 20). With one app, or when the report fails, storage:list is the only
    read, up to O(parallel) apps at a time.
  - Then the storage of every app is converged, then every sidecar, O(parallel) apps at a time, writing only what
    differs; results, commands and diffs are reported in the order of O(apps). A failure of one app fails that
    app, with its message, and the others go on; the task fails at the end, naming every app that failed.
    RV(apps) has the result of each, with its own C(changed), C(actions), C(commands) and diff.
  - While the storage of any app failed, no sidecar is changed (as when the C(storage) role failed before the
    C(replication) role). An entry renamed wrongly thus never sees the old sidecar of its database removed meanwhile.
  - The credential sets of O(credential_sets) are written before any app, so a sidecar whose set changed restarts in
    the same run (and C(--check) predicts it).
  - Holds the host locks of every app it converges (and the credential sets' lock) from its first read to its last
    write, so a parallel run of this or a per-app module on the same host waits instead of racing.
options:
  apps:
    description:
      - The entries of C(litestream_apps), each a mapping with the keys the roles read - C(app), C(storage),
        C(mount_path), C(chown), C(create), C(state), C(databases), C(replica), C(image), C(metrics_port),
        C(snapshot_interval), C(snapshot_retention), C(shutdown_sync_timeout), C(heartbeat_url), C(heartbeat_interval),
        C(max_lag) (read only by the health check); see the README's Inventory section.
      - C(state) V(absent) unmounts the storage and removes the sidecar and its configuration (never the data or the
        replica); V(started) (the default), V(stopped) and V(present) act as in M(dokku_sqlite.litestream.litestream_replica).
    type: list
    elements: raw
    default: []
  parts:
    description:
      - What to converge. V(credentials) - the sets; V(storage) - each app's storage directory and mount;
        V(sidecars) - each app's Litestream sidecar.
      - The C(storage) role runs V(storage), the C(replication) role V(credentials) and V(sidecars), the C(provision)
        playbook all three in one run.
    type: list
    elements: str
    choices: [credentials, storage, sidecars]
    default: [credentials, storage, sidecars]
  image:
    description: The Litestream image of an entry that names none.
    type: str
    default: litestream/litestream:0.5.17
  peers:
    description:
      - Every host's C(litestream_apps) by inventory host name, to refuse one replica location written from two
        hosts (see M(dokku_sqlite.litestream.litestream_validate)).
    type: dict
    default: {}
  host:
    description: This host's inventory name, for messages and to skip it in O(peers).
    type: str
    default: this host
  restart:
    description: Restart an app that runs (C(dokku ps:restart)) when its mount changed, as M(dokku_sqlite.litestream.dokku_storage) does.
    type: bool
    default: true
  parallel:
    description:
      - How many apps are read and converged at once, each in a thread of its own; V(1) - one app after the other.
      - The C(dokku storage:list) reads (when they run), then the storage of every app, then every sidecar, each phase up to
        O(parallel) apps at a time. Dokku runs commands of different apps concurrently (the storage plugin writes
        each app's properties and each storage entry to files of their own).
      - Results, commands and diffs stay in the order of O(apps) whatever the value; from V(1) to V(64).
    type: int
    default: 4
  first_sync_timeout:
    description:
      - After a sidecar was created, recreated or restarted, seconds to wait for Litestream's first successful sync
        (or, for a database not created yet, a listing of its replica), as
        O(dokku_sqlite.litestream.litestream_replica#module:first_sync_timeout); V(0) does not wait, at most V(3600).
      - An app whose store refuses the sidecar fails with the store's reason; the other apps of the run go on.
    type: int
    default: 30
  storage_root:
    description: Dokku's storage root, as in M(dokku_sqlite.litestream.litestream_replica).
    type: str
    default: /var/lib/dokku/data/storage
  config_root:
    description: Where each app's sidecar configuration lives, as in M(dokku_sqlite.litestream.litestream_replica).
    type: str
    default: /var/lib/dokku/config/litestream/apps
  credentials_root:
    description: Directory of the credential sets the sidecars read.
    type: str
    default: /var/lib/dokku/config/litestream/credentials
extends_documentation_fragment:
  - dokku_sqlite.litestream.credentials.credential_sets
  - dokku_sqlite.litestream.common
  - dokku_sqlite.litestream.lock
  - dokku_sqlite.litestream.common.attributes
attributes:
  check_mode:
    support: full
    description: Reads the host, writes nothing, and reports per app what a real run would do.
  diff_mode:
    support: full
    description: One diff per changed app part and credential set, secrets redacted.
  platform:
    support: full
    platforms: posix
notes:
  - Runs on the Dokku host as root, with the C(dokku) and C(docker) CLIs.
seealso:
  - module: dokku_sqlite.litestream.dokku_storage
  - module: dokku_sqlite.litestream.litestream_replica
  - module: dokku_sqlite.litestream.litestream_auth
  - module: dokku_sqlite.litestream.litestream_validate
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Credentials, storage and sidecars of every app of the host, in one run
  dokku_sqlite.litestream.litestream_host:
    apps: "{{ litestream_apps }}"
    credential_sets: "{{ litestream_credential_sets | default([]) }}"
    image: "{{ litestream_image | default(omit) }}"
    host: "{{ inventory_hostname }}"
    peers: >-
      {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
         | map(attribute='litestream_apps', default=[]))) }}

- name: Only the storage directories and mounts
  dokku_sqlite.litestream.litestream_host:
    apps: "{{ litestream_apps }}"
    parts: [storage]
"""

RETURN = r"""
apps:
  description:
    - One result per entry of O(apps), in their order - C(app), C(changed), C(failed), C(msg) (when it failed),
      C(actions), C(commands) (the writing commands of that app, and its own reads), and C(storage) and C(sidecar)
      with what M(dokku_sqlite.litestream.dokku_storage) and M(dokku_sqlite.litestream.litestream_replica) return.
  returned: always
  type: list
  elements: dict
credential_sets:
  description: One result per credential set, as M(dokku_sqlite.litestream.litestream_auth) returns it.
  returned: always
  type: list
  elements: dict
failed_apps:
  description: The apps that failed (the task fails when it is not empty).
  returned: always
  type: list
  elements: str
  sample: []
commands:
  description: The host-level reads, in order (the per-app ones are in RV(apps)).
  returned: always
  type: list
  elements: str
lock_wait:
  description: Seconds the task waited for other runs' locks on this host.
  returned: always
  type: float
  sample: 0.0
"""

import os
import time
from contextlib import ExitStack

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.auth_core import CredentialFailure, LitestreamAuth
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import common_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import auth_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerError, DockerRunner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.dokku import (
    DokkuError, DokkuRunner, check_storage_options)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import guarded
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.host_reads import HostReads, each, own_runner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.inventory import (
    inventory_problems, sidecar_params, storage_params)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import (
    HostLock, LockTimeout, lock_argument_spec)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.sidecar_core import SidecarPlan, sidecar_name
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.storage_core import AppFailure, StoragePlan
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

PARTS = ("credentials", "storage", "sidecars")
APP_ERRORS = (AppFailure, v.InvalidValue, DokkuError, DockerError, guarded.OutsideRoot, IOError, OSError)


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

    def fail(self, msg):
        self.module.fail_json(msg=msg, **self.result)

    # ------------------------------------------------------------------ input
    def entries(self):
        """[(entry, storage options, sidecar options)]: the inventory checked whole, before anything is read."""
        params = self.params
        try:
            v.check_bounds(params)  # parallel, first_sync_timeout, lock_timeout
            storage_root = v.absolute_path(params["storage_root"], "storage_root", mount=True)
        except v.InvalidValue as exc:
            self.fail(str(exc))
        problems = inventory_problems(params["apps"], params["credential_sets"], params["image"], params["peers"],
                                      params["host"], storage_root=storage_root)
        if problems:
            self.fail("%d problem%s in the inventory of %s, nothing was changed: %s" % (
                len(problems), "" if len(problems) == 1 else "s", params["host"], " | ".join(problems)))
        out = []
        for entry in params["apps"]:
            storage = storage_params(entry, restart=params["restart"])
            sidecar = sidecar_params(entry, params["image"], storage_root=params["storage_root"],
                                     config_root=params["config_root"], credentials_root=params["credentials_root"],
                                     first_sync_timeout=params["first_sync_timeout"])
            out.append((entry, storage, sidecar))
        return out

    # ------------------------------------------------------------------ run
    def run(self):
        entries = self.entries()
        if "credentials" in self.parts and self.params["credential_sets"] and os.geteuid() != 0:
            self.fail("litestream_host must run as root (become: true): the credential files are root-only")
        locks = []
        if "credentials" in self.parts and self.params["credential_sets"]:
            locks.append(("credentials", "the credential sets"))
        locks += [("app-%s" % app, "app %s" % app) for app in sorted(set(e["app"] for e, _s, _c in entries))]
        started = time.time()
        try:
            with ExitStack() as held:
                # in a fixed order, so two host runs never wait for each other crosswise
                waited = [held.enter_context(HostLock(self.module, scope, what)).waited for scope, what in locks]
                self.result["lock_wait"] = round(sum(waited), 3)
                changed_sets = self.credentials()
                self.apps(entries, changed_sets)
        except LockTimeout as exc:
            self.fail(str(exc))
        self.result["duration"] = round(time.time() - started, 3)
        self.result["changed"] = any(r["changed"] for r in self.result["apps"] + self.result["credential_sets"])
        if self.module._diff:
            self.result["diff"] = self.diffs
        if self.result["failed_apps"]:
            failures = [r for r in self.result["apps"] if r.get("failed")]
            skipped = any(r.get("sidecar_skipped") for r in self.result["apps"])
            self.fail("%d of %d apps failed on %s (%s): %s" % (
                len(failures), len(self.result["apps"]), self.params["host"],
                "the other apps' storage was converged, no sidecar was changed" if skipped
                else "the others were converged", " | ".join(r["msg"] for r in failures)))
        self.module.exit_json(**self.result)

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
                self.fail("credential set %s: %s" % (exc.name, exc))
            if outcome.get("diff"):
                self.diffs.append(outcome.pop("diff"))
            self.result["credential_sets"].append(outcome)
            if outcome["changed"]:
                changed.append(cset["name"])
        return changed

    def apps(self, entries, changed_sets):
        names = [entry["app"] for entry, _s, _c in entries]
        parallel = self.params["parallel"]
        mounts, confirmed, current, image_ids = {}, True, {}, {}
        if entries:
            images = [sidecar["image"] for _e, _s, sidecar in entries if sidecar["state"] != "absent"]
            storage_part = "storage" in self.parts
            # the host's reads side by side; docker info only when an owner will be checked
            mounts, confirmed, current, image_ids = self.reads.read_at_once(
                names, [sidecar_name(name) for name in names], images, parallel=parallel, mounts=storage_part,
                inspect="sidecars" in self.parts,
                userns=storage_part and any(s["state"] == "present" and s["chown"] != "false" for _e, s, _c in entries))
        outcomes = [dict(app=entry["app"], changed=False, failed=False, actions=[], commands=[])
                    for entry, _s, _c in entries]
        jobs = list(zip(outcomes, entries))

        def storage(job):
            outcome, (_entry, params, _sidecar) = job
            return self.app_part(outcome, self.storage, params, mounts.get(outcome["app"]), confirmed)

        def sidecar(job):
            outcome, (_entry, _storage, params) = job
            return self.app_part(outcome, self.sidecar, dict(params, changed_credentials=changed_sets),
                                 current.get(sidecar_name(outcome["app"])), image_ids.get(params["image"]))

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

    def app_part(self, outcome, converge, *args):
        """One part of one app, in a thread of its own: it touches only `outcome` and returns its diffs.
        A failure ends this app only."""
        if outcome["failed"]:
            return []
        try:
            return converge(outcome, *args)
        except APP_ERRORS as exc:
            message = str(exc)
            app = outcome["app"]
            outcome.update(failed=True, msg=message if message.startswith("app ") else "app %s: %s" % (app, message))
        return []

    def storage(self, outcome, storage, mounts, confirmed):
        app, commands = outcome["app"], outcome["commands"]
        dokku = own_runner(self.dokku, commands)
        plan = StoragePlan(storage, check_storage_options(storage), self.reads.for_app(dokku), dokku,
                           self.module.check_mode, restart=storage["restart"])
        outcome["storage"] = plan.converge(mounts, confirm=None if confirmed else lambda: dokku.storage_mounts(app))
        outcome["storage"].pop("commands", None)  # the app's commands are listed once, in order
        # the writes only: the reads (ps:report, and storage:list where the report did not show the mount) are not
        # actions, though listed in the app's commands
        outcome["actions"] += [c.split("  #")[0] for c in commands if not c.startswith(READ_COMMANDS)]
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


READ_COMMANDS = ("dokku --quiet ", "dokku storage:list ")


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(lock_argument_spec())
    set_options = auth_argument_spec()
    argument_spec.update(
        apps=dict(type="list", elements="raw", default=[]),
        credential_sets=dict(type="list", elements="dict", default=[], options=set_options),
        parts=dict(type="list", elements="str", choices=list(PARTS), default=list(PARTS)),
        image=dict(type="str", default=ls.DEFAULT_IMAGE),
        peers=dict(type="dict", default={}),
        host=dict(type="str", default="this host"),
        restart=dict(type="bool", default=True),
        parallel=dict(type="int", default=4),
        first_sync_timeout=dict(type="int", default=30),
        storage_root=dict(type="str", default="/var/lib/dokku/data/storage"),
        config_root=dict(type="str", default="/var/lib/dokku/config/litestream/apps"),
        credentials_root=dict(type="str", default="/var/lib/dokku/config/litestream/credentials"),
    )
    module = SecretMaskingModule(argument_spec=argument_spec, supports_check_mode=True)
    manager = HostConverge(module)
    try:
        manager.run()
    except (DokkuError, DockerError) as exc:  # a host-level read failed: nothing was changed after it
        manager.fail(str(exc))


if __name__ == "__main__":
    main()
