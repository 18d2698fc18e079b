"""``rlm replay FILE... --to NAME``: trackers found by real entry-point discovery receive the logged
runs again; bad lines are reported and skipped; a log is never appended to itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from rlm_core.runlog import MetricsPoint, read_log
from rlm_core.testing import RecordingPlugin, capture_events
from tests.helpers.jsonl import (
    START,
    install_replay_trackers,
    realistic_run,
    rlm_main,
    write_log,
)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return install_replay_trackers(tmp_path, monkeypatch)


@pytest.fixture
def rlm() -> Callable[..., int]:
    return rlm_main


def without_time(payload: object) -> object:
    if isinstance(payload, MetricsPoint):
        return dataclasses.replace(payload, timestamp=START)
    return payload


def live_calls(calls: list[tuple[str, dict[str, object]]]) -> list[tuple[str, dict[str, object]]]:
    """What a recorder sees live (it copies ``values``)."""
    return [(hook, dict(kwargs)) for hook, kwargs in calls]


def recorded(recorder: RecordingPlugin) -> list[tuple[str, dict[str, object]]]:
    return [(call.hook, dict(call.kwargs)) for call in recorder.calls]


def test_replay_emits_every_call_of_every_file_in_order(
    work: Path, rlm: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_log(work / "old", realistic_run("one"))
    second = write_log(work / "old", realistic_run("two", iterations=1))
    with capture_events() as seen:
        assert rlm("replay", str(first), str(second), "--to", "quiet") == 0
    expected = live_calls(realistic_run("one")) + live_calls(realistic_run("two", iterations=1))
    assert recorded(seen) == expected
    out, err = capsys.readouterr()
    assert err == ""
    assert out == f"Replayed 2 run(s), {len(expected)} event(s) from 2 file(s) into quiet; " \
        "0 problem(s)\n"  # fmt: skip


def test_replaying_twice_emits_the_same_run_ids_and_sequence_numbers(
    work: Path, rlm: Callable[..., int]
) -> None:
    log = write_log(work / "old", realistic_run())
    with capture_events() as first:
        assert rlm("replay", str(log), "--to", "quiet") == 0
    with capture_events() as second:
        assert rlm("replay", str(log), "--to", "quiet") == 0
    assert recorded(first) == recorded(second)
    seqs = [getattr(call.payload, "seq", None) for call in first.calls]
    assert seqs == [getattr(call.payload, "seq", None) for call in second.calls]


def test_bad_lines_are_reported_and_the_good_ones_replayed(
    work: Path, rlm: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(work / "old", realistic_run())
    lines = log.read_bytes().splitlines(keepends=True)
    damaged = work / "damaged.jsonl"
    damaged.write_bytes(b"".join([*lines[:3], b"garbage\n", *lines[3:]])[:-30])
    with capture_events() as seen:
        assert rlm("replay", str(damaged), "--to", "quiet") == 1
    # The cut run_end line is replaced by a closing one, so no target keeps the run open.
    assert [call.hook for call in seen.calls] == [hook for hook, _ in realistic_run()]
    closing = seen.calls[-1].payload
    assert not closing.converged
    assert closing.error.startswith("RunIncomplete: the log ends before the run's run_end")
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"rlm: replay: {damaged}:4: not valid JSON: Expecting value at column 1",
        f"rlm: replay: {damaged}:{len(lines) + 1}: truncated last line (the writer stopped in "
        "the middle of it)",
    ]
    assert out.endswith("into quiet; 2 problem(s); 1 run(s) without run_end replayed as failed\n")


def test_a_failing_tracker_makes_the_exit_code_1(
    work: Path, rlm: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(work / "old", realistic_run())
    assert rlm("replay", str(log), "--to", "failing") == 1
    err = capsys.readouterr().err
    assert "rlm: replay: tracker 'failing' raised 1 error(s) (logged above)" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.jsonl", "--to", "quiet"], "missing.jsonl: cannot read run log: No such file or "
         "directory"),
        # (other installed trackers may follow in the list)
        (["LOG", "--to", "nope"], "unknown tracker 'nope' in -t/--tracker (command line); "
         "installed trackers: failing, jsonl"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_with_one_line(
    work: Path,
    rlm: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    log = write_log(work / "old", realistic_run())
    argv = [str(log) if arg == "LOG" else arg for arg in argv]
    assert rlm("replay", *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rlm: error: {message}")
    assert len(err.splitlines()) == 1


def test_to_is_required(work: Path, rlm: Callable[..., int]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        rlm("replay", "some.jsonl")
    assert exit_info.value.code == 2


def test_replaying_a_log_into_jsonl_at_its_own_path_is_refused(
    work: Path, rlm: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(work / "runs", realistic_run())
    before = log.read_bytes()
    assert rlm("replay", str(log), "--to", "jsonl") == 2
    err = capsys.readouterr().err
    assert err == (
        f"rlm: error: refusing to replay run run-rt of {log} into 'jsonl': {log} is the log being "
        "replayed, and appending would duplicate it (set [plugins.jsonl] path to write "
        "elsewhere)\n"
    )
    assert log.read_bytes() == before


def test_replaying_into_jsonl_elsewhere_copies_the_log_once(
    work: Path, rlm: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(work / "runs", realistic_run())
    (work / "rlm.toml").write_text('[plugins.jsonl]\npath = "copies/{run_id}.jsonl"\n')
    assert rlm("replay", str(log), "--to", "jsonl") == 0
    copy = work / "copies" / "run-rt.jsonl"
    original, copied = read_log(log), read_log(copy)
    assert copied.problems == []
    assert copied.runs == original.runs
    # Metrics lines carry the time they were written (the hook has no timestamp to replay).
    assert [without_time(record.payload) for record in copied.records] == [
        without_time(record.payload) for record in original.records
    ]
    capsys.readouterr()
    assert rlm("replay", str(log), "--to", "jsonl") == 2
    assert f"{copy} already holds that run" in capsys.readouterr().err


def test_a_bad_jsonl_option_in_the_config_file_is_one_clear_line(
    work: Path, rlm: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(work / "old", realistic_run())
    (work / "rlm.toml").write_text('[plugins.jsonl]\nfsync = "always"\n')
    assert rlm("replay", str(log), "--to", "jsonl") == 2
    assert capsys.readouterr().err == (
        "rlm: error: tracker 'jsonl' was asked for but is unavailable: failed to start: "
        "ValueError: jsonl: fsync must be one of never, run_end, every_event; got 'always'\n"
    )


def test_a_version_1_log_replays_as_version_2_events(
    work: Path, rlm: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = Path(__file__).parent / "fixtures" / "v1" / "demo-schema-v1.jsonl"
    with capture_events() as seen:
        assert rlm("replay", str(v1), "--to", "quiet") == 0
    assert "0 problem(s)" in capsys.readouterr().out
    hooks = [call.hook for call in seen.calls]
    assert hooks.count("iteration") == 4
    assert hooks[0] == "run_start"
    assert hooks[-1] == "run_end"
    events = seen.events()
    run = events[0]
    assert all(event.run_id == run.run_id for event in events)
    assert all(event.parent_span_id == run.span_id for event in events[1:-1])
    assert events[-1].span_id == run.span_id
