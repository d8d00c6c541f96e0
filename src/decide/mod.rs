//! Decide (SPEC §3–§4): for every profile, kind and closed period not yet
//! decided, in period order, whether an invoice is owed and why not.
//!
//! A pure function: reference data, the current period lines, what the
//! ledger already decided and billed, and `as_of` in; the decisions, lines,
//! billed sums and numbered invoices to commit out. No I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::model::{
    Amounts, Billed, DecideCommit, Decision, DecisionCode, DecisionKey, Invoice, Kind, Period,
    PeriodLines, PreferenceChanges, Profile, ProfileState, Reference, TaxRule,
};

/// Everything a decide step looks at.
pub struct DecideInput<'a> {
    pub reference: &'a Reference,
    pub as_of: NaiveDate,
    pub settle_days: u32,
    pub billing_start: NaiveDate,
    pub invoice_prefix: &'a str,
    /// Days with at least one usage file that was read.
    pub present_days: &'a BTreeSet<NaiveDate>,
    /// Lines of the periods [`periods_needing_lines`] named (others may be absent).
    pub lines: &'a PeriodLines,
    /// Only the decided periods late usage may have touched are compared
    /// with their billed sums.
    pub late: LateUsage<'a>,
    pub decided: &'a BTreeMap<DecisionKey, Decision>,
    pub billed: &'a BTreeMap<DecisionKey, Billed>,
    pub next_seq: u64,
    /// Accepted e-mail preference changes (SPEC §2.3): recipients come from
    /// the effective preference on the invoice date, `as_of`.
    pub preferences: &'a PreferenceChanges,
    /// `[tax]` (SPEC §4.8): each issued invoice's VAT, fixed when issued.
    pub tax: Option<&'a TaxRule>,
}

/// Where late usage may have arrived since periods were decided.
#[derive(Clone, Copy)]
pub struct LateUsage<'a> {
    /// Days ingested since the last decide step.
    pub fresh_days: &'a BTreeSet<NaiveDate>,
    /// Decided periods an earlier fresh day fell in that have not been
    /// compared with their billed sums yet: their profile has decided no
    /// new period since (the comparison happens when it does).
    pub unchecked: &'a BTreeSet<DecisionKey>,
}

impl LateUsage<'_> {
    /// Whether the decided period of `profile` starting on `start` may have
    /// late usage, and must be compared with what was billed.
    pub fn may_touch(&self, profile: &Profile, kind: Kind, start: NaiveDate) -> bool {
        let period = Period::containing(start, profile.period_start_day);
        self.fresh_days
            .range(period.start..=period.end)
            .next()
            .is_some()
            || self.unchecked.contains(&(profile.id.clone(), kind, start))
    }
}

/// The periods, (profile, period start), whose lines a decide step looks
/// at: closed periods not yet decided or held, and decided ones late usage
/// may have touched (it becomes adjustments). Aggregate sums only these,
/// so a night that closes nothing reads almost nothing.
pub fn periods_needing_lines(
    reference: &Reference,
    as_of: NaiveDate,
    settle_days: u32,
    billing_start: NaiveDate,
    decided: &BTreeMap<DecisionKey, Decision>,
    late: &LateUsage,
) -> BTreeSet<(String, NaiveDate)> {
    let mut wanted = BTreeSet::new();
    for profile in reference.profiles.values() {
        let mut period = profile.first_period(billing_start);
        while period.is_closed(as_of, settle_days) {
            let settled = decided
                .get(&(profile.id.clone(), Kind::Services, period.start))
                .is_some_and(|d| d.code != DecisionCode::HeldIncompleteUsage);
            let touched = [Kind::Services, Kind::Purchases]
                .into_iter()
                .any(|kind| late.may_touch(profile, kind, period.start));
            if !settled || touched {
                wanted.insert((profile.id.clone(), period.start));
            }
            period = period.next();
        }
    }
    wanted
}

/// Decides every closed, undecided period of every profile.
pub fn decide(input: &DecideInput) -> DecideCommit {
    let mut step = Step {
        input,
        balances: credit_balances(input),
        commit: DecideCommit {
            seen_fresh_days: input.late.fresh_days.iter().copied().collect(),
            ..Default::default()
        },
        issued: Vec::new(),
    };
    for profile in input.reference.profiles.values() {
        decide_profile(&mut step, profile);
    }
    let Step {
        mut commit, issued, ..
    } = step;
    number_invoices(input, &mut commit, issued);
    commit
}

/// What one decide step builds up across profiles: the commit, the
/// invoices it issues (numbered once every profile is decided) and what is
/// left of each prepaid grant.
struct Step<'a> {
    input: &'a DecideInput<'a>,
    balances: BTreeMap<String, Decimal>,
    commit: DecideCommit,
    /// Each issued invoice with the index of its decision in the commit.
    issued: Vec<(usize, Invoice)>,
}

/// One kind of one period of one profile: what a decision is about.
#[derive(Clone, Copy)]
struct PeriodOf<'a> {
    profile: &'a Profile,
    kind: Kind,
    period: Period,
}

impl PeriodOf<'_> {
    fn key(&self) -> DecisionKey {
        (self.profile.id.clone(), self.kind, self.period.start)
    }

    /// A decision about this period, decided on `as_of`.
    fn decision(&self, as_of: NaiveDate, code: DecisionCode, amounts: Option<Amounts>) -> Decision {
        Decision {
            account_id: self.profile.account_id.clone(),
            profile_id: self.profile.id.clone(),
            kind: self.kind,
            period: self.period,
            currency: self.profile.currency.code().to_string(),
            code,
            amounts,
            invoice_number: None,
            missing_days: Vec::new(),
            decided_on: as_of,
            credits_used: Vec::new(),
        }
    }
}

/// What is left of each prepaid grant after every decision so far.
fn credit_balances(input: &DecideInput) -> BTreeMap<String, Decimal> {
    let mut balances: BTreeMap<String, Decimal> = input
        .reference
        .credits
        .iter()
        .map(|c| (c.id.clone(), c.amount))
        .collect();
    for decision in input.decided.values() {
        for (id, used) in &decision.credits_used {
            if let Some(b) = balances.get_mut(id) {
                *b -= *used;
            }
        }
    }
    balances
}

/// Running state of one profile while its periods are walked in order.
struct ProfileWalk {
    carry: BTreeMap<Kind, Decimal>,
    held: bool,
    /// Billed sums of this profile's decided periods, updated by adjustments.
    billed: BTreeMap<DecisionKey, Billed>,
    /// Decided periods compared with their billed sums in this walk.
    compared: BTreeSet<DecisionKey>,
}

/// Walks a profile's closed periods in order, deciding each kind of each
/// period not yet decided (or held).
fn decide_profile(step: &mut Step, profile: &Profile) {
    let input = step.input;
    let mut walk = ProfileWalk {
        carry: BTreeMap::new(),
        held: false,
        billed: input
            .billed
            // Services is the first kind: the range starts at the profile.
            .range((profile.id.clone(), Kind::Services, NaiveDate::MIN)..)
            .take_while(|((p, _, _), _)| *p == profile.id)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        compared: BTreeSet::new(),
    };
    let mut decided_any = false;
    let mut period = profile.first_period(input.billing_start);
    while period.is_closed(input.as_of, input.settle_days) {
        for kind in [Kind::Services, Kind::Purchases] {
            let key = (profile.id.clone(), kind, period.start);
            if let Some(done) = input.decided.get(&key)
                && done.code != DecisionCode::HeldIncompleteUsage
            {
                walk.carry
                    .insert(kind, done.amounts.map_or(Decimal::ZERO, |a| a.carried_out));
                continue;
            }
            let at = PeriodOf {
                profile,
                kind,
                period,
            };
            let decision = if let Some(missing) = missing_days(input, period, walk.held) {
                walk.held = true;
                held_decision(input, at, &walk, missing)
            } else {
                decide_period(step, at, &mut walk)
            };
            if let Some(decision) = decision {
                decided_any = true;
                let unchanged = input
                    .decided
                    .get(&key)
                    .is_some_and(|old| same_hold(old, &decision));
                if !unchanged {
                    step.commit.decisions.push(decision);
                }
            }
        }
        period = period.next();
    }
    // Periods late usage may have touched wait for the profile's next
    // decided period if this walk did not compare them.
    for (key @ (_, kind, start), _) in input.billed.range(
        (profile.id.clone(), Kind::Services, NaiveDate::MIN)
            ..=(profile.id.clone(), Kind::Purchases, NaiveDate::MAX),
    ) {
        if input.late.may_touch(profile, *kind, *start) && !walk.compared.contains(key) {
            step.commit.unchecked.push(key.clone());
        }
    }
    if decided_any {
        step.commit.profile_states.push((
            profile.id.clone(),
            ProfileState {
                currency: profile.currency.code().to_string(),
                period_start_day: profile.period_start_day,
                created_date: profile.created_date,
            },
        ));
    }
}

/// A held decision that says again what an earlier run said needs no write.
fn same_hold(old: &Decision, new: &Decision) -> bool {
    old.code == DecisionCode::HeldIncompleteUsage
        && new.code == DecisionCode::HeldIncompleteUsage
        && old.missing_days == new.missing_days
}

/// `Some(missing days)` when the period must be held (rule 6a).
fn missing_days(input: &DecideInput, period: Period, earlier_held: bool) -> Option<Vec<NaiveDate>> {
    let missing: Vec<NaiveDate> = period
        .days()
        .filter(|d| *d >= input.billing_start && !input.present_days.contains(d))
        .collect();
    (earlier_held || !missing.is_empty()).then_some(missing)
}

fn held_decision(
    input: &DecideInput,
    at: PeriodOf,
    walk: &ProfileWalk,
    missing_days: Vec<NaiveDate>,
) -> Option<Decision> {
    let has_lines = input.lines.contains_key(&at.key());
    let carry = walk.carry.get(&at.kind).copied().unwrap_or_default();
    if at.kind == Kind::Purchases && !has_lines && carry.is_zero() {
        return None;
    }
    Some(Decision {
        missing_days,
        ..at.decision(input.as_of, DecisionCode::HeldIncompleteUsage, None)
    })
}

mod period;

pub use period::recipients_of;
use period::{decide_period, number_invoices};

#[cfg(test)]
mod tests;
