//! Each rule of SPEC §3–§4 on hand-made periods, amounts worked out by hand.

use super::*;

#[test]
fn only_closed_periods_are_decided() {
    // October closes on Nov 1 + 1 + 2 settle days = 2026-11-03.
    let lines = Lines::default().add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "10");
    let early = Case::new(reference(), lines, "2026-11-02").decide();
    assert!(early.decisions.is_empty());
    let lines = Lines::default().add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "10");
    let closed = Case::new(reference(), lines, "2026-11-03").decide();
    assert_eq!(closed.decisions.len(), 1);
}

#[test]
fn every_decision_code() {
    struct Row {
        name: &'static str,
        setup: fn(&mut Reference) -> Lines,
        code: DecisionCode,
        amount_due: &'static str,
        carried_out: &'static str,
    }
    let rows = [
        Row {
            name: "no usage, nothing carried",
            setup: |_| Lines::default(),
            code: DecisionCode::NoCharges,
            amount_due: "0",
            carried_out: "0",
        },
        Row {
            // 12.345 rounds half away from zero to 12.35.
            name: "usage owed",
            setup: |_| {
                Lines::default().add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "12.345")
            },
            code: DecisionCode::InvoiceIssued,
            amount_due: "12.35",
            carried_out: "0",
        },
        Row {
            // Created 2026-10-05: 2026-10-31 - 2026-10-05 = 26 days < 30.
            name: "new profile deferred",
            setup: |r| {
                r.profiles.get_mut("P").unwrap().created_date = d("2026-10-05");
                Lines::default().add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "40")
            },
            code: DecisionCode::DeferredFirst30Days,
            amount_due: "40",
            carried_out: "40",
        },
        Row {
            // Trial lines keep their cost (7.50) but have amount 0: subtotal 0.
            name: "all usage on free trial",
            setup: |r| {
                r.subscriptions.get_mut("S").unwrap().offer = Offer::FreeTrial;
                Lines::default().add("P", "2026-10-01", key("S", "vm", CoveredBy::Trial), "7.50")
            },
            code: DecisionCode::FreeTrial,
            amount_due: "0",
            carried_out: "0",
        },
        Row {
            // 97.40 of usage, monthly credit 150: credit = min(150, 97.40) = 97.40.
            name: "monthly credit covers",
            setup: |r| {
                let s = r.subscriptions.get_mut("S").unwrap();
                s.offer = Offer::MonthlyCredit;
                s.monthly_credit = Some(dec("150"));
                Lines::default().add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "97.40")
            },
            code: DecisionCode::CoveredByCredit,
            amount_due: "0",
            carried_out: "0",
        },
        Row {
            // 10 usage - 25 refund = -15: a credit carried forward.
            name: "refunds net below zero",
            setup: |_| {
                Lines::default()
                    .add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "10")
                    .add(
                        "P",
                        "2026-10-01",
                        key("S", "refund", CoveredBy::None),
                        "-25",
                    )
            },
            code: DecisionCode::CoveredByCredit,
            amount_due: "-15",
            carried_out: "-15",
        },
    ];
    for row in rows {
        let mut reference = reference();
        let lines = (row.setup)(&mut reference);
        let commit = Case::new(reference, lines, "2026-11-03").decide();
        let decided = decision(&commit, "P", Kind::Services, "2026-10-01");
        assert_eq!(decided.code, row.code, "{}", row.name);
        let a = decided.amounts.unwrap();
        assert_eq!(a.amount_due, dec(row.amount_due), "{}", row.name);
        assert_eq!(a.carried_out, dec(row.carried_out), "{}", row.name);
        assert_eq!(
            commit.invoices.len(),
            usize::from(row.code == DecisionCode::InvoiceIssued),
            "{}",
            row.name
        );
    }
}

#[test]
fn held_until_every_day_is_present_and_later_periods_wait() {
    let lines = Lines::default()
        .add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "10")
        .add("P", "2026-11-01", key("S", "vm", CoveredBy::None), "20");
    let mut case = Case::new(reference(), lines, "2026-12-03");
    case.present.remove(&d("2026-10-17"));
    let commit = case.decide();
    let october = decision(&commit, "P", Kind::Services, "2026-10-01");
    assert_eq!(october.code, DecisionCode::HeldIncompleteUsage);
    assert_eq!(october.missing_days, vec![d("2026-10-17")]);
    assert!(october.amounts.is_none());
    let november = decision(&commit, "P", Kind::Services, "2026-11-01");
    assert_eq!(november.code, DecisionCode::HeldIncompleteUsage);
    assert!(november.missing_days.is_empty());
    assert!(commit.invoices.is_empty());
    assert!(commit.lines.is_empty());
    case.apply(&commit);

    // The same run again: nothing new to write.
    assert!(case.decide().decisions.is_empty());

    // The day arrives: both periods are decided, in order.
    case.present.insert(d("2026-10-17"));
    let commit = case.decide();
    let numbers: Vec<_> = commit
        .invoices
        .iter()
        .map(|(_, i)| (i.number.clone(), i.period.start))
        .collect();
    assert_eq!(
        numbers,
        vec![
            ("INV-00000001".to_string(), d("2026-10-01")),
            ("INV-00000002".to_string(), d("2026-11-01"))
        ]
    );
}

#[test]
fn deferred_amount_is_carried_into_the_next_period() {
    // Created Oct 25: October (6 days) deferred with 28.39; November owes 121.68 + 28.39 = 150.07.
    let mut r = reference();
    r.profiles.get_mut("P").unwrap().created_date = d("2026-10-25");
    let lines = Lines::default()
        .add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "28.392")
        .add("P", "2026-11-01", key("S", "vm", CoveredBy::None), "121.68");
    let commit = Case::new(r, lines, "2026-12-03").decide();
    assert_eq!(
        amounts(&commit, "P", "2026-10-01").carried_out,
        dec("28.39")
    );
    let november = amounts(&commit, "P", "2026-11-01");
    assert_eq!(november.carried_in, dec("28.39"));
    assert_eq!(november.amount_due, dec("150.07"));
    assert_eq!(november.carried_out, Decimal::ZERO);
}

#[test]
fn prepaid_credit_draws_earliest_expiry_first_and_carries_its_balance() {
    // Grants: B 30 expiring Dec 31, A 100 expiring Mar 31, C 50 (same expiry as A,
    // after it by id). October 50: B 30 + A 20. November 120: A 80 + C 40.
    // December 40: B has expired, A is empty, C has 10 left: due 30.
    let mut r = reference();
    for (id, amount, expiry) in [
        ("A", "100", "2027-03-31"),
        ("B", "30", "2026-12-31"),
        ("C", "50", "2027-03-31"),
    ] {
        r.credits.push(CreditGrant {
            id: id.into(),
            profile_id: "P".into(),
            amount: dec(amount),
            effective_date: d("2026-10-01"),
            expiry_date: d(expiry),
        });
    }
    let lines = Lines::default()
        .add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "50")
        .add("P", "2026-11-01", key("S", "vm", CoveredBy::None), "120")
        .add("P", "2026-12-01", key("S", "vm", CoveredBy::None), "40");
    let mut case = Case::new(r, lines, "2026-12-03");
    let commit = case.decide();
    let october = decision(&commit, "P", Kind::Services, "2026-10-01");
    assert_eq!(
        october.credits_used,
        vec![("B".to_string(), dec("30")), ("A".to_string(), dec("20"))]
    );
    assert_eq!(october.code, DecisionCode::CoveredByCredit);
    let november = decision(&commit, "P", Kind::Services, "2026-11-01");
    assert_eq!(
        november.credits_used,
        vec![("A".to_string(), dec("80")), ("C".to_string(), dec("40"))]
    );
    case.apply(&commit);

    // A later run decides December from the balances the ledger derives.
    case.as_of = d("2027-01-03");
    let commit = case.decide();
    let december = amounts(&commit, "P", "2026-12-01");
    assert_eq!(december.prepaid_credit, dec("10"));
    assert_eq!(december.amount_due, dec("30"));
}

#[test]
fn free_trial_only_when_every_charged_line_is_covered() {
    // A trial line plus a 0.004 line (rounds to 0.00): still free_trial.
    let mut r = reference();
    r.subscriptions.get_mut("S").unwrap().offer = Offer::FreeTrial;
    let lines = Lines::default()
        .add("P", "2026-10-01", key("S", "vm", CoveredBy::Trial), "9.99")
        .add("P", "2026-10-01", key("S", "ip", CoveredBy::None), "0.004");
    let commit = Case::new(r.clone(), lines, "2026-11-03").decide();
    assert_eq!(
        decision(&commit, "P", Kind::Services, "2026-10-01").code,
        DecisionCode::FreeTrial
    );
    assert_eq!(
        amounts(&commit, "P", "2026-10-01").trial_covered,
        dec("9.99")
    );

    // A monthly credit covering the uncovered rest makes it covered_by_credit.
    add_subscription(&mut r, "M", "P", Offer::MonthlyCredit);
    r.subscriptions.get_mut("M").unwrap().monthly_credit = Some(dec("50"));
    let lines = Lines::default()
        .add("P", "2026-10-01", key("S", "vm", CoveredBy::Trial), "9.99")
        .add("P", "2026-10-01", key("M", "vm", CoveredBy::None), "5");
    let commit = Case::new(r, lines, "2026-11-03").decide();
    assert_eq!(
        decision(&commit, "P", Kind::Services, "2026-10-01").code,
        DecisionCode::CoveredByCredit
    );
}

#[test]
fn numbers_follow_period_end_then_profile_bytes_then_kind() {
    // Profile "b" (calendar) and "a" (anchored on the 15th, period Oct 15 - Nov 14)
    // and MOSP "Z" with both kinds. Byte order: "Z" < "a" < "b".
    let mut r = reference();
    r.accounts.insert(
        "M".into(),
        Account {
            id: "M".into(),
            name: "Mosp".into(),
            agreement: Agreement::Mosp,
            admin_email: "m@m.example".into(),
        },
    );
    add_profile(&mut r, "b", "A", "USD", d("2025-01-01"), 1);
    add_profile(&mut r, "a", "A", "USD", d("2025-01-01"), 15);
    add_profile(&mut r, "Z", "M", "USD", d("2025-01-01"), 1);
    let mut marketplace = key("Z", "saas", CoveredBy::None);
    std::sync::Arc::make_mut(&mut marketplace.meter).publisher_type = "Marketplace".into();
    let lines = Lines::default()
        .add("b", "2026-10-01", key("x", "vm", CoveredBy::None), "1")
        .add("a", "2026-10-15", key("x", "vm", CoveredBy::None), "1")
        .add("Z", "2026-10-01", key("Z", "vm", CoveredBy::None), "1")
        .add_kind("Z", Kind::Purchases, "2026-10-01", marketplace, "49");
    let commit = Case::new(r, lines, "2026-11-17").decide();
    let order: Vec<(String, Kind)> = commit
        .invoices
        .iter()
        .map(|(_, i)| (i.profile_id.clone(), i.kind))
        .collect();
    assert_eq!(
        order,
        vec![
            ("Z".to_string(), Kind::Services),
            ("Z".to_string(), Kind::Purchases),
            ("b".to_string(), Kind::Services),
            ("a".to_string(), Kind::Services),
        ]
    );
    let numbers: Vec<_> = commit
        .invoices
        .iter()
        .map(|(_, i)| i.number.as_str())
        .collect();
    assert_eq!(
        numbers,
        [
            "INV-00000001",
            "INV-00000002",
            "INV-00000003",
            "INV-00000004"
        ]
    );
    // Purchases invoices are never e-mailed.
    assert!(commit.invoices[1].1.recipients.is_empty());
}

#[test]
fn deciding_twice_decides_nothing_new() {
    let lines = Lines::default()
        .add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "10")
        .add("P", "2026-11-01", key("S", "vm", CoveredBy::None), "10");
    let mut case = Case::new(reference(), lines, "2026-12-03");
    let commit = case.decide();
    assert_eq!(commit.decisions.len(), 2);
    case.apply(&commit);
    let again = case.decide();
    assert!(again.decisions.is_empty());
    assert!(again.invoices.is_empty());
    assert!(again.lines.is_empty());
}

#[test]
fn minor_units_from_the_iso_table() {
    // JPY has no minor unit: 1234.5 rounds half away from zero to 1235.
    let mut r = reference();
    r.profiles.get_mut("P").unwrap().currency = Currency::parse("JPY").unwrap();
    let lines = Lines::default().add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "1234.5");
    let commit = Case::new(r, lines, "2026-11-03").decide();
    assert_eq!(amounts(&commit, "P", "2026-10-01").amount_due, dec("1235"));
}
