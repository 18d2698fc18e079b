"""Language models for a run: LiteLLM model strings, or ``scripted:PATH`` cassettes.

Root and sub LM are always distinct ``dspy.LM`` objects, even for the same model, so the hook
bridge can tell a root call from an ``llm_query`` call by the instance that made it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rlm_core.engine.cassette import Cassette, ScriptedEngine
from rlm_core.errors import ConfigError

__all__ = ["SCRIPTED_PREFIX", "LanguageModels", "build_language_models"]

SCRIPTED_PREFIX = "scripted:"


@dataclasses.dataclass(frozen=True)
class LanguageModels:
    """The root and sub LM of a run, and the role each instance plays."""

    root: Any
    sub: Any
    root_name: str
    sub_name: str

    def role_of(self, lm: object) -> str:
        """ "root" or "sub" for the LMs of this run, "other" for any other LM."""
        if lm is self.root:
            return "root"
        if lm is self.sub:
            return "sub"
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
    return LanguageModels(root=root, sub=sub, root_name=model, sub_name=sub_model)


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
