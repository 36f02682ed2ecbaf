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
  - Runs where the files should be written, normally on the controller (C(delegate_to=localhost)). It never fails
    because a database is not ok; see RV(passed) and RV(failed_databases).
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
  dest:
    description: Directory the report files are written to. Created (mode C(0755)) when missing.
    type: path
    required: true
  name:
    description: Base name of the report files, without extension.
    type: str
    default: health-report
  suite:
    description: Name of the JUnit test suite.
    type: str
    default: litestream-health
attributes:
  check_mode:
    support: full
    description: Computes the summary and returns it, but writes no file and creates no directory.
  diff_mode:
    support: none
    description: The report is new on every run; there is nothing useful to compare.
  platform:
    support: full
    platforms: posix
    description: Runs wherever the report should be written, normally the controller.
notes:
  - Both files are replaced atomically, so a reader sees either the previous report or the new one.
  - A separate module rather than an option of the drill's report - the two take different result keys and verdicts,
    each documented here where a user looks for them; the JUnit and file code is shared.
seealso:
  - module: dokku_sqlite.litestream.litestream_health
  - module: dokku_sqlite.litestream.litestream_drill_report
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

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import report as rp
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

STATUSES = ("ok", "stale", "failing", "missing")
RESULT_KEYS = dict(host=str, app=str, database=str, status=str, message=str, replica_type=str,
                   replica_age_seconds=float, lag_txid=int, local_txid=int, replica_txid=int, last_sync_at=str,
                   sync_errors=int, sidecar_running=bool, restarts_since_last_check=int, config_hash_matches=bool,
                   duration=float)
REQUIRED_KEYS = ("host", "app", "status")


def human_line(result):
    name = rp.case_name(result)
    if result["status"] != "ok":
        return "%-7s %s: %s" % (result["status"].upper(), name, result.get("message") or result["status"])
    if result.get("lag_txid"):
        age = result.get("replica_age_seconds") or 0
        line = "%d transactions behind, newest replica file %.0fs old" % (result["lag_txid"], age)
    else:
        line = "replica current (txid %s)" % result.get("replica_txid", "?")
    if result.get("sidecar_running") is not None and result.get("config_hash_matches") is False:
        line += ", sidecar config differs from the inventory (run provision)"
    return "ok      %s: %s" % (name, line)


def summarize(results):
    counts = dict((status, 0) for status in STATUSES)
    for result in results:
        counts[result["status"]] += 1
    counts["total"] = len(results)
    return counts, [rp.case_name(r) for r in results if r["status"] != "ok"]


class HealthReport:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.dest = os.path.abspath(self.params["dest"])
        self.json_path = os.path.join(self.dest, self.params["name"] + ".json")
        self.junit_path = os.path.join(self.dest, self.params["name"] + ".xml")

    def results(self):
        try:  # a NUL would crash the file calls, a newline would end up in file names
            v.check_line(self.params["dest"], "dest")
            v.check_line(self.params["name"], "name")
        except v.InvalidValue as exc:
            self.module.fail_json(msg=str(exc))
        problem = rp.check_destination(self.dest, self.params["name"])
        if problem:
            self.module.fail_json(msg=problem)
        out = []
        for index, entry in enumerate(self.params["results"]):
            try:
                result = rp.normalize_result(index, entry, RESULT_KEYS, REQUIRED_KEYS, STATUSES)
            except ValueError as exc:
                self.module.fail_json(msg=str(exc))
            result["name"] = rp.case_name(result)
            out.append(result)
        return out

    def run(self):
        results = self.results()
        counts, failed = summarize(results)
        timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = [human_line(r) for r in results if r["status"] != "ok"]
        lines += [human_line(r) for r in results if r["status"] == "ok"]
        report = dict(suite=self.params["suite"], generated_at=timestamp, summary=counts, passed=not failed,
                      failed_databases=failed, results=results)
        if not self.module.check_mode:
            try:
                rp.write_report(self.dest, self.json_path, self.junit_path, report,
                                rp.junit_xml(results, self.params["suite"], timestamp, "health", human_line))
            except (IOError, OSError) as exc:
                self.module.fail_json(msg="cannot write the health report into %s: %s" % (self.dest, exc))
        self.module.exit_json(changed=not self.module.check_mode, json_path=self.json_path, junit_path=self.junit_path,
                              summary=counts, passed=not failed, failed_databases=failed, lines=lines)


def main():
    module = AnsibleModule(argument_spec=dict(
        results=dict(type="list", elements="dict", required=True),
        dest=dict(type="path", required=True),
        name=dict(type="str", default="health-report"),
        suite=dict(type="str", default="litestream-health"),
    ), supports_check_mode=True)
    HealthReport(module).run()


if __name__ == "__main__":
    main()
