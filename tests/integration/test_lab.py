"""The lab itself: real sshd + Ansible, inner dockerd, pinned Litestream, moto S3, sftp, stand-in."""
import json
import os
import re
import secrets
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, LAB, REPO, ansible_env


def assert_recap_clean(stdout):
    counts = re.findall(r"(?:unreachable|failed)=(\d+)", stdout)
    assert counts and set(counts) == {"0"}, stdout[-2000:]


def litestream_env(lab):
    creds = json.loads((lab.state / "s3-credentials.json").read_text())
    env = dict(os.environ, LITESTREAM_ACCESS_KEY_ID=creds["access_key_id"],
               LITESTREAM_SECRET_ACCESS_KEY=creds["secret_access_key"])
    env.pop("AWS_CA_BUNDLE", None)  # breaks every Litestream 0.5 S3 client
    return env


def test_ansible_ping_reaches_every_host_over_ssh(lab):
    proc = lab.ansible("all", "-m", "ansible.builtin.ping", "-o")
    lines = [line for line in proc.stdout.splitlines() if "SUCCESS" in line]
    assert sorted(line.split()[0] for line in lines) == sorted(h["name"] for h in lab.hosts)
    assert all('"ping": "pong"' in line for line in lines)
    assert len(lab.hosts) == 2


def test_host_keys_are_checked(lab, tmp_path):
    host = lab.hosts[0]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    proc = subprocess.run(["ssh", "-i", str(lab.state / "ssh" / "id_ed25519"), "-p", str(host["port"]),
                           "-o", f"UserKnownHostsFile={empty}", "-o", "StrictHostKeyChecking=yes",
                           "-o", "BatchMode=yes", "root@127.0.0.1", "true"], capture_output=True, text=True)
    assert proc.returncode == 255
    assert "Host key verification failed" in proc.stderr


def test_every_lab_server_listens_on_loopback_only(lab):
    ports = {h["port"] for h in lab.hosts} | {lab.facts["s3"]["port"], lab.facts["s3"]["backend_port"],
                                              lab.facts["sftp"]["port"]}
    listening = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr, port = local.rsplit(":", 1)
            if state == "0A" and int(port, 16) in ports:  # 0A = LISTEN
                listening.setdefault(int(port, 16), set()).add(addr)
    assert set(listening) == ports
    loopback = {"0100007F", "00000000000000000000000001000000"}
    assert all(addrs <= loopback for addrs in listening.values()), listening


def test_each_host_runs_its_dokku_generation(lab):
    seen = []
    for host in lab.hosts:
        out = lab.dokku(host, "version").stdout.strip()
        assert out == f"dokku version {host['dokku_version']}"
        seen.append(host["dokku_version"].rsplit(".", 1)[0])
    assert len(set(seen)) == 2, "the default lab mixes two Dokku generations"


def test_inner_dockerd_runs_the_pinned_litestream(lab):
    image = lab.facts["images"]["litestream"]
    for host in lab.hosts:
        out = lab.ssh(host, f"docker run --rm --network host {image} version").stdout.strip()
        assert out == "0.5.17"


def test_file_replica_dir_is_shared_between_hosts(lab):
    marker = f"shared-{secrets.token_hex(4)}"
    lab.ssh(lab.hosts[0], f"echo {marker} > /srv/lab-replicas/{marker}")
    try:
        assert lab.ssh(lab.hosts[1], f"cat /srv/lab-replicas/{marker}").stdout.strip() == marker
    finally:
        lab.ssh(lab.hosts[0], f"rm -f /srv/lab-replicas/{marker}")


@pytest.mark.parametrize("host_index", [0, 1])
def test_demo_app_writes_rows_through_the_standin(lab, host_index):
    """apps:create, storage, git:from-image: a real app container writes into the mounted DB."""
    host = lab.hosts[host_index]
    app = f"demo-{secrets.token_hex(3)}"
    storage = f"/var/lib/dokku/data/storage/{app}--db"
    db = f"{storage}/production.sqlite3"
    try:
        lab.dokku(host, "apps:create", app)
        lab.dokku(host, "storage:ensure-directory", f"{app}--db")
        lab.dokku(host, "storage:mount", app, f"{storage}:/app/db/litestream")
        lab.dokku(host, "git:from-image", app, "dsl-lab/demo-app:latest")
        count = "python3 -c \"import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(" \
                "'select count(*) from events').fetchone()[0])\" " + db
        deadline = time.time() + 20
        first = None
        while time.time() < deadline:
            proc = lab.ssh(host, count, check=False)
            if proc.returncode == 0 and int(proc.stdout) > 0:
                first = int(proc.stdout)
                break
            time.sleep(0.5)
        assert first, "the demo app wrote no row within 20 s"
        time.sleep(1.5)
        assert int(lab.ssh(host, count).stdout) >= first + 5, "the demo app stopped writing"
        # herokuish uid owns what the app wrote: storage:ensure-directory chowned the directory
        assert lab.ssh(host, f"stat -c %u:%g {db}").stdout.strip() == "32767:32767"
        report = json.loads(lab.dokku(host, "ps:report", app, "--format", "json").stdout)
        assert report["running"] == "true" and report["deployed"] == "true"
    finally:
        lab.dokku(host, "apps:destroy", app, "--force", check=False)
        lab.ssh(host, f"rm -rf {storage}", check=False)


def test_litestream_in_the_inner_docker_replicates_to_moto(lab, tmp_path):
    """A sidecar started in a lab host's own dockerd reaches moto on loopback; a plain restore proves it."""
    host = lab.hosts[0]
    s3 = lab.facts["s3"]
    name = f"lab-s3-{secrets.token_hex(3)}"
    work = f"/tmp/{name}"
    config = (f"dbs:\n  - path: /data/app.db\n    replica:\n      type: s3\n      bucket: {s3['bucket']}\n"
              f"      path: {name}\n      endpoint: {s3['endpoint']}\n      region: {s3['region']}\n"
              "      force-path-style: true\n      sync-interval: 1s\n")
    creds = json.loads((lab.state / "s3-credentials.json").read_text())
    env_file = f"LITESTREAM_ACCESS_KEY_ID={creds['access_key_id']}\n" \
               f"LITESTREAM_SECRET_ACCESS_KEY={creds['secret_access_key']}\n"
    insert = ("python3 -c \"import sqlite3; c=sqlite3.connect('/tmp/{n}/app.db'); "
              "c.execute('pragma journal_mode=wal'); c.execute('create table if not exists t(x)'); "
              "c.executemany('insert into t values (?)', [(i,) for i in range({k})]); c.commit()\"")
    try:
        lab.ssh(host, f"mkdir -p {work} && umask 077 && cat > {work}/env", input_text=env_file)
        lab.ssh(host, f"cat > {work}/litestream.yml", input_text=config)
        lab.ssh(host, insert.format(n=name, k=100))
        lab.ssh(host, f"docker run -d --name {name} --network host --env-file {work}/env "
                      f"-v {work}:/data -v {work}/litestream.yml:/etc/litestream.yml:ro "
                      f"{lab.facts['images']['litestream']} replicate")
        lab.ssh(host, insert.format(n=name, k=150))
        out = tmp_path / "restored.db"
        url = f"s3://{s3['bucket']}/{name}?endpoint={s3['endpoint']}&region={s3['region']}"
        deadline = time.time() + 20
        rows = None
        while time.time() < deadline:
            out.unlink(missing_ok=True)
            proc = subprocess.run([str(BIN / "litestream"), "restore", "-if-replica-exists", "-o", str(out), url],
                                  capture_output=True, text=True, env=litestream_env(lab))
            if proc.returncode == 0 and out.exists():
                rows = sqlite3.connect(out).execute("select count(*) from t").fetchone()[0]
                if rows == 250:
                    break
            time.sleep(1)
        assert rows == 250
    finally:
        lab.ssh(host, f"docker rm -f {name}; rm -rf {work}", check=False)


def test_the_lab_s3_refuses_a_wrong_key_as_a_real_store_does(lab):
    """The lab's moto checks keys (tests/lab/motoauth.py): through the endpoint the inventory names, the lab's key
    and its spare list the bucket, while a wrong secret for the lab's key id is refused (403 SignatureDoesNotMatch),
    for a write as for a listing, and an unknown key id too (403 InvalidAccessKeyId)."""
    import boto3
    import botocore.config
    import botocore.exceptions

    s3 = lab.facts["s3"]
    assert s3["authenticating"] is True
    creds = json.loads((lab.state / "s3-credentials.json").read_text())
    spare = json.loads(Path(s3["spare_credentials_file"]).read_text())
    assert creds["access_key_id"] != spare["access_key_id"] and creds["secret_access_key"] != spare["secret_access_key"]

    def client(key_id, secret):
        return boto3.client("s3", endpoint_url=s3["endpoint"], region_name=s3["region"], aws_access_key_id=key_id,
                            aws_secret_access_key=secret, config=botocore.config.Config(retries={"max_attempts": 1}))

    def refused(call):
        with pytest.raises(botocore.exceptions.ClientError) as err:
            call()
        return err.value.response["ResponseMetadata"]["HTTPStatusCode"], err.value.response["Error"]["Code"]

    good = client(creds["access_key_id"], creds["secret_access_key"])
    name = f"lab-auth-probe-{secrets.token_hex(3)}"
    for key in (creds, spare):
        listing = client(key["access_key_id"], key["secret_access_key"]).list_objects_v2(Bucket=s3["bucket"], MaxKeys=1)
        assert listing["ResponseMetadata"]["HTTPStatusCode"] == 200
    wrong = client(creds["access_key_id"], "Wr0ng" + creds["secret_access_key"][5:])
    assert refused(lambda: wrong.list_objects_v2(Bucket=s3["bucket"], MaxKeys=1)) == (403, "SignatureDoesNotMatch")
    assert refused(lambda: wrong.put_object(Bucket=s3["bucket"], Key=name, Body=b"x")) == (403, "SignatureDoesNotMatch")
    unknown = client("AKIA" + secrets.token_hex(8).upper(), creds["secret_access_key"])
    assert refused(lambda: unknown.list_objects_v2(Bucket=s3["bucket"], MaxKeys=1)) == (403, "InvalidAccessKeyId")
    # the refused write wrote nothing; the lab's key writes and removes
    assert good.list_objects_v2(Bucket=s3["bucket"], Prefix=name)["KeyCount"] == 0
    good.put_object(Bucket=s3["bucket"], Key=name, Body=b"x")
    try:
        assert good.list_objects_v2(Bucket=s3["bucket"], Prefix=name)["KeyCount"] == 1
    finally:
        good.delete_object(Bucket=s3["bucket"], Key=name)


def test_sftp_target_takes_a_replica_with_host_key_checked(lab, tmp_path):
    sftp = lab.facts["sftp"]
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("pragma journal_mode=wal")
    conn.execute("create table t(x)")
    conn.executemany("insert into t values (?)", [(i,) for i in range(321)])
    conn.commit()
    conn.close()
    path = f"{sftp['path']}/lab-{secrets.token_hex(3)}"
    config = tmp_path / "litestream.yml"
    config.write_text(f"dbs:\n  - path: {db}\n    replica:\n      type: sftp\n      host: {sftp['host']}\n"
                      f"      user: {sftp['user']}\n      key-path: {sftp['key_file']}\n"
                      f"      host-key: \"{sftp['host_key']}\"\n      path: {path}\n")
    env = litestream_env(lab)
    proc = subprocess.run([str(BIN / "litestream"), "replicate", "-once", "-config", str(config)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "host key not verified" not in proc.stdout + proc.stderr
    out = tmp_path / "restored.db"
    proc = subprocess.run([str(BIN / "litestream"), "restore", "-config", str(config), "-o", str(out), str(db)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert sqlite3.connect(out).execute("select count(*) from t").fetchone()[0] == 321


def test_provision_playbook_runs_by_fqcn_against_the_lab(lab):
    proc = lab.playbook("dokku_sqlite.litestream.provision")
    for host in lab.hosts:
        assert f"{host['name']}" in proc.stdout
    assert_recap_clean(proc.stdout)
    # the lab's example inventory gives every host two apps, each with its sidecar
    for index, host in enumerate(lab.hosts, start=1):
        names = lab.ssh(host, "docker ps --format '{{.Names}}'").stdout.split()
        assert {f"dokku.litestream.shop-{index}", f"dokku.litestream.notes-{index}"} <= set(names)


def test_down_removes_every_container_volume_and_process(tmp_path):
    """A separate one-host lab: up, then down leaves no container, volume or moto process."""
    env = dict(os.environ, DSL_LAB_NAME="dsl-teardown", DSL_LAB_PORT_BASE="22400",
               DSL_LAB_STATE=str(tmp_path / "state"))
    proc = subprocess.run([*LAB, "up", "--hosts", "1"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    moto_pid = int((tmp_path / "state" / "moto.pid").read_text())
    os.kill(moto_pid, 0)  # running now
    proc = subprocess.run([*LAB, "down"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    left = subprocess.run(["docker", "ps", "-aq", "--filter", "label=dsl-lab=dsl-teardown"],
                          capture_output=True, text=True).stdout.split()
    assert left == []
    volumes = subprocess.run(["docker", "volume", "ls", "-q", "--filter", "name=dsl-teardown"],
                             capture_output=True, text=True).stdout.split()
    assert volumes == []
    with pytest.raises(ProcessLookupError):
        os.kill(moto_pid, 0)


def test_readme_main_job_command_brings_up_the_lab_and_provisions(lab):
    """scripts/provision-lab, as the README shows it, against this session's lab (reused, not rebuilt)."""
    env = ansible_env()
    proc = subprocess.run([str(REPO / "scripts" / "provision-lab")], capture_output=True, text=True, env=env,
                          timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "PLAY [Provision Dokku hosts with Litestream replication]" in proc.stdout
    assert "PLAY [Deploy the lab's demo writer]" in proc.stdout
    assert_recap_clean(proc.stdout)
    for index, host in enumerate(lab.hosts, start=1):
        deployed = lab.dokku(host, "ps:report", f"shop-{index}", "--deployed").stdout.strip()
        assert deployed == "true"


def test_provision_from_the_built_tarball_installed_offline(lab, tmp_path):
    """What a user does: build, `ansible-galaxy collection install` into an empty path, run provision by FQCN."""
    dist = tmp_path / "dist"
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(dist), str(REPO)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    tarball = next(dist.glob("dokku_sqlite-litestream-*.tar.gz"))
    collections = tmp_path / "collections"
    env = ansible_env()
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections),
                           str(tarball)], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", lab.inventory, "dokku_sqlite.litestream.provision"],
                          capture_output=True, text=True, env=env, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert_recap_clean(proc.stdout)
    # the installed copy was the only one Ansible could see, not this checkout
    listed = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "list", "dokku_sqlite.litestream"],
                            capture_output=True, text=True, env=env, check=False).stdout
    assert re.findall(r"^# (.+)$", listed, re.M) == [str(collections / "ansible_collections")]
    assert re.search(r"^dokku_sqlite\.litestream\s+0\.1\.0", listed, re.M)
