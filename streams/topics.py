"""The project's topics: their specs and their idempotent creation.

Auto-creation is off on our broker (and should be on production clusters):
``call-events`` is the source of truth, so it is created here with unlimited
retention and the partition count every co-partitioned topic must share.

Every topic the project creates gets the same replication factor
(``CALLSTREAM_REPLICATION``; ``auto`` is the cluster's broker count, at most 3)
and ``min.insync.replicas`` to go with it (:func:`replication_for`): with
``acks=all`` producers, a record acknowledged on a three-node cluster is then
on two brokers at least, and the cluster goes on taking writes with one down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from common.config import Settings
from common.errors import CliError
from streams.domain.shared import MAX_STATE_BYTES

_log = logging.getLogger("callstream.topics")

UNLIMITED = "-1"
# Room for a message just over 1 MiB: the pipeline, not the broker, decides too_large.
MAX_MESSAGE_BYTES = str(2 * 1024 * 1024)
# The worker's own topics (table changelogs, signals, commands) hold states whose
# worst case streams.domain.shared bounds; this leaves room for a record batch around it.
INTERNAL_MESSAGE_BYTES = str(MAX_STATE_BYTES + 1024 * 1024)


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the project needs it."""

    name: str
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict)


def project_topics(settings: Settings) -> list[TopicSpec]:
    """The contract's four topics with the partitions and retention they need."""
    keep_forever = {"retention.ms": UNLIMITED, "retention.bytes": UNLIMITED,
                    "max.message.bytes": MAX_MESSAGE_BYTES}
    return [
        # A producer's clock is input too: the broker refuses a message stamped more than
        # an hour ahead of its own clock (KIP-937), and an event's ts may be at most 24 h
        # after its message's (contract v1.1), so no event can claim a far future.
        TopicSpec(settings.topic_events, settings.events_partitions,
                  {**keep_forever, "message.timestamp.after.max.ms": str(3600 * 1000)}),
        # Rejected messages are evidence: kept as long as the events they stand for.
        TopicSpec(settings.topic_dlq, settings.output_partitions, keep_forever),
        # The newest version of a call is the truth: compaction keeps it, forever.
        TopicSpec(settings.topic_cdrs, settings.output_partitions,
                  {"cleanup.policy": "compact", "max.message.bytes": MAX_MESSAGE_BYTES}),
        # Keyed by portal: compaction would keep one alert per portal, so keep them all.
        TopicSpec(settings.topic_alerts, settings.output_partitions,
                  {"retention.ms": UNLIMITED, "retention.bytes": UNLIMITED}),
    ]


# Beyond three copies a topic gains little safety for its cost (Kafka's own guidance).
AUTO_REPLICATION_MAX = 3


def replication_for(settings: Settings, brokers: int) -> tuple[int, int]:
    """(replication factor, ``min.insync.replicas``) of new topics on a cluster of ``brokers``.

    ``min.insync.replicas`` is 2 from three replicas on: one broker may fail with no
    write refused and no acknowledged record on a single disk; with one or two
    replicas it is 1, or a single broker down would stop every producer.
    """
    factor = settings.replication or min(AUTO_REPLICATION_MAX, max(1, brokers))
    if factor > brokers:
        raise CliError(f"CALLSTREAM_REPLICATION is {factor} but the cluster at {settings.bootstrap} "
                       f"has {brokers} broker(s)")
    return factor, 2 if factor >= 3 else 1


def _admin(settings: Settings):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        return KafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=15000,
                                **settings.kafka_client_options())
    except (KafkaError, OSError) as exc:
        raise CliError(f"cannot reach Kafka at {settings.bootstrap}: {exc}") from None


def ensure_topics(settings: Settings, specs: list[TopicSpec]) -> dict[str, str]:
    """Create missing topics; report existing ones. Returns name -> 'created'|'exists'."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        outcome: dict[str, str] = {}
        missing = [spec for spec in specs if spec.name not in existing]
        for spec in specs:
            outcome[spec.name] = "exists"
        if missing:
            factor, min_isr = replication_for(settings, len(admin.describe_cluster()["brokers"]))
        for spec in missing:
            configs = {"min.insync.replicas": str(min_isr), **spec.configs}
            try:
                admin.create_topics([NewTopic(spec.name, spec.partitions, factor, topic_configs=configs)])
                outcome[spec.name] = "created"
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create
        for spec in specs:
            if spec.name == settings.topic_events and spec.name in existing:
                _check_events_partitions(admin, spec)
        return outcome
    finally:
        admin.close()


def _topic_configs(described: Mapping) -> Mapping:
    """The topics' part of kafka-python's ``describe_configs`` answer (keyed ``topic``;
    reading it as ``TOPIC`` found nothing, and every topic was "raised", a larger limit
    an operator had set lowered with them)."""
    for key, value in described.items():
        if str(key).lower() == "topic":
            return value
    return {}


def raise_message_limits(settings: Settings, specs: list[TopicSpec], timeout_s: float = 30.0) -> None:
    """Give existing topics of ``specs`` the ``max.message.bytes`` their spec asks for when
    theirs is smaller (a topic created by an older version, or by Faust itself).

    On a cluster, the broker that answers may not know a topic created a moment ago
    (a node just restarted, metadata still spreading): such a topic is described again
    until ``timeout_s``, and never "raised" on a guess — kafka-python's check that a key
    is a known dynamic config then failed on the empty description, and the worker
    exited at start (seen in CI with a broker killed and restarted). A topic still not
    described by then was created with its spec's limit by ``ensure_topics`` just before,
    or will be checked at the next start; it is logged, not a reason to stop.
    """
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    wanted = {spec.name: int(spec.configs["max.message.bytes"]) for spec in specs
              if "max.message.bytes" in spec.configs}
    if not wanted:
        return
    deadline = time.monotonic() + timeout_s
    admin = _admin(settings)
    try:
        pending = dict(wanted)
        while pending:
            try:
                resources = [ConfigResource(ConfigResourceType.TOPIC, name, {"max.message.bytes": None})
                             for name in pending]
                described = admin.describe_configs(resources, config_filter="all")
                current = {name: int(configs["max.message.bytes"]["value"])
                           for name, configs in _topic_configs(described).items()
                           if name in pending and (configs.get("max.message.bytes") or {}).get("value")}
                raise_ = [ConfigResource(ConfigResourceType.TOPIC, name, {"max.message.bytes": str(limit)})
                          for name, limit in pending.items() if name in current and current[name] < limit]
                if raise_:
                    admin.alter_configs(raise_, raise_on_unknown=False)
                pending = {name: limit for name, limit in pending.items() if name not in current}
            except (KafkaError, ValueError, OSError) as exc:
                _log.warning("checking the topics' max.message.bytes: %s; trying again", exc)
            if pending:
                if time.monotonic() > deadline:
                    _log.warning("max.message.bytes of %s not described after %.0f s; left as created",
                                 ", ".join(sorted(pending)), timeout_s)
                    return
                time.sleep(0.5)
    finally:
        admin.close()


def wait_listed(settings: Settings, names: list[str], timeout_s: float = 30.0) -> None:
    """Wait until the cluster lists every topic of ``names`` (a new topic reaches the
    metadata a moment after its creation); CliError after ``timeout_s``."""
    admin = _admin(settings)
    try:
        deadline = time.monotonic() + timeout_s
        while not set(names) <= set(admin.list_topics()):
            if time.monotonic() > deadline:
                missing = sorted(set(names) - set(admin.list_topics()))
                raise CliError(f"topics created but not listed by the cluster after {timeout_s:.0f} s: "
                               f"{', '.join(missing)}")
            time.sleep(0.2)
    finally:
        admin.close()


def _check_events_partitions(admin, spec: TopicSpec) -> None:
    # The worker's tables are co-partitioned with the events topic: their
    # partition counts must be equal, so a mismatch with an existing topic is fatal.
    described = admin.describe_topics([spec.name])
    have = len(described[0]["partitions"]) if described else None
    if have is not None and have != spec.partitions:
        raise CliError(f"topic {spec.name} exists with {have} partitions but "
                       f"CALLSTREAM_EVENTS_PARTITIONS is {spec.partitions}; set it to {have}")


def describe(settings: Settings) -> list[tuple[str, int]]:
    """(name, partitions) of every non-internal topic on the cluster."""
    admin = _admin(settings)
    try:
        names = sorted(n for n in admin.list_topics() if not n.startswith("__"))
        topics = admin.describe_topics(names) if names else []
        return sorted((t["name"], len(t["partitions"])) for t in topics)
    finally:
        admin.close()


def delete_topics(settings: Settings, names: list[str]) -> None:
    """Delete topics (tests clean up after themselves)."""
    admin = _admin(settings)
    try:
        admin.delete_topics(names)
    finally:
        admin.close()
