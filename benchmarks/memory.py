"""Retrieval latency of the SQLite memory store over 1k, 10k and 100k memories.

Run ``python benchmarks/memory.py [--json PATH] [--queries N]``. One database grows from 1k to
10k to 100k synthetic memories (deterministic, varied: ontology classes and properties, tool
names, SPARQL words and a long tail of rarer terms, with Zipf-like frequencies); at each size the
same kind of question-like queries run through ``SQLiteMemoryStore.retrieve(question, k=3,
ontology=...)``, exactly as a run retrieves before it starts. Memories are added with the public
``add_memories`` (one transaction per batch).

Target (the exit code is 0 either way): p95 below 20 ms per query at 10k memories.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import rlm_core
from rlm_core.memory import MemoryDraft, SQLiteMemoryStore

SIZES = (1_000, 10_000, 100_000)
TARGET_SIZE = 10_000
TARGET_MS = 20.0
K = 3
SEED = 20260101


def _words(text: str) -> list[str]:
    return text.split()


CLASSES = _words(
    "Activity Agent Entity Plan Role Location Collection Bundle Person Organization "
    "SoftwareAgent Concept ConceptScheme Dataset Distribution Catalog Document Image Event "
    "Place Instant Interval Project Group Membership Site Post Account Product Offer"
)
PROPERTIES = _words(
    "wasAssociatedWith used wasGeneratedBy wasDerivedFrom wasAttributedTo actedOnBehalfOf "
    "hadPlan hadRole atLocation startedAtTime endedAtTime broader narrower related "
    "hasTopConcept inScheme prefLabel altLabel knows member homepage distribution "
    "accessURL theme keyword publisher creator hasBeginning hasEnd memberOf subOrganizationOf"
)
NOUNS = _words(
    "properties instances labels subclasses superclasses domains ranges ancestors "
    "descendants definitions comments namespaces individuals restrictions inverses "
    "equivalents counts paths links types values"
)
VERBS = _words(
    "find list count trace compare explain describe check walk group filter rank join "
    "locate verify collect summarize resolve"
)
TOOLS = ("search_entity", "describe_entity", "sparql_select")
SPARQL = _words("SELECT DISTINCT FILTER OPTIONAL UNION GROUP COUNT property path rdfs:domain")
SCOPES = ("prov", "foaf", "skos", "dcat", "schema", "time", "org", None)
TAGS = _words(
    "sparql search describe hierarchy count lineage agents labels domain range "
    "qualified time geo catalog people evidence paths filter"
)
SYLLABLES = _words("ka lo mi ne ru sa ti vo xe zu ba de fi go hu ja ke li mo nu")


def long_tail(rng: random.Random, size: int = 6000) -> tuple[list[str], list[float]]:
    """Pseudo-words with Zipf-like weights: a few common, most rare, like real vocabulary."""
    words = sorted(
        {"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(size)}
    )
    rng.shuffle(words)
    return words, [1.0 / (rank + 1) for rank in range(len(words))]


class Generator:
    """Deterministic memories and questions over the same vocabulary."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words, self.weights = long_tail(self.rng)

    def tail(self, count: int) -> str:
        return " ".join(self.rng.choices(self.words, self.weights, k=count))

    def memory(self) -> tuple[str | None, MemoryDraft]:
        rng = self.rng
        cls, other = rng.sample(CLASSES, 2)
        prop, noun, verb = rng.choice(PROPERTIES), rng.choice(NOUNS), rng.choice(VERBS)
        title = f"{verb.capitalize()} the {noun} of {cls}"
        if rng.random() < 0.5:
            title += f" via {prop}"
        description = f"When asked about the {noun} of a {cls} or its {rng.choice(NOUNS)}"
        content = " ".join(
            [
                f"Call {rng.choice(TOOLS)}('{cls}') first and note the IRI.",
                f"Then {rng.choice(VERBS)} the {rng.choice(NOUNS)} linked by {prop} to {other}.",
                f"Use {' '.join(rng.sample(SPARQL, 3))} in sparql_select.",
                f"Watch for {self.tail(rng.randint(3, 10))}.",
            ]
        )
        tags = tuple(rng.sample(TAGS, rng.randint(1, 3)))
        return rng.choice(SCOPES), MemoryDraft(title, description, content, tags)

    def question(self) -> tuple[str, str]:
        rng = self.rng
        cls, prop, noun = rng.choice(CLASSES), rng.choice(PROPERTIES), rng.choice(NOUNS)
        text = rng.choice(
            [
                f"Which {noun} of {cls} are linked by {prop}?",
                f"What {noun} does a {cls} have, and how is it related to agents?",
                f"How many {cls} instances use {prop} with {self.tail(2)}?",
                f"List the {noun} of {cls} through {prop} and explain {self.tail(1)}.",
            ]
        )
        return text, rng.choice([scope for scope in SCOPES if scope])


def grow(store: SQLiteMemoryStore, generator: Generator, count: int) -> tuple[float, int]:
    """Add ``count`` memories; return seconds taken and how many were new."""
    by_scope: dict[str | None, list[MemoryDraft]] = {}
    for _ in range(count):
        scope, draft = generator.memory()
        by_scope.setdefault(scope, []).append(draft)
    started = time.perf_counter()
    added = 0
    for scope, drafts in by_scope.items():
        results = store.add_memories(drafts, run_id=None, scope=scope, source="benchmark")
        added += sum(not result.duplicate for result in results)
    return time.perf_counter() - started, added


def measure(
    store: SQLiteMemoryStore, questions: list[tuple[str, str]]
) -> tuple[list[float], float]:
    """Milliseconds per retrieval, and the mean number of hits."""
    for text, scope in questions[:20]:  # warm the page cache
        store.retrieve(text, K, ontology=scope)
    times, hits = [], 0
    for text, scope in questions:
        started = time.perf_counter()
        found = store.retrieve(text, K, ontology=scope)
        times.append((time.perf_counter() - started) * 1000)
        hits += len(found)
    return times, hits / len(questions)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(queries: int, sizes: tuple[int, ...]) -> dict[str, Any]:
    generator = Generator(SEED)
    questions = [generator.question() for _ in range(queries)]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        with SQLiteMemoryStore(path) as store:
            stored = 0
            print(f"{'memories':>9} | {'build s':>8} | {'median ms':>9} | {'p95 ms':>7} | hits")
            for size in sizes:
                seconds, added = grow(store, generator, size - stored)
                stored = size
                times, hits = measure(store, questions)
                row = {
                    "memories": store.stats(top=0).memories,
                    "generated": size,
                    "build_seconds": seconds,
                    "added": added,
                    "median_ms": statistics.median(times),
                    "p95_ms": percentile(times, 0.95),
                    "max_ms": max(times),
                    "mean_hits": hits,
                }
                results.append(row)
                print(
                    f"{size:>9,} | {seconds:>8.2f} | {row['median_ms']:>9.2f} | "
                    f"{row['p95_ms']:>7.2f} | {hits:.2f}"
                )
            db_bytes = path.stat().st_size
    target = next((row for row in results if row["generated"] == TARGET_SIZE), None)
    checks = []
    if target is not None:
        ok = target["p95_ms"] < TARGET_MS
        text = f"p95 at {TARGET_SIZE:,} memories: {target['p95_ms']:.2f} ms < {TARGET_MS} ms"
        checks.append({"check": text, "pass": ok})
        print(f"\ntarget:\n  {'PASS' if ok else 'FAIL'}  {text}")
    return {
        "rlm_core": rlm_core.__version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "machine": platform.machine(),
        "queries_per_size": queries,
        "k": K,
        "database_bytes_at_largest": db_bytes,
        "sizes": results,
        "rows": [
            {
                "comparison": f"memory retrieval, {row['generated']:,} memories (k={K})",
                "unit": "ms/query",
                "min": None,
                "median": row["median_ms"],
                "max": row["max_ms"],
                "repetitions": queries,
                "note": f"p95 {row['p95_ms']:.2f} ms",
            }
            for row in results
        ],
        "targets": checks,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print, optionally write JSON; always 0 (a measurement, not a test)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers here")
    parser.add_argument("--queries", type=int, default=300, help="queries per size (300)")
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="comma-separated store sizes, ascending (default: 1000,10000,100000)",
    )
    args = parser.parse_args(argv)
    sizes = tuple(int(size) for size in args.sizes.split(","))
    print(
        f"rlm-core {rlm_core.__version__}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version} ({platform.machine()}); k={K}, "
        f"{args.queries} queries per size\n"
    )
    started = time.monotonic()
    data = run(args.queries, sizes)
    print(f"\n({time.monotonic() - started:.1f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
