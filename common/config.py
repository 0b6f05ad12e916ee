"""The one configuration object: read from the environment, CLI flags win.

Every setting is declared once in ``SETTINGS`` with its environment variable,
its default and a line of documentation; ``tests/unit/test_config.py`` fails
when one of them is missing from docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from streams.domain.shared import CALL_EVENTS_CEILING, MIN_CALL_EVENTS


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


def _default_tariffs() -> str:
    return str(resources.files("streams") / "tariffs" / "default.csv")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be > 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be >= 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _session_timeout(text: str) -> float:
    value = float(text)
    if not 6 <= value <= 300:
        # The broker refuses a session outside group.min/max.session.timeout.ms (default 6 s .. 30 min).
        raise ValueError("must be between 6 and 300 seconds")
    return value


def _call_events(text: str) -> int:
    value = int(text)
    if not MIN_CALL_EVENTS <= value <= CALL_EVENTS_CEILING:
        raise ValueError(f"must be between {MIN_CALL_EVENTS} and {CALL_EVENTS_CEILING}")
    return value


def _hot_calls(text: str) -> int:
    value = int(text)
    if value < 1000:
        raise ValueError("must be >= 1000")
    return value


def _nodes(text: str) -> int:
    value = int(text)
    if value not in (1, 3, 5):
        # A KRaft quorum of n controllers survives (n - 1) // 2 failures: an even count adds none.
        raise ValueError("must be 1, 3 or 5")
    return value


def _replication(text: str) -> int | None:
    if text.strip().lower() == "auto":
        return None
    value = int(text)
    if value < 1:
        raise ValueError("must be auto or >= 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError("must be a TCP port")
    return value


def _native(text: str) -> str:
    if text not in ("auto", "on", "off"):
        raise ValueError("must be auto, on or off")
    return text


def _text(text: str) -> str:
    return text


def _zone(text: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as Europe/Moscow or UTC") from None
    return text


def _locale(text: str) -> str:
    value = text.strip().lower()
    if value not in ("en", "ru"):
        raise ValueError("must be en or ru")
    return value


def _optional(text: str) -> str | None:
    return text or None


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def _security_protocol(text: str) -> str:
    value = text.upper()
    if value not in {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}:
        raise ValueError("must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    return value


# Every compression.type Kafka has.
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


def _codec(text: str) -> str:
    value = text.strip().lower()
    if value not in CODECS:
        raise ValueError(f"must be one of {', '.join(CODECS)}")
    return value


def _log_level(text: str) -> str:
    value = text.strip().lower()
    if value not in {"debug", "info", "warning", "error"}:
        raise ValueError("must be debug, info, warning or error")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a finite number >= 0")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


def _money(text: str) -> Decimal:
    from decimal import InvalidOperation

    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError("must be a decimal number") from None
    if not value.is_finite() or value < 0:
        raise ValueError("must be a decimal number >= 0")
    return value


def _decimal_bytes(text: str) -> int:
    value = int(Decimal(text))
    if value < 1:
        raise ValueError("must be >= 1")
    return value


@dataclass(frozen=True)
class Setting:
    """Declaration of one setting: where it comes from and what it means."""

    name: str
    env: str
    default: Any
    parse: Callable[[str], Any]
    doc: str
    shown: str | None = None  # the default in words, where its value (None) says nothing


def declare(env: str, default: Any, parse: Callable[[str], Any], doc: str, shown: str | None = None) -> Any:
    """A field of :class:`Settings` read from ``env`` (``default`` when unset) by ``parse``.

    The declaration rides in the field's metadata; :data:`SETTINGS` collects it
    with the field's name, so a setting is named once.
    """
    return dataclasses.field(metadata={"setting": (env, default, parse, doc, shown)})


@dataclass(frozen=True)
class Settings:
    """Immutable settings of one process. Build with :meth:`from_env`.

    Each field is declared once, here: its type, environment variable, default,
    parser and the line of documentation ``docs/configuration.md`` carries.
    """

    # Kafka
    bootstrap: str = declare("CALLSTREAM_BOOTSTRAP", "127.0.0.1:9092", _text,
            "Kafka bootstrap servers, comma-separated host:port.")
    topic_events: str = declare("CALLSTREAM_TOPIC_EVENTS", "call-events", _text,
            "Topic of raw call events (the source of truth).")
    topic_dlq: str = declare("CALLSTREAM_TOPIC_DLQ", "call-events-dlq", _text,
            "Topic of rejected events with their reason.")
    topic_cdrs: str = declare("CALLSTREAM_TOPIC_CDRS", "cdrs", _text,
            "Topic of CDR versions, keyed by call_id.")
    topic_alerts: str = declare("CALLSTREAM_TOPIC_ALERTS", "alerts", _text,
            "Topic of alerts, keyed by portal_id.")
    events_partitions: int = declare("CALLSTREAM_EVENTS_PARTITIONS", 8, _positive_int,
            "Partitions of the events topic (and of every topic co-partitioned with it).")
    output_partitions: int = declare("CALLSTREAM_OUTPUT_PARTITIONS", 8, _positive_int,
            "Partitions of the cdrs, alerts and DLQ topics when the project creates them.")
    compression: str = declare("CALLSTREAM_COMPRESSION", "none", _codec,
            "Compression of what the project produces (worker outputs, simulator): none, gzip, "
            "snappy, lz4 or zstd. Consumers read every codec whatever this says.")
    security_protocol: str = declare("CALLSTREAM_SECURITY_PROTOCOL", "PLAINTEXT", _security_protocol,
            "Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
    sasl_mechanism: str | None = declare("CALLSTREAM_SASL_MECHANISM", None, _optional,
            "SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) for SASL_* protocols.")
    sasl_username: str | None = declare("CALLSTREAM_SASL_USERNAME", None, _optional, "SASL user name.")
    sasl_password: str | None = declare("CALLSTREAM_SASL_PASSWORD", None, _optional, "SASL password.")
    ssl_cafile: str | None = declare("CALLSTREAM_SSL_CAFILE", None, _optional,
            "CA bundle that signs the brokers' certificates (SSL, SASL_SSL).")
    ssl_certfile: str | None = declare("CALLSTREAM_SSL_CERTFILE", None, _optional,
            "Client certificate for mutual TLS.")
    ssl_keyfile: str | None = declare("CALLSTREAM_SSL_KEYFILE", None, _optional,
            "Private key of the client certificate.")
    replication: int | None = declare("CALLSTREAM_REPLICATION", None, _replication,
            "Replication factor of the topics the project creates: auto (the cluster's broker count, "
            "at most 3) or a number; min.insync.replicas is 2 from 3 replicas on, else 1.", shown="`auto`")
    # Local broker
    kafka_dir: str = declare("CALLSTREAM_KAFKA_DIR", "var/kafka", _text,
            "Data directory of the local broker: storage, logs, pid, resolved jars.")
    kafka_heap_mb: int = declare("CALLSTREAM_KAFKA_HEAP_MB", 512, _positive_int,
            "Maximum heap of each local broker JVM, MiB (at most 512 by design).")
    kafka_nodes: int = declare("CALLSTREAM_KAFKA_NODES", 1, _nodes,
            "Nodes of the local broker (1, 3 or 5; each a combined broker and controller).")
    java_home: str | None = declare("CALLSTREAM_JAVA_HOME", None, _optional,
            "JDK used to run the local broker (default: JAVA_HOME, then java on PATH).")
    # Rating, worker, alert rules
    tariffs: str | None = declare("CALLSTREAM_TARIFFS", None, _optional,
            "Tariff CSV file (default: the table shipped with the package).",
            shown="packaged `streams/tariffs/default.csv`")
    incomplete_after: float = declare("CALLSTREAM_INCOMPLETE_AFTER", 14400.0, _positive_float,
            "Seconds of worker clock since a call's last event before it is emitted as incomplete.")
    forget_after: float = declare("CALLSTREAM_FORGET_AFTER", 3600.0, _positive_float,
            "Seconds a closed call stays in worker memory before it moves to the on-disk archive.")
    native: str = declare("CALLSTREAM_NATIVE", "auto", _native,
            "Worker core: auto (the compiled fast path of native/ when installed), on (require it) or off.")
    rebuild_workers: int = declare("CALLSTREAM_REBUILD_WORKERS", 2, _positive_int,
            "Processes of callstream rebuild replaying events partitions at once (each ~0.4 GB).")
    log_level: str = declare("CALLSTREAM_LOG_LEVEL", "warning", _log_level,
            "Log level of the long-running processes: debug, info, warning or error.")
    worker_group: str = declare("CALLSTREAM_WORKER_GROUP", "callstream-worker", _text,
            "Consumer group (Faust app id) of the workers; workers sharing it share partitions.")
    state_dir: str = declare("CALLSTREAM_STATE_DIR", "var/worker", _text,
            "Local directory for the worker's on-disk table store (one per worker process).")
    worker_session_timeout_s: float = declare("CALLSTREAM_WORKER_SESSION_TIMEOUT_S", 10.0, _session_timeout,
            "Seconds without a heartbeat after which the group drops a worker and moves its partitions "
            "(6-300; failover time: docs/performance.md).")
    worker_heartbeat_s: float = declare("CALLSTREAM_WORKER_HEARTBEAT_S", 2.0, _positive_float,
            "Seconds between a worker's heartbeats to its group (at most a third of the session timeout).")
    outage_calls: int = declare("CALLSTREAM_OUTAGE_CALLS", 5, _positive_int,
            "Bypassed calls of one portal within the outage window that open controller_outage.")
    outage_window: float = declare("CALLSTREAM_OUTAGE_WINDOW", 300.0, _positive_float,
            "Event-time window, seconds, for controller_outage.")
    stale_key_after: float = declare("CALLSTREAM_STALE_KEY_AFTER", 93600.0, _positive_float,
            "A bypass whose key_saved_at is older than this many seconds raises stale_key.")
    recording_wait: float = declare("CALLSTREAM_RECORDING_WAIT", 3600.0, _positive_float,
            "Seconds of worker clock after a recorded, answered call's call.ended before a missing "
            "recording raises recording_missing.")
    max_call_events: int = declare("CALLSTREAM_MAX_CALL_EVENTS", 10_000, _call_events,
            "A call's distinct events beyond this many (log order) go to the DLQ as call_too_large "
            "(100-20000).")
    max_hot_calls: int = declare("CALLSTREAM_MAX_HOT_CALLS", 500_000, _hot_calls,
            "Calls one worker keeps in memory at most; beyond it the quietest move to the on-disk "
            "archive early (open ones emitted as incomplete first).")
    max_portals: int = declare("CALLSTREAM_MAX_PORTALS", 100_000, _positive_int,
            "Portals' outage states one worker keeps in memory at most; beyond it the least recently "
            "used idle ones (no open outage) are forgotten.")
    # Warehouse
    warehouse: str = declare("CALLSTREAM_WAREHOUSE", "var/warehouse", _text,
            "Warehouse location (a directory: Parquet files plus a DuckDB catalog).")
    sink_group: str = declare("CALLSTREAM_SINK_GROUP", "callstream-sink", _text,
            "Consumer group of the warehouse sink.")
    sink_memory_mb: int = declare("CALLSTREAM_SINK_MEMORY_MB", 1024, _positive_int,
            "Memory limit of the sink's DuckDB, MiB: its compactions, its largest use, spill to "
            "the warehouse's .spill directory beyond it.")
    # Dashboard
    dash_host: str = declare("CALLSTREAM_DASH_HOST", "127.0.0.1", _text,
            "Address the dashboard binds to; anything but loopback requires credentials.")
    dash_port: int = declare("CALLSTREAM_DASH_PORT", 8050, _port, "Port of the dashboard.")
    dash_users: str | None = declare("CALLSTREAM_DASH_USERS", None, _optional,
            "Dashboard basic-auth users, 'user:password' pairs separated by commas.")
    dash_token: str | None = declare("CALLSTREAM_DASH_TOKEN", None, _optional,
            "Dashboard bearer token (alternative to basic auth).")
    recording_quota_bytes: int = declare("CALLSTREAM_RECORDING_QUOTA_BYTES", 100 * 1024**3,
            _decimal_bytes, "Disk quota for call recordings, bytes, for the days-until-full estimate.")
    refresh_s: float = declare("CALLSTREAM_REFRESH_S", 5.0, _positive_float,
            "Dashboard live-update interval, seconds (at most 5 by design).")
    dash_memory_mb: int = declare("CALLSTREAM_DASH_MEMORY_MB", 1024, _positive_int,
            "Memory limit of the dashboard's DuckDB, MiB (beyond it queries spill to a temporary directory).")
    dash_threads: int = declare("CALLSTREAM_DASH_THREADS", 2, _positive_int,
            "Threads of the dashboard's DuckDB, shared by all its queries.")
    dash_download_max_rows: int = declare("CALLSTREAM_DASH_DOWNLOAD_MAX_ROWS", 1_000_000, _positive_int,
            "Most calls one CSV download may hold; a wider filter is refused (use callstream export).")
    dash_downloads: int = declare("CALLSTREAM_DASH_DOWNLOADS", 2, _positive_int,
            "CSV downloads served at once; one more is answered 429 with Retry-After.")
    dash_url: str | None = declare("CALLSTREAM_DASH_URL", None, _optional,
            "The dashboard's public address (http(s)://host:port/); notifications link each call to it.")
    # Notifications (callstream notify)
    notify_rules: str | None = declare("CALLSTREAM_NOTIFY_RULES", None, _optional,
            "Rules file (TOML) of callstream notify: routes of alerts to channels; unset: nothing "
            "is delivered (the packaged notify/rules.example.toml documents the format).")
    topic_notify_deliveries: str | None = declare("CALLSTREAM_TOPIC_NOTIFY_DELIVERIES", None, _optional,
            "Compacted topic where notify records each delivery's outcome and its progress "
            "(default: the alerts topic's name + '-deliveries').")
    topic_notify_actions: str | None = declare("CALLSTREAM_TOPIC_NOTIFY_ACTIONS", None, _optional,
            "Topic of acknowledgements and silences, with who and when (default: the alerts "
            "topic's name + '-actions').")
    topic_notify_status: str | None = declare("CALLSTREAM_TOPIC_NOTIFY_STATUS", None, _optional,
            "Compacted topic of notify's status summary, read by the dashboard and notify status "
            "(default: the alerts topic's name + '-notify-status').")
    notify_first_start_s: float = declare("CALLSTREAM_NOTIFY_FIRST_START_S", 3600.0, _non_negative_float,
            "On notify's very first start, alerts whose message is older than this many seconds are "
            "recorded as not delivered instead of sent.")
    notify_attempts: int = declare("CALLSTREAM_NOTIFY_ATTEMPTS", 8, _positive_int,
            "Attempts per message and channel before the delivery is recorded as failed.")
    notify_backoff_s: float = declare("CALLSTREAM_NOTIFY_BACKOFF_S", 1.0, _positive_float,
            "First retry delay, seconds; it doubles per attempt (full jitter) up to the maximum.")
    notify_backoff_max_s: float = declare("CALLSTREAM_NOTIFY_BACKOFF_MAX_S", 60.0, _positive_float,
            "Longest retry delay, seconds.")
    notify_timeout_s: float = declare("CALLSTREAM_NOTIFY_TIMEOUT_S", 10.0, _positive_float,
            "Time limit of one delivery attempt, seconds.")
    notify_channel_threads: int = declare("CALLSTREAM_NOTIFY_CHANNEL_THREADS", 2, _positive_int,
            "Messages sent at once to one channel.")
    notify_backlog: int = declare("CALLSTREAM_NOTIFY_BACKLOG", 10_000, _positive_int,
            "Messages one channel may have waiting; beyond it a failing channel's oldest are recorded "
            "as failed, a slow one pauses reading.")
    notify_digest_max: int = declare("CALLSTREAM_NOTIFY_DIGEST_MAX", 500, _positive_int,
            "Most alerts one digest message lists; a fuller window is sent in several messages.")
    notify_threshold_interval_s: float = declare("CALLSTREAM_NOTIFY_THRESHOLD_INTERVAL_S", 60.0,
            _non_negative_float,
            "How often notify evaluates the threshold rules over the warehouse, seconds (0: never).")
    spend_spike_k: Decimal = declare("CALLSTREAM_SPEND_SPIKE_K", Decimal("3"), _money,
            "spend_spike: a portal's hour costs more than k times its median hour of the same weekday "
            "and hour over the last 4 weeks.")
    spend_spike_floor: Decimal = declare("CALLSTREAM_SPEND_SPIKE_FLOOR", Decimal("100"), _money,
            "spend_spike: an hour costing less than this (in its currency) never raises it.")
    asr_min: float = declare("CALLSTREAM_ASR_MIN", 0.3, _share,
            "low_asr: a portal's answer-seizure ratio over the last complete hour below this (0-1).")
    asr_min_calls: int = declare("CALLSTREAM_ASR_MIN_CALLS", 50, _positive_int,
            "low_asr: only portals with at least this many finished calls in the hour.")
    accounts: str | None = declare("CALLSTREAM_ACCOUNTS", None, _optional,
            "Dashboard account store (users, roles, audit log), an SQLite file (default: "
            "accounts.sqlite inside the warehouse directory, carried over by a rebuild).",
            shown="accounts.sqlite in the warehouse")
    portals: str | None = declare("CALLSTREAM_PORTALS", None, _optional,
            "Portals file (JSON): portal id -> name, IANA time zone, currency, recording quota; "
            "portals it does not list get the defaults.")
    dash_tz: str = declare("CALLSTREAM_DASH_TZ", "UTC", _zone,
            "Time zone of days and months when several portals are shown and the user chose none.")
    dash_locale: str = declare("CALLSTREAM_DASH_LOCALE", "en", _locale,
            "Dashboard language when neither the user nor the browser's Accept-Language chooses one: en or ru.")
    dash_session_s: float = declare("CALLSTREAM_DASH_SESSION_S", 43200.0, _positive_float,
            "Lifetime of a dashboard login session (signed cookie), seconds.")
    dash_login_attempts: int = declare("CALLSTREAM_DASH_LOGIN_ATTEMPTS", 5, _positive_int,
            "Failed logins of one user name or one address within 5 minutes before further tries wait.")
    backfill_days: int = declare("CALLSTREAM_BACKFILL_DAYS", 30, _non_negative_int,
            "Days of simulated history `callstream up` writes first into an empty warehouse (0: none).")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``env`` (default ``os.environ``); non-None overrides win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = env.get(setting.env)
            if raw is None or raw == "":
                values[setting.name] = setting.default
                continue
            try:
                values[setting.name] = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{setting.env}={raw!r}: {exc}") from None
        for name, value in overrides.items():
            if value is None:
                continue
            if name not in _BY_NAME:
                raise ConfigError(f"unknown setting {name!r}")
            values[name] = value
        if values["kafka_heap_mb"] > 512:
            raise ConfigError("CALLSTREAM_KAFKA_HEAP_MB: the local broker runs with at most 512 MiB")
        if values["notify_backoff_max_s"] < values["notify_backoff_s"]:
            raise ConfigError("CALLSTREAM_NOTIFY_BACKOFF_MAX_S must be >= CALLSTREAM_NOTIFY_BACKOFF_S")
        if values["worker_heartbeat_s"] * 3 > values["worker_session_timeout_s"]:
            raise ConfigError("CALLSTREAM_WORKER_HEARTBEAT_S must be at most a third of "
                              "CALLSTREAM_WORKER_SESSION_TIMEOUT_S")
        if values["refresh_s"] > 5:
            raise ConfigError("CALLSTREAM_REFRESH_S: the dashboard refreshes at least every 5 s")
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests give each run its own topics)."""
        return dataclasses.replace(self, **changes)

    @property
    def notify_topics(self) -> tuple[str, str, str]:
        """(deliveries, actions, status): notify's topics, named after the alerts topic by default."""
        base = self.topic_alerts
        return (self.topic_notify_deliveries or f"{base}-deliveries",
                self.topic_notify_actions or f"{base}-actions",
                self.topic_notify_status or f"{base}-notify-status")

    @property
    def accounts_path(self) -> Path:
        """The dashboard's account store: ``CALLSTREAM_ACCOUNTS`` or accounts.sqlite in the warehouse."""
        return Path(self.accounts) if self.accounts else Path(self.warehouse) / "accounts.sqlite"

    @property
    def tariffs_path(self) -> Path:
        """The tariff CSV in force: the configured file or the packaged default."""
        return Path(self.tariffs) if self.tariffs else Path(_default_tariffs())

    def kafka_client_options(self) -> dict[str, Any]:
        """Security options in the spelling kafka-python and aiokafka share."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            options["sasl_plain_username"] = self.sasl_username
        if self.sasl_password is not None:
            options["sasl_plain_password"] = self.sasl_password
        if self.security_protocol in {"SSL", "SASL_SSL"}:
            options["ssl_cafile"] = self.ssl_cafile
            options["ssl_certfile"] = self.ssl_certfile
            options["ssl_keyfile"] = self.ssl_keyfile
        return options

    def aiokafka_ssl_context(self):
        """An SSL context for aiokafka/faust, or None for plaintext protocols."""
        if self.security_protocol not in {"SSL", "SASL_SSL"}:
            return None
        import ssl

        context = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context


SETTINGS: tuple[Setting, ...] = tuple(Setting(f.name, *f.metadata["setting"])
                                     for f in dataclasses.fields(Settings))
_BY_NAME = {s.name: s for s in SETTINGS}


def setting(name: str) -> Setting:
    """The declaration of one setting, by field name."""
    return _BY_NAME[name]
