//! The generated reference files: accounts, profiles (with VAT and Peppol
//! data), subscriptions, roles, recipients and credits.

use std::fmt::Write as _;
use std::path::Path;

use crate::store;

use super::*;

pub(super) const CURRENCIES: [(&str, &str); 4] = [
    ("USD", "en-US"),
    ("EUR", "nl-NL"),
    ("NOK", "nb-NO"),
    ("SEK", "sv-SE"),
];

pub(super) struct GenProfile {
    pub(super) id: String,
    pub(super) account: String,
    pub(super) currency: &'static str,
    pub(super) mosp: bool,
}

pub(super) struct GenSubscription {
    pub(super) id: String,
    pub(super) profile: usize,
    pub(super) resource_group: String,
    /// Indexes into the meter catalogue: the meters this subscription uses.
    pub(super) meters: Vec<usize>,
}

pub(super) fn write_reference(
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
pub(super) fn tax_columns(p: u64) -> String {
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
pub(super) fn norwegian_org_number(base: u64) -> String {
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
pub(super) fn swedish_org_number(base: u64) -> String {
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
