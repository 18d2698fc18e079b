"""pytest fixtures for plugin authors, loaded through the ``pytest11`` entry point.

Installed with rlm-core, so a third-party plugin's tests can use them without a conftest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from rlm_core.plugins import PluginManager
from rlm_core.testing import RecordingPlugin, capture_events


@pytest.fixture
def rlm_events() -> Iterator[RecordingPlugin]:
    """Every hook call of the runs started during the test, recorded in order."""
    with capture_events() as recorder:
        yield recorder


@pytest.fixture
def rlm_plugin_manager() -> Callable[..., PluginManager]:
    """A factory of isolated plugin managers: only the plugins you pass, no entry points.

    ``strict=True`` is the default here, so a plugin's exception fails the test instead of being
    logged and counted as it would be in production.
    """

    def make(*plugins: object, strict: bool = True, max_plugin_errors: int = 5) -> PluginManager:
        manager = PluginManager(strict=strict, max_plugin_errors=max_plugin_errors)
        for plugin in plugins:
            # Inline even for plugins that ask for a thread: exceptions must fail the test.
            manager.register(plugin, dispatch="inline")
        return manager

    return make
