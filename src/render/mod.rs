//! Render (SPEC §6, §6.1): every issued invoice whose PDF, or with VAT
//! whose e-invoice, is not on disk yet, in parallel. Files already there
//! are never rewritten (both are byte-reproducible). An invoice that cannot
//! be rendered does not stop the others: it is reported, and the run exits
//! 3; a file that cannot be written (a full disk) fails the stage, naming
//! the path.
//!
//! `pdf` lays the invoice out on `canvas` pages, `document` writes them as
//! a PDF (lopdf) with subsets of the bundled faces from `font` (printpdf
//! parses and subsets them); `einvoice` writes the Peppol UBL (quick-xml).

mod canvas;
mod document;
pub mod einvoice;
mod font;
mod pdf;

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;

pub use pdf::{Parties, TEMPLATE_VERSION, render_invoice};

use crate::config::IssuerSettings;
use crate::ledger::{Ledger, LedgerError};
use crate::model::{Invoice, Period, Reference};
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

/// Renders every issued invoice whose PDF or e-invoice is missing.
pub fn render_missing(inputs: &Inputs, ledger: &Ledger) -> Result<RenderReport, RenderError> {
    let out = inputs.out_dir;
    let missing_pdf = |number: &str, period| !pdf_path(out, period, number).exists();
    let missing_xml = |number: &str, period, has_vat: bool| {
        has_vat && !einvoice::einvoice_path(out, period, number).exists()
    };
    // Invoices with their lines are read only when something is missing,
    // a batch at a time: memory holds one batch's lines however many
    // invoices the month end issues.
    let missing: Vec<String> = ledger
        .invoice_heads()?
        .into_iter()
        .map(|(i, _, _)| i)
        .filter(|i| {
            missing_pdf(&i.number, i.period) || missing_xml(&i.number, i.period, i.vat.is_some())
        })
        .map(|i| i.number)
        .collect();
    if missing.is_empty() {
        return Ok(RenderReport::default());
    }
    let progress = crate::progress::Progress::new(missing.len() as u64, "render");
    // Three steps at once, so the cores only render: this thread reads the
    // next batch from the ledger, the pool renders one, and a writer puts
    // the one before on disk (waiting for the disk, not a core).
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
    if invoice.vat.is_some() && !xml.exists() {
        match render_einvoice(inputs, invoice) {
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
    let profile = profile_of(inputs, invoice)?;
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
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        render_invoice(invoice, &parties)
    }))
    .map_err(|panic| RenderError::Panicked {
        invoice: invoice.number.clone(),
        reason: panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the PDF library panicked")
            .to_string(),
    })
}

/// One invoice's e-invoice (SPEC §6.1).
fn render_einvoice(inputs: &Inputs, invoice: &Invoice) -> Result<Vec<u8>, RenderError> {
    let profile = profile_of(inputs, invoice)?;
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
    };
    Ok(einvoice::ubl_invoice(invoice, &parties)?)
}

fn profile_of<'a>(
    inputs: &Inputs<'a>,
    invoice: &Invoice,
) -> Result<&'a crate::model::Profile, RenderError> {
    inputs
        .reference
        .profiles
        .get(&invoice.profile_id)
        .ok_or_else(|| RenderError::UnknownProfile {
            invoice: invoice.number.clone(),
            profile: invoice.profile_id.clone(),
        })
}
