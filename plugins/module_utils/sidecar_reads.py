# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What Litestream inside a sidecar knows, read from the host without a `docker exec`.

A `docker exec` costs about a tenth of a second of the host's CPU before Litestream even starts, so the health
check reads from the host what it can, in the shapes the Litestream commands print (health_core parses one
shape either way):
- the control socket's `GET /list` (what `litestream list -json` prints), reached through the sidecar process's
  own root, /proc/<pid>/root/var/run/litestream.sock (root only, as the module runs): the path walked inside that
  root through descriptors, so no link in the container leads the host out of it, nothing sent before the kernel
  confirms the sidecar's own process holds the socket (SO_PEERCRED), the answer bounded in size and time;
- the local TXID, the highest level-0 LTX file name under .<db>-litestream in the storage directory (what
  `litestream status` reads: db.MaxLTX);
- a file replica's level-0 files, listed in its directory, which the sidecar mounts at the same path (what
  `litestream ltx -level 0 -json` lists: the file client takes each file's time from its mtime).
Only the listing of a remote replica (S3, sftp, ...) still needs Litestream, with the app's credentials.
Facts: docs/litestream-health-facts.md (server.go handleList, db.go MaxLTX, file/replica_client.go LTXFiles).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import json
import os
import re
import socket
import stat
import struct
import threading
import time

try:
    from http.client import HTTPConnection, HTTPException
except ImportError:  # pragma: no cover - Python 2
    from httplib import HTTPConnection, HTTPException

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

LTX_NAME_RE = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$")
TIMED_OUT = 124  # as `timeout` exits, so health_core treats a host read like a bounded command
MAX_BODY = 1 << 20  # a /list answer is a few hundred bytes per database
CHUNK = 64 * 1024
O_PATH = getattr(os, "O_PATH", 0)  # Linux: a handle on the entry itself, for the walk and for connect()


class Refused(errors.CollectionError, ValueError):
    """An answer refused before it is read: too large, or with a header that says nothing true about it."""


class TooLarge(Refused):
    """An answer larger than its bound: refused, not cut (a cut JSON or XML would read as another answer)."""


# a byte count as HTTP writes it: ASCII digits only ('²'.isdigit() is True, but int('²') raises)
CONTENT_LENGTH_RE = re.compile(r"[0-9]{1,19}")


def read_bounded(response, limit, deadline, what):
    """The body of an http.client response, at most `limit` bytes and until `deadline` (time.time()): a peer that
    sends more, or drips forever, is refused with TooLarge or socket.timeout instead of filling memory or the run;
    one whose Content-Length is no byte count (ASCII digits, at most 19) with Refused."""
    length = response.getheader("Content-Length")
    if length is not None:
        if not CONTENT_LENGTH_RE.fullmatch(length.strip()):
            raise Refused("%s has the Content-Length %s, which is not a byte count (at most 19 digits 0-9)"
                          % (what, v.shown(length)))
        if int(length) > limit:
            raise TooLarge("%s is %s bytes, more than the %d this read takes" % (what, length.strip(), limit))
    chunks, size = [], 0
    read = getattr(response, "read1", response.read)  # read1: what has arrived, so the deadline is looked at often
    while True:
        if time.time() > deadline:
            raise socket.timeout("%s took longer than its bound" % what)
        chunk = read(min(CHUNK, limit + 1 - size))
        if not chunk:
            response.read()  # b"" at its end: marks the response done, so the connection takes the next request
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise TooLarge("%s is more than the %d bytes this read takes" % (what, limit))


class UnixHTTPConnection(HTTPConnection):
    """HTTP over a unix socket, as Litestream's own client talks to its control server."""

    def __init__(self, path, timeout, pid=None):
        HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self.unix_path, self.pid = path, pid

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
            if self.pid is not None:
                # the socket lies in a root the container controls: only its own Litestream may answer, and nothing
                # is sent (request() sends only once connect() has returned) before the kernel says who listens
                peer = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[0]
                if peer != self.pid:
                    raise OSError("the control socket belongs to process %d, not to the sidecar's %d"
                                  % (peer, self.pid))
        except Exception:
            sock.close()
            raise
        self.sock = sock


def _parts(path):
    return [part for part in path.split("/") if part not in ("", ".")]


def open_in_root(root, path, hops=40):
    """A handle (O_PATH) on `path` as seen from inside the directory `root` (a process's /proc/<pid>/root).

    The kernel would resolve an absolute link, or '..', met under /proc/<pid>/root against the host's root: Debian's
    /var/run -> /run would lead to the host's /run, and a container could point a link anywhere on the host. So each
    component is opened relative to the directory before it without following a link (O_NOFOLLOW); a link's target
    is read and walked again from inside root (an absolute one from root itself, '..' never above it). A link
    swapped in after a look is opened as the link, not followed: nothing on the way leads out of root."""
    fds = [os.open(root, O_PATH | os.O_DIRECTORY)]
    parts = _parts(path)
    try:
        while parts:
            part = parts.pop(0)
            if part == "..":
                if len(fds) > 1:
                    os.close(fds.pop())
                continue
            fd = os.open(part, O_PATH | os.O_NOFOLLOW, dir_fd=fds[-1])
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                os.close(fd)
                hops -= 1
                if hops < 0:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links")
                target = os.readlink(part, dir_fd=fds[-1])
                if target.startswith("/"):
                    while len(fds) > 1:
                        os.close(fds.pop())
                parts = _parts(target) + parts
                continue
            fds.append(fd)
            if parts and not stat.S_ISDIR(mode):
                raise OSError(errno.ENOTDIR, "not a directory")
        if len(fds) == 1:
            raise OSError(errno.EISDIR, "is the root directory itself")
        return fds.pop()
    finally:
        for fd in fds:
            os.close(fd)


def sidecar_list(root, timeout, pid):
    """control_list() of the sidecar's own socket, ls.SOCKET_PATH inside its process's root `root`: connected to
    through the handle open_in_root() gave (the very socket checked, whatever is at its path by then), answered only
    by process `pid`; the whole read bounded by bounded() too (a peer dripping its headers)."""
    try:
        fd = open_in_root(root, ls.SOCKET_PATH)
    except OSError as exc:
        return "Error: failed to connect to control socket: %s" % os_error(exc), 1
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        os.close(fd)
        return "Error: failed to connect to control socket: %s is not a socket" % ls.SOCKET_PATH, 1

    def read():
        try:
            return control_list("/proc/self/fd/%d" % fd, timeout, pid)
        finally:
            os.close(fd)  # by the thread that used it: a read cut by bounded() closes it when it ends
    return bounded(read, timeout + 1, "failed to connect to control socket")


def os_error(exc):
    """An OSError's words without the file name Python adds (a name inside the container says nothing here)."""
    if exc.errno and exc.strerror:
        return "[Errno %d] %s" % (exc.errno, exc.strerror)
    return str(exc) or type(exc).__name__


def control_list(path, timeout, pid=None):
    """(output, exit code) of `GET /list` on the socket at `path`, as `litestream list -json` would give them; with
    `pid`, only when that process holds the socket's other end. The answer is read until `timeout` seconds after the
    start (each wait on the socket is bounded too; sidecar_list() bounds the whole read), and one larger than
    MAX_BODY is refused."""
    deadline = time.time() + timeout
    conn = UnixHTTPConnection(path, timeout, pid)
    try:
        conn.request("GET", "/list")
        response = conn.getresponse()
        body = read_bounded(response, MAX_BODY, deadline, "the control socket's answer").decode("utf-8", "replace")
    except socket.timeout:
        return "Error: failed to connect to control socket: context deadline exceeded", TIMED_OUT
    except Refused as exc:
        return "Error: list failed: %s; refusing it" % exc, 1
    except (IOError, OSError, ValueError, HTTPException) as exc:
        return "Error: failed to connect to control socket: %s" % (str(exc) or type(exc).__name__), 1
    finally:
        conn.close()
    if response.status != 200:
        return "Error: list failed: %s" % body.strip(), 1
    return body, 0


def txid_names(directory):
    """{max TXID: file name} of the LTX files in `directory`; {} when it does not exist."""
    try:
        names = os.listdir(directory)
    except OSError as exc:
        if getattr(exc, "errno", None) == 2:  # ENOENT: nothing written yet
            return {}
        raise
    found = {}
    for name in names:
        match = LTX_NAME_RE.match(name)
        if match:
            found[int(match.group(2), 16)] = name
    return found


# Litestream's position in the WAL, from the header of its newest level-0 file (superfly/ltx v0.5.2 ltx.go:283-299,
# the version Litestream 0.5.16's go.mod pins): big-endian WALOffset at 48, WALSize at 56, WALSalt1/2 at 64/68.
LTX_MAGIC = b"LTX1"
LTX_HEADER = struct.Struct(">48xqqII")
# SQLite's WAL: a 32-byte header (page size at 8, salts at 16), then frames of a 24-byte header (the database size
# after a commit at 4, non-zero only on a transaction's last frame; salts at 8) and one page.
WAL_HEADER_SIZE, WAL_FRAME_HEADER_SIZE = 32, 24


def unsynced_commit(db_path, meta_dir):
    """Whether the database's WAL holds a committed transaction past what Litestream last read: a message, or None.

    Litestream's verify (db.go, 0.5.16) resumes from the newest level-0 file's WALOffset + WALSize when the WAL's
    salts are that file's, else from the WAL's start. A commit frame of the WAL's current salts at or past that
    point is a transaction no TXID shows (a final sync that never ran, or was cut short). No WAL, or no level-0 file
    yet, says nothing here."""
    found = txid_names(os.path.join(meta_dir, "ltx", "0"))
    try:
        wal = open(db_path + "-wal", "rb")
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    with wal:
        head = wal.read(WAL_HEADER_SIZE)
        if len(head) < WAL_HEADER_SIZE or not found:
            return None
        page_size = struct.unpack(">I", head[8:12])[0]
        salts = head[16:24]
        start = WAL_HEADER_SIZE
        with open(os.path.join(meta_dir, "ltx", "0", found[max(found)]), "rb") as ltx:
            header = ltx.read(LTX_HEADER.size)
        if len(header) == LTX_HEADER.size and header[:4] == LTX_MAGIC:
            offset, size, salt1, salt2 = LTX_HEADER.unpack(header)
            if struct.pack(">II", salt1, salt2) == salts:
                start = max(WAL_HEADER_SIZE, offset + size)
        frame = WAL_FRAME_HEADER_SIZE + page_size
        wal.seek(start)
        position = start
        while True:
            frame_header = wal.read(WAL_FRAME_HEADER_SIZE)
            if len(frame_header) < WAL_FRAME_HEADER_SIZE or frame_header[8:16] != salts:
                return None  # SQLite itself reads no further than the first frame of another round
            if struct.unpack(">I", frame_header[4:8])[0]:
                return ("its WAL holds a committed transaction at byte %d that Litestream never read (it last read "
                        "up to byte %d)" % (position, start))
            position += frame
            wal.seek(position)


def status_rows(storage_dir, databases, mount_dir=ls.DEFAULT_MOUNT_DIR):
    """(output, exit code) in the shape of `litestream status -json`: per database its path in the sidecar, whether
    the file exists, and the local TXID (the newest level-0 file of its .<db>-litestream directory)."""
    rows = []
    for db in databases:
        row = dict(database="%s/%s" % (mount_dir, db), status="unknown", local_txid="-", wal_size="-")
        if not os.path.exists(os.path.join(storage_dir, db)):
            row["status"] = "no database"
        else:
            try:
                found = txid_names(os.path.join(storage_dir, ".%s-litestream" % db, "ltx", "0"))
            except OSError as exc:
                return "Error: %s" % exc, 1
            newest = max(found) if found else 0
            row["status"] = "ok" if newest else "not initialized"
            row["local_txid"] = ls.hex_txid(newest) if newest else "-"
        rows.append(row)
    return json.dumps(rows), 0


def rfc3339(epoch):
    """Seconds since the epoch -> RFC 3339 in UTC, as Litestream prints times."""
    return (datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=epoch)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_replica_files(replica_dir):
    """(output, exit code) in the shape of `litestream ltx -level 0 -json` for a file replica's directory: only the
    newest file, which is all the check reads (the listing itself is bounded by Litestream's l0-retention)."""
    level0 = os.path.join(replica_dir, "ltx", "0")
    try:
        found = txid_names(level0)
        if not found:
            return "[]", 0
        newest = max(found)
        name = found[newest]
        stamp = os.stat(os.path.join(level0, name)).st_mtime
    except OSError as exc:
        return "Error: %s" % exc, 1
    match = LTX_NAME_RE.match(name)
    return json.dumps([dict(level=0, min_txid=match.group(1), max_txid=match.group(2), timestamp=rfc3339(stamp))]), 0


def bounded(read, timeout, what):
    """read() in a thread, at most `timeout` seconds: a hung mount (NFS) cannot hang the run, as `timeout` bounded the
    same read in the sidecar. (output, exit code) of read(), or a timed-out one."""
    box = []

    def run():
        box.append(read())
    worker = threading.Thread(target=run)
    worker.daemon = True  # left behind on a hung mount; the module's process ends anyway
    worker.start()
    worker.join(timeout)
    if not box:
        return "Error: %s: context deadline exceeded (no answer within %ds)" % (what, timeout), TIMED_OUT
    return box[0]
