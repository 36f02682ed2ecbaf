# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One entry per replica type Litestream 0.5 has: what each module needs to know about a backend, in one table.

No other file names a replica type: modules ask BACKENDS (through `get` or `of`) what a type takes, how its
credentials reach Litestream and what can be read of it. Adding a backend is adding an entry here (and its bucket
rule in validate.py when it has buckets).

Read from Litestream's source at v0.5.16 (the sidecar's default image is 0.5.17; these files did not change):
cmd/litestream/main.go (newS3/newGS/newABS/newSFTP/newFileReplicaClientFromConfig), s3/replica_client.go,
gs/replica_client.go, abs/replica_client.go, sftp/replica_client.go, file/replica_client.go.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import namedtuple

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

Backend = namedtuple("Backend", [
    "name",                # the type, and the URL scheme (type: s3 / s3://bucket/path)
    "label",               # how messages call it
    "fields",              # replica fields of this type, besides the common ones (type, url, path, ...)
    "container",           # None, or what the store calls a bucket ("bucket", "container"): the replica needs one
    "bucket_rule",         # validate's naming rule for that bucket or container, or None
    "url_user",            # the replica field the URL's user part fills (sftp://user@host, abs://account@container)
    "required",            # ((replica fields of which one must be given, why), ...), besides the bucket
    "server_path",         # the path is on a server: absolute, or relative to the login directory (~/ in the URL)
    "needs_credentials",   # the replica names a credential set that must exist
    "credential_env",      # ((credential field, environment variable Litestream reads), ...)
    "credential_files",    # ((credential field, file name beside litestream.yml, variable naming its path), ...)
    "credentials_required",  # the credential fields a set must hold for this type (all of one group)
    "credential_needs",    # ((credential field, the replica field without which Litestream ignores it), ...)
    "host_path",           # the replica is a directory on the Dokku host, mounted into the sidecar at its own path
    "in_process_listing",  # the health check can list it from the host without a container (S3 REST)
    "v03_restore",         # Litestream 0.3's client for it reads the generations/ layout (a plugin replica)
    "prepare",             # fields -> None: the type's defaults, set on normalised fields (or None)
    "render",              # (fields, credentials, block) -> None: the type's own keys of the replica block (or None)
    "claims",              # the create-only write ownership claims use there (claim_store.PRIMITIVES), or None
    "source",              # where in Litestream's source these claims were read
])

# Where a file credential lands inside every container that reads a replica (the configuration directory, mounted
# read-only): the variable that names it points there. The credential set keeps the file under the same name.
CONTAINER_CONFIG_DIR = "/etc/litestream"
GCP_SERVICE_ACCOUNT_FILE = "gcp-service-account.json"
SSH_KEY_FILE = "ssh_key"


def _s3_defaults(fields):
    fields.setdefault("region", "us-east-1")
    if fields.get("endpoint"):
        fields.setdefault("force_path_style", True)


def _s3_block(fields, credentials, block):
    # the set's region and endpoint are defaults for every replica using it
    block["region"] = credentials.get("region") or fields.get("region")
    endpoint = fields.get("endpoint") or credentials.get("endpoint")
    if endpoint:
        block["endpoint"] = endpoint
        block["force-path-style"] = fields.get("force_path_style", True)
    if fields.get("skip_verify"):
        block["skip-verify"] = True


def _abs_block(fields, _credentials, block):
    if fields.get("account_name"):
        block["account-name"] = fields["account_name"]
    # Azurite, a sovereign cloud: without it Init builds https://ACCOUNT.blob.core.windows.net
    if fields.get("endpoint"):
        block["endpoint"] = fields["endpoint"]


def _sftp_block(fields, credentials, block):
    host = fields["host"]
    block["host"] = host if re.search(r":[0-9]+\Z", host) else host + ":22"  # [::1] has ':' but no port
    block["user"] = fields["user"]
    block["host-key"] = fields["host_key"]
    if credentials.get("ssh_private_key"):
        block["key-path"] = "%s/%s" % (CONTAINER_CONFIG_DIR, SSH_KEY_FILE)
    if credentials.get("sftp_password"):
        # Litestream reads an sftp password from its config only: the one secret that lands there
        block["password"] = credentials["sftp_password"]


BACKENDS = (
    Backend(
        name="s3", label="S3-compatible store",
        fields=frozenset(("bucket", "endpoint", "region", "force_path_style", "skip_verify")),
        container="bucket", bucket_rule=v.s3_bucket_problem, url_user=None, required=(), server_path=False,
        needs_credentials=True,
        # LITESTREAM_ACCESS_KEY_ID / LITESTREAM_SECRET_ACCESS_KEY are read by cmd/litestream/main.go before the
        # AWS SDK's own chain; the SDK reads AWS_SESSION_TOKEN
        credential_env=(("access_key_id", "LITESTREAM_ACCESS_KEY_ID"),
                        ("secret_access_key", "LITESTREAM_SECRET_ACCESS_KEY"),
                        ("session_token", "AWS_SESSION_TOKEN")),
        credential_files=(), credentials_required=(("access_key_id", "secret_access_key"),), credential_needs=(),
        host_path=False, in_process_listing=True, v03_restore=True, prepare=_s3_defaults, render=_s3_block,
        claims="conditional-put",
        source="cmd/litestream/main.go newS3ReplicaClientFromConfig; s3/replica_client.go Init"),
    Backend(
        name="gs", label="Google Cloud Storage",
        fields=frozenset(("bucket",)),
        container="bucket", bucket_rule=v.gs_bucket_problem, url_user=None, required=(), server_path=False,
        needs_credentials=True,
        # SOURCE gs/replica_client.go Init: `storage.NewClient(ctx)` with no option, so Application Default
        # Credentials only: the service-account JSON file GOOGLE_APPLICATION_CREDENTIALS names. No AWS-style key
        # (newGSReplicaClientFromConfig sets only the bucket and the path).
        credential_env=(),
        credential_files=(("service_account_json", GCP_SERVICE_ACCOUNT_FILE, "GOOGLE_APPLICATION_CREDENTIALS"),),
        credentials_required=(("service_account_json",),), credential_needs=(),
        host_path=False, in_process_listing=False, v03_restore=False, prepare=None, render=None,
        claims=None,
        source="gs/replica_client.go Init (storage.NewClient(ctx)); "
               "cmd/litestream/main.go newGSReplicaClientFromConfig"),
    Backend(
        name="abs", label="Azure Blob Storage",
        fields=frozenset(("bucket", "account_name", "endpoint")),
        container="container", bucket_rule=v.abs_container_problem, url_user="account_name",
        # SOURCE abs/replica_client.go Init: without an endpoint it builds https://ACCOUNT.blob.core.windows.net
        # and fails "account name is required when endpoint is not specified"
        required=((("account_name", "endpoint"), ": Litestream's Azure client builds its endpoint from the account "
                   "name (https://ACCOUNT.blob.core.windows.net), so without an account name it needs the endpoint"),),
        server_path=False, needs_credentials=True,
        # SOURCE abs/replica_client.go Init: the account key (LITESTREAM_AZURE_ACCOUNT_KEY) makes a shared-key
        # credential only together with an account name; otherwise, and without a key, it takes Azure's default
        # credential chain (managed identity, AZURE_CLIENT_ID/..._SECRET/TENANT_ID), so no field is required.
        # newABSReplicaClientFromConfig reads account-name and endpoint (shared replica keys) from the config.
        credential_env=(("secret_access_key", "LITESTREAM_AZURE_ACCOUNT_KEY"),),
        credential_files=(), credentials_required=(), credential_needs=(("secret_access_key", "account_name"),),
        host_path=False, in_process_listing=False, v03_restore=False, prepare=None, render=_abs_block,
        claims=None,
        source="abs/replica_client.go Init; cmd/litestream/main.go newABSReplicaClientFromConfig"),
    Backend(
        name="sftp", label="SFTP server",
        fields=frozenset(("host", "user", "host_key")),
        container=None, bucket_rule=None, url_user="user",
        required=((("host",), ""), (("user",), ""), (("path",), ""),
                  (("host_key",), " (the server's public host key, e.g. the 'ssh-ed25519 AAAA...' line): Litestream "
                                  "does not verify the host otherwise")),
        server_path=True, needs_credentials=True,
        # the key goes to a file named by the config's key-path, a password into the config itself
        credential_env=(), credential_files=(("ssh_private_key", SSH_KEY_FILE, None),),
        credentials_required=(("ssh_private_key",), ("sftp_password",)), credential_needs=(),
        host_path=False, in_process_listing=False, v03_restore=False, prepare=None, render=_sftp_block,
        claims="legacy-rename",
        source="sftp/replica_client.go Init; cmd/litestream/main.go newSFTPReplicaClientFromConfig"),
    Backend(
        name="file", label="directory on the host",
        fields=frozenset(),
        container=None, bucket_rule=None, url_user=None, required=(), server_path=False, needs_credentials=False,
        credential_env=(), credential_files=(), credentials_required=(), credential_needs=(),
        host_path=True, in_process_listing=False, v03_restore=True, prepare=None, render=None,
        claims="link",
        source="file/replica_client.go; cmd/litestream/main.go newFileReplicaClientFromConfig"),
)

BY_NAME = dict((backend.name, backend) for backend in BACKENDS)
NAMES = tuple(backend.name for backend in BACKENDS)
# names users bring from elsewhere, and what Litestream 0.5 calls them
RENAMED = {"gcs": "gs"}


def get(name, option="replica.type"):
    """The backend of a type name; raises InvalidValue naming the option, with the known names."""
    backend = BY_NAME.get(name)
    if backend is not None:
        return backend
    if name in RENAMED:
        new = BY_NAME[RENAMED[name]]
        raise v.InvalidValue("%s: %r is called %r in Litestream 0.5 (it calls %s %r, not %r)" % (
            option, name, new.name, new.label, new.name, name))
    raise v.InvalidValue("%s: unknown replica type %s (expected one of %s)" % (option, v.shown(name), ", ".join(NAMES)))


def of(fields):
    """The backend of normalised replica fields."""
    return BY_NAME[fields["type"]]


def credential_files():
    """{credential field: file name} of every field stored as a file of its own (in the set and beside the config)."""
    return dict((entry[0], entry[1]) for backend in BACKENDS for entry in backend.credential_files)
