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
mod shared;
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
    /// the `events` row's fields beyond the event's (only from `validate_row`)
    row: Option<validate::EventRow>,
}

#[pymethods]
impl NativeEvent {
    /// The compiled core can write this event's `events` row (`event_columns`).
    #[getter]
    fn has_row(&self) -> bool {
        self.row.is_some()
    }
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
        row: None,
    })
}

/// `validate`, keeping what the event's `events` row needs besides the event (the node and
/// the canonical `data` text), for `event_columns`: the rebuild's path.
#[pyfunction]
#[pyo3(signature = (value, key, timestamp_ms=None))]
fn validate_row(py: Python<'_>, value: &Bound<'_, PyAny>, key: &Bound<'_, PyAny>,
                timestamp_ms: Option<i64>) -> Option<NativeEvent> {
    let value = value.cast::<PyBytes>().ok()?;
    let key = if key.is_none() { None } else { Some(key.cast::<PyBytes>().ok()?) };
    let (event, row) = validate::validate_row(value.as_bytes(), key.map(|k| k.as_bytes()), timestamp_ms)?;
    Some(NativeEvent {
        call_id: PyString::new(py, &event.call_id).unbind(),
        value: value.clone().unbind(),
        key: key.map(|k| k.clone().unbind()),
        event,
        row,
    })
}

/// One string column as Arrow's buffers: (int32 offsets, UTF-8 data).
struct TextColumn {
    offsets: Vec<i32>,
    data: Vec<u8>,
}

impl TextColumn {
    fn new(rows: usize, bytes: usize) -> TextColumn {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        TextColumn { offsets, data: Vec::with_capacity(bytes) }
    }

    fn push(&mut self, text: &str) -> PyResult<()> {
        self.data.extend_from_slice(text.as_bytes());
        let end = i32::try_from(self.data.len())
            .map_err(|_| PyValueError::new_err("a column of over 2 GiB: write fewer events at once"))?;
        self.offsets.push(end);
        Ok(())
    }

    fn into_py<'py>(self, py: Python<'py>) -> Bound<'py, PyTuple> {
        let offsets: Vec<u8> = self.offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        PyTuple::new(py, [PyBytes::new(py, &offsets), PyBytes::new(py, &self.data)]).expect("two bytes")
    }
}

/// The `events` rows of events from `validate_row`, as Arrow buffers (what
/// `warehouse.decode.events_table` makes of the same messages, `tests/unit/test_event_columns.py`):
/// `(rows, skipped, columns, ts)` where `columns` holds (offsets, data) for event_id, call_id,
/// portal_id, type, source, node and data, `ts` the int64 microseconds, and `skipped` the
/// positions of the events without a row here (the caller builds those in Python).
#[pyfunction]
fn event_columns<'py>(py: Python<'py>, events: Vec<Bound<'py, NativeEvent>>) -> PyResult<Bound<'py, PyTuple>> {
    let mut columns: Vec<TextColumn> = (0..7).map(|i| TextColumn::new(events.len(), events.len() * if i == 6 { 120 } else { 24 })).collect();
    let mut ts: Vec<u8> = Vec::with_capacity(events.len() * 8);
    let mut skipped: Vec<usize> = Vec::new();
    let mut rows = 0usize;
    for (position, native) in events.iter().enumerate() {
        let native = native.get();
        let Some(row) = &native.row else {
            skipped.push(position);
            continue;
        };
        let e = &native.event;
        for (column, text) in columns.iter_mut().zip([e.event_id.as_str(), e.call_id.as_str(), e.portal_id.as_str(),
                                                      e.kind.wire_name(), e.kind.source(), row.node.as_str(),
                                                      row.data.as_str()]) {
            column.push(text)?;
        }
        ts.extend_from_slice(&e.ts_us.to_le_bytes());
        rows += 1;
    }
    let columns = PyTuple::new(py, columns.into_iter().map(|c| c.into_py(py)))?;
    (rows, PyList::new(py, skipped)?, columns, PyBytes::new(py, &ts)).into_pyobject(py)
}

type RowTuple = (String, String, String, String, String, String, i64, i64, String, i64);

/// What one call's step produced (`streams.domain.calls.advance`'s state and `Outputs`).
#[pyclass(frozen, get_all, module = "callstream_native")]
struct Step {
    /// the new state bytes, or None when no event changed the call
    state: Option<Py<PyBytes>>,
    /// the CDR JSON (at most one: contract v1.1)
    cdrs: Py<PyList>,
    /// [(portal_id, alert JSON)]
    alerts: Py<PyList>,
    /// (portal_id, call_id, verdict, ts_us) when the call's verdict changed
    signal: Option<Py<PyTuple>>,
    /// the schedule's fields of the new state (None with `state`): see `streams.call_store.Summary`
    touched_at: Option<f64>,
    version: Option<i64>,
    done: Option<bool>,
    recording_since: Option<f64>,
    /// positions (in the step's events) of the events the call had no room for
    refused: Py<PyList>,
}

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
    #[pyo3(signature = (rows, stale_key_after_us, max_events=shared::MAX_CALL_EVENTS))]
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
    /// Returns None when the Python core must take this step; else a `Step`.
    #[pyo3(signature = (state, events, now, partition))]
    fn advance(&self, py: Python<'_>, state: Option<&[u8]>, events: Vec<Bound<'_, NativeEvent>>,
               now: f64, partition: i64) -> PyResult<Option<Step>> {
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
            if matches!(event.data, event::Data::Ended { .. }) && !s.emitted.contains_key(shared::ENDED_SEEN_KEY) {
                s.emitted.insert(shared::ENDED_SEEN_KEY.to_string(), serde_json::Value::from(now));
            }
        }
        let refused = PyList::new(py, refused)?.unbind();
        let Some(s) = current.as_mut().filter(|_| changed_any) else {
            return Ok(Some(Step {
                state: None, cdrs: PyList::empty(py).unbind(), alerts: PyList::empty(py).unbind(), signal: None,
                touched_at: None, version: None, done: None, recording_since: None, refused,
            }));
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
        let blob = PyBytes::new(py, &state::to_bytes(s)).unbind();
        let cdrs = PyList::new(py, cdrs.iter().map(|c| PyBytes::new(py, c)))?.unbind();
        let alerts = PyList::new(py, alerts.iter().map(|(portal, json)| (portal.as_str(), PyBytes::new(py, json))))?
            .unbind();
        let signal = match signal {
            None => None,
            Some(sig) => Some((sig.portal_id, s.call_id.as_str(), sig.verdict, sig.ts_us).into_pyobject(py)?.unbind()),
        };
        Ok(Some(Step {
            state: Some(blob), cdrs, alerts, signal, touched_at: Some(s.touched_at), version: Some(s.version),
            done: Some(done), recording_since: recording_since(s), refused,
        }))
    }
}

/// When the call's first `call.ended` was seen, if it awaits a recording check (else None).
fn recording_since(s: &CallState) -> Option<f64> {
    let checked = s.emitted.get(shared::RECORDING_CHECKED_KEY).is_some_and(|v| v.as_bool() == Some(true));
    if checked || !alerts::lacks_recording(s) {
        return None;
    }
    s.emitted.get(shared::ENDED_SEEN_KEY).and_then(|v| v.as_f64())
}

/// What the worker's schedule and its purge after a rebalance need of stored state
/// bytes: (call_id, partition, touched_at, version, done, recording_since), or None for
/// bytes of a shape the compiled core does not read (the Python core then parses them).
/// `streams.call_store.Summary`'s fields, in its order.
type SummaryFields = (String, Option<i64>, f64, i64, bool, Option<f64>);

#[pyfunction]
fn state_summary(blob: &[u8]) -> Option<SummaryFields> {
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

/// The declaration the build was compiled from (`native/src/shared.rs`), as Python values,
/// with each event type's source as the compiled `Kind` gives it:
/// `tests/unit/test_shared_declaration.py` compares it with `streams/domain/shared.toml`.
fn shared_declaration(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    use pyo3::types::PyDict;
    let pairs = |table: &[(&str, &str)]| -> PyResult<Bound<'_, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in table {
            d.set_item(k, v)?;
        }
        Ok(d)
    };
    let d = PyDict::new(py);
    d.set_item("state_format", shared::STATE_FORMAT)?;
    let limits = PyDict::new(py);
    for (name, value) in shared::LIMITS_TABLE {
        limits.set_item(name, value)?;
    }
    d.set_item("limits", limits)?;
    let sources = PyDict::new(py);
    for (wire, _) in shared::SOURCES_TABLE {
        let kind = event::Kind::from_wire(wire).ok_or_else(|| PyValueError::new_err(format!("no Kind for {wire}")))?;
        sources.set_item(kind.wire_name(), kind.source())?;
    }
    d.set_item("sources", sources)?;
    let data_fields = PyDict::new(py);
    for (kind, fields) in shared::DATA_FIELDS_TABLE {
        data_fields.set_item(kind, fields.to_vec())?;
    }
    d.set_item("data_fields", data_fields)?;
    let enums = PyDict::new(py);
    for (name, values) in shared::ENUMS_TABLE {
        enums.set_item(name, values.to_vec())?;
    }
    d.set_item("enums", enums)?;
    let status = PyDict::new(py);
    for cause in shared::END_CAUSES {
        status.set_item(cause, shared::status_of_cause(cause))?;
    }
    d.set_item("status_by_cause", status)?;
    d.set_item("bookkeeping", pairs(shared::BOOKKEEPING_TABLE)?)?;
    Ok(d)
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
    let tuple = (e.event_id, e.kind.wire_name(), e.call_id, e.portal_id, e.ts_us, data).into_pyobject(py)?;
    Ok(Some(tuple.into_any().unbind()))
}
#[pymodule]
fn callstream_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeEvent>()?;
    m.add_class::<Core>()?;
    m.add_class::<Step>()?;
    m.add_function(wrap_pyfunction!(validate_message, m)?)?;
    m.add_function(wrap_pyfunction!(validate_row, m)?)?;
    m.add_function(wrap_pyfunction!(event_columns, m)?)?;
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
    m.add("LIMITS", (shared::MAX_CALL_EVENTS, shared::MAX_RECORDING_URLS, shared::MAX_TEXT_CHARS,
                     shared::MAX_AHEAD_US, shared::EARLIEST_TS_US))?;
    // The whole declaration this build was compiled from (streams/domain/shared.toml).
    m.add("SHARED", shared_declaration(m.py())?)?;
    Ok(())
}
