"""Shared ontologies for the ontology tests: the bundled demo and the real ones in ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_core._demo import DEMO_ONTOLOGY
from rlm_core.ontology import LoadedOntology, OntologyTools, load_ontology
from tests.helpers.paths import SHARED_ONTOLOGIES


def shared(name: str) -> Path:
    """Path of a real ontology beside the checkout; skips the test when it is not there."""
    path = SHARED_ONTOLOGIES / name
    if not path.is_file():
        pytest.skip(f"{path} is missing (CI puts ../shared beside the checkout)")
    return path


@pytest.fixture(scope="session")
def demo() -> LoadedOntology:
    return load_ontology(DEMO_ONTOLOGY)


@pytest.fixture(scope="session")
def prov() -> LoadedOntology:
    return load_ontology(shared("prov.ttl"))


@pytest.fixture(scope="session")
def sio() -> LoadedOntology:
    return load_ontology(shared("sio-release.owl"))


@pytest.fixture
def demo_tools(demo: LoadedOntology) -> OntologyTools:
    """Fresh per test: result handles are state."""
    return OntologyTools(demo)


@pytest.fixture(scope="session")
def prov_tools(prov: LoadedOntology) -> OntologyTools:
    return OntologyTools(prov)


@pytest.fixture(scope="session")
def sio_tools(sio: LoadedOntology) -> OntologyTools:
    return OntologyTools(sio)
