"""Cost of the trace model: span bookkeeping per event and LM content capture per LM call.

Whole-run timings on a shared machine are too noisy to see microseconds, so this measures the
parts themselves, each as the fastest of several repetitions:

- ``emit``: building one ``iteration`` payload (span fields included) and calling a no-op plugin,
  through the engine's own ``RunEmitter``;
- ``open``: giving an operation its span (id, parent, start) and making it the current span, as
  the bridge does for every step;
- ``content``: redacting what one LM call of the bundled demo sent and received
  (``capture_content = true``; ``false`` skips it).

Run: ``python benchmarks/spans.py [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _rows import row

from rlm_core import Settings, hookimpl, run
from rlm_core._redact import Redactor
from rlm_core._spans import reset_current, set_current
from rlm_core.config import MemorySettings
from rlm_core.engine.emitter import RunEmitter
from rlm_core.events import Iteration, LLMCall
from rlm_core.plugins import PluginManager
from rlm_core.testing import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION, capture_events

CALLS = 20_000
REPEAT = 7


class Noop:
    @hookimpl
    def iteration(self, run: object, step: object) -> None: ...


def per_call(action: Callable[[], object], calls: int = CALLS) -> list[float]:
    """Microseconds per call, one sample per repetition."""
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        for _ in range(calls):
            action()
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="write the numbers as JSON")
    args = parser.parse_args()
    manager = PluginManager()
    manager.register(Noop())
    emitter = RunEmitter(manager, "bench")
    fields = {
        "index": 0,
        "reasoning": "look",
        "code": "print(1)",
        "output": "1",
        "error": None,
        "duration": 0.01,
        "llm_calls_used": 0,
    }
    emit = per_call(lambda: emitter.emit("iteration", Iteration, **fields))

    def open_step() -> None:
        span = emitter.open()
        reset_current(set_current(emitter.context_of(span)))

    opened = per_call(open_step)

    with tempfile.TemporaryDirectory() as scratch, capture_events() as events:
        run(
            DEMO_QUESTION,
            DEMO_ONTOLOGY,
            model=f"scripted:{DEMO_CASSETTE}",
            trackers=[],
            config=Settings(memory=MemorySettings(path=str(Path(scratch) / "m.db"))),
        )
    calls = [call for call in events.events() if isinstance(call, LLMCall)]
    texts = [message.text for call in calls for message in call.messages]
    texts += [call.output or "" for call in calls]
    chars = sum(map(len, texts)) / len(calls)
    redactor = Redactor.from_environment()
    content = per_call(lambda: [redactor.text(text) for text in texts], calls=200)
    content = [sample / len(calls) for sample in content]

    print(f"{'part':<44} {'min':>9} {'median':>9}  unit")
    rows = [
        row("emit one payload with span fields, no-op plugin", "us", emit),
        row("open a span and make it current", "us", opened),
        row(f"capture one demo LM call's content ({chars:,.0f} chars)", "us", content),
    ]
    for found in rows:
        print(f"{found['comparison']:<44} {found['min']:9.2f} {found['median']:9.2f}  us")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "targets": []}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
