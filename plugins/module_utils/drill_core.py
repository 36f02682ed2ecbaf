# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restore drill of a host's apps: which databases to drill, the live row counts read without blocking the
app, one restore per database into a scratch directory (restore_core, several apps at once), and the verdict
per database as litestream_drill_report reads it. A drill never raises for one database: it records it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import re
import sqlite3
import stat

try:
    from concurrent.futures import ThreadPoolExecutor
except ImportError:  # pragma: no cover - Python 2 has no concurrent.futures: one app after the other
    ThreadPoolExecutor = None

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import claim_store, defaults, errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import guarded, owned, ownership
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.inventory import module_params, sidecar_params
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore import read_only_uri, replica_location
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_core import (
    RestoreFailed, RestoreManager, restore_argument_spec)

# a host name becomes a directory of the scratch directory: a plain name, never '..' or a path; at most 200
# characters, as the run's directory <host>.<8 random characters> (mkdtemp) must stay under the 255-byte name limit
HOST_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_HOST_NAME = 200
# what a drill's record holds (litestream_drill_report refuses other keys)
RECORD_KEYS = ("host", "app", "database", "status", "integrity", "tables", "rows", "live_rows", "lag_seconds",
               "duration", "drill_host", "replica", "position", "position_time", "message")


def host_name(value, option):
    v.check_line(value, option)
    if not HOST_NAME_RE.fullmatch(value) or value in (".", ".."):
        raise v.InvalidValue("%s: %s is not a plain host name (letters, digits, '.', '_' and '-'; it names a "
                             "directory of the scratch directory)" % (option, v.shown(value)))
    if len(value) > MAX_HOST_NAME:
        raise v.InvalidValue("%s: %s is longer than %d characters: the drill names its directory in the scratch "
                             "directory <host>.<random>, and a file name holds at most 255 bytes"
                             % (option, v.shown(value), MAX_HOST_NAME))
    return value


def scratch_root(value, option="scratch_dir"):
    """The scratch directory: absolute, normalised, at least two levels deep (never '/' or '/var')."""
    path = v.absolute_path(value, option, mount=True)
    if path.count("/") < 2:
        raise v.InvalidValue("%s: %s must be at least two levels deep (such as %s): the drill removes what it "
                             "restores there" % (option, v.shown(value), defaults.DRILL_SCRATCH_DIR), option=option)
    return path


def selected(apps, only, image):
    """[(app, sidecar options)] of the entries to drill: with a replica, not absent, named in `only` (all when
    empty), in inventory order. Raises InvalidValue for an entry the sidecar module would refuse."""
    chosen = []
    for entry in apps:
        params = sidecar_params(entry, image)
        if params["replica"] is None or params["state"] == "absent":
            continue
        if only and params["app"] not in only:
            continue
        chosen.append(params)
    return chosen


def live_path(storage_root, app, database):
    """The live database of an app, as its sidecar reads it (read_live_tables reads it only through a checked
    descriptor: no link there or at its directory)."""
    return os.path.join(storage_root, app["storage"] or "%s--db" % app["app"], database)


def read_live_tables(path):
    """Row count per table of a live database, read-only: opened with mode=ro, every count in one read
    transaction, so the app's writer is never blocked and the counts belong to one moment. A table that cannot
    be counted is None. Raises IOError when there is no database, sqlite3.Error when it cannot be read.

    The app's user owns the storage directory and may put a link anywhere in it, so the drill (root) reads only the
    file that is there: the directory and the database (and its -wal/-shm) must not be links, the database must be a
    regular file, opened with O_NOFOLLOW and checked; and SQLite, which opens it again by its path (it needs the
    -wal/-shm next to it, and resolves a /proc/self/fd path back to the directory's name), must have that same file
    open while it reads. Anything else raises IOError and no count is used."""
    directory, name = os.path.split(path)
    dir_fd, db_fd, identity = _open_live(directory, name)
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=10, isolation_level=None)
        try:
            conn.execute("begin")
            names = [row[0] for row in conn.execute(
                "select name from sqlite_master where type = 'table' and name not like 'sqlite\\_%' escape '\\' "
                "and name not like '\\_litestream\\_%' escape '\\'")]
            tables = {}
            for table in names:
                try:
                    tables[table] = conn.execute('select count(*) from "%s"' % table.replace('"', '""')).fetchone()[0]
                except sqlite3.Error:
                    tables[table] = None
            _same_live(dir_fd, db_fd, directory, name, identity)  # in the read transaction: SQLite has the files open
            conn.execute("commit")
        finally:
            conn.close()
    finally:
        os.close(db_fd)
        os.close(dir_fd)
    return tables


def _lstat_at(dir_fd, name):
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def _live_files_problem(dir_fd, directory, name):
    """Why the live database's files cannot be read as they are (a text), or None: a link or a non-regular file."""
    for entry in (name, name + "-wal", name + "-shm"):
        st = _lstat_at(dir_fd, entry)
        if st is None:
            if entry == name:
                return "no database at %s" % os.path.join(directory, name)
            continue
        if stat.S_ISLNK(st.st_mode):
            return "%s is a symbolic link: the drill reads only the file that is there" % os.path.join(directory, entry)
        if not stat.S_ISREG(st.st_mode):
            return "%s is not a regular file" % os.path.join(directory, entry)
    return None


def _open_live(directory, name):
    """(directory descriptor, database descriptor, (st_dev, st_ino)) of a live database, both opened with O_NOFOLLOW
    and checked; raises IOError when either is a link or the database is missing or not a regular file."""
    path = os.path.join(directory, name)
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if os.path.islink(directory):
            raise IOError("the storage directory %s is a symbolic link: the drill reads a live database only in the "
                          "directory itself" % directory)
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise IOError("no database at %s" % path)
        raise
    try:
        problem = _live_files_problem(dir_fd, directory, name)
        if problem:
            raise IOError(problem)
        db_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except (IOError, OSError):
        os.close(dir_fd)
        raise
    st = os.fstat(db_fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(db_fd)
        os.close(dir_fd)
        raise IOError("%s is not a regular file" % path)
    return dir_fd, db_fd, (st.st_dev, st.st_ino)


def _same_live(dir_fd, db_fd, directory, name, identity):
    """Raise IOError unless the directory's path, the database's name and the file SQLite opened are still the
    directory and the file checked by _open_live (no link put in their place meanwhile)."""
    changed = IOError("%s changed while the drill read it (a link or another file was put in its place): its counts "
                      "are not used" % os.path.join(directory, name))
    here, there = os.lstat(directory), os.fstat(dir_fd)
    st = _lstat_at(dir_fd, name)
    if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino) or st is None or (st.st_dev, st.st_ino) != identity:
        raise changed
    problem = _live_files_problem(dir_fd, directory, name)
    if problem:
        raise IOError(problem)
    if _open_elsewhere(identity, db_fd) is False:
        raise changed


def _open_elsewhere(identity, own_fd):
    """Whether another descriptor of this process than own_fd has the file `identity` open (SQLite's); None when
    /proc/self/fd cannot tell."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for fd in fds:
        if fd == str(own_fd):
            continue
        try:
            st = os.stat("/proc/self/fd/%s" % fd)
        except OSError:  # closed meanwhile by another thread
            continue
        if (st.st_dev, st.st_ino) == identity:
            return True
    return False


def total_rows(tables):
    if not isinstance(tables, dict):
        return None
    return sum(count for count in tables.values() if isinstance(count, int))


def key(app, database):
    return "%s/%s" % (app, database)


class HostDrill:
    """The drills of one source host's apps, run where `module` runs (the drill host). ``options``: the
    checked options of litestream_drill."""

    def __init__(self, module, options, apps):
        self.module = module
        self.options = options
        self.apps = apps
        # this run's own directory, made (mkdtemp, marked) under the scratch directory when the run starts: the only
        # thing the drill ever removes there, whatever the scratch directory or the host name
        self.run_dir = os.path.join(options["scratch_dir"], "%s.check-mode" % options["host"])
        self.made_run_dir = False
        self.run_lock = None
        self.active = {}  # thread-safe enough: one key per app, set and removed by its own worker
        self.unread = {}  # app -> why its ownership record could not be read (one key per app, as active)

    # ------------------------------------------------------------------ the run
    def run(self):
        """One record per database, in inventory order; apps run `parallel` at once, an app's databases one after
        the other (they share the app's scratch directory)."""
        jobs = list(self.apps)
        parallel = max(1, self.options["parallel"])
        if jobs and not self.module.check_mode:
            prefix = "%s." % self.options["host"]
            for stale in owned.remove_stale(self.options["scratch_dir"], prefix, owned.DRILL_RUN):
                self.module.warn("removed %s: a drill run of this host that was interrupted (killed, or by a reboot) "
                                 "left it behind" % stale)
            # before the threads: each restore then makes only its own app's directory inside it; the directory's
            # lock tells a later run that this one is still going
            self.run_dir, self.run_lock = owned.make_temp(self.options["scratch_dir"], prefix, owned.DRILL_RUN,
                                                          hold=True)
            self.made_run_dir = True
        if ThreadPoolExecutor is None or parallel == 1 or len(jobs) <= 1:
            per_app = [self.drill_app(app) for app in jobs]
        else:
            with ThreadPoolExecutor(max_workers=parallel) as pool:
                per_app = list(pool.map(self.drill_app, jobs))
        try:
            self.remove_run_dir()
        except (guarded.OutsideRoot, IOError, OSError) as exc:  # the records stand; the directory is named
            self.module.warn("the drill's directory %s was not removed: %s" % (self.run_dir, exc))
        return [record for records in per_app for record in records]

    def drill_app(self, app):
        return [self.drill_database(app, database) for database in app["databases"]]

    def drill_database(self, app, database):
        name = "%s/%s/%s" % (self.options["host"], app["app"], database)
        scratch = os.path.join(self.run_dir, app["app"])
        record = dict(host=self.options["host"], app=app["app"], database=database, drill_host=self.options["drill_host"])
        try:
            self.remove(scratch)
            manager = RestoreManager(self.module, self.restore_params(app, database, scratch), signals=False)
            self.active[app["app"]] = manager
            try:
                result = manager.execute()
            finally:
                self.active.pop(app["app"], None)
        except RestoreFailed as exc:
            record.update(status="failed", message="%s: %s" % (name, self.failure(app, database, exc)),
                          **dict((k, exc.result.get(k)) for k in ("integrity", "tables", "duration", "replica")))
            return self.finished(record, scratch)
        except (errors.CollectionError, IOError, OSError) as exc:  # bad values, paths, the ownership record
            record.update(status="failed", message="%s: %s" % (name, exc))
            return self.finished(record, scratch)
        record.update((k, result.get(k)) for k in ("integrity", "tables", "duration", "replica", "position",
                                                   "position_time"))
        if self.unread.get(app["app"]):
            record.update(status="failed", message="%s: %s" % (name, self.unread[app["app"]]))
            return self.finished(record, scratch)
        record["rows"] = total_rows(result.get("tables"))
        record["lag_seconds"] = result.get("position_age")
        record["status"] = "ok"
        if not self.options["defer_verdict"]:
            # the live database read after the restore: has it moved on since what the replica held?
            live = self.read_live(app, database) if self.options["compare_live"] else None
            verdict(record, live, self.options["max_lag_seconds"], self.module.check_mode)
        return self.finished(record, scratch)

    def read_live(self, app, database):
        try:
            return read_live_tables(live_path(self.options["storage_root"], app, database))
        except (IOError, OSError, sqlite3.Error):
            return None

    def restore_params(self, app, database, scratch):
        """The restore's options, through litestream_restore's own spec: the drill restores as that module does."""
        opts = self.options
        # the sidecar's spec set every replica option; the restore's knows no Litestream 0.3 ones (all None here)
        replica = dict((k, val) for k, val in app["replica"].items() if val is not None)
        # the lineage its owner writes now (after a move or a take-over, not the configured path's)
        try:
            replica = claim_store.current_lineage(replica, opts["credentials_root"], app["app"])
            self.unread[app["app"]] = None
        except (claim_store.StoreFailed, ownership.ClaimProblem) as exc:
            # the restore of the configured path then says what is wrong with the store; if it works, the drill
            # still fails: after a move that path may be a dead lineage
            self.unread[app["app"]] = "the ownership record of the replica %s cannot be read, so the drill cannot " \
                "tell which lineage is current: %s" % (replica_location(ls.normalize_replica(replica), database), exc)
        given = dict(replica=replica, database=database, dest=scratch, verify=opts["verify"],
                     if_replica_exists=False, on_existing="fail", owner=0, group=0, mode="0600",
                     image=app["image"], dry_run_timeout=opts["replica_timeout"], lock_timeout=opts["lock_timeout"],
                     credentials_root=opts["credentials_root"], docker_binary=opts["docker_binary"],
                     dokku_binary=opts["dokku_binary"])
        return module_params(restore_argument_spec(), given)

    def failure(self, app, database, exc):
        """The restore's message; a missing backup named in the drill's own words (if_replica_exists is the
        module's option, not the drill's)."""
        if exc.result.get("replica_missing"):
            return ("the replica %s holds no backup of %s: nothing was ever replicated there. Check the replica of "
                    "app %s in restore_drill_apps (litestream_apps) and that its sidecar (dokku.litestream.%s) runs "
                    "on %s" % (exc.result.get("replica"), database, app["app"], app["app"], self.options["host"]))
        return exc.msg

    def finished(self, record, scratch):
        try:
            self.remove(scratch)
        except (guarded.OutsideRoot, IOError, OSError) as exc:
            extra = "the scratch directory %s was not removed: %s" % (scratch, exc)
            record["message"] = "%s; %s" % (record["message"], extra) if record.get("message") else extra
        return dict((k, record.get(k)) for k in RECORD_KEYS)

    # ------------------------------------------------------------------ files
    def remove(self, path):
        """Remove an app's directory inside this run's own directory (nothing in check mode, where none is made)."""
        if not self.made_run_dir or not os.path.lexists(path):
            return
        guarded.remove_tree(path, self.run_dir)

    def remove_run_dir(self):
        """This run's directory, after owned.py's check that it is the one this run made."""
        if self.made_run_dir:
            try:
                owned.remove(self.run_dir, owned.DRILL_RUN)
            finally:
                self.made_run_dir = False
                os.close(self.run_lock)

    def cleanup(self):
        """After a signal: every running restore's keys and stage, then this host's scratch directory."""
        for manager in list(self.active.values()):
            try:
                manager.cleanup()
            except (IOError, OSError):
                pass
        try:
            self.remove_run_dir()
        except (guarded.OutsideRoot, IOError, OSError):
            pass


def verdict(record, live, max_lag, check_mode):
    """ok, or stale: old data is only stale when the live database has moved on since (an idle one is current).
    ``live``: the live row counts read after the restore (None: not read)."""
    live = live if isinstance(live, dict) else None
    record["live_rows"] = total_rows(live)
    lag = record.get("lag_seconds")
    stale = isinstance(lag, (int, float)) and lag > max_lag and live != record.get("tables")
    record["status"] = "failed" if stale else "ok"
    if stale:
        record["message"] = ("%s/%s/%s: stale: the newest replicated data is %ss old (max %ss) and the live database "
                             "has changed since" % (record["host"], record["app"], record["database"], lag, max_lag))
    elif check_mode:
        record["message"] = "check mode: restore planned, not run"
    return record


def judge_records(storage_root, apps, records, max_lag, check_mode):
    """The verdict of a drill run elsewhere (defer_verdict), with the live databases of this host read now, after
    their restores. Records that failed already are kept as they are."""
    by_app = dict((app["app"], app) for app in apps)
    out = []
    for record in records:
        record = dict((k, record.get(k)) for k in RECORD_KEYS)
        app = by_app.get(record["app"])
        if record["status"] == "ok" and app is not None:
            try:
                live = read_live_tables(live_path(storage_root, app, record["database"]))
            except (IOError, OSError, sqlite3.Error):
                live = None
            verdict(record, live, max_lag, check_mode)
        out.append(record)
    return out


def read_all_live(storage_root, apps):
    """"app/database" -> row counts per table, or the reason they could not be read (a text)."""
    out = {}
    for app in apps:
        for database in app["databases"]:
            try:
                out[key(app["app"], database)] = read_live_tables(live_path(storage_root, app, database))
            except (IOError, OSError, sqlite3.Error) as exc:
                out[key(app["app"], database)] = "the live database could not be read: %s" % exc
    return out
