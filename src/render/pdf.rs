//! An issued invoice to an A4 PDF in the customer's language: the layout.
//! Issuer, customer, numbers and dates at the top, a summary, the lines
//! grouped by subscription and meter category, totals on the last page and
//! payment details on every page, with "page x of y".
//!
//! Reproducible: the same invoice gives byte-identical bytes (creation
//! date = invoice date, document id derived from the number).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::config::IssuerSettings;
use crate::model::{CoveredBy, Invoice, Kind, Line, Locale, Vat, VatCategory};

use super::canvas::{ACCENT, Canvas, LEFT, PAGE_W, RIGHT};
use super::document::{DocumentInfo, write_pdf};

/// Bumped whenever the layout or the file's make-up changes, so a
/// re-render that differs is explainable (2: content and fonts written by
/// faktura, the same pages; 3: text as literal strings, not hex; 4: the
/// facts' labels moved left, clear of a long billing period).
pub const TEMPLATE_VERSION: u32 = 4;

/// Who the invoice is from and to, besides what the invoice itself holds.
pub struct Parties<'a> {
    pub issuer: &'a IssuerSettings,
    pub locale: Locale,
    pub customer_name: &'a str,
    pub customer_address: &'a str,
    pub account_name: &'a str,
    /// The customer's VAT number (SPEC §4.8: both parties' are shown).
    pub customer_vat_id: Option<&'a str>,
    /// Subscription id -> display name.
    pub subscription_names: BTreeMap<String, String>,
}

const ROW: f32 = 5.2;
/// Where the table may start on the first and later pages, and must end.
const FIRST_TABLE_TOP: f32 = 134.0;
const NEXT_TABLE_TOP: f32 = 30.0;
const TABLE_BOTTOM: f32 = 262.0;
/// Space the totals block needs after the table on the last page.
const TOTALS_HEIGHT: f32 = 44.0;

/// One row of the lines table.
enum TableRow {
    Group(String),
    Line {
        description: String,
        /// What tells the line from others of the same meter (how it was
        /// charged and priced, trial, adjustment); kept whole when the
        /// description is shortened.
        note: String,
        quantity: String,
        amount: String,
    },
}

/// Renders `invoice` to PDF bytes.
pub fn render_invoice(invoice: &Invoice, parties: &Parties) -> Vec<u8> {
    let rows = table_rows(invoice, parties);
    let pages = paginate(&rows);
    let page_count = pages.len();
    let mut pdf_pages = Vec::with_capacity(page_count);
    for (index, range) in pages.iter().enumerate() {
        let mut page = Canvas::default();
        let top = if index == 0 {
            draw_header(&mut page, invoice, parties);
            FIRST_TABLE_TOP
        } else {
            draw_continuation_header(&mut page, invoice, parties);
            NEXT_TABLE_TOP
        };
        let continued = if index == 0 {
            None
        } else {
            group_continued_at(&rows, range.start)
        };
        let end = draw_table(
            &mut page,
            parties.locale,
            continued,
            &rows[range.clone()],
            top,
        );
        if index + 1 == page_count {
            draw_totals(&mut page, invoice, parties.locale, end + 4.0);
        }
        draw_footer(&mut page, invoice, parties, index + 1, page_count);
        pdf_pages.push(page);
    }
    save(invoice, parties, pdf_pages)
}

fn save(invoice: &Invoice, parties: &Parties, pages: Vec<Canvas>) -> Vec<u8> {
    let labels = parties.locale.labels();
    let info = DocumentInfo {
        title: format!("{} {}", labels.invoice, invoice.number),
        author: parties.issuer.name.clone(),
        creator: format!("faktura invoice template v{TEMPLATE_VERSION}"),
        date: invoice.invoice_date,
        identifier: invoice.number.clone(),
    };
    write_pdf(pages, &info)
}

/// Splits the table rows into pages, leaving room for the totals at the end
/// and, on later pages, for the title of a group carried over; a page never
/// ends on a group title.
fn paginate(rows: &[TableRow]) -> Vec<std::ops::Range<usize>> {
    let n = rows.len();
    let first = ((TABLE_BOTTOM - FIRST_TABLE_TOP - ROW) / ROW) as usize;
    let next = ((TABLE_BOTTOM - NEXT_TABLE_TOP - ROW) / ROW) as usize - 1;
    let totals_rows = (TOTALS_HEIGHT / ROW).ceil() as usize;
    let mut pages = Vec::new();
    let mut start = 0;
    let mut capacity = first;
    loop {
        let remaining = n - start;
        if remaining + totals_rows <= capacity {
            pages.push(start..n);
            return pages;
        }
        let mut take = remaining.min(capacity);
        if take > 1 && matches!(rows[start + take - 1], TableRow::Group(_)) {
            take -= 1;
        }
        pages.push(start..start + take);
        start += take;
        capacity = next;
    }
}

/// The title of the group that a page starting at row `start` continues,
/// if the page does not start with a group of its own.
fn group_continued_at(rows: &[TableRow], start: usize) -> Option<&str> {
    if !matches!(rows.get(start), Some(TableRow::Line { .. })) {
        return None;
    }
    rows[..start].iter().rev().find_map(|row| match row {
        TableRow::Group(title) => Some(title.as_str()),
        TableRow::Line { .. } => None,
    })
}

fn table_rows(invoice: &Invoice, parties: &Parties) -> Vec<TableRow> {
    let locale = parties.locale;
    let labels = locale.labels();
    let mut groups: BTreeMap<(String, String), Vec<&Line>> = BTreeMap::new();
    for line in &invoice.lines {
        groups
            .entry((
                line.key.subscription_id.to_string(),
                line.key.meter.meter_category.clone(),
            ))
            .or_default()
            .push(line);
    }
    let mut rows = Vec::new();
    for ((subscription, category), lines) in groups {
        let name = parties
            .subscription_names
            .get(&subscription)
            .cloned()
            .unwrap_or_default();
        let title = if name.is_empty() {
            format!("{subscription} · {category}")
        } else {
            format!("{name} ({subscription}) · {category}")
        };
        rows.push(TableRow::Group(title));
        for line in lines {
            let note = line_note(line, labels);
            rows.push(TableRow::Line {
                description: line.key.meter.meter_name.clone(),
                note,
                quantity: quantity_with_unit(
                    locale,
                    line.sums.quantity,
                    &line.key.meter.unit_of_measure,
                ),
                amount: locale.money(line.amount, &invoice.currency),
            });
        }
    }
    rows
}

/// What tells a line from others of its meter: ` (Refund, Spot)`, the
/// trial or adjustment; nothing for usage at on-demand prices, the plain
/// case (the charge type and pricing model are Azure's own words).
fn line_note(line: &Line, labels: &crate::locale::Labels) -> String {
    let meter = &line.key.meter;
    let mut how: Vec<&str> = Vec::new();
    if !meter.charge_type.eq_ignore_ascii_case("Usage") {
        how.push(&meter.charge_type);
    }
    if meter.pricing_model != "OnDemand" {
        how.push(&meter.pricing_model);
    }
    match line.key.covered_by {
        CoveredBy::None => {}
        CoveredBy::Trial => how.push(labels.free_trial),
        CoveredBy::Adjustment => how.push(labels.adjustment),
    }
    if how.is_empty() {
        String::new()
    } else {
        format!(" ({})", how.join(", "))
    }
}

/// `744 Hour` for Azure's `1 Hour` units, `496 × 10K` for the others.
fn quantity_with_unit(locale: Locale, quantity: Decimal, unit: &str) -> String {
    let number = trim_number(locale, quantity);
    match unit.strip_prefix("1 ") {
        Some(rest) => format!("{number} {rest}"),
        None if unit.is_empty() => number,
        None => format!("{number} × {unit}"),
    }
}

/// A quantity with as many decimals as it needs (at most 4).
fn trim_number(locale: Locale, value: Decimal) -> String {
    let rounded = value.round_dp(4).normalize();
    locale.number(rounded, rounded.scale())
}

fn draw_header(page: &mut Canvas, invoice: &Invoice, parties: &Parties) {
    let locale = parties.locale;
    let labels = locale.labels();
    let title = if invoice.kind == Kind::Purchases {
        labels.purchases_invoice
    } else {
        labels.invoice
    };
    draw_issuer(page, parties.issuer, labels, title);
    let facts = [
        (labels.invoice_number, invoice.number.clone()),
        (labels.invoice_date, locale.date(invoice.invoice_date)),
        (labels.due_date, locale.date(invoice.due_date)),
        (labels.billing_period, locale.period(invoice.period)),
        (labels.billing_account, invoice.account_id.clone()),
        (labels.billing_profile, invoice.profile_id.clone()),
    ];
    draw_facts(page, &facts);
    draw_customer(page, parties);

    page.text(LEFT, 90.0, 11.0, true, labels.summary);
    page.rule(LEFT, 92.0, RIGHT, 0.4);
    let mut y = 97.5;
    for (label, value, bold) in summary_rows(invoice, locale) {
        let size = if bold { 11.0 } else { 9.0 };
        page.text(LEFT, y, size, bold, &label);
        page.text_right(RIGHT, y, size, bold, &value);
        y += if bold { 6.0 } else { 4.8 };
    }
}

/// The accent bar, the issuer's name, address, e-mail and VAT number, and
/// the document's `title` on the right.
pub(super) fn draw_issuer(
    page: &mut Canvas,
    issuer: &IssuerSettings,
    labels: &crate::locale::Labels,
    title: &str,
) {
    page.fill_rect(0.0, 0.0, PAGE_W, 8.0, ACCENT);
    page.text(LEFT, 20.0, 13.0, true, &issuer.name);
    let mut y = 26.0;
    for part in issuer.address.split(", ").chain([issuer.email.as_str()]) {
        page.text(LEFT, y, 9.0, false, part);
        y += 4.5;
    }
    if let Some(vat) = &issuer.vat_id {
        page.text(LEFT, y, 9.0, false, &format!("{} {vat}", labels.vat_id));
    }
    page.text_right(RIGHT, 22.0, 22.0, true, title);
}

/// The document's numbers and dates, label and value, on the right.
pub(super) fn draw_facts(page: &mut Canvas, facts: &[(&str, String)]) {
    // Labels from x = 84 leave room for the longest value beside the
    // longest label ("1. november 2026 – 30. november 2026").
    let mut y = 50.0;
    for (label, value) in facts {
        page.text(84.0, y, 8.5, false, label);
        page.text_right(RIGHT, y, 8.5, true, value);
        y += 5.0;
    }
}

/// "Sold to": the customer's name, account, address and VAT number.
pub(super) fn draw_customer(page: &mut Canvas, parties: &Parties) {
    let labels = parties.locale.labels();
    page.text(LEFT, 50.0, 8.5, true, labels.sold_to);
    let mut y = 55.5;
    let customer_vat = parties
        .customer_vat_id
        .map(|id| format!("{} {id}", labels.vat_id));
    for part in [parties.customer_name, parties.account_name]
        .into_iter()
        .chain(parties.customer_address.split(", "))
        .chain(customer_vat.as_deref())
        .filter(|s| !s.is_empty())
    {
        page.text(LEFT, y, 9.5, false, part);
        y += 4.8;
    }
}

/// Subtotal, trial, credits, carry and amount due (bold), then the due
/// date; with VAT (SPEC §4.8) the amount due is the net amount, followed by
/// the VAT at the invoice's category and rate and the total (bold).
fn summary_rows(invoice: &Invoice, locale: Locale) -> Vec<(String, String, bool)> {
    let labels = locale.labels();
    let a = &invoice.amounts;
    let money = |v: Decimal| locale.money(v, &invoice.currency);
    let mut rows = vec![(labels.subtotal.to_string(), money(a.subtotal), false)];
    if !a.trial_covered.is_zero() {
        rows.push((
            labels.trial_covered.to_string(),
            money(a.trial_covered),
            false,
        ));
    }
    if !invoice.credits().is_zero() {
        rows.push((labels.credits.to_string(), money(-invoice.credits()), false));
    }
    if !a.carried_in.is_zero() {
        rows.push((labels.carried_in.to_string(), money(a.carried_in), false));
    }
    match &invoice.vat {
        None => {
            rows.push((labels.amount_due.to_string(), money(a.amount_due), true));
            rows.push((
                labels.due_date.to_string(),
                locale.date(invoice.due_date),
                false,
            ));
        }
        Some(vat) => {
            rows.push((labels.net_amount.to_string(), money(a.amount_due), false));
            rows.push((vat_label(vat, locale), money(vat.amount), false));
            rows.push((labels.total.to_string(), money(invoice.total()), true));
        }
    }
    rows
}

/// `MVA 25 %`, or `Btw 0 % – Btw verlegd` for the categories without VAT.
pub(super) fn vat_label(vat: &Vat, locale: Locale) -> String {
    let labels = locale.labels();
    let rate = vat.rate.normalize();
    let head = format!("{} {} %", labels.vat, locale.number(rate, rate.scale()));
    let note = match vat.category {
        VatCategory::S => return head,
        VatCategory::AE => labels.reverse_charge.split(':').next().unwrap_or_default(),
        VatCategory::Z => labels.zero_rated,
        VatCategory::E => labels.exempt,
        VatCategory::O => labels.outside_scope,
    };
    format!("{head} – {note}")
}

fn draw_continuation_header(page: &mut Canvas, invoice: &Invoice, parties: &Parties) {
    let labels = parties.locale.labels();
    page.fill_rect(0.0, 0.0, PAGE_W, 8.0, ACCENT);
    page.text(LEFT, 18.0, 10.0, true, &parties.issuer.name);
    page.text_right(
        RIGHT,
        18.0,
        10.0,
        true,
        &format!("{} {}", labels.invoice, invoice.number),
    );
}

/// Draws the table header, the title of a group `continued` from the
/// previous page, and the rows from `top`; returns where it ended.
fn draw_table(
    page: &mut Canvas,
    locale: Locale,
    continued: Option<&str>,
    rows: &[TableRow],
    top: f32,
) -> f32 {
    let labels = locale.labels();
    page.text(LEFT, top, 8.5, true, labels.description);
    page.text_right(150.0, top, 8.5, true, labels.quantity);
    page.text_right(RIGHT, top, 8.5, true, labels.amount);
    page.rule(LEFT, top + 1.5, RIGHT, 0.3);
    let mut y = top + ROW + 0.8;
    if let Some(title) = continued {
        page.group_title(y, title);
        y += ROW;
    }
    for row in rows {
        match row {
            TableRow::Group(title) => page.group_title(y, title),
            TableRow::Line {
                description,
                note,
                quantity,
                amount,
            } => {
                let room = 92.0 - super::canvas::text_width(note, 8.0, false);
                let description = page.fit(description, 8.0, false, room.max(20.0)) + note;
                page.text(LEFT + 3.0, y, 8.0, false, &description);
                page.text_right(150.0, y, 8.0, false, quantity);
                page.text_right(RIGHT, y, 8.0, false, amount);
            }
        }
        y += ROW;
    }
    y
}

fn draw_totals(page: &mut Canvas, invoice: &Invoice, locale: Locale, top: f32) {
    // Wide enough for the longest label ("Gebruik in gratis proefperiode
    // (niet gefactureerd)") beside its amount.
    page.rule(88.0, top - 3.0, RIGHT, 0.4);
    let mut y = top + 2.0;
    for (label, value, bold) in summary_rows(invoice, locale) {
        let size = if bold { 10.5 } else { 8.5 };
        page.text(90.0, y, size, bold, &label);
        page.text_right(RIGHT, y, size, bold, &value);
        y += if bold { 5.8 } else { 4.6 };
    }
}

fn draw_footer(
    page: &mut Canvas,
    invoice: &Invoice,
    parties: &Parties,
    number: usize,
    count: usize,
) {
    let labels = parties.locale.labels();
    let issuer = parties.issuer;
    page.rule(LEFT, 268.0, RIGHT, 0.3);
    page.text(LEFT, 273.0, 8.0, true, labels.payment_details);
    page.text(LEFT, 277.5, 8.0, false, &issuer.payment_details);
    page.text(
        LEFT,
        282.0,
        8.0,
        false,
        &format!("{}: {}", labels.payment_reference, invoice.number),
    );
    draw_tax_and_page(page, invoice.vat.as_ref(), issuer, labels, (number, count));
}

/// The footer's last line: the reverse-charge note, the issuer's VAT
/// number or that amounts exclude VAT; and "page x of y".
pub(super) fn draw_tax_and_page(
    page: &mut Canvas,
    vat: Option<&Vat>,
    issuer: &IssuerSettings,
    labels: &crate::locale::Labels,
    (number, count): (usize, usize),
) {
    let tax = match (vat, &issuer.vat_id) {
        (Some(vat), _) if vat.category == VatCategory::AE => format!("{}.", labels.reverse_charge),
        (Some(_), Some(id)) => format!("{} {id}", labels.vat_id),
        (Some(_), None) => String::new(),
        (None, Some(id)) => format!("{}. {} {id}", labels.excludes_vat, labels.vat_id),
        (None, None) => format!("{}.", labels.excludes_vat),
    };
    page.text(LEFT, 286.5, 7.5, false, &tax);
    page.text_right(
        RIGHT,
        286.5,
        7.5,
        false,
        &format!("{} {number} {} {count}", labels.page, labels.of),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_leaves_room_for_totals() {
        let rows = |n: usize| -> Vec<TableRow> {
            (0..n)
                .map(|i| {
                    if i % 7 == 0 {
                        TableRow::Group(i.to_string())
                    } else {
                        line()
                    }
                })
                .collect()
        };
        assert_eq!(paginate(&rows(3)), vec![0..3]);
        let rows = rows(300);
        let pages = paginate(&rows);
        assert!(pages.len() > 1);
        assert_eq!(pages.last().unwrap().end, 300);
        for pair in pages.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            assert!(matches!(rows[pair[0].end - 1], TableRow::Line { .. }));
        }
    }

    /// Lines of one meter that differ only in how they were charged and
    /// priced say so; plain usage at on-demand prices says nothing.
    #[test]
    fn lines_of_one_meter_are_told_apart_by_charge_type_and_pricing_model() {
        let mut invoice = crate::synth::synthetic_invoice("INV-00000001", 3, "USD");
        let meter = std::sync::Arc::make_mut(&mut invoice.lines[1].key.meter);
        (meter.charge_type, meter.pricing_model) = ("Refund".into(), "Spot".into());
        invoice.lines[2].key.covered_by = CoveredBy::Trial;
        let issuer = crate::config::IssuerSettings::default();
        let parties = Parties {
            issuer: &issuer,
            locale: Locale::EnUs,
            customer_name: "C",
            customer_address: "A",
            account_name: "N",
            customer_vat_id: None,
            subscription_names: BTreeMap::new(),
        };
        let notes: Vec<String> = table_rows(&invoice, &parties)
            .into_iter()
            .filter_map(|row| match row {
                TableRow::Line { note, .. } => Some(note),
                TableRow::Group(_) => None,
            })
            .collect();
        let trial = format!(" ({})", Locale::EnUs.labels().free_trial);
        assert_eq!(notes, ["", " (Refund, Spot)", trial.as_str()]);
    }

    fn line() -> TableRow {
        TableRow::Line {
            description: String::new(),
            note: String::new(),
            quantity: String::new(),
            amount: String::new(),
        }
    }

    #[test]
    fn a_page_starting_inside_a_group_continues_its_title() {
        let rows = vec![
            TableRow::Group("A".into()),
            line(),
            line(),
            TableRow::Group("B".into()),
            line(),
        ];
        assert_eq!(group_continued_at(&rows, 2), Some("A"));
        assert_eq!(group_continued_at(&rows, 3), None);
        assert_eq!(group_continued_at(&rows, 4), Some("B"));
        // The totals alone on a last page.
        assert_eq!(group_continued_at(&rows, 5), None);
    }
}
