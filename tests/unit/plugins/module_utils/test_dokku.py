"""module_utils/dokku.py: version parsing, generations, validation, the runner's record and errors."""
import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import dokku, validate


class FakeModule:
    """Answers run_command from a script of (argv tail, rc, stdout, stderr) and records calls."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []

    def get_bin_path(self, name, required=False):
        return "/usr/bin/" + name

    def run_command(self, argv, **kwargs):
        self.calls.append(argv)
        expected, rc, out, err = self.script.pop(0)
        assert argv[1:] == expected
        return rc, out, err


@pytest.mark.parametrize("text, version", [
    ("dokku version 0.38.27\n", (0, 38, 27)),
    ("dokku version v0.37.10", (0, 37, 10)),
    ("0.30.5", (0, 30, 5)),
])
def test_parse_version(text, version):
    assert dokku.parse_version(text) == version


def test_parse_version_rejects_garbage():
    with pytest.raises(ValueError, match="cannot read a Dokku version"):
        dokku.parse_version("command not found")


@pytest.mark.parametrize("version, gen", [
    ((0, 30, 5), dokku.GEN_BASH), ((0, 37, 4), dokku.GEN_BASH), ((0, 37, 5), dokku.GEN_GO),
    ((0, 37, 10), dokku.GEN_GO), ((0, 38, 0), dokku.GEN_NAMED), ((0, 38, 27), dokku.GEN_NAMED),
])
def test_generation_edges(version, gen):
    assert dokku.generation(version) == gen


@pytest.mark.parametrize("name, ok", [
    ("myapp", True), ("my-app.v2", True), ("0app", True), ("a" * 63, True),
    ("MyApp", False), ("-app", False), ("my_app", False), ("", False), ("a/b", False), ("app\n", False),
    ("a" * 64, False),
])
def test_app_name(name, ok):
    try:
        validate.app_name(name)
    except validate.InvalidValue:
        assert not ok
    else:
        assert ok


@pytest.mark.parametrize("name, ok", [
    ("myapp--db", True), ("A_b-9", True), ("", False), ("a/b", False), ("..", False), ("a b", False), ("a\n", False),
])
def test_storage_name(name, ok):
    try:
        validate.storage_name(name)
    except validate.InvalidValue:
        assert not ok
    else:
        assert ok


def test_parse_mount_lines_quiet_and_headed():
    quiet = "/var/lib/dokku/data/storage/a--db:/app/db/litestream\n"
    headed = "-----> a volume bind-mounts:\n       /srv/x:/x:ro\n"
    assert dokku.parse_mount_lines(quiet) == [("/var/lib/dokku/data/storage/a--db", "/app/db/litestream", "")]
    assert dokku.parse_mount_lines(headed) == [("/srv/x", "/x", "ro")]


@pytest.mark.parametrize("text", [
    '[\n  {\n    "host_path": "/h",\n    "container_path": "/c",\n    "volume_options": ""\n  }\n]',  # bash jq
    '[{"host_path":"/h","container_path":"/c","volume_options":""}]',  # 0.37.5+
    '[{"entry_name":"legacy-0123456789","host_path":"/h","container_path":"/c"}]',  # 0.38.13+
])
def test_parse_mount_json_every_generation(text):
    assert dokku.parse_mount_json(text) == [("/h", "/c", "")]


def test_runner_records_commands_with_secrets_masked():
    module = FakeModule([(["config:set", "--no-restart", "app", "KEY=s3cr3t"], 0, "", "")])
    runner = dokku.DokkuRunner(module)
    runner.run(["config:set", "--no-restart", "app", "KEY=s3cr3t"], secrets=["s3cr3t"])
    assert runner.commands == ["dokku config:set --no-restart app KEY=********"]
    assert module.calls[0][-1] == "KEY=s3cr3t"  # the real value still reaches dokku


def test_runner_error_quotes_command_and_dokku_message():
    module = FakeModule([(["storage:mount", "app", "/h:/c"], 1, "", " !     Mount path already exists.\n")])
    runner = dokku.DokkuRunner(module)
    with pytest.raises(dokku.DokkuError) as err:
        runner.run(["storage:mount", "app", "/h:/c"])
    assert str(err.value) == "'dokku storage:mount app /h:/c' failed (exit 1): Mount path already exists."


def test_runner_error_ignores_deprecation_warnings():
    stderr = " !     Deprecated: please use 'storage:create' instead of 'storage:ensure-directory'\n" \
             " !     Directory can only contain the following set of characters: [A-Za-z0-9_-]\n"
    error = dokku.DokkuError(["dokku", "storage:ensure-directory", "a/b"], 1, "", stderr)
    assert error.dokku_message == "Directory can only contain the following set of characters: [A-Za-z0-9_-]"


def test_app_exists_maps_exit_20():
    module = FakeModule([
        (["apps:exists", "here"], 0, "", ""),
        (["apps:exists", "gone"], 20, "", " !     App gone does not exist\n"),
    ])
    runner = dokku.DokkuRunner(module)
    assert runner.app_exists("here") is True
    assert runner.app_exists("gone") is False


def test_version_is_read_once_and_picks_storage_list_format():
    module = FakeModule([
        (["version"], 0, "dokku version 0.28.4\n", ""),
        (["storage:list", "a"], 0, "/h:/c\n", ""),
        (["storage:list", "a"], 0, "/h:/c\n", ""),
    ])
    runner = dokku.DokkuRunner(module)
    assert runner.storage_mounts("a") == [("/h", "/c", "")]
    assert runner.storage_mounts("a") == [("/h", "/c", "")]
    assert [call[1] for call in module.calls].count("version") == 1


def test_the_runner_expands_no_variables_or_tilde():
    """Ansible's run_command expands '~' and '$VAR' in each argument unless told not to."""
    seen = {}

    class Recording(FakeModule):
        def run_command(self, argv, **kwargs):
            seen.update(kwargs)
            return super(Recording, self).run_command(argv)
    runner = dokku.DokkuRunner(Recording([(["apps:exists", "$HOME"], 20, "", "")]))
    assert runner.app_exists("$HOME") is False
    assert seen["expand_user_and_vars"] is False


# as Dokku 0.38.27 prints it (storage/report.go; labels padded to the longest key, trailing spaces kept)
REPORT_V38 = "".join(line + "\n" for line in [
    '=====> blog storage information',
    '       Storage attachment 1 container path: /app/db/litestream',
    '       Storage attachment 1 entry name:     blog--db',
    '       Storage attachment 1 host path:      /var/lib/dokku/data/storage/blog--db',
    '       Storage attachment 1 phases:         deploy,run',
    '       Storage attachment 1 process type:   _default_',
    '       Storage attachment 1 readonly:       false',
    '       Storage attachment 1 subpath:        ',
    '       Storage attachment 1 volume chown:   ',
    '       Storage attachment 1 volume options: ',
    '       Storage build mounts:                ',
    '       Storage deploy mounts:               -v /var/lib/dokku/data/storage/blog--db:/app/db/litestream',
    '       Storage run mounts:                  -v /var/lib/dokku/data/storage/blog--db:/app/db/litestream',
    '=====> empty storage information',
    '       Storage build mounts:          ',
    '       Storage deploy mounts:         ',
    '       Storage run mounts:            ',
    '=====> spaced storage information',
    '       Storage build mounts:          ',
    '       Storage deploy mounts:         -v /srv/a b:/data -v /srv/c:/c',
    '       Storage run mounts:            ',
    '=====> two storage information',
    '       Storage build mounts:          ',
    '       Storage deploy mounts:         -v /srv/a:/a -v /srv/b:/b:ro,z',
    '       Storage run mounts:            -v /srv/a:/a',
    '',
])


def test_parse_storage_report_reads_every_app_by_its_header():
    found = dokku.parse_storage_report(REPORT_V38)
    assert found == {"blog": [("/var/lib/dokku/data/storage/blog--db", "/app/db/litestream", "")],
                     "empty": [],
                     "two": [("/srv/a", "/a", ""), ("/srv/b", "/b", "ro,z")]}
    # 'spaced' is left out: its words are not only `-v host:container`, so storage:list reads it


def test_parse_storage_report_bash_layout_and_quiet_output():
    bash = ("=====> blog storage information\n"
            "       Storage build mounts:          \n"
            "       Storage deploy mounts:         -v /srv/a:/a -v /srv/b:/b \n"
            "       Storage run mounts:            -v /srv/a:/a \n")
    assert dokku.parse_storage_report(bash) == {"blog": [("/srv/a", "/a", ""), ("/srv/b", "/b", "")]}
    # DOKKU_QUIET_OUTPUT drops the headers (LogInfo2Quiet): no line can be tied to an app
    quiet = "\n".join(line for line in REPORT_V38.splitlines() if not line.startswith("=====>"))
    assert dokku.parse_storage_report(quiet) == {}
    assert dokku.parse_storage_report("") == {}
