"""Provision tells the truth (issue #14): a sidecar whose replica store refuses it fails its app, with the
store's own reason, within the first-sync bound, and the other apps of the run succeed.

The lab's moto accepts any key, so this test runs a second moto server of its own on 127.0.0.1 with IAM
authentication on (moto's INITIAL_NO_AUTH_ACTION_COUNT: the first requests create a user, its key and its
S3 policy, every later request is checked). On lab-dokku-1, next to its own apps, three apps replicate to it:
  auth-ok-1       the right key, an existing bucket            -> provisioned, first sync proven
  nobucket-1      the right key, a bucket that does not exist  -> fails: NoSuchBucket
  badkey-1        the right key id with a wrong secret          -> fails: SignatureDoesNotMatch
The apps have no database yet, so the proof is a listing of each replica (litestream ltx -level 0).
"""
import contextlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import BIN
from test_replication import PROVISION, extra_vars_file, inventory_apps, sidecar, wait_for

WRONG_SECRET = "Wr0ngSecretThatMustNeverBePrinted/xyz"
BUCKET = "dsl-auth-bucket"
BOOTSTRAP = r"""
import json, os, boto3
endpoint = os.environ["ENDPOINT"]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bootstrap", aws_secret_access_key="x")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="litestream")
key = iam.create_access_key(UserName="litestream")["AccessKey"]
iam.put_user_policy(UserName="litestream", PolicyName="s3", PolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                  aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=os.environ["BUCKET"])
print(json.dumps({"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}))
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def authenticating_moto(tmp_path, bootstrap, bootstrap_calls, name="moto-auth"):
    """A moto server that checks every key once `bootstrap_calls` unauthenticated requests (the bootstrap's IAM
    calls) are spent; yields the bootstrap program's JSON output with the endpoint added."""
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(bootstrap_calls))
    env.pop("AWS_CA_BUNDLE", None)
    log = open(tmp_path / f"{name}.log", "wb")
    proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log,
                            env=env, start_new_session=True)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.time() < deadline and proc.poll() is None, "the authenticating moto did not start"
            time.sleep(0.2)
        boot = subprocess.run([sys.executable, "-c", bootstrap], capture_output=True, text=True, timeout=60,
                              env=dict(env, ENDPOINT=endpoint, BUCKET=BUCKET))
        assert boot.returncode == 0, boot.stderr
        yield dict(json.loads(boot.stdout), endpoint=endpoint)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def auth_s3(tmp_path):
    """A moto server that checks every key (IAM on after the 3 bootstrap requests)."""
    with authenticating_moto(tmp_path, BOOTSTRAP, 3) as found:
        yield found


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
        assert "app nobucket-1: the sidecar runs, but the bucket does not exist (NoSuchBucket)" in out, out[-4000:]
        assert ("app badkey-1: the sidecar runs, but authentication failed: the secret access key is wrong "
                "(SignatureDoesNotMatch)") in out, out[-4000:]
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
