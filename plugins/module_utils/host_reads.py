# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a Dokku host is, read once for a whole run: Dokku's version, each app's mounts (one dokku call per
app, concurrently), and every sidecar and image in one `docker inspect`."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

try:
    from concurrent.futures import ThreadPoolExecutor
except ImportError:  # pragma: no cover - Python 2 has no concurrent.futures: read one app after the other
    ThreadPoolExecutor = None

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerError


class HostReads:
    """The reads StoragePlan asks for (version, userns(), app_running()), cached per run."""

    def __init__(self, dokku, docker):
        self.dokku = dokku
        self.docker = docker
        self._userns = None

    @property
    def version(self):
        return self.dokku.version

    def userns(self):
        if self._userns is None:
            self._userns = self.docker.userns_remap()
        return self._userns

    def app_running(self, app):
        return self.dokku.app_running(app)

    def mounts(self, apps, parallel=4):
        """{app: [(host, container, options)] or None (missing)}: `storage:list` per app, `parallel` at a time
        (each is its own dokku process, reading only)."""
        apps = list(dict.fromkeys(apps))
        self.dokku.version  # once, before the threads: they all need it
        if ThreadPoolExecutor is None or parallel <= 1 or len(apps) <= 1:
            return dict((app, self.dokku.storage_mounts(app)) for app in apps)
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            return dict(zip(apps, pool.map(self.dokku.storage_mounts, apps)))

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
