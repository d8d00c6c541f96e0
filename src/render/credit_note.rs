//! A credit note to a one-page A4 PDF in the customer's language (SPEC
//! §6): its number and date, the invoice it corrects with that invoice's
//! date and period, the parties as on the invoice, the reason, and net,
//! VAT at the invoice's category and rate, and total.
//!
//! Reproducible: the same credit note gives byte-identical bytes
//! (creation date = issue date, document id derived from the number).

use crate::model::CreditNote;

use super::canvas::{Canvas, LEFT, RIGHT, text_width};
use super::document::{DocumentInfo, write_pdf};
use super::pdf::{
    Parties, TEMPLATE_VERSION, draw_customer, draw_facts, draw_issuer, draw_tax_and_page, vat_label,
};

/// Lines of the reason printed at most (a longer reason is cut with `…`).
const REASON_LINES: usize = 12;

/// Renders `note` to PDF bytes.
pub fn render_credit_note(note: &CreditNote, parties: &Parties) -> Vec<u8> {
    let locale = parties.locale;
    let labels = locale.labels();
    let mut page = Canvas::default();
    draw_issuer(&mut page, parties.issuer, labels, labels.credit_note);
    let facts = [
        (labels.credit_note_number, note.number.clone()),
        (labels.credit_note_date, locale.date(note.issue_date)),
        (labels.corrects_invoice, note.invoice_number.clone()),
        (labels.invoice_date, locale.date(note.invoice_date)),
        (labels.billing_period, locale.period(note.period)),
        (labels.billing_account, note.account_id.clone()),
        (labels.billing_profile, note.profile_id.clone()),
    ];
    draw_facts(&mut page, &facts);
    draw_customer(&mut page, parties);

    page.text(LEFT, 96.0, 11.0, true, labels.reason);
    page.rule(LEFT, 98.0, RIGHT, 0.4);
    let mut y = 103.5;
    for line in wrap(&note.printable_reason(), 9.5, RIGHT - LEFT) {
        page.text(LEFT, y, 9.5, false, &line);
        y += 4.8;
    }

    y += 8.0;
    page.text(LEFT, y, 11.0, true, labels.summary);
    page.rule(LEFT, y + 2.0, RIGHT, 0.4);
    y += 7.5;
    let money = |v| locale.money(v, &note.currency);
    let mut rows = Vec::new();
    match &note.vat {
        Some(vat) => {
            rows.push((labels.net_amount.to_string(), money(note.net_amount), false));
            rows.push((vat_label(vat, locale), money(vat.amount), false));
            rows.push((labels.total.to_string(), money(note.total()), true));
        }
        None => rows.push((labels.amount.to_string(), money(note.net_amount), true)),
    }
    for (label, value, bold) in rows {
        let size = if bold { 11.0 } else { 9.0 };
        page.text(LEFT, y, size, bold, &label);
        page.text_right(RIGHT, y, size, bold, &value);
        y += if bold { 6.0 } else { 4.8 };
    }
    draw_footer(&mut page, note, parties);
    let info = DocumentInfo {
        title: format!("{} {}", labels.credit_note, note.number),
        author: parties.issuer.name.clone(),
        creator: format!("faktura invoice template v{TEMPLATE_VERSION}"),
        date: note.issue_date,
        identifier: note.number.clone(),
    };
    write_pdf(vec![page], &info)
}

fn draw_footer(page: &mut Canvas, note: &CreditNote, parties: &Parties) {
    let labels = parties.locale.labels();
    page.rule(LEFT, 268.0, RIGHT, 0.3);
    page.text(
        LEFT,
        273.0,
        8.0,
        false,
        &format!("{} {}", labels.corrects_invoice, note.invoice_number),
    );
    draw_tax_and_page(page, note.vat.as_ref(), parties.issuer, labels, (1, 1));
}

/// `text` in lines no wider than `width` (mm at `size` points), broken at
/// spaces (a word wider than a line is cut); at most [`REASON_LINES`].
fn wrap(text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let candidate = if current.is_empty() {
            word.to_string()
        } else {
            format!("{current} {word}")
        };
        if text_width(&candidate, size, false) <= width || current.is_empty() {
            current = candidate;
        } else {
            lines.push(std::mem::take(&mut current));
            current = word.to_string();
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    // `fit` measures with the faces' widths; a canvas is only its means.
    let measure = Canvas::default();
    let mut lines: Vec<String> = lines
        .into_iter()
        .map(|l| measure.fit(&l, size, false, width))
        .collect();
    if lines.len() > REASON_LINES {
        lines.truncate(REASON_LINES);
        let last = lines.last_mut().expect("REASON_LINES > 0");
        last.push('…');
        *last = measure.fit(last, size, false, width);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_wraps_at_spaces_and_is_cut_after_twelve_lines() {
        let lines = wrap(&"word ".repeat(30), 9.5, 40.0);
        assert!(lines.len() > 1);
        assert!(
            lines
                .iter()
                .all(|l| text_width(l, 9.5, false) <= 40.0 + 0.01)
        );
        assert_eq!(lines.join(" ").split_whitespace().count(), 30);
        let long = wrap(&"word ".repeat(2000), 9.5, 40.0);
        assert_eq!(long.len(), REASON_LINES);
        assert!(long.last().unwrap().ends_with('…'));
    }
}
