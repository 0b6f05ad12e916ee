"""Notify's own three topics: deliveries (compacted), actions (kept forever), status (compacted)."""

from __future__ import annotations

from common.config import Settings
from streams import topics
from streams.topics import UNLIMITED, TopicSpec

RECORD_BYTES = str(4 * 1024 * 1024)


def notify_topics(settings: Settings) -> list[TopicSpec]:
    """One partition each: the ledger's order is what makes a cursor safe; actions apply in order."""
    deliveries, actions, status = settings.notify_topics
    compact = {"cleanup.policy": "compact", "max.message.bytes": RECORD_BYTES}
    return [
        TopicSpec(deliveries, 1, compact),
        TopicSpec(actions, 1, {"retention.ms": UNLIMITED, "retention.bytes": UNLIMITED}),
        TopicSpec(status, 1, compact),
    ]


def ensure(settings: Settings) -> None:
    """Create the contract's topics and notify's own when missing, and wait until they are listed."""
    specs = topics.project_topics(settings) + notify_topics(settings)
    topics.ensure_topics(settings, specs)
    topics.wait_listed(settings, [spec.name for spec in specs])
