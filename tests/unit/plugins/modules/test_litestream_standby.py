# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_standby's decisions against a fake docker whose follower writes what Litestream's follow mode writes:
a real SQLite file with page 1 in rollback-journal mode, and `<name>-txid` (replica.go, WriteTXIDFile)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shlex
import sqlite3
import stat

import pytest


from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import standby_core
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_standby

from ..module_utils.test_standby_core import as_follow_mode_writes_it, header, write_db
from .conftest import answer_commands, assert_no_secret, run_module, snapshot

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY$standby'x"
APP_UID = 1234
TXID = "0000000000000005"


class FakeDocker:
    """The docker CLI for one follower: `run --detach` starts it (running, its mounts and labels recorded) and
    calls ``on_start``; `container stop` ends it with ``stop_exit``; inspect, rm and logs answer from that."""

    def __init__(self):
        self.calls = []
        self.containers = {}  # name -> {"running", "exit", "labels", "mounts", "output"}
        self.on_start = None  # what the follower does once it runs: (fake, container) -> None
        self.on_stop = None
        self.stop_exit = 0
        self.configs = []  # (config dir's mode, {file: (mode, text)}) as each run found them

    def __call__(self, module, argv, **kwargs):
        tail = list(argv[1:])
        self.calls.append(tail)
        if tail[:1] == ["info"]:
            return 0, "[]\n", ""
        if tail[:2] == ["run", "--detach"]:
            return self.run(tail)
        name = tail[-1]
        container = self.containers.get(name)
        if container is None and tail[:2] in (["container", "inspect"], ["container", "stop"], ["container", "rm"]):
            return 1, "[]\n" if tail[1] == "inspect" else "", "Error: No such container: %s\n" % name
        if tail[:2] == ["container", "inspect"]:
            state = {"Running": container["running"], "Status": "running" if container["running"] else "exited",
                     "ExitCode": 0 if container["running"] else container["exit"]}
            return 0, json.dumps([{"Name": "/" + name, "State": state, "Config": {"Labels": container["labels"]}}]), ""
        if tail[:2] == ["container", "stop"]:
            container.update(running=False, exit=self.stop_exit)
            if self.on_stop:
                self.on_stop(self, container)
            return 0, name + "\n", ""
        if tail[:2] == ["container", "rm"]:
            if container["running"] and "--force" not in tail:
                return 1, "", "Error response from daemon: cannot remove container %s: container is running\n" % name
            del self.containers[name]
            return 0, name + "\n", ""
        if tail[:2] == ["container", "logs"]:
            return 0, container["output"], ""
        raise AssertionError("unexpected docker call %r" % (tail,))

    def run(self, tail):
        assert "--env" not in tail and "-e" not in tail and "--env-file" not in tail
        assert tail[tail.index("--restart") + 1] == "no" and tail[tail.index("--entrypoint") + 1] == "/bin/sh"
        mounts = dict(reversed(tail[i + 1].split(":")[:2]) for i, arg in enumerate(tail) if arg == "-v")
        labels = dict(tail[i + 1].split("=", 1) for i, arg in enumerate(tail) if arg == "--label")
        config_dir = mounts["/etc/litestream"]
        files = dict((entry, (stat.S_IMODE(os.stat(os.path.join(config_dir, entry)).st_mode),
                              open(os.path.join(config_dir, entry)).read())) for entry in os.listdir(config_dir))
        self.configs.append((stat.S_IMODE(os.stat(config_dir).st_mode), files))
        words = shlex.split(tail[tail.index("-c") + 1].split("exec ", 1)[1])
        assert words[:2] == ["/usr/local/bin/litestream", "restore"] and "-f" in words
        out = words[words.index("-o") + 1]
        container = {"running": True, "exit": None, "labels": labels, "mounts": mounts, "output": "",
                     "interval": words[words.index("-follow-interval") + 1],
                     "db": os.path.join(mounts["/restore"], out[len("/restore/"):])}
        self.containers[tail[tail.index("--name") + 1]] = container
        if self.on_start:
            self.on_start(self, container)
        return 0, "f00d\n", ""


def follows(rows, txid):
    """A follower that restores `rows` rows at `txid` once it runs."""
    def on_start(fake, container):
        follow_to(container["db"], rows, txid)
    return on_start


def follow_to(db, rows, txid):
    """What follow mode leaves in the standby directory at txid: the database (page 1 in rollback-journal mode) and
    `<db>-txid`."""
    if os.path.exists(db):
        os.unlink(db)
    write_db(db, rows)
    as_follow_mode_writes_it(db)
    write_txid(db, txid)


def write_txid(db, txid):
    with open(db + "-txid.tmp", "w") as handle:
        handle.write("%016x\n" % txid)
    os.rename(db + "-txid.tmp", db + "-txid")


@pytest.fixture
def docker(monkeypatch):
    return answer_commands(monkeypatch, FakeDocker())


class Clock:
    """standby_core's time: each sleep moves the clock on at once and lets the follower take a step."""

    def __init__(self):
        self.now = 1000000.0
        self.steps = []  # callables, one per sleep, in order
        self.sleeps = 0

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps += 1
        self.now += seconds
        if self.steps:
            self.steps.pop(0)()


@pytest.fixture(autouse=True)
def clock(monkeypatch):  # no test of this file sleeps for real
    fake = Clock()
    monkeypatch.setattr(standby_core, "time", fake)
    return fake


@pytest.fixture
def roots(tmp_path):
    setdir = tmp_path / "credentials" / "lab"
    setdir.mkdir(parents=True)
    (setdir / "credentials.json").write_text(json.dumps({"access_key_id": "AKIALAB", "secret_access_key": SECRET}))
    dest = tmp_path / "srv" / "blog--db"
    dest.mkdir(parents=True)
    os.chown(str(dest), APP_UID, APP_UID)  # the app's own directory: the standby goes next to it, not into it
    return tmp_path


def args(roots, **overrides):
    base = {"credentials_root": str(roots / "credentials"), "dest": str(roots / "srv" / "blog--db"),
            "database": "app.sqlite3", "owner": APP_UID, "group": APP_UID, "mode": "0640",
            "replica": {"type": "s3", "bucket": "bkt", "path": "blog", "endpoint": "http://127.0.0.1:9000",
                        "credentials": "lab"}}
    base.update(overrides)
    return base


def target(roots):
    return str(roots / "srv" / "blog--db" / "app.sqlite3")


def standby_dir(roots):
    return roots / "srv" / standby_core.dir_name(target(roots))


def container(roots):
    return standby_core.container_name(target(roots))


def rows(path):
    conn = sqlite3.connect("file:%s?immutable=1" % path, uri=True)
    try:
        return conn.execute("select count(*) from events").fetchone()[0]
    finally:
        conn.close()


def settled(top):
    """snapshot() without directory mtimes: a directory that came and went leaves only those behind."""
    return dict((path, facts if facts[4] is not None else facts[:3]) for path, facts in snapshot(top).items())


def verbs(calls):
    """Each docker call by its first two words ('container inspect', 'run --detach')."""
    return [" ".join(call[:2]) for call in calls]


def no_secret_anywhere(docker, *results):
    for call in docker.calls:
        assert not any(SECRET in arg for arg in call)
    for result in results:
        assert_no_secret(result, SECRET)


def start(roots, docker, count=30, txid=5):
    """A standby made by the module's own following run, its follower at txid with `count` rows."""
    docker.on_start = follows(count, txid)
    result = run_module(litestream_standby.main, args(roots))
    assert result["changed"] is True and result["following"] is True
    return result


# --------------------------------------------------------------------------- refusals before any docker command
HOSTILE_DEST = [
    ({"dest": "/srv/../etc"}, "dest: '/srv/../etc' must not contain '..'"),
    ({"dest": "/srv/db\n"}, "dest: '/srv/db\\n' must not contain control characters (a newline, a tab, ...)"),
    ({"dest": "srv/db"}, "dest: 'srv/db' must be an absolute path (starting with '/'; '~' and '$' are not expanded)"),
]


@pytest.mark.parametrize("overrides, message", [
    ({"image": "litestream/litestream:0.3.13"},
     "standby of {target}: image: litestream/litestream:0.3.13 runs Litestream 0.3, which has no follow mode "
     "(Litestream 0.5.9 added `restore -f`)"),
    ({"txid": TXID}, "standby of {target}: txid: only state=promoted takes a TXID (follow mode cannot stop at one)"),
    ({"txid": TXID, "state": "absent"},
     "standby of {target}: txid: only state=promoted takes a TXID (follow mode cannot stop at one)"),
    ({"state": "promoted"}, "state is promoted but all of the following are missing: txid"),
    ({"state": "promoted", "txid": "zz"}, "standby of {target}: txid 'zz' is not a hexadecimal transaction id"),
    ({"follow_interval": 0}, "standby of {target}: " + v.BOUNDS["follow_interval"].refusal("follow_interval", 0)),
    ({"follow_interval": 86401},
     "standby of {target}: " + v.BOUNDS["follow_interval"].refusal("follow_interval", 86401)),
    ({"wait_timeout": 0}, "standby of {target}: " + v.BOUNDS["wait_timeout"].refusal("wait_timeout", 0)),
    ({"wait_timeout": 86401}, "standby of {target}: " + v.BOUNDS["wait_timeout"].refusal("wait_timeout", 86401)),
    ({"timestamp": "2026-11-25T12:00:00Z"}, "Unsupported parameters for"),  # a standby follows the latest
] + HOSTILE_DEST)
def test_bad_options_are_refused_before_any_docker_command(roots, docker, overrides, message):
    before = snapshot(roots)
    result = run_module(litestream_standby.main, args(roots, **overrides), fail=True)
    assert result["msg"].startswith(message.format(target=target(roots))), result["msg"]
    assert docker.calls == [] and snapshot(roots) == before
    assert result.get("changed", False) is False  # AnsibleModule's own refusals carry no result


# --------------------------------------------------------------------------- following
def test_following_starts_a_follower_and_waits_for_its_first_restore(roots, docker):
    docker.on_start = follows(30, 3)
    result = run_module(litestream_standby.main, args(roots, follow_interval=2), diff=True)
    here = standby_dir(roots)
    assert result["changed"] is True and result["following"] is True and result["restored"] is False
    assert result["txid"] == "0000000000000003"
    assert result["standby_dir"] == str(here) and result["container"] == container(roots)
    assert result["diff"] == {"before": {"path": target(roots), "following": False, "txid": None},
                              "after": {"path": target(roots), "following": True, "txid": "0000000000000003"}}
    # one look (also the diff's before), the start; the first poll found the TXID, so no look in between
    assert verbs(docker.calls) == ["container inspect", "run --detach"]
    follower = docker.containers[container(roots)]
    assert follower["interval"] == "2s" and follower["mounts"]["/restore"] == str(here)
    assert follower["labels"][standby_core.TARGET_LABEL] == target(roots)
    # the standby directory is root's alone, next to dest (the app's), with the configuration inside it
    st = os.stat(str(here))
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700)
    assert follower["mounts"]["/etc/litestream"] == str(here / ".config")
    config_mode, files = docker.configs[0]
    assert config_mode == 0o700 and sorted(files) == ["credentials.env", "litestream.yml"]
    assert files["credentials.env"][0] == 0o600 and files["litestream.yml"][0] == 0o600
    assert "LITESTREAM_SECRET_ACCESS_KEY=" + SECRET in shlex.split(files["credentials.env"][1])  # the key's one way in
    assert os.listdir(str(roots / "srv" / "blog--db")) == []  # dest is not touched while following
    no_secret_anywhere(docker, result)


def test_following_again_leaves_the_running_follower_alone(roots, docker):
    start(roots, docker)
    docker.calls[:] = []
    before = snapshot(roots)
    result = run_module(litestream_standby.main, args(roots))
    assert result["changed"] is False and result["following"] is True and result["txid"] == TXID
    assert verbs(docker.calls) == ["container inspect"] and result["actions"] == []
    assert snapshot(roots) == before


@pytest.mark.parametrize("why", ["stopped", "other_interval"])
def test_a_stopped_follower_or_one_of_other_values_is_replaced_by_a_fresh_one(roots, docker, why):
    start(roots, docker, txid=5)
    if why == "stopped":  # a restarted follower past the snapshot would be refused by Litestream: never restarted
        docker.containers[container(roots)].update(running=False, exit=1)
    overrides = {"follow_interval": 5} if why == "other_interval" else {}
    docker.on_start = follows(40, 6)
    docker.calls[:] = []
    result = run_module(litestream_standby.main, args(roots, **overrides))
    assert result["changed"] is True and result["txid"] == "0000000000000006"
    assert verbs(docker.calls) == ["container inspect", "container rm", "run --detach"]
    assert docker.calls[1] == ["container", "rm", "--force", container(roots)]
    assert docker.containers[container(roots)]["interval"] == "%ds" % overrides.get("follow_interval", 1)


def test_a_follower_that_stops_before_its_first_restore_is_removed_with_its_directory(roots, docker):
    def dies(fake, follower):
        follower.update(running=False, exit=1, output="Error: cannot fetch generations: access denied\n")
    docker.on_start = dies
    before = settled(roots)
    result = run_module(litestream_standby.main, args(roots), fail=True)
    assert result["msg"] == ("standby of %s: the follower stopped before its first restore (status exited, exit code "
                             "1): Error: cannot fetch generations: access denied" % target(roots))
    assert result["following"] is False and container(roots) not in docker.containers
    assert verbs(docker.calls)[-2:] == ["container inspect", "container rm"]
    assert not standby_dir(roots).exists() and settled(roots) == before
    no_secret_anywhere(docker, result)


def test_a_follower_that_fails_removes_the_dest_this_run_made_too(roots, docker):
    def dies(fake, follower):
        follower.update(running=False, exit=1, output="Error: no matching backup files available\n")
    docker.on_start = dies
    dest = roots / "srv" / "new" / "blog--db"
    before = settled(roots)
    result = run_module(litestream_standby.main, args(roots, dest=str(dest)), fail=True)
    assert "the follower stopped before its first restore" in result["msg"]
    # dest and its missing parent were made for the follower and are gone with it; what existed stays
    assert not (roots / "srv" / "new").exists() and settled(roots) == before


def test_a_follower_that_never_restores_runs_out_of_wait_timeout_and_is_removed(roots, docker, clock):
    docker.on_start = lambda fake, follower: None  # running, but no <name>-txid ever
    result = run_module(litestream_standby.main, args(roots, wait_timeout=3), fail=True)
    assert result["msg"] == ("standby of %s: the follower did not reach its first restore within wait_timeout (3 s); "
                             "it is at txid none yet" % target(roots))
    assert 15 <= clock.sleeps <= 16  # a POLL (0.2 s) at a time, until the 3 s ran out
    assert verbs(docker.calls).count("container inspect") >= 3  # it looked whether the follower still runs
    assert container(roots) not in docker.containers and not standby_dir(roots).exists()


def test_a_missing_credential_set_fails_and_removes_what_the_run_made(roots, docker):
    replica = dict(args(roots)["replica"], credentials="nope")
    before = settled(roots)
    result = run_module(litestream_standby.main, args(roots, replica=replica), fail=True)
    assert "credential set 'nope' not found" in result["msg"]
    assert verbs(docker.calls) == ["container inspect", "container inspect"]  # no follower started
    assert not standby_dir(roots).exists() and settled(roots) == before


# --------------------------------------------------------------------------- promoted
def test_promoted_without_a_standby_fails_and_changes_nothing(roots, docker):
    before = snapshot(roots)
    result = run_module(litestream_standby.main, args(roots, state="promoted", txid=TXID), fail=True)
    assert result["msg"] == ("standby of %s: no standby follows the replica into it; start one with state=following "
                             "first, or restore with litestream_restore" % target(roots))
    assert verbs(docker.calls) == ["container inspect"]
    assert snapshot(roots) == before and result["changed"] is False and result["restored"] is False


def test_promoted_refuses_a_follower_past_the_txid_and_puts_nothing_in_place(roots, docker):
    start(roots, docker, txid=7)
    dest = roots / "srv" / "blog--db"
    write_db(dest / "app.sqlite3", 2)
    before = snapshot(dest)
    docker.calls[:] = []
    result = run_module(litestream_standby.main, args(roots, state="promoted", txid=TXID), fail=True)
    assert result["msg"] == ("standby of %s: the follower reached txid 0000000000000007, past %s: the replica holds "
                             "transactions after the one to promote at; nothing was put in place"
                             % (target(roots), TXID))
    assert verbs(docker.calls) == ["container inspect"]  # never stopped
    assert docker.containers[container(roots)]["running"] is True
    assert snapshot(dest) == before and rows(str(dest / "app.sqlite3")) == 2
    assert sorted(os.listdir(str(standby_dir(roots)))) == [".config", "app.sqlite3", "app.sqlite3-txid"]


def test_promoted_puts_the_followed_database_in_place(roots, docker):
    start(roots, docker, count=30, txid=5)
    dest = roots / "srv" / "blog--db"
    write_db(dest / "app.sqlite3", 2)  # the database an earlier restore put there
    docker.calls[:] = []
    result = run_module(litestream_standby.main, args(roots, state="promoted", txid=TXID,
                                                      verify={"tables": ["events"], "min_rows": {"events": 30}}),
                        diff=True)
    placed = dest / "app.sqlite3"
    assert result["changed"] is True and result["restored"] is True and result["following"] is False
    assert result["position"] == TXID and result["txid"] == TXID
    assert result["tables"] == {"events": 30} and result["integrity"] == "ok"
    assert result["journal_mode_fixed"] is True and result["size"] == os.path.getsize(str(placed))
    assert result["diff"]["after"] == {"path": target(roots), "following": False, "txid": TXID}
    # one look (also the diff's before), the stop, its exit code, the removal
    assert verbs(docker.calls) == ["container inspect", "container stop", "container inspect", "container rm"]
    assert docker.calls[1] == ["container", "stop", "--time", "30", container(roots)]
    assert container(roots) not in docker.containers
    # the followed database in WAL mode, as a cold restore leaves it, with the requested owner and mode
    assert header(str(placed))[18:20] == b"\x02\x02" and rows(str(placed)) == 30
    st = os.stat(str(placed))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (APP_UID, APP_UID, 0o640)
    # the old database moved aside, never deleted
    (backup,) = result["backup"]
    assert backup.startswith(str(dest / "app.sqlite3.")) and backup.endswith(".bak") and rows(backup) == 2
    assert sorted(os.listdir(str(dest))) == sorted(["app.sqlite3", os.path.basename(backup)])
    # the standby directory and its configuration (the keys, credentials.env 0600 while it followed) are gone
    assert docker.configs[0][1]["credentials.env"][0] == 0o600
    assert not standby_dir(roots).exists()
    assert sorted(os.listdir(str(roots / "srv"))) == ["blog--db"]
    no_secret_anywhere(docker, result)


def test_promoted_waits_for_the_follower_to_reach_the_txid(roots, docker, clock):
    start(roots, docker, txid=3)
    db = str(standby_dir(roots) / "app.sqlite3")
    clock.steps = [lambda: follow_to(db, 35, 4), lambda: None, lambda: follow_to(db, 40, 5)]
    result = run_module(litestream_standby.main, args(roots, state="promoted", txid=TXID))
    assert result["restored"] is True and result["tables"] == {"events": 40} and clock.sleeps == 3


def test_promoted_refuses_a_follower_that_does_not_exit_0_when_stopped(roots, docker):
    start(roots, docker, txid=5)
    docker.stop_exit = 137
    docker.containers[container(roots)]["output"] = "signal: killed\n"
    result = run_module(litestream_standby.main, args(roots, state="promoted", txid=TXID), fail=True)
    assert result["msg"] == ("standby of %s: the follower exited 137 when it was stopped, not 0: signal: killed; "
                             "nothing was put in place" % target(roots))
    assert os.listdir(str(roots / "srv" / "blog--db")) == [] and standby_dir(roots).exists()


def test_promoted_refuses_a_txid_that_moved_while_the_follower_stopped(roots, docker):
    start(roots, docker, txid=5)
    docker.on_stop = lambda fake, follower: write_txid(follower["db"], 6)  # one more file applied on its way out
    result = run_module(litestream_standby.main, args(roots, state="promoted", txid=TXID), fail=True)
    assert result["msg"].endswith("the follower's TXID changed to 0000000000000006 while it stopped; nothing was put "
                                  "in place")
    assert os.listdir(str(roots / "srv" / "blog--db")) == []


def test_promoted_refuses_a_follower_that_is_not_running(roots, docker):
    start(roots, docker, txid=5)
    docker.containers[container(roots)].update(running=False, exit=1)
    before = snapshot(roots)
    result = run_module(litestream_standby.main, args(roots, state="promoted", txid=TXID), fail=True)
    assert "its follower %s is not running (status exited, exit code 1)" % container(roots) in result["msg"]
    assert snapshot(roots) == before


def test_a_standby_directory_this_module_did_not_make_is_neither_used_nor_removed(roots, docker):
    """Someone's directory of the standby's name (not root-only): refused, whatever the state."""
    here = standby_dir(roots)
    here.mkdir(mode=0o755)
    (here / "app.sqlite3-txid").write_text(TXID + "\n")
    before = snapshot(roots)
    for state, extra in (("promoted", {"txid": TXID}), ("absent", {}), ("following", {})):
        result = run_module(litestream_standby.main, args(roots, state=state, **extra), fail=True)
        assert result["msg"] == ("standby of %s: %s is not the root-only directory this module makes (uid 0, mode "
                                 "0755); refusing to use or remove it" % (target(roots), here))
    assert snapshot(roots) == before and all(call[:2] == ["container", "inspect"] for call in docker.calls)


# --------------------------------------------------------------------------- absent
def test_absent_removes_the_follower_and_its_directory_then_is_unchanged(roots, docker):
    start(roots, docker)
    docker.calls[:] = []
    result = run_module(litestream_standby.main, args(roots, state="absent"))
    assert result["changed"] is True and result["following"] is False
    assert docker.calls == [["container", "inspect", container(roots)],
                            ["container", "rm", "--force", container(roots)]]
    assert container(roots) not in docker.containers and not standby_dir(roots).exists()
    assert os.listdir(str(roots / "srv" / "blog--db")) == []  # dest is not touched
    docker.calls[:] = []
    before = snapshot(roots)
    again = run_module(litestream_standby.main, args(roots, state="absent"))
    assert again["changed"] is False and again["actions"] == []
    assert verbs(docker.calls) == ["container inspect"] and snapshot(roots) == before
    no_secret_anywhere(docker, result, again)


# --------------------------------------------------------------------------- check mode
def test_check_mode_following_starts_nothing(roots, docker):
    before = snapshot(roots)
    result = run_module(litestream_standby.main, args(roots), check=True, diff=True)
    assert result["changed"] is True and result["actions"] == [
        "start following %s into %s" % ("s3://bkt/blog/app.sqlite3 (endpoint http://127.0.0.1:9000)", target(roots))]
    assert result["diff"]["after"]["following"] is True
    assert verbs(docker.calls) == ["container inspect"] and snapshot(roots) == before  # one look, also the diff's


@pytest.mark.parametrize("state, extra", [("promoted", {"txid": TXID}), ("absent", {})])
def test_check_mode_promoted_or_absent_changes_nothing(roots, docker, state, extra):
    start(roots, docker)
    write_db(roots / "srv" / "blog--db" / "app.sqlite3", 2)
    docker.calls[:] = []
    before = snapshot(roots)
    result = run_module(litestream_standby.main, args(roots, state=state, **extra), check=True, diff=True)
    assert result["changed"] is True and result["restored"] is False and len(result["actions"]) == 1
    assert verbs(docker.calls) == ["container inspect"] and snapshot(roots) == before
    assert docker.containers[container(roots)]["running"] is True
    # the diff predicts the end: no follower, at the promoted TXID or (removed) at none
    assert result["diff"]["before"]["following"] is True and result["diff"]["before"]["txid"] is not None
    assert result["diff"]["after"]["following"] is False
    assert result["diff"]["after"]["txid"] == (TXID if state == "promoted" else None)
