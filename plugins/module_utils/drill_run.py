# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""litestream_drill's core: check the options and the inventory, write the credential sets the restores read,
run the host's drill (drill_core.HostDrill) with its cleanup on a signal, and summarise the records.

Drill.run returns the module's result or raises errors.CollectionError; Drill.finish() is the result to fail with.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import sys
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import drill_core as dc
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors, guarded
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.auth_core import CredentialFailure, LitestreamAuth
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.inventory import (
    inventory_problems, problems_message)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.lock import HostLock
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore_core import CLEANUP_SIGNALS
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v


# ---------------------------------------------------------------------- decisions (no Ansible)
def checked_options(params):
    """Every input check, before anything is read or written: (options, the apps to drill).
    Raises InvalidValue."""
    params = dict(params)
    params["host"] = dc.host_name(params["host"], "host")
    params["drill_host"] = dc.host_name(params["drill_host"] or params["host"], "drill_host")
    params["scratch_dir"] = dc.scratch_root(params["scratch_dir"])
    params["storage_root"] = v.absolute_path(params["storage_root"], "storage_root")
    params["credentials_root"] = v.absolute_path(params["credentials_root"], "credentials_root")
    for name in params["only"]:
        v.app_name(name, "only")
    v.check_bounds(params)  # parallel, max_lag_seconds, replica_timeout, lock_timeout
    v.check_bounds(params["verify"] or {}, "verify.")  # min_rows, before the restores' threads start
    problems = inventory_problems(params["apps"], params["credential_sets"], params["image"], {}, params["host"],
                                  storage_root=params["storage_root"])
    if problems:
        raise errors.InvalidValue(problems_message(problems, params["host"], "nothing was drilled"), option="apps")
    return params, dc.selected(params["apps"], params["only"], params["image"])


def summary(records):
    failed = [r for r in records if r["status"] != "ok"]
    return dict(total=len(records), ok=len(records) - len(failed), failed=len(failed))


def sets_to_write(options):
    return [s for s in options["credential_sets"] if s["state"] != "absent"]


# ---------------------------------------------------------------------- the run
class Drill:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.started = time.time()
        self.drill = None
        self.result = dict(changed=False, credential_sets=[])

    def finish(self):
        """The result as it stands, with the run's duration (success or failure alike)."""
        self.result["duration"] = round(time.time() - self.started, 3)
        return self.result

    def run(self):
        options, apps = checked_options(self.params)
        if options["live_only"] and options["results"] is not None:
            self.summarize(dc.judge_records(options["storage_root"], apps, options["results"],
                                            options["max_lag_seconds"], self.module.check_mode))
        elif options["live_only"]:
            self.result["live_tables"] = dc.read_all_live(options["storage_root"], apps)
        else:
            if apps:
                self.credentials(options)
            self.summarize(self.drill_host(options, apps))
        return self.finish()

    def drill_host(self, options, apps):
        """The records of the host's drill, its restores cleaned up on SIGTERM, SIGHUP and SIGINT."""
        self.drill = dc.HostDrill(self.module, options, apps)
        previous = dict((signum, signal.signal(signum, self.on_signal)) for signum in CLEANUP_SIGNALS)
        try:
            return self.drill.run()
        except (guarded.OutsideRoot, IOError, OSError) as exc:  # the run's directory could not be made
            raise errors.CollectionError("scratch_dir: cannot make the drill's directory in %s: %s"
                                         % (options["scratch_dir"], exc), option="scratch_dir")
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def summarize(self, records):
        self.result.update(results=records, summary=summary(records))

    def credentials(self, options):
        sets = sets_to_write(options)
        if not sets:
            return
        if os.geteuid() != 0:
            raise errors.CollectionError(
                "litestream_drill must run as root (become: true): the credential files are root-only")
        try:
            with HostLock(self.module, "credentials", "the credential sets", timeout=options["lock_timeout"]):
                for cset in sets:
                    outcome = LitestreamAuth(cset, self.module.check_mode).run()
                    outcome.pop("diff", None)
                    self.result["credential_sets"].append(outcome)
        except CredentialFailure as exc:
            raise errors.CollectionError("credential set %s: %s" % (exc.name, exc), option="credential_sets")
        self.result["changed"] = any(o["changed"] for o in self.result["credential_sets"])

    def on_signal(self, signum, _frame):
        # the restores run in threads: clean up their keys and files from here, then end without waiting for
        # them (an exception would wait for the threads): the one exit outside the module's main()
        if self.drill is not None:
            self.drill.cleanup()
        try:
            self.module.fail_json(msg="stopped by signal %d: the drill's temporary files and scratch directory were "
                                      "removed" % signum, **self.finish())
        finally:
            sys.stdout.flush()
            os._exit(1)  # pylint: disable=protected-access
