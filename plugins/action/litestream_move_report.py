# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_move_report on the controller, in Ansible's own process (as plugin_utils/report_action.py does for
the drill and health reports); sent anywhere else it runs the module there."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import move_report
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import report as rp


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # nothing is copied anywhere
        if getattr(self._connection, "transport", None) != "local":
            result.update(self._execute_module(module_name=self._task.action, task_vars=task_vars))
            return result
        _validation, params = self.validate_argument_spec(argument_spec=move_report.move_report_argument_spec())
        try:
            result.update(move_report.write(params, self._task.check_mode))
        except rp.ReportError as exc:
            result.update(failed=True, msg=str(exc))
        return result
