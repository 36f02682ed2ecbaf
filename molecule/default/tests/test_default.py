"""Verify the default scenario: one lab host provisioned with shop-1 (S3) and notes-1 (file)."""
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources"))
import labfacts  # noqa: E402  (shared by the scenarios, not a package)

testinfra_hosts = ["ansible://lab-dokku-1"]
APPS = {"shop-1": "s3", "notes-1": "file"}


@pytest.mark.parametrize("app", sorted(APPS))
def test_storage_directory_is_owned_by_the_app_user_and_mounted(host, app):
    directory = host.file(f"{labfacts.STORAGE}/{app}--db")
    assert directory.is_directory
    assert (directory.uid, directory.gid) == (32767, 32767)
    mounts = host.check_output(f"dokku storage:list {app}")
    assert f"{labfacts.STORAGE}/{app}--db:/app/db/litestream" in mounts


@pytest.mark.parametrize("app", sorted(APPS))
def test_config_and_secrets_are_root_only(host, app):
    config_dir = host.file(f"{labfacts.CONFIG}/apps/{app}")
    assert config_dir.is_directory and config_dir.user == "root" and config_dir.mode == 0o700
    # a file replica needs no secret, so no credentials.env is written for it
    names = ("litestream.yml", "credentials.env") if APPS[app] == "s3" else ("litestream.yml",)
    for name in names:
        f = host.file(f"{labfacts.CONFIG}/apps/{app}/{name}")
        assert f.is_file, f"{f.path} missing"
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600), f"{f.path}: {f.user}:{f.group} {oct(f.mode)}"
    secret = json.loads((labfacts.STATE / "s3-credentials.json").read_text())["secret_access_key"]
    assert secret not in host.file(f"{labfacts.CONFIG}/apps/{app}/litestream.yml").content_string


def test_credential_set_files_are_root_only(host):
    for name in ("lab-s3", "lab-sftp"):
        d = host.file(f"{labfacts.CONFIG}/credentials/{name}")
        assert d.is_directory and d.user == "root" and d.mode == 0o700, f"{d.path}: {oct(d.mode)}"
    creds = host.file(f"{labfacts.CONFIG}/credentials/lab-s3/credentials.json")
    assert (creds.user, creds.mode) == ("root", 0o600)


@pytest.mark.parametrize("app", sorted(APPS))
def test_sidecar_runs_pinned_with_a_restart_policy_and_no_secret_in_its_env(host, app):
    inspect = json.loads(host.check_output(f"docker container inspect dokku.litestream.{app}"))[0]
    assert inspect["State"]["Running"], inspect["State"]
    assert inspect["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert inspect["Config"]["Image"] == labfacts.facts()["images"]["litestream"]
    env = " ".join(inspect["Config"].get("Env") or [])
    assert "SECRET" not in env and "ACCESS_KEY" not in env, env


def test_rows_committed_before_a_restore_are_in_the_s3_replica(host, tmp_path):
    # the demo writer commits a row every 100 ms; the sidecar syncs every second
    labfacts.wait_for("rows in shop-1", lambda: len(labfacts.live_rows(host, "shop-1")) > 20)
    committed = labfacts.live_rows(host, "shop-1")
    time.sleep(3)
    restored = dict(labfacts.restore_from_s3("lab-dokku-1", "shop-1", tmp_path / "shop-1.sqlite3"))
    missing = [row_id for row_id, _ in committed if row_id not in restored]
    assert not missing, f"{len(missing)} of {len(committed)} committed rows missing from the replica"
    assert all(restored[i] == t for i, t in committed)


def test_file_replica_holds_ltx_files(host):
    replica = f"/srv/lab-replicas/lab-dokku-1/notes-1/{labfacts.DB_NAME}"
    labfacts.wait_for("ltx files in the file replica",
                      lambda: host.run(f"find {replica} -name '*.ltx'").stdout.strip())
