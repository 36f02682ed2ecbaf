# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's whole inventory (litestream_apps, litestream_credential_sets) checked at once, with the very specs
and defaults of the per-app modules: litestream_validate reports it, litestream_host checks it before its first
change, and both turn an entry into the options each core takes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import credential_set_problem
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.dokku import (
    check_storage_options, storage_argument_spec)
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.restore import replica_identity, replica_location

# One database's replica: what it is (to find two writers whatever the spelling), and what messages show
Location = namedtuple("Location", ["identity", "shown"])

# The inventory's schema: which key of a litestream_apps entry becomes which module option. Roles pass whole
# entries to the modules (litestream_host, litestream_drill, litestream_health), never key by key; their
# meta/argument_specs.yml list the keys, and a unit test checks them against entry_spec().
# entry key -> dokku_storage option, where the roles name them differently
STORAGE_KEYS = {"app": "app", "storage": "storage", "mount_path": "mount_path", "chown": "chown", "create": "create_app"}
# entry keys that are litestream_replica options of the same name
SIDECAR_KEYS = ("app", "storage", "databases", "replica", "image", "metrics_port", "snapshot_interval",
                "snapshot_retention", "shutdown_sync_timeout", "heartbeat_url", "heartbeat_interval", "state")
# entry keys only the health check reads (the sidecar and the storage ignore them)
HEALTH_KEYS = ("max_lag",)
ENTRY_KEYS = tuple(STORAGE_KEYS) + tuple(k for k in SIDECAR_KEYS if k not in STORAGE_KEYS) + HEALTH_KEYS
# An entry's secrets (heartbeat_url, URL credentials) are masked by no_log.SecretMaskingModule, which every
# module is built with: `apps` is a list of raw entries, so Ansible's own no_log cannot see them.


def module_params(spec, given):
    """Options as the module would see them (types converted, defaults set), or raise InvalidValue."""
    result = ArgumentSpecValidator(spec).validate(dict((k, val) for k, val in given.items() if val is not None))
    if result.error_messages:
        raise v.InvalidValue("; ".join(result.error_messages))
    return result.validated_parameters


def check_entry(entry, image, storage_root=None):
    """The replica locations of one litestream_apps entry ([] without a replica); raises InvalidValue.
    storage_root: the host's (a file replica must stay out of the app's storage directory), else the default."""
    if not isinstance(entry, dict):
        raise v.InvalidValue("is not a mapping with an app key")
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise v.InvalidValue("unknown key%s %s (known: %s)" % (
            "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(sorted(ENTRY_KEYS))))
    v.app_name(entry.get("app"))
    entry_max_lag(entry)
    check_storage_options(storage_params(entry))
    params = sidecar_params(entry, image, **({"storage_root": storage_root} if storage_root else {}))
    fields = ls.check_sidecar_options(params)["fields"]
    if fields is None or params["state"] == "absent":
        return fields, []
    return fields, [Location(replica_identity(fields, db), replica_location(fields, db)) for db in params["databases"]]


def entry_max_lag(entry):
    """The entry's `max_lag` in seconds (a Go duration such as 90s or 5m, as sync_interval), or None when unset;
    raises InvalidValue."""
    value = entry.get("max_lag")
    if value is None:
        return None
    return v.duration_seconds(v.in_range(value, "max_lag"))


def entry_spec():
    """Each key of a litestream_apps entry with the spec of the module option it becomes (max_lag: a duration
    the health check reads): the schema the roles' argument_specs are checked against."""
    storage, sidecar = storage_argument_spec(), ls.sidecar_argument_spec()
    spec = dict((key, storage[option]) for key, option in STORAGE_KEYS.items())
    spec.update((key, sidecar[key]) for key in SIDECAR_KEYS)
    spec.update((key, dict(type="str")) for key in HEALTH_KEYS)
    return spec


def storage_params(entry, **extra):
    """The entry as dokku_storage's options: state absent or present (the sidecar has the finer states)."""
    given = dict((option, entry.get(key)) for key, option in STORAGE_KEYS.items())
    given["state"] = "absent" if entry.get("state") == "absent" else "present"
    given.update(extra)
    return module_params(storage_argument_spec(), given)


def sidecar_params(entry, image, **extra):
    """The entry as litestream_replica's options, the host's image where the entry names none."""
    given = dict((key, entry.get(key)) for key in SIDECAR_KEYS)
    given["image"] = given["image"] or image
    given.update(extra)
    return module_params(ls.sidecar_argument_spec(), given)


def inventory_problems(apps, credential_sets, image, peers, host, storage_root=None):
    """Every problem of a host's inventory, one message each, with the entry's index and app name; storage_root as
    check_entry takes it."""
    problems, owners = entry_problems(apps, image, host, storage_root)
    problems += peer_problems(owners, peers, image, host)
    return problems + credential_set_problems(credential_sets)


def entry_problems(apps, image, host, storage_root):
    """(problems of this host's entries, {replica identity: (the entry's label, its replica type)})."""
    problems = []
    owners = {}  # replica identity -> the entry that uses it
    apps_seen = {}
    for index, entry in enumerate(apps):
        label = "litestream_apps[%d]" % index
        if isinstance(entry, dict) and isinstance(entry.get("app"), str):
            label += " (%s)" % entry["app"]
        try:
            fields, locations = check_entry(entry, image, storage_root)
        except v.InvalidValue as exc:
            problems.append("%s: %s" % (label, exc))
            continue
        if entry["app"] in apps_seen:
            problems.append("%s: the app is listed twice on %s (also %s)" % (label, host, apps_seen[entry["app"]]))
        apps_seen.setdefault(entry["app"], label)
        for location in locations:
            if location.identity in owners:
                problems.append("%s and %s both replicate to %s: two writers on one replica corrupt each other's "
                                "lineage; give each app its own replica path"
                                % (owners[location.identity][0], label, location.shown))
            else:
                owners[location.identity] = (label, fields["type"])
    return problems, owners


def peer_problems(owners, peers, image, host):
    """This host's replica locations that an app of another host of the play also writes."""
    problems = []
    for peer, peer_apps in sorted(peers.items()):
        if peer == host or not isinstance(peer_apps, list):
            continue
        for entry in peer_apps:
            try:
                _fields, locations = check_entry(entry, image)
            except v.InvalidValue:
                continue  # that host's own check reports it
            for location in locations:
                owner = owners.get(location.identity)
                # a directory on the host is each host's own: the same path on two hosts is two replicas
                if owner and not backends.get(owner[1]).host_path:
                    problems.append("%s on %s and %s on %s both replicate to %s: two writers on one replica corrupt "
                                    "each other's lineage; give each app its own replica path"
                                    % (owner[0], host, entry["app"], peer, location.shown))
    return problems


def credential_set_problems(credential_sets):
    problems = []
    names = {}
    for index, cset in enumerate(credential_sets):
        label = "litestream_credential_sets[%d] (%s)" % (index, cset["name"])
        problem = credential_set_problem(cset)
        if problem:
            problems.append("%s: %s" % (label, problem))
        if cset["name"] in names:
            problems.append("%s: the credential set is listed twice (also %s)" % (label, names[cset["name"]]))
        names.setdefault(cset["name"], label)
    return problems


def problems_message(problems, host, outcome="nothing was changed"):
    """The one message of an inventory with problems: their count, the host, what did not happen, and each."""
    return "%d problem%s in the inventory of %s, %s: %s" % (
        len(problems), "" if len(problems) == 1 else "s", host, outcome, " | ".join(problems))
