//! Contract v1.1's limits, as `streams/domain/limits.py` and `validation.py` declare them
//! (`tests/unit/test_native_core.py` checks that the two declarations agree).

/// A call's distinct events beyond this many (the worker's setting) are refused.
pub const MAX_CALL_EVENTS: usize = 10_000;
/// A CDR lists the first this-many distinct recording urls.
pub const MAX_RECORDING_URLS: usize = 100;
/// No string field of an event may be longer than this many characters.
pub const MAX_TEXT_CHARS: usize = 2048;
/// An event's ts may be at most this far after its message's timestamp.
pub const MAX_AHEAD_US: i64 = 24 * 3600 * 1_000_000;
/// ... and not before 2000-01-01T00:00:00Z.
pub const EARLIEST_TS_US: i64 = 946_684_800 * 1_000_000;
