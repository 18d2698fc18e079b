"""Engine-thread time of the mlflow tracker vs. direct synchronous MLflow logging, same run.

Run ``python benchmarks/mlflow_logging.py [--repeat N] [--json PATH]``. Every variant does the same
scripted 20-iteration run over prov.ttl, with one tracker:

* ``tracker``: :class:`rlm_plugins.mlflow.MlflowTracker` (hooks enqueue, a worker logs batches,
  ``run_end`` waits for the worker);
* ``direct``: a plugin that logs the same params, tags, metrics and artifacts with one fluent
  ``mlflow.log_param`` / ``log_metric`` / ``set_tag`` / ``log_text`` call per value, on the
  engine thread (the research code this project grows from);
* both again with traces (``log_traces = true``, built from the spans; ``mlflow.dspy.autolog()``
  for direct);
* ``none``: no tracker, for the run's own time.

Engine-thread time is the sum of the tracker's hook durations (each hook wrapped in a timer);
``run_end`` is shown apart (the tracker's hands its last records to the worker and returns).
"Added to run" is the run's wall time minus the run without a tracker: it also counts what
happens on the engine thread outside the hooks (MLflow's DSPy callbacks, with direct traces) and
the worker thread's competition for the GIL. Time to durable data is the wall time of ``run()``,
plus the tracker's ``flush``: then both variants have params, metrics, tags and artifacts in
MLflow. All variants share one SQLite store (one experiment
each), warmed up first; the repetitions are interleaved.

Targets (medians; the exit code is 0 either way):
  * the tracker's engine-thread time is at most a tenth of direct logging's;
  * the tracker's time to durable data is no worse than direct logging's.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from _rows import ratio_row, row

from rlm_core import Settings, run
from rlm_core.config import MemorySettings
from rlm_core.events import (
    Iteration,
    Judgment,
    LLMCall,
    MemoryExtraction,
    MemoryRetrieval,
    RunInfo,
    RunResult,
    ToolCall,
)
from rlm_core.hookspecs import hookimpl
from rlm_core.testing import scripted_step, write_cassette
from rlm_plugins.mlflow import MlflowTracker

ONTOLOGY = Path(__file__).resolve().parents[2] / "shared" / "ontologies" / "prov.ttl"
ITERATIONS = 20
ENGINE_RATIO_TARGET = 10.0
VARIANTS = ("none", "tracker", "direct", "tracker+traces", "direct+traces")


def make_cassette(path: Path) -> Path:
    """19 exploring steps that call the ontology tools, then SUBMIT: 20 iterations."""
    steps = [
        scripted_step(
            f"Step {i}: look around.",
            "print(search_entity('Activity', limit=3))\n"
            "print(sparql_select('SELECT ?c WHERE { ?c a owl:Class }', limit=5))\n"
            f"step_{i} = {i}",
        )
        for i in range(ITERATIONS - 1)
    ]
    steps.append(scripted_step("Submit.", "SUBMIT(answer='done', sparql='', evidence=[])"))
    return write_cassette(path, steps)


class DirectLogger:
    """The same data as the tracker, one synchronous fluent MLflow call per value."""

    name = "direct"

    def __init__(self, tracking_uri: str, experiment: str, traces: bool) -> None:
        # Imported by name: this file is called mlflow.py too.
        mlflow: Any = importlib.import_module("mlflow")
        importlib.import_module("mlflow.dspy")
        mlflow.set_tracking_uri(tracking_uri)
        self._mlflow = mlflow
        self._experiment = experiment
        self._traces = traces
        self._step = {"calls": 0, "prompt": 0, "completion": 0, "tools": 0}
        self._tool_calls = 0

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        self._mlflow.set_experiment(self._experiment)
        self._mlflow.dspy.autolog(disable=not self._traces, silent=True)
        self._mlflow.start_run(run_name=f"{run.ontology.name}-{run.run_id}")
        for key, value in {
            "question": run.question,
            "ontology": run.ontology.name,
            "ontology_path": run.ontology.path,
            "ontology_triples": run.ontology.triples,
            "model": run.model,
            "sub_model": run.sub_model or run.model,
            "max_iterations": run.limits.max_iterations,
            "max_llm_calls": run.limits.max_llm_calls,
            "step_timeout": run.limits.step_timeout,
            "max_output_chars": run.limits.max_output_chars,
            "rlm_core_version": "bench",
        }.items():
            self._mlflow.log_param(key, value)
        for key, value in {
            "rlm.run_id": run.run_id,
            "rlm.ontology": run.ontology.name,
            "rlm.model": run.model,
        }.items():
            self._mlflow.set_tag(key, value)

    @hookimpl
    def llm_call(self, run: RunInfo, call: LLMCall) -> None:
        self._step["calls"] += 1
        self._step["prompt"] += call.prompt_tokens or 0
        self._step["completion"] += call.completion_tokens or 0

    @hookimpl
    def tool_call(self, run: RunInfo, call: ToolCall) -> None:
        self._step["tools"] += 1
        self._tool_calls += 1

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        for key, value in {
            "step.llm_calls": self._step["calls"],
            "step.prompt_tokens": self._step["prompt"],
            "step.completion_tokens": self._step["completion"],
            "step.tool_calls": self._step["tools"],
            "step.duration_s": step.duration,
            "step.output_chars": len(step.output),
            "step.code_chars": len(step.code),
            "step.error": float(step.error is not None),
        }.items():
            self._mlflow.log_metric(key, value, step=step.index)
        self._step = dict.fromkeys(self._step, 0)

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        for key, value in {
            "iterations": result.iterations,
            "llm_calls": result.llm_calls,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "tokens": result.tokens,
            "tool_calls": self._tool_calls,
            "duration_s": result.duration,
            "converged": float(result.converged),
        }.items():
            self._mlflow.log_metric(key, value)
        self._mlflow.set_tag("rlm.converged", str(result.converged).lower())
        if result.answer is not None:
            self._mlflow.log_text(result.answer, "answer.md")
        if result.sparql:
            self._mlflow.log_text(result.sparql, "query.sparql")
        self._mlflow.log_text(json.dumps(result.evidence), "evidence.json")
        self._mlflow.end_run("FINISHED" if result.converged else "FAILED")
        self._mlflow.dspy.autolog(disable=True, silent=True)
        self._tool_calls = 0


class Timed:
    """Forwards every hook to ``inner`` and adds up the time spent in it, per hook."""

    def __init__(self, inner: Any) -> None:
        self.name = f"timed-{inner.name}"
        self.inner = inner
        self.seconds: dict[str, float] = {}

    def _call(self, hook: str, *args: Any) -> None:
        method: Callable[..., None] | None = getattr(self.inner, hook, None)
        if method is None:
            return
        started = time.perf_counter()
        try:
            method(*args)
        finally:
            self.seconds[hook] = self.seconds.get(hook, 0.0) + time.perf_counter() - started

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        self._call("run_start", run)

    @hookimpl
    def memory_retrieved(self, run: RunInfo, retrieval: MemoryRetrieval) -> None:
        self._call("memory_retrieved", run, retrieval)

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        self._call("iteration", run, step)

    @hookimpl
    def llm_call(self, run: RunInfo, call: LLMCall) -> None:
        self._call("llm_call", run, call)

    @hookimpl
    def tool_call(self, run: RunInfo, call: ToolCall) -> None:
        self._call("tool_call", run, call)

    @hookimpl
    def judgment(self, run: RunInfo, verdict: Judgment) -> None:
        self._call("judgment", run, verdict)

    @hookimpl
    def memory_extracted(self, run: RunInfo, extraction: MemoryExtraction) -> None:
        self._call("memory_extracted", run, extraction)

    @hookimpl
    def metrics(self, run: RunInfo, values: Mapping[str, float], step: int | None) -> None:
        self._call("metrics", run, values, step)

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        self._call("run_end", run, result)


def one_run(variant: str, cassette: Path, uri: str) -> dict[str, float]:
    """One scripted run; wall time, engine-thread hook time and the run_end part of it."""
    traces = variant.endswith("+traces")
    experiment = variant.replace("+", "-")
    plugins: list[object] = []
    timed = None
    inner: Any = None
    if variant != "none":
        if variant.startswith("tracker"):
            inner = MlflowTracker(tracking_uri=uri, experiment=experiment, log_traces=traces)
        else:
            inner = DirectLogger(uri, experiment, traces)
        timed = Timed(inner)
        plugins.append(timed)
    started = time.perf_counter()
    result = run(
        "q",
        ONTOLOGY,
        model=f"scripted:{cassette}",
        trackers=[],
        plugins=plugins,
        # Procedural memory off: its judge and extractor are not part of what is measured.
        config=Settings(max_iterations=ITERATIONS + 1, memory=MemorySettings(enabled=False)),
    )
    if isinstance(inner, MlflowTracker) and not inner.flush(60.0):
        # run_end hands over and returns: the data is durable once the worker delivered it.
        raise SystemExit("the tracker did not deliver within 60 s")
    wall = time.perf_counter() - started
    if result.iterations != ITERATIONS or not result.converged:
        raise SystemExit(f"benchmark run went wrong: {result}")
    hooks = sum(timed.seconds.values()) if timed else 0.0
    run_end = timed.seconds.get("run_end", 0.0) if timed else 0.0
    return {"wall": wall, "engine": hooks, "run_end": run_end}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", metavar="PATH", help="write the numbers as JSON")
    args = parser.parse_args()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.chdir(workdir)
        cassette = make_cassette(workdir / "bench.jsonl")
        uri = f"sqlite:///{workdir / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = uri  # where MLflow exports traces, for both
        for variant in VARIANTS:
            one_run(variant, cassette, uri)  # warm up: imports, store, experiments
        samples: dict[str, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
        for repetition in range(args.repeat):
            shift = repetition % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                samples[variant].append(one_run(variant, cassette, uri))
        # Before the store is deleted.
        importlib.import_module("mlflow").flush_trace_async_logging()
    summary = {
        variant: {
            key: statistics.median(sample[key] for sample in values)
            for key in ("wall", "engine", "run_end")
        }
        for variant, values in samples.items()
    }
    print(
        f"scripted {ITERATIONS}-iteration run over prov.ttl, SQLite store, "
        f"{args.repeat} repetitions, medians in ms"
    )
    print(
        f"{'variant':<16} {'run() wall':>11} {'added to run':>13} {'engine hooks':>13} "
        f"{'of it run_end':>14}"
    )
    base = summary["none"]["wall"]
    for variant, numbers in summary.items():
        wall, engine, run_end = (numbers[key] * 1e3 for key in ("wall", "engine", "run_end"))
        added = wall - base * 1e3
        print(f"{variant:<16} {wall:11.1f} {added:13.1f} {engine:13.1f} {run_end:14.1f}")
    print(
        "added to run = run() wall minus the run without a tracker: hooks, DSPy trace callbacks "
        "and the worker's competition for the GIL"
    )
    verdicts = {}
    for suffix in ("", "+traces"):
        tracker, direct = summary[f"tracker{suffix}"], summary[f"direct{suffix}"]
        ratio = direct["engine"] / tracker["engine"]
        label = suffix.strip("+") or "no traces"
        engine_ok = ratio >= ENGINE_RATIO_TARGET
        durable_ok = tracker["wall"] <= direct["wall"]
        verdicts[label] = {"engine_ratio": ratio, "engine_ok": engine_ok, "durable_ok": durable_ok}
        print(
            f"{'PASS' if engine_ok else 'FAIL'}  {label}: engine-thread time {ratio:.1f}x less "
            f"than direct logging (target >= {ENGINE_RATIO_TARGET:g}x)"
        )
        print(
            f"{'PASS' if durable_ok else 'FAIL'}  {label}: time to durable data "
            f"{tracker['wall'] * 1e3:.0f} ms vs {direct['wall'] * 1e3:.0f} ms direct "
            "(target: no worse)"
        )
    if args.json:
        rows = [row("scripted run, no tracker", "s", [s["wall"] for s in samples["none"]])]
        targets = []
        for suffix in ("", "+traces"):
            label = suffix.strip("+") or "no traces"
            tracker, direct = samples[f"tracker{suffix}"], samples[f"direct{suffix}"]
            rows.append(
                ratio_row(
                    f"engine-thread time, direct mlflow.log_* vs tracker ({label})",
                    [s["engine"] for s in direct],
                    [s["engine"] for s in tracker],
                )
            )
            rows.append(
                ratio_row(
                    f"time to durable data, tracker vs direct logging ({label})",
                    [s["wall"] for s in tracker],
                    [s["wall"] for s in direct],
                )
            )
            verdict = verdicts[label]
            targets.append(
                {
                    "check": f"{label}: engine-thread time {verdict['engine_ratio']:.1f}x less "
                    f"than direct logging (>= {ENGINE_RATIO_TARGET:g}x)",
                    "pass": verdict["engine_ok"],
                }
            )
            targets.append(
                {
                    "check": f"{label}: time to durable data no worse than direct logging",
                    "pass": verdict["durable_ok"],
                }
            )
        Path(args.json).write_text(
            json.dumps(
                {"medians_s": summary, "verdicts": verdicts, "rows": rows, "targets": targets},
                indent=2,
            ),
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
