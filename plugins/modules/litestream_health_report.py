#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: litestream_health_report
short_description: Write the report of a Litestream health check as JSON and JUnit XML
version_added: "0.1.0"
description:
  - Takes the per-database results of M(dokku_sqlite.litestream.litestream_health) runs (its RV(dokku_sqlite.litestream.litestream_health#module:results),
    one list per host, flattened) and writes C(<name>.json) and C(<name>.xml) into O(dest).
  - The JUnit file has the shape of the restore drill's (M(dokku_sqlite.litestream.litestream_drill_report), the same
    code) - one test suite O(suite), one test case C(<host>/<app>/<database>) per database; a database that is not
    ok is a C(<failure>) of type C(health) whose C(message) is the reason in words.
  - Runs where the files should be written, normally on the controller (C(delegate_to=localhost)), where its action
    plugin writes them in Ansible's own process (see the C(action) attribute).
  - It never fails because a database is not ok; see RV(passed) and RV(failed_databases).
options:
  results:
    description:
      - One mapping per host, app and database with the keys M(dokku_sqlite.litestream.litestream_health) returns -
        C(host), C(app), C(status) (required; V(ok), V(stale), V(failing) or V(missing)), C(database), C(message)
        (the reason), C(replica_type), C(replica_age_seconds), C(lag_txid), C(local_txid), C(replica_txid),
        C(last_sync_at), C(sync_errors), C(sidecar_running), C(restarts_since_last_check), C(config_hash_matches),
        C(duration).
      - Other keys are refused; keys set to V(null) are left out of the report.
    type: list
    elements: dict
    required: true
  name:
    description: Base name of the report files, without extension.
    type: str
    default: health-report
  suite:
    description: Name of the JUnit test suite.
    type: str
    default: litestream-health
notes:
  - A separate module rather than an option of the drill's report - the two take different result keys and verdicts,
    each documented here where a user looks for them; the JUnit and file code is shared.
seealso:
  - module: dokku_sqlite.litestream.litestream_health
  - module: dokku_sqlite.litestream.litestream_drill_report
extends_documentation_fragment:
  - dokku_sqlite.litestream.report
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Write the health report on the controller
  dokku_sqlite.litestream.litestream_health_report:
    results:
      - host: dokku-1
        app: blog
        database: production.sqlite3
        status: ok
        replica_age_seconds: 0
        lag_txid: 0
      - host: dokku-1
        app: shop
        status: failing
        message: "listing the replica failed: the bucket does not exist (NoSuchBucket)"
    dest: ./health-reports
  delegate_to: localhost
  run_once: true
  register: health_report
"""

RETURN = r"""
json_path:
  description: The JSON report.
  returned: always
  type: str
  sample: /home/ops/health-reports/health-report.json
junit_path:
  description: The JUnit XML report.
  returned: always
  type: str
  sample: /home/ops/health-reports/health-report.xml
summary:
  description: How many databases were checked, and how many are ok, stale, failing and missing.
  returned: always
  type: dict
  sample: {total: 4, ok: 3, stale: 0, failing: 1, missing: 0}
passed:
  description: Whether every database is ok (true for an empty list of results).
  returned: always
  type: bool
failed_databases:
  description: The databases that are not ok, as C(<host>/<app>/<database>).
  returned: always
  type: list
  elements: str
  sample: [dokku-1/shop/production.sqlite3]
lines:
  description: One short human line per database, the ones not ok first.
  returned: always
  type: list
  elements: str
  sample:
    - "FAILING dokku-1/shop/production.sqlite3: listing the replica failed: the bucket does not exist (NoSuchBucket)"
    - "ok      dokku-1/blog/production.sqlite3: replica current (txid 42), last sync 1s ago"
"""

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.health_report import HEALTH


def main():
    HEALTH.run_module()


if __name__ == "__main__":
    main()
