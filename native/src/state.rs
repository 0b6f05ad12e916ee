//! A call's state and its fold (`streams/domain/state.py`), and its compact JSON form.
//!
//! The bytes are the Python core's format 3, read and written by both cores:
//! a call can move between them from one batch to the next. Format 2 (every
//! recording kept) is left to the Python core, which reads it and writes format 3.

use serde_json::{Map, Value};

use crate::dec::Dec;
use crate::event::{Data, Event};
use crate::shared::{EXPIRED_KEY, MAX_RECORDING_URLS, STATE_FORMAT};

#[derive(Clone, Debug)]
pub struct First { pub ts_us: i64, pub event_id: String, pub portal_id: String }

#[derive(Clone, Debug)]
pub struct Started {
    pub ts_us: i64,
    pub event_id: String,
    pub portal_id: String,
    pub direction: String,
    pub line: String,
    pub from: String,
    pub to: String,
    pub line_number: Option<String>,
    pub shown_number: Option<String>,
    pub user_id: Option<String>,
    pub extranet: bool,
    pub record: bool,
}

#[derive(Clone, Debug)]
pub struct Answered { pub ts_us: i64, pub event_id: String, pub user_id: String }

#[derive(Clone, Debug)]
pub struct Ended { pub ts_us: i64, pub event_id: String, pub cause: String, pub by: String }

#[derive(Clone, Debug)]
pub struct Forwarded { pub ts_us: i64, pub event_id: String, pub to: String }

#[derive(Clone, Debug)]
pub struct Replied { pub ts_us: i64, pub event_id: String, pub result: String }

#[derive(Clone, Debug)]
pub struct Bypassed { pub ts_us: i64, pub event_id: String, pub reason: String, pub key_saved_at_us: i64 }


#[derive(Clone, Debug)]
pub struct CallState {
    pub call_id: String,
    pub event_ids: Vec<String>, // sorted, distinct
    pub first: First,
    pub started: Option<Started>,
    pub answered: Option<Answered>,
    pub ended: Option<Ended>,
    pub forwarded: Option<Forwarded>,
    pub replied: Option<Replied>,
    pub replied_first: Vec<Replied>, // the earliest of each result, sorted by result
    pub bypassed: Option<Bypassed>,
    pub attempts: Vec<i64>,
    pub urls: Vec<(i64, String)>, // the first MAX_RECORDING_URLS by (earliest ts, url)
    pub rec_bytes: i64,            // saturating at i64::MAX
    pub rec_seconds: Dec,          // exact sum
    pub stalest: Option<Bypassed>,
    pub version: i64,
    pub partition: Option<i64>,
    pub touched_at: f64,
    pub emitted: Map<String, Value>,
}

fn earlier(ts: i64, id: &str, other_ts: i64, other_id: &str) -> bool {
    (ts, id) < (other_ts, other_id)
}

fn staleness(b: &Bypassed) -> (i128, i64, &str) {
    (b.key_saved_at_us as i128 - b.ts_us as i128, b.ts_us, b.event_id.as_str())
}

impl CallState {
    pub fn new(event: &Event) -> CallState {
        CallState {
            call_id: event.call_id.clone(),
            event_ids: Vec::new(),
            first: First { ts_us: event.ts_us, event_id: event.event_id.clone(), portal_id: event.portal_id.clone() },
            started: None, answered: None, ended: None, forwarded: None, replied: None,
            replied_first: Vec::new(), bypassed: None, attempts: Vec::new(), urls: Vec::new(),
            rec_bytes: 0, rec_seconds: Dec { coef: 0, exp: 0 }, stalest: None, version: 0, partition: None, touched_at: 0.0, emitted: Map::new(),
        }
    }

    pub fn is_complete(&self) -> bool {
        self.started.is_some() && self.ended.is_some()
    }

    /// The call can no longer time out: complete, or its incomplete CDR already
    /// emitted for this quiet period (`expiry_due(state, 0) is None`).
    pub fn done(&self) -> bool {
        self.is_complete()
            || self.emitted.get(EXPIRED_KEY).and_then(|v| v.as_f64()) == Some(self.touched_at)
    }

    /// Whether `event_id` is one of the call's distinct events.
    pub fn has_seen(&self, event_id: &str) -> bool {
        self.event_ids.binary_search_by(|e| e.as_str().cmp(event_id)).is_ok()
    }

    /// Fold one event in; Some(false) when its event_id was already seen (the first copy
    /// wins), None when a sum leaves this core's arithmetic (the Python core takes the call).
    pub fn fold(&mut self, event: &Event) -> Option<bool> {
        let at = match self.event_ids.binary_search(&event.event_id) {
            Ok(_) => return Some(false),
            Err(at) => at,
        };
        let (ts, id) = (event.ts_us, event.event_id.as_str());
        match &event.data {
            Data::Started { direction, line, from, to, line_number, shown_number, user_id, extranet, record } => {
                if self.started.as_ref().is_none_or(|s| earlier(ts, id, s.ts_us, &s.event_id)) {
                    self.started = Some(Started {
                        ts_us: ts, event_id: id.to_string(), portal_id: event.portal_id.clone(),
                        direction: direction.clone(), line: line.clone(), from: from.clone(), to: to.clone(),
                        line_number: line_number.clone(), shown_number: shown_number.clone(),
                        user_id: user_id.clone(), extranet: *extranet, record: *record,
                    });
                }
            }
            Data::Answered { user_id } => {
                if self.answered.as_ref().is_none_or(|s| earlier(ts, id, s.ts_us, &s.event_id)) {
                    self.answered = Some(Answered { ts_us: ts, event_id: id.to_string(), user_id: user_id.clone() });
                }
            }
            Data::Ended { cause, by } => {
                if self.ended.as_ref().is_none_or(|s| earlier(ts, id, s.ts_us, &s.event_id)) {
                    self.ended = Some(Ended { ts_us: ts, event_id: id.to_string(), cause: cause.clone(), by: by.clone() });
                }
            }
            Data::Bypassed { reason, key_saved_at_us } => {
                let record = Bypassed { ts_us: ts, event_id: id.to_string(), reason: reason.clone(),
                                        key_saved_at_us: *key_saved_at_us };
                if self.bypassed.as_ref().is_none_or(|s| earlier(ts, id, s.ts_us, &s.event_id)) {
                    self.bypassed = Some(record.clone());
                }
                if self.stalest.as_ref().is_none_or(|s| staleness(&record) < staleness(s)) {
                    self.stalest = Some(record);
                }
            }
            Data::Forwarded { to } => {
                if self.forwarded.as_ref().is_none_or(|s| earlier(s.ts_us, &s.event_id, ts, id)) {
                    self.forwarded = Some(Forwarded { ts_us: ts, event_id: id.to_string(), to: to.clone() });
                }
            }
            Data::Replied { result } => {
                let record = Replied { ts_us: ts, event_id: id.to_string(), result: result.clone() };
                if self.replied.as_ref().is_none_or(|s| earlier(s.ts_us, &s.event_id, ts, id)) {
                    self.replied = Some(record.clone());
                }
                match self.replied_first.iter().position(|r| r.result == *result) {
                    Some(i) => {
                        let mine = &self.replied_first[i];
                        if earlier(ts, id, mine.ts_us, &mine.event_id) {
                            self.replied_first[i] = record;
                        }
                    }
                    None => {
                        let at = self.replied_first.partition_point(|r| r.result <= *result);
                        self.replied_first.insert(at, record);
                    }
                }
            }
            Data::Offered { attempt } => {
                if let Err(at) = self.attempts.binary_search(attempt) {
                    self.attempts.insert(at, *attempt);
                }
            }
            Data::Recording { url, bytes, seconds } => {
                self.rec_seconds = self.rec_seconds.checked_add(*seconds)?;
                self.rec_bytes = self.rec_bytes.saturating_add(*bytes);
                first_urls(&mut self.urls, ts, url);
            }
            Data::Requested | Data::OfferMissed => {}
        }
        self.event_ids.insert(at, event.event_id.clone());
        if earlier(ts, id, self.first.ts_us, &self.first.event_id) {
            self.first = First { ts_us: ts, event_id: id.to_string(), portal_id: event.portal_id.clone() };
        }
        Some(true)
    }
}

/// `state.first_urls`: a recording of `url` at `ts` joins the first MAX_RECORDING_URLS
/// distinct urls by (ts of the url's earliest recording, url).
fn first_urls(urls: &mut Vec<(i64, String)>, ts: i64, url: &str) {
    if let Some(i) = urls.iter().position(|(_, u)| u == url) {
        if urls[i].0 <= ts {
            return;
        }
        urls.remove(i);
    }
    let at = urls.partition_point(|(t, u)| (*t, u.as_str()) < (ts, url));
    if at < MAX_RECORDING_URLS {
        urls.insert(at, (ts, url.to_string()));
        urls.truncate(MAX_RECORDING_URLS);
    }
}

// --- the compact JSON form (format 3) -------------------------------------------

pub fn write_str(out: &mut Vec<u8>, text: &str) {
    // serde_json escapes exactly as orjson does: \" \\ \b \f \n \r \t, other controls as \u00xx.
    serde_json::to_writer(&mut *out, text).expect("writing to a Vec cannot fail");
}

fn write_opt_str(out: &mut Vec<u8>, text: &Option<String>) {
    match text {
        Some(t) => write_str(out, t),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_int(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(value.to_string().as_bytes());
}

pub fn to_bytes(state: &CallState) -> Vec<u8> {
    let index = |id: &str| -> i64 {
        state.event_ids.binary_search_by(|e| e.as_str().cmp(id)).map(|i| i as i64).unwrap_or(-1)
    };
    let mut out = Vec::with_capacity(512);
    out.push(b'[');
    write_int(&mut out, STATE_FORMAT);
    out.push(b',');
    write_str(&mut out, &state.call_id);
    out.push(b',');
    out.push(b'[');
    for (i, id) in state.event_ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(&mut out, id);
    }
    out.extend_from_slice(b"],");
    let head = |out: &mut Vec<u8>, ts: i64, id: &str| {
        out.push(b'[');
        write_int(out, ts);
        out.push(b',');
        write_int(out, index(id));
    };
    // A record of text fields after (ts, event id): [ts, index, "a", "b", ...].
    let texts = |out: &mut Vec<u8>, ts: i64, id: &str, fields: &[&str]| {
        head(out, ts, id);
        for field in fields {
            out.push(b',');
            write_str(out, field);
        }
        out.push(b']');
    };
    let f = &state.first;
    texts(&mut out, f.ts_us, &f.event_id, &[&f.portal_id]);
    out.push(b',');
    match &state.started {
        None => out.extend_from_slice(b"null"),
        Some(s) => {
            head(&mut out, s.ts_us, &s.event_id);
            for text in [&s.portal_id, &s.direction, &s.line, &s.from, &s.to] {
                out.push(b',');
                write_str(&mut out, text);
            }
            for text in [&s.line_number, &s.shown_number, &s.user_id] {
                out.push(b',');
                write_opt_str(&mut out, text);
            }
            out.extend_from_slice(if s.extranet { b",true" } else { b",false" });
            out.extend_from_slice(if s.record { b",true]" } else { b",false]" });
        }
    }
    out.push(b',');
    match &state.answered {
        None => out.extend_from_slice(b"null"),
        Some(a) => texts(&mut out, a.ts_us, &a.event_id, &[&a.user_id]),
    }
    out.push(b',');
    match &state.ended {
        None => out.extend_from_slice(b"null"),
        Some(e) => texts(&mut out, e.ts_us, &e.event_id, &[&e.cause, &e.by]),
    }
    out.push(b',');
    match &state.forwarded {
        None => out.extend_from_slice(b"null"),
        Some(r) => texts(&mut out, r.ts_us, &r.event_id, &[&r.to]),
    }
    out.push(b',');
    let replied = |out: &mut Vec<u8>, r: &Replied| texts(out, r.ts_us, &r.event_id, &[&r.result]);
    match &state.replied {
        None => out.extend_from_slice(b"null"),
        Some(r) => replied(&mut out, r),
    }
    out.extend_from_slice(b",[");
    for (i, r) in state.replied_first.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        replied(&mut out, r);
    }
    out.extend_from_slice(b"],");
    let bypassed = |out: &mut Vec<u8>, b: &Option<Bypassed>| match b {
        None => out.extend_from_slice(b"null"),
        Some(b) => {
            head(out, b.ts_us, &b.event_id);
            out.push(b',');
            write_str(out, &b.reason);
            out.push(b',');
            write_int(out, b.key_saved_at_us);
            out.push(b']');
        }
    };
    bypassed(&mut out, &state.bypassed);
    out.extend_from_slice(b",[");
    for (i, a) in state.attempts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_int(&mut out, *a);
    }
    out.extend_from_slice(b"],[[");
    for (i, (ts, url)) in state.urls.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        write_int(&mut out, *ts);
        out.push(b',');
        write_str(&mut out, url);
        out.push(b']');
    }
    out.extend_from_slice(b"],");
    write_int(&mut out, state.rec_bytes);
    out.push(b',');
    write_str(&mut out, &state.rec_seconds.to_python_str());
    out.extend_from_slice(b"],");
    bypassed(&mut out, &state.stalest);
    out.push(b',');
    write_int(&mut out, state.version);
    out.push(b',');
    match state.partition {
        None => out.extend_from_slice(b"null"),
        Some(p) => write_int(&mut out, p),
    }
    out.push(b',');
    serde_json::to_writer(&mut out, &state.touched_at).expect("finite");
    out.push(b',');
    serde_json::to_writer(&mut out, &state.emitted).expect("JSON values");
    out.push(b']');
    out
}

// Reading: any shape we do not expect gives None, and the Python core takes the call.

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn opt_text(v: &Value) -> Option<Option<String>> {
    if v.is_null() { Some(None) } else { Some(Some(v.as_str()?.to_string())) }
}

fn boolean(v: &Value) -> Option<bool> {
    v.as_bool()
}

fn head<'v>(v: &'v Value, ids: &[String], len: usize) -> Option<Option<(&'v [Value], i64, String)>> {
    if v.is_null() {
        return Some(None);
    }
    let items = v.as_array()?;
    if items.len() != len {
        return None;
    }
    let ts = int(&items[0])?;
    let at = usize::try_from(int(&items[1])?).ok()?;
    Some(Some((items.as_slice(), ts, ids.get(at)?.clone())))
}

fn replied_of(v: &Value, ids: &[String]) -> Option<Option<Replied>> {
    Some(match head(v, ids, 3)? {
        None => None,
        Some((items, ts_us, event_id)) => Some(Replied { ts_us, event_id, result: text(&items[2])? }),
    })
}

fn bypassed_of(v: &Value, ids: &[String]) -> Option<Option<Bypassed>> {
    Some(match head(v, ids, 4)? {
        None => None,
        Some((items, ts_us, event_id)) => Some(Bypassed {
            ts_us, event_id, reason: text(&items[2])?, key_saved_at_us: int(&items[3])?,
        }),
    })
}

pub fn from_bytes(data: &[u8]) -> Option<CallState> {
    let raw: Value = serde_json::from_slice(data).ok()?;
    let raw = raw.as_array()?;
    if raw.len() != 18 || raw[0].as_i64() != Some(STATE_FORMAT) {
        return None;
    }
    let ids: Vec<String> = raw[2].as_array()?.iter().map(text).collect::<Option<_>>()?;
    let (_, ts_us, event_id) = head(&raw[3], &ids, 3)??;
    let first = First { ts_us, event_id, portal_id: text(&raw[3][2])? };
    let started = match head(&raw[4], &ids, 12)? {
        None => None,
        Some((i, ts_us, event_id)) => Some(Started {
            ts_us, event_id, portal_id: text(&i[2])?, direction: text(&i[3])?, line: text(&i[4])?,
            from: text(&i[5])?, to: text(&i[6])?, line_number: opt_text(&i[7])?,
            shown_number: opt_text(&i[8])?, user_id: opt_text(&i[9])?, extranet: boolean(&i[10])?,
            record: boolean(&i[11])?,
        }),
    };
    let answered = match head(&raw[5], &ids, 3)? {
        None => None,
        Some((i, ts_us, event_id)) => Some(Answered { ts_us, event_id, user_id: text(&i[2])? }),
    };
    let ended = match head(&raw[6], &ids, 4)? {
        None => None,
        Some((i, ts_us, event_id)) => Some(Ended { ts_us, event_id, cause: text(&i[2])?, by: text(&i[3])? }),
    };
    let forwarded = match head(&raw[7], &ids, 3)? {
        None => None,
        Some((i, ts_us, event_id)) => Some(Forwarded { ts_us, event_id, to: text(&i[2])? }),
    };
    let replied = replied_of(&raw[8], &ids)?;
    let replied_first = raw[9].as_array()?.iter()
        .map(|r| replied_of(r, &ids).flatten()).collect::<Option<Vec<_>>>()?;
    let bypassed = bypassed_of(&raw[10], &ids)?;
    let attempts = raw[11].as_array()?.iter().map(int).collect::<Option<Vec<_>>>()?;
    let recordings = raw[12].as_array()?;
    if recordings.len() != 3 {
        return None;
    }
    let mut urls = Vec::new();
    for u in recordings[0].as_array()? {
        let pair = u.as_array()?;
        if pair.len() != 2 {
            return None;
        }
        urls.push((int(&pair[0])?, text(&pair[1])?));
    }
    let rec_bytes = int(&recordings[1])?;
    let rec_seconds = Dec::parse(recordings[2].as_str()?)?;
    let stalest = bypassed_of(&raw[13], &ids)?;
    let version = int(&raw[14])?;
    let partition = if raw[15].is_null() { None } else { Some(int(&raw[15])?) };
    let touched_at = raw[16].as_f64()?;
    let emitted = raw[17].as_object()?.clone();
    Some(CallState {
        call_id: text(&raw[1])?, event_ids: ids, first, started, answered, ended, forwarded, replied,
        replied_first, bypassed, attempts, urls, rec_bytes, rec_seconds, stalest, version, partition,
        touched_at, emitted,
    })
}
