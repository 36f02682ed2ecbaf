# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options every module that runs dokku or docker shares (module_utils/common.py).
    DOCUMENTATION = r"""
options:
  dokku_binary:
    description:
      - Name or path of the C(dokku) CLI on the managed host.
    type: str
    default: dokku
  docker_binary:
    description:
      - Name or path of the C(docker) CLI on the managed host.
    type: str
    default: docker
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    support: full
    description: Reports what would change, and the commands it would run, without changing anything.
  diff_mode:
    support: full
    description: Shows the state before and after, with every secret redacted.
  platform:
    support: full
    platforms: posix
    description: Runs on the Dokku host, as root.
"""
