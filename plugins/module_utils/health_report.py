# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What makes litestream_health_report's report the health check's: its result keys, verdicts and lines.

The rest (checks, files, summary) is module_utils/report.py's, shared with the drill's report; the module and its
action plugin both write with HEALTH.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import report as rp

# the verdicts, one place for the check (health_core) and the report; fenced: another host owns the replica
STATUSES = ("ok", "stale", "failing", "missing", "fenced")
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


def counts(results):
    found = dict((status, 0) for status in STATUSES)
    for result in results:
        found[result["status"]] += 1
    found["total"] = len(results)
    return found


HEALTH = rp.ReportKind(what="health", keys=RESULT_KEYS, required=REQUIRED_KEYS, statuses=STATUSES,
                       human_line=human_line, counts=counts, failed_key="failed_databases", lost_status="failing",
                       lost_reason="its health check finished", default_name="health-report",
                       default_suite="litestream-health", changed_in_check_mode=False)
