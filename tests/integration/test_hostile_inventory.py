"""Hostile and mistaken inventory entries through the provision playbook (issue #12), on a provisioned host.

Each case adds one bad entry to (or changes one value of) the lab's litestream_apps or credential sets and
runs the provision playbook on lab-dokku-1. The run must fail with the entry's message from the inventory
check that litestream_host runs before its first read (the checks of litestream_validate), and nothing on
the host may change: the files under
/var/lib/dokku newer than a stamp (the apps' own database files aside, the demo writers of earlier tests
may still commit), the containers (name, image, state, restart policy) and the replica prefixes in S3 and
the file replica directory are the same before and after. A secret in a bad value never shows in the output.
"""
import copy
import json
import re

import pytest

from test_replication import extra_vars_file, inventory_apps, provision

HOST = "lab-dokku-1"
STORAGE = "/var/lib/dokku/data/storage"
KEY, SECRET = "AKIAHOSTILE", "hostile/Secret+Value"


def credential_sets(lab):
    import yaml
    return yaml.safe_load((lab.state / "group_vars" / "dokku.yml").read_text())["litestream_credential_sets"]


def with_app(**entry):
    def change(apps, _sets):
        apps.append(dict({"app": "hostile", "replica": {"url": "file:///srv/lab-replicas/lab-dokku-1/hostile"}},
                         **entry))
    return change


def with_replica(**replica):
    return with_app(replica=dict({"type": "s3", "bucket": "dsl-lab-replicas", "path": "lab-dokku-1/hostile",
                                  "endpoint": "{{ lab_s3_endpoint }}", "credentials": "lab-s3"}, **replica))


def copy_of_shop(apps, _sets):
    twin = copy.deepcopy(apps[0])
    twin["app"] = "shop-copy"
    apps.append(twin)


def bad_set(apps, sets):
    sets.append({"name": "hostile", "access_key_id": KEY, "secret_access_key": SECRET, "endpoint": "127.0.0.1:9000"})


CASES = {
    "app ..": (with_app(app=".."), "litestream_apps[2] (..): app: '..' is not a valid Dokku app name"),
    "app with a trailing newline": (with_app(app="hostile\n"), "app: 'hostile\\n' is not a valid Dokku app name"),
    "app with $(...)": (with_app(app="x$(reboot)"), "app: 'x$(reboot)' is not a valid Dokku app name"),
    "app of 300 characters": (with_app(app="a" * 300), "is too long: a Dokku app name has at most 63 characters"),
    "a -wal database": (with_app(databases=["production.sqlite3-wal"]),
                        "databases: 'production.sqlite3-wal' is the name of a SQLite -wal file"),
    "a database with ..": (with_app(databases=["../../etc/passwd"]), "must be a plain file name inside the storage"),
    "mount_path with :": (with_app(mount_path="/app/db:/etc"), "mount_path: '/app/db:/etc' must not contain ':'"),
    "mount_path with ..": (with_app(mount_path="/app/../etc"), "mount_path: '/app/../etc' must not contain '..'"),
    "chown ²": (with_app(chown="²"), "chown: '²' is not allowed"),
    "keys in a replica url": (with_app(replica={"url": "s3://%s:%s@bucket/x" % (KEY, SECRET)}),
                              "replica.url: the URL carries credentials before '@' (the value is not shown)"),
    "keys in an endpoint": (with_replica(endpoint="https://%s:%s@minio:9000" % (KEY, SECRET)),
                            "replica.endpoint: the URL carries credentials before '@' (the value is not shown)"),
    "file://relative": (with_app(replica={"url": "file://relative/path"}),
                        "replica.url: 'file://relative/path' is not an absolute file URL"),
    "a sync interval in words": (with_replica(sync_interval="1 second"), "is not a duration like 1s"),
    "a Litestream 0.3 key": (with_replica(retention="24h"), "replica option 'retention' is a Litestream 0.3 option"),
    "an image that is an option": (with_app(image="--privileged"), "image: '--privileged' is not a docker image"),
    "two apps on one replica": (copy_of_shop, "both replicate to s3://dsl-lab-replicas/lab-dokku-1/shop-1/"
                                              "production.sqlite3"),
    "an endpoint without scheme in a credential set": (bad_set, "litestream_credential_sets[2] (hostile): endpoint: "
                                                                "'127.0.0.1:9000' has no scheme"),
}


def host_state(lab, host, stamp):
    """What a run could change: files under /var/lib/dokku newer than the stamp (databases aside), the
    containers, and the replica prefixes (S3 and file). Listing prefixes, not files: Litestream compacts a
    replica's files on its own while the test runs."""
    files = lab.ssh(host, f"find /var/lib/dokku -newer {stamp} -not -path '{STORAGE}/*' | sort").stdout
    containers = lab.ssh(host, "docker ps -a --format '{{.Names}} {{.Image}} {{.State}}' | sort; "
                               "docker inspect --format '{{.Name}} {{.HostConfig.RestartPolicy.Name}}' "
                               "$(docker ps -aq) | sort").stdout
    replicas = sorted(p.name + "/" + q.name for p in (lab.state / "replicas").iterdir() if p.is_dir()
                      for q in p.iterdir())
    s3 = lab.facts["s3"]
    creds = json.loads((lab.state / "s3-credentials.json").read_text())
    import boto3
    client = boto3.client("s3", endpoint_url=s3["endpoint"], region_name=s3["region"],
                          aws_access_key_id=creds["access_key_id"], aws_secret_access_key=creds["secret_access_key"])
    listing = client.list_objects_v2(Bucket=s3["bucket"], Prefix=f"{host['name']}/", Delimiter="/")
    prefixes = sorted(p["Prefix"] for p in listing.get("CommonPrefixes", []))
    return {"files": files, "containers": containers, "file replicas": replicas, "s3 prefixes": prefixes}


def failure_messages(stdout):
    """The msg of every failed task, decoded from the default callback's `FAILED! => {...}` lines."""
    return [json.loads(line.split("FAILED! => ", 1)[1]).get("msg", "") for line in stdout.splitlines()
            if "FAILED! => " in line]


@pytest.fixture(scope="module")
def provisioned(lab):
    provision(lab, "--limit", HOST)  # fails the test unless the run succeeds
    return lab


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_entry_fails_the_play_and_changes_nothing(provisioned, tmp_path, case):
    lab = provisioned
    host = next(h for h in lab.hosts if h["name"] == HOST)
    change, message = CASES[case]
    apps, sets = inventory_apps(lab), credential_sets(lab)
    change(apps, sets)
    stamp = "/tmp/dsl-hostile-stamp"
    lab.ssh(host, f"touch {stamp}")
    before = host_state(lab, host, stamp)
    variables = extra_vars_file(tmp_path, "hostile.json", {"litestream_apps": apps, "litestream_credential_sets": sets})
    proc = provision(lab, "--limit", HOST, "-e", variables, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    messages = failure_messages(proc.stdout)
    assert len(messages) == 1 and message in messages[0], out[-3000:]
    assert "nothing was changed" in messages[0]
    assert re.search(rf"^{HOST}\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=1\b", proc.stdout, re.M), out[-2000:]
    assert "TASK [dokku_sqlite.litestream.replication : Ensure credential sets and the Litestream sidecar per app]" in out
    assert SECRET not in out and KEY + ":" not in out
    assert host_state(lab, host, stamp) == before
