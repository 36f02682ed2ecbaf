# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # What the drill's and the health check's report modules share (module_utils/report.py): where the files go,
    # the hosts that never reported, and how the action plugin runs them.
    DOCUMENTATION = r"""
options:
  lost_hosts:
    description:
      - Hosts whose run never reported (failed or unreachable before it finished), for example
        C(ansible_play_hosts_all | difference(ansible_play_hosts)). Each becomes one record that is not ok,
        C(<host>/*/*), after the O(results).
      - A NUL or another control character is refused.
    type: list
    elements: str
    default: []
  dest:
    description:
      - Directory the report files are written to. Created (mode C(0755)) when missing.
      - A NUL or another control character (a newline, a tab) is refused.
    type: path
    required: true
attributes:
  action:
    support: full
    description:
      - An action plugin of the same name. With a local connection (C(delegate_to=localhost), as the roles run it)
        it writes the report in Ansible's own process, with the module's code and no module start-up, as the user
        who runs Ansible (C(become) does not apply there); with any other connection the module runs on that host.
  check_mode:
    support: full
    description: Computes the summary and returns it, but writes no file and creates no directory.
  diff_mode:
    support: none
    description: The report is new on every run; there is nothing useful to compare.
  platform:
    support: full
    platforms: posix
    description: Runs wherever the report should be written, normally the controller.
notes:
  - Both files are replaced atomically, so a reader sees either the previous report or the new one.
"""
