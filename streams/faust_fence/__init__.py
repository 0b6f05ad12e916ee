"""Everything of callstream that touches Faust's, mode's or aiokafka's internals, in one place.

Faust is used, not forked: the worker is a Faust app with agents, tables and
Faust's own consumer, rebalancing and commits. Where Faust's public API loses
events or costs more than the work itself, the fix lives in this package and
nowhere else, and every private name it relies on is declared in
:data:`PRIVATE` below. ``tests/unit/test_faust_fence.py`` checks each one
against the installed libraries (a Faust or aiokafka upgrade that renames or
drops one fails there, naming it) and that no module outside this package
uses one. Why each workaround exists, whether it is still needed, and the
upstream fix for each: ``docs/faust.md``.

Modules:
- ``transport``: the ``callstream://`` transport — batched delivery and our fetch loop;
- ``fetch``: read_committed, and where each fetch started and ended;
- ``commits``: commits that never pass an unacknowledged message;
- ``handoff``: a hand-off a rebalance cancels ends quietly;
- ``event_context``: the current event around RocksDB operations;
- ``stores``: direct access to the tables' stores; ``producing``: the aiokafka producer;
- ``watchdog``: rejoin when consuming stalls; ``diagnostics``: what every task waits on;
- ``assignor``: no standby replicas of in-memory tables (Faust's memory store cannot use one);
- ``recovery``: table recovery without Faust's per-record overhead.
"""

from __future__ import annotations

from typing import NamedTuple


class Private(NamedTuple):
    """One private name of a library that the fence relies on."""

    owner: str  # "module:Class" whose instances (or class) carry it
    name: str
    kind: str  # "method" (defined on the class) or "attribute" (assigned to instances)
    used_in: str  # the fence module that uses it
    why: str


_CONSUMER = "faust.transport.consumer:Consumer"
_AIOKAFKA_CONSUMER = "faust.transport.drivers.aiokafka:Consumer"
_AIOKAFKA_THREAD = "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread"

PRIVATE: tuple[Private, ...] = (
    # The fetch loop, overridden whole: batched delivery and three fixes (transport.py).
    Private(_CONSUMER, "_drain_messages", "method", "transport", "the fetch loop we replace"),
    Private(_CONSUMER, "_wait_next_records", "method", "transport", "what the loop awaits each round"),
    Private(_CONSUMER, "_add_gap", "method", "transport", "record offsets without a record"),
    Private("mode.services:Service", "_stopped", "attribute", "transport", "the loop's stop flag (mode)"),
    Private(_CONSUMER, "_commit_every", "attribute", "transport", "commit after this many acks"),
    Private(_CONSUMER, "_n_acked", "attribute", "transport", "acks since the last commit"),
    Private(_CONSUMER, "_read_offset", "attribute", "transport, diagnostics", "last offset delivered"),
    Private(_CONSUMER, "_buffered_partitions", "attribute", "transport", "partitions with buffered messages"),
    Private(_AIOKAFKA_CONSUMER, "_to_message", "method", "transport", "one record as Faust's message"),
    # Commits (commits.py).
    Private(_CONSUMER, "_new_offset", "method", "commits", "the offset to commit (off by one upstream)"),
    Private(_CONSUMER, "_committed_offset", "attribute", "commits, transport, watchdog", "last committed"),
    Private(_CONSUMER, "_acked", "attribute", "commits", "acknowledged offsets per partition"),
    Private(_CONSUMER, "_acked_index", "attribute", "commits", "their index"),
    Private(_CONSUMER, "_gap", "attribute", "commits", "offsets without a record per partition"),
    Private(_CONSUMER, "_unacked_messages", "attribute", "diagnostics", "messages not acknowledged"),
    # read_committed and fetch positions (fetch.py).
    Private(_AIOKAFKA_THREAD, "_create_worker_consumer", "method", "fetch", "the aiokafka consumer Faust makes"),
    Private(_AIOKAFKA_THREAD, "_fetch_records", "method", "fetch", "one fetch, whose positions we record"),
    Private("aiokafka.consumer.consumer:AIOKafkaConsumer", "_isolation_level", "attribute", "fetch",
            "Faust sets read_committed only for exactly_once"),
    Private("aiokafka.consumer.consumer:AIOKafkaConsumer", "_fetcher", "attribute", "fetch",
            "where a fetch started"),
    Private("aiokafka.consumer.fetcher:Fetcher", "_subscriptions", "attribute", "fetch", "partition positions"),
    Private("aiokafka.consumer.consumer:AIOKafkaConsumer", "_coordinator", "attribute", "watchdog",
            "ask the group to rebalance"),
    # The consumer thread (watchdog.py).
    Private("faust.transport.consumer:ThreadDelegateConsumer", "_thread", "attribute", "watchdog",
            "the thread that owns the aiokafka consumer"),
    Private(_AIOKAFKA_THREAD, "_ensure_consumer", "method", "watchdog", "the aiokafka consumer"),
    # Stores and the producer (stores.py, producing.py).
    Private("faust.stores.rocksdb:Store", "_db_for_partition", "method", "stores", "one partition's RocksDB"),
    Private("faust.stores.rocksdb:Store", "_key_index", "attribute", "stores", "key -> partition, for deletes"),
    Private("faust.stores.rocksdb:Store", "_dbs", "attribute", "stores", "the open databases (memory census)"),
    # The group's assignment (assignor.py).
    Private("faust.assignor.partition_assignor:PartitionAssignor", "_protocol_assignments", "method",
            "assignor", "the members' assignments, last step before they are encoded"),
    # Table recovery in bunches (recovery.py).
    Private("faust.tables.recovery:Recovery", "_slurp_changelogs", "method", "recovery",
            "the changelog loop we replace"),
    Private("faust.tables.recovery:Recovery", "_set_recovery_ended", "method", "recovery", "recovery ends"),
    Private("faust.tables.recovery:Recovery", "_active_events_received_at", "attribute", "recovery",
            "when an active partition last got a record (Faust's stats)"),
    Private("faust.tables.recovery:Recovery", "_standby_events_received_at", "attribute", "recovery",
            "the same for standbys"),
    Private("faust.tables.recovery:Recovery", "_last_flush_at", "attribute", "recovery",
            "when buffers were last applied (Faust's stats)"),
    Private("faust.tables.recovery:Recovery", "_standbys_span", "attribute", "recovery",
            "part of Faust's standbys-ready test"),
    Private("faust.tables.manager:TableManager", "_recovery", "attribute", "recovery",
            "the recovery service, made once"),
    Private("faust.transport.drivers.aiokafka:Producer", "_ensure_producer", "method", "producing",
            "the started AIOKafkaProducer"),
    Private("aiokafka.client:AIOKafkaClient", "_wait_on_metadata", "method", "producing", "a topic's metadata"),
    Private("faust.transport.drivers.aiokafka:Producer", "_settings_extra", "method", "producing",
            "extra AIOKafkaProducer settings: idempotence outside transactions"),
)

# Private names of the fence's own classes (not the libraries'): allowed, not checked.
OWN = frozenset({"_next_offset", "_sought", "_holes", "_skipped", "_since", "_refetched", "_seen",
                 "_acknowledge", "_stepped_over", "_on_gap", "_is_suspend_wait", "_fold_gaps",
                 "_deliveries", "_batch_message", "_ack_batch", "_apply", "_signal_end_if_done"})
# Private names of the standard library the fence uses (documented CPython APIs).
STDLIB = frozenset({"_asyncio_future_blocking", "_current_frames"})
