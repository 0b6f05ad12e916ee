"""``callstream notify``: alerts delivered to people, exactly once per (alert_id, state) and channel.

Pure parts (no Kafka, no network): ``alerts`` (a message -> an alert or a
refusal), ``rules`` (the TOML routes), ``keys`` (idempotency keys), ``text``
(what a portal administrator reads), ``plan`` (min-hits, grouping, silences:
what to send when), ``actions`` (acknowledgements and silences), ``backoff``
and ``thresholds`` (rules over warehouse rollups). The Kafka and network side:
``ledger`` (the deliveries topic), ``sender`` (channels through Apprise),
``service`` (the loop), ``evaluator`` (threshold rules on a timer),
``bitrix24`` (the Apprise plugin of the Bitrix24 channel).
"""
