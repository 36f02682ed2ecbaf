# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roots and defaults every module, role and playbook shares, written once.

Argument specs take their defaults from here; the roles' meta/argument_specs.yml and defaults/main.yml repeat some
of them (Ansible reads those files, not Python), and a unit test fails when a copy disagrees with this module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Dokku's own roots (dokku's storage plugin keeps every app's storage directory below STORAGE_ROOT)
DOKKU_ROOT = "/var/lib/dokku"
STORAGE_ROOT = DOKKU_ROOT + "/data/storage"
# the collection's own directories: per-app sidecar configuration, credential sets, health state
COLLECTION_ROOT = DOKKU_ROOT + "/config/litestream"
CONFIG_ROOT = COLLECTION_ROOT + "/apps"
CREDENTIALS_ROOT = COLLECTION_ROOT + "/credentials"
HEALTH_STATE_DIR = COLLECTION_ROOT + "/health"
# where drills restore (one fresh directory per run below it)
DRILL_SCRATCH_DIR = "/var/lib/dokku-litestream-drill"

# the Litestream image of the sidecar, restores, drills and health checks unless an entry names another
IMAGE = "litestream/litestream:0.5.17"
DATABASES = ("production.sqlite3",)
DATABASE = DATABASES[0]
CREDENTIAL_SET = "default"
