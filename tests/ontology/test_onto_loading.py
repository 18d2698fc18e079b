from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rdflib import RDFS, Graph, Literal, Namespace

from rlm_core.errors import RLMError
from rlm_core.ontology import SUPPORTED_SUFFIXES, LoadedOntology, OntologyError, load_ontology

EX = Namespace("http://example.org/tiny#")

TRIG = """@prefix ex: <http://example.org/tiny#> .
ex:a ex:p "in the default graph" .
ex:g1 { ex:a ex:p "in g1" . }
ex:g2 { ex:b ex:p "in g2" . ex:a ex:p "in g1" . }
"""
NQUADS = """<http://example.org/tiny#a> <http://example.org/tiny#p> "default" .
<http://example.org/tiny#a> <http://example.org/tiny#p> "in g1" <http://example.org/tiny#g1> .
<http://example.org/tiny#b> <http://example.org/tiny#p> "in g2" <http://example.org/tiny#g2> .
"""


def tiny_graph() -> Graph:
    graph = Graph()
    graph.bind("ex", EX)
    graph.add((EX.Thing, RDFS.label, Literal("thing", lang="en")))
    graph.add((EX.Gadget, RDFS.subClassOf, EX.Thing))
    graph.add((EX.Gadget, RDFS.comment, Literal("a small thing")))
    return graph


@pytest.mark.parametrize(
    ("suffix", "rdflib_format"),
    [
        (".ttl", "turtle"),
        (".owl", "xml"),
        (".rdf", "xml"),
        (".xml", "xml"),
        (".nt", "nt"),
        (".n3", "n3"),
        (".jsonld", "json-ld"),
        (".json", "json-ld"),
    ],
)
@pytest.mark.parametrize("compressed", [False, True])
def test_each_triple_format_loads_plain_and_gzipped(
    tmp_path: Path, suffix: str, rdflib_format: str, compressed: bool
) -> None:
    data = tiny_graph().serialize(format=rdflib_format, encoding="utf-8")
    path = tmp_path / f"tiny{suffix}{'.gz' if compressed else ''}"
    path.write_bytes(gzip.compress(data) if compressed else data)

    onto = load_ontology(path)

    assert onto.name == "tiny"
    assert onto.path == str(path.resolve())
    assert onto.triples == len(onto.graph) == 3
    assert (EX.Gadget, RDFS.subClassOf, EX.Thing) in onto.graph


@pytest.mark.parametrize(("suffix", "text"), [(".trig", TRIG), (".nq", NQUADS)])
def test_quad_formats_merge_default_and_named_graphs(
    tmp_path: Path, suffix: str, text: str
) -> None:
    path = tmp_path / f"quads{suffix}.gz"
    path.write_bytes(gzip.compress(text.encode()))

    onto = load_ontology(path)

    assert onto.name == "quads"
    assert type(onto.graph) is Graph
    assert onto.triples == 3  # the triple repeated in g1 and g2 counts once
    assert (EX.b, EX.p, Literal("in g2")) in onto.graph


def test_real_ontologies_load_with_their_prefixes(
    prov: LoadedOntology, sio: LoadedOntology
) -> None:
    assert (prov.name, prov.triples) == ("prov", 1664)
    assert (sio.name, sio.triples) == ("sio-release", 15734)
    assert ("sio", "http://semanticscience.org/resource/") in {
        (prefix, str(ns)) for prefix, ns in sio.graph.namespaces()
    }


def test_missing_file_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(OntologyError, match=r"nope\.ttl: no such file"):
        load_ontology(tmp_path / "nope.ttl")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OntologyError, match="is a directory"):
        load_ontology(tmp_path)


@pytest.mark.parametrize("content", ["", "   \n\t\n"])
def test_empty_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.ttl"
    path.write_text(content)
    with pytest.raises(OntologyError, match=r"empty\.ttl: file is empty"):
        load_ontology(path)


def test_file_without_triples_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "only-prefixes.ttl"
    path.write_text("@prefix ex: <http://example.org/> .\n# nothing else\n")
    with pytest.raises(OntologyError, match="no triples found in this Turtle file"):
        load_ontology(path)


def test_unknown_suffix_lists_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(OntologyError) as caught:
        load_ontology(path)
    message = str(caught.value)
    assert "'.txt'" in message
    assert all(suffix in message for suffix in SUPPORTED_SUFFIXES)


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("bad.ttl", "@prefix ex: <http://e/> .\nex:a ex:b ex:c .\nex:a ex:b ex:c ex:d .\n", 3),
        ("bad.n3", "@prefix ex: <http://e/> .\n\nex:a ex:b .\n", 3),
        ("bad.trig", "@prefix ex: <http://e/> .\nex:g { ex:a ex:b }\n", 2),
        (
            "bad.owl",
            '<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            "\n<rdf:Description>\n</rdf:RDF>\n",
            4,
        ),
        ("bad.jsonld", '{\n  "@id": "http://e/a",\n  "http://e/p": }\n', 3),
        ("bad-utf8.nt", None, 2),
    ],
)
def test_unparsable_file_error_names_file_line_and_reason(
    tmp_path: Path, name: str, content: str | None, line: int
) -> None:
    path = tmp_path / name
    if content is None:
        path.write_bytes(
            b'<http://e/a> <http://e/b> "ok" .\n<http://e/a> <http://e/b> "caf\xe9" .\n'
        )
    else:
        path.write_text(content)
    with pytest.raises(OntologyError) as caught:
        load_ontology(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot parse as ")
    assert f"(line {line})" in message
    assert "the line reads:" in message


def test_ntriples_error_quotes_the_offending_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.nt"
    path.write_text("<http://e/a> <http://e/b> <http://e/c> .\n<http://e/a> <http://e/b> oops .\n")
    with pytest.raises(OntologyError, match=r"cannot parse as N-Triples: .*oops"):
        load_ontology(path)


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "locked.ttl"
    path.write_text("<http://e/a> <http://e/b> <http://e/c> .")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who can read any file")
        with pytest.raises(OntologyError, match="cannot read the file"):
            load_ontology(path)
    finally:
        path.chmod(0o600)


def test_broken_gzip_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.ttl.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(OntologyError, match="not a valid gzip file"):
        load_ontology(path)


def test_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.ttl"
    path.write_bytes(tiny_graph().serialize(format="turtle", encoding="utf-8"))
    with pytest.raises(
        OntologyError, match=r"big\.ttl: \d+ bytes is over the limit of 100 \(max_bytes\)"
    ):
        load_ontology(path, max_bytes=100)


def test_gzip_bomb_is_stopped_at_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "bomb.nt.gz"
    path.write_bytes(gzip.compress(b"#" * 5_000_000))  # 5 MB of comment, ~5 kB on disk
    with pytest.raises(
        OntologyError, match=r"decompresses to more than the limit of 1,000,000 bytes"
    ):
        load_ontology(path, max_bytes=1_000_000)


def test_jsonld_remote_context_is_refused_instead_of_fetched(tmp_path: Path) -> None:
    path = tmp_path / "remote.jsonld"
    path.write_text('{"@context": "https://schema.org/", "@id": "http://e/a", "name": "x"}')
    with pytest.raises(OntologyError, match="remote contexts are not fetched"):
        load_ontology(path)


def test_ontology_error_is_an_rlm_error_for_the_cli() -> None:
    assert issubclass(OntologyError, RLMError)


@settings(max_examples=40, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.text(alphabet='<>"{}[]@:;.,#&%! \n\tabcxyz0123_-/', max_size=300).map(str.encode),
    ),
    suffix=st.sampled_from(sorted(SUPPORTED_SUFFIXES)),
)
def test_arbitrary_bytes_either_load_or_raise_ontology_error(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            triples = load_ontology(path).triples
        except OntologyError as exc:
            message = str(exc)
        else:
            message = f"{path}: loaded {triples} triples"
        assert message.startswith(str(path))
