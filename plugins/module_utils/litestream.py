# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Litestream 0.5 configuration: replica validation, rendering, redaction, hashing.

Pure functions (no I/O) so that modules and unit tests share exactly one model. The rendered file
is plain YAML whose scalars are JSON-quoted (JSON strings are valid YAML), so no YAML library is
needed on the Dokku host, and Litestream runs with -no-expand-env so a `$` in a secret survives.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

DEFAULT_IMAGE = "litestream/litestream:0.5.17"
DEFAULT_MOUNT_DIR = "/data"
# how long the sidecar's start waits for the app's readers to let the WAL be emptied (the app's writers wait
# meanwhile; a failure only delays nothing: Litestream starts anyway and the log says so)
WAL_CHECKPOINT_TIMEOUT_MS = 5000
CONFIG_DIR_IN_CONTAINER = "/etc/litestream"
CONFIG_FILE = "litestream.yml"
REDACTED = "<redacted>"
REPLICA_TYPES = ("s3", "file", "sftp", "gs", "abs")
DURATION_RE = v.DURATION_RE  # the durations' bounds are in validate.BOUNDS
duration_seconds = v.duration_seconds
# Litestream pings heartbeat_url with a plain GET
HEARTBEAT_URL_RE = re.compile(r"https?://[^\s/?#@]+(?:[/?#]\S*)?")
# Litestream's control socket inside the sidecar (off by default): `litestream list` reads each database's
# last successful sync from it, for the health check and the provision's first-sync wait
SOCKET_PATH = "/var/run/litestream.sock"
IMAGE_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)(?:\Z|[-+])")

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
SSH_KEY_FILE = "ssh_key"

# Fields that may appear in a replica spec, per type (plus the common ones).
COMMON_FIELDS = {"type", "url", "path", "sync_interval", "credentials", "location"}
# replica.location: where a database's replica sits under the replica's path
LOCATIONS = ("per_database", "path")
TYPE_FIELDS = {
    "s3": {"bucket", "endpoint", "region", "force_path_style", "skip_verify"},
    "file": set(),
    "sftp": {"host", "user", "host_key"},
    "gs": {"bucket"},
    "abs": {"bucket", "account_name", "endpoint"},
}
# heartbeat-url is a capability (whoever knows it can report the app healthy): a secret like the keys
SECRET_KEYS = ("access-key-id", "secret-access-key", "session-token", "password", "account-key", "heartbeat-url")
SECRET_LINE_RE = re.compile(r"^(\s*(?:%s):\s*).*$" % "|".join(SECRET_KEYS), re.M)


def replica_argument_spec(with_v03_options=True):
    """The `replica` suboptions shared by the modules that read or write a replica.

    The Litestream 0.3 options are declared only so that normalize_replica can refuse them with a
    reason, instead of Ansible's generic "Unsupported parameters".
    """
    spec = dict(
        type=dict(type="str", choices=list(REPLICA_TYPES)),
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
        credentials=dict(type="str", default="default", no_log=False),
        account_name=dict(type="str"),
        location=dict(type="str", choices=list(LOCATIONS)),
    )
    if with_v03_options:
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
        storage_root=dict(type="str", default="/var/lib/dokku/data/storage"),
        databases=dict(type="list", elements="str", default=["production.sqlite3"]),
        replica=dict(type="dict", options=replica_argument_spec()),
        image=dict(type="str", default=DEFAULT_IMAGE),
        network=dict(type="str", default="host"),
        metrics_port=dict(type="int"),
        shutdown_sync_timeout=dict(type="int", default=30),
        first_sync_timeout=dict(type="int", default=30),
        heartbeat_url=dict(type="str", no_log=True),
        heartbeat_interval=dict(type="str"),
        snapshot_interval=dict(type="str"),
        snapshot_retention=dict(type="str"),
        credentials_root=dict(type="str", default="/var/lib/dokku/config/litestream/credentials"),
        config_root=dict(type="str", default="/var/lib/dokku/config/litestream/apps"),
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
        if checked["fields"]["type"] == "file":  # the sidecar mounts both: the replica must not hold the database
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
            "%s://" % t for t in REPLICA_TYPES)))
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "gcs":
        raise ConfigError("replica url %s: Litestream 0.5 calls Google Cloud Storage 'gs', not 'gcs'" % v.shown(url))
    if scheme not in REPLICA_TYPES:
        raise ConfigError("replica url %s: unknown scheme '%s' (expected one of %s)" % (
            v.shown(url), scheme, ", ".join(REPLICA_TYPES)))
    if scheme not in ("sftp", "abs"):  # only sftp (user@host) and abs (account@container) have a user part
        v.no_credentials_in_url(url, "replica.url")
    query = {}
    if "?" in rest:
        rest, raw_query = rest.split("?", 1)
        for pair in raw_query.split("&"):
            if pair:
                key, _sep, value = pair.partition("=")
                query[key] = value
    fields = {"type": scheme}
    if scheme == "file":
        if not rest.startswith("/"):  # file://relative would silently become /relative
            raise ConfigError("replica.url: %s is not an absolute file URL: write file:///absolute/path"
                              % v.shown(url))
        fields["path"] = rest
        return fields
    authority, _sep, path = rest.partition("/")
    fields["path"] = path.strip("/")
    if scheme == "sftp":
        user, _at, host = authority.rpartition("@")
        fields.update({"host": host, "user": user})
        # as in the field form (and in sftp URLs generally), the path is absolute on the server:
        # sftp://u@h/srv/b is /srv/b; sftp://u@h/~/b is b, relative to the login directory
        if path.startswith("~/"):
            fields["path"] = path[2:].strip("/")
        elif fields["path"]:
            fields["path"] = "/" + fields["path"]
    elif scheme == "abs":
        account, _at, bucket = authority.rpartition("@")
        fields.update({"bucket": bucket, "account_name": account})
    else:
        fields["bucket"] = authority
    for key, target in (("endpoint", "endpoint"), ("region", "region"), ("forcePathStyle", "force_path_style"),
                        ("skipVerify", "skip_verify")):
        if key in query:
            value = query[key]
            if target in ("force_path_style", "skip_verify"):
                value = value.lower() in ("true", "1", "yes")
            fields[target] = value
    return fields


def normalize_replica(spec):
    """Validate a replica spec (module option dict) and return explicit fields with a type.

    Raises ConfigError with a message that says what is wrong and how to fix it.
    """
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
        raise ConfigError("replica needs a type (%s) or a url" % ", ".join(REPLICA_TYPES))
    if rtype == "gcs":
        raise ConfigError("replica type 'gcs' is called 'gs' in Litestream 0.5")
    if rtype not in REPLICA_TYPES:
        raise ConfigError("unknown replica type %r (expected one of %s)" % (rtype, ", ".join(REPLICA_TYPES)))
    unknown = set(spec) - COMMON_FIELDS - TYPE_FIELDS[rtype]
    if unknown:
        raise ConfigError("replica of type %s does not take %s" % (rtype, ", ".join(sorted(unknown))))
    for key, value in spec.items():
        if key not in ("url",):
            fields[key] = value
    fields["type"] = rtype

    if rtype in ("s3", "gs", "abs"):
        if not fields.get("bucket"):
            raise ConfigError("%s replica needs a bucket" % rtype)
        v.bucket_name(fields["bucket"], "replica.url" if spec.get("url") else "replica.bucket", rtype)
    endpoint = fields.get("endpoint")
    if endpoint:
        v.endpoint(endpoint, "replica.endpoint")
    if rtype == "s3":
        fields.setdefault("region", "us-east-1")
        if endpoint:
            fields.setdefault("force_path_style", True)
    if rtype == "file":
        # the directory is mounted into the sidecar (read-write) at the same path: absolute, normalised, no ':',
        # not a system directory
        fields["path"] = v.file_replica_dir(fields.get("path") or "", "replica.path")
    if rtype == "sftp":
        for required in ("host", "user", "path"):
            if not fields.get(required):
                raise ConfigError("sftp replica needs %s" % required)
        if not fields.get("host_key"):
            raise ConfigError("sftp replica needs host_key (the server's public host key, e.g. the "
                              "'ssh-ed25519 AAAA...' line): Litestream does not verify the host otherwise")
        v.host_port(fields["host"], "replica.url" if spec.get("url") else "replica.host")
        fields["path"] = v.remote_path(fields["path"], "replica.path")
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
    return fields


def check_location(fields, databases):
    """location: path holds the replica of exactly one database (two would write into each other)."""
    if fields.get("location") == "path" and len(list(databases)) != 1:
        raise ConfigError("replica.location: path holds the replica of one database at the path itself, but %d "
                          "databases are listed (%s): keep location per_database, or give each database an entry"
                          % (len(list(databases)), ", ".join(databases)))


def needs_credentials(fields):
    return fields["type"] in ("s3", "gs", "abs", "sftp")


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
    block = {"type": fields["type"], "path": replica_path(fields, db_name)}
    if fields["type"] in ("s3", "gs", "abs"):
        block["bucket"] = fields["bucket"]
    if fields["type"] == "s3":
        block["region"] = credentials.get("region") or fields.get("region")
        endpoint = fields.get("endpoint") or credentials.get("endpoint")
        if endpoint:
            block["endpoint"] = endpoint
            block["force-path-style"] = fields.get("force_path_style", True)
        if fields.get("skip_verify"):
            block["skip-verify"] = True
    if fields["type"] == "abs" and fields.get("account_name"):
        block["account-name"] = fields["account_name"]
    if fields["type"] == "sftp":
        host = fields["host"]
        block["host"] = host if re.search(r":[0-9]+\Z", host) else host + ":22"  # [::1] has ':' but no port
        block["user"] = fields["user"]
        block["host-key"] = fields["host_key"]
        if credentials.get("ssh_private_key"):
            block["key-path"] = "%s/%s" % (CONFIG_DIR_IN_CONTAINER, SSH_KEY_FILE)
        if credentials.get("sftp_password"):
            # Litestream reads an sftp password from its config only: the one secret that lands there
            block["password"] = credentials["sftp_password"]
    if fields.get("sync_interval"):
        block["sync-interval"] = str(fields["sync_interval"])
    return block


# Credential set field -> environment variable Litestream (or the AWS SDK under it) reads.
CREDENTIAL_ENV = (
    ("access_key_id", "LITESTREAM_ACCESS_KEY_ID"),
    ("secret_access_key", "LITESTREAM_SECRET_ACCESS_KEY"),
    ("session_token", "AWS_SESSION_TOKEN"),
)


def shell_quote(value):
    return "'" + str(value).replace("'", "'\"'\"'") + "'"


def credentials_env(fields, credentials):
    """The sidecar's credentials file: shell assignments the entrypoint sources before exec'ing Litestream.

    Keys never go into the config file, the container's environment (docker inspect) or its argv; they
    live in this root-only file and reach Litestream's own process environment only.
    """
    lines = []
    if fields["type"] in ("s3", "gs"):
        for key, var in CREDENTIAL_ENV:
            if credentials.get(key):
                lines.append("%s=%s" % (var, shell_quote(credentials[key])))
    elif fields["type"] == "abs" and credentials.get("secret_access_key"):
        lines.append("LITESTREAM_AZURE_ACCOUNT_KEY=%s" % shell_quote(credentials["secret_access_key"]))
    return "".join(line + "\n" for line in lines)


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
            "set -a; [ ! -f %s ] || . %s; set +a\n"
            "exec %s replicate -config %s -no-expand-env"
            % (paths, WAL_CHECKPOINT_TIMEOUT_MS, env_path, env_path, binary, config_path))


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
V03_RESTORE_TYPES = ("s3", "file")


def is_v03_image(image):
    """True for an image whose tag names a Litestream before 0.5 (the `generations/` layout)."""
    version = image_version(image)
    return version is not None and version < (0, 5, 0)


def render_config_v03(database, fields, credentials=None, mount_dir=DEFAULT_MOUNT_DIR):
    """litestream.yml for a Litestream 0.3 restore of one database: 0.3 reads `replicas:`, a list."""
    if fields["type"] not in V03_RESTORE_TYPES:
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
