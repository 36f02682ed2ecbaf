# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""No secret in any output: every module is built with SecretMaskingModule, which adds each parameter value that
may carry a secret to no_log_values the moment the parameters are read. Ansible then masks those values in all the
module returns (result, msg, warnings, exception text and the echoed invocation), also when AnsibleModule's own
argument checks fail, which echo the invocation before the module's code runs.

What may carry a secret is decided from the values and the declarations, never from a list of option names:
- in every string, at any depth: the user part of each URL (as validate.no_credentials_in_url reads it) and the
  value of every query parameter but the few known harmless ones (validate.HARMLESS_QUERY_KEYS: region, ...): a
  store's signature or password may come under any name (?sig=, ?pwd=);
- the whole value of an option declared no_log=True, and in raw entries (litestream_apps, peers, results) of a key
  that some option spec of the collection declares no_log=True, or whose name looks secret.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_type_dict

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import backends
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import litestream as ls
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import validate as v
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.credentials import auth_argument_spec
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.dokku import storage_argument_spec

# the name before '@' of an sftp URL is the login and of an abs URL the storage account: only what follows ':' is
# a password; with every other scheme a bare name before '@' is a token (https://TOKEN@host)
USER_SCHEMES = tuple(backend.name for backend in backends.BACKENDS if backend.url_user)
# a key's name decides only for raw entries' keys (is_secret_key); every query value but a harmless key's is masked
SECRET_NAME_RE = re.compile(r"(^|[-_])pass(word|wd|phrase)?($|[-_])|secret|token|private[-_]?key|account[-_]?key|"
                            r"api[-_]?key|signature", re.I)
# Ansible masks a no_log value wherever it appears as a substring: a shorter one would blank ordinary words
MIN_LENGTH = 4


def raw_entry_specs():
    """The specs inventory.py checks raw entries (litestream_apps, peers) against: their no_log declarations
    decide which keys of a raw entry are secret."""
    return (ls.sidecar_argument_spec(), storage_argument_spec(), auth_argument_spec())


def declared_no_log(specs):
    """Option name -> its no_log declaration, over the specs and their suboptions (True wins over False)."""
    declared = {}
    pending = list(specs)
    while pending:
        for name, option in pending.pop().items():
            if "no_log" in option:
                declared[name] = declared.get(name, False) or bool(option["no_log"])
            if option.get("options"):
                pending.append(option["options"])
    return declared


def in_prose(userinfo):
    """The user part of a URL that sits in free text (a drill record's message quoting a script): from the last
    whitespace on when what precedes the '@' reads as prose (': ' or a line break), so a message is not masked from
    its start to an '@' in it. A password holding a space, in a URL on its own, is still masked whole."""
    if ": " in userinfo or "\n" in userinfo:
        return re.split(r"\s", userinfo)[-1]
    return userinfo


def credential_parts(userinfo, scheme):
    """The secrets of a URL's user part: all of it and the password after ':' (masking both keeps
    s3://********@bucket readable wherever the whole URL shows)."""
    userinfo = in_prose(userinfo)
    if ":" in userinfo:
        return [userinfo, userinfo.partition(":")[2]]
    if scheme is None or scheme in USER_SCHEMES:
        return []
    return [userinfo]


def schemeless_secrets(text):
    """user:password@host without a scheme; a bare user@host (an address) or an image digest is none."""
    userinfo, at, rest = text.rpartition("@")
    if not at or v.DIGEST_RE.fullmatch(rest):  # name:tag@sha256:<hex>: that ':' is no password separator
        return []
    return credential_parts(userinfo, None)


def url_secrets(text):
    """The credentials of every URL in a string, query strings included (?endpoint=https://KEY:SECRET@host).

    As validate.no_credentials_in_url reads it, a URL's user part runs from its scheme to the last '@' (secrets are
    not URL-encoded and may hold '/', '?', '#'). When another URL follows that scheme and nothing before it looks
    like a password (no ':'), the '@' is the inner URL's and each is read on its own, so that the outer URL stays
    readable.
    """
    marks = list(v.SCHEME_PREFIX_RE.finditer(text))
    if not marks:
        return schemeless_secrets(text)
    found = []
    for index, mark in enumerate(marks):
        scheme = mark.group()[:-3].lower()
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        own = text[mark.end():end]
        if "@" in own:
            found += credential_parts(own.rpartition("@")[0], scheme)
        whole = text[mark.end():].rpartition("@")[0]
        if len(whole) > len(own) and ":" in own:
            found += credential_parts(whole, scheme)
    return found


def query_secrets(text):
    """The value of every query parameter but a harmless one (validate.HARMLESS_QUERY_KEYS), nested ones too
    (?endpoint=https://h/?token=X): whole, and up to a '#' (where a URL's fragment would start)."""
    found = []
    for name, start, end in v.query_values(text):
        if name not in v.HARMLESS_QUERY_KEYS:
            value = text[start:end]
            found += [value, value.partition("#")[0]]
    return found


def string_secrets(text, secret):
    """The secrets in one string: its URL credentials and query values, and all of it (and each line: an error may
    quote one line of a key) when it is a secret's value."""
    found = url_secrets(text)
    found += query_secrets(text)
    if secret:
        found += [text] + [line.strip() for line in text.splitlines()]
    return found


def is_secret_key(key, option, declared):
    """A declared option is secret by its own no_log; a raw entry's key by the collection's declarations, else by
    its name (an unknown key such as a misspelt secret_acess_key is echoed in its refusal)."""
    if option is not None:
        return bool(option.get("no_log"))
    if key in declared:
        return declared[key]
    return bool(SECRET_NAME_RE.search(key))


def options_by_name(option):
    """The suboptions of a declaration, by name and alias; {} for a raw value."""
    named = {}
    for name, sub in ((option or {}).get("options") or {}).items():
        named[name] = sub
        for alias in sub.get("aliases") or ():
            named[alias] = sub
    return named


def takes_dict(option):
    """Whether Ansible turns a string given for this option into a dict (JSON or k=v), with its own escapes."""
    return bool(option) and (option.get("type") == "dict" or option.get("elements") == "dict")


def parsed_dict(text):
    try:
        return check_type_dict(text)
    except (TypeError, ValueError):
        return None


def walk_params(params, argument_spec, declared):
    """Every (string, is a secret's value) in the parameters, keys included, with the declaration each sits
    under. Iterative: a deep structure must not end the walk in a RecursionError."""
    pending = [(params, {"type": "dict", "options": argument_spec}, False)]
    while pending:
        value, option, secret = pending.pop()
        if isinstance(value, dict):
            options = options_by_name(option)
            for key, item in value.items():
                key = str(key)
                if key.startswith("_ansible_"):  # Ansible's own settings, never a user's value
                    continue
                sub = options.get(key)
                pending.append((key, None, False))
                pending.append((item, sub, secret or is_secret_key(key, sub, declared)))
        elif isinstance(value, (list, tuple)):
            pending.extend((item, option, secret) for item in value)
        elif value is not None and not isinstance(value, bool):
            text = str(value)
            yield text, secret
            if isinstance(value, str) and takes_dict(option):
                pending.append((parsed_dict(text), dict(option, type="dict"), secret))


def param_secrets(params, argument_spec):
    """The values to add to no_log_values: every part of the parameters that may carry a secret (module doc)."""
    declared = declared_no_log(raw_entry_specs() + (argument_spec,))
    found = set()
    for text, secret in walk_params(params, argument_spec, declared):
        found.update(string_secrets(text, secret))
    return set(value for value in found if len(value) >= MIN_LENGTH)


def all_strings(params):
    """Every string of the parameters: what to mask when the walk itself failed (a bug must not echo a secret)."""
    found = set()
    pending = [params]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
        elif isinstance(value, str) and len(value) >= MIN_LENGTH:
            found.add(value)
    return found


class SecretMaskingModule(AnsibleModule):
    """AnsibleModule whose no_log_values hold param_secrets() from the moment the parameters are read.

    _load_params is the one hook both ansible-core 2.19 and 2.21 call between creating no_log_values and checking
    the arguments (a failed check calls fail_json, which echoes the invocation, from inside __init__).
    """

    def _load_params(self):
        super(SecretMaskingModule, self)._load_params()
        try:
            secrets = param_secrets(self.params, self.argument_spec)
        except Exception:  # whatever broke the walk, no secret may be echoed
            secrets = all_strings(self.params)  # mask too much rather than echo a secret
        self.no_log_values.update(secrets)
