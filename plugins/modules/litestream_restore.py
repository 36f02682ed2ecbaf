#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: litestream_restore
short_description: Restore a SQLite database from its Litestream replica, verified, without clobbering
version_added: "0.1.0"
description:
  - Restores the replica of one database (as M(dokku_sqlite.litestream.litestream_replica) writes it, under
    C(<replica.path>/<database>)) into a directory on the Dokku host, latest or at a point in time.
  - Litestream runs in the pinned image through the docker CLI, in a throw-away C(--rm) container. Its
    configuration and keys go into a temporary root-only directory that is removed afterwards (an sftp key
    or a gs service account's key as a copy of the credential set's C(ssh_key) or C(gcp-service-account.json));
    S3 and Azure keys, and the C(GOOGLE_APPLICATION_CREDENTIALS) path, reach Litestream's own process through a
    sourced C(credentials.env), never the container's environment or a command line. The container never gets
    C(AWS_CA_BUNDLE), which breaks every Litestream 0.5 S3 client.
  - A dry run (C(litestream restore -dry-run)) comes first. It finds out whether the replica exists and which
    transaction the restore will reach; the restore then runs with C(-txid) of that transaction, so it restores
    exactly what the dry run planned and RV(position) reports, also when the replica moves on meanwhile.
  - The dry run and the restore share one container, and the restore starts only after a dry run that found the
    plan. The restore stage (a root-only directory next to O(dest), and O(dest) itself when missing) is made before,
    for the mount, and removed again when the dry run fails or finds no backup. In check mode and with
    O(if_replica_exists=true), the dry run runs in a container of its own before anything is written on the host,
    and the restore in a second one; so does C(litestream generations) with a Litestream 0.3 O(image).
  - The restore goes into a temporary file in the stage, on the target's filesystem, which is then verified
    read-only with Python's sqlite3 (integrity check, required tables, minimum row counts). Only a verified file
    is chowned, chmodded and renamed into place, atomically. A failure removes the temporary file and leaves the
    target as it was.
  - An existing database is never overwritten and nothing is ever deleted. See O(on_existing).
options:
  replica:
    description:
      - Where the database was replicated to. The same fields, validated the same way, as
        O(dokku_sqlite.litestream.litestream_replica#module:replica); the Litestream 0.3 options are refused with a
        reason.
      - The replica of the database is read from C(<path>/<database>), or from C(<path>) itself with
        O(replica.location=path).
    type: dict
    required: true
  database:
    description:
      - File name the database was replicated under, a plain name (no C(/), C(..), control characters or leading
        C(.)), at most 200 bytes.
      - A name ending in C(-wal), C(-shm) or C(-journal) is refused, since that is a SQLite side file, not a database.
    type: str
    default: production.sqlite3
  timestamp:
    description:
      - Restore the database as it was at this time, an RFC 3339 time such as C(2026-11-25T12:00:00Z) or
        C(2026-11-25T13:00:00+01:00).
      - The dry run turns it into the newest transaction at or before that time; the restore itself then runs
        with C(-txid), which sidesteps the C(-timestamp) restore bugs of some Litestream 0.5 releases.
      - Mutually exclusive with O(txid).
    type: str
  txid:
    description:
      - Restore up to and including this transaction id, in hexadecimal (C(0000000000000002), C(2) or C(0x2)).
      - Quote it in YAML, or a value with leading zeros is read as an octal number.
      - Mutually exclusive with O(timestamp).
    type: str
  if_replica_exists:
    description:
      - When the replica holds no backup of the database at all, succeed without a change and write nothing
        (not even O(dest)).
      - A replica that exists but holds nothing at or before O(timestamp) or O(txid) still fails, and so do
        access errors (a missing bucket, wrong keys).
    type: bool
    default: false
  on_existing:
    description:
      - What to do when O(dest)/O(name), its C(-wal), C(-shm) or C(-journal) file, or Litestream's
        C(.<name>-litestream) state directory already exists.
      - V(fail) stops with an error that names the path; nothing is written.
      - V(skip) leaves everything as it is and reports no change (no replica is read).
      - V(replace) restores and verifies first, then moves every one of those files aside to
        C(<name>.<UTC time>.bak) (C(<name>.<UTC time>.bak-wal), C(-shm), C(-journal),
        C(.<name>.<UTC time>.bak-litestream)), so the backup is itself a consistent database. The new file
        takes the old one's place atomically. Nothing is deleted.
    type: str
    choices: [fail, skip, replace]
    default: fail
  image:
    description:
      - The Litestream image, pinned. Use the version that wrote the replica or a newer one, never older.
      - An image whose tag names a Litestream before 0.5 (C(litestream/litestream:0.3.13)) reads the C(generations/)
        layout of Litestream 0.3 with 0.3's own commands - C(litestream generations) instead of the dry run, then
        C(litestream restore), at a O(timestamp) or the latest. Only s3 and file replicas, no O(txid) (0.3 has no
        transaction ids); RV(position) is then the generation restored. Litestream 0.3's checks of a timestamp are
        to the second.
    type: str
    default: litestream/litestream:0.5.17
  dry_run_timeout:
    description:
      - Seconds the dry run, which reads the replica's file list before anything is restored, may take; V(0)
        waits as long as Litestream does; at most 86400 (a day). In one container with the restore, the limit
        applies to the dry run only.
      - Litestream's S3 client retries an unreachable endpoint for about two minutes before it gives up; with a
        limit, an unreachable replica fails after this long, with a message that says so.
      - Needs C(timeout) in the image (the official Debian and Alpine images have it); without it, no limit applies.
    type: int
    default: 0
    version_added: "0.1.0"
extends_documentation_fragment:
  - dokku_sqlite.litestream.replica
  - dokku_sqlite.litestream.restore_target
  - dokku_sqlite.litestream.common
  - dokku_sqlite.litestream.credentials
  - dokku_sqlite.litestream.lock
  - dokku_sqlite.litestream.common.attributes
notes:
  - Runs on the Dokku host as root, with the docker CLI; Python's sqlite3 module verifies the result on the host.
  - To restore into the directory of a running app, stop the app and its replication sidecar first (the
    C(restore) role does), then start them again. Restoring under a live writer mixes two databases.
  - With O(on_existing=fail) a second run fails by design. Use V(skip) for a play that must be idempotent.
  - When Litestream fails for a known reason its own words do not name (a replica written by a newer
    Litestream than O(image); C(AWS_CA_BUNDLE) set inside the image), the message adds the likely cause.
  - A SIGTERM, SIGHUP or SIGINT during the run removes the temporary configuration directory (with the keys)
    and the restore stage, then fails the task.
  - In check mode the dry run still runs (it only reads the replica); nothing is written on the host except
    the temporary configuration directory, which is removed.
seealso:
  - module: dokku_sqlite.litestream.litestream_replica
  - module: dokku_sqlite.litestream.litestream_auth
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Restore the blog's latest replica into a new storage directory
  dokku_sqlite.litestream.litestream_restore:
    replica:
      type: s3
      bucket: backups
      path: blog
      endpoint: https://s3.eu-central-003.backblazeb2.com
      region: eu-central-003
      credentials: b2
    database: production.sqlite3
    dest: /var/lib/dokku/data/storage/blog-copy--db
    verify:
      tables: [posts, users]
      min_rows: {users: 1}

- name: Bring the live database back to how it was before the bad deploy (old files kept as a backup)
  dokku_sqlite.litestream.litestream_restore:
    replica: "{{ blog_replica }}"
    dest: /var/lib/dokku/data/storage/blog--db
    timestamp: "2026-11-25T09:59:00Z"
    on_existing: replace

- name: First boot of a new host - restore when there is something to restore, never twice
  dokku_sqlite.litestream.litestream_restore:
    replica: "{{ blog_replica }}"
    dest: /var/lib/dokku/data/storage/blog--db
    if_replica_exists: true
    on_existing: skip

- name: Restore exactly up to a transaction, into a scratch directory owned by root
  dokku_sqlite.litestream.litestream_restore:
    replica:
      type: file
      path: /srv/replicas/blog
    dest: /srv/scratch/blog
    name: blog-at-2a.sqlite3
    txid: "000000000000002a"
    owner: 0
    group: 0
    mode: "0600"
"""

RETURN = r"""
restored:
  description: Whether a database was restored (false for O(on_existing=skip), a missing replica, or check mode).
  returned: always
  type: bool
replica_missing:
  description:
    - V(true) when the task failed because the replica holds no backup of the database (and O(if_replica_exists)
      is false), so a caller such as the restore drill can say so in its own terms.
  returned: on that failure
  type: bool
  sample: true
path:
  description: The database file, O(dest)/O(name).
  returned: always
  type: str
  sample: /var/lib/dokku/data/storage/blog--db/production.sqlite3
replica:
  description: Where the database was restored from (no secrets).
  returned: always
  type: str
  sample: s3://backups/blog/production.sqlite3 (endpoint https://s3.eu-central-003.backblazeb2.com)
size:
  description: Size of the restored file in bytes.
  returned: when restored
  type: int
  sample: 73728
tables:
  description:
    - Row count of every table in the restored file. Tables named C(sqlite_*) and C(_litestream_*) are left out.
    - V(null) for a table that cannot be counted, such as a virtual table whose module is missing.
  returned: when restored, and on a verification failure
  type: dict
  sample: {posts: 120, users: 3}
integrity:
  description: V(ok), V(not checked) (O(verify.integrity=none)), or the messages of the failed check.
  returned: when restored, and on a verification failure
  type: str
  sample: ok
position:
  description:
    - The transaction id the database was restored to (16 hex digits). In check mode, the one it would be.
    - With a Litestream 0.3 O(image), the generation restored from (16 hex digits).
  returned: when the replica exists
  type: str
  sample: "0000000000000042"
position_time:
  description:
    - The time Litestream records for the newest replica file the restore plan uses (UTC, RFC 3339),
      close to the time of the last transaction restored. Useful to judge how fresh a replica is.
    - With a Litestream 0.3 O(image), the end of the generation's time range (whole seconds), or O(timestamp).
  returned: when the replica exists
  type: str
  sample: "2026-11-25T12:00:01Z"
position_age:
  description:
    - Seconds between RV(position_time) and the moment the replica was read (the dry run's end), on the
      host's clock, so how far the replica was behind, assuming the clocks of the writing host, the replica
      store and this host agree. A restore drill reports it as lag.
  returned: when the replica exists
  type: float
  sample: 1.4
duration:
  description: Seconds the task took, dry run, restore and verification included.
  returned: always
  type: float
  sample: 1.82
backup:
  description: The files moved aside by O(on_existing=replace), as their new paths. In check mode, the planned ones.
  returned: always
  type: list
  elements: str
  sample:
    - /var/lib/dokku/data/storage/blog--db/production.sqlite3.20261125T120000Z.bak
    - /var/lib/dokku/data/storage/blog--db/production.sqlite3.20261125T120000Z.bak-wal
actions:
  description: What was (or in check mode would be) done, in order.
  returned: always
  type: list
  elements: str
commands:
  description: The docker commands run, in order (no secret is ever part of one).
  returned: always
  type: list
  elements: str
lock_wait:
  description: Seconds the task waited for another run's lock on this host (V(0) when it was free, and in check mode).
  returned: success
  type: float
  sample: 0.0
"""

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_core import (
    RESTORE_MUTUALLY_EXCLUSIVE, RestoreManager, restore_argument_spec)


def main():
    module = SecretMaskingModule(argument_spec=restore_argument_spec(), supports_check_mode=True,
                                 mutually_exclusive=RESTORE_MUTUALLY_EXCLUSIVE)
    try:
        result = RestoreManager(module).execute()
    except errors.CollectionError as exc:  # a RestoreFailed carries the result of what ran before it failed
        module.fail_json(msg=str(exc), **getattr(exc, "result", {}))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
