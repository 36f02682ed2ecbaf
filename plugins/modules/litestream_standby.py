#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: litestream_standby
short_description: Follow a database's Litestream replica ahead of a move (warm standby), then put it in place
version_added: "0.1.0"
description:
  - The new host's warm standby of a planned move (the C(dokku_sqlite.litestream.move) playbook with
    C(move_warm=true)). The cut-over then waits only for the transactions since the last poll, not for a whole
    restore, so the app's downtime no longer grows with the database.
  - O(state=following) starts Litestream's follow mode (C(litestream restore -f), Litestream 0.5.9 and newer) in a
    long-lived container, C(dokku.litestream.standby.<hash of the target>), with C(--restart no). It restores the
    replica into a root-only standby directory next to O(dest) (where M(dokku_sqlite.litestream.litestream_restore)
    makes its stage), then applies each new file and writes the TXID it reached to C(<name>-txid). The module waits
    for that first restore (O(wait_timeout)). A follower already running for the same replica, image, interval and
    name is left alone; any other (stopped, or of other values) is replaced by a fresh one.
  - O(state=promoted) waits until the follower reached O(txid), stops it (it must exit 0 and stay at O(txid)), puts
    page 1 back in WAL mode (follow mode writes it in rollback-journal mode, with a random change counter), verifies
    the database (O(verify)) and puts it in place exactly as M(dokku_sqlite.litestream.litestream_restore) does with
    O(dokku_sqlite.litestream.litestream_restore#module:on_existing=replace). The old files are moved aside to
    timestamped backups and nothing is deleted. The standby is then removed.
  - Follow mode cannot stop at a TXID. Promote only when no transaction after O(txid) can reach the replica, as the
    move does once the old host's sidecar stopped and M(dokku_sqlite.litestream.litestream_handoff) proved O(txid) to
    be the replica's newest; a follower past O(txid) is refused and nothing is put in place.
  - O(state=absent) removes the follower and the standby directory; O(dest) is not touched.
  - The configuration and keys are in the standby directory (root-only, mode C(0700), files C(0600)) and reach
    Litestream as in M(dokku_sqlite.litestream.litestream_restore), never through the container's environment or a
    command line.
options:
  state:
    description:
      - V(following) starts the follower (or keeps the one running), V(promoted) puts the followed database in place at
        O(txid), V(absent) removes the standby.
    type: str
    choices: [following, promoted, absent]
    default: following
  replica:
    description:
      - The replica to follow, as in M(dokku_sqlite.litestream.litestream_restore) (the lineage the app writes now).
    type: dict
    required: true
  database:
    description: File name the database was replicated under (see M(dokku_sqlite.litestream.litestream_restore)).
    type: str
    default: production.sqlite3
  txid:
    description:
      - With O(state=promoted), the transaction to put in place, in hexadecimal (quote it in YAML). The follower must
        reach it and not go past it.
      - Refused with the other states.
    type: str
  image:
    description: The Litestream image, pinned; 0.5.9 or newer (a 0.3 image is refused, it has no follow mode).
    type: str
    default: litestream/litestream:0.5.17
  follow_interval:
    description: Seconds between two looks of the follower at the replica, from 1 to 86400.
    type: int
    default: 1
  wait_timeout:
    description:
      - Seconds to wait for the follower's first restore (V(following)) or for O(txid) (V(promoted)), from 1 to 86400.
      - A follower this run started and that fails or runs out of time is removed again.
    type: int
    default: 600
  credentials_root:
    description: Where the credential sets are.
    type: str
    default: /var/lib/dokku/config/litestream/credentials
extends_documentation_fragment:
  - dokku_sqlite.litestream.replica
  - dokku_sqlite.litestream.restore_target
  - dokku_sqlite.litestream.common
  - dokku_sqlite.litestream.lock
attributes:
  check_mode:
    support: full
    description: Reports what would start, be put in place or be removed; no container starts and nothing is written.
  diff_mode:
    support: full
    description: Whether a follower runs, and at which TXID.
  platform:
    support: full
    platforms: posix
    description: Runs on the Dokku host, as root, with the docker CLI.
notes:
  - A restarted follower cannot resume once it is past the replica's newest snapshot (Litestream refuses it), so a
    stopped follower is never started again; O(state=following) replaces it with a fresh one.
seealso:
  - module: dokku_sqlite.litestream.litestream_restore
  - module: dokku_sqlite.litestream.litestream_handoff
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Follow the replica on the new host while the app still runs on the old one
  dokku_sqlite.litestream.litestream_standby:
    replica:
      type: s3
      bucket: backups
      path: shop
      endpoint: http://127.0.0.1:9000
    database: production.sqlite3
    dest: /var/lib/dokku/data/storage/shop--db

- name: Once the old host stopped at its final TXID, put the followed database in place
  dokku_sqlite.litestream.litestream_standby:
    state: promoted
    replica:
      type: s3
      bucket: backups
      path: shop
      endpoint: http://127.0.0.1:9000
    database: production.sqlite3
    dest: /var/lib/dokku/data/storage/shop--db
    txid: "00000000000000d4"
    verify:
      integrity: quick
"""

RETURN = r"""
path:
  description: The database's path in O(dest).
  returned: after the options were checked
  type: str
replica:
  description: Where the followed replica is, as messages show it.
  returned: after the options were checked
  type: str
container:
  description: The follower container's name.
  returned: after the options were checked
  type: str
standby_dir:
  description: The root-only directory the follower writes into.
  returned: when there is one
  type: str
following:
  description: Whether the follower runs when the module ends.
  returned: always
  type: bool
txid:
  description: The TXID the follower reached (16 hex digits), null before its first restore ended.
  returned: always
  type: str
restored:
  description: Whether the followed database was put in place (V(promoted)).
  returned: always
  type: bool
position:
  description: The TXID put in place (V(promoted)), as M(dokku_sqlite.litestream.litestream_restore) reports it.
  returned: when promoted
  type: str
tables:
  description: Per table of the database put in place, its rows.
  returned: when promoted
  type: dict
integrity:
  description: What SQLite's check said of the database put in place.
  returned: when promoted, unless verify.integrity is none
  type: str
journal_mode_fixed:
  description: Whether page 1 had to be put back in WAL mode.
  returned: when promoted
  type: bool
size:
  description: The size in bytes of the database put in place.
  returned: when promoted
  type: int
backup:
  description: The paths the old files were moved aside to.
  returned: always
  type: list
  elements: str
actions:
  description: What was done (or, in check mode, would be).
  returned: always
  type: list
  elements: str
commands:
  description: The docker commands run.
  returned: always
  type: list
  elements: str
lock_wait:
  description: Seconds spent waiting for the target's lock.
  returned: always
  type: float
duration:
  description: Seconds the module ran.
  returned: always
  type: float
"""

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import standby_core
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule


def main():
    module = SecretMaskingModule(argument_spec=standby_core.standby_argument_spec(), supports_check_mode=True,
                                 mutually_exclusive=standby_core.MUTUALLY_EXCLUSIVE,
                                 required_if=standby_core.REQUIRED_IF)
    try:
        result = standby_core.Standby(module).execute()
    except errors.CollectionError as exc:  # a StandbyFailed carries the result of what ran before it failed
        module.fail_json(msg=str(exc), **getattr(exc, "result", {}))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
