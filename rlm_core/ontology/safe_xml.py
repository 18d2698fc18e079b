"""RDF/XML parsing that cannot be made to expand, fetch or crawl without bound.

rdflib parses RDF/XML with ``xml.sax`` over expat. Expat (>= 2.4) already stops "billion laughs"
amplification and ``xml.sax`` no longer fetches external entities, but two holes remain: the
entity declarations themselves are accepted, and rdflib joins a literal's text with ``+=`` on an
attribute, which is quadratic in the number of text chunks expat delivers. A few kilobytes of
nested entities, or a literal of a few megabytes spread over many lines, then take minutes.

This module refuses the risky declarations up front and makes expat deliver text in large
buffered chunks, then hands the events to rdflib's own RDF/XML handler.
"""

from __future__ import annotations

import io
import re
from xml.parsers.expat import XMLParserType
from xml.sax import handler as sax_handler
from xml.sax.expatreader import ExpatParser
from xml.sax.xmlreader import InputSource

from rdflib import Graph
from rdflib.plugins.parsers.rdfxml import RDFXMLHandler

__all__ = ["UnsafeXMLError", "parse_rdfxml"]

# Expat hands buffered character data to the handler in chunks of this many characters, so a
# literal of n characters costs rdflib about n / _TEXT_BUFFER string joins instead of one per line.
_TEXT_BUFFER = 1 << 22
# The whole document is fed in chunks this large; expat flushes its text buffer at chunk ends.
_FEED_CHUNK = 1 << 26
# Internal entities are allowed (Protege writes ``<!ENTITY owl "http://...#">``) but must be
# short and must not refer to other entities, which is what amplification attacks rely on.
_MAX_ENTITY_CHARS = 2048
_ENTITY_REFERENCE = re.compile(r"[&%][A-Za-z_:][\w.:-]*;")


class UnsafeXMLError(ValueError):
    """The document declares an entity that could expand without bound or read other files."""


def _refuse_risky_entity(
    name: str,
    is_parameter_entity: bool,
    value: str | None,
    base: str | None,
    system_id: str,
    public_id: str | None,
    notation_name: str | None,
) -> None:
    if is_parameter_entity:
        raise UnsafeXMLError(f"parameter entity %{name}; is not allowed")
    if value is None:
        raise UnsafeXMLError(f"external entity &{name}; ({system_id}) is not allowed")
    if _ENTITY_REFERENCE.search(value):
        raise UnsafeXMLError(f"entity &{name}; refers to other entities, which is not allowed")
    if len(value) > _MAX_ENTITY_CHARS:
        raise UnsafeXMLError(f"entity &{name}; is longer than {_MAX_ENTITY_CHARS} characters")


class _GuardedExpatReader(ExpatParser):
    """An ``xml.sax`` expat reader that vets entity declarations and buffers text."""

    _parser: XMLParserType  # created by ExpatParser.reset(); missing from typeshed

    def reset(self) -> None:
        super().reset()
        self._parser.buffer_text = True
        self._parser.buffer_size = _TEXT_BUFFER
        self._parser.EntityDeclHandler = _refuse_risky_entity


def parse_rdfxml(data: bytes, graph: Graph, base: str) -> None:
    """Add the triples of RDF/XML ``data`` to ``graph``; ``base`` resolves relative IRIs.

    Raises ``UnsafeXMLError`` for refused declarations and ``xml.sax.SAXParseException`` (which
    carries the line number) for malformed XML; rdflib's own errors pass through unchanged.
    """
    reader = _GuardedExpatReader(bufsize=_FEED_CHUNK)
    reader.setFeature(sax_handler.feature_namespaces, True)
    reader.setFeature(sax_handler.feature_external_ges, False)
    content: sax_handler.ContentHandler = RDFXMLHandler(graph)
    reader.setContentHandler(content)
    reader.setErrorHandler(sax_handler.ErrorHandler())
    source = InputSource(base)
    source.setByteStream(io.BytesIO(data))
    reader.parse(source)
