"""``rlm memory report`` over 50 real scripted runs recorded by the plugin alone (no other tracker):
the comparison with and without memory, per memory, in every format, and the plot."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from rlm_core._demo import DEMO_ONTOLOGY
from rlm_core.cli import main
from rlm_core.config import MemorySettings, Settings
from rlm_core.memory import memory_id
from rlm_plugins.memory_metrics import MemoryMetricsTracker
from rlm_plugins.memory_metrics.report import build_plot, read_runs
from tests.helpers.paths import REPO
from tests.memory_metrics.helpers import (
    EQUIPMENT,
    EQUIPMENT_QUESTION,
    HEADER,
    HIERARCHY,
    HIERARCHY_QUESTION,
    STEEP,
    TEA_QUESTION,
    cassette,
    entry,
    extracted,
    judged,
    memory_settings,
    scripted_run,
    seed,
    step,
    submit,
)

OFF = Settings(step_timeout=20.0, memory=MemorySettings(enabled=False))


@dataclasses.dataclass(frozen=True)
class Group:
    """Runs alike but for the verdict: the first ``successes`` succeed, the others fail."""

    name: str
    runs: int
    ontology: str
    question: str
    code: tuple[str, ...]  # one root step each (1000 prompt + 50 completion tokens)
    retrieve: int | None  # None: memory off (then nothing is judged)
    successes: int = 0


GROUPS = (
    Group("coffee-off", 10, "coffee", EQUIPMENT_QUESTION, ("print(1)", "print(2)", submit()), None),
    Group(
        "coffee-none", 10, "coffee", EQUIPMENT_QUESTION, ("print(1)", "print(2)", submit()), 0, 4
    ),
    Group(
        "equipment",
        10,
        "coffee",
        EQUIPMENT_QUESTION,
        ("print(describe_entity('coffee:usesEquipment'))", submit()),
        1,
        8,
    ),
    Group("hierarchy", 10, "coffee", HIERARCHY_QUESTION, ("print(1)", submit()), 1, 3),
    Group(
        "tea", 5, "tea", TEA_QUESTION, ("print(describe_entity('coffee:hasInput'))", submit()), 1, 5
    ),
    Group("tea-off", 5, "tea", TEA_QUESTION, ("print(1)", "print(2)", submit()), None),
)
# Tokens per run: 1050 per root step, plus judge (1500 + 20) and extractor (1500 + 10).
JUDGING = 1520 + 1510


def share(memory: Any) -> float:
    """The prompt share of a run with this one memory and two root calls of 1000 prompt tokens."""
    return len(HEADER + "\n" + entry(1, memory)) / 4 * 2 / 2000


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 runs, the groups interleaved in time, with only the memory_metrics plugin enabled."""
    root = tmp_path_factory.mktemp("report")
    db, state = root / "memory.db", root / "metrics.db"
    seed(db)
    tea = root / "tea.ttl"
    shutil.copy(DEMO_ONTOLOGY, tea)
    order = [(g, i) for i in range(10) for g in GROUPS if i < g.runs]
    assert len(order) == 50
    trackers = []
    for group, index in order:
        success = index < group.successes
        responses = [step(code) for code in group.code]
        if group.retrieve is not None:
            responses += [judged(success), extracted()]
        model = cassette(root / f"{group.name}-{success}.jsonl", *responses)
        settings = OFF if group.retrieve is None else memory_settings(db, retrieve=group.retrieve)
        trackers.append(MemoryMetricsTracker(db=str(db), state=str(state)))
        result = scripted_run(
            model,
            settings,
            trackers[-1],
            question=group.question,
            ontology=tea if group.ontology == "tea" else DEMO_ONTOLOGY,
        )
        assert result.converged, result.error
    assert all(tracker.close() for tracker in trackers), "every run's row was written"
    assert sorted(path.name for path in root.iterdir() if path.suffix == ".db") == [
        "memory.db",
        "metrics.db",
    ]
    return state


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["memory", "report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_report_compares_runs_with_and_without_memory(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(capsys, "--state", str(state), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert (data["runs"], data["ontology"]) == (50, None)
    coffee, tea = data["comparison"]
    assert (coffee["ontology"], tea["ontology"]) == ("coffee", "tea")
    for entry_ in (coffee, tea):
        for group in entry_.values():
            if isinstance(group, dict):
                assert group.pop("duration_s") > 0
    with_share = (share(EQUIPMENT) * 10 + share(HIERARCHY) * 10) / 20
    assert coffee["with_memory"] == {
        "runs": 20,
        "judged": 20,
        "success_rate": (8 + 3) / 20,
        "converged_rate": 1.0,
        "iterations": 2.0,
        "tokens": 2 * 1050 + JUDGING,
        "prompt_share": pytest.approx(with_share),
    }
    assert coffee["without_memory"] == {
        "runs": 20,
        "judged": 10,  # memory off: not judged
        "success_rate": 4 / 10,
        "converged_rate": 1.0,
        "iterations": 3.0,
        "tokens": (10 * 3 * 1050 + 10 * (3 * 1050 + JUDGING)) / 20,
        "prompt_share": 0.0,
    }
    assert tea["with_memory"]["success_rate"] == 1.0
    assert tea["with_memory"]["prompt_share"] == pytest.approx(share(STEEP))
    assert (tea["without_memory"]["judged"], tea["without_memory"]["success_rate"]) == (0, None)

    equipment, hierarchy, steep = data["memories"]
    assert equipment == {
        "memory_id": memory_id(EQUIPMENT.title, EQUIPMENT.content),
        "title": EQUIPMENT.title,
        "retrieved": 10,
        "used": 10,  # coffee:usesEquipment is in every one of its runs' code
        "success_rate": 8 / 10,
        "judged": 10,
        "baseline_success_rate": (4 + 3) / 20,  # judged coffee runs without it
        "baseline_judged": 20,
        "difference": pytest.approx(8 / 10 - 7 / 20),
    }
    assert (hierarchy["title"], hierarchy["retrieved"], hierarchy["used"]) == (
        HIERARCHY.title,
        10,
        0,
    )
    assert hierarchy["success_rate"] == 3 / 10
    assert hierarchy["baseline_success_rate"] == (4 + 8) / 20
    assert (steep["title"], steep["used"], steep["success_rate"]) == (STEEP.title, 5, 1.0)
    assert (steep["baseline_judged"], steep["difference"]) == (0, None)


def test_the_table(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = report(capsys, "--state", str(state))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Memory metrics: 50 runs in {state} (all ontologies)"
    rows = {
        tuple(line.split()[:2]): line.split()[2:]
        for line in lines
        if line.startswith(("coffee", "tea"))
    }
    with_share = (share(EQUIPMENT) + share(HIERARCHY)) / 2
    assert rows["coffee", "with"][:6] == ["20", "20", "55.0%", "100.0%", "2.00", "5130.0"]
    assert rows["coffee", "with"][7] == f"{with_share * 100:.1f}%"
    assert rows["coffee", "without"][:6] == ["20", "10", "40.0%", "100.0%", "3.00", "4665.0"]
    assert rows["tea", "without"][:3] == ["5", "0", "-"]
    equipment_id = memory_id(EQUIPMENT.title, EQUIPMENT.content)
    (equipment,) = (line for line in lines if equipment_id in line)
    assert equipment.split()[:7] == ["10", "10", "80.0%", "10", "35.0%", "20", "+45.0pp"]
    assert equipment.endswith(EQUIPMENT.title)


def test_markdown_and_one_ontology(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = report(
        capsys, "--state", str(state), "--ontology", "tea", "--format", "markdown"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Memory metrics: 10 runs in {state} (ontology tea)"
    assert "| ONTOLOGY | MEMORY | RUNS | JUDGED | SUCCESS |" in out
    assert any(
        line.startswith("| tea | with | 5 | 5 | 100.0% | 100.0% | 2.00 | 5130.0 |")
        for line in lines
    )
    assert any(line.startswith("| tea | without | 5 | 0 | - |") for line in lines)
    memory_rows = [line for line in lines if memory_id(STEEP.title, STEEP.content) in line]
    assert memory_rows == [
        f"| 5 | 5 | 100.0% | 5 | - | 0 | - | {memory_id(STEEP.title, STEEP.content)} | "
        f"{STEEP.title} |"
    ]
    assert "coffee" not in out


def png_chunks(data: bytes) -> dict[bytes, list[bytes]]:
    """The chunks of a PNG file by type, checking each one's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, list[bytes]] = {}
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc
        chunks.setdefault(kind, []).append(body)
        offset += 12 + length
    return chunks


def test_the_plot_is_a_png_written_by_matplotlib(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib", reason="the plot needs the plot extra (matplotlib)")
    path = tmp_path / "memory.png"
    code, out, _ = report(capsys, "--state", str(state), "--plot", str(path))
    assert code == 0
    assert out.startswith("Memory metrics: 50 runs")
    assert out.endswith(f"\nPlot written to {path.resolve()}\n")
    data = path.read_bytes()
    assert len(data) > 20_000  # two panels of 50 runs, not an empty canvas
    chunks = png_chunks(data)
    width, height = struct.unpack(">II", chunks[b"IHDR"][0][:8])
    assert (width, height) == (900, 600)
    texts = dict(body.split(b"\0", 1) for body in chunks.get(b"tEXt", []))
    assert texts[b"Software"].startswith(b"Matplotlib")
    assert chunks[b"IEND"] == [b""]


def test_without_matplotlib_the_plot_is_a_clear_error(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in sys.modules if name.startswith("matplotlib")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # what an installation without it sees
    path = tmp_path / "memory.png"
    code, out, err = report(capsys, "--state", str(state), "--plot", str(path))
    assert code == 2
    assert err.strip().endswith("pip install -e '" + str(REPO) + "[plot]'")
    assert out == ""
    assert not path.exists()


def test_a_missing_state_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = report(capsys, "--state", str(tmp_path / "none.db"))
    assert code == 2
    assert f"no memory metrics at {tmp_path / 'none.db'}" in err
    assert "memory_metrics tracker" in err


def test_the_state_file_comes_from_the_plugin_config(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RLM_CONFIG", raising=False)
    (tmp_path / "rlm.toml").write_text(f"[plugins.memory_metrics]\nstate = {str(state)!r}\n")
    code, out, _ = report(capsys, "--format", "json")
    assert code == 0
    assert json.loads(out)["runs"] == 50


def test_a_plot_into_a_missing_directory_is_refused_before_anything_is_printed(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plots" / "memory.png"
    code, out, err = report(capsys, "--state", str(state), "--plot", str(path))
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        f"rlm: error: --plot {path}: the directory {path.parent} does not exist"
    ]
    assert not path.parent.exists()


def test_with_json_the_plot_location_goes_to_stderr_and_stdout_stays_json(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib", reason="the plot needs the plot extra (matplotlib)")
    path = tmp_path / "memory.png"
    code, out, err = report(capsys, "--state", str(state), "--format", "json", "--plot", str(path))
    assert code == 0
    assert json.loads(out)["runs"] == 50
    assert err == f"Plot written to {path.resolve()}\n"
    assert path.stat().st_size > 0


def test_the_legends_sit_beside_the_panels_and_unjudged_runs_are_counted(state: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plot needs the plot extra (matplotlib)")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    runs = read_runs(state, None)
    with_memory = sum(1 for run in runs if run.success is None and run.with_memory)
    without = sum(1 for run in runs if run.success is None and not run.with_memory)
    assert without >= 10, "the coffee-off group runs without memory, so nobody judges it"
    figure = build_plot(runs, None)
    FigureCanvasAgg(figure).draw()
    success, tokens = figure.axes
    counts = [f"{with_memory} with memory"] if with_memory else []
    counts.append(f"{without} without memory")
    assert success.get_title(loc="left") == (
        "Judged runs only; not judged, so not shown: " + ", ".join(counts)
    )
    assert build_plot([run for run in runs if run.success is not None], None).axes[0].get_title(
        loc="left"
    ) == ("Every run was judged")
    renderer = figure.canvas.get_renderer()
    for axes in (success, tokens):
        legend = axes.get_legend().get_window_extent(renderer)
        assert not legend.overlaps(axes.get_window_extent(renderer)), "a legend over the points"
    labels = [text.get_text() for text in tokens.get_legend().get_texts()]
    assert "without memory (each run)" in labels


def test_output_writes_the_report_to_a_file_and_says_where(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.json"
    code, out, err = report(capsys, "--state", str(state), "--format", "json", "-o", str(path))
    assert code == 0
    assert json.loads(path.read_text(encoding="utf-8"))["runs"] == 50
    assert (out, err) == (f"Report written to {path.resolve()}\n", "")  # stdout is free
    code, out, _ = report(capsys, "--state", str(state), "--output", "-", "--format", "json")
    assert code == 0
    assert json.loads(out)["runs"] == 50


def test_output_into_a_missing_directory_is_refused_before_anything_is_printed(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nope" / "report.md"
    code, out, err = report(capsys, "--state", str(state), "-o", str(path))
    assert (code, out) == (2, "")
    assert err == f"rlm: error: --output {path}: the directory {path.parent} does not exist\n"
