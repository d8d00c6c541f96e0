//! Cell-level parsing shared by every CSV reader (SPEC §2): dates in their
//! three forms, exact decimals, booleans, e-mail addresses, and a header map
//! that matches column names case-insensitively.

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;

/// Usage values are kept at this scale (SPEC §2, §6 `Decimal(38,10)`).
pub const USAGE_SCALE: u32 = 10;

/// A usage value must be smaller than 10^18 in magnitude (SPEC §2); at the
/// usage scale that is 10^28.
pub const USAGE_LIMIT_SCALED: i128 = 10i128.pow(18 + USAGE_SCALE);

/// The most rows any sum of faktura adds up (SPEC §2: "up to 10^10 rows").
pub const MAX_ROWS_SUMMED: i128 = 10_000_000_000;

// The bound makes overflow impossible: 10^10 values under 10^28 sum to
// under 10^38, within an i128 (and within Decimal(38,10)).
const _: () = assert!(
    match (USAGE_LIMIT_SCALED - 1).checked_mul(MAX_ROWS_SUMMED) {
        Some(sum) => sum < 10i128.pow(38),
        None => false,
    }
);

/// A usage value: a decimal scaled to the usage scale, `None` unless it is
/// one and its magnitude is below 10^18 (SPEC §2 `bad_number`).
pub fn parse_usage_value(s: &str) -> Option<i128> {
    plain_usage_value(s.as_bytes())
        .or_else(|| parse_scaled(s, USAGE_SCALE))
        .filter(|v| v.abs() < USAGE_LIMIT_SCALED)
}

/// The common form of a usage value, read without allocating: an optional
/// sign, at most 18 integer digits, and at most [`USAGE_SCALE`] fraction
/// digits after a point (so nothing to round). `None` for anything else,
/// which [`parse_scaled`] then reads.
fn plain_usage_value(bytes: &[u8]) -> Option<i128> {
    let (negative, rest) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let (integer, fraction) = match rest.iter().position(|b| *b == b'.') {
        Some(point) => (&rest[..point], &rest[point + 1..]),
        None => (rest, &[][..]),
    };
    if integer.len() > 18
        || fraction.len() > USAGE_SCALE as usize
        || integer.len() + fraction.len() == 0
    {
        return None;
    }
    let mut value: u64 = 0;
    for &b in integer.iter().chain(fraction) {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(b - b'0');
        if value >= 10u64.pow(18) {
            // More than 18 digits with the fraction: i128 from here on.
            return None;
        }
    }
    let scaled = i128::from(value) * 10i128.pow(USAGE_SCALE - fraction.len() as u32);
    Some(if negative { -scaled } else { scaled })
}

/// An exact sum of usage values (a count of 10^-10), such as a day's
/// accepted cost: never rounded, never wrapped. Written and read as plain
/// decimal text (`12.5`, `-3`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsageSum(pub i128);

impl UsageSum {
    pub fn checked_add(self, other: UsageSum) -> Option<UsageSum> {
        self.0.checked_add(other.0).map(UsageSum)
    }
}

impl std::fmt::Display for UsageSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = 10u128.pow(USAGE_SCALE);
        let magnitude = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        let (whole, fraction) = (magnitude / unit, magnitude % unit);
        if fraction == 0 {
            return write!(f, "{sign}{whole}");
        }
        let digits = format!("{fraction:0width$}", width = USAGE_SCALE as usize);
        write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl std::str::FromStr for UsageSum {
    type Err = String;
    fn from_str(s: &str) -> Result<UsageSum, String> {
        parse_scaled(s, USAGE_SCALE)
            .map(UsageSum)
            .ok_or_else(|| format!("{s:?} is not an exact decimal"))
    }
}

impl serde::Serialize for UsageSum {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for UsageSum {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<UsageSum, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `YYYY-MM-DD`, the only date form of reference files.
pub fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// A usage file's date: `YYYY-MM-DD`, `MM/DD/YYYY` (also without leading
/// zeros, `9/2/2023`, as older EA downloads write it), or an RFC 3339
/// timestamp at midnight whose date is taken as written, whatever the offset.
pub fn parse_usage_date(s: &str) -> Option<NaiveDate> {
    if let Some(date) = parse_iso_date(s) {
        return Some(date);
    }
    if s.contains('/') {
        return parse_us_date(s);
    }
    // RFC 3339: the local (written) date and time, whatever the offset.
    let written = chrono::DateTime::parse_from_rfc3339(s).ok()?.naive_local();
    (written.time() == chrono::NaiveTime::MIN).then(|| written.date())
}

/// `M/D/YYYY`: month and day of one or two digits, a four-digit year.
fn parse_us_date(s: &str) -> Option<NaiveDate> {
    let mut parts = s.split('/');
    let (month, day, year) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |p: &str, lengths: std::ops::RangeInclusive<usize>| -> Option<u32> {
        let plain = lengths.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
        plain.then(|| p.parse().ok())?
    };
    if parts.next().is_some() {
        return None;
    }
    let (month, day, year) = (
        digits(month, 1..=2)?,
        digits(day, 1..=2)?,
        digits(year, 4..=4)?,
    );
    NaiveDate::from_ymd_opt(year as i32, month, day)
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

/// A scaled integer as a `Decimal`, if it fits rust_decimal's 96 bits,
/// exactly: trailing fraction zeros are dropped first when the value would
/// not fit at its full scale (a large sum of whole amounts).
pub fn scaled_to_decimal(value: i128, scale: u32) -> Option<Decimal> {
    let (mut value, mut scale) = (value, scale);
    loop {
        if let Ok(decimal) = Decimal::try_from_i128_with_scale(value, scale) {
            return Some(decimal);
        }
        if scale == 0 || value % 10 != 0 {
            return None;
        }
        value /= 10;
        scale -= 1;
    }
}

/// A decimal as an integer at `scale` (exact: callers pass values that have
/// no more than `scale` fraction digits).
pub fn decimal_to_scaled(value: Decimal, scale: u32) -> i128 {
    let mut v = value;
    v.rescale(scale);
    v.mantissa()
}

/// A money amount of a reference file or payment, exactly as written (no
/// rounding), below 10^18 in magnitude like a usage value (SPEC §2), so
/// that no sum of them can overflow.
pub fn parse_money(s: &str) -> Option<Decimal> {
    let amount = if s.contains(['e', 'E']) {
        Decimal::from_scientific(s).ok()
    } else {
        Decimal::from_str_exact(s).ok()
    }?;
    (amount.abs() < Decimal::from(10u64.pow(18))).then_some(amount)
}

/// `true/false`, `yes/no`, `1/0`, any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    let is = |word: &str| s.eq_ignore_ascii_case(word);
    if is("true") || is("yes") || s == "1" {
        Some(true)
    } else if is("false") || is("no") || s == "0" {
        Some(false)
    } else {
        None
    }
}

/// An e-mail address by SPEC §2: `local@domain` in ASCII, dot-atom form.
/// The local part is atoms (letters, digits and ``!#$%&'*+-=?^_`{|}~``)
/// joined by single dots; the domain is two or more labels (letters, digits,
/// hyphens; no hyphen first or last) joined by dots. Returns the address
/// lower-cased, the form faktura compares, stores and names files by: no
/// `/`, `\`, NUL or `..` can reach a path built from it.
///
/// This is the one address check of faktura: reference files, payments'
/// `paidBy` and the outbox all go through it.
pub fn parse_email(s: &str) -> Option<String> {
    let (local, domain) = s.split_once('@')?;
    let is_atom_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-=?^_`{|}~".contains(&b);
    let local_ok = local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.bytes().all(is_atom_char));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    (local_ok && domain_ok).then(|| s.to_ascii_lowercase())
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
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// The allocation-free reading of plain values agrees with the
        /// general one on every text, plain or not.
        #[test]
        fn usage_values_read_as_the_general_parser_reads_them(
            text in "[+-]?[0-9]{0,21}(\\.[0-9]{0,13})?([eE][+-]?[0-9]{1,2})?|[0-9.+eE-]{0,8}|\\PC{0,12}"
        ) {
            let general = parse_scaled(&text, USAGE_SCALE).filter(|v| v.abs() < USAGE_LIMIT_SCALED);
            prop_assert_eq!(parse_usage_value(&text), general);
        }

        /// Every day of four centuries reads back from the US forms, with
        /// and without leading zeros; any other text is a date only when
        /// chrono reads it as one in the same form.
        #[test]
        fn us_dates_with_or_without_leading_zeros(
            days in 0i64..146_097,
            padded in any::<bool>(),
            text in "[0-9/]{0,11}",
        ) {
            let date = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Days::new(days as u64);
            let written = if padded {
                date.format("%m/%d/%Y").to_string()
            } else {
                date.format("%-m/%-d/%Y").to_string()
            };
            prop_assert_eq!(parse_usage_date(&written), Some(date));
            if let Some(read) = parse_usage_date(&text) {
                let again = [read.format("%m/%d/%Y").to_string(), read.format("%-m/%-d/%Y").to_string(),
                    read.format("%m/%-d/%Y").to_string(), read.format("%-m/%d/%Y").to_string()];
                prop_assert!(again.contains(&text), "{text} read as {read}");
            }
        }
    }

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
    fn usage_values_of_magnitude_10_pow_18_or_more_are_refused() {
        let limit = 10i128.pow(28);
        assert_eq!(
            parse_usage_value("999999999999999999.9999999999"),
            Some(limit - 1)
        );
        assert_eq!(
            parse_usage_value("-999999999999999999.9999999999"),
            Some(1 - limit)
        );
        assert_eq!(parse_usage_value("1E18"), None);
        assert_eq!(parse_usage_value("-1000000000000000000"), None);
        assert_eq!(parse_usage_value("1E19"), None);
        // Rounded to 10 digits first: this rounds up to 10^18.
        assert_eq!(parse_usage_value("999999999999999999.99999999995"), None);
        // 10^10 values just under the bound sum without wrapping.
        let sum = (limit - 1)
            .checked_mul(MAX_ROWS_SUMMED)
            .expect("no overflow");
        assert!(sum < 10i128.pow(38));
    }

    #[test]
    fn usage_sums_print_and_read_back_exactly() {
        for (value, text) in [
            (0, "0"),
            (25_000_000_000, "2.5"),
            (-30_000_000_000, "-3"),
            (1, "0.0000000001"),
            (
                10i128.pow(38) - 1,
                "9999999999999999999999999999.9999999999",
            ),
        ] {
            assert_eq!(UsageSum(value).to_string(), text);
            assert_eq!(text.parse::<UsageSum>(), Ok(UsageSum(value)));
        }
        assert_eq!(UsageSum(i128::MAX).checked_add(UsageSum(1)), None);
    }

    #[test]
    fn large_whole_sums_convert_to_decimal_exactly() {
        // 9 x 10^18 at scale 10 does not fit 96 bits, but 9 x 10^18 does.
        let nine_e18 = 9 * 10i128.pow(28);
        assert_eq!(
            scaled_to_decimal(nine_e18, USAGE_SCALE),
            Some(Decimal::from(9_000_000_000_000_000_000u64))
        );
        assert_eq!(scaled_to_decimal(nine_e18 + 1, USAGE_SCALE), None);
    }

    #[test]
    fn usage_dates_in_three_forms() {
        let oct1 = NaiveDate::from_ymd_opt(2026, 10, 1);
        assert_eq!(parse_usage_date("2026-10-01"), oct1);
        assert_eq!(parse_usage_date("10/01/2026"), oct1);
        assert_eq!(parse_usage_date("10/1/2026"), oct1);
        let sep2 = NaiveDate::from_ymd_opt(2023, 9, 2);
        assert_eq!(parse_usage_date("9/2/2023"), sep2);
        assert_eq!(parse_usage_date("09/02/2023"), sep2);
        for bad in [
            "9/2/23",
            "13/1/2026",
            "2/30/2026",
            "9//2023",
            "9/2/2023/1",
            "009/2/2023",
            "a/2/2023",
            "9/2/+023",
        ] {
            assert_eq!(parse_usage_date(bad), None, "{bad}");
        }
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
    fn email_addresses_follow_the_dot_atom_rule_of_spec_2() {
        let valid = [
            "a@b.co",
            "first.last@sub.example.com",
            "o'brien+tag@example.no",
            "x!#$%&'*+-=?^_`{|}~@ex-ample.com",
            "1@2.3",
        ];
        for address in valid {
            assert!(parse_email(address).is_some(), "{address} is valid");
        }
        let invalid = [
            "zed.@example.com",
            ".zed@example.com",
            "a..b@example.com",
            "/tmp/x@evil.example",
            "../x@evil.example",
            "a/b@example.com",
            "a\\b@example.com",
            "a\0b@example.com",
            "a@b@example.com",
            "a@example",
            "a@-example.com",
            "a@example-.com",
            "a@exa_mple.com",
            "a@example..com",
            "a@.example.com",
            "a@example.com.",
            "\"quoted\"@example.com",
            "ann@exämple.com",
            "änn@example.com",
            "a(comment)@example.com",
            "a@[127.0.0.1]",
            "",
            "@",
        ];
        for address in invalid {
            assert_eq!(parse_email(address), None, "{address:?} is invalid");
        }
    }

    #[test]
    fn money_is_exact() {
        assert_eq!(parse_money("100.000").unwrap().to_string(), "100.000");
        assert_eq!(parse_money("1.5e2").unwrap(), Decimal::from(150));
        assert!(parse_money("1,5").is_none());
        assert!(parse_money("999999999999999999.99").is_some());
        assert!(parse_money("1E18").is_none());
        assert!(parse_money("79228162514264337593543950335").is_none());
    }
}
