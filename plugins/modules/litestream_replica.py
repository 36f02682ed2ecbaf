#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: litestream_replica
short_description: Continuous Litestream replication of a Dokku app's SQLite databases
version_added: "0.1.0"
description:
  - Renders the Litestream 0.5 configuration for an app's databases and runs the replication sidecar
    container C(dokku.litestream.<app>) next to the app.
  - The sidecar runs a pinned image with C(--restart unless-stopped), so it survives reboots and docker
    restarts; its stop timeout is longer than Litestream's shutdown sync, so a stop never cuts the last sync.
  - Keys never enter the configuration file, the container's environment or its command line, so neither
    C(docker inspect) nor C(ps) shows them. They sit in C(credentials.env) (root, 0600) next to the
    configuration; the sidecar's C(/bin/sh) entrypoint loads it into Litestream's own process only. The image
    therefore needs C(/bin/sh); the official Debian-based images have it, the C(-scratch) variants do not.
  - Each time the sidecar starts (created, recreated, restarted by its policy, after a reboot) it first empties
    each database's WAL with C(PRAGMA wal_checkpoint(TRUNCATE)) (the image's C(sqlite3), waiting up to 5 s
    for the app's readers while the app's writers wait), so Litestream's first sync is a full snapshot. Without it Litestream 0.5.17 can
    resume on a WAL the app restarted while no Litestream ran and never replicate the commits made meanwhile
    (see the README, Reliability). Without C(sqlite3) in the image, or when the WAL cannot be emptied, the
    sidecar starts anyway and says so in its log, starting with C(sidecar:).
  - The configuration is read with C(-no-expand-env), so a C($) in a value stays literal; and the container
    never gets C(AWS_CA_BUNDLE), which breaks every Litestream 0.5 S3 client.
  - The container carries a hash of the configuration (secrets aside) and the image. It is recreated only
    when that hash or the image changes; a rotated secret restarts it.
  - The sidecar does not carry Dokku's C(com.dokku.app-name) label, on purpose. Since Dokku 0.36.0 C(ps:stop)
    and C(apps:destroy) stop every container with that label and set its restart policy to C(no), and nothing
    in Dokku starts it again, so a labelled sidecar would stop replicating after the first maintenance stop.
    Without the label, Dokku's C(ps:*) commands, deploys and cleanups leave the sidecar running (see the README's
    table of Dokku commands). A sidecar created by an earlier release with the label is recreated once.
  - A restart policy changed behind the module's back is put back in place with C(docker container update).
options:
  storage_root:
    description:
      - Where Dokku keeps storage directories.
      - An absolute path, normalised; C(..), C(:) (it is part of a docker mount) and control characters are
        refused, and C(~) or C($VAR) are not expanded.
    type: str
    default: /var/lib/dokku/data/storage
  databases:
    description:
      - File names of the SQLite databases in the storage directory. Plain names, no C(/), C(..), control
        characters or leading C(.), at most 200 bytes; a name ending in C(-wal), C(-shm) or C(-journal) is refused.
      - Each replicates to C(<replica.path>/<file name>).
    type: list
    elements: str
    default: [production.sqlite3]
  image:
    description:
      - The Litestream image, pinned. Replicate and restore with the same version; never downgrade.
      - Letters, digits and the characters C(._:/@+-), starting with a letter or digit (it is one docker argument).
    type: str
    default: litestream/litestream:0.5.17
  network:
    description: Docker network of the sidecar.
    type: str
    default: host
  metrics_port:
    description: Serve Prometheus metrics on C(127.0.0.1:<port>) (loopback only), a port from 1 to 65535. Off when unset.
    type: int
  shutdown_sync_timeout:
    description:
      - Seconds Litestream keeps trying its final sync on stop, 0 to 3600; the container's stop timeout is this plus 15.
    type: int
    default: 30
  first_sync_timeout:
    description:
      - After the sidecar was created, recreated or restarted, seconds to wait until Litestream proves it can use the
        replica store - the first successful sync of each database that exists (C(litestream list) on the sidecar's
        control socket), or one listing of the replica's level 0 for a database not created yet.
      - Meanwhile the sidecar's log is read. A reason that waiting cannot mend (NoSuchBucket, a key the store refuses,
        AccessDenied, an sftp host key mismatch) fails the task at once with the store's own words; an unreachable
        store fails at the bound with Litestream's last error. The sidecar stays, running, and keeps retrying.
      - Litestream's S3 client needs about two minutes to report an endpoint that refuses connections; raise the
        bound to see that reason rather than "no first successful sync".
      - V(0) does not wait; at most 3600.
    type: int
    default: 30
  heartbeat_url:
    description:
      - A dead-man's-switch URL (the healthchecks.io convention) that Litestream pings with a plain C(GET) every
        O(heartbeat_interval), but only while every database of the app synced within that interval. A service that
        misses a ping alerts a person.
      - Per app, not per host - each sidecar pings for its own databases, so a healthy app cannot hide a failing one.
      - The URL is a capability and is treated as a secret - it is written only into the root-only C(litestream.yml),
        never into a label, C(commands), a diff or an error message. Litestream itself logs the URL when a ping
        fails, so C(docker logs) of the sidecar may show it.
      - Must be C(http://) or C(https://) with a host, without a C(user:password@) part.
    type: str
  heartbeat_interval:
    description:
      - How often the heartbeat is pinged, a duration from C(1m) (Litestream's minimum) to C(8760h). Litestream's
        default is C(5m). Give the monitoring service a grace of at least twice the interval plus 15 seconds.
    type: str
  snapshot_interval:
    description: Global snapshot interval, a duration from C(1m) to C(8760h) (a year).
    type: str
  snapshot_retention:
    description:
      - Global snapshot retention, a duration from C(1m) to C(87600h) (ten years); how far back point-in-time restores
        reach.
    type: str
  config_root:
    description:
      - Where the rendered configuration lives, one 0700 directory per app.
      - O(state=absent) removes C(<config_root>/<app>), and only when its resolved path lies strictly inside
        the resolved O(config_root) and is a directory (not a symlink).
      - An absolute path, normalised, that is not C(/) or a system directory such as C(/etc) or C(/var/lib);
        C(..), C(:) and control characters are refused, C(~) and C($VAR) are not expanded.
    type: str
    default: /var/lib/dokku/config/litestream/apps
  state:
    description:
      - V(started) creates and runs the sidecar; V(present) creates it and keeps its current run state;
        V(stopped) creates it stopped; V(absent) removes the sidecar and its configuration.
      - Replicas are never deleted.
      - Every option given is validated first, whatever the state, before a file is read or a docker command runs.
      - O(replica) is required unless the state is V(absent).
    type: str
    choices: [present, started, stopped, absent]
    default: started
  changed_credentials:
    description:
      - Names of the credential sets that an earlier task of the same run changes, such as the
        M(dokku_sqlite.litestream.litestream_auth) task of the replication role, which passes them.
      - Read in check mode only. That task then writes nothing, so without this list a rotated secret would look
        unchanged here, and C(--check) would predict no restart where the real run restarts the sidecar.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - dokku_sqlite.litestream.app
  - dokku_sqlite.litestream.replica
  - dokku_sqlite.litestream.common
  - dokku_sqlite.litestream.credentials
  - dokku_sqlite.litestream.lock
  - dokku_sqlite.litestream.common.attributes
notes:
  - Runs on the Dokku host as root. Create the storage first (M(dokku_sqlite.litestream.dokku_storage)).
  - With C(--diff) the configuration file shows as lines under its path (secrets redacted), and the container's
    state as a second entry.
  - Litestream 0.5 refuses two replicas per database and silently ignores 0.3 options; both are refused here.
  - Replacing the sidecar's image by an older Litestream version (by the tags, for example C(0.5.17) to
    C(0.5.15)) is refused, since older versions cannot read or continue what newer ones wrote.
seealso:
  - module: dokku_sqlite.litestream.litestream_auth
  - module: dokku_sqlite.litestream.dokku_storage
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Replicate the blog's database to an S3-compatible store
  dokku_sqlite.litestream.litestream_replica:
    app: blog
    replica:
      type: s3
      bucket: backups
      path: blog
      endpoint: https://s3.eu-central-003.backblazeb2.com
      region: eu-central-003
      credentials: b2

- name: Replicate to another server over sftp, host key checked
  dokku_sqlite.litestream.litestream_replica:
    app: notes
    databases: [production.sqlite3, queue.sqlite3]
    replica:
      type: sftp
      host: backup.example.net:22
      user: litestream
      path: /srv/backups/notes
      host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleHostKey"
      credentials: backup-sftp

- name: Remove the sidecar (the replica stays where it is)
  dokku_sqlite.litestream.litestream_replica:
    app: blog
    state: absent
"""

RETURN = r"""
first_sync_seconds:
  description: Seconds until Litestream proved it can use the replica store after this run started the sidecar.
  returned: when the run started or restarted the sidecar and O(first_sync_timeout) is not V(0)
  type: float
  sample: 1.4
container:
  description: The sidecar after the run (no environment is returned, it has none).
  returned: always
  type: dict
  sample: {exists: true, name: dokku.litestream.blog, running: true, restart_policy: unless-stopped}
config:
  description: The rendered configuration with every secret redacted.
  returned: unless state is absent
  type: str
config_path:
  description: The configuration file on the host (root, 0600). Its directory also holds C(credentials.env).
  returned: always
  type: str
  sample: /var/lib/dokku/config/litestream/apps/blog/litestream.yml
config_hash:
  description: Hash of the redacted configuration and the image, as carried by the container label.
  returned: unless state is absent
  type: str
actions:
  description: What was (or in check mode would be) done, in order.
  returned: always
  type: list
  elements: str
  sample: [write config, create container, start container]
commands:
  description: The docker commands run, in order (reads included). A run that changes nothing runs only reads.
  returned: always
  type: list
  elements: str
lock_wait:
  description: Seconds the task waited for another run's lock on this host (V(0) when it was free, and in check mode).
  returned: success
  type: float
  sample: 0.0
"""

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import common_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerRunner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import HostLock, lock_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.sidecar_core import SidecarPlan


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(lock_argument_spec())
    argument_spec.update(ls.sidecar_argument_spec())
    # read in check mode only: which credential sets an earlier task of the run changes (the role passes them)
    argument_spec.update(changed_credentials=dict(type="list", elements="str", default=[]))
    module = SecretMaskingModule(
        argument_spec=argument_spec, supports_check_mode=True,
        required_if=[("state", state, ["replica"]) for state in ("present", "started", "stopped")])
    docker = DockerRunner(module, module.params["docker_binary"])
    plan = SidecarPlan(module.params, docker, module.check_mode, module.warn, want_diff=module._diff)
    result = plan.result
    result["lock_wait"] = 0.0
    try:
        # bad input fails here, for every state, before a single file is read or docker command runs
        rendered = plan.prepare()
        # from the inspect to the start: a parallel run would `docker create` the same name (a conflict)
        with HostLock(module, "app-%s" % plan.app, "app %s" % plan.app) as lock:
            result["lock_wait"] = lock.waited
            current = docker.inspect_container(plan.name)
            image_id = docker.image_id(module.params["image"]) if module.params["state"] != "absent" else None
            plan.converge(rendered, current, image_id)
    except (errors.CollectionError, OSError) as exc:
        # the path and the OS error, never file content
        module.fail_json(msg=errors.app_message(plan.app, exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
