//! Table-driven tests of every rule of SPEC §3–§4, on tiny hand-made inputs.
//! Amounts are worked out by hand in the comments.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::*;
use crate::model::*;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// One MCA account `A` with profile `P` (USD, calendar months, created
/// 2025-01-01) and a PayAsYouGo subscription `S`.
fn reference() -> Reference {
    let mut r = Reference::default();
    r.accounts.insert(
        "A".into(),
        Account {
            id: "A".into(),
            name: "Acme".into(),
            agreement: Agreement::Mca,
            admin_email: "admin@acme.example".into(),
        },
    );
    add_profile(&mut r, "P", "A", "USD", d("2025-01-01"), 1);
    add_subscription(&mut r, "S", "P", Offer::PayAsYouGo);
    r
}

fn add_profile(
    r: &mut Reference,
    id: &str,
    account: &str,
    currency: &str,
    created: NaiveDate,
    start_day: u32,
) {
    r.profiles.insert(
        id.into(),
        Profile {
            name: format!("Profile {id}"),
            currency: Currency::parse(currency).unwrap(),
            created_date: created,
            period_start_day: start_day,
            email_invoice: true,
            ..Profile::for_tests(id, account)
        },
    );
}

fn add_subscription(r: &mut Reference, id: &str, profile: &str, offer: Offer) {
    r.subscriptions.insert(
        id.into(),
        Subscription {
            id: id.into(),
            profile_id: profile.into(),
            name: id.into(),
            offer,
            start_date: d("2024-01-01"),
            trial_end_date: None,
            monthly_credit: None,
        },
    );
}

fn key(sub: &str, meter: &str, covered_by: CoveredBy) -> LineKey {
    LineKey {
        subscription_id: sub.into(),
        meter: std::sync::Arc::new(crate::model::MeterLine {
            meter_id: meter.into(),
            meter_category: "Virtual Machines".into(),
            meter_name: meter.into(),
            unit_of_measure: "1 Hour".into(),
            charge_type: "Usage".into(),
            publisher_type: "Azure".into(),
            pricing_model: "OnDemand".into(),
        }),
        credit_eligible: true,
        covered_by,
    }
}

fn sums(cost: &str) -> LineSums {
    LineSums {
        quantity: Decimal::ONE,
        cost: dec(cost),
        rows: 1,
    }
}

/// Lines builder: (profile, kind, period start) -> key -> sums.
#[derive(Default)]
struct Lines(PeriodLines);

impl Lines {
    fn add(mut self, profile: &str, start: &str, key: LineKey, cost: &str) -> Self {
        self.0
            .entry((profile.into(), Kind::Services, d(start)))
            .or_default()
            .insert(key, sums(cost));
        self
    }

    fn add_kind(
        mut self,
        profile: &str,
        kind: Kind,
        start: &str,
        key: LineKey,
        cost: &str,
    ) -> Self {
        self.0
            .entry((profile.into(), kind, d(start)))
            .or_default()
            .insert(key, sums(cost));
        self
    }
}

/// Every day from 2026-10-01 to 2027-03-31 has a usage file, unless removed.
fn all_days() -> BTreeSet<NaiveDate> {
    d("2026-10-01")
        .iter_days()
        .take_while(|x| *x <= d("2027-03-31"))
        .collect()
}

struct Case {
    reference: Reference,
    lines: PeriodLines,
    present: BTreeSet<NaiveDate>,
    fresh: BTreeSet<NaiveDate>,
    unchecked: BTreeSet<DecisionKey>,
    as_of: NaiveDate,
    decided: BTreeMap<DecisionKey, Decision>,
    billed: BTreeMap<DecisionKey, Billed>,
    next_seq: u64,
    preferences: crate::model::PreferenceChanges,
}

impl Case {
    fn new(reference: Reference, lines: Lines, as_of: &str) -> Case {
        Case {
            reference,
            lines: lines.0,
            present: all_days(),
            fresh: all_days(),
            unchecked: BTreeSet::new(),
            as_of: d(as_of),
            decided: BTreeMap::new(),
            billed: BTreeMap::new(),
            next_seq: 1,
            preferences: BTreeMap::new(),
        }
    }

    fn decide(&self) -> DecideCommit {
        decide(&DecideInput {
            reference: &self.reference,
            as_of: self.as_of,
            settle_days: 2,
            billing_start: d("2026-10-01"),
            invoice_prefix: "INV-",
            present_days: &self.present,
            lines: &self.lines,
            late: self.late(),
            decided: &self.decided,
            billed: &self.billed,
            next_seq: self.next_seq,
            preferences: &self.preferences,
            tax: None,
        })
    }

    /// Applies a commit as the ledger would, so a later run can be decided.
    fn apply(&mut self, commit: &DecideCommit) {
        for decision in &commit.decisions {
            self.decided.insert(
                (
                    decision.profile_id.clone(),
                    decision.kind,
                    decision.period.start,
                ),
                decision.clone(),
            );
        }
        for (k, b) in &commit.billed {
            self.billed.insert(k.clone(), b.clone());
        }
        self.next_seq += commit.invoices.len() as u64;
        self.unchecked = commit.unchecked.iter().cloned().collect();
    }

    fn late(&self) -> LateUsage<'_> {
        LateUsage {
            fresh_days: &self.fresh,
            unchecked: &self.unchecked,
        }
    }
}

fn decision<'a>(commit: &'a DecideCommit, profile: &str, kind: Kind, start: &str) -> &'a Decision {
    commit
        .decisions
        .iter()
        .find(|x| x.profile_id == profile && x.kind == kind && x.period.start == d(start))
        .unwrap_or_else(|| panic!("no decision for {profile} {kind:?} {start}"))
}

fn amounts(commit: &DecideCommit, profile: &str, start: &str) -> Amounts {
    decision(commit, profile, Kind::Services, start)
        .amounts
        .expect("not held")
}

// The rules of SPEC §4 decided on hand-made periods.
mod rules;
// Late usage: adjustments, fresh days and unchecked periods.
mod late;
