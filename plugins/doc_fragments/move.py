# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options every step of a move names it by (module_utils/move.py move_argument_spec): litestream_handoff and
litestream_move_report."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  app:
    description:
      - The Dokku app that moves, as the C(move_app) extra var of the C(dokku_sqlite.litestream.move) playbook names
        it.
    type: str
    required: true
  move_from:
    description: The old host's inventory name, the host that owns the app's replica before the move.
    type: str
    required: true
  move_to:
    description: The new host's inventory name, the host that owns it after the move.
    type: str
    required: true
"""
