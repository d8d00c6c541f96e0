//! Billing periods anchored on any day of the month (SPEC §3).

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// A billing period: `start` to `end`, both inclusive (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    /// The period with anchor day `start_day` (1-28) that contains `date`.
    pub fn containing(date: NaiveDate, start_day: u32) -> Period {
        let this_month = date.with_day(start_day).expect("start day is 1-28");
        let start = if date.day() >= start_day {
            this_month
        } else {
            this_month - Months::new(1)
        };
        Period::starting(start)
    }

    /// The period starting on `start` (its anchor day is `start.day()`).
    pub fn starting(start: NaiveDate) -> Period {
        let end = start + Months::new(1) - chrono::Days::new(1);
        Period { start, end }
    }

    pub fn next(&self) -> Period {
        Period::starting(self.start + Months::new(1))
    }

    /// Closed on `as_of` when `as_of >= end + 1 + settle_days`.
    pub fn is_closed(&self, as_of: NaiveDate, settle_days: u32) -> bool {
        as_of >= self.end + chrono::Days::new(1 + settle_days as u64)
    }

    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        let end = self.end;
        self.start.iter_days().take_while(move |d| *d <= end)
    }

    /// `YYYY-MM` of the period's start: the partition name of its outputs.
    pub fn month_key(&self) -> String {
        self.start.format("%Y-%m").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn periods_on_calendar_and_anchored_days() {
        let cases = [
            // (date, start day, expected start, expected end)
            ("2026-10-15", 1, "2026-10-01", "2026-10-31"),
            ("2026-02-28", 1, "2026-02-01", "2026-02-28"),
            ("2028-02-29", 1, "2028-02-01", "2028-02-29"),
            ("2026-10-14", 15, "2026-09-15", "2026-10-14"),
            ("2026-10-15", 15, "2026-10-15", "2026-11-14"),
            ("2027-01-10", 28, "2026-12-28", "2027-01-27"),
            ("2027-02-27", 28, "2027-01-28", "2027-02-27"),
            ("2027-02-28", 28, "2027-02-28", "2027-03-27"),
            ("2028-02-29", 28, "2028-02-28", "2028-03-27"),
            ("2028-02-27", 28, "2028-01-28", "2028-02-27"),
            ("2026-12-31", 1, "2026-12-01", "2026-12-31"),
        ];
        for (date, day, start, end) in cases {
            let p = Period::containing(d(date), day);
            assert_eq!((p.start, p.end), (d(start), d(end)), "{date} day {day}");
        }
    }

    #[test]
    fn closed_after_settle_days() {
        let p = Period::containing(d("2026-10-05"), 1);
        assert!(!p.is_closed(d("2026-11-02"), 2));
        assert!(p.is_closed(d("2026-11-03"), 2));
        assert!(p.is_closed(d("2026-11-01"), 0));
    }
}
