# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health report: litestream_health's results checked, summed up and written as JSON and JUnit XML.

One code for both ways litestream_health_report runs: its action plugin on the controller (in Ansible's own
process, no module start-up: the usual case, delegate_to localhost) and the module wherever else it is sent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import report as rp
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

STATUSES = ("ok", "stale", "failing", "missing")
RESULT_KEYS = dict(host=str, app=str, database=str, status=str, message=str, replica_type=str,
                   replica_age_seconds=float, lag_txid=int, local_txid=int, replica_txid=int, last_sync_at=str,
                   sync_errors=int, sidecar_running=bool, restarts_since_last_check=int, config_hash_matches=bool,
                   duration=float)
REQUIRED_KEYS = ("host", "app", "status")


class ReportError(Exception):
    """Bad input or a file that cannot be written: the task fails with this message."""


def argument_spec():
    return dict(
        results=dict(type="list", elements="dict", required=True),
        lost_hosts=dict(type="list", elements="str", default=[]),
        dest=dict(type="path", required=True),
        name=dict(type="str", default="health-report"),
        suite=dict(type="str", default="litestream-health"),
    )


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


def lost_result(host):
    return dict(host=host, app="*", database="*", status="failing",
                message="%s: the host failed or was unreachable before its health check finished" % host)


def check_results(params):
    """The results, normalised, the lost hosts' records after them; raises ReportError naming a bad entry."""
    try:  # a NUL would crash the file calls, a newline would end up in file names
        v.check_line(params["dest"], "dest")
        v.check_line(params["name"], "name")
        for host in params["lost_hosts"]:
            v.check_line(host, "lost_hosts")
    except v.InvalidValue as exc:
        raise ReportError(str(exc))
    problem = rp.check_destination(os.path.abspath(params["dest"]), params["name"])
    if problem:
        raise ReportError(problem)
    out = []
    entries = list(params["results"]) + [lost_result(host) for host in params["lost_hosts"]]
    for index, entry in enumerate(entries):
        try:
            result = rp.normalize_result(index, entry, RESULT_KEYS, REQUIRED_KEYS, STATUSES)
        except ValueError as exc:
            raise ReportError(str(exc))
        result["name"] = rp.case_name(result)
        out.append(result)
    return out


def write(params, check_mode):
    """The task's result: paths, summary, verdict and lines; the files written unless in check mode."""
    results = check_results(params)
    dest = os.path.abspath(params["dest"])
    json_path = os.path.join(dest, params["name"] + ".json")
    junit_path = os.path.join(dest, params["name"] + ".xml")
    counts, failed = summarize(results)
    timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lines = [human_line(r) for r in results if r["status"] != "ok"]
    lines += [human_line(r) for r in results if r["status"] == "ok"]
    report = dict(suite=params["suite"], generated_at=timestamp, summary=counts, passed=not failed,
                  failed_databases=failed, results=results)
    if not check_mode:
        try:
            rp.write_report(dest, json_path, junit_path, report,
                            rp.junit_xml(results, params["suite"], timestamp, "health", human_line))
        except (IOError, OSError) as exc:
            raise ReportError("cannot write the health report into %s: %s" % (dest, exc))
    return dict(changed=not check_mode, json_path=json_path, junit_path=junit_path, summary=counts,
                passed=not failed, failed_databases=failed, lines=lines)
