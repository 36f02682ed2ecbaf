# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_health_report on the controller, in Ansible's own process (plugin_utils/report_action.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.health_report import HEALTH
from ansible_collections.dokku_sqlite.litestream.plugins.plugin_utils.report_action import ReportAction


class ActionModule(ReportAction):
    KIND = HEALTH
