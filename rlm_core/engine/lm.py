"""Language models for a run: LiteLLM model strings, or ``scripted:PATH`` cassettes.

Each role (root, sub, judge, extract) gets its own ``dspy.LM`` object, even for the same model, so
the hook bridge can tell the calls apart by the instance that made them, and a recorded cassette
replays each role's responses to the right caller.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from rlm_core.engine.cassette import Cassette, ScriptedEngine
from rlm_core.errors import ConfigError

__all__ = ["SCRIPTED_PREFIX", "LanguageModels", "build_language_models", "build_role_lm"]

SCRIPTED_PREFIX = "scripted:"

# LiteLLM downloads its model cost map when it is first imported, retrying for seconds when
# there is no network; DSPy imports it on some error paths even for scripted runs. Use the map
# that ships with LiteLLM unless the user chose otherwise.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@dataclasses.dataclass(frozen=True)
class LanguageModels:
    """The LMs of a run, and the role each instance plays.

    ``judge`` and ``extract`` (procedural memory) run on the sub-model.
    """

    root: Any
    sub: Any
    judge: Any
    extract: Any
    root_name: str
    sub_name: str
    cassettes: tuple[Cassette, ...] = ()
    """The cassettes the scripted roles replay (none for live models)."""

    def role_of(self, lm: object) -> str:
        """The role of one of this run's LMs ("root", "sub", "judge", "extract"), else "other"."""
        for role in ("root", "sub", "judge", "extract"):
            if lm is getattr(self, role):
                return role
        return "other"


def build_language_models(model: str | None, sub_model: str | None) -> LanguageModels:
    """Build both LMs; a missing model or API key is a :class:`ConfigError` naming what to set."""
    if not model:
        raise ConfigError(
            "no model given: pass --lm MODEL (a LiteLLM model string such as "
            "'openai/gpt-4o-mini', or 'scripted:PATH' to replay a cassette), set RLM_MODEL, "
            "or set model in [rlm]"
        )
    sub_model = sub_model or model
    cassettes: dict[str, Cassette] = {}
    root = _build(model, "root", cassettes)
    sub = _build(sub_model, "sub", cassettes)
    return LanguageModels(
        root=root,
        sub=sub,
        judge=_build(sub_model, "judge", cassettes),
        extract=_build(sub_model, "extract", cassettes),
        root_name=model,
        sub_name=sub_model,
        cassettes=tuple(cassettes.values()),
    )


def build_role_lm(spec: str, role: str) -> Any:
    """One more LM for ``role`` (e.g. the eval's ``rubric`` judge); a cassette replays the
    responses recorded for that role."""
    return _build(spec, role, {})


def _build(spec: str, role: str, cassettes: dict[str, Cassette]) -> Any:
    import dspy

    if spec.startswith(SCRIPTED_PREFIX):
        path = str(Path(spec[len(SCRIPTED_PREFIX) :]).expanduser().resolve())
        if path not in cassettes:
            cassettes[path] = Cassette.load(path)
        engine = ScriptedEngine(cassettes[path], role)
        return dspy.LM(f"scripted/{role}", engine=engine, cache=False, num_retries=0)
    _check_credentials(spec)
    return dspy.LM(spec)


def _check_credentials(model: str) -> None:
    """Fail before the run starts when the provider's key is not in the environment."""
    import litellm

    try:
        report = litellm.validate_environment(model=model)
    except Exception as exc:  # litellm raises assorted errors for unknown providers
        raise ConfigError(f"model {model!r} is not a LiteLLM model string: {exc}") from None
    missing = report.get("missing_keys") or []
    if missing:
        raise ConfigError(
            f"model {model!r} needs the environment variable(s) {', '.join(missing)}, "
            "which are not set"
        )
