"""RDF/XML must never expand, fetch or crawl without bound; each attack must fail fast."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from rdflib import RDFS, Literal, URIRef

from rlm_core.ontology import OntologyError, load_ontology

RDF_OPEN = (
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
    ' xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">'
)
X = URIRef("http://example.org/x")


def rdfxml(tmp_path: Path, doctype: str, label: str) -> Path:
    path = tmp_path / "doc.rdf"
    path.write_text(
        f'<?xml version="1.0"?>\n{doctype}\n{RDF_OPEN}\n'
        f'<rdf:Description rdf:about="{X}"><rdfs:label>{label}</rdfs:label></rdf:Description>\n'
        "</rdf:RDF>\n"
    )
    return path


def load_fast(path: Path) -> None:
    started = time.monotonic()
    try:
        load_ontology(path)
    finally:
        assert time.monotonic() - started < 5


def test_billion_laughs_fails_fast_with_ontology_error(tmp_path: Path) -> None:
    levels = ['<!ENTITY a0 "lollollollollollollollollollol">']
    levels += [f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)]
    path = rdfxml(tmp_path, f"<!DOCTYPE rdf:RDF [\n{chr(10).join(levels)}\n]>", "&a9;")

    with pytest.raises(OntologyError, match="refers to other entities"):
        load_fast(path)


def test_external_entity_is_refused_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    path = rdfxml(tmp_path, f'<!DOCTYPE rdf:RDF [<!ENTITY x SYSTEM "{secret.as_uri()}">]>', "&x;")

    with pytest.raises(OntologyError, match="external entity &x;") as caught:
        load_fast(path)
    assert "top secret" not in str(caught.value)


def test_parameter_entity_is_refused(tmp_path: Path) -> None:
    path = rdfxml(tmp_path, '<!DOCTYPE rdf:RDF [<!ENTITY % p "x">]>', "plain")
    with pytest.raises(OntologyError, match="parameter entity"):
        load_fast(path)


def test_flat_entity_repeated_many_times_hits_expats_amplification_limit(tmp_path: Path) -> None:
    doctype = f'<!DOCTYPE rdf:RDF [<!ENTITY a "{"a" * 2000}">]>'
    path = rdfxml(tmp_path, doctype, "&a;" * 100_000)  # 300 kB that would expand to 200 MB
    with pytest.raises(OntologyError, match="amplification"):
        load_fast(path)


def test_short_internal_entities_as_written_by_protege_still_work(tmp_path: Path) -> None:
    doctype = '<!DOCTYPE rdf:RDF [<!ENTITY ex "http://example.org/">]>'
    path = rdfxml(tmp_path, doctype, "see &ex;x")
    onto = load_ontology(path)
    assert (X, RDFS.label, Literal("see http://example.org/x")) in onto.graph


def test_many_line_literal_loads_in_linear_time(tmp_path: Path) -> None:
    # rdflib joins literal text with += per expat chunk: quadratic in the line count unless
    # expat buffers the text. Unbuffered, this file takes minutes; buffered, milliseconds.
    path = rdfxml(tmp_path, "", "x\n" * 1_000_000)
    started = time.monotonic()
    onto = load_ontology(path)
    assert time.monotonic() - started < 5
    assert len(str(onto.graph.value(X, RDFS.label))) == 2_000_000


def test_relative_iris_resolve_against_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rel.rdf"
    path.write_text(
        f'<?xml version="1.0"?>\n{RDF_OPEN}\n'
        '<rdf:Description rdf:about="#me"><rdfs:label>me</rdfs:label></rdf:Description>\n'
        "</rdf:RDF>\n"
    )
    onto = load_ontology(path)
    assert (URIRef(path.resolve().as_uri() + "#me"), RDFS.label, Literal("me")) in onto.graph
