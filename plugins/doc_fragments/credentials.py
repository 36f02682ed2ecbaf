# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared documentation for the modules that write or read Litestream credential sets."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # Where the credential sets live; litestream_auth writes them, the replica and restore modules read them.
    DOCUMENTATION = r"""
options:
  credentials_root:
    description:
      - Directory that holds the credential sets, one sub-directory per set name.
      - Each set is stored as C(<credentials_root>/<name>/credentials.json) (and C(ssh_key) for SFTP,
        C(gcp-service-account.json) for Google Cloud Storage), owned by root, directory mode C(0700), file mode
        C(0600).
      - The default is the directory the dokku-litestream plugin uses for its own two files, so both can
        live side by side during a migration.
      - An absolute path, normalised; C(..), C(:) and control characters are refused. C(~) and C($VAR) are
        not expanded (the option is a string, not a path, on purpose).
      - M(dokku_sqlite.litestream.litestream_auth) also refuses C(/) and system directories such as C(/etc),
        C(/var/lib) or C(/tmp), since it sets the directory's mode and removes sets inside it.
    type: str
    default: /var/lib/dokku/config/litestream/credentials
"""

    # The inventory's litestream_credential_sets as one option: litestream_validate checks them, litestream_host
    # writes them too; both take the options of litestream_auth (credentials.auth_argument_spec).
    CREDENTIAL_SETS = r"""
options:
  credential_sets:
    description:
      - The entries of C(litestream_credential_sets), each with the options of M(dokku_sqlite.litestream.litestream_auth)
        and checked as that module checks them. Secret values are never shown (the secret options are C(no_log)).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the set, as M(dokku_sqlite.litestream.litestream_auth)'s O(dokku_sqlite.litestream.litestream_auth#module:name).
        type: str
        default: default
      state:
        description: V(absent) removes the set.
        type: str
        choices: [present, absent]
        default: present
      access_key_id:
        description: S3 access key id (access keys are for s3 replicas).
        type: str
      secret_access_key:
        description: S3 secret access key, or an abs replica's storage account key (used with its account_name).
        type: str
      session_token:
        description: Temporary session token.
        type: str
      endpoint:
        description: Default S3 endpoint (with scheme) for replicas using this set.
        type: str
      region:
        description: Default S3 region for replicas using this set.
        type: str
      ssh_private_key:
        description: Private key for sftp replicas.
        type: str
      sftp_password:
        description: Password for sftp replicas.
        type: str
      service_account_json:
        description:
          - A Google service account's JSON key (the key file's text, with C(type) and C(client_email)), for gs
            replicas; Litestream's gs client reads nothing else.
        type: str
      credentials_root:
        description: Directory of the credential sets.
        type: str
        default: /var/lib/dokku/config/litestream/credentials
      plugin_compat:
        description: Also write the files the dokku-litestream plugin reads.
        type: bool
        default: false
"""
