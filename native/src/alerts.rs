//! Per-call alerts and the step's bookkeeping (`streams/domain/alerts.py`,
//! `calls._with_alerts`, `outages.signal_of`), JSON byte for byte as orjson writes it.

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;
use serde_json::Value;

use crate::cdr::CdrFacts;
use crate::dec::ms_text;
use crate::shared::{PAID_LINES, RECORDING_CHECKED_KEY, RETRACTED_KEY, SIGNAL_KEY};
use crate::state::{write_str, CallState};
use crate::timefmt::{format_ts_ms, ms_between};

const US_PER_S: i64 = 1_000_000;

pub struct Alert {
    pub alert_id: String,
    pub portal_id: String,
    pub json: Vec<u8>,
}

fn alert_json(alert_id: &str, kind: &str, portal: &str, call_id: &str, ts_us: i64, detail: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"alert_id\":");
    write_str(&mut out, alert_id);
    out.extend_from_slice(b",\"type\":");
    write_str(&mut out, kind);
    out.extend_from_slice(b",\"portal_id\":");
    write_str(&mut out, portal);
    out.extend_from_slice(b",\"call_id\":");
    write_str(&mut out, call_id);
    out.extend_from_slice(b",\"ts\":");
    write_str(&mut out, &format_ts_ms(ts_us));
    out.extend_from_slice(b",\"detail\":");
    out.extend_from_slice(detail);
    out.push(b'}');
    out
}

/// A JSON object of (key, already-encoded value) pairs, in order.
fn object(pairs: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![b'{'];
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(&mut out, k);
        out.push(b':');
        out.extend_from_slice(v);
    }
    out.push(b'}');
    out
}

fn s(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    write_str(&mut out, text);
    out
}

fn opt(text: Option<&str>) -> Vec<u8> {
    text.map_or_else(|| b"null".to_vec(), s)
}

fn portal(state: &CallState) -> &str {
    state.started.as_ref().map_or(&state.first.portal_id, |s| &s.portal_id)
}

pub fn call_alerts(state: &CallState, cdr: Option<&CdrFacts>, stale_key_after_us: i64) -> Vec<Alert> {
    let portal = portal(state).to_string();
    let call_id = state.call_id.as_str();
    let mut alerts = Vec::new();
    let mut push = |kind: &str, ts_us: i64, detail: Vec<u8>| {
        let alert_id = format!("{kind}:{call_id}");
        let json = alert_json(&alert_id, kind, &portal, call_id, ts_us, &detail);
        alerts.push(Alert { alert_id, portal_id: portal.clone(), json });
    };
    if let Some(b) = &state.bypassed {
        push("controller_bypassed", b.ts_us, object(&[
            ("reason", s(&b.reason)), ("key_saved_at", s(&format_ts_ms(b.key_saved_at_us)))]));
    }
    if let Some(st) = &state.stalest {
        let age = st.ts_us as i128 - st.key_saved_at_us as i128;
        if age > stale_key_after_us as i128 {
            let age_s = age.div_euclid(US_PER_S as i128);
            push("stale_key", st.ts_us, object(&[
                ("key_saved_at", s(&format_ts_ms(st.key_saved_at_us))),
                ("key_age_s", age_s.to_string().into_bytes()), ("reason", s(&st.reason))]));
        }
    }
    for reply in &state.replied_first {
        let result = reply.result.as_str();
        if result == "license_error" || result == "config_not_found" {
            let mut detail = vec![("result", s(result))];
            if let Some(st) = &state.started {
                detail.push(("line", s(&st.line)));
                detail.push(("direction", s(&st.direction)));
                detail.push(("line_number", opt(st.line_number.as_deref())));
            }
            if result == "config_not_found" {
                detail.push(("hint", s("development copy of the portal taking calls")));
            }
            push(result, reply.ts_us, object(&detail));
        }
    }
    if let Some(st) = &state.started {
        if st.extranet && PAID_LINES.contains(&st.line.as_str()) {
            push("extranet_call", st.ts_us, object(&[
                ("user_id", opt(st.user_id.as_deref())), ("line", s(&st.line)),
                ("direction", s(&st.direction)), ("to", s(&st.to))]));
        }
        if let Some(facts) = cdr {
            if facts.unrated {
                let talk = facts.talk_ms.map(ms_text);
                push("unrated_call", st.ts_us, object(&[
                    ("line", s(&st.line)), ("direction", s(&st.direction)), ("to", s(&st.to)),
                    ("line_number", opt(st.line_number.as_deref())),
                    ("talk_s", s(talk.as_deref().unwrap_or("None")))]));
            }
        }
    }
    let checked = state.emitted.get(RECORDING_CHECKED_KEY).is_some_and(|v| v.as_bool() == Some(true));
    if checked && lacks_recording(state) {
        if let (Some(st), Some(a), Some(e)) = (&state.started, &state.answered, &state.ended) {
            push("recording_missing", e.ts_us, object(&[
                ("user_id", s(&a.user_id)), ("line", s(&st.line)),
                ("talk_s", s(&ms_text(ms_between(a.ts_us, e.ts_us))))]));
        }
    }
    alerts
}

/// `alerts.lacks_recording`: recorded, answered, talked at least a second, no recording yet.
pub fn lacks_recording(state: &CallState) -> bool {
    match (&state.started, &state.answered, &state.ended) {
        (Some(st), Some(a), Some(e)) => st.record && state.urls.is_empty() && ms_between(a.ts_us, e.ts_us) >= 1000,
        _ => false,
    }
}

pub fn digest(payload: &[u8]) -> String {
    let mut hasher = Blake2bVar::new(8).expect("8 is a valid blake2b length");
    hasher.update(payload);
    let mut out = [0u8; 8];
    hasher.finalize_variable(&mut out).expect("8 bytes");
    out.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct Signal {
    pub portal_id: String,
    pub verdict: &'static str,
    pub ts_us: i64,
}

/// `_with_alerts`: alerts whose JSON changed, retractions, and the verdict signal.
pub fn with_alerts(state: &mut CallState, cdr: Option<&CdrFacts>, stale_key_after_us: i64,
                   out: &mut Vec<(String, Vec<u8>)>) -> Option<Signal> {
    let alerts = call_alerts(state, cdr, stale_key_after_us);
    for alert in &alerts {
        let fingerprint = digest(&alert.json);
        if state.emitted.get(&alert.alert_id).and_then(Value::as_str) != Some(fingerprint.as_str()) {
            state.emitted.insert(alert.alert_id.clone(), Value::String(fingerprint));
            out.push((alert.portal_id.clone(), alert.json.clone()));
        }
    }
    let stale: Vec<String> = state.emitted.iter()
        .filter(|(id, fp)| id.contains(':') && !alerts.iter().any(|a| &a.alert_id == *id)
                && fp.as_str() != Some(RETRACTED_KEY))
        .map(|(id, _)| id.clone())
        .collect();
    for alert_id in stale {
        state.emitted.insert(alert_id.clone(), Value::String(RETRACTED_KEY.to_string()));
        let portal = portal(state).to_string();
        let ts_us = state.started.as_ref().map_or(state.first.ts_us, |s| s.ts_us);
        let kind = alert_id.split(':').next().unwrap_or("");
        let json = alert_json(&alert_id, kind, &portal, &state.call_id, ts_us,
                              &object(&[("state", s(RETRACTED_KEY))]));
        out.push((portal, json));
    }
    let signal = if let Some(b) = &state.bypassed {
        Some(("bypassed", b.ts_us))
    } else {
        state.replied_first.iter().map(|r| (r.ts_us, r.event_id.as_str())).min()
            .map(|(ts, _)| ("checked", ts))
    };
    let (verdict, ts_us) = signal?;
    let mark = Value::Array(vec![Value::String(verdict.to_string()), Value::from(ts_us)]);
    if state.emitted.get(SIGNAL_KEY) == Some(&mark) {
        return None;
    }
    state.emitted.insert(SIGNAL_KEY.to_string(), mark);
    Some(Signal { portal_id: portal(state).to_string(), verdict, ts_us })
}
