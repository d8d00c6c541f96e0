//! `faktura gen`: a deterministic synthetic data directory of any size —
//! reference files that validate and daily usage files in Azure's
//! usage-details shape, with GUIDs, long resource ids, quoted meter names
//! containing commas, quotes and non-ASCII letters, refunds, Marketplace
//! and reservation purchases. The same seed gives the same bytes.
//! (Named `synth` because edition 2024 reserves `gen`.)

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::store::{self, FileError};

/// Options of `faktura gen`.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub out_dir: PathBuf,
    pub days: u32,
    pub rows_per_day: u64,
    pub profiles: u32,
    pub seed: u64,
    pub start: NaiveDate,
}

/// SplitMix64: tiny, fast, and stable across versions (unlike a crate's RNG).
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    fn guid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

const CURRENCIES: [(&str, &str); 4] = [
    ("USD", "en-US"),
    ("EUR", "nl-NL"),
    ("NOK", "nb-NO"),
    ("SEK", "sv-SE"),
];

/// A meter of the catalogue: category, name (CSV-quoted when needed), unit,
/// unit price at scale 6, publisher, pricing model, charge type.
struct Meter {
    id: String,
    category: &'static str,
    name: String,
    unit: &'static str,
    price_micros: u64,
    publisher: &'static str,
    pricing: &'static str,
    charge: &'static str,
}

const METER_SHAPES: &[(&str, &str, &str, u64, &str, &str, &str)] = &[
    (
        "Virtual Machines",
        "D2s v3, Nordic – Øst",
        "1 Hour",
        96_000,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Virtual Machines",
        "E4as v5 \"Spot\", Sverige Central",
        "1 Hour",
        41_300,
        "Azure",
        "Spot",
        "Usage",
    ),
    (
        "Virtual Machines",
        "B2ms Linux, Västeurope",
        "1 Hour",
        83_200,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Storage",
        "Hot LRS Data Stored, Østlandet",
        "1 GB/Month",
        18_400,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Storage",
        "Premium SSD Managed Disks – P10",
        "1/Month",
        19_712_000,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Storage",
        "Read Operations (Hot), Noord-Holland",
        "10K",
        4_400,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Bandwidth",
        "Standard Data Transfer Out, Zone 1",
        "1 GB",
        87_000,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Azure Cosmos DB",
        "100 RU/s, Malmö",
        "1/Hour",
        8_000,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "SQL Database",
        "vCore – General Purpose, Gen5",
        "1 Hour",
        252_000,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Azure Monitor",
        "Log Analytics – Data Ingestion",
        "1 GB",
        2_760_000,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Azure App Service",
        "P1v3 App Service Plan, Linux",
        "1 Hour",
        169_000,
        "Azure",
        "SavingsPlan",
        "Usage",
    ),
    (
        "Virtual Machines",
        "D4s v5 Reserved, 1 Year",
        "1 Hour",
        0,
        "Azure",
        "Reservation",
        "Usage",
    ),
    (
        "Virtual Machines",
        "D4s v5 Reservation, 1 Year",
        "1",
        1_261_440_000,
        "Azure",
        "Reservation",
        "Purchase",
    ),
    (
        "SaaS",
        "Contoso Analytics, Premium “Teams” Plan",
        "1 Month",
        49_000_000,
        "Marketplace",
        "OnDemand",
        "Purchase",
    ),
    (
        "Virtual Machines Licenses",
        "Fjällräven Linux, Enterprise",
        "1 Hour",
        120_000,
        "Marketplace",
        "OnDemand",
        "Usage",
    ),
];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn meters(rng: &mut Rng) -> Vec<Meter> {
    METER_SHAPES
        .iter()
        .map(
            |&(category, name, unit, price_micros, publisher, pricing, charge)| Meter {
                id: rng.guid(),
                category,
                name: csv_field(name),
                unit,
                price_micros,
                publisher,
                pricing,
                charge,
            },
        )
        .collect()
}

struct GenProfile {
    id: String,
    account: String,
    currency: &'static str,
    mosp: bool,
}

struct GenSubscription {
    id: String,
    profile: usize,
    resource_group: String,
    /// Indexes into the meter catalogue: the meters this subscription uses.
    meters: Vec<usize>,
}

/// Gives each subscription the handful of meters (3 to 10) its resources
/// use day after day, as in real exports: an invoice has a bounded number
/// of lines however many rows a month brings. Marketplace purchases only
/// on MOSP profiles, where they make `purchases` invoices.
fn choose_meters(
    subscriptions: &mut [GenSubscription],
    profiles: &[GenProfile],
    meters: &[Meter],
    rng: &mut Rng,
) {
    for sub in subscriptions {
        let mosp = profiles[sub.profile].mosp;
        let usable: Vec<usize> = (0..meters.len())
            .filter(|&m| {
                mosp || !(meters[m].charge == "Purchase" && meters[m].publisher == "Marketplace")
            })
            .collect();
        let count = (3 + rng.below(8) as usize).min(usable.len());
        let mut chosen = Vec::with_capacity(count);
        while chosen.len() < count {
            let m = usable[rng.below(usable.len() as u64) as usize];
            if !chosen.contains(&m) {
                chosen.push(m);
            }
        }
        chosen.sort_unstable();
        sub.meters = chosen;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot format generated data: {0}")]
    Format(#[from] std::fmt::Error),
}

type Result<T> = std::result::Result<T, SynthError>;

/// Writes the data directory; returns the number of usage rows written.
pub fn generate(opts: &GenOptions) -> Result<u64> {
    let dir = &opts.out_dir;
    let usage = dir.join("usage");
    std::fs::create_dir_all(&usage).map_err(store::failed("create", &usage))?;
    let mut rng = Rng::new(opts.seed, 0);
    let meters = meters(&mut rng);
    let (profiles, mut subscriptions) = write_reference(dir, opts, &mut rng)?;
    choose_meters(&mut subscriptions, &profiles, &meters, &mut rng);
    let written: u64 = (0..opts.days)
        .into_par_iter()
        .map(|day_index| write_day(dir, opts, day_index, &profiles, &subscriptions, &meters))
        .collect::<Result<Vec<u64>>>()?
        .into_iter()
        .sum();
    Ok(written)
}

fn write_reference(
    dir: &Path,
    opts: &GenOptions,
    rng: &mut Rng,
) -> Result<(Vec<GenProfile>, Vec<GenSubscription>)> {
    let mut accounts = String::from("billingAccountId,name,agreement,adminEmail\n");
    let mut profiles_csv = String::from(
        "billingProfileId,billingAccountId,name,currency,locale,createdDate,periodStartDay,emailInvoice,invoiceEmail,paymentTermsDays,address,country,vatId,vatCategory,peppolId\n",
    );
    let mut subs_csv = String::from(
        "subscriptionId,billingProfileId,name,offer,startDate,trialEndDate,monthlyCredit\n",
    );
    let mut roles = String::from("email,name,role,scope,scopeId\n");
    let mut recipients = String::from("billingProfileId,email\n");
    let mut credits = String::from("creditId,billingProfileId,amount,effectiveDate,expiryDate\n");
    let mut profiles = Vec::new();
    let mut subscriptions = Vec::new();
    let start = opts.start;
    let mut p = 0u32;
    let mut account_index = 0u32;
    while p < opts.profiles {
        let account = format!("acct-{:05}-{}", account_index, &rng.guid()[..8]);
        let mosp = account_index % 10 == 9;
        let per_account = if mosp { 1 } else { 1 + rng.below(3) as u32 };
        let agreement = if mosp {
            "MOSP"
        } else if account_index % 7 == 3 {
            "MPA"
        } else {
            "MCA"
        };
        let admin = format!("admin{account_index}@customer{account_index}.example");
        writeln!(
            accounts,
            "{account},Customer {account_index} Ørsted-Åberg,{agreement},{admin}"
        )?;
        writeln!(
            roles,
            "{admin},Admin {account_index},Owner,billingAccount,{account}"
        )?;
        for _ in 0..per_account.min(opts.profiles - p) {
            let (currency, locale) = CURRENCIES[(p % 4) as usize];
            let id = if mosp {
                rng.guid()
            } else {
                format!("prof-{p:06}")
            };
            let created = start - chrono::Days::new(400 - rng.below(380));
            let start_day = if p % 5 == 4 { 1 + rng.below(28) } else { 1 };
            let email = p % 6 != 5;
            writeln!(
                profiles_csv,
                "{id},{account},\"Profile {p}, Dept. Økonomi\",{currency},{locale},{created},{start_day},{email},,30,\"Gate {p}, 0150 Oslo\",{}",
                tax_columns(u64::from(p))
            )?;
            for (role, n) in [("Owner", 0), ("Reader", 1), ("InvoiceManager", 2)] {
                writeln!(
                    roles,
                    "user{p}.{n}@customer{account_index}.example,User {p}.{n},{role},billingProfile,{id}"
                )?;
            }
            if mosp {
                writeln!(
                    recipients,
                    "{id},finance{p}@customer{account_index}.example"
                )?;
            }
            if p % 8 == 2 {
                writeln!(
                    credits,
                    "credit-{p:06},{id},{}.00,{start},{}",
                    50 + rng.below(500),
                    start + chrono::Days::new(90)
                )?;
            }
            let sub_count = if mosp { 1 } else { 4 };
            for s in 0..sub_count {
                let sub_id = if mosp && s == 0 {
                    id.clone()
                } else {
                    rng.guid()
                };
                let sub_start = created;
                let (offer, trial_end, credit) = match (p + s) % 9 {
                    4 => (
                        "FreeTrial",
                        (start + chrono::Days::new(10)).to_string(),
                        String::new(),
                    ),
                    7 => ("MonthlyCredit", String::new(), "150.00".to_string()),
                    _ => ("PayAsYouGo", String::new(), String::new()),
                };
                writeln!(
                    subs_csv,
                    "{sub_id},{id},Subscription {p}-{s},{offer},{sub_start},{trial_end},{credit}"
                )?;
                subscriptions.push(GenSubscription {
                    id: sub_id,
                    profile: profiles.len(),
                    resource_group: format!(
                        "rg-{}-{}",
                        ["prod", "dev", "test", "shared"][s as usize % 4],
                        p
                    ),
                    meters: Vec::new(),
                });
            }
            profiles.push(GenProfile {
                id,
                account: account.clone(),
                currency,
                mosp,
            });
            p += 1;
        }
        account_index += 1;
    }
    for (name, text) in [
        ("accounts.csv", accounts),
        ("profiles.csv", profiles_csv),
        ("subscriptions.csv", subs_csv),
        ("roles.csv", roles),
        ("recipients.csv", recipients),
        ("credits.csv", credits),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(store::failed("write", &path))?;
    }
    Ok((profiles, subscriptions))
}

/// A profile's `country, vatId, vatCategory, peppolId`, cycling through the
/// VAT categories of SPEC §4.8 (issuer in Norway): a Norwegian customer (S),
/// Dutch and Swedish ones with VAT numbers (AE), and Norwegian Z and E and
/// a US O; each with a Peppol id whose check digits are valid.
fn tax_columns(p: u64) -> String {
    let no = norwegian_org_number(100_000 + p);
    match p % 6 {
        0 => format!("NO,NO{no}MVA,,0192:{no}"),
        1 => format!("NL,NL{:09}B01,,0106:{:08}", 100_000_000 + p, 10_000_000 + p),
        2 => {
            let se = swedish_org_number(556_000_000 + p);
            format!("SE,SE{se}01,,0007:{se}")
        }
        3 => format!("NO,,Z,0192:{no}"),
        4 => format!("NO,,E,0192:{no}"),
        _ => format!("US,,O,0060:{:09}", 100_000_000 + p),
    }
}

/// A 9-digit Norwegian organisation number with a valid mod-11 check digit,
/// from an 8-digit `base` (bases whose check digit would be 10 are skipped).
fn norwegian_org_number(base: u64) -> String {
    const WEIGHTS: [u64; 8] = [3, 2, 7, 6, 5, 4, 3, 2];
    let mut base = 80_000_000 + base % 10_000_000;
    loop {
        let digits: Vec<u64> = base
            .to_string()
            .bytes()
            .map(|b| (b - b'0') as u64)
            .collect();
        let sum: u64 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
        match 11 - sum % 11 {
            10 => base += 1,
            11 => return format!("{base}0"),
            check => return format!("{base}{check}"),
        }
    }
}

/// A 10-digit Swedish organisation number with a valid Luhn check digit,
/// from a 9-digit `base`.
fn swedish_org_number(base: u64) -> String {
    let digits = base.to_string();
    let sum: u32 = digits
        .bytes()
        .map(|b| (b - b'0') as u32)
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                (d * 2) / 10 + (d * 2) % 10
            } else {
                d
            }
        })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

const HEADER: &str = "date,billingAccountId,billingProfileId,subscriptionId,meterId,meterCategory,meterName,unitOfMeasure,quantity,unitPrice,costInBillingCurrency,billingCurrency,chargeType,publisherType,pricingModel,isAzureCreditEligible,resourceId\n";

/// Writes one day's usage file; returns its row count.
fn write_day(
    dir: &Path,
    opts: &GenOptions,
    day_index: u32,
    profiles: &[GenProfile],
    subscriptions: &[GenSubscription],
    meters: &[Meter],
) -> Result<u64> {
    let day = opts.start + chrono::Days::new(day_index as u64);
    let mut rng = Rng::new(opts.seed, 1 + day_index as u64);
    let path = dir.join(format!("usage/{day}.csv"));
    let file = std::fs::File::create(&path).map_err(store::failed("create", &path))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let written = |result: std::io::Result<()>| result.map_err(store::failed("write", &path));
    written(out.write_all(HEADER.as_bytes()))?;
    let mut line = String::with_capacity(512);
    for _ in 0..opts.rows_per_day {
        let sub = &subscriptions[rng.below(subscriptions.len() as u64) as usize];
        let profile = &profiles[sub.profile];
        let meter = &meters[sub.meters[rng.below(sub.meters.len() as u64) as usize]];
        // quantity at scale 4, price at scale 6: the cost is exact at scale 10.
        let quantity = 1 + rng.below(2_000_000) as i128;
        let refund = rng.below(200) == 0;
        let mut cost = quantity * meter.price_micros as i128;
        let charge = if refund {
            cost = -cost;
            "Refund"
        } else {
            meter.charge
        };
        let eligible = if meter.publisher == "Azure" {
            "True"
        } else {
            "False"
        };
        line.clear();
        writeln!(
            line,
            "{day},{},{},{},{},{},{},{},{},{},{},{},{charge},{},{},{eligible},/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/vm-{}-{:04}",
            profile.account,
            profile.id,
            sub.id,
            meter.id,
            meter.category,
            meter.name,
            meter.unit,
            Scaled(quantity, 4),
            Scaled(meter.price_micros as i128, 6),
            Scaled(cost, 10),
            profile.currency,
            meter.publisher,
            meter.pricing,
            sub.id,
            sub.resource_group,
            meter.category.len(),
            rng.below(10_000),
        )?;
        written(out.write_all(line.as_bytes()))?;
    }
    written(out.flush())?;
    Ok(opts.rows_per_day)
}

/// A synthetic issued invoice with `lines` lines over a few subscriptions
/// and meter categories, for render tests and benchmarks.
pub fn synthetic_invoice(number: &str, lines: usize, currency: &str) -> crate::model::Invoice {
    use crate::model::{Amounts, CoveredBy, Invoice, Kind, Line, LineKey, LineSums, Period};
    use rust_decimal::Decimal;
    let currency_info = crate::model::Currency::parse(currency).expect("a known currency");
    let mut rng = Rng::new(lines as u64, 99);
    let items: Vec<Line> = (0..lines)
        .map(|i| {
            let (category, name, unit, _, _, _, _) = METER_SHAPES[i % METER_SHAPES.len()];
            let cost = Decimal::new(rng.below(5_000_000) as i64 + 1, 4);
            Line {
                key: LineKey {
                    subscription_id: format!("sub-{:02}", i / 40),
                    meter_id: format!("meter-{i:05}"),
                    meter_category: category.to_string(),
                    meter_name: format!("{name} #{i}"),
                    unit_of_measure: unit.to_string(),
                    charge_type: "Usage".into(),
                    publisher_type: "Azure".into(),
                    pricing_model: "OnDemand".into(),
                    credit_eligible: true,
                    covered_by: CoveredBy::None,
                },
                sums: LineSums {
                    quantity: Decimal::new(rng.below(100_000) as i64, 2),
                    cost,
                    rows: 30,
                },
                amount: currency_info.round(cost),
            }
        })
        .collect();
    let subtotal: Decimal = items.iter().map(|l| l.amount).sum();
    let date = NaiveDate::from_ymd_opt(2026, 11, 3).expect("valid date");
    Invoice {
        number: number.to_string(),
        account_id: "acct-00001".into(),
        profile_id: "prof-000001".into(),
        kind: Kind::Services,
        period: Period::containing(
            NaiveDate::from_ymd_opt(2026, 10, 15).expect("valid date"),
            1,
        ),
        currency: currency.to_string(),
        invoice_date: date,
        due_date: date + chrono::Days::new(30),
        amounts: Amounts {
            subtotal,
            amount_due: subtotal,
            ..Default::default()
        },
        lines: items,
        recipients: vec!["ap@customer.example".into()],
        vat: None,
    }
}

/// An integer at a decimal scale, written as a plain decimal.
struct Scaled(i128, u32);

impl std::fmt::Display for Scaled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Scaled(value, scale) = *self;
        let divisor = 10i128.pow(scale);
        let sign = if value < 0 { "-" } else { "" };
        let abs = value.abs();
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / divisor,
            abs % divisor,
            width = scale as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_numbers_print_exactly() {
        assert_eq!(Scaled(12345, 4).to_string(), "1.2345");
        assert_eq!(Scaled(-5, 2).to_string(), "-0.05");
        assert_eq!(Scaled(0, 10).to_string(), "0.0000000000");
    }

    #[test]
    fn same_seed_same_guids() {
        assert_eq!(Rng::new(7, 1).guid(), Rng::new(7, 1).guid());
        assert_ne!(Rng::new(7, 1).guid(), Rng::new(8, 1).guid());
    }
}
