# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's errors: one base every module catches in one place, one subclass per kind.

Every exception the module_utils raise for the user to read derives from CollectionError; its message is what the
task fails with, and ``option`` (when known) names the option it is about. The kinds:

- InvalidValue: an option's value is refused (validate.InvalidValue, litestream.ConfigError, ...);
- MissingCredentials: a replica names a credential set that does not exist (yet);
- CommandFailed: a program the module ran failed (runner.CommandError: dokku, docker);
- UnsafePath: a write or removal would leave the directory the task manages (guarded.OutsideRoot, owned.NotOurs);
- AppFailure: one app cannot be converged, with a message that already names the app and says what to do.

Other failures (a lock not acquired, a credential file not written, a restore that failed) derive from the base.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# validate.py's convention: a refused value's message starts with its option ("replica.path: ...")
LEADING_OPTION_RE = re.compile(r"([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*): ")


class CollectionError(Exception):
    """A failure the task reports with this message (never a traceback); ``option``: the option it is about."""

    def __init__(self, *args, **kwargs):
        self.option = kwargs.pop("option", None)
        super(CollectionError, self).__init__(*args, **kwargs)


class InvalidValue(CollectionError, ValueError):
    """A value a module refuses; the message names the option and says what is allowed. Without option=, the
    option is the name the message starts with, when it starts with one."""

    def __init__(self, *args, **kwargs):
        super(InvalidValue, self).__init__(*args, **kwargs)
        match = LEADING_OPTION_RE.match(args[0]) if self.option is None and args and isinstance(args[0], str) else None
        if match:
            self.option = match.group(1)


class MissingCredentials(InvalidValue):
    """The credential set a replica names does not exist (yet)."""


class CommandFailed(CollectionError):
    """A command failed; the message quotes it and the program's own words."""


class UnsafePath(CollectionError):
    """A destructive operation would touch something outside the collection's root; nothing was done."""


class AppFailure(CollectionError):
    """One app cannot be converged; the message names the app, says why and what to do."""


def app_message(app, exc):
    """An app's failure as a per-app module reports it: an AppFailure's own message (it names the app), any other
    error after "app <name>: "."""
    return str(exc) if isinstance(exc, AppFailure) else "app %s: %s" % (app, exc)
