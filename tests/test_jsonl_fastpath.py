"""The run-log writer serializes clean events straight from the dataclass; the bytes must mean
exactly what ``to_dict()`` says, for every event the schema allows."""

from __future__ import annotations

import orjson
from hypothesis import given

from rlm_core.events import Event, event_from_dict
from rlm_core.runlog import encode_record, event_line
from tests.test_events import any_event


@given(any_event)
def test_the_direct_serialization_equals_to_dict(event: Event) -> None:
    line = event_line(event)
    if line is None:  # orjson refused a value: the writer takes the dict instead
        line = encode_record(event.to_dict())
    assert orjson.loads(line) == orjson.loads(orjson.dumps(event.to_dict()))
    assert event_from_dict(orjson.loads(line)) == event
