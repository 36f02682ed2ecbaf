# -*- coding: utf-8 -*-
# Copyright: contributors to dokku_sqlite.litestream
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_reads: one `docker inspect` for every sidecar and image, as docker answers it (missing ones on stderr)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import host_reads
from ansible_collections.dokku_sqlite.litestream.plugins.module_utils.docker import DockerError


class Docker:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def run(self, args, allowed_rc=(0,)):
        self.calls.append(args)
        return self.answers[tuple(args[:2])]

    def image_id(self, ref):
        self.calls.append(["image", "inspect", ref])
        return "sha256:short"


CONTAINER = {"Id": "c1", "Name": "/dokku.litestream.blog", "State": {"Running": True}, "Config": {}}
IMAGE = {"Id": "sha256:abc", "RepoTags": ["litestream/litestream:0.5.17"], "RepoDigests": []}


def test_found_and_missing_objects_from_one_call():
    # docker inspect prints the objects it found and exits 1 naming the others on stderr
    docker = Docker({("inspect", "dokku.litestream.blog"): (
        1, json.dumps([CONTAINER, IMAGE]), "Error: No such object: dokku.litestream.shop\n")})
    reads = host_reads.HostReads(dokku=None, docker=docker)
    containers, images = reads.inspect(["dokku.litestream.blog", "dokku.litestream.shop"],
                                       ["litestream/litestream:0.5.17", "docker.io/litestream/litestream:0.5.17"])
    assert containers == {"dokku.litestream.blog": CONTAINER, "dokku.litestream.shop": None}
    assert images == {"litestream/litestream:0.5.17": "sha256:abc", "docker.io/litestream/litestream:0.5.17": "sha256:abc"}
    assert docker.calls == [["inspect", "dokku.litestream.blog", "dokku.litestream.shop", "litestream/litestream:0.5.17",
                             "docker.io/litestream/litestream:0.5.17"]]


def test_another_error_is_not_taken_for_a_missing_object():
    docker = Docker({("inspect", "dokku.litestream.blog"): (1, "[]", "permission denied while trying to connect\n")})
    with pytest.raises(DockerError):
        host_reads.HostReads(None, docker).inspect(["dokku.litestream.blog"], ["x:1"])


@pytest.mark.parametrize("ref, tags, digests, expected", [
    ("litestream/litestream", ["litestream/litestream:latest"], [], True),
    ("library/alpine:3", ["alpine:3"], [], True),
    ("litestream/litestream:0.5.16", ["litestream/litestream:0.5.17"], [], False),
    ("litestream/litestream@sha256:feed", [], ["litestream/litestream@sha256:feed"], True),
    ("127.0.0.1:5000/ls:1", ["127.0.0.1:5000/ls:1"], [], True),
])
def test_image_matches(ref, tags, digests, expected):
    assert host_reads.image_matches({"Id": "sha256:x", "RepoTags": tags, "RepoDigests": digests}, ref) is expected


def test_a_short_id_is_asked_of_docker_itself():
    docker = Docker({("inspect", "dokku.litestream.blog"): (1, "[]", "Error: No such object: abcd12\n")})
    _containers, images = host_reads.HostReads(None, docker).inspect(["dokku.litestream.blog"], ["abcd12"])
    assert images == {"abcd12": "sha256:short"} and docker.calls[-1] == ["image", "inspect", "abcd12"]
