# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who owns an app's replica: epoch-scoped lineages and a create-only claim log (docs/move-design.md §6).

A host writes only the lineage of an epoch it has claimed. A claim is created once, with create-if-absent, and
never rewritten; lineages are never reused. A stale host (reboot, restart policy, `docker start`, a partition) can
only extend its own dead branch, because every key Litestream builds is its replica path + "/" + a level
directory (s3/replica_client.go, file/replica_client.go, sftp/replica_client.go at v0.5.16), and epoch N >= 2
replicates under a path no other epoch writes.

Everything lives below one reserved directory inside the configured replica path R:
    R/.dokku-litestream/<app>/claims/0000000001.json   epoch 1: its lineage is R itself (the layout before moves)
    R/.dokku-litestream/<app>/epochs/2/<db>            the lineage of epoch 2 (with location: path, epochs/2)
Litestream lists, reads and deletes only level directories and `generations/` below a replica path, and names no
entry starting with ".", so nothing it does reaches the reserved directory (only DeleteAll, which nothing calls).

Pure: the stores that read and create claims are claim_store.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import errors
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import restore

RESERVED_DIR = ".dokku-litestream"
FORMAT = 1
EPOCH_DIGITS = 10
MAX_EPOCH = 10 ** EPOCH_DIGITS - 1
MAX_CLAIM_BYTES = 16384
CLAIM_NAME_RE = re.compile(r"\A([0-9]{%d})\.json\Z" % EPOCH_DIGITS)
REASONS = ("first", "move", "take-over")
# what a host's standing is, as health and provision report it
UNCLAIMED, OWNER, FENCED = "unclaimed", "owner", "fenced"


class ClaimProblem(errors.CollectionError):
    """A claim in the log that is not one of ours, or not for this replica: nothing is decided from it."""


class Fenced(errors.AppFailure):
    """This host is not the owner of the app's replica: it must not write into it."""


def _join(*parts):
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def _root(fields):
    """R, the configured replica path, as written (relative paths of a server stay relative)."""
    path = (fields.get("path") or "").rstrip("/")
    return "/" if fields.get("path", "").startswith("/") and not path else path


def app_dir(fields, app):
    """R/.dokku-litestream/<app>: everything the collection keeps about one app's replica."""
    prefix = "/" if _root(fields).startswith("/") else ""
    return prefix + _join(_root(fields), RESERVED_DIR, app)


def claims_dir(fields, app):
    return app_dir(fields, app) + "/claims"


def claim_name(epoch):
    return "%0*d.json" % (EPOCH_DIGITS, epoch)


def epoch_of(name):
    """The epoch a claim's file name holds, or None for any other name (temporary files, strays)."""
    match = CLAIM_NAME_RE.match(name)
    epoch = int(match.group(1)) if match else 0
    return epoch if epoch >= 1 else None


def lineage_dir(app, epoch):
    """The lineage of an epoch relative to R: "" (R itself) for epoch 1, never reused after it."""
    return "" if epoch == 1 else _join(RESERVED_DIR, app, "epochs", str(epoch))


def lineage_fields(fields, app, epoch):
    """The replica fields an epoch's writer and reader use: only `path` changes, so rendering, identity and listing
    work on them unchanged."""
    if epoch == 1:
        return dict(fields)
    prefix = "/" if _root(fields).startswith("/") else ""
    return dict(fields, path=prefix + _join(_root(fields), lineage_dir(app, epoch)))


def epoch_in_config(config, app):
    """The epoch whose lineage a sidecar configuration this collection wrote replicates to: N for a path under
    .dokku-litestream/<app>/epochs/N, 1 for another; None without a configuration."""
    if not config:
        return None
    match = re.search(r"/?%s/%s/epochs/([0-9]+)(?:/|\")" % (re.escape(RESERVED_DIR), re.escape(app)), config)
    return int(match.group(1)) if match else 1


def check_configured(fields):
    """A replica as an inventory gives it: its path must not be a lineage (a path inside the reserved directory),
    or a host would keep a claim log of its own there and write into that lineage."""
    if RESERVED_DIR in (fields.get("path") or "").split("/"):
        raise errors.InvalidValue(
            "replica.path: %s lies inside %s, the directory where this collection keeps ownership records and "
            "lineages: give the replica's configured path (the current lineage is found from its record)"
            % (fields.get("path"), RESERVED_DIR))


def root_identity(fields):
    """The identity of R whatever its spelling (endpoint slash, default port, host case): what a claim is about."""
    return restore.replica_identity(dict(fields, location="path"), "")


def new_claim(app, epoch, owner, host_id, reason, fields, databases, created_at, nonce, branch=None):
    """A claim of `epoch` for this host. `branch` is where the previous lineage stops being history:
    {"epoch", "owner", "final", "txids": {database: TXID}} (exact for a move, the restored TXID for a take-over)."""
    if reason not in REASONS:
        raise ValueError("unknown claim reason %r" % reason)
    if not 1 <= epoch <= MAX_EPOCH:
        raise ClaimProblem("epoch %d is out of range" % epoch)
    claim = {"format": FORMAT, "app": app, "epoch": epoch, "owner": owner, "host_id": host_id, "reason": reason,
             "lineage": lineage_dir(app, epoch), "location": fields.get("location") or "per_database",
             "databases": sorted(databases), "replica": root_identity(fields), "created_at": created_at,
             "nonce": nonce}
    if branch:
        claim["from"] = branch
    return claim


def encode(claim):
    return (json.dumps(claim, sort_keys=True, indent=1) + "\n").encode("utf-8")


def decode(data, fields, app, epoch):
    """The claim stored as epoch `epoch` of `app`, checked against what its name and place say it is."""
    where = "%s/%s" % (claims_dir(fields, app), claim_name(epoch))
    if len(data) > MAX_CLAIM_BYTES:
        raise ClaimProblem("%s is larger than a claim (%d bytes): not written by this collection" % (where, len(data)))
    try:
        claim = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ClaimProblem("%s is not JSON: not written by this collection" % where)
    if not isinstance(claim, dict) or claim.get("format") != FORMAT:
        raise ClaimProblem("%s is not a claim of format %d" % (where, FORMAT))
    expected = {"app": app, "epoch": epoch, "lineage": lineage_dir(app, epoch), "replica": root_identity(fields)}
    wrong = sorted(k for k, value in expected.items() if claim.get(k) != value)
    if wrong:
        raise ClaimProblem("%s does not belong here: its %s %s not what its place says (%s)" % (
            where, " and ".join(wrong), "is" if len(wrong) == 1 else "are",
            ", ".join("%s=%s" % (k, json.dumps(expected[k])) for k in wrong)))
    for key in ("owner", "host_id", "created_at", "nonce"):
        if not isinstance(claim.get(key), str) or not claim[key]:
            raise ClaimProblem("%s has no %s" % (where, key))
    if not isinstance(claim.get("databases"), list):
        raise ClaimProblem("%s lists no databases" % where)
    if claim.get("reason") not in REASONS:
        raise ClaimProblem("%s has no valid reason" % where)
    branch = claim.get("from")
    if branch is not None and not _valid_branch(branch, epoch):
        raise ClaimProblem("%s has no valid branch (from)" % where)
    return claim


def _valid_branch(branch, epoch):
    """A claim's `from`: the previous epoch, its owner, and {database: TXID} where it stops being history."""
    txids = branch.get("txids") if isinstance(branch, dict) else None
    number = branch.get("epoch") if isinstance(branch, dict) else None
    return (isinstance(number, int) and not isinstance(number, bool) and 1 <= number < epoch
            and isinstance(branch.get("owner"), str) and isinstance(txids, dict)
            and all(isinstance(t, str) and ls.TXID_RE.fullmatch(t) for t in txids.values()))


def epoch_at(claims, moment):
    """The epoch whose lineage holds the app's state at `moment` (epoch seconds): the newest whose claim was made at
    or before it, 1 before every claim (R held the app's data before this collection first claimed it). `claims`:
    (epoch, created_at epoch seconds) pairs, in any order."""
    held = [epoch for epoch, created in claims if created <= moment]
    return max(held) if held else 1


def newest_epoch(names):
    """The highest epoch among a listing of claims/ (None when the app has never been claimed)."""
    epochs = [e for e in (epoch_of(name) for name in names) if e]
    return max(epochs) if epochs else None


def standing(claim, host_id):
    """UNCLAIMED, OWNER or FENCED: a host is the owner by its host id, whatever the inventory calls it."""
    if claim is None:
        return UNCLAIMED
    return OWNER if claim["host_id"] == host_id else FENCED


def describe(claim):
    """'dokku-b since epoch 3 (move, 2026-11-25T12:00:00Z)' for messages."""
    return "%s since epoch %d (%s, %s)" % (claim["owner"], claim["epoch"], claim["reason"], claim["created_at"])


def fenced_message(app, claim, host):
    return ("app %s: its replica is owned by %s; this host (%s) is fenced and must not write into it. "
            "Move the app with the dokku_sqlite.litestream.move playbook, or, after losing %s, restore it here "
            "with restore_take_over: true" % (app, describe(claim), host, claim["owner"]))


def lost_claim_message(app, epoch, winner):
    return ("app %s: another host claimed epoch %d first: %s. Nothing was written; read the ownership again "
            "before retrying" % (app, epoch, describe(winner)))
