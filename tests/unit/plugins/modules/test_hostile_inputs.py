# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile and mistaken inputs, one named row each, through every module's main().

Each row must fail with its exact message, run no dokku or docker command, and leave the sandbox (the
roots the module was given, with an existing app configuration and credential set in them) exactly
as it was. The sandbox sits in a parent directory that is snapshotted too, so a removal that climbs
out of a root (app: '..') shows.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import signal
import stat
import tempfile
import xml.dom.minidom

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore_swap
from ansible_collections.dokku_sqlite.litestream.plugins.modules import (
    dokku_storage, litestream_auth, litestream_drill_report, litestream_replica, litestream_restore, litestream_standby)

from .conftest import assert_no_secret, run_module, snapshot
from .test_litestream_restore import FakeLitestream

SECRET = "wJalrXUtnFEMI-hostile-SECRET"
UID, GID = os.getuid(), os.getgid()
APP_RULE = ("app: %s is not a valid Dokku app name: use lowercase letters, digits, dots and hyphens, starting "
            "with a letter or digit")
DB_PLAIN = ("%s: database name %s must be a plain file name inside the storage directory (no '/', '..' or "
            "control characters)")
URL_CREDS = ("%s: the URL carries credentials before '@' (the value is not shown): put keys and passwords in a "
             "credential set (dokku_sqlite.litestream.litestream_auth)")
LONG_APP = "a" * 300
LONG_APP_SHOWN = "'%s...aaaaa' (300 characters)" % ("a" * 49)
# once database, name and dest are valid, a restore's messages name both
RESTORE = "restore of production.sqlite3 into {top}/storage/blog--db/production.sqlite3: "
STANDBY = "standby of {top}/storage/blog--db/production.sqlite3: "
S3 = {"type": "s3", "bucket": "bkt", "path": "blog", "endpoint": "http://127.0.0.1:9000", "credentials": "lab"}
SFTP = {"type": "sftp", "host": "backup.example.net", "user": "bk", "path": "/srv/blog", "host_key": "ssh-ed25519 AAAA",
        "credentials": "lab"}
SYSTEM_DIR = ("replica.path: %s is a system directory: a file replica's directory is mounted read-write into the sidecar, "
              "a root container; give a directory of its own, such as /var/lib/litestream-replicas")
INSIDE_SYSTEM_DIR = ("replica.path: %s is inside %s, a system directory: a file replica's directory is mounted read-write "
                     "into the sidecar, a root container; give a directory of its own outside it, such as "
                     "/var/lib/litestream-replicas")
HOST_RULE = ("a host is an ASCII name of labels of 1 to 63 letters, digits, '-' and '_' joined by single dots (at most "
             "253 characters), an IPv4 address or an IPv6 address in brackets")


@pytest.fixture
def sandbox(tmp_path):
    """<tmp>/sandbox/{apps/blog, credentials/lab, storage/blog--db}: what a module may never touch by mistake."""
    top = tmp_path / "sandbox"
    (top / "apps" / "blog").mkdir(parents=True, mode=0o700)  # as an earlier release made it: root 0700, no marker
    (top / "apps" / "blog" / "litestream.yml").write_text("dbs: []\n")
    creds = top / "credentials" / "lab"
    creds.mkdir(parents=True)
    os.chmod(str(creds), 0o700)
    (creds / "credentials.json").write_text(json.dumps({"access_key_id": "AKIA", "secret_access_key": SECRET}))
    (top / "storage" / "blog--db").mkdir(parents=True)
    return top


def storage_args(top, **extra):
    args = {"app": "blog"}
    args.update(extra)
    return args


def replica_args(top, **extra):
    args = {"app": "blog", "config_root": str(top / "apps"), "credentials_root": str(top / "credentials"),
            "storage_root": str(top / "storage"), "replica": dict(S3)}
    args.update(extra)
    return args


def auth_args(top, **extra):
    args = {"name": "lab", "credentials_root": str(top / "credentials"), "access_key_id": "AKIA",
            "secret_access_key": SECRET}
    args.update(extra)
    return args


def restore_args(top, **extra):
    args = {"credentials_root": str(top / "credentials"), "dest": str(top / "storage" / "blog--db"),
            "database": "production.sqlite3", "owner": UID, "group": GID, "replica": dict(S3)}
    args.update(extra)
    return args


MODULES = {
    "storage": (dokku_storage.main, storage_args),
    "replica": (litestream_replica.main, replica_args),
    "auth": (litestream_auth.main, auth_args),
    "restore": (litestream_restore.main, restore_args),
    "standby": (litestream_standby.main, restore_args),  # the restore's options, checked by the same Request
}

# (name, module, options, exact message); "{top}" in an option or message is the sandbox directory
CASES = [
    # ---- app names: the High bug (state=absent removed config_root/<app> recursively, unvalidated)
    ("replica_absent_app_dotdot", "replica", {"app": "..", "state": "absent"}, APP_RULE % "'..'"),
    ("replica_absent_app_dot", "replica", {"app": ".", "state": "absent"}, APP_RULE % "'.'"),
    ("replica_absent_app_empty", "replica", {"app": "", "state": "absent"}, APP_RULE % "''"),
    ("replica_absent_app_slash", "replica", {"app": "blog/../..", "state": "absent"}, APP_RULE % "'blog/../..'"),
    ("replica_app_trailing_newline", "replica", {"app": "blog\n"}, APP_RULE % "'blog\\n'"),
    ("replica_app_300_chars", "replica", {"app": LONG_APP},
     "app: %s is too long: a Dokku app name has at most 63 characters (it is used as a DNS label)" % LONG_APP_SHOWN),
    ("storage_app_300_chars", "storage", {"app": LONG_APP},
     "app: %s is too long: a Dokku app name has at most 63 characters (it is used as a DNS label)" % LONG_APP_SHOWN),
    ("storage_app_uppercase", "storage", {"app": "Blog"}, APP_RULE % "'Blog'"),
    ("storage_app_leading_dash", "storage", {"app": "-blog"}, APP_RULE % "'-blog'"),
    ("storage_storage_traversal", "storage", {"storage": "../db"},
     "storage: '../db' is not a valid storage directory name: use 1 to 200 of the characters [A-Za-z0-9_-]"),
    # ---- chown
    ("storage_chown_superscript_two", "storage", {"chown": u"\u00b2"},
     "chown: '\u00b2' is not allowed: use herokuish, heroku, paketo, root, false or a numeric uid (0 to 2147483646)"),
    ("storage_chown_negative", "storage", {"chown": "-1"},
     "chown: '-1' is not allowed: use herokuish, heroku, paketo, root, false or a numeric uid (0 to 2147483646)"),
    ("storage_chown_too_big", "storage", {"chown": "4294967295"},
     "chown: '4294967295' is not allowed: use herokuish, heroku, paketo, root, false or a numeric uid "
     "(0 to 2147483646)"),
    ("storage_chown_trailing_newline", "storage", {"chown": "root\n"},
     "chown: 'root\\n' is not allowed: use herokuish, heroku, paketo, root, false or a numeric uid (0 to 2147483646)"),
    # ---- mount paths (they reach storage:mount and docker -v)
    ("storage_mount_path_dotdot", "storage", {"mount_path": "/app/../etc"}, "mount_path: '/app/../etc' must not contain '..'"),
    ("storage_mount_path_colon", "storage", {"mount_path": "/app/db:rw"},
     "mount_path: '/app/db:rw' must not contain ':' (it is part of a docker mount, where ':' separates fields)"),
    ("storage_mount_path_space", "storage", {"mount_path": "/app/db -v /:/host"},
     "mount_path: '/app/db -v /:/host' must not contain ':' (it is part of a docker mount, where ':' separates fields)"),
    ("storage_mount_path_whitespace", "storage", {"mount_path": "/app/my db"},
     "mount_path: '/app/my db' must not contain whitespace (older Dokku splits its docker options on it)"),
    ("storage_mount_path_newline", "storage", {"mount_path": "/app/db\n"},
     "mount_path: '/app/db\\n' must not contain control characters (a newline, a tab, ...)"),
    ("storage_mount_path_relative", "storage", {"mount_path": "app/db"},
     "mount_path: 'app/db' must be an absolute path (starting with '/'; '~' and '$' are not expanded)"),
    ("storage_mount_path_root", "storage", {"mount_path": "//"},
     "mount_path: '/' cannot be a mount point: give a directory below /"),
    # ---- roots: never a system directory, never expanded
    ("replica_absent_config_root_slash", "replica", {"config_root": "/", "state": "absent"},
     "app blog: config_root: / is a system directory; give a directory of its own for this collection, such as "
     "/var/lib/dokku/config/litestream/credentials"),
    ("replica_config_root_etc", "replica", {"config_root": "/etc/", "state": "absent"},
     "app blog: config_root: /etc is a system directory; give a directory of its own for this collection, such as "
     "/var/lib/dokku/config/litestream/credentials"),
    ("replica_config_root_tilde", "replica", {"config_root": "~/apps"},
     "app blog: config_root: '~/apps' must be an absolute path (starting with '/'; '~' and '$' are not expanded)"),
    ("replica_config_root_dollar", "replica", {"config_root": "$HOME/apps"},
     "app blog: config_root: '$HOME/apps' must be an absolute path (starting with '/'; '~' and '$' are not "
     "expanded)"),
    ("replica_storage_root_colon", "replica", {"storage_root": "/srv/a:/etc"},
     "app blog: storage_root: '/srv/a:/etc' must not contain ':' (it is part of a docker mount, where ':' "
     "separates fields)"),
    ("auth_root_slash", "auth", {"credentials_root": "/"},
     "credentials_root: / is a system directory; give a directory of its own for this collection, such as "
     "/var/lib/dokku/config/litestream/credentials"),
    ("auth_absent_root_etc_ssl", "auth", {"credentials_root": "/etc", "name": "ssl", "state": "absent"},
     "credentials_root: /etc is a system directory; give a directory of its own for this collection, such as "
     "/var/lib/dokku/config/litestream/credentials"),
    # (issue 20, review) litestream_auth would chmod Dokku's storage root 0700: no app could read its storage
    ("auth_root_dokku_storage", "auth", {"credentials_root": "/var/lib/dokku/data/storage/"},
     "credentials_root: /var/lib/dokku/data/storage is a system directory; give a directory of its own for this "
     "collection, such as /var/lib/dokku/config/litestream/credentials"),
    ("replica_absent_config_root_dokku_data", "replica", {"config_root": "/var/lib/dokku/data", "state": "absent"},
     "app blog: config_root: /var/lib/dokku/data is a system directory; give a directory of its own for this "
     "collection, such as /var/lib/dokku/config/litestream/credentials"),
    ("auth_root_climbs_out", "auth", {"credentials_root": "/var/lib/dokku/../../../etc"},
     "credentials_root: '/var/lib/dokku/../../../etc' must not contain '..'"),
    ("auth_root_relative", "auth", {"credentials_root": "creds"},
     "credentials_root: 'creds' must be an absolute path (starting with '/'; '~' and '$' are not expanded)"),
    ("auth_name_dotdot", "auth", {"name": "..", "state": "absent"},
     "name: '..' is not a valid credential set name: use lowercase letters, digits, '-' and '_', starting with a "
     "letter or digit, at most 63 characters"),
    ("auth_name_trailing_newline", "auth", {"name": "lab\n", "state": "absent"},
     "name: 'lab\\n' is not a valid credential set name: use lowercase letters, digits, '-' and '_', starting "
     "with a letter or digit, at most 63 characters"),
    ("auth_secret_lone_surrogate", "auth", {"secret_access_key": u"x\udc80"},
     "secret_access_key: is not valid Unicode text (it holds an unpaired surrogate, e.g. from bytes that were not "
     "UTF-8)"),
    # ---- database names
    ("replica_database_wal", "replica", {"databases": ["production.sqlite3-wal"]},
     "app blog: databases: 'production.sqlite3-wal' is the name of a SQLite -wal file, not of a database: give "
     "the database's own name"),
    ("restore_database_shm", "restore", {"database": "production.sqlite3-shm"},
     "database: 'production.sqlite3-shm' is the name of a SQLite -shm file, not of a database: give the "
     "database's own name"),
    ("restore_name_journal", "restore", {"name": "blog.db-journal"},
     "name: 'blog.db-journal' is the name of a SQLite -journal file, not of a database: give the database's own "
     "name"),
    ("replica_database_newline", "replica", {"databases": ["prod\n.sqlite3"]},
     "app blog: " + DB_PLAIN % ("databases", "'prod\\n.sqlite3'")),
    ("restore_database_traversal", "restore", {"database": "../../etc/passwd"},
     DB_PLAIN % ("database", "'../../etc/passwd'")),
    ("restore_name_hidden", "restore", {"name": ".production.sqlite3"},
     "name: database name '.production.sqlite3' must not start with '.' (Litestream keeps its state in "
     ".<name>-litestream)"),
    # ---- URLs and endpoints: no credentials, never echoed
    ("replica_url_with_key_and_secret", "replica", {"replica": {"url": "s3://AKIA:%s@bucket/x" % SECRET}},
     "app blog: " + URL_CREDS % "replica.url"),
    ("replica_endpoint_with_key_and_secret", "replica",
     {"replica": dict(S3, endpoint="https://AKIA:%s@minio:9000" % SECRET)}, "app blog: " + URL_CREDS % "replica.endpoint"),
    ("restore_url_with_key_and_secret", "restore", {"replica": {"url": "s3://AKIA:%s@bucket/x" % SECRET}},
     RESTORE + URL_CREDS % "replica.url"),
    ("restore_sftp_url_with_password", "restore",
     {"replica": {"url": "sftp://bk:%s@host/x" % SECRET, "host_key": "ssh-ed25519 AAAA"}},
     RESTORE + URL_CREDS % "replica.url"),
    ("auth_endpoint_with_key_and_secret", "auth", {"endpoint": "https://AKIA:%s@minio:9000" % SECRET},
     URL_CREDS % "endpoint"),
    # found by test_properties.py: a secret with '/', '?' or '#' (AWS secrets hold '/') or a URL without a scheme
    # hid the credentials from the check, and the next message showed the whole URL
    ("replica_url_secret_with_slash", "replica", {"replica": {"url": "s3://AKIA:wJal/%s+x@bucket/x" % SECRET}},
     "app blog: " + URL_CREDS % "replica.url"),
    ("replica_endpoint_secret_with_question_mark", "replica",
     {"replica": dict(S3, endpoint="s3://AKIA:%s?x@bucket/x" % SECRET)}, "app blog: " + URL_CREDS % "replica.endpoint"),
    ("auth_endpoint_without_scheme_with_credentials", "auth", {"endpoint": "AKIA:%s@minio:9000" % SECRET},
     URL_CREDS % "endpoint"),
    ("restore_url_without_scheme_with_credentials", "restore", {"replica": {"url": "AKIA:%s#@bucket/x" % SECRET}},
     RESTORE + URL_CREDS % "replica.url"),
    ("replica_file_url_relative", "replica", {"replica": {"url": "file://relative/dir"}},
     "app blog: replica.url: 'file://relative/dir' is not an absolute file URL: write file:///absolute/path"),
    ("replica_file_url_dotdot", "replica", {"replica": {"url": "file:///srv/../etc"}},
     "app blog: replica.path: '/srv/../etc' must not contain '..'"),
    ("restore_file_path_colon", "restore", {"replica": {"type": "file", "path": "/srv/r:/etc"}},
     RESTORE + "replica.path: '/srv/r:/etc' must not contain ':' (it is part of a docker mount, where ':' separates fields)"),
    ("replica_s3_bucket_underscore_uppercase", "replica", {"replica": dict(S3, bucket="My_Backups")},
     "app blog: replica.bucket: 'My_Backups' is not a valid bucket name: S3 bucket names are 3 to 63 characters: "
     "lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"),
    ("restore_s3_url_bucket_ip_address", "restore", {"replica": {"url": "s3://192.168.1.10/blog"}},
     RESTORE + "replica.url: '192.168.1.10' is not a valid bucket name: S3 bucket names are not formatted as an "
     "IP address"),
    ("replica_endpoint_newline", "replica", {"replica": dict(S3, endpoint="http://127.0.0.1:9000\n")},
     "app blog: replica.endpoint: 'http://127.0.0.1:9000\\n' is not a URL such as https://s3.example.net or "
     "http://127.0.0.1:9000"),
    ("replica_credentials_set_traversal", "replica", {"replica": dict(S3, credentials="../lab")},
     "app blog: replica.credentials: '../lab' is not a valid credential set name: use lowercase letters, digits, "
     "'-' and '_', starting with a letter or digit, at most 63 characters"),
    ("replica_region_lone_surrogate", "replica", {"replica": dict(S3, region=u"eu\udc80")},
     "app blog: replica.region: is not valid Unicode text (it holds an unpaired surrogate, e.g. from bytes that "
     "were not UTF-8)"),
    ("replica_sync_interval_newline", "replica", {"replica": dict(S3, sync_interval="1s\n")},
     "app blog: replica.sync_interval: '1s\\n' is not a duration like 1s, 500ms, 30m or 24h"),
    ("replica_image_is_an_option", "replica", {"image": "--privileged"},
     "app blog: image: '--privileged' is not a docker image or network name: letters, digits and . _ : / @ + -, "
     "starting with a letter or digit"),
    # ---- restore destination
    ("restore_dest_dotdot", "restore", {"dest": "/srv/../etc"}, "dest: '/srv/../etc' must not contain '..'"),
    ("restore_dest_relative", "restore", {"dest": "srv/db"},
     "dest: 'srv/db' must be an absolute path (starting with '/'; '~' and '$' are not expanded)"),
    ("restore_dest_tilde", "restore", {"dest": "~/db"},
     "dest: '~/db' must be an absolute path (starting with '/'; '~' and '$' are not expanded)"),
    ("restore_dest_dollar_home", "restore", {"dest": "$HOME/db"},
     "dest: '$HOME/db' must be an absolute path (starting with '/'; '~' and '$' are not expanded)"),
    ("restore_dest_colon", "restore", {"dest": "/srv/db:/etc"},
     "dest: '/srv/db:/etc' must not contain ':' (it is part of a docker mount, where ':' separates fields)"),
    ("restore_dest_newline", "restore", {"dest": "/srv/db\n"},
     "dest: '/srv/db\\n' must not contain control characters (a newline, a tab, ...)"),
    ("restore_dest_nul", "restore", {"dest": "/srv/db\0x"}, "dest: a NUL character is not allowed"),
    # ---- the standby's destination and replica: the restore's checks, before a follower starts
    ("standby_dest_dotdot", "standby", {"dest": "/srv/../etc"}, "dest: '/srv/../etc' must not contain '..'"),
    ("standby_dest_colon", "standby", {"dest": "/srv/db:/etc"},
     "dest: '/srv/db:/etc' must not contain ':' (it is part of a docker mount, where ':' separates fields)"),
    ("standby_dest_newline", "standby", {"dest": "/srv/db\n"},
     "dest: '/srv/db\\n' must not contain control characters (a newline, a tab, ...)"),
    ("standby_database_traversal", "standby", {"database": "../../etc/passwd"},
     DB_PLAIN % ("database", "'../../etc/passwd'")),
    ("standby_url_with_key_and_secret", "standby", {"replica": {"url": "s3://AKIA:%s@bucket/x" % SECRET}},
     STANDBY + URL_CREDS % "replica.url"),
    ("standby_image_is_an_option", "standby", {"image": "--privileged"},
     STANDBY + "image: '--privileged' is not a docker image or network name: letters, digits and . _ : / @ + -, "
     "starting with a letter or digit"),
    ("standby_txid_while_following", "standby", {"txid": "0000000000000005"},
     STANDBY + "txid: only state=promoted takes a TXID (follow mode cannot stop at one)"),
    # ---- modes and owners
    ("restore_mode_unquoted_644", "restore", {"mode": 644},
     RESTORE + "mode: the number 644 is octal 1204, not a file mode: an unquoted mode in YAML is read as a decimal number; "
     "quote it, for example '0644'"),
    ("restore_mode_setuid", "restore", {"mode": "4755"},
     RESTORE + "mode: '4755' sets the setuid, setgid or sticky bit, which a database file never needs: use three octal digits "
     "such as '0644'"),
    ("restore_mode_sticky", "restore", {"mode": "01644"},
     RESTORE + "mode: '01644' sets the setuid, setgid or sticky bit, which a database file never needs: use three "
     "octal digits such as '0644'"),
    ("restore_mode_symbolic", "restore", {"mode": "u+rwx"},
     RESTORE + "mode: 'u+rwx' must be an octal number such as '0644' (symbolic modes are not supported)"),
    ("restore_mode_boolean", "restore", {"mode": True},
     RESTORE + "mode: True is not a mode: write it as a quoted octal string such as '0644'"),
    ("restore_owner_negative", "restore", {"owner": -1},
     RESTORE + "owner: -1 is not a uid/gid (a whole number from 0 to 2147483646)"),
    # ---- values in range (issue 20): file replicas outside system directories and the app's storage
    ("replica_file_url_root", "replica", {"replica": {"url": "file:///"}}, "app blog: " + SYSTEM_DIR % "/"),
    ("replica_file_url_etc", "replica", {"replica": {"url": "file:///etc"}}, "app blog: " + SYSTEM_DIR % "/etc"),
    ("replica_file_path_inside_etc", "replica", {"replica": {"type": "file", "path": "/etc/litestream/"}},
     "app blog: " + INSIDE_SYSTEM_DIR % ("/etc/litestream", "/etc")),
    ("replica_file_path_inside_usr", "replica", {"replica": {"type": "file", "path": "/usr/local/backups"}},
     "app blog: " + INSIDE_SYSTEM_DIR % ("/usr/local/backups", "/usr")),
    ("replica_file_path_inside_lib64", "replica", {"replica": {"type": "file", "path": "/lib64/r"}},
     "app blog: " + INSIDE_SYSTEM_DIR % ("/lib64/r", "/lib64")),
    ("replica_file_path_inside_proc", "replica", {"replica": {"type": "file", "path": "/proc/1/root"}},
     "app blog: " + INSIDE_SYSTEM_DIR % ("/proc/1/root", "/proc")),
    ("replica_file_path_boot", "replica", {"replica": {"type": "file", "path": "//boot"}}, "app blog: " + SYSTEM_DIR % "/boot"),
    ("replica_file_path_var_lib_dokku", "replica", {"replica": {"url": "file:///var/lib/dokku/"}},
     "app blog: " + SYSTEM_DIR % "/var/lib/dokku"),
    ("replica_file_path_inside_dokku_config", "replica",
     {"replica": {"type": "file", "path": "/var/lib/dokku/config/litestream/credentials"}},
     "app blog: " + INSIDE_SYSTEM_DIR % ("/var/lib/dokku/config/litestream/credentials", "/var/lib/dokku/config")),
    ("replica_file_path_in_the_apps_storage", "replica", {"replica": {"type": "file", "path": "{top}/storage/blog--db/r"}},
     "app blog: replica.path: {top}/storage/blog--db/r is inside the app's storage directory {top}/storage/blog--db: "
     "the replica would sit beside the live database, writable by the app, and be lost with it; give a directory "
     "outside it"),
    ("replica_file_path_is_the_apps_storage", "replica", {"replica": {"url": "file://{top}/storage/blog--db"}},
     "app blog: replica.path: {top}/storage/blog--db is inside the app's storage directory {top}/storage/blog--db: "
     "the replica would sit beside the live database, writable by the app, and be lost with it; give a directory "
     "outside it"),
    ("replica_file_path_holds_the_apps_storage", "replica", {"replica": {"type": "file", "path": "{top}/storage"}},
     "app blog: replica.path: {top}/storage holds the app's storage directory {top}/storage/blog--db: the replica's "
     "mount would hold the live database too; give a directory of its own, outside it"),
    ("restore_file_url_etc", "restore", {"replica": {"url": "file:///etc/ssl"}},
     RESTORE + INSIDE_SYSTEM_DIR % ("/etc/ssl", "/etc")),
    # (issue 20, review) root's keys, cron's spool, the logs, containerd's state, Dokku's home and storage root
    ("replica_file_path_inside_root", "replica", {"replica": {"type": "file", "path": "/root/.ssh"}},
     "app blog: " + INSIDE_SYSTEM_DIR % ("/root/.ssh", "/root")),
    ("replica_file_url_var_spool", "replica", {"replica": {"url": "file:///var/spool"}},
     "app blog: " + SYSTEM_DIR % "/var/spool"),
    ("replica_file_path_inside_var_spool_cron", "replica", {"replica": {"type": "file", "path": "/var/spool/cron"}},
     "app blog: " + INSIDE_SYSTEM_DIR % ("/var/spool/cron", "/var/spool")),
    ("replica_file_path_var_log", "replica", {"replica": {"type": "file", "path": "/var/log"}},
     "app blog: " + SYSTEM_DIR % "/var/log"),
    ("replica_file_path_var_lib_containerd", "replica", {"replica": {"type": "file", "path": "/var/lib/containerd"}},
     "app blog: " + SYSTEM_DIR % "/var/lib/containerd"),
    ("replica_file_path_home_dokku", "replica", {"replica": {"type": "file", "path": "/home/dokku"}},
     "app blog: " + SYSTEM_DIR % "/home/dokku"),
    ("replica_file_path_dokku_storage_root", "replica", {"replica": {"type": "file", "path": "/var/lib/dokku/data/storage"}},
     "app blog: " + SYSTEM_DIR % "/var/lib/dokku/data/storage"),
    ("replica_file_path_another_apps_storage", "replica", {"replica": {"type": "file", "path": "{top}/storage/other--db"}},
     "app blog: replica.path: {top}/storage/other--db is inside Dokku's storage root {top}/storage, where every "
     "directory is an app's storage: the sidecar would mount it read-write over that app's data; give a directory "
     "outside it, such as /var/lib/dokku/data/litestream-replicas"),
    ("replica_file_path_inside_another_apps_storage", "replica",
     {"storage_root": "{top}/storage/", "replica": {"url": "file://{top}/storage/other--db/replicas"}},
     "app blog: replica.path: {top}/storage/other--db/replicas is inside Dokku's storage root {top}/storage, where "
     "every directory is an app's storage: the sidecar would mount it read-write over that app's data; give a "
     "directory outside it, such as /var/lib/dokku/data/litestream-replicas"),
    # ---- sftp paths: normalised, never '..'
    ("replica_sftp_url_path_climbs_out", "replica",
     {"replica": {"url": "sftp://bk@backup.example.net/../../etc", "host_key": "ssh-ed25519 AAAA"}},
     "app blog: replica.path: '/../../etc' must not contain '..'"),
    ("restore_sftp_path_climbs_out", "restore",
     {"replica": dict(SFTP, path="backups/../../../etc")}, RESTORE + "replica.path: 'backups/../../../etc' must not contain '..'"),
    # ---- endpoint and sftp hosts and ports
    ("replica_endpoint_empty_label", "replica", {"replica": dict(S3, endpoint="http://a..b:9000")},
     "app blog: replica.endpoint: 'http://a..b:9000': the host name 'a..b' has an empty label (a leading, trailing or "
     "double dot): " + HOST_RULE),
    ("replica_endpoint_port_0", "replica", {"replica": dict(S3, endpoint="http://minio:0")},
     "app blog: replica.endpoint: 'http://minio:0' has the port '0': a port is a whole number from 1 to 65535"),
    ("replica_endpoint_port_70000", "replica", {"replica": dict(S3, endpoint="http://minio:70000/")},
     "app blog: replica.endpoint: 'http://minio:70000/' has the port '70000': a port is a whole number from 1 to 65535"),
    ("replica_endpoint_port_not_a_number", "replica", {"replica": dict(S3, endpoint="https://minio:https")},
     "app blog: replica.endpoint: 'https://minio:https' has the port 'https': a port is a whole number from 1 to 65535"),
    ("replica_url_query_endpoint_port_0", "replica", {"replica": {"url": "s3://bkt/blog?endpoint=http://minio:0"}},
     "app blog: replica.endpoint: 'http://minio:0' has the port '0': a port is a whole number from 1 to 65535"),
    ("restore_endpoint_homoglyph", "restore", {"replica": dict(S3, endpoint=u"https://s3.ex\u0430mple.net")},
     RESTORE + u"replica.endpoint: 'https://s3.ex\u0430mple.net': the host name 's3.ex\u0430mple.net' is not ASCII: "
     "write it in its IDNA form 's3.xn--exmple-4nf.net'"),
    ("restore_endpoint_zero_width_space", "restore", {"replica": dict(S3, endpoint=u"https://mi\u200bnio:9000")},
     RESTORE + "replica.endpoint: 'https://mi\\u200bnio:9000': the host name 'mi\\u200bnio' is not ASCII: write it in "
     "its IDNA form 'minio'"),
    ("restore_endpoint_not_idna", "restore", {"replica": dict(S3, endpoint=u"https://minio\u200e:9000")},
     RESTORE + "replica.endpoint: 'https://minio\\u200e:9000': the host name 'minio\\u200e' cannot be encoded as IDNA: "
     + HOST_RULE),
    ("restore_sftp_host_nbsp", "restore", {"replica": dict(SFTP, host=u"mi\u00a0nio")},  # IDNA makes it 'mi nio'
     RESTORE + "replica.host: 'mi\\xa0nio': the host name 'mi\\xa0nio' cannot be encoded as IDNA: " + HOST_RULE),
    ("auth_endpoint_port_70000", "auth", {"endpoint": "https://minio:70000"},
     "endpoint: 'https://minio:70000' has the port '70000': a port is a whole number from 1 to 65535"),
    ("replica_sftp_host_empty_label", "replica", {"replica": dict(SFTP, host="backup..example.net")},
     "app blog: replica.host: 'backup..example.net': the host name 'backup..example.net' has an empty label (a "
     "leading, trailing or double dot): " + HOST_RULE),
    ("restore_sftp_url_port_0", "restore", {"replica": {"url": "sftp://bk@backup.example.net:0/srv", "host_key": "k"}},
     RESTORE + "replica.url: 'backup.example.net:0' has the port '0': a port is a whole number from 1 to 65535"),
    # ---- durations and numbers: finite, with bounds
    ("replica_sync_interval_0s", "replica", {"replica": dict(S3, sync_interval="0s")},
     "app blog: replica.sync_interval: '0s' is not a duration from 100ms to 24h (a day)"),
    ("replica_sync_interval_overflows", "replica", {"replica": dict(S3, sync_interval="99999999999999h")},
     "app blog: replica.sync_interval: '99999999999999h' is not a duration from 100ms to 24h (a day)"),
    ("replica_snapshot_interval_0s", "replica", {"snapshot_interval": "0s"},
     "app blog: snapshot_interval: '0s' is not a duration from 1m to 8760h (a year)"),
    ("replica_snapshot_retention_overflows", "replica", {"snapshot_retention": "99999999999999h"},
     "app blog: snapshot_retention: '99999999999999h' is not a duration from 1m to 87600h (ten years)"),
    ("replica_heartbeat_interval_overflows", "replica",
     {"heartbeat_url": "https://hc.example.net/ping", "heartbeat_interval": "99999999999999h"},
     "app blog: heartbeat_interval: '99999999999999h' is not a duration from 1m to 8760h (a year): Litestream refuses "
     "to start with a heartbeat interval under 1m"),
    ("replica_metrics_port_70000", "replica", {"metrics_port": 70000},
     "app blog: metrics_port: 70000 is not a TCP port (a whole number from 1 to 65535)"),
    ("replica_shutdown_sync_timeout_overflows", "replica", {"shutdown_sync_timeout": 10 ** 12},
     "app blog: shutdown_sync_timeout: 1000000000000 is not a whole number of seconds from 0 to 3600 (an hour)"),
    ("replica_first_sync_timeout_negative", "replica", {"first_sync_timeout": -1},
     "app blog: first_sync_timeout: -1 is not a whole number of seconds from 0 (do not wait) to 3600 (an hour)"),
    ("replica_lock_timeout_overflows", "replica", {"lock_timeout": 10 ** 12},
     "app blog: lock_timeout: 1000000000000 is not a whole number of seconds from 0 to 86400 (a day)"),
    ("restore_dry_run_timeout_overflows", "restore", {"dry_run_timeout": 10 ** 12},
     RESTORE + "dry_run_timeout: 1000000000000 is not a whole number of seconds from 0 (no limit) to 86400 (a day)"),
    ("restore_min_rows_infinite", "restore", {"verify": {"min_rows": {"events": float("inf")}}},
     RESTORE + "verify.min_rows.events: inf is not a whole number of rows from 0 to 9223372036854775807"),
    ("restore_lock_timeout_negative", "restore", {"lock_timeout": -1},
     RESTORE + "lock_timeout: -1 is not a whole number of seconds from 0 to 86400 (a day)"),
    ("storage_lock_timeout_overflows", "storage", {"lock_timeout": 10 ** 12},
     "lock_timeout: 1000000000000 is not a whole number of seconds from 0 to 86400 (a day)"),
    ("auth_lock_timeout_overflows", "auth", {"lock_timeout": 10 ** 12},
     "lock_timeout: 1000000000000 is not a whole number of seconds from 0 to 86400 (a day)"),
]


def fill(value, top):
    if isinstance(value, str):
        return value.replace("{top}", str(top))
    if isinstance(value, dict):
        return dict((key, fill(item, top)) for key, item in value.items())
    if isinstance(value, list):
        return [fill(item, top) for item in value]
    return value


@pytest.fixture
def no_commands(monkeypatch):
    """Any dokku or docker command is a failure of the test: validation comes first."""
    from ansible.module_utils import basic
    calls = []

    def run_command(self, argv, **kwargs):
        calls.append(list(argv))
        return 1, "", "this test runs no command"
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    return calls


def test_there_are_at_least_40_named_hostile_inputs():
    names = [case[0] for case in CASES]
    assert len(names) >= 40 and len(set(names)) == len(names)


@pytest.mark.parametrize("module, options, message", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_hostile_input_is_refused_before_anything_happens(sandbox, no_commands, module, options, message):
    main, build = MODULES[module]
    args = build(sandbox, **fill(options, sandbox))
    before = snapshot(sandbox.parent)
    result = run_module(main, args, fail=True)
    assert result["msg"] == fill(message, sandbox)
    assert no_commands == []
    assert snapshot(sandbox.parent) == before
    assert result.get("changed", False) is False
    assert_no_secret(result, SECRET)


# ---- refusals that need a prepared sandbox --------------------------------------------------------------

@pytest.mark.parametrize("content, kind", [("[]", "array"), ("null", "null"), ('"text"', "string")])
def test_credentials_json_that_is_not_an_object_is_an_error_naming_the_set(sandbox, no_commands, content, kind):
    (sandbox / "credentials" / "lab" / "credentials.json").write_text(content)
    before = snapshot(sandbox.parent)
    result = run_module(litestream_replica.main, replica_args(sandbox), fail=True)
    assert result["msg"] == ("app blog: credential set 'lab': credentials.json holds a JSON %s, not an object "
                             "(rewrite it with dokku_sqlite.litestream.litestream_auth)" % kind)
    assert no_commands == [] and snapshot(sandbox.parent) == before


@pytest.mark.parametrize("prepare, message", [
    (lambda d: (d / "notes.txt").write_text("mine"),
     "name: refusing to remove the set {set}: it holds 'notes.txt', which this collection did not write there "
     "(nothing was removed; is credentials_root right?)"),
    (lambda d: (d / "sub").mkdir(),
     "name: refusing to remove the set {set}: it holds 'sub', which this collection did not write there "
     "(nothing was removed; is credentials_root right?)"),
    (lambda d: os.symlink("/etc/passwd", str(d / "ssh_key")),
     "name: refusing to remove the set {set}: it holds 'ssh_key', which this collection did not write there "
     "(nothing was removed; is credentials_root right?)"),
    (lambda d: os.chmod(str(d), 0o755),
     "name: refusing to remove the set {set}: it has no marker .dokku-sqlite-litestream and is mode 0755, owner 0:0, not mode "
     "0700 as this collection makes it (nothing was removed; is credentials_root right?)"),
], ids=["foreign_file", "subdirectory", "symlink", "mode_0755"])
def test_auth_absent_removes_only_a_set_it_made(sandbox, no_commands, prepare, message):
    directory = sandbox / "credentials" / "lab"
    prepare(directory)
    before = snapshot(sandbox.parent)
    result = run_module(litestream_auth.main, {"name": "lab", "state": "absent",
                                               "credentials_root": str(sandbox / "credentials")}, fail=True)
    assert result["msg"] == message.format(set=directory)
    assert snapshot(sandbox.parent) == before


def test_replica_absent_through_a_symlinked_config_dir_removes_nothing_outside(sandbox, monkeypatch, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    os.symlink(str(outside), str(sandbox / "apps" / "linked"))
    from ansible.module_utils import basic
    monkeypatch.setattr(basic.AnsibleModule, "run_command",  # container inspect: no such container
                        lambda self, argv, **kwargs: (1, "", "Error: No such container: dokku.litestream.linked"))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    before = snapshot(outside)
    result = run_module(litestream_replica.main, replica_args(sandbox, app="linked", state="absent"), fail=True)
    assert result["msg"] == ("app linked: refusing to use %s as the app's configuration directory: it is a symbolic "
                             "link or not a directory; nothing was changed (is config_root right?)"
                             % (sandbox / "apps" / "linked"))
    assert snapshot(outside) == before


# ---- inputs that must work, not crash -------------------------------------------------------------------

@pytest.fixture
def docker(monkeypatch):
    from ansible.module_utils import basic
    fake = FakeLitestream()

    def run_command(self, argv, **kwargs):  # a plain function, so it binds like the real method
        return fake(self, argv, **kwargs)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    return fake


def test_percent_in_dest_restores(sandbox, docker):
    dest = sandbox / "storage" / "100%2f-done"
    result = run_module(litestream_restore.main, restore_args(sandbox, dest=str(dest)))
    assert result["restored"] is True
    assert sorted(os.listdir(str(dest))) == ["production.sqlite3"]


def test_dest_is_normalised(sandbox, docker):
    result = run_module(litestream_restore.main, restore_args(sandbox, dest=str(sandbox / "storage") + "//x/./"))
    assert result["path"] == str(sandbox / "storage" / "x" / "production.sqlite3")


def test_a_symlink_in_place_of_the_restored_file_is_refused_and_its_target_untouched(
        sandbox, docker, tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text("root's file")
    os.chmod(str(victim), 0o600)
    real_call = docker.__call__

    def swap(module, argv, **kwargs):
        answer = real_call(module, argv, **kwargs)
        mounts = dict(reversed(arg.split(":")[:2]) for arg in argv if arg.count(":") and arg.startswith("/"))
        if "/restore" in mounts:  # the restore ran: put a link where Litestream wrote the file
            written = os.path.join(mounts["/restore"], "production.sqlite3")
            os.unlink(written)
            os.symlink(str(victim), written)
        return answer
    from ansible.module_utils import basic
    monkeypatch.setattr(basic.AnsibleModule, "run_command", swap)
    result = run_module(litestream_restore.main, restore_args(sandbox, mode="0644"), fail=True)
    assert result["msg"].endswith("the restored file is a symbolic link; refusing to touch it (nothing was put "
                                  "in place)")
    assert stat.S_IMODE(os.stat(str(victim)).st_mode) == 0o600 and victim.read_text() == "root's file"
    assert os.listdir(str(sandbox / "storage" / "blog--db")) == []


def test_sigterm_during_a_restore_removes_the_temporary_files(sandbox, docker, monkeypatch):
    private = sandbox / "tmp"  # not the shared /tmp, where another run's restores come and go
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    workdirs = set(os.listdir(tempfile.gettempdir()))

    def killed(fd):
        os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(restore_swap, "fsync_fd", killed)
    result = run_module(litestream_restore.main, restore_args(sandbox), fail=True)
    assert result["msg"].endswith("stopped by signal %d: the temporary files of this run were removed"
                                  % signal.SIGTERM)
    assert os.listdir(str(sandbox / "storage" / "blog--db")) == []
    left = [entry for entry in set(os.listdir(tempfile.gettempdir())) - workdirs
            if entry.startswith("dokku-sqlite-restore-")]
    assert left == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the module's handler is gone again


def test_emoji_in_a_configuration_value_is_written_as_utf8(sandbox, monkeypatch):
    from ansible.module_utils import basic

    def run_command(self, argv, **kwargs):
        if argv[1:3] == ["container", "inspect"]:
            return 1, "", "Error: No such container: dokku.litestream.blog"
        return 0, "sha256:abc\n" if argv[1:3] == ["image", "inspect"] else "", ""
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    run_module(litestream_replica.main, replica_args(sandbox, replica=dict(S3, path=u"blog-\U0001F600")))
    data = (sandbox / "apps" / "blog" / "litestream.yml").read_bytes()
    assert u"blog-\U0001F600/production.sqlite3".encode("utf-8") in data
    assert b"\\ud83d" not in data


@pytest.mark.parametrize("options, message", [
    ({"dest": "reports/\0"}, "dest: a NUL character is not allowed"),
    ({"dest": "reports\n"}, "dest: 'reports\\n' must not contain control characters (a newline, a tab, ...)"),
    ({"name": "report\x00"}, "name: a NUL character is not allowed"),
    ({"name": "report\t1"}, "name: 'report\\t1' must not contain control characters (a newline, a tab, ...)"),
], ids=["dest_nul", "dest_newline", "name_nul", "name_tab"])
def test_drill_report_refuses_control_characters_in_its_paths(tmp_path, monkeypatch, options, message):
    """Found by test_properties.py: a NUL in dest crashed the module (ValueError: embedded null byte)."""
    monkeypatch.chdir(str(tmp_path))
    before = snapshot(tmp_path)
    result = run_module(litestream_drill_report.main, dict({"results": [], "dest": "reports"}, **options), fail=True)
    assert result["msg"] == message
    assert snapshot(tmp_path) == before


def test_control_characters_in_a_drill_message_give_valid_junit_xml(tmp_path):
    results = [{"host": "h1", "app": "blog", "status": "failed", "message": u"bad\x01\x1b[31m\x0c end \U0001F600"}]
    out = tmp_path / "report"
    run_module(litestream_drill_report.main, {"results": results, "dest": str(out)})
    document = xml.dom.minidom.parse(str(out / "drill-report.xml"))
    failure = document.getElementsByTagName("failure")[0]
    assert failure.getAttribute("message") == u"bad\ufffd\ufffd[31m\ufffd end \U0001F600"
    assert json.loads((out / "drill-report.json").read_text())["results"][0]["message"] == results[0]["message"]
