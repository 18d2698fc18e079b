"""Settings from a config file, the environment and the command line.

Precedence, highest first: command line, environment (``RLM_*``), config file, defaults. The
config file is ``--config PATH``, else ``$RLM_CONFIG``, else ``rlm.toml`` in the working directory,
else ``[tool.rlm]`` in its ``pyproject.toml``. Tracker selection keeps each layer apart (see
:class:`Selection`) because a higher layer may re-enable what a lower one disabled.

Every error names where the bad value came from, the key and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from rlm_core.errors import ConfigError

__all__ = [
    "CONFIG_FILE_NAME",
    "ENV_PREFIX",
    "CliOptions",
    "MemorySettings",
    "Selection",
    "Settings",
    "load_settings",
]

CONFIG_FILE_NAME = "rlm.toml"
ENV_PREFIX = "RLM_"
_ENV_REFERENCE = "$env:"


@dataclasses.dataclass(frozen=True)
class Selection:
    """One layer's say on which trackers run.

    ``allow`` is an allow-list (None: this layer has none; empty: no trackers at all) and ``deny``
    a deny-list. The highest layer that mentions a tracker, or that has an allow-list, decides.
    """

    source: str
    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()
    allow_flag: str = "trackers"
    deny_flag: str = "disable"


@dataclasses.dataclass(frozen=True)
class MemorySettings:
    """The ``[memory]`` section: where procedural memory lives and what a run does with it."""

    enabled: bool = True
    path: str = "rlm-memory.db"
    retrieve: int = 3
    judge: bool = True
    extract: bool = True
    timeout: float = 10.0


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a run and the plugin manager need, already validated."""

    model: str | None = None
    sub_model: str | None = None
    max_iterations: int = 20
    max_llm_calls: int = 50
    step_timeout: float = 30.0
    max_output_chars: int = 10_000
    interpreter: str = "local"
    strict: bool = False
    max_plugin_errors: int = 5
    hook_timeout: float = 5.0
    trace_plugins: bool = False
    capture_content: bool = True
    selections: tuple[Selection, ...] = ()
    memory: MemorySettings = dataclasses.field(default_factory=MemorySettings)
    plugins: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    config_path: str | None = None

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The ``[plugins.NAME]`` section, empty when absent."""
        return dict(self.plugins.get(name, {}))


@dataclasses.dataclass(frozen=True)
class CliOptions:
    """What the command line said; None means "not given"."""

    config: str | None = None
    model: str | None = None
    sub_model: str | None = None
    max_iterations: int | None = None
    max_llm_calls: int | None = None
    trackers: Sequence[str] = ()
    no_tracker: Sequence[str] = ()
    no_trackers: bool = False


_Kind = Literal["str", "int", "float", "bool", "names"]
_EXPECTED = {
    "str": "a string",
    "int": "a positive integer",
    "float": "a positive number",
    "bool": "true or false",
    "names": "a list of tracker names",
}
_RLM_KEYS: dict[str, _Kind] = {
    "model": "str",
    "sub_model": "str",
    "max_iterations": "int",
    "max_llm_calls": "int",
    "step_timeout": "float",
    "max_output_chars": "int",
    "interpreter": "str",
    "strict": "bool",
    "max_plugin_errors": "int",
    "hook_timeout": "float",
    "trace_plugins": "bool",
    "capture_content": "bool",
    "trackers": "names",
    "disable": "names",
}
_MEMORY_KEYS: dict[str, _Kind] = {
    "enabled": "bool",
    "path": "str",
    "retrieve": "int",
    "judge": "bool",
    "extract": "bool",
    "timeout": "float",
}
# Environment variables that set a plain [rlm] key; RLM_TRACKERS/RLM_DISABLE are selections.
_ENV_KEYS = {
    "RLM_MODEL": "model",
    "RLM_SUB_MODEL": "sub_model",
    "RLM_MAX_ITERATIONS": "max_iterations",
    "RLM_MAX_LLM_CALLS": "max_llm_calls",
    "RLM_STEP_TIMEOUT": "step_timeout",
    "RLM_INTERPRETER": "interpreter",
    "RLM_STRICT": "strict",
    "RLM_MAX_PLUGIN_ERRORS": "max_plugin_errors",
    "RLM_HOOK_TIMEOUT": "hook_timeout",
    "RLM_TRACE_PLUGINS": "trace_plugins",
    "RLM_CAPTURE_CONTENT": "capture_content",
}


def load_settings(
    cli: CliOptions | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> Settings:
    """Build :class:`Settings` from every layer; raise :class:`ConfigError` on a bad value."""
    cli = cli or CliOptions()
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else Path(cwd)

    found = _find_config(cli, env, cwd)
    rlm: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    plugins: dict[str, dict[str, Any]] = {}
    selections: list[Selection] = []
    config_path = None
    if found is not None:
        config_path, document, prefix = found
        source = str(config_path)
        document = _resolve_env_references(document, env, source, prefix)
        rlm, memory, plugins = _split_document(document, source, prefix)
        file_selection = _file_selection(rlm, source, prefix)
        rlm.pop("trackers", None)
        rlm.pop("disable", None)
        if file_selection is not None:
            selections.append(file_selection)

    for variable, key in _ENV_KEYS.items():
        if variable in env:
            rlm[key] = _coerce(env[variable], _RLM_KEYS[key], "environment", variable, text=True)
    env_selection = _env_selection(env)
    if env_selection is not None:
        selections.append(env_selection)

    for key in ("model", "sub_model", "max_iterations", "max_llm_calls"):
        value = getattr(cli, key)
        if value is not None:
            rlm[key] = _coerce(value, _RLM_KEYS[key], "command line", f"--{key.replace('_', '-')}")
    cli_selection = _cli_selection(cli)
    if cli_selection is not None:
        selections.append(cli_selection)

    return Settings(
        **rlm,
        selections=tuple(reversed(selections)),
        memory=MemorySettings(**memory),
        plugins=plugins,
        config_path=str(config_path) if config_path else None,
    )


def _find_config(
    cli: CliOptions, env: Mapping[str, str], cwd: Path
) -> tuple[Path, dict[str, Any], str] | None:
    """The config file to read, its parsed document and the key prefix used in messages."""
    explicit = cli.config or env.get("RLM_CONFIG")
    if explicit:
        path = (cwd / explicit).resolve()
        origin = "--config" if cli.config else "RLM_CONFIG"
        if not path.is_file():
            raise ConfigError(f"{origin}: config file {path} does not exist")
        document = _read_toml(path)
        if path.name == "pyproject.toml":
            return path, _tool_rlm(document, path), "tool.rlm."
        return path, document, ""
    local = cwd / CONFIG_FILE_NAME
    if local.is_file():
        return local, _read_toml(local), ""
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        document = _read_toml(pyproject)
        if "rlm" in document.get("tool", {}):
            return pyproject, _tool_rlm(document, pyproject), "tool.rlm."
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # here: ``rlm --help`` imports this module and reads no file

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None


def _tool_rlm(document: dict[str, Any], path: Path) -> dict[str, Any]:
    """``[tool.rlm]`` holds the ``[rlm]`` keys directly, plus ``memory`` and ``plugins`` tables."""
    section = document.get("tool", {}).get("rlm", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: tool.rlm: expected a table")
    nested = {key: section[key] for key in ("memory", "plugins") if key in section}
    flat = {key: value for key, value in section.items() if key not in nested}
    return {"rlm": flat, **nested}


def _resolve_env_references(value: Any, env: Mapping[str, str], source: str, key: str) -> Any:
    """Replace every ``"$env:NAME"`` string with the variable's value, so secrets stay out of
    files."""
    if isinstance(value, dict):
        return {
            name: _resolve_env_references(item, env, source, f"{key}{name}.")
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [_resolve_env_references(item, env, source, key) for item in value]
    if isinstance(value, str) and value.startswith(_ENV_REFERENCE):
        variable = value[len(_ENV_REFERENCE) :]
        if variable not in env:
            raise ConfigError(
                f"{source}: {key.rstrip('.')}: refers to environment variable {variable!r}, "
                "which is not set"
            )
        return env[variable]
    return value


def _split_document(
    document: dict[str, Any], source: str, prefix: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    unknown = sorted(set(document) - {"rlm", "memory", "plugins"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown section [{prefix}{unknown[0]}] "
            "(expected [rlm], [memory] or [plugins.NAME])"
        )
    rlm = _validate_section(document.get("rlm", {}), _RLM_KEYS, source, f"{prefix}rlm")
    memory = _validate_section(document.get("memory", {}), _MEMORY_KEYS, source, f"{prefix}memory")
    plugins_section = document.get("plugins", {})
    if not isinstance(plugins_section, dict):
        raise ConfigError(f"{source}: {prefix}plugins: expected a table of [plugins.NAME] tables")
    plugins: dict[str, dict[str, Any]] = {}
    for name, section in plugins_section.items():
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: {prefix}plugins.{name}: expected a table")
        plugins[name] = section
    return rlm, memory, plugins


def _validate_section(
    section: Any, schema: Mapping[str, _Kind], source: str, name: str
) -> dict[str, Any]:
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: {name}: expected a table")
    result: dict[str, Any] = {}
    for key, value in section.items():
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise ConfigError(f"{source}: unknown key {name}.{key} (known keys: {known})")
        result[key] = _coerce(value, schema[key], source, f"{name}.{key}")
    return result


def _coerce(value: Any, kind: _Kind, source: str, key: str, *, text: bool = False) -> Any:
    """Check ``value`` against ``kind``; ``text`` values (from the environment) are parsed."""
    try:
        if kind == "str" and isinstance(value, str) and value:
            return value
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if text and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
                return value.lower() in ("1", "true", "yes", "on")
        if kind == "int":
            number = int(value) if text else value
            if type(number) is int and number > 0:
                return number
        if kind == "float":
            number = float(value) if text else value
            if type(number) in (int, float) and number > 0:
                return float(number)
        if (
            kind == "names"
            and isinstance(value, list)
            and all(isinstance(item, str) and item for item in value)
        ):
            return tuple(value)
    except ValueError:
        pass
    raise ConfigError(f"{source}: {key}: expected {_EXPECTED[kind]}, got {value!r}")


def _file_selection(rlm: dict[str, Any], source: str, prefix: str) -> Selection | None:
    if "trackers" not in rlm and "disable" not in rlm:
        return None
    return Selection(
        source=f"config file {source}",
        allow=rlm.get("trackers"),
        deny=rlm.get("disable", ()),
        allow_flag=f"{prefix}rlm.trackers",
        deny_flag=f"{prefix}rlm.disable",
    )


def _split_names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _env_selection(env: Mapping[str, str]) -> Selection | None:
    if "RLM_TRACKERS" not in env and "RLM_DISABLE" not in env:
        return None
    allow = _split_names(env["RLM_TRACKERS"]) if "RLM_TRACKERS" in env else None
    return Selection(
        source="environment",
        allow=allow,
        deny=_split_names(env.get("RLM_DISABLE", "")),
        allow_flag="RLM_TRACKERS",
        deny_flag="RLM_DISABLE",
    )


def _cli_selection(cli: CliOptions) -> Selection | None:
    if not (cli.trackers or cli.no_tracker or cli.no_trackers):
        return None
    allow: tuple[str, ...] | None = tuple(cli.trackers) if cli.trackers else None
    allow_flag = "-t/--tracker"
    if cli.no_trackers:
        allow, allow_flag = (), "--no-trackers"
    return Selection(
        source="command line",
        allow=allow,
        deny=tuple(cli.no_tracker),
        allow_flag=allow_flag,
        deny_flag="--no-tracker",
    )
