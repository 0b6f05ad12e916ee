//! The accept path of contract v1 validation (`streams/domain/validation.py` and
//! `streams/domain/validation_fields.py`), for the worker's hot path.
//!
//! `validate` answers `Some(event)` only when the Python `validate(value, key)` returns
//! an `Event`, and then with the same field values. Every rejection, and every input
//! where this module is not certain to agree with Python, is `None`: the caller then
//! runs the Python validator, which decides and writes the DLQ reason. So this module
//! never produces rejection reasons, and it may be stricter than Python, never laxer.
//!
//! The JSON is read by a small borrowed scanner, not a DOM: it accepts a subset of
//! what orjson accepts (so Python's stdlib fallback parser is never involved in an
//! accepted message) and records, for the envelope and `data`, the raw value of each
//! field the contract names (the last one wins, as with orjson's dicts). Left to
//! Python (`None`), although Python may accept them:
//! - a contract-named key written with escapes (`"\u0076"`), at the top level or in `data`;
//! - a string value of a field this module reads that contains any escape;
//! - non-ASCII text in `line_number`, `config_id`, `url` (Python's `isprintable` is
//!   Unicode-wide; here only ASCII 0x20..0x7e, and 0x21..0x7e for urls) and in
//!   timestamps (refused by Python anyway);
//! - numbers: a `-` sign in any integer or `seconds` field (`-0` is 0 for orjson),
//!   integers beyond 2**63 - 1 as `seconds` (orjson turns those above 2**64 - 1 into
//!   floats), floats that `Dec::from_float_repr` cannot hold, and any number in the
//!   document whose magnitude exceeds 1.79e308 (orjson refuses those outright);
//! - lone surrogate escapes anywhere (orjson refuses them; Python's stdlib fallback
//!   then may accept), nesting deeper than `MAX_DEPTH`, whitespace other than JSON's four.

use std::sync::OnceLock;

use regex::bytes::Regex;

use crate::dec::Dec;
use crate::event::{Data, Event, Kind};
use crate::shared::{
    data_fields_of, BYPASS_REASONS, CONTROLLER_RESULTS, DIRECTIONS, EARLIEST_TS_US, END_BY, END_CAUSES, FORWARD_REASONS, LINES,
    MAX_AHEAD_US, MAX_TEXT_CHARS, OFFER_RULES, RECORDING_FORMATS,
};
use crate::state::write_str;
use crate::timefmt::{format_ts_wire, parse_ts_us};

/// Contract: "too_large (over 1 MiB)".
const MAX_VALUE_BYTES: usize = 1_048_576;
/// Deeper documents go to Python (orjson allows 1024 levels).
const MAX_DEPTH: u32 = 64;
/// Above this magnitude a number might be one orjson refuses as infinite: leave it to Python.
const SAFE_FLOAT_MAX: f64 = 1.79e308;

/// One field's raw JSON value, as far as the checks need it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum V<'a> {
    Absent,
    Null,
    True,
    False,
    /// A string without escapes (its exact text).
    Str(&'a str),
    /// A number token, exactly as written (JSON grammar checked).
    Num(&'a str),
    /// A string with escapes, an array or an object: never acceptable where read.
    Other,
}

// Envelope slots.
const E_EVENT_ID: usize = 0;
const E_V: usize = 1;
const E_TYPE: usize = 2;
const E_CALL_ID: usize = 3;
const E_PORTAL_ID: usize = 4;
const E_SOURCE: usize = 5;
const E_NODE: usize = 6;
const E_TS: usize = 7;
const ENVELOPE: usize = 8;

// Data slots (every data field name of the contract).
const D_DIRECTION: usize = 0;
const D_LINE: usize = 1;
const D_FROM: usize = 2;
const D_TO: usize = 3;
const D_LINE_NUMBER: usize = 4;
const D_SHOWN_NUMBER: usize = 5;
const D_USER_ID: usize = 6;
const D_EXTRANET: usize = 7;
const D_RECORD: usize = 8;
const D_RESULT: usize = 9;
const D_CONFIG_ID: usize = 10;
const D_REASON: usize = 11;
const D_KEY_SAVED_AT: usize = 12;
const D_ATTEMPT: usize = 13;
const D_RULE: usize = 14;
const D_RINGS: usize = 15;
const D_URL: usize = 16;
const D_BYTES: usize = 17;
const D_SECONDS: usize = 18;
const D_FORMAT: usize = 19;
const D_CAUSE: usize = 20;
const D_BY: usize = 21;
const DATA: usize = 22;

fn envelope_slot(key: &str) -> Option<usize> {
    Some(match key {
        "event_id" => E_EVENT_ID,
        "v" => E_V,
        "type" => E_TYPE,
        "call_id" => E_CALL_ID,
        "portal_id" => E_PORTAL_ID,
        "source" => E_SOURCE,
        "node" => E_NODE,
        "ts" => E_TS,
        _ => return None,
    })
}

fn data_slot(key: &str) -> Option<usize> {
    Some(match key {
        "direction" => D_DIRECTION,
        "line" => D_LINE,
        "from" => D_FROM,
        "to" => D_TO,
        "line_number" => D_LINE_NUMBER,
        "shown_number" => D_SHOWN_NUMBER,
        "user_id" => D_USER_ID,
        "extranet" => D_EXTRANET,
        "record" => D_RECORD,
        "result" => D_RESULT,
        "config_id" => D_CONFIG_ID,
        "reason" => D_REASON,
        "key_saved_at" => D_KEY_SAVED_AT,
        "attempt" => D_ATTEMPT,
        "rule" => D_RULE,
        "rings" => D_RINGS,
        "url" => D_URL,
        "bytes" => D_BYTES,
        "seconds" => D_SECONDS,
        "format" => D_FORMAT,
        "cause" => D_CAUSE,
        "by" => D_BY,
        _ => return None,
    })
}

/// The `data` member: absent, an object (its contract fields), or anything else.
/// (One per message, on the stack: the size difference between variants costs nothing.)
#[allow(clippy::large_enum_variant)]
enum DataValue<'a> {
    Absent,
    Object([V<'a>; DATA]),
    Other,
}

/// A strict JSON scanner over text already known to be valid UTF-8.
struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.b.get(at..at + 4)?;
        let mut value = 0u32;
        for &c in digits {
            value = value * 16 + (c as char).to_digit(16)?;
        }
        Some(value)
    }

    /// Skips string bytes that need no attention (not `"`, `\\`, nor a control character),
    /// eight at a time while it can.
    #[inline]
    fn skip_plain(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        #[inline]
        fn has_zero(w: u64) -> u64 {
            w.wrapping_sub(ONES) & !w & HIGH
        }
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            // A byte equal to '"' or '\\', or below 0x20: exact "is there any" tests.
            let special = has_zero(w ^ (ONES * b'"' as u64)) | has_zero(w ^ (ONES * b'\\' as u64))
                | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
            if special != 0 {
                // The lowest flagged byte is exact (false flags only sit above a true one).
                self.i += (special.trailing_zeros() / 8) as usize;
                return;
            }
            self.i += 8;
        }
    }

    /// A string at `self.i` (on its opening quote): its raw text and whether it had escapes.
    fn string(&mut self) -> Option<(&'a str, bool)> {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            self.skip_plain();
            let c = *self.b.get(self.i)?;
            match c {
                b'"' => {
                    let text = self.text.get(start..self.i)?;
                    self.i += 1;
                    return Some((text, escaped));
                }
                b'\\' => {
                    escaped = true;
                    match *self.b.get(self.i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let unit = self.hex4(self.i + 2)?;
                            self.i += 6;
                            if (0xDC00..0xE000).contains(&unit) {
                                return None; // a lone low surrogate
                            }
                            if (0xD800..0xDC00).contains(&unit) {
                                // Only a high surrogate escape followed by a low one.
                                if self.b.get(self.i) != Some(&b'\\') || self.b.get(self.i + 1) != Some(&b'u') {
                                    return None;
                                }
                                let low = self.hex4(self.i + 2)?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return None;
                                }
                                self.i += 6;
                            }
                        }
                        _ => return None,
                    }
                }
                0x00..=0x1f => return None, // raw control characters are not JSON
                _ => self.i += 1,
            }
        }
    }

    /// A number token at `self.i`, grammar-checked; None also for magnitudes orjson might refuse.
    fn number(&mut self) -> Option<&'a str> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            }
            _ => return None,
        }
        let int_digits = self.i - start;
        let mut plain = true;
        if self.peek() == Some(b'.') {
            plain = false;
            self.i += 1;
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            plain = false;
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.digits()?;
        }
        let token = self.text.get(start..self.i)?;
        if !plain || int_digits > 19 {
            let x: f64 = token.parse().ok()?;
            // NaN included: a token that parses to no finite, safe double is left to Python.
            if x.is_nan() || x.abs() > SAFE_FLOAT_MAX {
                return None;
            }
        }
        Some(token)
    }

    fn digits(&mut self) -> Option<()> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        (self.i > start).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Any value at `self.i` (whitespace skipped before it), recorded as a `V`.
    fn value(&mut self, depth: u32) -> Option<V<'a>> {
        Some(match self.peek()? {
            b'"' => match self.string()? {
                (text, false) => V::Str(text),
                (_, true) => V::Other,
            },
            b'{' | b'[' => {
                self.skip_container(depth + 1)?;
                V::Other
            }
            b't' => {
                self.literal(b"true")?;
                V::True
            }
            b'f' => {
                self.literal(b"false")?;
                V::False
            }
            b'n' => {
                self.literal(b"null")?;
                V::Null
            }
            b'-' | b'0'..=b'9' => V::Num(self.number()?),
            _ => return None,
        })
    }

    /// An array or object at `self.i`, checked and skipped.
    fn skip_container(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        if self.peek()? == b'[' {
            self.i += 1;
            self.ws();
            if self.peek()? == b']' {
                self.i += 1;
                return Some(());
            }
            loop {
                self.ws();
                self.value(depth)?;
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }
        self.object(depth, |scanner, _key, _escaped| {
            scanner.value(depth)?;
            Some(())
        })
    }

    /// An object at `self.i` (on `{`); `member` reads each member's value (positioned on it).
    fn object(
        &mut self,
        depth: u32,
        mut member: impl FnMut(&mut Self, &'a str, bool) -> Option<()>,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.i += 1; // '{'
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            if self.peek()? != b'"' {
                return None;
            }
            let (key, escaped) = self.string()?;
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            self.ws();
            member(self, key, escaped)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// The text of a string body with escapes (already checked by `Scanner::string`).
fn unescape(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < b.len() {
        let run = raw[i..].find('\\').map_or(raw.len(), |at| i + at);
        out.push_str(&raw[i..run]);
        i = run;
        if i == b.len() {
            break;
        }
        let hex = |at: usize| u32::from_str_radix(raw.get(at..at + 4)?, 16).ok();
        let c = match *b.get(i + 1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = hex(i + 2)?;
                if (0xD800..0xDC00).contains(&unit) {
                    let low = hex(i + 8)?;
                    i += 6;
                    char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low.checked_sub(0xDC00)?))?
                } else {
                    char::from_u32(unit)?
                }
            }
            _ => return None,
        };
        out.push(c);
        i += if b[i + 1] == b'u' { 6 } else { 2 };
    }
    Some(out)
}

/// The whole message parsed: the envelope's contract fields and `data`'s.
fn scan(value: &[u8]) -> Option<([V<'_>; ENVELOPE], DataValue<'_>)> {
    if value.len() > MAX_VALUE_BYTES {
        return None;
    }
    // orjson refuses invalid UTF-8 anywhere (and Python's fallback decode too).
    let text = std::str::from_utf8(value).ok()?;
    let mut s = Scanner { text, b: value, i: 0 };
    let mut envelope = [V::Absent; ENVELOPE];
    let mut data = DataValue::Absent;
    s.ws();
    if s.peek()? != b'{' {
        return None; // not an object (or not JSON)
    }
    s.object(1, |s, key, escaped| {
        if escaped {
            // Unknown unless it spells a contract name (then Python's call).
            let key = unescape(key)?;
            if key == "data" || envelope_slot(&key).is_some() {
                return None;
            }
            s.value(1)?;
            return Some(());
        }
        if key == "data" {
            if s.peek()? == b'{' {
                let mut fields = [V::Absent; DATA];
                s.object(2, |s, key, escaped| {
                    if escaped && data_slot(&unescape(key)?).is_some() {
                        return None;
                    }
                    let v = s.value(2)?;
                    if escaped {
                        return Some(());
                    }
                    if let Some(slot) = data_slot(key) {
                        fields[slot] = v;
                    }
                    Some(())
                })?;
                data = DataValue::Object(fields);
            } else {
                s.value(1)?;
                data = DataValue::Other;
            }
            return Some(());
        }
        let v = s.value(1)?;
        if let Some(slot) = envelope_slot(key) {
            envelope[slot] = v;
        }
        Some(())
    })?;
    s.ws();
    if s.i != value.len() {
        return None; // trailing data
    }
    Some((envelope, data))
}

// ---- field checks (validation_fields.py), each None when Python would refuse or is not certain.

/// The bytes of `[A-Za-z0-9._:-]`.
static ID_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
        c += 1;
    }
    table
};

/// `[A-Za-z0-9._:-]{1,64}`
fn is_id(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len()) && b.iter().fold(true, |ok, &c| ok & ID_BYTE[c as usize])
}

/// `\+[0-9]{3,15}`
fn is_phone(s: &str) -> bool {
    let b = s.as_bytes();
    (4..=16).contains(&b.len()) && b[0] == b'+' && b[1..].iter().all(u8::is_ascii_digit)
}

/// `\+[0-9]{3,15}|user:[A-Za-z0-9._:-]{1,64}`
fn is_party(s: &str) -> bool {
    is_phone(s) || s.strip_prefix("user:").is_some_and(is_id)
}

/// 1-64 characters, printable: here only ASCII 0x20..0x7e (the rest is Python's call).
fn is_plain_text(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len()) && b.iter().all(|&c| (0x20..=0x7e).contains(&c))
}

fn url_regex() -> &'static Regex {
    static URL: OnceLock<Regex> = OnceLock::new();
    // validation_fields._is_url, anchored; applied to printable ASCII only, where
    // `(?i:https?)` is exactly the explicit classes below.
    URL.get_or_init(|| {
        Regex::new(
            r"(?s-u)\A[Hh][Tt][Tt][Pp][Ss]?://(?:[^/?#@]*@)?(?:\[[0-9A-Za-z:.%]+\]|[^/?#@:\[\]]+)(?::[0-9]*)?(?:[/?#].*)?\z",
        )
        .expect("the url pattern compiles")
    })
}

/// `url`: printable, no space, the URL pattern, at most 2,048 characters; here ASCII
/// 0x21..0x7e only (so its bytes are its characters).
fn is_url(s: &str) -> bool {
    s.len() <= MAX_TEXT_CHARS && s.bytes().all(|c| (0x21..=0x7e).contains(&c))
        && url_regex().is_match(s.as_bytes())
}

fn ident(v: V<'_>) -> Option<&str> {
    match v {
        V::Str(s) if is_id(s) => Some(s),
        _ => None,
    }
}

/// A nullable string field: `Some(None)` when null or absent, `Some(Some(s))` when `ok(s)`.
fn nullable<'a>(v: V<'a>, ok: fn(&str) -> bool) -> Option<Option<&'a str>> {
    match v {
        V::Absent | V::Null => Some(None),
        V::Str(s) if ok(s) => Some(Some(s)),
        _ => None,
    }
}

fn one_of<'a>(v: V<'a>, allowed: &[&str]) -> Option<&'a str> {
    match v {
        V::Str(s) if allowed.contains(&s) => Some(s),
        _ => None,
    }
}

fn flag(v: V<'_>) -> Option<bool> {
    match v {
        V::Absent | V::False => Some(false),
        V::True => Some(true),
        _ => None,
    }
}

/// A plain unsigned integer token (no sign, fraction or exponent) up to 2**63 - 1.
fn plain_int(token: &str) -> Option<i64> {
    if token.len() > 19 || !token.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u64 = token.parse().ok()?;
    i64::try_from(n).ok()
}

/// `integer(d, name, minimum)`: a JSON integer in `[minimum, 2**63 - 1]`.
fn integer(v: V<'_>, minimum: i64) -> Option<i64> {
    match v {
        V::Num(token) => plain_int(token).filter(|&n| n >= minimum),
        _ => None,
    }
}

/// `seconds`: an integer in `[0, 2**63 - 1]` or a finite float >= 0, as Python's Decimal.
fn seconds(v: V<'_>) -> Option<Dec> {
    let V::Num(token) = v else { return None };
    if token.starts_with('-') {
        return None;
    }
    if token.bytes().all(|c| c.is_ascii_digit()) {
        // An integer token: an int for orjson up to 2**64 - 1 (a float beyond: Python's).
        return plain_int(token).map(Dec::int);
    }
    let x: f64 = token.parse().ok()?;
    if !(x.is_finite() && x >= 0.0) {
        return None;
    }
    Dec::from_float_repr(x)
}

fn timestamp(v: V<'_>) -> Option<i64> {
    match v {
        V::Str(s) if s.is_ascii() => parse_ts_us(s),
        _ => None,
    }
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

/// The type's data fields, checked as its Python parser does (every field it reads).
fn parse_data(kind: Kind, d: &[V<'_>; DATA]) -> Option<Data> {
    Some(match kind {
        Kind::Started => {
            let direction = one_of(d[D_DIRECTION], DIRECTIONS)?;
            let line = one_of(d[D_LINE], LINES)?;
            let from = match d[D_FROM] {
                V::Str(s) if is_party(s) => s,
                _ => return None,
            };
            let to = match d[D_TO] {
                V::Str(s) if is_party(s) => s,
                _ => return None,
            };
            let line_number = nullable(d[D_LINE_NUMBER], is_plain_text)?;
            let shown_number = nullable(d[D_SHOWN_NUMBER], is_phone)?;
            let user_id = nullable(d[D_USER_ID], is_id)?;
            let extranet = flag(d[D_EXTRANET])?;
            let record = flag(d[D_RECORD])?;
            Data::Started {
                direction: direction.to_owned(),
                line: line.to_owned(),
                from: from.to_owned(),
                to: to.to_owned(),
                line_number: owned(line_number),
                shown_number: owned(shown_number),
                user_id: owned(user_id),
                extranet,
                record,
            }
        }
        Kind::Requested => Data::Requested,
        Kind::Replied => {
            let result = one_of(d[D_RESULT], CONTROLLER_RESULTS)?;
            nullable(d[D_CONFIG_ID], is_plain_text)?;
            Data::Replied { result: result.to_owned() }
        }
        Kind::Bypassed => {
            let reason = one_of(d[D_REASON], BYPASS_REASONS)?;
            let key_saved_at_us = timestamp(d[D_KEY_SAVED_AT])?;
            Data::Bypassed { reason: reason.to_owned(), key_saved_at_us }
        }
        Kind::Offered => {
            ident(d[D_USER_ID])?;
            let attempt = integer(d[D_ATTEMPT], 1)?;
            one_of(d[D_RULE], OFFER_RULES)?;
            integer(d[D_RINGS], 1)?;
            Data::Offered { attempt }
        }
        Kind::OfferMissed => {
            ident(d[D_USER_ID])?;
            integer(d[D_ATTEMPT], 1)?;
            Data::OfferMissed
        }
        Kind::Forwarded => {
            let to = match d[D_TO] {
                V::Str(s) if s == "voicemail" || is_phone(s) => s,
                _ => return None,
            };
            one_of(d[D_REASON], FORWARD_REASONS)?;
            Data::Forwarded { to: to.to_owned() }
        }
        Kind::Answered => Data::Answered { user_id: ident(d[D_USER_ID])?.to_owned() },
        Kind::Recording => {
            let url = match d[D_URL] {
                V::Str(s) if is_url(s) => s,
                _ => return None,
            };
            let bytes = integer(d[D_BYTES], 0)?;
            let seconds = seconds(d[D_SECONDS])?;
            one_of(d[D_FORMAT], RECORDING_FORMATS)?;
            Data::Recording { url: url.to_owned(), bytes, seconds }
        }
        Kind::Ended => {
            let cause = one_of(d[D_CAUSE], END_CAUSES)?;
            let by = one_of(d[D_BY], END_BY)?;
            Data::Ended { cause: cause.to_owned(), by: by.to_owned() }
        }
    })
}

/// `validation.validate(value, key, timestamp_ms)` when it returns an Event; None when it
/// rejects or when this fast path is not certain to agree (the caller then asks Python).
pub fn validate(value: &[u8], key: Option<&[u8]>, timestamp_ms: Option<i64>) -> Option<Event> {
    validate_parts(value, key, timestamp_ms).map(|(event, _, _)| event)
}

/// The `events` row's own fields of a valid message (the rest is the `Event`'s).
pub struct EventRow {
    pub node: String,
    /// `data` in the canonical form of `streams/domain/wire.py`, as orjson writes it
    pub data: String,
}

/// `validate`, and the message's `events` row fields when this module is certain to write
/// them as `warehouse.decode.events_table` does (else None beside the event: a `seconds`
/// float whose shortest text orjson and Python's repr write differently).
pub fn validate_row(value: &[u8], key: Option<&[u8]>, timestamp_ms: Option<i64>)
                    -> Option<(Event, Option<EventRow>)> {
    let (event, node, data) = validate_parts(value, key, timestamp_ms)?;
    let row = data_json(event.kind, &data).map(|data| EventRow { node: node.to_owned(), data });
    Some((event, row))
}

/// The canonical `data` JSON of a message `parse_data` accepted (so every slot read here
/// holds what its rule allows: strings without escapes, plain integers).
fn data_json(kind: Kind, d: &[V<'_>; DATA]) -> Option<String> {
    let mut out: Vec<u8> = Vec::with_capacity(160);
    out.push(b'{');
    // The declared order (streams/domain/shared.toml), as the Python core's wire.py writes it.
    for (i, &name) in data_fields_of(kind.wire_name())?.iter().enumerate() {
        let slot = data_slot(name)?;
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        match (slot, d[slot]) {
            (D_KEY_SAVED_AT, v) => write_str(&mut out, &format_ts_wire(timestamp(v)?)),
            (D_SECONDS, V::Num(token)) => out.extend_from_slice(seconds_text(token)?.as_bytes()),
            (D_EXTRANET | D_RECORD, V::Absent | V::False) => out.extend_from_slice(b"false"),
            (_, V::True) => out.extend_from_slice(b"true"),
            (_, V::Absent | V::Null) => out.extend_from_slice(b"null"),
            (_, V::Str(text)) => write_str(&mut out, text),
            (_, V::Num(token)) => out.extend_from_slice(plain_int(token)?.to_string().as_bytes()),
            _ => return None,
        }
    }
    out.push(b'}');
    String::from_utf8(out).ok()
}

/// `seconds_to_json(seconds)` as orjson writes it: an integer token as the integer; a float
/// as Python's repr (orjson writes the same digits for 0 and for 1e-4 <= x < 1e15; outside
/// that range None: the caller builds the row in Python).
fn seconds_text(token: &str) -> Option<String> {
    if token.bytes().all(|c| c.is_ascii_digit()) {
        return plain_int(token).map(|n| n.to_string());
    }
    let x: f64 = token.parse().ok()?;
    if !(x == 0.0 || (1e-4..1e15).contains(&x)) {
        return None;
    }
    Some(Dec::from_float_repr(x)?.to_python_str())
}

fn validate_parts<'a>(value: &'a [u8], key: Option<&[u8]>, timestamp_ms: Option<i64>)
                      -> Option<(Event, &'a str, [V<'a>; DATA])> {
    let (envelope, data) = scan(value)?;
    // v: the integer 1 (not true, not 1.0, not -0 or 01).
    if envelope[E_V] != V::Num("1") {
        return None;
    }
    let kind = match envelope[E_TYPE] {
        V::Str(s) => Kind::from_wire(s)?,
        _ => return None,
    };
    let event_id = ident(envelope[E_EVENT_ID])?;
    let call_id = ident(envelope[E_CALL_ID])?;
    let portal_id = ident(envelope[E_PORTAL_ID])?;
    if envelope[E_SOURCE] != V::Str(kind.source()) {
        return None;
    }
    let node = ident(envelope[E_NODE])?;
    let ts_us = timestamp(envelope[E_TS])?;
    // Contract v1.1: not before 2000, not more than 24 h after the message's timestamp.
    if ts_us < EARLIEST_TS_US {
        return None;
    }
    if let Some(ms) = timestamp_ms.filter(|ms| *ms >= 0) {
        if ts_us as i128 > ms as i128 * 1000 + MAX_AHEAD_US as i128 {
            return None;
        }
    }
    let DataValue::Object(fields) = &data else { return None };
    let data = parse_data(kind, fields)?;
    if let Some(key) = key {
        if key != call_id.as_bytes() {
            return None;
        }
    }
    let event = Event {
        event_id: event_id.to_owned(),
        kind,
        call_id: call_id.to_owned(),
        portal_id: portal_id.to_owned(),
        ts_us,
        data,
    };
    Some((event, node, *fields))
}
