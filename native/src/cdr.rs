//! A call state's CDR as the JSON bytes of one `cdrs` message
//! (`streams/domain/cdr.py` + `cdr_json.py`), byte for byte what orjson writes.

use crate::dec::ms_text;
use crate::rating::{cents_text, not_rated, rate_call, Rating, TariffTable};
use crate::shared::status_of_cause;
use crate::state::{write_str, CallState};
use crate::timefmt::{format_ts_ms, ms_between};

/// What the alert rules need of a CDR besides the state.
pub struct CdrFacts {
    pub unrated: bool,
    pub talk_ms: Option<i128>,
}

fn status(state: &CallState, incomplete: bool) -> Option<&'static str> {
    if incomplete {
        return Some("incomplete");
    }
    if state.answered.is_some() {
        return Some("answered");
    }
    status_of_cause(&state.ended.as_ref()?.cause)
}

fn key(out: &mut Vec<u8>, name: &str) {
    out.push(b',');
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

fn opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(text) => write_str(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

fn opt_raw(out: &mut Vec<u8>, value: Option<String>) {
    match value {
        Some(text) => out.extend_from_slice(text.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

fn recordings(state: &CallState) -> Option<(Vec<&str>, i128, i128)> {
    let urls = state.urls.iter().map(|(_, url)| url.as_str()).collect();
    Some((urls, state.rec_bytes as i128, state.rec_seconds.round_ms()?))
}

/// The CDR JSON of `version`; None when the Python core must build it (arithmetic range).
pub fn cdr_json(state: &CallState, tariffs: &TariffTable, incomplete: bool, version: i64)
                -> Option<(Vec<u8>, CdrFacts)> {
    let s = state.started.as_ref();
    let a = state.answered.as_ref();
    let e = state.ended.as_ref();
    let ring_end = a.map(|a| a.ts_us).or(e.map(|e| e.ts_us));
    let ring = match (s, ring_end) {
        (Some(s), Some(end)) => Some(ms_between(s.ts_us, end)),
        _ => None,
    };
    let talk = e.map(|e| a.map_or(0, |a| ms_between(a.ts_us, e.ts_us)));
    let duration = match (s, e) {
        (Some(s), Some(e)) => Some(ms_between(s.ts_us, e.ts_us)),
        _ => None,
    };
    let rating: Rating = match s {
        None => not_rated(),
        Some(s) => rate_call(tariffs, &s.line, &s.direction, &s.to, s.line_number.as_deref(), s.ts_us, talk)?,
    };
    let (urls, total_bytes, total_ms) = recordings(state)?;
    let mut out = Vec::with_capacity(900);
    out.extend_from_slice(b"{\"call_id\":");
    write_str(&mut out, &state.call_id);
    key(&mut out, "portal_id");
    write_str(&mut out, s.map_or(&state.first.portal_id, |s| &s.portal_id));
    key(&mut out, "version");
    out.extend_from_slice(version.to_string().as_bytes());
    key(&mut out, "direction");
    opt_str(&mut out, s.map(|s| s.direction.as_str()));
    key(&mut out, "line");
    opt_str(&mut out, s.map(|s| s.line.as_str()));
    key(&mut out, "from");
    opt_str(&mut out, s.map(|s| s.from.as_str()));
    key(&mut out, "to");
    opt_str(&mut out, s.map(|s| s.to.as_str()));
    key(&mut out, "line_number");
    opt_str(&mut out, s.and_then(|s| s.line_number.as_deref()));
    key(&mut out, "shown_number");
    opt_str(&mut out, s.and_then(|s| s.shown_number.as_deref()));
    key(&mut out, "extranet");
    out.extend_from_slice(match s { None => b"null" as &[u8], Some(s) if s.extranet => b"true", _ => b"false" });
    key(&mut out, "user_id");
    opt_str(&mut out, match a {
        Some(a) => Some(a.user_id.as_str()),
        None => s.and_then(|s| s.user_id.as_deref()),
    });
    key(&mut out, "started_at");
    opt_str(&mut out, s.map(|s| format_ts_ms(s.ts_us)).as_deref());
    key(&mut out, "answered_at");
    opt_str(&mut out, a.map(|a| format_ts_ms(a.ts_us)).as_deref());
    key(&mut out, "ended_at");
    opt_str(&mut out, e.map(|e| format_ts_ms(e.ts_us)).as_deref());
    key(&mut out, "ring_s");
    opt_raw(&mut out, ring.map(ms_text));
    key(&mut out, "talk_s");
    opt_raw(&mut out, talk.map(ms_text));
    key(&mut out, "duration_s");
    opt_raw(&mut out, duration.map(ms_text));
    key(&mut out, "status");
    write_str(&mut out, status(state, incomplete)?);
    key(&mut out, "hangup_cause");
    opt_str(&mut out, e.map(|e| e.cause.as_str()));
    key(&mut out, "queue_attempts");
    out.extend_from_slice(state.attempts.len().to_string().as_bytes());
    key(&mut out, "forwarded_to");
    opt_str(&mut out, state.forwarded.as_ref().map(|f| f.to.as_str()));
    key(&mut out, "controller");
    write_str(&mut out, if state.bypassed.is_some() {
        "bypassed"
    } else if state.replied.is_some() {
        "checked"
    } else {
        "none"
    });
    key(&mut out, "controller_result");
    opt_str(&mut out, state.replied.as_ref().map(|r| r.result.as_str()));
    key(&mut out, "region");
    opt_str(&mut out, rating.region);
    key(&mut out, "rate_per_min");
    opt_str(&mut out, rating.rate_text);
    key(&mut out, "billed_s");
    out.extend_from_slice(rating.billed_s.to_string().as_bytes());
    key(&mut out, "cost");
    write_str(&mut out, &cents_text(rating.cost_cents));
    key(&mut out, "currency");
    opt_str(&mut out, rating.currency);
    key(&mut out, "recording_urls");
    out.push(b'[');
    for (i, url) in urls.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(&mut out, url);
    }
    out.push(b']');
    key(&mut out, "recording_bytes");
    out.extend_from_slice(total_bytes.to_string().as_bytes());
    key(&mut out, "recording_s");
    out.extend_from_slice(ms_text(total_ms).as_bytes());
    key(&mut out, "events");
    out.extend_from_slice(state.event_ids.len().to_string().as_bytes());
    out.push(b'}');
    Some((out, CdrFacts { unrated: rating.unrated, talk_ms: talk }))
}
