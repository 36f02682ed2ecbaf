# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The parts of a Litestream restore that need no docker: input parsing, the container script, the
JSON Litestream prints, credential sets on disk, and the read-only verification of a restored file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import sqlite3

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls

NO_BACKUP_MESSAGES = ("no matching backup files available", "no matching backups found")
SIDECARS = ("-wal", "-shm", "-journal")
INTEGRITY_PRAGMA = {"full": "integrity_check", "quick": "quick_check"}
MAX_INTEGRITY_MESSAGES = 20
# Litestream's own words for failures whose cause they do not name -> the cause and the fix.
KNOWN_FAILURES = (
    ("no flags allowed, reserved for future use",
     "the replica was written by a newer Litestream than this image (the LTX format of 0.5.16+ cannot be read "
     "by 0.5.15 or older): use the version that wrote the replica or a newer one, never an older one"),
    ("unable to add custom RootCAs HTTPClient",
     "AWS_CA_BUNDLE is set inside the Litestream container (by the image?) and no Litestream 0.5 S3 client "
     "works with it: use an image that does not set it"),
)


def seconds_since(stamp, now):
    """Seconds from an RFC 3339 time to `now` (epoch seconds)."""
    return now - ls.epoch(stamp)


TIMEOUT_RC = 124  # what coreutils' and busybox's timeout exit with when the time ran out


def container_script(config_path, env_path, args, binary="/usr/local/bin/litestream", timeout=0):
    """sh -c script: load the credentials file when there is one, then exec `litestream <args>`.

    timeout (seconds, 0: none) stops Litestream with `timeout` when the image has it: its S3 client
    retries an unreachable endpoint for about two minutes before it gives up.
    """
    quoted = " ".join(ls.shell_quote(arg) for arg in args)
    command = "%s %s" % (binary, quoted)
    if timeout:
        command = "$(command -v timeout >/dev/null && echo timeout %d) %s" % (int(timeout), command)
    return "%s; exec %s" % (ls.source_env(env_path), command)


# The line the one-run script prints between the dry run's output and the restore's, on stdout (with the
# dry run's exit status, the time it ended and the transaction the restore runs to) and on stderr.
PLANNED_MARK = "@@dokku-sqlite-litestream planned"
PLANNED_RE = re.compile(r"^%s rc=(\d+) at=(\S*) txid=(\S*)$" % re.escape(PLANNED_MARK), re.M)
# The newest transaction of a plan (Litestream prints it as the top-level max_txid, which is the last file's,
# the highest): the largest of the plan's max_txid values, found without a JSON parser and whatever the
# indentation. Sixteen hex digits sort like the numbers they are.
PLAN_TXID_PIPE = ("grep -o '\"max_txid\": *\"[0-9a-f]\\{16\\}\"' | grep -o '[0-9a-f]\\{16\\}' | sort | tail -n 1")


def plan_and_restore_script(config_path, env_path, dry_run_args, restore_args, txid=None,
                            binary="/usr/local/bin/litestream", timeout=0):
    """sh -c script for one container that plans and restores: the dry run, then, only when it exited 0 and
    named a transaction, the restore with -txid of that transaction (or of txid, when the caller asked for one).

    dry_run_args and restore_args are whole `litestream` argument lists; `-txid <txid>` goes in before the
    restore's last argument (the database). stdout holds the dry run's output, a PLANNED_MARK line with the
    dry run's exit status, the time it ended (the host's clock: a container has no clock of its own) and the
    transaction, then the restore's output; stderr the same two parts around a bare PLANNED_MARK line.
    The script exits with the dry run's status when it failed (the restore never starts), 0 when the plan
    named no transaction this script could read (the caller restores on its own), else the restore's status.
    timeout limits the dry run only, as container_script does.
    """
    dry_run = "%s %s" % (binary, " ".join(ls.shell_quote(arg) for arg in dry_run_args))
    if timeout:
        dry_run = "$(command -v timeout >/dev/null && echo timeout %d) %s" % (int(timeout), dry_run)
    restore = [ls.shell_quote(arg) for arg in restore_args]
    restore = " ".join(restore[:-1] + ['-txid "$txid"', restore[-1]])
    if txid:
        find_txid = "txid=%s" % ls.shell_quote(txid)
    else:
        find_txid = "txid=$(printf '%%s\\n' \"$plan\" | %s)" % PLAN_TXID_PIPE
    return ("%(source)s; "
            "plan=$(%(dry_run)s); rc=$?; at=$(date +%%s.%%N 2>/dev/null); "
            "printf '%%s\\n' \"$plan\"; %(find_txid)s; "
            "echo \"%(mark)s rc=$rc at=$at txid=$txid\"; echo \"%(mark)s\" >&2; "
            "[ \"$rc\" -eq 0 ] && [ -n \"$txid\" ] || exit \"$rc\"; "
            "exec %(binary)s %(restore)s"
            % {"source": ls.source_env(env_path), "dry_run": dry_run, "find_txid": find_txid, "mark": PLANNED_MARK,
               "binary": binary, "restore": restore})


def split_planned_output(stdout, stderr):
    """The one-run script's output in its two parts, or None when the script never reached its mark.

    Returns {"rc": the dry run's exit status, "at": epoch seconds it ended (None if the image printed no
    time), "txid": the transaction the restore ran to ("" when none was read), "plan_out", "plan_err",
    "out", "err"}; out and err are the restore's (empty when it did not run).
    """
    stdout, stderr = stdout or "", stderr or ""
    match = PLANNED_RE.search(stdout)
    if not match:
        return None
    plan_err, _mark, err = stderr.partition(PLANNED_MARK + "\n")
    if not _mark:
        plan_err, err = stderr, ""
    return {"rc": int(match.group(1)), "at": marker_time(match.group(2)), "txid": match.group(3),
            "plan_out": stdout[:match.start()], "plan_err": plan_err,
            "out": stdout[match.end():].lstrip("\n"), "err": err}


def marker_time(text):
    """`date +%s.%N` output -> epoch seconds; an image whose date knows no %N still gives whole seconds."""
    match = re.match(r"(\d+)(\.\d+)?", text or "")
    if not match:
        return None
    return float(match.group(1) + (match.group(2) or ""))


def parse_json_output(stdout):
    """The JSON document Litestream prints with -json (log lines may come before it), or None."""
    match = re.search(r"^[{\[]", stdout or "", re.M)
    if not match:
        return None
    try:
        value, _end = json.JSONDecoder().raw_decode(stdout[match.start():])
    except ValueError:
        return None
    return value


def failure_hint(*texts):
    """The cause and fix of a known Litestream failure found in its output, or None."""
    joined = "\n".join(text or "" for text in texts)
    for needle, hint in KNOWN_FAILURES:
        if needle in joined:
            return hint
    return None


def is_no_backup(text):
    text = (text or "").lower()
    return any(message in text for message in NO_BACKUP_MESSAGES)


def is_no_space(text):
    """Litestream (Go) and Python both say it this way for ENOSPC."""
    return "no space left on device" in (text or "").lower()


def space_left(path):
    """'1.9 MiB free of 2.0 MiB' for the filesystem of path (or of its nearest existing parent)."""
    while path and not os.path.isdir(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        st = os.statvfs(path)
    except OSError:
        return "free space unknown"
    mib = 1024.0 * 1024.0
    return "%.1f MiB free of %.1f MiB" % (st.f_bavail * st.f_frsize / mib, st.f_blocks * st.f_frsize / mib)


def plan_summary(plan):
    """What a -dry-run plan says: the txid range and the newest file's time."""
    files = plan.get("files") or []
    newest = None
    for entry in files:
        stamp = entry.get("timestamp")
        if stamp and (newest is None or stamp > newest):
            newest = stamp
    return {"min_txid": plan.get("min_txid"), "max_txid": plan.get("max_txid"), "files": len(files),
            "newest_file_time": newest, "position": plan.get("max_txid")}


GENERATION_RE = re.compile(r"[0-9a-f]{16}")


def parse_generations(stdout):
    """The rows of Litestream 0.3's `generations` table: [{generation, start, end}], oldest end first.

    The table is `name generation lag start end`; lag is measured against a database file this module
    never has, so it is not read.
    """
    rows = []
    for line in (stdout or "").splitlines():
        cells = line.split()
        if len(cells) == 5 and GENERATION_RE.fullmatch(cells[1]):
            try:
                start, end = ls.parse_timestamp(cells[3]), ls.parse_timestamp(cells[4])
            except ValueError:
                continue
            rows.append({"generation": cells[1], "start": start, "end": end})
    return sorted(rows, key=lambda row: ls.epoch(row["end"]))


def generations_summary(rows, timestamp=None):
    """What a restore from Litestream 0.3 generations reaches, in plan_summary's shape, or None.

    As Litestream 0.3 chooses (replica.go CalcRestoreTarget): of the generations whose time range holds
    the timestamp (all, for the latest), the one with the newest data. The position is that generation.
    The table shows whole seconds (truncated), so a range counts here a second longer at each end, and
    Litestream's own answer decides at the edge.
    """
    if timestamp is not None:
        moment = ls.epoch(timestamp)
        rows = [row for row in rows if ls.epoch(row["start"]) - 1 <= moment <= ls.epoch(row["end"]) + 1]
    if not rows:
        return None
    chosen = rows[-1]
    return {"min_txid": None, "max_txid": None, "files": len(rows),
            "newest_file_time": timestamp if timestamp is not None else chosen["end"],
            "position": chosen["generation"]}


def generations_error(stderr):
    """Litestream 0.3's `generations` logs a failed listing and still exits 0: the logged error, or None."""
    for line in (stderr or "").splitlines():
        if "level=ERROR" in line:
            match = re.search(r'error="((?:[^"\\]|\\.)*)"', line)
            return match.group(1) if match else line.strip()
    return None


def file_names(name):
    """The names of a database's files in its directory: the file, its SQLite sidecars, Litestream's state directory."""
    return [name] + [name + suffix for suffix in SIDECARS] + [".%s-litestream" % name]


def existing_paths(directory, name):
    """The target DB, its SQLite sidecars and Litestream's state directory, those that exist."""
    return [os.path.join(directory, entry) for entry in file_names(name)
            if os.path.lexists(os.path.join(directory, entry))]


def backup_path(path, directory, name, stamp):
    """Where an existing file goes: <name>.<stamp>.bak, <name>.<stamp>.bak-wal, .<name>.<stamp>.bak-litestream.

    The backup is itself a consistent SQLite database (SQLite finds `<db>-wal` by name), with
    Litestream's state directory named as Litestream would name it for that file.
    """
    base = "%s.%s.bak" % (name, stamp)
    entry = os.path.basename(path)
    if entry == name:
        return os.path.join(directory, base)
    for suffix in SIDECARS:
        if entry == name + suffix:
            return os.path.join(directory, base + suffix)
    if entry == ".%s-litestream" % name:
        return os.path.join(directory, ".%s-litestream" % base)
    raise ValueError("not a file of %s: %s" % (name, path))


def _quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def read_only_uri(path, immutable=False):
    """SQLite's URI of a file opened read-only (immutable: no -wal/-shm is read or created), its path escaped: '%'
    first, or a '%2f' in a directory name would be decoded into another path."""
    return "file:%s?mode=ro%s" % (path.replace("%", "%25").replace("?", "%3f").replace("#", "%23"),
                                  "&immutable=1" if immutable else "")


def inspect_database(path, integrity="quick"):
    """Open a restored file read-only (immutable: no -wal/-shm is created) and describe it.

    Returns {"integrity": "ok" | "not checked" | messages, "integrity_ok": bool, "tables": {name: rows}}.
    Tables whose names start with sqlite_ or _litestream_ are left out. Raises sqlite3.Error when the
    file is not a database at all.
    """
    conn = sqlite3.connect(read_only_uri(path, immutable=True), uri=True)
    try:
        # Pages read through a memory map instead of a read() each: the row counts took a quarter, the quick
        # check half the time for 1 GiB. Only this run has the file (a root-only stage; Litestream has exited),
        # so nothing truncates it under the map. SQLite caps the size at its build's limit (2 GiB by default).
        conn.execute("PRAGMA mmap_size = %d" % os.path.getsize(path))
        result = {"integrity": "not checked", "integrity_ok": True, "tables": {}}
        if integrity in INTEGRITY_PRAGMA:
            rows = conn.execute("PRAGMA %s(%d)" % (INTEGRITY_PRAGMA[integrity], MAX_INTEGRITY_MESSAGES)).fetchall()
            messages = [str(row[0]) for row in rows]
            result["integrity_ok"] = messages == ["ok"]
            result["integrity"] = "ok" if result["integrity_ok"] else "; ".join(messages)
        names = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "AND name NOT LIKE '\\_litestream\\_%' ESCAPE '\\' ORDER BY name")]
        for name in names:
            try:
                result["tables"][name] = conn.execute("SELECT count(*) FROM %s" % _quote_ident(name)).fetchone()[0]
            except sqlite3.Error:
                result["tables"][name] = None  # e.g. a virtual table whose module this Python lacks
        return result
    finally:
        conn.close()


def verification_problems(inspected, tables=None, min_rows=None):
    """What fails the verify options, as readable phrases (empty list: verified)."""
    problems = []
    if not inspected["integrity_ok"]:
        problems.append("integrity check failed: %s" % inspected["integrity"])
    found = inspected["tables"]
    for table in tables or []:
        if table not in found:
            problems.append("required table %r is missing" % table)
    for table, minimum in sorted((min_rows or {}).items()):
        if table not in found:
            if table not in (tables or []):
                problems.append("table %r (min_rows %d) is missing" % (table, minimum))
        elif found[table] is None:
            problems.append("rows of table %r cannot be counted" % table)
        elif found[table] < minimum:
            problems.append("table %r has %d rows, fewer than min_rows %d" % (table, found[table], minimum))
    return problems


DEFAULT_PORTS = {"http": "80", "https": "443"}


def canonical_endpoint(endpoint):
    """One spelling of an endpoint: scheme and host in lowercase, no default port, no trailing slash (Litestream
    sends the same requests for each of them)."""
    scheme, _sep, rest = endpoint.partition("://")
    authority, slash, path = rest.partition("/")
    host, port = _host_port(authority.lower(), DEFAULT_PORTS.get(scheme.lower()))
    return "%s://%s%s%s" % (scheme.lower(), host, ":" + port if port else "", re.sub("/+", "/", slash + path).rstrip("/"))


def _host_port(authority, default_port):
    """(host, port or None) of 'host', 'host:port', '[v6]' or '[v6]:port'; the default port becomes None."""
    match = re.fullmatch(r"(\[[^\]]*\]|[^:]*)(?::([0-9]+))?", authority)
    host, port = (match.group(1), match.group(2)) if match else (authority, None)
    if port is not None:
        port = str(int(port))  # 0443 is 443
    return host, None if port == default_port else port


def replica_identity(fields, database):
    """What one database's replica *is*, whatever the spelling: two entries with the same identity write the same
    objects. Only for comparing (replica_location is what messages show)."""
    backend = backends.of(fields)
    path = re.sub("/+", "/", ls.replica_path(fields, database))
    if backend.host_path:
        return "%s://%s" % (backend.name, path.rstrip("/") or "/")
    if backend.server_path:
        host, port = _host_port(fields["host"].lower(), "22")
        authority = "%s@%s:%s" % (fields.get("user"), host, port or "22")
        # relative to the login directory: ~/x and x are one path; /x is absolute
        return "%s://%s%s" % (backend.name, authority, path.rstrip("/") if path.startswith("/") else
                              "/~/" + path.strip("/"))
    authority = fields.get("bucket") or ""
    if backend.url_user and fields.get(backend.url_user):
        authority = "%s@%s" % (fields[backend.url_user].lower(), authority)
    endpoint = fields.get("endpoint")
    return "%s://%s/%s%s" % (backend.name, authority, path.strip("/"),
                             " (endpoint %s)" % canonical_endpoint(endpoint) if endpoint else "")


def replica_location(fields, database):
    """The replica of one database as a URL-like string for messages and results (never a secret): the URL form
    litestream._parse_url reads back to the same fields."""
    path = ls.replica_path(fields, database)
    backend = backends.of(fields)
    if backend.host_path:
        return "%s://%s" % (backend.name, path)
    user = fields.get(backend.url_user) if backend.url_user else None
    authority = fields.get("bucket") if backend.container else fields.get("host")
    if not (backend.server_path and path.startswith("/")):  # /abs on a server stays absolute
        path = ("/~/" if backend.server_path else "/") + path  # relative to the login directory: under ~/
    location = "%s://%s%s%s" % (backend.name, user + "@" if user else "", authority, path)
    if fields.get("endpoint"):
        location += " (endpoint %s)" % fields["endpoint"]
    return location
