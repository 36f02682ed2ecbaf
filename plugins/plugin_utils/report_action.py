# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugins of litestream_drill_report and litestream_health_report: the report written on the
controller in Ansible's own process.

A health run should cost little more than a ping, and starting the report module on the controller (AnsiballZ, a
new Python, Ansible's imports) took about a second of it. With a local connection (delegate_to localhost, the
roles' way) the action writes the files itself with the module's code (module_utils/report.py and the report's
kind); sent anywhere else it runs the module there, so the task does the same wherever it goes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import report as rp


class ReportAction(ActionBase):
    """Subclasses set KIND, the module_utils ReportKind of their report."""

    TRANSFERS_FILES = False
    KIND = None

    def run(self, tmp=None, task_vars=None):
        result = super(ReportAction, self).run(tmp, task_vars)
        del tmp  # nothing is copied anywhere
        if getattr(self._connection, "transport", None) != "local":
            result.update(self._execute_module(module_name=self._task.action, task_vars=task_vars))
            return result
        _validation, params = self.validate_argument_spec(argument_spec=self.KIND.argument_spec())
        try:
            result.update(rp.write(params, self._task.check_mode, self.KIND))
        except rp.ReportError as exc:
            result.update(failed=True, msg=str(exc))
        return result
