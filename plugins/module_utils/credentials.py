# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a credential set written by litestream_auth (replica and restore read them the same way)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import read_text


# Stored in credentials.json, in this order of the documentation; ssh_private_key goes to its own file.
JSON_FIELDS = ("access_key_id", "secret_access_key", "session_token", "endpoint", "region", "sftp_password")
FIELDS = JSON_FIELDS + ("ssh_private_key",)
SECRET_FIELDS = frozenset(("secret_access_key", "session_token", "ssh_private_key", "sftp_password"))


def auth_argument_spec():
    """litestream_auth's own options (the module adds the lock options); litestream_validate checks
    inventory credential sets against the same spec."""
    return dict(
        name=dict(type="str", default="default"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        access_key_id=dict(type="str", no_log=False),
        secret_access_key=dict(type="str", no_log=True),
        session_token=dict(type="str", no_log=True),
        endpoint=dict(type="str"),
        region=dict(type="str"),
        ssh_private_key=dict(type="str", no_log=True),
        sftp_password=dict(type="str", no_log=True),
        # type str, not path: Ansible would expand '~' and '$VARS' in a path; validate.py normalises it
        credentials_root=dict(type="str", default="/var/lib/dokku/config/litestream/credentials"),
        plugin_compat=dict(type="bool", default=False),
    )


def credential_set_problem(params):
    """The first problem with the options, as a message that names no secret; None when they are fine."""
    try:
        v.credential_set_name(params["name"], "name")
        v.collection_root(params["credentials_root"], "credentials_root")
        v.check_bounds(params)  # lock_timeout, given the module's own options
        if params.get("endpoint") is not None:
            v.endpoint(params["endpoint"], "endpoint")
        for field in FIELDS:  # written as UTF-8; check_text never quotes the value (it may be a secret)
            if params.get(field) is not None:
                v.check_text(params[field], field)
    except v.InvalidValue as exc:
        return str(exc)
    if params["state"] == "absent":
        return None
    for field in FIELDS:
        if params.get(field) == "":
            return ("%s is empty: leave the option out instead (an empty value is often an undefined "
                    "vault variable)" % field)
    has_key, has_secret = params.get("access_key_id") is not None, params.get("secret_access_key") is not None
    if has_key and not has_secret:
        return "access_key_id needs secret_access_key: give both or neither"
    if has_secret and not has_key:
        return "secret_access_key needs access_key_id: give both or neither"
    if params.get("session_token") is not None and not has_key:
        return "session_token needs access_key_id and secret_access_key"
    if not (has_key or params.get("ssh_private_key") is not None or params.get("sftp_password") is not None):
        return ("state=present needs a secret to store: access_key_id with secret_access_key, "
                "ssh_private_key or sftp_password")
    if params["plugin_compat"] and not has_key:
        return ("plugin_compat needs access_key_id and secret_access_key: the dokku-litestream plugin only "
                "reads an S3 key pair")
    return None


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
