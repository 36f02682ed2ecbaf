# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_health_report on the controller: the report written in Ansible's own process.

A health run should cost little more than a ping, and starting the module on the controller (AnsiballZ, a new
Python, Ansible's imports) took about a second of it. With a local connection (delegate_to localhost, the
role's way) the action writes the files itself with the module's code; sent anywhere else it runs the module
there, so the task does the same wherever it goes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import health_report as hr


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # not used: nothing is copied anywhere
        if getattr(self._connection, "transport", None) != "local":
            result.update(self._execute_module(module_name=self._task.action, task_vars=task_vars))
            return result
        _validation, params = self.validate_argument_spec(argument_spec=hr.argument_spec())
        try:
            result.update(hr.write(params, self._task.check_mode))
        except hr.ReportError as exc:
            result.update(failed=True, msg=str(exc))
        return result
