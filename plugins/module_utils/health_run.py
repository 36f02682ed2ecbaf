# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_health's core: check the options and the inventory, check every sidecar (health_core) with one
host-level docker inspect, and keep the state (restart counts) and node_exporter's text file.

HostHealth.run returns the module's result or raises errors.CollectionError (the module fails with its message
and HostHealth.result).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import read_text, write_atomic
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerRunner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors, guarded, owned
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import health_core as hc
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.host_reads import HostReads
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.inventory import (
    entry_max_lag, inventory_problems, problems_message, sidecar_params)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.sidecar_core import sidecar_name

STATE_FILE = "state.json"
UNCHECKED_STATES = ("absent", "stopped")


# ---------------------------------------------------------------------- decisions (no Ansible)
def checked_paths(params):
    """(state_dir, textfile) after every check of the module's own options; raises errors.CollectionError."""
    state_dir, textfile = hc.check_health_options(params)
    problem = owned.problem(state_dir, owned.HEALTH_STATE)
    if problem:  # it is chmodded 0700 and chowned to root when written: only a directory this module made
        raise errors.UnsafePath("state_dir: refusing to use %s: %s; give a directory that does not exist yet (it is "
                                "made root-only) or one this module made" % (state_dir, problem), option="state_dir")
    if textfile and not os.path.isdir(os.path.dirname(textfile)):
        raise errors.InvalidValue("textfile: the directory %s does not exist (node_exporter's "
                                  "--collector.textfile.directory)" % os.path.dirname(textfile), option="textfile")
    return state_dir, textfile


def entries_to_check(params):
    """(the sidecar options of every entry to check, with its max_lag; the skipped entries, why)."""
    problems = inventory_problems(params["apps"], [], params["image"], {}, params["host"],
                                  storage_root=params["storage_root"])
    if problems:
        raise errors.InvalidValue(problems_message(problems, params["host"], "nothing was checked"), option="apps")
    out, skipped = [], []
    for entry in params["apps"]:
        sidecar = sidecar_params(entry, params["image"], storage_root=params["storage_root"],
                                 config_root=params["config_root"], credentials_root=params["credentials_root"])
        if sidecar["state"] in UNCHECKED_STATES:
            skipped.append("%s (state %s)" % (sidecar["app"], sidecar["state"]))
        elif sidecar["replica"] is None:
            skipped.append("%s (no replica)" % sidecar["app"])
        else:
            sidecar["max_lag"] = entry_max_lag(entry)
            out.append(sidecar)
    return out, skipped


def parse_state(text):
    """The previous check's state document: {} when there is none; None when it is no JSON."""
    try:
        state = json.loads(text) if text else {}
    except ValueError:
        return None
    return state if isinstance(state, dict) else {}


# ---------------------------------------------------------------------- the run
class HostHealth:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.docker = DockerRunner(module, self.params["docker_binary"])
        self.state_dir = self.textfile = None
        self.result = dict(changed=False, apps=[], results=[], summary={}, failed_databases=[], skipped=[],
                           commands=self.docker.commands, textfile=None)

    def previous(self):
        path = os.path.join(self.state_dir, STATE_FILE)
        state = parse_state(read_text(path))
        if state is None:
            self.module.warn("%s is not JSON: restarts are counted from this check on" % path)
            state = {}
        return state

    def check(self, sidecar, now, previous):
        """One app's check, prepared: the entry's own max_lag, else the option, else five sync intervals."""
        docker = DockerRunner(self.module, self.params["docker_binary"], commands=[])
        max_lag = sidecar.pop("max_lag")
        max_lag = self.params["max_lag_seconds"] if max_lag is None else max_lag
        check = hc.AppHealth(sidecar, docker, now, self.params["timeout"], max_lag, previous.get(sidecar["app"]))
        check.prepare(check.record["notes"].append)
        if max_lag is None:
            check.max_lag = check.record["max_lag_seconds"] = hc.default_max_lag(check.fields)
        return check

    def run(self):
        started = time.time()
        self.state_dir, self.textfile = checked_paths(self.params)
        entries, self.result["skipped"] = entries_to_check(self.params)
        previous = self.previous()
        now = time.time()
        checks = [self.check(sidecar, now, previous) for sidecar in entries]
        docs, _images = HostReads(None, self.docker).inspect([sidecar_name(s["app"]) for s in entries], [])
        records = hc.run_apps(checks, docs, self.params["parallel"])
        for record in records:  # not a failed check, but data without a replica: said where the play shows it
            for note in record["notes"]:
                if note.startswith("unlisted database: "):
                    self.module.warn("%s/%s: %s" % (self.params["host"], record["app"], note))
        duration = time.time() - started
        summary, failed = hc.summarize(self.params["host"], records, duration)
        self.result.update(apps=records, results=hc.report_results(self.params["host"], records), summary=summary,
                           failed_databases=failed)
        if not self.module.check_mode:
            self.write(records, now, duration, previous)
        return self.result

    def write(self, records, now, duration, previous):
        state = dict(previous)
        state.update(hc.state_document(records, now))
        try:
            owned.ensure(self.state_dir, owned.HEALTH_STATE)
            write_atomic(os.path.join(self.state_dir, STATE_FILE), json.dumps(state, indent=2, sort_keys=True) + "\n",
                         0o600)
            if self.textfile:
                write_atomic(self.textfile, hc.prometheus_text(records, now, duration), 0o644)
                self.result["textfile"] = self.textfile
        except (guarded.OutsideRoot, IOError, OSError) as exc:
            raise errors.CollectionError("cannot write the health state or text file: %s" % exc)
