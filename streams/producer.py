"""The worker's Kafka producer: Faust's aiokafka producer, idempotent and ``acks=all`` always.

Faust asks aiokafka for an idempotent producer only inside its own transactions
(``processing_guarantee="exactly_once"``), which the worker does not use (see
the README, "Exactly-once effect without Kafka transactions"). Without
idempotence a batch whose acknowledgement was lost — a leader killed after
writing it, a connection cut during a broker failover — is sent again and
written twice; with it the broker recognises the producer id and sequence
number of the retry and keeps one copy. The worker's outputs tolerate
duplicates (the newest version wins), but its changelogs and signals are
cheaper without them, and a replicated cluster is where such retries happen.
"""

from __future__ import annotations

from typing import Any, Mapping

from faust.transport.drivers import aiokafka as driver


class IdempotentProducer(driver.Producer):
    """Faust's producer with ``enable_idempotence`` (which requires ``acks=all``)."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}
