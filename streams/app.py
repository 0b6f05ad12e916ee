"""The Faust app of the worker: its topics, tables and configuration.

Topics and tables are declared here, agents in :mod:`streams.agents`. Two
internal topics belong to the worker group, both created by the worker at
start-up with the events topic's partition count:
- ``<group>-call-commands``: the sweep asks the call's own partition to expire
  or archive it, so that only the agent ever writes a call's state;
- ``<group>-portal-signals``: each call's Controller verdict, keyed by portal,
  for the per-portal ``controller_outage`` rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from common.config import Settings
from common.kafka_clients import compression_type
from streams.domain.alerts import AlertRules
from streams.domain.rating import TariffTable
from streams.domain.shared import MAX_STATE_BYTES
from streams.faust_fence.assignor import PartitionAssignor
from streams.faust_fence.producing import IdempotentProducer
from streams.faust_fence.recovery import TableManager
from streams.native import native_core

# RocksDB for the archive: small memtables and cache; the archive is written
# once per call (~600 bytes; 200 calls/s fill a partition's 2 MiB memtable in
# about two minutes) and read for late events and new call ids. Each of a
# worker's partitions (actives and standbys) has a database of its own with
# up to two memtables and its own block cache: 8 partitions at 8 MiB and
# 32 MiB made ~400 MiB that a soak saw the worker grow into.
ARCHIVE_ROCKSDB = {
    "write_buffer_size": 2 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 * 1024 * 1024,
    "block_cache_size": 8 * 1024 * 1024,
    "block_cache_compressed_size": 0,
    "max_open_files": 512,
    "driver": "rocksdict",
}


class RawBytes(faust.Schema):
    """Keys and values as the bytes on the wire, without faust's codec registry.

    The worker validates events itself (the contract's validator); faust's
    "raw" codec would hand back the same bytes after a registry lookup and two
    codec calls per message, which showed in the profile.
    """

    def loads_key(self, app, message, *, loads=None, serializer=None):
        return message.key

    def loads_value(self, app, message, *, loads=None, serializer=None):
        return message.value


@dataclass
class Worker:
    """Everything the agents need, built once per process."""

    settings: Settings
    tariffs: TariffTable
    rules: AlertRules
    app: faust.App
    events: faust.TopicT
    commands: faust.TopicT
    signals: faust.TopicT
    cdrs: faust.TopicT
    alerts: faust.TopicT
    dlq: faust.TopicT
    calls_by_id: faust.Table
    archived_calls_by_id: faust.Table
    outages_by_portal: faust.Table
    native: Any | None = None  # the compiled core (streams/native.py), None: Python only


# The worker's tables; Faust names each one's changelog "<group>-<table>-changelog".
TABLES = ("calls_by_id", "archived_calls_by_id", "outages_by_portal")


def changelog_topic_names(settings: Settings) -> list[str]:
    """The changelog topic of each of the worker's tables."""
    return [f"{settings.worker_group}-{table}-changelog" for table in TABLES]


def internal_topic_names(settings: Settings) -> tuple[str, str]:
    """Names of the worker group's own topics (commands, signals)."""
    return f"{settings.worker_group}-call-commands", f"{settings.worker_group}-portal-signals"


def streams_running(app: faust.App) -> bool:
    """True while the agents process events: no rebalance under way, tables recovered, flow on.

    Faust's ``tables.recovery.completed`` alone is not enough: it is set by the
    first recovery and never cleared, so it says nothing during later rebalances.
    """
    return (not app.rebalancing and app.tables.recovery.completed.is_set()
            and app.consumer.flow_active)


def alert_rules(settings: Settings) -> AlertRules:
    """The alert thresholds from the settings."""
    return AlertRules(outage_calls=settings.outage_calls,
                      outage_window_us=int(settings.outage_window * 1_000_000),
                      stale_key_after_us=int(settings.stale_key_after * 1_000_000))


def _broker_url(settings: Settings) -> str:
    # callstream:// is faust's aiokafka transport with our consumer (streams/faust_fence/transport.py).
    return ";".join(f"callstream://{host.strip()}" for host in settings.bootstrap.split(","))


def _credentials(settings: Settings):
    protocol = settings.security_protocol
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username, password=settings.sasl_password,
            mechanism=settings.sasl_mechanism or "PLAIN",
            ssl_context=settings.aiokafka_ssl_context())
    if protocol == "SSL":
        return faust.SSLCredentials(settings.aiokafka_ssl_context())
    return None


STREAM_BUFFER_DELIVERIES = 4


def create_app(settings: Settings) -> faust.App:
    """A Faust app tuned for the worker: at-least-once, batches, no web server.

    Its consumer reads committed data only (``streams/faust_fence/transport.py``); its
    producer is idempotent and waits for every in-sync replica (``streams/faust_fence/producing.py``).
    """
    app = faust.App(
        settings.worker_group,
        broker=_broker_url(settings),
        broker_credentials=_credentials(settings),
        store="memory://",
        datadir=str(Path(settings.state_dir).resolve()),
        topic_partitions=settings.events_partitions,
        topic_disable_leader=True,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=5000,
        consumer_max_fetch_size=8 * 1024 * 1024,
        # Deliveries (a partition's records from one fetch, up to broker_max_poll_records) a
        # stream holds before the fetch loop waits: the bound on records fetched and not yet
        # processed. 256 let a starved worker hold a million events (1.2 GB) in a soak.
        stream_buffer_maxsize=STREAM_BUFFER_DELIVERIES,
        broker_commit_interval=1.0,
        # A killed worker's partitions move once the group has missed its heartbeats this long
        # (Faust's default: 60 s; failover goal: 30 s to the first CDR of a moved partition).
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=settings.worker_heartbeat_s,
        producer_acks=-1,
        producer_compression_type=compression_type(settings.compression),
        producer_linger=0.005,
        producer_max_batch_size=512 * 1024,
        # Room for the largest state a table can hold (streams.domain.shared): the
        # outputs are held below 1 MiB by the core and streams/output_guard.py.
        producer_max_request_size=MAX_STATE_BYTES + 1024 * 1024,
        table_standby_replicas=1,
        # Faust's assignor minus the standbys the in-memory store cannot use (streams/faust_fence/assignor.py).
        PartitionAssignor=PartitionAssignor,
        # Faust's table recovery, its per-record overhead gone (streams/faust_fence/recovery.py).
        TableManager=TableManager,
        web_enabled=False,
    )
    app.transport.Producer = IdempotentProducer
    return app


def declare(settings: Settings, tariffs: TariffTable, app: faust.App | None = None) -> Worker:
    """Declare the worker's topics and tables on a (new) Faust app."""
    app = app or create_app(settings)
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    commands_name, signals_name = internal_topic_names(settings)
    # One agent consumes both: events and the sweep's commands share partitions.
    events = app.topic(settings.topic_events, commands_name,
                       schema=RawBytes(key_type=bytes, value_type=bytes, **raw))
    # bytes key/value types make faust use the raw codec for the changelog
    # (recovery decodes with it; anything else would be parsed as JSON).
    table = {"partitions": settings.events_partitions, "key_type": bytes, "value_type": bytes}
    signals = app.topic(signals_name, schema=RawBytes(key_type=bytes, value_type=bytes, **raw))
    # The agents' inputs arrive a fetch at a time: each event's value is a list of records.
    app.consumer.batched_topics = frozenset({settings.topic_events, commands_name, signals_name})
    rules = alert_rules(settings)
    return Worker(
        settings=settings, tariffs=tariffs, rules=rules, app=app,
        native=native_core(settings, tariffs, rules),
        events=events,
        commands=app.topic(commands_name, **raw),
        signals=signals,
        cdrs=app.topic(settings.topic_cdrs, **raw),
        alerts=app.topic(settings.topic_alerts, **raw),
        dlq=app.topic(settings.topic_dlq, **raw),
        calls_by_id=app.Table("calls_by_id", **table),
        # "rocksdb:<name>", not "rocksdb://": yarl's URL("rocksdb://") is falsy and
        # faust would silently fall back to the app's in-memory store.
        archived_calls_by_id=app.Table("archived_calls_by_id", store="rocksdb:archived_calls_by_id",
                                       options=dict(ARCHIVE_ROCKSDB), **table),
        outages_by_portal=app.Table("outages_by_portal", **table),
    )
