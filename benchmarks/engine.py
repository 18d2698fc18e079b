"""Cost of observing a run: a scripted 20-iteration run with and without plugins, side by side.

Variants, interleaved in one process so machine noise hits them alike:

- ``none``: no plugin at all (every hook is a no-op);
- ``noop``: one plugin implementing every hook, doing nothing;
- ``builtin``: every installed built-in tracker that is available (jsonl, mlflow,
  memory_metrics), writing into a temporary directory; only when ``--builtin`` is given. A run
  is timed until ``run()`` returns; the trackers' work after that is flushed (not timed) before
  the next run, so it is not billed to whatever runs next.
- ``builtin-traces``: the same with ``[plugins.mlflow] log_traces = true``.
- ``none-b2b`` / ``builtin-b2b`` (with ``--builtin``): ``BACK_TO_BACK`` runs one after another
  with no pause, then ``rlm_core.flush()``, timed together and divided by the number of runs:
  here the trackers' work after ``run_end`` is billed.
- ``otel``: the OpenTelemetry tracker alone, exporting every run over OTLP/HTTP to a local
  endpoint in another process (``_otlp_sink.py``); only when ``--otel`` is given.

Targets: noop / none <= 1.02 (issue 3); builtin / none <= 1.05 and builtin-b2b / none-b2b
<= 1.10 (issue 17); builtin-traces / none <= 1.10 (issue 13); otel / none <= 1.05 (issue 14).
Run: ``python benchmarks/engine.py [--repeat N] [--builtin] [--otel]``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from _rows import ratio_row, row

from rlm_core import Settings, flush, hookimpl, run
from rlm_core.config import MemorySettings
from rlm_core.testing import scripted_step, write_cassette

ONTOLOGY = Path(__file__).resolve().parents[2] / "shared" / "ontologies" / "prov.ttl"
ITERATIONS = 20
BACK_TO_BACK = 5


class NoopPlugin:
    """Implements every hook and does nothing: the cost of dispatch alone."""

    name = "noop"

    @hookimpl
    def run_start(self, run: object) -> None: ...

    @hookimpl
    def setup(self, run: object, setup: object) -> None: ...

    @hookimpl
    def memory_retrieved(self, run: object, retrieval: object) -> None: ...

    @hookimpl
    def iteration(self, run: object, step: object) -> None: ...

    @hookimpl
    def llm_call(self, run: object, call: object) -> None: ...

    @hookimpl
    def tool_call(self, run: object, call: object) -> None: ...

    @hookimpl
    def judgment(self, run: object, verdict: object) -> None: ...

    @hookimpl
    def memory_extracted(self, run: object, extraction: object) -> None: ...

    @hookimpl
    def metrics(self, run: object, values: Mapping[str, float], step: int | None) -> None: ...

    @hookimpl
    def run_end(self, run: object, result: object) -> None: ...


def make_cassette(path: Path) -> Path:
    """19 exploring steps that call the ontology tools, then SUBMIT: 20 iterations."""
    steps = []
    for i in range(ITERATIONS - 1):
        code = (
            f"print(search_entity('Activity', limit=3))\n"
            f"print(sparql_select('SELECT ?c WHERE {{ ?c a owl:Class }}', limit=5))\n"
            f"step_{i} = {i}"
        )
        steps.append(scripted_step(f"Step {i}: look around.", code))
    steps.append(scripted_step("Submit.", "SUBMIT(answer='done', sparql='', evidence=[])"))
    return write_cassette(path, steps)


def one_run(cassette: Path, variant: str, workdir: Path) -> float:
    """Seconds of one run of ``variant``; a ``-b2b`` variant: seconds per run of
    ``BACK_TO_BACK`` runs in a row plus the final flush."""
    if variant.endswith("-b2b"):
        started = time.perf_counter()
        for _ in range(BACK_TO_BACK):
            _timed_run(cassette, variant.removesuffix("-b2b"), workdir)
        if not flush(60.0):
            raise SystemExit("the trackers did not deliver within 60 s")
        return (time.perf_counter() - started) / BACK_TO_BACK
    elapsed = _timed_run(cassette, variant, workdir)
    if not flush(60.0):  # not timed: the next variant must not pay for this one's work
        raise SystemExit("the trackers did not deliver within 60 s")
    return elapsed


def _timed_run(cassette: Path, variant: str, workdir: Path) -> float:
    # Memory is not a tracker: off in every variant, so the ratios measure observation alone.
    traces = variant == "builtin-traces"
    settings = Settings(
        max_iterations=ITERATIONS + 1,
        memory=MemorySettings(enabled=False),
        plugins={"mlflow": {"log_traces": traces}},
    )
    builtin = variant.startswith("builtin")
    started = time.perf_counter()
    if variant == "otel":
        return _otel_run(cassette, settings, started)
    if builtin:
        result = run("q", ONTOLOGY, model=f"scripted:{cassette}", config=settings)
    else:
        plugins = [NoopPlugin()] if variant == "noop" else []
        result = run(
            "q",
            ONTOLOGY,
            model=f"scripted:{cassette}",
            trackers=[],
            plugins=plugins,
            config=settings,
        )
    elapsed = time.perf_counter() - started
    if result.iterations != ITERATIONS or not result.converged:
        raise SystemExit(f"benchmark run went wrong: {result}")
    if builtin and (result.plugin_errors or (workdir / "mlflow-spool").exists()):
        # A tracker that fails would make the built-in variant look cheap.
        raise SystemExit(f"a built-in tracker failed: {result.plugin_errors or 'mlflow spooled'}")
    return elapsed


_otel_endpoint: str | None = None


def _otel_run(cassette: Path, settings: Settings, started: float) -> float:
    """A run with the otel tracker built for it, as ``rlm run`` builds it; run_end's flush to
    the endpoint is part of the time, closing the tracker afterwards is not."""
    from rlm_plugins.otel import OtelTracker

    tracker = OtelTracker(endpoint=_otel_endpoint)
    result = run(
        "q", ONTOLOGY, model=f"scripted:{cassette}", trackers=[], plugins=[tracker], config=settings
    )
    elapsed = time.perf_counter() - started
    counts = tracker.counts
    tracker.close()
    if result.iterations != ITERATIONS or not result.converged:
        raise SystemExit(f"benchmark run went wrong: {result}")
    if counts.delivered != counts.submitted or counts.spooled_runs:
        # Spans that did not arrive would make the otel variant look cheap.
        raise SystemExit(f"the otel tracker did not deliver every span: {counts}")
    return elapsed


def _start_otlp_sink() -> None:
    """The local endpoint, in its own process, stopped when the benchmark exits."""
    global _otel_endpoint
    sink = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_otlp_sink.py"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    atexit.register(sink.wait, timeout=10)
    atexit.register(sink.terminate)  # registered last, so it runs first
    assert sink.stdout is not None
    _otel_endpoint = f"http://127.0.0.1:{int(sink.stdout.readline())}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--builtin", action="store_true", help="also time the built-in trackers")
    parser.add_argument("--otel", action="store_true", help="also time the otel tracker")
    parser.add_argument("--json", metavar="PATH", help="write the numbers as JSON")
    args = parser.parse_args()
    variants = ["none", "noop"] + (
        ["builtin", "builtin-traces", "none-b2b", "builtin-b2b"] if args.builtin else []
    )
    variants += ["otel"] if args.otel else []
    if args.otel:
        _start_otlp_sink()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.chdir(workdir)
        cassette = make_cassette(workdir / "bench.jsonl")
        for variant in variants:  # warm up: imports, the interpreter, the MLflow store
            one_run(cassette, variant, workdir)
        times: dict[str, list[float]] = {variant: [] for variant in variants}
        for repetition in range(args.repeat):
            order = variants[repetition % len(variants) :] + variants[: repetition % len(variants)]
            for variant in order:
                times[variant].append(one_run(cassette, variant, workdir))
    print(f"scripted {ITERATIONS}-iteration run over prov.ttl, {args.repeat} repetitions, seconds")
    print(f"{'variant':<12} {'min':>8} {'median':>8} {'max':>8} {'ratio (min)':>12}")
    # The verdict compares each variant's fastest run: on a shared 2-core machine the minimum is
    # the least disturbed estimate of a run's own cost; medians and maxima are in the report.
    summary = {}
    for variant, values in times.items():
        median = statistics.median(values)
        base = min(times["none-b2b" if variant.endswith("-b2b") else "none"])
        summary[variant] = {
            "min": min(values),
            "median": median,
            "max": max(values),
            "ratio": min(values) / base,
        }
        print(
            f"{variant:<12} {min(values):8.3f} {median:8.3f} {max(values):8.3f} "
            f"{min(values) / base:12.3f}"
        )
    checks = [
        (
            f"no-op plugin on every hook: {summary['noop']['ratio']:.3f}x <= 1.02x",
            summary["noop"]["ratio"] <= 1.02,
        )
    ]
    rows = [
        row(f"scripted {ITERATIONS}-iteration run, no trackers", "s", times["none"]),
        ratio_row("engine run, no-op plugin on every hook vs none", times["noop"], times["none"]),
    ]
    if "otel" in summary:
        checks.append(
            (
                f"otel tracker to a local OTLP endpoint: {summary['otel']['ratio']:.3f}x <= 1.05x",
                summary["otel"]["ratio"] <= 1.05,
            )
        )
        rows.append(
            ratio_row(
                "engine run, otel tracker (OTLP/HTTP to a local endpoint) vs none",
                times["otel"],
                times["none"],
            )
        )
    if "builtin" in summary:
        back_to_back = summary["builtin-b2b"]["ratio"]
        checks += [
            (
                f"built-in trackers: {summary['builtin']['ratio']:.3f}x <= 1.05x",
                summary["builtin"]["ratio"] <= 1.05,
            ),
            (
                f"built-in trackers, back to back: {back_to_back:.3f}x <= 1.10x",
                back_to_back <= 1.10,
            ),
            (
                f"built-in trackers, traces on: {summary['builtin-traces']['ratio']:.3f}x <= 1.10x",
                summary["builtin-traces"]["ratio"] <= 1.10,
            ),
        ]
        rows += [
            ratio_row(
                "engine run, all built-in trackers (traces off) vs none",
                times["builtin"],
                times["none"],
            ),
            ratio_row(
                "engine run, all built-in trackers (traces on) vs none",
                times["builtin-traces"],
                times["none"],
            ),
            ratio_row(
                f"{BACK_TO_BACK} runs back to back + flush, all built-in trackers (traces off) "
                "vs none",
                times["builtin-b2b"],
                times["none-b2b"],
            ),
        ]
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    if args.json:
        data = {
            "variants": summary,
            "rows": rows,
            "targets": [{"check": text, "pass": ok} for text, ok in checks],
        }
        Path(args.json).write_text(json.dumps(data, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
