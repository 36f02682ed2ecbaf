# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One runner for the dokku CLI: argv lists, no shell, version detection, error mapping.

Every module talks to Dokku through DokkuRunner so that
- each command is recorded (secrets masked) and returned to the user as ``commands``;
- the Dokku generation is detected once (``dokku version``) and commands are picked by it;
- failures quote the command and Dokku's own `` !     `` message instead of "exit status 1".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.runner import CommandError, CommandRunner
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

# Dokku exits 20 for a missing app (AppDoesNotExist.ExitCode()).
EXIT_APP_MISSING = 20
VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")

# Generations that change how storage is read and written.
GEN_BASH = "bash"        # <= 0.37.4: bash storage plugin, mounts are -v lines in DOCKER_OPTIONS_*
GEN_GO = "go"            # 0.37.5 - 0.37.x: Go rewrite, same data model, JSON reports
GEN_NAMED = "named"      # >= 0.38.0: named storage entries


class DokkuError(CommandError):
    """A dokku command failed; the message names the command and Dokku's own words."""

    @property
    def tool_message(self):
        """The `` !     `` lines Dokku printed on stderr (deprecation notices aside), joined."""
        lines = [line[7:].strip() for line in (self.stderr or "").splitlines() if line.startswith(" !     ")]
        lines = [line for line in lines if not line.startswith("Deprecated:")]
        return "; ".join(lines) if lines else super(DokkuError, self).tool_message

    dokku_message = tool_message


def parse_version(text):
    """'dokku version 0.38.27' (or 'v0.37.10', or '0.30.5') -> (0, 38, 27)."""
    match = VERSION_RE.search(text or "")
    if not match:
        raise ValueError("cannot read a Dokku version from %r" % (text,))
    return tuple(int(part) for part in match.groups())


def generation(version):
    if version >= (0, 38, 0):
        return GEN_NAMED
    if version >= (0, 37, 5):
        return GEN_GO
    return GEN_BASH


def storage_argument_spec():
    """dokku_storage's own options (the module adds the common and lock options); litestream_validate
    checks inventory entries against the same spec."""
    return dict(
        app=dict(type="str", required=True),
        storage=dict(type="str"),
        mount_path=dict(type="str", default="/app/db/litestream"),
        chown=dict(type="str", default="herokuish"),
        create_app=dict(type="bool", default=False),
        restart=dict(type="bool", default=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )


def check_storage_options(params):
    """Every check of dokku_storage's options; returns the normalised mount path or raises validate.InvalidValue."""
    v.app_name(params["app"])
    v.storage_name(params["storage"] or "%s--db" % params["app"])
    # storage:mount passes it to docker -v; older Dokku splits its docker options on whitespace
    mount_path = v.absolute_path(params["mount_path"], "mount_path", mount=True, spaces=False)
    v.chown(params["chown"])
    v.check_bounds(params)  # lock_timeout, given the module's own options
    if mount_path == "/":
        raise v.InvalidValue("mount_path: '/' cannot be a mount point: give a directory below /")
    return mount_path


# Under Docker user namespaces Dokku chowns to the uid plus this constant (it asks `docker info` for
# name=userns and never reads /etc/subuid): storage subcommands.go@v0.38.27:L106-117, from v0.33.0.
USERNS_UID_OFFSET = 165536


def chown_argument(chown, version):
    """(the --chown word this Dokku version takes for an already validated value, problem or None).

    The names and their uids live in validate.CHOWN_NAMES; what each version accepts is here:
    `paketo` from 0.35.17 (`packeto` before), `root` from 0.37.5 (its chown script refused 0 before),
    a number from 0.38.22 (tests/standin/SOURCE-EVIDENCE.md section 8).
    """
    shown = ".".join(str(part) for part in version)
    if chown == "paketo" and version < (0, 35, 17):
        return "packeto", None
    if chown == "root" and version < (0, 37, 5):
        return None, "chown 'root' needs Dokku 0.37.5 or newer (this host runs %s)" % shown
    if chown not in v.CHOWN_NAMES and chown != "false" and version < (0, 38, 22):
        return None, "a numeric chown (%s) needs Dokku 0.38.22 or newer (this host runs %s)" % (chown, shown)
    return chown, None


def owner_uid(chown, userns):
    """The uid Dokku gives a storage directory for a --chown value (None for `false`), as validate.chown
    resolves it, plus Dokku's user-namespace offset when Docker remaps users."""
    uid = v.chown(chown)
    if uid is None:
        return None
    return uid + USERNS_UID_OFFSET if userns else uid


def parse_mount_lines(text):
    """`storage:list` text (quiet, or indented with a header) -> [(host, container, options)]."""
    mounts = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith(("-----> ", "=====> ")):
            continue
        if line.startswith("-v "):
            line = line[3:].strip()
        parts = line.split(":")
        if len(parts) < 2:
            continue
        mounts.append((parts[0], parts[1], ":".join(parts[2:])))
    return mounts


def parse_mount_json(text):
    """`storage:list --format json` of any generation -> [(host, container, options)]."""
    data = json.loads(text or "[]")
    return [(item.get("host_path", ""), item.get("container_path", ""), item.get("volume_options", "") or "")
            for item in data or []]


REPORT_HEADER_RE = re.compile(r"^=====> (\S+) storage information\s*$")
REPORT_DEPLOY_RE = re.compile(r"^\s+Storage deploy mounts:(.*)$")


def parse_storage_report(text):
    """`dokku storage:report` (text, every app) -> {app: [(host, container, options)]}, deploy phase.

    Every generation prints, per app, a `=====> <app> storage information` header and a `Storage deploy mounts:`
    line with the same `-v host:container[:options]` words storage:list reads (bash storage/subcommands/report;
    Go storage/report.go, GetBindMountsForDisplay, v0.37.10 and v0.38.27). An app whose line is not only such
    words (a path with a space) or has no line is left out, and so is every app when Dokku ran quiet (no
    headers): the caller reads those with storage:list."""
    found, app, mounts = {}, None, None
    for line in (text or "").splitlines():
        header = REPORT_HEADER_RE.match(line)
        if header:
            app, mounts = header.group(1), None
            continue
        deploy = REPORT_DEPLOY_RE.match(line)
        if app is None or not deploy:
            continue
        words = deploy.group(1).split()
        specs = words[1::2]
        if words[0::2] != ["-v"] * len(specs) or len(words) % 2 or any(len(spec.split(":")) < 2 for spec in specs):
            found.pop(app, None)
            app = None  # not plain words: this app is read on its own
            continue
        mounts = [(spec.split(":")[0], spec.split(":")[1], ":".join(spec.split(":")[2:])) for spec in specs]
        found[app] = mounts
    return found


class DokkuRunner(CommandRunner):
    """Runs dokku commands for one module invocation; knows the Dokku version once read."""

    name = "dokku"
    error_class = DokkuError

    def __init__(self, module, binary=None, commands=None):
        super(DokkuRunner, self).__init__(module, binary, commands)
        self._version = None

    @property
    def version(self):
        if self._version is None:
            _rc, out, _err = self.run(["version"])
            self._version = parse_version(out)
        return self._version

    @property
    def generation(self):
        return generation(self.version)

    def app_exists(self, app):
        rc, _out, _err = self.run(["apps:exists", app], allowed_rc=(0, EXIT_APP_MISSING))
        return rc == 0

    def app_running(self, app):
        """'true', 'false' or 'mixed' (some processes up): `ps:report --running`, the same at every Dokku version."""
        _rc, out, _err = self.run(["--quiet", "ps:report", app, "--running"])
        return (out or "").strip()

    def storage_report(self):
        """Every app's deploy-phase mounts from one `dokku storage:report` ({} when it fails): see
        parse_storage_report for what it leaves out. Only for reading that nothing needs changing: Dokku's report
        shows a mount it cannot read as none, so a missing mount is confirmed with storage_mounts before a write."""
        rc, out, _err = self.run(["storage:report"], check=False)
        return parse_storage_report(out) if rc == 0 else {}

    def storage_mounts(self, app):
        """The app's deploy-phase mounts, read once: [(host, container, options)], or None when the app does
        not exist (every storage command verifies the app first and exits 20): one read answers both."""
        if self.version >= (0, 29, 3):
            # bash-era Dokku wants --format right after the app, as two words: this order suits all
            rc, out, _err = self.run(["storage:list", app, "--format", "json"], allowed_rc=(0, EXIT_APP_MISSING))
            return parse_mount_json(out) if rc == 0 else None
        rc, out, _err = self.run(["storage:list", app], allowed_rc=(0, EXIT_APP_MISSING))
        return parse_mount_lines(out) if rc == 0 else None
