# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller-side report files the drill and the health check write: JUnit XML and an atomic file write.

Shared by litestream_drill_report and litestream_health_report, so CI reads both in the same shape: one test suite,
one test case per host/app/database, a <failure> with the reason for each that is not ok.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET

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
            raise ValueError("%s.%s: %r is not a %s (%s)" % (where, key, value, kind.__name__, exc))
        result[key] = value
    missing = [key for key in required if not result.get(key)]
    if missing:
        raise ValueError("%s: missing required key(s) %s" % (where, ", ".join(missing)))
    if result["status"] not in statuses:
        raise ValueError("%s.status must be one of %s, got %r" % (where, ", ".join(statuses), result["status"]))
    result.setdefault("database", "production.sqlite3")
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
