# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared documentation for the modules that write or read Litestream credential sets."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # Where the credential sets live; litestream_auth writes them, the replica and restore modules read them.
    DOCUMENTATION = r"""
options:
  credentials_root:
    description:
      - Directory that holds the credential sets, one sub-directory per set name.
      - Each set is stored as C(<credentials_root>/<name>/credentials.json) (and C(ssh_key) for SFTP),
        owned by root, directory mode C(0700), file mode C(0600).
      - The default is the directory the dokku-litestream plugin uses for its own two files, so both can
        live side by side during a migration.
      - An absolute path, normalised; C(..), C(:) and control characters are refused. C(~) and C($VAR) are
        not expanded (the option is a string, not a path, on purpose).
      - M(dokku_sqlite.litestream.litestream_auth) also refuses C(/) and system directories such as C(/etc),
        C(/var/lib) or C(/tmp), since it sets the directory's mode and removes sets inside it.
    type: str
    default: /var/lib/dokku/config/litestream/credentials
"""
