# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller-side report files the drill and the health check write: JUnit XML and an atomic file write.

Shared by litestream_drill_report and litestream_health_report, so CI reads both in the same shape: one test suite,
one test case per host/app/database, a <failure> with the reason for each that is not ok. ReportKind and write() are
the whole of either report (input checks, the hosts lost, summary, lines, files): the modules and their action
plugins (plugins/plugin_utils/report_action.py) differ only in the kind they pass.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import tempfile
import time
import xml.etree.ElementTree as ET

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import defaults, errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

# Characters XML 1.0 cannot hold at all, not even escaped (most C0 controls, lone surrogates, U+FFFE/U+FFFF).
XML_INVALID_RE = re.compile(u"[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text):
    """Text a JUnit reader can parse: each character XML 1.0 forbids becomes U+FFFD."""
    return XML_INVALID_RE.sub(u"\ufffd", str(text))


def case_name(result):
    return "%s/%s/%s" % (result["host"], result["app"], result["database"])


def junit_xml(results, suite, timestamp, failure_type, human_line):
    """One <testsuite> inside <testsuites>, one <testcase> per result (status "ok" passes, any other fails);
    a passed case's <system-out> is human_line(result), a failed one's <failure> holds the result as JSON."""
    failures = len([r for r in results if r["status"] != "ok"])
    total_time = sum(float(r.get("duration") or 0) for r in results)
    root = ET.Element("testsuites", name=suite, tests=str(len(results)), failures=str(failures),
                      errors="0", time="%.3f" % total_time)
    element = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures),
                            errors="0", skipped="0", time="%.3f" % total_time, timestamp=timestamp)
    for result in results:
        case = ET.SubElement(element, "testcase", name=case_name(result), classname="%s.%s" % (suite, result["host"]),
                             time="%.3f" % float(result.get("duration") or 0))
        if result["status"] != "ok":
            failure = ET.SubElement(case, "failure", message=result.get("message") or result["status"],
                                    type=failure_type)
            failure.text = json.dumps(result, indent=2, sort_keys=True)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = human_line(result)
    for element in root.iter():
        element.attrib.update((key, xml_safe(value)) for key, value in element.attrib.items())
        if element.text is not None:
            element.text = xml_safe(element.text)
    return ET.tostring(root, encoding="unicode")


def write_file(path, content):
    """Replace path atomically with content (mode 0644)."""
    directory = os.path.dirname(path)
    handle, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def normalize_result(index, entry, keys, required, statuses):
    """One result with known keys of the right type, nulls left out; raises ValueError naming the entry."""
    where = "results[%d]" % index
    unknown = sorted(set(entry) - set(keys))
    if unknown:
        raise ValueError("%s: unknown key(s) %s; known: %s" % (where, ", ".join(unknown), ", ".join(sorted(keys))))
    result = {}
    for key, value in entry.items():
        if value is None:
            continue
        kind = keys[key]
        reason = None
        try:
            if kind is dict:
                if not isinstance(value, dict):
                    raise TypeError("not a mapping")
            elif kind is str:
                value = value if isinstance(value, str) else str(value)
            elif kind is bool:
                if not isinstance(value, bool):
                    raise TypeError("not a boolean")
            elif isinstance(value, bool):
                raise TypeError("a boolean is not a number")
            else:
                value = kind(value)
        except (TypeError, ValueError) as exc:
            # int()'s and float()'s ValueError quote the value with repr(), which no_log's masking misses: neither its
            # words nor (raised outside this block) the exception itself reach the message or the traceback
            reason = str(exc) if isinstance(exc, TypeError) else "%s() cannot read it" % kind.__name__
        if reason is not None:
            raise ValueError("%s.%s: %s is not a %s (%s)" % (where, key, v.shown(value), kind.__name__, reason))
        result[key] = value
    missing = [key for key in required if not result.get(key)]
    if missing:
        raise ValueError("%s: missing required key(s) %s" % (where, ", ".join(missing)))
    if result["status"] not in statuses:
        raise ValueError("%s.status must be one of %s, got %s" % (where, ", ".join(statuses), v.shown(result["status"])))
    result.setdefault("database", defaults.DATABASE)
    return result


def check_destination(dest, name):
    """A message for a bad dest or name, else None."""
    if not name or "/" in name or name in (".", ".."):
        return "name must be a plain file name without '/', got %r" % (name,)
    if os.path.exists(dest) and not os.path.isdir(dest):
        return "dest %s exists and is not a directory" % dest
    return None


def write_report(dest, json_path, junit_path, report, junit):
    """Both files, each replaced atomically; the directory created (0755) when missing."""
    if not os.path.isdir(dest):
        os.makedirs(dest, 0o755)
    write_file(json_path, json.dumps(report, indent=2, sort_keys=True) + "\n")
    write_file(junit_path, '<?xml version="1.0" encoding="UTF-8"?>\n' + junit + "\n")


class ReportError(errors.CollectionError):
    """Bad input or a file that cannot be written: the task fails with this message."""


class ReportKind:
    """What makes a report the drill's or the health check's.

    what: "drill" or "health" (messages, the JUnit failure type); keys/required/statuses: the result keys, their
    types and the verdicts; human_line(result); counts(results) -> summary; failed_key: the result key that lists
    the cases not ok; lost_status and lost_reason: the record of a host that never reported; default_name,
    default_suite: the options' defaults; changed_in_check_mode: what `changed` says in check mode."""

    def __init__(self, **attrs):
        self.__dict__.update(attrs)

    def argument_spec(self):
        return dict(
            results=dict(type="list", elements="dict", required=True),
            lost_hosts=dict(type="list", elements="str", default=[]),
            dest=dict(type="path", required=True),
            name=dict(type="str", default=self.default_name),
            suite=dict(type="str", default=self.default_suite),
        )

    def run_module(self):
        """The report module's whole run, where the action plugin sends it: its options, write(), one exit."""
        module = SecretMaskingModule(argument_spec=self.argument_spec(), supports_check_mode=True)
        try:
            result = write(module.params, module.check_mode, self)
        except errors.CollectionError as exc:
            module.fail_json(msg=str(exc))
        module.exit_json(**result)

    def lost(self, host):
        return dict(host=host, app="*", database="*", status=self.lost_status,
                    message="%s: the host failed or was unreachable before %s" % (host, self.lost_reason))


def check_params(params, kind):
    """The results, normalised, each lost host's record after them; raises ReportError naming what is wrong."""
    try:  # a NUL would crash the file calls, a newline would end up in file names
        v.check_line(params["dest"], "dest")
        v.check_line(params["name"], "name")
        for host in params["lost_hosts"]:
            v.check_line(host, "lost_hosts")
    except v.InvalidValue as exc:
        raise ReportError(str(exc))
    problem = check_destination(os.path.abspath(params["dest"]), params["name"])
    if problem:
        raise ReportError(problem)
    out = []
    entries = list(params["results"]) + [kind.lost(host) for host in params["lost_hosts"]]
    for index, entry in enumerate(entries):
        try:
            result = normalize_result(index, entry, kind.keys, kind.required, kind.statuses)
        except ValueError as exc:
            raise ReportError(str(exc))
        result["name"] = case_name(result)
        out.append(result)
    return out


def write(params, check_mode, kind):
    """The task's result (paths, summary, passed, the cases not ok, one line per case, those not ok first); the
    files written unless in check mode."""
    results = check_params(params, kind)
    dest = os.path.abspath(params["dest"])
    json_path = os.path.join(dest, params["name"] + ".json")
    junit_path = os.path.join(dest, params["name"] + ".xml")
    counts = kind.counts(results)
    failed = [case_name(r) for r in results if r["status"] != "ok"]
    timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lines = [kind.human_line(r) for r in results if r["status"] != "ok"]
    lines += [kind.human_line(r) for r in results if r["status"] == "ok"]
    report = dict(suite=params["suite"], generated_at=timestamp, summary=counts, passed=not failed, results=results)
    report[kind.failed_key] = failed
    if not check_mode:
        try:
            write_report(dest, json_path, junit_path, report,
                         junit_xml(results, params["suite"], timestamp, kind.what, kind.human_line))
        except (IOError, OSError) as exc:
            raise ReportError("cannot write the %s report into %s: %s" % (kind.what, dest, exc))
    result = dict(changed=kind.changed_in_check_mode or not check_mode, json_path=json_path, junit_path=junit_path,
                  summary=counts, passed=not failed, lines=lines)
    result[kind.failed_key] = failed
    return result
