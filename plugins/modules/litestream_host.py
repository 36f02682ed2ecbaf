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

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import common_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import auth_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import defaults, errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.host_core import PARTS, HostConverge
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import lock_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(lock_argument_spec())
    argument_spec.update(
        apps=dict(type="list", elements="raw", default=[]),
        credential_sets=dict(type="list", elements="dict", default=[], options=auth_argument_spec()),
        parts=dict(type="list", elements="str", choices=list(PARTS), default=list(PARTS)),
        image=dict(type="str", default=defaults.IMAGE),
        peers=dict(type="dict", default={}),
        host=dict(type="str", default="this host"),
        restart=dict(type="bool", default=True),
        parallel=dict(type="int", default=4),
        first_sync_timeout=dict(type="int", default=30),
        storage_root=dict(type="str", default=defaults.STORAGE_ROOT),
        config_root=dict(type="str", default=defaults.CONFIG_ROOT),
        credentials_root=dict(type="str", default=defaults.CREDENTIALS_ROOT),
    )
    module = SecretMaskingModule(argument_spec=argument_spec, supports_check_mode=True)
    manager = HostConverge(module)
    try:
        result = manager.run()
    except (errors.CollectionError, OSError) as exc:  # nothing was changed after it; result says what was
        module.fail_json(msg=str(exc), **manager.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
