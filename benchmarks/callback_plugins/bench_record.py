# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark helper callback (not shipped): records every task result to $BENCH_RECORD as JSON.

The shape follows ansible.posix.json ({"plays": [{"tasks": [{"task": {"name"}, "hosts": {host: result}}]}],
"stats": {host: {...}}}), which is not installed here. It is enabled next to the normal stdout callback.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_record
type: aggregate
short_description: record task results for the benchmarks
description: Writes every task result and the recap to the file named by BENCH_RECORD.
requirements: [BENCH_RECORD set]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.data = {"plays": [], "stats": {}}
        self.created = time.monotonic()  # the callback loads as ansible-playbook starts

    def v2_playbook_on_play_start(self, play):
        self.data["plays"].append({"play": {"name": play.get_name(), "start_s": time.monotonic() - self.created},
                                   "tasks": []})

    def v2_playbook_on_task_start(self, task, is_conditional):
        # start_s: seconds since the callback loaded; a task's cost is the next one's start minus its own
        self.data["plays"][-1]["tasks"].append({"task": {"name": task.get_name(),
                                                         "start_s": time.monotonic() - self.created}, "hosts": {}})

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _record(self, result, **extra):
        entry = dict(result._result)
        entry.update(extra)
        self.data["plays"][-1]["tasks"][-1]["hosts"][result._host.get_name()] = entry

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True, failed=True)

    def v2_playbook_on_stats(self, stats):
        self.data["end_s"] = time.monotonic() - self.created
        for host in sorted(stats.processed):
            self.data["stats"][host] = stats.summarize(host)
        path = os.environ.get("BENCH_RECORD")
        if path:
            with open(path, "w") as handle:
                json.dump(self.data, handle, default=str)
