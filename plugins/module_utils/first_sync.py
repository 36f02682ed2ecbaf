# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""After a sidecar was created, recreated or restarted: wait, bounded, until Litestream proves that it can use
the replica store, and otherwise name the store's own reason. Litestream retries a store that refuses it for
ever and only logs it (read in its 0.5.17 source, docs/litestream-health-facts.md), so without this a provision
run with a missing bucket or wrong keys reports success.

- A database whose file exists: its first successful sync, `last_sync_at` in `litestream list -json` (the
  sidecar's control socket). After a start, the sync lists the store, so it proves the bucket and the keys.
- A database not created yet (an app not deployed yet): nothing to sync, so one listing of the replica's
  level 0 (`litestream ltx -level 0`, bounded by l0-retention, not by retention) proves the same.
- Meanwhile the sidecar's log since its start is read for Litestream's error lines; a reason that waiting
  cannot mend (NoSuchBucket, a key the store refuses, a host key mismatch) ends the wait at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.errors import CollectionError
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls

BINARY = "/usr/local/bin/litestream"
CONFIG_PATH = "%s/%s" % (ls.CONFIG_DIR_IN_CONTAINER, ls.CONFIG_FILE)
ENV_PATH = "%s/%s" % (ls.CONFIG_DIR_IN_CONTAINER, ls.CREDENTIALS_ENV_FILE)
# a replica nobody wrote yet: the store answered, there is just nothing (a new file or sftp directory)
NOT_FOUND_RE = re.compile(r"no such file or directory|file does not exist", re.I)
LIST_TIMEOUT = 5  # seconds `litestream list` waits for the socket: it hangs while a database's start-up retries
# Litestream's error lines (text log format): the store's reason is the error attribute
ERROR_LINE_RE = re.compile(r'level=ERROR msg="(?:sync error|monitor error|compaction failed)"[^\n]*?'
                           r'error="((?:[^"\\]|\\.)*)"')
EXIT_LINE_RE = re.compile(r"^Error: (.+)$", re.M)
# (what the store said, in its words) -> (our words, whether waiting could still mend it)
REASONS = (
    ("NoSuchBucket", "the bucket does not exist (NoSuchBucket)", True),
    ("InvalidAccessKeyId", "authentication failed: the store does not know the access key id (InvalidAccessKeyId)",
     True),
    ("SignatureDoesNotMatch", "authentication failed: the secret access key is wrong (SignatureDoesNotMatch)", True),
    ("AccessDenied", "access denied: the key may not use this bucket or path (AccessDenied)", True),
    ("ssh: host key mismatch", "the sftp server's host key does not match the replica's host_key", True),
    ("ssh: unable to authenticate", "authentication failed: the sftp server refused the key", True),
    ("connection refused", "the replica store is unreachable (connection refused)", False),
    ("exceeded maximum number of attempts", "the replica store is unreachable", False),
    ("no such host", "the replica store's host name does not resolve", False),
    ("i/o timeout", "the replica store does not answer (i/o timeout)", False),
)
URL_CREDENTIALS_RE = re.compile(r"(\w+://)[^/\s:@]+:[^/\s@]+@")


class FirstSyncFailed(CollectionError):
    pass


def reason(text):
    """(our words, definitive) for a text holding a store error; (None, False) when none is known."""
    for needle, words, definitive in REASONS:
        if needle in text:
            return words, definitive
    return None, False


def log_errors(text):
    """The store's error texts in a sidecar's log, oldest first (the error attributes and a fatal `Error:`)."""
    found = [match.group(1).replace('\\"', '"') for match in ERROR_LINE_RE.finditer(text)]
    return found + EXIT_LINE_RE.findall(text)


def clean(text, secrets):
    """A log text fit for a message: no user:password@ of a URL, no secret value (the heartbeat URL)."""
    text = URL_CREDENTIALS_RE.sub(r"\1", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, ls.REDACTED)
    return text.strip()


def synced_paths(stdout):
    """The database paths (in the container) that `litestream list -json` shows with a last sync."""
    try:
        listed = json.loads(stdout or "{}")
    except ValueError:
        return set()
    databases = listed.get("databases") if isinstance(listed, dict) else None
    return set(d.get("path") for d in databases or [] if isinstance(d, dict) and d.get("last_sync_at"))


class FirstSync:
    """The wait for one sidecar. ``docker``: a DockerRunner (its commands are recorded as the module's);
    ``present``/``absent``: the database names whose file exists / does not exist yet."""

    def __init__(self, docker, name, present, absent, timeout, secrets=(), poll=1.0, clock=time.time,
                 sleep=time.sleep):
        self.docker = docker
        self.name = name
        self.present = list(present)
        self.absent = list(absent)
        self.timeout = timeout
        self.secrets = secrets
        self.poll = poll
        self.clock = clock
        self.sleep = sleep

    def wait(self, since):
        """Seconds until the store was proven; raises FirstSyncFailed with the store's reason. ``since``: when
        the sidecar was (re)started (epoch seconds), for its log."""
        started = self.clock()
        deadline = started + self.timeout
        wanted = set("%s/%s" % (ls.DEFAULT_MOUNT_DIR, db) for db in self.present)
        listed_absent = not self.absent
        last_error = None
        while True:
            if not listed_absent:
                listed_absent = self.list_replicas()
            synced = wanted <= self.synced() if wanted else True
            if synced and listed_absent:
                return round(self.clock() - started, 1)
            last_error = self.log_error(since) or last_error
            if last_error and last_error[1]:
                raise FirstSyncFailed(last_error[0])
            self.check_running()
            if self.clock() >= deadline:
                what = "no first successful sync of %s" % ", ".join(sorted(self.present)) if not synced else (
                    "the replica of %s could not be listed" % ", ".join(sorted(self.absent)))
                raise FirstSyncFailed("%s within %d s (first_sync_timeout)%s" % (
                    what, self.timeout, "; Litestream's last error: %s" % last_error[0] if last_error else ""))
            self.sleep(self.poll)

    def synced(self):
        rc, out, _err = self.docker.run(["exec", self.name, BINARY, "list", "-json", "-socket", ls.SOCKET_PATH,
                                         "-timeout", str(LIST_TIMEOUT)], check=False)
        return synced_paths(out) if rc == 0 else set()

    def list_replicas(self):
        """One level-0 listing per database not created yet; True when every one answered."""
        for db in self.absent:
            script = "%s; exec %s ltx -level 0 -json -config %s -no-expand-env %s" % (
                ls.source_env(ENV_PATH, quoted=False), BINARY, CONFIG_PATH,
                ls.shell_quote("%s/%s" % (ls.DEFAULT_MOUNT_DIR, db)))
            rc, out, err = self.docker.run(["exec", self.name, "/bin/sh", "-c", script], check=False)
            if rc == 0:
                continue
            words, definitive = reason(out + err)
            lines = (err or out).strip().splitlines()
            text = clean(lines[-1] if lines else "exit %d" % rc, self.secrets)
            if definitive:
                raise FirstSyncFailed("%s: %s" % (words, text))
            if not NOT_FOUND_RE.search(out + err):
                return False
        return True

    def log_error(self, since):
        """(message, definitive) of the newest store error in the sidecar's log since its start, or None."""
        rc, out, err = self.docker.run(["logs", "--since", "%d" % int(since), self.name], check=False)
        if rc != 0:
            return None
        errors = log_errors(out + "\n" + err)
        if not errors:
            return None
        text = clean(errors[-1], self.secrets)
        words, definitive = reason(text)
        return ("%s: %s" % (words, text) if words else text), definitive

    def check_running(self):
        doc = self.docker.inspect_container(self.name)
        state = (doc or {}).get("State") or {}
        if doc is None or (not state.get("Running") and not state.get("Restarting")):
            raise FirstSyncFailed("the sidecar stopped (exit code %s) before its first sync" % state.get("ExitCode"))
