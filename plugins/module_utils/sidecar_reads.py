# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What Litestream inside a sidecar knows, read from the host without a `docker exec`.

A `docker exec` costs about a tenth of a second of the host's CPU before Litestream even starts, so the health
check reads from the host what it can, in the shapes the Litestream commands print (health_core parses one
shape either way):
- the control socket's `GET /list` (what `litestream list -json` prints), reached through the sidecar process's
  own root, /proc/<pid>/root/var/run/litestream.sock (root only, as the module runs);
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
import json
import os
import re
import socket

import struct
import threading

try:
    from http.client import HTTPConnection, HTTPException
except ImportError:  # pragma: no cover - Python 2
    from httplib import HTTPConnection, HTTPException

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls

LTX_NAME_RE = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$")
TIMED_OUT = 124  # as `timeout` exits, so health_core treats a host read like a bounded command
MAX_BODY = 1 << 20  # a /list answer is a few hundred bytes per database


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
                # the path was resolved in a root the container controls: only its own Litestream may answer
                peer = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[0]
                if peer != self.pid:
                    raise OSError("the socket at %s belongs to process %d, not to the sidecar's %d"
                                  % (self.unix_path, peer, self.pid))
        except Exception:
            sock.close()
            raise
        self.sock = sock


def in_root(root, path, hops=40):
    """`path` as seen from inside the directory `root` (a process's /proc/<pid>/root), for the host to open.

    Symbolic links are followed inside `root`: /var/run is a link to /run in Debian images, and the kernel would
    resolve such an absolute target against the host's root instead of the container's."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    done = []
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        here = root + "/" + "/".join(done + [part])
        if os.path.islink(here):
            hops -= 1
            if hops < 0:
                raise OSError(40, "too many levels of symbolic links", path)
            target = os.readlink(here)
            if target.startswith("/"):
                done = []
            parts = [t for t in target.split("/") if t not in ("", ".")] + parts
            continue
        done.append(part)
    return root + "/" + "/".join(done)


def socket_path(pid, proc_root="/proc"):
    """The sidecar's control socket as the host reaches it: through the process's root directory."""
    return in_root("%s/%d/root" % (proc_root, int(pid)), ls.SOCKET_PATH)


def control_list(path, timeout, pid=None):
    """(output, exit code) of `GET /list` on the socket at `path`, as `litestream list -json` would give them; with
    `pid`, only when that process holds the socket's other end."""
    conn = UnixHTTPConnection(path, timeout, pid)
    try:
        conn.request("GET", "/list")
        response = conn.getresponse()
        body = response.read(MAX_BODY).decode("utf-8", "replace")
    except socket.timeout:
        return "Error: failed to connect to control socket: context deadline exceeded", TIMED_OUT
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
            row["local_txid"] = "%016x" % newest if newest else "-"
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
