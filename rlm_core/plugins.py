"""The plugin manager: entry-point discovery, tracker selection, fault isolation, status.

Nothing is loaded at import time; :func:`get_plugin_manager` does the work when a run (or
``rlm plugins``) asks for it. Built-in trackers come through the same ``rlm`` entry point group as
third-party ones, so each can be swapped or disabled alike.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import importlib.metadata
import inspect
import logging
import sys
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

import pluggy

from rlm_core import _flush, hookspecs
from rlm_core._fault_isolation import HookRelay, PluginHealth, guard, trace_log
from rlm_core._thread_dispatch import DISPATCH_MODES, ThreadedDispatch
from rlm_core.config import Selection, Settings
from rlm_core.errors import PluginNotConfiguredError, PluginSelectionError
from rlm_core.logs import get_logger

__all__ = [
    "DISPATCH_KEY",
    "ENTRY_POINT_GROUP",
    "HOOK_NAMES",
    "PluginManager",
    "PluginState",
    "PluginStatus",
    "add_plugin_commands",
    "ambient_plugins",
    "get_plugin_manager",
]

ENTRY_POINT_GROUP = "rlm"
DISPATCH_KEY = "dispatch"
HOOK_NAMES: tuple[str, ...] = tuple(
    name
    for name, function in vars(hookspecs).items()
    if inspect.isfunction(function) and hasattr(function, f"{hookspecs.PROJECT_NAME}_spec")
)

PluginState = Literal["enabled", "disabled", "unavailable", "blocked"]

_log = get_logger("rlm.plugins")

_ambient: contextvars.ContextVar[tuple[object, ...]] = contextvars.ContextVar(
    "rlm_ambient_plugins", default=()
)


@dataclasses.dataclass(frozen=True)
class PluginStatus:
    """What ``rlm plugins`` shows for one plugin."""

    name: str
    distribution: str | None
    version: str | None
    state: PluginState
    reason: str | None
    hooks: tuple[str, ...]
    errors: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, for ``rlm plugins --json``."""
        data = dataclasses.asdict(self)
        data["hooks"] = list(self.hooks)
        return data


@dataclasses.dataclass
class _Candidate:
    """An entry point (or an object handed over directly) on its way to registration."""

    name: str
    distribution: str | None
    version: str | None
    loaded: object = None
    state: PluginState = "enabled"
    reason: str | None = None
    explicit: bool = False


@contextlib.contextmanager
def ambient_plugins(*plugins: object) -> Iterator[None]:
    """Register ``plugins`` with every plugin manager created inside this context.

    Context-local (threads and asyncio tasks each see their own), and undone on exit.
    """
    token = _ambient.set(_ambient.get() + plugins)
    try:
        yield
    finally:
        _ambient.reset(token)


class PluginManager:
    """Registered plugins of one run (or of ``rlm plugins``), and the hooks to emit to them.

    ``hook.NAME(run=..., ...)`` emits; ``hook.wants(NAME)`` tells whether anyone listens.
    Each implementation runs behind :func:`rlm_core._fault_isolation.guard`, so an exception in
    one plugin is logged and counted and never reaches the caller or the other plugins (unless
    ``strict``).
    """

    def __init__(
        self,
        *,
        strict: bool = False,
        max_plugin_errors: int = 5,
        trace: bool = False,
        hook_timeout: float = 5.0,
    ):
        self.pluggy = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pluggy.add_hookspecs(hookspecs)
        self.hook = HookRelay(HOOK_NAMES)
        self.strict = strict
        self.max_plugin_errors = max_plugin_errors
        self.trace = trace
        self.hook_timeout = hook_timeout
        self._plugins: dict[str, object] = {}
        self._health: dict[str, PluginHealth] = {}
        self._threaded: dict[str, ThreadedDispatch] = {}
        self._statuses: dict[str, PluginStatus] = {}
        if trace:
            _ensure_trace_output()

    def register(
        self, plugin: object, name: str | None = None, *, dispatch: str | None = None
    ) -> str:
        """Register ``plugin`` (an instance or a module) with every hook implementation guarded.

        ``dispatch`` is ``"inline"`` (hooks run on the engine thread) or ``"thread"`` (queued to
        a worker thread of the plugin's own, see :mod:`rlm_core._thread_dispatch`); default: the
        plugin's ``rlm_dispatch`` attribute, else inline. Raises
        :class:`pluggy.PluginValidationError` for an implementation of an unknown hook or with
        arguments its hook does not have.
        """
        name = name or _default_name(plugin)
        dispatch = dispatch or getattr(plugin, "rlm_dispatch", "inline")
        if dispatch not in DISPATCH_MODES:
            raise ValueError(
                f"plugin {name!r}: dispatch must be one of {', '.join(DISPATCH_MODES)}, "
                f"got {dispatch!r}"
            )
        if name in self._plugins:
            raise ValueError(f"a plugin named {name!r} is already registered")
        hooks = implemented_hooks(self.pluggy, plugin)
        unknown = sorted(set(hooks) - set(HOOK_NAMES))
        if unknown:
            raise pluggy.PluginValidationError(
                plugin,
                f"plugin {name!r} implements unknown hook(s) {', '.join(unknown)} "
                f"(hooks: {', '.join(HOOK_NAMES)})",
            )
        health = PluginHealth(name, self.max_plugin_errors)
        threaded = None if dispatch == "inline" else ThreadedDispatch(health, self.hook_timeout)
        proxy = types.SimpleNamespace()
        for hook in hooks:
            function = getattr(plugin, hook)
            options = self.pluggy.parse_hookimpl_opts(plugin, hook)
            if options and (options.get("wrapper") or options.get("hookwrapper")):
                guarded: Callable[..., object] = function  # wrappers must stay generators
            else:
                guarded = guard(function, hook, health, strict=self.strict, trace=self.trace)
                if threaded is not None and hook in hookspecs.EVENT_HOOKS:
                    guarded = threaded.wrap(guarded, hook)
            setattr(proxy, hook, guarded)
        self.pluggy.register(proxy, name)
        self._plugins[name] = plugin
        _flush.watch(plugin)
        self._health[name] = health
        if threaded is not None:
            self._threaded[name] = threaded
        self._rebind()
        return name

    def unregister(self, name: str) -> object:
        """Remove the plugin registered as ``name`` and return it."""
        self.pluggy.unregister(name=name)
        self._health.pop(name)
        self._threaded.pop(name, None)
        plugin = self._plugins.pop(name)
        self._rebind()
        return plugin

    def get_plugin(self, name: str) -> object | None:
        """The plugin object registered as ``name`` (not its guarded proxy)."""
        return self._plugins.get(name)

    def list_name_plugin(self) -> list[tuple[str, object]]:
        """Registered plugins in registration order."""
        return list(self._plugins.items())

    def collect(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """``(plugin name, answer)`` of every implementation of a hook that returns something
        (:func:`~rlm_core.hookspecs.run_metrics`, :func:`~rlm_core.hookspecs.run_location`), in
        call order, None answers left out. Each implementation is fault-isolated like any hook:
        one that raises is counted and gives no answer."""
        if hook in hookspecs.EVENT_HOOKS or hook not in HOOK_NAMES:
            raise ValueError(f"{hook!r} is not a hook whose answers are collected")
        answers = []
        for implementation in getattr(self.pluggy.hook, hook).get_hookimpls()[::-1]:
            arguments = {name: kwargs[name] for name in implementation.argnames}
            answer = implementation.function(**arguments)
            if answer is not None:
                answers.append((implementation.plugin_name, answer))
        return answers

    def drain(self) -> None:
        """Let plugins with threaded dispatch catch up, within one ``hook_timeout`` in all;
        those that do not are blocked. The engine calls it before building ``run_end``'s result,
        so the result can say which plugins fell behind."""
        deadline = time.monotonic() + self.hook_timeout
        for threaded in list(self._threaded.values()):
            threaded.drain(max(0.0, deadline - time.monotonic()))

    def health(self, name: str) -> PluginHealth:
        """Failure counts and block state of a registered plugin."""
        return self._health[name]

    def statuses(self) -> list[PluginStatus]:
        """Every known plugin: registered ones with live error counts, then the others."""
        result = []
        for name, plugin in self._plugins.items():
            health = self._health[name]
            known = self._statuses.get(name)
            blocked = health.blocked_reason is not None
            result.append(
                PluginStatus(
                    name=name,
                    distribution=known.distribution if known else None,
                    version=known.version if known else None,
                    state="blocked" if blocked else "enabled",
                    reason=health.blocked_reason,
                    hooks=implemented_hooks(self.pluggy, plugin),
                    errors=health.errors,
                )
            )
        result.extend(s for name, s in self._statuses.items() if name not in self._plugins)
        return result

    def _rebind(self) -> None:
        callers = {
            name: caller
            for name in HOOK_NAMES
            if (caller := getattr(self.pluggy.hook, name)).get_hookimpls()
        }
        self.hook.rebind(callers)


def implemented_hooks(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    """Names of the ``rlm`` hooks that ``plugin`` (an instance, class or module) implements."""
    return tuple(
        attribute
        for attribute in dir(plugin)
        if not attribute.startswith("__") and pm.parse_hookimpl_opts(plugin, attribute) is not None
    )


def get_plugin_manager(
    settings: Settings | None = None,
    *,
    plugins: Iterable[object] = (),
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> PluginManager:
    """Discover, select, construct and register plugins according to ``settings``.

    ``plugins`` are extra plugin objects, always enabled. ``entry_points`` replaces discovery
    (tests use it to provide fake distributions). A plugin that fails to import or to construct
    is reported as unavailable and never stops the others; it is an error only when the
    selection asked for it by name, or when a selection names a plugin that does not exist.
    """
    settings = settings or Settings()
    manager = PluginManager(
        strict=settings.strict,
        max_plugin_errors=settings.max_plugin_errors,
        trace=settings.trace_plugins,
        hook_timeout=settings.hook_timeout,
    )
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    candidates = _load(entry_points)
    _check_names(candidates, settings.selections)
    for candidate in candidates.values():
        _select(candidate, settings.selections)
        if candidate.state == "enabled":
            _construct_and_register(manager, candidate, settings)
        if candidate.state == "unavailable" and candidate.explicit:
            raise PluginSelectionError(
                f"tracker {candidate.name!r} was asked for but is unavailable: {candidate.reason}"
            )
        manager._statuses[candidate.name] = _status(
            candidate,
            implemented_hooks(manager.pluggy, candidate.loaded)
            if candidate.loaded is not None
            else (),
        )
    for plugin in (*_ambient.get(), *plugins):
        manager.register(plugin, _unique_name(manager, _default_name(plugin)))
    return manager


def add_plugin_commands(
    commands: hookspecs.CommandAdder,
    groups: Mapping[str, hookspecs.CommandAdder],
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> list[PluginStatus]:
    """Let every installed plugin add its ``rlm`` subcommands (the ``register_commands`` hook).

    Called on the entry points' objects, constructing nothing; a plugin whose import fails or
    whose hook raises adds nothing and is logged, never stopping the command line. Returns the
    plugins that could not be imported, so ``rlm NAME`` can say which one would have provided
    a missing command, and why it is unavailable.
    """
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(_CommandSpecs)
    unavailable = []
    for candidate in _load(entry_points).values():
        if candidate.state == "unavailable":
            unavailable.append(_status(candidate, ()))
            continue
        if manager.parse_hookimpl_opts(candidate.loaded, "register_commands") is None:
            continue
        try:
            manager.register(candidate.loaded, candidate.name)
        except pluggy.PluginValidationError as exc:
            _log.warning("plugin %r cannot add commands: %s", candidate.name, exc)
    arguments = {"commands": commands, "groups": groups}
    for implementation in manager.hook.register_commands.get_hookimpls()[::-1]:
        try:
            implementation.function(**{name: arguments[name] for name in implementation.argnames})
        except Exception as exc:
            _log.warning(
                "plugin %r could not add its commands: %s: %s",
                implementation.plugin_name,
                type(exc).__name__,
                exc,
            )
    return unavailable


class _CommandSpecs:
    """The one hook the command line calls, on entry-point objects rather than plugins."""

    register_commands = staticmethod(hookspecs.register_commands)


def _status(candidate: _Candidate, hooks: tuple[str, ...]) -> PluginStatus:
    return PluginStatus(
        name=candidate.name,
        distribution=candidate.distribution,
        version=candidate.version,
        state=candidate.state,
        reason=candidate.reason,
        hooks=hooks,
    )


def _load(entry_points: Iterable[importlib.metadata.EntryPoint]) -> dict[str, _Candidate]:
    candidates: dict[str, _Candidate] = {}
    for entry_point in entry_points:
        dist = entry_point.dist
        candidate = _Candidate(
            name=entry_point.name,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
        )
        if entry_point.name in candidates:
            first = candidates[entry_point.name]
            _log.warning(
                "entry point %r of %s ignored: %s already provides a plugin of that name",
                entry_point.name,
                candidate.distribution or "an unknown distribution",
                first.distribution or "an unknown distribution",
            )
            continue
        try:
            candidate.loaded = entry_point.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a module that calls sys.exit on import too
            candidate.state = "unavailable"
            candidate.reason = (
                f"import failed: {type(exc).__name__}: {exc}{_missing_module_hint(candidate, exc)}"
            )
        candidates[entry_point.name] = candidate
    return candidates


def _missing_module_hint(candidate: _Candidate, exc: BaseException) -> str:
    """For a module missing under a plugin that did not say how to install it (a plugin that
    knows, such as one with a missing backend, raises ImportError with its own hint, shown as
    is): the extra of its distribution that provides the module, else the distribution itself,
    both from a path (see :mod:`rlm_core.install_hints`)."""
    missing = getattr(exc, "name", None)
    if not isinstance(exc, ModuleNotFoundError) or not missing:
        return ""
    from rlm_core.install_hints import extra_providing, install_hint

    if not candidate.distribution:
        return " (reinstall the plugin's distribution with its dependencies, from its path)"
    extra = extra_providing(candidate.distribution, missing.split(".")[0])
    return f" (install it with: {install_hint(candidate.distribution, extra)})"


def _check_names(candidates: dict[str, _Candidate], selections: Iterable[Selection]) -> None:
    installed = sorted(candidates)
    for selection in selections:
        for flag, names in (
            (selection.allow_flag, selection.allow or ()),
            (selection.deny_flag, selection.deny),
        ):
            for name in names:
                if name in candidates:
                    continue
                close = difflib.get_close_matches(name, installed, n=1)
                suggestion = f"; did you mean {close[0]!r}?" if close else ""
                listing = ", ".join(installed) if installed else "none"
                raise PluginSelectionError(
                    f"unknown tracker {name!r} in {flag} ({selection.source}); "
                    f"installed trackers: {listing}{suggestion}"
                )


def _select(candidate: _Candidate, selections: Iterable[Selection]) -> None:
    """Apply the highest layer that decides about this plugin."""
    for selection in selections:
        if candidate.name in selection.deny:
            candidate.state = "disabled"
            candidate.reason = f"disabled by {selection.deny_flag} ({selection.source})"
            return
        if selection.allow is not None:
            if candidate.name in selection.allow:
                candidate.explicit = True
                return
            candidate.state = "disabled"
            candidate.reason = f"not in {selection.allow_flag} ({selection.source})"
            return


def _construct_and_register(
    manager: PluginManager, candidate: _Candidate, settings: Settings
) -> None:
    if candidate.state != "enabled":
        return
    config = settings.plugin_config(candidate.name)
    # ``dispatch`` is rlm-core's key in every [plugins.NAME] section, not the plugin's.
    dispatch = config.pop(DISPATCH_KEY, None)
    loaded = candidate.loaded
    try:
        if inspect.isclass(loaded):
            plugin = loaded(**config)
        elif config:
            raise TypeError(
                f"it is a module and takes no settings, but [plugins.{candidate.name}] has "
                f"{', '.join(sorted(config))}"
            )
        else:
            plugin = loaded
        manager.register(plugin, candidate.name, dispatch=dispatch)
    except KeyboardInterrupt:
        raise
    except PluginNotConfiguredError as exc:
        if candidate.explicit:
            raise PluginSelectionError(
                f"tracker {candidate.name!r} was asked for but is not configured: {exc}"
            ) from None
        candidate.state = "disabled"
        candidate.reason = f"not configured: {exc}"
    except BaseException as exc:  # a constructor that calls sys.exit too
        candidate.state = "unavailable"
        candidate.reason = f"failed to start: {type(exc).__name__}: {exc}"
        if not candidate.explicit:  # asked for by name, it is an error, said once by the caller
            _log.warning(
                "plugin %r is unavailable: %s",
                candidate.name,
                candidate.reason,
                plugin=candidate.name,
                error=candidate.reason,
            )


def _default_name(plugin: object) -> str:
    name = getattr(plugin, "name", None)
    if isinstance(name, str) and name:
        return name
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    return type(plugin).__name__


def _unique_name(manager: PluginManager, name: str) -> str:
    candidate, counter = name, 1
    while manager.get_plugin(candidate) is not None:
        counter += 1
        candidate = f"{name}-{counter}"
    return candidate


def _ensure_trace_output() -> None:
    """Make ``RLM_TRACE_PLUGINS=1`` visible even when the application configured no logging."""
    stdlib = trace_log.stdlib
    if not stdlib.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("rlm trace: %(message)s"))
        stdlib.addHandler(handler)
    stdlib.setLevel(logging.INFO)
