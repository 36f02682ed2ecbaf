#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: litestream_auth
short_description: Manage a named Litestream credential set on a Dokku host
version_added: "0.1.0"
description:
  - Stores the credentials a Litestream replica needs (an S3 key pair with optional session token,
    endpoint and region; an Azure storage account key; a Google service account's JSON key; an SSH private key or a
    password for SFTP) as a named set on the Dokku host.
  - The M(dokku_sqlite.litestream.litestream_replica) and M(dokku_sqlite.litestream.litestream_restore)
    modules refer to a set by its O(name) and read it on the host, so secrets never travel on a command line
    or into a container's environment.
  - A set is the directory C(<credentials_root>/<name>/), owned by root with mode C(0700), holding
    C(credentials.json) (a JSON object with only the fields given), for SFTP with a key C(ssh_key), and for
    Google Cloud Storage C(gcp-service-account.json). The files are owned by root with mode C(0600) and are replaced
    atomically.
  - The module compares what is stored with what is wanted without revealing either. It also puts back
    the mode and owner of the files and directories it manages when they have drifted.
  - Secrets never appear in the module's results, its diff or its error messages. With C(--diff) the set's fields
    (secrets redacted, the key id shortened) and its files' modes show as lines under the set's path.
options:
  name:
    description:
      - Name of the credential set.
      - Lowercase letters, digits, V(-) and V(_); it starts with a letter or a digit; at most 63 characters.
    type: str
    default: default
  state:
    description:
      - V(present) writes the set; it needs at least one secret to store (see the other options).
      - V(absent) removes the set directory, and only that set, file by file. It refuses (and removes nothing)
        unless the directory is C(0700) root-owned and holds only the files this module writes.
    type: str
    choices: [present, absent]
    default: present
  access_key_id:
    description:
      - S3 (or S3-compatible) access key id. Needs O(secret_access_key).
      - Access keys are for C(s3) replicas (and O(secret_access_key) for an C(abs) replica's account key). A C(gs)
        replica does not use them, as Litestream's Google Cloud Storage client reads only a service account's JSON key,
        see O(service_account_json).
      - Not treated as a secret, but only its first four characters are shown in a diff.
    type: str
  secret_access_key:
    description:
      - S3 (or S3-compatible) secret access key. Needs O(access_key_id).
      - For an C(abs) (Azure Blob Storage) replica, the storage account's key; Litestream reads it as
        C(LITESTREAM_AZURE_ACCOUNT_KEY) and uses it only together with the replica's C(account_name), so a replica
        without an account name that uses this set is refused. O(access_key_id) must be given with it, but an C(abs)
        replica does not read it. Without a key, Litestream's Azure client takes Azure's default credentials (a
        managed identity).
    type: str
  session_token:
    description:
      - Session token for temporary S3 credentials. Needs O(access_key_id) and O(secret_access_key).
    type: str
  endpoint:
    description:
      - Endpoint URL of an S3-compatible store (MinIO, Cloudflare R2, Backblaze B2, Hetzner, Wasabi, ...).
      - Credentials in the URL (V(https://KEY:SECRET@host)) are refused, and the message does not repeat them.
      - Must start with V(http://) or V(https://). Litestream 0.5 assumes https for a bare V(host:port)
        and then hangs against a plain-HTTP server, so the scheme is required.
      - The host must be an ASCII name whose labels are 1 to 63 letters, digits, C(-) and C(_) (no empty label), an
        IPv4 address or an IPv6 address in brackets (an internationalised name in its C(xn--) form); a port is 1 to
        65535.
      - Omit it for AWS S3.
    type: str
  region:
    description:
      - Region of the bucket, for example V(us-east-1) or V(auto) for Cloudflare R2.
    type: str
  ssh_private_key:
    description:
      - Private key (the whole PEM/OpenSSH text) for an SFTP replica. Stored as C(ssh_key) in the set
        directory, with a trailing newline added if missing.
    type: str
  sftp_password:
    description:
      - Password for an SFTP replica.
    type: str
  service_account_json:
    description:
      - The JSON key of a Google Cloud service account (the whole key file's text), for a C(gs) (Google Cloud
        Storage) replica. Litestream's Google Cloud Storage client authenticates with Application Default
        Credentials only, so no access key works for it.
      - It must be a JSON object with C(type) and C(client_email), as the key file Google Cloud creates is; the
        value is never shown in a message.
      - Stored as C(gcp-service-account.json) in the set directory (root, C(0600)). A replica that uses the set gets
        a copy beside its Litestream configuration, mounted read-only into the container, and named by
        C(GOOGLE_APPLICATION_CREDENTIALS) in the credentials file that only Litestream's own process reads (never in
        the container's environment, its command line or the configuration).
      - Read the file's text, for example with V(lookup('file', 'key.json')) or from a vault variable. A YAML mapping
        given here arrives as Python text, not JSON, and is refused; add V(| to_json).
    type: str
  plugin_compat:
    description:
      - Also write the two files the dokku-litestream plugin reads,
        C(<credentials_root>/ACCESS_KEY_ID) and C(<credentials_root>/SECRET_ACCESS_KEY), so hosts that
        still use that plugin keep working while they migrate. Needs O(access_key_id) and
        O(secret_access_key).
      - Each file holds the value followed by a newline, as the plugin's own C(litestream:auth) wrote it.
      - With O(state=absent) the two files are removed as well.
      - See the notes for the ownership these files need.
    type: bool
    default: false
extends_documentation_fragment:
  - dokku_sqlite.litestream.credentials
  - dokku_sqlite.litestream.lock
  - dokku_sqlite.litestream.common.attributes
notes:
  - Runs on the Dokku host as root (use O(ignore:become=true)); the credential files are readable by root only.
  - Exception for O(plugin_compat=true) when a C(dokku) user exists, because the dokku-litestream plugin
    reads its files as that user. The two plugin files are then owned by C(dokku:dokku) (mode C(0600)) and
    O(credentials_root) becomes C(root:dokku) with mode C(0710), so the C(dokku) user can open those two
    files but cannot list the directory or enter the set directories, which stay C(0700 root:root).
    Parent directories the module has to create are then made C(0711). Without a C(dokku) user everything
    stays root-owned. The plugin's own C(dokku litestream:auth) can no longer write there; manage the key
    pair with this module instead.
  - Without O(plugin_compat), O(credentials_root) is kept at C(0700 root:root); a root that another task
    left at C(0710 root:dokku) for O(plugin_compat) is accepted as it is, so tasks for different sets do
    not undo each other.
  - Only one set should use O(plugin_compat=true); the plugin knows a single key pair.
  - The plugin's own C(dokku litestream:deauth) runs C(rm -rf) on O(credentials_root), which deletes every
    set stored here as well.
  - In a diff, secret fields are shown as V(<redacted>) (V(<redacted> (changed\)) after a change) and
    O(access_key_id) as its first four characters followed by an ellipsis.
seealso:
  - module: dokku_sqlite.litestream.litestream_replica
  - module: dokku_sqlite.litestream.litestream_restore
  - name: Litestream configuration reference
    description: The replica settings that consume these credentials.
    link: https://litestream.io/reference/config/
  - name: dokku-litestream plugin
    description: The Dokku plugin whose credential files O(plugin_compat) writes.
    link: https://github.com/axelthegerman/dokku-litestream
author:
  - dokku_sqlite.litestream contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Store the S3 credentials every replica uses by default
  dokku_sqlite.litestream.litestream_auth:
    access_key_id: "{{ vault_litestream_access_key_id }}"
    secret_access_key: "{{ vault_litestream_secret_access_key }}"
    region: eu-central-1
  become: true

- name: Store credentials for an S3-compatible store (Cloudflare R2) under their own name
  dokku_sqlite.litestream.litestream_auth:
    name: r2
    access_key_id: "{{ vault_r2_access_key_id }}"
    secret_access_key: "{{ vault_r2_secret_access_key }}"
    endpoint: "https://{{ r2_account_id }}.r2.cloudflarestorage.com"
    region: auto
  become: true

- name: Store a Google service account's key for a Google Cloud Storage (gs) replica
  dokku_sqlite.litestream.litestream_auth:
    name: gcs
    service_account_json: "{{ lookup('file', 'files/litestream-sa.json') }}"
  become: true

- name: Store an Azure storage account key (an abs replica with account_name uses it)
  dokku_sqlite.litestream.litestream_auth:
    name: azure
    # required with secret_access_key, not read for abs: the account is the replica's account_name
    access_key_id: "{{ azure_storage_account }}"
    secret_access_key: "{{ vault_azure_account_key }}"
  become: true

- name: Store an SSH key for an SFTP replica
  dokku_sqlite.litestream.litestream_auth:
    name: backup-box
    ssh_private_key: "{{ vault_backup_box_ssh_key }}"
  become: true

- name: Keep the dokku-litestream plugin working while migrating away from it
  dokku_sqlite.litestream.litestream_auth:
    access_key_id: "{{ vault_litestream_access_key_id }}"
    secret_access_key: "{{ vault_litestream_secret_access_key }}"
    endpoint: https://s3.eu-central-003.backblazeb2.com
    plugin_compat: true
  become: true

- name: Remove a credential set that no replica uses any more
  dokku_sqlite.litestream.litestream_auth:
    name: old-minio
    state: absent
  become: true
"""

RETURN = r"""
name:
  description: Name of the credential set.
  returned: always
  type: str
  sample: default
path:
  description: Directory of the credential set.
  returned: always
  type: str
  sample: /var/lib/dokku/config/litestream/credentials/default
fields:
  description:
    - Names of the fields stored in the set after the task (in check mode, those that would be stored).
    - Empty after O(state=absent).
  returned: always
  type: list
  elements: str
  sample: [access_key_id, endpoint, region, secret_access_key]
changed_fields:
  description:
    - Names of the fields whose value was added, changed or removed. Never the values.
    - With O(state=absent), the fields of the removed set.
  returned: always
  type: list
  elements: str
  sample: [secret_access_key]
files:
  description:
    - Paths the task created, rewrote, removed or whose mode or owner it put back, in the order it did so.
    - Empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample:
    - /var/lib/dokku/config/litestream/credentials/default/credentials.json
commands:
  description:
    - The dokku and docker commands the task ran. This module only writes files, so the list is always
      empty; it is returned so that every module of the collection has the same shape.
  returned: always
  type: list
  elements: str
  sample: []
lock_wait:
  description: Seconds the task waited for another run's lock on this host (V(0) when it was free, and in check mode).
  returned: success
  type: float
  sample: 0.0
"""

import os

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.auth_core import CredentialFailure, LitestreamAuth
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import (
    HostLock, LockTimeout, lock_argument_spec)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import (
    auth_argument_spec, credential_set_problem)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.no_log import SecretMaskingModule


def write_set(module):
    """The set written (or removed) under the credential sets' lock; raises errors.CollectionError."""
    problem = credential_set_problem(module.params)
    if problem:
        raise errors.InvalidValue(problem)
    if os.geteuid() != 0:
        raise errors.CollectionError(
            "litestream_auth must run as root (become: true): the credential files are root-only")
    # one lock for every set: plugin_compat writes files shared by all sets in credentials_root
    with HostLock(module, "credentials", "the credential sets") as lock:
        result = LitestreamAuth(module.params, module.check_mode, module._diff).run()
    return dict(result, commands=[], lock_wait=lock.waited)


def failure_fields(exc, name):
    """What a failure returns besides its message: the set and path of a CredentialFailure, the set when its lock
    was not acquired."""
    if isinstance(exc, CredentialFailure):
        return dict(name=exc.name, path=exc.path)
    return dict(name=name) if isinstance(exc, LockTimeout) else {}


def main():
    argument_spec = lock_argument_spec()
    argument_spec.update(auth_argument_spec())
    module = SecretMaskingModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        result = write_set(module)
    except errors.CollectionError as exc:
        module.fail_json(msg=str(exc), **failure_fields(exc, module.params["name"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
