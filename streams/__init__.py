"""The Kafka/Faust side of callstream; the pure domain core lives in :mod:`streams.domain`."""
