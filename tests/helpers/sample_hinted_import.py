"""A plugin module whose backend is missing and that says, itself, how to install it."""

from __future__ import annotations

raise ImportError(
    "the hinted tracker needs its backend: pip install -e ./hinted-backend", name="hinted_backend"
)
