#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: dokku_storage
short_description: Persistent storage directory and mount for a Dokku app's SQLite databases
version_added: "0.1.0"
description:
  - Ensures the storage directory C(/var/lib/dokku/data/storage/<storage>) exists and belongs to the
    app's user, and that it is mounted into the app at O(mount_path).
  - Reads the app's mounts once per run and writes only what is missing, so a second run executes no
    writing command. Restarts the app once, and only when a mount was actually added or removed and
    the app is running.
  - Works with every Dokku generation (bash-era storage up to 0.37.4, the Go rewrite, 0.38 named
    entries); the version is detected with C(dokku version).
options:
  mount_path:
    description:
      - Absolute path inside the app's containers where the directory is mounted.
      - Normalised; C(..), C(:), whitespace and control characters are refused (older Dokku splits its docker
        options on whitespace, and C(:) separates the fields of a docker mount).
      - Do not mount over a directory the app ships (for Rails, not C(/app/db) itself).
    type: str
    default: /app/db/litestream
  chown:
    description:
      - Owner of the directory, as C(storage:ensure-directory --chown) understands it.
      - V(herokuish) is uid 32767, V(heroku) 1000, V(paketo) 2000, V(root) 0, V(false) leaves the owner alone.
      - A numeric uid (digits C(0-9) only, up to 2147483646) needs Dokku 0.38.22 or newer; V(root) needs 0.37.5 or
        newer. Anything else is refused before any command runs.
      - V(paketo) is sent as C(packeto) to Dokku older than 0.35.17, which knows only that spelling.
      - When Docker remaps users (C(userns-remap), read from C(docker info)), Dokku chowns to the uid plus 165536,
        and the module expects that owner, so a remapped host is not chowned again on every run.
    type: str
    default: herokuish
  create_app:
    description: Create the app with C(apps:create) when it does not exist, instead of failing.
    type: bool
    default: false
  restart:
    description:
      - Restart the app (C(ps:restart)) once when a mount was added or removed, and only when it is running.
      - Whether it runs is read with C(dokku --quiet ps:report <app> --running) just before; an app that is stopped
        (V(false)) is left stopped, so removing a mount never starts an app its user had stopped. The new mount
        takes effect at its next start.
    type: bool
    default: true
  state:
    description:
      - V(present) ensures directory and mount; V(absent) removes the mount.
      - The directory and the databases in it are never deleted.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - dokku_sqlite.litestream.app
  - dokku_sqlite.litestream.common
  - dokku_sqlite.litestream.lock
  - dokku_sqlite.litestream.common.attributes
notes:
  - Runs on the Dokku host as root.
  - Dokku 0.38 prints a deprecation notice for C(storage:ensure-directory); it is still the one command
    that creates and chowns the directory on every generation, so the module uses it.
seealso:
  - module: dokku_sqlite.litestream.litestream_replica
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Storage for the blog's SQLite databases, mounted at /app/db/litestream
  dokku_sqlite.litestream.dokku_storage:
    app: blog

- name: A Dockerfile app running as uid 1000, mounted at /data, created when missing
  dokku_sqlite.litestream.dokku_storage:
    app: notes
    storage: notes-data
    mount_path: /data
    chown: heroku
    create_app: true
"""

RETURN = r"""
app:
  description: The app.
  returned: always
  type: str
  sample: blog
storage_dir:
  description: The storage directory on the host.
  returned: always
  type: str
  sample: /var/lib/dokku/data/storage/blog--db
mount:
  description: The mount this module manages.
  returned: always
  type: dict
  sample: {host_path: /var/lib/dokku/data/storage/blog--db, container_path: /app/db/litestream}
app_created:
  description: Whether the app was (or in check mode would be) created.
  returned: always
  type: bool
directory_changed:
  description: Whether the directory was (or would be) created or chowned.
  returned: always
  type: bool
mount_changed:
  description: Whether the mount was (or would be) added or removed.
  returned: always
  type: bool
restarted:
  description: Whether the app was (or would be) restarted.
  returned: always
  type: bool
app_running:
  description:
    - Whether the app ran before the restart, as C(ps:report --running) says (V(true), V(false) or V(mixed)).
    - Read only when a mount changed on an existing app and O(restart) is true; a V(false) app is not restarted.
  returned: when read
  type: str
  sample: "true"
dokku_version:
  description: The Dokku version found on the host.
  returned: success
  type: str
  sample: 0.38.27
commands:
  description:
    - The dokku commands run, in order (reads included), and the C(docker info) read of the user-namespace setting.
    - A run that changes nothing runs only reads.
  returned: always
  type: list
  elements: str
  sample: ["dokku version", "dokku apps:exists blog", "dokku storage:list blog --format json",
           "docker info --format {{json .SecurityOptions}}"]
lock_wait:
  description: Seconds the task waited for another run's lock on this host (V(0) when it was free, and in check mode).
  returned: success
  type: float
  sample: 0.0
"""

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import common_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerRunner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.dokku import (
    DokkuRunner, check_storage_options, storage_argument_spec)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.host_reads import HostReads
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import HostLock, lock_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.storage_core import StoragePlan


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(lock_argument_spec())
    argument_spec.update(storage_argument_spec())
    module = SecretMaskingModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    dokku = DokkuRunner(module, params["dokku_binary"])
    reads = HostReads(dokku, DockerRunner(module, params["docker_binary"], commands=dokku.commands))
    plan = StoragePlan(params, params["mount_path"], reads, dokku, module.check_mode, restart=params["restart"])
    result = plan.result
    result["lock_wait"] = 0.0
    try:
        # every input check, before the first dokku command (reads included)
        plan.container_path = result["mount"]["container_path"] = check_storage_options(params)
        # from the first read to the restart: a parallel run would mount twice (Dokku refuses the second)
        with HostLock(module, "app-%s" % plan.app, "app %s" % plan.app) as lock:
            result["lock_wait"] = lock.waited
            plan.converge(plan.dokku.storage_mounts(plan.app))
    except (errors.CollectionError, OSError) as exc:
        module.fail_json(msg=str(exc), **result)
    if module._diff:
        result["diff"] = plan.diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
