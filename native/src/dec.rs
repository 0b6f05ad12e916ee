//! Exact decimals for recording seconds: `coefficient * 10^exponent`, as Python's
//! `Decimal` holds them. Anything that would overflow returns None, and the
//! caller hands the call to the Python core (which has arbitrary precision).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dec {
    pub coef: i128, // never negative here: the contract's seconds are >= 0
    pub exp: i32,
}

const POW10: [i128; 39] = {
    let mut table = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

pub fn pow10(n: u32) -> Option<i128> {
    POW10.get(n as usize).copied()
}

impl Dec {
    pub fn int(value: i64) -> Dec {
        Dec { coef: value as i128, exp: 0 }
    }

    /// `Decimal(repr(x))` for a finite float x >= 0 (``-0.0`` counts as ``0.0``).
    pub fn from_float_repr(x: f64) -> Option<Dec> {
        let x = if x == 0.0 { 0.0 } else { x };
        if !x.is_finite() || x < 0.0 {
            return None;
        }
        // Shortest round-trip digits (what Python's repr picks too), from ryu's text.
        let mut buffer = ryu::Buffer::new();
        let text = buffer.format_finite(x);
        let (mantissa, exp_part) = match text.find('e') {
            Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
            None => (mantissa, ""),
        };
        let all: String = format!("{int_part}{frac_part}");
        let digits = all.trim_start_matches('0');
        let digits = digits.trim_end_matches('0');
        if digits.is_empty() {
            return Some(Dec { coef: 0, exp: -1 }); // repr "0.0"
        }
        // Position of the first significant digit: value = d.ddd * 10^sci.
        let lead_zeros = all.len() - all.trim_start_matches('0').len();
        let sci = int_part.len() as i32 - 1 - lead_zeros as i32 + exp_part;
        let n = digits.len() as i32;
        if n > 17 {
            return None;
        }
        let coef: i128 = digits.parse().ok()?;
        if (-4..16).contains(&sci) && sci >= n - 1 {
            // repr writes an integral value as "1234.0": Decimal keeps that zero.
            let scale = pow10((sci - n + 2) as u32)?;
            return Some(Dec { coef: coef.checked_mul(scale)?, exp: -1 });
        }
        Some(Dec { coef, exp: sci - (n - 1) })
    }

    /// Parse a Python `str(Decimal)` (plain or scientific); None for anything else.
    pub fn parse(text: &str) -> Option<Dec> {
        let (mantissa, exp) = match text.find(['E', 'e']) {
            Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
            None => (mantissa, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = format!("{int_part}{frac_part}");
        let trimmed = digits.trim_start_matches('0');
        if trimmed.len() > 36 {
            return None;
        }
        let coef: i128 = if trimmed.is_empty() { 0 } else { trimmed.parse().ok()? };
        Some(Dec { coef, exp: exp.checked_sub(frac_part.len() as i32)? })
    }

    fn rescale(self, exp: i32) -> Option<i128> {
        // Only to a smaller or equal exponent (exact).
        let shift = (self.exp - exp) as u32;
        self.coef.checked_mul(pow10(shift)?)
    }

    pub fn checked_add(self, other: Dec) -> Option<Dec> {
        let exp = self.exp.min(other.exp);
        Some(Dec { coef: self.rescale(exp)?.checked_add(other.rescale(exp)?)?, exp })
    }

    /// The value rounded half-up to whole milliseconds, as an integer count of ms.
    pub fn round_ms(self) -> Option<i128> {
        if self.exp >= -3 {
            return self.coef.checked_mul(pow10((self.exp + 3) as u32)?);
        }
        let shift = (-3 - self.exp) as u32;
        if shift > 38 {
            return if self.coef == 0 { Some(0) } else { None };
        }
        let unit = pow10(shift)?;
        Some((self.coef + unit / 2) / unit)
    }

    /// Python's `str(Decimal)` of this value: the same digits and exponent.
    pub fn to_python_str(self) -> String {
        let digits = self.coef.to_string();
        let n = digits.len() as i32;
        let adjusted = self.exp + n - 1;
        if self.exp <= 0 && adjusted >= -6 {
            if self.exp == 0 {
                return digits;
            }
            let point = n + self.exp; // digits before the decimal point
            if point > 0 {
                let (a, b) = digits.split_at(point as usize);
                return format!("{a}.{b}");
            }
            return format!("0.{}{}", "0".repeat((-point) as usize), digits);
        }
        let (head, tail) = digits.split_at(1);
        let sign = if adjusted >= 0 { "+" } else { "-" };
        if tail.is_empty() {
            format!("{head}E{sign}{}", adjusted.abs())
        } else {
            format!("{head}.{tail}E{sign}{}", adjusted.abs())
        }
    }
}

/// Milliseconds as seconds with exactly three decimals ("12.500").
pub fn ms_text(ms: i128) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}
