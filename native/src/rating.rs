//! Rating against the tariff table (`streams/domain/rating.py`), in exact integers.
//!
//! The table comes from the Python side, already loaded and checked by
//! `load_tariffs`; money arrives as the CSV's decimal text.

use std::collections::HashMap;

use crate::dec::pow10;

pub struct Money {
    pub coef: i128,
    pub scale: u32,
}

impl Money {
    /// A plain non-negative decimal ("1.50", "0", "12"); the tariff loader allows nothing else.
    pub fn parse(text: &str) -> Option<Money> {
        let (int_part, frac) = match text.find('.') {
            Some(at) => (&text[..at], &text[at + 1..]),
            None => (text, ""),
        };
        if int_part.is_empty() || !int_part.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = format!("{int_part}{frac}");
        let trimmed = digits.trim_start_matches('0');
        if trimmed.len() > 30 || frac.len() > 30 {
            return None;
        }
        let coef = if trimmed.is_empty() { 0 } else { trimmed.parse().ok()? };
        Some(Money { coef, scale: frac.len() as u32 })
    }
}

pub struct TariffRow {
    pub region: String,
    pub rate_text: String,
    pub rate: Money,
    pub fee: Money,
    pub increment_s: i64,
    pub min_s: i64,
    pub currency: String,
    pub valid_from_us: i64,
}

struct Bucket {
    valid_from: Vec<i64>, // ascending, parallel to rows
    rows: Vec<usize>,
}

#[derive(Default)]
struct ByPrefix {
    buckets: HashMap<String, Bucket>,
    lengths: Vec<usize>, // longest first
}

pub struct TariffTable {
    rows: Vec<TariffRow>,
    index: HashMap<String, HashMap<String, ByPrefix>>, // line -> direction -> prefixes
}

impl TariffTable {
    /// Rows as (line, direction, prefix, row); sorted stably by valid_from as Python does.
    pub fn new(entries: Vec<(String, String, String, TariffRow)>) -> TariffTable {
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| entries[i].3.valid_from_us);
        let mut keys = Vec::with_capacity(entries.len());
        let mut rows = Vec::with_capacity(entries.len());
        for (line, direction, prefix, row) in entries {
            keys.push((line, direction, prefix));
            rows.push(row);
        }
        let mut index: HashMap<String, HashMap<String, ByPrefix>> = HashMap::new();
        for i in order {
            let (line, direction, prefix) = &keys[i];
            let by_prefix = index.entry(line.clone()).or_default().entry(direction.clone()).or_default();
            let bucket = by_prefix.buckets.entry(prefix.clone())
                .or_insert_with(|| Bucket { valid_from: Vec::new(), rows: Vec::new() });
            bucket.valid_from.push(rows[i].valid_from_us);
            bucket.rows.push(i);
        }
        for by_prefix in index.values_mut().flat_map(|by_direction| by_direction.values_mut()) {
            let mut lengths: Vec<usize> = by_prefix.buckets.keys().map(|p| p.len()).collect();
            lengths.sort_unstable_by(|a, b| b.cmp(a));
            lengths.dedup();
            by_prefix.lengths = lengths;
        }
        TariffTable { rows, index }
    }

    pub fn lookup(&self, line: &str, direction: &str, digits: &str, at_us: i64) -> Option<&TariffRow> {
        if digits.is_empty() {
            return None;
        }
        let by_prefix = self.index.get(line)?.get(direction)?;
        for &length in &by_prefix.lengths {
            if length > digits.len() {
                continue;
            }
            let Some(bucket) = by_prefix.buckets.get(&digits[..length]) else { continue };
            let position = bucket.valid_from.partition_point(|&v| v <= at_us);
            if position > 0 {
                return Some(&self.rows[bucket.rows[position - 1]]);
            }
        }
        None
    }
}

pub struct Rating<'a> {
    pub region: Option<&'a str>,
    pub rate_text: Option<&'a str>,
    pub billed_s: i64,
    pub cost_cents: i128,
    pub currency: Option<&'a str>,
    pub unrated: bool,
}

const NOT_RATED: Rating<'static> = Rating {
    region: None, rate_text: None, billed_s: 0, cost_cents: 0, currency: None, unrated: false,
};

pub fn not_rated() -> Rating<'static> {
    NOT_RATED
}

/// `digits_only`: the ASCII digits of a number.
fn digits_only(number: &str) -> String {
    number.bytes().filter(|b| b.is_ascii_digit()).map(|b| b as char).collect()
}

/// `rated_number`: `to` outbound, `line_number` otherwise; a user ref rates as no digits.
fn rated_number(direction: &str, to: &str, line_number: Option<&str>) -> String {
    let number = if direction == "outbound" { Some(to) } else { line_number };
    match number {
        None => String::new(),
        Some(n) if n.starts_with("user:") => String::new(),
        Some(n) => digits_only(n),
    }
}

fn billed_seconds(talk_ms: i128, row: &TariffRow) -> i64 {
    let whole = (talk_ms + 999) / 1000; // ceil of the seconds
    if whole <= 0 {
        return 0;
    }
    let increment = row.increment_s as i128;
    let increments = (whole + increment - 1) / increment;
    (increments * increment).max(row.min_s as i128) as i64
}

/// `connect_fee + rate_per_min * billed / 60`, half-up to cents, as a count of cents.
fn cost_cents(billed_s: i64, row: &TariffRow) -> Option<i128> {
    if billed_s == 0 {
        return Some(0);
    }
    let (rate, fee) = (&row.rate, &row.fee);
    // total * 100 = (rc * billed * 100 * 10^fs + fc * 100 * 60 * 10^rs) / (60 * 10^(rs + fs))
    let numerator = rate.coef.checked_mul(billed_s as i128)?.checked_mul(100)?
        .checked_mul(pow10(fee.scale)?)?
        .checked_add(fee.coef.checked_mul(6000)?.checked_mul(pow10(rate.scale)?)?)?;
    let denominator = pow10(rate.scale + fee.scale)?.checked_mul(60)?;
    Some((numerator.checked_mul(2)?.checked_add(denominator)?) / denominator.checked_mul(2)?)
}

/// `rate_call`; None when the arithmetic leaves i128 (the Python core then rates the call).
pub fn rate_call<'a>(table: &'a TariffTable, line: &str, direction: &str, to: &str,
                     line_number: Option<&str>, started_at_us: i64,
                     talk_ms: Option<i128>) -> Option<Rating<'a>> {
    if line == "internal" || direction == "internal" {
        return Some(Rating { region: Some("internal"), ..NOT_RATED });
    }
    let row = table.lookup(line, direction, &rated_number(direction, to, line_number), started_at_us);
    let talked = matches!(talk_ms, Some(ms) if ms > 0);
    let Some(row) = row else {
        return Some(Rating { unrated: talked, ..NOT_RATED });
    };
    let billed = if talked { billed_seconds(talk_ms.unwrap_or(0), row) } else { 0 };
    Some(Rating {
        region: Some(&row.region),
        rate_text: Some(&row.rate_text),
        billed_s: billed,
        cost_cents: cost_cents(billed, row)?,
        currency: Some(&row.currency),
        unrated: false,
    })
}

pub fn cents_text(cents: i128) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}
