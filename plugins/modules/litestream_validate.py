#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: litestream_validate
short_description: Check a host's whole litestream inventory before anything on it changes
version_added: "0.1.0"
description:
  - Checks every entry of O(apps) (the inventory's C(litestream_apps)) and every credential set of
    O(credential_sets) with the very checks and defaults of M(dokku_sqlite.litestream.dokku_storage),
    M(dokku_sqlite.litestream.litestream_replica) and M(dokku_sqlite.litestream.litestream_auth), and reports every
    problem at once, each with the entry's index and app name. The roles run it as their first task, so one bad
    entry changes nothing on the host, not even the storage of the good entries.
  - Also refuses what no single module can see. Two entries with the same app, two apps replicating to the same
    replica location (two writers on one replica corrupt each other's lineage), and an app whose replica location
    is also used by an app of another host in O(peers) (file replicas excepted, they are on each host's own disk).
  - Reads nothing on the host and changes nothing; it runs the same in check mode.
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
options:
  apps:
    description:
      - The entries of C(litestream_apps) as the roles read them (keys C(app), C(storage), C(mount_path), C(chown),
        C(create), C(state), C(databases), C(replica), C(image), C(metrics_port), C(snapshot_interval),
        C(snapshot_retention), C(shutdown_sync_timeout), C(heartbeat_url), C(heartbeat_interval), C(max_lag)).
    type: list
    elements: raw
    default: []
  image:
    description: The sidecar image of an entry without its own C(image) (the roles pass C(litestream_image)).
    type: str
    default: litestream/litestream:0.5.17
  peers:
    description:
      - The apps of the hosts of the play, to find a replica location used on two hosts, as a mapping of inventory
        host name to its C(litestream_apps). This host's own item is left out (O(host)); entries a peer cannot
        validate are left to that host's own run.
    type: dict
    default: {}
  host:
    description: This host's inventory name, to leave it out of O(peers) and to name it in messages.
    type: str
    default: this host
extends_documentation_fragment:
  - dokku_sqlite.litestream.credentials.credential_sets
attributes:
  check_mode:
    support: full
    description: Runs the same checks; it never changes anything in either mode.
  diff_mode:
    support: none
    description: It changes nothing, so there is nothing to compare.
  platform:
    support: full
    platforms: posix
    description: Reads nothing on the host; it runs there only because the roles run every task there.
"""

EXAMPLES = r"""
- name: Check every app and credential set of this host before the first change
  dokku_sqlite.litestream.litestream_validate:
    apps: "{{ litestream_apps | default([]) }}"
    credential_sets: "{{ litestream_credential_sets | default([]) }}"
    image: "{{ litestream_image | default(omit) }}"
    host: "{{ inventory_hostname }}"
    peers: >-
      {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
         | map(attribute='litestream_apps', default=[]))) }}
"""

RETURN = r"""
apps:
  description: How many app entries were checked.
  returned: always
  type: int
  sample: 2
credential_sets:
  description: How many credential sets were checked.
  returned: always
  type: int
  sample: 1
problems:
  description: Every problem found, one message each (empty on success; the task fails when it is not).
  returned: always
  type: list
  elements: str
  sample: ["litestream_apps[1] (notes): databases: 'production.sqlite3-wal' is the name of a SQLite -wal file"]
"""

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import auth_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import defaults
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.inventory import (
    inventory_problems, problems_message)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule


def main():
    module = SecretMaskingModule(
        argument_spec=dict(
            apps=dict(type="list", elements="raw", default=[]),
            credential_sets=dict(type="list", elements="dict", default=[], options=auth_argument_spec()),
            image=dict(type="str", default=defaults.IMAGE),
            peers=dict(type="dict", default={}),
            host=dict(type="str", default="this host"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problems = inventory_problems(params["apps"], params["credential_sets"], params["image"], params["peers"],
                                  params["host"])
    result = dict(changed=False, apps=len(params["apps"]), credential_sets=len(params["credential_sets"]),
                  problems=problems)
    if problems:
        module.fail_json(msg=problems_message(problems, params["host"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
