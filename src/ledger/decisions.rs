//! Decisions, their lines and billed sums, profile states, the invoices a
//! decide step issues (numbered in the same transaction), and the decided
//! periods late usage may still touch.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::model::{
    Billed, DecideCommit, Decision, DecisionCode, DecisionKey, LineKey, LineSums, ProfileState,
};

use rusqlite::{Transaction, params};

use super::outbox::{Document, add_delivery};
use super::outputs::mark_dirty;
use super::stored_lines;
use super::{Ledger, Result, date, from_json, json, parse_kind, sqlite_error, text_cells};

/// Periods whose lines are deflated at once when a decide step is committed.
const PERIODS_DEFLATED_AT_ONCE: usize = 256;

/// The sums a period's decided lines bill: all but its adjustments of
/// earlier periods, in key order.
fn billed_by(lines: &[crate::model::Line]) -> impl Iterator<Item = (&LineKey, &LineSums)> {
    lines
        .iter()
        .filter(|l| l.key.covered_by != crate::model::CoveredBy::Adjustment)
        .map(|l| (&l.key, &l.sums))
}

impl Ledger {
    /// Profiles that have issued at least one invoice, with one of its numbers.
    /// Read from the decisions (indexed by profile, a few hundred bytes
    /// each), not the invoices, whose JSON holds every line.
    pub fn invoiced_profiles(&self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        self.for_text_rows(
            "SELECT profile_id, MIN(json_extract(data, '$.invoice_number')) FROM decisions
             WHERE code = 'invoice_issued' GROUP BY profile_id",
            [],
            |[profile, number]| {
                out.insert(profile, number);
                Ok(())
            },
        )?;
        Ok(out)
    }

    pub fn profile_states(&self) -> Result<BTreeMap<String, ProfileState>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT profile_id, currency, period_start_day, created_date FROM profile_state",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (id, currency, period_start_day, created) = row.map_err(self.err())?;
            let created_date = date("profile_state.created_date", &created)?;
            out.insert(
                id,
                ProfileState {
                    currency,
                    period_start_day,
                    created_date,
                },
            );
        }
        Ok(out)
    }

    pub fn decisions(&self) -> Result<BTreeMap<DecisionKey, Decision>> {
        self.decisions_of("SELECT data FROM decisions", [])
    }

    /// The decisions of one code.
    pub fn decisions_coded(&self, code: DecisionCode) -> Result<BTreeMap<DecisionKey, Decision>> {
        self.decisions_of(
            "SELECT data FROM decisions WHERE code = ?1",
            [code.as_str()],
        )
    }

    fn decisions_of(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<BTreeMap<DecisionKey, Decision>> {
        let mut out = BTreeMap::new();
        self.for_text_rows(sql, params, |[data]| {
            let decision: Decision = from_json("decisions.data", &data)?;
            let key = (
                decision.profile_id.clone(),
                decision.kind,
                decision.period.start,
            );
            out.insert(key, decision);
            Ok(())
        })?;
        Ok(out)
    }

    /// Billed sums of the decided periods starting on or after `since`
    /// (periods starting earlier cannot contain a later fresh day).
    pub fn billed_since(&self, since: NaiveDate) -> Result<BTreeMap<DecisionKey, Billed>> {
        let mut out = BTreeMap::new();
        self.for_text_rows(
            "SELECT profile_id, kind, period_start, data FROM billed WHERE period_start >= ?1",
            [since.to_string()],
            |[profile, kind, start, data]| {
                let entries: Vec<(LineKey, LineSums)> = from_json("billed.data", &data)?;
                let kind = parse_kind("billed.kind", &kind)?;
                out.insert(
                    (profile, kind, date("billed.period_start", &start)?),
                    entries.into_iter().collect(),
                );
                Ok(())
            },
        )?;
        // A period billed as decided has no row of its own: its lines say it.
        self.for_rows_with_lines(
            "SELECT profile_id, kind, period_start, data FROM lines l WHERE period_start >= ?1
             AND NOT EXISTS (SELECT 1 FROM billed b WHERE b.profile_id = l.profile_id
                             AND b.kind = l.kind AND b.period_start = l.period_start)",
            [since.to_string()],
            |[profile, kind, start], lines| {
                let kind = parse_kind("lines.kind", &kind)?;
                out.insert(
                    (profile, kind, date("lines.period_start", &start)?),
                    billed_by(&lines).map(|(k, s)| (k.clone(), *s)).collect(),
                );
                Ok(())
            },
        )?;
        Ok(out)
    }

    pub fn lines_of(&self, key: &DecisionKey) -> Result<Vec<crate::model::Line>> {
        let mut found = Vec::new();
        self.for_rows_with_lines(
            "SELECT data FROM lines WHERE profile_id = ?1 AND kind = ?2 AND period_start = ?3",
            params![key.0, key.1.as_str(), key.2.to_string()],
            |[], lines| {
                found = lines;
                Ok(())
            },
        )?;
        Ok(found)
    }

    /// The decided periods whose start falls in the month `YYYY-MM`, in
    /// key order (their lines are read with `lines_of`).
    pub fn line_periods_in_month(&self, month: &str) -> Result<Vec<DecisionKey>> {
        let mut keys = Vec::new();
        self.for_text_rows(
            "SELECT profile_id, kind, period_start FROM lines
             WHERE substr(period_start, 1, 7) = ?1 ORDER BY profile_id, kind, period_start",
            [month],
            |[profile, kind, start]| {
                let kind = parse_kind("lines.kind", &kind)?;
                keys.push((profile, kind, date("lines.period_start", &start)?));
                Ok(())
            },
        )?;
        Ok(keys)
    }

    /// Like `for_text_rows`, with a period's stored lines in the column
    /// after the `N` text ones.
    fn for_rows_with_lines<const N: usize>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        mut each: impl FnMut([String; N], Vec<crate::model::Line>) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let mut rows = stmt.query(params).map_err(self.err())?;
        while let Some(row) = rows.next().map_err(self.err())? {
            let cells = text_cells(row).map_err(self.err())?;
            let lines = stored_lines::decode(row.get_ref(N).map_err(self.err())?)?;
            each(cells, lines)?;
        }
        Ok(())
    }

    pub fn next_invoice_seq(&self) -> Result<u64> {
        let max: Option<i64> = self
            .conn
            .query_row("SELECT MAX(seq) FROM invoices", [], |r| r.get(0))
            .map_err(self.err())?;
        Ok(max.map_or(1, |m| m as u64 + 1))
    }

    /// Commits a decide step: decisions, lines, billed sums, invoices with
    /// their numbers and outbox rows, and the outputs they make dirty.
    pub fn commit_decisions(&mut self, commit: &DecideCommit) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| sqlite_error(path.clone(), source);
        let tx = self.write()?;
        insert_decisions(&tx, commit).map_err(wrap)?;
        insert_lines(&tx, commit).map_err(wrap)?;
        insert_billed(&tx, commit).map_err(wrap)?;
        insert_invoices(&tx, commit).map_err(wrap)?;
        insert_late_usage_state(&tx, commit).map_err(wrap)?;
        tx.commit().map_err(wrap)
    }

    /// Decided periods still to be compared with their billed sums
    /// ([`DecideCommit::unchecked`]).
    pub fn unchecked(&self) -> Result<BTreeSet<DecisionKey>> {
        let mut out = BTreeSet::new();
        self.for_text_rows(
            "SELECT profile_id, kind, period_start FROM unchecked",
            [],
            |[profile, kind, start]| {
                let kind = parse_kind("unchecked.kind", &kind)?;
                out.insert((profile, kind, date("unchecked.period_start", &start)?));
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Days ingested (or re-ingested) since a decide step last looked at
    /// them: only decided periods containing one can have late usage.
    pub fn fresh_days(&self) -> Result<BTreeSet<NaiveDate>> {
        let mut out = BTreeSet::new();
        self.for_text_rows("SELECT day FROM fresh_days", [], |[day]| {
            out.insert(date("fresh_days.day", &day)?);
            Ok(())
        })?;
        Ok(out)
    }
}

/// The decisions and profile states of a commit.
fn insert_decisions(tx: &Transaction, commit: &DecideCommit) -> rusqlite::Result<()> {
    for d in &commit.decisions {
        tx.execute(
            "INSERT OR REPLACE INTO decisions (profile_id, kind, period_start, code, data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                d.profile_id,
                d.kind.as_str(),
                d.period.start.to_string(),
                d.code.as_str(),
                json(d)
            ],
        )?;
        mark_dirty(tx, "decisions", &d.period.month_key())?;
    }
    for (id, state) in &commit.profile_states {
        tx.execute(
            "INSERT OR IGNORE INTO profile_state (profile_id, currency, period_start_day, created_date)
             VALUES (?1, ?2, ?3, ?4)",
            params![id, state.currency, state.period_start_day, state.created_date.to_string()],
        )?;
    }
    Ok(())
}

/// A commit's period lines, deflated on every core a chunk of periods at a
/// time: a month end's stored lines are never all in memory at once.
fn insert_lines(tx: &Transaction, commit: &DecideCommit) -> rusqlite::Result<()> {
    for chunk in commit.lines.chunks(PERIODS_DEFLATED_AT_ONCE) {
        let stored: Vec<Vec<u8>> = chunk
            .par_iter()
            .map(|(_, lines)| stored_lines::encode(lines))
            .collect();
        for (((profile, kind, start), _), stored) in chunk.iter().zip(stored) {
            tx.execute(
                "INSERT OR REPLACE INTO lines (profile_id, kind, period_start, data) VALUES (?1, ?2, ?3, ?4)",
                params![profile, kind.as_str(), start.to_string(), stored],
            )?;
            mark_dirty(tx, "lines", &start.format("%Y-%m").to_string())?;
        }
    }
    Ok(())
}

/// What each period billed; a period billed as decided keeps no row of
/// its own (its lines say it, see `billed_since`).
fn insert_billed(tx: &Transaction, commit: &DecideCommit) -> rusqlite::Result<()> {
    let decided_lines: BTreeMap<&DecisionKey, &Vec<crate::model::Line>> = commit
        .lines
        .iter()
        .map(|(key, lines)| (key, lines))
        .collect();
    for (key @ (profile, kind, start), billed) in &commit.billed {
        if decided_lines
            .get(key)
            .is_some_and(|lines| billed_by(lines).eq(billed.iter()))
        {
            tx.execute(
                "DELETE FROM billed WHERE profile_id = ?1 AND kind = ?2 AND period_start = ?3",
                params![profile, kind.as_str(), start.to_string()],
            )?;
            continue;
        }
        let entries: Vec<_> = billed.iter().collect();
        tx.execute(
            "INSERT OR REPLACE INTO billed (profile_id, kind, period_start, data) VALUES (?1, ?2, ?3, ?4)",
            params![profile, kind.as_str(), start.to_string(), json(&entries)],
        )?;
    }
    Ok(())
}

/// The invoices issued, numbered, with a pending e-mail per recipient.
fn insert_invoices(tx: &Transaction, commit: &DecideCommit) -> rusqlite::Result<()> {
    for (seq, invoice) in &commit.invoices {
        tx.execute(
            "INSERT INTO invoices (seq, number, period_start, data, amount_paid, status)
             VALUES (?1, ?2, ?3, ?4, '0', 'due')",
            params![
                *seq as i64,
                invoice.number,
                invoice.period.start.to_string(),
                json(&invoice.head())
            ],
        )?;
        mark_dirty(tx, "invoices", &invoice.period.month_key())?;
        for recipient in &invoice.recipients {
            add_delivery(tx, Document::Invoice, &invoice.number, recipient)?;
        }
    }
    Ok(())
}

/// The fresh days this step looked at, and the periods still unchecked.
fn insert_late_usage_state(tx: &Transaction, commit: &DecideCommit) -> rusqlite::Result<()> {
    for day in &commit.seen_fresh_days {
        tx.execute("DELETE FROM fresh_days WHERE day = ?1", [day.to_string()])?;
    }
    tx.execute("DELETE FROM unchecked", [])?;
    for (profile, kind, start) in &commit.unchecked {
        tx.execute(
            "INSERT INTO unchecked (profile_id, kind, period_start) VALUES (?1, ?2, ?3)",
            params![profile, kind.as_str(), start.to_string()],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rust_decimal::Decimal;

    use super::*;
    use crate::model::{CoveredBy, DecideCommit, Kind, Line, MeterLine};

    fn line(meter: &str, cost: i64, covered_by: CoveredBy) -> Line {
        let sums = LineSums {
            quantity: Decimal::ONE,
            cost: Decimal::new(cost, 2),
            rows: 1,
        };
        Line {
            key: LineKey {
                subscription_id: "S".into(),
                meter: Arc::new(MeterLine {
                    meter_id: meter.into(),
                    ..Default::default()
                }),
                credit_eligible: true,
                covered_by,
            },
            sums,
            amount: sums.cost,
        }
    }

    fn billed(lines: &[Line]) -> Billed {
        lines.iter().map(|l| (l.key.clone(), l.sums)).collect()
    }

    /// A period billed as decided is read back from its lines (no row of its
    /// own); one whose billed sums changed later (late usage) from its row.
    #[test]
    fn billed_sums_are_the_decided_lines_until_late_usage_changes_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
        let start = |d| NaiveDate::from_ymd_opt(2026, 10, d).unwrap();
        let september = (
            "P".to_string(),
            Kind::Services,
            start(1) - chrono::Days::new(30),
        );
        let october = ("P".to_string(), Kind::Services, start(1));
        let september_lines = vec![
            line("a", 100, CoveredBy::None),
            line("b", 5, CoveredBy::Trial),
        ];
        // October: one line of its own and an adjustment of September's "a".
        let october_lines = vec![
            line("c", 700, CoveredBy::None),
            line("a", 50, CoveredBy::Adjustment),
        ];
        let september_now = billed(&[
            line("a", 150, CoveredBy::None),
            line("b", 5, CoveredBy::Trial),
        ]);
        ledger
            .commit_decisions(&DecideCommit {
                lines: vec![(september.clone(), september_lines.clone())],
                billed: vec![(september.clone(), billed(&september_lines))],
                ..Default::default()
            })
            .unwrap();
        let stored: i64 = ledger
            .conn
            .query_row("SELECT count(*) FROM billed", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 0, "billed as decided: no row");
        let read = ledger
            .billed_since(start(1) - chrono::Days::new(60))
            .unwrap();
        assert_eq!(read[&september], billed(&september_lines));

        ledger
            .commit_decisions(&DecideCommit {
                lines: vec![(october.clone(), october_lines.clone())],
                billed: vec![
                    (october.clone(), billed(&october_lines[..1])),
                    (september.clone(), september_now.clone()),
                ],
                ..Default::default()
            })
            .unwrap();
        let read = ledger
            .billed_since(start(1) - chrono::Days::new(60))
            .unwrap();
        assert_eq!(read[&september], september_now, "late usage changed it");
        assert_eq!(
            read[&october],
            billed(&october_lines[..1]),
            "adjustments are not billed"
        );
        assert_eq!(read.len(), 2);
    }
}
