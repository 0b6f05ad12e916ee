"""Contract v1.1's limits, declared once for the Python core (``native/`` reads the same values).

They exist so that no single message, call or clock can stop or bloat the
pipeline: every record the worker produces has a size it can prove below
what a broker accepts, and every call's state stays bounded.
"""

from __future__ import annotations

# A call's distinct events beyond its first MAX_CALL_EVENTS (in log order) go to
# the DLQ as ``call_too_large``; configurable (CALLSTREAM_MAX_CALL_EVENTS) within
# these bounds. The upper bound keeps a call's state below the changelog's
# message limit: see MAX_STATE_BYTES.
MAX_CALL_EVENTS = 10_000
MIN_CALL_EVENTS = 100
CALL_EVENTS_CEILING = 20_000

# A CDR's recording_urls keeps the first MAX_RECORDING_URLS distinct URLs by ts.
MAX_RECORDING_URLS = 100

# No string field of an event may be longer than this many characters.
MAX_TEXT_CHARS = 2048

# No DLQ record, CDR or alert the pipeline produces may exceed this (serialized).
MAX_OUTPUT_BYTES = 1_048_576

# The worker's internal topics (table changelogs, signals, commands) accept
# records up to this size. A call state's worst case (CALL_EVENTS_CEILING ids
# of 64 characters, as many distinct 19-digit attempts, 100 URLs of 2,048
# four-byte characters) is ~3.5 MB; tests/unit/test_limits.py builds it.
MAX_STATE_BYTES = 8 * 1_048_576
