# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a credential set written by litestream_auth (replica and restore read them the same way)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends, defaults, errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import read_text


CREDENTIALS_FILE = "credentials.json"
# Stored in credentials.json, in this order of the documentation. A field Litestream reads from a file (sftp's
# ssh_private_key, gs's service_account_json) is stored as a file of its own, named as the copy beside the config.
JSON_FIELDS = ("access_key_id", "secret_access_key", "session_token", "endpoint", "region", "sftp_password")
FILE_FIELDS = backends.credential_files()  # field -> file name
FIELDS = JSON_FIELDS + tuple(FILE_FIELDS)
SECRET_FIELDS = frozenset(("secret_access_key", "session_token", "sftp_password")) | frozenset(FILE_FIELDS)
# what a service-account key file holds besides its key: Google's client libraries need both
SERVICE_ACCOUNT_KEYS = ("type", "client_email")


def auth_argument_spec():
    """litestream_auth's own options (the module adds the lock options); litestream_validate checks
    inventory credential sets against the same spec."""
    return dict(
        name=dict(type="str", default=defaults.CREDENTIAL_SET),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        access_key_id=dict(type="str", no_log=False),
        secret_access_key=dict(type="str", no_log=True),
        session_token=dict(type="str", no_log=True),
        endpoint=dict(type="str"),
        region=dict(type="str"),
        ssh_private_key=dict(type="str", no_log=True),
        sftp_password=dict(type="str", no_log=True),
        service_account_json=dict(type="str", no_log=True),
        # type str, not path: Ansible would expand '~' and '$VARS' in a path; validate.py normalises it
        credentials_root=dict(type="str", default=defaults.CREDENTIALS_ROOT),
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
    return present_problem(params) or service_account_problem(params.get("service_account_json"))


def present_problem(params):
    has_key, has_secret = params.get("access_key_id") is not None, params.get("secret_access_key") is not None
    if has_key and not has_secret:
        return "access_key_id needs secret_access_key: give both or neither"
    if has_secret and not has_key:
        return "secret_access_key needs access_key_id: give both or neither"
    if params.get("session_token") is not None and not has_key:
        return "session_token needs access_key_id and secret_access_key"
    if not (has_key or any(params.get(field) is not None for field in ("sftp_password",) + tuple(FILE_FIELDS))):
        return ("state=present needs a secret to store: access_key_id with secret_access_key, ssh_private_key or "
                "sftp_password, or service_account_json")
    if params["plugin_compat"] and not has_key:
        return ("plugin_compat needs access_key_id and secret_access_key: the dokku-litestream plugin only "
                "reads an S3 key pair")
    return None


def service_account_problem(text, option="service_account_json"):
    """Why a text is not a Google service account's JSON key, naming the option and never the value (nor a part of
    it: the decoder's own message quotes the text); None when it is one, or not given."""
    if text is None:
        return None
    hint = ("give the whole key file Google Cloud created for the service account, as text (for example "
            "lookup('file', 'key.json'); a YAML mapping arrives as Python text, not JSON: add | to_json)")
    try:
        key = json.loads(text)
    except (ValueError, RecursionError):  # deep nesting exhausts the decoder's stack
        return "%s: is not JSON (the value is not shown: it is a secret): %s" % (option, hint)
    if not isinstance(key, dict):
        return "%s: holds a JSON %s, not an object (the value is not shown): %s" % (option, json_kind(key), hint)
    missing = [name for name in SERVICE_ACCOUNT_KEYS if not (isinstance(key.get(name), str) and key[name].strip())]
    if missing:
        return ("%s: the JSON object has no %s (the value is not shown): a service account's key file holds %s"
                % (option, " and no ".join(missing), " and ".join(SERVICE_ACCOUNT_KEYS)))
    return None


class MissingCredentials(ls.ConfigError, errors.MissingCredentials):
    """The credential set named by the replica does not exist, or lacks what the replica's type needs (yet: in
    --check, the credential task before may be about to write it)."""


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

    credentials.json, plus the text of each file field's file (ssh_key, the service account's JSON): the modules
    copy those beside their Litestream configuration and never mount the whole set into a container.
    """
    directory = os.path.join(root, name)
    text = read_text(os.path.join(directory, CREDENTIALS_FILE))
    files = dict((field, os.path.join(directory, file_name)) for field, file_name in FILE_FIELDS.items())
    files = dict((field, path) for field, path in files.items() if os.path.exists(path))
    if text is None and not files:
        raise MissingCredentials("credential set %r not found (%s): create it with "
                                 "dokku_sqlite.litestream.litestream_auth" % (name, directory))
    try:
        creds = json.loads(text) if text else {}
    except (ValueError, RecursionError):
        raise ls.ConfigError("credential set %r: credentials.json is not valid JSON (rewrite it with "
                             "dokku_sqlite.litestream.litestream_auth)" % name)
    if not isinstance(creds, dict):  # a list or null: never quote it, it may hold a secret
        raise ls.ConfigError("credential set %r: credentials.json holds a JSON %s, not an object (rewrite it with "
                             "dokku_sqlite.litestream.litestream_auth)" % (name, json_kind(creds)))
    # only text fields count: a number or a list where a key belongs is no key
    creds = dict((key, value) for key, value in creds.items() if isinstance(value, str) and key not in FILE_FIELDS)
    for field, path in files.items():
        creds[field] = read_text(path)
    check_required(name, creds, backends.get(replica_type))
    return creds


def check_required(name, creds, backend):
    """A set must hold every field of one of the backend's groups (an s3 key pair; an sftp key or password)."""
    groups = backend.credentials_required
    if groups and not any(all(creds.get(field) for field in group) for group in groups):
        # MissingCredentials: in --check, the credential task before this one may be about to write them (a set
        # moving from keys to a gs service account), as it may create a set that does not exist yet
        raise MissingCredentials("credential set %r has no %s for a %s replica (%s): store it with "
                                 "dokku_sqlite.litestream.litestream_auth" % (
                                     name, " or ".join("/".join(group) for group in groups), backend.name,
                                     backend.label))
