# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of the host, drill and health cores, without Ansible (the modules' tests run them whole)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import drill_run, errors, health_run, host_core


def test_host_locks_are_taken_in_one_order():
    entries = [({"app": "web"}, None, None), ({"app": "api"}, None, None), ({"app": "web"}, None, None)]
    params = {"credential_sets": [{"name": "default"}]}
    assert host_core.host_locks({"credentials", "storage"}, params, entries) == [
        ("credentials", "the credential sets"), ("app-api", "app api"), ("app-web", "app web")]
    # no set to write, or the part not run: no credentials lock
    assert host_core.host_locks({"credentials"}, {"credential_sets": []}, entries)[0] == ("app-api", "app api")
    assert host_core.host_locks({"sidecars"}, params, [])[:1] == []


def test_failed_apps_message():
    ok = dict(app="a", failed=False)
    bad = dict(app="b", failed=True, msg="app b: boom")
    assert host_core.failed_apps_message([ok], "h1") is None
    assert host_core.failed_apps_message([ok, bad], "h1") == (
        "1 of 2 apps failed on h1 (the others were converged): app b: boom")
    why = "the storage of b failed"
    skipped = [dict(ok, sidecar_skipped=why), dict(bad, sidecar_skipped=why)]
    assert host_core.failed_apps_message(skipped, "h1") == (
        "1 of 2 apps failed on h1 (the other apps' storage was converged, no sidecar was changed): app b: boom")


@pytest.mark.parametrize("exc, message", [
    (errors.AppFailure("app 'b' already mounts /x at /y"), "app 'b' already mounts /x at /y"),
    (errors.InvalidValue("replica.path: refused"), "app b: replica.path: refused"),
    (IOError("disk full"), "app b: disk full"),
])
def test_an_app_failure_names_its_app(exc, message):
    assert host_core.app_failure_message("b", exc) == message


def test_storage_actions_leave_the_reads_out():
    commands = ["dokku --quiet ps:report b --running", "dokku storage:list b --format json",
                "dokku storage:mount b /s:/app  # mounted"]
    assert host_core.storage_actions(commands) == ["dokku storage:mount b /s:/app"]


def test_drill_summary():
    records = [dict(status="ok"), dict(status="failed"), dict(status="ok")]
    assert drill_run.summary(records) == dict(total=3, ok=2, failed=1)
    sets = [dict(name="a", state="absent"), dict(name="b", state="present")]
    assert drill_run.sets_to_write({"credential_sets": sets}) == [dict(name="b", state="present")]


@pytest.mark.parametrize("text, state", [
    (None, {}), ("", {}), ('{"shop": {"restarts": 1}}', {"shop": {"restarts": 1}}), ("[1]", {}), ("{no json", None),
])
def test_health_state_document(text, state):
    assert health_run.parse_state(text) == state
