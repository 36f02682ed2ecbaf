# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and creating ownership claims (ownership.py) where a replica lives, create-only.

One store per create-only primitive a backend offers (backends.Backend.claims; docs/move-design.md §5):
- "conditional-put": an S3 PUT with `If-None-Match: *` (412 when the key exists). Stores differ in what they honour,
  so the store is probed once per run: a second create of one probe key must be refused.
- "link": a temporary file, fsync, then link(2) to the claim's name: EEXIST when it exists, also on NFS (the
  pattern open(2) gives for O_EXCL there); rename(2) would replace.
- "legacy-rename": sftp's SSH_FXP_RENAME (`rename -l` of OpenSSH's client), link()+unlink() on an OpenSSH server,
  failing when the target exists (sftp_claims.py).

A store's create answers True (created), False (the name exists) or None (the answer was lost: read it back and
compare the nonce). Nothing here removes anything but the temporary file it just made.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import re
import socket
import stat
import time
import uuid
import xml.etree.ElementTree as ET

try:
    from http.client import HTTPException
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2
    from httplib import HTTPException
    from urllib import quote

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import defaults, errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import owned, ownership
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import load_credentials
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import s3_listing
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.sidecar_reads import Refused, read_bounded

MAX_ANSWER = 1 << 20
PROBE_NAME = ".create-only-probe"  # app names cannot start with "."
MAX_PAGES = 100
UNSUPPORTED = "unsupported"
# the host's identity in claims, so two inventory names of one host are one owner (a cloned VM must delete it)
HOST_ID_FILE = "_host-id"  # app names start with a letter or digit; no dot: dot files are temporary files here
HOST_ID_RE = re.compile(r"\A[0-9a-f]{32}\Z")


class Unsupported(errors.InvalidValue):
    """Ownership cannot be recorded where this replica lives (yet); the message says why and what to do instead."""


class StoreFailed(errors.CommandFailed):
    """The store did not answer a claim's read or write; nothing was decided."""


class LostClaim(errors.AppFailure):
    """Another host created the claim first: the message names it."""


class S3Claims:
    """Claims as objects of an S3-compatible store with an endpoint, path-style, keys in the credential set."""

    def __init__(self, fields, credentials, timeout):
        self.fields, self.credentials, self.timeout = fields, credentials, timeout
        self.endpoint = s3_listing.endpoint_of(fields, credentials)
        self.base = "%s/%s" % (self.endpoint.path.rstrip("/"), fields["bucket"])

    def _request(self, method, key, query=None, body=b"", extra=None, what=None):
        """(status, answer body) of one signed request; the store's failures as StoreFailed."""
        what = what or "%s %s" % (method, key)
        path = self.base + ("/" + key.strip("/") if key else "")
        query = query or {}
        headers = s3_listing.signed_headers(
            method, self.endpoint.netloc, path, query, self.credentials["access_key_id"],
            self.credentials["secret_access_key"], s3_listing.region_of(self.fields, self.credentials),
            self.credentials.get("session_token"), body=body, extra=extra)
        target = quote(path, safe="/-_.~") + ("?" + "&".join("%s=%s" % (s3_listing._quote(k), s3_listing._quote(v))
                                                             for k, v in sorted(query.items())) if query else "")
        conn = s3_listing.connect(self.fields, self.credentials, self.timeout)
        try:
            conn.request(method, target, body=body or None, headers=headers)
            response = conn.getresponse()
            answer = read_bounded(response, MAX_ANSWER, time.time() + self.timeout, "the store's answer")
        except socket.timeout:
            raise StoreFailed("%s: no answer from %s within %ss" % (what, self.endpoint.netloc, self.timeout))
        except (IOError, OSError, HTTPException, Refused) as exc:
            raise StoreFailed("%s at %s: %s" % (what, self.endpoint.netloc, str(exc) or type(exc).__name__))
        finally:
            conn.close()
        return response.status, answer

    def _failed(self, method, key, status, answer):
        return StoreFailed("%s %s: %s" % (method, key, s3_listing.error_text(status, answer)))

    def names(self, directory):
        """The names directly inside `directory` (a key prefix without its trailing slash)."""
        prefix, names, token = directory.strip("/") + "/", [], None
        for _page in range(MAX_PAGES):
            query = {"list-type": "2", "prefix": prefix, "delimiter": "/"}
            if token:
                query["continuation-token"] = token
            status, answer = self._request("GET", "", query, what="list %s" % prefix)
            if status != 200:
                raise self._failed("list", prefix, status, answer)
            try:
                root = ET.fromstring(answer)
            except ET.ParseError as exc:
                raise StoreFailed("list %s: unreadable answer: %s" % (prefix, exc))
            names.extend((s3_listing._tag(item, "Key") or "")[len(prefix):]
                         for item in s3_listing._children(root, "Contents"))
            token = s3_listing._tag(root, "NextContinuationToken")
            if s3_listing._tag(root, "IsTruncated") != "true" or not token:
                return names
        raise StoreFailed("list %s: more than %d pages" % (prefix, MAX_PAGES))

    def read(self, path):
        status, answer = self._request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise self._failed("read", path, status, answer)
        return answer

    def create(self, path, data):
        status, answer = self._request("PUT", path, body=data,
                                       extra={"if-none-match": "*", "content-type": "application/json"})
        if status == 200:
            return True
        if status == 412:
            return False
        if status == 409:  # ConditionalRequestConflict: a concurrent create of the same key; who won is read back
            return None
        raise self._failed("create", path, status, answer)

    def probe(self, directory):
        """Refuses a store that does not honour If-None-Match: the second create of one key must be refused."""
        path = "%s/%s" % (directory.rstrip("/"), PROBE_NAME)
        self.create(path, b"{}\n")
        if self.create(path, b"{}\n") is True:
            raise Unsupported(
                "replica.endpoint: %s accepted a second create of %s: it ignores If-None-Match, so two hosts could "
                "both claim the app's replica. Ownership needs a store with conditional writes (AWS S3, MinIO, "
                "Ceph RGW, Cloudflare R2)" % (self.endpoint.netloc, path))


class FileClaims:
    """Claims as files in a directory on the host (a `file` replica, perhaps a network file system).

    R, the replica's configured path, is followed like any path a user gives (and made when missing). Everything
    below it is this collection's own (.dokku-litestream/<app>/claims): each of those directories is opened as itself
    (O_NOFOLLOW | O_DIRECTORY) through the descriptor of the one above, made there when missing, and the claim's
    temporary file, link(2), unlink and fsync go through the claims directory's descriptor. A symbolic link (to /etc,
    to another app's replica) or a file in place of one of them is refused, naming it, for a create as for a list or
    a read: nothing is written through it and no claim of another directory is taken for this replica's."""

    replica_root = None  # R; None for a store made without its replica (the unit tests' stores rooted elsewhere)

    def __init__(self, replica_root=None):
        self.replica_root = replica_root

    def names(self, directory):
        root, below = self._split(directory, "list")
        fd = self._open_dirs(root, below, "list", directory, make=False)
        if fd is None:
            return []
        try:
            return os.listdir(fd)
        except OSError as exc:
            raise StoreFailed("list %s: %s" % (directory, exc.strerror))
        finally:
            os.close(fd)

    def read(self, path):
        root, below = self._split(path, "read")
        fd = self._open_dirs(root, below[:-1], "read", path, make=False)
        if fd is None:
            return None
        try:
            return read_file(path, ownership.MAX_CLAIM_BYTES + 1, at=(fd, below[-1]))
        finally:
            os.close(fd)

    def create(self, path, data):
        root, below = self._split(path, "create")
        fd = self._open_dirs(root, below[:-1], "create", path, make=True)
        try:
            return self._create_at(fd, below[-1], path, data)
        finally:
            os.close(fd)

    @staticmethod
    def _create_at(fd, name, path, data):
        """A temporary file in the directory fd, fsynced, then linked to `name` there (EEXIST: False)."""
        temp = ".tmp-%s-%s" % (name, uuid.uuid4().hex)
        try:
            temp_fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd)
        except OSError as exc:
            raise StoreFailed("create %s: %s" % (path, exc.strerror))
        try:
            with os.fdopen(temp_fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temp, name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    return False
                raise StoreFailed("create %s: %s" % (path, exc.strerror))
            os.fsync(fd)  # the claim's name is on disk before it counts as made
            return True
        finally:
            os.unlink(temp, dir_fd=fd)  # the temporary file made above, nothing else

    def _split(self, path, what):
        """(R, the names from R down to path): what lies below R is this collection's and is never followed."""
        parts = path.split("/")
        if self.replica_root is not None:
            root = self.replica_root.rstrip("/") or "/"  # as ownership.app_dir spells it (_root)
            prefix = root if root.endswith("/") else root + "/"
            if not path.startswith(prefix):
                raise StoreFailed("%s %s: it is not below the replica path %s" % (what, path, root))
            below = path[len(prefix):].split("/")
        elif ownership.RESERVED_DIR in parts:  # a replica path cannot hold it (validate): R is what lies above it
            at = parts.index(ownership.RESERVED_DIR)
            root, below = "/".join(parts[:at]) or ("/" if path.startswith("/") else "."), parts[at:]
        else:
            raise StoreFailed("%s %s: it is not below a replica's %s directory" % (what, path, ownership.RESERVED_DIR))
        below = [name for name in below if name]
        if not below or any(name in (".", "..") for name in below):
            raise StoreFailed("%s %s: not a path this collection makes below the replica path %s" % (what, path, root))
        return root, below

    @staticmethod
    def _open_dirs(root, below, what, target, make):
        """A descriptor of R/below[0]/.../below[-1], or None when one is missing and not `make`. R is followed as the
        user's path; each name below it is opened as itself, through its parent's descriptor."""
        if make:
            _make_root(root, what, target)
        try:
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            if exc.errno == errno.ENOENT and not make:
                return None
            raise StoreFailed("%s %s: %s: %s" % (what, target, root, exc.strerror))
        path = root
        for name in below:
            path = "%s/%s" % (path.rstrip("/"), name)
            try:
                child = _open_below(fd, name, path, what, target, make)
            finally:
                os.close(fd)
            if child is None:
                return None
            fd = child
        return fd

    def probe(self, directory):
        """link(2) is create-only by definition: nothing to probe."""


def _make_root(root, what, target):
    """R and its missing parents (0755, as Litestream would make them): the user's path, followed as given."""
    missing = []
    while not os.path.isdir(root) and os.path.dirname(root) != root:
        missing.append(root)
        root = os.path.dirname(root)
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o755)
        except OSError as exc:
            if exc.errno != errno.EEXIST:  # another run made it meanwhile; opening it tells what it is
                raise StoreFailed("%s %s: cannot create %s: %s" % (what, target, path, exc.strerror))


def _open_below(fd, name, path, what, target, make):
    """The directory `name` in fd opened as itself (made 0755 when missing and `make`), or None when it is missing
    and not `make`; a symbolic link or a file there is refused, naming `path`."""
    for _attempt in range(2):
        try:
            return os.open(name, owned.DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # Linux says ENOTDIR for a link with O_DIRECTORY
                raise StoreFailed("%s %s: %s" % (what, target, _not_a_directory(fd, name, path)))
            if exc.errno != errno.ENOENT:
                raise StoreFailed("%s %s: %s: %s" % (what, target, path, exc.strerror))
        if not make:
            return None
        try:
            os.mkdir(name, 0o755, dir_fd=fd)
        except OSError as exc:
            if exc.errno != errno.EEXIST:  # EEXIST: another run made it meanwhile, opened (and checked) next
                raise StoreFailed("%s %s: cannot create %s: %s" % (what, target, path, exc.strerror))
    raise StoreFailed("%s %s: %s was removed while this run made it" % (what, target, path))


def _not_a_directory(fd, name, path):
    try:
        link = stat.S_ISLNK(os.lstat(name, dir_fd=fd).st_mode)
    except OSError:
        link = False
    if link:
        return ("%s is a symbolic link, which is not followed: this collection makes the directories below a file "
                "replica's path itself, so a link there would send its claims elsewhere (remove the link)" % path)
    return "%s is not a directory (this collection makes it below the replica path: remove what is there)" % path


def host_id(config_root, create=True):
    """This host's id, made once inside the configuration root (the collection's own directory, where no app's
    directory can have its name; None when it does not exist and create is False: --check). Written whole to a
    temporary file and linked to its name, so a concurrent reader sees no file or the whole id, and of two
    concurrent makers one id wins."""
    path = os.path.join(config_root, HOST_ID_FILE)
    text = _read_host_id(path)
    if text is not None or not create:
        return text
    temp = "%s/.%s.%s.tmp" % (config_root, HOST_ID_FILE, uuid.uuid4().hex)
    # root 0600 like every file of the configuration root, though an id is no secret
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write((uuid.uuid4().hex + "\n").encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except OSError as exc:
            if exc.errno != errno.EEXIST:  # EEXIST: a concurrent run made it first; that one is the id
                raise StoreFailed("create %s: %s" % (path, exc.strerror))
    finally:
        os.unlink(temp)  # the temporary file made above
    return _read_host_id(path)


def read_file(path, limit, at=None):
    """At most `limit` bytes of a regular file, not through a symlink; None when it does not exist. ``at``:
    (descriptor of the directory holding it, its name there), `path` then only names it in messages."""
    fd_of, name = at if at is not None else (None, path)
    try:
        # O_NONBLOCK: a FIFO put at the name does not hang the open; it is refused below like any non-file
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd_of)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise StoreFailed("read %s: %s" % (path, exc.strerror))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StoreFailed("read %s: it is not a regular file" % path)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(limit)


def _read_host_id(path):
    data = read_file(path, 64)
    if data is None:
        return None
    text = data.decode("ascii", "replace").strip()
    if not HOST_ID_RE.match(text):
        raise StoreFailed("%s does not hold a host id (32 hex digits): remove it to make a new one" % path)
    return text


def store_for(fields, credentials, timeout=10):
    """The claim store of a replica, or Unsupported naming why (its type, or what the replica lacks)."""
    backend = backends.of(fields)
    if backend.claims == "conditional-put":
        if not s3_listing.listable(fields, credentials or {}):
            raise Unsupported(
                "replica: ownership of a %s replica is recorded for an endpoint with path-style addressing and keys "
                "in the credential set only (not yet AWS's own virtual-hosted endpoints)" % backend.label)
        return S3Claims(fields, credentials, timeout)
    if backend.claims == "link":
        return FileClaims(fields["path"])
    if backend.claims == "legacy-rename":
        from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import sftp_claims
        return sftp_claims.SftpClaims(fields, credentials or {}, timeout)
    raise Unsupported(
        "replica.type: ownership cannot be recorded on a %s replica yet (Litestream's client writes it without "
        "conditions and this collection has no create-only write for it): moving the app or taking it over is "
        "refused; stop the old host's app and sidecar by hand first, nothing fences it" % backend.label)


def current_lineage(replica, credentials_root, app):
    """A replica option at the app's current lineage (only its path changes; read only): what a drill restores.
    A replica without records, or still at epoch 1, is returned as given."""
    fields = ls.normalize_replica(replica)
    backend = backends.of(fields)
    if not backend.claims:
        return replica
    creds = {}
    if backend.needs_credentials:
        creds = load_credentials(credentials_root, fields.get("credentials") or defaults.CREDENTIAL_SET, fields["type"])
    try:
        store = store_for(fields, creds)
    except Unsupported:
        return replica
    claim = current(store, fields, app)
    if claim is None or claim["epoch"] == 1:
        return replica
    return ownership.lineage_fields(fields, app, claim["epoch"])


def current(store, fields, app):
    """The app's newest claim, checked, or None when it has never been claimed."""
    directory = ownership.claims_dir(fields, app)
    epoch = ownership.newest_epoch(store.names(directory))
    return None if epoch is None else read_claim(store, fields, app, epoch)


def history(store, fields, app):
    """Every claim of the app, checked, oldest first ([] when it has never been claimed)."""
    epochs = (ownership.epoch_of(name) for name in store.names(ownership.claims_dir(fields, app)))
    return [read_claim(store, fields, app, epoch) for epoch in sorted(e for e in epochs if e)]


def read_claim(store, fields, app, epoch):
    """The claim of `epoch`, listed in claims/, read and checked."""
    path = "%s/%s" % (ownership.claims_dir(fields, app), ownership.claim_name(epoch))
    data = store.read(path)
    if data is None:
        raise StoreFailed("read %s: listed but not readable" % path)
    return ownership.decode(data, fields, app, epoch)


def create(store, fields, claim):
    """Creates `claim` (made by ownership.new_claim) create-only; the stored claim when it is ours, LostClaim
    naming the winner when another host's claim of that epoch is there."""
    app, epoch = claim["app"], claim["epoch"]
    path = "%s/%s" % (ownership.claims_dir(fields, app), ownership.claim_name(epoch))
    store.create(path, ownership.encode(claim))
    data = store.read(path)  # also after a lost answer (None): the stored claim says who won
    if data is None:
        raise StoreFailed("create %s: the store answered, yet the claim is not there" % path)
    stored = ownership.decode(data, fields, app, epoch)
    # another run of this same host (two parallel plays) may have made it: this host owns the epoch all the same
    if stored["nonce"] != claim["nonce"] and stored["host_id"] != claim["host_id"]:
        raise LostClaim(ownership.lost_claim_message(app, epoch, stored))
    return stored


class Ownership:
    """One app's ownership as this host sees it: read once (no write), then perhaps a claim of the next epoch."""

    def __init__(self, fields, credentials, app, config_root):
        self.fields, self.credentials, self.app, self.config_root = fields, credentials, app, config_root
        self.store = self.claim = self.host_id = None
        self.standing, self.reason = None, None

    def read(self):
        """standing: ownership.UNCLAIMED / OWNER / FENCED, or "unsupported" (reason says why); StoreFailed or
        ownership.ClaimProblem when the store cannot tell."""
        try:
            self.store = store_for(self.fields, self.credentials)
        except Unsupported as exc:
            self.standing, self.reason = UNSUPPORTED, str(exc)
            return self
        self.claim = current(self.store, self.fields, self.app)
        self.host_id = host_id(self.config_root, create=False)
        self.standing = ownership.standing(self.claim, self.host_id)
        return self

    @property
    def epoch(self):
        return self.claim["epoch"] if self.claim else 1

    def lineage(self):
        """The replica fields this host writes and reads: its owned epoch's lineage (epoch 1 until claimed)."""
        return ownership.lineage_fields(self.fields, self.app, self.epoch)

    def claim_next(self, owner, reason, databases, now, branch=None):
        """Claims the epoch after the current one for this host (epoch 1 when unclaimed); LostClaim when another
        host claimed it first. Probes the store before its first claim."""
        self.store.probe(ownership.app_dir(self.fields, self.app).rsplit("/", 1)[0])
        mine = host_id(self.config_root)
        claim = ownership.new_claim(self.app, self.epoch + 1 if self.claim else 1, owner, mine, reason, self.fields,
                                    databases, now, uuid.uuid4().hex, branch)
        self.claim, self.host_id, self.standing = create(self.store, self.fields, claim), mine, ownership.OWNER
        return self.claim

    def history(self):
        """Every claim of the app, oldest first (read after read(), from the same store)."""
        return history(self.store, self.fields, self.app) if self.store else []

    def summary(self):
        """What results report: never a secret (owner, epoch, lineage relative to the configured path)."""
        if self.standing == UNSUPPORTED:
            return {"standing": UNSUPPORTED, "reason": self.reason}
        found = {"standing": self.standing, "epoch": self.epoch, "lineage": ownership.lineage_dir(self.app, self.epoch)}
        if self.claim:
            found.update(owner=self.claim["owner"], since=self.claim["created_at"], reason=self.claim["reason"])
        return found
