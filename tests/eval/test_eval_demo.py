"""``rlm eval demo`` end to end: every run observed, graded, and the report's numbers by hand.

The demo has 3 tasks x 2 conditions (memory on, off) x 2 trials = 12 runs. The cassettes answer
brew-links and roast-levels right and farm-altitude wrong, whatever the memory, so each condition
has 4 successes in 6 runs. Tokens come from the cassettes' usage: brew-links 4,154 root + 245 sub
= 4,399; roast-levels 1,800 + 180 = 1,980; farm-altitude 1,800 + 165 = 1,965. With memory on, each
run also pays the judge and the extractor: +1,556 +1,713 (brew-links), +1,240 +1,290 (others).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlm_core.cli import main
from rlm_core.runlog import read_log


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("RLM_TRACKERS", "RLM_DISABLE", "RLM_CONFIG"):
            patch.delenv(variable, raising=False)
        patch.chdir(cwd)
        assert main(["eval", "demo", "-t", "jsonl", "-t", "memory_metrics"]) == 0
        assert main(["eval", "report", "eval-demo", "--format", "json", "-o", "report.json"]) == 0
    return cwd


def report(demo: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((demo / "report.json").read_text(encoding="utf-8"))


def test_twelve_runs_each_graded_once(demo: Path) -> None:
    data = report(demo)
    keys = sorted(record["key"] for record in data["records"])
    assert len(keys) == len(set(keys)) == 12
    grades = {(r["task"], r["condition"]): r["success"] for r in data["records"]}
    assert grades == {
        (task, condition): task != "farm-altitude"
        for task in ("brew-links", "roast-levels", "farm-altitude")
        for condition in ("memory=on", "memory=off")
    }


def test_condition_numbers_match_the_hand_worked_values(demo: Path) -> None:
    cells = {cell["condition"]: cell for cell in report(demo)["summary"]["conditions"]}
    for condition in ("memory=on", "memory=off"):
        cell = cells[condition]
        assert (cell["runs"], cell["successes"]) == (6, 4)
        assert cell["success_rate"] == pytest.approx(4 / 6)
        assert cell["interval"] == [
            pytest.approx(0.3000, abs=1e-4),
            pytest.approx(0.9032, abs=1e-4),
        ]
        # per task: pass@1 = pass@2 = 1, 1, 0 -> mean 2/3
        assert cell["pass_at"] == {"1": pytest.approx(2 / 3), "2": pytest.approx(2 / 3)}
        assert cell["pass_hat"] == {"1": pytest.approx(2 / 3), "2": pytest.approx(2 / 3)}
        assert cell["iterations"] == pytest.approx((4 + 2 + 2) / 3)
        assert cell["cost"] is None  # scripted LMs report no cost
        assert cell["errors"] == 0
    assert cells["memory=off"]["tokens"] == pytest.approx((4399 + 1980 + 1965) / 3)
    memory_on = (4399 + 1556 + 1713) + (1980 + 1240 + 1290) + (1965 + 1240 + 1290)
    assert cells["memory=on"]["tokens"] == pytest.approx(memory_on / 3)


def test_the_paired_comparison_sees_no_difference(demo: Path) -> None:
    (comparison,) = report(demo)["summary"]["comparisons"]
    assert comparison["first"] == "memory=on"
    assert comparison["second"] == "memory=off"
    assert (comparison["pairs"], comparison["only_first"], comparison["only_second"]) == (6, 0, 0)
    assert comparison["p_value"] == 1.0
    assert comparison["difference"] == 0.0


def test_every_run_is_a_tagged_observed_run_with_its_grade_in_the_log(demo: Path) -> None:
    data = report(demo)
    for record in data["records"]:
        log = read_log(Path(record["locations"]["jsonl"]))
        assert not log.problems
        run = log.records[0].payload
        expected = {
            "eval.id": data["eval"]["eval_id"],
            "eval.task": record["task"],
            "eval.condition": record["condition"],
            "eval.trial": str(record["trial"]),
        }
        if record["condition"] == "memory=on":  # the lane's own memory database
            lane_db = demo / "eval-demo" / "memory" / "memory=on" / f"trial-{record['trial']}.db"
            expected["eval.memory_db"] = str(lane_db)
        assert run.tags == expected
        kinds = [entry.payload.kind for entry in log.records]
        assert kinds.count("graded") == 1
        assert kinds[-1] == "run_end"
        last_step = max(i for i, kind in enumerate(kinds) if kind == "iteration")
        assert last_step < kinds.index("graded") < len(kinds) - 1
        grade = next(e.payload for e in log.records if e.payload.kind == "graded")
        assert grade.task == record["task"]
        assert grade.success is record["success"]
        assert [check.grader for check in grade.checks] == [c["grader"] for c in record["checks"]]
        memory_on = record["condition"] == "memory=on"
        assert ("judgment" in kinds) is memory_on


def test_each_memory_lane_has_its_own_database(demo: Path) -> None:
    databases = sorted(p.relative_to(demo) for p in (demo / "eval-demo" / "memory").rglob("*.db"))
    assert databases == [
        Path("eval-demo/memory/memory=on/trial-1.db"),
        Path("eval-demo/memory/memory=on/trial-2.db"),
    ]
    assert not (demo / "rlm-memory.db").exists()


def test_the_table_and_markdown_reports(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "report", str(demo / "eval-demo")]) == 0
    table = capsys.readouterr().out
    assert "12/12 runs" in table
    assert "memory=off  6     66.7%    30.0%-90.3%" in table
    assert main(["eval", "report", str(demo / "eval-demo"), "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| memory=on | 6 | 66.7% | 30.0%-90.3% | 0.667 | 0.667 |" in markdown
    lines = [line.split(" | ")[0] for line in markdown.splitlines() if "| memory=on |" in line]
    assert lines[1:] == ["| brew-links", "| roast-levels", "| farm-altitude"]  # file order


def test_report_of_a_directory_that_is_no_eval_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "report", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err == f"rlm: error: {tmp_path}: not an eval directory (no eval.json)\n"
    )


def test_the_memory_report_compares_graded_success_with_and_without_memory(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every run is graded, so the memory-metrics report counts all 12 as judged: the runs
    without memory are a baseline now."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(demo)
        assert main(["memory", "report", "--format", "json"]) == 0
    (coffee,) = json.loads(capsys.readouterr().out)["comparison"]
    groups = [coffee["with_memory"], coffee["without_memory"]]
    assert sum(group["runs"] for group in groups) == 12
    # Without grades only the 6 memory-on runs would be judged (the judge needs memory on).
    assert sum(group["judged"] for group in groups) == 12
