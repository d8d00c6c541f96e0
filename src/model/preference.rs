//! A profile's e-mail invoice preference and the changes people make to
//! it (SPEC §2.3).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{Profile, Reference};

/// A setting of preferences.csv (SPEC §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Setting {
    /// Opt in or out of e-mail invoices (every agreement).
    EmailInvoice,
    /// The preferred address of a MOSP profile.
    InvoiceEmail,
    /// An additional recipient of a MOSP profile.
    AddRecipient,
    RemoveRecipient,
}

impl Setting {
    pub const ALL: [Setting; 4] = [
        Setting::EmailInvoice,
        Setting::InvoiceEmail,
        Setting::AddRecipient,
        Setting::RemoveRecipient,
    ];

    /// The setting named `s`, in any case.
    pub fn parse(s: &str) -> Option<Setting> {
        Setting::ALL
            .into_iter()
            .find(|setting| setting.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Setting::EmailInvoice => "emailInvoice",
            Setting::InvoiceEmail => "invoiceEmail",
            Setting::AddRecipient => "addRecipient",
            Setting::RemoveRecipient => "removeRecipient",
        }
    }

    /// Settings only a MOSP profile has.
    pub fn mosp_only(self) -> bool {
        self != Setting::EmailInvoice
    }
}

/// An accepted change of preferences.csv, its value normalised (`true` /
/// `false`, or a lower-cased address).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferenceChange {
    pub line: u64,
    pub profile_id: String,
    pub setting: Setting,
    pub value: String,
    pub changed_by: String,
    pub changed_date: NaiveDate,
}

/// A profile's e-mail invoice preference on some day (SPEC §2.3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preference {
    pub email_invoice: bool,
    /// MOSP: the preferred address; `None` means the account admin's.
    pub invoice_email: Option<String>,
    /// MOSP: the additional recipients.
    pub recipients: std::collections::BTreeSet<String>,
}

impl Preference {
    /// The preference as first set up: profiles.csv and recipients.csv.
    pub fn initial(reference: &Reference, profile: &Profile) -> Preference {
        Preference {
            email_invoice: profile.email_invoice,
            invoice_email: profile.invoice_email.clone(),
            recipients: reference
                .recipients
                .iter()
                .filter(|r| r.profile_id == profile.id)
                .map(|r| r.email.clone())
                .collect(),
        }
    }

    /// The preference on `day`: the initial one with every change dated on
    /// or before it applied in order of (date, line); `changes` are the
    /// profile's accepted changes, in that order.
    pub fn on(
        reference: &Reference,
        profile: &Profile,
        changes: &[PreferenceChange],
        day: NaiveDate,
    ) -> Preference {
        Preference::initial(reference, profile).updated(changes, day)
    }

    /// This preference with `changes` dated on or before `day` applied.
    pub fn updated(mut self, changes: &[PreferenceChange], day: NaiveDate) -> Preference {
        for change in changes.iter().filter(|c| c.changed_date <= day) {
            self.apply(change);
        }
        self
    }

    /// Applies one change: a later change of a setting wins; adding a listed
    /// recipient or removing an unlisted one changes nothing.
    pub fn apply(&mut self, change: &PreferenceChange) {
        match change.setting {
            Setting::EmailInvoice => self.email_invoice = change.value == "true",
            Setting::InvoiceEmail => self.invoice_email = Some(change.value.clone()),
            Setting::AddRecipient => {
                self.recipients.insert(change.value.clone());
            }
            Setting::RemoveRecipient => {
                self.recipients.remove(&change.value);
            }
        }
    }
}

/// Every profile's accepted preference changes, each list in order of
/// (changedDate, line).
pub type PreferenceChanges = BTreeMap<String, Vec<PreferenceChange>>;
