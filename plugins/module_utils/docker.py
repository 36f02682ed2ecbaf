# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One runner for the docker CLI: the Litestream sidecar's inspect / create / start / stop / remove."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.runner import CommandError, CommandRunner


class DockerError(CommandError):
    pass


class DockerRunner(CommandRunner):
    name = "docker"
    error_class = DockerError

    def inspect_container(self, name):
        """The container's inspect document, or None when there is no such container."""
        rc, out, err = self.run(["container", "inspect", name], allowed_rc=(0, 1))
        if rc != 0:
            if "no such" in err.lower():
                return None
            raise DockerError(["docker", "container", "inspect", name], rc, out, err)
        data = json.loads(out)
        return data[0] if data else None

    def image_id(self, image):
        """The local image id for a reference, or None when the image is not on this host."""
        rc, out, err = self.run(["image", "inspect", "--format", "{{.Id}}", image], allowed_rc=(0, 1))
        if rc != 0:
            if "no such" in err.lower():
                return None
            raise DockerError(["docker", "image", "inspect", image], rc, out, err)
        return out.strip() or None

    def userns_remap(self):
        """True when the daemon remaps users (userns-remap): Dokku then offsets the uids it chowns to."""
        _rc, out, _err = self.run(["info", "--format", "{{json .SecurityOptions}}"])
        try:
            options = json.loads(out or "null") or []
        except ValueError:
            raise DockerError(["docker", "info"], 0, out, "unexpected output of docker info")
        return any(option == "name=userns" for option in options)


def container_summary(doc):
    """The parts of an inspect document a module returns (no environment: it is never needed)."""
    if not doc:
        return {"exists": False}
    state = doc.get("State") or {}
    config = doc.get("Config") or {}
    host = doc.get("HostConfig") or {}
    return {
        "exists": True,
        "id": doc.get("Id"),
        "name": (doc.get("Name") or "").lstrip("/"),
        "image": config.get("Image"),
        "image_id": doc.get("Image"),
        "status": state.get("Status"),
        "running": bool(state.get("Running")),
        "restart_policy": (host.get("RestartPolicy") or {}).get("Name"),
        "labels": config.get("Labels") or {},
    }
