#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: litestream_drill
short_description: Restore drill of a host's apps in one run - restore each latest replica elsewhere, verify it, judge its lag
version_added: "0.1.0"
description:
  - Drills every database of the apps of one source host (its C(litestream_apps)) that have a replica and are not
    V(absent). It restores the latest replica into a scratch directory on the host the module runs on (the drill
    host), verifies it, compares it with the live database, judges its freshness, and removes it again.
  - Each restore is what M(dokku_sqlite.litestream.litestream_restore) does, with the same code and options
    (O(verify), pinned O(image), keys in a root-only temporary directory, no secret in a command line). The
    restored file is root-owned C(0600) in C(<scratch_dir>/<host>.<random>/<app>) - each run makes a fresh directory
    of its own under O(scratch_dir) (like C(mkdtemp), C(0700) root, with a marker file), removes each app's
    directory inside it after the app, and at the end removes that run directory and nothing else. Nothing that
    was in O(scratch_dir) before the run is ever removed or changed, whatever O(scratch_dir) and O(host) are.
  - Up to O(parallel) apps are drilled at once; the databases of one app one after the other.
  - The live row counts are read on the source host right after each restore, read-only (C(mode=ro)) and in one
    read transaction per database, so the app's writer is never blocked, and the verdict says whether the live
    database moved on since what the replica held. When the drill host is another host, the drill runs there with
    O(defer_verdict=true), then the module runs on the source host with O(live_only=true) and those O(results).
  - A failing drill never fails the task. Every database gets its record in RV(results), with the reason in
    words; M(dokku_sqlite.litestream.litestream_drill_report) writes them as JSON and JUnit. Only bad input
    fails the task, before anything is read or written.
  - The credential sets of O(credential_sets) are written on the drill host first (as
    M(dokku_sqlite.litestream.litestream_auth) does; sets with C(state=absent) are left alone).
options:
  apps:
    description:
      - The source host's C(litestream_apps), checked whole first as M(dokku_sqlite.litestream.litestream_validate)
        checks them. Keys used here are C(app), C(storage), C(databases), C(replica), C(image) and C(state).
    type: list
    elements: raw
    default: []
  only:
    description: Drill only these apps; empty drills every app with a replica. A name the host does not list is skipped.
    type: list
    elements: str
    default: []
  host:
    description: The source host's inventory name. It names the records and prefixes the run's scratch directory, so it
      must be a plain name.
    type: str
    required: true
  drill_host:
    description: The inventory name of the host the restores run on, for the records. Defaults to O(host).
    type: str
  live_only:
    description:
      - Restore nothing. With O(results), read the live databases of this host (the source host) now and give each
        record its verdict; without, return the live row counts as RV(live_tables).
    type: bool
    default: false
  results:
    description: The RV(results) of a drill run with O(defer_verdict=true) on another host, for O(live_only=true).
    type: list
    elements: dict
  defer_verdict:
    description:
      - Leave the staleness verdict to a later O(live_only=true) run on the source host, which reads the live
        databases after the restores. For a drill on another host.
    type: bool
    default: false
  compare_live:
    description:
      - Read the live databases on this host after each restore, for the records' C(live_rows) and the staleness
        verdict (the drill runs on the source host).
    type: bool
    default: true
  scratch_dir:
    description:
      - Where the run's own directory is made, C(<scratch_dir>/<host>.<random>), the restores in it. Absolute, at least
        two levels deep. Made (C(0700)) when missing; an existing directory is used as it is, never changed.
      - That run directory and everything in it is removed when the run ends (one left by a killed run, by the next
        run); nothing else under O(scratch_dir) is touched.
    type: str
    default: /var/lib/dokku-litestream-drill
  storage_root:
    description: Dokku's storage root, where the live databases are (C(<storage_root>/<storage>/<database>)).
    type: str
    default: /var/lib/dokku/data/storage
  verify:
    description: What each restored database must pass, as O(dokku_sqlite.litestream.litestream_restore#module:verify).
    type: dict
    default: {}
    suboptions:
      integrity:
        description: V(quick) (C(PRAGMA quick_check)), V(full) (C(PRAGMA integrity_check)) or V(none).
        type: str
        choices: [full, quick, none]
        default: quick
      tables:
        description: Tables that must exist.
        type: list
        elements: str
        default: []
      min_rows:
        description: Minimum row count per table, each a whole number from 0 to 9223372036854775807.
        type: dict
        default: {}
  max_lag_seconds:
    description:
      - A replica whose newest data is older than this fails as stale, unless the live database still holds exactly
        what was restored (an idle database is current).
      - From 0 (no lag allowed) to 31536000 (a year); NaN and infinity are refused.
    type: float
    default: 300
  replica_timeout:
    description:
      - Seconds a replica may take to answer the dry run before its drill fails (V(0) - Litestream's own retries), at
        most 86400 (a day).
    type: int
    default: 30
  parallel:
    description: How many apps are drilled at once, 1 (one after the other) to 64.
    type: int
    default: 4
  image:
    description: The Litestream image of an entry that names none.
    type: str
    default: litestream/litestream:0.5.17
  credentials_root:
    description: Directory of the credential sets the restores read.
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
    description: Reads each replica (the dry run) and the live databases, restores nothing, writes no credential set.
  diff_mode:
    support: none
    description: A drill leaves nothing behind to compare; the credential sets' changes are in RV(credential_sets).
  platform:
    support: full
    platforms: posix
notes:
  - Runs as root on the drill host, with the C(docker) CLI.
  - The C(restore_drill) role (playbook C(dokku_sqlite.litestream.drill)) runs it for every host of a play and
    writes the report.
seealso:
  - module: dokku_sqlite.litestream.litestream_restore
  - module: dokku_sqlite.litestream.litestream_drill_report
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Drill every app of the host on the host itself, four at a time
  dokku_sqlite.litestream.litestream_drill:
    apps: "{{ litestream_apps }}"
    credential_sets: "{{ litestream_credential_sets | default([]) }}"
    host: "{{ inventory_hostname }}"
  register: drill

- name: Drill on another host, the verdict left to the app's host
  dokku_sqlite.litestream.litestream_drill:
    apps: "{{ litestream_apps }}"
    credential_sets: "{{ litestream_credential_sets | default([]) }}"
    host: "{{ inventory_hostname }}"
    drill_host: drill-1
    defer_verdict: true
    only: [shop]
    verify:
      integrity: full
      tables: [orders]
  delegate_to: drill-1
  register: elsewhere

- name: Judge each restore against the live database on the app's host, read now
  dokku_sqlite.litestream.litestream_drill:
    apps: "{{ litestream_apps }}"
    host: "{{ inventory_hostname }}"
    live_only: true
    results: "{{ elsewhere.results }}"
"""

RETURN = r"""
results:
  description:
    - One record per drilled database, in inventory order, as M(dokku_sqlite.litestream.litestream_drill_report)
      takes them - C(host), C(app), C(database), C(status) (V(ok) or V(failed)), C(message), C(integrity), C(tables),
      C(rows), C(live_rows), C(lag_seconds), C(duration), C(drill_host), C(replica), C(position), C(position_time).
  returned: unless O(live_only) without O(results)
  type: list
  elements: dict
summary:
  description: How many databases were drilled, passed and failed.
  returned: unless O(live_only) without O(results)
  type: dict
  sample: {"total": 2, "ok": 2, "failed": 0}
live_tables:
  description: The live row counts per C(<app>/<database>), or the reason they could not be read (a string).
  returned: with O(live_only) without O(results)
  type: dict
  sample: {"shop/production.sqlite3": {"orders": 150}}
credential_sets:
  description: One result per credential set written, as M(dokku_sqlite.litestream.litestream_auth) returns it.
  returned: always
  type: list
  elements: dict
duration:
  description: Seconds the module ran.
  returned: always
  type: float
"""

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import common_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import auth_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import defaults, errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.drill_run import Drill
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import lock_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_core import VERIFY_OPTIONS


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(lock_argument_spec())
    argument_spec.update(
        apps=dict(type="list", elements="raw", default=[]),
        only=dict(type="list", elements="str", default=[]),
        credential_sets=dict(type="list", elements="dict", default=[], options=auth_argument_spec()),
        host=dict(type="str", required=True),
        drill_host=dict(type="str"),
        live_only=dict(type="bool", default=False),
        compare_live=dict(type="bool", default=True),
        defer_verdict=dict(type="bool", default=False),
        results=dict(type="list", elements="dict"),
        scratch_dir=dict(type="str", default=defaults.DRILL_SCRATCH_DIR),
        storage_root=dict(type="str", default=defaults.STORAGE_ROOT),
        verify=dict(type="dict", default={}, options=VERIFY_OPTIONS),
        max_lag_seconds=dict(type="float", default=300),
        replica_timeout=dict(type="int", default=30),
        parallel=dict(type="int", default=4),
        image=dict(type="str", default=defaults.IMAGE),
        credentials_root=dict(type="str", default=defaults.CREDENTIALS_ROOT),
    )
    module = SecretMaskingModule(argument_spec=argument_spec, supports_check_mode=True)
    manager = Drill(module)
    try:
        result = manager.run()
    except (errors.CollectionError, OSError) as exc:
        module.fail_json(msg=str(exc), **manager.finish())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
