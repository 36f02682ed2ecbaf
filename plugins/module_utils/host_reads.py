# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a Dokku host is, read once for a whole run: Dokku's version, every app's mounts (one dokku call for
all apps, or one per app concurrently), and every sidecar and image in one `docker inspect`; and `each()`, the bounded pool that
both these reads and litestream_host's per-app writes run in."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import threading

try:
    from concurrent.futures import ThreadPoolExecutor
except ImportError:  # pragma: no cover - Python 2 has no concurrent.futures: read one app after the other
    ThreadPoolExecutor = None

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerError


def each(work, items, parallel):
    """[work(item) for item in items], up to `parallel` at a time in threads, the results in the items' order.

    One after the other when `parallel` is 1, for a single item, or on Python 2 (no concurrent.futures). An
    exception of `work` is raised here (the first in the items' order) once every started item has ended."""
    items = list(items)
    if ThreadPoolExecutor is None or parallel <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(parallel, len(items))) as pool:
        return list(pool.map(work, items))


def own_runner(runner, commands):
    """A copy of a dokku or docker runner that records into `commands` (a thread's own list) and shares the rest,
    the Dokku version it read included."""
    mine = copy.copy(runner)
    mine.commands = commands
    return mine


class HostReads:
    """The reads StoragePlan asks for (version, userns(), app_running()), cached per run and safe to share
    between the threads of a run."""

    def __init__(self, dokku, docker):
        self.dokku = dokku
        self.docker = docker
        self._userns = None
        self._report = None  # every app's mounts (storage:report), read once when first needed
        self._lock = threading.Lock()

    @property
    def version(self):
        return self.dokku.version

    def userns(self):
        with self._lock:  # `docker info` once, whichever app's thread asks first
            if self._userns is None:
                self._userns = self.docker.userns_remap()
        return self._userns

    def app_running(self, app):
        return self.dokku.app_running(app)

    def storage_report(self):
        """{app: mounts} of every app (storage:report), once per run: whether a directory is another app's."""
        with self._lock:
            if self._report is None:
                self._report = self.dokku.storage_report()
        return self._report

    def for_app(self, dokku):
        """The same reads, but app_running() through `dokku` (the app's own runner, which records the read in
        the app's commands)."""
        return AppReads(self, dokku)

    def read_at_once(self, apps, containers, images, parallel=4, mounts=True, inspect=True, userns=True):
        """mounts(apps) (the dokku reads), inspect(containers, images) and userns() (`docker info`) side by side,
        each in a thread of its own: they are independent, and a no-change run is little else. Returns (mounts,
        confirmed, inspected containers, image ids); the commands are recorded in that fixed order, whatever
        finished first, and the Dokku version read stays cached here."""
        dokku_commands, docker_commands, info_commands = [], [], []
        mine = HostReads(own_runner(self.dokku, dokku_commands), own_runner(self.docker, docker_commands))
        info = HostReads(None, own_runner(self.docker, info_commands))
        jobs = [lambda: mine.mounts(apps, parallel) if mounts else ({}, True),
                lambda: mine.inspect(containers, images) if inspect else ({}, {}),
                lambda: info.userns() if userns else None]
        (found, confirmed), (docs, image_ids), remapped = each(lambda job: job(), jobs, len(jobs))
        self.dokku._version = mine.dokku._version or self.dokku._version
        self.dokku.commands.extend(dokku_commands)
        self.docker.commands.extend(docker_commands + info_commands)
        if userns:
            self._userns = remapped
        return found, confirmed, docs, image_ids

    def mounts(self, apps, parallel=4):
        """({app: [(host, container, options)] or None (missing)}, confirmed).

        For two apps or more, one `storage:report` covers every app (confirmed False): an app it does not show,
        or shows without the mount it should have, must be read again with storage:list before anything is
        written (StoragePlan's `confirm`), so only "nothing to do" is ever decided on the report alone. For one
        app, or when the report answers nothing, `storage:list` per app, `parallel` at a time (confirmed True).
        The reads are recorded in the apps' order."""
        apps = list(dict.fromkeys(apps))
        self.dokku.version  # once, before the threads: they all need it
        if len(apps) > 1:
            reported = self.storage_report()
            if reported:
                return dict((app, reported.get(app)) for app in apps), False

        def read(app):
            commands = []
            return own_runner(self.dokku, commands).storage_mounts(app), commands

        found = each(read, apps, parallel)
        for _mounts, commands in found:
            self.dokku.commands.extend(commands)
        return dict(zip(apps, (mounts for mounts, _commands in found))), True

    def inspect(self, containers, images):
        """({container name: inspect document or None}, {image reference: image id or None}) in one docker call."""
        containers, images = list(dict.fromkeys(containers)), list(dict.fromkeys(images))
        found_containers = dict((name, None) for name in containers)
        found_images = dict((ref, None) for ref in images)
        if not containers and not images:
            return found_containers, found_images
        rc, out, err = self.docker.run(["inspect", "--type", "container"] + containers, allowed_rc=(0, 1)) \
            if containers and not images else self.docker.run(["inspect"] + containers + images, allowed_rc=(0, 1))
        try:
            docs = json.loads(out or "[]") or []
        except ValueError:
            raise DockerError(["docker", "inspect"], rc, out, err)
        unexplained = [line for line in (err or "").splitlines()
                       if line.strip() and "no such object" not in line.lower() and "no such container" not in line.lower()]
        if rc != 0 and unexplained:
            raise DockerError(["docker", "inspect"], rc, out, err)
        for doc in docs:
            if "State" in doc:  # a container
                name = (doc.get("Name") or "").lstrip("/")
                if name in found_containers:
                    found_containers[name] = doc
            else:
                for ref in images:
                    if image_matches(doc, ref):
                        found_images[ref] = doc.get("Id")
        missing = [ref for ref in images if found_images[ref] is None and ref_could_be_any(ref)]
        for ref in missing:  # a reference this parser cannot match by name (a short id): ask docker itself
            found_images[ref] = self.docker.image_id(ref)
        return found_containers, found_images


class AppReads:
    """HostReads as one app's StoragePlan sees it: the host's cached reads, its own app_running()."""

    def __init__(self, host, dokku):
        self.host = host
        self.dokku = dokku

    @property
    def version(self):
        return self.host.version

    def userns(self):
        return self.host.userns()

    def app_running(self, app):
        return self.dokku.app_running(app)

    def storage_report(self):
        return self.host.storage_report()


def normalize_ref(ref):
    """'litestream/litestream' -> 'litestream/litestream:latest'; 'docker.io/library/x:1' -> 'x:1'."""
    name, digest = ref.split("@", 1) if "@" in ref else (ref, None)
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if name.startswith("library/"):
        name = name[len("library/"):]
    if digest:
        return "%s@%s" % (name, digest)
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else name + ":latest"


def image_matches(doc, ref):
    wanted = normalize_ref(ref)
    if ref.startswith("sha256:") and (doc.get("Id") or "").startswith(ref):
        return True
    names = [normalize_ref(tag) for tag in (doc.get("RepoTags") or [])]
    names += [normalize_ref(digest) for digest in (doc.get("RepoDigests") or [])]
    return wanted in names


def ref_could_be_any(ref):
    """A bare hex string may be a short image id, which only docker resolves."""
    return all(c in "0123456789abcdef" for c in ref) and len(ref) >= 4
