#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: litestream_drill_report
short_description: Write the report of a Litestream restore drill as JSON and JUnit XML
version_added: "0.1.0"
description:
  - Takes the results of a restore drill (one entry per host, app and database, as the C(restore_drill) role
    collects them) and writes two files into O(dest), C(<name>.json) and C(<name>.xml).
  - The JSON file holds every result, the summary counts and the time of the report.
  - The XML file is a JUnit report that CI systems (GitLab, Jenkins, GitHub actions that read JUnit) display
    as tests. It holds one test suite, O(suite), with one test case per result, named
    C(<host>/<app>/<database>). A failed drill is a C(<failure>) whose C(message) names the app and says why;
    the C(time) of a test case is the drill's duration.
  - Runs where the files should be written, normally on the controller (C(delegate_to=localhost)).
  - Reading the report is left to the caller. The module itself never fails because a drill failed; see
    RV(passed) and RV(failed_drills).
options:
  results:
    description:
      - The drill results, one mapping per host, app and database, with these keys.
      - C(host) (required), the inventory host the app runs on (the source of the replica).
      - C(app) (required), the Dokku app name.
      - C(database), the database file name, default C(production.sqlite3).
      - C(status) (required), V(ok) when the drill passed, V(failed) when it did not.
      - C(message), why the drill failed (it should name the app and the cause), or a note on a passed drill.
      - C(integrity), the result of the integrity check of the restored database (V(ok) when it passed).
      - C(tables), the row count per table of the restored database; C(rows), the rows in all its tables.
      - C(live_rows), the rows in all tables of the live database when the drill started, if it was read.
      - C(lag_seconds), how old the newest data of the replica was when the restore started, in seconds.
      - C(duration), the seconds the restore took (dry run, restore and verification).
      - C(drill_host), C(replica), C(position), C(position_time), as the restore reported them.
      - Other keys are refused; keys set to V(null) are left out of the report.
    type: list
    elements: dict
    required: true
  dest:
    description:
      - Directory the report files are written to. Created (mode C(0755)) when missing.
      - A NUL or another control character (a newline, a tab) is refused.
    type: path
    required: true
  name:
    description:
      - Base name of the report files, without extension.
    type: str
    default: drill-report
  suite:
    description:
      - Name of the JUnit test suite.
    type: str
    default: litestream-drill
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
seealso:
  - module: dokku_sqlite.litestream.litestream_restore
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Write the drill report on the controller
  dokku_sqlite.litestream.litestream_drill_report:
    results:
      - host: dokku-1
        app: blog
        database: production.sqlite3
        status: ok
        integrity: ok
        tables: {posts: 120, users: 3}
        rows: 123
        lag_seconds: 1.4
        duration: 2.31
      - host: dokku-1
        app: shop
        status: failed
        message: "dokku-1/shop/production.sqlite3: the replica holds no backup of production.sqlite3"
    dest: ./drill-reports
  delegate_to: localhost
  run_once: true
  register: drill_report

- name: Fail when any drill failed
  ansible.builtin.fail:
    msg: "restore drill failed for {{ drill_report.failed_drills | join(', ') }}"
  when: not drill_report.passed
"""

RETURN = r"""
json_path:
  description: The JSON report.
  returned: always
  type: str
  sample: /home/ops/drill-reports/drill-report.json
junit_path:
  description: The JUnit XML report.
  returned: always
  type: str
  sample: /home/ops/drill-reports/drill-report.xml
summary:
  description: How many drills ran, passed and failed.
  returned: always
  type: dict
  contains:
    total:
      description: Number of results.
      type: int
      sample: 4
    ok:
      description: Number of passed drills.
      type: int
      sample: 3
    failed:
      description: Number of failed drills.
      type: int
      sample: 1
passed:
  description: Whether every drill passed (true for an empty list of results).
  returned: always
  type: bool
failed_drills:
  description:
    - The failed drills, as C(<host>/<app>/<database>).
    - Not called C(failed), which Ansible would read as the task's own failure.
  returned: always
  type: list
  elements: str
  sample: [dokku-1/shop/production.sqlite3]
lines:
  description: One short human line per drill, failed ones first.
  returned: always
  type: list
  elements: str
  sample:
    - "FAILED dokku-1/shop/production.sqlite3: the replica holds no backup of production.sqlite3"
    - "ok     dokku-1/blog/production.sqlite3: 123 rows, integrity ok, lag 1.4s, restored in 2.3s"
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import report as rp
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

case_name = rp.case_name


def _number(value, fmt):
    return "?" if value is None else fmt % value


def human_line(result):
    name = case_name(result)
    if result["status"] != "ok":
        message = result.get("message") or "failed"
        if message.startswith(name + ": "):
            return "FAILED " + message
        return "FAILED %s: %s" % (name, message)
    parts = ["%s rows" % _number(result.get("rows"), "%d")]
    if result.get("live_rows") is not None:
        parts[0] += " (live %d)" % result["live_rows"]
    parts.append("integrity %s" % (result.get("integrity") or "?"))
    parts.append("lag %ss" % _number(result.get("lag_seconds"), "%.1f"))
    parts.append("restored in %ss" % _number(result.get("duration"), "%.1f"))
    line = "ok     %s: %s" % (name, ", ".join(parts))
    if result.get("message"):
        line += " (%s)" % result["message"]
    return line


def summarize(results):
    failed = [case_name(r) for r in results if r["status"] != "ok"]
    return dict(total=len(results), ok=len(results) - len(failed), failed=len(failed)), failed


def junit_xml(results, suite, timestamp):
    """One <testsuite> inside <testsuites>, one <testcase> per result (module_utils/report.py)."""
    return rp.junit_xml(results, suite, timestamp, "drill", human_line)


class DrillReport:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.dest = os.path.abspath(self.params["dest"])
        self.json_path = os.path.join(self.dest, self.params["name"] + ".json")
        self.junit_path = os.path.join(self.dest, self.params["name"] + ".xml")

    def validate(self):
        name = self.params["name"]
        try:  # a NUL would crash the file calls, a newline would end up in file names
            v.check_line(self.params["dest"], "dest")
            v.check_line(name, "name")
        except v.InvalidValue as exc:
            self.module.fail_json(msg=str(exc))
        problem = rp.check_destination(self.dest, name)
        if problem:
            self.module.fail_json(msg=problem)

    def results(self):
        out = []
        for index, entry in enumerate(self.params["results"]):
            try:
                result = normalize_result(index, entry)
            except ValueError as exc:
                self.module.fail_json(msg=str(exc))
            result["name"] = case_name(result)
            out.append(result)
        return out

    def run(self):
        self.validate()
        results = self.results()
        counts, failed = summarize(results)
        timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = [human_line(r) for r in results if r["status"] != "ok"]
        lines += [human_line(r) for r in results if r["status"] == "ok"]
        report = dict(suite=self.params["suite"], generated_at=timestamp, summary=counts, passed=not failed,
                      failed_drills=failed, results=results)
        if not self.module.check_mode:
            try:
                rp.write_report(self.dest, self.json_path, self.junit_path, report,
                                junit_xml(results, self.params["suite"], timestamp))
            except (IOError, OSError) as exc:
                self.module.fail_json(msg="cannot write the drill report into %s: %s" % (self.dest, exc))
        self.module.exit_json(changed=True, json_path=self.json_path, junit_path=self.junit_path, summary=counts,
                              passed=not failed, failed_drills=failed, lines=lines)


# The keys of a result and their types ("message" cannot be a suboption: Ansible reserves that name).
RESULT_KEYS = dict(host=str, app=str, database=str, status=str, message=str, integrity=str, tables=dict, rows=int,
                   live_rows=int, lag_seconds=float, duration=float, drill_host=str, replica=str, position=str,
                   position_time=str)
REQUIRED_KEYS = ("host", "app", "status")
STATUSES = ("ok", "failed")


def normalize_result(index, entry):
    """One result with known keys of the right type, nulls left out; raises ValueError naming the entry."""
    return rp.normalize_result(index, entry, RESULT_KEYS, REQUIRED_KEYS, STATUSES)


def argument_spec():
    return dict(
        results=dict(type="list", elements="dict", required=True),
        dest=dict(type="path", required=True),
        name=dict(type="str", default="drill-report"),
        suite=dict(type="str", default="litestream-drill"),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    DrillReport(module).run()


if __name__ == "__main__":
    main()
