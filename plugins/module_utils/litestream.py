# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Litestream 0.5 configuration: replica validation, rendering, redaction, hashing; Litestream's times and TXIDs.

Pure functions (no I/O) so that modules and unit tests share exactly one model. The rendered file
is plain YAML whose scalars are JSON-quoted (JSON strings are valid YAML), so no YAML library is
needed on the Dokku host, and Litestream runs with -no-expand-env so a `$` in a secret survives.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import datetime
import hashlib
import json
import os
import re
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends, defaults
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

DEFAULT_MOUNT_DIR = "/data"
# how long the sidecar's start waits for the app's readers to let the WAL be emptied (the app's writers wait
# meanwhile; a failure only delays nothing: Litestream starts anyway and the log says so)
WAL_CHECKPOINT_TIMEOUT_MS = 5000
CONFIG_DIR_IN_CONTAINER = backends.CONTAINER_CONFIG_DIR
CONFIG_FILE = "litestream.yml"
REDACTED = "<redacted>"
DURATION_RE = v.DURATION_RE  # the durations' bounds are in validate.BOUNDS
duration_seconds = v.duration_seconds
# Litestream pings heartbeat_url with a plain GET
HEARTBEAT_URL_RE = re.compile(r"https?://[^\s/?#@]+(?:[/?#]\S*)?")
# Litestream's control socket inside the sidecar (off by default): `litestream list` reads each database's
# last successful sync from it, for the health check and the provision's first-sync wait
SOCKET_PATH = "/var/run/litestream.sock"
IMAGE_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)(?:\Z|[-+])")
# RFC 3339 as Litestream and Docker write it (and Litestream's -timestamp reads it), nanoseconds at most
TIMESTAMP_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
TXID_RE = re.compile(r"(0x)?([0-9a-fA-F]{1,16})")

# Keys Litestream 0.3 understood per replica that 0.5 silently ignores (or rejects): refusing them
# here is the only way the user learns their retention or encryption setting does nothing.
V03_ONLY = {
    "retention": "retention is global in Litestream 0.5: set snapshot_retention instead",
    "retention_check_interval": "Litestream 0.5 has no per-replica retention check: remove it",
    "snapshot_interval": "snapshots are global in Litestream 0.5: set snapshot_interval at the top level",
    "age": "age encryption exists only in Litestream 0.3 (0.5 refuses to start with it)",
    "name": "Litestream 0.5 allows one replica per database, so replicas have no name",
}

CREDENTIALS_ENV_FILE = "credentials.env"

# Fields every replica spec may hold; each type's own are its backend's `fields`.
COMMON_FIELDS = {"type", "url", "path", "sync_interval", "credentials", "location"}
# replica.location: where a database's replica sits under the replica's path
LOCATIONS = ("per_database", "path")
# the URL's query keys (validate.HARMLESS_QUERY_KEYS) and the replica fields they fill
QUERY_FIELDS = (("endpoint", "endpoint"), ("region", "region"), ("forcePathStyle", "force_path_style"),
                ("skipVerify", "skip_verify"))
BOOLEAN_FIELDS = ("force_path_style", "skip_verify")
# heartbeat-url is a capability (whoever knows it can report the app healthy): a secret like the keys
SECRET_KEYS = ("access-key-id", "secret-access-key", "session-token", "password", "account-key", "heartbeat-url")
SECRET_LINE_RE = re.compile(r"^(\s*(?:%s):\s*).*$" % "|".join(SECRET_KEYS), re.M)


def replica_argument_spec():
    """The `replica` suboptions shared by the modules that read or write a replica.

    The Litestream 0.3 options are declared only so that normalize_replica can refuse them with a
    reason, instead of Ansible's generic "Unsupported parameters".
    """
    spec = dict(
        type=dict(type="str", choices=list(backends.NAMES)),
        url=dict(type="str"),
        bucket=dict(type="str"),
        path=dict(type="str"),
        endpoint=dict(type="str"),
        region=dict(type="str"),
        force_path_style=dict(type="bool"),
        skip_verify=dict(type="bool"),
        sync_interval=dict(type="str"),
        host=dict(type="str"),
        user=dict(type="str"),
        host_key=dict(type="str", no_log=False),
        credentials=dict(type="str", default=defaults.CREDENTIAL_SET, no_log=False),
        account_name=dict(type="str"),
        location=dict(type="str", choices=list(LOCATIONS)),
    )
    # declared so that normalize_replica refuses them with V03_ONLY's reason
    spec.update(
        retention=dict(type="str"),
        retention_check_interval=dict(type="str"),
        snapshot_interval=dict(type="str"),
        age=dict(type="dict"),
        name=dict(type="str"),
    )
    return spec


class ConfigError(v.InvalidValue):
    """The user's input cannot become a working Litestream 0.5 configuration."""


def sidecar_argument_spec():
    """litestream_replica's own options (the module adds the common and lock options); litestream_validate
    checks inventory entries against the same spec, so both have one set of types and defaults."""
    return dict(
        app=dict(type="str", required=True),
        storage=dict(type="str"),
        # type str, not path: Ansible would expand '~' and '$VARS' in a path; validate.py normalises it
        storage_root=dict(type="str", default=defaults.STORAGE_ROOT),
        databases=dict(type="list", elements="str", default=list(defaults.DATABASES)),
        replica=dict(type="dict", options=replica_argument_spec()),
        image=dict(type="str", default=defaults.IMAGE),
        network=dict(type="str", default="host"),
        metrics_port=dict(type="int"),
        shutdown_sync_timeout=dict(type="int", default=30),
        first_sync_timeout=dict(type="int", default=30),
        heartbeat_url=dict(type="str", no_log=True),
        heartbeat_interval=dict(type="str"),
        snapshot_interval=dict(type="str"),
        snapshot_retention=dict(type="str"),
        credentials_root=dict(type="str", default=defaults.CREDENTIALS_ROOT),
        config_root=dict(type="str", default=defaults.CONFIG_ROOT),
        state=dict(type="str", choices=["present", "started", "stopped", "absent"], default="started"),
    )


def check_sidecar_options(params):
    """Every check of litestream_replica's options but the app name; raises validate.InvalidValue.

    Returns the normalised roots and the replica fields (None without a replica).
    """
    v.storage_name(params["storage"] or "%s--db" % params["app"])
    checked = dict(
        # config_root/<app> is removed with state=absent: it must be a directory of the collection's own
        config_root=v.collection_root(params["config_root"], "config_root"),
        storage_root=v.absolute_path(params["storage_root"], "storage_root", mount=True),
        credentials_root=v.absolute_path(params["credentials_root"], "credentials_root"),
        fields=None)
    for db in params["databases"]:
        v.db_file_name(db, "databases")
    v.docker_word(params["image"], "image")
    v.docker_word(params["network"], "network")
    check_heartbeat(params.get("heartbeat_url"), params.get("heartbeat_interval"))
    # metrics_port, the timeouts, snapshot_interval, snapshot_retention (and lock_timeout, given the module's own)
    v.check_bounds(params)
    if params["replica"] is not None:
        checked["fields"] = normalize_replica(params["replica"])
        check_location(checked["fields"], params["databases"])
        if backends.of(checked["fields"]).host_path:  # the sidecar mounts both: the replica must not hold the database
            v.outside_storage(checked["fields"]["path"], "replica.path", os.path.join(
                checked["storage_root"], params["storage"] or "%s--db" % params["app"]), checked["storage_root"])
    elif params["state"] != "absent":  # required_if counts an explicit null as given
        raise v.InvalidValue("replica is required unless state is absent")
    return checked


def check_heartbeat(url, interval):
    """heartbeat_url and heartbeat_interval as Litestream accepts them; messages never show the URL."""
    if url is not None:
        if not isinstance(url, str) or not HEARTBEAT_URL_RE.fullmatch(url) or v.CONTROL_RE.search(url):
            raise v.InvalidValue("heartbeat_url: must be one http:// or https:// URL with a host, without spaces or "
                                 "a user:password@ part (the value is not shown: the URL is a secret)")
        if len(url) > 2048:
            raise v.InvalidValue("heartbeat_url: longer than 2048 characters (the value is not shown: it is a secret)")
    if interval is not None:
        if url is None:
            raise v.InvalidValue("heartbeat_interval: needs heartbeat_url (the URL pinged at that interval)")
        v.in_range(interval, "heartbeat_interval")


def _parse_url(url):
    """'s3://bucket/prefix?endpoint=...&region=...' -> replica fields (explicit, like the config form)."""
    v.no_credentials_in_url(url, "replica.url", user_allowed=True)  # before any message shows the URL
    match = re.fullmatch(r"([a-zA-Z0-9+.-]*)://(.*)", url or "", re.S)
    if not match:
        raise ConfigError("replica url %s has no scheme (expected one of %s)" % (v.shown(url), ", ".join(
            "%s://" % t for t in backends.NAMES)))
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme not in backends.BY_NAME and scheme not in backends.RENAMED:
        raise ConfigError("replica url %s: unknown scheme '%s' (expected one of %s)" % (
            v.shown(url), scheme, ", ".join(backends.NAMES)))
    backend = backends.get(scheme, "replica.url")
    if not backend.url_user:  # only sftp (user@host) and abs (account@container) have a user part
        v.no_credentials_in_url(url, "replica.url")
    rest, _sep, raw_query = rest.partition("?")
    fields = {"type": backend.name}
    if backend.host_path:
        if not rest.startswith("/"):  # file://relative would silently become /relative
            raise ConfigError("replica.url: %s is not an absolute file URL: write file:///absolute/path"
                              % v.shown(url))
        fields["path"] = rest
        return fields
    authority, _sep, path = rest.partition("/")
    if backend.url_user:
        fields[backend.url_user], _at, authority = authority.rpartition("@")
    fields["bucket" if backend.container else "host"] = authority
    fields["path"] = _server_path(path) if backend.server_path else path.strip("/")
    fields.update(_query_fields(raw_query))
    return fields


def _server_path(path):
    """As in the field form (and in sftp URLs generally), the path is absolute on the server: sftp://u@h/srv/b is
    /srv/b; sftp://u@h/~/b is b, relative to the login directory."""
    if path.startswith("~/"):
        return path[2:].strip("/")
    return "/" + path.strip("/") if path.strip("/") else ""


def _query_fields(raw_query):
    query = {}
    for pair in raw_query.split("&"):
        if pair:
            key, _sep, value = pair.partition("=")
            query[key] = value
    fields = {}
    for key, target in QUERY_FIELDS:
        if key in query:
            value = query[key]
            fields[target] = value.lower() in ("true", "1", "yes") if target in BOOLEAN_FIELDS else value
    return fields


def normalize_replica(spec):
    """Validate a replica spec (module option dict) and return explicit fields with a type.

    Raises ConfigError with a message that says what is wrong and how to fix it.
    """
    spec = _replica_spec(spec)
    fields, backend = _typed_fields(spec)
    _check_backend_fields(fields, backend, bool(spec.get("url")))
    _check_common_fields(fields)
    return fields


def _replica_spec(spec):
    """The spec as a dict of given values, its text checked, Litestream 0.3's options refused with a reason."""
    if isinstance(spec, list):
        if len(spec) != 1:
            raise ConfigError("Litestream 0.5 allows one replica per database, %d were given" % len(spec))
        spec = spec[0]
    if not isinstance(spec, dict) or not spec:
        raise ConfigError("replica must be a dictionary with a type or a url")
    spec = dict((key, value) for key, value in spec.items() if value is not None)
    for key, value in spec.items():
        if isinstance(value, str):
            v.check_text(value, "replica.%s" % key)
    for key in spec:
        if key in V03_ONLY:
            raise ConfigError("replica option '%s' is a Litestream 0.3 option: %s" % (key, V03_ONLY[key]))
    return spec


def _typed_fields(spec):
    """(fields with the URL read into them, the backend of their type); options the type does not take refused."""
    fields = {}
    if spec.get("url"):
        for clash in ("bucket", "path"):
            if clash in spec:
                raise ConfigError("replica: give either url or %s, not both" % clash)
        fields.update(_parse_url(spec["url"]))
        if spec.get("type") and spec["type"] != fields["type"]:
            raise ConfigError("replica type %r does not match url scheme %r" % (spec["type"], fields["type"]))
    rtype = fields.get("type") or spec.get("type")
    if not rtype:
        raise ConfigError("replica needs a type (%s) or a url" % ", ".join(backends.NAMES))
    backend = backends.get(rtype)
    unknown = set(spec) - COMMON_FIELDS - backend.fields
    if unknown:
        raise ConfigError("replica of type %s does not take %s" % (rtype, ", ".join(sorted(unknown))))
    fields.update((key, value) for key, value in spec.items() if key != "url")
    fields["type"] = backend.name
    return fields, backend


def _check_backend_fields(fields, backend, from_url):
    """What the type needs (its bucket, its required fields), normalised; its defaults set."""
    if backend.container:
        if not fields.get("bucket"):
            raise ConfigError("%s replica needs a bucket%s" % (
                backend.name, "" if backend.container == "bucket" else " (the %s's name)" % backend.container))
        v.bucket_name(fields["bucket"], "replica.url" if from_url else "replica.bucket", backend.bucket_rule,
                      backend.container)
    for group, why in backend.required:
        if not any(fields.get(name) for name in group):
            raise ConfigError("%s replica needs %s%s" % (backend.name, " or ".join(group), why))
    if fields.get("endpoint"):
        v.endpoint(fields["endpoint"], "replica.endpoint")
    if backend.prepare:
        backend.prepare(fields)
    if backend.host_path:
        # the directory is mounted into the sidecar (read-write) at the same path: absolute, normalised, no ':',
        # not a system directory
        fields["path"] = v.file_replica_dir(fields.get("path") or "", "replica.path")
    if fields.get("host"):
        v.host_port(fields["host"], "replica.url" if from_url else "replica.host")
    if backend.server_path:
        fields["path"] = v.remote_path(fields["path"], "replica.path")


def _check_common_fields(fields):
    if "sync_interval" in fields:
        v.in_range(fields["sync_interval"], "replica.sync_interval", v.BOUNDS["sync_interval"])
    cred = fields.get("credentials")
    if cred is not None:
        v.credential_set_name(cred, "replica.credentials")
    location = fields.get("location")
    if location is not None and location not in LOCATIONS:
        raise ConfigError("replica.location: %r is not one of %s" % (location, ", ".join(LOCATIONS)))
    if location == "path" and not (fields.get("path") or "").strip("/"):
        raise ConfigError("replica.location: path puts the replica at the replica's path itself, which is empty: "
                          "name the path (for example the URL s3://bucket/app the dokku-litestream plugin was given)")


def check_location(fields, databases):
    """location: path holds the replica of exactly one database (two would write into each other)."""
    if fields.get("location") == "path" and len(list(databases)) != 1:
        raise ConfigError("replica.location: path holds the replica of one database at the path itself, but %d "
                          "databases are listed (%s): keep location per_database, or give each database an entry"
                          % (len(list(databases)), ", ".join(databases)))


def replica_path(fields, db_name):
    """Each database replicates under <path>/<database file name>: one prefix serves several DBs.

    With location: path the replica is the path itself, as `litestream replicate DB URL` (and so the
    dokku-litestream plugin) writes it.
    """
    base = (fields.get("path") or "").rstrip("/")
    if fields.get("location") == "path":
        return base
    return "%s/%s" % (base, db_name) if base else db_name


def replica_block(fields, db_name, credentials=None):
    """The `replica:` mapping for one database, Litestream's own key names, secrets included."""
    credentials = credentials or {}
    backend = backends.of(fields)
    block = {"type": backend.name, "path": replica_path(fields, db_name)}
    if backend.container:
        block["bucket"] = fields["bucket"]
    if backend.render:
        backend.render(fields, credentials, block)
    if fields.get("sync_interval"):
        block["sync-interval"] = str(fields["sync_interval"])
    return block


def check_credentials(fields, credentials):
    """Refuse a credential set Litestream would silently ignore a part of for this replica (an Azure account key
    without an account name); raises ConfigError naming the replica option to set."""
    backend = backends.of(fields)
    for key, needed in backend.credential_needs:
        if (credentials or {}).get(key) and not fields.get(needed):
            raise ConfigError(
                "replica.%s: credential set %r holds %s, which Litestream's %s client uses only together with %s, "
                "so it would be silently ignored: set replica.%s, or remove %s from the set" % (
                    needed, fields.get("credentials") or defaults.CREDENTIAL_SET, key, backend.label, needed, needed,
                    key))


def placeholder_credentials(fields):
    """What a credential set not written yet (check mode: an earlier task only predicted it) would hold for this
    replica, its values '?': the fields the type requires, else the keys it would use."""
    backend = backends.of(fields)
    if backend.credentials_required:
        keys = backend.credentials_required[0]
    else:
        blocked = set(key for key, needed in backend.credential_needs if not fields.get(needed))
        keys = [key for key, _var in backend.credential_env if key not in blocked]
    return dict((key, "?") for key in keys)


SHELL_WORD_RE = re.compile(r"[A-Za-z0-9/._-]+")


def shell_quote(value):
    return "'" + str(value).replace("'", "'\"'\"'") + "'"


def credentials_env(fields, credentials):
    """The sidecar's credentials file: shell assignments the entrypoint sources before exec'ing Litestream.

    Keys never go into the config file, the container's environment (docker inspect) or its argv; they
    live in this root-only file and reach Litestream's own process environment only. A key Litestream reads from a
    file (gs's service account) is named by its variable, the file beside the config (credential_files).
    """
    backend = backends.of(fields)
    lines = ["%s=%s" % (var, shell_quote(credentials[key])) for key, var in backend.credential_env
             if credentials.get(key)]
    lines += ["%s=%s" % (var, shell_quote("%s/%s" % (CONFIG_DIR_IN_CONTAINER, name)))
              for key, name, var in backend.credential_files if var and credentials.get(key)]
    return "".join(line + "\n" for line in lines)


def credential_files(fields, credentials):
    """{file name: text} of every credential file a config directory may hold: the text for those this replica's
    type reads (sftp's ssh_key, gs's service account), "" for the others (a file that must not be there)."""
    mine = dict((name, credentials.get(key) or "") for key, name, _var in backends.of(fields).credential_files)
    return dict((name, mine.get(name, "")) for name in backends.credential_files().values())


def source_env(env_path, quoted=True):
    """The shell line that loads a credentials file when there is one, its assignments exported (for Litestream's
    process only: the line runs inside the container, never in docker's own environment).

    quoted=False keeps a plain path bare, as the sidecar's entrypoint (and the first-sync listing run beside it) has
    always written it: that script is part of the sidecar's config hash, which must not change for sidecars already
    running."""
    word = env_path if not quoted and SHELL_WORD_RE.fullmatch(env_path) else shell_quote(env_path)
    return "set -a; [ ! -f %s ] || . %s; set +a" % (word, word)


def entrypoint_script(config_path, env_path, databases, mount_dir=DEFAULT_MOUNT_DIR, binary="/usr/local/bin/litestream"):
    """sh -c script of the sidecar: checkpoint each database's WAL to empty, load the credentials file when there
    is one (for Litestream only), then become Litestream.

    Why the checkpoint: a Litestream 0.5 process that starts on a WAL the app restarted while no Litestream ran
    (the app's autocheckpoint, during a recreate, a crash restart or a reboot) can resume from its old WAL
    position and never replicate what the app committed meanwhile (db.go verify, 0.5.16-0.5.17: the old frame
    still matches, so it continues at the new WAL's start). Emptying the WAL first makes its first sync a full
    snapshot instead. Run only on a database with its -wal and -shm beside it, so no file is ever created here as
    root. The checkpoint holds the app's writers back while it waits for readers, at most 5 s.
    """
    paths = " ".join(shell_quote("%s/%s" % (mount_dir, db)) for db in databases)
    return ("for db in %s; do\n"
            "  [ -f \"$db\" ] && [ -s \"$db-wal\" ] && [ -f \"$db-shm\" ] || continue\n"
            "  if ! command -v sqlite3 >/dev/null 2>&1; then\n"
            "    echo \"sidecar: no sqlite3 in the image: the WAL is not emptied before Litestream starts, so commits"
            " made while it was down may be missing from the replica\" >&2; break\n"
            "  fi\n"
            "  r=$(sqlite3 -batch -cmd '.timeout %d' \"$db\" 'PRAGMA wal_checkpoint(TRUNCATE);' 2>&1)\n"
            "  case $r in 0\\|*) ;; *) echo \"sidecar: the WAL of $db could not be emptied ($r): Litestream starts"
            " anyway\" >&2 ;; esac\n"
            "done\n"
            "%s\n"
            "exec %s replicate -config %s -no-expand-env"
            % (paths, WAL_CHECKPOINT_TIMEOUT_MS, source_env(env_path, quoted=False), binary, config_path))


# What YAML may not hold literally (outside its c-printable set): escaped as \\uXXXX in a quoted scalar.
YAML_UNPRINTABLE_RE = re.compile(u"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")


def _scalar(value):
    """A YAML scalar: JSON-quoted, non-ASCII text kept as UTF-8 (an emoji written as a \\ud83d\\ude00
    surrogate pair, as json.dumps does by default, is refused by Litestream's YAML parser)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = json.dumps(str(value), ensure_ascii=False)
    return YAML_UNPRINTABLE_RE.sub(lambda match: "\\u%04x" % ord(match.group(0)), text)


def _emit(lines, indent, mapping):
    for key in sorted(mapping, key=_key_order):
        value = mapping[key]
        if isinstance(value, dict):
            lines.append("%s%s:" % (" " * indent, key))
            _emit(lines, indent + 2, value)
        else:
            lines.append("%s%s: %s" % (" " * indent, key, _scalar(value)))


def _key_order(key):
    # type and path first: the file reads like Litestream's own examples
    return ({"type": 0, "path": 1}.get(key, 2), key)


def render_config(databases, fields, credentials=None, mount_dir=DEFAULT_MOUNT_DIR, metrics_port=None,
                  shutdown_sync_timeout=None, snapshot_interval=None, snapshot_retention=None, redact=False,
                  socket=False, heartbeat_url=None, heartbeat_interval=None):
    """The whole litestream.yml for one app: one `dbs` entry per database, one replica each. `socket`: the
    control socket (the sidecar's); `heartbeat_url` is redacted like a key with `redact`."""
    if redact and credentials:
        credentials = dict((key, value if key in ("endpoint", "region") else REDACTED)
                           for key, value in credentials.items())
    names = list(databases)
    if len(set(names)) != len(names):
        raise ConfigError("a database is listed twice: Litestream 0.5 allows one replica per database")
    check_location(fields, names)
    check_credentials(fields, credentials)
    lines = ["# Written by dokku_sqlite.litestream: edits are overwritten.",
             "# Read with -no-expand-env: values are literal."]
    top = {}
    if metrics_port:
        top["addr"] = "127.0.0.1:%d" % int(metrics_port)  # metrics (and pprof) on loopback only
    if shutdown_sync_timeout:
        top["shutdown-sync-timeout"] = str(shutdown_sync_timeout)
    if socket:
        top["socket"] = {"enabled": True, "path": SOCKET_PATH}
    if heartbeat_url:
        top["heartbeat-url"] = REDACTED if redact else heartbeat_url
        if heartbeat_interval:
            top["heartbeat-interval"] = str(heartbeat_interval)
    snapshot = {}
    if snapshot_interval:
        snapshot["interval"] = str(snapshot_interval)
    if snapshot_retention:
        snapshot["retention"] = str(snapshot_retention)
    if snapshot:
        top["snapshot"] = snapshot
    _emit(lines, 0, top)
    lines.append("dbs:")
    for name in names:
        v.db_file_name(name, "databases")
        lines.append("  - path: %s" % _scalar("%s/%s" % (mount_dir.rstrip("/"), name)))
        lines.append("    replica:")
        _emit(lines, 6, replica_block(fields, name, credentials))
    return "\n".join(lines) + "\n"


# Litestream 0.3 (the dokku-litestream plugin's era) is only ever read here, never run as a sidecar:
# its s3 and file clients read the `generations/` layout; its sftp client checks no host key.
V03_RESTORE_TYPES = tuple(backend.name for backend in backends.BACKENDS if backend.v03_restore)


def is_v03_image(image):
    """True for an image whose tag names a Litestream before 0.5 (the `generations/` layout)."""
    version = image_version(image)
    return version is not None and version < (0, 5, 0)


def render_config_v03(database, fields, credentials=None, mount_dir=DEFAULT_MOUNT_DIR):
    """litestream.yml for a Litestream 0.3 restore of one database: 0.3 reads `replicas:`, a list."""
    if not backends.of(fields).v03_restore:
        raise ConfigError("a %s replica cannot be read with a Litestream 0.3 image: restores of 0.3 replicas "
                          "(the generations/ layout) support %s" % (fields["type"], " and ".join(V03_RESTORE_TYPES)))
    v.db_file_name(database, "database")
    block = replica_block(fields, database, credentials)
    block.pop("sync-interval", None)
    item = []
    _emit(item, 8, block)
    item[0] = "      - " + item[0].lstrip()
    lines = ["# Written by dokku_sqlite.litestream for a Litestream 0.3 restore.",
             "dbs:",
             "  - path: %s" % _scalar("%s/%s" % (mount_dir.rstrip("/"), database)),
             "    replicas:"] + item
    return "\n".join(lines) + "\n"


def redact_text(text):
    """A rendered config (e.g. the one on disk) with every secret value replaced; None stays None."""
    if text is None:
        return None
    return SECRET_LINE_RE.sub(lambda match: match.group(1) + json.dumps(REDACTED), text)


def config_hash(redacted_config, image):
    """What the sidecar label carries: changes when the config (secrets aside) or the image changes.

    Secrets stay out of it on purpose: a secret rotation restarts the sidecar, it does not need a
    new container, and not even a hash of a secret should sit in `docker inspect`.
    """
    digest = hashlib.sha256()
    digest.update(redacted_config.encode("utf-8"))
    digest.update(b"\0")
    digest.update(image.encode("utf-8"))
    return digest.hexdigest()[:32]


def image_version(image):
    """(major, minor, patch) of an image tagged with a full version (':0.5.17', ':v0.5.17-scratch'), else None."""
    if not image or "@" in image:
        return None
    _name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:  # no tag, only a registry port
        return None
    match = IMAGE_VERSION_RE.match(tag)  # a prefix of the tag: the pattern ends with \\Z or [-+]
    return tuple(int(part) for part in match.groups()) if match else None


def downgrade_problem(current_image, wanted_image):
    """Why replacing the sidecar's image would be a Litestream downgrade, or None when it is not one.

    Litestream 0.5.15 and older cannot read (nor continue) the LTX files 0.5.16+ wrote: an older
    sidecar only logs "sync error ... no flags allowed" while the replica falls behind.
    """
    old, new = image_version(current_image), image_version(wanted_image)
    if old is None or new is None or new >= old:
        return None
    return ("refusing to downgrade Litestream from %s to %s: a replica written by a newer Litestream cannot be "
            "read or continued by an older one. Keep %s or a newer image; to really go back, remove the sidecar "
            "(state: absent) and replicate to a new path" % (current_image, wanted_image, current_image))


# ---------------------------------------------------------------------------------------------- times and TXIDs
def parse_timestamp(text):
    """An RFC 3339 time -> the same instant in UTC ('...Z'), as Litestream's -timestamp reads it.

    Raises ValueError with a message that shows the expected form.
    """
    match = TIMESTAMP_RE.fullmatch(str(text).strip())
    if not match:
        raise ValueError("timestamp %r is not an RFC 3339 time such as 2026-11-25T12:00:00Z or "
                         "2026-11-25T13:00:00.250+01:00 (date, 'T', time, and Z or an offset)" % (text,))
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, zone = match.group(7) or "", match.group(8)
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second)
        if zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            moment -= sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    except (ValueError, OverflowError) as exc:
        raise ValueError("timestamp %r is not a valid time: %s" % (text, exc))
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def epoch(stamp):
    """An RFC 3339 time (as Litestream and Docker write times) -> epoch seconds; raises ValueError."""
    utc = parse_timestamp(stamp)  # 'YYYY-MM-DDTHH:MM:SS[.fraction]Z'
    whole = calendar.timegm(time.strptime(utc[:19], "%Y-%m-%dT%H:%M:%S"))
    fraction = float("0" + utc[19:-1]) if len(utc) > 20 else 0.0
    return whole + fraction


def txid_number(text):
    """A transaction id in hex ('2', '0x2', Litestream's 16 digits) -> its number; raises ValueError."""
    match = TXID_RE.fullmatch(str(text).strip())
    if not match:
        raise ValueError("txid %r is not a hexadecimal transaction id of at most 16 digits, such as "
                         "0000000000000002 (quote it in YAML so leading zeros survive)" % (text,))
    return int(match.group(2), 16)


def hex_txid(number):
    """A TXID as Litestream writes it (ltx.TXID's String: 16 hex digits); None stays None."""
    return None if number is None else "%016x" % number


def parse_txid(text):
    """A transaction id to restore to ('2', '0x2', '0000000000000002') -> Litestream's 16 hex digits."""
    value = txid_number(text)
    if value < 1:
        raise ValueError("txid %r: transaction ids start at 1" % (text,))
    return hex_txid(value)
