#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: litestream_ownership
short_description: Read which Dokku host owns an app's Litestream replica, or take it over
version_added: "0.1.0"
description:
  - Each app's replica records which host owns it, in a log of claims below the replica's own path
    (C(<path>/.dokku-litestream/<app>/claims/)). A claim is created once, with a create-only write, and never
    rewritten; each claim starts an epoch. Epoch 1 replicates to the configured path itself; every later epoch to a
    path of its own, C(<path>/.dokku-litestream/<app>/epochs/<N>), so a host that lost the replica (a returning old
    host, a partitioned one) can only extend a dead branch and never writes into the owner's lineage.
  - M(dokku_sqlite.litestream.litestream_replica) and M(dokku_sqlite.litestream.litestream_host) claim epoch 1 for
    the first host that replicates an app and refuse to run the sidecar on any other host.
  - This module reads the record (RV(ownership), and RV(read_replica), the lineage to restore from). With
    O(take_over=true) on a host that is not the owner it claims the next epoch for this host, as the restore role
    does with C(restore_take_over) after losing a host; another host's concurrent claim of the same epoch fails it,
    naming the winner.
  - Records are kept on C(s3) replicas with an endpoint (path-style, keys in the credential set; the store must
    honour C(If-None-Match), which is probed before a claim), C(file) and C(sftp) (with a key). For other replicas
    RV(ownership) says C(standing=unsupported) and O(take_over) fails.
options:
  app:
    description: The Dokku app whose replica is read.
    type: str
    required: true
  replica:
    description:
      - The app's replica as its inventory entry gives it (the configured path; the module finds the lineage). A path
        inside the reserved C(.dokku-litestream) directory is refused.
    required: true
  databases:
    description: The app's database file names, recorded in a claim.
    type: list
    elements: str
    default: [production.sqlite3]
  take_over:
    description:
      - Claim the next epoch for this host unless it already owns the replica.
      - The previous owner's sidecar, if it still runs, keeps writing its own lineage, which nothing reads any more.
    type: bool
    default: false
  reason:
    description:
      - Why the claim is made, recorded in it. V(move) marks the previous lineage as ended at O(branch_txids).
    type: str
    choices: [take-over, move]
    default: take-over
  branch_txids:
    description:
      - Per database, the TXID where the previous lineage stops being history (the restored TXID), recorded in the
        claim.
    type: dict
    default: {}
  expected_epoch:
    description:
      - With O(take_over), the epoch an earlier read returned in RV(ownership). When another host has claimed a
        newer one since, nothing is claimed and the task fails naming it.
    type: int
  host:
    description: This host's inventory name, recorded in a claim and shown to other hosts.
    type: str
  config_root:
    description:
      - The collection's configuration root; it holds the host's id (C(_host-id), made once).
    type: str
    default: /var/lib/dokku/config/litestream/apps
  lineage_at:
    description:
      - An RFC 3339 time; RV(read_replica) is then the lineage that was current at that moment, for a point-in-time
        restore to before a move or a take-over. Every epoch's lineage stays readable.
      - The lineage of the newest epoch whose claim was made at or before that time; epoch 1 (the configured path)
        before every claim.
      - A time in the seconds between a claim and the new lineage's first snapshot finds no backup in that lineage;
        the previous epoch (O(lineage_epoch)) holds the state the new one started from.
      - Not with O(lineage_epoch), nor with O(take_over=true).
    type: str
  lineage_epoch:
    description:
      - The epoch whose lineage RV(read_replica) is (from V(1) to the current one), such as the old host's lineage
        after a move.
      - Not with O(lineage_at), nor with O(take_over=true).
    type: int
seealso:
  - module: dokku_sqlite.litestream.litestream_restore
  - module: dokku_sqlite.litestream.litestream_host
extends_documentation_fragment:
  - dokku_sqlite.litestream.replica
  - dokku_sqlite.litestream.credentials
attributes:
  check_mode:
    support: full
    description: Reads the record and reports the epoch a take-over would claim, without claiming.
  diff_mode:
    support: none
    description: Claims are reported in RV(ownership) and RV(claimed_epoch), not as a diff.
  platform:
    support: full
    platforms: posix
    description: Runs on the Dokku host, as root.
notes:
  - Claims hold no secret. The host id is a random number; delete C(_host-id) on a cloned machine.
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Who owns the shop's replica
  dokku_sqlite.litestream.litestream_ownership:
    app: shop
    replica:
      url: s3://backups/apps/shop
      endpoint: https://s3.example.net
      credentials: backups
  register: owner

- name: Take the replica over after losing the old host (its sidecar is fenced if it ever returns)
  dokku_sqlite.litestream.litestream_ownership:
    app: shop
    # the configured replica, as in the inventory (read_replica is for restoring, never for claiming)
    replica:
      url: s3://backups/apps/shop
      endpoint: https://s3.example.net
      credentials: backups
    take_over: true
    expected_epoch: "{{ owner.ownership.epoch }}"
    host: "{{ inventory_hostname }}"

- name: The lineage that was current before last week's move, for a point-in-time restore
  dokku_sqlite.litestream.litestream_ownership:
    app: shop
    replica:
      url: s3://backups/apps/shop
      endpoint: https://s3.example.net
      credentials: backups
    lineage_at: "2026-11-25T12:00:00Z"
  register: then

- name: Restore the shop's database as it was then, elsewhere
  dokku_sqlite.litestream.litestream_restore:
    replica: "{{ then.read_replica }}"
    database: production.sqlite3
    dest: /var/lib/dokku/data/storage/shop-then
    timestamp: "2026-11-25T12:00:00Z"
"""

RETURN = r"""
ownership:
  description:
    - C(standing) is V(owner), V(fenced) (another host owns it), V(unclaimed), V(unsupported) (with C(reason)) or
      V(unknown) (check mode before the credential set exists).
    - C(epoch), C(owner), C(since) and C(reason) of the current claim, and C(lineage), its path relative to the
      configured one (empty for epoch 1).
  returned: always
  type: dict
  sample: {"standing": "fenced", "epoch": 2, "owner": "dokku-b", "since": "2026-12-07T12:00:00Z",
           "reason": "take-over", "lineage": ".dokku-litestream/shop/epochs/2"}
fenced:
  description: Whether another host owns the replica (after a take-over, false).
  returned: always
  type: bool
read_replica:
  description:
    - The replica fields of the current lineage, before any claim of this run (what to restore from); with
      O(lineage_at) or O(lineage_epoch), of the lineage they name.
  returned: always
  type: dict
read_epoch:
  description: The epoch whose lineage RV(read_replica) is (1 for the configured path itself).
  returned: unless check mode could not read the store
  type: int
write_replica:
  description: The replica fields of the lineage this host writes after this run.
  returned: always
  type: dict
claimed_epoch:
  description: The epoch this run claimed (or in check mode would claim).
  returned: when a claim was made or predicted
  type: int
"""

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.ownership_core import (
    OwnershipRun, ownership_argument_spec)


def main():
    module = SecretMaskingModule(argument_spec=ownership_argument_spec(), supports_check_mode=True)
    try:
        result = OwnershipRun(module.params, module.check_mode).run()
    except errors.CollectionError as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:  # the host id or a file claim could not be written
        module.fail_json(msg="app %s: %s" % (module.params["app"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
