# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared core of the dokku and docker runners: argv lists, no shell, a masked record."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors

MASK = "********"


class CommandError(errors.CommandFailed):
    """A command failed; the message quotes it and the program's own last words."""

    def __init__(self, argv, rc, stdout, stderr):
        self.argv = list(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        super(CommandError, self).__init__(self.describe())

    @property
    def tool_message(self):
        rest = [line.strip() for line in (self.stderr or "").splitlines() if line.strip()]
        return rest[-1] if rest else ""

    def describe(self):
        msg = "'%s' failed (exit %d)" % (" ".join(self.argv), self.rc)
        if self.tool_message:
            msg += ": %s" % self.tool_message
        return msg


# `timeout`'s exit status when the bound ran out: 124, or 137 when the program needed the SIGKILL after -k
TIMED_OUT = (124, 137)


class CommandRunner:
    """Runs one program for a module invocation and remembers every command (secrets masked)."""

    name = None
    error_class = CommandError

    def __init__(self, module, binary=None, commands=None):
        self.module = module
        self.binary = module.get_bin_path(binary or self.name, required=True)
        # modules that use two runners pass one list so `commands` keeps the real order
        self.commands = commands if commands is not None else []

    def run(self, args, check=True, secrets=(), data=None, allowed_rc=(0,), limit=None):
        """Run ``<program> <args>``; returns (rc, stdout, stderr); raises error_class on a bad rc.

        ``limit``: seconds the program may take, enforced by the host's ``timeout`` (coreutils or busybox; exit
        124 when it ran out, 137 after the SIGKILL that follows the SIGTERM by 5 s) where there is one: run_command itself has no bound,
        and a hung daemon must not hang the whole run. Not shown in ``commands``."""
        argv = [self.binary] + [str(arg) for arg in args]
        bound = self.module.get_bin_path("timeout") if limit else None
        if bound:
            argv = [bound, "-k", "5", str(int(limit))] + argv
        shown = [self.name] + [self.mask(str(arg), secrets) for arg in args]
        self.commands.append(" ".join(shown))
        # no '~' or '$VAR' expansion: an argument reaches the program exactly as validated
        rc, out, err = self.module.run_command(argv, check_rc=False, data=data, binary_data=data is not None,
                                               expand_user_and_vars=False)
        if check and rc not in allowed_rc:
            raise self.error_class(shown, rc, out, err)
        return rc, out, err

    @staticmethod
    def mask(text, secrets):
        for secret in secrets:
            if secret:
                text = text.replace(secret, MASK)
        return text
