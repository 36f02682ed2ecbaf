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

# Dokku exits 20 for a missing app (AppDoesNotExist.ExitCode()).
EXIT_APP_MISSING = 20
APP_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
STORAGE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
MASK = "********"

# Generations that change how storage is read and written.
GEN_BASH = "bash"        # <= 0.37.4: bash storage plugin, mounts are -v lines in DOCKER_OPTIONS_*
GEN_GO = "go"            # 0.37.5 - 0.37.x: Go rewrite, same data model, JSON reports
GEN_NAMED = "named"      # >= 0.38.0: named storage entries


class DokkuError(Exception):
    """A dokku command failed; the message names the command and Dokku's own words."""

    def __init__(self, argv, rc, stdout, stderr):
        self.argv = list(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        super(DokkuError, self).__init__(self.describe())

    @property
    def dokku_message(self):
        """The `` !     `` lines Dokku printed on stderr, joined; else the last stderr line."""
        lines = [line[7:].strip() for line in (self.stderr or "").splitlines() if line.startswith(" !     ")]
        lines = [line for line in lines if not line.startswith("Deprecated:")]
        if lines:
            return "; ".join(lines)
        rest = [line.strip() for line in (self.stderr or "").splitlines() if line.strip()]
        return rest[-1] if rest else ""

    def describe(self):
        msg = "'%s' failed (exit %d)" % (" ".join(self.argv), self.rc)
        if self.dokku_message:
            msg += ": %s" % self.dokku_message
        return msg


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


def validate_app_name(app):
    """Dokku's own rule (apps:create): lowercase alphanumerics, dots and hyphens."""
    if not app or not APP_NAME_RE.match(app):
        return ("app name %r would be rejected by Dokku: it must begin with a lowercase alphanumeric "
                "character and may only contain lowercase alphanumerics, dots, and hyphens" % (app,))
    return None


def validate_storage_name(name):
    """storage:ensure-directory accepts [A-Za-z0-9_-] only."""
    if not name or not STORAGE_NAME_RE.match(name):
        return "storage directory name %r may only contain the characters [A-Za-z0-9_-]" % (name,)
    return None


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


class DokkuRunner:
    """Runs dokku commands for one module invocation and remembers what it ran."""

    def __init__(self, module, binary="dokku", timeout=None):
        self.module = module
        self.binary = module.get_bin_path(binary, required=True)
        self.timeout = timeout
        self.commands = []
        self._version = None

    def run(self, args, check=True, secrets=(), data=None, allowed_rc=(0,)):
        """Run ``dokku <args>``; record it with every string in ``secrets`` masked.

        Returns (rc, stdout, stderr). With check, an rc outside allowed_rc raises DokkuError.
        """
        argv = [self.binary] + [str(arg) for arg in args]
        shown = ["dokku"] + [self._mask(str(arg), secrets) for arg in args]
        self.commands.append(" ".join(shown))
        kwargs = {"check_rc": False, "data": data, "binary_data": data is not None}
        if self.timeout:
            kwargs["timeout"] = self.timeout  # pragma: no cover - only on cores that accept it
        rc, out, err = self.module.run_command(argv, **kwargs)
        if check and rc not in allowed_rc:
            raise DokkuError(shown, rc, out, err)
        return rc, out, err

    @staticmethod
    def _mask(text, secrets):
        for secret in secrets:
            if secret:
                text = text.replace(secret, MASK)
        return text

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

    def storage_mounts(self, app):
        """The app's deploy-phase mounts, read once: [(host, container, options)]."""
        if self.version >= (0, 29, 3):
            # bash-era Dokku wants --format right after the app, as two words: this order suits all
            _rc, out, _err = self.run(["storage:list", app, "--format", "json"])
            return parse_mount_json(out)
        _rc, out, _err = self.run(["storage:list", app])
        return parse_mount_lines(out)
