//! Late usage (SPEC §4): billed as adjustment lines on the next decided
//! period, and which periods need their lines read again.

use super::*;

#[test]
fn late_usage_is_billed_as_adjustment_lines_on_the_next_period() {
    let lines = Lines::default().add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "100");
    let mut case = Case::new(reference(), lines, "2026-11-03");
    let first = case.decide();
    case.apply(&first);
    // Late rows for October (+5.255) arrive after it was invoiced.
    case.lines = Lines::default()
        .add(
            "P",
            "2026-10-01",
            key("S", "vm", CoveredBy::None),
            "105.255",
        )
        .add("P", "2026-11-01", key("S", "vm", CoveredBy::None), "10")
        .0;
    case.as_of = d("2026-12-03");
    let commit = case.decide();
    // October is never decided again.
    assert!(
        commit
            .decisions
            .iter()
            .all(|x| x.period.start != d("2026-10-01"))
    );
    let (_, november) = commit
        .lines
        .iter()
        .find(|(k, _)| k.2 == d("2026-11-01"))
        .unwrap();
    let adjustment = november
        .iter()
        .find(|l| l.key.covered_by == CoveredBy::Adjustment)
        .unwrap();
    assert_eq!(adjustment.sums.cost, dec("5.255"));
    assert_eq!(adjustment.amount, dec("5.26"));
    assert_eq!(amounts(&commit, "P", "2026-11-01").subtotal, dec("15.26"));
    case.apply(&commit);
    // Billed once: the next period has no adjustment again.
    case.lines.insert(
        ("P".into(), Kind::Services, d("2026-12-01")),
        BTreeMap::new(),
    );
    case.as_of = d("2027-01-03");
    let commit = case.decide();
    assert!(
        commit
            .lines
            .iter()
            .all(|(_, ls)| ls.iter().all(|l| l.key.covered_by != CoveredBy::Adjustment))
    );
}

#[test]
fn only_closed_undecided_periods_and_decided_ones_with_fresh_days_need_lines() {
    let lines = Lines::default().add("P", "2026-10-01", key("S", "vm", CoveredBy::None), "100");
    let mut case = Case::new(reference(), lines, "2026-11-03");
    let needing = |case: &Case| {
        periods_needing_lines(
            &case.reference,
            case.as_of,
            2,
            d("2026-10-01"),
            &case.decided,
            &case.late(),
        )
    };
    // October is closed and undecided; November is still open.
    assert_eq!(
        needing(&case),
        BTreeSet::from([("P".to_string(), d("2026-10-01"))])
    );
    let first = case.decide();
    case.apply(&first);
    case.fresh.clear();
    // A night with nothing new and nothing closing needs no lines at all.
    case.as_of = d("2026-11-20");
    assert!(needing(&case).is_empty());
    // October's lines are not read again, and that is not late usage:
    // November (now closed) gets no adjustment.
    case.as_of = d("2026-12-03");
    case.lines = Lines::default()
        .add("P", "2026-11-01", key("S", "vm", CoveredBy::None), "10")
        .0;
    assert_eq!(
        needing(&case),
        BTreeSet::from([("P".to_string(), d("2026-11-01"))])
    );
    let commit = case.decide();
    assert_eq!(amounts(&commit, "P", "2026-11-01").subtotal, dec("10.00"));
    // A file re-delivered for an October day makes October needed again.
    case.fresh.insert(d("2026-10-15"));
    assert_eq!(
        needing(&case),
        BTreeSet::from([
            ("P".to_string(), d("2026-10-01")),
            ("P".to_string(), d("2026-11-01"))
        ])
    );
}

#[test]
fn late_usage_on_a_night_that_decides_nothing_waits_for_the_next_period() {
    let october = key("S", "vm", CoveredBy::None);
    let lines = Lines::default().add("P", "2026-10-01", october.clone(), "100");
    let mut case = Case::new(reference(), lines, "2026-11-03");
    let first = case.decide();
    case.apply(&first);
    // 10 November: a re-delivered October file adds 5.255; nothing closes.
    case.fresh = BTreeSet::from([d("2026-10-15")]);
    case.as_of = d("2026-11-10");
    case.lines = Lines::default()
        .add("P", "2026-10-01", october.clone(), "105.255")
        .0;
    let quiet = case.decide();
    assert!(quiet.decisions.is_empty());
    assert_eq!(
        quiet.unchecked,
        vec![("P".to_string(), Kind::Services, d("2026-10-01"))]
    );
    case.apply(&quiet);
    // 3 December: no fresh day any more, but October is still unchecked,
    // so it is aggregated and its late usage billed on November.
    case.fresh.clear();
    case.as_of = d("2026-12-03");
    let needing = periods_needing_lines(
        &case.reference,
        case.as_of,
        2,
        d("2026-10-01"),
        &case.decided,
        &case.late(),
    );
    assert!(needing.contains(&("P".to_string(), d("2026-10-01"))));
    case.lines = Lines::default()
        .add("P", "2026-10-01", october, "105.255")
        .add("P", "2026-11-01", key("S", "vm", CoveredBy::None), "10")
        .0;
    let commit = case.decide();
    assert_eq!(amounts(&commit, "P", "2026-11-01").subtotal, dec("15.26"));
    assert!(commit.unchecked.is_empty());
}
