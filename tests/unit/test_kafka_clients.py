"""Every codec Kafka has, in both Kafka clients; committed-only reading in every consumer.

No broker: record batches are built and read in memory by kafka-python (the
sink, the rebuild, the simulator) and aiokafka (the worker), each reading the
other's; consumers are checked where they are configured.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from common import kafka_clients
from common.config import ConfigError, Settings
from common.errors import CliError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RECORDS = [(b"call-%d" % n, b'{"type":"call.started","n":%d}' % n * 20) for n in range(50)]
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}  # Kafka's record batch attributes


def _build(builder_class, codec: str) -> bytes:
    builder = builder_class(magic=2, compression_type=CODEC_IDS[codec], is_transactional=0,
                            producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for offset, (key, value) in enumerate(RECORDS):
        builder.append(offset, timestamp=1_795_503_600_000 + offset, key=key, value=value, headers=[])
    return bytes(builder.build())


@pytest.mark.parametrize("codec", kafka_clients.CODECS)
def test_both_clients_write_and_read_every_codec(codec):
    from aiokafka.record.default_records import DefaultRecordBatch as AioBatch
    from aiokafka.record.default_records import DefaultRecordBatchBuilder as AioBuilder
    from kafka.record.default_records import DefaultRecordBatch as KpBatch
    from kafka.record.default_records import DefaultRecordBatchBuilder as KpBuilder

    from_kafka_python, from_aiokafka = _build(KpBuilder, codec), _build(AioBuilder, codec)
    if codec != "none":
        # Compressed for real: the values repeat, so the batch is far smaller than they are.
        assert len(from_kafka_python) < sum(len(v) for _, v in RECORDS) / 3
    for data in (from_kafka_python, from_aiokafka):
        assert KpBatch(data).compression_type == AioBatch(data).compression_type == CODEC_IDS[codec]
        assert [(bytes(r.key), bytes(r.value)) for r in KpBatch(data)] == RECORDS
        assert [(bytes(r.key), bytes(r.value)) for r in AioBatch(data)] == RECORDS


def test_every_codec_library_is_installed():
    assert kafka_clients.missing_codecs() == []
    kafka_clients.require_codecs("worker")  # does not raise


def test_a_missing_codec_library_is_a_one_line_start_up_error(monkeypatch):
    import aiokafka.codec
    import kafka.codec

    monkeypatch.setattr(aiokafka.codec, "has_zstd", lambda: False)
    monkeypatch.setattr(kafka.codec, "has_snappy", lambda: False)
    assert kafka_clients.missing_codecs() == ["zstd for aiokafka (cramjam)",
                                              "snappy for kafka-python (python-snappy)"]
    with pytest.raises(CliError) as raised:
        kafka_clients.require_codecs("sink")
    message = str(raised.value)
    assert "\n" not in message and message.startswith("sink: cannot read compressed Kafka batches")
    assert "zstd for aiokafka (cramjam)" in message and "pyproject.toml" in message


def test_compression_setting():
    assert Settings.from_env({}).compression == "none"
    for codec in kafka_clients.CODECS:
        assert Settings.from_env({"CALLSTREAM_COMPRESSION": codec}).compression == codec
    assert Settings.from_env({"CALLSTREAM_COMPRESSION": "zstd"}, compression="gzip").compression == "gzip"
    with pytest.raises(ConfigError, match="CALLSTREAM_COMPRESSION='brotli': must be one of none, gzip"):
        Settings.from_env({"CALLSTREAM_COMPRESSION": "brotli"})
    assert kafka_clients.compression_type("none") is None
    assert kafka_clients.compression_type("lz4") == "lz4"


def test_the_worker_produces_with_the_setting_and_reads_committed_data_only(tmp_path):
    from streams.app import declare
    from streams.domain.rating import load_tariffs

    settings = Settings.from_env({"CALLSTREAM_COMPRESSION": "zstd"}, state_dir=str(tmp_path))
    worker = declare(settings, load_tariffs(settings.tariffs_path))
    assert worker.app.conf.producer_compression_type == "zstd"

    async def consumer_of_the_worker():
        thread = worker.app.consumer._thread
        return thread._create_worker_consumer(worker.app.transport)

    consumer = asyncio.run(consumer_of_the_worker())
    assert consumer._isolation_level == "read_committed"


def _consumer_calls(path: Path) -> list[tuple[int, ast.Call]]:
    tree = ast.parse(path.read_text(), str(path))
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("KafkaConsumer", "AIOKafkaConsumer"):
                calls.append((node.lineno, node))
    return calls


def _reads_committed(call: ast.Call) -> bool:
    for keyword in call.keywords:
        if keyword.arg == "isolation_level":
            return not (isinstance(keyword.value, ast.Constant) and keyword.value.value != "read_committed")
        if keyword.arg is None and isinstance(keyword.value, ast.Call):
            func = keyword.value.func
            if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) == "consumer_options":
                return True
    return False


def test_every_consumer_of_the_project_reads_committed_data_only():
    """Each Kafka consumer the project creates (not the tests') passes ``consumer_options``."""
    found, unset = 0, []
    for package in ("callstream", "streams", "warehouse", "dashboards", "notify", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, call in _consumer_calls(path):
                found += 1
                if not _reads_committed(call):
                    unset.append(f"{path.relative_to(ROOT)}:{line}")
    assert found >= 2 and unset == [], unset
    assert kafka_clients.consumer_options(Settings.from_env({}))["isolation_level"] == "read_committed"


# ---------------------------------------------------------------- producers: acks=all, idempotence

def _producer_calls(path: Path) -> list[tuple[int, ast.Call]]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("KafkaProducer", "AIOKafkaProducer"):
                calls.append((node.lineno, node))
    return calls


def _durable(call: ast.Call) -> bool:
    """The call passes ``**producer_options(...)``, or both acks="all" and enable_idempotence=True."""
    given = {}
    for keyword in call.keywords:
        if keyword.arg is None and isinstance(keyword.value, ast.Call):
            func = keyword.value.func
            if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) == "producer_options":
                return True
        elif isinstance(keyword.value, ast.Constant):
            given[keyword.arg] = keyword.value.value
    return given.get("acks") in ("all", -1) and given.get("enable_idempotence") is True


def test_every_producer_of_the_project_waits_for_all_replicas_and_is_idempotent():
    """On a replicated cluster a producer with acks=1 loses what a leader acknowledged and then died
    with; one that is not idempotent writes a retried batch twice. Tests and benchmarks included."""
    found, weak = 0, []
    for package in ("common", "callstream", "streams", "warehouse", "dashboards", "notify", "bench", "tests"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, call in _producer_calls(path):
                found += 1
                if not _durable(call):
                    weak.append(f"{path.relative_to(ROOT)}:{line}")
    assert found >= 5 and weak == [], weak
    options = kafka_clients.producer_options(Settings.from_env({}))
    assert options["acks"] == "all" and options["enable_idempotence"] is True


def test_the_worker_producer_waits_for_all_replicas_and_is_idempotent(tmp_path):
    """Faust gives its aiokafka producer idempotence only inside transactions (exactly_once),
    which the worker does not use: its outputs and changelogs would be written twice by a retry."""
    from streams.app import declare
    from streams.domain.rating import load_tariffs

    settings = Settings.from_env({}, state_dir=str(tmp_path))
    worker = declare(settings, load_tariffs(settings.tariffs_path))

    async def producer_of_the_worker():
        producer = worker.app.producer._new_producer()  # what the worker starts; not connected
        try:
            return producer._txn_manager is not None, producer._sender._acks
        finally:
            await producer.stop()

    idempotent, acks = asyncio.run(producer_of_the_worker())
    assert idempotent  # aiokafka keeps producer id and sequence numbers only when idempotent
    assert acks == -1
