# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a restored database goes and what it must pass: the options litestream_restore and litestream_standby
share (restore_plan.restore_argument_spec)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  dest:
    description:
      - Directory on the host to restore into, for example a Dokku storage directory.
      - Created when missing (with missing parents), mode C(0755), owned by O(owner) and O(group).
        An existing directory keeps its mode and owner.
      - An absolute path, normalised (so two spellings of one directory are one restore target); C(..), C(:)
        (it is part of a docker mount) and control characters are refused. C(~) and C($VAR) are not expanded.
      - Litestream writes into a new root-only (C(0700)) directory next to O(dest), in the nearest directory above
        it on its filesystem that the app's user (the owner of O(dest)) cannot write, or inside O(dest) when there is
        none (O(dest) a mount of its own). This module opens it, O(dest) and every directory it makes once, without
        following a link, and then uses them only through those handles; a symlink at O(dest) or where the restored
        file should be is refused.
    type: str
    required: true
  name:
    description:
      - File name of the restored database in O(dest). Defaults to O(database).
    type: str
  owner:
    description:
      - Owner (uid) of the restored database and of the directories this module creates, from 0 to 2147483646.
      - Without O(owner) and O(chown), 32767, the uid of Dokku's herokuish user.
    type: int
  group:
    description:
      - Group (gid) of the restored database and of the directories this module creates, from 0 to 2147483646.
      - Without O(group) and O(chown), 32767.
    type: int
  chown:
    description:
      - The owner as the app's storage directory has it, in the words of M(dokku_sqlite.litestream.dokku_storage)'s
        O(dokku_sqlite.litestream.dokku_storage#module:chown) (one list of names and uids serves both modules),
        V(herokuish) (32767), V(heroku) (1000), V(paketo) (2000), V(root) (0), a numeric uid, or V(false).
      - V(false) gives the restored database the owner and group of O(dest), as C(storage:ensure-directory
        --chown false) leaves the directory's owner alone (root when O(dest) does not exist yet).
      - When Docker remaps users (C(userns-remap), read from C(docker info)), 165536 is added to the uid, as Dokku
        does when it chowns the storage directory.
      - Mutually exclusive with O(owner) and O(group).
    type: str
  mode:
    description:
      - Mode of the restored database, as a quoted octal string such as V('0644') or V('0600').
      - A number is taken as the mode itself (YAML turns an unquoted V(0644) into 420) and must be at most
        V(0o777); a larger one, such as an unquoted V(644) (octal 1204), is refused with a hint to quote it.
      - The setuid, setgid and sticky bits are refused.
    type: raw
    default: '0644'
  verify:
    description: What the restored file must pass before it is put in place.
    type: dict
    default: {}
    suboptions:
      integrity:
        description:
          - V(quick) runs C(PRAGMA quick_check), V(full) runs C(PRAGMA integrity_check) (slow on big databases),
            V(none) skips the check.
          - The file is checked once, by this module with the host's Python sqlite3, whose messages are RV(integrity).
            Litestream is not asked for its own C(-integrity-check) as well - the same pragma on the same file
            once more, which took Litestream (SQLite translated to Go) 1.2 to 1.7 times as long as this check.
        type: str
        choices: [full, quick, none]
        default: quick
      tables:
        description: Tables that must exist.
        type: list
        elements: str
        default: []
      min_rows:
        description:
          - Minimum row count per table, a mapping of table name to a whole number from 0 to 9223372036854775807,
            for example C(events) to C(1).
          - A table listed here must exist.
        type: dict
        default: {}
  network:
    description: Docker network of the restore container.
    type: str
    default: host
"""
