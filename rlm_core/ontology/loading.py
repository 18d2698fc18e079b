"""Turn an ontology file into an rdflib graph, or into one clear ``OntologyError``.

The format comes from the file suffix (``.gz`` of any of them is decompressed first) so a wrong
guess never turns into a confusing parser message. Nothing here reaches the network: RDF/XML goes
through :mod:`rlm_core.ontology.safe_xml` and JSON-LD documents that point at remote contexts are
refused, because rdflib would fetch those contexts while parsing.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import re
import warnings
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from xml.sax import SAXParseException

from rdflib import Dataset, Graph
from rdflib.plugins.parsers.notation3 import BadSyntax

from rlm_core.errors import RLMError
from rlm_core.ontology.safe_xml import UnsafeXMLError, parse_rdfxml

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SUPPORTED_SUFFIXES",
    "LoadedOntology",
    "OntologyError",
    "load_ontology",
]

DEFAULT_MAX_BYTES = 200 * 1024 * 1024

# Suffix -> rdflib format name.
SUPPORTED_SUFFIXES: Mapping[str, str] = {
    ".ttl": "turtle",
    ".owl": "xml",
    ".rdf": "xml",
    ".xml": "xml",
    ".nt": "nt",
    ".n3": "n3",
    ".jsonld": "json-ld",
    ".json": "json-ld",
    ".trig": "trig",
    ".nq": "nquads",
}
_QUAD_FORMATS = frozenset({"trig", "nquads"})
_READABLE_FORMAT = {
    "turtle": "Turtle",
    "xml": "RDF/XML",
    "nt": "N-Triples",
    "n3": "N3",
    "json-ld": "JSON-LD",
    "trig": "TriG",
    "nquads": "N-Quads",
}
_MAX_REASON_CHARS = 300
_BAD_SYNTAX_WHY = re.compile(r"Bad syntax \((.*?)\) at \^", re.DOTALL)


class OntologyError(RLMError):
    """An ontology file cannot be used; the message names the file and, when known, the line."""


class _RemoteContextError(ValueError):
    """A JSON-LD document needs a context from elsewhere, which would mean fetching it."""


@dataclasses.dataclass(frozen=True, eq=False)
class LoadedOntology:
    """A parsed ontology; ``graph`` holds every triple, named graphs of TriG/N-Quads merged."""

    name: str
    path: str
    graph: Graph
    triples: int
    format: str | None = None


def load_ontology(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> LoadedOntology:
    """Parse the ontology at ``path``; ``max_bytes`` bounds the (decompressed) file size."""
    file = Path(path).expanduser()
    if not file.exists():
        raise OntologyError(f"{file}: no such file")
    if file.is_dir():
        raise OntologyError(f"{file}: is a directory, not an ontology file")
    fmt, stem = _format_of(file)
    data = _read_bounded(file, max_bytes)
    if not data or data.isspace():
        raise OntologyError(f"{file}: file is empty")
    resolved = file.resolve()
    try:
        graph = _parse(data, fmt, base=resolved.as_uri())
    except (UnsafeXMLError, _RemoteContextError) as exc:
        raise OntologyError(f"{file}: refused to load: {exc}") from exc
    except Exception as exc:  # rdflib's parsers raise many unrelated types on bad input
        raise OntologyError(_parse_failure(file, fmt, exc, data)) from exc
    triples = len(graph)
    if triples == 0:
        raise OntologyError(f"{file}: no triples found in this {_READABLE_FORMAT[fmt]} file")
    return LoadedOntology(name=stem, path=str(resolved), graph=graph, triples=triples, format=fmt)


def _format_of(file: Path) -> tuple[str, str]:
    """The rdflib format and the name without format and ``.gz`` suffixes."""
    name = file.name
    if name.lower().endswith(".gz"):
        name = name[: -len(".gz")]
    inner = Path(name)
    fmt = SUPPORTED_SUFFIXES.get(inner.suffix.lower())
    if fmt is None:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        raise OntologyError(
            f"{file}: unknown ontology file suffix {inner.suffix or '(none)'!r}; "
            f"supported: {supported} (each optionally followed by .gz)"
        )
    return fmt, inner.stem


def _read_bounded(file: Path, max_bytes: int) -> bytes:
    size = file.stat().st_size
    if size > max_bytes:
        raise OntologyError(
            f"{file}: {size:,} bytes is over the limit of {max_bytes:,} (max_bytes)"
        )
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise OntologyError(f"{file}: cannot read the file ({exc.strerror or exc})") from exc
    if not file.name.lower().endswith(".gz"):
        return raw
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise OntologyError(f"{file}: not a valid gzip file ({exc})") from exc
    if len(data) > max_bytes:
        raise OntologyError(
            f"{file}: decompresses to more than the limit of {max_bytes:,} bytes (max_bytes)"
        )
    return data


def _parse(data: bytes, fmt: str, base: str) -> Graph:
    # rdflib's N3, TriG and JSON-LD parsers call rdflib APIs that rdflib itself deprecates.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _parse_format(data, fmt, base)


def _parse_format(data: bytes, fmt: str, base: str) -> Graph:
    if fmt in _QUAD_FORMATS:
        dataset = Dataset()
        dataset.parse(data=data, format=fmt, publicID=base)
        return _merge_graphs(dataset)
    graph = Graph(bind_namespaces="core")
    if fmt == "xml":
        parse_rdfxml(data, graph, base)
    elif fmt == "json-ld":
        _refuse_remote_contexts(json.loads(data))
        graph.parse(data=data, format=fmt, publicID=base)
    else:
        graph.parse(data=data, format=fmt, publicID=base)
    return graph


def _merge_graphs(dataset: Dataset) -> Graph:
    """One graph with the triples of the default and all named graphs, so tools see them all."""
    graph = Graph(bind_namespaces="core")
    for prefix, namespace in dataset.namespaces():
        graph.bind(prefix, namespace, override=False)
    for subject, predicate, obj, _context in dataset.quads((None, None, None, None)):
        graph.add((subject, predicate, obj))
    return graph


def _refuse_remote_contexts(document: Any) -> None:
    """Reject ``@context``/``@import`` references to other documents, which rdflib would fetch."""
    for key, value in _walk_items(document):
        if key == "@import" or (key == "@context" and _has_reference(value)):
            raise _RemoteContextError(
                f"JSON-LD {key} refers to another document ({str(value)[:120]}); "
                "remote contexts are not fetched, inline the context instead"
            )


def _has_reference(context: Any) -> bool:
    if isinstance(context, str):
        return True
    return isinstance(context, list) and any(isinstance(item, str) for item in context)


def _walk_items(document: Any) -> Iterator[tuple[str, Any]]:
    """Every key/value pair of every object in a parsed JSON document, without recursion."""
    pending = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            yield from node.items()
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)


def _parse_failure(file: Path, fmt: str, exc: Exception, data: bytes) -> str:
    line = _line_number(exc, data)
    message = f"{file}: cannot parse as {_READABLE_FORMAT[fmt]}"
    if line is None:
        return f"{message}: {_clip(_reason(exc))}"
    # Parsers count a lone "\r" as a line break too, as splitlines() does.
    lines = data.splitlines()
    text = lines[line - 1].decode("utf-8", "replace").strip() if 0 < line <= len(lines) else ""
    message = f"{message} (line {line}): {_clip(_reason(exc))}"
    return f"{message}; the line reads: {_clip(text, 120)!r}" if text else message


def _reason(exc: Exception) -> str:
    """The parser's explanation without the parts that repeat the file name or the input."""
    if isinstance(exc, BadSyntax):
        found = _BAD_SYNTAX_WHY.search(str(exc))
        return found.group(1) if found else str(exc)
    if isinstance(exc, SAXParseException):
        return exc.getMessage()
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    return str(exc) or type(exc).__name__


def _clip(text: str, limit: int = _MAX_REASON_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _line_number(exc: Exception, data: bytes) -> int | None:
    """The 1-based line the parser stopped at, for the exceptions that record it."""
    if isinstance(exc, BadSyntax):
        return exc.lines + 1
    if isinstance(exc, SAXParseException):
        return exc.getLineNumber()
    if isinstance(exc, json.JSONDecodeError):
        return exc.lineno
    if isinstance(exc, UnicodeDecodeError):
        return _first_bad_utf8_line(data)
    return None


def _first_bad_utf8_line(data: bytes) -> int | None:
    """Parsers decode in chunks, so their error's offset is not the file's; find it again."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1
    return None
