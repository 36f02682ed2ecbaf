#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: litestream_health
short_description: Check the Litestream replication of every app of a Dokku host, in seconds, without a restore
version_added: "0.1.0"
description:
  - One run per host checks every app of O(apps) (the host's C(litestream_apps)) and each of its databases, and
    gives each database a verdict - V(ok), V(stale), V(failing), V(missing) or V(fenced) - with the reason in words.
  - The entries are checked first as M(dokku_sqlite.litestream.litestream_host) checks them; a problem fails the
    task before anything is read. Entries with C(state) V(absent) or V(stopped) are not checked (see RV(skipped)).
  - Reads, and nothing else. One C(docker inspect) for every sidecar (running, restart policy, restart count, the
    config hash label, compared with the hash of the configuration M(dokku_sqlite.litestream.litestream_host) would
    render now). Then per app, O(parallel) apps at once, what Litestream knows - the control socket's C(list)
    (last sync per database), the local TXID (what C(litestream status) reads, without locking the database) and
    the replica's newest level-0 files (C(litestream ltx -level 0), one listing bounded by Litestream's L0
    retention of about five minutes, never the whole bucket, never a restore). Each read is bounded by
    O(timeout).
  - Run as root (as it needs to be, for the configuration), it reads on the host whatever is there - the socket
    through the sidecar process's root C(/proc/<pid>/root/var/run/litestream.sock) (links followed inside that
    root), the local TXID from the storage directory, a file replica from its directory, which the sidecar
    mounts at the same path, and an S3 replica with an C(endpoint) (path-style, keys in the credential set) with
    one signed C(ListObjectsV2) of its level-0 prefix. It runs one C(docker exec) only for the other replicas
    (sftp, GCS, Azure, AWS's own endpoints or keys from an instance role), whose C(litestream ltx) needs
    Litestream's own client and the app's credentials, sourced as the sidecar's entrypoint does. Without access
    to the process's root, one C(docker exec) per app runs all three Litestream commands.
  - Only when a database is not ok, the sidecar's log since the previous check (C(docker logs --tail 200)) is read
    for Litestream's reason (NoSuchBucket, authentication failed, access denied, replica store unreachable, sftp
    host key mismatch, sftp authentication failed). URLs in the lines keep only their scheme and host, and the
    values of the app's credential set are masked.
  - V(missing) - no sidecar, a sidecar that is not running, or a database Litestream does not replicate.
    V(failing) - the socket or a listing did not answer in time, the replica cannot be listed, Litestream stopped
    the database, or the sidecar is in a restart loop. V(stale) - the database is ahead of its replica and the
    replica's newest file is older than the app's maximum lag. A database whose replica holds its last transaction
    is V(ok) however long ago that was (an idle database writes nothing). V(fenced) - another host owns the app's
    replica (after a move or a take-over; M(dokku_sqlite.litestream.litestream_ownership)), so this host must not
    replicate it; the reason names the owner, its epoch and whether this host's sidecar still runs (on a dead
    branch).
  - The task does not fail because a database is not ok (the C(health) role and playbook decide); it fails for bad
    input or when the host cannot be read.
options:
  apps:
    description:
      - The host's C(litestream_apps) entries, as M(dokku_sqlite.litestream.litestream_host) takes them.
      - An entry's C(max_lag) key (read only here) sets that app's threshold; see O(max_lag_seconds).
    type: list
    elements: raw
    default: []
  host:
    description: This host's inventory name, for messages and the names in RV(failed_databases).
    type: str
    default: this host
  image:
    description: The Litestream image of an entry that names none (it is part of the config hash).
    type: str
    default: litestream/litestream:0.5.17
  storage_root:
    description: Dokku's storage root, as in M(dokku_sqlite.litestream.litestream_host) (part of the config hash).
    type: str
    default: /var/lib/dokku/data/storage
  config_root:
    description: Where each app's sidecar configuration lives, as in M(dokku_sqlite.litestream.litestream_host).
    type: str
    default: /var/lib/dokku/config/litestream/apps
  credentials_root:
    description: Directory of the credential sets, as in M(dokku_sqlite.litestream.litestream_host).
    type: str
    default: /var/lib/dokku/config/litestream/credentials
  parallel:
    description: How many apps are checked at once (at most one C(docker exec) each), 1 to 64.
    type: int
    default: 4
  timeout:
    description:
      - Seconds each Litestream command in a sidecar may take, 1 to 3600; one that takes longer makes its database
        V(failing).
      - Litestream's S3 client retries an unreachable endpoint for about two minutes, so a short bound is the point.
      - The whole C(docker exec) of an app is bounded on the host too, by O(timeout) times (2 + its databases) plus
        15 seconds, with the host's C(timeout) command, so a hung Docker daemon makes the app V(failing) instead of
        hanging the run.
    type: int
    default: 10
  max_lag_seconds:
    description:
      - How old the replica's newest file may be while the database is ahead of it, before the database is V(stale).
      - From 0 (no lag allowed) to 31536000 (a year); NaN and infinity are refused.
      - An entry's own C(max_lag) key (a duration such as C(90s) or C(5m), from C(0s) to C(8760h)) is used
        for that app instead.
      - Default per app - five times its replica's C(sync_interval), at least 60 seconds.
    type: float
  state_dir:
    description:
      - Directory (created root-only C(0700), with a marker file) of C(state.json) (C(0600)), which remembers per app the sidecar's
        container and restart count and the time of the check, for C(restarts_since_last_check) in RV(apps)
        and for reading the log since then. Written atomically, never in check mode.
      - An existing directory is used only when this module made it (its marker), or when it is already root-only
        C(0700) holding nothing but C(state.json) (made by an earlier release); any other is refused before the
        check runs, and never chmodded or chowned.
    type: str
    default: /var/lib/dokku/config/litestream/health
  textfile:
    description:
      - Path of a Prometheus text file (ending in C(.prom)) for node_exporter's textfile collector, written
        atomically with mode C(0644). Its directory must exist. Not written in check mode.
      - Metrics C(litestream_replica_age_seconds), C(litestream_replica_lag_transactions), C(litestream_sync_errors)
        and C(litestream_database_status) (one-hot over the four verdicts) with labels C(app) and C(database);
        C(litestream_sidecar_up), C(litestream_sidecar_restarts) and C(litestream_sidecar_config_hash_match) with
        C(app); C(litestream_health_last_check_timestamp_seconds) and C(litestream_health_check_duration_seconds).
    type: str
extends_documentation_fragment:
  - dokku_sqlite.litestream.common
attributes:
  check_mode:
    support: full
    description: Reads and judges as a real run does, but writes neither the state file nor the text file.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to compare.
  platform:
    support: full
    platforms: posix
    description: Runs on the Dokku host, as root (it reads the credential sets to render the expected configuration).
notes:
  - Requires the control socket in the sidecar's configuration (rendered by this collection's
    M(dokku_sqlite.litestream.litestream_host) and M(dokku_sqlite.litestream.litestream_replica)); a sidecar without
    it is still judged by C(status) and C(ltx), and the C(socket) of RV(apps) says V(unavailable).
  - The health check proves that the replica store answers and holds the database's last transaction. Only a
    restore drill (M(dokku_sqlite.litestream.litestream_drill)) proves that the replica restores into a sound database.
seealso:
  - module: dokku_sqlite.litestream.litestream_host
  - module: dokku_sqlite.litestream.litestream_drill
  - module: dokku_sqlite.litestream.litestream_health_report
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Check every app of the host
  dokku_sqlite.litestream.litestream_health:
    apps: "{{ litestream_apps }}"
    host: "{{ inventory_hostname }}"
    image: "{{ litestream_image | default(omit) }}"
    textfile: /var/lib/node_exporter/textfile_collector/litestream.prom
  register: health

- name: Show what is not ok
  ansible.builtin.debug:
    msg: "{{ health.results | rejectattr('status', 'equalto', 'ok') | map(attribute='message') | list }}"
"""

RETURN = r"""
apps:
  description:
    - One record per checked app - C(app), C(sidecar) (the container name), C(sidecar_state) (C(exists), C(running),
      C(status), C(restart_policy), C(policy_ok), C(restart_count), C(restarts_since_last_check), C(uptime_seconds)),
      C(config_hash) (C(expected), C(actual), C(matches)), C(socket) (V(ok), V(timeout), V(unavailable)),
      C(max_lag_seconds), C(databases), C(notes), C(log_errors) (redacted, when the log was read), C(commands),
      C(duration).
    - Each of C(databases) has C(database), C(status), C(reason), C(local_txid), C(replica_txid), C(lag_txid),
      C(replica_age_seconds), C(last_sync_at), C(last_sync_age_seconds), C(sync_errors), C(replica_type).
    - C(unlisted_databases) lists the SQLite databases of the app's storage directory (by their header, the file or
      its C(-wal) written within a day) that C(databases) does not list, each with C(database) and
      C(written_seconds_ago). Nothing replicates them, so each also gives a warning and a note, and the Prometheus
      text file counts them (C(litestream_unlisted_databases)); the verdicts of the listed databases do not change.
  returned: always
  type: list
  elements: dict
results:
  description: One flat record per database, as M(dokku_sqlite.litestream.litestream_health_report) takes them.
  returned: always
  type: list
  elements: dict
summary:
  description: Counts per verdict, C(apps), C(databases), C(duration) of the check and C(healthy).
  returned: always
  type: dict
  sample: {ok: 4, stale: 0, failing: 0, missing: 0, fenced: 0, apps: 2, databases: 4, duration: 0.8, healthy: true}
failed_databases:
  description:
    - The databases that are not ok, as C(<host>/<app>/<database>).
    - Not called C(failed), which Ansible would read as the task's own failure.
  returned: always
  type: list
  elements: str
  sample: [dokku-1/shop/production.sqlite3]
skipped:
  description: Apps not checked, with why (C(state) V(absent) or V(stopped)).
  returned: always
  type: list
  elements: str
commands:
  description: The host-level reads (the per-app ones are in RV(apps)).
  returned: always
  type: list
  elements: str
textfile:
  description: The Prometheus text file written, or V(null).
  returned: always
  type: str
"""

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import common_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import defaults, errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.health_run import HostHealth
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(
        apps=dict(type="list", elements="raw", default=[]),
        host=dict(type="str", default="this host"),
        image=dict(type="str", default=defaults.IMAGE),
        storage_root=dict(type="str", default=defaults.STORAGE_ROOT),
        config_root=dict(type="str", default=defaults.CONFIG_ROOT),
        credentials_root=dict(type="str", default=defaults.CREDENTIALS_ROOT),
        parallel=dict(type="int", default=4),
        timeout=dict(type="int", default=10),
        max_lag_seconds=dict(type="float"),
        state_dir=dict(type="str", default=defaults.HEALTH_STATE_DIR),
        textfile=dict(type="str"),
    )
    module = SecretMaskingModule(argument_spec=argument_spec, supports_check_mode=True)
    manager = HostHealth(module)
    try:
        result = manager.run()
    except (errors.CollectionError, OSError) as exc:  # a bad option, the host-level inspect, the state not written
        module.fail_json(msg=str(exc), **manager.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
