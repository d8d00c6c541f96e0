//! Codes of the outside world: ISO 3166 countries, ISO 4217 currencies
//! (with their minor units), Peppol participant ids.

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};

/// ISO 3166-1 alpha-2 country codes (the 249 officially assigned).
#[rustfmt::skip]
const ISO_3166: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// A country code of ISO 3166-1 alpha-2, in any case; upper-cased.
pub fn country_code(s: &str) -> Option<String> {
    let code = s.trim().to_ascii_uppercase();
    ISO_3166.contains(&code.as_str()).then_some(code)
}

/// A Peppol participant id `scheme:identifier` (e.g. `0192:923456789`):
/// a scheme of letters and digits, an identifier without spaces.
pub fn peppol_id(s: &str) -> Option<String> {
    let (scheme, identifier) = s.trim().split_once(':')?;
    let scheme_ok = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric());
    let identifier_ok = !identifier.is_empty()
        && identifier
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control());
    (scheme_ok && identifier_ok).then(|| format!("{scheme}:{identifier}"))
}

/// Whether a Peppol participant id passes the check the official rules
/// make of its scheme (PEPPOL-COMMON-R041, R049, R042): a Norwegian
/// organisation number (`0192`, 9 digits, mod-11), a Swedish one (`0007`,
/// 10 digits, Luhn), a Danish CVR (`0184`, 8 digits); other schemes are
/// not checked.
pub fn peppol_id_passes_checks(id: &str) -> bool {
    let Some((scheme, identifier)) = id.split_once(':') else {
        return false;
    };
    match scheme {
        "0192" => norwegian_org_number_valid(identifier),
        "0007" => swedish_org_number_valid(identifier),
        "0184" => all_digits(identifier, 8),
        _ => true,
    }
}

/// The Peppol participant id a VAT number stands for (SPEC §6.1): the
/// number upper-cased without spaces, dots and hyphens, matched whole
/// against `NO(\d{9})(MVA)?` (scheme 0192), `SE(\d{10})01` (0007) or
/// `DK(\d{8})` (0184); `None` when it matches none or its check digit fails.
pub fn peppol_id_of_vat_id(vat_id: &str) -> Option<String> {
    let vat: String = vat_id
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '.' | '-'))
        .collect::<String>()
        .to_ascii_uppercase();
    let id = if let Some(rest) = vat.strip_prefix("NO") {
        let digits = rest.strip_suffix("MVA").unwrap_or(rest);
        all_digits(digits, 9).then(|| format!("0192:{digits}"))
    } else if let Some(rest) = vat.strip_prefix("SE") {
        let digits = rest.strip_suffix("01")?;
        all_digits(digits, 10).then(|| format!("0007:{digits}"))
    } else if let Some(rest) = vat.strip_prefix("DK") {
        all_digits(rest, 8).then(|| format!("0184:{rest}"))
    } else {
        None
    }?;
    peppol_id_passes_checks(&id).then_some(id)
}

fn all_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// A Norwegian organisation number: 9 digits, the last a mod-11 check
/// digit over weights 3 2 7 6 5 4 3 2 (as PEPPOL-COMMON-R041 checks it).
pub fn norwegian_org_number_valid(s: &str) -> bool {
    if !all_digits(s, 9) || s.bytes().all(|b| b == b'0') {
        return false;
    }
    let digits: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
    let sum: u32 = digits[..8]
        .iter()
        .zip([3, 2, 7, 6, 5, 4, 3, 2])
        .map(|(d, w)| d * w)
        .sum();
    (11 - sum % 11) % 11 == digits[8]
}

/// A Swedish organisation number: 10 digits, the last a Luhn check digit
/// over the first nine (as PEPPOL-COMMON-R049 checks it).
pub fn swedish_org_number_valid(s: &str) -> bool {
    if !all_digits(s, 10) {
        return false;
    }
    let digits: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
    let sum: u32 = digits[..9]
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                (d * 2) / 10 + (d * 2) % 10
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10 == digits[9]
}

/// An ISO 4217 currency with its minor unit (the number of decimals an
/// amount is rounded to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    pub code: [u8; 3],
    pub minor_unit: u32,
}

/// ISO 4217 active codes and their minor units. Codes not listed are unknown
/// (a configuration error), so a typo such as `NKO` is caught.
#[rustfmt::skip]
const ISO_4217: &[(&str, u32)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2),
    ("AUD", 2), ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2),
    ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2),
    ("BTN", 2), ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2),
    ("CLP", 0), ("CNY", 2), ("COP", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2), ("CZK", 2),
    ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2),
    ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2),
    ("GMD", 2), ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2),
    ("HUF", 2), ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0),
    ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0),
    ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2),
    ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2),
    ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2),
    ("MWK", 2), ("MXN", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2),
    ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2),
    ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2),
    ("RUB", 2), ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2),
    ("SGD", 2), ("SHP", 2), ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2),
    ("SYP", 2), ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2),
    ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0), ("USD", 2),
    ("UYU", 2), ("UZS", 2), ("VES", 2), ("VND", 0), ("VUV", 0), ("WST", 2), ("XAF", 0),
    ("XCD", 2), ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2), ("ZMW", 2), ("ZWG", 2),
];

impl Currency {
    /// Looks a code up in ISO 4217, case-insensitively.
    pub fn parse(code: &str) -> Option<Currency> {
        let &[a, b, c] = code.as_bytes() else {
            return None;
        };
        let upper = [a, b, c].map(|x| x.to_ascii_uppercase());
        let minor = ISO_4217.iter().find(|(c, _)| c.as_bytes() == upper)?.1;
        Some(Currency {
            code: upper,
            minor_unit: minor,
        })
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("ISO codes are ASCII")
    }

    /// Rounds half away from zero to the minor unit (SPEC §4 rule 1).
    pub fn round(&self, value: Decimal) -> Decimal {
        value.round_dp_with_strategy(self.minor_unit, RoundingStrategy::MidpointAwayFromZero)
    }

    /// Whether `value` has no more digits than the minor unit, judged by value
    /// (`100.000` USD is fine).
    pub fn fits_minor_unit(&self, value: Decimal) -> bool {
        value.normalize().scale() <= self.minor_unit
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peppol_ids_derived_from_vat_numbers_by_spec_6_1() {
        let id = |vat: &str| peppol_id_of_vat_id(vat);
        assert_eq!(id("NO 123 456 785 MVA").as_deref(), Some("0192:123456785"));
        assert_eq!(id("no123456785").as_deref(), Some("0192:123456785"));
        assert_eq!(id("NO 123.456.785-MVA").as_deref(), Some("0192:123456785"));
        // A wrong check digit is no address.
        assert_eq!(id("NO123456786MVA"), None);
        assert_eq!(id("SE556677889901").as_deref(), Some("0007:5566778899"));
        assert_eq!(id("SE556677889801"), None);
        assert_eq!(id("SE5566778899"), None);
        assert_eq!(id("DK12345678").as_deref(), Some("0184:12345678"));
        assert_eq!(id("DK1234567"), None);
        assert_eq!(id("NL123456789B01"), None);
        assert_eq!(id("GB123456789"), None);
        assert_eq!(id("NO123456785MVAX"), None);
        assert!(peppol_id_passes_checks("0192:987654325"));
        assert!(!peppol_id_passes_checks("0192:987654324"));
        assert!(peppol_id_passes_checks("0007:5560123456"));
        assert!(!peppol_id_passes_checks("0007:5560123457"));
        assert!(peppol_id_passes_checks("0106:12345678"));
        assert!(!peppol_id_passes_checks("0192:000000000"));
    }

    #[test]
    fn currency_rounding_and_minor_units() {
        let usd = Currency::parse("usd").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let dec = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(usd.round(dec("1.005")), dec("1.01"));
        assert_eq!(usd.round(dec("-1.005")), dec("-1.01"));
        assert_eq!(usd.round(dec("1.0049999")), dec("1.00"));
        assert_eq!(jpy.round(dec("12.5")), dec("13"));
        assert!(usd.fits_minor_unit(dec("100.000")));
        assert!(!usd.fits_minor_unit(dec("100.001")));
        assert!(Currency::parse("NKO").is_none());
    }
}
