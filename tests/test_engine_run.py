"""End-to-end runs: the real dspy.RLM loop, rdflib and SPARQL, with a scripted LM."""

from __future__ import annotations

import threading
from pathlib import Path

import dspy
import pytest
import rdflib

from rlm_core import ConfigError, RunResult, Settings, run
from rlm_core.config import MemorySettings
from rlm_core.events import Iteration, LLMCall, RunInfo, ToolCall
from rlm_core.testing import (
    RecordingPlugin,
    capture_events,
    scripted_extract,
    scripted_step,
    scripted_sub,
    write_cassette,
)
from tests.helpers.paths import SHARED_ONTOLOGIES

HERE = Path(__file__).resolve().parent
SHARED = SHARED_ONTOLOGIES
PROV = SHARED / "prov.ttl"
PROV_CASSETTE = HERE / "cassettes" / "prov-activity.jsonl"
PROV_QUESTION = "What is prov:Activity and which properties link it to agents?"
# No installed tracker writes into the working directory during these tests.
QUIET = Settings(step_timeout=20.0, memory=MemorySettings(enabled=False))


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert PROV.is_file(), f"{PROV} is missing: the tests need ../shared/ontologies beside the repo"
    monkeypatch.chdir(tmp_path)


def prov_run(**options: object) -> tuple[RunResult, RecordingPlugin]:
    with capture_events() as events:
        result = run(
            PROV_QUESTION,
            PROV,
            model=f"scripted:{PROV_CASSETTE}",
            trackers=[],
            config=options.pop("config", QUIET),  # type: ignore[arg-type]
            **options,  # type: ignore[arg-type]
        )
    return result, events


def test_prov_run_answers_with_sparql_that_really_returns_rows() -> None:
    result, _ = prov_run()
    assert result.error is None
    assert result.converged
    assert result.answer is not None
    assert "prov:wasAssociatedWith" in result.answer
    assert result.evidence == [
        "prov:wasAssociatedWith rdfs:range prov:Agent",
        "prov:qualifiedAssociation rdfs:range prov:Association",
    ]
    assert result.sparql is not None
    rows = {str(row[0]) for row in rdflib.Graph().parse(PROV).query(result.sparql)}
    assert rows == {
        "http://www.w3.org/ns/prov#wasAssociatedWith",
        "http://www.w3.org/ns/prov#qualifiedAssociation",
    }


def test_prov_run_emits_one_start_one_end_and_every_step_in_order() -> None:
    result, events = prov_run()
    names = events.hook_names()
    assert names.count("run_start") == 1
    assert names.count("run_end") == 1
    assert names[0] == "run_start"
    assert names[-1] == "run_end"

    steps = [call.payload for call in events.of("iteration")]
    assert all(isinstance(step, Iteration) for step in steps)
    assert [step.index for step in steps] == [0, 1, 2]
    assert steps[0].code.startswith('print(search_entity("Activity", limit=5))')
    assert "prov#Activity" in steps[0].output or "prov:Activity" in steps[0].output
    assert steps[1].code.startswith("query = '''PREFIX prov:")
    assert steps[1].llm_calls_used == 1
    assert steps[2].output.startswith("SUBMIT ")
    assert all(step.error is None for step in steps)

    tools = [call.payload for call in events.of("tool_call")]
    assert [tool.name for tool in tools] == ["search_entity", "describe_entity", "sparql_select"]
    assert all(isinstance(tool, ToolCall) for tool in tools)
    assert tools[0].arguments == {"text": "Activity", "limit": 5}
    assert tools[2].result_size > 0

    lm_calls = [call.payload for call in events.of("llm_call")]
    assert all(isinstance(call, LLMCall) for call in lm_calls)
    assert [call.role for call in lm_calls] == ["root", "root", "sub", "root"]
    assert all(call.prompt_tokens and call.completion_tokens for call in lm_calls)
    assert result.llm_calls == 4
    assert result.iterations == 3
    assert result.prompt_tokens == sum(call.prompt_tokens or 0 for call in lm_calls)

    run_info = events.of("run_start")[0].payload
    assert isinstance(run_info, RunInfo)
    assert run_info.ontology.name == "prov"
    assert run_info.ontology.triples == 1664
    assert run_info.question == PROV_QUESTION
    every = events.events()
    assert {event.run_id for event in every} == {result.run_id}
    seqs = [event.seq for event in every]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert events.of("run_end")[0].payload == result


def test_a_step_that_raises_is_reported_and_the_loop_goes_on(tmp_path: Path) -> None:
    cassette = write_cassette(
        tmp_path / "raises.jsonl",
        [
            scripted_step("Try something that fails.", "raise ValueError('no such class')"),
            scripted_step("Recover.", "SUBMIT(answer='recovered', sparql='', evidence=[])"),
        ],
    )
    with capture_events() as events:
        result = run("q", PROV, model=f"scripted:{cassette}", trackers=[], config=QUIET)
    assert result.converged
    assert result.answer == "recovered"
    first, second = (call.payload for call in events.of("iteration"))
    assert first.error is not None
    assert "ValueError: no such class" in first.error
    assert second.error is None


def test_code_that_loops_forever_is_stopped_by_the_step_time_limit(tmp_path: Path) -> None:
    cassette = write_cassette(
        tmp_path / "loops.jsonl",
        [
            scripted_step("Loop.", "x = 1\nwhile True:\n    pass"),
            scripted_step("Go on.", "print('after the timeout')"),
            scripted_step("Done.", "SUBMIT(answer='done', sparql='', evidence=[])"),
        ],
    )
    with capture_events() as events:
        result = run(
            "q",
            PROV,
            model=f"scripted:{cassette}",
            trackers=[],
            config=Settings(step_timeout=1.0),
        )
    assert result.converged, result.error
    steps = [call.payload for call in events.of("iteration")]
    assert "timeout" in (steps[0].error or "").lower()
    assert steps[0].duration < 15
    assert steps[1].error is None
    assert steps[1].output.strip() == "after the timeout"


def test_a_cassette_that_runs_dry_ends_the_run_with_a_clear_error(tmp_path: Path) -> None:
    cassette = write_cassette(tmp_path / "short.jsonl", [scripted_step("Look.", "print(1)")])
    with capture_events() as events:
        result = run("q", PROV, model=f"scripted:{cassette}", trackers=[], config=QUIET)
    assert not result.converged
    assert result.error is not None
    assert "ran out of 'root' responses after 1" in result.error
    assert events.hook_names()[-1] == "run_end"
    # the step whose LM call ran dry still closes its span, with the reason
    first, second = (call.payload for call in events.of("iteration"))
    assert first.error is None
    assert second.error is not None
    assert second.error.startswith("the step's LM call failed: ")
    assert "ran out of 'root' responses" in second.error


def test_an_unparsable_ontology_ends_the_run_with_an_error_naming_the_file(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.ttl"
    broken.write_text("@prefix ex: <http://example.org/> .\nex:a ex:b ", encoding="utf-8")
    cassette = write_cassette(tmp_path / "unused.jsonl", [scripted_step("x", "print(1)")])
    with capture_events() as events:
        result = run("q", broken, model=f"scripted:{cassette}", trackers=[], config=QUIET)
    assert not result.converged
    assert result.error is not None
    assert "broken.ttl" in result.error
    assert events.hook_names() == ["run_start", "setup", "run_end"]
    assert events.of("run_start")[0].payload.ontology.triples == 0


def test_reaching_max_iterations_without_submit_is_not_converged(tmp_path: Path) -> None:
    cassette = write_cassette(
        tmp_path / "endless.jsonl",
        [
            scripted_step("Look.", "print('one')"),
            scripted_step("Look more.", "print('two')"),
            scripted_extract("a guess", "SELECT * WHERE { ?s ?p ?o }", ["none"]),
        ],
    )
    with capture_events() as events:
        result = run(
            "q", PROV, model=f"scripted:{cassette}", trackers=[], max_iterations=2, config=QUIET
        )
    assert result.error is None
    assert not result.converged
    assert result.iterations == 2
    assert result.answer == "a guess"
    assert events.hook_names().count("iteration") == 2


def test_two_runs_in_parallel_threads_each_see_only_their_own_events(tmp_path: Path) -> None:
    cassettes = [
        write_cassette(
            tmp_path / f"thread{i}.jsonl",
            [
                scripted_step(
                    f"Thread {i} looks.", f"print('thread {i}')\nx = llm_query('hi {i}')"
                ),
                scripted_sub(f"sub answer {i}"),
                scripted_step(
                    f"Thread {i} submits.", f"SUBMIT(answer='{i}', sparql='', evidence=[])"
                ),
            ],
        )
        for i in range(2)
    ]
    recorders = [RecordingPlugin(), RecordingPlugin()]
    results: list[RunResult | None] = [None, None]

    def work(i: int) -> None:
        results[i] = run(
            f"question {i}",
            PROV,
            model=f"scripted:{cassettes[i]}",
            trackers=[],
            plugins=[recorders[i]],
            config=QUIET,
        )

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for i, (result, recorder) in enumerate(zip(results, recorders, strict=True)):
        assert result is not None
        assert result.answer == str(i)
        assert {event.run_id for event in recorder.events()} == {result.run_id}
        assert recorder.of("run_start")[0].payload.question == f"question {i}"
        outputs = [call.payload.output for call in recorder.of("iteration")]
        assert outputs[0].strip() == f"thread {i}"
    assert len({result.run_id for result in results if result is not None}) == 2


def test_a_run_leaves_dspy_global_settings_as_it_found_them() -> None:
    before_lm = dspy.settings.lm
    before_callbacks = list(dspy.settings.get("callbacks", []))
    prov_run()
    assert dspy.settings.lm is before_lm
    assert list(dspy.settings.get("callbacks", [])) == before_callbacks


def test_recording_a_run_writes_a_cassette_that_replays_the_same_run(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded.jsonl"
    first, first_events = prov_run(record=recorded)
    with capture_events() as events:
        second = run(PROV_QUESTION, PROV, model=f"scripted:{recorded}", trackers=[], config=QUIET)
    assert second.answer == first.answer
    assert second.sparql == first.sparql
    assert [c.payload.code for c in events.of("iteration")] == [
        c.payload.code for c in first_events.of("iteration")
    ]
    assert second.prompt_tokens == first.prompt_tokens


def test_no_model_is_a_config_error_before_anything_is_emitted() -> None:
    with capture_events() as events, pytest.raises(ConfigError, match="no model given"):
        run("q", PROV, trackers=[], config=QUIET)
    assert len(events) == 0


def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        run("q", PROV, model="openai/gpt-4o-mini", trackers=[], config=QUIET)
