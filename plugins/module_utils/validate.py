# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One check per kind of value, run by every module before it reads or changes anything.

Private to this collection (no promised API). Every check matches the whole string (re.fullmatch:
`$` would let a trailing newline through), bounds the length, and raises InvalidValue with a message
that starts with the option's name and says what is allowed. A value is shown with repr() (so a
newline is visible, not acted on) and shortened, after its possible secrets (a URL's user part, query values) are
replaced by ********; a URL that carries credentials is refused without showing it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import math
import os
import re

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import defaults

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors

# Dokku's own rule (apps:create, "App name must begin with lowercase alphanumeric character ...").
APP_NAME_RE = re.compile(r"[a-z0-9][a-z0-9.-]*")
# 63: Dokku uses the app name as a DNS label (<app>.<global domain> vhosts, container hostnames), and a
# DNS label holds at most 63 characters; a longer name can never be served, and it would also make
# our own names (dokku.litestream.<app>, <app>--db) long enough to hit file name limits.
MAX_APP_NAME = 63
# storage:ensure-directory accepts [A-Za-z0-9_-]; the name is one directory under the storage root, so it
# stays well below the 255-byte file name limit.
STORAGE_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
MAX_STORAGE_NAME = 200
# A credential set is one directory under credentials_root; it also appears in messages and file names.
CREDENTIAL_SET_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
MAX_CREDENTIAL_SET = 63
# A database file name gets prefixes and suffixes (.<name>-litestream, <name>.<stamp>-NN.bak-journal):
# 200 bytes leaves room for them under the 255-byte file name limit.
MAX_DB_NAME = 200
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
MAX_PATH = 1024
CONTROL_RE = re.compile(u"[\x00-\x1f\x7f]")
# Directories a collection root may never be (chmodded to 0700, sets removed inside it).
# (/var/lib/dokku/data/storage: litestream_auth would chmod Dokku's storage root 0700, which every app's mount needs)
SYSTEM_DIRS = frozenset(("/", "/etc", "/usr", "/var", "/var/lib", "/root", "/home", "/boot", "/bin", "/sbin",
                         "/lib", "/lib64", "/run", "/tmp", "/dev", "/proc", "/sys", "/opt", "/srv",
                         defaults.DOKKU_ROOT, "/var/lib/docker", defaults.DOKKU_ROOT + "/data", defaults.STORAGE_ROOT))
SCHEME_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# The query-string keys the collection reads from a replica URL (litestream._parse_url) and that never hold a secret;
# the value of any other key (?sig=, ?pwd=, ?X-Amz-Signature=, ...) is taken for one: replaced in messages (shown)
# and masked in every output (no_log.py). An endpoint's own user part and query are read as a URL's.
HARMLESS_QUERY_KEYS = frozenset(("endpoint", "region", "forcePathStyle", "skipVerify"))
# where a query value starts: '?', '&' or ';', a key, '='; the value runs to the next '&' or whitespace
QUERY_KEY_RE = re.compile(r"[?&;]([^=&?#;\s]+)=")
QUERY_VALUE_END_RE = re.compile(r"[&\s]")
# what follows '@' in an image pinned by digest (name:tag@sha256:<hex>): no password before it
DIGEST_RE = re.compile(r"[A-Za-z0-9]+:[0-9A-Fa-f]{32,}")
HIDDEN = "********"
ENDPOINT_RE = re.compile(r"https?://[^\s/?#@]+(/[^\s]*)?")
# image references and network names reach docker's argv: no leading '-' (an option), no whitespace
DOCKER_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@+-]*")
MODE_TEXT_RE = re.compile(r"(0o|0)?([0-7]{3,4})")
UID_RE = re.compile(r"[0-9]{1,10}")
COUNT_RE = re.compile(r"[0-9]{1,19}")  # a whole number given as text (a template's result)
MAX_UID = 2 ** 31 - 2  # the largest id Linux hands out ((uid_t)-1 means "no change")
CHOWN_NAMES = {"herokuish": 32767, "heroku": 1000, "paketo": 2000, "root": 0}
# Bucket and container names as the stores document them (S3 "Bucket naming rules", Cloud Storage "Bucket
# names", Azure "Naming and referencing containers").
S3_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
GS_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
ABS_CONTAINER_RE = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
IPV4_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
# host[:port], an IPv6 address in brackets: [::1]:9000
AUTHORITY_RE = re.compile(r"(?:\[(?P<ipv6>[^\]]*)\]|(?P<host>[^:\[\]]*))(?::(?P<port>.*))?", re.S)
# a DNS label as resolvers and Go's net/http take it ('_' too: docker service names such as minio_1)
HOST_LABEL_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
MAX_HOST = 253
HOST_RULE = ("a host is an ASCII name of labels of 1 to 63 letters, digits, '-' and '_' joined by single dots (at "
             "most 253 characters), an IPv4 address or an IPv6 address in brackets")
# A file replica's directory is mounted read-write into the sidecar, a container that runs as root: never one of
# these, nor anything inside one (nor the /lib* of any distribution: /lib, /lib32, /lib64, /libx32, /libexec; a
# /library is no system directory). root's home (/root/.ssh), cron's spool (/var/spool/cron), the logs and
# containerd's state are system too. Dokku's own data counts as system (config: this collection's credential sets
# and the apps' configurations; plugins and core-plugins: code Dokku runs as root; services: the data of Dokku's
# database services; /home/dokku: its ssh keys and app repositories); other directories below /var/lib/dokku
# (/var/lib/dokku/data/litestream-replicas) may hold replicas. Dokku's storage root, every app's storage directory
# inside it, is refused where it is known (litestream.check_sidecar_options, outside_storage).
SYSTEM_TREES = ("/etc", "/usr", "/bin", "/sbin", "/boot", "/dev", "/proc", "/sys", "/run", "/var/run", "/root",
                "/var/spool", "/var/log", "/var/lib/containerd",
                "/var/lib/docker") + tuple(defaults.DOKKU_ROOT + sub for sub in (
                    "/config", "/plugins", "/core-plugins", "/services")) + ("/home/dokku",)
LIB_TREE_RE = re.compile(r"/lib(?:32|64|x32|exec)?")


# the same class as errors.InvalidValue: every v.InvalidValue call site raises the collection's own kind
InvalidValue = errors.InvalidValue


def query_values(text):
    """(key, start, end) of every query value in text, nested ones too (?endpoint=https://h/?token=X holds token)."""
    for match in QUERY_KEY_RE.finditer(text):
        end = QUERY_VALUE_END_RE.search(text, match.end())
        yield match.group(1), match.end(), end.start() if end else len(text)


def user_part(text):
    """(start, end) of a URL's user part as no_credentials_in_url reads it (from the first scheme, else from the start,
    to the last '@'), or None. Without a scheme, a name before an image's digest (name:tag@sha256:...) is none."""
    if "@" not in text:
        return None
    match = SCHEME_PREFIX_RE.search(text)
    start = match.end() if match else 0
    end = text.rfind("@")
    if end < start or (not match and DIGEST_RE.fullmatch(text[end + 1:])):
        return None
    return start, end


def redacted(value):
    """value with what may be a secret replaced by ********: a URL's user part and every query value but those of
    HARMLESS_QUERY_KEYS, in a string or in the strings of a dict, list or tuple (another value as it is)."""
    if isinstance(value, dict):
        return dict((redacted(key), redacted(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(redacted(item) for item in value)
    if not isinstance(value, str):
        return value
    spans = [(start, end) for key, start, end in query_values(value) if key not in HARMLESS_QUERY_KEYS]
    spans.append(user_part(value) or (0, 0))
    merged = []  # a nested value lies inside its outer one, a user part may hold query values: one stretch each
    for start, end in sorted(span for span in spans if span[1] > span[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, done = [], 0
    for start, end in merged:
        out += [value[done:start], HIDDEN]
        done = end
    return "".join(out) + value[done:]


def shown(value, limit=60):
    """repr() of a value, shortened: a 300-character name must not fill the screen. Whatever may be a secret (see
    redacted) is replaced first: Ansible's no_log masking finds a secret whole, never a cut or repr()-escaped part."""
    text = repr(redacted(value))
    if len(text) > limit:
        text = "%s...%s (%d characters)" % (text[:limit - 10], text[-6:], len(value) if hasattr(value, "__len__") else 0)
    return text


def _text(value, option):
    if not isinstance(value, str):
        raise InvalidValue("%s: %s is not a string" % (option, shown(value)))
    return value


def check_text(value, option):
    """Text that can be written as UTF-8 (no lone surrogates, no NUL); returns it."""
    _text(value, option)
    if "\0" in value:
        raise InvalidValue("%s: a NUL character is not allowed" % option)
    try:
        value.encode("utf-8")
    except UnicodeError:
        raise InvalidValue("%s: is not valid Unicode text (it holds an unpaired surrogate, e.g. from "
                           "bytes that were not UTF-8)" % option)
    return value


def check_line(value, option):
    """Text on one line: check_text, and no control character (a newline, a tab, an escape); returns it."""
    check_text(value, option)
    if CONTROL_RE.search(value):
        raise InvalidValue("%s: %s must not contain control characters (a newline, a tab, ...)" % (option, shown(value)))
    return value


def app_name(value, option="app"):
    _text(value, option)
    if not APP_NAME_RE.fullmatch(value):
        raise InvalidValue("%s: %s is not a valid Dokku app name: use lowercase letters, digits, dots and "
                           "hyphens, starting with a letter or digit" % (option, shown(value)))
    if len(value) > MAX_APP_NAME:
        raise InvalidValue("%s: %s is too long: a Dokku app name has at most %d characters (it is used as a "
                           "DNS label)" % (option, shown(value), MAX_APP_NAME))
    return value


def _name(value, option, pattern, longest, what):
    """A name of a kind: text that matches its pattern, at most `longest` characters; `what` ends the message."""
    _text(value, option)
    if not pattern.fullmatch(value) or len(value) > longest:
        raise InvalidValue("%s: %s is not a valid %s" % (option, shown(value), what % longest))
    return value


def storage_name(value, option="storage"):
    return _name(value, option, STORAGE_NAME_RE, MAX_STORAGE_NAME,
                 "storage directory name: use 1 to %d of the characters [A-Za-z0-9_-]")


def credential_set_name(value, option="name"):
    return _name(value, option, CREDENTIAL_SET_RE, MAX_CREDENTIAL_SET,
                 "credential set name: use lowercase letters, digits, '-' and '_', starting with a letter or digit, "
                 "at most %d characters")


def db_file_name(value, option="database"):
    """A database is a plain file name inside its directory: no path, no traversal, not a side file."""
    _text(value, option)
    if not value.strip():
        raise InvalidValue("%s: the database name must be a non-empty file name" % option)
    check_text(value, option)
    if "/" in value or "\\" in value or ".." in value or CONTROL_RE.search(value):
        raise InvalidValue("%s: database name %s must be a plain file name inside the storage directory (no "
                           "'/', '..' or control characters)" % (option, shown(value)))
    if value.startswith("."):
        raise InvalidValue("%s: database name %s must not start with '.' (Litestream keeps its state in "
                           ".<name>-litestream)" % (option, shown(value)))
    for suffix in SQLITE_SIDE_FILES:
        if value.endswith(suffix):
            raise InvalidValue("%s: %s is the name of a SQLite %s file, not of a database: give the database's "
                               "own name" % (option, shown(value), suffix))
    if len(value.encode("utf-8")) > MAX_DB_NAME:
        raise InvalidValue("%s: database name %s is longer than %d bytes" % (option, shown(value), MAX_DB_NAME))
    return value


def absolute_path(value, option, mount=False, spaces=True):
    """An absolute path, normalised; '..', control characters and (for a docker mount) ':' are refused.

    No '~' or '$VAR' is expanded: the options that take a path are type str so Ansible does not either.
    """
    _text(value, option)
    check_text(value, option)
    if CONTROL_RE.search(value):
        raise InvalidValue("%s: %s must not contain control characters (a newline, a tab, ...)" % (option, shown(value)))
    if not value.startswith("/"):
        raise InvalidValue("%s: %s must be an absolute path (starting with '/'; '~' and '$' are not expanded)"
                           % (option, shown(value)))
    if ".." in value.split("/"):
        raise InvalidValue("%s: %s must not contain '..'" % (option, shown(value)))
    if mount and ":" in value:
        raise InvalidValue("%s: %s must not contain ':' (it is part of a docker mount, where ':' separates "
                           "fields)" % (option, shown(value)))
    if not spaces and re.search(r"\s", value):
        raise InvalidValue("%s: %s must not contain whitespace (older Dokku splits its docker options on it)"
                           % (option, shown(value)))
    if len(value) > MAX_PATH:
        raise InvalidValue("%s: the path is longer than %d characters" % (option, MAX_PATH))
    return "/" + os.path.normpath(value).lstrip("/")


def collection_root(value, option):
    """A directory the collection owns (it chmods it and removes entries inside it): never a system directory."""
    path = absolute_path(value, option, mount=True)
    if path in SYSTEM_DIRS:
        raise InvalidValue("%s: %s is a system directory; give a directory of its own for this collection, "
                           "such as %s" % (option, path, defaults.CREDENTIALS_ROOT))
    return path


def no_credentials_in_url(value, option, user_allowed=False):
    """Refuse user:password@ (and, unless user_allowed, user@) in a URL without showing the value.

    Secrets are not URL-encoded in practice (an AWS secret holds '/' and '+', a password '?' or '#'), so
    the user part is everything between the scheme (when there is one) and the last '@', not RFC 3986's
    userinfo; an '@' elsewhere in a URL is therefore read as credentials too, and refused without showing.
    """
    if not isinstance(value, str) or "@" not in value:
        return value
    match = SCHEME_PREFIX_RE.match(value)
    userinfo = value[match.end() if match else 0:].rpartition("@")[0]
    if ":" in userinfo or not user_allowed:
        raise InvalidValue("%s: the URL carries credentials before '@' (the value is not shown): put keys and "
                           "passwords in a credential set (dokku_sqlite.litestream.litestream_auth)" % option)
    return value


def endpoint(value, option="endpoint"):
    """An S3-compatible endpoint: http(s)://host[:port][/path], no credentials, no whitespace."""
    _text(value, option)
    no_credentials_in_url(value, option)
    if not value.startswith(("http://", "https://")):
        raise InvalidValue("%s: %s has no scheme: write http:// or https:// (Litestream 0.5 forces https on a "
                           "bare host:port and then hangs against a plain-HTTP server)" % (option, shown(value)))
    if not ENDPOINT_RE.fullmatch(value):
        raise InvalidValue("%s: %s is not a URL such as https://s3.example.net or http://127.0.0.1:9000"
                           % (option, shown(value)))
    # a bad host or port fails later, in a thread, as a UnicodeError or ValueError (the S3 listing's urlsplit)
    host_port(value, option, value.split("://", 1)[1].split("/", 1)[0])
    return value


def docker_word(value, option):
    """An image reference or a network name, as one docker argument that cannot be read as an option."""
    _text(value, option)
    if not DOCKER_WORD_RE.fullmatch(value) or len(value) > 255:
        raise InvalidValue("%s: %s is not a docker image or network name: letters, digits and . _ : / @ + -, "
                           "starting with a letter or digit" % (option, shown(value)))
    return value


def duration(value, option, pattern=None):
    """Go duration text (bounded by in_range); returns it."""
    _text(value, option)
    if not (pattern or DURATION_RE).fullmatch(value):
        raise InvalidValue("%s: %s is not a duration like 1s, 500ms, 30m or 24h" % (option, shown(value)))
    return value


# ---------------------------------------------------------------------------------------------- numbers in range
# A Go duration as Litestream reads it (time.ParseDuration, without a sign, a bare 0 or µs): 1s, 500ms, 1m30s, 1.5h
DURATION_RE = re.compile(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+")
DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text):
    """Seconds of a Go duration such as 1m30s (already matched by DURATION_RE); inf for absurdly many digits."""
    return sum(float(number) * DURATION_UNITS[unit] for number, unit in DURATION_PART_RE.findall(text))


class Bound:
    """The values one numeric or duration option allows: low to high, both included (low excluded when low_open).

    kind is int (a whole number), float (a finite number) or "duration" (Go duration text; low and high are written
    as durations too). text says what is allowed, with {low} and {high}: it ends every refusal.
    """

    def __init__(self, kind, low, high, text, low_open=False):
        self.kind, self.low, self.high, self.text, self.low_open = kind, low, high, text, low_open

    def describe(self):
        return self.text.format(low=self.low, high=self.high)

    def seconds(self, value):
        return duration_seconds(value) if self.kind == "duration" else value

    def allows(self, number):
        low, high = self.seconds(self.low), self.seconds(self.high)
        return (low < number if self.low_open else low <= number) and number <= high

    def refusal(self, option, value):
        return "%s: %s is not %s" % (option, shown(value), self.describe())


HOUR, DAY = 3600, 86400
YEAR = 365 * DAY
SECONDS = "a whole number of seconds from {low} to {high}"
UID_BOUND = Bound(int, 0, MAX_UID, "a uid/gid (a whole number from {low} to {high})")
# Every numeric and duration option of every module, by name: a module checks its options with check_bounds, and
# tests/unit/plugins/modules/test_value_bounds.py fails for an int, float or duration option missing here.
BOUNDS = {
    # seconds to wait for another run's host lock; 0: fail at once
    "lock_timeout": Bound(int, 0, DAY, SECONDS + " (a day)"),
    # the dry run's (and the restore's) limit, through the image's `timeout`; 0: none. The drill's replica_timeout
    # becomes each restore's dry_run_timeout.
    "dry_run_timeout": Bound(int, 0, DAY, "a whole number of seconds from {low} (no limit) to {high} (a day)"),
    "replica_timeout": Bound(int, 0, DAY, "a whole number of seconds from {low} (no limit) to {high} (a day)"),
    # how long the provision waits for the first sync; 0: it does not wait
    "first_sync_timeout": Bound(int, 0, HOUR, "a whole number of seconds from {low} (do not wait) to {high} (an hour)"),
    # Litestream's final sync on stop (>= 0 in Litestream); the container's stop timeout is this plus 15
    "shutdown_sync_timeout": Bound(int, 0, HOUR, SECONDS + " (an hour)"),
    # litestream_health: the limit of each read of an app
    "timeout": Bound(int, 1, HOUR, SECONDS + " (an hour)"),
    # apps handled at once, one thread each
    "parallel": Bound(int, 1, 64, "a whole number from {low} (one app after the other) to {high}"),
    "metrics_port": Bound(int, 1, 65535, "a TCP port (a whole number from {low} to {high})"),
    # litestream_standby: the follower's poll of the replica, and the wait for its first restore or for a TXID
    "follow_interval": Bound(int, 1, DAY, SECONDS + " (a day)"),
    "wait_timeout": Bound(int, 1, DAY, SECONDS + " (a day)"),
    # litestream_ownership: the epoch a take-over read before (ownership.EPOCH_DIGITS digits)
    "expected_epoch": Bound(int, 1, 10 ** 10 - 1, "a whole number from {low} to {high}"),
    # litestream_move_report: the epoch the new host claimed (as expected_epoch)
    "epoch": Bound(int, 1, 10 ** 10 - 1, "a whole number from {low} to {high}"),
    # litestream_ownership: the epoch whose lineage to read (as expected_epoch)
    "lineage_epoch": Bound(int, 1, 10 ** 10 - 1, "a whole number from {low} to {high}"),
    "owner": UID_BOUND,
    "group": UID_BOUND,
    # verify.min_rows: a table's least row count (SQLite counts rows in a signed 64-bit integer)
    "min_rows": Bound(int, 0, 2 ** 63 - 1, "a whole number of rows from {low} to {high}"),
    # how old the newest replicated change may be (litestream_drill, litestream_health; max_lag: an entry's own);
    # 0: no lag at all (the drill's integration test asks for that: a replica behind a live writer is stale)
    "max_lag_seconds": Bound(float, 0, YEAR, "a number of seconds from {low} (no lag allowed) to {high} (a year)"),
    "max_lag": Bound("duration", "0s", "8760h", "a duration from {low} (no lag allowed) to {high} (a year)"),
    # Litestream refuses 0 (and any duration over 2562047h, Go's limit); its WAL monitor looks once a second, so a
    # shorter interval only polls more, and one of over a day leaves the replica a day behind
    "sync_interval": Bound("duration", "100ms", "24h", "a duration from {low} to {high} (a day)"),
    # a snapshot is a full copy of each database: not more often than once a minute
    "snapshot_interval": Bound("duration", "1m", "8760h", "a duration from {low} to {high} (a year)"),
    # how far back point-in-time restores reach: retention for compliance may well be several years
    "snapshot_retention": Bound("duration", "1m", "87600h", "a duration from {low} to {high} (ten years)"),
    # Litestream 0.5 refuses to start with a heartbeat interval under a minute (heartbeat.go)
    "heartbeat_interval": Bound("duration", "1m", "8760h", "a duration from {low} to {high} (a year): Litestream "
                                "refuses to start with a heartbeat interval under 1m"),
}


def in_range(value, option, bound=None):
    """A value allowed by its bound (BOUNDS[option] by default): a whole number (digits in a string count, as
    Ansible's int type reads them), a finite number or a duration text in [low, high]. Returns the value (a whole
    number as an int); raises InvalidValue with the bound in the message."""
    bound = bound or BOUNDS[option]
    if bound.kind is int and isinstance(value, str) and COUNT_RE.fullmatch(value.strip()):
        value = int(value)  # '5' from a template (inside a dict option, Ansible converts nothing)
    if bound.kind == "duration":
        duration(value, option)
        number = duration_seconds(value)
    elif isinstance(value, bool) or not isinstance(value, (int, float) if bound.kind is float else int):
        raise InvalidValue(bound.refusal(option, value))
    else:
        number = value
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidValue(bound.refusal(option, value))
    if not bound.allows(number):
        raise InvalidValue(bound.refusal(option, value))
    return value


def check_bounds(params, prefix=""):
    """Every option of BOUNDS that params holds (and is not None), in the order of BOUNDS; raises InvalidValue."""
    for option, bound in BOUNDS.items():
        if isinstance(params.get(option), dict):  # verify.min_rows: table -> rows
            for key, value in params[option].items():
                in_range(value, "%s%s.%s" % (prefix, option, key), bound)
        elif params.get(option) is not None:
            in_range(params[option], prefix + option, bound)


# ---------------------------------------------------------------------------------------------- hosts and paths
def host_port(value, option, authority=None):
    """host[:port] of an endpoint or an sftp server: an ASCII host name with non-empty labels (an IDN written in its
    xn-- form), an IPv4 address or an IPv6 address in brackets, and a port from 1 to 65535. authority is the
    host[:port] part of value (a URL) when value is more than that. Returns (host, port or None)."""
    authority = value if authority is None else authority
    match = AUTHORITY_RE.fullmatch(authority)
    if not match:
        raise InvalidValue("%s: %s has no valid host: %s" % (option, shown(value), HOST_RULE))
    port = match.group("port")
    if match.group("ipv6") is not None:
        try:
            ipaddress.IPv6Address(match.group("ipv6"))
        except ValueError:
            raise InvalidValue("%s: %s: [%s] is not an IPv6 address: %s"
                               % (option, shown(value), match.group("ipv6"), HOST_RULE))
        host = "[%s]" % match.group("ipv6")
    else:
        host = match.group("host")
        _host_name(host, value, option)
    if port is not None:
        if not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
            raise InvalidValue("%s: %s has the port %s: a port is a whole number from 1 to 65535"
                               % (option, shown(value), shown(port)))
        port = int(port)
    return host, port


def _host_name(host, value, option):
    if not host:
        raise InvalidValue("%s: %s has no host: %s" % (option, shown(value), HOST_RULE))
    try:
        host.encode("ascii")
    except UnicodeError:
        try:
            ascii_form = host.encode("idna").decode("ascii")
            _host_name(ascii_form, value, option)  # nameprep maps U+00A0 to a space, for one
        except (UnicodeError, InvalidValue):
            raise InvalidValue("%s: %s: the host name %s cannot be encoded as IDNA: %s"
                               % (option, shown(value), shown(host), HOST_RULE))
        # an IDN works everywhere only in its xn-- form (an HTTP Host header is ASCII), which also shows a
        # look-alike letter from another script for what it is
        raise InvalidValue("%s: %s: the host name %s is not ASCII: write it in its IDNA form %s"
                           % (option, shown(value), shown(host), shown(ascii_form)))
    labels = host.split(".")
    if "" in labels:
        raise InvalidValue("%s: %s: the host name %s has an empty label (a leading, trailing or double dot): %s"
                           % (option, shown(value), shown(host), HOST_RULE))
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise InvalidValue("%s: %s: %s is not an IPv4 address (four numbers from 0 to 255): %s"
                               % (option, shown(value), shown(host), HOST_RULE))
        return
    if len(host) > MAX_HOST or not all(HOST_LABEL_RE.fullmatch(label) for label in labels):
        raise InvalidValue("%s: %s: %s is not a valid host name: %s" % (option, shown(value), shown(host), HOST_RULE))


def remote_path(value, option):
    """A path on an sftp server, normalised ('//' and '.' dropped, no trailing '/'); '..' refused: it is not resolved
    here, and on the server it climbs out of the directory it is meant to stay in."""
    check_line(value, option)
    parts = value.split("/")
    if ".." in parts:
        raise InvalidValue("%s: %s must not contain '..'" % (option, shown(value)))
    path = ("/" if value.startswith("/") else "") + "/".join(part for part in parts if part not in ("", "."))
    if not path:
        raise InvalidValue("%s: %s names no directory: give a path such as /srv/backups or backups (relative to the "
                           "login directory)" % (option, shown(value)))
    if len(path) > MAX_PATH:
        raise InvalidValue("%s: the path is longer than %d characters" % (option, MAX_PATH))
    return path


def _system_tree(path):
    """The system directory that path is or lies inside, or None."""
    top = "/" + path.lstrip("/").split("/")[0]
    if LIB_TREE_RE.fullmatch(top):
        return top
    for tree in SYSTEM_TREES:
        if _within(path, tree):
            return tree
    return None


def _resolved(path):
    """path and, when a symbolic link on the way leads elsewhere, where it leads (docker -v follows links)."""
    try:
        real = os.path.realpath(path)
    except OSError:  # a link that cannot be read (/proc/1/root when not root): the path as written is all there is
        return (path,)
    return (path,) if real == path else (path, real)


def file_replica_dir(value, option):
    """A file replica's directory: absolute, normalised, no ':' (it is a docker mount), and neither the host's root
    nor a system directory nor inside one, also when a symbolic link leads there. Returns the normalised path."""
    path = absolute_path(value, option, mount=True)
    for candidate in _resolved(path):
        via = "" if candidate == path else " (through a symbolic link, it is %s)" % candidate
        tree = _system_tree(candidate)
        if candidate in SYSTEM_DIRS or tree == candidate:  # never one of these itself; inside them is allowed
            raise InvalidValue("%s: %s%s is a system directory: a file replica's directory is mounted read-write "
                               "into the sidecar, a root container; give a directory of its own, such as "
                               "/var/lib/litestream-replicas" % (option, path, via))
        if tree:
            raise InvalidValue("%s: %s%s is inside %s, a system directory: a file replica's directory is mounted "
                               "read-write into the sidecar, a root container; give a directory of its own outside "
                               "it, such as /var/lib/litestream-replicas" % (option, path, via, tree))
    return path


def _within(path, directory):
    """Whether path is directory or lies inside it (both normalised)."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def outside_storage(path, option, storage_dir, storage_root=None):
    """A file replica's directory neither inside the app's storage directory nor holding it, and (storage_root given)
    nowhere inside Dokku's storage root: each directory there is some app's storage, which the sidecar's read-write
    mount of the replica would lay open."""
    for candidate in _resolved(path):
        for storage in _resolved(storage_dir):
            if _within(candidate, storage):
                raise InvalidValue("%s: %s is inside the app's storage directory %s: the replica would sit beside the "
                                   "live database, writable by the app, and be lost with it; give a directory outside "
                                   "it" % (option, path, storage_dir))
            if storage != candidate and _within(storage, candidate):
                raise InvalidValue("%s: %s holds the app's storage directory %s: the replica's mount would hold the "
                                   "live database too; give a directory of its own, outside it"
                                   % (option, path, storage_dir))
        for root in _resolved(storage_root) if storage_root else ():
            if _within(candidate, root):
                raise InvalidValue("%s: %s is inside Dokku's storage root %s, where every directory is an app's "
                                   "storage: the sidecar would mount it read-write over that app's data; give a "
                                   "directory outside it, such as /var/lib/dokku/data/litestream-replicas"
                                   % (option, path, storage_root))
    return path


def file_mode(value, option="mode"):
    """'0644', '644', '0o644' -> int; a number only up to 0o777; no setuid, setgid or sticky bit."""
    if isinstance(value, bool):
        raise InvalidValue("%s: %r is not a mode: write it as a quoted octal string such as '0644'" % (option, value))
    if isinstance(value, int):
        if not 0 <= value <= 0o777:
            # `mode: 644` unquoted is the decimal 644, that is octal 1204 (sticky bit, odd permissions)
            raise InvalidValue("%s: the number %d is octal %o, not a file mode: an unquoted mode in YAML is read "
                               "as a decimal number; quote it, for example '0644'" % (option, value, value))
        return value
    text = str(value).strip()
    match = MODE_TEXT_RE.fullmatch(text)
    if not match:
        raise InvalidValue("%s: %s must be an octal number such as '0644' (symbolic modes are not supported)"
                           % (option, shown(value)))
    mode = int(match.group(2), 8)
    if mode & 0o7000:
        raise InvalidValue("%s: %s sets the setuid, setgid or sticky bit, which a database file never needs: "
                           "use three octal digits such as '0644'" % (option, shown(value)))
    return mode


def chown(value, option="chown"):
    """A --chown value of storage:ensure-directory: a known user name, 'false' or a uid. Returns the uid or None."""
    _text(value, option)
    if value == "false":
        return None
    if value in CHOWN_NAMES:
        return CHOWN_NAMES[value]
    # [0-9] and not str.isdigit(): '²'.isdigit() is True but int('²') raises
    if UID_RE.fullmatch(value) and int(value) <= MAX_UID:
        return int(value)
    raise InvalidValue("%s: %s is not allowed: use herokuish, heroku, paketo, root, false or a numeric uid "
                       "(0 to %d)" % (option, shown(value), MAX_UID))


def uid(value, option):
    return in_range(value, option, UID_BOUND)


def s3_bucket_problem(value):
    if not S3_BUCKET_RE.fullmatch(value):
        return ("S3 bucket names are 3 to 63 characters: lowercase letters, digits, '.' and '-', starting and "
                "ending with a letter or digit")
    if ".." in value:
        return "S3 bucket names have no two adjacent dots"
    if IPV4_RE.fullmatch(value):
        return "S3 bucket names are not formatted as an IP address"
    if value.startswith(("xn--", "sthree-", "amzn-s3-demo-")):
        return "S3 bucket names do not start with 'xn--', 'sthree-' or 'amzn-s3-demo-'"
    if value.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")):
        return "S3 bucket names do not end with '-s3alias', '--ol-s3', '.mrap', '--x-s3' or '--table-s3'"
    return None


def gs_bucket_problem(value):
    parts = value.split(".")
    if (not GS_BUCKET_RE.fullmatch(value) or (len(parts) == 1 and len(value) > 63)
            or any(not 1 <= len(part) <= 63 for part in parts)):
        return ("Cloud Storage bucket names are 3 to 63 characters (up to 222 with dots, at most 63 between two "
                "dots): lowercase letters, digits, '.', '-' and '_', starting and ending with a letter or digit")
    if IPV4_RE.fullmatch(value):
        return "Cloud Storage bucket names are not formatted as an IP address"
    if value.startswith("goog") or "google" in value or "g00gle" in value:
        return "Cloud Storage bucket names do not start with 'goog' or hold 'google'"
    return None


def abs_container_problem(value):
    if not ABS_CONTAINER_RE.fullmatch(value):
        return ("Azure container names are 3 to 63 characters: lowercase letters, digits and single '-', starting "
                "and ending with a letter or digit")
    return None


def bucket_name(value, option, rule, noun="bucket"):
    """A bucket or container name its store accepts (rule: one of the *_problem functions above, as backends.py's
    table names it; noun: what the store calls it); the message names the rule that is broken.

    A name the store refuses would leave the sidecar logging NoSuchBucket (or its like) forever while the
    play reports success.
    """
    _text(value, option)
    problem = rule(value)
    if problem:
        raise InvalidValue("%s: %s is not a valid %s name: %s" % (option, shown(value), noun, problem))
    return value
