#!/usr/bin/env python3
"""moto with authentication on: the lab's S3 server and the tests' own S3 stores check every key.

moto checks no key unless INITIAL_NO_AUTH_ACTION_COUNT=N is in its environment: then it serves its first
N requests unchecked and checks every later one as a real store does (the SigV4 signature against the
secret of an IAM access key, then the key's IAM policy): an unknown key id is refused with 403
InvalidAccessKeyId, a wrong secret with 403 SignatureDoesNotMatch, an action the policy does not allow
with 403 AccessDenied. Those first N requests bootstrap the store: per IAM user one CreateUser, one
PutUserPolicy and one CreateAccessKey per key (bootstrap_calls() counts them), exactly, so that nothing
else is ever served unchecked. Then the bucket is created with the first user's first key (a checked
request) and the bootstrap proves that the store refuses a wrong secret, or fails.

One implementation for the lab (lab.py starts its moto with moto_env() and runs the bootstrap before its
S3 endpoint opens) and for the tests that start a store of their own (authenticating_moto()).

    motoauth.py bootstrap ENDPOINT SPEC_JSON      run with the venv's python (boto3); prints the keys as JSON

SPEC_JSON: {"users": {NAME: {"actions": ["s3:*"], "keys": 1}, ...}, "bucket": NAME, "region": REGION}
Output:    {"endpoint": ENDPOINT, "users": {NAME: [{"access_key_id": ..., "secret_access_key": ...}, ...]}}
Test code only (tests/lab), never shipped.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REGION = "us-east-1"
# the secret of a signed request that the bootstrap's proof sends: the store must refuse it
PROOF_SECRET = "not-the-secret-of-this-key-0000000000000"


def spec(users: dict, bucket: str, region: str = REGION) -> dict:
    """users: {name: ["s3:*"]} (one key) or {name: {"actions": [...], "keys": N}}; in order, the first
    user's first key creates the bucket."""
    norm = {}
    for name, value in users.items():
        value = {"actions": list(value)} if isinstance(value, (list, tuple)) else dict(value)
        norm[name] = {"actions": list(value["actions"]), "keys": int(value.get("keys", 1))}
    return {"users": norm, "bucket": bucket, "region": region}


def bootstrap_calls(spec_: dict) -> int:
    """How many unchecked requests the bootstrap makes: moto's INITIAL_NO_AUTH_ACTION_COUNT."""
    return sum(2 + user["keys"] for user in spec_["users"].values())


def moto_env(spec_: dict, base: dict | None = None) -> dict:
    """The environment of a moto server that checks every request after the bootstrap's."""
    env = dict(os.environ if base is None else base, INITIAL_NO_AUTH_ACTION_COUNT=str(bootstrap_calls(spec_)))
    env.pop("AWS_CA_BUNDLE", None)
    return env


def bootstrap(endpoint: str, spec_: dict) -> dict:
    """Create the users, their policies and keys (the unchecked requests), the bucket (checked), and prove
    that a wrong secret is refused. Needs boto3 (the venv)."""
    import boto3
    import botocore.exceptions

    region = spec_["region"]
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=region,
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    keys: dict[str, list[dict]] = {}
    for name, user in spec_["users"].items():
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="lab", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": user["actions"], "Resource": "*"}]}))
        keys[name] = []
        for _ in range(user["keys"]):
            made = iam.create_access_key(UserName=name)["AccessKey"]
            keys[name].append({"access_key_id": made["AccessKeyId"], "secret_access_key": made["SecretAccessKey"]})
    first = next(iter(keys.values()))[0]

    def s3(key_id: str, secret: str):
        return boto3.client("s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=key_id,
                            aws_secret_access_key=secret)
    try:
        s3(first["access_key_id"], first["secret_access_key"]).create_bucket(Bucket=spec_["bucket"])
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    try:
        s3(first["access_key_id"], PROOF_SECRET).list_objects_v2(Bucket=spec_["bucket"], MaxKeys=1)
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "SignatureDoesNotMatch":
            raise
    else:
        raise SystemExit(f"the S3 server at {endpoint} accepted a wrong secret: it does not check keys "
                         "(was it started with motoauth.moto_env, and did nothing else reach it first?)")
    return {"endpoint": endpoint, "users": keys}


def enable(endpoint: str, spec_: dict, timeout: float = 10) -> None:
    """Turn authentication on in a moto server that runs without it (keeping what it holds): moto's own
    /moto-api/reset-auth, after which its next bootstrap_calls() requests are the unchecked ones. Run the
    bootstrap next, with nothing else reaching the server in between."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", method="POST",
                                     data=str(bootstrap_calls(spec_)).encode(),
                                     headers={"Content-Type": "text/plain"})  # a form body would not reach it
    with urllib.request.urlopen(request, timeout=timeout) as response:
        json.loads(response.read())


def run_bootstrap(python: str | Path, endpoint: str, spec_: dict, timeout: float = 60) -> dict:
    """bootstrap() in `python` (the venv's, which has boto3), from a process that may not have boto3."""
    env = dict(os.environ)
    env.pop("AWS_CA_BUNDLE", None)
    proc = subprocess.run([str(python), str(Path(__file__).resolve()), "bootstrap", endpoint, json.dumps(spec_)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"the bootstrap of the authenticating S3 server at {endpoint} failed "
                           f"(rc={proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def wait_port(port: int, timeout: float = 30, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while True:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the S3 server meant for 127.0.0.1:{port} exited (rc={proc.returncode})")
        if time.time() > deadline:
            raise RuntimeError(f"nothing answers on 127.0.0.1:{port} after {timeout} s")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# moto_server serves each request in a thread, and its conditional PUT checks and writes in two backend calls with
# no lock between (moto/s3/responses.py): not atomic under concurrency. One request at a time is what a real store's
# atomic If-None-Match looks like from outside: the claims' concurrency proof runs on that.
SINGLE_THREADED = ("import sys; from werkzeug.serving import run_simple; "
                   "from moto.server import DomainDispatcherApplication, create_backend_app; "
                   "run_simple(sys.argv[1], int(sys.argv[2]), DomainDispatcherApplication(create_backend_app), "
                   "threaded=False)")


@contextlib.contextmanager
def authenticating_moto(log_dir: Path, users: dict, bucket: str, name: str = "moto-auth",
                        venv_bin: Path | None = None, threaded: bool = True):
    """A moto server of its own on a free port of 127.0.0.1 that checks every key once the bootstrap is done;
    yields bootstrap()'s result ({"endpoint", "users": {name: [key, ...]}}) and stops the server after.
    threaded=False: one request at a time (SINGLE_THREADED)."""
    venv_bin = Path(venv_bin or Path(sys.executable).parent)
    spec_ = spec(users, bucket)
    port = free_port()
    log = open(Path(log_dir) / f"{name}.log", "wb")
    argv = ([str(venv_bin / "moto_server"), "-H", "127.0.0.1", "-p", str(port)] if threaded else
            [str(venv_bin / "python"), "-c", SINGLE_THREADED, "127.0.0.1", str(port)])
    proc = subprocess.Popen(argv,
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=moto_env(spec_),
                            start_new_session=True)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_port(port, proc=proc)
        yield run_bootstrap(venv_bin / "python", endpoint, spec_)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "bootstrap":
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(bootstrap(argv[1], json.loads(argv[2]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
