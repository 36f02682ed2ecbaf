# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One check per kind of value, run by every module before it reads or changes anything.

Private to this collection (no promised API). Every check matches the whole string (re.fullmatch:
`$` would let a trailing newline through), bounds the length, and raises InvalidValue with a message
that starts with the option's name and says what is allowed. A value is shown with repr() (so a
newline is visible, not acted on) and shortened; a URL that carries credentials is never shown.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

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
SYSTEM_DIRS = frozenset(("/", "/etc", "/usr", "/var", "/var/lib", "/root", "/home", "/boot", "/bin", "/sbin",
                         "/lib", "/lib64", "/run", "/tmp", "/dev", "/proc", "/sys", "/opt", "/srv",
                         "/var/lib/dokku", "/var/lib/docker"))
SCHEME_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
ENDPOINT_RE = re.compile(r"https?://[^\s/?#@]+(/[^\s]*)?")
# image references and network names reach docker's argv: no leading '-' (an option), no whitespace
DOCKER_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@+-]*")
MODE_TEXT_RE = re.compile(r"(0o|0)?([0-7]{3,4})")
UID_RE = re.compile(r"[0-9]{1,10}")
MAX_UID = 2 ** 31 - 2  # the largest id Linux hands out ((uid_t)-1 means "no change")
CHOWN_NAMES = {"herokuish": 32767, "heroku": 1000, "paketo": 2000, "root": 0}
# Bucket and container names as the stores document them (S3 "Bucket naming rules", Cloud Storage "Bucket
# names", Azure "Naming and referencing containers").
S3_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
GS_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
ABS_CONTAINER_RE = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
IPV4_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")


class InvalidValue(ValueError):
    """A value a module refuses; the message names the option and says what is allowed."""


def shown(value, limit=60):
    """repr() of a value, shortened: a 300-character name must not fill the screen."""
    text = repr(value)
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


def storage_name(value, option="storage"):
    _text(value, option)
    if not STORAGE_NAME_RE.fullmatch(value) or len(value) > MAX_STORAGE_NAME:
        raise InvalidValue("%s: %s is not a valid storage directory name: use 1 to %d of the characters "
                           "[A-Za-z0-9_-]" % (option, shown(value), MAX_STORAGE_NAME))
    return value


def credential_set_name(value, option="name"):
    _text(value, option)
    if not CREDENTIAL_SET_RE.fullmatch(value) or len(value) > MAX_CREDENTIAL_SET:
        raise InvalidValue("%s: %s is not a valid credential set name: use lowercase letters, digits, '-' and "
                           "'_', starting with a letter or digit, at most %d characters"
                           % (option, shown(value), MAX_CREDENTIAL_SET))
    return value


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
                           "such as /var/lib/dokku/config/litestream/credentials" % (option, path))
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
    return value


def docker_word(value, option):
    """An image reference or a network name, as one docker argument that cannot be read as an option."""
    _text(value, option)
    if not DOCKER_WORD_RE.fullmatch(value) or len(value) > 255:
        raise InvalidValue("%s: %s is not a docker image or network name: letters, digits and . _ : / @ + -, "
                           "starting with a letter or digit" % (option, shown(value)))
    return value


def duration(value, option, pattern):
    _text(value, option)
    if not pattern.fullmatch(value):
        raise InvalidValue("%s: %s is not a duration like 1s, 500ms, 30m or 24h" % (option, shown(value)))
    return value


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
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UID:
        raise InvalidValue("%s: %s is not a uid/gid (a whole number from 0 to %d)" % (option, shown(value), MAX_UID))
    return value


def _s3_bucket_problem(value):
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


def _gs_bucket_problem(value):
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


def _abs_container_problem(value):
    if not ABS_CONTAINER_RE.fullmatch(value):
        return ("Azure container names are 3 to 63 characters: lowercase letters, digits and single '-', starting "
                "and ending with a letter or digit")
    return None


BUCKET_RULES = {"s3": _s3_bucket_problem, "gs": _gs_bucket_problem, "abs": _abs_container_problem}


def bucket_name(value, option, kind):
    """A bucket (s3, gs) or container (abs) name its store accepts; the message names the rule that is broken.

    A name the store refuses would leave the sidecar logging NoSuchBucket (or its like) forever while the
    play reports success.
    """
    _text(value, option)
    problem = BUCKET_RULES[kind](value)
    if problem:
        raise InvalidValue("%s: %s is not a valid %s name: %s" % (
            option, shown(value), "container" if kind == "abs" else "bucket", problem))
    return value
