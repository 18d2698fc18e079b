"""A plugin module whose dependency is not installed."""

from __future__ import annotations

import rlm_test_backend_that_is_not_installed  # noqa: F401
