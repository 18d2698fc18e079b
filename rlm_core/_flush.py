"""``rlm_core.flush(timeout)``: wait for the plugins' background work, for library users.

Trackers hand their work to worker threads and return (``run_end`` included), so a script that
exits right after ``run()`` relies on the exit-time flush. ``flush`` is the explicit, bounded
wait: every plugin still alive that has a ``flush(timeout)`` attribute, then every open
:class:`~rlm_core.delivery.BackgroundDelivery` (so work of a plugin object that is gone, whose
worker still holds queued items, is waited for too).
"""

from __future__ import annotations

import contextlib
import inspect
import time
import weakref
from collections.abc import Callable, Iterable

from rlm_core.delivery import flush_open_helpers
from rlm_core.logs import get_logger

__all__ = ["flush", "settle", "watch"]

log = get_logger("rlm.flush")

DEFAULT_TIMEOUT = 10.0
_plugins: weakref.WeakValueDictionary[int, object] = weakref.WeakValueDictionary()


def watch(plugin: object) -> None:
    """Remember ``plugin`` (weakly) if it has a ``flush``; the plugin manager calls this."""
    if callable(getattr(plugin, "flush", None)):
        with contextlib.suppress(TypeError):  # not weak-referenceable: its helpers still are
            _plugins[id(plugin)] = plugin


def flush(timeout: float | None = None) -> bool:
    """Wait until the plugins delivered what they were given, at most ``timeout`` seconds in
    all (None: each plugin's own default, else 10 s each). True when nothing is left on its
    way; False when something is (the plugin concerned reports it)."""
    deadline = None if timeout is None else time.monotonic() + timeout

    def left() -> float | None:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    delivered = _flush_each(list(_plugins.values()), left)
    return flush_open_helpers(left()) and delivered


def settle(plugins: Iterable[object], timeout: float | None = None) -> bool:
    """For a command about to exit: flush ``plugins`` (bounded as in :func:`flush`), then
    ``close`` each one that has a ``close(timeout)``, so what is still on its way is put
    somewhere safe (and reported) before the locations are printed. True when every plugin
    delivered everything."""
    chosen = list(plugins)
    deadline = None if timeout is None else time.monotonic() + timeout

    def left() -> float | None:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    delivered = _flush_each(chosen, left)
    for plugin in chosen:
        close = getattr(plugin, "close", None)
        if callable(close):
            try:
                close(0.0)
            except Exception as exc:
                log.warning("plugin %s: close failed: %s: %s", plugin, type(exc).__name__, exc)
    return delivered


def _flush_each(plugins: list[object], left: Callable[[], float | None]) -> bool:
    delivered = True
    for plugin in plugins:
        function = getattr(plugin, "flush", None)
        if not callable(function):
            continue
        try:
            ok = _call_flush(function, left())
        except Exception as exc:
            log.warning("plugin %s: flush failed: %s: %s", plugin, type(exc).__name__, exc)
            ok = False
        delivered = ok is not False and delivered
    return delivered


def _call_flush(function: Callable[..., object], timeout: float | None) -> object:
    """``function(timeout)``; without a timeout, the plugin's own default when it has one."""
    if timeout is not None:
        return function(timeout)
    try:
        inspect.signature(function).bind()
    except (TypeError, ValueError):
        return function(DEFAULT_TIMEOUT)
    return function()
