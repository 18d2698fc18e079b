"""Ontologies for RLM runs: safe loading, a computed sense card, and bounded REPL tools.

``load_ontology`` parses a file (without touching the network), ``build_sense_card`` summarises
it for the model's first prompt, and ``OntologyTools`` gives LM-written code search, describe,
SPARQL and result paging whose answers are always short text.

Internal to rlm-core (the engine uses it); names here may change without notice.
"""

from __future__ import annotations

from rlm_core.ontology.loading import (
    DEFAULT_MAX_BYTES,
    SUPPORTED_SUFFIXES,
    LoadedOntology,
    OntologyError,
    load_ontology,
)
from rlm_core.ontology.sense import build_sense_card
from rlm_core.ontology.tools import OntologyTools, ResultHandle

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SUPPORTED_SUFFIXES",
    "LoadedOntology",
    "OntologyError",
    "OntologyTools",
    "ResultHandle",
    "build_sense_card",
    "load_ontology",
]
