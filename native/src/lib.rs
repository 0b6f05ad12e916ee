//! callstream's compiled fast path for the worker: contract v1 validation (the
//! accept path), the per-call fold, CDR and alert JSON, and the state bytes —
//! ports of `streams/domain`, which stays the reference.
//!
//! Every function here either gives exactly what the Python core gives for the
//! same input, or declines (returns None) and leaves the input to the Python
//! core: rejected or unusual events, numbers beyond 128-bit arithmetic, state
//! bytes of a shape it does not expect. `tests/unit/test_native*.py` hold the
//! two cores to that.

mod alerts;
mod cdr;
mod dec;
mod event;
mod limits;
mod rating;
mod state;
mod timefmt;
mod validate;

use crate::validate::validate as validate_event;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::event::Event;
use crate::rating::{Money, TariffRow, TariffTable};
use crate::state::CallState;

/// A valid contract v1 event, parsed; the raw message rides along for the Python core.
#[pyclass(frozen, module = "callstream_native")]
struct NativeEvent {
    event: Event,
    #[pyo3(get)]
    call_id: Py<PyString>,
    #[pyo3(get)]
    value: Py<PyBytes>,
    #[pyo3(get)]
    key: Option<Py<PyBytes>>,
}

/// The event of a `call-events` message if it is valid and plainly so; None leaves
/// the message to the Python validator (which accepts or rejects it with a reason).
/// `timestamp_ms` is the message's Kafka timestamp (None or negative: none).
#[pyfunction]
#[pyo3(name = "validate", signature = (value, key, timestamp_ms=None))]
fn validate_message(py: Python<'_>, value: &Bound<'_, PyAny>, key: &Bound<'_, PyAny>,
                    timestamp_ms: Option<i64>) -> Option<NativeEvent> {
    let value = value.cast::<PyBytes>().ok()?;
    let key = if key.is_none() { None } else { Some(key.cast::<PyBytes>().ok()?) };
    let event = validate_event(value.as_bytes(), key.map(|k| k.as_bytes()), timestamp_ms)?;
    Some(NativeEvent {
        call_id: PyString::new(py, &event.call_id).unbind(),
        value: value.clone().unbind(),
        key: key.map(|k| k.clone().unbind()),
        event,
    })
}

type RowTuple = (String, String, String, String, String, String, i64, i64, String, i64);

/// The tariff table, rule thresholds and event cap of one worker.
#[pyclass(frozen, module = "callstream_native")]
struct Core {
    tariffs: TariffTable,
    stale_key_after_us: i64,
    max_events: usize,
}

#[pymethods]
impl Core {
    /// `rows`: (line, direction, prefix, region, rate_per_min, connect_fee, increment_s,
    /// min_s, currency, valid_from_us), money as plain decimal text.
    #[new]
    #[pyo3(signature = (rows, stale_key_after_us, max_events=limits::MAX_CALL_EVENTS))]
    fn new(rows: Vec<RowTuple>, stale_key_after_us: i64, max_events: usize) -> PyResult<Core> {
        let mut entries = Vec::with_capacity(rows.len());
        for (line, direction, prefix, region, rate, fee, increment_s, min_s, currency, valid_from_us) in rows {
            let bad = |what: &str, text: &str| PyValueError::new_err(format!("tariff {what} {text:?} is not a plain decimal"));
            let rate_money = Money::parse(&rate).ok_or_else(|| bad("rate_per_min", &rate))?;
            let fee_money = Money::parse(&fee).ok_or_else(|| bad("connect_fee", &fee))?;
            if increment_s < 1 || min_s < 0 {
                return Err(PyValueError::new_err("tariff increment_s must be >= 1 and min_s >= 0"));
            }
            entries.push((line, direction, prefix, TariffRow {
                region, rate_text: rate, rate: rate_money, fee: fee_money, increment_s, min_s,
                currency, valid_from_us,
            }));
        }
        Ok(Core { tariffs: TariffTable::new(entries), stale_key_after_us, max_events })
    }

    /// One call's step (`streams.domain.calls.advance`) over native events.
    ///
    /// Returns None when the Python core must take this step; else
    /// (state bytes or None when nothing changed, [CDR JSON] (at most one), [(portal_id, alert JSON)],
    ///  (portal_id, call_id, verdict, ts_us) or None, (touched_at, version, done) or None,
    ///  [positions of the events refused for the call's event cap])
    /// where `done` is true when the call cannot time out (complete, or its
    /// incomplete CDR already emitted for this quiet period).
    #[pyo3(signature = (state, events, now, partition))]
    fn advance<'py>(&self, py: Python<'py>, state: Option<&[u8]>, events: Vec<Bound<'py, NativeEvent>>,
                    now: f64, partition: i64) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let mut current: Option<CallState> = match state {
            None => None,
            Some(blob) => match state::from_bytes(blob) {
                Some(s) => Some(s),
                None => return Ok(None),
            },
        };
        let version = current.as_ref().map_or(0, |s| s.version);
        let mut refused: Vec<usize> = Vec::new();
        let mut changed_any = false;
        for (position, native) in events.iter().enumerate() {
            let event = &native.get().event;
            if let Some(s) = &current {
                if s.event_ids.len() >= self.max_events {
                    if !s.has_seen(&event.event_id) {
                        refused.push(position);
                    }
                    continue;
                }
            }
            let s = current.get_or_insert_with(|| CallState::new(event));
            if s.call_id != event.call_id {
                return Ok(None);
            }
            match s.fold(event) {
                None => return Ok(None),
                Some(false) => continue,
                Some(true) => {}
            }
            changed_any = true;
            if s.version > 0 || s.is_complete() {
                s.version += 1;
            }
            if matches!(event.data, event::Data::Ended { .. }) && !s.emitted.contains_key(state::ENDED_SEEN) {
                s.emitted.insert(state::ENDED_SEEN.to_string(), serde_json::Value::from(now));
            }
        }
        let refused = PyList::new(py, refused)?;
        let Some(s) = current.as_mut().filter(|_| changed_any) else {
            let empty = (py.None(), PyList::empty(py), PyList::empty(py), py.None(), py.None(), refused);
            return Ok(Some(empty.into_pyobject(py)?));
        };
        let mut cdrs: Vec<Vec<u8>> = Vec::new();
        let mut last = None;
        if s.version > version {
            let Some((json, facts)) = cdr::cdr_json(s, &self.tariffs, !s.is_complete(), s.version) else {
                return Ok(None);
            };
            cdrs.push(json);
            last = Some(facts);
        }
        s.touched_at = now;
        s.partition = Some(partition);
        let mut alerts = Vec::new();
        let signal = alerts::with_alerts(s, last.as_ref(), self.stale_key_after_us, &mut alerts);
        let done = s.done();
        let blob = PyBytes::new(py, &state::to_bytes(s));
        let cdrs = PyList::new(py, cdrs.iter().map(|c| PyBytes::new(py, c)))?;
        let alerts = PyList::new(py, alerts.iter().map(|(portal, json)| (portal.as_str(), PyBytes::new(py, json))))?;
        let signal = match signal {
            None => py.None(),
            Some(sig) => (sig.portal_id, s.call_id.as_str(), sig.verdict, sig.ts_us).into_pyobject(py)?.into_any().unbind(),
        };
        let track = (s.touched_at, s.version, done, recording_since(s)).into_pyobject(py)?;
        Ok(Some((blob, cdrs, alerts, signal, track, refused).into_pyobject(py)?))
    }
}

/// When the call's first `call.ended` was seen, if it awaits a recording check (else None).
fn recording_since(s: &CallState) -> Option<f64> {
    let checked = s.emitted.get(state::RECORDING_CHECKED).is_some_and(|v| v.as_bool() == Some(true));
    if checked || !alerts::lacks_recording(s) {
        return None;
    }
    s.emitted.get(state::ENDED_SEEN).and_then(|v| v.as_f64())
}

/// What the worker's schedule and its purge after a rebalance need of stored state
/// bytes: (call_id, partition, touched_at, version, done, recording_since), or None for
/// bytes of a shape the compiled core does not read (the Python core then parses them).
#[pyfunction]
fn state_summary(blob: &[u8]) -> Option<(String, Option<i64>, f64, i64, bool, Option<f64>)> {
    let s = state::from_bytes(blob)?;
    let done = s.done();
    let since = recording_since(&s);
    Some((s.call_id, s.partition, s.touched_at, s.version, done, since))
}

/// Test hooks: the fast path's pieces, to hold them to the Python core's answers.
#[pyfunction]
fn debug_state_roundtrip(py: Python<'_>, blob: &[u8]) -> Option<Py<PyBytes>> {
    state::from_bytes(blob).map(|s| PyBytes::new(py, &state::to_bytes(&s)).unbind())
}

/// A deliberate panic, to test that the worker survives one (tests only).
#[pyfunction]
fn debug_panic() {
    panic!("debug_panic: a deliberate panic in the compiled core");
}

#[pyfunction]
fn debug_digest(payload: &[u8]) -> String {
    alerts::digest(payload)
}

#[pyfunction]
fn debug_float_decimal(x: f64) -> Option<String> {
    dec::Dec::from_float_repr(x).map(|d| d.to_python_str())
}

#[pyfunction]
fn debug_format_ts_ms(ts_us: i64) -> String {
    timefmt::format_ts_ms(ts_us)
}

#[pyfunction]
fn debug_parse_ts_us(text: &str) -> Option<i64> {
    timefmt::parse_ts_us(text)
}

/// The wire name of an event type (the inverse of `Kind::from_wire`).
fn debug_kind_name(kind: event::Kind) -> &'static str {
    use event::Kind;
    match kind {
        Kind::Started => "call.started",
        Kind::Requested => "controller.requested",
        Kind::Replied => "controller.replied",
        Kind::Bypassed => "controller.bypassed",
        Kind::Offered => "call.offered",
        Kind::OfferMissed => "call.offer_missed",
        Kind::Forwarded => "call.forwarded",
        Kind::Answered => "call.answered",
        Kind::Recording => "recording.stored",
        Kind::Ended => "call.ended",
    }
}

/// `validate.rs` seen from Python, for differential tests: None when the fast path
/// declines (Python decides), else `(event_id, type, call_id, portal_id, ts_us, data)`
/// with `data` a tuple of the fields `event::Data` keeps (seconds as `str(Decimal)`).
#[pyfunction]
#[pyo3(signature = (value, key=None, timestamp_ms=None))]
fn debug_validate(py: Python<'_>, value: &[u8], key: Option<&[u8]>, timestamp_ms: Option<i64>)
                  -> PyResult<Option<Py<PyAny>>> {
    use event::Data;
    let Some(e) = validate::validate(value, key, timestamp_ms) else { return Ok(None) };
    let data = match e.data {
        Data::Started { direction, line, from, to, line_number, shown_number, user_id, extranet, record } => {
            (direction, line, from, to, line_number, shown_number, user_id, extranet, record)
                .into_pyobject(py)?
                .into_any()
        }
        Data::Requested | Data::OfferMissed => pyo3::types::PyTuple::empty(py).into_any(),
        Data::Replied { result } => (result,).into_pyobject(py)?.into_any(),
        Data::Bypassed { reason, key_saved_at_us } => (reason, key_saved_at_us).into_pyobject(py)?.into_any(),
        Data::Offered { attempt } => (attempt,).into_pyobject(py)?.into_any(),
        Data::Forwarded { to } => (to,).into_pyobject(py)?.into_any(),
        Data::Answered { user_id } => (user_id,).into_pyobject(py)?.into_any(),
        Data::Recording { url, bytes, seconds } => {
            (url, bytes, seconds.to_python_str()).into_pyobject(py)?.into_any()
        }
        Data::Ended { cause, by } => (cause, by).into_pyobject(py)?.into_any(),
    };
    let tuple = (e.event_id, debug_kind_name(e.kind), e.call_id, e.portal_id, e.ts_us, data).into_pyobject(py)?;
    Ok(Some(tuple.into_any().unbind()))
}
#[pymodule]
fn callstream_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeEvent>()?;
    m.add_class::<Core>()?;
    m.add_function(wrap_pyfunction!(validate_message, m)?)?;
    m.add_function(wrap_pyfunction!(state_summary, m)?)?;
    m.add_function(wrap_pyfunction!(debug_validate, m)?)?;
    m.add_function(wrap_pyfunction!(debug_state_roundtrip, m)?)?;
    m.add_function(wrap_pyfunction!(debug_digest, m)?)?;
    m.add_function(wrap_pyfunction!(debug_panic, m)?)?;
    // A panic reaches Python as this BaseException (not an Exception): the worker
    // catches it around every call and lets the Python core take the input.
    m.add("PanicException", m.py().get_type::<pyo3::panic::PanicException>())?;
    m.add_function(wrap_pyfunction!(debug_float_decimal, m)?)?;
    m.add_function(wrap_pyfunction!(debug_format_ts_ms, m)?)?;
    m.add_function(wrap_pyfunction!(debug_parse_ts_us, m)?)?;
    // The limits this build was compiled with, for the test that holds them to
    // streams/domain/limits.py and validation.py.
    m.add("LIMITS", (limits::MAX_CALL_EVENTS, limits::MAX_RECORDING_URLS, limits::MAX_TEXT_CHARS,
                     limits::MAX_AHEAD_US, limits::EARLIEST_TS_US))?;
    Ok(())
}
