//! Render (SPEC §6, §6.1, §6.2): every issued invoice whose PDF, or with
//! VAT and Peppol addresses whose e-invoice, is not on disk yet, in
//! parallel; then the credit notes' PDFs and e-invoices. Files already there
//! are never rewritten (both are byte-reproducible). An invoice that cannot
//! be rendered does not stop the others: it is reported, and the run exits
//! 3; a file that cannot be written (a full disk) fails the stage, naming
//! the path.
//!
//! `pdf` lays the invoice out on `canvas` pages, `document` writes them as
//! a PDF (lopdf) with subsets of the bundled faces from `font` (printpdf
//! parses and subsets them); `credit_note` lays out a credit note;
//! `einvoice` writes the Peppol UBL (quick-xml).

mod canvas;
mod credit_note;
mod document;
pub mod einvoice;
mod font;
mod pdf;
mod sfnt;

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;

pub use pdf::{Parties, TEMPLATE_VERSION, render_invoice};

use crate::config::IssuerSettings;
use crate::ledger::{Ledger, LedgerError};
use crate::model::{CreditNote, EinvoiceAddresses, Invoice, Period, Reference};
use crate::store::{self, FileError};

/// What rendering needs besides the ledger.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub out_dir: &'a Path,
    pub issuer: &'a IssuerSettings,
    pub reference: &'a Reference,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("invoice {invoice}: profile {profile} is no longer in profiles.csv")]
    UnknownProfile { invoice: String, profile: String },
    #[error("cannot render invoice {invoice}: {reason}")]
    Panicked { invoice: String, reason: String },
    #[error(transparent)]
    Einvoice(#[from] einvoice::EinvoiceError),
}

/// What the render stage did.
#[derive(Debug, Default)]
pub struct RenderReport {
    /// PDFs written.
    pub written: usize,
    /// E-invoices written.
    pub einvoices_written: usize,
    /// `{invoice}: {reason}` for each invoice that could not be rendered.
    pub failed: Vec<String>,
}

/// The PDF path of an invoice: `pdf/YYYY-MM/{number}.pdf`.
pub fn pdf_path(out_dir: &Path, period: Period, number: &str) -> PathBuf {
    out_dir.join(format!("pdf/{}/{number}.pdf", period.month_key()))
}

/// Renders every issued invoice and credit note whose PDF or e-invoice is
/// missing.
pub fn render_missing(inputs: &Inputs, ledger: &Ledger) -> Result<RenderReport, RenderError> {
    let mut report = render_missing_invoices(inputs, ledger)?;
    render_missing_credit_notes(inputs, ledger, &mut report)?;
    Ok(report)
}

/// The seller's and buyer's Peppol ids of a document with VAT, as recorded
/// when its invoice was issued (derived now for one issued before they
/// were recorded); `None`: it has no e-invoice (SPEC §6.1).
pub fn einvoice_endpoints(
    inputs: &Inputs,
    recorded: &EinvoiceAddresses,
    profile_id: &str,
) -> Option<(String, String)> {
    let derived;
    let addresses = match recorded {
        EinvoiceAddresses::Unrecorded => {
            let profile = inputs.reference.profiles.get(profile_id)?;
            derived =
                EinvoiceAddresses::between(inputs.issuer.peppol_address().as_deref(), profile);
            &derived
        }
        recorded => recorded,
    };
    match addresses {
        EinvoiceAddresses::To { seller, buyer } => Some((seller.clone(), buyer.clone())),
        _ => None,
    }
}

/// Renders every issued invoice whose PDF or e-invoice is missing.
fn render_missing_invoices(inputs: &Inputs, ledger: &Ledger) -> Result<RenderReport, RenderError> {
    let out = inputs.out_dir;
    let missing_pdf = |number: &str, period| !pdf_path(out, period, number).exists();
    let missing_xml = |head: &crate::model::InvoiceHead| {
        head.vat.is_some()
            && einvoice_endpoints(inputs, &head.einvoice, &head.profile_id).is_some()
            && !einvoice::einvoice_path(out, head.period, &head.number).exists()
    };
    // Invoices with their lines are read only when something is missing,
    // a batch at a time: memory holds one batch's lines however many
    // invoices the month end issues.
    let missing: Vec<String> = ledger
        .invoice_heads()?
        .into_iter()
        .map(|i| i.head)
        .filter(|i| missing_pdf(&i.number, i.period) || missing_xml(i))
        .map(|i| i.number)
        .collect();
    if missing.is_empty() {
        return Ok(RenderReport::default());
    }
    render_pipelined(inputs, ledger, &missing)
}

/// Renders the invoices numbered `missing` in three steps at once, so the
/// cores only render: this thread reads the next batch from the ledger,
/// the pool renders one, and a writer puts the one before on disk
/// (waiting for the disk, not a core).
fn render_pipelined(
    inputs: &Inputs,
    ledger: &Ledger,
    missing: &[String],
) -> Result<RenderReport, RenderError> {
    let progress = crate::progress::Progress::new(missing.len() as u64, "render");
    let (batches, to_render) = sync_channel::<Vec<Invoice>>(1);
    let (rendered, to_write) = sync_channel::<Vec<Rendered>>(1);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for invoices in to_render {
                let files = invoices
                    .par_iter()
                    .map(|invoice| {
                        progress.inc();
                        render_one(inputs, invoice)
                    })
                    .collect();
                if rendered.send(files).is_err() {
                    return; // the writer stopped on an error
                }
            }
        });
        let writer = scope.spawn(move || {
            let mut report = RenderReport::default();
            for batch in to_write {
                let mut files = Vec::new();
                for one in batch {
                    one.count_into(&mut report, &mut files);
                }
                store::write_renderables(&files)?;
            }
            Ok::<_, FileError>(report)
        });
        for batch in missing.chunks(RENDER_BATCH) {
            let invoices = ledger.invoices_numbered(batch)?;
            if batches.send(invoices).is_err() {
                break; // the writer stopped on an error, returned below
            }
        }
        drop(batches);
        let report = writer.join().expect("writing files does not panic")?;
        Ok(report)
    })
}

/// Invoices read and rendered at a time.
const RENDER_BATCH: usize = 64;

/// One invoice's missing files, rendered, to be written; or why one of
/// them could not be rendered.
struct Rendered {
    pdf: Option<(PathBuf, Vec<u8>)>,
    einvoice: Option<(PathBuf, Vec<u8>)>,
    failed: Option<String>,
}

/// Renders whichever of an invoice's PDF and e-invoice is missing.
fn render_one(inputs: &Inputs, invoice: &Invoice) -> Rendered {
    let out = inputs.out_dir;
    let (number, period) = (&invoice.number, invoice.period);
    let mut done = Rendered {
        pdf: None,
        einvoice: None,
        failed: None,
    };
    let pdf = pdf_path(out, period, number);
    if !pdf.exists() {
        match render_pdf(inputs, invoice) {
            Ok(bytes) => done.pdf = Some((pdf, bytes)),
            Err(e) => {
                done.failed = Some(format!("{number}: {e}"));
                return done;
            }
        }
    }
    let xml = einvoice::einvoice_path(out, period, number);
    let endpoints = einvoice_endpoints(inputs, &invoice.einvoice, &invoice.profile_id);
    if let (Some(_), Some(endpoints)) = (&invoice.vat, endpoints)
        && !xml.exists()
    {
        match render_einvoice(inputs, invoice, &endpoints) {
            Ok(bytes) => done.einvoice = Some((xml, bytes)),
            Err(e) => done.failed = Some(format!("{number}: {e}")),
        }
    }
    done
}

impl Rendered {
    /// Counts the files and adds them to those a batch writes (they can be
    /// rendered again, so a crash that loses a new name, not its bytes, is
    /// mended by the next run).
    fn count_into(self, report: &mut RenderReport, files: &mut Vec<(PathBuf, Vec<u8>)>) {
        if let Some(pdf) = self.pdf {
            files.push(pdf);
            report.written += 1;
        }
        if let Some(xml) = self.einvoice {
            files.push(xml);
            report.einvoices_written += 1;
        }
        report.failed.extend(self.failed);
    }
}

/// One invoice's PDF. A panic inside the PDF library is caught and
/// reported as this invoice's failure, so it cannot stop the others.
pub fn render_pdf(inputs: &Inputs, invoice: &Invoice) -> Result<Vec<u8>, RenderError> {
    let profile = profile_of(inputs, &invoice.number, &invoice.profile_id)?;
    let reference = inputs.reference;
    let parties = Parties {
        issuer: inputs.issuer,
        locale: profile.locale,
        customer_name: &profile.name,
        customer_address: &profile.address,
        account_name: &reference.account_of(profile).name,
        customer_vat_id: profile.vat_id.as_deref(),
        // The invoice's own subscriptions: looked up by id, not by
        // scanning every subscription for the profile's.
        subscription_names: invoice
            .lines
            .iter()
            .filter_map(|line| reference.subscriptions.get(&*line.key.subscription_id))
            .map(|s| (s.id.clone(), s.name.clone()))
            .collect(),
    };
    caught(&invoice.number, || render_invoice(invoice, &parties))
}

/// `render`'s bytes, or a panic inside it as the failure of document `number`.
fn caught(number: &str, render: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>, RenderError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(render)).map_err(|panic| {
        RenderError::Panicked {
            invoice: number.to_string(),
            reason: panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("the PDF library panicked")
                .to_string(),
        }
    })
}

/// One invoice's e-invoice (SPEC §6.1).
fn render_einvoice(
    inputs: &Inputs,
    invoice: &Invoice,
    (seller, buyer): &(String, String),
) -> Result<Vec<u8>, RenderError> {
    let profile = profile_of(inputs, &invoice.number, &invoice.profile_id)?;
    let subscription_name = |id: &str| {
        inputs
            .reference
            .subscriptions
            .get(id)
            .map(|s| s.name.as_str())
            .filter(|n| !n.is_empty())
    };
    let parties = einvoice::Parties {
        issuer: inputs.issuer,
        profile,
        account: inputs.reference.account_of(profile),
        subscription_name: &subscription_name,
        seller_endpoint: seller,
        buyer_endpoint: buyer,
    };
    Ok(einvoice::ubl_invoice(invoice, &parties)?)
}

fn profile_of<'a>(
    inputs: &Inputs<'a>,
    number: &str,
    profile_id: &str,
) -> Result<&'a crate::model::Profile, RenderError> {
    inputs
        .reference
        .profiles
        .get(profile_id)
        .ok_or_else(|| RenderError::UnknownProfile {
            invoice: number.to_string(),
            profile: profile_id.to_string(),
        })
}

/// Renders every issued credit note whose PDF or e-invoice is missing
/// (a credit note has an e-invoice when its invoice has one, SPEC §6.2).
fn render_missing_credit_notes(
    inputs: &Inputs,
    ledger: &Ledger,
    report: &mut RenderReport,
) -> Result<(), RenderError> {
    let out = inputs.out_dir;
    let mut files = Vec::new();
    for note in ledger.credit_notes()? {
        let pdf = pdf_path(out, note.period, &note.number);
        if !pdf.exists() {
            match render_credit_note_pdf(inputs, &note) {
                Ok(bytes) => {
                    files.push((pdf, bytes));
                    report.written += 1;
                }
                Err(e) => {
                    report.failed.push(format!("{}: {e}", note.number));
                    continue;
                }
            }
        }
        let xml = einvoice::einvoice_path(out, note.period, &note.number);
        let endpoints = einvoice_endpoints(inputs, &note.einvoice, &note.profile_id);
        if let (Some(_), Some((seller, buyer))) = (&note.vat, endpoints)
            && !xml.exists()
        {
            let written = profile_of(inputs, &note.number, &note.profile_id).and_then(|profile| {
                let parties = einvoice::Parties {
                    issuer: inputs.issuer,
                    profile,
                    account: inputs.reference.account_of(profile),
                    subscription_name: &|_| None,
                    seller_endpoint: &seller,
                    buyer_endpoint: &buyer,
                };
                Ok(einvoice::ubl_credit_note(&note, &parties)?)
            });
            match written {
                Ok(bytes) => {
                    files.push((xml, bytes));
                    report.einvoices_written += 1;
                }
                Err(e) => report.failed.push(format!("{}: {e}", note.number)),
            }
        }
    }
    store::write_renderables(&files)?;
    Ok(())
}

/// One credit note's PDF, in its profile's language.
pub fn render_credit_note_pdf(inputs: &Inputs, note: &CreditNote) -> Result<Vec<u8>, RenderError> {
    let profile = profile_of(inputs, &note.number, &note.profile_id)?;
    let parties = Parties {
        issuer: inputs.issuer,
        locale: profile.locale,
        customer_name: &profile.name,
        customer_address: &profile.address,
        account_name: &inputs.reference.account_of(profile).name,
        customer_vat_id: profile.vat_id.as_deref(),
        subscription_names: Default::default(),
    };
    caught(&note.number, || {
        credit_note::render_credit_note(note, &parties)
    })
}
