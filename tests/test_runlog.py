"""Reading logs back: damaged files, logs without headers, finding logs and runs."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlm_core import hookspecs
from rlm_core.events import RunInfo
from rlm_core.runlog import (
    LogNotFoundError,
    LogProblem,
    MetricsPoint,
    find_logs,
    iter_hook_calls,
    locate_run,
    read_log,
)
from tests.helpers.jsonl import realistic_run, write_log


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write_log(tmp_path / "good", realistic_run())


def replayed_hooks(path: Path) -> list[str]:
    return [hook for hook, _ in iter_hook_calls(read_log(path))]


def test_a_good_log_has_no_problems(good: Path) -> None:
    log = read_log(good)
    assert log.problems == []
    assert log.header == realistic_run()[0][1]["run"]
    assert len(log.records) == len(realistic_run())
    metrics = [record.payload for record in log.records if record.hook == "metrics"]
    assert metrics[0] == MetricsPoint(
        run_id="run-rt", values={"tokens_so_far": 1020.0}, step=0, timestamp=metrics[0].timestamp
    )


def test_a_truncated_last_line_is_reported_and_the_rest_replays(good: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.jsonl"
    data = good.read_bytes()
    cut.write_bytes(data[: len(data) - 40])
    lines = data.count(b"\n")
    log = read_log(cut)
    assert [str(problem) for problem in log.problems] == [
        f"{cut}:{lines}: truncated last line (the writer stopped in the middle of it)"
    ]
    assert replayed_hooks(cut) == [hook for hook, _ in realistic_run()][:-1]


def test_a_garbage_line_is_reported_and_reading_goes_on(good: Path, tmp_path: Path) -> None:
    lines = good.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "garbage.jsonl"
    garbage = [b"\xffnot text\n", b"not json at all\n", b"[1, 2]\n", b'{"event": "nope"}\n']
    bad.write_bytes(b"".join([*lines[:3], *garbage, *lines[3:]]))
    log = read_log(bad)
    assert [str(problem) for problem in log.problems] == [
        f"{bad}:4: not UTF-8 text",
        f"{bad}:5: not valid JSON: Expecting value at column 1",
        f"{bad}:6: expected a JSON object, got list",
        f"{bad}:7: unknown event kind 'nope' (known: iteration, judgment, llm_call, "
        "memory_extracted, memory_retrieved, run_end, run_start, setup, tool_call)",
    ]
    assert replayed_hooks(bad) == [hook for hook, _ in realistic_run()]


def test_an_unknown_schema_version_names_the_line(good: Path, tmp_path: Path) -> None:
    lines = good.read_bytes().splitlines(keepends=True)
    future = json.loads(lines[4])
    future["schema_version"] = 99
    bad = tmp_path / "future.jsonl"
    bad.write_bytes(b"".join([*lines[:4], json.dumps(future).encode() + b"\n", *lines[5:]]))
    log = read_log(bad)
    assert [str(problem) for problem in log.problems] == [
        f"{bad}:5: schema_version 99 is not supported (this rlm-core reads 1, 2)"
    ]
    assert len(list(iter_hook_calls(log))) == len(realistic_run()) - 1


def test_a_header_of_an_unknown_version_leaves_the_run_start_line(
    good: Path, tmp_path: Path
) -> None:
    lines = good.read_bytes().splitlines(keepends=True)
    header = json.loads(lines[0])
    header["schema_version"] = 99
    bad = tmp_path / "header.jsonl"
    bad.write_bytes(b"".join([json.dumps(header).encode() + b"\n", *lines[1:]]))
    log = read_log(bad)
    assert [str(problem) for problem in log.problems] == [
        f"{bad}:1: header: schema_version 99 is not supported (this rlm-core reads 1, 2)"
    ]
    assert replayed_hooks(bad) == [hook for hook, _ in realistic_run()]


def test_an_empty_file_is_a_problem(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    log = read_log(empty)
    assert [str(problem) for problem in log.problems] == [
        f"{empty}: empty file: the run wrote nothing (did it crash at once?)"
    ]
    assert log.header is None
    assert list(iter_hook_calls(log)) == []


def test_a_missing_file_raises_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(LogNotFoundError, match="cannot read run log"):
        read_log(tmp_path / "nope.jsonl")


def test_without_header_the_run_start_line_provides_the_run(good: Path, tmp_path: Path) -> None:
    headless = tmp_path / "headless.jsonl"
    headless.write_bytes(b"".join(good.read_bytes().splitlines(keepends=True)[1:]))
    log = read_log(headless)
    assert log.problems == []
    assert log.header == realistic_run()[0][1]["run"]
    assert replayed_hooks(headless) == [hook for hook, _ in realistic_run()]


def test_a_header_without_run_start_line_replays_a_run_start_first(
    good: Path, tmp_path: Path
) -> None:
    """The tracker joined mid-run: it wrote the header on the first event it saw."""
    lines = good.read_bytes().splitlines(keepends=True)
    late = tmp_path / "late.jsonl"
    late.write_bytes(b"".join([lines[0], *lines[2:]]))
    calls = list(iter_hook_calls(read_log(late)))
    assert calls[0] == ("run_start", {"run": realistic_run()[0][1]["run"]})
    assert [hook for hook, _ in calls] == [hook for hook, _ in realistic_run()]


def test_lines_without_any_run_info_are_reported_not_replayed(good: Path, tmp_path: Path) -> None:
    lines = good.read_bytes().splitlines(keepends=True)
    orphaned = tmp_path / "orphaned.jsonl"
    orphaned.write_bytes(b"".join(lines[2:]))
    log = read_log(orphaned)
    assert [str(problem) for problem in log.problems] == [
        f"{orphaned}:1: {len(lines) - 2} line(s) of run 'run-rt' have no header or run_start "
        "line before them; they cannot be replayed"
    ]
    assert list(iter_hook_calls(log)) == []


def test_metrics_lines_are_validated(good: Path, tmp_path: Path) -> None:
    base = {"event": "metrics", "schema_version": 1, "run_id": "run-rt", "step": None}
    stamp = {"timestamp": "2026-01-01T00:00:00+00:00"}
    variants = [
        {**base, **stamp, "values": {"a": "high"}},
        {**base, **stamp, "values": {"a": 1.0}, "step": "one"},
        {**base, "values": {"a": 1.0}},
        {**base, **stamp, "values": {"a": None}},
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(good.read_bytes() + b"".join(json.dumps(v).encode() + b"\n" for v in variants))
    log = read_log(path)
    first = len(realistic_run()) + 2
    assert log.problems == [
        LogProblem(str(path), first, "metrics: 'values' must map names to numbers"),
        LogProblem(str(path), first + 1, "metrics: 'step' must be an integer or null, got 'one'"),
        LogProblem(str(path), first + 2, "metrics: 'timestamp' must be an ISO 8601 string"),
    ]
    nan = log.records[-1].payload
    assert isinstance(nan, MetricsPoint)
    assert nan.values["a"] != nan.values["a"], "null stands for a non-finite number"


def test_runs_sharing_a_file_are_told_apart(tmp_path: Path) -> None:
    path = write_log(tmp_path, realistic_run("one"), template="shared.jsonl")
    write_log(tmp_path, realistic_run("two", iterations=1), template="shared.jsonl")
    log = read_log(path)
    assert list(log.runs) == ["one", "two"]
    calls = list(iter_hook_calls(log, run_id="two"))
    assert {kwargs["run"].run_id for _, kwargs in calls} == {"two"}
    assert len(calls) == len(realistic_run("two", iterations=1))


def test_find_logs_and_locate_runs(tmp_path: Path) -> None:
    logs = tmp_path / "runs"
    own = write_log(logs, realistic_run("alpha"))
    shared = write_log(logs, realistic_run("beta"), template="2026/all.jsonl")
    (logs / "notes.txt").write_text("not a log")
    assert find_logs(logs) == sorted([own, shared])
    assert locate_run("alpha", logs) == (own, None)
    assert locate_run("beta", logs) == (shared, "beta")
    assert locate_run(str(shared), logs) == (shared, None)
    with pytest.raises(LogNotFoundError, match="no run 'gamma'"):
        locate_run("gamma", logs)
    with pytest.raises(LogNotFoundError, match=r"gone\.jsonl: no such file"):
        locate_run(str(tmp_path / "gone.jsonl"), logs)
    assert find_logs(tmp_path / "missing") == []


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
KEYS = st.sampled_from(
    ["event", "record", "schema_version", "run_id", "seq", "timestamp", "run", "values", "items"]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.dictionaries(KEYS, JSON_VALUES | st.sampled_from(["run_start", "metrics", "header", 1]))
        | JSON_VALUES,
        max_size=5,
    )
)
def test_no_content_makes_the_reader_raise(tmp_path: Path, lines: list[object]) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    log = read_log(path)
    for hook, kwargs in iter_hook_calls(log):
        assert isinstance(kwargs["run"], RunInfo)
        assert set(kwargs) == set(inspect.signature(getattr(hookspecs, hook)).parameters)


def test_timestamps_without_utc_offset_are_refused(good: Path, tmp_path: Path) -> None:
    """They could not be placed on a timeline next to the others (the writer never makes them)."""
    lines = good.read_bytes().splitlines(keepends=True)
    naive = json.loads(lines[3])
    naive["timestamp"] = "2026-03-04T05:06:08"
    bad = tmp_path / "naive.jsonl"
    bad.write_bytes(b"".join([*lines[:3], json.dumps(naive).encode() + b"\n", *lines[4:]]))
    log = read_log(bad)
    assert [str(problem) for problem in log.problems] == [
        f"{bad}:4: {naive['event']}: timestamp 2026-03-04 05:06:08 has no UTC offset"
    ]
