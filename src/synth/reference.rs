//! The generated reference files: accounts, profiles (with VAT and Peppol
//! data), subscriptions, roles, recipients and credits.

use std::fmt::Write as _;
use std::path::Path;

use crate::store;

use chrono::NaiveDate;

use super::{GenOptions, Result, Rng};

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
    let mut files = ReferenceFiles::new(opts.shape.long_ids());
    let mut p = 0u32;
    let mut account_index = 0u32;
    while p < opts.profiles {
        let account = files.account(account_index, rng)?;
        for _ in 0..account.profiles.min(opts.profiles - p) {
            files.profile(&account, p, opts.start, rng)?;
            p += 1;
        }
        account_index += 1;
    }
    files.write(dir)?;
    Ok((files.profiles, files.subscriptions))
}

/// One generated billing account.
struct GenAccount {
    id: String,
    index: u32,
    mosp: bool,
    /// How many profiles it has.
    profiles: u32,
}

/// The reference files as they are generated, and what the usage needs.
struct ReferenceFiles {
    /// Ids as Azure writes them (the plain and wide shapes).
    long_ids: bool,
    accounts: String,
    profiles_csv: String,
    subscriptions_csv: String,
    roles: String,
    recipients: String,
    credits: String,
    profiles: Vec<GenProfile>,
    subscriptions: Vec<GenSubscription>,
}

impl ReferenceFiles {
    fn new(long_ids: bool) -> ReferenceFiles {
        ReferenceFiles {
            long_ids,
            accounts: "billingAccountId,name,agreement,adminEmail\n".into(),
            profiles_csv: "billingProfileId,billingAccountId,name,currency,locale,createdDate,periodStartDay,emailInvoice,invoiceEmail,paymentTermsDays,address,country,vatId,vatCategory,peppolId\n".into(),
            subscriptions_csv:
                "subscriptionId,billingProfileId,name,offer,startDate,trialEndDate,monthlyCredit\n"
                    .into(),
            roles: "email,name,role,scope,scopeId\n".into(),
            recipients: "billingProfileId,email\n".into(),
            credits: "creditId,billingProfileId,amount,effectiveDate,expiryDate\n".into(),
            profiles: Vec::new(),
            subscriptions: Vec::new(),
        }
    }

    /// Account `index`: every tenth is MOSP (one profile), every seventh
    /// MPA, the rest MCA with one to three profiles; its admin an Owner.
    fn account(&mut self, index: u32, rng: &mut Rng) -> Result<GenAccount> {
        let short = format!("acct-{:05}-{}", index, &rng.guid()[..8]);
        // An MCA billing account id: two GUIDs and the agreement's date.
        let id = if self.long_ids {
            format!("{}:{}_2019-05-31", rng.guid(), rng.guid())
        } else {
            short
        };
        let mosp = index % 10 == 9;
        let profiles = if mosp { 1 } else { 1 + rng.below(3) as u32 };
        let agreement = match (mosp, index % 7 == 3) {
            (true, _) => "MOSP",
            (false, true) => "MPA",
            (false, false) => "MCA",
        };
        let admin = format!("admin{index}@customer{index}.example");
        writeln!(
            self.accounts,
            "{id},Customer {index} Ørsted-Åberg,{agreement},{admin}"
        )?;
        writeln!(
            self.roles,
            "{admin},Admin {index},Owner,billingAccount,{id}"
        )?;
        Ok(GenAccount {
            id,
            index,
            mosp,
            profiles,
        })
    }

    /// Profile `p` of `account`: its roles, recipients, credit and
    /// subscriptions.
    fn profile(
        &mut self,
        account: &GenAccount,
        p: u32,
        start: NaiveDate,
        rng: &mut Rng,
    ) -> Result<()> {
        let (currency, locale) = CURRENCIES[(p % 4) as usize];
        let a = account.index;
        let id = if account.mosp {
            rng.guid()
        } else if self.long_ids {
            mca_profile_id(p)
        } else {
            format!("prof-{p:06}")
        };
        let created = start - chrono::Days::new(400 - rng.below(380));
        let start_day = if p % 5 == 4 { 1 + rng.below(28) } else { 1 };
        let email = p % 6 != 5;
        writeln!(
            self.profiles_csv,
            "{id},{},\"Profile {p}, Dept. Økonomi\",{currency},{locale},{created},{start_day},{email},,30,\"Gate {p}, 0150 Oslo\",{}",
            account.id,
            tax_columns(u64::from(p))
        )?;
        for (role, n) in [("Owner", 0), ("Reader", 1), ("InvoiceManager", 2)] {
            writeln!(
                self.roles,
                "user{p}.{n}@customer{a}.example,User {p}.{n},{role},billingProfile,{id}"
            )?;
        }
        if account.mosp {
            writeln!(self.recipients, "{id},finance{p}@customer{a}.example")?;
        }
        if p % 8 == 2 {
            writeln!(
                self.credits,
                "credit-{p:06},{id},{}.00,{start},{}",
                50 + rng.below(500),
                start + chrono::Days::new(90)
            )?;
        }
        self.subscriptions_of(&id, account.mosp, p, created, start, rng)?;
        self.profiles.push(GenProfile {
            id,
            account: account.id.clone(),
            currency,
            mosp: account.mosp,
        });
        Ok(())
    }

    /// A profile's subscriptions: one for MOSP (its id the profile's), four
    /// otherwise; some free trials and monthly credits.
    fn subscriptions_of(
        &mut self,
        id: &str,
        mosp: bool,
        p: u32,
        created: NaiveDate,
        start: NaiveDate,
        rng: &mut Rng,
    ) -> Result<()> {
        let count = if mosp { 1 } else { 4 };
        for s in 0..count {
            let sub_id = if mosp && s == 0 {
                id.to_string()
            } else {
                rng.guid()
            };
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
                self.subscriptions_csv,
                "{sub_id},{id},Subscription {p}-{s},{offer},{created},{trial_end},{credit}"
            )?;
            self.subscriptions.push(GenSubscription {
                id: sub_id,
                profile: self.profiles.len(),
                resource_group: format!(
                    "rg-{}-{}",
                    ["prod", "dev", "test", "shared"][s as usize % 4],
                    p
                ),
                meters: Vec::new(),
            });
        }
        Ok(())
    }

    fn write(&self, dir: &Path) -> Result<()> {
        for (name, text) in [
            ("accounts.csv", &self.accounts),
            ("profiles.csv", &self.profiles_csv),
            ("subscriptions.csv", &self.subscriptions_csv),
            ("roles.csv", &self.roles),
            ("recipients.csv", &self.recipients),
            ("credits.csv", &self.credits),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(store::failed("write", &path))?;
        }
        Ok(())
    }
}

/// An MCA billing profile id as Azure writes them (`AB12-CD34-EF5-GH6`),
/// unique per profile number.
fn mca_profile_id(p: u32) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut n = u64::from(p) * 2_654_435_761 % 24u64.pow(7) + u64::from(p) * 24u64.pow(7);
    let mut text = String::new();
    for (i, len) in [4, 4, 3, 3].into_iter().enumerate() {
        if i > 0 {
            text.push('-');
        }
        for _ in 0..len {
            text.push(LETTERS[(n % 24) as usize] as char);
            n /= 24;
        }
    }
    text
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
