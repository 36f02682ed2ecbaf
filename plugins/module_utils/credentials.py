# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a credential set written by litestream_auth (replica and restore read them the same way)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import read_text


class MissingCredentials(ls.ConfigError):
    """The credential set named by the replica does not exist (yet)."""


def json_kind(value):
    """JSON's own name for a decoded value's type: null, array, string, number, boolean."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return "boolean" if isinstance(value, bool) else "number"


def load_credentials(root, name, replica_type):
    """The stored credential set as a dict (secrets included), or raise ConfigError naming what is missing.

    credentials.json, plus the ssh_key file's text as ssh_private_key: the modules copy the key beside
    their Litestream configuration and never mount the whole set into a container.
    """
    directory = os.path.join(root, name)
    text = read_text(os.path.join(directory, "credentials.json"))
    ssh_key = os.path.exists(os.path.join(directory, ls.SSH_KEY_FILE))
    if text is None and not ssh_key:
        raise MissingCredentials("credential set %r not found (%s): create it with "
                                 "dokku_sqlite.litestream.litestream_auth" % (name, directory))
    try:
        creds = json.loads(text) if text else {}
    except ValueError:
        raise ls.ConfigError("credential set %r: credentials.json is not valid JSON (rewrite it with "
                             "dokku_sqlite.litestream.litestream_auth)" % name)
    if not isinstance(creds, dict):  # a list or null: never quote it, it may hold a secret
        raise ls.ConfigError("credential set %r: credentials.json holds a JSON %s, not an object (rewrite it with "
                             "dokku_sqlite.litestream.litestream_auth)" % (name, json_kind(creds)))
    # only text fields count: a number or a list where a key belongs is no key
    creds = dict((key, value) for key, value in creds.items() if isinstance(value, str))
    if ssh_key:
        creds["ssh_private_key"] = read_text(os.path.join(directory, ls.SSH_KEY_FILE))
    if replica_type in ("s3", "gs") and not (creds.get("access_key_id") and creds.get("secret_access_key")):
        raise ls.ConfigError("credential set %r has no access_key_id/secret_access_key for a %s replica"
                             % (name, replica_type))
    if replica_type == "sftp" and not (ssh_key or creds.get("sftp_password")):
        raise ls.ConfigError("credential set %r has no ssh_private_key or sftp_password for an sftp replica" % name)
    return creds
