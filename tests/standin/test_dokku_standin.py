"""Behaviour of the Dokku stand-in, checked against the documented behaviour of real Dokku.

Source of the expectations: /work/shared/reference/dokku-and-dokku-litestream.md section 3 and
dokku/dokku's source. Generations: bash storage (<= 0.37.4), Go storage (0.37.5-0.37.x) and
named storage entries (>= 0.38.0), plus the version gates around them.
"""

import hashlib
import json
import os
import stat
import subprocess

import pytest

from conftest import REPO, STANDIN, TEST_IMAGE_V2, container, docker

BASH, GO37, V38 = "0.30.5", "0.37.10", "0.38.27"
GENERATIONS = [BASH, GO37, V38]
STORAGE = "/var/lib/dokku/data/storage"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def owner(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid


# ----------------------------------------------------------------------------- global behaviour

def test_standin_is_an_executable_script(dokku):
    assert STANDIN.read_text().startswith("#!/usr/bin/env python3\n")
    assert mode(STANDIN) == 0o755
    res = subprocess.run([str(STANDIN), "version"], capture_output=True, text=True,
                         env=dokku.env(), timeout=60)
    assert (res.returncode, res.stdout) == (0, "dokku version 0.38.27\n")


@pytest.mark.parametrize("version", ["0.30.5", "0.37.4", "0.37.5", "0.38.0", "0.38.27"])
def test_version_prints_dokku_version(make_dokku, version):
    res = make_dokku(version).ok("version")
    assert res.stdout == f"dokku version {version}\n"
    assert res.stderr == ""


def test_version_from_file_then_default(dokku):
    res = dokku("version", DOKKU_LAB_VERSION="")
    assert res.stdout == "dokku version 0.38.27\n"
    version_file = dokku.path("/etc/dokku-lab/version")
    version_file.parent.mkdir(parents=True)
    version_file.write_text("0.37.10\n")
    assert dokku("version", DOKKU_LAB_VERSION="").stdout == "dokku version 0.37.10\n"
    assert dokku("version").stdout == "dokku version 0.38.27\n"  # env wins over the file


def test_unknown_command(dokku):
    res = dokku("frobnicate:now", "x")
    assert res.returncode == 1
    assert res.stdout == ""
    assert res.stderr == (" !     `frobnicate:now x` is not a dokku command.\n"
                          " !     See `dokku help` for a list of available commands.\n")


@pytest.mark.parametrize("version,cmd", [("0.37.10", "storage:create"),
                                        ("0.25.4", "storage:ensure-directory"),
                                        ("0.23.9", "git:from-image")])
def test_commands_missing_in_older_versions(make_dokku, version, cmd):
    res = make_dokku(version)(cmd, "x")
    assert res.returncode == 1
    assert f"`{cmd} x` is not a dokku command." in res.stderr


def test_quiet_only_with_the_flag_not_without_a_tty(dokku):
    """dokku@v0.38.27:L88 sets DOKKU_QUIET_OUTPUT without a TTY but does not export it, so the
    subcommands still print; --quiet exports it (common/functions@v0.38.27 parse_args). Dokku's own
    storage bats (no TTY, no --quiet) expect the quiet-gated "Setting directory ownership" line."""
    res = dokku("apps:create", "quiet-app")
    assert (res.returncode, res.stdout, res.stderr) == (0, "-----> Creating quiet-app...\n", "")
    res = dokku("--quiet", "apps:create", "quiet-flag-app")
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    res = dokku("apps:create", "exported-app", DOKKU_QUIET_OUTPUT="1")
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    dokku.ok("--force", "apps:destroy", "quiet-flag-app")
    dokku.ok("--force", "apps:destroy", "exported-app")
    res = dokku("apps:create", "loud-app", DOKKU_FORCE_TTY="true")
    assert res.stdout == "-----> Creating loud-app...\n"
    res = dokku("--quiet", "apps:create", "flag-app", DOKKU_FORCE_TTY="true")
    assert res.stdout == ""
    res = dokku("apps:list", "--quiet", DOKKU_FORCE_TTY="true")
    assert res.stdout == "flag-app\nloud-app\nquiet-app\n"
    res = dokku("apps:list", DOKKU_FORCE_TTY="true")
    assert res.stdout == "=====> My Apps\nflag-app\nloud-app\nquiet-app\n"


def test_call_log_masks_config_values(dokku):
    dokku.ok("apps:create", "app1")
    dokku.ok("config:set", "--no-restart", "app1", "SECRET=hunter2", "TOKEN=abc=def")
    dokku("apps:exists", "missing")
    calls = dokku.calls()
    assert [c["argv"] for c in calls] == [
        ["apps:create", "app1"],
        ["config:set", "--no-restart", "app1", "SECRET=***", "TOKEN=***"],
        ["apps:exists", "missing"],
    ]
    assert [c["rc"] for c in calls] == [0, 0, 20]
    for call in calls:
        assert set(call) == {"ts", "argv", "rc", "duration_ms"}
        assert call["duration_ms"] >= 0
    raw = dokku.path("/var/log/dokku-lab/calls.jsonl").read_text()
    assert "hunter2" not in raw and "abc=def" not in raw


# ----------------------------------------------------------------------------- apps

@pytest.mark.parametrize("version", GENERATIONS)
def test_apps_exists(make_dokku, version):
    dokku = make_dokku(version)
    res = dokku("apps:exists", "missing")
    assert (res.returncode, res.stdout, res.stderr) == (20, "", " !     App missing does not exist\n")
    dokku.ok("apps:create", "present")
    res = dokku("apps:exists", "present")
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


@pytest.mark.parametrize("version,message", [
    (GO37, "App name must begin with lowercase alphanumeric character, and cannot include "
           "uppercase characters, colons, or underscores"),
    (V38, "App name must begin with lowercase alphanumeric character, and may only contain "
          "lowercase alphanumerics, dots, and hyphens"),
])
def test_invalid_app_name(make_dokku, version, message):
    dokku = make_dokku(version)
    for cmd in ("apps:create", "apps:exists"):
        res = dokku(cmd, "Bad_Name")
        assert (res.returncode, res.stderr) == (1, f" !     {message}\n")


def test_apps_create_twice(dokku):
    dokku.ok("apps:create", "dup")
    res = dokku("apps:create", "dup")
    assert (res.returncode, res.stderr) == (1, " !     Name is already taken\n")


@pytest.mark.parametrize("version", GENERATIONS)
def test_apps_create_on_disk(make_dokku, version):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    assert mode(dokku.path("/home/dokku/app1")) == 0o755
    created = dokku.path("/var/lib/dokku/config/apps/app1/created-at")
    assert created.read_text().isdigit()
    # every new app gets the default restart policy as a deploy-phase docker option
    if version == V38:
        deploy = dokku.path("/var/lib/dokku/config/docker-options/app1/_default_.deploy")
    else:
        deploy = dokku.path("/home/dokku/app1/DOCKER_OPTIONS_DEPLOY")
    assert deploy.read_text() == "--restart=on-failure:10\n"


def test_files_owned_by_dokku_user_when_it_exists(dokku):
    dokku.extra_env["DOKKU_LAB_SYSTEM_USER"] = "nobody"
    dokku.ok("apps:create", "owned")
    dokku.ok("config:set", "--no-restart", "owned", "A=1")
    assert owner(dokku.path("/home/dokku/owned")) == (65534, 65534)
    assert owner(dokku.path("/var/lib/dokku/config/owned/ENV")) == (65534, 65534)
    assert owner(dokku.path("/var/lib/dokku/config/apps/owned/created-at")) == (65534, 65534)


def test_apps_list(dokku):
    res = dokku("apps:list")
    assert (res.returncode, res.stdout, res.stderr) == (
        0, "=====> My Apps\n", " !     You haven't deployed any applications yet\n")
    dokku.ok("apps:create", "b-app")
    dokku.ok("apps:create", "a-app")
    assert dokku.ok("apps:list").stdout == "=====> My Apps\na-app\nb-app\n"
    assert dokku.ok("--quiet", "apps:list").stdout == "a-app\nb-app\n"


@pytest.mark.parametrize("version", ["0.38.21", "0.38.27"])
def test_apps_list_json(make_dokku, version):
    dokku = make_dokku(version)
    assert dokku.ok("apps:list", "--format", "json").stdout == "[]\n"
    dokku.ok("apps:create", "b-app")
    dokku.ok("apps:create", "a-app")
    assert json.loads(dokku.ok("apps:list", "--format", "json").stdout) == ["a-app", "b-app"]


@pytest.mark.parametrize("version", ["0.37.10", "0.38.20"])
def test_apps_list_json_not_before_0_38_21(make_dokku, version):
    res = make_dokku(version)("apps:list", "--format", "json")
    assert res.returncode == 2
    assert res.stderr.startswith("unknown flag: --format\nUsage of apps:list:")
    assert res.stdout == ""


def test_apps_destroy_needs_confirmation(dokku, docker_engine):
    dokku.ok("apps:create", "doomed")
    res = dokku("apps:destroy", "doomed", input="wrong\n")
    assert res.returncode == 1
    assert res.stderr.startswith(" !     WARNING: Potentially Destructive Action\n"
                                 " !     This command will destroy app doomed.\n"
                                 ' !     To proceed, type "doomed"\n')
    assert dokku.path("/home/dokku/doomed").is_dir()
    res = dokku("apps:destroy", "doomed", input="")
    assert res.returncode == 1 and dokku.path("/home/dokku/doomed").is_dir()
    res = dokku.ok("apps:destroy", "doomed", input="doomed\n")
    assert "-----> Destroying doomed (including all add-ons)" in res.stdout
    assert not dokku.path("/home/dokku/doomed").exists()


@pytest.mark.parametrize("version", GENERATIONS)
def test_apps_destroy_keeps_storage(make_dokku, version, docker_engine):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "gone")
    dokku.ok("storage:ensure-directory", "gone-db")
    dokku.ok("storage:mount", "gone", f"{STORAGE}/gone-db:/app/db")
    dokku.ok("config:set", "--no-restart", "gone", "A=1")
    (dokku.path(f"{STORAGE}/gone-db") / "db.sqlite3").write_text("data")
    res = dokku("apps:destroy", "gone", "--force")
    assert res.returncode == 0, res.stderr
    assert not dokku.path("/home/dokku/gone").exists()
    assert not dokku.path("/var/lib/dokku/config/apps/gone").exists()
    assert not dokku.path("/var/lib/dokku/config/storage/gone").exists()
    assert not dokku.path("/var/lib/dokku/config/gone/ENV").exists()
    assert (dokku.path(f"{STORAGE}/gone-db") / "db.sqlite3").read_text() == "data"
    assert dokku("apps:exists", "gone").returncode == 20


# ----------------------------------------------------------------------------- config

@pytest.mark.parametrize("version,env_file", [
    (BASH, "/home/dokku/app1/ENV"), ("0.37.10", "/home/dokku/app1/ENV"),
    ("0.38.0", "/var/lib/dokku/config/app1/ENV"), (V38, "/var/lib/dokku/config/app1/ENV"),
])
def test_config_set_writes_env_file(make_dokku, version, env_file):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    res = dokku.ok("config:set", "--no-restart", "app1", "B=two words", "A=1", 'C=q"$x')
    assert (res.stdout, res.stderr) == ('-----> Setting config vars\n       A:  1\n       B:  two words\n'
                                        '       C:  q"$x\n', "")
    assert dokku.ok("--quiet", "config:set", "--no-restart", "app1", "D=4").stdout == ""
    dokku.ok("config:unset", "--no-restart", "app1", "D")
    path = dokku.path(env_file)
    assert mode(path) == 0o600
    assert path.read_text() == 'A=1\nB="two words"\nC="q\\"\\$x"\n'
    inode = path.stat().st_ino
    dokku.ok("config:set", "--no-restart", "app1", "A=1")  # identical value: rewritten anyway
    assert path.stat().st_ino != inode
    assert dokku.ok("config:get", "app1", "C").stdout == 'q"$x\n'


def test_config_set_output_with_tty(dokku):
    dokku.ok("apps:create", "app1")
    res = dokku.ok("config:set", "--no-restart", "app1", "LONG_KEY=1", "K=v", DOKKU_FORCE_TTY="true")
    assert res.stdout == ("-----> Setting config vars\n"
                          "       K:         v\n"
                          "       LONG_KEY:  1\n")


def test_config_set_undeployed_app_does_not_restart(dokku):
    dokku.ok("apps:create", "app1")
    res = dokku.ok("config:set", "app1", "A=1", DOKKU_FORCE_TTY="true")
    assert "Restarting" not in res.stdout


def test_config_get(dokku):
    dokku.ok("apps:create", "app1")
    dokku.ok("config:set", "--no-restart", "app1", "Q=it's")
    res = dokku("config:get", "app1", "MISSING")
    assert (res.returncode, res.stdout, res.stderr) == (1, "", "")
    assert dokku.ok("config:get", "app1", "Q").stdout == "it's\n"
    assert dokku.ok("config:get", "--quoted", "app1", "Q").stdout == "'it'\\''s'\n"
    res = dokku("config:get", "missing-app", "Q")
    assert (res.returncode, res.stderr) == (20, " !     App missing-app does not exist\n")


def test_config_set_validation(dokku):
    dokku.ok("apps:create", "app1")
    res = dokku("config:set", "--no-restart", "app1", "1BAD=x")
    assert (res.returncode, res.stderr) == (1, " !     Invalid key name: '1BAD'\n")
    res = dokku("config:set", "--no-restart", "app1", "NOEQUALS")
    assert (res.returncode, res.stderr) == (1, " !     Invalid env pair: NOEQUALS\n")


def test_config_set_encoded_and_global(dokku):
    dokku.ok("apps:create", "app1")
    dokku.ok("config:set", "--encoded", "--no-restart", "app1", "B64=aGVsbG8gd29ybGQK")
    assert dokku.ok("config:get", "app1", "B64").stdout == "hello world\n\n"
    dokku.ok("config:set", "--global", "G=1")
    assert dokku.path("/var/lib/dokku/config/--global/ENV").read_text() == "G=1\n"
    assert dokku.ok("config:get", "--global", "G").stdout == "1\n"


def test_config_global_path_before_038(make_dokku):
    dokku = make_dokku(GO37)
    dokku.ok("config:set", "--global", "G=1")
    assert dokku.path("/home/dokku/ENV").read_text() == "G=1\n"


def test_config_export_and_show(dokku):
    dokku.ok("apps:create", "app1")
    dokku.ok("config:set", "--no-restart", "app1", "B=x y", "A=it's", "N=5")
    assert json.loads(dokku.ok("config:export", "--format", "json", "app1").stdout) == \
        {"A": "it's", "B": "x y", "N": "5"}
    assert dokku.ok("config:export", "--format", "envfile", "app1").stdout == \
        'A="it\'s"\nB="x y"\nN=5\n'
    assert dokku.ok("config:export", "--format", "shell", "app1").stdout == \
        "A='it'\\''s' B='x y' N='5' "
    assert dokku.ok("config:export", "app1").stdout == \
        "export A='it'\\''s'\nexport B='x y'\nexport N='5'\n"
    res = dokku("config:export", "--format", "yaml", "app1")
    assert (res.returncode, res.stderr) == (1, " !     Unknown export format: yaml\n")
    assert dokku.ok("--quiet", "config:show", "app1").stdout == "A:  it's\nB:  x y\nN:  5\n"
    assert dokku.ok("config:show", "app1").stdout == "=====> app1 env vars\nA:  it's\nB:  x y\nN:  5\n"


# ----------------------------------------------------------------------------- storage:ensure-directory

@pytest.mark.parametrize("version", ["0.30.5", "0.37.4", "0.37.5", "0.37.10", "0.38.0", "0.38.27"])
def test_ensure_directory(make_dokku, version):
    dokku = make_dokku(version)
    # storage-1.bats@v0.38.27:L51-57 (storage.bats at the older tags): without a TTY and without
    # --quiet the ownership line is printed
    res = dokku.ok("storage:ensure-directory", "app1-db")
    assert res.stdout == (f"-----> Ensuring {STORAGE}/app1-db exists\n"
                          "       Setting directory ownership to 32767:32767\n"
                          "       Directory ready for mounting\n")
    deprecation = " !     Deprecated: please use 'storage:create' instead of 'storage:ensure-directory'\n"
    assert res.stderr == (deprecation if version == "0.38.27" else "")  # from v0.38.7
    assert dokku.ok("--quiet", "storage:ensure-directory", "app1-db").stdout == \
        f"-----> Ensuring {STORAGE}/app1-db exists\n"
    path = dokku.path(f"{STORAGE}/app1-db")
    assert mode(path) == 0o755 and owner(path) == (32767, 32767)
    # chown -R over the whole tree on every call, e.g. a DB restored as root
    (path / "db.sqlite3").write_text("x")
    os.chown(path / "db.sqlite3", 0, 0)
    res = dokku.ok("storage:ensure-directory", "app1-db", DOKKU_FORCE_TTY="true")
    assert res.stdout == (f"-----> Ensuring {STORAGE}/app1-db exists\n"
                          "       Setting directory ownership to 32767:32767\n"
                          "       Directory ready for mounting\n")
    assert owner(path / "db.sqlite3") == (32767, 32767)
    assert not dokku.path("/var/lib/dokku/data/storage-registry/entries").exists()


@pytest.mark.parametrize("version", [BASH, V38])
def test_ensure_directory_validation(make_dokku, version):
    dokku = make_dokku(version)
    res = dokku("storage:ensure-directory", "bad/name")
    assert res.returncode == 1
    assert res.stderr.endswith(
        " !     Directory can only contain the following set of characters: [A-Za-z0-9_-]\n")
    res = dokku("storage:ensure-directory")
    assert res.returncode == 1 and res.stderr.endswith(" !     Please specify a directory to create\n")


@pytest.mark.parametrize("version,ok", [("0.30.5", False), ("0.37.4", False), ("0.37.5", True),
                                        ("0.38.27", True)])
def test_ensure_directory_chown_root(make_dokku, version, ok):
    """`root` is a --chown name from v0.33.0 (storage internal-functions@v0.37.4:L41-56); before, it
    fails before the mkdir. Up to v0.37.4 the chown script accepts only 32767/1000/2000 and says so on
    stdout after the mkdir (bin/chown-storage-dir@v0.37.4:L19-22); from v0.37.5 0 is allowed."""
    dokku = make_dokku(version)
    res = dokku("storage:ensure-directory", "--chown", "root", "rootdir")
    path = dokku.path(f"{STORAGE}/rootdir")
    if ok:
        assert res.returncode == 0 and owner(path) == (0, 0)
    elif version == "0.30.5":
        assert (res.returncode, res.stderr) == (1, " !     Unsupported chown permissions\n")
        assert not path.exists()
    else:
        assert path.is_dir()  # mkdir happens before the chown script
        assert res.returncode == 1
        assert res.stdout.endswith(" !     Unsupported chown permissions. Supported values: 32767, 1000, 2000\n")


@pytest.mark.parametrize("version,name,ok", [
    ("0.30.5", "paketo", False), ("0.30.5", "packeto", True),
    ("0.37.4", "paketo", True), ("0.37.4", "packeto", True), ("0.38.27", "paketo", True)])
def test_ensure_directory_paketo_from_0_35_17(make_dokku, version, name, ok):
    """storage.bats@v0.30.5:L93 uses `--chown packeto`, @v0.37.4:L93 `--chown paketo` (2000); the
    `paketo` spelling exists from v0.35.17, `packeto` stays with a notice."""
    dokku = make_dokku(version)
    res = dokku("storage:ensure-directory", "--chown", name, "pkdir")
    if ok:
        assert res.returncode == 0 and "Setting directory ownership to 2000:2000" in res.stdout
    else:
        assert (res.returncode, res.stderr) == (1, " !     Unsupported chown permissions\n")


@pytest.mark.parametrize("version,ok", [("0.37.10", False), ("0.38.21", False), ("0.38.22", True)])
def test_ensure_directory_numeric_chown(make_dokku, version, ok):
    dokku = make_dokku(version)
    res = dokku("storage:ensure-directory", "--chown", "1234", "numdir")
    if ok:
        assert res.returncode == 0 and owner(dokku.path(f"{STORAGE}/numdir")) == (1234, 1234)
    else:
        assert res.returncode == 1
        assert res.stderr.endswith(" !     Unsupported chown permissions\n")


def test_ensure_directory_chown_forms(make_dokku):
    go = make_dokku("0.37.5")
    go.ok("storage:ensure-directory", "--chown=heroku", "eqdir")
    assert owner(go.path(f"{STORAGE}/eqdir")) == (1000, 1000)
    go.ok("storage:ensure-directory", "--chown", "false", "nochown")
    assert owner(go.path(f"{STORAGE}/nochown")) == (os.geteuid(), os.getegid())
    # bash only knows `--chown VALUE`; `--chown=heroku` is a word, the last word is the directory
    bash = make_dokku("0.30.5")
    bash.ok("storage:ensure-directory", "--chown=heroku", "bashdir")
    assert owner(bash.path(f"{STORAGE}/bashdir")) == (32767, 32767)


# ----------------------------------------------------------------------------- storage:mount/unmount

def legacy_name(host):
    return "legacy-" + hashlib.sha1(host.encode()).hexdigest()[:10]


@pytest.mark.parametrize("version", GENERATIONS)
def test_storage_mount_duplicate_and_layout(make_dokku, version):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    host = f"{STORAGE}/app1-db"
    res = dokku("storage:mount", "app1", f"{host}:/app/db")
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    res = dokku("storage:mount", "app1", f"{host}:/app/db")
    assert (res.returncode, res.stdout, res.stderr) == (1, "", " !     Mount path already exists.\n")
    if version == V38:
        entry = dokku.path(f"/var/lib/dokku/data/storage-registry/entries/{legacy_name(host)}.json")
        assert mode(entry) == 0o600
        assert json.loads(entry.read_text()) == {
            "name": legacy_name(host), "scheduler": "docker-local", "host_path": host,
            "schema_version": 1}
        mounts = dokku.path("/var/lib/dokku/config/storage/app1/mounts")
        assert [json.loads(line) for line in mounts.read_text().splitlines()] == [{
            "entry_name": legacy_name(host), "container_path": "/app/db",
            "phases": ["deploy", "run"], "process_type": "_default_"}]
        assert not dokku.path("/home/dokku/app1/DOCKER_OPTIONS_RUN").exists()
    else:
        deploy = dokku.path("/home/dokku/app1/DOCKER_OPTIONS_DEPLOY").read_text()
        run = dokku.path("/home/dokku/app1/DOCKER_OPTIONS_RUN").read_text()
        assert deploy == f"--restart=on-failure:10\n-v {host}:/app/db\n"
        assert run == f"-v {host}:/app/db\n"


@pytest.mark.parametrize("version", GENERATIONS)
def test_storage_unmount(make_dokku, version):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    res = dokku("storage:unmount", "app1", "/srv/x:/x")
    assert (res.returncode, res.stderr) == (1, " !     Mount path does not exist.\n")
    dokku.ok("storage:mount", "app1", "/srv/x:/x")
    dokku.ok("storage:unmount", "app1", "/srv/x:/x")
    assert dokku.ok("--quiet", "storage:list", "app1").stdout == ""
    dokku.ok("storage:mount", "app1", "/srv/x:/x")  # mountable again


@pytest.mark.parametrize("version", GENERATIONS)
def test_storage_mount_validation(make_dokku, version):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    res = dokku("storage:mount", "app1", "/only-host")
    if version == V38:
        # 0.38 takes an argument without a colon as the name of a storage entry
        assert (res.returncode, res.stderr) == (1, ' !     storage entry "/only-host" does not '
                                                   'exist; create it first with `dokku storage:create`\n')
    else:
        assert (res.returncode, res.stderr) == (
            1, " !     Storage path must be two valid paths divided by colon.\n")
    res = dokku("storage:mount", "app1", "x:/data")
    assert res.returncode == 1
    assert res.stderr.startswith(" !     Volume name must be two characters or more.")
    res = dokku("storage:mount", "nope", "/a:/b")
    assert (res.returncode, res.stderr) == (20, " !     App nope does not exist\n")
    # the host path is not checked for existence; named docker volumes are accepted
    dokku.ok("storage:mount", "app1", "/does/not/exist:/data")
    dokku.ok("storage:mount", "app1", "named-vol:/cache")


# ----------------------------------------------------------------------------- storage:list

def named_rows(rows):
    """0.38 lists attachments sorted by entry name, i.e. by the legacy-<sha1> hash."""
    return "[" + ",".join(r for _n, r in sorted(rows)) + "]\n"


@pytest.mark.parametrize("version,expected", [
    ("0.30.5", '[\n  {\n    "host_path": "/srv/a",\n    "container_path": "/a",\n'
               '    "volume_options": ""\n  },\n  {\n    "host_path": "/srv/b",\n'
               '    "container_path": "/b",\n    "volume_options": "ro"\n  }\n]\n'),
    ("0.37.10", '[{"host_path":"/srv/a","container_path":"/a","volume_options":""},'
                '{"host_path":"/srv/b","container_path":"/b","volume_options":"ro"}]\n'),
    ("0.38.12", named_rows([
        (legacy_name("/srv/a"), f'{{"entry_name":"{legacy_name("/srv/a")}","host_path":"/srv/a",'
                                f'"container_path":"/a","volume_options":""}}'),
        (legacy_name("/srv/b"), f'{{"entry_name":"{legacy_name("/srv/b")}","host_path":"/srv/b",'
                                f'"container_path":"/b","volume_options":"ro"}}')])),
    ("0.38.27", named_rows([
        (legacy_name("/srv/a"), f'{{"entry_name":"{legacy_name("/srv/a")}","host_path":"/srv/a",'
                                f'"container_path":"/a"}}'),
        (legacy_name("/srv/b"), f'{{"entry_name":"{legacy_name("/srv/b")}","host_path":"/srv/b",'
                                f'"container_path":"/b","readonly":true}}')])),
])
def test_storage_list_json(make_dokku, version, expected):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    assert dokku.ok("storage:list", "app1", "--format", "json").stdout == "[]\n"
    dokku.ok("storage:mount", "app1", "/srv/b:/b:ro")
    dokku.ok("storage:mount", "app1", "/srv/a:/a")
    assert dokku.ok("storage:list", "app1", "--format", "json").stdout == expected


def test_storage_list_json_gate_0_29_3(make_dokku):
    old = make_dokku("0.29.2")
    old.ok("apps:create", "app1")
    old.ok("storage:mount", "app1", "/srv/a:/a")
    res = old.ok("--quiet", "storage:list", "app1", "--format", "json")  # ignored: text output
    assert res.stdout == "     /srv/a:/a\n"
    new = make_dokku("0.29.3")
    assert json.loads(new.ok("storage:list", "app1", "--format", "json").stdout)[0]["host_path"] == "/srv/a"
    res = new("storage:list", "app1", "--format=json")
    assert (res.returncode, res.stderr) == (1, " !     Invalid argument specified\n")


@pytest.mark.parametrize("version", GENERATIONS)
def test_storage_list_text(make_dokku, version):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    dokku.ok("storage:mount", "app1", "/srv/a:/a")
    assert dokku.ok("--quiet", "storage:list", "app1").stdout == "/srv/a:/a\n"
    tty = dokku.ok("storage:list", "app1", "--format", "text", DOKKU_FORCE_TTY="true").stdout
    assert tty == "-----> app1 volume bind-mounts:\n       /srv/a:/a\n"
    plain_tty = dokku.ok("storage:list", "app1", DOKKU_FORCE_TTY="true").stdout
    # bash prints the header only with an explicit --format text
    assert plain_tty == ("/srv/a:/a\n" if version == BASH else tty)


# ----------------------------------------------------------------------------- storage:report

@pytest.mark.parametrize("version", ["0.30.5", "0.37.4"])
def test_storage_report_json_rejected_by_bash(make_dokku, version):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    res = dokku("storage:report", "app1", "--format", "json")
    assert res.returncode == 1
    assert res.stderr == (" !     Invalid flag passed, valid flags: --storage-build-mounts "
                          "--storage-deploy-mounts --storage-run-mounts\n")


@pytest.mark.parametrize("version,keys", [
    ("0.37.5", {"storage-build-mounts", "storage-deploy-mounts", "storage-run-mounts"}),
    ("0.38.7", {"storage-build-mounts", "storage-deploy-mounts", "storage-run-mounts"}),
    ("0.38.8", {"storage-build-mounts", "storage-deploy-mounts", "storage-run-mounts",
                "build-mounts", "deploy-mounts", "run-mounts"}),
])
def test_storage_report_json_keys(make_dokku, version, keys):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    dokku.ok("storage:mount", "app1", "/srv/a:/a")
    data = json.loads(dokku.ok("storage:report", "app1", "--format", "json").stdout)
    assert set(data) == keys
    assert data["storage-deploy-mounts"] == "-v /srv/a:/a"
    assert data["storage-run-mounts"] == "-v /srv/a:/a"
    assert data["storage-build-mounts"] == ""


def test_storage_report_attachment_keys(make_dokku):
    dokku = make_dokku("0.38.13")
    dokku.ok("apps:create", "app1")
    dokku.ok("storage:mount", "app1", "/srv/a:/a:ro")
    data = json.loads(dokku.ok("storage:report", "app1", "--format", "json").stdout)
    assert data["attachment.1.entry-name"] == legacy_name("/srv/a")
    assert data["storage-attachment.1.container-path"] == "/a"
    assert data["attachment.1.readonly"] == "true"
    assert data["attachment.1.phases"] == "deploy,run"
    assert data["deploy-mounts"] == "-v /srv/a:/a:ro"


@pytest.mark.parametrize("version", GENERATIONS)
def test_storage_report_info_flag(make_dokku, version):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    dokku.ok("storage:mount", "app1", "/srv/a:/a")
    value = dokku.ok("storage:report", "app1", "--storage-deploy-mounts").stdout
    # bash builds the value with `tr '\n' ' '`, so it keeps a trailing space
    assert value == ("-v /srv/a:/a \n" if version == BASH else "-v /srv/a:/a\n")
    res = dokku("storage:report", "app1", "--storage-build-mounts")
    if version == BASH:
        assert (res.returncode, res.stderr) == (1, " !     not deployed\n")
    else:
        assert (res.returncode, res.stdout) == (0, "\n")
    res = dokku("storage:report", "app1", "--nope")
    assert res.returncode == 1 and "Invalid flag passed, valid flags:" in res.stderr


def test_storage_report_text(make_dokku):
    dokku = make_dokku(GO37)
    dokku.ok("apps:create", "app1")
    dokku.ok("storage:mount", "app1", "/srv/a:/a")
    res = dokku.ok("storage:report", "app1", DOKKU_FORCE_TTY="true")
    assert res.stdout == ("=====> app1 storage information\n"
                          "       Storage build mounts:          \n"
                          "       Storage deploy mounts:         -v /srv/a:/a\n"
                          "       Storage run mounts:            -v /srv/a:/a\n")


# ----------------------------------------------------------------------------- named storage (0.38)

def test_storage_create_and_named_mount_upsert(dokku):
    dokku.ok("apps:create", "app1")
    res = dokku.ok("storage:create", "app1-data")
    assert res.stdout == (f"       Created {STORAGE}/app1-data\n"
                          "-----> Storage entry app1-data created\n")
    path = dokku.path(f"{STORAGE}/app1-data")
    assert owner(path) == (os.geteuid(), os.getegid())  # no --chown, no chown
    entry = json.loads(dokku.path(
        "/var/lib/dokku/data/storage-registry/entries/app1-data.json").read_text())
    assert entry == {"name": "app1-data", "scheduler": "docker-local",
                     "host_path": f"{STORAGE}/app1-data", "schema_version": 1}
    res = dokku.ok("storage:create", "app1-data", "--chown", "herokuish", DOKKU_FORCE_TTY="true")
    assert res.stdout == ("-----> Storage entry app1-data already exists, leaving in place\n"
                          "-----> Storage entry app1-data created\n")
    assert owner(path) == (32767, 32767)
    res = dokku.ok("storage:mount", "app1", "app1-data", "--container-dir", "/app/data")
    assert res.stdout == "-----> Storage entry app1-data mounted at /app/data on app1\n"
    res = dokku.ok("storage:mount", "app1", "app1-data", "--container-dir", "/app/data")
    assert res.stdout == "-----> Storage entry app1-data mount at /app/data on app1 updated\n"
    lines = dokku.path("/var/lib/dokku/config/storage/app1/mounts").read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(dokku.ok("storage:list", "app1", "--format", "json").stdout) == [
        {"entry_name": "app1-data", "host_path": f"{STORAGE}/app1-data", "container_path": "/app/data"}]


def test_named_mount_duplicate_before_0_38_13(make_dokku):
    dokku = make_dokku("0.38.12")
    dokku.ok("apps:create", "app1")
    dokku.ok("storage:create", "data")
    dokku.ok("storage:mount", "app1", "data", "--container-dir", "/d")
    res = dokku("storage:mount", "app1", "data", "--container-dir", "/d")
    assert res.returncode == 1
    assert res.stderr == (' !     storage entry "data" is already mounted at "/d" for process '
                          'type "_default_" on app "app1"\n')


def test_storage_named_errors(dokku):
    dokku.ok("apps:create", "app1")
    res = dokku("storage:mount", "app1", "nothere", "--container-dir", "/x")
    assert res.stderr == (' !     storage entry "nothere" does not exist; create it first with '
                          '`dokku storage:create`\n')
    dokku.ok("storage:create", "data")
    res = dokku("storage:mount", "app1", "data")
    assert res.stderr == " !     --container-dir is required when mounting a named storage entry\n"
    res = dokku("storage:create", "legacy-mine")
    assert res.returncode == 1 and "reserved prefix" in res.stderr
    res = dokku("storage:create", "Bad_Name")
    assert res.returncode == 1 and "DNS-1123 label" in res.stderr


def test_upgrade_to_038_migrates_env_and_mounts(make_dokku):
    old = make_dokku(GO37)
    old.ok("apps:create", "app1")
    old.ok("config:set", "--no-restart", "app1", "A=1")
    old.ok("storage:mount", "app1", "/srv/a:/a")
    old.ok("docker-options:add", "app1", "deploy", "--memory=256m")
    new = make_dokku(V38)
    assert new.ok("config:get", "app1", "A").stdout == "1\n"
    assert not new.path("/home/dokku/app1/ENV").exists()
    assert not new.path("/home/dokku/app1/DOCKER_OPTIONS_DEPLOY").exists()
    assert new.ok("--quiet", "storage:list", "app1").stdout == "/srv/a:/a\n"
    report = json.loads(new.ok("docker-options:report", "app1", "--format", "json").stdout)
    assert report["deploy-list"] == ["--memory=256m", "--restart=on-failure:10"]


# ----------------------------------------------------------------------------- docker-options

@pytest.mark.parametrize("version", GENERATIONS)
def test_docker_options_add_duplicates(make_dokku, version):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    for _ in range(2):
        res = dokku("docker-options:add", "app1", "deploy,run", "--memory=256m")
        assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    if version == V38:
        # property list, appended and sorted, no dedupe
        deploy = dokku.path("/var/lib/dokku/config/docker-options/app1/_default_.deploy")
        assert deploy.read_text() == "--memory=256m\n--memory=256m\n--restart=on-failure:10\n"
        run = dokku.path("/var/lib/dokku/config/docker-options/app1/_default_.run")
        assert run.read_text() == "--memory=256m\n--memory=256m\n"
        assert mode(deploy) == 0o600
    else:
        deploy = dokku.path("/home/dokku/app1/DOCKER_OPTIONS_DEPLOY")
        assert deploy.read_text() == "--memory=256m\n--restart=on-failure:10\n"  # sort -u
        assert dokku.path("/home/dokku/app1/DOCKER_OPTIONS_RUN").read_text() == "--memory=256m\n"


@pytest.mark.parametrize("version", GENERATIONS)
def test_docker_options_phase_validation(make_dokku, version):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    res = dokku("docker-options:add", "app1", "deploy,release", "--memory=1g")
    assert (res.returncode, res.stderr) == (1, " !     Phase(s) must be one of [build deploy run]\n")
    res = dokku("docker-options:add", "nope", "deploy", "--memory=1g")
    assert res.returncode == 20


def test_docker_options_split_and_remove_038(dokku):
    dokku.ok("apps:create", "app1")
    dokku.ok("docker-options:add", "app1", "deploy", "-v /a:/b --label 'x=a b' --cpus=2")
    opts = dokku.path("/var/lib/dokku/config/docker-options/app1/_default_.deploy").read_text()
    assert opts.splitlines() == ["--cpus=2", "--label 'x=a b'", "--restart=on-failure:10", "-v /a:/b"]
    dokku.ok("docker-options:remove", "app1", "deploy", "--cpus=2")
    data = json.loads(dokku.ok("docker-options:report", "app1", "--format", "json").stdout)
    assert data["deploy-list"] == ["--label 'x=a b'", "--restart=on-failure:10", "-v /a:/b"]


@pytest.mark.parametrize("version,short,lists", [("0.37.10", False, False), ("0.38.7", False, False),
                                                ("0.38.8", True, False), ("0.38.21", True, False),
                                                ("0.38.22", True, True)])
def test_docker_options_report_json(make_dokku, version, short, lists):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    dokku.ok("docker-options:add", "app1", "deploy", "--memory=256m")
    data = json.loads(dokku.ok("docker-options:report", "app1", "--format", "json").stdout)
    assert data["docker-options-deploy"] == "--memory=256m --restart=on-failure:10"
    assert data["docker-options-build"] == ""
    assert ("deploy" in data) is short
    assert ("deploy-list" in data) is lists
    if lists:
        assert data["deploy-list"] == ["--memory=256m", "--restart=on-failure:10"]
        assert data["build-list"] == [] and data["run-list"] == []
        assert "docker-options-deploy-list" not in data
    assert dokku.ok("docker-options:report", "app1", "--docker-options-deploy").stdout == \
        "--memory=256m --restart=on-failure:10\n"


# ----------------------------------------------------------------------------- plugins

def test_plugin_installed(dokku):
    res = dokku("plugin:installed", "storage")
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    res = dokku("plugin:installed", "litestream")
    assert (res.returncode, res.stdout, res.stderr) == (1, "", "")
    plugin = dokku.path("/var/lib/dokku/plugins/available/litestream")
    plugin.mkdir(parents=True)
    (plugin / "plugin.toml").write_text(
        '[plugin]\ndescription = "Litestream plugin to replicate SQLite DB files from Dokku"\n'
        'version = "0.2.0"\n[plugin.config]\n')
    dokku.path("/var/lib/dokku/plugins/enabled").mkdir(parents=True)
    dokku.path("/var/lib/dokku/plugins/enabled/litestream").symlink_to(plugin)
    assert dokku("plugin:installed", "litestream").returncode == 0
    text = dokku.ok("plugin:list").stdout
    assert text.startswith("plugn: ")
    assert "  litestream           0.2.0 enabled    Litestream plugin to replicate SQLite DB " \
           "files from Dokku\n" in text
    assert "  storage              0.38.27 enabled    dokku core storage plugin\n" in text
    data = json.loads(dokku.ok("plugin:list", "--format", "json").stdout)
    mine = [p for p in data if p["name"] == "litestream"]
    assert mine == [{"name": "litestream", "version": "0.2.0", "enabled": True, "core": False,
                     "description": "Litestream plugin to replicate SQLite DB files from Dokku",
                     "source_url": "", "committish": "", "branch": ""}]
    assert {"name", "core"} <= set(data[0]) and any(p["core"] for p in data)


def test_plugin_list_json_gate(make_dokku):
    res = make_dokku("0.38.21").ok("plugin:list", "--format", "json")
    assert res.stdout.startswith("plugn: ")  # bash plugin:list ignores its arguments
    assert json.loads(make_dokku("0.38.22").ok("plugin:list", "--format", "json").stdout)


# ----------------------------------------------------------------------------- ps / deploy (docker)

def test_ps_on_undeployed_app(dokku, docker_engine):
    dokku.ok("apps:create", "app1")
    for cmd in ("ps:restart", "ps:start", "ps:stop"):
        res = dokku(cmd, "app1")
        assert (res.returncode, res.stdout, res.stderr) == (
            0, "", " !     App app1 has not been deployed\n")
    res = dokku("ps:restart", "nope")
    assert (res.returncode, res.stderr) == (20, " !     App nope does not exist\n")


@pytest.mark.parametrize("version,computed_key", [("0.38.7", False), ("0.38.8", True)])
def test_ps_report_keys_undeployed(make_dokku, version, computed_key, docker_engine):
    dokku = make_dokku(version)
    dokku.ok("apps:create", "app1")
    data = json.loads(dokku.ok("ps:report", "app1", "--format", "json").stdout)
    assert data["deployed"] == "false" and data["running"] == "false"
    assert data["restore"] == "true" and data["processes"] == "0"
    assert data["ps-computed-restart-policy"] == "on-failure:10"
    assert ("computed-restart-policy" in data) is computed_key
    assert not [k for k in data if k.startswith("status-")]
    assert dokku.ok("ps:report", "app1", "--deployed").stdout == "false\n"
    res = dokku("ps:report", "app1", "--format", "json", "--deployed")
    assert (res.returncode, res.stderr) == (
        1, " !     --format flag cannot be specified when specifying an info flag\n")


@pytest.mark.parametrize("version", GENERATIONS)
def test_git_from_image_deploys_container(make_dokku, version, app_image, app_name):
    dokku = make_dokku(version)
    dokku.ok("apps:create", app_name)
    dokku.ok("storage:ensure-directory", f"{app_name}-db")
    dokku.ok("storage:mount", app_name, f"{STORAGE}/{app_name}-db:/app/db")
    dokku.ok("config:set", "--no-restart", app_name, "SECRET=s3cr3t", "MULTI=a\nb")
    res = dokku.ok("git:from-image", app_name, app_image)
    assert "=====> Application deployed:" in res.stdout
    cid = dokku.path(f"/home/dokku/{app_name}/CONTAINER.web.1").read_text().strip()
    info = container(f"{app_name}.web.1")
    assert info and info["Id"] == cid and info["State"]["Running"]
    assert info["Config"]["Image"] == app_image
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 10}
    assert info["HostConfig"]["NetworkMode"] == "host"
    labels = info["Config"]["Labels"]
    assert labels["com.dokku.app-name"] == app_name and labels["com.dokku.process-type"] == "web"
    host_dir = str(dokku.path(f"{STORAGE}/{app_name}-db"))
    assert f"{host_dir}:/app/db" in info["HostConfig"]["Binds"]
    env = info["Config"]["Env"]
    assert "SECRET=s3cr3t" in env and "MULTI=a\nb" in env
    # a real process writes through the mount
    assert docker("exec", cid, "sh", "-c", "echo hi > /app/db/probe").returncode == 0
    assert (dokku.path(f"{STORAGE}/{app_name}-db") / "probe").read_text() == "hi\n"
    data = json.loads(dokku.ok("ps:report", app_name, "--format", "json").stdout)
    assert data["deployed"] == "true" and data["running"] == "true"
    assert data["status-web.1"] == f"running (CID: {cid[:11]})"
    # the same image again: nothing to commit, no redeploy
    res = dokku("git:from-image", app_name, app_image)
    assert res.returncode == 1
    assert res.stderr == (" !     No changes detected, skipping git commit\n"
                          " !     Call 'ps:rebuild' on app to rebuild the app from existing source\n")
    assert container(f"{app_name}.web.1")["Id"] == cid


def test_redeploy_replaces_container(dokku, app_image, app_name):
    dokku.ok("apps:create", app_name)
    dokku.ok("git:from-image", app_name, app_image)
    first = container(f"{app_name}.web.1")["Id"]
    dokku.ok("git:from-image", app_name, TEST_IMAGE_V2)
    second = container(f"{app_name}.web.1")
    assert second["Id"] != first and second["Config"]["Image"] == TEST_IMAGE_V2
    assert container(first) is None
    res = docker("ps", "-aq", "--filter", f"label=com.dokku.app-name={app_name}")
    assert len(res.stdout.split()) == 1


def test_config_set_restarts_deployed_app(dokku, app_image, app_name):
    dokku.ok("apps:create", app_name)
    dokku.ok("git:from-image", app_name, app_image)
    first = container(f"{app_name}.web.1")["Id"]
    res = dokku.ok("config:set", app_name, "NEW_VAR=1")
    assert f"-----> Restarting app {app_name}\n" in res.stdout
    info = container(f"{app_name}.web.1")
    assert info["Id"] != first and "NEW_VAR=1" in info["Config"]["Env"]
    res = dokku.ok("config:set", "--no-restart", app_name, "OTHER=2")
    assert "Restarting" not in res.stdout
    assert container(f"{app_name}.web.1")["Id"] == info["Id"]


def test_ps_stop_start_restart(dokku, app_image, app_name):
    dokku.ok("apps:create", app_name)
    dokku.ok("git:from-image", app_name, app_image)
    cid = container(f"{app_name}.web.1")["Id"]
    dokku.ok("ps:stop", app_name)
    info = container(cid)
    assert info is not None and not info["State"]["Running"]  # stopped, not removed
    data = json.loads(dokku.ok("ps:report", app_name, "--format", "json").stdout)
    assert data["running"] == "false" and data["deployed"] == "true"
    assert data["status-web.1"].startswith("exited (CID: ")
    res = dokku.ok("ps:start", app_name)
    assert res.stderr == " !     App has been detected as not running, releasing\n"
    started = container(f"{app_name}.web.1")
    assert started["State"]["Running"]
    res = dokku.ok("ps:start", app_name)
    assert res.stderr == f" !     App {app_name} already running\n"
    dokku.ok("storage:mount", app_name, "/srv/dsl-standin-later:/later")
    dokku.ok("ps:restart", app_name)
    restarted = container(f"{app_name}.web.1")
    assert restarted["Id"] != started["Id"] and restarted["State"]["Running"]
    assert any(b.endswith(":/later") for b in restarted["HostConfig"]["Binds"])
    assert container(started["Id"]) is None


def deployed_with_storage(dokku, app, image):
    """An app with a storage directory mounted at /app/db, a config value and a running web container (its id)."""
    dokku.ok("apps:create", app)
    dokku.ok("storage:ensure-directory", f"{app}-db")
    dokku.ok("storage:mount", app, f"{STORAGE}/{app}-db:/app/db")
    dokku.ok("config:set", "--no-restart", app, "SECRET=s3cr3t")
    dokku.ok("git:from-image", app, image)
    return container(f"{app}.web.1")["Id"]


def labelled_companion(app, image, name):
    """A container that carries only the app's Dokku label, as a sidecar labelled that way would."""
    res = docker("container", "run", "--detach", "--init", "--name", name, "--network", "host", "--restart", "unless-stopped",
                 "--label", f"com.dokku.app-name={app}", image)
    assert res.returncode == 0, res.stderr
    return container(name)


@pytest.mark.parametrize("version", ["0.30.5", "0.37.4", "0.37.10", V38])
def test_ps_stop_and_apps_destroy_reach_every_container_with_the_app_label(make_dokku, version, app_image,
                                                                          app_name):
    """From v0.36.0 scheduler-stop also stops every running container labelled com.dokku.app-name=<app>,
    each after `docker container update --restart=no` (scheduler-stop@v0.38.27:L7-40, commit 7b0d3b14b);
    v0.30.5 touches only the CONTAINER.* containers (scheduler-stop@v0.30.5:L16-28). Nothing starts such a
    container again or gives its policy back: ps:start redeploys only the app's own containers
    (ps/ps.go@v0.38.27:L185-229). apps:destroy stops it the same way but removes only exited containers
    that also carry the `dokku` label (common/docker.go@v0.38.27:L390-430), so it is left behind."""
    dokku = make_dokku(version)
    dokku.ok("apps:create", app_name)
    dokku.ok("git:from-image", app_name, app_image)
    companion = labelled_companion(app_name, app_image, f"{app_name}-companion")
    reached = version != "0.30.5"
    dokku.ok("ps:stop", app_name)
    after = container(companion["Id"])
    assert after["State"]["Running"] is (not reached)
    assert after["HostConfig"]["RestartPolicy"]["Name"] == ("no" if reached else "unless-stopped")
    dokku.ok("ps:start", app_name)
    assert container(f"{app_name}.web.1")["State"]["Running"]
    assert container(companion["Id"])["State"]["Running"] is (not reached)
    docker("container", "update", "--restart", "unless-stopped", companion["Id"])
    docker("container", "start", companion["Id"])
    dokku.ok("--force", "apps:destroy", app_name)
    left = container(companion["Id"])
    assert left is not None, "a container without the dokku label is never removed by apps:destroy"
    assert left["State"]["Running"] is (not reached)


@pytest.mark.parametrize("version", ["0.37.10", V38])
def test_ps_restore_starts_deployed_apps_that_are_down(make_dokku, version, app_image, app_name):
    """What Dokku's boot service runs (the lab host init models it): deployed apps that went down
    (a reboot) start, undeployed ones are skipped, and an app stopped with ps:stop stays stopped
    (ps-herokuish-2.bats@v0.38.27:L75-103). ps:stop's post-stop trigger records that: the ps property
    restore=false from 0.38.0, the config var DOKKU_APP_RESTORE=0 before (ps/triggers.go@v0.38.27:L266-268,
    @v0.37.4:L242-250); a deploy (ps:start) records the opposite (core-post-deploy)."""
    dokku = make_dokku(version)
    undeployed = app_name + "-new"
    dokku.ok("apps:create", app_name)
    dokku.ok("apps:create", undeployed)
    dokku.ok("git:from-image", app_name, app_image)
    docker("container", "stop", "--time", "1", f"{app_name}.web.1")  # down without ps:stop, as after a reboot
    dokku.ok("ps:restore", "--parallel", "-1")
    assert container(f"{app_name}.web.1")["State"]["Running"]
    assert container(f"{undeployed}.web.1") is None
    running = container(f"{app_name}.web.1")["Id"]
    dokku.ok("ps:restore")  # a running app is left alone
    assert container(f"{app_name}.web.1")["Id"] == running
    dokku.ok("ps:stop", app_name)
    if version == V38:
        assert dokku.path(f"/var/lib/dokku/config/ps/{app_name}/restore").read_text().strip() == "false"
        skip = f" !     Skipping ps:restore for {app_name} as restore property is false\n"
    else:
        assert dokku.ok("config:get", app_name, "DOKKU_APP_RESTORE").stdout == "0\n"
        skip = f" !     Skipping ps:restore for {app_name} as DOKKU_APP_RESTORE=0\n"
    res = dokku.ok("ps:restore")
    assert skip in res.stderr
    assert not container(f"{app_name}.web.1")["State"]["Running"]
    dokku.ok("ps:start", app_name)
    assert container(f"{app_name}.web.1")["State"]["Running"]
    res = dokku.ok("ps:restore")
    assert skip not in res.stderr


def test_apps_destroy_removes_containers(dokku, app_image, app_name):
    dokku.ok("apps:create", app_name)
    dokku.ok("git:from-image", app_name, app_image)
    cid = container(f"{app_name}.web.1")["Id"]
    dokku.ok("apps:destroy", app_name, "--force")
    assert container(cid) is None
    assert dokku("apps:exists", app_name).returncode == 20
    # a fresh app of the same name deploys the same image again (nothing remembered)
    dokku.ok("apps:create", app_name)
    dokku.ok("git:from-image", app_name, app_image)
    assert container(f"{app_name}.web.1")["State"]["Running"]


# ----------------------------------------------------------------------------- apps:rename / apps:clone

@pytest.fixture
def second_app(app_name):
    """A second app name (the target of a rename or clone) whose containers are removed afterwards."""
    name = app_name + "-b"
    yield name
    ids = docker("ps", "-aq", "--filter", f"label=com.dokku.app-name={name}").stdout.split()
    if ids:
        docker("rm", "-f", *ids)


@pytest.mark.parametrize("version", GENERATIONS)
def test_apps_rename_and_clone_argument_errors(make_dokku, version, docker_engine):
    """CommandRename / CommandClone check, in order: old name given, new name given, old app exists
    (VerifyAppName, exit 20), new name valid, new name free (apps/subcommands.go@v0.38.27:L13-38,
    L164-183; same at v0.30.5). Clone with --ignore-existing only warns (L31-34)."""
    dokku = make_dokku(version)
    dokku.ok("apps:create", "first")
    dokku.ok("apps:create", "second")
    for cmd in ("apps:rename", "apps:clone"):
        res = dokku(cmd)
        assert (res.returncode, res.stderr) == (1, " !     Please specify an app to run the command on\n")
        res = dokku(cmd, "first")
        assert (res.returncode, res.stderr) == (1, " !     Please specify an new app name\n")
        res = dokku(cmd, "missing", "other")
        assert (res.returncode, res.stdout, res.stderr) == (20, "", " !     App missing does not exist\n")
        res = dokku(cmd, "first", "second")
        assert (res.returncode, res.stdout, res.stderr) == (1, "", " !     Name is already taken\n")
        res = dokku(cmd, "first", "Bad_Name")
        assert res.returncode == 1 and res.stderr.startswith(" !     App name must begin with")
    res = dokku("apps:clone", "--ignore-existing", "first", "second")
    assert (res.returncode, res.stdout, res.stderr) == (0, "", " !     Name is already taken\n")
    assert dokku.ok("--quiet", "apps:list").stdout == "first\nsecond\n"


@pytest.mark.parametrize("version", GENERATIONS)
def test_apps_rename_undeployed_carries_settings(make_dokku, version, docker_engine):
    """Rename = createApp(new), post-app-rename-setup, destroyApp(old) forced, post-app-rename; no
    rebuild without code (apps/subcommands.go@v0.38.27:L164-223). What is carried: config merges the
    env from v0.34.0 (config/triggers.go@v0.38.27:L117-134, commit e0409caf7); before that
    builder-herokuish copies the whole app directory, ENV and DOCKER_OPTIONS_* included
    (builder-herokuish/post-app-rename-setup@v0.30.5:L22); docker-options copies its phase files
    (docker-options/post-app-rename-setup@v0.37.4) or properties (docker-options/triggers.go@v0.38.27:
    L42-47); storage moves the attachments (storage/triggers.go@v0.38.27:L138-153). The bats test
    apps_1.bats@v0.38.27 L200-310 checks a config value and docker options after the rename."""
    dokku = make_dokku(version)
    dokku.ok("apps:create", "old-app")
    dokku.ok("config:set", "--no-restart", "old-app", "KEEP=me")
    dokku.ok("docker-options:add", "old-app", "deploy", "--no-healthcheck")
    dokku.ok("storage:mount", "old-app", f"{STORAGE}/shared:/data")
    res = dokku.ok("apps:rename", "old-app", "new-app")
    assert res.stdout.startswith("-----> Renaming old-app to new-app\n-----> Creating new-app...\n"
                                 "-----> Destroying old-app (including all add-ons)\n")
    assert "Deploying" not in res.stdout
    assert dokku.ok("--quiet", "apps:list").stdout == "new-app\n"
    res = dokku("apps:exists", "old-app")
    assert (res.returncode, res.stderr) == (20, " !     App old-app does not exist\n")
    assert dokku.ok("config:get", "new-app", "KEEP").stdout == "me\n"
    assert "--no-healthcheck" in dokku.ok("docker-options:report", "new-app", "--docker-options-deploy").stdout
    assert dokku.ok("--quiet", "storage:list", "new-app").stdout == f"{STORAGE}/shared:/data\n"
    assert not dokku.path("/home/dokku/old-app").exists()
    if version == V38:
        assert not dokku.path("/var/lib/dokku/config/storage/old-app").exists()


@pytest.mark.parametrize("version", ["0.30.5", "0.37.4", V38])
def test_apps_rename_deployed_app(make_dokku, version, app_image, app_name, second_app):
    """A deployed app is renamed by destroying the old one (the full apps:destroy sequence, §4) and
    rebuilding the new one (ps post-app-rename → Rebuild, ps/triggers.go@v0.38.27:L213-223). The old
    app's containers go; a container that carries only the old app's label is stopped with restart
    policy `no` and left in place from 0.36.0 (scheduler-stop@v0.38.27:L33-40), untouched at v0.30.5.
    apps_1.bats@v0.38.27 L200-220 (v0.30.5 L133-): success, old name gone from apps:list."""
    dokku = make_dokku(version)
    old, new = app_name, second_app
    old_cid = deployed_with_storage(dokku, old, app_image)
    companion = labelled_companion(old, app_image, f"{old}-companion")
    res = dokku.ok("apps:rename", old, new)
    assert f"-----> Destroying {old} (including all add-ons)\n" in res.stdout
    assert f"-----> Deploying {new} via the docker-local scheduler...\n" in res.stdout
    info = container(f"{new}.web.1")
    assert info and info["State"]["Running"]
    assert info["Config"]["Labels"]["com.dokku.app-name"] == new
    assert f"{dokku.path(f'{STORAGE}/{old}-db')}:/app/db" in info["HostConfig"]["Binds"]
    assert "SECRET=s3cr3t" in info["Config"]["Env"]
    assert dokku.path(f"/home/dokku/{new}/CONTAINER.web.1").read_text().strip() == info["Id"]
    assert container(old_cid) is None
    res = dokku("apps:exists", old)
    assert (res.returncode, res.stderr) == (20, f" !     App {old} does not exist\n")
    assert dokku.ok("--quiet", "apps:list").stdout == f"{new}\n"
    left = container(companion["Id"])
    assert left is not None
    reached = version != "0.30.5"
    assert left["State"]["Running"] is (not reached)
    assert left["HostConfig"]["RestartPolicy"]["Name"] == ("no" if reached else "unless-stopped")


@pytest.mark.parametrize("version", [BASH, V38])
def test_apps_rename_skip_deploy(make_dokku, version, app_image, app_name, second_app):
    """--skip-deploy sets SKIP_REBUILD, so ps's post-app-rename does not rebuild
    (apps/subcommands.go@v0.38.27:L206-208, ps/triggers.go@v0.38.27:L213-223)."""
    dokku = make_dokku(version)
    dokku.ok("apps:create", app_name)
    dokku.ok("git:from-image", app_name, app_image)
    res = dokku.ok("apps:rename", "--skip-deploy", app_name, second_app)
    assert "Deploying" not in res.stdout
    assert container(f"{app_name}.web.1") is None
    assert container(f"{second_app}.web.1") is None
    dokku.ok("ps:start", second_app)  # the copied CONTAINER.* id is gone: a fresh deploy
    assert container(f"{second_app}.web.1")["State"]["Running"]


@pytest.mark.parametrize("version", [BASH, GO37, V38])
def test_apps_clone_deployed_app(make_dokku, version, app_image, app_name, second_app):
    """Clone: createApp(new), post-app-clone-setup, post-app-clone → ps rebuilds the new app unless
    --skip-deploy (apps/subcommands.go@v0.38.27:L13-72, ps/triggers.go@v0.38.27:L194-200). The old app
    and its containers are untouched; the new app's CONTAINER.* copies are dropped
    (scheduler-docker-local/post-app-clone-setup@v0.38.27); the mount points at the same host directory
    (storage/triggers.go@v0.38.27:L122-134; the copied DOCKER_OPTIONS_* files before 0.38).
    apps_2.bats@v0.38.27 L13-200: clone, --skip-deploy and --ignore-existing succeed."""
    dokku = make_dokku(version)
    old, new = app_name, second_app
    old_cid = deployed_with_storage(dokku, old, app_image)
    res = dokku.ok("apps:clone", old, new)
    assert res.stdout.startswith(f"-----> Cloning {old} to {new}\n-----> Creating {new}...\n")
    assert "Destroying" not in res.stdout
    before = container(old_cid)
    assert before["State"]["Running"] and before["Name"] == f"/{old}.web.1"
    assert dokku.path(f"/home/dokku/{old}/CONTAINER.web.1").read_text().strip() == old_cid
    clone = container(f"{new}.web.1")
    assert clone["Id"] != old_cid and clone["State"]["Running"]
    host_dir = str(dokku.path(f"{STORAGE}/{old}-db"))
    assert f"{host_dir}:/app/db" in clone["HostConfig"]["Binds"]
    assert "SECRET=s3cr3t" in clone["Config"]["Env"]
    assert docker("exec", old_cid, "sh", "-c", "echo shared > /app/db/probe").returncode == 0
    assert docker("exec", clone["Id"], "cat", "/app/db/probe").stdout == "shared\n"
    assert dokku.ok("--quiet", "apps:list").stdout == "".join(f"{a}\n" for a in sorted([old, new]))
    third = new + "3"
    try:
        res = dokku.ok("apps:clone", "--skip-deploy", old, third)
        assert "Deploying" not in res.stdout and container(f"{third}.web.1") is None
        assert not list(dokku.path(f"/home/dokku/{third}").glob("CONTAINER.*"))
        assert dokku.ok("config:get", third, "SECRET").stdout == "s3cr3t\n"
    finally:
        ids = docker("ps", "-aq", "--filter", f"label=com.dokku.app-name={third}").stdout.split()
        if ids:
            docker("rm", "-f", *ids)


# ----------------------------------------------------------------------------- plugin triggers

RECORDED_TRIGGERS = ["post-create", "post-deploy", "post-stop", "pre-delete", "post-delete",
                     "post-app-rename-setup", "post-app-rename", "post-app-clone-setup", "post-app-clone"]


def enable_plugin(dokku, name, hooks):
    """What a test does instead of plugin:install: the plugin directory under plugins/available
    with a plugin.toml and executable trigger files, enabled by a symlink in plugins/enabled."""
    avail = dokku.path(f"/var/lib/dokku/plugins/available/{name}")
    avail.mkdir(parents=True)
    (avail / "plugin.toml").write_text(
        f'[plugin]\ndescription = "lab test plugin {name}"\nversion = "0.1.0"\n[plugin.config]\n')
    for trigger, body in hooks.items():
        hook = avail / trigger
        hook.write_text("#!/bin/sh\n" + body)
        hook.chmod(0o755)
    enabled = dokku.path("/var/lib/dokku/plugins/enabled")
    enabled.mkdir(parents=True, exist_ok=True)
    (enabled / name).symlink_to(avail)
    return avail


def recorder(log, name, trigger):
    return (f'printf "%s" "{name} {trigger}" >> {log}\n'
            f'for a in "$@"; do printf " [%s]" "$a" >> {log}; done\necho >> {log}\n')


@pytest.mark.parametrize("version", [BASH, V38])
def test_triggers_order_and_arguments(make_dokku, version, app_image, app_name, second_app, tmp_path):
    """plugn runs the executable trigger file of each enabled plugin in alphabetical order, core
    plugins included (plugn.bash@v0.16.0:L104-118; SOURCE-EVIDENCE.md §7). Arguments:
    post-create $APP; post-deploy $APP "" "" $IMAGE_TAG (scheduler-deploy@v0.38.27:L82-83,
    @v0.30.5:L71); post-stop $APP (ps/ps.go@v0.38.27:L232-256); pre-delete / post-delete $APP
    $IMAGE_TAG (apps/functions.go@v0.38.27:L61,L90); post-app-rename(-setup), post-app-clone(-setup)
    $OLD $NEW (apps/subcommands.go@v0.38.27). In a rename, ps's own post-app-rename rebuilds the new
    app, so a plugin sorted before "ps" sees post-app-rename before the new app's post-deploy, one
    sorted after sees it after."""
    dokku = make_dokku(version)
    log = tmp_path / "triggers.log"
    for name in ("aa-first", "zz-last"):
        enable_plugin(dokku, name, {t: recorder(log, name, t) for t in RECORDED_TRIGGERS})
    old, new = app_name, second_app
    dokku.ok("apps:create", old)
    dokku.ok("git:from-image", old, app_image)
    dokku.ok("ps:stop", old)
    dokku.ok("ps:start", old)

    def both(trigger, *args):
        line = trigger + "".join(f" [{a}]" for a in args)
        return [f"aa-first {line}", f"zz-last {line}"]

    assert log.read_text().splitlines() == (both("post-create", old) + both("post-deploy", old, "", "", "latest")
                                            + both("post-stop", old) + both("post-deploy", old, "", "", "latest"))
    log.write_text("")
    dokku.ok("apps:rename", old, new)
    assert log.read_text().splitlines() == (
        both("post-create", new) + both("post-app-rename-setup", old, new)
        + both("pre-delete", old, "latest") + both("post-delete", old, "latest")
        + ["aa-first post-app-rename [%s] [%s]" % (old, new)]
        + both("post-deploy", new, "", "", "latest")
        + ["zz-last post-app-rename [%s] [%s]" % (old, new)])
    log.write_text("")
    third = new + "3"
    dokku.ok("apps:clone", "--skip-deploy", new, third)
    assert log.read_text().splitlines() == (both("post-create", third) + both("post-app-clone-setup", new, third)
                                            + both("post-app-clone", new, third))
    log.write_text("")
    dokku.ok("--force", "apps:destroy", third)
    assert log.read_text().splitlines() == both("pre-delete", third, "latest") + both("post-delete", third, "latest")


def test_trigger_not_executable_is_skipped(dokku, docker_engine, tmp_path):
    """A trigger file without the executable bit is skipped with a notice on stderr
    (plugn.bash@v0.16.0:L110-114)."""
    log = tmp_path / "t.log"
    plugin = enable_plugin(dokku, "lazy", {"post-create": recorder(log, "lazy", "post-create")})
    (plugin / "post-create").chmod(0o644)
    res = dokku.ok("apps:create", "app1")
    assert res.stderr == "Trigger 'post-create' is not executable, skipping plugin (lazy)\n"
    assert not log.exists()


@pytest.mark.parametrize("version,rc,tail", [
    (BASH, 3, " !     exit status 3\n"),
    (GO37, 1, " !     pre-delete says no\n\n"),
    (V38, 1, " !     pre-delete says no\n\n"),
])
def test_failing_trigger_fails_the_command(make_dokku, version, rc, tail, docker_engine):
    """plugn runs with errexit, so a hook that exits non-zero fails `plugn trigger` with its code
    (plugn.bash HEAD:L174). A Go subcommand reports it with LogFailWithError: before 0.34.0 the go-sh
    *exec.ExitError (` !     exit status N`, exit N; common/subprocess.go@v0.30.5:L85-88,
    common/log.go@v0.30.5:L56-62); from 0.34.0 errors.New(<the trigger's stderr>) (` !     <stderr>`,
    exit 1; common/exec.go@v0.38.27:L187-193). destroyApp stops at a failing pre-delete
    (apps/functions.go@v0.38.27:L60-68), so the app stays."""
    dokku = make_dokku(version)
    enable_plugin(dokku, "veto", {"pre-delete": 'echo "pre-delete says no" >&2\nexit 3\n'})
    dokku.ok("apps:create", "keep-me")
    res = dokku("--force", "apps:destroy", "keep-me")
    assert res.returncode == rc
    assert res.stderr == "pre-delete says no\n" + tail
    assert dokku.ok("apps:exists", "keep-me").returncode == 0


@pytest.mark.parametrize("version", [BASH, V38])
def test_failing_post_stop_and_post_deploy(make_dokku, version, app_image, app_name):
    """A failing post-stop hook sorted before "ps" stops plugn before the ps plugin records the
    restore state (ps/triggers.go@v0.38.27:L266-268), and ps:stop fails (ps/ps.go@v0.38.27:L250-255).
    git:from-image is a bash subcommand (plugins/git/subcommands/from-image), so a failing post-deploy
    hook's exit code passes through `set -eo pipefail` (ASSUMPTION: no Go layer between the
    subcommand and scheduler-deploy rewrites it)."""
    dokku = make_dokku(version)
    flag = dokku.path("/tmp/fail-deploy")
    enable_plugin(dokku, "aa-veto", {
        "post-stop": "exit 4\n",
        "post-deploy": f'if [ -e {flag} ]; then echo "post-deploy failed" >&2; exit 5; fi\n'})
    dokku.ok("apps:create", app_name)
    dokku.ok("git:from-image", app_name, app_image)
    res = dokku("ps:stop", app_name)
    assert res.returncode == (4 if version == BASH else 1)
    assert res.stderr == (" !     exit status 4\n" if version == BASH else "")
    assert not container(f"{app_name}.web.1")["State"]["Running"]
    if version == V38:
        assert dokku.path(f"/var/lib/dokku/config/ps/{app_name}/restore").read_text() == "true"
    else:
        assert dokku.ok("config:get", app_name, "DOKKU_APP_RESTORE").stdout == "1\n"
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text("")
    res = dokku("git:from-image", app_name, TEST_IMAGE_V2)
    assert res.returncode == 5
    assert res.stderr == "post-deploy failed\n"
    assert "Application deployed" not in res.stdout


@pytest.mark.parametrize("version", GENERATIONS)
def test_the_all_apps_report_reads_as_storage_list_does(make_dokku, version):
    """litestream_host's one read for every app (parse_storage_report of `storage:report`) gives each app the
    mounts storage:list gives it, at every generation; and nothing at all when Dokku runs quiet."""
    import sys
    collections = str(REPO / "build" / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
    from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.dokku import (
        parse_mount_json, parse_storage_report)
    dokku = make_dokku(version)
    for app in ("app1", "app2", "app3"):
        dokku.ok("apps:create", app)
    dokku.ok("storage:mount", "app1", "/srv/a:/a")
    dokku.ok("storage:mount", "app1", "/srv/b:/b:ro")
    dokku.ok("storage:mount", "app3", "/srv/c:/c")
    reported = parse_storage_report(dokku.ok("storage:report").stdout)
    listed = dict((app, parse_mount_json(dokku.ok("storage:list", app, "--format", "json").stdout))
                  for app in ("app1", "app2", "app3"))
    # the options may differ in form (0.38's JSON has readonly apart); StoragePlan reads host and container only
    assert dict((app, [m[:2] for m in mounts]) for app, mounts in reported.items()) == dict(
        (app, [m[:2] for m in mounts]) for app, mounts in listed.items())
    assert sorted(host for host, _c, _o in reported["app1"]) == ["/srv/a", "/srv/b"] and reported["app2"] == []
    assert parse_storage_report(dokku.ok("--quiet", "storage:report").stdout) == {}
