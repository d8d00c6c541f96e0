//! Invoice PDFs (issue 6): parsed back with pdf-extract, per locale, long
//! invoices paginated, byte-reproducible, non-ASCII text extracted intact.

use std::collections::BTreeMap;

use faktura::config::IssuerSettings;
use faktura::model::Locale;
use faktura::render::{Parties, render_invoice};

use crate::common::{files_under, pdf_text, run, sample_dir};

fn parties<'a>(issuer: &'a IssuerSettings, locale: Locale) -> Parties<'a> {
    Parties {
        issuer,
        locale,
        customer_name: "Björn Åström – Ørsted & Co",
        customer_address: "Storgatan 3, 831 30 Östersund",
        account_name: "Fjällräven Cloud",
        customer_vat_id: None,
        subscription_names: BTreeMap::from([(
            "sub-00".to_string(),
            "Produktion, Malmö".to_string(),
        )]),
    }
}

fn pages(pdf: &[u8]) -> Vec<String> {
    pdf_extract::extract_text_from_mem_by_pages(pdf).expect("PDF parses")
}

#[test]
fn a_long_invoice_paginates_with_header_repeated_and_totals_on_the_last_page() {
    let issuer = IssuerSettings::default();
    // 300 lines in 8 subscription groups of 40 (the last one 20), each split by
    // meter category: 300 lines + group headers -> well over 7 pages of 43 rows.
    let invoice = faktura::synth::synthetic_invoice("INV-00000300", 300, "USD");
    let pdf = render_invoice(&invoice, &parties(&issuer, Locale::EnUs));
    let pages = pages(&pdf);
    let n = pages.len();
    assert!(n >= 7, "{n} pages");
    for (i, text) in pages.iter().enumerate() {
        assert!(
            text.contains(&format!("Page {} of {n}", i + 1)),
            "page {}: {text}",
            i + 1
        );
        assert!(
            text.contains("Description") && text.contains("Quantity"),
            "table header on page {}",
            i + 1
        );
        assert!(text.contains("INV-00000300"));
    }
    let total = Locale::EnUs.money(invoice.amounts.amount_due, "USD");
    // The summary on page 1, the totals after the last line on the last page.
    assert!(pages[0].contains(&total));
    assert!(pages[n - 1].contains(&total) && pages[n - 1].contains("Subtotal"));
    for middle in &pages[1..n - 1] {
        assert!(!middle.contains("Subtotal"), "totals only on the last page");
    }
    // A page showing a line also shows its group's title, repeated when the
    // group continues from the previous page.
    for (i, text) in pages.iter().enumerate() {
        for line in &invoice.lines {
            let name = &line.key.meter.meter_name;
            if text.contains(&format!("{name} ")) || text.contains(&format!("{name}\n")) {
                let (sub, category) = (&line.key.subscription_id, &line.key.meter.meter_category);
                assert!(
                    text.contains(&format!("{sub} · {category}"))
                        || text.contains(&format!("{sub}) · {category}")),
                    "page {}: {name} without its group title",
                    i + 1
                );
            }
        }
    }
    // Every line is printed exactly once.
    let all = pages.join("\n");
    for line in &invoice.lines {
        assert_eq!(
            all.matches(&format!("{} ", line.key.meter.meter_name))
                .count()
                + all
                    .matches(&format!("{}\n", line.key.meter.meter_name))
                    .count(),
            1,
            "{}",
            line.key.meter.meter_name
        );
    }
}

#[test]
fn rendering_twice_gives_identical_bytes_and_non_ascii_text_survives() {
    let issuer = IssuerSettings::default();
    let invoice = faktura::synth::synthetic_invoice("INV-00000042", 20, "SEK");
    let first = render_invoice(&invoice, &parties(&issuer, Locale::SvSe));
    let second = render_invoice(&invoice, &parties(&issuer, Locale::SvSe));
    assert!(first == second, "PDF bytes differ between renders");
    let text = pdf_text(&first);
    for expected in [
        "Björn Åström – Ørsted & Co",
        "Fjällräven Cloud",
        "Östersund",
        "Produktion, Malmö",
        "Att betala",
        "kr",
    ] {
        assert!(text.contains(expected), "{expected:?} not in {text}");
    }
}

#[test]
fn sample_invoices_in_four_languages_read_back_with_their_numbers_dates_and_amounts() {
    let out = tempfile::tempdir().unwrap();
    run(&sample_dir(), out.path(), "2026-12-03");
    // (invoice, labels the customer's language uses, the amount as they write it, dates)
    // The sample bills with 25 % Norwegian VAT (SPEC §4.8): S for the
    // Norwegian and the private Swedish customer, reverse charge (AE) for the
    // Dutch and Swedish companies.
    let cases = [
        (
            "2026-10/INV-00000001",
            ["Invoice", "VAT 25 %", "Total"],
            "$29.76",
            ["December 3, 2026", "January 2, 2027"],
        ),
        (
            "2026-10/INV-00000003",
            ["Faktura", "MVA 25 %", "Totalt"],
            "1 037,76 kr",
            ["3. desember 2026", "2. januar 2027"],
        ),
        (
            "2026-10/INV-00000004",
            ["Factuur", "Btw verlegd", "Totaal"],
            "€ 170,40",
            ["3 december 2026", "17 december 2026"],
        ),
        (
            "2026-10/INV-00000005",
            ["Faktura", "Omvänd betalningsskyldighet", "Totalt"],
            "1 750,00 kr",
            ["3 december 2026", "2 januari 2027"],
        ),
    ];
    for (file, labels, amount, dates) in cases {
        let pdf = std::fs::read(out.path().join(format!("pdf/{file}.pdf"))).unwrap();
        let text = pdf_text(&pdf);
        let number = file.split('/').nth(1).unwrap();
        for expected in labels.iter().chain(dates.iter()).chain([&amount, &number]) {
            assert!(
                text.contains(expected),
                "{file}: {expected:?} not in {text}"
            );
        }
    }
    let purchases =
        pdf_text(&std::fs::read(out.path().join("pdf/2026-10/INV-00000002.pdf")).unwrap());
    assert!(purchases.contains("Invoice for purchases"));

    // Another process renders the same bytes (fixed ids, dates from the invoice).
    let again = tempfile::tempdir().unwrap();
    run(&sample_dir(), again.path(), "2026-12-03");
    let pdfs = |dir: &std::path::Path| -> Vec<Vec<u8>> {
        files_under(&dir.join("pdf"))
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    };
    assert_eq!(pdfs(out.path()), pdfs(again.path()));
}

/// Text the bundled font has no glyph for is still text: a CJK name reads
/// back as written (drawn as the font's missing-glyph box), a char beyond
/// the BMP as U+FFFD; the rest of the line is unharmed.
#[test]
fn chars_the_font_lacks_read_back_as_text() {
    let issuer = IssuerSettings::default();
    let invoice = faktura::synth::synthetic_invoice("INV-00000077", 5, "JPY");
    let mut parties = parties(&issuer, Locale::EnUs);
    parties.customer_name = "株式会社 Tōkyō 🚀 Cloud";
    let pdf = render_invoice(&invoice, &parties);
    let text = pdf_text(&pdf);
    assert!(
        text.contains("株式会社 Tōkyō \u{FFFD} Cloud"),
        "customer name not in {text}"
    );
    assert!(text.contains("Fjällräven Cloud"));
    assert_eq!(pdf, render_invoice(&invoice, &parties));
}
