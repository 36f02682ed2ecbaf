"""Make this checkout importable as ansible_collections.dokku_sqlite.litestream."""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_COLLECTIONS = REPO / "build" / "collections"
_LINK = _COLLECTIONS / "ansible_collections" / "dokku_sqlite" / "litestream"
if not _LINK.exists():
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    _LINK.symlink_to(REPO)
if str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))


# Ownership claims (claim_store.py) of the replicas unit tests name (S3 on 127.0.0.1:9000, sftp servers nobody
# runs) are kept in the real file store, under a directory per test: the S3 and sftp stores themselves are proven
# against real servers in tests/integration/test_claim_store_*.py.
import pytest  # noqa: E402

from ansible_collections.dokku_sqlite.litestream.plugins.module_utils import claim_store  # noqa: E402


class RootedClaims(claim_store.FileClaims):
    """The file store with every path below one directory (an S3 key or a server path becomes a file there)."""

    def __init__(self, root):
        self.root = str(root)

    def _at(self, path):
        return "%s/%s" % (self.root, path.lstrip("/"))

    def names(self, directory):
        return super().names(self._at(directory))

    def read(self, path):
        return super().read(self._at(path))

    def create(self, path, data):
        return super().create(self._at(path), data)


@pytest.fixture(autouse=True)
def claims_on_disk(monkeypatch, tmp_path_factory):
    real = claim_store.store_for
    root = tmp_path_factory.mktemp("replica-stores")

    def store_for(fields, credentials, timeout=10):
        real(fields, credentials, timeout)  # Unsupported as the real one says it
        # a file replica's directory too: unit tests name paths of this machine that are not theirs
        return RootedClaims(root / (fields.get("bucket") or fields.get("host") or "host-directory"))
    monkeypatch.setattr(claim_store, "store_for", store_for)
    return root


@pytest.fixture(scope="session")
def built_tarball(tmp_path_factory):
    """The collection as `ansible-galaxy collection build` makes it, built once per test run."""
    import subprocess
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([Path(sys.executable).parent / "ansible-galaxy", "collection", "build", "--output-path",
                           str(out), str(REPO)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    built = list(out.glob("*.tar.gz"))
    assert len(built) == 1
    return built[0]
