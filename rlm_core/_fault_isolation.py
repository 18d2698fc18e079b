"""Fault-isolated hook implementations and the cheap emitting side of the plugin manager.

pluggy stops a hook call at the first implementation that raises. Trackers must not take each
other (or the run) down, so every implementation is registered through :func:`guard`, a thin
wrapper that catches, counts and logs its exceptions and blocks a plugin after too many failures
in a row. Hooks nobody implements are bound to a no-op, so emitting them costs one call.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from rlm_core.logs import get_logger

__all__ = ["HookRelay", "PluginHealth", "guard", "noop"]

error_log = get_logger("rlm.plugins")
trace_log = get_logger("rlm.trace")


class PluginHealth:
    """Failure bookkeeping of one registered plugin, shared by all its guarded hooks."""

    def __init__(self, name: str, max_consecutive_failures: int) -> None:
        self.name = name
        self.max_consecutive_failures = max_consecutive_failures
        self.consecutive_failures = 0
        self.errors_by_hook: dict[str, int] = {}
        self.blocked_reason: str | None = None
        self._lock = threading.Lock()

    def block(self, reason: str) -> None:
        """Stop calling this plugin for the rest of the process."""
        with self._lock:
            if self.blocked_reason is not None:
                return
            self.blocked_reason = reason
        error_log.warning(
            "plugin %r is blocked for the rest of this process: %s", self.name, reason
        )

    @property
    def errors(self) -> int:
        """Exceptions raised by this plugin so far, over all hooks."""
        return sum(self.errors_by_hook.values())

    def record_failure(self, hook: str, exc: Exception) -> None:
        """Count the failure; log it the first time per hook; block after too many in a row."""
        with self._lock:
            count = self.errors_by_hook.get(hook, 0) + 1
            self.errors_by_hook[hook] = count
            self.consecutive_failures += 1
            block = (
                self.blocked_reason is None
                and self.consecutive_failures >= self.max_consecutive_failures
            )
            if block:
                self.blocked_reason = (
                    f"{self.consecutive_failures} consecutive failures, "
                    f"last in {hook}: {type(exc).__name__}: {exc}"
                )
        if count == 1:
            error_log.warning(
                "plugin %r raised in hook %r (further errors in this hook are only counted): "
                "%s: %s",
                self.name,
                hook,
                type(exc).__name__,
                exc,
                plugin=self.name,
                hook=hook,
                error=f"{type(exc).__name__}: {exc}",
                count=count,
                exc_info=exc,
            )
        if block:
            error_log.warning(
                "plugin %r is blocked for the rest of this process: %s (%d errors in all)",
                self.name,
                self.blocked_reason,
                self.errors,
                plugin=self.name,
                hook=hook,
                error=self.blocked_reason,
                count=self.errors,
            )


def guard(
    function: Callable[..., object],
    hook: str,
    health: PluginHealth,
    *,
    strict: bool,
    trace: bool,
) -> Callable[..., object]:
    """Wrap one hook implementation so that its exceptions stay its own.

    The wrapper keeps the implementation's signature (pluggy reads the argument names through
    ``__wrapped__``, and passes arguments that have defaults by keyword) and its hookimpl options
    (copied with ``__dict__``). It returns what the implementation returns (hooks whose
    answers are collected), or None when the implementation raised or its plugin is blocked.
    """

    if trace:

        @functools.wraps(function)
        def traced(*args: Any, **kwargs: Any) -> object:
            if health.blocked_reason is not None:
                return None
            started = time.perf_counter()
            outcome = "ok"
            try:
                answer = function(*args, **kwargs)
            except Exception as exc:
                outcome = f"raised {type(exc).__name__}"
                if strict:
                    raise
                health.record_failure(hook, exc)
                return None
            else:
                health.consecutive_failures = 0
                return answer
            finally:
                elapsed = (time.perf_counter() - started) * 1e6
                trace_log.info("%s.%s %.1f us %s", health.name, hook, elapsed, outcome)

        return traced

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> object:
        if health.blocked_reason is not None:
            return None
        try:
            answer = function(*args, **kwargs)
        except Exception as exc:
            if strict:
                raise
            health.record_failure(hook, exc)
            return None
        if health.consecutive_failures:
            health.consecutive_failures = 0
        return answer

    return guarded


def noop(**kwargs: object) -> None:
    """What a hook nobody implements is bound to."""


class HookRelay:
    """``manager.hook.NAME(**kwargs)`` emits hook NAME; ``manager.hook.wants(NAME)`` says whether
    anyone listens, so callers can skip building a payload nobody reads.

    Attributes are rebound whenever the set of implementations changes, never per call.
    """

    def __init__(self, hook_names: tuple[str, ...]) -> None:
        self._names = hook_names
        self._listened: frozenset[str] = frozenset()
        for name in hook_names:
            setattr(self, name, noop)

    def wants(self, name: str) -> bool:
        """True when at least one registered plugin implements hook ``name``."""
        return name in self._listened

    def rebind(self, callers: dict[str, Callable[..., object]]) -> None:
        """Point each hook at its pluggy caller if it has implementations, else at :func:`noop`."""
        for name in self._names:
            setattr(self, name, callers.get(name, noop))
        self._listened = frozenset(callers)

    def __getattr__(self, name: str) -> Callable[..., None]:
        raise AttributeError(f"no hook named {name!r} (hooks: {', '.join(self._names)})")
