"""The hook reference in docs/hooks.md says what hookspecs.py and events.py say."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from rlm_core import events, hookspecs
from rlm_core.plugins import HOOK_NAMES

HOOKS_DOC = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
PAYLOADS = [
    events.RunInfo,
    events.Setup,
    events.MemoryRetrieval,
    events.Iteration,
    events.LLMCall,
    events.ToolCall,
    events.Judgment,
    events.MemoryExtraction,
    events.RunResult,
]


def documented_hooks(text: str) -> dict[str, list[str]]:
    """``### `name(a, b)``` headings -> argument names."""
    found = re.findall(r"^### `(\w+)\(([^)]*)\)`", text, flags=re.MULTILINE)
    return {name: [arg.strip() for arg in args.split(",") if arg.strip()] for name, args in found}


def documented_fields(text: str) -> dict[str, list[str]]:
    """``### Name`` sections -> the first column of their table."""
    sections = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    result = {}
    for section in sections:
        title, _, body = section.partition("\n")
        result[title.strip()] = re.findall(r"^\| `(\w+)` \|", body, flags=re.MULTILINE)
    return result


def spec_hooks() -> dict[str, list[str]]:
    return {
        name: list(inspect.signature(getattr(hookspecs, name)).parameters) for name in HOOK_NAMES
    }


def test_every_hook_is_documented_with_its_real_argument_names() -> None:
    assert documented_hooks(HOOKS_DOC.read_text(encoding="utf-8")) == spec_hooks()


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda cls: cls.__name__)
def test_every_payload_field_is_documented_in_order(payload: type[events.Event]) -> None:
    fields = documented_fields(HOOKS_DOC.read_text(encoding="utf-8"))
    assert fields.get(payload.__name__) == [f.name for f in dataclasses.fields(payload)]


def test_every_hook_has_a_docstring_naming_each_argument() -> None:
    for name, args in spec_hooks().items():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert doc, f"hook {name} has no docstring"
        for arg in args:
            assert f":param {arg}:" in doc, f"hook {name} does not document {arg}"


def test_a_renamed_argument_is_caught(tmp_path: Path) -> None:
    """The check fails on a copy of the reference where one argument was renamed."""
    text = HOOKS_DOC.read_text(encoding="utf-8").replace(
        "iteration(run, step)", "iteration(run, it)"
    )
    assert documented_hooks(text) != spec_hooks()


DOCS = HOOKS_DOC.parent


def test_every_snippet_include_names_an_existing_example_file() -> None:
    """A mangled ``--8<--`` line renders as plain text instead of the file, silently."""
    for page in DOCS.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        assert "--8 <" not in text, f"{page.name} has a mangled snippet include"
        for path in re.findall(r'^--8<-- "([^"]+)"$', text, flags=re.MULTILINE):
            assert (DOCS / "examples" / path).is_file(), f"{page.name} includes missing {path}"


PLUGINS_DOC = DOCS / "plugins.md"


def contract_table(text: str) -> tuple[dict[str, list[str]], list[str]]:
    """The ``| hook `name(a, b)` |`` and ``| attribute `name` |`` rows of docs/plugins.md."""
    hooks = {
        name: [arg.strip() for arg in args.split(",") if arg.strip()]
        for name, args in re.findall(r"^\| hook `(\w+)\(([^)]*)\)` \|", text, flags=re.MULTILINE)
    }
    attributes = re.findall(r"^\| attribute `(\w+)(?:\([^)]*\))?` \|", text, flags=re.MULTILINE)
    return hooks, attributes


def test_the_plugin_reference_lists_exactly_the_contract_of_hookspecs() -> None:
    hooks, attributes = contract_table(PLUGINS_DOC.read_text(encoding="utf-8"))
    assert hooks == spec_hooks()
    declared = [*hookspecs.PluginAttributes.__annotations__]
    declared += [
        name
        for name, member in vars(hookspecs.PluginAttributes).items()
        if inspect.isfunction(member) and not name.startswith("_")
    ]
    assert sorted(attributes) == sorted(declared)


def test_every_plugin_attribute_is_explained_in_the_protocol_docstring() -> None:
    doc = inspect.getdoc(hookspecs.PluginAttributes) or ""
    for name in ["name", "rlm_dispatch", "flush", "close"]:
        assert f"``{name}" in doc, name
