#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: litestream_move_report
short_description: Report a planned move of an app between Dokku hosts (RPO, downtime, each step's time)
version_added: "0.1.0"
description:
  - The last step of the C(dokku_sqlite.litestream.move) playbook, on the controller.
  - The RPO compares the old host's final state (RV(report.databases), from
    M(dokku_sqlite.litestream.litestream_handoff)) with what the new host restored (the restore task's results). Per
    database, C(rpo_transactions) is the final TXID minus the restored TXID and C(rpo_rows) the rows by which the
    two differ, table by table; RV(report.rpo_transactions) and RV(report.rpo_rows) are the totals. The goal is 0;
    any other value fails the task after the report is written, and so does an RPO that cannot be computed (null
    - a database not restored, rows not counted) unless O(resumed). The playbook runs it once without O(dest)
    between the restore and the claim, so a move that would lose rows never takes the replica over.
  - The step times and RV(report.downtime_seconds) come from the controller's clock at the playbook's marks; the
    downtime runs from the old host's C(dokku ps:stop) to the new host's C(dokku ps:start).
  - With O(dest) the report is written there as JSON (C(move-<app>.json) unless O(name) says otherwise), replaced
    atomically; C(move-<app>.resumed.json) with O(resumed).
options:
  listed_on:
    description: Where the app's entry was listed during the move (the inventory change the report states).
    type: str
    choices: [move_from, move_to, both]
    default: move_from
  epoch:
    description: The epoch the new host claimed.
    type: int
  lineage:
    description:
      - The new lineage's path relative to the configured replica path (C(ownership.lineage) of
        M(dokku_sqlite.litestream.litestream_ownership)), in the report; a plain C(litestream restore) of the
        configured path would restore the old host's dead branch.
    type: str
  final_txids:
    description: Per database, the old host's final TXID (RV(dokku_sqlite.litestream.litestream_handoff#module:final_txids)).
    type: dict
    required: true
  final_tables:
    description: Per database, the old host's rows per table (RV(dokku_sqlite.litestream.litestream_handoff#module:tables)).
    type: dict
    default: {}
  restored:
    description:
      - The results of the restore task's loop over the databases (each with C(item), C(restored), C(position) and
        C(tables), as M(dokku_sqlite.litestream.litestream_restore) returns them).
    type: list
    elements: dict
    default: []
  marks:
    description:
      - Seconds since the epoch on the controller at each mark, by name; the steps run from one mark to the next.
      - Names are C(begin), C(checked), C(app_stopped), C(sidecar_stopped), C(handed_off), C(restored), C(claimed),
        C(sidecar_started) and C(app_started).
    type: dict
    default: {}
  resumed:
    description:
      - The move resumed after its claim (RV(dokku_sqlite.litestream.litestream_handoff#module:resumed)), so the new
        host kept the database an earlier run restored; an RPO that cannot be computed then does not fail the task.
    type: bool
    default: false
  warm:
    description:
      - The new host followed the replica before the old host stopped (M(dokku_sqlite.litestream.litestream_standby))
        and put the followed database in place, rather than restoring it after the stop; the report's C(cut_over) is
        then V(warm), otherwise V(cold).
    type: bool
    default: false
  dest:
    description: The directory the JSON report is written to (created when missing); none, no file.
    type: str
  name:
    description: The report's file name in O(dest).
    type: str
extends_documentation_fragment:
  - dokku_sqlite.litestream.move
attributes:
  check_mode:
    support: full
    description: Computes the report and writes no file.
  diff_mode:
    support: none
    description: The report is the result.
  action:
    support: full
    description: Runs on the controller in Ansible's own process when delegated to C(localhost).
  platform:
    support: full
    platforms: posix
    description: Runs where the task is delegated; the playbook delegates it to C(localhost).
seealso:
  - module: dokku_sqlite.litestream.litestream_handoff
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Report the move
  dokku_sqlite.litestream.litestream_move_report:
    app: shop
    move_from: dokku-a
    move_to: dokku-b
    epoch: 2
    final_txids: "{{ hostvars['dokku-a'].handoff.final_txids }}"
    final_tables: "{{ hostvars['dokku-a'].handoff.tables }}"
    restored: "{{ restored.results }}"
    marks: {begin: 1796676800.1, checked: 1796676801.0, app_started: 1796676815.5}
    dest: ./move-reports
  delegate_to: localhost
"""

RETURN = r"""
report:
  description: The move's report, as written to the JSON file.
  returned: always
  type: dict
  contains:
    rpo_transactions:
      description: Transactions between the old host's last commit and the restored databases (the goal is 0).
      type: int
    rpo_rows:
      description: Rows by which the restored databases differ from the old host's (the goal is 0).
      type: int
    downtime_seconds:
      description: From the old host's ps:stop to the new host's ps:start.
      type: float
    cut_over:
      description: V(warm) when a standby that followed the replica was put in place (O(warm)), V(cold) when the
        new host restored after the stop.
      type: str
    steps:
      description:
        - Seconds per step (check, stop_app, final_sync, compare, restore, claim, start_sidecar, start_app).
        - In a warm cut-over, C(restore) is the wait for the last transactions, the follower's stop and the swap.
      type: dict
    databases:
      description: Per database its final and restored TXID and its RPO.
      type: dict
    inventory:
      description: What to change in the inventory now.
      type: str
lines:
  description: The report in a few lines for the play's output.
  returned: always
  type: list
  elements: str
json_path:
  description: The JSON file written.
  returned: when O(dest) is set, not in check mode
  type: str
"""

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import move_report
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import report as rp
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule


def main():
    module = SecretMaskingModule(argument_spec=move_report.move_report_argument_spec(), supports_check_mode=True)
    try:
        result = move_report.write(module.params, module.check_mode)
    except rp.ReportError as exc:
        module.fail_json(msg=str(exc))
    if result.get("failed"):
        module.fail_json(**dict((k, val) for k, val in result.items() if k != "failed"))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
