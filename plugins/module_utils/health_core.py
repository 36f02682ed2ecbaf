# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's replication health in one run: every sidecar read in one `docker inspect`, then per app (apps in
parallel) what Litestream itself knows - the control socket's `list` (last sync), the local TXID (what `status`
reads, without the daemon and without locking the database) and the replica's newest level-0 files (`ltx -level 0`:
one listing bounded by l0-retention, never a restore). Judged here, in Python.

Read from the host where it can be (sidecar_reads: the socket through /proc/<pid>/root, the storage directory, a
file replica's directory); a remote replica's listing needs the app's credentials and Litestream's client, so it
is one `docker exec` of `litestream ltx`. Without access to the process's root (not root), one exec asks for all.

The facts this relies on are in docs/litestream-health-facts.md (Litestream 0.5.17, read from its source and runs).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import time

try:
    from concurrent.futures import ThreadPoolExecutor
except ImportError:  # pragma: no cover - Python 2: one app after the other
    ThreadPoolExecutor = None

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import (
    MissingCredentials, load_credentials)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerError
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.runner import TIMED_OUT
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import first_sync
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.health_report import STATUSES
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import s3_listing, sidecar_reads, storage_reads
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.sidecar_core import (
    LABEL_HASH, RESTART_POLICY, SidecarPlan, sidecar_name)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.storage_core import AppFailure
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

BINARY = "/usr/local/bin/litestream"  # as the sidecar's entrypoint runs it (litestream.entrypoint_script)
MARK = "@@dokku-sqlite-litestream-health"
DEFAULT_SYNC_INTERVAL = 1.0  # Litestream 0.5's replica sync-interval default
LOG_TAIL = 200
PROC_ROOT = "/proc"  # where the host sees each sidecar process's root directory
RESTART_LOOP = 3  # restarts since the last check that count as a restart loop

# ERROR lines of a sidecar that mean replication is not working (facts, section 5)
ERROR_LINE_RE = re.compile(r"monitor error|sync error|compaction failed|retention enforcement failed|"
                           r"^Error: |level=ERROR|\"level\":\"ERROR\"")
URL_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/\s\"'@]*@)?([^/\s\"'?#]*)([^\s\"']*)")


def check_health_options(params):
    """The module's own options (the entries are checked by inventory.py); raises validate.InvalidValue."""
    v.check_bounds(params)  # parallel, timeout, max_lag_seconds
    v.absolute_path(params["storage_root"], "storage_root", mount=True)
    state_dir = v.absolute_path(params["state_dir"], "state_dir")
    textfile = None
    if params["textfile"] is not None:
        textfile = v.absolute_path(params["textfile"], "textfile")
        if not textfile.endswith(".prom"):
            raise v.InvalidValue("textfile: %s does not end in .prom, so node_exporter's textfile collector would "
                                 "not read it" % textfile)
    return state_dir, textfile


# ---------------------------------------------------------------------------------------------- small parsers
def default_max_lag(fields):
    """A small multiple of the replica's sync interval: 5 intervals, at least a minute."""
    interval = (fields or {}).get("sync_interval")
    interval = ls.duration_seconds(str(interval)) if interval else DEFAULT_SYNC_INTERVAL
    return max(60.0, 5 * interval)


def parse_time(text):
    """RFC 3339 (Litestream's and Docker's, nanoseconds allowed) -> seconds since the epoch; None when unreadable
    or Go's zero time (a container that never started)."""
    if not text or str(text).startswith("0001-01-01"):
        return None
    try:
        return ls.epoch(text)
    except ValueError:
        return None


def txid(text):
    """Litestream's TXID (16 hex digits, '-' when none) -> int or None."""
    try:
        return ls.txid_number(text)
    except ValueError:
        return None


def first_json(text):
    """The first JSON document in a command's output (log lines may come before it); None when there is none."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"^[\[{]", text or "", re.M):
        try:
            return decoder.raw_decode(text[match.start():])[0]
        except ValueError:
            continue
    return None


def error_text(text):
    """The last `Error: ...` line of a Litestream command (or its last line)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or lines or [""])[-1]


def redact(text, secrets=()):
    """A log line without anything that may be a secret: URLs keep their scheme and host only (a heartbeat URL is
    a capability, a URL may carry user:password), and the app's credential values are masked."""
    def url(match):
        rest = match.group(4)
        return match.group(1) + match.group(3) + ("/<redacted>" if rest.strip("/") else rest)
    text = URL_RE.sub(url, text or "")
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "********")
    return text


def reason_of(text):
    """Our words for the store's reason in a line, or None: the provision's first-sync wait's table, so both say
    the same."""
    return first_sync.reason(text or "")[0]


# ---------------------------------------------------------------------------------------------- the exec script
def exec_script(databases, timeout, config_path, env_path, ask_daemon=True):
    """The one script of an app's `docker exec`: marked sections, each ending with its exit code.

    databases: [(index, file name)] whose replica Litestream lists; ask_daemon: also the socket's `list` and
    `status` (when the host cannot read them itself). `timeout` bounds each command (the image's coreutils or
    busybox `timeout`; the socket client has its own -timeout too). The credentials are sourced only for `ltx`, as
    the entrypoint does for Litestream itself.
    """
    config = ls.shell_quote(config_path)
    lines = ['T=""; if command -v timeout >/dev/null 2>&1; then T="timeout %d"; fi' % timeout]
    if ask_daemon:
        lines += ["echo '%s list'; $T %s list -json -socket %s -timeout %d 2>&1; echo \"%s rc $?\""
                  % (MARK, BINARY, ls.shell_quote(ls.SOCKET_PATH), timeout, MARK),
                  "echo '%s status'; $T %s status -json -config %s -no-expand-env 2>&1; echo \"%s rc $?\""
                  % (MARK, BINARY, config, MARK)]
    lines.append(ls.source_env(env_path))
    for index, db in databases:
        path = ls.shell_quote("%s/%s" % (ls.DEFAULT_MOUNT_DIR, db))
        lines.append("echo '%s ltx %d'; $T %s ltx -level 0 -json -config %s -no-expand-env %s 2>&1; echo \"%s rc $?\""
                     % (MARK, index, BINARY, config, path, MARK))
    return "\n".join(lines) + "\n"


def parse_sections(text):
    """{section: (output, exit code or None when the section did not finish)} from the script's output."""
    sections = {}
    name, body = None, []
    for line in (text or "").splitlines():
        if line.startswith(MARK + " "):
            word = line[len(MARK) + 1:]
            if word.startswith("rc ") and name is not None:
                sections[name] = ("\n".join(body), int(word[3:]) if word[3:].strip().isdigit() else None)
                name, body = None, []
                continue
            if name is not None:
                sections[name] = ("\n".join(body), None)
            name, body = word, []
        elif name is not None:
            body.append(line)
    if name is not None:
        sections[name] = ("\n".join(body), None)
    return sections


def timed_out(output, rc):
    return rc == 124 or "context deadline exceeded" in (output or "") or "Client.Timeout" in (output or "")


# ---------------------------------------------------------------------------------------------- one app
class AppHealth:
    """One app: its record from the container's inspect document and one `docker exec`."""

    def __init__(self, params, docker, now, timeout, max_lag, previous):
        self.params = params
        self.app = params["app"]
        self.name = sidecar_name(self.app)
        self.docker = docker
        self.now = now
        self.timeout = timeout
        self.max_lag = max_lag
        self.previous = previous or {}
        self.fields = None
        self.storage_dir = None
        self.credentials = {}
        self.secrets = ()
        self.expected_hash = None
        self.hash_problem = None
        self.fenced = None  # the refusal a fenced host's provision gives (another host owns the replica)
        self.record = dict(app=self.app, sidecar=self.name, commands=docker.commands, max_lag_seconds=max_lag,
                           databases=[], notes=[])

    # -------------------------------------------------------------- the config the host run would render
    def prepare(self, warn):
        """Render the app's config as litestream_host would (writing nothing) for the hash its label should carry."""
        plan = SidecarPlan(dict(self.params, changed_credentials=[]), self.docker, True, warn)
        try:
            _config, redacted, _secret_files = plan.prepare()
        except (AppFailure, MissingCredentials, v.InvalidValue, IOError, OSError) as exc:
            self.hash_problem = str(exc)
            self.fields = plan.fields
            return
        # the lineage this host's sidecar writes (epoch 1: the configured path); on a fenced host, the refusal
        self.fields = plan.lineage or plan.fields
        self.fenced = plan.fenced_refusal
        if plan.ownership is not None:
            self.record["ownership"] = plan.ownership.summary()
        self.storage_dir = plan.storage_dir
        self.expected_hash = plan.expected_hash(redacted)
        if backends.of(self.fields).needs_credentials:
            try:
                creds = load_credentials(plan.credentials_root, plan.set_name(), self.fields["type"])
            except (MissingCredentials, IOError, OSError, ValueError):
                creds = {}
            self.credentials = creds
            # every value of the set, so no log line can show one (endpoint and region are not secret)
            self.secrets = tuple(str(value) for key, value in creds.items()
                                 if value and key not in ("endpoint", "region"))
        if self.params.get("heartbeat_url"):  # a capability: Litestream logs it whenever a ping fails
            self.secrets += (self.params["heartbeat_url"],)

    # -------------------------------------------------------------- the whole check
    def check(self, doc):
        started = time.time()
        self.record["sidecar_state"] = self.sidecar_view(doc)
        self.record["config_hash"] = self.hash_view(doc)
        running = bool(doc and (doc.get("State") or {}).get("Running")) and \
            not (doc.get("State") or {}).get("Restarting")
        sections = self.read_sections(doc) if running else None
        databases = self.params["databases"]
        for index, db in enumerate(databases):
            self.record["databases"].append(self.database(index, db, doc, sections))
        if any(d["status"] != "ok" for d in self.record["databases"]) and doc is not None:
            self.explain_from_logs()
        self.record["unlisted_databases"] = self.unlisted()
        self.record["duration"] = round(time.time() - started, 3)
        return self.record

    def unlisted(self):
        """The SQLite databases of the storage directory that the app writes and nothing replicates (an app that
        moved to another file name is otherwise reported ok while its data has no replica)."""
        if self.storage_dir is None:
            return []
        found = storage_reads.unlisted_databases(self.storage_dir, self.params["databases"], self.now)
        for name, age in found:
            self.record["notes"].append(
                "unlisted database: %s in %s was written %ds ago and is not replicated: add it to the app's "
                "databases in litestream_apps (or move it out of the storage directory)" % (name, self.storage_dir, age))
        return [dict(database=name, written_seconds_ago=age) for name, age in found]

    def sidecar_view(self, doc):
        if not doc:
            return dict(exists=False, running=False, restart_policy=None, policy_ok=False, restart_count=None,
                        restarts_since_last_check=None)
        state = doc.get("State") or {}
        policy = ((doc.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no"
        count = int(doc.get("RestartCount") or 0)
        previous_id, previous_count = self.previous.get("container_id"), self.previous.get("restart_count")
        if previous_id is None:
            since = None  # the first check: nothing to compare with
        elif previous_id != doc.get("Id"):
            since = count
            self.record["notes"].append("the sidecar was replaced since the last check")
        else:
            since = max(0, count - int(previous_count or 0))
        started_at = parse_time(state.get("StartedAt"))
        return dict(exists=True, id=(doc.get("Id") or "")[:12], running=bool(state.get("Running")),
                    status=state.get("Status"), restarting=bool(state.get("Restarting")),
                    exit_code=state.get("ExitCode"), restart_policy=policy, policy_ok=policy == RESTART_POLICY,
                    restart_count=count, restarts_since_last_check=since,
                    uptime_seconds=round(self.now - started_at, 1) if started_at and state.get("Running") else None,
                    image=(doc.get("Config") or {}).get("Image"))

    def hash_view(self, doc):
        actual = (((doc or {}).get("Config") or {}).get("Labels") or {}).get(LABEL_HASH)
        view = dict(expected=self.expected_hash, actual=actual,
                    matches=bool(actual) and actual == self.expected_hash)
        if self.hash_problem:
            view["problem"] = self.hash_problem
        return view

    def exec_limit(self):
        """Seconds the whole docker exec may take: every command's own bound, plus a margin for the exec."""
        return self.timeout * (2 + len(self.params["databases"])) + 15

    def host_root(self, doc):
        """The sidecar process's root directory as the host sees it; None when this run cannot read through it (not
        root, the process gone, the app's config not rendered): then one docker exec asks Litestream for all."""
        pid = int(((doc or {}).get("State") or {}).get("Pid") or 0)
        root = "%s/%d/root" % (PROC_ROOT, pid)
        if pid <= 0 or self.storage_dir is None or not os.access(root, os.X_OK):
            return None
        return root

    def read_sections(self, doc):
        """{section: (output, exit code)} as exec_script's sections: from the host where it can, the rest in one exec."""
        sections = {}
        remote = list(enumerate(self.params["databases"]))
        root = self.host_root(doc)
        if root is not None:
            pid = int(doc["State"]["Pid"])
            sections["list"] = sidecar_reads.sidecar_list(root, self.timeout, pid)
            # each read bounded like the command it replaces: a hung mount fails that read, not the run
            sections["status"] = sidecar_reads.bounded(
                lambda: sidecar_reads.status_rows(self.storage_dir, self.params["databases"]), self.timeout,
                "reading %s" % self.storage_dir)
            if backends.of(self.fields).host_path:  # the sidecar mounts it at the same path: the host lists it
                for index, db in remote:
                    path = ls.replica_path(self.fields, db)
                    sections["ltx %d" % index] = sidecar_reads.bounded(
                        lambda path=path: sidecar_reads.file_replica_files(path), self.timeout, "listing " + path)
                remote = []
            elif self.params.get("network", "host") == "host" and s3_listing.listable(self.fields, self.credentials):
                # one signed ListObjectsV2 from here; only on the host's network, the sidecar's, so the endpoint
                # names the same server for both (DNS and connect are bounded too)
                for index, db in remote:
                    sections["ltx %d" % index] = sidecar_reads.bounded(
                        lambda db=db: s3_listing.level0_newest(self.fields, self.credentials, db, self.timeout),
                        self.timeout * 2, "listing the S3 replica")
                remote = []
        if root is None or remote:
            found = self.exec_sections(remote, ask_daemon=root is None)
            if "exec" in found:
                return found
            sections.update((name, value) for name, value in found.items() if root is None or name.startswith("ltx "))
        self.record["socket"] = self.socket_view(sections.get("list"))
        return sections

    def exec_sections(self, databases, ask_daemon):
        config = "%s/%s" % (ls.CONFIG_DIR_IN_CONTAINER, ls.CONFIG_FILE)
        env = "%s/%s" % (ls.CONFIG_DIR_IN_CONTAINER, ls.CREDENTIALS_ENV_FILE)
        script = exec_script(databases, self.timeout, config, env, ask_daemon=ask_daemon)
        # each command inside is bounded by `timeout`; this bounds the docker exec itself (a hung daemon)
        limit = self.exec_limit()
        try:
            rc, out, err = self.docker.run(["exec", self.name, "/bin/sh", "-c", script], check=False, limit=limit)
        except DockerError as exc:  # pragma: no cover - run(check=False) raises nothing
            return {"exec": (str(exc), 1)}
        sections = parse_sections(out)
        if rc in TIMED_OUT and not sections:
            return {"exec": ("docker exec did not finish within %ds (the docker daemon or the sidecar hangs)" % limit,
                             rc)}
        if rc != 0 and not sections:
            return {"exec": (redact(error_text(err or out), self.secrets), rc)}
        return sections

    def socket_view(self, section):
        output, rc = section or ("", None)
        if rc == 0:
            return "ok"
        if timed_out(output, rc):
            return "timeout"
        return "unavailable"

    # -------------------------------------------------------------- one database
    def database(self, index, db, doc, sections):
        result = dict(database=db, status="ok", reason=None, local_txid=None, replica_txid=None, lag_txid=None,
                      replica_age_seconds=None, last_sync_at=None, last_sync_age_seconds=None, sync_errors=0,
                      replica_type=(self.fields or {}).get("type"))
        verdict = self.fenced_verdict(doc) if self.fenced else self.sidecar_verdict(doc)
        if verdict is None:
            verdict = self.exec_verdict(sections, index, db, result)
        result["status"], result["reason"] = verdict
        return result

    def fenced_verdict(self, doc):
        """Another host owns the replica: whatever runs here writes a dead branch, which nothing reads."""
        running = bool(doc) and self.record["sidecar_state"]["running"]
        return "fenced", "%s; %s" % (self.fenced, "this host's sidecar still runs, on a dead branch nothing restores"
                                     if running else "no sidecar of it runs on this host")

    def sidecar_verdict(self, doc):
        """(status, reason) when the sidecar itself decides; None when its databases must be asked."""
        if doc is None:
            return "missing", "no sidecar %s on this host" % self.name
        view = self.record["sidecar_state"]
        if view["restarting"]:
            return "failing", "the sidecar is in a restart loop (%d restarts, last exit code %s)" % (
                view["restart_count"], view["exit_code"])
        if not view["running"]:
            return "missing", "the sidecar is not running (%s, exit code %s)" % (view["status"], view["exit_code"])
        since = view["restarts_since_last_check"]
        if since is not None and since >= RESTART_LOOP:
            return "failing", "the sidecar restarted %d times since the last check (restart loop)" % since
        return None

    def exec_verdict(self, sections, index, db, result):
        if "exec" in sections:
            return "failing", "docker exec in the sidecar failed: %s" % sections["exec"][0]
        path = "%s/%s" % (ls.DEFAULT_MOUNT_DIR, db)
        listed = self.listed(sections.get("list"), path, result)
        if listed is not None:
            return listed
        local = self.local(sections.get("status"), path, result)
        if local is not None:
            return local
        return self.replica(sections.get("ltx %d" % index), result)

    def listed(self, section, path, result):
        """Litestream's own list over the control socket: is the database there, when did it last sync."""
        output, rc = section or ("", None)
        if rc is None or timed_out(output, rc):
            return "failing", ("Litestream's control socket did not answer within %ds: a database is stuck, "
                               "typically in retries against an unreachable store" % self.timeout)
        if rc != 0:  # no socket (a sidecar rendered before the socket was enabled): the other reads still judge
            if not any(note.startswith("socket:") for note in self.record["notes"]):
                self.record["notes"].append("socket: %s" % redact(error_text(output), self.secrets))
            return None
        listing = first_json(output) or {}
        entry = next((d for d in listing.get("databases") or [] if d.get("path") == path), None)
        if entry is None:
            return "missing", "Litestream does not replicate %s (not in its list)" % path
        result["last_sync_at"] = entry.get("last_sync_at")
        synced = parse_time(entry.get("last_sync_at"))
        if synced is not None:
            result["last_sync_age_seconds"] = round(max(0.0, self.now - synced), 1)
        if entry.get("status") == "stopped":
            return "failing", "Litestream stopped replicating %s" % path
        return None

    def local(self, section, path, result):
        output, rc = section or ("", None)
        if rc is None:
            return "failing", "litestream status did not answer within %ds" % self.timeout
        rows = first_json(output)
        if rc != 0 or not isinstance(rows, list):
            return "failing", "litestream status failed: %s" % redact(error_text(output), self.secrets)
        row = next((r for r in rows if r.get("database") == path), None)
        if row is None:
            return "missing", "%s is not in the sidecar's configuration" % path
        if row.get("status") == "no database":
            return "missing", "the database file %s does not exist" % path
        result["local_txid"] = txid(row.get("local_txid"))
        return None

    def replica(self, section, result):
        output, rc = section or ("", None)
        if rc is None or timed_out(output, rc):
            return "failing", "listing the replica did not finish within %ds (store unreachable or slow)" % self.timeout
        if rc != 0:
            text = redact(error_text(output), self.secrets)
            why = reason_of(text)
            return "failing", "listing the replica failed: %s%s" % (why + ": " if why else "", text)
        files = first_json(output)
        if not isinstance(files, list):
            return "failing", "listing the replica gave no JSON: %s" % redact(error_text(output), self.secrets)
        newest = max(files, key=lambda f: txid(f.get("max_txid")) or 0) if files else None
        replica_txid = txid(newest.get("max_txid")) if newest else 0
        local = result["local_txid"] or 0
        result.update(replica_txid=replica_txid, lag_txid=max(0, local - (replica_txid or 0)))
        if local <= (replica_txid or 0):
            result["replica_age_seconds"] = 0.0  # current: an idle database is ok however old its last file
            if local == 0 and result["last_sync_at"] is None:
                return "ok", "nothing to replicate yet"
            return "ok", None
        stamp = parse_time(newest.get("timestamp")) if newest else None
        if stamp is None:  # no file at all: count from the sidecar's start
            stamp = self.now - (self.record["sidecar_state"].get("uptime_seconds") or 0)
        age = round(max(0.0, self.now - stamp), 1)
        result["replica_age_seconds"] = age
        if age > self.max_lag:
            return "stale", ("the replica is %d transaction%s behind and its newest file is %ds old (max_lag %ds)"
                             % (result["lag_txid"], "" if result["lag_txid"] == 1 else "s", age, self.max_lag))
        plural = "" if result["lag_txid"] == 1 else "s"
        return "ok", "%d transaction%s on the way to the replica" % (result["lag_txid"], plural)

    # -------------------------------------------------------------- the sidecar's own words
    def explain_from_logs(self):
        """Read the sidecar's log since the last check (bounded) for Litestream's reason, and add it."""
        args = ["logs", "--tail", str(LOG_TAIL)]
        checked_at = self.previous.get("checked_at")
        if checked_at:
            args += ["--since", str(int(checked_at) - 1)]
        try:
            rc, out, err = self.docker.run(args + [self.name], check=False)
        except DockerError:  # pragma: no cover - run(check=False) raises nothing
            return
        if rc != 0:
            self.record["notes"].append("docker logs failed: %s" % redact(error_text(err), self.secrets))
            return
        lines = [redact(line, self.secrets) for line in ((out or "") + "\n" + (err or "")).splitlines()
                 if ERROR_LINE_RE.search(line)]
        self.record["log_errors"] = lines[-5:]
        reason = next((r for r in (reason_of(line) for line in reversed(lines)) if r), None)
        for result in self.record["databases"]:
            mine = [line for line in lines if "db=%s" % result["database"] in line or "db=" not in line]
            result["sync_errors"] = len(mine)
            if result["status"] != "ok":
                why = next((r for r in (reason_of(line) for line in reversed(mine)) if r), None) or reason
                if why and why not in (result["reason"] or ""):
                    result["reason"] = "%s; the sidecar's log says: %s" % (result["reason"], why)


# ---------------------------------------------------------------------------------------------- the host
def run_apps(checks, docs, parallel):
    """Check every app, `parallel` at a time; returns the records in the order of `checks`."""
    def one(check):
        return check.check(docs.get(check.name))
    if ThreadPoolExecutor is None or parallel <= 1 or len(checks) <= 1:
        return [one(check) for check in checks]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(one, checks))


def summarize(host, records, duration):
    counts = dict((status, 0) for status in STATUSES)
    failed = []
    for record in records:
        for db in record["databases"]:
            counts[db["status"]] += 1
            if db["status"] != "ok":
                failed.append("%s/%s/%s" % (host, record["app"], db["database"]))
    summary = dict(counts, apps=len(records), databases=sum(len(r["databases"]) for r in records),
                   duration=round(duration, 3), healthy=not failed)
    return summary, failed


def report_results(host, records):
    """One flat result per database, in the shape litestream_health_report takes."""
    out = []
    for record in records:
        for db in record["databases"]:
            out.append(dict(host=host, app=record["app"], database=db["database"], status=db["status"],
                            message=db["reason"], replica_type=db["replica_type"],
                            replica_age_seconds=db["replica_age_seconds"], lag_txid=db["lag_txid"],
                            local_txid=db["local_txid"], replica_txid=db["replica_txid"],
                            last_sync_at=db["last_sync_at"], sync_errors=db["sync_errors"],
                            sidecar_running=record["sidecar_state"]["running"],
                            restarts_since_last_check=record["sidecar_state"]["restarts_since_last_check"],
                            config_hash_matches=record["config_hash"]["matches"],
                            duration=record.get("duration")))
    return out


def state_document(records, now):
    """What the next check compares with: per app the container and its restart count, and when it was read."""
    state = {}
    for record in records:
        view = record["sidecar_state"]
        state[record["app"]] = dict(container_id=view.get("id"), restart_count=view.get("restart_count"),
                                    checked_at=int(now))
    return state


# ---------------------------------------------------------------------------------------------- Prometheus
def label_value(text):
    return str(text).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels(**pairs):
    return "{%s}" % ",".join('%s="%s"' % (key, label_value(value)) for key, value in sorted(pairs.items()))


METRICS = (
    ("litestream_replica_age_seconds", "Age of the newest replica file while the replica is behind the "
     "database; 0 when the replica holds the database's last transaction."),
    ("litestream_replica_lag_transactions", "Transactions the database is ahead of its replica."),
    ("litestream_sync_errors", "Error lines of the sidecar's log about this database since the previous check "
     "(read only when something was not ok)."),
    ("litestream_database_status", "The check's verdict, one-hot over ok, stale, failing and missing."),
    ("litestream_sidecar_up", "1 when the app's Litestream sidecar runs, else 0."),
    ("litestream_unlisted_databases", "SQLite databases written within a day in the app's storage directory that "
     "its databases do not list: nothing replicates them."),
    ("litestream_sidecar_restarts", "Restarts of the sidecar since the previous check."),
    ("litestream_sidecar_config_hash_match", "1 when the sidecar runs the configuration the inventory renders."),
    ("litestream_health_last_check_timestamp_seconds", "When this check ran, seconds since the epoch."),
    ("litestream_health_check_duration_seconds", "How long this check took."),
)


def prometheus_text(records, now, duration):
    """node_exporter textfile collector format: HELP and TYPE once per metric, then its samples."""
    samples = dict((name, []) for name, _help in METRICS)
    for record in records:
        app = record["app"]
        view = record["sidecar_state"]
        samples["litestream_sidecar_up"].append((labels(app=app), 1 if view["running"] else 0))
        samples["litestream_unlisted_databases"].append((labels(app=app), len(record.get("unlisted_databases", []))))
        if view.get("restarts_since_last_check") is not None:
            samples["litestream_sidecar_restarts"].append((labels(app=app), view["restarts_since_last_check"]))
        samples["litestream_sidecar_config_hash_match"].append(
            (labels(app=app), 1 if record["config_hash"]["matches"] else 0))
        for db in record["databases"]:
            key = dict(app=app, database=db["database"])
            if db["replica_age_seconds"] is not None:
                samples["litestream_replica_age_seconds"].append((labels(**key), db["replica_age_seconds"]))
            if db["lag_txid"] is not None:
                samples["litestream_replica_lag_transactions"].append((labels(**key), db["lag_txid"]))
            samples["litestream_sync_errors"].append((labels(**key), db["sync_errors"]))
            for status in STATUSES:
                samples["litestream_database_status"].append(
                    (labels(status=status, **key), 1 if db["status"] == status else 0))
    samples["litestream_health_last_check_timestamp_seconds"].append(("", int(now)))
    samples["litestream_health_check_duration_seconds"].append(("", round(duration, 3)))
    lines = []
    for name, text in METRICS:
        lines.append("# HELP %s %s" % (name, text))
        lines.append("# TYPE %s gauge" % name)
        lines.extend("%s%s %s" % (name, key, value) for key, value in samples[name])
    return "\n".join(lines) + "\n"
