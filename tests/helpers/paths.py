"""Where the tests find files that live outside the package: the shared ontologies."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _shared_ontologies() -> Path:
    """``shared/ontologies`` beside the checkout, or beside any folder above it (a git worktree
    under ``wt/`` sees the same files as the main checkout)."""
    for folder in REPO.parents:
        candidate = folder / "shared" / "ontologies"
        if candidate.is_dir():
            return candidate.resolve()
    return REPO.parent / "shared" / "ontologies"


SHARED_ONTOLOGIES = _shared_ontologies()
