//! What both cores share (generated from streams/domain/shared.toml by scripts/generate_shared.py: do not edit).

pub const STATE_FORMAT: i64 = 3;

pub const MAX_CALL_EVENTS: usize = 10_000;
pub const MIN_CALL_EVENTS: usize = 100;
pub const CALL_EVENTS_CEILING: usize = 20_000;
pub const MAX_RECORDING_URLS: usize = 100;
pub const MAX_TEXT_CHARS: usize = 2_048;
pub const MAX_OUTPUT_BYTES: usize = 1_048_576;
pub const MAX_STATE_BYTES: usize = 8_388_608;
pub const MAX_AHEAD_US: i64 = 86_400_000_000;
pub const EARLIEST_TS_US: i64 = 946_684_800_000_000;

/// The contract's `source` of an event type.
pub fn source_of(kind: &str) -> Option<&'static str> {
    SOURCES_TABLE.iter().find(|(k, _)| *k == kind).map(|(_, s)| *s)
}

/// An event type's data fields in the contract's order (the canonical `data`).
pub fn data_fields_of(kind: &str) -> Option<&'static [&'static str]> {
    DATA_FIELDS_TABLE.iter().find(|(k, _)| *k == kind).map(|(_, f)| *f)
}

pub const DIRECTIONS: &[&str] = &["inbound", "outbound", "internal"];
pub const LINES: &[&str] = &["rented", "operator", "sip", "internal"];
pub const CONTROLLER_RESULTS: &[&str] = &["ok", "license_error", "config_not_found"];
pub const BYPASS_REASONS: &[&str] = &["timeout", "unreachable", "error"];
pub const OFFER_RULES: &[&str] = &["employee", "crm_responsible", "queue"];
pub const FORWARD_REASONS: &[&str] = &["no_answer", "busy", "rule"];
pub const RECORDING_FORMATS: &[&str] = &["mp3", "wav"];
pub const END_CAUSES: &[&str] = &["normal", "busy", "no_answer", "rejected", "failed", "license_error", "config_not_found", "forbidden"];
pub const END_BY: &[&str] = &["caller", "callee", "system"];
pub const PAID_LINES: &[&str] = &["rented", "operator", "sip"];

/// A CDR's status when nobody answered, by call.ended's cause.
pub fn status_of_cause(cause: &str) -> Option<&'static str> {
    STATUS_TABLE.iter().find(|(c, _)| *c == cause).map(|(_, s)| *s)
}

pub const EXPIRED_KEY: &str = "expired_at";
pub const SIGNAL_KEY: &str = "signal";
pub const ENDED_SEEN_KEY: &str = "ended_seen_at";
pub const RECORDING_CHECKED_KEY: &str = "recording_checked";
pub const RETRACTED_KEY: &str = "retracted";

pub const LIMITS_TABLE: &[(&str, i64)] = &[
    ("max_call_events", MAX_CALL_EVENTS as i64),
    ("min_call_events", MIN_CALL_EVENTS as i64),
    ("call_events_ceiling", CALL_EVENTS_CEILING as i64),
    ("max_recording_urls", MAX_RECORDING_URLS as i64),
    ("max_text_chars", MAX_TEXT_CHARS as i64),
    ("max_output_bytes", MAX_OUTPUT_BYTES as i64),
    ("max_state_bytes", MAX_STATE_BYTES as i64),
    ("max_ahead_us", MAX_AHEAD_US),
    ("earliest_ts_us", EARLIEST_TS_US),
];
pub const SOURCES_TABLE: &[(&str, &str)] = &[
    ("call.started", "voice"),
    ("controller.requested", "voice"),
    ("controller.replied", "controller"),
    ("controller.bypassed", "voice"),
    ("call.offered", "voice"),
    ("call.offer_missed", "voice"),
    ("call.forwarded", "voice"),
    ("call.answered", "voice"),
    ("recording.stored", "voice"),
    ("call.ended", "voice"),
];
pub const DATA_FIELDS_TABLE: &[(&str, &[&str])] = &[
    ("call.started", &["direction", "line", "from", "to", "line_number", "shown_number", "user_id", "extranet", "record"]),
    ("controller.requested", &[]),
    ("controller.replied", &["result", "config_id"]),
    ("controller.bypassed", &["reason", "key_saved_at"]),
    ("call.offered", &["user_id", "attempt", "rule", "rings"]),
    ("call.offer_missed", &["user_id", "attempt"]),
    ("call.forwarded", &["to", "reason"]),
    ("call.answered", &["user_id"]),
    ("recording.stored", &["url", "bytes", "seconds", "format"]),
    ("call.ended", &["cause", "by"]),
];
pub const ENUMS_TABLE: &[(&str, &[&str])] = &[
    ("directions", DIRECTIONS),
    ("lines", LINES),
    ("controller_results", CONTROLLER_RESULTS),
    ("bypass_reasons", BYPASS_REASONS),
    ("offer_rules", OFFER_RULES),
    ("forward_reasons", FORWARD_REASONS),
    ("recording_formats", RECORDING_FORMATS),
    ("end_causes", END_CAUSES),
    ("end_by", END_BY),
    ("paid_lines", PAID_LINES),
];
pub const STATUS_TABLE: &[(&str, &str)] = &[
    ("busy", "busy"),
    ("no_answer", "missed"),
    ("normal", "missed"),
    ("rejected", "rejected"),
    ("forbidden", "rejected"),
    ("failed", "failed"),
    ("license_error", "failed"),
    ("config_not_found", "failed"),
];
pub const BOOKKEEPING_TABLE: &[(&str, &str)] = &[
    ("expired", EXPIRED_KEY),
    ("signal", SIGNAL_KEY),
    ("ended_seen", ENDED_SEEN_KEY),
    ("recording_checked", RECORDING_CHECKED_KEY),
    ("retracted", RETRACTED_KEY),
];
