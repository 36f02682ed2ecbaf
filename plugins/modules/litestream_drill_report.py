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
  - Runs where the files should be written, normally on the controller (C(delegate_to=localhost)), where its action
    plugin writes them in Ansible's own process (see the C(action) attribute).
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
seealso:
  - module: dokku_sqlite.litestream.litestream_restore
extends_documentation_fragment:
  - dokku_sqlite.litestream.report
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

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.drill_report import DRILL


def main():
    DRILL.run_module()


if __name__ == "__main__":
    main()
