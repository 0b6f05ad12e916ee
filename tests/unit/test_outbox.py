"""The outbox partitions keys exactly as Kafka's default partitioner does."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.outbox import murmur2, partition_of

pytestmark = pytest.mark.unit


@settings(max_examples=2000)
@given(st.binary(max_size=200))
def test_murmur2_is_kafkas(data: bytes) -> None:
    assert murmur2(data) == reference_murmur2(data)


@given(st.binary(min_size=1, max_size=80), st.integers(min_value=1, max_value=64))
def test_keys_go_where_the_default_partitioner_puts_them(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


@pytest.mark.parametrize("key, partition", [
    (b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742),
])
def test_partitions_of_the_java_client(key: bytes, partition: int) -> None:
    # What Kafka's Java producer picks among 1,000 partitions (the values
    # kafka-python's and aiokafka's partitioner tests check).
    assert partition_of(key, list(range(1000))) == partition


def test_a_message_without_key_goes_to_one_of_the_partitions() -> None:
    assert {partition_of(None, [3, 5]) for _ in range(200)} == {3, 5}
