# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sftp_claims: the command line and the batch scripts a session runs, the private directory it runs from (in a
root-only directory of the collection; what a killed run left is removed by the next session), the paths it refuses,
and how it reads a failed create. A stand-in `sftp` (a shell script) records what it was given
and answers as told; the real server is tests/integration/test_claim_store_sftp.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import claim_store, owned, ownership
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import sftp_claims as sc
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
       "QyNTUxOQAAACBSecretKeyMaterialThatMustNeverLeaveItsFile0000000000000AAAA\n-----END OPENSSH PRIVATE KEY-----")
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILbnXKlAh3HKMDUoS5Gfna8TfG4KeWkv4FkXVc+EpdHQ"
FIELDS = {"type": "sftp", "host": "127.0.0.1:2222", "user": "replica", "host_key": HOST_KEY + " root@server",
          "path": "/srv/backups"}
CLAIMS = "/srv/backups/.dokku-litestream/shop/claims"

# records its argv, its batch script, the private directory's files and modes; answers from answers/<call>.*
FAKE_SFTP = r"""#!/bin/sh
n=$(ls "$FAKE_DIR"/calls | wc -l); n=$((n + 1)); touch "$FAKE_DIR/calls/$n"
printf '%s\n' "$@" > "$FAKE_DIR/argv.$n"
cat > "$FAKE_DIR/script.$n"
stat -c '%a %n' . key known_hosts claim > "$FAKE_DIR/modes.$n" 2>/dev/null
cp key "$FAKE_DIR/key.$n"; cp known_hosts "$FAKE_DIR/known_hosts.$n"; pwd > "$FAKE_DIR/private.$n"
if [ -f "$FAKE_DIR/answers/$n.get" ]; then
  local=$(sed -n 's/^@get "[^"]*" "\(.*\)"$/\1/p' "$FAKE_DIR/script.$n")
  head -c "$(cat "$FAKE_DIR/answers/$n.get")" /dev/zero > "$local"
  stat -c %s "$local" > "$FAKE_DIR/size.$n"
fi
[ -f "$FAKE_DIR/answers/$n.out" ] && cat "$FAKE_DIR/answers/$n.out"
[ -f "$FAKE_DIR/answers/$n.err" ] && cat "$FAKE_DIR/answers/$n.err" >&2
[ -f "$FAKE_DIR/answers/$n.sleep" ] && { sleep 30 & echo $! > "$FAKE_DIR/child"; wait; }
exit $(cat "$FAKE_DIR/answers/$n.rc" 2>/dev/null || echo 0)
"""


class Fake:
    """The stand-in sftp of one test: what each call was given, and what the next calls answer."""

    def __init__(self, root):
        self.root = root
        (root / "calls").mkdir()
        (root / "answers").mkdir()
        self.binary = root / "sftp"
        self.binary.write_text(FAKE_SFTP)
        self.binary.chmod(0o755)

    def answer(self, call, rc=0, out="", err="", get=None, sleep=False):
        for suffix, value in (("rc", str(rc)), ("out", out), ("err", err), ("get", get and str(get)),
                              ("sleep", "1" if sleep else None)):
            if value:
                (self.root / "answers" / ("%d.%s" % (call, suffix))).write_text(value)

    def calls(self):
        return len(os.listdir(str(self.root / "calls")))

    def given(self, what, call=1):
        return (self.root / ("%s.%d" % (what, call))).read_text()

    def script(self, call=1):
        return self.given("script", call).splitlines()


@pytest.fixture(autouse=True)
def sessions(tmp_path_factory, monkeypatch):
    """The sessions' directory of one test (the real one is /run/dokku-sqlite-litestream/sftp)."""
    path = tmp_path_factory.mktemp("run") / "dokku-sqlite-litestream" / "sftp"
    monkeypatch.setattr(sc, "SESSIONS_DIR", str(path))
    return path


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_DIR", str(tmp_path))
    return Fake(tmp_path)


def store(fake, fields=None, credentials=None, timeout=10):
    return sc.SftpClaims(fields or FIELDS, {"ssh_private_key": KEY} if credentials is None else credentials, timeout,
                         binary=str(fake.binary))


@pytest.mark.parametrize("host, destination, port, known", [
    ("127.0.0.1:2222", "127.0.0.1", "2222", "[127.0.0.1]:2222 "),
    ("SFTP.Example.com", "SFTP.Example.com", "22", "sftp.example.com "),
    ("backup.example.com:22", "backup.example.com", "22", "backup.example.com "),
    ("[::1]:2200", "[::1]", "2200", "[::1]:2200 "),
    ("[2001:db8::7]", "[2001:db8::7]", "22", "2001:db8::7 "),
])
def test_a_session_pins_the_host_key_and_puts_no_secret_on_its_command_line(fake, host, destination, port, known):
    assert store(fake, dict(FIELDS, host=host)).names(CLAIMS) == []
    argv = fake.given("argv").splitlines()
    assert not any(line in " ".join(argv) for line in KEY.splitlines()[1:3])
    private = fake.given("private").strip()
    assert argv[:3] == ["-b", "-", "-F"] and argv[-4:] == ["-P", port, "--", destination]
    options = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]
    assert options == ["StrictHostKeyChecking=yes", "UserKnownHostsFile=%s/known_hosts" % private,
                       "GlobalKnownHostsFile=/dev/null", "BatchMode=yes", "IdentitiesOnly=yes", "IdentityAgent=none",
                       "IdentityFile=%s/key" % private, "ConnectTimeout=10", "User=replica", "LogLevel=ERROR"]
    # exactly one known host: this server with this key (the comment after the key dropped)
    assert fake.given("known_hosts") == known + HOST_KEY + "\n"
    assert fake.given("key") == KEY + "\n"
    assert fake.given("modes").split("\n")[:2] == ["700 .", "600 key"]
    assert not os.path.exists(private)  # removed with the key in it


def test_the_batch_scripts_list_read_and_create_create_only(fake):
    claims = store(fake)
    claims.names(CLAIMS)
    assert fake.script(1) == ['@cd "%s"' % CLAIMS, "@ls -1a"]
    fake.answer(2, out=".\n..\n0000000001.json\n", get=20)
    assert claims.read(CLAIMS + "/0000000001.json") == b"\0" * 20
    local = fake.given("private", 2).strip() + "/claim"
    assert fake.script(2) == ['@cd "%s"' % CLAIMS, "@ls -1a", '@get "0000000001.json" "%s"' % local]
    assert claims.create(CLAIMS + "/0000000002.json", b'{"epoch": 2}\n') is True
    script = fake.script(3)
    temp = script[-1].split('"')[1]
    assert temp.startswith(CLAIMS + "/.tmp-0000000002.json-") and len(temp) == len(CLAIMS) + 34
    assert script == ['-@mkdir "/srv"', '-@mkdir "/srv/backups"', '-@mkdir "/srv/backups/.dokku-litestream"',
                      '-@mkdir "/srv/backups/.dokku-litestream/shop"', '-@mkdir "%s"' % CLAIMS,
                      '@put -f "%s/claim" "%s"' % (fake.given("private", 3).strip(), temp),
                      '@rename -l "%s" "%s/0000000002.json"' % (temp, CLAIMS)]
    assert fake.calls() == 3  # a create that worked needs no second look
    # the claim is no secret: put gives the remote file the local file's mode, which others of the replica read
    assert "644 claim" in fake.given("modes", 3).splitlines()


def test_a_relative_path_stays_relative_and_a_leading_dash_is_no_flag(fake):
    claims = store(fake, dict(FIELDS, path="-backups"))
    claims.names("-backups/x")
    assert fake.script() == ['@cd "./-backups/x"', "@ls -1a"]
    assert sc.levels("backups/a/b") == ["backups", "backups/a", "backups/a/b"]
    assert sc.quoted("a b/c'd#e") == '"a b/c\'d#e"'


@pytest.mark.parametrize("path", ["/srv/a\nput /etc/shadow x", '/srv/a"b', "/srv/a\\b", "/srv/*", "/srv/a?",
                                  "/srv/[ab]", "/srv/{a,b}", "/srv/a\tb", "/srv/a\rb", "/srv/a\x00b"])
def test_a_path_the_batch_script_cannot_carry_is_refused_before_any_session(fake, path):
    with pytest.raises(claim_store.Unsupported, match="replica.path: ownership claims on an sftp replica go through"):
        store(fake).create(path + "/claims/0000000001.json", b"{}")
    with pytest.raises(claim_store.Unsupported):
        store(fake, dict(FIELDS, path=path))
    assert fake.calls() == 0


def test_what_a_store_refuses_to_start_with(fake):
    with pytest.raises(claim_store.Unsupported, match="ssh_private_key only for now .*this set has only sftp_password"):
        store(fake, credentials={"sftp_password": "hunter2"})
    with pytest.raises(v.InvalidValue, match="replica.host_key: 'AAAAC3Nz' is not a public key line"):
        store(fake, dict(FIELDS, host_key="AAAAC3Nz"))
    with pytest.raises(claim_store.Unsupported, match="replica.path: ownership claims .* cannot carry ''"):
        store(fake, dict(FIELDS, path=""))
    with pytest.raises(claim_store.Unsupported, match="replica.user: 'a b' cannot be given to ssh"):
        store(fake, dict(FIELDS, user="a b"))
    with pytest.raises(v.InvalidValue, match="replica.host"):
        store(fake, dict(FIELDS, host="[::1"))


def test_the_store_of_an_sftp_replica_is_this_one(monkeypatch):
    # store_for is kept on disk for the other unit tests (tests/unit/conftest.py), after the real one ran
    with pytest.raises(claim_store.Unsupported, match="ssh_private_key only for now .*this set has only sftp_password"):
        claim_store.store_for(FIELDS, {"sftp_password": "hunter2"})
    monkeypatch.setattr(sc.shutil, "which", lambda name: None)
    with pytest.raises(claim_store.StoreFailed, match="the sftp client .OpenSSH. is not installed"):
        claim_store.store_for(FIELDS, {"ssh_private_key": KEY})


def test_a_missing_directory_or_file_is_none_and_anything_else_fails(fake):
    claims = store(fake)
    fake.answer(1, rc=1, err="realpath %s: No such file\r\n" % CLAIMS)
    fake.answer(2, rc=1, err="stat remote: No such file or directory\r\n")
    fake.answer(3, rc=1, out=".\n..\n", err='File "%s/0000000001.json" not found.\r\n' % CLAIMS)
    fake.answer(4, rc=1, out=".\n..\n0000000001.json\n", err='File "%s/0000000001.json" not found.\r\n' % CLAIMS)
    fake.answer(5, rc=1, err="realpath %s: Permission denied\r\n" % CLAIMS)
    assert claims.names(CLAIMS) == []
    assert claims.read(CLAIMS + "/0000000001.json") is None
    assert claims.read(CLAIMS + "/0000000001.json") is None
    # listed, yet get finds nothing: not "missing"
    with pytest.raises(claim_store.StoreFailed, match="read %s/0000000001.json: File .* not found.$" % CLAIMS):
        claims.read(CLAIMS + "/0000000001.json")
    with pytest.raises(claim_store.StoreFailed, match="list %s: realpath .*: Permission denied$" % CLAIMS):
        claims.names(CLAIMS)


def test_a_read_is_bounded_by_the_file_size_limit(fake):
    fake.answer(1, get=1000000)
    data = store(fake).read(CLAIMS + "/0000000001.json")
    assert len(data) == ownership.MAX_CLAIM_BYTES + 1
    # sh's ulimit -f stopped the copy at the limit (in 512-byte blocks), far from the million bytes asked
    assert ownership.MAX_CLAIM_BYTES < int(fake.given("size")) <= sc.FSIZE_BLOCKS * 512


RENAME_REFUSED = 'remote rename "%s/.tmp-x" to "%s/0000000001.json": Failure\r\n' % (CLAIMS, CLAIMS)


@pytest.mark.parametrize("err, listed, outcome", [
    (RENAME_REFUSED, True, False),                   # refused, and the name exists: another create made it
    ("Connection closed\r\n", True, None),           # the session broke off: the rename may have been ours
    (RENAME_REFUSED.replace("Failure", "Permission denied"), False, "remote rename .*: Permission denied$"),
    ('dest open "%s/.tmp-x": Permission denied\r\n' % CLAIMS, False, "dest open .*: Permission denied$"),
])
def test_a_failed_create_is_decided_by_looking_and_its_temporary_file_removed(fake, err, listed, outcome):
    fake.answer(1, rc=1, err="remote mkdir \"/srv\": Failure\r\n" + err)
    fake.answer(2, out=".\n..\n" + ("0000000001.json\n" if listed else ""),
                err='remote delete "%s/.tmp-x": No such file or directory\r\n' % CLAIMS)
    claims = store(fake)
    if isinstance(outcome, str):
        with pytest.raises(claim_store.StoreFailed, match="create %s/0000000001.json: %s" % (CLAIMS, outcome)):
            claims.create(CLAIMS + "/0000000001.json", b"{}")
    else:
        assert claims.create(CLAIMS + "/0000000001.json", b"{}") is outcome
    temp = fake.script(1)[-1].split('"')[1]
    assert fake.script(2) == ['-@rm "%s"' % temp, '@cd "%s"' % CLAIMS, "@ls -1a"]


def test_a_failed_create_that_cannot_be_looked_at_is_a_lost_answer(fake):
    fake.answer(1, rc=255, err="Connection closed\r\n")
    fake.answer(2, rc=255, err="ssh: connect to host 127.0.0.1 port 2222: Connection refused\r\nConnection closed\r\n")
    assert store(fake).create(CLAIMS + "/0000000001.json", b"{}") is None
    fake.answer(3, rc=1, err=RENAME_REFUSED)
    fake.answer(4, rc=1, err="stat remote: No such file or directory\r\n")  # no directory: nothing was created
    with pytest.raises(claim_store.StoreFailed, match="Failure$"):
        store(fake).create(CLAIMS + "/0000000001.json", b"{}")


def test_the_probe_refuses_a_server_that_replaces(fake):
    fake.answer(2, rc=1, err=RENAME_REFUSED)
    fake.answer(3, out="0000000001.json\n.create-only-probe\n")
    store(fake).probe(CLAIMS)  # created, then refused: create-only
    assert fake.script(1)[-1].endswith('"%s/.create-only-probe"' % CLAIMS)
    with pytest.raises(claim_store.Unsupported, match="sftp server replica@127.0.0.1:2222 accepted a second create"):
        store(fake).probe(CLAIMS)  # calls 4 and 5 both succeed


def test_failures_speak_in_ssh_words_never_with_the_key(fake):
    fake.answer(1, rc=255, err="Host key for [127.0.0.1]:2222 has changed and you have requested strict checking."
                               "\r\nHost key verification failed.\r\nConnection closed\r\n")
    fake.answer(2, rc=255, err='Load key "/tmp/dsl-sftp-x/key": error in libcrypto\r\n'
                               'replica@127.0.0.1: Permission denied (publickey).\r\nConnection closed\r\n')
    fake.answer(3, rc=1, err="odd server: %s\r\n" % KEY.splitlines()[2])
    claims = store(fake)
    with pytest.raises(claim_store.StoreFailed, match=r"^sftp replica@127.0.0.1:2222: list %s: Host key verification "
                                                      r"failed\.$" % CLAIMS):
        claims.names(CLAIMS)
    with pytest.raises(claim_store.StoreFailed, match=r"Permission denied \(publickey\)\. \(Load key .*libcrypto\)$"):
        claims.names(CLAIMS)
    with pytest.raises(claim_store.StoreFailed) as failed:
        claims.names(CLAIMS)
    assert str(failed.value).endswith("odd server: ********") and "Secret" not in str(failed.value)


def test_a_connection_dropped_before_the_protocol_is_tried_again(fake, monkeypatch):
    monkeypatch.setattr(sc.time, "sleep", lambda seconds: None)
    dropped = "kex_exchange_identification: read: Connection reset by peer\r\nConnection closed\r\n"
    fake.answer(1, rc=255, err=dropped)
    fake.answer(2, rc=255, err=dropped)
    fake.answer(3, out="0000000001.json\n")
    assert store(fake).names(CLAIMS) == ["0000000001.json"]
    for call in range(4, 4 + sc.CONNECT_ATTEMPTS):
        fake.answer(call, rc=255, err=dropped)
    with pytest.raises(claim_store.StoreFailed, match="kex_exchange_identification: read: Connection reset by peer$"):
        store(fake).names(CLAIMS)
    assert fake.calls() == 3 + sc.CONNECT_ATTEMPTS  # a refusal after the exchange is never tried again
    fake.answer(fake.calls() + 1, rc=255, err="replica@127.0.0.1: Permission denied (publickey).\r\n")
    with pytest.raises(claim_store.StoreFailed):
        store(fake).names(CLAIMS)
    assert fake.calls() == 4 + sc.CONNECT_ATTEMPTS


def test_a_session_that_outlasts_its_bound_is_killed_with_everything_it_started(fake):
    fake.answer(1, sleep=True)
    started = time.time()
    with pytest.raises(claim_store.StoreFailed, match="^sftp replica@127.0.0.1:2222: no answer within 3s$"):
        store(fake, timeout=1).names(CLAIMS)
    assert time.time() - started < 10
    child = int((fake.root / "child").read_text())
    deadline = time.time() + 5
    while time.time() < deadline and _running(child):
        time.sleep(0.05)
    assert not _running(child)
    assert not os.path.exists(fake.given("private").strip())


def _running(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().split(") ")[1][0] not in "ZX"
    except (IOError, OSError):
        return False


# a run of the module that a SIGKILL ends while its session runs: argv = sessions directory, sftp, [fields, key]
KILLED_RUN = """
import json, sys
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import sftp_claims as sc
sc.SESSIONS_DIR = sys.argv[1]
fields, key = json.loads(sys.argv[3])
sc.SftpClaims(fields, {"ssh_private_key": key}, 10, binary=sys.argv[2]).names("/srv/backups/x")
"""


def test_a_session_runs_in_a_root_only_directory_of_the_collection_and_leaves_nothing(fake, sessions):
    assert store(fake).names(CLAIMS) == []
    private = fake.given("private").strip()
    assert os.path.dirname(private) == str(sessions) and not private.startswith(tempfile.gettempdir() + "/dsl-")
    for directory in (sessions, sessions.parent):
        st = os.lstat(str(directory))
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()
    assert owned.problem(str(sessions), owned.SFTP_SESSIONS) is None  # marked as ours
    assert os.listdir(str(sessions)) == [owned.MARKER]  # the session's directory and its key are gone


def stale_session(sessions, hold):
    """A session directory as a run leaves it, its key inside; with its flock still held when `hold`."""
    sc.sessions_dir()
    path, held = owned.make_temp(str(sessions), sc.SESSION_PREFIX, owned.SFTP_SESSION, hold=True)
    with open(os.path.join(path, sc.KEY_FILE), "w") as handle:
        handle.write(KEY)
    if not hold:
        os.close(held)  # what the kernel does when the run is killed
        held = None
    return path, held


def test_a_key_left_by_a_killed_session_is_removed_when_the_next_session_starts(fake, sessions):
    path, _held = stale_session(sessions, hold=False)
    store(fake).names(CLAIMS)
    assert not os.path.exists(path)
    assert fake.given("private").strip() != path


def test_a_session_still_running_elsewhere_is_left_alone(fake, sessions):
    path, held = stale_session(sessions, hold=True)
    try:
        store(fake).names(CLAIMS)
        with open(os.path.join(path, sc.KEY_FILE)) as handle:
            assert handle.read() == KEY  # another run's key, while it runs
    finally:
        os.close(held)
    store(fake).names(CLAIMS)  # that run ended: the next session removes what it left
    assert not os.path.exists(path)


def test_a_run_killed_by_sigkill_leaves_its_key_only_until_the_next_session(fake, sessions):
    fake.answer(1, sleep=True)
    argv = [sys.executable, "-c", KILLED_RUN, str(sessions), str(fake.binary), json.dumps([FIELDS, KEY])]
    run = subprocess.Popen(argv, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        deadline = time.time() + 30
        while not (fake.root / "child").exists() and run.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert (fake.root / "child").exists(), "the killed run's session never started"
    finally:
        run.kill()
        run.wait()
        os.killpg(os.getpgid(int((fake.root / "child").read_text())), signal.SIGKILL)  # its stand-in sftp too
    private = fake.given("private").strip()
    assert os.path.isfile(os.path.join(private, sc.KEY_FILE))  # nothing of the killed run removed it
    store(fake).names(CLAIMS)
    assert not os.path.exists(private)


@pytest.mark.parametrize("plant, reason", [
    ("link", r"refusing to use {sessions} as the sftp sessions directory: it is a symbolic link or not a directory"),
    ("foreign", r"refusing to use {sessions} as the sftp sessions directory: it has no marker"),
    ("other kind", r"refusing to use {sessions} as the sftp sessions directory: its marker names it 'drill run "
                   r"directory'"),
    ("link above", r"refusing {above} \(it would hold the sftp sessions' private keys\): it is a symbolic link, which "
                   r"is not followed"),
    ("open above", r"refusing {above} \(it would hold .*\): its mode 0777 lets others write in it"),
])
def test_a_planted_sessions_directory_is_refused_and_no_key_is_written(fake, sessions, tmp_path, plant, reason):
    outside = tmp_path / "outside"
    outside.mkdir()
    above = sessions.parent
    if plant == "link":
        above.mkdir(mode=0o700)
        sessions.symlink_to(outside)
    elif plant == "foreign":
        above.mkdir(mode=0o700)
        sessions.mkdir(mode=0o700)
    elif plant == "other kind":
        above.mkdir(mode=0o700)
        owned.make(str(sessions), 0o700, os.geteuid(), os.getegid(), owned.DRILL_RUN)
    elif plant == "link above":
        above.symlink_to(outside)
    else:
        above.mkdir()
        above.chmod(0o777)
    with pytest.raises(claim_store.StoreFailed, match=reason.format(sessions=sessions, above=above)) as refused:
        store(fake).names(CLAIMS)
    assert "No key was written" in str(refused.value) and "run again" in str(refused.value)
    assert fake.calls() == 0 and os.listdir(str(outside)) == []
    if plant in ("foreign", "other kind"):
        assert sorted(os.listdir(str(sessions))) == ([owned.MARKER] if plant == "other kind" else [])
