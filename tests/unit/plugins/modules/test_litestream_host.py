# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_host against a fake Dokku host (dokku and docker CLIs with state), and against the per-app modules.

The fake keeps apps, mounts and containers; storage:ensure-directory really makes the directory (owned by
herokuish's uid), so the owner checks run on the real file system. The same fake serves the per-app modules, so
"the host module does what dokku_storage and litestream_replica do" is checked by comparing end states.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import threading
import time

import pytest

from ansible.module_utils import basic

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import auth_core, claim_store
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import storage_core
from ansible_collections.dokku_sqlite.litestream.plugins.modules import (
    dokku_storage, litestream_auth, litestream_host, litestream_replica)

from .conftest import SidecarProcess, assert_no_secret, run_module

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY$secret'x"
IMAGE = "litestream/litestream:0.5.17"
IMAGE_ID = "sha256:1111"


class FakeHost:
    """dokku and docker as one Dokku 0.38.27 host: apps, mounts, storage directories and containers."""

    def __init__(self, storage_root):
        self.storage_root = storage_root
        self.apps = {}        # app -> [mount spec]
        self.containers = {}  # name -> inspect document
        self.calls = []
        self.bounds = []      # (program, subcommand, seconds) of the commands run under `timeout`
        self.delay = 0        # seconds each command takes: > 0 lets the threads of a parallel run interleave
        self.calls_lock = threading.Lock()
        self.running = []     # the commands running now (with a delay), and every set seen at a command's start
        self.overlaps = []
        self.meet = None      # (commands, barrier): those commands each wait until all of them run at once
        self.process = SidecarProcess()

    def __call__(self, module, argv, **kwargs):
        if os.path.basename(argv[0]) == "timeout":  # a bounded command: timeout -k 5 <seconds> <program> ...
            assert argv[1:3] == ["-k", "5"], argv
            self.bounds.append((os.path.basename(argv[4]), argv[5], int(argv[3])))
            argv = argv[4:]
        program, tail = os.path.basename(argv[0]), list(argv[1:])
        self.calls.append([program] + tail)
        if self.meet and tail[0] in self.meet[0]:
            # run one after the other, the first would wait here in vain: the barrier breaks and the run fails
            self.meet[1].wait(timeout=20)
            with self.calls_lock:
                self.overlaps.append(tail[0])
        if self.delay:
            with self.calls_lock:
                self.running.append(tail[0])
                self.overlaps.append(sorted(self.running))
            time.sleep(self.delay)
            with self.calls_lock:
                self.running.remove(tail[0])
        return (self.dokku if program == "dokku" else self.docker)(tail)

    def dokku(self, tail):
        if tail == ["version"]:
            return 0, "dokku version 0.38.27\n", ""
        if tail[0] == "storage:list":
            if tail[1] not in self.apps:
                return 20, "", " !     App %s does not exist\n" % tail[1]
            mounts = [dict(zip(("host_path", "container_path"), spec.split(":"))) for spec in self.apps[tail[1]]]
            return 0, json.dumps(mounts), ""
        if tail == ["storage:report"]:  # as Dokku 0.38.27 prints it (storage/report.go), every app by name
            template = "=====> %s storage information\n       Storage build mounts:%s\n       Storage deploy mounts:%s%s\n"
            sections = [template % (app, " " * 16, " " * 15, " ".join("-v " + m for m in self.apps[app]))
                        for app in sorted(self.apps)]
            return 0, "".join(sections), ""
        if tail[0] == "apps:create":
            self.apps[tail[1]] = []
            return 0, "", ""
        if tail[0] == "storage:ensure-directory":
            path = os.path.join(self.storage_root, tail[-1])
            if not os.path.isdir(path):
                os.makedirs(path)
            os.chown(path, 32767, 32767)
            return 0, "", ""
        if tail[0] == "storage:mount":
            self.apps[tail[1]].append(tail[2])
            return 0, "", ""
        if tail[0] == "storage:unmount":
            self.apps[tail[1]].remove(tail[2])
            return 0, "", ""
        if tail[:2] == ["--quiet", "ps:report"]:
            return 0, "false\n", ""
        raise AssertionError("unexpected dokku call %r" % (tail,))

    def docker(self, tail):
        answer = self.process.answer(list(tail))
        if answer is not None:
            return answer
        if tail[:2] == ["info", "--format"]:
            return 0, '["name=seccomp,profile=builtin"]\n', ""
        if tail[0] == "inspect" or tail[:2] == ["container", "inspect"]:
            names = [t for t in tail[1:] if t not in ("inspect", "--type", "container")]
            docs, errors = [], []
            for name in names:
                if name in self.containers:
                    docs.append(self.containers[name])
                elif name == IMAGE and tail[0] == "inspect":
                    docs.append({"Id": IMAGE_ID, "RepoTags": [IMAGE], "RepoDigests": []})
                else:
                    errors.append("Error: No such object: %s" % name)
            return (1 if errors else 0), json.dumps(docs), "\n".join(errors)
        if tail[:2] == ["image", "inspect"]:
            return 0, IMAGE_ID + "\n", ""
        if tail[:2] == ["container", "create"]:
            name = tail[tail.index("--name") + 1]
            labels = dict(tail[i + 1].split("=", 1) for i, a in enumerate(tail) if a == "--label")
            self.containers[name] = {"Id": "c%d" % len(self.calls), "Name": "/" + name, "Image": IMAGE_ID,
                                     "Config": {"Image": tail[tail.index("--entrypoint") + 2], "Labels": labels},
                                     "State": {"Running": False, "Status": "created"},
                                     "HostConfig": {"RestartPolicy": {"Name": tail[tail.index("--restart") + 1]}}}
            return 0, "", ""
        name = tail[-1]
        if tail[:2] in (["container", "start"], ["container", "restart"]):
            self.containers[name]["State"] = {"Running": True, "Status": "running"}
            return 0, "", ""
        if tail[:2] == ["container", "stop"]:
            self.containers[name]["State"] = {"Running": False, "Status": "exited"}
            return 0, "", ""
        if tail[:2] == ["container", "rm"]:
            del self.containers[name]
            return 0, "", ""
        raise AssertionError("unexpected docker call %r" % (tail,))

    def state(self):
        """Everything a converge leaves: apps and mounts, containers (no ids), directories and their owners."""
        dirs = dict((d, os.stat(os.path.join(self.storage_root, d)).st_uid) for d in os.listdir(self.storage_root))
        containers = dict((name, (doc["Config"]["Labels"], doc["State"]["Running"],
                                  doc["HostConfig"]["RestartPolicy"]["Name"])) for name, doc in self.containers.items())
        return self.apps, containers, dirs


@pytest.fixture
def host(tmp_path, monkeypatch):
    storage = tmp_path / "storage"
    storage.mkdir()
    monkeypatch.setattr(storage_core, "STORAGE_ROOT", str(storage))
    monkeypatch.setattr(auth_core, "dokku_ids", lambda: None)
    fake = FakeHost(str(storage))

    def run_command(self, argv, **kwargs):
        return fake(self, argv, **kwargs)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    fake.tmp = tmp_path
    return fake


def entry(name, **extra):
    base = {"app": name, "create": True,
            "replica": {"type": "s3", "bucket": "bkt", "path": name, "endpoint": "http://127.0.0.1:9000",
                        "credentials": "lab", "sync_interval": "1s"}}
    base.update(extra)
    return base


def host_args(host, apps, **overrides):
    base = {"apps": apps, "credential_sets": [{"name": "lab", "access_key_id": "AKIALAB", "secret_access_key": SECRET,
                                               "credentials_root": str(host.tmp / "credentials")}],
            "storage_root": str(host.tmp / "storage"), "config_root": str(host.tmp / "apps"),
            "credentials_root": str(host.tmp / "credentials"), "image": IMAGE}
    base.update(overrides)
    return base


def test_first_run_converges_every_app_and_the_second_only_reads_the_host_once(host):
    apps = [entry("blog"), entry("shop"), entry("notes")]
    first = run_module(litestream_host.main, host_args(host, apps))
    assert first["changed"] and first["failed_apps"] == []
    assert [a["app"] for a in first["apps"]] == ["blog", "shop", "notes"]
    for app in first["apps"]:
        assert app["changed"] and app["storage"]["app_created"] and app["sidecar"]["container"]["running"]
        assert app["actions"][:3] == ["dokku apps:create %s" % app["app"],
                                      "dokku storage:ensure-directory --chown herokuish %s--db" % app["app"],
                                      "dokku storage:mount %s %s/%s--db:/app/db/litestream" % (
                                          app["app"], host.storage_root, app["app"])]
        assert app["actions"][3:] == ["claim the replica (epoch 1)", "write config", "write credentials.env",
                                      "create container", "start container"]
        assert app["sidecar"]["ownership"]["standing"] == "owner" and app["sidecar"]["ownership"]["epoch"] == 1
    assert [s["name"] for s in first["credential_sets"]] == ["lab"] and first["credential_sets"][0]["changed"]
    assert_no_secret(first, SECRET)
    # the report showed no app: each was read with storage:list before it was created
    assert [c[:3] for c in host.calls if c[0] == "dokku"][:5] == [["dokku", "version"], ["dokku", "storage:report"]] + [
        ["dokku", "storage:list", app] for app in ("blog", "shop", "notes")]
    host.calls[:] = []
    second = run_module(litestream_host.main, host_args(host, apps))
    assert second["changed"] is False and all(not a["changed"] and a["commands"] == [] for a in second["apps"])
    # the host read once: Dokku's version, one storage:report for every app, one docker inspect, one docker info;
    # side by side (threads), so only the dokku calls have an order of their own; `commands` has a fixed one
    assert sorted(c[:2] for c in host.calls) == [["docker", "info"], ["docker", "inspect"],
                                                 ["dokku", "storage:report"], ["dokku", "version"]]
    assert [c.split(" ")[:2] for c in second["commands"]] == [
        ["dokku", "version"], ["dokku", "storage:report"], ["docker", "inspect"], ["docker", "info"]]
    assert second["commands"][-2] == ("docker inspect dokku.litestream.blog dokku.litestream.shop "
                                      "dokku.litestream.notes %s" % IMAGE)


def test_the_host_module_leaves_the_host_as_the_per_app_modules_do(host, tmp_path):
    """Same apps, mounts, directory owners, container labels (config hash included) and config files."""
    apps = [entry("blog"), entry("shop", chown="heroku", databases=["a.sqlite3", "b.sqlite3"])]
    run_module(litestream_host.main, host_args(host, apps))
    by_host = host.state()
    configs = dict((app, (tmp_path / "apps" / app / "litestream.yml").read_text()) for app in ("blog", "shop"))

    for name in os.listdir(host.storage_root):
        os.rmdir(os.path.join(host.storage_root, name))
    for app in ("blog", "shop"):
        (tmp_path / "apps" / app / "litestream.yml").unlink()
    host.__dict__.update(apps={}, containers={}, calls=[])
    args = host_args(host, apps)
    run_module(litestream_auth.main, dict(args["credential_sets"][0]))
    for item in apps:
        storage = dict((k, item[k]) for k in ("app", "chown") if k in item)
        run_module(dokku_storage.main, dict(storage, create_app=True))
        sidecar = dict((k, item[k]) for k in ("app", "replica", "databases") if k in item)
        run_module(litestream_replica.main, dict(sidecar, storage_root=args["storage_root"], config_root=args["config_root"],
                                                 credentials_root=args["credentials_root"], image=IMAGE))
    assert host.state() == by_host
    assert dict((app, (tmp_path / "apps" / app / "litestream.yml").read_text()) for app in ("blog", "shop")) == configs


def test_a_failing_sidecar_fails_its_app_alone_and_the_task_names_it(host):
    apps = [entry("blog"), entry("shop"), entry("notes")]
    apps[1]["replica"]["credentials"] = "not-written"
    result = run_module(litestream_host.main, host_args(host, apps), fail=True)
    assert result["failed_apps"] == ["shop"]
    assert "1 of 3 apps failed on this host (the others were converged): app shop: credential set 'not-written' " \
        "not found" in result["msg"]
    status = dict((a["app"], (a["failed"], a["changed"])) for a in result["apps"])
    assert status == {"blog": (False, True), "shop": (True, True), "notes": (False, True)}  # shop's storage was done
    assert "dokku.litestream.shop" not in host.containers and host.containers["dokku.litestream.notes"]["State"]["Running"]


def test_a_failing_storage_stops_every_sidecar_change_but_not_the_other_storage(host):
    apps = [entry("blog"), entry("shop"), entry("notes")]
    run_module(litestream_host.main, host_args(host, apps[:1]))
    host.apps["shop"] = ["/srv/elsewhere:/app/db/litestream"]  # a mount the module must not replace
    apps[0]["state"] = "absent"
    result = run_module(litestream_host.main, host_args(host, apps), fail=True)
    assert result["failed_apps"] == ["shop"]
    assert "1 of 3 apps failed on this host (the other apps' storage was converged, no sidecar was changed): " \
        "app 'shop' already mounts /srv/elsewhere" in result["msg"]
    assert host.apps["notes"] == ["%s/notes--db:/app/db/litestream" % host.storage_root]
    assert list(host.containers) == ["dokku.litestream.blog"], "a sidecar changed while a storage failed"
    assert all(a.get("sidecar_skipped") == "the storage of shop failed" for a in result["apps"] if not a["failed"])


def test_a_bad_entry_fails_before_anything_is_read_or_written(host):
    apps = [entry("blog"), entry("../etc")]
    result = run_module(litestream_host.main, host_args(host, apps), fail=True)
    assert "1 problem in the inventory of this host, nothing was changed: litestream_apps[1] (../etc): app:" in result["msg"]
    assert host.calls == [] and not os.path.exists(str(host.tmp / "credentials"))


def test_check_mode_predicts_the_real_run_app_by_app_and_writes_nothing(host):
    apps = [entry("blog"), entry("shop")]
    run_module(litestream_host.main, host_args(host, apps[:1]))
    before = host.state()
    apps[0]["replica"]["sync_interval"] = "2s"
    predicted = run_module(litestream_host.main, host_args(host, apps), check=True, diff=True)
    assert host.state() == before
    real = run_module(litestream_host.main, host_args(host, apps))
    assert [(a["app"], a["changed"], a["actions"]) for a in predicted["apps"]] == \
        [(a["app"], a["changed"], a["actions"]) for a in real["apps"]]
    assert predicted["apps"][0]["actions"] == ["stop container", "remove container", "write config",
                                               "create container", "start container"]
    assert any("sync-interval" in (d.get("after") or "") for d in predicted["diff"])
    assert_no_secret(predicted, SECRET)


def test_check_mode_does_not_warn_of_a_storage_directory_the_same_run_makes(host, monkeypatch):
    """--check of a first provision: the storage part of the same run would make the directory, so the sidecar part
    does not warn that it is missing; a run of the sidecars alone does (nothing in it would make the directory)."""
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: warnings.append(text))
    apps = [entry("blog")]
    run_module(litestream_host.main, host_args(host, apps), check=True)
    assert not any("does not exist" in w for w in warnings), warnings
    run_module(litestream_host.main, host_args(host, apps, parts=["credentials", "sidecars"]), check=True)
    assert any("storage directory %s/blog--db does not exist" % (host.tmp / "storage") in w for w in warnings), warnings


def test_a_rotated_secret_restarts_the_sidecars_of_its_set_in_the_same_run(host):
    apps = [entry("blog")]
    run_module(litestream_host.main, host_args(host, apps))
    args = host_args(host, apps)
    args["credential_sets"][0]["secret_access_key"] = "rotated-" + SECRET
    predicted = run_module(litestream_host.main, args, check=True)
    real = run_module(litestream_host.main, args)
    assert real["credential_sets"][0]["changed"] and predicted["credential_sets"][0]["changed"]
    assert real["apps"][0]["actions"] == predicted["apps"][0]["actions"] == [
        "write credentials.env", "restart container (secret rotated)"]


def test_parts_limit_what_is_converged(host):
    apps = [entry("blog")]
    result = run_module(litestream_host.main, host_args(host, apps, parts=["storage"]))
    assert result["apps"][0]["storage"]["mount_changed"] and "sidecar" not in result["apps"][0]
    assert host.containers == {} and result["credential_sets"] == []
    assert not os.path.exists(str(host.tmp / "credentials" / "lab"))


def test_a_heartbeat_url_in_an_entry_is_masked_like_a_no_log_option(host, monkeypatch):
    """`apps` is a list of raw entries, so Ansible cannot know heartbeat_url is a secret: the module marks it."""
    from ansible.module_utils.common.parameters import remove_values
    from ansible.module_utils.testing import patch_module_args
    url = "https://hc.example.invalid/ping/5f2b-capability"
    apps = [entry("blog", heartbeat_url=url, heartbeat_interval="1m"), entry("shop")]
    seen = {}

    def exit_json(self, **kwargs):  # what AnsibleModule returns, its echoed arguments included: no_log values masked
        seen["masked"] = remove_values(dict(kwargs, invocation={"module_args": self.params}), self.no_log_values)
        raise SystemExit(0)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    with patch_module_args(dict(host_args(host, apps), _ansible_diff=True)):
        with pytest.raises(SystemExit):
            litestream_host.main()
    assert "5f2b-capability" not in json.dumps(seen["masked"])
    assert url in (host.tmp / "apps" / "blog" / "litestream.yml").read_text()
    assert not any("5f2b" in " ".join(map(str, call)) for call in host.calls)


def converge_twice(host, parallel):
    """From an empty host: a first run of 12 apps, then a run that removes one, reconfigures one and adds one.
    Returns what each run reported (container ids aside: the fake numbers them by call) and the host left."""
    apps = [entry("app%02d" % i) for i in range(12)]
    apps[3]["chown"] = "heroku"
    runs = [run_module(litestream_host.main, host_args(host, apps, parallel=parallel), diff=True)]
    apps[5]["state"] = "absent"
    apps[7]["replica"]["sync_interval"] = "5s"
    apps.append(entry("late"))
    runs.append(run_module(litestream_host.main, host_args(host, apps, parallel=parallel), diff=True))
    for run in runs:
        for key in ("duration", "lock_wait"):
            run.pop(key)
        for app in run["apps"]:
            app.get("sidecar", {}).get("container", {}).pop("id", None)
            app.get("sidecar", {}).get("ownership", {}).pop("since", None)  # the claim's time
    configs = dict((app, sorted(os.listdir(str(host.tmp / "apps" / app)))) for app in os.listdir(str(host.tmp / "apps"))
                   if app != claim_store.HOST_ID_FILE)
    return runs, host.state(), configs


def test_a_parallel_run_leaves_the_same_host_and_reports_the_same_as_one_app_after_the_other(host, claims_on_disk):
    host.delay = 0.002  # every command takes a moment, so 8 threads really interleave
    one_by_one = converge_twice(host, parallel=1)
    assert one_by_one[0][0]["changed"] and one_by_one[0][1]["changed"]
    for name in os.listdir(host.storage_root):
        os.rmdir(os.path.join(host.storage_root, name))
    for tree in ("apps", "credentials"):
        shutil.rmtree(str(host.tmp / tree))
    shutil.rmtree(str(claims_on_disk))  # a fresh host (its id went with apps/): the replicas' claims go too
    host.__dict__.update(apps={}, containers={}, calls=[])
    assert converge_twice(host, parallel=8) == one_by_one
    # each app's commands are its own, in its order (not interleaved with another app's)
    last = one_by_one[0][1]["apps"]
    assert [a["app"] for a in last] == ["app%02d" % i for i in range(12)] + ["late"]
    assert last[7]["actions"][:2] == ["stop container", "remove container"]
    assert all("app07" in c for c in last[7]["commands"])


def test_parallel_must_be_at_least_one(host):
    result = run_module(litestream_host.main, host_args(host, [entry("blog")], parallel=0), fail=True)
    assert result["msg"] == "parallel: 0 is not a whole number from 1 (one app after the other) to 64"
    assert host.calls == []


def test_an_app_whose_store_refuses_its_sidecar_fails_alone_with_the_reason(host):
    working, refusing = SidecarProcess(), SidecarProcess()
    refusing.error = "api error NoSuchBucket: The specified bucket does not exist"

    class PerApp:  # the apps' threads run at once: each sidecar answers from its own process, nothing shared
        @staticmethod
        def answer(tail):
            return (refusing if "dokku.litestream.shop" in tail else working).answer(tail)
    host.process = PerApp()
    result = run_module(litestream_host.main, host_args(host, [entry("blog"), entry("shop"), entry("notes")]),
                        fail=True)
    assert result["failed_apps"] == ["shop"]
    assert "app shop: the sidecar runs, but the bucket does not exist (NoSuchBucket)" in result["msg"]
    by_app = dict((a["app"], a) for a in result["apps"])
    assert by_app["blog"]["sidecar"]["first_sync_seconds"] >= 0 and by_app["notes"]["sidecar"]["container"]["running"]
    assert not by_app["blog"].get("failed") and by_app["shop"]["failed"]


def report_lines(host, **overrides):
    """The fake's storage:report, with some apps' deploy-mounts lines replaced (None: the app left out)."""
    _rc, text, _err = FakeHost.dokku(host, ["storage:report"])
    lines, app = [], None
    for line in text.splitlines():
        if line.startswith("=====> "):
            app = line.split()[1]
        if app in overrides and overrides[app] is None:
            continue
        if app in overrides and "deploy mounts" in line:
            line = "       Storage deploy mounts:         " + overrides[app]
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("shown", [
    None,                                  # the app is not in the report
    "",                                    # Dokku shows a mount it cannot read as none (GetBindMountsForDisplay)
    "-v /srv/other path:/data",            # words that are not only -v host:container
])
def test_a_mount_the_report_does_not_show_is_read_again_before_anything_is_written(host, shown):
    apps = [entry("blog"), entry("shop")]
    run_module(litestream_host.main, host_args(host, apps))
    real = host.dokku
    host.dokku = lambda tail: (0, report_lines(host, shop=shown), "") if tail == ["storage:report"] else real(tail)
    host.calls[:] = []
    again = run_module(litestream_host.main, host_args(host, apps))
    # storage:list had the mount: nothing written, and the report alone decided only for blog
    assert again["changed"] is False
    assert [c[:3] for c in host.calls if c[0] == "dokku"] == [
        ["dokku", "version"], ["dokku", "storage:report"], ["dokku", "storage:list", "shop"]]
    assert [a["commands"] for a in again["apps"]] == [[], ["dokku storage:list shop --format json"]]
    assert [a["actions"] for a in again["apps"]] == [[], []]  # a read, not an action


def test_a_failing_report_or_a_single_app_reads_each_app_with_storage_list(host):
    apps = [entry("blog"), entry("shop")]
    run_module(litestream_host.main, host_args(host, apps))
    real = host.dokku
    host.dokku = lambda tail: (1, "", " !     boom\n") if tail == ["storage:report"] else real(tail)
    host.calls[:] = []
    again = run_module(litestream_host.main, host_args(host, apps))
    assert again["changed"] is False and not again["failed_apps"]
    assert [c[:3] for c in host.calls if c[0] == "dokku"] == [
        ["dokku", "version"], ["dokku", "storage:report"], ["dokku", "storage:list", "blog"],
        ["dokku", "storage:list", "shop"]]
    host.calls[:] = []
    run_module(litestream_host.main, host_args(host, apps[:1]))
    assert [c[:3] for c in host.calls if c[0] == "dokku"] == [["dokku", "version"], ["dokku", "storage:list", "blog"]]


def test_the_host_reads_of_a_no_change_run_run_side_by_side(host):
    apps = [entry("blog"), entry("shop")]
    run_module(litestream_host.main, host_args(host, apps))
    side_by_side = ("info", "inspect", "storage:report")
    host.calls[:], host.meet = [], (side_by_side, threading.Barrier(len(side_by_side)))
    again = run_module(litestream_host.main, host_args(host, apps))
    assert again["changed"] is False
    # the dokku report, the docker inspect and docker info were running at the same moment: each passed the
    # barrier only once all three had reached it
    assert sorted(host.overlaps) == sorted(side_by_side), host.overlaps
