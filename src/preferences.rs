//! Preferences (SPEC §2.3 preferences.csv): the log of changes people make
//! to a profile's e-mail invoice setting, enforced as Azure does. Only an
//! Owner or Contributor of the profile or of its billing account may turn
//! e-mail invoices on or off on an MCA/MPA profile; on a MOSP profile the
//! account admin opts in, sets the preferred address and adds or removes
//! recipients. Any other change is rejected with a reason into
//! `OUT/rejects/preferences.csv`; accepted ones feed the effective
//! preference ([`Preference::on`]) that decides who gets an invoice.
//!
//! Each profile's history (accepted and refused changes) is kept in the
//! ledger, so `faktura explain` can answer "I turned it on last week, why
//! did I get nothing?" from OUT alone.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::model::{
    Agreement, Preference, PreferenceChange, PreferenceChanges, Profile, Reference, RoleKind,
    Scope, Setting,
};
use crate::parse::{parse_bool, parse_email, parse_iso_date};
use crate::people_logs::{self, LogError, LogRow, RowReject};

const REQUIRED: &[&str] = &[
    "billingProfileId",
    "setting",
    "value",
    "changedBy",
    "changedDate",
];

/// What preferences.csv says, row by row.
#[derive(Debug, Default)]
pub struct PreferenceLog {
    /// Accepted changes per profile, in order of (changedDate, line),
    /// including those dated after the run's as_of (applied by later runs).
    pub changes: PreferenceChanges,
    pub rejects: Vec<RowReject>,
    /// Every row as a support person reads it, per profile id as written.
    pub history: BTreeMap<String, Vec<HistoryEntry>>,
}

/// One row of a profile's preference history, accepted or refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub line: u64,
    pub setting: String,
    pub value: String,
    pub changed_by: String,
    pub changed_date: String,
    /// `None` when accepted; the reject reason and why, when refused.
    pub refused: Option<(String, String)>,
}

/// Reads `DATA/preferences.csv` (optional). A bad row is rejected, never
/// stopping the run; a file lacking a column is rejected whole.
pub fn read_preferences(data_dir: &Path, reference: &Reference) -> Result<PreferenceLog, LogError> {
    let mut log = PreferenceLog::default();
    let whole = people_logs::read_log(&data_dir.join("preferences.csv"), REQUIRED, |row| {
        let checked = check_change(row, reference);
        let refused = checked
            .as_ref()
            .err()
            .map(|(r, d)| (r.to_string(), d.clone()));
        log.history
            .entry(row.cell("billingProfileId").to_string())
            .or_default()
            .push(HistoryEntry {
                line: row.line,
                setting: row.cell("setting").to_string(),
                value: row.cell("value").to_string(),
                changed_by: row.cell("changedBy").to_string(),
                changed_date: row.cell("changedDate").to_string(),
                refused,
            });
        match checked {
            Ok(change) => log
                .changes
                .entry(change.profile_id.clone())
                .or_default()
                .push(change),
            Err(reason) => log.rejects.push(row.reject(reason)),
        }
    })?;
    log.rejects.extend(whole);
    log.history.remove("");
    for changes in log.changes.values_mut() {
        changes.sort_by_key(|c| (c.changed_date, c.line));
    }
    Ok(log)
}

/// Writes `rejects/preferences.csv`, or removes a stale one.
pub fn write_rejects(out_dir: &Path, rejects: &[RowReject]) -> Result<(), LogError> {
    people_logs::write_rejects(out_dir, "preferences.csv", rejects)
}

/// One row checked: the change, or the reason it is rejected.
fn check_change(
    row: &LogRow,
    reference: &Reference,
) -> Result<PreferenceChange, (&'static str, String)> {
    row.check_shape(REQUIRED)?;
    let profile_id = row.cell("billingProfileId");
    let profile = reference
        .profiles
        .get(profile_id)
        .ok_or_else(|| ("unknown_profile", format!("no profile {profile_id:?}")))?;
    let setting_text = row.cell("setting");
    let setting = Setting::parse(setting_text).ok_or_else(|| {
        let detail = format!(
            "setting {setting_text:?} is not emailInvoice, invoiceEmail, addRecipient or removeRecipient"
        );
        ("bad_enum", detail)
    })?;
    let date_text = row.cell("changedDate");
    let changed_date = parse_iso_date(date_text)
        .ok_or_else(|| ("bad_date", format!("changedDate {date_text:?}")))?;
    let value_text = row.cell("value");
    let value = match setting {
        Setting::EmailInvoice => parse_bool(value_text)
            .map(|b| b.to_string())
            .ok_or_else(|| ("bad_bool", format!("emailInvoice {value_text:?}")))?,
        _ => parse_email(value_text).ok_or_else(|| {
            let detail = format!("{value_text:?} is not a valid e-mail address");
            ("bad_email", detail)
        })?,
    };
    let changed_by = authorize(reference, profile, setting, row.cell("changedBy"))?;
    Ok(PreferenceChange {
        line: row.line,
        profile_id: profile.id.clone(),
        setting,
        value,
        changed_by,
        changed_date,
    })
}

/// Whether `changed_by` may make a `setting` change on `profile` (SPEC
/// §2.3), judged against roles.csv as it is now: the person's address
/// (lower-cased), or `mosp_only` / `not_authorized` with the reason in
/// words a support person can read out.
pub fn authorize(
    reference: &Reference,
    profile: &Profile,
    setting: Setting,
    changed_by: &str,
) -> Result<String, (&'static str, String)> {
    let account = reference.account_of(profile);
    if setting.mosp_only() && account.agreement != Agreement::Mosp {
        let detail = format!(
            "{} applies to MOSP profiles only; {} belongs to an {} account",
            setting.as_str(),
            profile.id,
            agreement_name(account.agreement)
        );
        return Err(("mosp_only", detail));
    }
    let Some(person) = parse_email(changed_by) else {
        let detail = format!("changedBy {changed_by:?} is not a valid e-mail address");
        return Err(("not_authorized", detail));
    };
    if account.agreement == Agreement::Mosp {
        if person == account.admin_email {
            return Ok(person);
        }
        let detail = format!(
            "{person} is not the admin of MOSP account {} ({}); only the account admin may change this",
            account.id, account.admin_email
        );
        return Err(("not_authorized", detail));
    }
    let roles: Vec<_> = reference
        .roles
        .iter()
        .filter(|r| r.email == person)
        .filter(|r| match r.scope {
            Scope::BillingProfile => r.scope_id == profile.id,
            Scope::BillingAccount => r.scope_id == account.id,
        })
        .collect();
    if roles
        .iter()
        .any(|r| matches!(r.role, RoleKind::Owner | RoleKind::Contributor))
    {
        return Ok(person);
    }
    let who = roles
        .iter()
        .map(|r| r.name.as_str())
        .find(|n| !n.is_empty())
        .unwrap_or(&person);
    let holds = if roles.is_empty() {
        format!(
            "has no role on profile {} or account {}",
            profile.id, account.id
        )
    } else {
        let mut kinds: Vec<RoleKind> = roles.iter().map(|r| r.role).collect();
        kinds.sort();
        kinds.dedup();
        let names: Vec<&str> = kinds.into_iter().map(role_with_article).collect();
        format!("is {}", names.join(" and "))
    };
    Err((
        "not_authorized",
        format!("{who} {holds}; only Owners and Contributors may change this"),
    ))
}

fn role_with_article(role: RoleKind) -> &'static str {
    match role {
        RoleKind::Owner => "an Owner",
        RoleKind::Contributor => "a Contributor",
        RoleKind::Reader => "a Reader",
        RoleKind::InvoiceManager => "an Invoice Manager",
    }
}

fn agreement_name(agreement: Agreement) -> &'static str {
    match agreement {
        Agreement::Mca => "MCA",
        Agreement::Mpa => "MPA",
        Agreement::Mosp => "MOSP",
    }
}

/// What `faktura explain` needs of a profile's preference, kept in the
/// ledger by each run: the preference as first set up, and every row of
/// preferences.csv about the profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfilePreferences {
    pub agreement: Option<Agreement>,
    pub admin_email: String,
    pub initial: Preference,
    pub history: Vec<HistoryEntry>,
    pub changes: Vec<PreferenceChange>,
}

impl ProfilePreferences {
    /// Every profile's record, and one for each unknown profile id a row named.
    pub fn of_all(
        reference: &Reference,
        log: &PreferenceLog,
    ) -> BTreeMap<String, ProfilePreferences> {
        let mut out = BTreeMap::new();
        for profile in reference.profiles.values() {
            let account = reference.account_of(profile);
            out.insert(
                profile.id.clone(),
                ProfilePreferences {
                    agreement: Some(account.agreement),
                    admin_email: account.admin_email.clone(),
                    initial: Preference::initial(reference, profile),
                    history: Vec::new(),
                    changes: log.changes.get(&profile.id).cloned().unwrap_or_default(),
                },
            );
        }
        for (id, history) in &log.history {
            out.entry(id.clone()).or_default().history = history.clone();
        }
        out
    }

    /// The effective preference on `day`.
    pub fn on(&self, day: NaiveDate) -> Preference {
        self.initial.clone().updated(&self.changes, day)
    }

    /// In words: the effective preference on `day`, then every change.
    pub fn explain(&self, profile: &str, day: NaiveDate) -> String {
        let mut out = String::new();
        let Some(agreement) = self.agreement else {
            out += &format!("Profile {profile} is not in profiles.csv.\n");
            out += &self.explain_history(day);
            return out;
        };
        let preference = self.on(day);
        let state = if preference.email_invoice {
            "on"
        } else {
            "off"
        };
        out += &format!("E-mail invoices on {day}: {state}");
        if agreement == Agreement::Mosp {
            let address = preference
                .invoice_email
                .clone()
                .unwrap_or_else(|| format!("{} (the account admin)", self.admin_email));
            out += &format!(", to {address}");
            if preference.recipients.is_empty() {
                out += ", no additional recipients.\n";
            } else {
                let others: Vec<&str> = preference.recipients.iter().map(String::as_str).collect();
                out += &format!(", additional recipients {}.\n", others.join(", "));
            }
        } else {
            out += " (everyone with a role on the profile gets its invoices when on).\n";
        }
        out += &self.explain_history(day);
        out
    }

    fn explain_history(&self, day: NaiveDate) -> String {
        if self.history.is_empty() {
            return "  No changes in preferences.csv; the setting is as in profiles.csv.\n".into();
        }
        let mut entries: Vec<&HistoryEntry> = self.history.iter().collect();
        entries.sort_by(|a, b| (&a.changed_date, a.line).cmp(&(&b.changed_date, b.line)));
        let mut out = String::from("  Changes (preferences.csv):\n");
        for e in entries {
            let what = format!(
                "{} line {}: {} set {} to {}",
                e.changed_date, e.line, e.changed_by, e.setting, e.value
            );
            let outcome = match &e.refused {
                Some((reason, why)) => format!("refused ({reason}): {why}"),
                None if parse_iso_date(&e.changed_date).is_some_and(|d| d > day) => {
                    format!("accepted; takes effect on {}", e.changed_date)
                }
                None => "accepted".to_string(),
            };
            out += &format!("  - {what}: {outcome}.\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Account, RoleAssignment};

    /// One account of `agreement` with profile P (and a sibling profile Q),
    /// and `holder@x.example` holding `role` at `scope` on `scope_id`.
    fn world(agreement: Agreement, role: RoleKind, scope: Scope, scope_id: &str) -> Reference {
        let profile = |id: &str| Profile::for_tests(id, "A");
        Reference {
            accounts: [(
                "A".to_string(),
                Account {
                    id: "A".into(),
                    name: "Acme".into(),
                    agreement,
                    admin_email: "admin@x.example".into(),
                },
            )]
            .into(),
            profiles: [
                ("P".to_string(), profile("P")),
                ("Q".to_string(), profile("Q")),
            ]
            .into(),
            roles: vec![RoleAssignment {
                email: "holder@x.example".into(),
                name: "Hol Der".into(),
                role,
                scope,
                scope_id: scope_id.into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn who_may_change_what_every_role_scope_agreement_and_setting() {
        let roles = [
            RoleKind::Owner,
            RoleKind::Contributor,
            RoleKind::Reader,
            RoleKind::InvoiceManager,
        ];
        // Where the role is held: on P, on its account, on a sibling profile.
        let places = [
            (Scope::BillingProfile, "P", "profile P"),
            (Scope::BillingAccount, "A", "account A"),
            (Scope::BillingProfile, "Q", "profile Q"),
        ];
        let agreements = [Agreement::Mca, Agreement::Mpa, Agreement::Mosp];
        let mut cases = 0;
        for agreement in agreements {
            for role in roles {
                for (scope, scope_id, place) in places {
                    for setting in Setting::ALL {
                        let reference = world(agreement, role, scope, scope_id);
                        let profile = &reference.profiles["P"];
                        let mosp = agreement == Agreement::Mosp;
                        let expected = if setting.mosp_only() && !mosp {
                            Err("mosp_only")
                        } else if mosp {
                            // Only the admin, whatever roles others hold.
                            Err("not_authorized")
                        } else if matches!(role, RoleKind::Owner | RoleKind::Contributor)
                            && scope_id != "Q"
                        {
                            Ok("holder@x.example".to_string())
                        } else {
                            Err("not_authorized")
                        };
                        let got = authorize(&reference, profile, setting, "Holder@X.example")
                            .map_err(|(reason, _)| reason);
                        assert_eq!(
                            got, expected,
                            "{agreement:?} {role:?} on {place}, {setting:?}"
                        );
                        // The account admin: every MOSP setting; MCA/MPA only via a role.
                        let admin = authorize(&reference, profile, setting, "ADMIN@x.example")
                            .map_err(|(reason, _)| reason);
                        let admin_expected = match (mosp, setting.mosp_only()) {
                            (true, _) => Ok("admin@x.example".to_string()),
                            (false, true) => Err("mosp_only"),
                            (false, false) => Err("not_authorized"),
                        };
                        assert_eq!(admin, admin_expected, "admin, {agreement:?} {setting:?}");
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 3 * 4 * 3 * 4);
    }

    #[test]
    fn refusals_say_who_holds_what_and_who_may() {
        let reference = world(
            Agreement::Mca,
            RoleKind::InvoiceManager,
            Scope::BillingProfile,
            "P",
        );
        let profile = &reference.profiles["P"];
        let (reason, why) = authorize(
            &reference,
            profile,
            Setting::EmailInvoice,
            "holder@x.example",
        )
        .unwrap_err();
        assert_eq!(reason, "not_authorized");
        assert_eq!(
            why,
            "Hol Der is an Invoice Manager; only Owners and Contributors may change this"
        );
        let (_, why) = authorize(
            &reference,
            profile,
            Setting::EmailInvoice,
            "nobody@x.example",
        )
        .unwrap_err();
        assert!(
            why.contains("has no role on profile P or account A"),
            "{why}"
        );
        let (reason, _) =
            authorize(&reference, profile, Setting::EmailInvoice, "not an address").unwrap_err();
        assert_eq!(reason, "not_authorized");
    }

    #[test]
    fn the_effective_preference_applies_changes_in_date_then_line_order() {
        let reference = world(
            Agreement::Mosp,
            RoleKind::Reader,
            Scope::BillingProfile,
            "P",
        );
        let profile = &reference.profiles["P"];
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let change = |line, setting, value: &str, date| PreferenceChange {
            line,
            profile_id: "P".into(),
            setting,
            value: value.into(),
            changed_by: "admin@x.example".into(),
            changed_date: d(date),
        };
        let mut changes = vec![
            change(5, Setting::EmailInvoice, "false", "2026-11-02"),
            change(2, Setting::EmailInvoice, "true", "2026-11-02"),
            change(3, Setting::AddRecipient, "b@x.example", "2026-11-01"),
            change(4, Setting::AddRecipient, "b@x.example", "2026-11-03"),
            change(6, Setting::RemoveRecipient, "c@x.example", "2026-11-03"),
            change(7, Setting::InvoiceEmail, "pref@x.example", "2026-11-04"),
            change(8, Setting::RemoveRecipient, "b@x.example", "2026-11-05"),
        ];
        changes.sort_by_key(|c| (c.changed_date, c.line));
        let on = |day| Preference::on(&reference, profile, &changes, d(day));
        assert_eq!(on("2026-10-31"), Preference::default());
        // Same day: line 5 comes after line 2, so it wins.
        assert!(!on("2026-11-02").email_invoice);
        assert_eq!(
            on("2026-11-03").recipients.len(),
            1,
            "added once, removing c changes nothing"
        );
        assert_eq!(
            on("2026-11-04").invoice_email.as_deref(),
            Some("pref@x.example")
        );
        assert!(on("2026-11-05").recipients.is_empty());
    }
}
