"""--check predicts exactly what the real run then does (issue #12), on one change set with three kinds of change:
a rotated S3 key (the credential task changes, every S3 sidecar restarts), a changed sync interval on one
host (that sidecar is recreated) and a restart policy changed by hand on the other (put back in place).

Both runs print every task result (-v); for each task, host and item the changed flag and the module's actions
must be the same in the prediction and in the real run.
"""
import json
import re
from pathlib import Path

from test_replication import (  # noqa: F401  (replicating is a fixture)
    apps_of, extra_vars_file, override_sync_interval, provision, replicating, s3_creds, sidecar,
)

TASK_RE = re.compile(r"^TASK \[(.*)\] \**$")
RESULT_RE = re.compile(r"^(ok|changed|skipping|failed|fatal): \[(\S+)\](?: => \(item=(.*?)\))?(?: => (\{.*\}))?$")


def outcomes(stdout):
    """{(task, host, item): [(changed, actions), ...]} for every task result that -v printed (a list: items of a
    no_log loop all print as "(censored due to no_log)")."""
    found, task = {}, None
    for line in stdout.splitlines():
        match = TASK_RE.match(line)
        if match:
            task = match.group(1)
            continue
        match = RESULT_RE.match(line)
        if match and task:
            result = json.loads(match.group(4)) if match.group(4) else {}
            found.setdefault((task, match.group(2), match.group(3)), []).append(
                (match.group(1) == "changed", result.get("actions")))
            # litestream_host: one result per host, one entry per app and per credential set in it
            for app in result.get("apps") or []:
                found.setdefault((task + " / app", match.group(2), app["app"]), []).append(
                    (app["changed"], app.get("actions")))
            for cset in result.get("credential_sets") or []:
                found.setdefault((task + " / credential set", match.group(2), cset.get("name")), []).append(
                    (cset["changed"], cset.get("files")))
    return found


def credential_sets(lab, key):
    """The inventory's credential sets with lab-s3's key pair replaced by `key`."""
    import yaml
    sets = yaml.safe_load((lab.state / "group_vars" / "dokku.yml").read_text())["litestream_credential_sets"]
    next(s for s in sets if s["name"] == "lab-s3").update(access_key_id=key["access_key_id"],
                                                          secret_access_key=key["secret_access_key"])
    return sets


def test_check_mode_predicts_the_real_run_task_by_task(replicating, tmp_path):
    lab = replicating
    first, second = lab.hosts[0], lab.hosts[1]
    changes = override_sync_interval(lab, first, "shop-", "2s")
    # the lab's moto checks keys: the rotation is to the lab user's second key (the lab's spare), which the store
    # accepts, so it is a real rotation for the sidecars and not an outage
    spare = json.loads(Path(lab.facts["s3"]["spare_credentials_file"]).read_text())
    assert spare["access_key_id"] != s3_creds(lab)["access_key_id"]
    changes["litestream_credential_sets"] = credential_sets(lab, spare)
    extra = extra_vars_file(tmp_path, "changes.json", changes)
    app_of = {(h["name"], app.split("-")[0]): app for h, app, _k in apps_of(lab)}
    notes = app_of[(second["name"], "notes")]
    lab.ssh(second, f"docker update --restart=no {sidecar(notes)}")
    try:
        predicted = outcomes(provision(lab, "--check", "-v", "-e", extra).stdout)
        real = outcomes(provision(lab, "-v", "-e", extra).stdout)
    finally:
        provision(lab)  # the inventory's own secret and interval again
    assert predicted.keys() == real.keys()
    differ = {key: (predicted[key], real[key]) for key in real if predicted[key] != real[key]}
    assert not differ, "--check predicted differently:\n" + "\n".join(
        f"{key}: predicted {p}, real {r}" for key, (p, r) in sorted(differ.items()))
    def sidecar_actions(host, app):
        [(flag, actions)] = next(v for k, v in real.items()
                                 if k[0].endswith(" / app") and k[1:] == (host["name"], app))
        return actions if flag else []

    for host in (first, second):
        auth = [v[0] for k, v in real.items() if k[0].endswith(" / credential set") and k[1] == host["name"]]
        assert any(flag for flag, _a in auth), f"the rotated secret changed no credential set on {host['name']}"
        actions = sidecar_actions(host, app_of[(host["name"], "shop")])
        assert "write credentials.env" in actions, actions
    assert "create container" in sidecar_actions(first, app_of[(first["name"], "shop")])  # the new interval
    assert sidecar_actions(second, notes) == ["set restart policy unless-stopped (was no)"]
