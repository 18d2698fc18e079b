"""Per-query cost of running SPARQL in a killable forked child vs in the calling thread.

Since issue 16, ``sparql_select`` evaluates each query in a forked child that is killed at
``query_timeout`` (``rlm_core.ontology.killable``). This measures what that costs: the same
evaluation of the same vetted query, called directly (as before) and through ``run_killable``,
on the bundled demo ontology and the shared ontologies, with DSPy imported as in a real run (a
bigger process forks slower). Target: the median added cost per query stays under 25 ms.

Run: ``python benchmarks/sparql.py [--repeat N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path

from _rows import row

from rlm_core._demo import DEMO_ONTOLOGY
from rlm_core.ontology import OntologyTools, load_ontology
from rlm_core.ontology.killable import run_killable
from rlm_core.ontology.sparql import vet_query

TARGET_MS = 25.0
SHARED = Path(__file__).resolve().parents[2] / "shared" / "ontologies"
QUERIES = {
    "classes": "SELECT ?c ?label WHERE { ?c a owl:Class . OPTIONAL { ?c rdfs:label ?label } }",
    "domain-range": "SELECT ?p ?d ?r WHERE { ?p rdfs:domain ?d ; rdfs:range ?r }",
    "ask": "ASK { ?s rdfs:subClassOf ?o }",
}


def ontologies() -> list[Path]:
    shared = sorted(SHARED.glob("*.ttl")) + sorted(SHARED.glob("*.owl"))
    return [DEMO_ONTOLOGY, *shared]


def measure(tools: OntologyTools, query: str, repeat: int) -> tuple[list[float], list[float]]:
    vetted = vet_query(query, tools.prefixes.namespaces)
    evaluate = functools.partial(tools._evaluate, vetted)
    direct, forked = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        evaluate()
        direct.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        run_killable(evaluate, 60.0)
        forked.append((time.perf_counter() - started) * 1000)
    return direct, forked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args()
    import dspy  # noqa: F401  (a real run's process holds DSPy and LiteLLM)

    rows, overheads = [], []
    print(f"{'ontology':<22} {'query':<13} {'direct ms':>9} {'forked ms':>9} {'added ms':>8}")
    for path in ontologies():
        tools = OntologyTools(load_ontology(path))
        for name, query in QUERIES.items():
            direct, forked = measure(tools, query, args.repeat)
            added = [f - d for f, d in zip(forked, direct, strict=True)]
            overheads.extend(added)
            label = f"{path.stem}/{name}"
            rows.append(row(f"sparql in-thread: {label}", "ms", direct))
            rows.append(row(f"sparql forked child: {label}", "ms", forked))
            print(
                f"{path.stem:<22} {name:<13} {statistics.median(direct):9.2f} "
                f"{statistics.median(forked):9.2f} {statistics.median(added):8.2f}"
            )
    median_added = statistics.median(overheads)
    ok = median_added < TARGET_MS
    text = f"killable SPARQL adds {median_added:.1f} ms per query (median) < {TARGET_MS:g} ms"
    print(f"{'PASS' if ok else 'FAIL'}  {text}")
    if args.json:
        data = {"rows": rows, "targets": [{"check": text, "pass": ok}]}
        args.json.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
