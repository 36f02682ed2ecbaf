# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One app's Litestream sidecar: plan from what was read (its container, the image), then apply.

Shared by litestream_replica (one app, its own reads) and litestream_host (every app of the host, read
in one `docker inspect`). It raises AppFailure instead of ending the module, so a host-level run can go
on with the other apps.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import socket
import threading
import time

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.common import (
    file_needs_fix, read_text, state_text, text_diff, write_atomic)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import (
    MissingCredentials, load_credentials)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import container_summary
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.first_sync import FirstSync, FirstSyncFailed
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends, defaults, guarded, owned
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import claim_store, errors, first_sync
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import ownership
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.storage_core import AppFailure
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v

LABEL_APP = "dokku_sqlite.litestream.app"
LABEL_HASH = "dokku_sqlite.litestream.config-hash"
RESTART_POLICY = "unless-stopped"
# litestream_host converges several sidecars at once: their config directories share parents that the first
# run creates, and two threads making the same parent would race (one os.mkdir fails with EEXIST)
CONFIG_DIRS = threading.Lock()


def sidecar_name(app):
    return "dokku.litestream.%s" % app


class SidecarPlan:
    """Converge one app's sidecar. `docker` runs the writes (and records them in its `commands`); `warn`
    takes a warning; the caller passes the container's inspect document and the image id it read."""

    def __init__(self, params, docker, check_mode, warn, want_diff=False):
        self.params = params
        self.check_mode = check_mode
        self.warn = warn
        self.want_diff = want_diff
        self.app = params["app"]
        self.name = sidecar_name(self.app)
        self.docker = docker
        self.storage = params["storage"] or "%s--db" % self.app
        self.actions = []
        self.current = None    # the container's inspect document as read
        self.fields = None
        self.ownership = None  # claim_store.Ownership once read (a running state on a replica that records it)
        self.placeholder_credentials = False
        self.lineage = None         # the replica fields of the lineage this host writes (health lists that one)
        self.fenced_refusal = None  # the message a fenced host's run fails with
        # set by validate(), from the normalised roots
        self.config_root = self.storage_root = self.credentials_root = None
        self.storage_dir = self.config_dir = self.config_path = self.env_path = None
        self.result = dict(changed=False, actions=self.actions, commands=self.docker.commands,
                           config_path=None)

    def validate(self):
        """Every input check, for every state, before a file is read or a docker command runs."""
        try:
            v.app_name(self.app)
        except v.InvalidValue as exc:
            raise AppFailure(str(exc))  # no "app <name>:" prefix: the name itself is what is wrong
        try:
            self.check_options()
        except v.InvalidValue as exc:
            raise AppFailure("app %s: %s" % (self.app, exc))
        self.storage_dir = os.path.join(self.storage_root, self.storage)
        self.config_dir = os.path.join(self.config_root, self.app)
        self.config_path = os.path.join(self.config_dir, ls.CONFIG_FILE)
        self.env_path = os.path.join(self.config_dir, ls.CREDENTIALS_ENV_FILE)
        self.result["config_path"] = self.config_path

    def check_options(self):
        checked = ls.check_sidecar_options(self.params)
        self.config_root, self.storage_root = checked["config_root"], checked["storage_root"]
        self.credentials_root, self.fields = checked["credentials_root"], checked["fields"]

    def fail(self, msg):
        raise AppFailure(msg)

    def act(self, description, args=None):
        """Record an action; run its docker command unless in check mode."""
        self.actions.append(description)
        if args is not None:
            if self.check_mode:
                self.docker.commands.append("docker " + " ".join(args) + "  # check mode: not run")
            else:
                self.docker.run(args)

    def stop_timeout(self):
        return self.params["shutdown_sync_timeout"] + 15

    def render(self):
        """(config, redacted config, {secret file beside it: its text, "" for one that must not exist})."""
        try:
            creds = self.credentials()
            fields = self.read_ownership(creds)
            options = dict(metrics_port=self.params["metrics_port"],
                           shutdown_sync_timeout="%ds" % self.params["shutdown_sync_timeout"],
                           snapshot_interval=self.params["snapshot_interval"],
                           snapshot_retention=self.params["snapshot_retention"], socket=True,
                           heartbeat_url=self.params["heartbeat_url"], heartbeat_interval=self.params["heartbeat_interval"])
            config = ls.render_config(self.params["databases"], fields, creds, **options)
            redacted = ls.render_config(self.params["databases"], fields, creds, redact=True, **options)
        except ls.ConfigError as exc:
            self.fail("app %s: %s" % (self.app, exc))
        # the secret files beside the config, each root 0600; "" means the file must not exist
        secrets = {self.env_path: ls.credentials_env(fields, creds)}
        for name, text in sorted(ls.credential_files(fields, creds).items()):
            secrets[os.path.join(self.config_dir, name)] = text
        return config, redacted, secrets

    def read_ownership(self, creds):
        """Who owns the replica (read only): the lineage this host writes, or AppFailure on a fenced host that
        would run the sidecar, or when the store cannot tell (nothing was changed either way)."""
        if self.placeholder_credentials:
            # the set is not written yet, so the store cannot be read: predict the first claim a real run makes
            self.result["ownership"] = {"standing": "unknown", "reason": "check mode: the credential set is not there"}
            if self.params["state"] != "absent" and backends.of(self.fields).claims:
                self.actions.append("claim the replica (epoch 1)")
            return self.fields
        try:
            ownership.check_configured(self.fields)
        except errors.InvalidValue as exc:
            self.fail("app %s: %s" % (self.app, exc))
        found = claim_store.Ownership(self.fields, creds, self.app, self.config_root)
        try:
            found.read()
        except (claim_store.StoreFailed, ownership.ClaimProblem) as exc:
            return self.unread_ownership(exc)
        self.ownership, self.result["ownership"] = found, found.summary()
        if found.standing == ownership.FENCED and self.params["state"] != "stopped":
            message = ownership.fenced_message(self.app, found.claim, self.owner_name())
            if found.claim["owner"] == self.owner_name():
                # the claim names this very host: its id file was lost or replaced (a reinstall, a restored backup)
                message += (". The claim names this host: if it is the same machine and only its id was lost, put "
                            "the claim's host id %s into %s" % (found.claim["host_id"], os.path.join(
                                self.config_root, claim_store.HOST_ID_FILE)))
            self.fenced_refusal = message  # converge stops a sidecar that still runs here, then fails
        self.lineage = found.lineage()
        return self.lineage

    def unread_ownership(self, exc):
        """The store did not answer (wrong keys, an outage): a host keeps writing the lineage its configuration
        already names, always one it claimed (so, at worst, its own dead branch); without one it cannot claim."""
        words, _definitive = first_sync.reason(str(exc))
        why = "%s: %s" % (words, exc) if words else str(exc)
        epoch = ownership.epoch_in_config(read_text(self.config_path), self.app)
        if epoch is None:
            self.fail("app %s: cannot read who owns its replica, so no sidecar is started: %s" % (self.app, why))
        self.warn("app %s: cannot read who owns its replica (%s): the sidecar keeps the lineage of epoch %d that "
                  "its configuration names" % (self.app, why, epoch))
        self.result["ownership"] = {"standing": "unknown", "epoch": epoch, "reason": why}
        self.lineage = ownership.lineage_fields(self.fields, self.app, epoch)
        return self.lineage

    def owner_name(self):
        return self.params.get("inventory_host") or socket.gethostname()

    def claim_if_unclaimed(self):
        """The first claim of the replica (epoch 1, its configured path) for this host, before anything is written;
        LostClaim when another host made it first."""
        # a sidecar asked to stay stopped claims nothing (a restore stops it before it knows whose replica it is)
        if not self.ownership or self.ownership.standing != ownership.UNCLAIMED or self.params["state"] == "stopped":
            return
        self.actions.append("claim the replica (epoch 1)")
        if not self.check_mode:
            with CONFIG_DIRS:  # the configuration root holds the host id
                owned.ensure(self.config_dir, owned.APP_CONFIG)
            now = datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
            try:
                self.ownership.claim_next(self.owner_name(), "first", self.params["databases"], now)
            except claim_store.Unsupported as exc:  # the probe: a store that ignores If-None-Match records nothing
                self.actions.pop()
                self.warn("app %s: %s; the replica's ownership is not recorded and nothing fences another host"
                          % (self.app, exc))
                self.ownership.standing, self.ownership.reason = claim_store.UNSUPPORTED, str(exc)
            self.result["ownership"] = self.ownership.summary()

    def credentials(self):
        """The replica's credential set ({} when its type takes none); raises ConfigError."""
        if not backends.of(self.fields).needs_credentials:
            return {}
        try:
            return load_credentials(self.credentials_root, self.set_name(), self.fields["type"])
        except MissingCredentials as exc:
            if not self.check_mode:
                raise
            # in --check the litestream_auth task before this one wrote nothing: predict with it
            self.warn("%s (check mode: assuming an earlier task creates it)" % exc)
            self.placeholder_credentials = True
            return ls.placeholder_credentials(self.fields)

    def set_name(self):
        return self.fields.get("credentials") or defaults.CREDENTIAL_SET

    def expected_hash(self, redacted):
        """The config hash the sidecar's label carries for this redacted config. The container's own flags count
        too: a new mount or stop timeout needs a new container. litestream_health compares with it."""
        return ls.config_hash(redacted + "\n".join(self.create_args("")), self.params["image"])

    def create_args(self, config_hash):
        args = ["container", "create", "--name", self.name,
                "--restart", RESTART_POLICY,
                "--network", self.params["network"],
                "--stop-timeout", str(self.stop_timeout()),
                "--label", "%s=%s" % (LABEL_APP, self.app),
                "--label", "%s=%s" % (LABEL_HASH, config_hash),
                "--volume", "%s:%s" % (self.storage_dir, ls.DEFAULT_MOUNT_DIR),
                "--volume", "%s:%s:ro" % (self.config_dir, ls.CONFIG_DIR_IN_CONTAINER)]
        if backends.of(self.fields).host_path:
            # a file replica lives on this host: same path inside, so restores need no translation
            args += ["--volume", "%s:%s" % (self.fields["path"], self.fields["path"])]
        # the entrypoint sources the credentials file, so no key is in the env, argv or docker inspect
        script = ls.entrypoint_script("%s/%s" % (ls.CONFIG_DIR_IN_CONTAINER, ls.CONFIG_FILE),
                                      "%s/%s" % (ls.CONFIG_DIR_IN_CONTAINER, ls.CREDENTIALS_ENV_FILE),
                                      self.params["databases"])
        args += ["--entrypoint", "/bin/sh", self.params["image"], "-c", script]
        return args

    def prepare(self):
        """Validate and render: every input check, before a file is read or a docker command runs."""
        self.validate()
        return self.render() if self.params["state"] != "absent" else None

    def converge(self, rendered, current, image_id):
        """current: the container's inspect document (None: no container); image_id: the wanted image's id
        on the host (None: not pulled). Returns the result; raises AppFailure."""
        self.current = current
        # config_root/<app> is removed, chmodded and chowned below: only when this collection made it
        problem = owned.problem(self.config_dir, owned.APP_CONFIG)
        if problem:
            self.fail("app %s: refusing to use %s as the app's configuration directory: %s; nothing was changed (is "
                      "config_root right?)" % (self.app, self.config_dir, problem))
        old_config = read_text(self.config_path)
        before = {"container": self.container_view(current), "config": ls.redact_text(old_config)}
        if self.params["state"] == "absent":
            self.remove(current, old_config)
            return self.finish(before, {"container": {"exists": False}, "config": None})
        if self.ownership and self.ownership.standing == ownership.FENCED:  # stop, write nothing
            result = self.stop_fenced(current, before)
            if self.fenced_refusal:
                # a sidecar left running here could be writing the owner's lineage (two hosts on one path before
                # the record existed): stopped above, then the run fails
                self.fail(self.fenced_refusal + ("; its sidecar was stopped" if self.actions else ""))
            return result
        config, redacted, secrets = rendered
        config_hash = self.check_present(current, redacted)
        self.claim_if_unclaimed()
        labels = (current or {}).get("Config", {}).get("Labels") or {}
        recreate = current is not None and (
            labels.get(LABEL_HASH) != config_hash or (image_id is not None and current.get("Image") != image_id))
        was_running = bool(current and current["State"].get("Running"))
        if recreate:
            if was_running:
                self.act("stop container", ["container", "stop", "--time", str(self.stop_timeout()), self.name])
            self.act("remove container", ["container", "rm", self.name])
        changed = self.converge_files(old_config, config, secrets)
        exists_after = current is not None and not recreate
        self.converge_container(current, exists_after, config_hash)
        run_wanted = self.converge_running(was_running, was_running and exists_after, changed)
        after_container = {"exists": True, "running": run_wanted, "image": self.params["image"],
                           "config_hash": config_hash}
        return self.finish(before, {"container": after_container, "config": redacted})

    def stop_fenced(self, current, before):
        """A fenced host's sidecar asked to stop: its files stay as they are (they name its own dead lineage)."""
        if current is not None and current["State"].get("Running"):
            self.act("stop container", ["container", "stop", "--time", str(self.stop_timeout()), self.name])
        return self.finish(before, dict(before, container=dict(before["container"], running=False)
                                        if current is not None else before["container"]))

    def check_present(self, current, redacted):
        """Before a present sidecar is touched: no downgrade, a storage directory. Returns the config hash."""
        problem = ls.downgrade_problem(((current or {}).get("Config") or {}).get("Image"), self.params["image"])
        if problem:
            self.fail("app %s: %s" % (self.app, problem))
        config_hash = self.expected_hash(redacted)
        self.result.update(config=redacted, config_hash=config_hash)
        if not os.path.isdir(self.storage_dir):
            msg = ("storage directory %s does not exist: create it with dokku_sqlite.litestream.dokku_storage "
                   "first (docker would create it owned by root)" % self.storage_dir)
            if not self.check_mode:
                self.fail(msg)
            if not self.params.get("storage_in_run"):
                self.warn(msg)
        return config_hash

    def converge_files(self, old_config, config, secrets):
        """The config and the secret files: record, and (unless in check mode) write what differs or has the wrong
        mode. True when a content changed (Litestream reads them at its start)."""
        old_secrets = dict((path, read_text(path)) for path in secrets)
        secrets_changed = [path for path, text in secrets.items() if (old_secrets[path] or "") != text]
        if self.check_mode and not secrets_changed and self.rotating_credentials():
            # the litestream_auth task before this one only predicted its change, so the files still hold the
            # old secret: predict what the real run writes and restarts
            secrets_changed = [self.rotated_path()]
        config_changed = old_config != config
        perms_wrong = ensure_needed(self.config_dir, self.config_path) or any(
            file_needs_fix(path, 0o600) for path in secrets)
        if config_changed:
            self.actions.append("write config")
        for path in secrets_changed:
            self.actions.append("%s %s" % ("write" if secrets[path] else "remove", os.path.basename(path)))
        if perms_wrong and not (config_changed or secrets_changed):
            self.actions.append("fix config permissions")
        if (config_changed or secrets_changed or perms_wrong) and not self.check_mode:
            with CONFIG_DIRS:
                owned.ensure(self.config_dir, owned.APP_CONFIG)
            files = [(self.config_path, old_config, config)] + [
                (path, old_secrets[path], text) for path, text in secrets.items()]
            for path, old, new in files:
                if new and old != new:
                    write_atomic(path, new, 0o600)
                elif not new and old is not None:
                    guarded.unlink(path, self.config_root)
                elif file_needs_fix(path, 0o600):
                    guarded.chmod(path, 0o600, self.config_root)
                    guarded.chown(path, 0, 0, self.config_root)
        return bool(config_changed or secrets_changed)

    def converge_container(self, current, exists_after, config_hash):
        if not exists_after:
            self.act("create container", self.create_args(config_hash))
            return
        policy = ((current.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no"
        if policy != RESTART_POLICY:
            # set by hand, or by Dokku's ps:stop (0.36+) on a sidecar of an earlier release that carried the app label
            self.act("set restart policy %s (was %s)" % (RESTART_POLICY, policy),
                     ["container", "update", "--restart", RESTART_POLICY, self.name])

    def converge_running(self, was_running, running_now, changed):
        """Start, restart (a file changed) or stop as the state asks, then wait for the first sync. Returns whether
        the sidecar runs afterwards."""
        run_wanted = {"started": True, "stopped": False, "present": was_running}[self.params["state"]]
        started_at = time.time()
        if run_wanted and not running_now:
            self.act("start container", ["container", "start", self.name])
        elif run_wanted and changed:
            # same hash, new file content: only a secret changed; Litestream reads them at start
            self.act("restart container (secret rotated)",
                     ["container", "restart", "--time", str(self.stop_timeout()), self.name])
        elif not run_wanted and running_now:
            self.act("stop container", ["container", "stop", "--time", str(self.stop_timeout()), self.name])
        if run_wanted and (not running_now or changed) and not self.check_mode:
            self.await_first_sync(started_at)
        return run_wanted

    def await_first_sync(self, since):
        """After a start or restart: Litestream's first sync, or the store's reason (first_sync.py)."""
        timeout = self.params["first_sync_timeout"]
        if not timeout:
            return
        databases = self.params["databases"]
        present = [db for db in databases if os.path.isfile(os.path.join(self.storage_dir, db))]
        waiter = FirstSync(self.docker, self.name, present, [db for db in databases if db not in present], timeout,
                           secrets=[self.params["heartbeat_url"]])
        try:
            self.result["first_sync_seconds"] = waiter.wait(since - 1)
        except FirstSyncFailed as exc:
            self.fail("app %s: the sidecar runs, but %s" % (self.app, exc))

    def remove(self, current, old_config):
        if current is not None:
            if current["State"].get("Running"):
                # a graceful stop lets Litestream finish its last sync; rm -f would SIGKILL it
                self.act("stop container", ["container", "stop", "--time", str(self.stop_timeout()), self.name])
            self.act("remove container", ["container", "rm", self.name])
        if old_config is not None or os.path.isdir(self.config_dir):
            self.actions.append("remove config")
            if not self.check_mode:
                owned.remove(self.config_dir, owned.APP_CONFIG)

    def rotating_credentials(self):
        """Whether this run's earlier litestream_auth task changes (or in check mode would change) our set."""
        if not backends.of(self.fields).needs_credentials:
            return False
        return self.set_name() in self.params["changed_credentials"]

    def rotated_path(self):
        """The file a rotated set rewrites: the type's first credential file (the key), else the credentials file."""
        files = backends.of(self.fields).credential_files
        return os.path.join(self.config_dir, files[0][1]) if files else self.env_path

    @staticmethod
    def container_view(doc):
        if not doc:
            return {"exists": False}
        return {"exists": True, "running": bool(doc["State"].get("Running")), "image": doc["Config"].get("Image"),
                "config_hash": (doc["Config"].get("Labels") or {}).get(LABEL_HASH)}

    def finish(self, before, after):
        self.result["changed"] = bool(self.actions)
        if self.check_mode:
            self.result["container"] = after["container"]
        elif self.actions:
            self.result["container"] = container_summary(self.docker.inspect_container(self.name))
        else:  # nothing ran: the container is as it was read
            self.result["container"] = container_summary(self.current)
        if self.want_diff:
            # the configuration as lines (secrets redacted), the container as a second entry
            self.result["diff"] = [
                text_diff(before["config"], after["config"], self.config_path),
                text_diff(state_text(before["container"]), state_text(after["container"]), "container %s" % self.name)]
        return self.result


def ensure_needed(directory, path):
    """True when the config directory or file exist with the wrong mode or owner."""
    return file_needs_fix(directory, 0o700) or file_needs_fix(path, 0o600)
