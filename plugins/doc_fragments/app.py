# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The app and its storage directory, as every per-app module names them.
    DOCUMENTATION = r"""
options:
  app:
    description:
      - Name of the Dokku app (lowercase alphanumerics, dots and hyphens, starting with a letter or digit, as Dokku
        requires), at most 63 characters (Dokku uses it as a DNS label).
      - Checked before anything else, whatever the O(ignore:state).
    type: str
    required: true
  storage:
    description:
      - Name of the app's storage directory under C(/var/lib/dokku/data/storage). Only C([A-Za-z0-9_-]), at most
        200 characters.
      - Defaults to C(<app>--db), the layout the dokku-litestream plugin documents.
    type: str
"""
