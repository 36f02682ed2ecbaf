# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What makes litestream_drill_report's report the drill's: its result keys, verdicts and lines.

The rest (checks, files, summary) is module_utils/report.py's, shared with the health report; the module and its
action plugin both write with DRILL.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import report as rp

case_name = rp.case_name

# The keys of a result and their types ("message" cannot be a suboption: Ansible reserves that name).
RESULT_KEYS = dict(host=str, app=str, database=str, status=str, message=str, integrity=str, tables=dict, rows=int,
                   live_rows=int, lag_seconds=float, duration=float, drill_host=str, replica=str, position=str,
                   position_time=str)
REQUIRED_KEYS = ("host", "app", "status")
STATUSES = ("ok", "failed")


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


def counts(results):
    failed = len([r for r in results if r["status"] != "ok"])
    return dict(total=len(results), ok=len(results) - failed, failed=failed)


DRILL = rp.ReportKind(what="drill", keys=RESULT_KEYS, required=REQUIRED_KEYS, statuses=STATUSES,
                      human_line=human_line, counts=counts, failed_key="failed_drills", lost_status="failed",
                      lost_reason="its drills finished", default_name="drill-report",
                      default_suite="litestream-drill", changed_in_check_mode=True)
