"""The rebuild's ``events`` rows (the compiled core's ``event_columns``) are exactly the sink's
(``decode.events_table``): the Python core's twin of the compiled core's row writer."""

from __future__ import annotations

import callstream_native
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.events import Event
from streams.domain.validation import validate
from streams.simulator import Faults, Knobs, generate_all
from tests.unit.call_samples import T0
from tests.unit.strategies import valid_wire
from warehouse.decode import events_table
from warehouse.events_rows import events_rows, native_rows

pytestmark = pytest.mark.unit
NATIVE_VALIDATE = callstream_native.validate_row  # required (make setup builds it): never skipped


def _both(values: list[bytes], keyed: bool = True):
    """(the rebuild's rows, the sink's rows) of the valid ones among ``values``, sorted alike.

    As in the replay: a message the compiled validator accepts is handed over as its
    ``NativeEvent`` (with its row, or without when the compiled core leaves the row to
    Python), one it leaves to Python as the Python core's ``Event``.
    """
    valid, mixed = [], []
    for offset, value in enumerate(values):
        event = validate(value)
        if isinstance(event, Event):
            key = event.call_id.encode() if keyed else None
            valid.append((3, offset, event))
            native = NATIVE_VALIDATE(value, key, None)
            mixed.append((3, offset, event if native is None else native))
    assert mixed
    sort = [("kafka_offset", "ascending")]
    return events_rows(mixed).sort_by(sort), events_table(valid).sort_by(sort)


def test_simulated_traffic_with_every_fault_gives_the_sinks_rows():
    messages, _ = generate_all(5, 600, 4, T0, Faults(duplicates=0.1, shuffle=0.4, late_recordings=0.3,
                                                     malformed=0.05),
                               Knobs(outage_rate=0.15, stale_key=0.3, license_errors=0.05, dev_copy=0.05,
                                     extranet=0.05))
    values = [m.value for m in messages]
    fast, sink = _both(values)
    assert fast.num_rows > 3000 and fast.equals(sink)
    source = [(3, offset, native) for offset, value in enumerate(values)
              if (native := NATIVE_VALIDATE(value, None, None)) is not None]
    rows, skipped = native_rows(source)
    assert rows.num_rows == len(source) and not skipped  # the compiled core writes every row


@settings(max_examples=100, deadline=None)
@given(st.lists(valid_wire(), min_size=1, max_size=20), st.booleans())
def test_any_valid_wire_form_gives_the_sinks_rows(drawn, keyed):
    # Omitted optional fields, unknown extra fields, odd strings and numbers of every kind:
    # the plain ones are built in SQL, the rest in Python; the rows never differ.
    fast, sink = _both([orjson.dumps(wire) for _, wire in drawn], keyed)
    assert fast.equals(sink)


def _started(**data) -> dict:
    return {"event_id": "e1", "v": 1, "type": "call.started", "call_id": "c1", "portal_id": "p1",
            "source": "voice", "node": "n1", "ts": "2026-11-02T06:00:00.123Z",
            "data": {"direction": "outbound", "line": "operator", "from": "user:u1", "to": "+79161234567",
                     **data}}


def _text(document: dict) -> bytes:
    return orjson.dumps(document)


@pytest.mark.parametrize("value", [
    _text(_started()),
    _text(_started(extranet=True, record=False, line_number="+74950000000", junk=[1, 2])),
    _text(_started(line_number="caf\u00e9 \u03a9")),  # non-ASCII: Python's path
    _text(_started(line_number='say "hi" \\ there')),  # escapes: Python's path
    _text(_started()).replace(b'"to"', b'"to":"+70000000000","to"'),  # a key given twice
    _text(_started()).replace(b'"call_id":"c1"', b'"call_id":"c0","call_id":"c1"'),
    _text(_started()).replace(b"00.123Z", b"00.123+00:00"),
    _text(_started()).replace(b"T06:00:00.123Z", b"t06:00:00.1z"),
    _text(_started()).replace(b"00.123Z", b"00.123000Z"),
    _text(_started()).replace(b"00.123Z", b"00Z"),
    _text(_started()).replace(b"c1", b"\\u0063\\u0031"),
    b' { "v" : 1 , ' + _text(_started())[1:],
    *[_text({"event_id": "r", "v": 1, "type": "recording.stored", "call_id": "c1", "portal_id": "p1",
             "source": "voice", "node": "n1", "ts": "2026-11-02T06:00:00.000Z",
             "data": {"url": "https://r.example/a.mp3", "bytes": 5, "seconds": 1, "format": "mp3"}}
            ).replace(b'"seconds":1', b'"seconds":' + text).replace(b'"bytes":5', b'"bytes":' + size)
      for text, size in [(b"63.5", b"5"), (b"63.50", b"0"), (b"1e16", b"-0"), (b"1E2", b"9223372036854775807"),
                         (b"0.0001", b"1"), (b"123456789.123456", b"2"), (b"1234567890.5", b"3"),
                         (b"0", b"4"), (b"5.0", b"5"), (b"2.5e-7", b"6"), (b"-0.0", b"7")]],
    *[_text({"event_id": "b", "v": 1, "type": "controller.bypassed", "call_id": "c1", "portal_id": "p1",
             "source": "voice", "node": "n1", "ts": "2026-11-02T06:00:00.000Z",
             "data": {"reason": "timeout", "key_saved_at": saved}})
      for saved in ["2026-11-01T06:00:00.000Z", "2026-11-01T06:00:00.123456Z", "2026-11-01T06:00:00.123000Z",
                    "2026-11-01T06:00:00Z", "2026-11-01T06:00:00.1Z", "2026-11-01T06:00:00.000001Z"]],
])
def test_odd_forms_give_the_sinks_rows(value):
    fast, sink = _both([value])
    assert fast.num_rows == 1 and fast.equals(sink), (fast.to_pylist(), sink.to_pylist())
