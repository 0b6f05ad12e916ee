//! Contract timestamps as UTC microseconds (`streams/domain/timefmt.py`).

const US_PER_DAY: i64 = 86_400_000_000;

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut value = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value * 10 + (c - b'0') as i64;
    }
    Some(value)
}

/// `parse_ts_us`: RFC 3339 UTC, 0-6 fraction digits, `Z`/`z`/`+00:00`, years 1-9999.
pub fn parse_ts_us(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b't')
        || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    let mut at = 19;
    let mut micros = 0i64;
    if b[at] == b'.' {
        let start = at + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let count = end - start;
        if count == 0 || count > 6 {
            return None;
        }
        micros = digits(&b[start..end])? * 10i64.pow((6 - count) as u32);
        at = end;
    }
    match &b[at..] {
        b"Z" | b"z" | b"+00:00" => {}
        _ => return None,
    }
    if year < 1 || !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let month_days = [31, if leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if day < 1 || day > month_days[(month - 1) as usize] {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * US_PER_DAY + (hour * 3600 + minute * 60 + second) * 1_000_000 + micros)
}

/// `format_ts_ms`: `2026-11-25T10:15:30.123Z`, milliseconds truncated (floored).
pub fn format_ts_ms(ts_us: i64) -> String {
    format_ts(ts_us, false)
}

/// `wire.format_ts_wire`: milliseconds when the sub-millisecond digits are zero, else microseconds.
pub fn format_ts_wire(ts_us: i64) -> String {
    format_ts(ts_us, ts_us.rem_euclid(1000) != 0)
}

/// `YYYY-MM-DDTHH:MM:SS` and the fraction: 6 digits with ``micros``, else 3 (floored).
fn format_ts(ts_us: i64, micros: bool) -> String {
    let day = ts_us.div_euclid(US_PER_DAY);
    let us = ts_us.rem_euclid(US_PER_DAY);
    let (y, m, d) = civil_from_days(day);
    let second = us / 1_000_000;
    let clock = format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", y, m, d, second / 3600, second / 60 % 60, second % 60);
    if micros {
        format!("{}.{:06}Z", clock, us % 1_000_000)
    } else {
        format!("{}.{:03}Z", clock, (us % 1_000_000) / 1000)
    }
}

/// `seconds_between` in whole milliseconds (half-up); a negative skew counts as 0.
pub fn ms_between(start_us: i64, end_us: i64) -> i128 {
    let delta = end_us as i128 - start_us as i128;
    if delta <= 0 {
        0
    } else {
        (delta + 500) / 1000
    }
}
