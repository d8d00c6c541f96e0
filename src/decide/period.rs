//! Deciding one period (SPEC §4 rules 1 to 7): its lines with adjustments
//! for late usage in periods decided earlier, the amounts (trial, monthly
//! and prepaid credit, carries), the decision code, and the invoice it
//! issues with its recipients and VAT; invoices numbered at the end.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use crate::model::{
    Agreement, Amounts, CoveredBy, Currency, DecideCommit, Decision, DecisionCode, Invoice, Kind,
    Line, LineKey, LineSums, Offer, Period, Preference, Profile, Reference, Scope,
};

use super::{DecideInput, PeriodOf, ProfileWalk, Step};

/// Late usage of an earlier decided period: what changed for one line key.
pub(super) struct Adjustment {
    /// The key as billed (its `covered_by` says whether the trial covers it).
    key: LineKey,
    diff: LineSums,
}

/// Lines of a period: its current usage plus adjustments for late usage in
/// periods decided earlier, whose billed sums are brought up to date and
/// added to `commit`.
pub(super) fn lines_with_adjustments(
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
pub(super) fn decide_period(
    step: &mut Step,
    at: PeriodOf,
    walk: &mut ProfileWalk,
) -> Option<Decision> {
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
            einvoice: input
                .tax
                .map_or(crate::model::EinvoiceAddresses::Unrecorded, |rule| {
                    rule.einvoice_addresses(profile)
                }),
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
pub(super) fn number_invoices(
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
