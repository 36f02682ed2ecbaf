# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One error hierarchy: every error the module_utils raise for the user derives from errors.CollectionError, of the
right kind, so each module catches them in one place."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import (
    auth_core, credentials, docker, dokku, errors, first_sync, guarded, litestream, lock, owned, report, restore_core,
    runner, sidecar_reads, storage_core, validate)


@pytest.mark.parametrize("cls, kind", [
    (validate.InvalidValue, errors.InvalidValue),
    (litestream.ConfigError, errors.InvalidValue),
    (credentials.MissingCredentials, errors.MissingCredentials),
    (credentials.MissingCredentials, litestream.ConfigError),
    (runner.CommandError, errors.CommandFailed),
    (dokku.DokkuError, errors.CommandFailed),
    (docker.DockerError, errors.CommandFailed),
    (guarded.OutsideRoot, errors.UnsafePath),
    (owned.NotOurs, errors.UnsafePath),
    (storage_core.AppFailure, errors.AppFailure),
    (auth_core.CredentialFailure, errors.CollectionError),
    (lock.LockTimeout, errors.CollectionError),
    (report.ReportError, errors.CollectionError),
    (restore_core.RestoreFailed, errors.CollectionError),
    (first_sync.FirstSyncFailed, errors.CollectionError),
    (sidecar_reads.Refused, errors.CollectionError),
])
def test_each_error_is_of_its_kind(cls, kind):
    assert issubclass(cls, kind)
    assert issubclass(kind, errors.CollectionError)


def test_the_old_names_are_the_same_classes():
    # hundreds of call sites raise v.InvalidValue; modules import AppFailure from storage_core
    assert validate.InvalidValue is errors.InvalidValue
    assert storage_core.AppFailure is errors.AppFailure


def test_invalid_values_stay_value_errors():
    # callers that catch ValueError (parsers, health_core) still catch them
    assert issubclass(errors.InvalidValue, ValueError)
    assert issubclass(sidecar_reads.Refused, ValueError)


def test_an_error_names_its_option_when_known():
    exc = errors.InvalidValue("app: 'X' is not a Dokku app name", option="app")
    assert str(exc) == "app: 'X' is not a Dokku app name" and exc.option == "app"
    assert errors.CollectionError("no option").option is None
    with pytest.raises(errors.InvalidValue) as caught:
        validate.app_name("Not An App")
    # validate's messages start with the option: that is the option when none was given
    assert str(caught.value).startswith("app: ") and caught.value.option == "app"
    assert errors.InvalidValue("replica.path: '/etc' is a system directory").option == "replica.path"
    assert errors.InvalidValue("credential set 'x' not found").option is None
    assert errors.InvalidValue("replica.path: x", option="replica").option == "replica"


def test_the_subclasses_keep_their_own_fields():
    exc = auth_core.CredentialFailure("cannot write /x", "default", "/x")
    assert (str(exc), exc.name, exc.path, exc.option) == ("cannot write /x", "default", "/x", None)
    failed = runner.CommandError(["dokku", "apps:list"], 1, "", " !     boom\n")
    assert failed.rc == 1 and str(failed).startswith("'dokku apps:list' failed (exit 1)")


@pytest.mark.parametrize("exc, message", [
    (errors.AppFailure("app 'shop' does not exist on this host"), "app 'shop' does not exist on this host"),
    (errors.AppFailure("app: 'X' is not a Dokku app name"), "app: 'X' is not a Dokku app name"),
    (errors.UnsafePath("refusing to remove /etc"), "app shop: refusing to remove /etc"),
    (OSError(13, "Permission denied"), "app shop: [Errno 13] Permission denied"),
])
def test_an_app_failure_names_the_app_once(exc, message):
    assert errors.app_message("shop", exc) == message
