"""The ``flag_outages`` agent's batches: portal signals -> ``controller_outage`` alerts.

Each message on ``<group>-portal-signals`` is a JSON list of one portal's
call verdicts (key = portal), sent by ``assemble_cdrs`` once per portal per
batch. The rule itself is pure (streams.domain.outages). Outputs are flushed
before the states are written (see streams.assemble).
"""

from __future__ import annotations

import logging
from typing import Sequence

import orjson
from faust.types import EventT

from streams.app import Worker
from streams.domain.outages import (OutageState, PortalSignal, apply_signals,
                                    outage_state_from_bytes, outage_state_to_bytes)
from streams.outbox import Outbox

log = logging.getLogger("callstream.worker")


class OutageBatches:
    """Per-portal outage machines over batches of signal messages."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def _table(self) -> dict:
        return self.worker.outages_by_portal.data.data  # the memory store's plain dict

    async def process(self, batch: Sequence[EventT]) -> None:
        states: dict[bytes, tuple[EventT, OutageState]] = {}
        outbox = Outbox()
        for kafka_event in batch:
            message = kafka_event.message
            key = message.key
            portal_id = key.decode()
            state = states[key][1] if key in states else self._load(key, portal_id)
            signals = [PortalSignal(portal_id, call_id, verdict, ts_us)
                       for call_id, verdict, ts_us in orjson.loads(message.value)]
            state, alerts = apply_signals(state, signals, self.worker.rules)
            for _alert, payload in alerts:
                outbox.add(self.worker.settings.topic_alerts, key, payload)
            states[key] = (kafka_event, state)
        await outbox.flush(self.worker.app.producer)
        for key, (anchor, state) in states.items():
            blob = outage_state_to_bytes(state)
            self._table()[key] = blob
            self.worker.outages_by_portal.send_changelog(anchor.message.partition, key, blob)

    def _load(self, key: bytes, portal_id: str) -> OutageState:
        blob = self._table().get(key)
        if not blob:
            return OutageState(portal_id)
        try:
            return outage_state_from_bytes(blob)
        except ValueError as exc:
            # A state this version cannot read (an older format): the portal's
            # outages restart from the verdicts that arrive from now on. Losing
            # that is better than a worker that can never start.
            log.warning("portal %s: outage state unreadable (%s); starting it afresh", portal_id, exc)
            return OutageState(portal_id)
