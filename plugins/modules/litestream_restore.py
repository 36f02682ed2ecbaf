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
    as a copy of the credential set's C(ssh_key)); S3 keys reach Litestream's own process through a sourced
    C(credentials.env), never the container's environment or a command line. The container never gets
    C(AWS_CA_BUNDLE), which breaks every Litestream 0.5 S3 client.
  - A dry run (C(litestream restore -dry-run)) comes first. It finds out whether the replica exists and which
    transaction the restore will reach; the restore then runs with C(-txid) of that transaction, so it restores
    exactly what the dry run planned and RV(position) reports, also when the replica moves on meanwhile.
  - The dry run and the restore share one container, and the restore starts only after a dry run that found the
    plan. The restore stage (a root-only directory inside O(dest), and O(dest) itself when missing) is made before,
    for the mount, and removed again when the dry run fails or finds no backup. In check mode and with
    O(if_replica_exists=true), the dry run runs in a container of its own before anything is written on the host,
    and the restore in a second one; so does C(litestream generations) with a Litestream 0.3 O(image).
  - The restore goes into a temporary file in the target directory, which is then verified read-only with
    Python's sqlite3 (integrity check, required tables, minimum row counts). Only a verified file is chowned,
    chmodded and renamed into place, atomically. A failure removes the temporary file and leaves the
    target as it was.
  - An existing database is never overwritten and nothing is ever deleted. See O(on_existing).
options:
  replica:
    description:
      - Where the database was replicated to. The same fields, validated the same way, as
        O(dokku_sqlite.litestream.litestream_replica#module:replica); the Litestream 0.3 options are not accepted.
      - The replica of the database is read from C(<path>/<database>), or from C(<path>) itself with
        O(replica.location=path).
    type: dict
    required: true
    suboptions:
      type:
        description: Replica kind.
        type: str
        choices: [s3, file, sftp, gs, abs]
      url:
        description:
          - The replica as a URL, for example C(s3://bucket/prefix?endpoint=https://s3.example.net&region=eu-1),
            C(file:///srv/replicas/blog) or C(sftp://user@host:22/backups/blog).
          - Credentials before C(@) (C(s3://KEY:SECRET@bucket), C(sftp://user:password@host)) are refused without
            being repeated; keep them in a credential set. Only sftp (C(user@)) and abs (C(account@)) take a name there.
          - A file URL must be absolute (C(file:///srv/replicas/blog)); C(file://relative) and C(..) are refused.
        type: str
      bucket:
        description:
          - Bucket (s3, gs) or container (abs), also when given in O(replica.url).
          - Checked against the store's own naming rules, so a name it would refuse fails here instead of leaving
            the sidecar retrying forever. S3 - 3 to 63 lowercase letters, digits, C(.) and C(-), starting and ending
            with a letter or digit, no C(..), not an IP address, no C(xn--) or C(sthree-) prefix, no C(-s3alias) or
            C(--ol-s3) suffix. gs - the same characters plus C(_), up to 222 characters with dots, no C(goog) prefix.
            abs - 3 to 63 lowercase letters, digits and single C(-), starting and ending with a letter or digit.
        type: str
      path:
        description:
          - Prefix inside the bucket, absolute directory (file), or remote directory (sftp).
          - An sftp path that starts with C(/) is absolute on the server, any other is relative to the login
            directory. The URL form means the same - C(sftp://user@host/srv/b) is C(/srv/b),
            C(sftp://user@host/~/b) is C(b).
        type: str
      endpoint:
        description:
          - S3-compatible endpoint with its scheme, for example C(https://s3.eu-central-003.backblazeb2.com)
            or C(http://127.0.0.1:9000). A bare host:port is refused (Litestream 0.5 would force https).
          - Credentials in it (C(https://KEY:SECRET@host)) are refused without being repeated.
        type: str
      region:
        description: S3 region. Defaults to the credential set's region, then C(us-east-1).
        type: str
      force_path_style:
        description: Path-style S3 URLs. Defaults to true when an endpoint is set.
        type: bool
      skip_verify:
        description: Skip TLS verification of the S3 endpoint (self-signed test servers only).
        type: bool
      sync_interval:
        description: Accepted so that a replica definition can be shared with the replica module; unused here.
        type: str
      host:
        description: sftp server as C(host[:port]).
        type: str
      user:
        description: sftp user.
        type: str
      host_key:
        description: The sftp server's public host key (C(ssh-ed25519 AAAA...)). Required; it is checked.
        type: str
      credentials:
        description:
          - Name of the credential set (M(dokku_sqlite.litestream.litestream_auth)) for s3, gs, abs and sftp.
        type: str
        default: default
      account_name:
        description: Azure storage account (abs).
        type: str
      location:
        description:
          - Where the replica of O(database) sits. V(per_database) (the default) - under C(<path>/<database>), as
            M(dokku_sqlite.litestream.litestream_replica) writes it.
          - V(path) - at C(<path>) itself, as C(litestream replicate DB URL) writes it, and so the dokku-litestream
            plugin (C(dokku litestream:create <app> <dir> <db> s3://bucket/app) replicates to C(s3://bucket/app)).
          - The plugin ran Litestream 0.3, whose replicas have the C(generations/) layout; read them with a 0.3
            O(image), for example C(litestream/litestream:0.3.13).
        type: str
        choices: [per_database, path]
        version_added: "0.1.0"
  database:
    description:
      - File name the database was replicated under, a plain name (no C(/), C(..), control characters or leading
        C(.)), at most 200 bytes.
      - A name ending in C(-wal), C(-shm) or C(-journal) is refused, since that is a SQLite side file, not a database.
    type: str
    default: production.sqlite3
  dest:
    description:
      - Directory on the host to restore into, for example a Dokku storage directory.
      - Created when missing (with missing parents), mode C(0755), owned by O(owner) and O(group).
        An existing directory keeps its mode and owner.
      - An absolute path, normalised (so two spellings of one directory are one restore target); C(..), C(:)
        (it is part of a docker mount) and control characters are refused. C(~) and C($VAR) are not expanded.
      - Litestream writes into a new root-only (C(0700)) directory inside O(dest), which this module opens once
        and then uses through that handle; a symlink where the restored file should be is refused.
    type: str
    required: true
  name:
    description:
      - File name of the restored database in O(dest). Defaults to O(database).
    type: str
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
  owner:
    description:
      - Owner (uid) of the restored database and of the directories this module creates, from 0 to 2147483646.
      - Without O(owner) and O(chown), 32767, the uid of Dokku's herokuish user.
    type: int
  group:
    description:
      - Group (gid) of the restored database and of the directories this module creates.
      - Without O(group) and O(chown), 32767.
    type: int
  chown:
    description:
      - The owner as the app's storage directory has it, in the words of M(dokku_sqlite.litestream.dokku_storage)'s
        O(dokku_sqlite.litestream.dokku_storage#module:chown) (one list of names and uids serves both modules),
        V(herokuish) (32767), V(heroku) (1000), V(paketo) (2000), V(root) (0), a numeric uid, or V(false).
      - V(false) gives the restored database the owner and group of O(dest), as C(storage:ensure-directory
        --chown false) leaves the directory's owner alone (root when O(dest) does not exist yet).
      - When Docker remaps users (C(userns-remap), read from C(docker info)), 165536 is added to the uid, as Dokku
        does when it chowns the storage directory.
      - Mutually exclusive with O(owner) and O(group).
    type: str
  mode:
    description:
      - Mode of the restored database, as a quoted octal string such as V('0644') or V('0600').
      - A number is taken as the mode itself (YAML turns an unquoted V(0644) into 420) and must be at most
        V(0o777); a larger one, such as an unquoted V(644) (octal 1204), is refused with a hint to quote it.
      - The setuid, setgid and sticky bits are refused.
    type: raw
    default: '0644'
  verify:
    description: What the restored file must pass before it is put in place.
    type: dict
    default: {}
    suboptions:
      integrity:
        description:
          - V(quick) runs C(PRAGMA quick_check), V(full) runs C(PRAGMA integrity_check) (slow on big databases),
            V(none) skips the check.
          - The file is checked once, by this module with the host's Python sqlite3, whose messages are RV(integrity).
            Litestream is not asked for its own C(-integrity-check) as well - the same pragma on the same file
            once more, which took Litestream (SQLite translated to Go) 1.2 to 1.7 times as long as this check.
        type: str
        choices: [full, quick, none]
        default: quick
      tables:
        description: Tables that must exist.
        type: list
        elements: str
        default: []
      min_rows:
        description:
          - Minimum row count per table, a mapping of table name to number, for example C(events) to C(1).
          - A table listed here must exist.
        type: dict
        default: {}
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
  network:
    description: Docker network of the restore container.
    type: str
    default: host
  dry_run_timeout:
    description:
      - Seconds the dry run, which reads the replica's file list before anything is restored, may take; V(0)
        waits as long as Litestream does. In one container with the restore, the limit applies to the dry run only.
      - Litestream's S3 client retries an unreachable endpoint for about two minutes before it gives up; with a
        limit, an unreachable replica fails after this long, with a message that says so.
      - Needs C(timeout) in the image (the official Debian and Alpine images have it); without it, no limit applies.
    type: int
    default: 0
    version_added: "0.1.0"
extends_documentation_fragment:
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

import errno
import os
import signal
import stat
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import common_argument_spec, write_atomic
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import (
    MissingCredentials, load_credentials)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerError, DockerRunner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.dokku import owner_uid
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import guarded
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import (
    HostLock, LockTimeout, lock_argument_spec)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore as rs
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

RESTORE_DIR = "/restore"
HEROKUISH_UID = v.CHOWN_NAMES["herokuish"]  # the owner when neither owner/group nor chown is given
CONFIG_IN_CONTAINER = "%s/%s" % (ls.CONFIG_DIR_IN_CONTAINER, ls.CONFIG_FILE)
ENV_IN_CONTAINER = "%s/%s" % (ls.CONFIG_DIR_IN_CONTAINER, ls.CREDENTIALS_ENV_FILE)
STAGE_PREFIX = ".litestream-restore-"
V03_HINT = ("; a replica that Litestream 0.3 wrote (the generations/ layout, such as the dokku-litestream plugin's "
            "at the URL itself) is read with a 0.3 image (image: litestream/litestream:0.3.13) and "
            "replica.location: path")
# a signal from the controller (task timeout, ^C) must not leave keys in /tmp or a half file in dest
CLEANUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class RestoreManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.started = time.time()
        self.docker = DockerRunner(module, module.params["docker_binary"])
        self.owner_ids = None
        self.database = module.params["database"]
        self.name = module.params["name"] or self.database
        self.dest = self.target = self.credentials_root = self.mode = None  # set by validate(), normalised
        self.actions = []
        self.backup = []
        self.fields = None
        self.v03 = False       # the image is a Litestream 0.3: generations/ layout, 0.3's commands
        self.creds = {}
        self.workdir = None
        self.stage = None      # root-only directory inside dest that Litestream restores into
        self.stage_fd = None   # the stage, opened once and checked: later paths go through this handle
        self.created_dirs = []
        self.result = dict(changed=False, restored=False, path=None, replica=None, backup=self.backup,
                           actions=self.actions, commands=self.docker.commands, lock_wait=0.0)

    # ------------------------------------------------------------------ helpers
    def where(self):
        return "restore of %s into %s" % (self.database, self.target)

    def fail(self, msg, **extra):
        self.cleanup()
        self.result.update(extra)
        self.result["duration"] = round(time.time() - self.started, 3)
        if self.target is not None:  # before that, validation failed and the message names the option
            msg = "%s: %s" % (self.where(), msg)
        self.module.fail_json(msg=msg, **self.result)

    def finish(self, before, after):
        self.result["changed"] = bool(self.result["restored"] or (self.module.check_mode and self.actions))
        self.result["duration"] = round(time.time() - self.started, 3)
        if self.module._diff:
            self.result["diff"] = {"before": before, "after": after}
        self.module.exit_json(**self.result)

    # ------------------------------------------------------------------ input
    def validate(self):
        """Every input check, before a file is read or a docker command runs."""
        params = self.params
        try:
            v.db_file_name(self.database, "database")
            v.db_file_name(self.name, "name")
            # type str, not path: no '~' or '$VAR' expansion; one spelling per directory (and per lock)
            self.dest = v.absolute_path(params["dest"], "dest", mount=True)
            self.target = os.path.join(self.dest, self.name)
            self.result["path"] = self.target
            self.credentials_root = v.absolute_path(params["credentials_root"], "credentials_root")
            self.mode = v.file_mode(params["mode"], "mode")
            for option in ("owner", "group"):
                if params[option] is not None:
                    v.uid(params[option], option)
            if params["chown"] is not None:
                v.chown(params["chown"])
            v.docker_word(params["image"], "image")
            v.docker_word(params["network"], "network")
        except v.InvalidValue as exc:
            self.fail(str(exc))
        if params["dry_run_timeout"] < 0:
            self.fail("dry_run_timeout must be 0 (no limit) or a number of seconds, got %d" % params["dry_run_timeout"])
        if params["timestamp"] is not None and params["txid"] is not None:
            self.fail("give either timestamp or txid, not both")
        try:
            self.fields = ls.normalize_replica(params["replica"])
        except v.InvalidValue as exc:
            self.fail(str(exc))
        self.v03 = ls.is_v03_image(params["image"])
        if self.v03:
            if params["txid"] is not None:
                self.fail("txid: the image %s runs Litestream 0.3, which has no transaction ids: restore at a "
                          "timestamp instead" % params["image"])
            if self.fields["type"] not in ls.V03_RESTORE_TYPES:
                self.fail("image: %s runs Litestream 0.3, which reads %s replicas here, not %s" % (
                    params["image"], " and ".join(ls.V03_RESTORE_TYPES), self.fields["type"]))
        self.result["replica"] = rs.replica_location(self.fields, self.database)
        try:
            self.timestamp = rs.parse_timestamp(params["timestamp"]) if params["timestamp"] is not None else None
            self.txid = rs.parse_txid(params["txid"]) if params["txid"] is not None else None
        except ValueError as exc:
            self.fail(str(exc))
        verify = params["verify"] or {}
        self.integrity = verify.get("integrity") or "quick"
        self.required_tables = list(verify.get("tables") or [])
        for table in self.required_tables + list((verify.get("min_rows") or {}).keys()):
            if not str(table).strip():
                self.fail("verify.tables and verify.min_rows name tables: an empty name (%r) is no table" % (table,))
        self.min_rows = {}
        for table, value in (verify.get("min_rows") or {}).items():
            try:
                self.min_rows[str(table)] = int(value)
            except (TypeError, ValueError):
                self.fail("verify.min_rows.%s must be a whole number, got %r" % (table, value))
        if os.path.lexists(self.dest) and not os.path.isdir(self.dest):
            self.fail("dest %s exists and is not a directory" % self.dest)
        if os.path.isdir(self.target) and not os.path.islink(self.target):
            self.fail("%s is a directory, not a database file" % self.target)

    def point_in_time(self):
        if self.timestamp:
            return "at %s" % self.timestamp
        if self.txid:
            return "at txid %s" % self.txid
        return "latest"

    def load_credentials(self):
        if not ls.needs_credentials(self.fields):
            return True
        set_name = self.fields.get("credentials") or "default"
        try:
            self.creds = load_credentials(self.credentials_root, set_name, self.fields["type"])
        except MissingCredentials as exc:
            if not self.module.check_mode:
                self.fail(str(exc))
            # --check on a fresh host: the litestream_auth task before this one wrote nothing
            self.module.warn("%s (check mode: assuming an earlier task creates it; the replica was not read)" % exc)
            return False
        except v.InvalidValue as exc:
            self.fail(str(exc))
        return True

    # ------------------------------------------------------------------ litestream
    def write_workdir(self):
        """The restore configuration and the secret files (credentials.env, ssh_key) in a fresh root-only directory."""
        try:
            if self.v03:
                config = ls.render_config_v03(self.database, self.fields, self.creds, mount_dir=ls.DEFAULT_MOUNT_DIR)
            else:
                config = ls.render_config([self.database], self.fields, self.creds, mount_dir=ls.DEFAULT_MOUNT_DIR)
        except ls.ConfigError as exc:
            self.fail(str(exc))
        env_text = ls.credentials_env(self.fields, self.creds)
        self.workdir = tempfile.mkdtemp(prefix="dokku-sqlite-restore-")
        os.chmod(self.workdir, 0o700)
        write_atomic(os.path.join(self.workdir, ls.CONFIG_FILE), config, 0o600)
        if env_text:
            write_atomic(os.path.join(self.workdir, ls.CREDENTIALS_ENV_FILE), env_text, 0o600)
        if self.creds.get("ssh_private_key"):
            write_atomic(os.path.join(self.workdir, ls.SSH_KEY_FILE), self.creds["ssh_private_key"], 0o600)

    def litestream(self, restore_args, mount_dest, timeout=0, command="restore"):
        """Run `litestream <command> <restore_args> /data/<database>` in a throw-away container."""
        script = rs.container_script(CONFIG_IN_CONTAINER, ENV_IN_CONTAINER, self.litestream_args(command, restore_args),
                                     timeout=timeout)
        if command == "generations":
            # 0.3's generations stats the database it lists for (never read): an empty file in the container
            db_path = "%s/%s" % (ls.DEFAULT_MOUNT_DIR, self.database)
            script = "mkdir -p %s && : > %s && %s" % (ls.DEFAULT_MOUNT_DIR, ls.shell_quote(db_path), script)
        return self.container(script, mount_dest)

    def litestream_args(self, command, args):
        db_path = "%s/%s" % (ls.DEFAULT_MOUNT_DIR, self.database)
        return [command, "-config", CONFIG_IN_CONTAINER, "-no-expand-env"] + args + [db_path]

    def container(self, script, mount_dest):
        """`sh -c <script>` in a throw-away container of the image, with the configuration mounted read-only."""
        docker = ["run", "--rm", "--network", self.params["network"], "--entrypoint", "/bin/sh"]
        if mount_dest:
            docker += ["-v", "%s:%s" % (self.stage, RESTORE_DIR)]
        docker += ["-v", "%s:%s:ro" % (self.workdir, ls.CONFIG_DIR_IN_CONTAINER)]
        if self.fields["type"] == "file":
            docker += ["-v", "%s:%s:ro" % (self.fields["path"], self.fields["path"])]
        docker += [self.params["image"], "-c", script]
        return self.docker.run(docker, check=False)

    def point_args(self):
        return ["-timestamp", self.timestamp] if self.timestamp else ["-txid", self.txid] if self.txid else []

    def dry_run_args(self, point_args):
        return ["-dry-run", "-json"] + point_args + ["-o", "%s/%s" % (RESTORE_DIR, self.name)]

    def dry_run(self, point_args):
        """The restore plan (dict), None when the replica holds nothing that matches; fails on other errors."""
        if self.fields["type"] == "file" and not os.path.isdir(self.fields["path"]):
            return None  # nothing to read, and docker would create the directory for the mount
        rc, out, err = self.litestream(self.dry_run_args(point_args), mount_dest=False,
                                       timeout=self.params["dry_run_timeout"])
        return self.read_plan(rc, out, err)

    def read_plan(self, rc, out, err):
        """What a dry run's exit status and output say: the plan, None for no backup; fails on other errors."""
        timeout = self.params["dry_run_timeout"]
        if rc == 0:
            plan = rs.parse_json_output(out)
            if not isinstance(plan, dict):
                self.fail("litestream restore -dry-run printed no plan (exit 0): %s" % last_line(out, err))
            return plan
        if rs.is_no_backup(err) or rs.is_no_backup(out):
            return None
        if timeout and rc == rs.TIMEOUT_RC:
            self.fail("the replica %s is unreachable: no answer within %d s (dry_run_timeout); Litestream's last "
                      "words: %s" % (self.result["replica"], timeout, describe(self.docker, rc, out, err)))
        self.fail("the replica %s cannot be read: %s" % (self.result["replica"], describe(self.docker, rc, out, err)))

    def generations(self):
        """Litestream 0.3's view of the replica: its generations (a list, empty when none); fails on errors."""
        if self.fields["type"] == "file" and not os.path.isdir(self.fields["path"]):
            return []
        timeout = self.params["dry_run_timeout"]
        rc, out, err = self.litestream([], mount_dest=False, timeout=timeout, command="generations")
        if timeout and rc == rs.TIMEOUT_RC:
            self.fail("the replica %s is unreachable: no answer within %d s (dry_run_timeout); Litestream's last "
                      "words: %s" % (self.result["replica"], timeout, describe(self.docker, rc, out, err)))
        listing_error = rs.generations_error(err) or rs.generations_error(out)
        if rc != 0 or listing_error:
            if listing_error:
                self.fail("the replica %s cannot be read: %s (command: %s)" % (
                    self.result["replica"], listing_error, self.docker.commands[-1]))
            self.fail("the replica %s cannot be read: %s" % (self.result["replica"], describe(self.docker, rc, out, err)))
        return rs.parse_generations(out)

    def plan_v03(self):
        rows = self.generations()
        if not rows:
            return None
        summary = rs.generations_summary(rows, self.timestamp)
        if summary is None:
            self.fail("the replica %s holds generations from %s to %s (Litestream 0.3, to the second), none of which "
                      "spans %s" % (self.result["replica"], min(row["start"] for row in rows),
                                    max(row["end"] for row in rows), self.timestamp))
        return summary

    def plan(self):
        """Plan the restore; returns the plan summary, or None when the replica has no backup of the database."""
        if self.v03:
            return self.plan_v03()
        return self.summarize(self.dry_run(self.point_args()))

    def summarize(self, plan):
        """The summary of a dry run's plan; None (no backup) only when the replica holds nothing at all."""
        if plan is not None:
            return rs.plan_summary(plan)
        if not self.point_args():
            return None
        # nothing at that point: tell "no replica at all" from "not that far back"
        whole = self.dry_run([])
        if whole is None:
            return None
        summary = rs.plan_summary(whole)
        held = "the replica %s holds transactions %s to %s (newest file %s)" % (
            self.result["replica"], summary["min_txid"], summary["max_txid"], summary["newest_file_time"])
        if self.timestamp:
            self.fail("%s, none at or before %s" % (held, self.timestamp))
        self.fail("%s; txid %s cannot be restored from it" % (held, self.txid))

    # ------------------------------------------------------------------ files
    def ownership(self):
        """(uid, gid) for the restored file and the directories made for it; resolved once, when first needed."""
        if self.owner_ids is None:
            chown = self.params["chown"]
            if chown is None:
                self.owner_ids = tuple(HEROKUISH_UID if self.params[o] is None else self.params[o]
                                       for o in ("owner", "group"))
            elif chown == "false":
                st = os.stat(self.dest) if os.path.isdir(self.dest) else None
                self.owner_ids = (st.st_uid, st.st_gid) if st else (0, 0)
            else:
                uid = owner_uid(chown, self.docker.userns_remap())
                self.owner_ids = (uid, uid)
        return self.owner_ids

    def make_dest(self):
        missing = []
        path = self.dest.rstrip("/") or "/"
        while not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        for path in reversed(missing):
            os.mkdir(path, 0o755)
            self.created_dirs.append(path)
            os.chmod(path, 0o755)
            os.chown(path, *self.ownership())

    def make_stage(self):
        """A fresh directory inside dest, 0700 root (mkdtemp), opened once: nobody else can place a symlink in
        it, and every later path goes through the open handle, so swapping the directory itself does not help."""
        self.stage = tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=self.dest)
        self.stage_fd = os.open(self.stage, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)

    def staged(self, name):
        return "/proc/self/fd/%d/%s" % (self.stage_fd, name)

    def open_restored(self):
        """The restored file, opened without following a symlink; fails unless it is a regular file."""
        try:
            fd = os.open(self.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=self.stage_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.fail("the restored file is a symbolic link; refusing to touch it (nothing was put in place)")
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self.fail("the restored file is not a regular file; refusing it (nothing was put in place)")
        return fd

    def cleanup(self):
        """Remove what this run created and did not hand over: the stage, the work directory, new empty dirs."""
        if self.stage_fd is not None:
            os.close(self.stage_fd)
            self.stage_fd = None
        if self.stage:
            try:
                guarded.remove_tree(self.stage, self.dest)
            except (guarded.OutsideRoot, OSError):
                pass  # gone, or no longer ours (swapped for a link): never follow it
            self.stage = None
        if self.workdir:
            try:
                guarded.remove_tree(self.workdir, os.path.dirname(self.workdir))
            except (guarded.OutsideRoot, OSError):
                pass
            self.workdir = None
        if not self.result.get("restored"):
            for path in reversed(self.created_dirs):
                try:
                    os.rmdir(path)  # only while empty: never anything but our own directory
                except OSError:
                    break
            self.created_dirs = []

    def backup_stamp(self, existing):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        candidate, n = stamp, 1
        while any(os.path.lexists(rs.backup_path(p, self.dest, self.name, candidate)) for p in existing):
            n += 1
            candidate = "%s-%d" % (stamp, n)
        return candidate

    def put_in_place(self, tmp_path):
        """Move the old files aside (replace), then the verified temp file into place; undo on failure."""
        existing = rs.existing_paths(self.dest, self.name)
        target = guarded.checked(self.target, self.dest, "replace")  # the stage's file goes nowhere else
        moved = []
        try:
            if existing:
                stamp = self.backup_stamp(existing)
                # the sidecars and the state directory first: a stale -wal must never meet the new file
                for path in [p for p in existing if p != self.target]:
                    new = rs.backup_path(path, self.dest, self.name, stamp)
                    guarded.rename(path, new, self.dest)
                    moved.append((path, new))
                if self.target in existing:
                    new = rs.backup_path(self.target, self.dest, self.name, stamp)
                    try:
                        os.link(self.target, new)  # the old file stays visible until the new one replaces it
                        moved.append((None, new))
                    except OSError:
                        guarded.rename(self.target, new, self.dest)
                        moved.append((self.target, new))
                    os.rename(tmp_path, target)
                    if moved[-1][0] is None:
                        moved[-1] = (self.target, new)
                else:
                    link_into_place(tmp_path, target)
            else:
                link_into_place(tmp_path, target)
        except OSError as exc:
            for old, new in reversed(moved):
                try:
                    if old is None:
                        guarded.unlink(new, self.dest)
                    elif not os.path.lexists(old):
                        guarded.rename(new, old, self.dest)
                except (OSError, guarded.OutsideRoot):
                    pass
            self.fail("putting the restored file in place failed (%s); the existing files were put back" % exc)
        self.backup.extend(new for _old, new in moved)
        fsync_dir(self.dest)

    # ------------------------------------------------------------------ the run
    def run(self):
        self.validate()
        previous = dict((signum, signal.signal(signum, self.on_signal)) for signum in CLEANUP_SIGNALS)
        try:
            # from the look at what exists to the rename: two restores into one file would both find it free
            with HostLock(self.module, "restore-%s" % self.target, "the restore target %s" % self.target) as lock:
                self.result["lock_wait"] = lock.waited
                self.converge()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def on_signal(self, signum, _frame):
        self.fail("stopped by signal %d: the temporary files of this run were removed" % signum)

    def converge(self):
        existing = rs.existing_paths(self.dest, self.name)
        before = {"path": self.target, "exists": bool(existing), "files": sorted(existing)}
        on_existing = self.params["on_existing"]
        if existing and on_existing == "fail":
            self.fail("%s already exists; set on_existing: replace to move it aside to a timestamped backup, "
                      "or skip to leave it" % describe_existing(self.target, existing))
        if existing and on_existing == "skip":
            self.result["msg"] = "%s exists; skipped (on_existing: skip)" % describe_existing(self.target, existing)
            self.finish(before, before)

        try:
            replica_checked = self.load_credentials()
            if replica_checked:
                self.write_workdir()
            if replica_checked and self.one_run():
                self.restore(existing)
            else:
                summary = self.plan() if replica_checked else None
                if replica_checked and summary is None:
                    if not self.params["if_replica_exists"]:
                        self.no_backup()
                    self.result["msg"] = "no backup of %s in %s; nothing restored (if_replica_exists)" % (
                        self.database, self.result["replica"])
                    self.cleanup()
                    self.finish(before, before)
                if summary:
                    # read right after the dry run: container start-up and the restore itself do not count
                    self.planned(summary, time.time())
                planned = self.announce(summary, existing, not os.path.isdir(self.dest))
                if self.module.check_mode:
                    self.backup.extend(planned)
                    self.cleanup()
                    after = {"path": self.target, "exists": True, "position": self.result.get("position")}
                    self.finish(before, after)
                self.restore(existing, summary)
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOSPC:
                self.cleanup()
                self.fail("no space left on device in %s (%s once the partial files were removed): %s" % (
                    self.dest, rs.space_left(self.dest), exc))
            self.fail("%s" % exc)
        finally:
            self.cleanup()
        after = {"path": self.target, "exists": True, "position": self.result.get("position"),
                 "backup": list(self.backup)}
        self.finish(before, after)

    def one_run(self):
        """Whether the dry run and the restore share one container (plan_and_restore): one container start and
        one look at the replica fewer. The dry run keeps a container of its own, before anything is written,
        - in check mode, where it is all that runs;
        - with if_replica_exists, where a replica without a backup must leave dest untouched (one run needs the
          stage, a directory inside dest, mounted before the dry run starts);
        - for a Litestream 0.3 image, whose plan is the table `generations` prints, read here;
        - for a file replica whose directory is missing: no backup, and docker would create it for the mount.
        """
        return not (self.module.check_mode or self.params["if_replica_exists"] or self.v03
                    or (self.fields["type"] == "file" and not os.path.isdir(self.fields["path"])))

    def no_backup(self):
        self.fail("the replica %s holds no backup of %s (set if_replica_exists: true to accept that)%s" % (
            self.result["replica"], self.database, "" if self.v03 else V03_HINT), replica_missing=True)

    def planned(self, summary, read_at):
        """position, position_time and position_age (against read_at, when the dry run ended) from a plan."""
        self.result.update(position=summary["position"], position_time=summary["newest_file_time"])
        if summary["newest_file_time"]:
            age = rs.seconds_since(summary["newest_file_time"], read_at)
            self.result["position_age"] = round(max(0.0, age), 1)

    def announce(self, summary, existing, dest_missing):
        """The actions, once the replica is known to hold what is wanted; returns the planned backup paths."""
        if dest_missing:
            self.actions.append("create directory %s" % self.dest)
        reached = ""
        if summary:
            reached = ", %s %s" % ("generation" if self.v03 else "txid", summary["position"])
        self.actions.append("restore %s (%s%s) into %s" % (
            self.result["replica"], self.point_in_time(), reached, self.target))
        if not existing:
            return []
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        planned = [rs.backup_path(p, self.dest, self.name, stamp) for p in existing]
        self.actions.append("move aside %s" % ", ".join(
            "%s -> %s" % (os.path.basename(p), os.path.basename(n)) for p, n in zip(existing, planned)))
        return planned

    def restore_args(self, summary=None):
        """The restore's arguments; with a summary, -txid of the transaction to reach (none for Litestream 0.3)."""
        args = ["-o", "%s/%s" % (RESTORE_DIR, self.name)]
        if self.params["if_replica_exists"]:
            args.append("-if-replica-exists")
        if self.v03:
            if self.timestamp:
                args += ["-timestamp", self.timestamp]
            return args
        # No -integrity-check: the one check is verify()'s (see verify.integrity). Always -txid, also for the
        # latest: the restore reaches exactly what the dry run planned and reported, a replica that moved on
        # meanwhile included, with no second listing for Litestream to work out its latest, and a time is
        # never passed to -timestamp (broken in some 0.5 releases).
        args.append("-json")
        if summary is not None:
            args += ["-txid", self.txid or summary["max_txid"]]
        return args

    def plan_and_restore(self, existing, dest_missing):
        """The dry run and, when it found the plan, the restore, in one container; returns the restore's
        (rc, stdout, stderr). Fails (and so removes the stage) as the dry run of its own would."""
        script = rs.plan_and_restore_script(
            CONFIG_IN_CONTAINER, ENV_IN_CONTAINER, self.litestream_args("restore", self.dry_run_args(self.point_args())),
            self.litestream_args("restore", self.restore_args()), txid=self.txid, timeout=self.params["dry_run_timeout"])
        rc, out, err = self.container(script, mount_dest=True)
        parts = rs.split_planned_output(out, err)
        if parts is None:  # the script never got past the dry run: no shell, or docker could not start it
            if rc == 0:
                self.fail("litestream restore -dry-run printed no plan (exit 0): %s" % last_line(out, err))
            parts = {"rc": rc, "at": None, "txid": "", "plan_out": out, "plan_err": err, "out": "", "err": ""}
        summary = self.summarize(self.read_plan(parts["rc"], parts["plan_out"], parts["plan_err"]))
        if summary is None:
            self.no_backup()
        read_at = parts["at"]
        if read_at is None:  # an image without `date`: the end of the run, less the restore's own duration
            report = rs.parse_json_output(parts["out"])
            took = report.get("duration_ms") if isinstance(report, dict) else None
            read_at = time.time() - (took or 0) / 1000.0
        self.planned(summary, read_at)
        self.announce(summary, existing, dest_missing)
        wanted = self.txid or summary["max_txid"]
        if not parts["txid"]:
            # the image lacks the tools the script reads the plan with (grep, sort): restore in a second container
            return self.litestream(self.restore_args(summary), mount_dest=True)
        if parts["txid"] != wanted:
            self.fail("the restore ran to txid %s, but the dry run planned %s (command: %s)" % (
                parts["txid"], wanted, self.docker.commands[-1]))
        return rc, parts["out"], parts["err"]

    def restore(self, existing, summary=None):
        """Restore into the stage, verify, put in place. Without a summary, the dry run runs first in the same
        container (one_run); the stage, and dest when missing, are made before it and removed when it fails."""
        self.ownership()  # its docker read (user namespaces) before the first change
        dest_missing = not os.path.isdir(self.dest)
        self.make_dest()
        self.make_stage()
        tmp_path = self.staged(self.name)
        if summary is None:
            rc, out, err = self.plan_and_restore(existing, dest_missing)
        else:
            rc, out, err = self.litestream(self.restore_args(summary), mount_dest=True)
        if rc != 0:
            if rs.is_no_space(err) or rs.is_no_space(out):
                self.cleanup()  # the partial file goes first, so the free space shown is what the disk really has
                self.fail("no space left on device in %s (%s once the partial file was removed): litestream "
                          "restore failed: %s" % (self.dest, rs.space_left(self.dest), describe(self.docker, rc, out, err)))
            self.fail("litestream restore failed: %s" % describe(self.docker, rc, out, err))
        if not os.path.lexists(tmp_path):
            if self.params["if_replica_exists"] and (rs.is_no_backup(out) or rs.is_no_backup(err)):
                # the replica went away between the dry run and the restore
                self.result["msg"] = "no backup of %s in %s; nothing restored (if_replica_exists)" % (
                    self.database, self.result["replica"])
                self.result.pop("position", None)
                self.result.pop("position_time", None)
                self.result.pop("position_age", None)
                self.actions[:] = []
                return
            self.fail("litestream restore exited 0 but wrote no file: %s" % last_line(out, err))
        report = None if self.v03 else rs.parse_json_output(out)
        if isinstance(report, dict) and report.get("txid"):
            self.result["position"] = report["txid"]

        fd = self.open_restored()
        try:
            self.verify(tmp_path)
            os.fchown(fd, *self.ownership())
            os.fchmod(fd, self.mode)  # after fchown, which may clear mode bits
            fsync_fd(fd)
        finally:
            os.close(fd)
        self.put_in_place(tmp_path)
        self.result["restored"] = True
        self.result["size"] = os.path.getsize(self.target)

    def verify(self, tmp_path):
        try:
            inspected = rs.inspect_database(tmp_path, self.integrity)
        except Exception as exc:  # sqlite3.Error and OSError alike: the file is no usable database
            self.fail("the restored file is not a readable SQLite database: %s" % exc)
        problems = rs.verification_problems(inspected, self.required_tables, self.min_rows)
        self.result.update(tables=inspected["tables"], integrity=inspected["integrity"])
        if problems:
            self.fail("verification failed, nothing was put in place: %s" % "; ".join(problems))


def link_into_place(tmp_path, target):
    """Rename that refuses to overwrite: a file that appeared meanwhile is never clobbered."""
    try:
        os.link(tmp_path, target)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise
        os.rename(tmp_path, target)  # no hard links on this filesystem
        return
    os.unlink(tmp_path)


def fsync_fd(fd):
    os.fsync(fd)


def fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        fsync_fd(fd)
    finally:
        os.close(fd)


def fsync_dir(path):
    try:
        fsync_file(path)
    except OSError:
        pass


def describe_existing(target, existing):
    others = [p for p in existing if p != target]
    if target in existing:
        return target + (" (with %s)" % ", ".join(others) if others else "")
    return "%s (not the file itself, but %s)" % (target, ", ".join(others))


def last_line(out, err):
    for text in (err, out):
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "(no output)"


def describe(docker, rc, out, err):
    """Litestream's own last words, the command that ran (the script holds no secret) and a known cause."""
    text = "%s (exit %d; command: %s)" % (last_line(out, err), rc, docker.commands[-1])
    hint = rs.failure_hint(out, err)
    return text + ("; likely cause: %s" % hint if hint else "")


def main():
    verify_options = dict(
        integrity=dict(type="str", choices=["full", "quick", "none"], default="quick"),
        tables=dict(type="list", elements="str", default=[]),
        min_rows=dict(type="dict", default={}),
    )
    argument_spec = common_argument_spec()
    argument_spec.update(lock_argument_spec())
    argument_spec.update(
        replica=dict(type="dict", required=True, options=ls.replica_argument_spec(with_v03_options=False)),
        database=dict(type="str", default="production.sqlite3"),
        # type str, not path: Ansible would expand '~' and '$VARS' in a path; validate.py normalises it
        dest=dict(type="str", required=True),
        name=dict(type="str"),
        timestamp=dict(type="str"),
        txid=dict(type="str"),
        if_replica_exists=dict(type="bool", default=False),
        on_existing=dict(type="str", choices=["fail", "skip", "replace"], default="fail"),
        owner=dict(type="int"),
        group=dict(type="int"),
        chown=dict(type="str"),
        mode=dict(type="raw", default="0644"),
        verify=dict(type="dict", default={}, options=verify_options),
        image=dict(type="str", default=ls.DEFAULT_IMAGE),
        network=dict(type="str", default="host"),
        dry_run_timeout=dict(type="int", default=0),
        credentials_root=dict(type="str", default="/var/lib/dokku/config/litestream/credentials"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[("chown", "owner"), ("chown", "group")])
    manager = RestoreManager(module)
    try:
        manager.run()
    except (DockerError, LockTimeout, guarded.OutsideRoot) as exc:
        manager.fail(str(exc))


if __name__ == "__main__":
    main()
