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
