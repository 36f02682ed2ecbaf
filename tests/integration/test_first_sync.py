"""Provision tells the truth (issue #14): a sidecar whose replica store refuses it fails its app, with the
store's own reason, within the first-sync bound, and the other apps of the run succeed. Since the ownership record
(issue 22) is read before a sidecar starts, a store that refuses that read fails a new app before its sidecar runs.

The store is a moto server of this test's own on 127.0.0.1 (tests/lab/motoauth.py, as the lab's own S3: IAM
authentication on, every request after the bootstrap's checked), so that a bucket of its own can be missing. On
lab-dokku-1, next to its own apps, three apps replicate to it:
  auth-ok-1       the right key, an existing bucket            -> provisioned, first sync proven
  nobucket-1      the right key, a bucket that does not exist  -> fails: NoSuchBucket
  badkey-1        the right key id with a wrong secret          -> fails: SignatureDoesNotMatch
The apps have no database yet, so the proof is a listing of each replica (litestream ltx -level 0).
"""
import time

import pytest

from conftest import motoauth
from test_replication import PROVISION, extra_vars_file, inventory_apps, sidecar, wait_for

WRONG_SECRET = "Wr0ngSecretThatMustNeverBePrinted/xyz"
BUCKET = "dsl-auth-bucket"


def authenticating_moto(tmp_path, users, name="moto-auth"):
    """A moto server of the test's own that checks every key (motoauth.py), bucket BUCKET made; yields
    {"endpoint", "users": {user: [{"access_key_id", "secret_access_key"}, ...]}}."""
    return motoauth.authenticating_moto(tmp_path, users, BUCKET, name)


@pytest.fixture
def auth_s3(tmp_path):
    """A moto server that checks every key: one IAM user allowed s3:*, its key."""
    with authenticating_moto(tmp_path, {"litestream": ["s3:*"]}) as found:
        yield dict(found["users"]["litestream"][0], endpoint=found["endpoint"])


def group_vars(lab):
    import yaml
    return yaml.safe_load((lab.state / "group_vars" / "dokku.yml").read_text())


def test_provision_fails_each_app_whose_store_refuses_it_with_the_stores_reason(lab, auth_s3, tmp_path):
    host = lab.hosts[0]

    def s3_app(app, bucket, credentials):
        return {"app": app, "create": True,
                "replica": {"type": "s3", "bucket": bucket, "path": app, "endpoint": auth_s3["endpoint"],
                            "region": "us-east-1", "credentials": credentials, "sync_interval": "1s"}}
    extra = [s3_app("auth-ok-1", BUCKET, "auth-good"), s3_app("nobucket-1", "dsl-no-such-bucket", "auth-good"),
             s3_app("badkey-1", BUCKET, "auth-bad")]
    sets = group_vars(lab)["litestream_credential_sets"] + [
        {"name": "auth-good", "access_key_id": auth_s3["access_key_id"],
         "secret_access_key": auth_s3["secret_access_key"]},
        {"name": "auth-bad", "access_key_id": auth_s3["access_key_id"], "secret_access_key": WRONG_SECRET}]
    data = {"litestream_apps": inventory_apps(lab) + extra, "litestream_credential_sets": sets,
            "litestream_first_sync_timeout": 30}
    try:
        started = time.time()
        proc = lab.playbook(PROVISION, "--limit", host["name"], "-e", extra_vars_file(tmp_path, "apps.json", data),
                            check=False)
        took = time.time() - started
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out[-4000:]
        assert "2 of 5 apps failed on lab-dokku-1" in out, out[-4000:]
        # the ownership record is read first (issue 22): the store's refusal fails the app before its sidecar starts
        assert ("app nobucket-1: cannot read who owns its replica, so no sidecar is started: the bucket does not "
                "exist (NoSuchBucket)") in out, out[-4000:]
        assert ("app badkey-1: cannot read who owns its replica, so no sidecar is started: authentication failed: "
                "the secret access key is wrong (SignatureDoesNotMatch)") in out, out[-4000:]
        for app in ("nobucket-1", "badkey-1"):
            assert lab.ssh(host, f"docker container inspect {sidecar(app)}", check=False).returncode != 0, app
        assert WRONG_SECRET not in out and auth_s3["secret_access_key"] not in out
        assert took < 30 + 60, f"the provision run took {took:.0f} s: the failures were not found at once"
        # the other apps of the run were converged: their sidecars run, auth-ok-1's included
        for app in ("shop-1", "notes-1", "auth-ok-1"):
            running = lab.ssh(host, f"docker container inspect --format '{{{{.State.Running}}}}' {sidecar(app)}",
                              check=False).stdout.strip()
            assert running == "true", f"{sidecar(app)} is not running"
        print(f"first sync: the provision run with two refused apps took {took:.1f} s")
    finally:
        gone = [dict(entry, state="absent") for entry in extra]
        sets_gone = sets[:-2] + [{"name": "auth-good", "state": "absent"}, {"name": "auth-bad", "state": "absent"}]
        cleanup = {"litestream_apps": inventory_apps(lab) + gone, "litestream_credential_sets": sets_gone}
        lab.playbook(PROVISION, "--limit", host["name"], "-e", extra_vars_file(tmp_path, "cleanup.json", cleanup))
        for entry in extra:
            lab.dokku(host, "--force", "apps:destroy", entry["app"], check=False)
        wait_for("the test's sidecars to be gone", lambda: not any(
            lab.ssh(host, f"docker container inspect {sidecar(e['app'])}", check=False).returncode == 0
            for e in extra), 30)
