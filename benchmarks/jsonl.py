"""Events per second of the jsonl tracker vs. plain ``orjson.dumps(event.to_dict())`` + write.

Run ``python benchmarks/jsonl.py [--json PATH] [--profile]``. The tracker is measured as the
engine uses it: ``manager.hook.iteration(run=..., step=...)`` through a real PluginManager, with
the default fsync policy (``run_end``). The baseline writes the same events the same crash-safe
way (one unbuffered write per line) with nothing else: no plugin dispatch, no structlog, no
redaction. Both run in the same process, interleaved round by round, with prebuilt payloads;
``run_end`` (one fsync per run) is timed apart. A buffered baseline is printed for reference.

Targets (checked on the best repetition; the exit code is 0 either way):
  * at least 150,000 events/s through the tracker;
  * at least half the rate of the plain orjson baseline.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import structlog
from _rows import ratio_row, row

import rlm_core
from rlm_core.events import Iteration, OntologyInfo, RunInfo, RunResult
from rlm_core.plugins import PluginManager
from rlm_core.testing import RunBuilder
from rlm_plugins.jsonl import JsonlTracker

RATE_TARGET = 150_000
RATIO_TARGET = 0.5

REASONING = (
    "The question asks for the properties whose domain is prov:Activity. I will search the "
    "ontology for rdfs:domain triples, then describe the first few results to check them."
)
CODE = (
    "rows = sparql_select('SELECT ?p WHERE { ?p rdfs:domain prov:Activity }')\n"
    "for row in rows[:5]:\n"
    "    print(row['p'], describe_entity(row['p'])['label'])\n"
)
OUTPUT = (
    "<http://www.w3.org/ns/prov#used> used\n"
    "<http://www.w3.org/ns/prov#wasAssociatedWith> wasAssociatedWith\n"
    "<http://www.w3.org/ns/prov#startedAtTime> startedAtTime\n"
    "<http://www.w3.org/ns/prov#endedAtTime> endedAtTime\n"
    "<http://www.w3.org/ns/prov#wasInformedBy> wasInformedBy\n"
)


@dataclasses.dataclass
class Variant:
    """One way of writing the events, and its per-repetition results."""

    key: str
    label: str
    measure: Callable[[Path, str, list[Iteration]], tuple[int, int]]
    rates: list[float] = dataclasses.field(default_factory=list)
    end_ms: list[float] = dataclasses.field(default_factory=list)

    @property
    def best(self) -> float:
        return max(self.rates)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


_BUILT: dict[str, tuple[RunInfo, list[Iteration], RunResult]] = {}


def steps_for(run_id: str, count: int) -> list[Iteration]:
    """Prebuilt payloads of one run (RunBuilder: real span fields), realistic in size (about 700
    bytes a line) and content (IRIs, code); its RunInfo and RunResult are kept for the run."""
    built = RunBuilder(
        run_id,
        start=datetime.now(UTC),
        question="Which properties have prov:Activity as their domain?",
        ontology=OntologyInfo(name="prov", path="prov-o.ttl", triples=1664),
        model="anthropic/claude-sonnet-4-5",
        sub_model="anthropic/claude-haiku-4-5",
    )
    for index in range(count):
        with built.iteration(
            index=index,
            reasoning=REASONING,
            code=CODE,
            output=OUTPUT,
            duration=0.0123,
            llm_calls_used=index % 7,
        ):
            pass
    result = built.end(
        answer="prov:used, prov:wasAssociatedWith, ...",
        sparql=None,
        evidence=None,
        llm_calls=count,
        prompt_tokens=0,
        completion_tokens=0,
        duration=1.0,
    )
    steps = [kwargs["step"] for hook, kwargs in built.calls if hook == "iteration"]
    _BUILT[run_id] = (built.run, steps, result)
    return steps


def run_info(run_id: str) -> RunInfo:
    return _BUILT[run_id][0]


def result_for(run_id: str) -> RunResult:
    return _BUILT[run_id][2]


def tracker_loop(directory: Path, run_id: str, steps: list[Iteration]) -> tuple[int, int]:
    """Through a PluginManager with the JsonlTracker; returns (events ns, run_end ns)."""
    manager = PluginManager(strict=True)  # a tracker that fails must not look fast
    manager.register(JsonlTracker(path=str(directory / "{run_id}.jsonl")))
    run = run_info(run_id)
    manager.hook.run_start(run=run)
    iteration = manager.hook.iteration
    start = time.perf_counter_ns()
    for step in steps:
        iteration(run=run, step=step)
    events = time.perf_counter_ns() - start
    result = result_for(run_id)
    start = time.perf_counter_ns()
    manager.hook.run_end(run=run, result=result)
    elapsed = time.perf_counter_ns() - start
    lines = (directory / f"{run_id}.jsonl").read_bytes().count(b"\n")
    if lines != len(steps) + 3:  # header, run_start, the steps, run_end
        raise SystemExit(f"the tracker wrote {lines} lines for {len(steps) + 3} records")
    return events, elapsed


def plain_loop(directory: Path, run_id: str, steps: list[Iteration]) -> tuple[int, int]:
    """orjson + one unbuffered write per line, fsync at the end: the same guarantees, bare."""
    with open(directory / f"{run_id}.jsonl", "ab", buffering=0) as file:
        write, dumps = file.write, orjson.dumps
        start = time.perf_counter_ns()
        for step in steps:
            write(dumps(step.to_dict()) + b"\n")
        events = time.perf_counter_ns() - start
        start = time.perf_counter_ns()
        os.fsync(file.fileno())
        return events, time.perf_counter_ns() - start


def buffered_loop(directory: Path, run_id: str, steps: list[Iteration]) -> tuple[int, int]:
    """orjson into a buffered file: fewer syscalls, but a crash loses the buffer (reference)."""
    with open(directory / f"{run_id}.jsonl", "ab") as file:
        write, dumps = file.write, orjson.dumps
        start = time.perf_counter_ns()
        for step in steps:
            write(dumps(step.to_dict()) + b"\n")
        events = time.perf_counter_ns() - start
        start = time.perf_counter_ns()
        file.flush()
        os.fsync(file.fileno())
        return events, time.perf_counter_ns() - start


def to_dict_loop(directory: Path, run_id: str, steps: list[Iteration]) -> tuple[int, int]:
    """``Event.to_dict()`` alone: the share of every variant that is not writing."""
    start = time.perf_counter_ns()
    for step in steps:
        step.to_dict()
    return time.perf_counter_ns() - start, 0


def measure(variants: list[Variant], directory: Path, events: int, repeat: int) -> None:
    """A warm-up round, then ``repeat`` rounds timing every variant once, in rotated order, with
    the garbage collector off; each measurement writes a file of its own."""
    for round_ in range(-1, repeat):
        shift = max(round_, 0) % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            run_id = f"{variant.key}-{round_ + 1}"
            steps = steps_for(run_id, events if round_ >= 0 else max(events // 10, 1000))
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                elapsed, end = variant.measure(directory, run_id, steps)
            finally:
                if gc_was_enabled:
                    gc.enable()
            if round_ >= 0:
                variant.rates.append(len(steps) / (elapsed / 1e9))
                variant.end_ms.append(end / 1e6)


def profile(directory: Path, events: int) -> None:
    """cProfile of one tracker measurement: where an event's time goes."""
    profiler = cProfile.Profile()
    profiler.enable()
    tracker_loop(directory, "profiled", steps_for("profiled", events))
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print("\nprofile of the tracker (by own time):")
    print(out.getvalue())


def report(variants: list[Variant], events: int, repeat: int) -> dict[str, Any]:
    """Print the rates and the target checks; return the numbers for ``--json``."""
    by_key = {variant.key: variant for variant in variants}
    print(
        f"rlm-core {rlm_core.__version__}, structlog {structlog.__version__}, "
        f"orjson {orjson.__version__}, Python {platform.python_version()} ({platform.machine()})"
    )
    print(f"{events:,} events per measurement, {repeat} repetitions, events/s\n")
    header = f"{'variant':<48} | {'best':>10} | {'median':>10} | {'us/event':>8} | {'end ms':>7}"
    print(header)
    print("-" * len(header))
    for variant in variants:
        end = f"{min(variant.end_ms):7.2f}" if variant.key != "to_dict" else f"{'-':>7}"
        print(
            f"{variant.label:<48} | {variant.best:>10,.0f} | {variant.median:>10,.0f} | "
            f"{1e6 / variant.best:8.2f} | {end}"
        )
    tracker, plain = by_key["tracker"], by_key["plain"]
    ratio = tracker.best / plain.best
    print(f"\ntracker / plain orjson: {ratio:.2f}")
    checks = [
        (
            f"tracker: {tracker.best:,.0f} events/s >= {RATE_TARGET:,}",
            tracker.best >= RATE_TARGET,
        ),
        (f"tracker / plain orjson: {ratio:.2f} >= {RATIO_TARGET}", ratio >= RATIO_TARGET),
    ]
    print("\ntargets:")
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return {
        "rlm_core": rlm_core.__version__,
        "python": platform.python_version(),
        "events": events,
        "repeat": repeat,
        "unit": "events per second",
        "variants": {
            v.key: {"label": v.label, "best": v.best, "median": v.median, "rates": v.rates}
            for v in variants
        },
        "ratio_tracker_to_plain": ratio,
        "rows": [
            row("jsonl tracker, default fsync", "events/s", tracker.rates),
            ratio_row("jsonl tracker vs plain orjson + write (rate)", tracker.rates, plain.rates),
        ],
        "targets": [{"check": text, "pass": ok} for text, ok in checks],
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print, optionally write JSON; always 0 (a measurement, not a test)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers here")
    parser.add_argument("--events", type=int, default=50_000, help="events per measurement")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of every variant")
    parser.add_argument(
        "--dir", type=Path, default=Path.cwd(), help="where the (temporary) logs go"
    )
    parser.add_argument("--profile", action="store_true", help="also profile the tracker")
    args = parser.parse_args(argv)

    variants = [
        Variant("tracker", "jsonl tracker via PluginManager (fsync run_end)", tracker_loop),
        Variant("plain", "orjson + unbuffered write (baseline)", plain_loop),
        Variant("buffered", "orjson + buffered write (reference)", buffered_loop),
        Variant("to_dict", "Event.to_dict() alone (reference)", to_dict_loop),
    ]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rlm-bench-jsonl-", dir=args.dir) as directory:
        measure(variants, Path(directory), args.events, args.repeat)
        data = report(variants, args.events, args.repeat)
        if args.profile:
            profile(Path(directory), args.events)
    print(f"\n({time.monotonic() - started:.1f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
