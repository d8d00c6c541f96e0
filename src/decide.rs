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
    Agreement, Amounts, Billed, CoveredBy, Currency, DecideCommit, Decision, DecisionCode,
    DecisionKey, Invoice, Kind, Line, LineKey, LineSums, Offer, Period, PeriodLines, Preference,
    PreferenceChanges, Profile, ProfileState, Reference, Scope, TaxRule,
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

/// Late usage of an earlier decided period: what changed for one line key.
struct Adjustment {
    /// The key as billed (its `covered_by` says whether the trial covers it).
    key: LineKey,
    diff: LineSums,
}

/// Lines of a period: its current usage plus adjustments for late usage in
/// periods decided earlier, whose billed sums are brought up to date and
/// added to `commit`.
fn lines_with_adjustments(
    input: &DecideInput,
    at: PeriodOf,
    walk: &mut ProfileWalk,
    commit: &mut DecideCommit,
) -> (BTreeMap<LineKey, LineSums>, Vec<Adjustment>) {
    let PeriodOf {
        profile,
        kind,
        period,
    } = at;
    let current = input
        .lines
        .get(&(profile.id.clone(), kind, period.start))
        .cloned()
        .unwrap_or_default();
    let mut adjustments = Vec::new();
    for (billed_key @ (_, billed_kind, start), billed) in walk.billed.iter_mut() {
        if *billed_kind != kind
            || *start >= period.start
            || !input.late.may_touch(profile, kind, *start)
        {
            continue;
        }
        walk.compared.insert(billed_key.clone());
        let now = input
            .lines
            .get(&(profile.id.clone(), kind, *start))
            .cloned()
            .unwrap_or_default();
        let keys: BTreeSet<&LineKey> = now.keys().chain(billed.keys()).collect();
        let mut changed = false;
        for key in keys {
            let after = now.get(key).copied().unwrap_or_default();
            let before = billed.get(key).copied().unwrap_or_default();
            if after != before {
                let diff = LineSums {
                    quantity: after.quantity - before.quantity,
                    cost: after.cost - before.cost,
                    rows: after.rows - before.rows,
                };
                adjustments.push(Adjustment {
                    key: key.clone(),
                    diff,
                });
                changed = true;
            }
        }
        if changed {
            commit.billed.push((billed_key.clone(), now.clone()));
            *billed = now;
        }
    }
    (current, adjustments)
}

/// Decides one kind of one closed period (rules 1 to 7); `None` for a
/// purchases period with nothing in it.
fn decide_period(step: &mut Step, at: PeriodOf, walk: &mut ProfileWalk) -> Option<Decision> {
    let (current, adjustments) = lines_with_adjustments(step.input, at, walk, &mut step.commit);
    let carried_in = walk.carry.get(&at.kind).copied().unwrap_or_default();
    if at.kind == Kind::Purchases
        && current.is_empty()
        && adjustments.is_empty()
        && carried_in.is_zero()
    {
        return None;
    }
    let lines = build_lines(at.profile.currency, &current, &adjustments);
    let (amounts, credits_used) = step.amounts(at, &lines, carried_in);
    let code = decision_code(at.profile, at.period, &lines, &amounts, at.profile.currency);
    let amounts = settle(code, amounts);
    walk.carry.insert(at.kind, amounts.carried_out);
    let key = at.key();
    walk.billed.insert(key.clone(), current.clone());
    step.commit.billed.push((key.clone(), current));
    step.commit.lines.push((key, lines.clone()));
    if code == DecisionCode::InvoiceIssued {
        let invoice = step.invoice(at, amounts, lines);
        // The decision is pushed by the caller right after; remember its index.
        step.issued.push((step.commit.decisions.len(), invoice));
    }
    Some(Decision {
        credits_used,
        ..at.decision(step.input.as_of, code, Some(amounts))
    })
}

/// Rule 6's carry: what a period with decision `code` carries out.
fn settle(code: DecisionCode, mut amounts: Amounts) -> Amounts {
    let due = amounts.amount_due;
    amounts.carried_out = match code {
        DecisionCode::DeferredFirst30Days => due,
        DecisionCode::FreeTrial | DecisionCode::CoveredByCredit if due < Decimal::ZERO => due,
        _ => Decimal::ZERO,
    };
    if code == DecisionCode::NoCharges {
        amounts = Amounts::default();
    }
    amounts
}

impl Step<'_> {
    /// Rules 2 to 5: subtotal, trial coverage, monthly and prepaid credit
    /// (services only) and the carry in; with the prepaid grants drawn.
    fn amounts(
        &mut self,
        at: PeriodOf,
        lines: &[Line],
        carried_in: Decimal,
    ) -> (Amounts, Vec<(String, Decimal)>) {
        let (profile, currency) = (at.profile, at.profile.currency);
        let (monthly_credit, prepaid_credit, credits_used) = if at.kind == Kind::Services {
            let monthly = monthly_credit(self.input.reference, profile, lines);
            let eligible: Decimal = lines
                .iter()
                .filter(|l| l.key.credit_eligible)
                .map(|l| l.amount)
                .sum();
            let (prepaid, used) = draw_prepaid(
                self.input.reference,
                profile,
                at.period,
                eligible - monthly,
                &mut self.balances,
            );
            (monthly, prepaid, used)
        } else {
            (Decimal::ZERO, Decimal::ZERO, Vec::new())
        };
        let subtotal: Decimal = lines.iter().map(|l| l.amount).sum();
        let trial_covered: Decimal = lines
            .iter()
            .filter(|l| l.key.covered_by == CoveredBy::Trial)
            .map(|l| currency.round(l.sums.cost))
            .sum();
        let amounts = Amounts {
            subtotal,
            trial_covered,
            monthly_credit,
            prepaid_credit,
            carried_in,
            amount_due: subtotal - monthly_credit - prepaid_credit + carried_in,
            carried_out: Decimal::ZERO,
        };
        (amounts, credits_used)
    }

    /// The invoice a period issues (numbered later): its recipients from
    /// the effective e-mail preference on the invoice date, its VAT fixed.
    fn invoice(&self, at: PeriodOf, amounts: Amounts, lines: Vec<Line>) -> Invoice {
        let input = self.input;
        let profile = at.profile;
        let changes = input
            .preferences
            .get(&profile.id)
            .map_or(&[][..], Vec::as_slice);
        let preference = Preference::on(input.reference, profile, changes, input.as_of);
        Invoice {
            number: String::new(),
            account_id: profile.account_id.clone(),
            profile_id: profile.id.clone(),
            kind: at.kind,
            period: at.period,
            currency: profile.currency.code().to_string(),
            invoice_date: input.as_of,
            due_date: input.as_of + chrono::Days::new(profile.payment_terms_days as u64),
            amounts,
            lines,
            recipients: recipients_of(input.reference, profile, at.kind, &preference),
            vat: input.tax.map(|rule| rule.vat(profile, amounts.amount_due)),
        }
    }
}

/// Rule 1 and 2: line amounts rounded half away from zero; trial lines 0.
fn build_lines(
    currency: Currency,
    current: &BTreeMap<LineKey, LineSums>,
    adjustments: &[Adjustment],
) -> Vec<Line> {
    let mut lines: Vec<Line> = current
        .iter()
        .map(|(key, sums)| Line {
            key: key.clone(),
            sums: *sums,
            amount: if key.covered_by == CoveredBy::Trial {
                Decimal::ZERO
            } else {
                currency.round(sums.cost)
            },
        })
        .collect();
    for adjustment in adjustments {
        let mut key = adjustment.key.clone();
        key.covered_by = CoveredBy::Adjustment;
        let diff = adjustment.diff;
        lines.push(Line {
            key,
            sums: diff,
            amount: if adjustment.key.covered_by == CoveredBy::Trial {
                Decimal::ZERO
            } else {
                currency.round(diff.cost)
            },
        });
    }
    lines
}

/// Rule 3: per MonthlyCredit subscription, min(credit, its eligible amounts).
fn monthly_credit(reference: &Reference, profile: &Profile, lines: &[Line]) -> Decimal {
    let mut used: BTreeMap<&str, Decimal> = BTreeMap::new();
    for line in lines.iter().filter(|l| l.key.credit_eligible) {
        *used.entry(&line.key.subscription_id).or_default() += line.amount;
    }
    let mut total = Decimal::ZERO;
    for (id, used) in used {
        let Some(sub) = reference.subscriptions.get(id) else {
            continue;
        };
        if sub.profile_id == profile.id && sub.offer == Offer::MonthlyCredit && used > Decimal::ZERO
        {
            total += used.min(sub.monthly_credit.unwrap_or_default());
        }
    }
    total
}

/// Rule 4: draws usable grants, earliest expiry first, ties by id.
fn draw_prepaid(
    reference: &Reference,
    profile: &Profile,
    period: Period,
    mut remaining: Decimal,
    balances: &mut BTreeMap<String, Decimal>,
) -> (Decimal, Vec<(String, Decimal)>) {
    let mut grants: Vec<_> = reference
        .credits
        .iter()
        .filter(|c| {
            c.profile_id == profile.id
                && c.effective_date <= period.end
                && c.expiry_date >= period.start
        })
        .collect();
    grants.sort_by(|a, b| (a.expiry_date, &a.id).cmp(&(b.expiry_date, &b.id)));
    let mut drawn = Decimal::ZERO;
    let mut used = Vec::new();
    for grant in grants {
        if remaining <= Decimal::ZERO {
            break;
        }
        let balance = balances.entry(grant.id.clone()).or_insert(grant.amount);
        let take = remaining.min(*balance);
        if take > Decimal::ZERO {
            *balance -= take;
            remaining -= take;
            drawn += take;
            used.push((grant.id.clone(), take));
        }
    }
    (drawn, used)
}

/// Rule 6 b–f, the first that applies.
fn decision_code(
    profile: &Profile,
    period: Period,
    lines: &[Line],
    a: &Amounts,
    currency: Currency,
) -> DecisionCode {
    if lines.is_empty() && a.carried_in.is_zero() {
        return DecisionCode::NoCharges;
    }
    if (period.end - profile.created_date).num_days() < 30 {
        return DecisionCode::DeferredFirst30Days;
    }
    if a.amount_due <= Decimal::ZERO {
        let any_trial = lines.iter().any(|l| l.key.covered_by == CoveredBy::Trial);
        let all_trial = lines
            .iter()
            .filter(|l| !currency.round(l.sums.cost).is_zero())
            .all(|l| l.key.covered_by == CoveredBy::Trial);
        return if any_trial && all_trial {
            DecisionCode::FreeTrial
        } else {
            DecisionCode::CoveredByCredit
        };
    }
    DecisionCode::InvoiceIssued
}

/// SPEC §5: who gets a `services` invoice of a profile whose effective
/// preference (SPEC §2.3) on the invoice date is `preference`.
pub fn recipients_of(
    reference: &Reference,
    profile: &Profile,
    kind: Kind,
    preference: &Preference,
) -> Vec<String> {
    if kind != Kind::Services || !preference.email_invoice {
        return Vec::new();
    }
    let account = reference.account_of(profile);
    let mut emails: BTreeSet<String> = BTreeSet::new();
    match account.agreement {
        Agreement::Mca | Agreement::Mpa => {
            for role in &reference.roles {
                if role.scope == Scope::BillingProfile && role.scope_id == profile.id {
                    emails.insert(role.email.clone());
                }
            }
        }
        Agreement::Mosp => {
            emails.insert(
                preference
                    .invoice_email
                    .clone()
                    .unwrap_or_else(|| account.admin_email.clone()),
            );
            emails.extend(preference.recipients.iter().cloned());
        }
    }
    emails.into_iter().collect()
}

/// Numbers this step's invoices from one gapless sequence, in order of
/// (period_end, billingProfileId byte-wise, kind with services first).
fn number_invoices(
    input: &DecideInput,
    commit: &mut DecideCommit,
    mut issued: Vec<(usize, Invoice)>,
) {
    issued.sort_by(|(_, a), (_, b)| {
        (a.period.end, a.profile_id.as_bytes(), a.kind).cmp(&(
            b.period.end,
            b.profile_id.as_bytes(),
            b.kind,
        ))
    });
    for (offset, (decision_index, mut invoice)) in issued.into_iter().enumerate() {
        let seq = input.next_seq + offset as u64;
        invoice.number = format!("{}{:08}", input.invoice_prefix, seq);
        commit.decisions[decision_index].invoice_number = Some(invoice.number.clone());
        commit.invoices.push((seq, invoice));
    }
}

#[cfg(test)]
mod tests;
