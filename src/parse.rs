//! Cell-level parsing shared by every CSV reader (SPEC §2): dates in their
//! three forms, exact decimals, booleans, e-mail addresses, and a header map
//! that matches column names case-insensitively.

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;

/// Usage values are kept at this scale (SPEC §2, §6 `Decimal(38,10)`).
pub const USAGE_SCALE: u32 = 10;

/// `YYYY-MM-DD`, the only date form of reference files.
pub fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// A usage file's date: `YYYY-MM-DD`, `MM/DD/YYYY`, or an RFC 3339 timestamp
/// at midnight whose date is taken as written, whatever the offset.
pub fn parse_usage_date(s: &str) -> Option<NaiveDate> {
    if let Some(date) = parse_iso_date(s) {
        return Some(date);
    }
    if s.len() == 10 && s.as_bytes()[2] == b'/' {
        return NaiveDate::parse_from_str(s, "%m/%d/%Y").ok();
    }
    // RFC 3339: the local (written) date and time, whatever the offset.
    let written = chrono::DateTime::parse_from_rfc3339(s).ok()?.naive_local();
    (written.time() == chrono::NaiveTime::MIN).then(|| written.date())
}

/// Parses a decimal (`.` separator, optional sign, optional exponent) to an
/// integer scaled by 10^`scale`, rounding extra digits half-to-even.
/// `None` for anything else, or a value beyond 38 digits.
pub fn parse_scaled(s: &str, scale: u32) -> Option<i128> {
    let bytes = s.as_bytes();
    let (negative, rest) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let (mantissa, exponent) = match rest.iter().position(|b| *b == b'e' || *b == b'E') {
        Some(i) => (&rest[..i], parse_exponent(&rest[i + 1..])?),
        None => (rest, 0),
    };
    let mut digits: Vec<u8> = Vec::with_capacity(mantissa.len());
    let mut fraction_digits: i64 = 0;
    let mut seen_point = false;
    for &b in mantissa {
        match b {
            b'0'..=b'9' => {
                digits.push(b - b'0');
                if seen_point {
                    fraction_digits += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => return None,
        }
    }
    if digits.is_empty() {
        return None;
    }
    // value = digits * 10^(exponent - fraction_digits); we want value * 10^scale.
    let shift = exponent - fraction_digits + scale as i64;
    let magnitude = shift_digits(&digits, shift)?;
    Some(if negative { -magnitude } else { magnitude })
}

fn parse_exponent(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned.is_empty() || unsigned.len() > 4 || !unsigned.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `digits * 10^shift` as an integer, rounding half-to-even when shift < 0.
fn shift_digits(digits: &[u8], shift: i64) -> Option<i128> {
    let (kept, dropped): (&[u8], &[u8]) = if shift >= 0 {
        (digits, &[])
    } else {
        let cut = digits.len().saturating_sub((-shift) as usize);
        let dropped_len = (-shift) as usize;
        if dropped_len > digits.len() {
            // Every digit is dropped, and the first dropped one is an implied 0.
            return Some(0);
        }
        (&digits[..cut], &digits[cut..])
    };
    let mut value: i128 = 0;
    for &d in kept {
        value = value.checked_mul(10)?.checked_add(d as i128)?;
    }
    if shift > 0 {
        value = value.checked_mul(10i128.checked_pow(u32::try_from(shift).ok()?)?)?;
    }
    if let Some((&first, rest)) = dropped.split_first() {
        let round_up = match first {
            0..=4 => false,
            6..=9 => true,
            _ => rest.iter().any(|d| *d != 0) || value % 2 == 1,
        };
        if round_up {
            value += 1;
        }
    }
    const MAX_38_DIGITS: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;
    (value <= MAX_38_DIGITS).then_some(value)
}

/// A scaled integer as a `Decimal`, if it fits rust_decimal's 96 bits.
pub fn scaled_to_decimal(value: i128, scale: u32) -> Option<Decimal> {
    Decimal::try_from_i128_with_scale(value, scale).ok()
}

/// A decimal as an integer at `scale` (exact: callers pass values that have
/// no more than `scale` fraction digits).
pub fn decimal_to_scaled(value: Decimal, scale: u32) -> i128 {
    let mut v = value;
    v.rescale(scale);
    v.mantissa()
}

/// A money amount of a reference file, exactly as written (no rounding).
pub fn parse_money(s: &str) -> Option<Decimal> {
    if s.contains(['e', 'E']) {
        Decimal::from_scientific(s).ok()
    } else {
        Decimal::from_str_exact(s).ok()
    }
}

/// `true/false`, `yes/no`, `1/0`, any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// `local@domain` with a dotted domain and no spaces or control characters.
/// Returns the address lower-cased, the form faktura compares and stores.
pub fn parse_email(s: &str) -> Option<String> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = s.rsplit_once('@')?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    let local_ok = !local.is_empty() && !local.contains(['<', '>', '"', ',', ';']);
    (domain_ok && local_ok).then(|| s.to_lowercase())
}

/// Column positions by lower-cased name: the header of any faktura CSV.
#[derive(Clone, Debug)]
pub struct Header {
    positions: HashMap<String, usize>,
    pub len: usize,
}

impl Header {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Header {
        let mut positions = HashMap::new();
        let mut len = 0;
        for (i, name) in names.into_iter().enumerate() {
            let name = name.trim().trim_start_matches('\u{feff}').to_lowercase();
            positions.entry(name).or_insert(i);
            len = i + 1;
        }
        Header { positions, len }
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.positions.get(&name.to_lowercase()).copied()
    }

    /// The listed names the header lacks, in the order given.
    pub fn missing<'a>(&self, required: &[&'a str]) -> Vec<&'a str> {
        required
            .iter()
            .filter(|name| self.position(name).is_none())
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_decimals_round_half_to_even_at_scale_10() {
        let cases: &[(&str, Option<i128>)] = &[
            ("1", Some(10_000_000_000)),
            ("-2.5", Some(-25_000_000_000)),
            ("+0.1", Some(1_000_000_000)),
            ("1.4000000000000001", Some(14_000_000_000)),
            ("0.00000000005", Some(0)),
            ("0.00000000015", Some(2)),
            ("0.000000000250001", Some(3)),
            ("1.5E-05", Some(150_000)),
            ("1e3", Some(10_000_000_000_000)),
            (".5", Some(5_000_000_000)),
            ("5.", Some(50_000_000_000)),
            ("1e-40", Some(0)),
            ("1,5", None),
            ("abc", None),
            ("", None),
            ("-", None),
            ("1.2.3", None),
            ("1e", None),
            ("NaN", None),
            ("1e99", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_scaled(text, USAGE_SCALE), *expected, "{text}");
        }
    }

    #[test]
    fn usage_dates_in_three_forms() {
        let oct1 = NaiveDate::from_ymd_opt(2026, 10, 1);
        assert_eq!(parse_usage_date("2026-10-01"), oct1);
        assert_eq!(parse_usage_date("10/01/2026"), oct1);
        assert_eq!(parse_usage_date("2026-10-01T00:00:00Z"), oct1);
        assert_eq!(parse_usage_date("2026-10-01T00:00:00+02:00"), oct1);
        assert_eq!(parse_usage_date("2026-10-01T00:00:00.000-05:00"), oct1);
        assert_eq!(parse_usage_date("2026-10-01T13:00:00Z"), None);
        assert_eq!(parse_usage_date("2026-13-01"), None);
        assert_eq!(parse_usage_date("01.10.2026"), None);
    }

    #[test]
    fn booleans_and_emails() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("NO"), Some(false));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("y"), None);
        assert_eq!(
            parse_email("Ann@Example.COM").as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(parse_email("ann@localhost"), None);
        assert_eq!(parse_email("ann smith@example.com"), None);
        assert_eq!(parse_email("@example.com"), None);
    }

    #[test]
    fn money_is_exact() {
        assert_eq!(parse_money("100.000").unwrap().to_string(), "100.000");
        assert_eq!(parse_money("1.5e2").unwrap(), Decimal::from(150));
        assert!(parse_money("1,5").is_none());
    }
}
