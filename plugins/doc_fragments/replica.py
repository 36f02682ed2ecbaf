# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `replica` option of every module that writes or reads a replica (litestream.replica_argument_spec).

A module may give its own `description` or `required` for `replica` (Ansible merges them over this entry), but not
single suboptions: Ansible replaces `suboptions` whole.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  replica:
    description:
      - Where the databases replicate to. Give O(replica.type) with its fields, or O(replica.url).
      - Litestream 0.5 allows one replica per database.
    type: dict
    suboptions:
      type:
        description: Replica kind.
        type: str
        # every name of backends.NAMES (a unit test compares them)
        choices: [s3, gs, abs, sftp, file]
      url:
        description:
          - The replica as a URL, for example C(s3://bucket/prefix?endpoint=https://s3.example.net&region=eu-1),
            C(file:///srv/replicas/blog) or C(sftp://user@host:22/backups/blog).
          - Credentials before C(@) (C(s3://KEY:SECRET@bucket), C(sftp://user:password@host)) are refused without
            being repeated; keep them in a credential set. Only sftp (C(user@)) and abs (C(account@)) take a name there.
          - A file URL must be absolute (C(file:///srv/replicas/blog)); C(file://relative) and C(..) are refused.
          - Its path, host and port are checked as O(replica.path), O(replica.host) and O(replica.endpoint) (also an
            C(endpoint) in the query string).
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
            C(sftp://user@host/~/b) is C(b). It is normalised (C(//), C(.) and a trailing C(/) dropped); C(..) is
            refused.
          - A file replica's directory is mounted into a root container (the sidecar read-write), so it is refused
            when it is C(/) or a system directory or inside one (C(/etc), C(/usr), C(/bin), C(/sbin), C(/lib*),
            C(/boot), C(/dev), C(/proc), C(/sys), C(/run), C(/var/lib/docker), Dokku's C(/var/lib/dokku/config),
            C(/var/lib/dokku/plugins), C(/var/lib/dokku/services), C(/home/dokku)), when it is C(/var), C(/var/lib),
            C(/var/lib/dokku), C(/var/lib/dokku/data), the storage root or another directory that holds much more,
            and (for a sidecar) when it is inside the app's own storage directory or holds it; a symbolic link is
            followed for the check. Another directory below C(/var/lib/dokku), such as
            C(/var/lib/dokku/data/litestream-replicas), may hold replicas.
        type: str
      endpoint:
        description:
          - S3-compatible endpoint with its scheme, for example C(https://s3.eu-central-003.backblazeb2.com)
            or C(http://127.0.0.1:9000). A bare host:port is refused (Litestream 0.5 would force https).
          - Credentials in it (C(https://KEY:SECRET@host)) are refused without being repeated.
          - The host must be an ASCII name whose labels are 1 to 63 letters, digits, C(-) and C(_) (no empty label as
            in C(a..b)), an IPv4 address or an IPv6 address in brackets; an internationalised name is given in its
            C(xn--) form (the message shows it). A port is 1 to 65535.
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
        description:
          - How often Litestream ships new WAL frames, as a duration from C(100ms) to C(24h) (C(1s), C(10s)).
          - A restore accepts it, so that one replica definition serves both, and checks it, but does not use it.
        type: str
      host:
        description:
          - sftp server as C(host[:port]), checked as the host and port of O(replica.endpoint).
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
          - Where the replica of each database sits. V(per_database) (the default) - C(<path>/<database>), so one
            path serves several databases.
          - V(path) - C(<path>) itself, as C(litestream replicate DB URL) and the dokku-litestream plugin write it
            (C(dokku litestream:create <app> <dir> <db> s3://bucket/app) replicates to C(s3://bucket/app)); for a
            sidecar only with one database.
          - The plugin ran Litestream 0.3, whose replicas have the C(generations/) layout. A migration from the plugin
            keeps the default - its 0.3 replica stays at the URL itself, readable with
            M(dokku_sqlite.litestream.litestream_restore)
            (O(dokku_sqlite.litestream.litestream_restore#module:replica.location=path) and a 0.3 image, for example
            C(litestream/litestream:0.3.13)), and the new replica grows beside it under C(<path>/<database>).
        type: str
        choices: [per_database, path]
      # Litestream 0.3's options: declared only so that they are refused with a reason, not Ansible's
      # "Unsupported parameters"
      retention:
        description: Litestream 0.3 only; refused with an explanation (0.5 would ignore it silently).
        type: str
      retention_check_interval:
        description: Litestream 0.3 only; refused with an explanation.
        type: str
      snapshot_interval:
        description:
          - Litestream 0.3 only here; refused with an explanation. The sidecar's snapshots are set by
            O(dokku_sqlite.litestream.litestream_replica#module:snapshot_interval).
        type: str
      age:
        description: Litestream 0.3 age encryption; refused (0.5 does not support it).
        type: dict
      name:
        description: Litestream 0.3 replica name; refused (0.5 has one replica per database).
        type: str
"""
