"""What parallel eval workers buy, and what a warm worker saves per run.

1. Throughput: the bundled eval set (3 tasks, memory off, ``--trials`` lanes) with every LM
   response delayed by 300 ms (``latency_ms`` in the cassettes, as a provider would be), run by
   ``rlm eval run`` with 1, 2 and 4 workers; runs per minute. Target: 4 workers >= 3x one.
2. Per-run engine cost, no trackers, LM without delay: a cold run (what ``rlm run`` does today:
   a new plugin manager, the ontology parsed, its sense card built) against a warm worker's run
   (the lane's plugin manager reused, the ontology and its sense card from the per-process
   cache), interleaved, over prov.ttl (1,600 triples) and the demo's coffee.ttl. Target:
   warm <= 0.5x cold on prov.ttl.

Run: ``python benchmarks/eval.py [--trials N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _rows import ratio_row, row

from rlm_core.config import CliOptions, load_settings
from rlm_core.engine.runner import run
from rlm_core.eval.demo import DEMO_CASSETTES, copy_demo
from rlm_core.eval.driver import EvalOptions, run_eval
from rlm_core.eval.lanes import close_plugins
from rlm_core.ontology.cache import clear_ontology_cache
from rlm_core.plugins import get_plugin_manager
from rlm_core.testing import DEMO_ONTOLOGY

ROOT = Path(__file__).resolve().parents[1]
PROV = ROOT.parent / "shared" / "ontologies" / "prov.ttl"
PROV_CASSETTE = ROOT / "tests" / "cassettes" / "prov-activity.jsonl"
PROV_QUESTION = "What is prov:Activity and which properties link it to agents?"
LATENCY_MS = 300
WORKERS = (1, 2, 4)


def throughput(workdir: Path, trials: int) -> dict[int, float]:
    """Runs per minute for each worker count."""
    tasks, cassettes = copy_demo(workdir, LATENCY_MS)
    settings = load_settings(
        CliOptions(model=f"scripted:{cassettes}", no_trackers=True), env={}, cwd=workdir
    )
    rates = {}
    for workers in WORKERS:
        options = EvalOptions(
            tasks=tasks,
            out=workdir / f"out-{workers}",
            trials=trials,
            vary=("memory=off",),
            workers=workers,
        )
        with open(os.devnull, "w") as quiet:
            started = time.perf_counter()
            outcome = run_eval(options, settings, progress=quiet)
            seconds = time.perf_counter() - started
        if outcome.ran != trials * 3 or any(r.error for r in outcome.records):
            raise SystemExit(f"the eval with {workers} worker(s) did not run cleanly")
        rates[workers] = outcome.ran / seconds * 60
        print(
            f"{workers} worker(s): {outcome.ran} runs in {seconds:.1f} s, {rates[workers]:.0f}/min"
        )
    return rates


def engine_cost(
    question: str, ontology: Path, cassette: Path, repeat: int
) -> tuple[list[float], list[float]]:
    """Seconds per cold and per warm run, interleaved."""
    settings = load_settings(CliOptions(model=f"scripted:{cassette}", no_trackers=True), env={})
    settings = dataclasses.replace(
        settings, memory=dataclasses.replace(settings.memory, enabled=False)
    )
    warm_manager = get_plugin_manager(settings)
    run(question, ontology, config=settings, manager=warm_manager)  # imports, first parse
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(repeat):
        clear_ontology_cache()
        started = time.perf_counter()
        manager = get_plugin_manager(settings)
        run(question, ontology, config=settings, manager=manager)
        close_plugins(manager)
        cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        run(question, ontology, config=settings, manager=warm_manager)
        warm.append(time.perf_counter() - started)
    close_plugins(warm_manager)
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="lanes per worker count")
    parser.add_argument("--repeat", type=int, default=9, help="cold/warm run pairs")
    parser.add_argument("--json", metavar="PATH", help="write the numbers as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        rates = throughput(Path(tmp), args.trials)
        costs: dict[str, tuple[list[float], list[float]]] = {}
        for name, question, ontology, cassette in (
            ("prov.ttl", PROV_QUESTION, PROV, PROV_CASSETTE),
            (
                "coffee.ttl",
                "Which roast levels does the coffee ontology define?",
                DEMO_ONTOLOGY,
                DEMO_CASSETTES / "roast-levels.jsonl",
            ),
        ):
            costs[name] = engine_cost(question, ontology, cassette, args.repeat)
            cold, warm = costs[name]
            print(f"{name}: cold run {min(cold) * 1000:.0f} ms, warm {min(warm) * 1000:.0f} ms")
    speedup = rates[4] / rates[1]
    prov_cold, prov_warm = costs["prov.ttl"]
    warm_ratio = min(prov_warm) / min(prov_cold)
    checks = [
        (f"eval with 4 workers vs 1: {speedup:.2f}x >= 3x", speedup >= 3),
        (f"warm worker run vs cold run (prov.ttl): {warm_ratio:.2f}x <= 0.5x", warm_ratio <= 0.5),
    ]
    rows: list[dict[str, Any]] = [
        row(f"eval runs per minute, {w} worker(s), LM latency {LATENCY_MS} ms", "runs/min", [r])
        for w, r in rates.items()
    ]
    for name, (cold, warm) in costs.items():
        rows.append(row(f"engine run, cold ({name}, no trackers)", "s", cold))
        rows.append(ratio_row(f"engine run, warm worker vs cold ({name})", warm, cold))
    for text, ok in checks:
        print(("PASS " if ok else "FAIL ") + text)
    if args.json:
        data = {"rows": rows, "targets": [{"check": text, "pass": ok} for text, ok in checks]}
        Path(args.json).write_text(json.dumps(data, indent=2), encoding="utf-8")
    sys.exit(0)


if __name__ == "__main__":
    main()
