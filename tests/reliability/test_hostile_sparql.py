"""No SPARQL query holds the process past ``query_timeout``, and none leaves work behind.

A catastrophic ``REGEX`` runs in C holding the GIL; a ``COUNT(*)`` over ``VALUES`` blocks reads
no triples, so a triple budget never sees it. Both must come back as the tool's ``Error: ...``
text once ``query_timeout`` has passed, with no thread or process still working on them. Each
check runs in a fresh Python with a generous ``subprocess`` timeout, so a query that cannot be
stopped fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

CATASTROPHIC_REGEX = (
    'SELECT ?x WHERE { BIND("' + "a" * 40 + '!" AS ?x) FILTER(REGEX(?x, "^(a+)+$")) }'
)
_VALUES = " ".join(f'"{number}"' for number in range(60))
VALUES_PRODUCT = (
    "SELECT (COUNT(*) AS ?n) WHERE { "
    + " ".join(f"VALUES ?v{block} {{ {_VALUES} }}" for block in range(4))
    + " }"
)
PROBE = textwrap.dedent(
    """
    import json, os, sys, threading
    from rlm_core._demo import DEMO_ONTOLOGY
    from rlm_core.ontology import OntologyTools, load_ontology

    tools = OntologyTools(load_ontology(DEMO_ONTOLOGY), query_timeout=1.0)
    answer = tools.sparql_select(sys.argv[1])
    children = [
        name
        for task in os.listdir("/proc/self/task")
        for name in open(f"/proc/self/task/{task}/children").read().split()
    ]
    after = tools.sparql_select("SELECT ?c WHERE { ?c a owl:Class } LIMIT 2")
    print(json.dumps({
        "answer": answer, "threads": threading.active_count(), "children": children,
        "after": after,
    }))
    """
)


@pytest.mark.parametrize(
    "query", [CATASTROPHIC_REGEX, VALUES_PRODUCT], ids=["catastrophic-regex", "values-product"]
)
def test_a_query_that_reads_no_triples_or_holds_the_gil_is_stopped_at_query_timeout(
    query: str,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, query], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["answer"].startswith(
        "Error: the query was stopped because it ran longer than 1 s"
    ), seen["answer"]
    # Nothing keeps working on it: no extra thread, no query process left.
    assert seen["threads"] == 1
    assert seen["children"] == []
    # And the tools still answer.
    assert seen["after"].startswith("Result r1: 2 rows")
