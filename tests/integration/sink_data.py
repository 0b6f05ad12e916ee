"""Realistic messages for the sink's integration tests, built with the real domain code.

Events come from the simulator (with duplicates and malformed messages),
CDRs from ``build_cdr`` + ``cdr_to_json`` (several versions per call, some
re-emitted), alerts from ``alert_to_json`` (an outage that opens and then
resolves under the same id), DLQ records from ``encode_dlq`` (one rejected
message recorded twice), and a few garbage messages the sink must reject.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from common.config import Settings
from streams.domain.alerts import Alert, alert_to_json
from streams.domain.cdr import build_cdr
from streams.domain.cdr_json import cdr_to_json
from streams.domain.dlq import encode_dlq
from streams.domain.events import Event
from streams.domain.rating import load_tariffs
from streams.domain.validation import validate
from streams.simulator import Faults, generate_all
from warehouse import duck

START_US = 1_795_503_600_000_000  # 2026-11-24T07:00:00Z

Message = tuple[bytes | None, bytes | None]  # key, value


@dataclass
class Dataset:
    """Messages per topic role, and what the warehouse must end up holding."""

    events: list[Message] = field(default_factory=list)
    cdrs: list[Message] = field(default_factory=list)
    alerts: list[Message] = field(default_factory=list)
    dlq: list[Message] = field(default_factory=list)
    latest_cdr: dict[str, bytes] = field(default_factory=dict)  # call_id -> JSON of the winner
    event_ids: set[str] = field(default_factory=set)
    garbage_cdrs: int = 0


def _cdr_versions(events: list[Event], tariffs) -> list[bytes]:
    types = {e.type for e in events}
    if not {"call.started", "call.ended"} <= types:
        return [cdr_to_json(build_cdr(events, tariffs, incomplete=True), 1)]
    early = [e for e in events if e.type != "recording.stored"]
    versions = []
    if len(early) < len(events):
        versions.append(build_cdr(early, tariffs))
    versions.append(build_cdr(events, tariffs))
    return [cdr_to_json(cdr, n) for n, cdr in enumerate(versions, start=1)]


def build(calls: int = 300, seed: str = "sink", portals: int = 4) -> Dataset:
    """A dataset of ``calls`` simulated calls and everything derived from them."""
    messages, _ = generate_all(seed, calls, portals, START_US,
                               Faults(duplicates=0.1, malformed=0.03))
    data = Dataset()
    by_call: dict[str, list[Event]] = defaultdict(list)
    seen: set[str] = set()
    for index, message in enumerate(messages):
        data.events.append((message.key, message.value))
        result = validate(message.value, message.key)
        if isinstance(result, Event):
            data.event_ids.add(result.event_id)
            if result.event_id not in seen:
                seen.add(result.event_id)
                by_call[result.call_id].append(result)
        else:
            record = encode_dlq(result, "call-events", 0, index, message.value)
            data.dlq.append((message.key, record))
            if index % 3 == 0:  # a worker restart rejects the same message again
                data.dlq.append((message.key, record))
    tariffs = load_tariffs(Settings.from_env().tariffs_path)
    for n, (call_id, events) in enumerate(sorted(by_call.items())):
        versions = _cdr_versions(events, tariffs)
        if n % 7 == 0:
            versions.append(versions[-1])  # re-emitted after a worker restart
        data.cdrs += [(call_id.encode(), v) for v in versions]
        data.latest_cdr[call_id] = versions[-1]
    for n in range(3):
        data.cdrs.append((b"junk", b"not json at all" if n else b"\xff\xfe garbage"))
        data.garbage_cdrs += 1
    data.alerts = _alerts(by_call)
    return data


def _alerts(by_call: dict[str, list[Event]]) -> list[Message]:
    out: list[Message] = []
    for call_id, events in sorted(by_call.items()):
        bypass = [e for e in events if e.type == "controller.bypassed"]
        if bypass:
            alert = Alert(f"controller_bypassed:{call_id}", "controller_bypassed", bypass[0].portal_id,
                          call_id, bypass[0].ts_us, {"reason": bypass[0].data.reason})
            out.append((alert.portal_id.encode(), alert_to_json(alert)))
    opened = Alert("controller_outage:p-test:2026-11-24T08:00:00.000Z", "controller_outage", "p-test",
                   None, START_US + 3_600_000_000, {"state": "open", "bypassed_calls": 5})
    resolved = Alert(opened.alert_id, opened.type, opened.portal_id, None, opened.ts_us + 60_000_000,
                     {"state": "resolved", "bypassed_calls": 7})
    out += [(b"p-test", alert_to_json(opened)), (b"p-test", alert_to_json(opened)),
            (b"p-test", alert_to_json(resolved))]
    return out


def produce(settings: Settings, data: Dataset) -> None:
    """Send every message of ``data`` to the topics of ``settings`` (keyed, in order)."""
    from kafka import KafkaProducer

    from common.kafka_clients import producer_options

    producer = KafkaProducer(linger_ms=20, max_request_size=4 * 1024 * 1024, **producer_options(settings))
    for topic, messages in ((settings.topic_events, data.events), (settings.topic_cdrs, data.cdrs),
                            (settings.topic_alerts, data.alerts), (settings.topic_dlq, data.dlq)):
        for key, value in messages:
            producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def _summed(rollup) -> str:
    """A rollup's rows summed per dimensions (its rows are additive pieces, some negative)."""
    from warehouse import schema

    dims = ", ".join(schema.quote(n) for n in rollup.dimensions)
    sums = ", ".join(f"sum({n}) AS {n}" for n in rollup.measure_names)
    return f"SELECT {dims}, {sums} FROM {rollup.name} GROUP BY ALL HAVING sum({rollup.measure_names[0]}) <> 0"


def table_arrow(root, table: str):
    """Every row of one warehouse table, read through a fresh Reader.

    A rollup is summed per dimensions: its rows are additive pieces whose split
    depends on the layout of the moment, their sums do not.
    """
    from warehouse import rollups
    from warehouse.reader import Reader

    by_name = {r.name: r for r in rollups.ROLLUPS}
    query = _summed(by_name[table]) if table in by_name else f"SELECT * FROM {table}"
    with Reader(root) as reader, reader.cursor() as con:
        return con.sql(query).to_arrow_table()


def differences(root_a, root_b, table: str) -> tuple[int, int]:
    """(rows of A not in B, rows of B not in A), duplicates counted (EXCEPT ALL both ways)."""

    con = duck.connect()
    try:
        con.register("a", table_arrow(root_a, table))
        con.register("b", table_arrow(root_b, table))
        only_a = con.sql("SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM b)").fetchall()
        only_b = con.sql("SELECT count(*) FROM (SELECT * FROM b EXCEPT ALL SELECT * FROM a)").fetchall()
        return only_a[0][0], only_b[0][0]
    finally:
        con.close()


def assert_same_warehouse(root_a, root_b) -> None:
    """Every table (and rollup) of both warehouses holds exactly the same rows."""
    from warehouse import rollups, schema

    for table in (*schema.TABLES, *(r.name for r in rollups.ROLLUPS)):
        assert differences(root_a, root_b, table) == (0, 0), table


def assert_rollup_exact(root) -> None:
    """Every rollup (stored files + the deltas' pieces) equals the rollup of ``cdrs`` computed now."""
    from warehouse import rollups, schema
    from warehouse.reader import Reader

    with Reader(root) as reader, reader.cursor() as con:
        for rollup in rollups.ROLLUPS:
            dims = ", ".join(schema.quote(n) for n in rollup.dimensions)
            sums = ", ".join(f"sum({n}) AS {n}" for n in rollup.measure_names)
            stored = _summed(rollup)
            fresh = f"SELECT {dims}, {sums} FROM ({rollup.select('cdrs')}) GROUP BY ALL"
            for a, b in ((stored, fresh), (fresh, stored)):
                assert con.sql(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchall() == [(0,)], rollup.name


_SAMPLE_START = object()


def cdr(call_id: str, version: int, started_us: int | None | object = _SAMPLE_START, cost: str = "1.53",
        **changes) -> bytes:
    """The JSON of the sample CDR (tests.unit.warehouse_samples) with a few fields changed.

    ``started_us`` None makes an incomplete call without ``started_at``; default: the sample's.
    """
    from decimal import Decimal

    from tests.unit.warehouse_samples import CDR, T0

    started = T0 if started_us is _SAMPLE_START else started_us
    if started is None:  # only an incomplete call lacks call.started (the sink checks it)
        changes.setdefault("status", "incomplete")
    return cdr_to_json(CDR._replace(call_id=call_id, cost=Decimal(cost), started_at_us=started,
                               **changes), version)


class Feed:
    """Writes messages into a warehouse the way the sink does: one partition, growing offsets."""

    def __init__(self, writer) -> None:
        self.writer = writer
        self.offsets: dict[str, int] = {}

    def send(self, table: str, *values: bytes) -> None:
        """Decode ``values`` as messages of ``table``'s topic and publish them as one batch."""
        from warehouse.decode import RawBatch, decode_json
        from warehouse.writer import Batch

        raw = RawBatch(table)
        for value in values:
            offset = self.offsets.get(table, 0)
            raw.add(0, offset, 4_102_444_800_000, b"k", value)  # 2100: after every event (contract v1.1)
            self.offsets[table] = offset + 1
        con = self.writer.cursor()
        try:
            rows, rejects = decode_json(con, table, raw)
        finally:
            con.close()
        assert rejects.num_rows == 0, rejects.to_pylist()
        self.writer.write(Batch({table: rows}, {table: {0: self.offsets[table]}}))


# Columns that name a position in the cdrs/alerts/DLQ topics (or the DLQ message's Kafka
# time): a rebuild reads none of those topics, so they are the only ones allowed to differ.
POSITIONS = {"cdrs": ("kafka_partition", "kafka_offset"), "alerts": ("kafka_partition", "kafka_offset"),
             "dlq": ("kafka_partition", "kafka_offset", "ts"), "events": (), "cdrs_daily": ()}


def table_differences(a: Path, b: Path, table: str) -> tuple[int, int]:
    """(rows of A not in B, rows of B not in A) over the columns a rebuild must reproduce."""
    con = duck.connect()
    try:
        # Outages retracted after a late verdict are not live alerts (and a rebuild has none).
        live_only = "WHERE state IS DISTINCT FROM 'retracted'" if table == "alerts" else ""
        for name, root in (("a", a), ("b", b)):
            con.register(f"{name}_all", table_arrow(root, table).drop_columns(list(POSITIONS[table])))
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_all {live_only}")
        assert con.execute("SELECT count(*) FROM a").fetchone()[0] > 0, table
        return tuple(con.execute(f"SELECT count(*) FROM (SELECT * FROM {x} EXCEPT ALL SELECT * FROM {y})")
                     .fetchone()[0] for x, y in (("a", "b"), ("b", "a")))
    finally:
        con.close()
