#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: litestream_handoff
short_description: Prove that an app's replica holds its final transaction before the app moves to another host
version_added: "0.1.0"
description:
  - The old host's step of a planned move (the C(dokku_sqlite.litestream.move) playbook). It runs on the host
    that owns the app's replica (M(dokku_sqlite.litestream.litestream_ownership)).
  - It picks the app's entry from both hosts' C(litestream_apps) (listed under the old host, the new one, or both
    when the two entries are the same), and refuses a move the replica cannot carry (no replica, a type that keeps no
    ownership record), a host that does not own the replica, and a database that does not exist.
  - In check mode, with the app still running, its sidecar must run (its stop is what makes the final sync); the
    module returns the container's id (RV(sidecar_id)) and how far the replica is behind (RV(lag_txids)).
  - Otherwise the app's containers and its sidecar must have stopped. The sidecar must be the container the check
    saw (O(sidecar_id)) and must have exited 0; a killed or recreated one proves no final sync. No WAL may hold a
    committed transaction past what Litestream last read (the WALOffset, WALSize and salts in the header of the
    newest level-0 file; such a transaction shows in no TXID). Each database's final TXID, the newest level-0 file
    Litestream wrote in C(.<database>-litestream) on this host, must then be the replica's newest TXID (read by a
    dry-run restore of the lineage this host writes). Equal TXIDs are RV(final_txids), what the new host restores
    to; any other answer fails naming each database and what is missing, and nothing is changed.
  - After the new host claimed the replica for this very move (reason C(move), owner O(move_to), branching from
    O(move_from)'s epoch), a re-run reads the final TXIDs from that claim (RV(resumed)).
  - With O(after_claim), run after that claim and before the new host starts the app, it proves that nothing changed
    on this host since the handoff. No app container may run, no database may have a level-0 TXID past its final
    one, and each database and its WAL must have the size and modification time the handoff returned
    (O(fingerprints)). Otherwise it fails naming what changed, since what this host committed after the final TXIDs
    is not in the new owner's lineage. Without O(fingerprints) (a re-run after the claim) it checks only that no
    app container runs here.
  - A read-write SQLite client that opens a database this host left with a non-empty WAL (a killed app) checkpoints
    it on close; that changes the database's size or time, and O(after_claim) then refuses although no transaction
    was added. A Dokku C(run) or cron container of the app counts as the app running.
  - It never writes; the stops and the claim are the playbook's other steps.
options:
  from_apps:
    description: The old host's C(litestream_apps).
    type: list
    elements: raw
    default: []
  to_apps:
    description: The new host's C(litestream_apps).
    type: list
    elements: raw
    default: []
  image:
    description: The Litestream image of an entry that names none; the dry runs use the entry's image.
    type: str
    default: litestream/litestream:0.5.17
  storage_root:
    description: Dokku's storage root; the databases are in C(<storage_root>/<storage>/).
    type: str
    default: /var/lib/dokku/data/storage
  config_root:
    description: The collection's configuration root (the host's id, C(_host-id)).
    type: str
    default: /var/lib/dokku/config/litestream/apps
  credentials_root:
    description: Where the credential sets are.
    type: str
    default: /var/lib/dokku/config/litestream/credentials
  replica_timeout:
    description:
      - Seconds each dry run may take (the image's C(timeout)); V(0) for no limit, at most V(86400).
    type: int
    default: 120
  sidecar_id:
    description:
      - The sidecar container's id as the check (check mode) returned it in RV(sidecar_id); the stopped sidecar must
        be that container.
    type: str
  after_claim:
    description:
      - Prove, after the new host's claim, that this host changed nothing since the handoff (see the description).
    type: bool
    default: false
  fingerprints:
    description:
      - The handoff's RV(fingerprints), which O(after_claim) compares with the databases now; only with
        O(after_claim), and then one per database of the app.
    type: dict
extends_documentation_fragment:
  - dokku_sqlite.litestream.move
  - dokku_sqlite.litestream.common
  - dokku_sqlite.litestream.lock
attributes:
  check_mode:
    support: full
    description: Checks the move and reports how far the replica is behind the running app.
  diff_mode:
    support: none
    description: Nothing changes.
  platform:
    support: full
    platforms: posix
    description: Runs on the old Dokku host, as root.
seealso:
  - module: dokku_sqlite.litestream.litestream_ownership
  - module: dokku_sqlite.litestream.litestream_move_report
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Check the move while the app still runs
  dokku_sqlite.litestream.litestream_handoff:
    app: shop
    move_from: "{{ inventory_hostname }}"
    move_to: dokku-b
    from_apps: "{{ litestream_apps }}"
    to_apps: "{{ hostvars['dokku-b'].litestream_apps | default([]) }}"
  check_mode: true

- name: After dokku ps:stop and the sidecar's stop, the TXIDs the new host restores
  dokku_sqlite.litestream.litestream_handoff:
    app: shop
    move_from: "{{ inventory_hostname }}"
    move_to: dokku-b
    from_apps: "{{ litestream_apps }}"
    to_apps: "{{ hostvars['dokku-b'].litestream_apps | default([]) }}"
  register: handoff

- name: After the new host's claim, prove that this host changed nothing since the handoff
  dokku_sqlite.litestream.litestream_handoff:
    app: shop
    move_from: "{{ inventory_hostname }}"
    move_to: dokku-b
    from_apps: "{{ litestream_apps }}"
    to_apps: "{{ hostvars['dokku-b'].litestream_apps | default([]) }}"
    after_claim: true
    fingerprints: "{{ handoff.fingerprints }}"
"""

RETURN = r"""
listed_on:
  description: Where the app's entry is listed, V(move_from), V(move_to) or V(both).
  returned: success
  type: str
databases:
  description: The app's database file names.
  returned: success
  type: list
  elements: str
storage_dir:
  description: The app's storage directory on this host.
  returned: success
  type: str
ownership:
  description: The replica's owner as this host reads it (see M(dokku_sqlite.litestream.litestream_ownership)).
  returned: success
  type: dict
epoch:
  description: The epoch whose lineage holds the final transactions.
  returned: success
  type: int
read_replica:
  description: The replica fields of that lineage, what the new host restores from.
  returned: success
  type: dict
local_txids:
  description: Per database, the newest TXID Litestream wrote on this host.
  returned: unless resumed or with after_claim
  type: dict
replica_txids:
  description: Per database, the replica's newest TXID (null when it holds no backup).
  returned: unless resumed or with after_claim
  type: dict
lag_txids:
  description: Per database, the transactions the replica is behind (check mode only).
  returned: in check mode
  type: dict
final_txids:
  description: Per database, the final TXID (16 hex digits), held by both the database and the replica.
  returned: success, not in check mode unless resumed or with after_claim
  type: dict
  sample: {"production.sqlite3": "00000000000000d4"}
tables:
  description: Per database, the rows of each table on this host once the app stopped (null when they could not be counted).
  returned: success, not in check mode, not resumed and not with after_claim
  type: dict
resumed:
  description: Whether the final TXIDs were read from this move's claim in a re-run after the claim (false with O(after_claim)).
  returned: always
  type: bool
sidecar_id:
  description: The id of the running sidecar container (check mode).
  returned: in check mode, unless resumed
  type: str
sidecar_exit_code:
  description: The exit code of the stopped sidecar.
  returned: success, not in check mode, not resumed and not with after_claim
  type: int
fingerprints:
  description:
    - Per database, the size and modification time (C(size:mtime_ns)) of the database and of its WAL (null when
      empty or missing) once the app stopped, for O(after_claim).
  returned: success, not in check mode, not resumed and not with after_claim
  type: dict
  sample: {"production.sqlite3": {"database": "4096:1765190000123456789", "wal": null}}
"""

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import handoff_core
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule


def main():
    module = SecretMaskingModule(argument_spec=handoff_core.handoff_argument_spec(), supports_check_mode=True)
    handoff_core.run(module)


if __name__ == "__main__":
    main()
