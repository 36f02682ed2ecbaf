# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""validate.py's range, host and path checks on their own (issue 20, "values in range")."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

SECONDS = v.Bound(int, 1, 10, "a whole number of seconds from {low} to {high}")
OPEN = v.Bound(float, 0, 10, "a number over {low} and at most {high}", low_open=True)
SPAN = v.Bound("duration", "100ms", "24h", "a duration from {low} to {high}")


@pytest.mark.parametrize("value, bound, expected", [
    (1, SECONDS, 1), (10, SECONDS, 10), ("7", SECONDS, 7), (" 7 ", SECONDS, 7),
    (0.001, OPEN, 0.001), (10, OPEN, 10), (10.0, OPEN, 10.0),
    ("100ms", SPAN, "100ms"), ("24h", SPAN, "24h"), ("1h30m", SPAN, "1h30m"), ("0.5s", SPAN, "0.5s"),
])
def test_values_within_the_bound_are_returned(value, bound, expected):
    assert v.in_range(value, "x", bound) == expected


@pytest.mark.parametrize("value, bound, shown", [
    (0, SECONDS, "0"), (11, SECONDS, "11"), (10 ** 12, SECONDS, "1000000000000"), (True, SECONDS, "True"),
    (1.0, SECONDS, "1.0"), ("1e3", SECONDS, "'1e3'"), (u"\u00b2", SECONDS, "'\u00b2'"), (None, SECONDS, "None"),
    (0, OPEN, "0"), (-1.5, OPEN, "-1.5"), (10.5, OPEN, "10.5"), (float("nan"), OPEN, "nan"),
    (float("inf"), OPEN, "inf"), (float("-inf"), OPEN, "-inf"), (False, OPEN, "False"), ("5", OPEN, "'5'"),
    ("0s", SPAN, "'0s'"), ("99ms", SPAN, "'99ms'"), ("24h1ns", SPAN, "'24h1ns'"),
    ("99999999999999h", SPAN, "'99999999999999h'"),
])
def test_values_outside_the_bound_are_refused_with_the_bound(value, bound, shown):
    with pytest.raises(v.InvalidValue) as err:
        v.in_range(value, "x", bound)
    assert str(err.value) == "x: %s is not %s" % (shown, bound.describe())


def test_a_duration_with_thousands_of_digits_is_infinite_and_refused_with_a_short_message():
    with pytest.raises(v.InvalidValue) as err:
        v.in_range("9" * 5000 + "h", "max_lag")
    assert str(err.value) == ("max_lag: '%s...9999h' (5001 characters) is not a duration from 0s (no lag allowed) to 8760h "
                              "(a year)" % ("9" * 49))


@pytest.mark.parametrize("value", ["", "1", "-1s", "1s\n", "1 s", "fast", "1d", "1e3s", "P1D"])
def test_text_that_is_no_duration_says_so(value):
    with pytest.raises(v.InvalidValue) as err:
        v.in_range(value, "replica.sync_interval", v.BOUNDS["sync_interval"])
    assert str(err.value) == "replica.sync_interval: %r is not a duration like 1s, 500ms, 30m or 24h" % value


def test_durations_are_read_as_go_reads_them():
    assert v.duration_seconds("1h30m") == 5400 and v.duration_seconds("1.5h") == 5400
    assert v.duration_seconds("500ms") == 0.5 and v.duration_seconds("2us") == pytest.approx(2e-6)
    assert ls.duration_seconds is v.duration_seconds and ls.DURATION_RE is v.DURATION_RE


def test_check_bounds_checks_the_declared_options_it_is_given_and_nothing_else():
    v.check_bounds({"parallel": 4, "timeout": 10, "lock_timeout": None, "name": 10 ** 12, "sync_interval": "1s"})
    with pytest.raises(v.InvalidValue, match=r"^verify\.min_rows\.events: -1 is not a whole number of rows"):
        v.check_bounds({"min_rows": {"events": -1}}, "verify.")
    with pytest.raises(v.InvalidValue, match=r"^parallel: 65 is not"):
        v.check_bounds({"parallel": 65})


def test_every_bound_is_finite_and_allows_something():
    for name, bound in v.BOUNDS.items():
        low, high = bound.seconds(bound.low), bound.seconds(bound.high)
        assert 0 <= low < high < 10 ** 19, name
        assert "{low}" in bound.text and "{high}" in bound.text, name


# ---- hosts and ports ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("minio", ("minio", None)), ("minio:9000", ("minio", 9000)), ("s3.eu-west-1.amazonaws.com", ("s3.eu-west-1.amazonaws.com", None)),
    ("127.0.0.1:1", ("127.0.0.1", 1)), ("[::1]:65535", ("[::1]", 65535)), ("[2001:db8::5]", ("[2001:db8::5]", None)),
    ("minio_1:9000", ("minio_1", 9000)), ("xn--exmple-4nf.com", ("xn--exmple-4nf.com", None)),
])
def test_good_hosts_and_ports(value, expected):
    assert v.host_port(value, "replica.host") == expected


RULE = v.HOST_RULE


@pytest.mark.parametrize("value, message", [
    ("", "'' has no host: " + RULE),
    ("a..b", "'a..b': the host name 'a..b' has an empty label (a leading, trailing or double dot): " + RULE),
    (".a", "'.a': the host name '.a' has an empty label (a leading, trailing or double dot): " + RULE),
    ("a.", "'a.': the host name 'a.' has an empty label (a leading, trailing or double dot): " + RULE),
    (":22", "':22' has no host: " + RULE),
    ("h:0", "'h:0' has the port '0': a port is a whole number from 1 to 65535"),
    ("h:65536", "'h:65536' has the port '65536': a port is a whole number from 1 to 65535"),
    ("h:+22", "'h:+22' has the port '+22': a port is a whole number from 1 to 65535"),
    (u"h:\u0662\u0662", u"'h:\u0662\u0662' has the port '\u0662\u0662': a port is a whole number from 1 to 65535"),
    ("h:", "'h:' has the port '': a port is a whole number from 1 to 65535"),
    ("h:22:23", "'h:22:23' has the port '22:23': a port is a whole number from 1 to 65535"),
    ("-h", "'-h': '-h' is not a valid host name: " + RULE),
    ("a b", "'a b': 'a b' is not a valid host name: " + RULE),
    ("a" * 64, "'%s...aaaaa' (64 characters): '%s...aaaaa' (64 characters) is not a valid host name: %s"
     % ("a" * 49, "a" * 49, RULE)),
    ("256.1.1.1", "'256.1.1.1': '256.1.1.1' is not an IPv4 address (four numbers from 0 to 255): " + RULE),
    ("1.2.3", "'1.2.3': '1.2.3' is not an IPv4 address (four numbers from 0 to 255): " + RULE),
    ("[::g]", "'[::g]': [::g] is not an IPv6 address: " + RULE),
    ("::1", "'::1' has no host: " + RULE),  # an IPv6 address goes in brackets
    (u"ex\u0430mple.com", u"'ex\u0430mple.com': the host name 'ex\u0430mple.com' is not ASCII: write it in its IDNA "
     "form 'xn--exmple-4nf.com'"),
    (u"\uff4dinio", u"'\uff4dinio': the host name '\uff4dinio' is not ASCII: write it in its IDNA form 'minio'"),
    (u"mi\u200enio", "'mi\\u200enio': the host name 'mi\\u200enio' cannot be encoded as IDNA: " + RULE),
    (u"\u00e9" * 64, "'%s...\u00e9\u00e9\u00e9\u00e9\u00e9' (64 characters): the host name '%s...\u00e9\u00e9\u00e9\u00e9"
     "\u00e9' (64 characters) cannot be encoded as IDNA: %s" % (u"\u00e9" * 49, u"\u00e9" * 49, RULE)),
])
def test_bad_hosts_and_ports_are_refused(value, message):
    with pytest.raises(v.InvalidValue) as err:
        v.host_port(value, "replica.host")
    assert str(err.value) == "replica.host: " + message


@pytest.mark.parametrize("value", ["http://127.0.0.1:9000", "https://s3.example.net", "http://[::1]:9000/prefix",
                                   "https://minio:443/a/b?x=1"])
def test_good_endpoints(value):
    assert v.endpoint(value) == value


# ---- paths ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("/srv/b", "/srv/b"), ("/srv//b/./c/", "/srv/b/c"), ("backups", "backups"), ("./backups/", "backups"),
    ("/", "/"), ("a..b/c", "a..b/c"),
])
def test_sftp_paths_are_normalised(value, expected):
    assert v.remote_path(value, "replica.path") == expected


@pytest.mark.parametrize("value", ["/../../etc", "..", "backups/..", "a/../../b"])
def test_sftp_paths_with_dotdot_are_refused(value):
    with pytest.raises(v.InvalidValue) as err:
        v.remote_path(value, "replica.path")
    assert str(err.value) == "replica.path: %r must not contain '..'" % value


@pytest.mark.parametrize("value", ["", ".", "./", "./."])
def test_an_sftp_path_that_names_nothing_is_refused(value):
    with pytest.raises(v.InvalidValue, match=r"names no directory"):
        v.remote_path(value, "replica.path")


def test_sftp_url_and_field_forms_normalise_alike():
    url = ls.normalize_replica({"url": "sftp://bk@backup:2222//srv/./b/", "host_key": "k"})
    field = ls.normalize_replica({"type": "sftp", "host": "backup:2222", "user": "bk", "path": "/srv/b", "host_key": "k"})
    assert url["path"] == field["path"] == "/srv/b"
    assert ls.replica_block(url, "db")["host"] == "backup:2222"
    assert ls.replica_block(dict(field, host="[::1]"), "db")["host"] == "[::1]:22"


@pytest.mark.parametrize("value, tree", [
    ("/", None), ("/etc", None), ("/usr", None), ("/var/lib/dokku", None), ("/var/lib/dokku/data/storage", None),
    ("/var", None), ("/var/lib", None), ("/home", None), ("/root", None), ("/tmp", None), ("/lib", None),
    ("/etc/litestream", "/etc"), ("/usr/local/r", "/usr"), ("/bin/r", "/bin"), ("/sbin/r", "/sbin"),
    ("/lib/r", "/lib"), ("/lib32/r", "/lib32"), ("/lib64/r", "/lib64"), ("/libx32/r", "/libx32"),
    ("/boot/efi", "/boot"), ("/dev/shm", "/dev"), ("/proc/self", "/proc"), ("/sys/fs", "/sys"), ("/run/lock", "/run"),
    ("/var/run/r", "/var/run"), ("/var/lib/docker/volumes/x", "/var/lib/docker"),
    ("/var/lib/dokku/config/litestream", "/var/lib/dokku/config"), ("/var/lib/dokku/plugins/enabled", "/var/lib/dokku/plugins"),
    ("/var/lib/dokku/services/postgres", "/var/lib/dokku/services"), ("/home/dokku/blog", "/home/dokku"),
    ("/home/dokku", None), ("/var/lib/dokku/data", None),
    # (issue 20, review) root's home, cron's spool, the logs and containerd's state, and anything inside them
    ("/root/.ssh", "/root"), ("/root/backups", "/root"), ("/var/spool", None), ("/var/spool/cron", "/var/spool"),
    ("/var/log", None), ("/var/log/litestream", "/var/log"), ("/var/lib/containerd", None),
    ("/var/lib/containerd/io.containerd.content.v1.content", "/var/lib/containerd"),
])
def test_system_directories_are_refused_as_file_replicas(value, tree):
    with pytest.raises(v.InvalidValue) as err:
        v.file_replica_dir(value, "replica.path")
    if tree is None:
        assert str(err.value).startswith("replica.path: %s is a system directory: " % value)
    else:
        assert str(err.value).startswith("replica.path: %s is inside %s, a system directory: " % (value, tree))


@pytest.mark.parametrize("value", ["/srv/replicas", "/var/lib/litestream-replicas", "/var/lib/dokku/data/backups",
                                   "/var/lib/dokku/data/litestream-replicas", "/tmp/r", "/home/ops/r", "/library/r",
                                   "/srv/x", "/etcetera", "/usrlocal", "/rooted/r", "/var/logs-old/r", "/var/spooler"])
def test_other_directories_may_hold_file_replicas(value):
    assert v.file_replica_dir(value, "replica.path") == value


def test_a_symbolic_link_to_a_system_directory_is_refused(tmp_path):
    os.symlink("/etc", str(tmp_path / "r"))
    with pytest.raises(v.InvalidValue) as err:
        v.file_replica_dir(str(tmp_path / "r") + "/litestream", "replica.path")
    assert str(err.value).startswith("replica.path: %s/r/litestream (through a symbolic link, it is /etc/litestream) is "
                                     "inside /etc, a system directory: " % tmp_path)


def test_a_file_replica_stays_out_of_the_apps_storage_also_through_a_link(tmp_path):
    storage = tmp_path / "storage" / "blog--db"
    storage.mkdir(parents=True)
    os.symlink(str(storage), str(tmp_path / "link"))
    assert v.outside_storage(str(tmp_path / "replicas"), "replica.path", str(storage)) == str(tmp_path / "replicas")
    assert v.outside_storage(str(tmp_path / "storage" / "blog--db2"), "replica.path", str(storage))
    for inside in (str(storage), str(storage / "r"), str(tmp_path / "link" / "r")):
        with pytest.raises(v.InvalidValue, match="is inside the app's storage directory"):
            v.outside_storage(inside, "replica.path", str(storage))
    with pytest.raises(v.InvalidValue, match="holds the app's storage directory"):
        v.outside_storage(str(tmp_path / "storage"), "replica.path", str(storage))


def test_no_file_replica_anywhere_in_dokkus_storage_root(tmp_path):
    """(issue 20, review) another app's storage directory (or anything in it) would be mounted read-write into this
    app's sidecar; where the module knows the storage root, all of it is refused, also through a link."""
    root = tmp_path / "storage"
    (root / "blog--db").mkdir(parents=True)
    (root / "other--db").mkdir()
    os.symlink(str(root / "other--db"), str(tmp_path / "link"))
    own = str(root / "blog--db")
    assert v.outside_storage(str(tmp_path / "replicas"), "replica.path", own, str(root)) == str(tmp_path / "replicas")
    assert v.outside_storage(str(tmp_path / "storage2"), "replica.path", own, str(root))
    for inside in (str(root / "other--db"), str(root / "other--db" / "r"), str(root / "new"), str(tmp_path / "link")):
        with pytest.raises(v.InvalidValue) as err:
            v.outside_storage(inside, "replica.path", own, str(root))
        assert str(err.value) == (
            "replica.path: %s is inside Dokku's storage root %s, where every directory is an app's storage: the "
            "sidecar would mount it read-write over that app's data; give a directory outside it, such as "
            "/var/lib/dokku/data/litestream-replicas" % (inside, root))
    with pytest.raises(v.InvalidValue, match="holds the app's storage directory"):
        v.outside_storage(str(root), "replica.path", own, str(root))
    # without the storage root (litestream_restore mounts a replica read-only), only the app's own is known
    assert v.outside_storage(str(root / "other--db"), "replica.path", own) == str(root / "other--db")


@pytest.mark.parametrize("value", ["/var/lib/dokku/data", "/var/lib/dokku/data/storage", "/var/lib/dokku/data/storage/"])
def test_dokkus_data_and_storage_root_are_never_a_collection_root(value):
    """(issue 20, review) litestream_auth chmods its root 0700: Dokku's storage root so made would lock every app's
    container out of its storage."""
    with pytest.raises(v.InvalidValue) as err:
        v.collection_root(value, "credentials_root")
    assert str(err.value) == ("credentials_root: %s is a system directory; give a directory of its own for this "
                              "collection, such as /var/lib/dokku/config/litestream/credentials" % value.rstrip("/"))


# ---- (issue 20, review) a message never holds a cut or escaped piece of a secret: no_log masks only whole ones
LONG_SECRET = "TOPSECRETVALUE0123456789abcdefghij"


def fragments(secret, size=5):
    return [secret[i:i + size] for i in range(len(secret) - size + 1)]


@pytest.mark.parametrize("value, secret, expected", [
    ("s3x://bkt/p?secret_access_key=" + LONG_SECRET, LONG_SECRET, "'s3x://bkt/p?secret_access_key=********'"),
    ("https://minio.example.net:99999/?token=TOKENSECRETabcdefghijklmnopq", "TOKENSECRETabcdefghijklmnopq",
     "'https://minio.example.net:99999/?token=********'"),
    ("https://minio:9/?token=TOKSECRET\\x12", "TOKSECRET\\x12", "'https://minio:9/?token=********'"),
    ("https://minio:9/?token=TOK\x12SECRETVALUE&region=eu-1", "SECRETVALUE", "'https://minio:9/?token=********&region=eu-1'"),
    ("abs://acct@container/p?sig=SASSIGNATURE0123456789abcdef", "SASSIGNATURE0123456789abcdef",
     "'abs://********@container/p?sig=********'"),
    ("sftp://bk@h:0/p?pwd=PWDSECRETabc", "PWDSECRETabc", "'sftp://********@h:0/p?pwd=********'"),
    ("s3x://AKIA:%s@bkt/p" % LONG_SECRET, LONG_SECRET, "'s3x://********@bkt/p'"),
    ("bk:%s@backup.example.net:0" % LONG_SECRET, LONG_SECRET, "'********@backup.example.net:0'"),
    ("s3x://bkt/p?endpoint=https://minio/?token=NESTEDSECRET42&forcePathStyle=true", "NESTEDSECRET42",
     "'s3x://bkt/p?endpoint=https://minio/?token=********&forcePathStyle=true'"),
    ({"url": "s3x://bkt/p?X-Amz-Signature=" + LONG_SECRET}, LONG_SECRET,
     "{'url': 's3x://bkt/p?X-Amz-Signature=********'}"),
    (["gs://b/p?key=" + LONG_SECRET * 3], LONG_SECRET, "['gs://b/p?key=********']"),
], ids=["query-long", "endpoint-token", "backslash", "control-char", "abs-sig", "sftp-pwd", "user-part", "schemeless",
        "nested-endpoint", "dict", "list-long"])
def test_shown_replaces_what_may_be_a_secret_before_it_quotes_or_cuts(value, secret, expected):
    assert repr(v.redacted(value)) == expected
    text = v.shown(value)  # cut only once redacted
    assert "*****" in text and not [part for part in fragments(secret) if part in text]


@pytest.mark.parametrize("value, expected", [
    ("s3x://b/p?region=eu-1&skipVerify=true", "'s3x://b/p?region=eu-1&skipVerify=true'"),
    ("litestream/litestream:0.5.17@sha256:" + "a" * 64, "'litestream/litestream:0.5.17@sha256:aaaaaaaaaaaaa...aaaaa' "
     "(100 characters)"),
    ("a" * 300, "'%s...aaaaa' (300 characters)" % ("a" * 49)),
    ("/srv/a b", "'/srv/a b'"),
], ids=["harmless-keys", "image-digest", "long-name", "plain"])
def test_shown_keeps_what_is_no_secret(value, expected):
    assert v.shown(value) == expected
