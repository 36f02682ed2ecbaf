# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_replica decisions: create, leave alone, restart on a rotated secret, recreate on a change."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat
import time

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.modules import litestream_replica

from .conftest import SidecarProcess, assert_no_secret, run_module, snapshot

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY$secret'x"
IMAGE_ID = "sha256:1111"


@pytest.fixture
def roots(tmp_path):
    setdir = tmp_path / "credentials" / "lab"
    setdir.mkdir(parents=True)
    (setdir / "credentials.json").write_text(json.dumps({"access_key_id": "AKIALAB", "secret_access_key": SECRET}))
    (tmp_path / "storage" / "blog--db").mkdir(parents=True)
    return tmp_path


def args(roots, **overrides):
    base = {"app": "blog", "credentials_root": str(roots / "credentials"), "config_root": str(roots / "apps"),
            "storage_root": str(roots / "storage"), "image": "litestream/litestream:0.5.17",
            "replica": {"type": "s3", "bucket": "bkt", "path": "blog", "endpoint": "http://127.0.0.1:9000",
                        "credentials": "lab", "sync_interval": "1s"}}
    base.update(overrides)
    return base


class FakeDocker:
    """A docker CLI with one container slot, enough for the sidecar's life cycle."""

    def __init__(self):
        self.container = None
        self.calls = []
        self.process = SidecarProcess()

    def __call__(self, module, argv, **kwargs):
        tail = argv[1:]
        self.calls.append(tail)
        answer = self.process.answer(list(tail))
        if answer is not None:
            return answer
        if tail[:2] == ["container", "inspect"]:
            if self.container is None:
                return 1, "", "Error: No such container: %s" % tail[2]
            return 0, json.dumps([self.container]), ""
        if tail[:2] == ["image", "inspect"]:
            return 0, IMAGE_ID + "\n", ""
        if tail[:2] == ["container", "create"]:
            labels = dict(tail[i + 1].split("=", 1) for i, a in enumerate(tail) if a == "--label")
            image_at = tail.index("--entrypoint") + 2
            self.container = {"Id": "c%d" % len(self.calls), "Name": "/dokku.litestream.blog", "Image": IMAGE_ID,
                              "Config": {"Image": tail[image_at], "Labels": labels},
                              "State": {"Running": False, "Status": "created"},
                              "HostConfig": {"RestartPolicy": {"Name": tail[tail.index("--restart") + 1]}},
                              "Args": tail}
            return 0, self.container["Id"], ""
        if tail[:2] == ["container", "start"] or tail[:2] == ["container", "restart"]:
            self.container["State"] = {"Running": True, "Status": "running"}
            return 0, "", ""
        if tail[:2] == ["container", "stop"]:
            self.container["State"] = {"Running": False, "Status": "exited"}
            return 0, "", ""
        if tail[:2] == ["container", "rm"]:
            self.container = None
            return 0, "", ""
        if tail[:3] == ["container", "update", "--restart"]:
            self.container["HostConfig"]["RestartPolicy"]["Name"] = tail[3]
            return 0, tail[4], ""
        raise AssertionError("unexpected docker call %r" % (tail,))


@pytest.fixture
def docker(monkeypatch):
    from ansible.module_utils import basic
    fake = FakeDocker()

    def run_command(self, argv, **kwargs):
        return fake(self, argv, **kwargs)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    return fake


def writes(calls):
    return [c[:2] for c in calls if c[:2] not in (["container", "inspect"], ["image", "inspect"])]


def test_first_run_creates_a_pinned_sidecar_with_no_key_in_sight(roots, docker):
    result = run_module(litestream_replica.main, args(roots), diff=True)
    # the first run claims the replica for this host (ownership, issue 22) before it writes anything
    assert result["actions"] == ["claim the replica (epoch 1)", "write config", "write credentials.env",
                                 "create container", "start container"]
    create = next(c for c in docker.calls if c[:2] == ["container", "create"])
    assert create[create.index("--restart") + 1] == "unless-stopped"
    # Dokku's ps:stop (0.36+) stops every container with this label and sets restart=no: never carry it
    assert not any(part.startswith("com.dokku.app-name") for part in create)
    assert create[create.index("--stop-timeout") + 1] == "45"
    assert "--env" not in create and "-e" not in create and "--env-file" not in create
    assert not any("AWS_CA_BUNDLE" in part for part in create)
    assert_no_secret(result, SECRET, "AKIALAB")
    assert_no_secret(docker.calls, SECRET)
    config_dir = roots / "apps" / "blog"
    assert stat.S_IMODE(os.stat(str(config_dir)).st_mode) == 0o700
    for name in ("litestream.yml", "credentials.env"):
        assert stat.S_IMODE(os.stat(str(config_dir / name)).st_mode) == 0o600
    assert SECRET not in (config_dir / "litestream.yml").read_text()
    assert SECRET in (config_dir / "credentials.env").read_text().replace("'\"'\"'", "'")
    assert result["container"]["running"] is True


def test_second_run_changes_nothing_and_runs_only_reads(roots, docker):
    run_module(litestream_replica.main, args(roots))
    before = snapshot(roots)
    docker.calls[:] = []
    result = run_module(litestream_replica.main, args(roots))
    assert result["changed"] is False and result["actions"] == []
    assert writes(docker.calls) == []
    assert snapshot(roots) == before


def test_rotated_secret_restarts_without_recreating(roots, docker):
    run_module(litestream_replica.main, args(roots))
    first_id = docker.container["Id"]
    (roots / "credentials" / "lab" / "credentials.json").write_text(
        json.dumps({"access_key_id": "AKIALAB", "secret_access_key": "rotated"}))
    result = run_module(litestream_replica.main, args(roots))
    assert result["actions"] == ["write credentials.env", "restart container (secret rotated)"]
    assert docker.container["Id"] == first_id


def test_diff_shows_the_configuration_as_lines_and_the_container_beside_it(roots, docker):
    """--diff prints text lines for each entry (Ansible's before/after/_header form), secrets redacted."""
    first = run_module(litestream_replica.main, args(roots), diff=True)
    config_path = str(roots / "apps" / "blog" / "litestream.yml")
    config, container = first["diff"]
    assert config["before_header"] == config["after_header"] == config_path
    assert config["before"] == "" and config["after"] == first["config"]
    assert "\n      type: \"s3\"\n" in config["after"]
    assert container["before_header"] == "container dokku.litestream.blog"
    assert json.loads(container["before"]) == {"exists": False}
    assert json.loads(container["after"])["running"] is True and container["after"].count("\n") > 3
    changed = args(roots, replica=dict(args(roots)["replica"], sync_interval="5s"))
    second = run_module(litestream_replica.main, changed, diff=True)
    assert second["diff"][0]["before"] == first["config"]
    assert_no_secret(second, SECRET, "AKIALAB")
    gone = run_module(litestream_replica.main, args(roots, state="absent"), diff=True)
    assert gone["diff"][0]["after"] == "" and json.loads(gone["diff"][1]["after"]) == {"exists": False}


def test_changed_option_recreates_and_check_mode_only_predicts(roots, docker):
    run_module(litestream_replica.main, args(roots))
    first_id = docker.container["Id"]
    changed = args(roots, replica=dict(args(roots)["replica"], sync_interval="5s"))
    before = snapshot(roots)
    docker.calls[:] = []
    predicted = run_module(litestream_replica.main, changed, check=True, diff=True)
    assert writes(docker.calls) == [] and snapshot(roots) == before
    assert '"5s"' in predicted["diff"][0]["after"] and '"1s"' in predicted["diff"][0]["before"]
    result = run_module(litestream_replica.main, changed)
    assert result["actions"] == predicted["actions"] == [
        "stop container", "remove container", "write config", "create container", "start container"]
    assert docker.container["Id"] != first_id


def test_a_restart_policy_changed_behind_its_back_is_put_back(roots, docker):
    """Dokku's ps:stop runs `docker update --restart=no` on the sidecar (v0.36.0+): the next run repairs it
    in place, in check mode only predicts it, and then changes nothing."""
    run_module(litestream_replica.main, args(roots))
    first_id = docker.container["Id"]
    docker.container["HostConfig"]["RestartPolicy"]["Name"] = "no"
    docker.container["State"] = {"Running": False, "Status": "exited"}
    docker.calls[:] = []
    predicted = run_module(litestream_replica.main, args(roots), check=True)
    assert writes(docker.calls) == []
    result = run_module(litestream_replica.main, args(roots))
    assert result["actions"] == predicted["actions"] == [
        "set restart policy unless-stopped (was no)", "start container"]
    assert docker.container["Id"] == first_id
    assert result["container"]["restart_policy"] == "unless-stopped" and result["container"]["running"]
    assert run_module(litestream_replica.main, args(roots))["changed"] is False


def test_stopped_and_absent(roots, docker):
    run_module(litestream_replica.main, args(roots))
    result = run_module(litestream_replica.main, args(roots, state="stopped"))
    assert result["actions"] == ["stop container"]
    result = run_module(litestream_replica.main, args(roots, state="absent"))
    assert result["actions"] == ["remove container", "remove config"]
    assert not (roots / "apps" / "blog").exists()
    assert (roots / "credentials" / "lab").exists()  # credential sets are litestream_auth's business


def test_a_downgrade_of_the_image_is_refused_before_anything_changes(roots, docker):
    run_module(litestream_replica.main, args(roots))
    before = snapshot(roots)
    container = json.dumps(docker.container)
    docker.calls[:] = []
    result = run_module(litestream_replica.main, args(roots, image="litestream/litestream:0.5.15"), fail=True)
    assert result["msg"] == (
        "app blog: refusing to downgrade Litestream from litestream/litestream:0.5.17 to litestream/litestream:0.5.15: "
        "a replica written by a newer Litestream cannot be read or continued by an older one. Keep "
        "litestream/litestream:0.5.17 or a newer image; to really go back, remove the sidecar (state: absent) and "
        "replicate to a new path")
    assert writes(docker.calls) == [] and snapshot(roots) == before and json.dumps(docker.container) == container


def test_an_upgrade_of_the_image_recreates_the_sidecar(roots, docker):
    run_module(litestream_replica.main, args(roots, image="litestream/litestream:0.5.16"))
    result = run_module(litestream_replica.main, args(roots))
    assert result["actions"] == ["stop container", "remove container", "create container", "start container"]
    assert docker.container["Config"]["Image"] == "litestream/litestream:0.5.17"


def test_the_dokku_litestream_plugins_container_is_replaced_gracefully(roots, docker):
    # what `dokku litestream:create` + `litestream:start` left: the same name, no labels, an untagged image
    docker.container = {"Id": "plugin1", "Name": "/dokku.litestream.blog", "Image": "sha256:0000",
                        "Config": {"Image": "litestream/litestream", "Labels": {},
                                   "Env": ["LITESTREAM_ACCESS_KEY_ID=AKIAOLD", "LITESTREAM_SECRET_ACCESS_KEY=old"]},
                        "State": {"Running": True, "Status": "running"}, "HostConfig": {"RestartPolicy": {"Name": "no"}}}
    result = run_module(litestream_replica.main, args(roots))
    # the claim comes first: nothing changes on a host that loses it
    assert result["actions"] == ["claim the replica (epoch 1)", "stop container", "remove container", "write config",
                                 "write credentials.env", "create container", "start container"]
    stop = next(c for c in docker.calls if c[:2] == ["container", "stop"])
    assert stop == ["container", "stop", "--time", "45", "dokku.litestream.blog"]  # Litestream's last sync runs
    assert docker.container["Id"] != "plugin1"
    assert docker.container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"


def test_check_mode_predicts_the_restart_of_a_secret_the_run_rotates(roots, docker):
    """In --check the credential task writes nothing, so the set on disk still holds the old secret; the role passes
    the sets that task would change, and the prediction is the real run's action list."""
    run_module(litestream_replica.main, args(roots))
    assert run_module(litestream_replica.main, args(roots), check=True)["actions"] == []
    predicted = run_module(litestream_replica.main, args(roots, changed_credentials=["lab"]), check=True)
    (roots / "credentials" / "lab" / "credentials.json").write_text(
        json.dumps({"access_key_id": "AKIALAB", "secret_access_key": "rotated"}))
    real = run_module(litestream_replica.main, args(roots, changed_credentials=["lab"]))
    assert predicted["actions"] == real["actions"] == ["write credentials.env", "restart container (secret rotated)"]
    other = run_module(litestream_replica.main, args(roots, changed_credentials=["another-set"]), check=True)
    assert other["actions"] == []


# --------------------------------------------------------------------------- control socket and heartbeat
HEARTBEAT = "https://hc-ping.example.invalid/8a7f0c1e-secret-capability"


def test_the_config_enables_the_control_socket_for_the_health_check(roots, docker):
    run_module(litestream_replica.main, args(roots))
    config = (roots / "apps" / "blog" / "litestream.yml").read_text()
    assert 'socket:\n  path: "/var/run/litestream.sock"\n  enabled: true\n' in config
    assert "heartbeat" not in config


def test_a_heartbeat_url_reaches_only_the_root_only_config(roots, docker):
    result = run_module(litestream_replica.main, args(roots, heartbeat_url=HEARTBEAT, heartbeat_interval="2m"),
                        diff=True)
    config_path = roots / "apps" / "blog" / "litestream.yml"
    config = config_path.read_text()
    assert 'heartbeat-interval: "2m"\nheartbeat-url: "%s"\n' % HEARTBEAT in config
    assert stat.S_IMODE(os.stat(str(config_path)).st_mode) == 0o600
    # not in the result (diff, config, commands, container labels and arguments) nor in any docker call
    assert_no_secret(result, HEARTBEAT, "8a7f0c1e")
    assert_no_secret(docker.calls, HEARTBEAT, "8a7f0c1e")
    assert 'heartbeat-url: "<redacted>"' in result["config"]
    # a new URL is a secret rotation: the same container restarts, its labels (config hash) unchanged
    first_id, labels = docker.container["Id"], dict(docker.container["Config"]["Labels"])
    result = run_module(litestream_replica.main, args(roots, heartbeat_url=HEARTBEAT + "-2", heartbeat_interval="2m"))
    assert result["changed"] and docker.container["Id"] == first_id
    assert docker.container["Config"]["Labels"] == labels
    assert HEARTBEAT + "-2" in config_path.read_text()
    assert_no_secret(result, HEARTBEAT)


@pytest.mark.parametrize("overrides, message", [
    ({"heartbeat_url": "ftp://hc.example.invalid/SECRET-TOKEN"}, "heartbeat_url: must be one http:// or https:// URL"),
    ({"heartbeat_url": "https://user:SECRET-TOKEN@hc.example.invalid/x"}, "without spaces or a user:password@ part"),
    ({"heartbeat_url": "https://hc.example.invalid/SECRET-TOKEN\nx"}, "heartbeat_url: must be one http"),
    ({"heartbeat_url": "https://hc.example.invalid/SECRET-TOKEN", "heartbeat_interval": "30s"},
     "heartbeat_interval: '30s' is not a duration from 1m to 8760h (a year): Litestream refuses to start with a "
     "heartbeat interval under 1m"),
    ({"heartbeat_url": "https://hc.example.invalid/SECRET-TOKEN", "heartbeat_interval": "soon"},
     "heartbeat_interval: 'soon' is not a duration"),
    ({"heartbeat_interval": "5m"}, "heartbeat_interval: needs heartbeat_url"),
])
def test_a_bad_heartbeat_is_refused_without_showing_the_url(roots, docker, overrides, message):
    result = run_module(litestream_replica.main, args(roots, **overrides), fail=True)
    assert message in result["msg"]
    assert_no_secret(result, "SECRET-TOKEN")
    assert docker.calls == [] and not (roots / "apps").exists()


# --------------------------------------------------------------------------- the first sync after a start
def test_a_started_sidecar_is_awaited_until_its_first_sync(roots, docker):
    (roots / "storage" / "blog--db" / "production.sqlite3").write_bytes(b"")
    result = run_module(litestream_replica.main, args(roots))
    assert result["changed"] and result["first_sync_seconds"] >= 0
    execs = [c for c in docker.calls if c[:1] == ["exec"]]
    assert execs[0] == ["exec", "dokku.litestream.blog", "/usr/local/bin/litestream", "list", "-json", "-socket",
                        "/var/run/litestream.sock", "-timeout", "5"]
    # nothing started: nothing awaited
    docker.calls[:] = []
    assert "first_sync_seconds" not in run_module(litestream_replica.main, args(roots))
    assert [c for c in docker.calls if c[:1] in (["exec"], ["logs"])] == []


def test_an_app_without_its_database_yet_has_its_replica_listed_instead(roots, docker):
    result = run_module(litestream_replica.main, args(roots))
    assert result["first_sync_seconds"] >= 0
    listing = [c for c in docker.calls if c[:1] == ["exec"]]
    assert len(listing) == 1 and listing[0][2:4] == ["/bin/sh", "-c"]
    assert "ltx -level 0 -json" in listing[0][4] and ". /etc/litestream/credentials.env" in listing[0][4]
    assert_no_secret(docker.calls, SECRET)


@pytest.mark.parametrize("database, error, words", [
    (True, "get replica position: operation error S3: ListObjectsV2, https response error StatusCode: 404, "
           "RequestID: 1, api error NoSuchBucket: The specified bucket does not exist",
     "the bucket does not exist (NoSuchBucket)"),
    (True, "api error SignatureDoesNotMatch: The request signature we calculated does not match",
     "authentication failed: the secret access key is wrong (SignatureDoesNotMatch)"),
    (False, "operation error S3: ListObjectsV2, StatusCode: 403, api error InvalidAccessKeyId: unknown",
     "authentication failed: the store does not know the access key id (InvalidAccessKeyId)"),
    (False, "operation error S3: ListObjectsV2, StatusCode: 403, api error AccessDenied: Access Denied",
     "access denied: the key may not use this bucket or path (AccessDenied)"),
])
def test_a_store_that_refuses_the_sidecar_fails_the_app_with_its_reason_at_once(roots, docker, database, error, words):
    if database:
        (roots / "storage" / "blog--db" / "production.sqlite3").write_bytes(b"")
    docker.process.error = error
    started = time.time()
    result = run_module(litestream_replica.main, args(roots), fail=True)
    assert time.time() - started < 5  # a reason waiting cannot mend ends the wait at once (the bound is 30 s)
    assert result["msg"].startswith("app blog: the sidecar runs, but %s: " % words), result["msg"]
    assert docker.container["State"]["Running"]  # left running: it retries, and the health check reports it
    assert_no_secret(result, SECRET)


def test_an_unreachable_store_fails_at_the_bound_with_litestreams_last_words(roots, docker):
    (roots / "storage" / "blog--db" / "production.sqlite3").write_bytes(b"")
    url = "https://hc.example.invalid/ping/1234-capability"
    docker.process.error = ("heartbeat %s: operation error S3: ListObjectsV2, exceeded maximum number of attempts, 10, "
                            "dial tcp 127.0.0.1:9000: connect: connection refused" % url)
    result = run_module(litestream_replica.main, args(roots, first_sync_timeout=2, heartbeat_url=url), fail=True)
    assert result["msg"].startswith("app blog: the sidecar runs, but no first successful sync of production.sqlite3 "
                                    "within 2 s (first_sync_timeout); Litestream's last error: the replica store is "
                                    "unreachable (connection refused): "), result["msg"]
    assert "1234-capability" not in result["msg"] and "<redacted>" in result["msg"]


def test_first_sync_timeout_0_does_not_wait(roots, docker):
    docker.process.error = "api error NoSuchBucket: The specified bucket does not exist"
    result = run_module(litestream_replica.main, args(roots, first_sync_timeout=0))
    assert result["changed"] and "first_sync_seconds" not in result
    assert [c for c in docker.calls if c[:1] in (["exec"], ["logs"])] == []
