"""The jsonl tracker: file format, lossless round trip, secrets, path templates, options,
concurrent runs sharing a file."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rlm_core import __version__
from rlm_core.config import Settings
from rlm_core.events import SCHEMA_VERSION, Iteration, Message, RunInfo, ToolCall
from rlm_core.plugins import get_plugin_manager
from rlm_core.runlog import iter_hook_calls, read_log
from rlm_core.testing import capture_events
from rlm_plugins.jsonl import REDACTED, JsonlTracker
from tests.helpers.factories import builder, iteration, run_info, run_result
from tests.helpers.jsonl import HookCalls, emit, realistic_run, strict_manager, write_log


def lines_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_header_then_one_line_per_hook_call(tmp_path: Path) -> None:
    calls = realistic_run()
    path = write_log(tmp_path, calls)
    assert path == tmp_path / "run-rt.jsonl"
    lines = lines_of(path)
    run = calls[0][1]["run"]
    assert lines[0] == {
        "record": "header",
        "schema_version": SCHEMA_VERSION,
        "rlm_core_version": __version__,
        "run": run.to_dict(),
    }
    assert [line["event"] for line in lines[1:]] == [hook for hook, _ in calls]
    assert lines[1] == run.to_dict()
    assert lines[-1] == calls[-1][1]["result"].to_dict()
    assert all(next(iter(line)) == "event" for line in lines[1:]), "the kind comes first"


def test_metrics_line_has_run_id_values_step_and_timestamp(tmp_path: Path) -> None:
    calls = realistic_run()
    metrics = [
        line for line in lines_of(write_log(tmp_path, calls)) if line.get("event") == "metrics"
    ]
    assert metrics[0]["values"] == {"tokens_so_far": 1020.0}
    assert metrics[0]["step"] == 0
    assert metrics[-1]["step"] is None
    for line in metrics:
        assert set(line) == {"event", "schema_version", "run_id", "values", "step", "timestamp"}
        assert line["run_id"] == "run-rt"
        assert datetime.fromisoformat(str(line["timestamp"])).tzinfo is not None


def test_round_trip_replays_exactly_the_live_calls(tmp_path: Path) -> None:
    calls = realistic_run(iterations=3)
    tracker = JsonlTracker(path=str(tmp_path / "{run_id}.jsonl"))
    with capture_events() as live:
        emit(get_plugin_manager(Settings(strict=True), plugins=[tracker], entry_points=[]), calls)
    log = read_log(tmp_path / "run-rt.jsonl")
    assert log.problems == []
    assert log.truncated_lines == []

    with capture_events() as replayed:
        manager = get_plugin_manager(Settings(strict=True), entry_points=[])
        for hook, kwargs in iter_hook_calls(log):
            getattr(manager.hook, hook)(**kwargs)

    assert len(live.calls) == len(calls)
    assert replayed.calls == live.calls
    assert {call.hook for call in replayed.calls} == {
        "run_start",
        "setup",
        "memory_retrieved",
        "iteration",
        "llm_call",
        "tool_call",
        "judgment",
        "memory_extracted",
        "metrics",
        "run_end",
    }


def test_values_orjson_refuses_are_still_written_exactly(tmp_path: Path) -> None:
    """Integers beyond 64 bits (SPARQL xsd:integer) and lone surrogates fall back to the standard
    library encoder instead of losing the record."""
    result = dataclasses.replace(
        run_result("run-big"), evidence=[{"count": 2**80}], answer="bad \udc80 byte"
    )
    calls: HookCalls = [
        ("run_start", {"run": run_info("run-big")}),
        ("run_end", {"run": run_info("run-big"), "result": result}),
    ]
    log = read_log(write_log(tmp_path, calls))
    assert log.problems == []
    assert log.records[-1].payload == result


def test_secrets_are_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_key = "sk-proj-Env0Only1Secret2Value3Abcdefghijklmnop"
    odd_key = "plain-looking-service-secret-42"
    monkeypatch.setenv("OPENAI_API_KEY", env_key)
    monkeypatch.setenv("MY_SERVICE_TOKEN", odd_key)
    secrets = {
        "anthropic": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEfGh",
        "slack": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "github": "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "aws": "AKIAIOSFODNN7EXAMPLE",
        "hex": "0123456789abcdef0123456789abcdef01234567",
        "bearer": "eyJhbGciOiJIUzI1NiJ9.payload.sig",
        "tag": "tag-value-secret",
        "argument": "hunter2-but-longer",
        "header": "Basic dXNlcjpwYXNzd29yZA==",
    }
    built = builder(
        "run-secret",
        question=f"Why does my key {secrets['anthropic']} fail?",
        tags={"team": "ontology", "api_key": secrets["tag"]},
    )
    run = built.run
    tool = built.tool_call(
        "fetch",
        arguments={
            "query": "Activity",
            "password": secrets["argument"],
            "headers": {"Authorization": secrets["header"]},
            "max_tokens": 100,
        },
        result_size=10,
        result_preview=f"Authorization: Bearer {secrets['bearer']}",
        duration=0.1,
    )
    call = built.llm_call(
        messages=(Message(role="user", text=f"my key is {secrets['anthropic']}"),),
        output=f"Use the header Authorization: Bearer {secrets['bearer']}",
    )
    step = dataclasses.replace(
        iteration("run-secret"),
        code=f'api_key = "{secrets["hex"]}"\nprint(os.environ)',
        output=(
            f"{{'OPENAI_API_KEY': '{env_key}', 'SERVICE': '{odd_key}', "
            f"'SLACK': '{secrets['slack']}', 'GH': '{secrets['github']}', "
            f"'AWS': '{secrets['aws']}'}}"
        ),
    )
    calls: HookCalls = [
        ("run_start", {"run": run}),
        ("tool_call", {"run": run, "call": tool}),
        ("llm_call", {"run": run, "call": call}),
        ("iteration", {"run": run, "step": step}),
        ("metrics", {"run": run, "values": {"prompt_tokens": 120.0}, "step": 0}),
        ("run_end", {"run": run, "result": run_result("run-secret")}),
    ]
    path = write_log(tmp_path, calls)
    written = path.read_bytes()
    for secret in (env_key, odd_key, *secrets.values()):
        assert secret.encode() not in written, secret
    assert written.count(REDACTED.encode()) >= len(secrets) + 2
    # What is not secret survives: counts under key-ish names, ordinary text and tags.
    log = read_log(path)
    assert log.problems == []
    tool_read = next(r.payload for r in log.records if isinstance(r.payload, ToolCall))
    assert tool_read.arguments["query"] == "Activity"
    assert tool_read.arguments["max_tokens"] == 100
    assert tool_read.arguments["headers"] == {"Authorization": REDACTED}
    assert log.runs["run-secret"].tags == {"team": "ontology", "api_key": REDACTED}
    assert b'"prompt_tokens":120.0' in written
    step_read = next(r.payload for r in log.records if isinstance(r.payload, Iteration))
    assert step_read.code == f'api_key = "{REDACTED}"\nprint(os.environ)'


def test_ordinary_text_is_not_redacted(tmp_path: Path) -> None:
    output = (
        "<http://www.w3.org/ns/prov#wasAssociatedWith> /data/ontologies/prov-o-2013-04-30.ttl\n"
        "ask-the-user-about-the-ontology-first token count: 12345 describe_entity_by_label_x"
    )
    step = dataclasses.replace(iteration("run-plain"), output=output)
    calls: HookCalls = [
        ("run_start", {"run": run_info("run-plain")}),
        ("iteration", {"run": run_info("run-plain"), "step": step}),
    ]
    log = read_log(write_log(tmp_path, calls))
    assert log.records[-1].payload == step


def test_long_strings_are_cut_marked_and_flagged(tmp_path: Path) -> None:
    step = dataclasses.replace(iteration("run-cut"), output="x" * 50, code="short")
    calls: HookCalls = [
        ("run_start", {"run": run_info("run-cut", tags={"note": "n" * 40})}),
        ("iteration", {"run": run_info("run-cut"), "step": step}),
    ]
    tracker = JsonlTracker(path=str(tmp_path / "{run_id}.jsonl"), max_field_chars=30)
    emit(strict_manager(tracker), calls)
    lines = lines_of(tmp_path / "run-cut.jsonl")
    assert lines[0]["truncated"] == ["run.tags.note"]
    assert lines[2]["output"] == "x" * 30 + "…[truncated 20 chars]"
    assert lines[2]["truncated"] == ["output"]
    assert lines[2]["code"] == "short"

    log = read_log(tmp_path / "run-cut.jsonl")
    assert log.problems == []
    assert log.truncated_lines == [1, 2, 3]
    assert [record.truncated for record in log.records] == [("tags.note",), ("output",)]
    assert [hook for hook, _ in iter_hook_calls(log)] == ["run_start", "iteration"]


@pytest.mark.parametrize("bad", [0, -1, "10", 2.5, True])
def test_max_field_chars_must_be_a_positive_integer(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match="max_field_chars must be a positive integer"):
        JsonlTracker(path=str(tmp_path / "{run_id}.jsonl"), max_field_chars=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["never", "run_end", "every_event"])
def test_every_fsync_policy_writes_the_whole_log(tmp_path: Path, policy: str) -> None:
    tracker = JsonlTracker(path=str(tmp_path / "{run_id}.jsonl"), fsync=policy)
    calls = realistic_run()
    emit(strict_manager(tracker), calls)
    assert len(lines_of(tmp_path / "run-rt.jsonl")) == len(calls) + 1


def test_an_unknown_fsync_policy_is_refused_with_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"one of never, run_end, every_event; got 'always'"):
        JsonlTracker(path=str(tmp_path / "{run_id}.jsonl"), fsync="always")


def test_the_default_path_is_runs_slash_run_id_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tracker = JsonlTracker()
    emit(strict_manager(tracker), realistic_run("abc123"))
    assert (tmp_path / "runs" / "abc123.jsonl").is_file()


def test_template_placeholders_and_created_directories(tmp_path: Path) -> None:
    tracker = JsonlTracker(path=str(tmp_path / "logs/{date}/{ontology}-{run_id}.jsonl"))
    run = run_info("r-7", start=datetime(2026, 5, 6, 23, 59, tzinfo=UTC))
    assert tracker.destination(run) == tmp_path / "logs" / "2026-05-06" / "prov-r-7.jsonl"
    emit(strict_manager(tracker), [("run_start", {"run": run})])
    assert (tmp_path / "logs" / "2026-05-06" / "prov-r-7.jsonl").is_file()


@pytest.mark.parametrize(
    "template",
    ["../elsewhere/{run_id}.jsonl", "runs/../../{run_id}.jsonl", "/tmp/rlm/../etc/{run_id}.jsonl"],
)
def test_templates_that_climb_out_are_refused(template: str) -> None:
    with pytest.raises(ValueError, match=r"must not contain '\.\.' segments"):
        JsonlTracker(path=template)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("runs/{user}.jsonl", r"unknown placeholder \{user\}"),
        ("runs/{run_id!r}.jsonl", r"unknown placeholder \{run_id\}"),
        ("runs/{run_id.jsonl", "expected '}'"),
        ("runs/", "names a directory"),
        ("", "non-empty string"),
    ],
)
def test_malformed_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JsonlTracker(path=template)


def test_hostile_run_ids_and_ontology_names_stay_inside_the_directory(tmp_path: Path) -> None:
    tracker = JsonlTracker(path=str(tmp_path / "runs/{ontology}/{run_id}.jsonl"))
    run = run_info("../../../etc/passwd")
    run = dataclasses.replace(run, ontology=dataclasses.replace(run.ontology, name="/abs/../../x"))
    target = tracker.destination(run)
    assert target.parent.parent == tmp_path / "runs"
    emit(strict_manager(tracker), [("run_start", {"run": run})])
    assert target.is_file()


def test_the_file_is_closed_when_its_last_run_ends(tmp_path: Path) -> None:
    tracker = JsonlTracker(path=str(tmp_path / "shared.jsonl"))
    manager = strict_manager(tracker)
    first, second = run_info("first"), run_info("second")
    manager.hook.run_start(run=first)
    manager.hook.run_start(run=second)
    manager.hook.run_end(run=first, result=run_result("first"))
    assert open_descriptors_of(tmp_path / "shared.jsonl") == 1
    manager.hook.run_end(run=second, result=run_result("second"))
    assert open_descriptors_of(tmp_path / "shared.jsonl") == 0


def open_descriptors_of(path: Path) -> int:
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd) == str(path)
        except OSError:
            continue
    return count


def test_threads_sharing_one_file_never_interleave_and_keep_order(tmp_path: Path) -> None:
    """8 runs in 8 threads, 2,000 iterations each, one tracker, one file (no {run_id})."""
    threads_count, per_thread = 8, 2000
    path = tmp_path / "all.jsonl"
    tracker = JsonlTracker(path=str(path))
    manager = strict_manager(tracker)
    start = threading.Barrier(threads_count)
    failures: list[BaseException] = []

    def work(number: int) -> None:
        run_id = f"thread-{number}"
        run = run_info(run_id)
        steps = [
            dataclasses.replace(iteration(run_id, index), seq=index + 1)
            for index in range(per_thread)
        ]
        try:
            start.wait()
            manager.hook.run_start(run=run)
            for step in steps:
                manager.hook.iteration(run=run, step=step)
            manager.hook.run_end(
                run=run, result=dataclasses.replace(run_result(run_id), seq=per_thread + 1)
            )
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []

    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    assert len(lines) == threads_count * (per_thread + 3)
    parsed = [json.loads(line) for line in lines]
    headers = [line for line in parsed if line.get("record") == "header"]
    assert len(headers) == threads_count

    log = read_log(path)
    assert log.problems == []
    assert len(log.runs) == threads_count
    for number in range(threads_count):
        records = log.records_of(f"thread-{number}")
        assert [r.hook for r in records] == ["run_start"] + ["iteration"] * per_thread + ["run_end"]
        seqs = [r.payload.seq for r in records if isinstance(r.payload, RunInfo | Iteration)]
        assert seqs == list(range(per_thread + 1))
        assert [r.payload.index for r in records if isinstance(r.payload, Iteration)] == list(
            range(per_thread)
        )


def test_a_tracker_dropped_mid_run_closes_its_file(tmp_path: Path) -> None:
    """A run whose run_end never came (the engine died) does not keep the file open forever."""
    path = tmp_path / "abandoned.jsonl"
    manager = strict_manager(JsonlTracker(path=str(path)))
    manager.hook.run_start(run=run_info("abandoned"))
    assert open_descriptors_of(path) == 1
    del manager
    gc.collect()
    assert open_descriptors_of(path) == 0
    assert len(lines_of(path)) == 2
