# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ownership claims on an SFTP server, through OpenSSH's `sftp` client in batch mode (docs/move-design.md §5).

Create-only is the legacy SSH_FXP_RENAME that `rename -l` sends: OpenSSH's sftp-server answers it with link() and
unlink(), refused when the target exists (sftp-server.c process_rename at V_9_2_P1); a plain `rename` sends
posix-rename@openssh.com, which replaces. Every refusal is the generic "Failure", so "the claim exists" is decided
by looking at the directory.

Each call is one `sftp -b -` session (two when a create fails) from a private directory (mkdtemp, mode 0700,
removed afterwards) holding the private key (0600), a known_hosts file that pins the replica's host_key, and the
file a claim travels through. It lies in SESSIONS_DIR, a root-only directory of this collection on /run's tmpfs, not
in /tmp: a session killed (SIGKILL, the OOM killer) cannot remove it, so each is marked and holds a flock while in
use (owned.make_temp), and every session first removes those whose maker is gone (owned.remove_stale). No ssh
configuration, agent or known host of the machine takes part. Paths travel inside the batch script between double
quotes; a path with a character that sftp's parser or its glob reads (sftp.c makeargv, remote_glob) is refused,
never escaped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import os
import posixpath
import random
import re
import shutil
import signal
import stat
import subprocess
import time
import uuid

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import claim_store
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import owned, ownership
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.runner import CommandRunner

# inside double quotes sftp's makeargv still reads '"' and '\'; get, ls, rm and put's local side glob * ? [ ] (ls
# also expands { }); a control character ends or splits the line
UNSAFE_RE = re.compile(u'[\x00-\x1f\x7f"\\\\*?\\[\\]{}]')
UNSAFE_TEXT = 'a double quote, a backslash, * ? [ ] { } or a control character'
# ssh reads whitespace and %-tokens in -o values: the private directory's path has neither
LOCAL_RE = re.compile(r"\A[A-Za-z0-9/._+-]+\Z")
HOST_KEY_RE = re.compile(r"\A[a-z0-9][a-z0-9@.-]* [A-Za-z0-9+/]+={0,2}\Z")
# ssh splits an -o value at whitespace and reads quotes, backslashes and %-tokens in it
USER_RE = re.compile(r"\A[^\s%\"'\\]+\Z")
KEY_FILE, KNOWN_HOSTS, CLAIM_FILE = "key", "known_hosts", "claim"
# the local copy of a read is bounded by the file size limit sftp runs under (sh's ulimit -f: 512-byte blocks)
FSIZE_BLOCKS = (ownership.MAX_CLAIM_BYTES + 1 + 511) // 512
# a session connects (ConnectTimeout) and then runs a few round trips: it may take this many timeouts in all
SESSION_TIMEOUTS = 3
# the server's answer for a missing directory (cd: realpath of a missing parent, or stat of a missing last part)
NO_SUCH_DIR_RE = re.compile(r"^(realpath .*|stat remote): No such file", re.M)
GET_MISSING_RE = re.compile(r'^File ".*" not found\.$', re.M)
RENAME_REFUSED_RE = re.compile(r'^remote rename ".*": ', re.M)
# sshd refuses connections beyond MaxStartups (10 unauthenticated by default) before the version exchange
DROPPED_RE = re.compile(r"^kex_exchange_identification: ", re.M)
CONNECT_ATTEMPTS = 5
# where the sessions' private directories live: tmpfs (gone at a reboot) and root-only, like lock.py's directory
# (on a host without /run/lock, /run/dokku-sqlite-litestream is that one too)
SESSIONS_DIR = "/run/dokku-sqlite-litestream/sftp"
SESSION_PREFIX = "dsl-sftp-"


def quoted(path):
    """A path as one argument of an sftp batch command; Unsupported for one that the script cannot carry as is."""
    if not path or UNSAFE_RE.search(path):
        raise claim_store.Unsupported(
            "replica.path: ownership claims on an sftp replica go through sftp's batch commands, which cannot carry "
            "%s safely (a path with %s): choose a replica path without them" % (validate.shown(path), UNSAFE_TEXT))
    return '"%s"' % ("./" + path if path.startswith("-") else path)  # a leading '-' would be read as a flag


def sessions_dir():
    """SESSIONS_DIR, made (0700, marked) or checked: refused unless it and the directory holding it are this
    collection's and no one else may write them, so no other user can read a key or swap the directory."""
    above = os.path.dirname(SESSIONS_DIR.rstrip("/"))
    try:
        os.mkdir(above, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise claim_store.StoreFailed("cannot create %s, where sftp sessions keep their private key: %s"
                                          % (above, exc.strerror))
    problem = _not_root_only(os.lstat(above))
    if problem:
        raise claim_store.StoreFailed(_refusal("refusing %s (it would hold the sftp sessions' private keys): %s"
                                               % (above, problem), above))
    try:
        owned.ensure(SESSIONS_DIR, owned.SFTP_SESSIONS, os.geteuid(), os.getegid())
    except owned.NotOurs as exc:
        raise claim_store.StoreFailed(_refusal(str(exc), SESSIONS_DIR))
    except OSError as exc:
        raise claim_store.StoreFailed("cannot create %s, where sftp sessions keep their private key: %s"
                                      % (SESSIONS_DIR, exc.strerror))
    return SESSIONS_DIR


def _refusal(problem, path):
    return ("%s. No key was written; this collection makes it itself, owned by uid %d with mode 0700, and another user "
            "may have planted it to read the keys: remove it (rm -r %s) and run again" % (problem, os.geteuid(), path))


def _not_root_only(st):
    """Why a directory (its lstat) is not one only this user may change (a text), or None."""
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link, which is not followed"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    if st.st_uid not in (0, os.geteuid()):
        return "it is owned by uid %d" % st.st_uid
    if st.st_mode & 0o022:
        return "its mode %04o lets others write in it" % stat.S_IMODE(st.st_mode)
    return None


def known_hosts_line(host, port, host_key):
    """The one known_hosts entry ssh accepts the server by: '[host]:port key', or 'host key' on port 22."""
    bare = host.strip("[]").lower()
    return "%s %s\n" % (bare if port == 22 else "[%s]:%d" % (bare, port), host_key)


def levels(directory):
    """Every directory from the top of `directory` down to it: what create makes with `-mkdir`."""
    parts = [part for part in directory.split("/") if part]
    prefix = "/" if directory.startswith("/") else ""
    return [prefix + "/".join(parts[:i + 1]) for i in range(len(parts))]


def listing(out):
    """The names `ls -1a` printed, one a line, without '.' and '..'."""
    return [line for line in out.splitlines() if line and line not in (".", "..")]


class SftpClaims:
    """Claims as files on an SFTP server (OpenSSH's sftp-server), reached with a private key."""

    def __init__(self, fields, credentials, timeout, binary=None):
        self.key = credentials.get("ssh_private_key")
        if not self.key:
            raise claim_store.Unsupported(
                "replica.credentials: ownership of an sftp replica is recorded with an ssh_private_key only for now "
                "(password authentication is a later step): %s" % (
                    "this set has only sftp_password" if credentials.get("sftp_password") else "this set has no key"))
        host, port = validate.host_port(fields["host"], "replica.host")
        self.host, self.port = host, port or 22
        self.user = fields.get("user") or ""
        if not USER_RE.match(self.user):
            raise claim_store.Unsupported("replica.user: %s cannot be given to ssh as a user name"
                                          % validate.shown(self.user))
        host_key = " ".join((fields.get("host_key") or "").split()[:2])
        if not HOST_KEY_RE.match(host_key):
            raise validate.InvalidValue("replica.host_key: %s is not a public key line such as 'ssh-ed25519 "
                                        "AAAA...'" % validate.shown(fields.get("host_key")))
        self.host_key = host_key
        quoted(fields.get("path") or "")
        self.timeout = max(1, int(timeout))
        self.server = "%s@%s:%d" % (self.user, self.host, self.port)
        self.binary = binary or shutil.which("sftp")
        if not self.binary:
            raise claim_store.StoreFailed("the sftp client (OpenSSH) is not installed: ownership of an sftp replica "
                                          "is recorded with it")

    def argv(self, private):
        """The command line of one session: no secret on it, only the files of the private directory."""
        options = ("StrictHostKeyChecking=yes", "UserKnownHostsFile=%s/%s" % (private, KNOWN_HOSTS),
                   "GlobalKnownHostsFile=/dev/null", "BatchMode=yes", "IdentitiesOnly=yes", "IdentityAgent=none",
                   "IdentityFile=%s/%s" % (private, KEY_FILE), "ConnectTimeout=%d" % self.timeout,
                   "User=%s" % self.user, "LogLevel=ERROR")
        argv = ["/bin/sh", "-c", 'ulimit -f %d && exec "$@"' % FSIZE_BLOCKS, "sh", self.binary, "-b", "-",
                "-F", "/dev/null"]
        for option in options:
            argv.extend(("-o", option))
        return argv + ["-P", str(self.port), "--", self.host]

    @contextlib.contextmanager
    def _private(self):
        """A directory only this user reads, with the key and the pinned host key; removed with all it holds. Its
        flock is held until then: a session killed before leaves it to the next session's remove_stale."""
        sessions = sessions_dir()
        owned.remove_stale(sessions, SESSION_PREFIX, owned.SFTP_SESSION)
        private, held = owned.make_temp(sessions, SESSION_PREFIX, owned.SFTP_SESSION, hold=True)
        try:
            if not LOCAL_RE.match(private):
                raise claim_store.StoreFailed("the session directory %s has characters ssh reads in its options"
                                              % validate.shown(private))
            key = self.key.replace("\r\n", "\n")
            self._write(private, KEY_FILE, (key if key.endswith("\n") else key + "\n").encode("utf-8"), 0o600)
            self._write(private, KNOWN_HOSTS,
                        known_hosts_line(self.host, self.port, self.host_key).encode("utf-8"), 0o644)
            yield private
        finally:
            try:
                owned.remove(private, owned.SFTP_SESSION)
            except (OSError, owned.NotOurs):
                pass  # left to the next session's remove_stale: its flock ends with the close below
            finally:
                os.close(held)

    @staticmethod
    def _write(private, name, data, mode):
        fd = os.open(os.path.join(private, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    def session(self, private, commands):
        """(rc, stdout, stderr) of one batch session running `commands`. A server at its MaxStartups drops a new
        connection before the protocol exchange, before any command ran: that one is tried again."""
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            rc, out, err = self._once(private, commands)
            if rc != 255 or not DROPPED_RE.search(err) or attempt == CONNECT_ATTEMPTS:
                return rc, out, err
            time.sleep(random.uniform(0.1, 0.3) * attempt)

    def _once(self, private, commands):
        script = "".join(line + "\n" for line in commands).encode("utf-8")
        env = dict(os.environ, LC_ALL="C")
        env.pop("SSH_AUTH_SOCK", None)
        # not run_command: stores are made without an AnsibleModule (claim_store.store_for), and a session that
        # outlasts its bound must be killed with the ssh it started (its own process group)
        proc = subprocess.Popen(  # pylint: disable=ansible-bad-function
            self.argv(private), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=private,
            env=env, start_new_session=True)
        limit = SESSION_TIMEOUTS * self.timeout
        try:
            out, err = proc.communicate(script, timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # sftp and the ssh it started, nothing else
            proc.communicate()
            raise claim_store.StoreFailed("sftp %s: no answer within %ds" % (self.server, limit))
        # ssh's and sftp's messages end in "\r\n"
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace").replace("\r\n", "\n")

    def words(self, rc, err):
        """What the session's failure says: sftp's or ssh's last line (never the key), or its exit status."""
        # `-mkdir` of an existing level says nothing; "Connection closed" follows whatever ended the session
        lines = [line.strip() for line in err.splitlines() if line.strip() and not line.startswith("remote mkdir ")]
        told = [line for line in lines if line != "Connection closed"] or lines
        text = told[-1] if told else ("killed by signal %d" % -rc if rc < 0 else "exit status %d" % rc)
        unreadable = [line for line in told[:-1] if line.startswith("Load key ")]
        if unreadable:  # ssh then tries no key at all: its last word alone would hide why
            text = "%s (%s)" % (text, unreadable[-1])
        return CommandRunner.mask(text, [line for line in self.key.splitlines() if len(line) > 8])

    def _failed(self, what, path, rc, err):
        return claim_store.StoreFailed("sftp %s: %s %s: %s" % (self.server, what, path, self.words(rc, err)))

    def _look(self, private, directory, before=(), after=()):
        """(rc, stdout, stderr) of a session running `before`, a listing of `directory`, then `after`."""
        return self.session(private, list(before) + ["@cd %s" % quoted(directory), "@ls -1a"] + list(after))

    def names(self, directory):
        """The names directly inside `directory`; [] when it does not exist."""
        with self._private() as private:
            rc, out, err = self._look(private, directory)
        if rc == 0:
            return listing(out)
        if NO_SUCH_DIR_RE.search(err):
            return []
        raise self._failed("list", directory, rc, err)

    def read(self, path):
        """The claim at `path` (at most MAX_CLAIM_BYTES + 1 bytes: decode refuses more), or None when missing."""
        directory, name = posixpath.split(path)
        with self._private() as private:
            local = os.path.join(private, CLAIM_FILE)
            # the listing tells a missing file from one that cannot be read: get says "not found" for both
            rc, out, err = self._look(private, directory or ".", after=["@get %s %s" % (quoted(name), quoted(local))])
            data = None
            if os.path.exists(local):
                with open(local, "rb") as handle:
                    data = handle.read(ownership.MAX_CLAIM_BYTES + 1)
        # more than a claim: the file size limit stopped sftp, and decode refuses what was read
        if data is not None and (rc == 0 or len(data) > ownership.MAX_CLAIM_BYTES):
            return data
        if NO_SUCH_DIR_RE.search(err) or (GET_MISSING_RE.search(err) and name not in listing(out)):
            return None
        raise self._failed("read", path, rc, err)

    def create(self, path, data):
        """True when `path` was created with `data`; False when the rename was refused because it exists; None when
        the answer was lost (the caller reads the claim back). The temporary file is removed in every case."""
        directory, name = posixpath.split(path)
        temp = posixpath.join(directory, ".tmp-%s-%s" % (name, uuid.uuid4().hex[:12]))
        with self._private() as private:
            local = os.path.join(private, CLAIM_FILE)
            self._write(private, CLAIM_FILE, data, 0o644)  # put gives the remote file the local file's mode
            commands = ["-@mkdir %s" % quoted(level) for level in levels(directory)]
            # put -f: the server fsyncs the temporary file (fsync@openssh.com) before it gets its name
            commands += ["@put -f %s %s" % (quoted(local), quoted(temp)),
                         "@rename -l %s %s" % (quoted(temp), quoted(path))]
            rc, _out, err = self.session(private, commands)
            if rc == 0:
                return True  # the link made the name and the unlink removed the temporary one
            return self._after_failure(private, directory or ".", name, temp, rc, err)

    def _after_failure(self, private, directory, name, temp, rc, err):
        """What a failed create left: removes the temporary file, then decides by whether the claim's name exists."""
        look_rc, out, look_err = self._look(private, directory, before=["-@rm %s" % quoted(temp)])
        if look_rc != 0:
            if NO_SUCH_DIR_RE.search(look_err):
                raise self._failed("create", posixpath.join(directory, name), rc, err)
            return None  # nothing can be seen now: the caller's read back decides, or fails saying why
        if name not in listing(out):
            raise self._failed("create", posixpath.join(directory, name), rc, err)
        # the rename was refused while the name exists: another create made it; otherwise the session broke off
        # after a rename that may have been ours
        return False if RENAME_REFUSED_RE.search(err) else None

    def probe(self, directory):
        """Refuses a server whose `rename -l` replaces: the second create of one name must be refused."""
        path = "%s/%s" % (directory.rstrip("/"), claim_store.PROBE_NAME)
        self.create(path, b"{}\n")
        if self.create(path, b"{}\n") is True:
            raise claim_store.Unsupported(
                "replica.host: the sftp server %s accepted a second create of %s (rename -l, SSH_FXP_RENAME replaced "
                "it): it is not OpenSSH's sftp-server, or its file system has no hard links, so two hosts could both "
                "claim the app's replica. Ownership of an sftp replica needs OpenSSH's sftp-server on a file system "
                "with hard links" % (self.server, path))
