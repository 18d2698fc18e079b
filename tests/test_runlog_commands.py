"""``rlm runs list`` and ``rlm runs show`` through the real ``main``: tables, timelines, damaged
and missing files, exit codes, no tracebacks."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rlm_core.testing import RunBuilder
from tests.helpers.jsonl import realistic_run, rlm_main, write_log


@pytest.fixture
def rlm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., int]:
    monkeypatch.chdir(tmp_path)
    return rlm_main


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """runs/ with a converged run, a failed one, a crashed one (no run_end) and a garbage file."""
    directory = tmp_path / "runs"
    write_log(directory, realistic_run("converged-run"))
    failed = realistic_run("failed-run", iterations=1)
    result = failed[-1][1]["result"]
    failed[-1][1]["result"] = type(result)(
        **{**result.__dict__, "error": "TimeoutError: step took too long", "converged": False}
    )
    write_log(directory, failed)
    write_log(directory, realistic_run("crashed-run", iterations=3)[:-4])
    (directory / "garbage.jsonl").write_text("{not json\n", encoding="utf-8")
    return directory


def test_list_shows_one_row_per_run_and_problems_on_stderr(
    rlm: Callable[..., int], logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm("runs", "list") == 0
    out, err = capsys.readouterr()
    header, *rows = out.splitlines()
    assert header.split() == [
        "RUN", "ID", "STARTED", "QUESTION", "ONTOLOGY", "ITER", "STATUS", "DURATION", "TOKENS"
    ]  # fmt: skip
    by_id = {row.split()[0]: row for row in rows}
    assert set(by_id) == {"converged-run", "failed-run", "crashed-run"}
    assert "  converged  " in by_id["converged-run"]
    assert "  failed  " in by_id["failed-run"]
    assert "  incomplete  " in by_id["crashed-run"]
    assert "Which properties have prov:Activity as …" in by_id["converged-run"]
    assert err == (
        f"{Path('runs/garbage.jsonl')}:1: not valid JSON: Expecting property name enclosed in "
        "double quotes at column 2 (1 problem(s) in this file; see rlm runs show "
        "runs/garbage.jsonl)\n"
    )


def test_list_json(rlm: Callable[..., int], logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rlm("runs", "list", "--json", "--dir", str(logs)) == 0
    listing = json.loads(capsys.readouterr().out)
    runs = {run["run_id"]: run for run in listing["runs"]}
    assert runs["converged-run"]["status"] == "converged"
    assert runs["converged-run"]["iterations"] == 2
    assert runs["converged-run"]["tokens"] == 2040
    assert runs["converged-run"]["duration"] == 12.0
    assert runs["crashed-run"]["status"] == "incomplete"
    assert runs["crashed-run"]["iterations"] == 3
    assert listing["problems"] == [
        {
            "path": str(logs / "garbage.jsonl"),
            "line_number": 1,
            "message": "not valid JSON: Expecting property name enclosed in double quotes at "
            "column 2",
        }
    ]


def test_list_without_a_runs_directory(
    rlm: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm("runs", "list") == 0
    assert capsys.readouterr().out == "No runs logged yet (runs/ does not exist).\n"
    assert rlm("runs", "list", "--dir", "elsewhere") == 2
    assert capsys.readouterr().err == "rlm: error: elsewhere: no such directory\n"


def test_show_prints_every_part_of_the_timeline(
    rlm: Callable[..., int], logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm("runs", "show", "converged-run") == 0
    out = capsys.readouterr().out
    expected = [
        "Run converged-run",
        "  question  Which properties have prov:Activity as their domain? («Aktivität»)",
        "  ontology  prov (/data/prov-o.ttl, 1664 triples)",
        "  tags      experiment=baseline, owner=ödön",
        "memory     retrieved 2 (k=3) for 'properties domain prov:Activity' in 4ms",
        "             1. Use rdfs:domain (m-1, score 3.25)",
        "lm call    root anthropic/claude-sonnet-4-5: 900 in / 120 out tokens, 830ms, $0.0042",
        "lm call    sub anthropic/claude-haiku-4-5: ? in / ? out tokens, 310ms",
        "tool call  sparql_select(query=",
        "iteration  1 (50ms, 2 sub-LM calls so far)",
        "               │ for row in rows[:5]:",
        "               │ NameError: name 'rowz' is not defined",
        "judgment   success (confidence 0.90)",
        "memory     extracted 2 (1 already stored)",
        "metrics    step 0: tokens_so_far=1020",
        "metrics    run: memory_hit_rate=0.5, memories=2",
        "run end    converged after 2 iterations, 4 LM calls, 2040 tokens, 12.0s",
    ]
    for fragment in expected:
        assert fragment in out
    assert "Problems" not in out


def test_show_a_crashed_run_by_file(
    rlm: Callable[..., int], logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm("runs", "show", str(logs / "crashed-run.jsonl")) == 0
    out = capsys.readouterr().out
    assert "iteration  2 " in out
    assert "(no run_end: the run is incomplete; it crashed or is still running)" in out


def test_show_a_run_inside_a_shared_file(
    rlm: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_log(tmp_path / "runs", realistic_run("first"), template="all.jsonl")
    write_log(tmp_path / "runs", realistic_run("second"), template="all.jsonl")
    assert rlm("runs", "show", "second") == 0
    out = capsys.readouterr().out
    assert out.startswith("Run second\n")
    assert "Run first" not in out


def test_show_lists_problems_with_file_and_line(
    rlm: Callable[..., int], logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = logs / "converged-run.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[:-25])
    assert rlm("runs", "show", "converged-run") == 0
    out = capsys.readouterr().out
    lines = data.count(b"\n")
    assert out.endswith(
        f"Problems in {Path('runs/converged-run.jsonl')} (1):\n"
        f"  runs/converged-run.jsonl:{lines}: truncated last line (the writer stopped in the "
        "middle of it)\n"
    )
    assert "(no run_end" in out


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("no-such-run", "no run 'no-such-run': it is not a file, and no log under runs/ has "
         "a run id that starts with it"),
        ("runs/missing.jsonl", "runs/missing.jsonl: no such file"),
        ("runs/garbage.jsonl", "runs/garbage.jsonl: not an rlm run log (not valid JSON: "
         "Expecting property name enclosed in double quotes at column 2)"),
        ("runs/empty.jsonl", "runs/empty.jsonl: not an rlm run log (empty file: the run wrote "
         "nothing (did it crash at once?))"),
        ("runs", "runs: is a directory, not a run log (try: rlm runs list --dir runs)"),
    ],
)  # fmt: skip
def test_show_exits_2_with_one_line_for_what_is_not_a_log(
    rlm: Callable[..., int],
    logs: Path,
    capsys: pytest.CaptureFixture[str],
    argument: str,
    message: str,
) -> None:
    (logs / "empty.jsonl").write_bytes(b"")
    assert rlm("runs", "show", argument) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"rlm: error: {message}\n"


def test_runs_without_a_subcommand_prints_help(
    rlm: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm("runs") == 2
    assert "usage: rlm runs" in capsys.readouterr().out


V1_LOG = Path(__file__).parent / "fixtures" / "v1" / "demo-schema-v1.jsonl"
"""A log the jsonl tracker wrote before spans (schema version 1): ``rlm demo`` of that code."""


def test_show_draws_the_span_tree_with_durations(
    rlm: Callable[..., int], logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm("runs", "show", "converged-run") == 0
    out = capsys.readouterr().out
    assert "     START    TOOK  SPAN" in out
    lines = [line for line in out.splitlines() if line[:12].strip().startswith("+")]
    spans = [line[21:] for line in lines]  # after START and TOOK: the indented headline
    indents = {" ".join(span.split()[:2]): len(span) - len(span.lstrip()) for span in spans}
    assert spans[0].startswith("run start")
    assert spans[1].startswith("  setup      prov (turtle, 1664 triples)")
    assert spans[-1].startswith("run end")
    step = next(i for i, span in enumerate(spans) if span.startswith("  iteration  0"))
    assert spans[step + 1].startswith("    lm call    root")  # a step's calls under the step
    assert spans[step + 2].startswith("    tool call  sparql_select")
    assert spans[step + 3].startswith("    lm call    sub")
    judgment = next(i for i, span in enumerate(spans) if span.startswith("  judgment"))
    assert spans[judgment + 1].startswith("    lm call    judge")
    assert indents["memory extracted"] == 2
    assert indents["tool call"] == 4
    took = lines[1][12:20].strip()
    assert took.endswith("ms")


def test_show_json_is_the_span_tree(
    rlm: Callable[..., int], logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm("runs", "show", "converged-run", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    (run,) = shown["runs"]
    assert run["complete"] is True
    tree = run["tree"]
    assert tree["event"] == "run_start"
    assert tree["result"]["event"] == "run_end"
    assert [child["event"] for child in tree["children"]] == [
        "setup", "memory_retrieved", "iteration", "iteration", "judgment", "memory_extracted"
    ]  # fmt: skip
    step = tree["children"][2]
    assert [child["event"] for child in step["children"]] == ["llm_call", "tool_call", "llm_call"]
    assert all(child["parent_span_id"] == step["span_id"] for child in step["children"])
    assert step["duration"] > 0
    assert [point["step"] for point in run["metrics"]] == [0, 1, None]


def test_show_takes_a_prefix_latest_or_a_file_name_under_runs(
    rlm: Callable[..., int], logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_log(logs, realistic_run("zz-newest-run", iterations=1))
    for reference in ("conv", "latest", "converged-run.jsonl", "zz-newest-run"):
        assert rlm("runs", "show", reference, "--json") == 0, reference
        (run,) = json.loads(capsys.readouterr().out)["runs"]
        newest = reference.startswith(("latest", "zz"))
        assert run["run_id"] == ("zz-newest-run" if newest else "converged-run")
    assert rlm("runs", "show", "c") == 2
    err = capsys.readouterr().err
    assert "run id 'c' is ambiguous: 2 runs start with it (converged-run, crashed-run)" in err


def test_list_is_newest_first_and_n_limits_it(
    rlm: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for day, run_id in enumerate(("oldest", "middle", "newest")):
        write_log(tmp_path / "runs", run_on_day(run_id, day))
    assert rlm("runs", "list", "--json") == 0
    assert [run["run_id"] for run in json.loads(capsys.readouterr().out)["runs"]] == [
        "newest", "middle", "oldest"
    ]  # fmt: skip
    assert rlm("runs", "list", "-n", "2") == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["newest", "middle"]
    with pytest.raises(SystemExit) as usage:
        rlm("runs", "list", "-n", "0")
    assert usage.value.code == 2
    assert "-n: expected a positive integer, got '0'" in capsys.readouterr().err


def run_on_day(run_id: str, day: int) -> list[tuple[str, dict[str, object]]]:
    built = RunBuilder(run_id, start=datetime(2026, 1, 1 + day, tzinfo=UTC))
    built.setup()
    built.end()
    return built.calls


def test_a_version_1_log_is_still_shown(
    rlm: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm("runs", "show", str(V1_LOG)) == 0
    out = capsys.readouterr().out
    assert "Problems" not in out
    assert "run end    converged after 4 iterations, 7 LM calls" in out
    assert out.count("iteration  ") == 4
    assert rlm("runs", "show", str(V1_LOG), "--json") == 0
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    # version 1 had no tree: every span hangs under the run
    assert len(run["tree"]["children"]) == 18
    parents = {child["parent_span_id"] for child in run["tree"]["children"]}
    assert parents == {run["tree"]["span_id"]}
