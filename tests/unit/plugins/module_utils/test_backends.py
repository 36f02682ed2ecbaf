# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backends.py's table in use: Google Cloud Storage with a service account's key, Azure's account key checked against
Litestream's abs client, and no other file of plugins/ naming a replica type."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import json
import os
import stat

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends, credentials, defaults
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import owned
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.auth_core import LitestreamAuth
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.sidecar_core import SidecarPlan
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.storage_core import AppFailure

PLUGINS = os.path.abspath(os.path.join(os.path.dirname(ls.__file__), os.pardir))
SECRET_PART = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7EXAMPLEsecret"
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % SECRET_PART
SERVICE_ACCOUNT = json.dumps({
    "type": "service_account", "project_id": "lab-project", "private_key_id": "0123456789abcdef",
    "private_key": PRIVATE_KEY, "client_email": "litestream@lab-project.iam.gserviceaccount.com",
    "client_id": "100000000000000000001", "token_uri": "https://oauth2.googleapis.com/token"}, indent=2)
ACCOUNT_KEY = "bXlhY2NvdW50a2V5RVhBTVBMRXNlY3JldA=="


class Docker:
    """What SidecarPlan asks of docker: the writes it runs, recorded; no container exists."""

    def __init__(self):
        self.commands = []

    def run(self, args, check=True):
        self.commands.append("docker " + " ".join(args))
        return 0, "", ""

    def inspect_container(self, _name):
        return None


def store_set(root, name, **fields):
    params = dict(credentials.auth_argument_spec())
    params = dict((key, spec.get("default")) for key, spec in params.items())
    params.update(name=name, credentials_root=str(root), **fields)
    assert credentials.credential_set_problem(params) is None
    LitestreamAuth(params, check_mode=False).run()


def sidecar_params(tmp_path, replica, **overrides):
    params = dict((key, spec.get("default")) for key, spec in ls.sidecar_argument_spec().items())
    params.update(app="blog", storage_root=str(tmp_path / "storage"), config_root=str(tmp_path / "apps"),
                  credentials_root=str(tmp_path / "credentials"), replica=replica, first_sync_timeout=0,
                  changed_credentials=[])
    params.update(overrides)
    (tmp_path / "storage" / "blog--db").mkdir(parents=True, exist_ok=True)
    return params


def provision(params, check_mode=False):
    docker = Docker()
    plan = SidecarPlan(params, docker, check_mode, warn=lambda msg: None)
    result = plan.converge(plan.prepare(), None, None)
    return plan, result, docker


def mode(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


GS = {"type": "gs", "bucket": "lab-backups", "path": "blog", "credentials": "gcs"}


# ---------------------------------------------------------------------------------------------- gs
def test_a_gs_replica_gets_the_service_account_file_and_the_variable_only(tmp_path):
    store_set(tmp_path / "credentials", "gcs", service_account_json=SERVICE_ACCOUNT)
    stored = tmp_path / "credentials" / "gcs" / backends.GCP_SERVICE_ACCOUNT_FILE
    assert stored.read_text() == SERVICE_ACCOUNT + "\n" and mode(stored) == 0o600
    plan, result, docker = provision(sidecar_params(tmp_path, GS))
    config_dir = tmp_path / "apps" / "blog"
    copied = config_dir / backends.GCP_SERVICE_ACCOUNT_FILE
    assert copied.read_text() == SERVICE_ACCOUNT + "\n"
    assert mode(copied) == 0o600 and (os.lstat(str(copied)).st_uid, os.lstat(str(copied)).st_gid) == (0, 0)
    env = (config_dir / ls.CREDENTIALS_ENV_FILE).read_text()
    assert env == "GOOGLE_APPLICATION_CREDENTIALS='/etc/litestream/gcp-service-account.json'\n"
    assert "AWS" not in env and "LITESTREAM_ACCESS_KEY_ID" not in env and "LITESTREAM_SECRET" not in env
    config = (config_dir / ls.CONFIG_FILE).read_text()
    assert SECRET_PART not in config and "GOOGLE_APPLICATION_CREDENTIALS" not in config
    assert 'type: "gs"' in config and 'bucket: "lab-backups"' in config
    # the config directory, file included, is mounted read-only where the variable points; nothing in docker's env
    create = next(command for command in docker.commands if command.startswith("docker container create"))
    assert "--volume %s:/etc/litestream:ro" % config_dir in create
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in create and " --env" not in create and " -e " not in create
    assert SECRET_PART not in json.dumps(result)
    assert result["actions"][:3] == ["write config", "write credentials.env", "write gcp-service-account.json"]
    # the app configuration directory is still the collection's own (its check knows the new file)
    assert owned.problem(str(config_dir), owned.APP_CONFIG) is None
    assert owned.problem(str(tmp_path / "credentials" / "gcs"), owned.CREDENTIAL_SET) is None


def test_a_second_run_and_a_switch_to_s3_keep_the_files_right(tmp_path):
    store_set(tmp_path / "credentials", "gcs", service_account_json=SERVICE_ACCOUNT)
    provision(sidecar_params(tmp_path, GS))
    _plan, again, _docker = provision(sidecar_params(tmp_path, GS))
    assert "write gcp-service-account.json" not in again["actions"]
    store_set(tmp_path / "credentials", "lab", access_key_id="AKIALAB", secret_access_key="s3cr3t-value")
    s3 = {"type": "s3", "bucket": "bkt", "path": "blog", "endpoint": "http://127.0.0.1:9000", "credentials": "lab"}
    _plan, switched, _docker = provision(sidecar_params(tmp_path, s3))
    assert "remove gcp-service-account.json" in switched["actions"]
    assert not (tmp_path / "apps" / "blog" / backends.GCP_SERVICE_ACCOUNT_FILE).exists()


def test_a_gs_set_without_a_service_account_is_refused_naming_the_set_and_the_field(tmp_path):
    # what provisioning gs took before: an access key pair, which Litestream's gs client never reads
    store_set(tmp_path / "credentials", "gcs", access_key_id="GOOG1EXAMPLE", secret_access_key="s3cr3t-value")
    with pytest.raises(AppFailure) as err:
        provision(sidecar_params(tmp_path, GS))
    assert str(err.value) == ("app blog: credential set 'gcs' has no service_account_json for a gs replica (Google "
                              "Cloud Storage): store it with dokku_sqlite.litestream.litestream_auth")
    assert not (tmp_path / "apps" / "blog").exists()


def test_check_mode_predicts_a_gs_set_not_written_yet(tmp_path):
    warnings = []
    plan = SidecarPlan(sidecar_params(tmp_path, GS), Docker(), True, warn=warnings.append)
    _config, _redacted, secrets = plan.prepare()
    assert secrets[plan.env_path] == "GOOGLE_APPLICATION_CREDENTIALS='/etc/litestream/gcp-service-account.json'\n"
    assert "credential set 'gcs' not found" in warnings[0]


@pytest.mark.parametrize("text, problem", [
    ("not json " + SECRET_PART, "service_account_json: is not JSON (the value is not shown: it is a secret)"),
    ("{'type': 'service_account', 'private_key': '%s'}" % SECRET_PART, "service_account_json: is not JSON"),
    (json.dumps([SECRET_PART]), "service_account_json: holds a JSON array, not an object (the value is not shown)"),
    (json.dumps(SECRET_PART), "service_account_json: holds a JSON string, not an object"),
    (json.dumps({"client_email": "a@b.iam.gserviceaccount.com", "private_key": SECRET_PART}),
     "service_account_json: the JSON object has no type (the value is not shown)"),
    (json.dumps({"type": "service_account", "private_key": SECRET_PART}),
     "service_account_json: the JSON object has no client_email (the value is not shown): a service account's key "
     "file holds type and client_email"),
    (json.dumps({"type": "", "client_email": 7, "private_key": SECRET_PART}),
     "service_account_json: the JSON object has no type and no client_email"),
])
def test_a_service_account_that_is_no_key_file_is_refused_without_showing_it(text, problem):
    params = dict((key, spec.get("default")) for key, spec in credentials.auth_argument_spec().items())
    params["service_account_json"] = text
    message = credentials.credential_set_problem(params)
    assert message.startswith(problem)
    assert SECRET_PART not in message and text not in message


def test_a_service_account_alone_is_a_set_and_no_access_key_is_needed():
    params = dict((key, spec.get("default")) for key, spec in credentials.auth_argument_spec().items())
    params["service_account_json"] = SERVICE_ACCOUNT
    assert credentials.credential_set_problem(params) is None
    spec = credentials.auth_argument_spec()["service_account_json"]
    assert spec == dict(type="str", no_log=True)


# ---------------------------------------------------------------------------------------------- abs
@pytest.mark.parametrize("spec", [{"type": "abs", "bucket": "container"}, {"url": "abs://container/blog"}])
def test_an_abs_replica_without_account_or_endpoint_is_refused(spec):
    with pytest.raises(v.InvalidValue) as err:
        ls.normalize_replica(spec)
    assert str(err.value).startswith("abs replica needs account_name or endpoint: Litestream's Azure client builds "
                                     "its endpoint from the account name")


def test_an_abs_endpoint_reaches_the_config():
    """abs/replica_client.go Init takes the endpoint as given; without it, https://ACCOUNT.blob.core.windows.net."""
    fields = ls.normalize_replica({"type": "abs", "bucket": "container", "path": "blog",
                                   "endpoint": "http://127.0.0.1:10000/devstoreaccount1"})
    block = ls.replica_block(fields, "production.sqlite3")
    assert block == {"type": "abs", "bucket": "container", "path": "blog/production.sqlite3",
                     "endpoint": "http://127.0.0.1:10000/devstoreaccount1"}
    fields = ls.normalize_replica({"url": "abs://acct@container/blog"})
    assert ls.replica_block(fields, "x.db")["account-name"] == "acct"


def test_an_account_key_without_an_account_name_is_refused_before_anything_is_written(tmp_path):
    store_set(tmp_path / "credentials", "azure", access_key_id="unused", secret_access_key=ACCOUNT_KEY)
    replica = {"type": "abs", "bucket": "container", "path": "blog", "endpoint": "https://blob.example.net",
               "credentials": "azure"}
    with pytest.raises(AppFailure) as err:
        provision(sidecar_params(tmp_path, replica))
    assert str(err.value) == (
        "app blog: replica.account_name: credential set 'azure' holds secret_access_key, which Litestream's Azure Blob "
        "Storage client uses only together with account_name, so it would be silently ignored: set "
        "replica.account_name, or remove secret_access_key from the set")
    assert ACCOUNT_KEY not in str(err.value) and not (tmp_path / "apps" / "blog").exists()


def test_an_account_key_with_an_account_name_is_the_azure_variable(tmp_path):
    store_set(tmp_path / "credentials", "azure", access_key_id="unused", secret_access_key=ACCOUNT_KEY)
    _plan, _result, _docker = provision(sidecar_params(tmp_path, {"url": "abs://acct@container/blog",
                                                                  "credentials": "azure"}))
    env = (tmp_path / "apps" / "blog" / ls.CREDENTIALS_ENV_FILE).read_text()
    assert env == "LITESTREAM_AZURE_ACCOUNT_KEY='%s'\n" % ACCOUNT_KEY


# ---------------------------------------------------------------------------------------------- the table
def test_every_backend_names_its_source_and_the_one_shell_line_builds_every_script():
    for backend in backends.BACKENDS:
        assert backend.source and backend.label
        assert (backend.bucket_rule is None) == (backend.container is None)
        for field, _name, _var in backend.credential_files:
            assert field in credentials.SECRET_FIELDS
    assert credentials.FILE_FIELDS == {"service_account_json": backends.GCP_SERVICE_ACCOUNT_FILE,
                                       "ssh_private_key": backends.SSH_KEY_FILE}
    assert defaults.CREDENTIALS_ROOT == credentials.auth_argument_spec()["credentials_root"]["default"]
    # the credentials file is sourced by litestream.source_env alone
    for path in python_files():
        if not path.endswith(os.path.join("module_utils", "litestream.py")):
            with open(path) as handle:
                assert "set -a" not in handle.read(), path


def python_files():
    for directory, _dirs, files in os.walk(PLUGINS):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(directory, name)


# String constants that equal a backend's name but are no replica type
NOT_A_TYPE = {("module_utils/s3_listing.py", "s3"): "Signature Version 4's service name (the S3 API)",
              ("module_utils/sftp_claims.py", "sftp"): "the OpenSSH client program the claims run"}
# Files other helpers of issue 21 are still converting; emptied when they are done
NOT_YET_CONVERTED = set()
DOC_STRINGS = ("DOCUMENTATION", "EXAMPLES", "RETURN")


def type_literals(path):
    """(line, text) of every string constant in a file that is a replica type's name (or 'gcs'), docstrings and the
    DOCUMENTATION/EXAMPLES/RETURN strings aside."""
    with open(path) as handle:
        tree = ast.parse(handle.read())
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) in DOC_STRINGS for t in node.targets):
            skipped.add(id(node.value))
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skipped.add(id(body[0].value))
    names = set(backends.NAMES) | set(backends.RENAMED)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
            and id(node) not in skipped]


def test_no_file_of_plugins_but_the_table_names_a_replica_type():
    found = []
    for path in python_files():
        relative = os.path.relpath(path, PLUGINS)
        if relative == os.path.join("module_utils", "backends.py") or relative in NOT_YET_CONVERTED:
            continue
        found += ["%s:%d: %r" % (relative, line, text) for line, text in type_literals(path)
                  if (relative, text) not in NOT_A_TYPE]
    assert found == []


def test_the_scan_finds_a_type_literal(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('DOCUMENTATION = "gs"\n\n\ndef f(fields):\n    """s3"""\n'
                     '    return fields["type"] in ("s3", "gcs")\n')
    assert type_literals(str(probe)) == [(6, "s3"), (6, "gcs")]
