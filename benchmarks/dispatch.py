"""Cost of emitting one hook: rlm-core's PluginManager vs. bare pluggy vs. a list of callbacks.

Run ``python benchmarks/dispatch.py [--json PATH]``. Every variant is measured in the same process
and the same run, interleaved (one repetition of every variant, then the next round), so machine
noise hits them alike. Payloads are built once; only the emitting call is timed. Times include the
timing loop's own overhead (printed separately), so they are upper bounds.

Targets (checked on the min over repetitions; the exit code is 0 either way):
  * at most 0.2 us per event when no plugin implements the hook;
  * at most 2x bare pluggy per event with 1 to 10 plugins.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import itertools
import json
import logging
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pluggy
from _rows import ratio_row, row

import rlm_core
from rlm_core import hookspecs
from rlm_core.events import Iteration, OntologyInfo, RunInfo
from rlm_core.hookspecs import hookimpl
from rlm_core.plugins import PluginManager
from rlm_core.testing import RunBuilder

PLUGIN_COUNTS = (0, 1, 3, 10)
NOOP_TARGET_US = 0.2
RATIO_TARGET = 2.0

# A timed loop: (target, run, step, iterations) -> elapsed nanoseconds.
Loop = Callable[[Any, RunInfo, Iteration, int], int]


class NoopPlugin:
    """Implements ``iteration`` and does nothing."""

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        pass


class FailingPlugin:
    """Implements ``iteration`` and raises every time."""

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        raise RuntimeError("tracker backend is down")


def rlm_loop(manager: PluginManager, run: RunInfo, step: Iteration, n: int) -> int:
    """Emit through rlm-core, exactly as the engine does."""
    start = time.perf_counter_ns()
    for _ in itertools.repeat(None, n):
        manager.hook.iteration(run=run, step=step)
    return time.perf_counter_ns() - start


def pluggy_loop(pm: pluggy.PluginManager, run: RunInfo, step: Iteration, n: int) -> int:
    """Emit through a bare pluggy PluginManager."""
    start = time.perf_counter_ns()
    for _ in itertools.repeat(None, n):
        pm.hook.iteration(run=run, step=step)
    return time.perf_counter_ns() - start


def list_loop(
    callbacks: list[Callable[[RunInfo, Iteration], None]], run: RunInfo, step: Iteration, n: int
) -> int:
    """Call a plain list of callbacks."""
    start = time.perf_counter_ns()
    for _ in itertools.repeat(None, n):
        for callback in callbacks:
            callback(run, step)
    return time.perf_counter_ns() - start


def empty_loop(target: object, run: RunInfo, step: Iteration, n: int) -> int:
    """The timing loop alone, to show its share of every number."""
    start = time.perf_counter_ns()
    for _ in itertools.repeat(None, n):
        pass
    return time.perf_counter_ns() - start


@dataclasses.dataclass
class Variant:
    """One measured configuration and its per-repetition results (us per event)."""

    key: str
    label: str
    loop: Loop
    target: object
    samples: list[float] = dataclasses.field(default_factory=list)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def payloads() -> tuple[RunInfo, Iteration]:
    """The run and step every variant emits, built once (RunBuilder: real span fields)."""
    built = RunBuilder(
        "bench",
        start=datetime.now(UTC),
        question="What is prov:Activity?",
        ontology=OntologyInfo(name="prov", path="prov.ttl", triples=1664),
        model="scripted",
    )
    with built.iteration(
        reasoning="look at the classes",
        code="print(search_entity('Activity'))",
        output="prov:Activity | Activity | class",
        duration=0.01,
    ):
        pass
    step = built.events()[-1]
    assert isinstance(step, Iteration)
    return built.run, step


def build_variants() -> list[Variant]:
    """Every configuration, with sanity checks that the plugins really are registered."""
    variants = [Variant("loop", "timing loop alone", empty_loop, None)]
    for count in PLUGIN_COUNTS:
        plugins = [NoopPlugin() for _ in range(count)]

        manager = PluginManager()
        for i, plugin in enumerate(plugins):
            manager.register(plugin, f"noop-{i}")
        assert manager.hook.wants("iteration") == (count > 0)

        pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        pm.add_hookspecs(hookspecs)
        for i, plugin in enumerate(plugins):
            pm.register(plugin, f"noop-{i}")
        assert len(pm.hook.iteration.get_hookimpls()) == count

        callbacks = [plugin.iteration for plugin in plugins]
        variants += [
            Variant(f"rlm-{count}", f"rlm-core, {count} plugins", rlm_loop, manager),
            Variant(f"pluggy-{count}", f"pluggy, {count} plugins", pluggy_loop, pm),
            Variant(f"list-{count}", f"callback list, {count}", list_loop, callbacks),
        ]

    faulty = PluginManager(max_plugin_errors=10**9)
    faulty.register(FailingPlugin(), "failing")
    faulty.register(NoopPlugin(), "noop-0")
    faulty.register(NoopPlugin(), "noop-1")
    variants.append(Variant("rlm-faulty", "rlm-core, 1 raising + 2 no-op", rlm_loop, faulty))
    return variants


def measure(variants: list[Variant], iterations: int, repeat: int) -> None:
    """Warm up, then run ``repeat`` rounds; each round times every variant once, in a rotated
    order, with the garbage collector off (like :mod:`timeit`)."""
    run, step = payloads()
    for variant in variants:
        variant.loop(variant.target, run, step, max(iterations // 20, 1000))
    for round_ in range(repeat):
        shift = round_ % len(variants)
        order = variants[shift:] + variants[:shift]
        for variant in order:
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                elapsed = variant.loop(variant.target, run, step, iterations)
            finally:
                if gc_was_enabled:
                    gc.enable()
            variant.samples.append(elapsed / iterations / 1000)


def report(variants: list[Variant], iterations: int, repeat: int) -> dict[str, Any]:
    """Print the table and the target checks; return the numbers for ``--json``."""
    by_key = {v.key: v for v in variants}
    print(
        f"rlm-core {rlm_core.__version__}, pluggy {pluggy.__version__}, "
        f"Python {platform.python_version()} ({platform.machine()})"
    )
    print(f"{iterations:,} events per measurement, {repeat} repetitions, us per event\n")

    header = f"{'plugins':>7} | {'rlm-core min/med':>17} | {'pluggy min/med':>17} | "
    header += f"{'list min/med':>17} | {'rlm/pluggy':>10}"
    print(header)
    print("-" * len(header))
    ratios: dict[int, float] = {}
    for count in PLUGIN_COUNTS:
        rlm, plug, lst = (by_key[f"{kind}-{count}"] for kind in ("rlm", "pluggy", "list"))
        ratios[count] = rlm.min / plug.min
        cells = " | ".join(f"{v.min:7.3f} / {v.median:7.3f}" for v in (rlm, plug, lst))
        print(f"{count:>7} | {cells} | {ratios[count]:9.2f}x")
    loop = by_key["loop"]
    faulty = by_key["rlm-faulty"]
    assert isinstance(faulty.target, PluginManager)
    health = faulty.target.health("failing")
    print(f"\ntiming loop alone (included above): {loop.min:.3f} us")
    print(
        f"fault isolation, 1 raising + 2 no-op plugins: {faulty.min:.3f} / {faulty.median:.3f} us"
        f" (3 no-op: {by_key['rlm-3'].min:.3f} us; the raising one: {health.errors:,} errors"
        f" counted, blocked: {health.blocked_reason is not None})"
    )

    checks: list[tuple[str, bool]] = []
    noop = by_key["rlm-0"].min
    checks.append(
        (f"no implementation: {noop:.3f} us <= {NOOP_TARGET_US} us", noop <= NOOP_TARGET_US)
    )
    for count in PLUGIN_COUNTS[1:]:
        ratio = ratios[count]
        checks.append(
            (f"{count} plugin(s): {ratio:.2f}x pluggy <= {RATIO_TARGET}x", ratio <= RATIO_TARGET)
        )
    print("\ntargets:")
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")

    return {
        "rlm_core": rlm_core.__version__,
        "pluggy": pluggy.__version__,
        "python": platform.python_version(),
        "iterations": iterations,
        "repeat": repeat,
        "unit": "us per event",
        "variants": {
            v.key: {"label": v.label, "min": v.min, "median": v.median, "samples": v.samples}
            for v in variants
        },
        "ratio_rlm_to_pluggy": {str(count): ratio for count, ratio in ratios.items()},
        "rows": [
            row("dispatch, no plugin implements the hook", "us/event", by_key["rlm-0"].samples),
            *(
                ratio_row(
                    f"dispatch vs pluggy, {count} no-op plugin(s)",
                    by_key[f"rlm-{count}"].samples,
                    by_key[f"pluggy-{count}"].samples,
                )
                for count in PLUGIN_COUNTS[1:]
            ),
            *(
                ratio_row(
                    f"dispatch vs a plain list of callbacks, {count} no-op plugin(s)",
                    by_key[f"rlm-{count}"].samples,
                    by_key[f"list-{count}"].samples,
                )
                for count in PLUGIN_COUNTS[1:]
            ),
        ],
        "targets": [{"check": text, "pass": ok} for text, ok in checks],
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print, optionally write JSON; always 0 (a measurement, not a test)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers here")
    parser.add_argument("--iterations", type=int, default=200_000, help="events per measurement")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of every variant")
    args = parser.parse_args(argv)

    # The raising plugin logs one warning (with traceback) the first time; keep the table clean.
    logging.getLogger("rlm.plugins").setLevel(logging.CRITICAL)

    variants = build_variants()
    started = time.monotonic()
    measure(variants, args.iterations, args.repeat)
    data = report(variants, args.iterations, args.repeat)
    print(f"\n({time.monotonic() - started:.1f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
