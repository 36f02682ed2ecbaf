# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sidecar_reads: the control socket over a real unix socket (an HTTP server in a thread answers as Litestream's
server.go handleList does), the local TXID and a file replica's newest file from real directories."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import shutil
import socket
import sqlite3
import struct
import tempfile
import threading
import time

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import sidecar_reads as sr

LISTING = {"databases": [{"path": "/data/production.sqlite3", "status": "replicating",
                          "last_sync_at": "2026-12-01T03:00:00.123456789Z"}]}


class SocketServer(threading.Thread):
    """Answers each connection once: `mode` ok (200 and `listing`), error (500) or silent (never answers)."""

    def __init__(self, path, mode="ok", listing=None):
        super(SocketServer, self).__init__(daemon=True)
        self.path, self.mode, self.requests = path, mode, []
        self.listing = LISTING if listing is None else listing
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)

    def run(self):
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.requests.append(data.split(b"\r\n", 1)[0].decode())
            if self.mode == "silent":
                time.sleep(3)
            else:
                status, body = ("200 OK", json.dumps(self.listing)) if self.mode == "ok" else (
                    "500 Internal Server Error", json.dumps({"error": "store closed"}))
                try:
                    conn.sendall(("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                  % (status, len(body), body)).encode())
                except OSError:  # a client that refused the peer hung up first
                    pass
            conn.close()


@pytest.fixture
def short_dir():
    path = tempfile.mkdtemp(prefix="sr", dir="/tmp")  # a unix socket path has at most 107 bytes
    yield path
    shutil.rmtree(path)


@pytest.mark.parametrize("mode", ["ok", "error"])
def test_the_control_socket_gives_what_litestream_list_prints(short_dir, mode):
    server = SocketServer(os.path.join(short_dir, "litestream.sock"), mode)
    server.start()
    output, rc = sr.control_list(server.path, 2)
    assert server.requests == ["GET /list HTTP/1.1"]
    if mode == "ok":
        assert rc == 0 and json.loads(output) == LISTING
    else:
        assert rc == 1 and output == 'Error: list failed: {"error": "store closed"}'
    server.sock.close()


def test_only_the_sidecars_own_process_may_answer_on_the_socket(short_dir):
    server = SocketServer(os.path.join(short_dir, "litestream.sock"))
    server.start()
    try:
        assert sr.control_list(server.path, 2, pid=os.getpid())[1] == 0  # this process serves it
        output, rc = sr.control_list(server.path, 2, pid=os.getpid() + 1)
        assert rc == 1 and "belongs to process %d, not to the sidecar's %d" % (os.getpid(), os.getpid() + 1) in output
    finally:
        server.sock.close()


def test_a_read_that_hangs_is_cut_at_its_bound():
    started = time.time()
    output, rc = sr.bounded(lambda: time.sleep(5) or ("never", 0), 0.5, "listing /nfs/replica")
    assert rc == sr.TIMED_OUT and output.startswith("Error: listing /nfs/replica: context deadline exceeded")
    assert time.time() - started < 2
    assert sr.bounded(lambda: ("[]", 0), 1, "x") == ("[]", 0)


def test_a_socket_that_does_not_answer_times_out_and_a_missing_one_fails(short_dir):
    server = SocketServer(os.path.join(short_dir, "litestream.sock"), "silent")
    server.start()
    started = time.time()
    output, rc = sr.control_list(server.path, 1)
    assert rc == sr.TIMED_OUT and "context deadline exceeded" in output and time.time() - started < 2.5
    server.sock.close()
    output, rc = sr.control_list(os.path.join(short_dir, "absent.sock"), 1)
    assert rc == 1 and output.startswith("Error: failed to connect to control socket:") and "No such file" in output


def handle_path(fd):
    try:
        return os.readlink("/proc/self/fd/%d" % fd)
    finally:
        os.close(fd)


def test_the_socket_is_found_inside_the_process_root_following_links_only_inside_it(tmp_path):
    root = tmp_path / "7" / "root"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "run" / "litestream.sock").write_text("")
    assert handle_path(sr.open_in_root(str(root), "/run/litestream.sock")) == str(root / "run" / "litestream.sock")
    # Debian's /var/run -> /run: absolute, so it must not be resolved against the host's /run
    os.symlink("/run", str(root / "var" / "run"))
    assert handle_path(sr.open_in_root(str(root), "/var/run/litestream.sock")) == str(root / "run" / "litestream.sock")
    os.symlink("../run/x", str(root / "var" / "rel"))
    (root / "run" / "x").mkdir()  # as the kernel walks x/..: x must be there
    (root / "run" / "y").write_text("")
    assert handle_path(sr.open_in_root(str(root), "/var/rel/../y")) == str(root / "run" / "y")
    os.symlink("/loop", str(root / "loop"))
    with pytest.raises(OSError):
        sr.open_in_root(str(root), "/loop/a")


def test_no_link_in_the_container_leads_the_host_out_of_its_root(tmp_path):
    """An absolute link and a climb of '..' both stay inside the root: the host's own files are never reached."""
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "litestream.sock").write_text("the host's")
    root = tmp_path / "7" / "root"
    (root / "var" / "run").mkdir(parents=True)
    (root / "host").mkdir()
    for target in (str(host_dir), "../../../../" + str(host_dir).lstrip("/"), "/../../host"):
        link = root / "var" / "run" / "litestream.sock"
        if os.path.lexists(str(link)):
            os.unlink(str(link))
        os.symlink(target + "/litestream.sock", str(link))
        with pytest.raises(OSError) as caught:
            sr.open_in_root(str(root), "/var/run/litestream.sock")
        assert caught.value.errno == errno.ENOENT, target
    (root / "host" / "litestream.sock").write_text("the container's")
    assert handle_path(sr.open_in_root(str(root), "/var/run/litestream.sock")) == str(root / "host" / "litestream.sock")


def test_the_socket_checked_is_the_one_connected_to_even_if_its_path_is_swapped_after(short_dir, monkeypatch):
    """After the walk, the container swaps its /run for a link to a host directory holding a socket of its own: the
    connection still goes to the socket the walk found (through its handle), and the host's socket sees nothing."""
    root = os.path.join(short_dir, "r")
    os.makedirs(os.path.join(root, "var", "run"))
    sidecar = SocketServer(os.path.join(root, "var", "run", "litestream.sock"))
    sidecar.start()
    host_dir = os.path.join(short_dir, "h")
    os.mkdir(host_dir)
    host = SocketServer(os.path.join(host_dir, "litestream.sock"))
    host.start()
    real_control_list = sr.control_list

    def swapped(path, timeout, pid=None):
        os.rename(os.path.join(root, "var", "run"), os.path.join(root, "var", "moved"))
        os.symlink(host_dir, os.path.join(root, "var", "run"))
        return real_control_list(path, timeout, pid)
    monkeypatch.setattr(sr, "control_list", swapped)
    try:
        output, rc = sr.sidecar_list(root, 2, os.getpid())
        assert rc == 0 and json.loads(output) == LISTING
        assert sidecar.requests == ["GET /list HTTP/1.1"] and host.requests == []
    finally:
        sidecar.sock.close()
        host.sock.close()


@pytest.mark.parametrize("make, message", [
    (lambda path: open(path, "w").close(), "Error: failed to connect to control socket: /var/run/litestream.sock is "
                                           "not a socket"),
    (None, "Error: failed to connect to control socket: [Errno 2] No such file or directory"),
])
def test_no_socket_in_the_root_is_an_error_in_litestreams_words(tmp_path, make, message):
    root = tmp_path / "root"
    (root / "var" / "run").mkdir(parents=True)
    if make:
        make(str(root / "var" / "run" / "litestream.sock"))
    assert sr.sidecar_list(str(root), 1, 1) == (message, 1)


class Recorder(threading.Thread):
    """A socket that records every byte it receives and answers `answer` (raw bytes); with `drip`, a byte every `drip`
    seconds from byte `drip_from` on."""

    def __init__(self, path, answer=b"", drip=None, drip_from=0):
        super(Recorder, self).__init__(daemon=True)
        self.received, self.answer, self.drip, self.done = [], answer, drip, threading.Event()
        self.drip_from = drip_from
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)

    def run(self):
        try:
            conn, _addr = self.sock.accept()
        except OSError:
            return
        conn.settimeout(3)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data and self.drip:
                conn.sendall(self.answer[:self.drip_from])
                for byte in self.answer[self.drip_from:]:
                    conn.sendall(bytes([byte]))
                    time.sleep(self.drip)
            elif data:
                conn.sendall(self.answer)
        except OSError:
            pass
        self.received.append(data)
        conn.close()
        self.done.set()


def test_nothing_is_sent_before_the_kernel_confirms_the_sidecars_process_listens(short_dir):
    server = Recorder(os.path.join(short_dir, "litestream.sock"))
    server.start()
    try:
        output, rc = sr.control_list(os.path.join(short_dir, "litestream.sock"), 2, pid=os.getpid() + 1)
        assert rc == 1 and "belongs to process %d, not to the sidecar's %d" % (os.getpid(), os.getpid() + 1) in output
        assert server.done.wait(3) and server.received == [b""]  # connected, refused, not one byte sent
    finally:
        server.sock.close()


@pytest.mark.parametrize("length", [True, False], ids=["declared", "streamed"])
def test_an_answer_larger_than_the_bound_is_refused_not_cut(short_dir, monkeypatch, length):
    monkeypatch.setattr(sr, "MAX_BODY", 1000)
    body = json.dumps({"databases": [{"path": "/data/%d.sqlite3" % i, "status": "replicating"} for i in range(50)]})
    head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    head += ("Content-Length: %d\r\n\r\n" % len(body)) if length else "Connection: close\r\n\r\n"
    server = Recorder(os.path.join(short_dir, "litestream.sock"), (head + body).encode())
    server.start()
    try:
        output, rc = sr.control_list(os.path.join(short_dir, "litestream.sock"), 2)
    finally:
        server.sock.close()
    assert rc == 1
    if length:
        assert output == ("Error: list failed: the control socket's answer is %d bytes, more than the 1000 this read "
                          "takes; refusing it" % len(body))
    else:
        assert output == ("Error: list failed: the control socket's answer is more than the 1000 bytes this read "
                          "takes; refusing it")


@pytest.mark.parametrize("length", [b"\xb2", b"-5", b"+5", b"5 5"], ids=["superscript-two", "negative", "plus", "two"])
def test_a_content_length_that_is_no_byte_count_is_refused(short_dir, length):
    """(issue 20, review) '²'.isdigit() is True, but int('²') raises: the answer is refused in words, not with the
    ValueError's."""
    body = json.dumps(LISTING).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + length + b"\r\n\r\n"
    server = Recorder(os.path.join(short_dir, "litestream.sock"), head + body)
    server.start()
    try:
        output, rc = sr.control_list(os.path.join(short_dir, "litestream.sock"), 2)
    finally:
        server.sock.close()
    assert rc == 1 and output == ("Error: list failed: the control socket's answer has the Content-Length %r, which is "
                                  "not a byte count (at most 19 digits 0-9); refusing it" % length.decode("latin-1"))


def test_read_bounded_refuses_a_unicode_digit_length_itself():
    class Response:
        def getheader(self, name):
            return u"\u00b2"
    with pytest.raises(sr.Refused, match="not a byte count"):
        sr.read_bounded(Response(), 100, time.time() + 1, "the answer")


@pytest.mark.parametrize("part", ["body", "headers"])
def test_an_answer_that_drips_is_cut_at_the_timeout(short_dir, part):
    """A byte every 50 ms never trips the socket's own timeout (1 s): the body read has a deadline, and the sidecar's
    whole read (headers included) is bounded by sidecar_list."""
    body = json.dumps(LISTING) + " " * 200
    head = "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Pad: %s\r\n\r\n" % (len(body), "x" * 60)
    path = os.path.join(short_dir, "var", "run", "litestream.sock")
    os.makedirs(os.path.dirname(path))
    server = Recorder(path, (head + body).encode(), drip=0.05, drip_from=len(head) if part == "body" else 0)
    server.start()
    started = time.time()
    try:
        if part == "body":
            output, rc = sr.control_list(path, 1)
        else:
            output, rc = sr.sidecar_list(short_dir, 1, os.getpid())
    finally:
        server.sock.close()
    took = time.time() - started
    assert rc == sr.TIMED_OUT and "failed to connect to control socket: context deadline exceeded" in output, output
    assert took < (1.5 if part == "body" else 2.5), took


def ltx(directory, low, high, mtime=None):
    if not os.path.isdir(directory):
        os.makedirs(directory)
    path = os.path.join(directory, "%016x-%016x.ltx" % (low, high))
    with open(path, "w") as handle:
        handle.write("x")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_the_local_txid_is_the_newest_level_0_file_as_litestream_status_reads_it(tmp_path):
    storage = str(tmp_path)
    (tmp_path / "a.sqlite3").write_text("")
    (tmp_path / "b.sqlite3").write_text("")
    level0 = str(tmp_path / ".a.sqlite3-litestream" / "ltx" / "0")
    for low, high in ((1, 9), (10, 0x1f), (0x20, 0x20)):
        ltx(level0, low, high)
    open(os.path.join(level0, "0000000000000021-0000000000000021.ltx.tmp"), "w").close()  # not a finished file
    output, rc = sr.status_rows(storage, ["a.sqlite3", "b.sqlite3", "c.sqlite3"])
    assert rc == 0
    assert json.loads(output) == [
        {"database": "/data/a.sqlite3", "status": "ok", "local_txid": "0000000000000020", "wal_size": "-"},
        {"database": "/data/b.sqlite3", "status": "not initialized", "local_txid": "-", "wal_size": "-"},
        {"database": "/data/c.sqlite3", "status": "no database", "local_txid": "-", "wal_size": "-"}]


def test_a_file_replica_lists_its_newest_level_0_file_with_its_mtime(tmp_path):
    replica = str(tmp_path / "replica")
    assert sr.file_replica_files(replica) == ("[]", 0)
    level0 = os.path.join(replica, "ltx", "0")
    ltx(level0, 1, 5, mtime=1796000000.25)
    ltx(level0, 6, 0x2a, mtime=1796000100.5)
    ltx(os.path.join(replica, "ltx", "1"), 1, 0x40)  # other levels are not read
    output, rc = sr.file_replica_files(replica)
    assert rc == 0
    assert json.loads(output) == [{"level": 0, "min_txid": "0000000000000006", "max_txid": "000000000000002a",
                                   "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1796000100)) + ".500000Z"}]


def ltx_header(offset, size, salts):
    """The first bytes of a level-0 LTX file as Litestream 0.5 writes them (superfly/ltx v0.5.2 MarshalBinary)."""
    return b"LTX1" + b"\0" * 44 + struct.pack(">qq", offset, size) + salts + b"\0" * 28


def wal_db(tmp_path):
    """A WAL database with autocheckpoint off and a connection kept open (the WAL stays), and its meta dir."""
    path = str(tmp_path / "app.sqlite3")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x)")
    meta = tmp_path / ".app.sqlite3-litestream" / "ltx" / "0"
    meta.mkdir(parents=True)
    return path, conn, str(tmp_path / ".app.sqlite3-litestream"), meta


def test_a_commit_past_litestreams_last_read_of_the_wal_is_found(tmp_path):
    path, conn, meta_dir, level0 = wal_db(tmp_path)
    conn.execute("INSERT INTO t VALUES (1)")
    with open(path + "-wal", "rb") as wal:
        salts = wal.read(32)[16:24]
    end = os.path.getsize(path + "-wal")
    # Litestream read the WAL to its end: nothing unsynced
    (level0 / ("%016x-%016x.ltx" % (2, 2))).write_bytes(ltx_header(32, end - 32, salts))
    assert sr.unsynced_commit(path, meta_dir) is None
    conn.execute("INSERT INTO t VALUES (2)")  # a commit Litestream never read
    found = sr.unsynced_commit(path, meta_dir)
    assert found == ("its WAL holds a committed transaction at byte %d that Litestream never read (it last read up "
                     "to byte %d)" % (end, end))
    # a newer level-0 file whose salts are another WAL round's: the whole current round is unread
    (level0 / ("%016x-%016x.ltx" % (3, 3))).write_bytes(ltx_header(32, end - 32, b"\1" * 8))
    assert sr.unsynced_commit(path, meta_dir).endswith("(it last read up to byte 32)")
    conn.close()


def test_no_wal_or_no_level_0_file_says_nothing(tmp_path):
    path, conn, meta_dir, _level0 = wal_db(tmp_path)
    conn.execute("INSERT INTO t VALUES (1)")
    assert sr.unsynced_commit(path, meta_dir) is None  # Litestream never wrote: its first sync snapshots
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert sr.unsynced_commit(str(tmp_path / "none.sqlite3"), meta_dir) is None
