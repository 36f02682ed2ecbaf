"""Lab facts the fencing design rests on (docs/move-design.md §7 step 1), with the real Litestream 0.5.17 sidecar.

Each writer is a sidecar as the collection runs it: the lab's 0.5.17 image, the config render_config writes (plus
short compaction, snapshot and retention intervals), the sidecar's entrypoint (litestream.entrypoint_script), a
database of its own, on lab-dokku-1's Docker. The host's sqlite3 commits its rows. Every replica root R is new per
run (a random name): on the lab's moto (s3), its file replica directory (file) and its OpenSSH sftp server (sftp).
A file's writer is told by its bytes: an L0 file is the upload of the writer's local copy (.<db>-litestream/ltx/0).

1. Two lineages at once (the design's fence). Writer 1 replicates to R/<db> (epoch 1, the configured path), writer
   2 to R/.dokku-litestream/a/epochs/2/<db> (ownership.lineage_fields(fields, "a", 2)). Every key a Litestream
   client builds is its replica path + "/" + a level directory (s3/replica_client.go:650, 686; litestream.go:186-197
   for file and sftp), and deletions come from retention by TXID and age only (db.go:3015-3125), so:
   - both write at once, compact to level 1 and snapshot (level 9); R then holds only LTX files of the two
     lineages' level directories, and every L0 file in a lineage is its own writer's: both count TXIDs from 1, so
     the names are the same, with other bytes, under two prefixes;
   - while writer 1 is stopped and writer 2 writes, compacts and deletes its own L0 files (L0 retention), nothing
     outside R/.dokku-litestream/ changes: names, sizes, sha256, etag and LastModified (s3), mtime and inode (file,
     sftp); and nothing inside it changes while writer 2 is stopped and writer 1 (restarted) does the same;
   - a plain `litestream restore` of each lineage returns exactly its writer's rows, integrity_check ok.
2. The hazard the fence avoids: two writers, different databases, one path R/<db>. An "old" writer replicates;
   a "new" one starts on the same path while the old one keeps running (a stale sidecar). At its start the new
   writer's checkDatabaseBehindReplica takes the old database's newest L0 file as its baseline (db.go:1118-1124,
   1589-1660) and the new writer uploads above it. The old writer reads the replica's position only when its cached
   one is zero (replica.go:170-176, 184-190), so when it commits again it uploads its own pos+1... (207-227): the
   names the new writer already wrote. Observed:
   - s3: its PutObject carries no condition (s3/replica_client.go:686-720) and replaces the new writer's L0 files:
     the same names, the old writer's bytes, new etags; nothing in the old writer's log;
   - file: `<name>.tmp` then os.Rename, which replaces (file/replica_client.go:183-224): the same, new inodes;
   - sftp: `<name>.<pid>.<ns>.tmp` then Client.Rename, an SSH_FXP_RENAME (sftp/replica_client.go:295-323; pkg/sftp
     client.go:783-799), which OpenSSH's server does as link() + unlink(), refused when the target exists
     (sftp-server.c:1284-1317@V_9_2_P1). The old writer logs `cannot rename temporary ltx file ... SSH_FX_FAILURE`,
     the new writer's files keep bytes, mtime and inode; the failed sync clears the old writer's position
     (replica.go:170-176), it re-reads the newest L0 TXID and uploads its next files above the new writer's: one L0
     level holding both databases, interleaved.
"""
import base64
import hashlib
import re
import secrets
import shlex
import shutil
import time
from pathlib import Path

import boto3
import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream, ownership
from test_replication import s3_creds

KINDS = ("s3", "file", "sftp")
DB = "production.sqlite3"
APP = "a"
EPOCH1 = DB  # the lineages' replica paths relative to R
EPOCH2 = f"{ownership.RESERVED_DIR}/{APP}/epochs/2/{DB}"
FILE_ROOT = "/srv/lab-replicas"  # lab.state/replicas on the controller
CONFIG = f"{litestream.CONFIG_DIR_IN_CONTAINER}/{litestream.CONFIG_FILE}"
CREDENTIALS_ENV = f"{litestream.CONFIG_DIR_IN_CONTAINER}/{litestream.CREDENTIALS_ENV_FILE}"
# compaction to L1 every 2 s, a snapshot every 4 s, L0 files deleted 3 s after their compaction: within seconds
FAST = dict(snapshot_interval="4s", snapshot_retention="1h",
            extra="levels:\n  - interval: 2s\nl0-retention: 3s\nl0-retention-check-interval: 1s\n")
# the shared path is read at level 0 only: no compaction or retention during the test
SLOW = dict(snapshot_interval=None, snapshot_retention=None, extra="levels:\n  - interval: 1h\n")
LTX_NAME = r"(?P<name>[0-9a-f]{16}-(?P<max>[0-9a-f]{16})\.ltx)"
# a key relative to R -> the lineage, the level and the LTX file name
LEVEL_DIR_RE = re.compile(r"(?P<lineage>.+)/ltx/(?P<level>[0-9]+)/" + LTX_NAME)
KEY_RE = {"s3": re.compile(r"(?P<lineage>.+)/(?P<level>[0-9a-f]{4})/" + LTX_NAME),
          "file": LEVEL_DIR_RE, "sftp": LEVEL_DIR_RE}


def max_txid(name):
    return int(re.fullmatch(LTX_NAME, name).group("max"), 16)


def ltx_files(kind, listing, lineage):
    """{(level, name): record} of the LTX files a listing holds in one lineage's level directories."""
    out = {}
    for key, record in listing.items():
        match = KEY_RE[kind].fullmatch(key)
        if match and match.group("lineage") == lineage:
            out[(int(match.group("level"), 16 if kind == "s3" else 10), match.group("name"))] = record
    return out


def inside(listing, prefix):
    return {key: record for key, record in listing.items() if key.startswith(prefix + "/")}


def outside(listing, prefix):
    return {key: record for key, record in listing.items() if not key.startswith(prefix + "/")}


def owners(record, name, local):
    """The writers whose local copy of L0 file `name` has the record's bytes."""
    return {who for who, files in local.items() if files.get(name) == record[1]}


def problems(log):
    return [line for line in log.splitlines() if "level=ERROR" in line or "level=WARN" in line]


def shell(argv):
    return " ".join(shlex.quote(arg) for arg in argv)


class Writer:
    """One Litestream sidecar on a database of its own, replicating with `fields`."""

    def __init__(self, run, role, kind, fields, tuning):
        self.run, self.role, self.kind, self.fields, self.tuning = run, role, kind, fields, tuning
        self.name = f"dsl-{run.top}-{role}-{kind}"
        self.dir = f"{run.home}/{role}-{kind}"
        self.db = f"{self.dir}/data/{DB}"
        self.l0 = f"{self.dir}/data/.{DB}-litestream/ltx/0"
        self.lineage = litestream.replica_path(fields, DB)[len(run.root_path(kind)) + 1:]

    def files(self):
        """{file of the config directory: text}, as the collection writes them."""
        credentials = self.run.credentials(self.kind)
        config = litestream.render_config([DB], self.fields, credentials,
                                          snapshot_interval=self.tuning["snapshot_interval"],
                                          snapshot_retention=self.tuning["snapshot_retention"])
        files = dict(litestream.credential_files(self.fields, credentials))
        files.update({litestream.CONFIG_FILE: config + self.tuning["extra"],
                      litestream.CREDENTIALS_ENV_FILE: litestream.credentials_env(self.fields, credentials)})
        return {name: text for name, text in files.items() if text}

    def mounts(self):
        args = ["--volume", f"{self.dir}/cfg:{litestream.CONFIG_DIR_IN_CONTAINER}:ro"]
        if self.kind == "file":  # as the sidecar mounts a file replica: at the same path
            args += ["--volume", f"{self.fields['path']}:{self.fields['path']}"]
        return args

    def setup_script(self):
        """Its config directory, its database and its container (created, not started)."""
        lines = [f"install -d -m 0700 {self.dir}/cfg {self.dir}/data {self.dir}/out"]
        for name, text in self.files().items():  # the script goes through stdin: no key in an argv
            lines.append(f"printf %s {base64.b64encode(text.encode()).decode()} | base64 -d > {self.dir}/cfg/{name}")
        if self.kind == "file":
            lines.append(f"mkdir -p {self.fields['path']}")
        lines.append(f"sqlite3 {self.db} 'pragma journal_mode=wal; "
                     "create table events (id integer primary key, note text not null)' >/dev/null")
        script = litestream.entrypoint_script(CONFIG, CREDENTIALS_ENV, [DB])
        lines.append(shell(["docker", "container", "create", "--name", self.name, "--network", "host",
                            "--stop-timeout", "30", "--label", f"dsl-lineage={self.run.top}",
                            "--volume", f"{self.dir}/data:{litestream.DEFAULT_MOUNT_DIR}", *self.mounts(),
                            "--entrypoint", "/bin/sh", self.run.image, "-c", script]) + " >/dev/null")
        return "\n".join(lines)

    def restore_command(self):
        """A plain `litestream restore` of this writer's replica, in the sidecar image, with its config; the
        restored file's path on the host."""
        out = f"/out/restored-{secrets.token_hex(3)}.sqlite3"
        script = (f"{litestream.source_env(CREDENTIALS_ENV)}; exec litestream restore -config {CONFIG} "
                  f"-no-expand-env -o {out} {litestream.DEFAULT_MOUNT_DIR}/{DB}")
        return shell(["docker", "run", "--rm", "--network", "host", "--label", f"dsl-lineage={self.run.top}",
                      "--volume", f"{self.dir}/out:/out", *self.mounts(), "--entrypoint", "/bin/sh", self.run.image,
                      "-c", script]), f"{self.dir}{out}"


class Run:
    """A replica root R of this run's own on each backend, the writers on it, and the lab host they run on."""

    def __init__(self, lab):
        self.lab, self.host = lab, lab.hosts[0]
        self.top = f"lineage-{secrets.token_hex(4)}"
        self.home = f"/root/dsl-{self.top}"
        self.image = lab.facts["images"]["litestream"]
        s3, creds = lab.facts["s3"], s3_creds(lab)
        self.s3 = boto3.client("s3", endpoint_url=s3["endpoint"], region_name=s3["region"],
                               aws_access_key_id=creds["access_key_id"],
                               aws_secret_access_key=creds["secret_access_key"])
        self.bucket = s3["bucket"]

    def ssh(self, script, input_text=None):
        return self.lab.ssh(self.host, script, input_text=input_text).stdout

    def root_path(self, kind):
        return {"s3": self.top, "file": f"{FILE_ROOT}/{self.top}",
                "sftp": f"{self.lab.facts['sftp']['path']}/{self.top}"}[kind]

    def local_root(self, kind):
        """R of a file or sftp replica, as the controller sees it."""
        return self.lab.state / ("replicas" if kind == "file" else "sftp-data") / self.top

    def credentials(self, kind):
        if kind == "s3":
            return {key: s3_creds(self.lab)[key] for key in ("access_key_id", "secret_access_key")}
        if kind == "sftp":
            return {"ssh_private_key": Path(self.lab.facts["sftp"]["key_file"]).read_text()}
        return {}

    def writer(self, role, kind, tuning, epoch=1):
        s3, sftp = self.lab.facts["s3"], self.lab.facts["sftp"]
        spec = {"s3": {"type": "s3", "bucket": s3["bucket"], "endpoint": s3["endpoint"], "region": s3["region"]},
                "file": {"type": "file"},
                "sftp": {"type": "sftp", "host": sftp["host"], "user": sftp["user"], "host_key": sftp["host_key"]},
                }[kind]
        fields = litestream.normalize_replica(dict(spec, path=self.root_path(kind)))
        return Writer(self, role, kind, ownership.lineage_fields(fields, APP, epoch), tuning)

    def create(self, writers):
        self.ssh("sh -es", input_text="\n".join(w.setup_script() for w in writers) + "\n")

    def start(self, writers):
        self.ssh("docker start " + " ".join(w.name for w in writers) + " >/dev/null")

    def stop(self, writers):
        """docker stop: Litestream's shutdown sync, then its process is gone."""
        self.ssh("docker stop --time 30 " + " ".join(w.name for w in writers) + " >/dev/null")

    def write_rows(self, writers, count, phase):
        """`count` commits into each writer's database, one every 0.25 s, each row naming its writer and phase."""
        lines = [f"for i in $(seq 1 {count}); do"]
        lines += [f"  sqlite3 -cmd '.timeout 5000' {w.db} \"insert into events (note) values "
                  f"('{w.role}-{w.kind}-{phase}-'||$i)\" || exit 1" for w in writers]
        # then 1.5 s: Litestream reads the WAL every second (monitor-interval), so by then every commit is in a
        # local L0 file, and "the newest local L0 file is in the replica" means "every row is"
        self.ssh("\n".join(lines + ["  sleep 0.25", "done", "sleep 1.5"]))

    def rows(self, path):
        """(integrity_check, ["id note", ...]) of a database on the host."""
        out = self.ssh(f"sqlite3 -batch {path} 'pragma integrity_check' "
                       "\"select id || ' ' || note from events order by id\"").splitlines()
        return out[0], out[1:]

    def restore(self, writer):
        command, path = writer.restore_command()
        self.ssh(command)
        return self.rows(path)

    def logs(self, writer):
        return self.lab.ssh(self.host, f"docker logs {writer.name} 2>&1", check=False).stdout

    def local_l0(self, writers):
        """{writer name: {L0 file name: sha256}} of each writer's local LTX files (what it uploads)."""
        script = "; ".join(f"echo '== {w.name}'; (cd {w.l0} 2>/dev/null && sha256sum -- *.ltx 2>/dev/null)"
                           for w in writers)
        found, current = {}, None
        for line in self.ssh(script + "; true").splitlines():
            if line.startswith("== "):
                current = found.setdefault(line[3:], {})
            elif line.strip():
                digest, name = line.split()
                current[name] = digest
        return found

    def listing(self, kind, content=True):
        """{key relative to R: (size, sha256 or None, what the store says of it)}: for s3 the etag and
        LastModified, for file and sftp the mtime and inode (a rename over a file gives it a new inode)."""
        found = {}
        if kind == "s3":
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.top + "/"):
                for obj in page.get("Contents", []):
                    digest = hashlib.sha256(self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read(
                    )).hexdigest() if content else None
                    found[obj["Key"][len(self.top) + 1:]] = (obj["Size"], digest, (obj["ETag"], obj["LastModified"]))
            return found
        root = self.local_root(kind)
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            st = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if content else None
            found[str(path.relative_to(root))] = (st.st_size, digest, (st.st_mtime_ns, st.st_ino))
        return found

    @staticmethod
    def wait(what, predicate, timeout=30):
        deadline = time.time() + timeout
        while not predicate():
            if time.time() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.3)

    def caught_up(self, writers):
        """Every writer's newest local L0 file is in its lineage and compacted into level 1."""
        local = self.local_l0(writers)
        listings = {kind: self.listing(kind, content=False) for kind in {w.kind for w in writers}}
        for w in writers:
            newest = max(local[w.name], default=None)
            level1 = [name for level, name in ltx_files(w.kind, listings[w.kind], w.lineage) if level == 1]
            if newest is None or not level1 or max(max_txid(n) for n in level1) < max_txid(newest):
                return False
        return True

    def newest_is_own(self, writers):
        """Each writer's newest local L0 file is in its replica with the writer's own bytes."""
        local = self.local_l0(writers)
        for w in writers:
            newest = max(local[w.name], default=None)
            files = ltx_files(w.kind, self.listing(w.kind), w.lineage)
            if newest is None or files.get((0, newest), (0, None))[1] != local[w.name][newest]:
                return False
        return True

    def cleanup(self):
        self.lab.ssh(self.host, f"docker ps -aq --filter label=dsl-lineage={self.top} | xargs -r docker rm -f -v "
                                f">/dev/null; rm -rf {self.home} {FILE_ROOT}/{self.top}", check=False)
        for kind in ("file", "sftp"):
            shutil.rmtree(self.local_root(kind), ignore_errors=True)
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.top + "/"):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})


def snapshot(run, pairs):
    """Per backend: each writer's local L0 files, then the listing of R. In this order every L0 file the listing
    shows has its local copy in the first part: a writer makes the local file before it uploads it, and L0
    retention deletes the remote file before the local one (db.go:3015-3125)."""
    local = run.local_l0([w for pair in pairs for w in pair])
    return {one.kind: {"local": {EPOCH1: local[one.name], EPOCH2: local[two.name]},
                       "files": run.listing(one.kind)} for one, two in pairs}


def window(run, pairs, writers, phase):
    """Snapshots before and after `writers` alone commit rows, upload them and compact them to level 1."""
    before = snapshot(run, pairs)
    run.write_rows(writers, 16, phase)
    run.wait(f"{phase}: compaction to level 1", lambda: run.caught_up(writers))
    return before, snapshot(run, pairs)


@pytest.fixture(scope="module")
def isolation(lab):
    """Per backend, writer 1 on R/<db> and writer 2 on the epoch-2 lineage: both together, then each alone."""
    run = Run(lab)
    try:
        first = [run.writer("epoch1", kind, FAST) for kind in KINDS]
        second = [run.writer("epoch2", kind, FAST, epoch=2) for kind in KINDS]
        pairs = list(zip(first, second))
        run.create(first + second)
        run.start(first + second)
        run.write_rows(first + second, 24, "together")
        run.wait("both lineages compacted to level 1", lambda: run.caught_up(first + second))
        together = snapshot(run, pairs)
        run.stop(first)
        second_alone = window(run, pairs, second, "alone")
        run.stop(second)
        run.start(first)
        first_alone = window(run, pairs, first, "again")
        run.stop(first)
        yield {one.kind: {"together": together[one.kind],
                          "second alone": tuple(seen[one.kind] for seen in second_alone),
                          "first alone": tuple(seen[one.kind] for seen in first_alone),
                          "restored": {EPOCH1: run.restore(one), EPOCH2: run.restore(two)},
                          "live": {EPOCH1: run.rows(one.db), EPOCH2: run.rows(two.db)},
                          "logs": {EPOCH1: run.logs(one), EPOCH2: run.logs(two)},
                          "lineages": (one.lineage, two.lineage)} for one, two in pairs}
    finally:
        run.cleanup()


@pytest.fixture(scope="module")
def shared(lab):
    """Per backend, an old and a new writer with different databases on one path R/<db>: the old one replicates,
    the new one starts while the old one keeps running (a stale sidecar) and writes, then the old one writes."""
    run = Run(lab)
    try:
        old = [run.writer("old", kind, SLOW) for kind in KINDS]
        new = [run.writer("new", kind, SLOW) for kind in KINDS]
        run.create(old + new)
        run.start(old)
        run.write_rows(old, 8, "first")
        run.wait("the old writer's L0 files", lambda: run.newest_is_own(old))
        run.start(new)
        run.write_rows(new, 8, "taken-over")
        run.wait("the new writer's L0 files", lambda: run.newest_is_own(new))
        before = {kind: run.listing(kind) for kind in KINDS}
        local_new = run.local_l0(new)
        # more commits than the new writer made: where the old writer cannot replace, it ends above the new one
        run.write_rows(old, 24, "stale")
        run.wait("the old writer's newest L0 file", lambda: run.newest_is_own(old), timeout=60)
        after = {kind: run.listing(kind) for kind in KINDS}
        local_old = run.local_l0(old)
        yield {o.kind: {"before": before[o.kind], "after": after[o.kind], "lineage": o.lineage,
                        "local": {"old": local_old[o.name], "new": local_new[n.name]},
                        "logs": {"old": run.logs(o), "new": run.logs(n)}} for o, n in zip(old, new)}
    finally:
        run.cleanup()


@pytest.mark.parametrize("kind", KINDS)
def test_two_lineages_written_at_once_hold_disjoint_keys_each_its_writers_bytes(isolation, kind):
    found = isolation[kind]
    assert found["lineages"] == (EPOCH1, EPOCH2)
    common_names = 0
    for seen in (found["together"], *found["second alone"], *found["first alone"]):
        # nothing under R but LTX files in the level directories of the two lineages: no temporary file, no lock
        matches = {key: KEY_RE[kind].fullmatch(key) for key in seen["files"]}
        assert [key for key, match in matches.items() if not match or match["lineage"] not in (EPOCH1, EPOCH2)] == []
        files = {lineage: ltx_files(kind, seen["files"], lineage) for lineage in (EPOCH1, EPOCH2)}
        for lineage, own in files.items():
            for (level, name), record in own.items():
                if level == 0:  # the upload of a writer's local L0 file: byte for byte its own writer's
                    assert owners(record, name, seen["local"]) == {lineage}, (lineage, name)
        common = set(files[EPOCH1]) & set(files[EPOCH2])
        common_names += len(common)
        # both count TXIDs from 1: the same names, other bytes, under two prefixes
        assert all(files[EPOCH1][key][1] != files[EPOCH2][key][1] for key in common), common
    assert common_names > 0
    for lineage in (EPOCH1, EPOCH2):
        levels = {level for level, _name in ltx_files(kind, found["together"]["files"], lineage)}
        assert {0, 1, 9} <= levels, (lineage, levels)  # compacted to L1 and snapshotted while both ran
        assert problems(found["logs"][lineage]) == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_writer_alone_changes_nothing_outside_its_own_lineage(isolation, kind):
    found = isolation[kind]
    checks = (("second alone", EPOCH2, lambda listing: outside(listing, ownership.RESERVED_DIR)),
              ("first alone", EPOCH1, lambda listing: inside(listing, ownership.RESERVED_DIR)))
    for phase, lineage, others in checks:
        before, after = (seen["files"] for seen in found[phase])
        # names, sizes, sha256, and etag + LastModified (s3) or mtime + inode (file, sftp): nothing written or deleted
        assert others(before) and others(after) == others(before), phase
        # ... while this writer wrote, compacted to level 1 and deleted its own L0 files (retention)
        old, new = (set(ltx_files(kind, listing, lineage)) for listing in (before, after))
        assert {level for level, _name in new - old} >= {0, 1}, (phase, sorted(new - old))
        assert any(level == 0 for level, _name in old - new), (phase, sorted(old - new))


@pytest.mark.parametrize("kind", KINDS)
def test_each_lineage_restores_only_its_own_rows(isolation, kind):
    found = isolation[kind]
    for lineage, role, other in ((EPOCH1, "epoch1", "epoch2"), (EPOCH2, "epoch2", "epoch1")):
        integrity, rows = found["restored"][lineage]
        live_integrity, live = found["live"][lineage]
        assert integrity == live_integrity == "ok"
        assert rows == live, (lineage, rows[-3:], live[-3:])
        notes = [row.split(" ", 1)[1] for row in rows]
        assert len(notes) == 24 + 16 and all(note.startswith(f"{role}-{kind}-") for note in notes), notes
        assert not any(other in note for note in notes)


def taken_over(found, kind):
    """The L0 files on the shared path with the new writer's bytes, before the old writer committed again."""
    before = ltx_files(kind, found["before"], found["lineage"])
    return sorted(name for (level, name), record in before.items()
                  if level == 0 and owners(record, name, found["local"]) == {"new"})


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_writer_on_a_used_path_starts_above_the_newest_file_there(shared, kind):
    """checkDatabaseBehindReplica (db.go:1589-1660): a database with no LTX files of its own, on a path that has
    some, copies the newest L0 file there as its baseline, whoever wrote it, and its own files follow."""
    found = shared[kind]
    log = found["logs"]["new"]
    assert 'msg="detected database behind replica"' in log and "db_txid=0000000000000000" in log, log
    match = re.search(r'msg="fetched latest L0 file from replica".*max_txid=([0-9a-f]{16})', log)
    assert match, log
    name = f"{match[1]}-{match[1]}.ltx"
    record = ltx_files(kind, found["before"], found["lineage"])[(0, name)]
    assert owners(record, name, found["local"]) == {"old", "new"}, name
    taken = taken_over(found, kind)
    assert taken and max_txid(taken[0]) == int(match[1], 16) + 1, taken


@pytest.mark.parametrize("kind", ("s3", "file"))
def test_a_stale_writer_on_the_same_path_replaces_the_new_writers_level_0_files(shared, kind):
    """The old writer uploads from its cached position (replica.go:207-227): an unconditional PutObject (s3), a
    rename that replaces (file). The new writer's L0 files get the old writer's bytes under the same names."""
    found = shared[kind]
    taken = taken_over(found, kind)
    before = ltx_files(kind, found["before"], found["lineage"])
    after = ltx_files(kind, found["after"], found["lineage"])
    assert taken
    for name in taken:
        was, now = before[(0, name)], after[(0, name)]
        assert owners(now, name, found["local"]) == {"old"}, name
        assert now[1] != was[1] and now[2][0] != was[2][0], (name, was, now)  # the etag (s3), the inode (file)
    assert problems(found["logs"]["old"]) == []  # nothing tells the old writer


def test_on_sftp_the_stale_writers_rename_fails_and_it_appends_above(shared):
    """OpenSSH does SSH_FXP_RENAME as link() + unlink() and refuses an existing target (sftp-server.c:1284-1317):
    the new writer's files stay; the failed sync clears the old writer's position (replica.go:170-176), it re-reads
    the newest L0 TXID and uploads above it, so one L0 level holds both databases."""
    found = shared["sftp"]
    taken = taken_over(found, "sftp")
    before = ltx_files("sftp", found["before"], found["lineage"])
    after = ltx_files("sftp", found["after"], found["lineage"])
    assert taken and all(after[(0, name)] == before[(0, name)] for name in taken), taken  # bytes, mtime, inode
    refused = [line for line in problems(found["logs"]["old"]) if "cannot rename temporary ltx file" in line]
    target = f'{found["lineage"]}/ltx/0/{taken[0]}\\": sftp: \\"Failure\\" (SSH_FX_FAILURE)'
    assert refused and target in refused[0], problems(found["logs"]["old"])
    assert 'msg="replica sync recovered"' in found["logs"]["old"]
    old_files = {name for (level, name), record in after.items()
                 if level == 0 and "old" in owners(record, name, found["local"])}
    assert [n for n in old_files if max_txid(n) < max_txid(taken[0])], sorted(after)
    assert [n for n in old_files if max_txid(n) > max_txid(taken[-1])], sorted(after)
    assert not any(key for key in found["after"] if not LEVEL_DIR_RE.fullmatch(key))  # no temporary file left
