//! E-invoices (SPEC §6.1): an issued invoice as a UBL 2.1 `Invoice`
//! following Peppol BIS Billing 3.0 (EHF Billing 3.0 in Norway), written
//! with quick-xml beside the PDF as `OUT/einvoice/YYYY-MM/{number}.xml`.
//!
//! The amounts are those of the invoices table: line extension amount =
//! subtotal; monthly and prepaid credit and a negative carry are
//! document-level allowances and a positive carry a charge, so that the
//! tax-exclusive amount = `amount_due`; one VAT breakdown at the invoice's
//! category and rate; payable amount = `total`. Each invoice line is one
//! faktura line as quantity ±1 (unit `C62`, "one") at its rounded amount,
//! so line amount = quantity × price exactly (PEPPOL-EN16931-R120) and no
//! price is negative (BR-27); the usage quantity and unit are in the item
//! description. Byte-reproducible: the same invoice gives the same bytes.

use std::path::{Path, PathBuf};

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use rust_decimal::Decimal;

use crate::config::IssuerSettings;
use crate::model::{
    Account, CoveredBy, CreditNote, Invoice, Line, Period, Profile, Vat, VatCategory,
};

const CUSTOMIZATION_ID: &str =
    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0";
const PROFILE_ID: &str = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0";

/// `OUT/einvoice/YYYY-MM/{number}.xml`.
pub fn einvoice_path(out_dir: &Path, period: Period, number: &str) -> PathBuf {
    out_dir.join(format!("einvoice/{}/{number}.xml", period.month_key()))
}

/// Who the e-invoice is from and to.
pub struct Parties<'a> {
    pub issuer: &'a IssuerSettings,
    pub profile: &'a Profile,
    pub account: &'a Account,
    /// Subscription id -> display name, for the item descriptions.
    pub subscription_name: &'a dyn Fn(&str) -> Option<&'a str>,
    /// The seller's and buyer's Peppol participant ids (SPEC §6.1).
    pub seller_endpoint: &'a str,
    pub buyer_endpoint: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum EinvoiceError {
    #[error("invoice {0} has no VAT (issued without [tax]): no e-invoice")]
    NoVat(String),
    #[error("cannot write the e-invoice of {invoice}: {source}")]
    Xml {
        invoice: String,
        source: std::io::Error,
    },
}

/// The UBL XML of `invoice`.
pub fn ubl_invoice(invoice: &Invoice, parties: &Parties) -> Result<Vec<u8>, EinvoiceError> {
    let vat = invoice
        .vat
        .as_ref()
        .ok_or_else(|| EinvoiceError::NoVat(invoice.number.clone()))?;
    let doc = Document {
        invoice,
        c: Common::new(parties, vat, &invoice.currency),
    };
    xml_bytes(&invoice.number, |w| doc.write(w))
}

/// The UBL `CreditNote` of `note` (SPEC §6.2), correcting its invoice.
pub fn ubl_credit_note(note: &CreditNote, parties: &Parties) -> Result<Vec<u8>, EinvoiceError> {
    let vat = note
        .vat
        .as_ref()
        .ok_or_else(|| EinvoiceError::NoVat(note.number.clone()))?;
    let doc = CreditDocument {
        note,
        c: Common::new(parties, vat, &note.currency),
    };
    xml_bytes(&note.number, |w| doc.write(w))
}

/// The document `write` writes, indented, with a final line feed.
fn xml_bytes(number: &str, write: impl FnOnce(&mut W) -> Io) -> Result<Vec<u8>, EinvoiceError> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    write(&mut writer).map_err(|source| EinvoiceError::Xml {
        invoice: number.to_string(),
        source,
    })?;
    let mut bytes = writer.into_inner();
    bytes.push(b'\n');
    Ok(bytes)
}

type W = Writer<Vec<u8>>;
type Io = std::io::Result<()>;

/// What an invoice and a credit note write the same way: the parties,
/// VAT categories and amounts.
struct Common<'a, 'p> {
    parties: &'a Parties<'p>,
    vat: &'a Vat,
    currency: &'a str,
    minor_unit: u32,
}

impl<'a, 'p> Common<'a, 'p> {
    fn new(parties: &'a Parties<'p>, vat: &'a Vat, currency: &'a str) -> Self {
        Common {
            parties,
            vat,
            currency,
            minor_unit: crate::model::Currency::parse(currency).map_or(2, |c| c.minor_unit),
        }
    }
}

struct Document<'a, 'p> {
    invoice: &'a Invoice,
    c: Common<'a, 'p>,
}

struct CreditDocument<'a, 'p> {
    note: &'a CreditNote,
    c: Common<'a, 'p>,
}

/// A document-level allowance (`false`) or charge (`true`).
struct AllowanceCharge {
    charge: bool,
    reason: &'static str,
    amount: Decimal,
}

impl Common<'_, '_> {
    /// The seller: the issuer of `[issuer]`.
    fn supplier(&self, w: &mut W) -> Io {
        let issuer = self.parties.issuer;
        let country = issuer.country.as_deref().unwrap_or_default();
        w.create_element("cac:AccountingSupplierParty")
            .write_inner_content(|w| {
                w.create_element("cac:Party").write_inner_content(|w| {
                    endpoint(w, self.parties.seller_endpoint)?;
                    // BT-29, so the buyer can identify the seller even where
                    // its VAT number may not be given (category O, BR-CO-26).
                    party_identification(w, self.parties.seller_endpoint)?;
                    party_name(w, &issuer.name)?;
                    postal_address(w, &issuer.address, country)?;
                    if let Some(vat_id) = issuer.vat_id.as_deref()
                        && self.vat.category != VatCategory::O
                    {
                        party_tax_scheme(w, &compact(vat_id), "VAT")?;
                    }
                    if country == "NO" {
                        // Norwegian companies state their registration (NO-R-002).
                        party_tax_scheme(w, "Foretaksregisteret", "TAX")?;
                    }
                    legal_entity(w, &issuer.name)?;
                    w.create_element("cac:Contact")
                        .write_inner_content(|w| text(w, "cbc:ElectronicMail", &issuer.email))?;
                    Ok(())
                })?;
                Ok(())
            })?;
        Ok(())
    }

    /// The buyer: the billing profile.
    fn customer(&self, w: &mut W) -> Io {
        let profile = self.parties.profile;
        let account = self.parties.account;
        let issuer_country = self.parties.issuer.country.as_deref().unwrap_or_default();
        let country = profile.country.as_deref().unwrap_or(issuer_country);
        let name = if profile.name.is_empty() {
            &account.name
        } else {
            &profile.name
        };
        w.create_element("cac:AccountingCustomerParty")
            .write_inner_content(|w| {
                w.create_element("cac:Party").write_inner_content(|w| {
                    endpoint(w, self.parties.buyer_endpoint)?;
                    party_name(w, name)?;
                    postal_address(w, &profile.address, country)?;
                    if let Some(vat_id) = profile.vat_id.as_deref()
                        && self.vat.category != VatCategory::O
                    {
                        party_tax_scheme(w, &compact(vat_id), "VAT")?;
                    }
                    legal_entity(w, &account.name)
                })?;
                Ok(())
            })?;
        Ok(())
    }

    /// The VAT breakdown: one category, `taxable` at the document's rate.
    fn tax_total(&self, w: &mut W, taxable: Decimal) -> Io {
        w.create_element("cac:TaxTotal").write_inner_content(|w| {
            self.money(w, "cbc:TaxAmount", self.vat.amount)?;
            w.create_element("cac:TaxSubtotal")
                .write_inner_content(|w| {
                    self.money(w, "cbc:TaxableAmount", taxable)?;
                    self.money(w, "cbc:TaxAmount", self.vat.amount)?;
                    self.tax_category(w, "cac:TaxCategory", true)
                })?;
            Ok(())
        })?;
        Ok(())
    }

    /// A VAT category: `ClassifiedTaxCategory` of a line, `TaxCategory` of
    /// an allowance or charge, or (`breakdown`) of the VAT breakdown, which
    /// also carries the exemption reason of AE, E and O.
    fn tax_category(&self, w: &mut W, element: &str, breakdown: bool) -> Io {
        let category = self.vat.category;
        w.create_element(element).write_inner_content(|w| {
            text(w, "cbc:ID", category.as_str())?;
            if category != VatCategory::O {
                // Outside the scope of VAT has no rate (BR-O-05).
                text(w, "cbc:Percent", &self.vat.rate.normalize().to_string())?;
            }
            if breakdown && let Some((code, reason)) = exemption(category) {
                text(w, "cbc:TaxExemptionReasonCode", code)?;
                text(w, "cbc:TaxExemptionReason", reason)?;
            }
            w.create_element("cac:TaxScheme")
                .write_inner_content(|w| text(w, "cbc:ID", "VAT"))?;
            Ok(())
        })?;
        Ok(())
    }

    /// An amount with `currencyID`, written with the currency's decimals.
    fn money(&self, w: &mut W, element: &str, value: Decimal) -> Io {
        let digits = self.minor_unit as usize;
        w.create_element(element)
            .with_attribute(("currencyID", self.currency))
            .write_text_content(BytesText::new(&format!("{value:.digits$}")))?;
        Ok(())
    }
}

impl Document<'_, '_> {
    fn write(&self, w: &mut W) -> Io {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("Invoice")
            .with_attributes([
                (
                    "xmlns",
                    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
                ),
                (
                    "xmlns:cac",
                    "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
                ),
                (
                    "xmlns:cbc",
                    "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
                ),
            ])
            .write_inner_content(|w| self.body(w))?;
        Ok(())
    }

    fn body(&self, w: &mut W) -> Io {
        let i = self.invoice;
        text(w, "cbc:CustomizationID", CUSTOMIZATION_ID)?;
        text(w, "cbc:ProfileID", PROFILE_ID)?;
        text(w, "cbc:ID", &i.number)?;
        text(w, "cbc:IssueDate", &i.invoice_date.to_string())?;
        text(w, "cbc:DueDate", &i.due_date.to_string())?;
        text(w, "cbc:InvoiceTypeCode", "380")?;
        if self.c.vat.category == VatCategory::AE {
            text(w, "cbc:Note", "Reverse charge")?;
        }
        text(w, "cbc:DocumentCurrencyCode", &i.currency)?;
        text(w, "cbc:BuyerReference", &i.profile_id)?;
        w.create_element("cac:InvoicePeriod")
            .write_inner_content(|w| {
                text(w, "cbc:StartDate", &i.period.start.to_string())?;
                text(w, "cbc:EndDate", &i.period.end.to_string())
            })?;
        self.c.supplier(w)?;
        self.c.customer(w)?;
        self.payment(w)?;
        for ac in self.allowances_and_charges() {
            w.create_element("cac:AllowanceCharge")
                .write_inner_content(|w| {
                    text(w, "cbc:ChargeIndicator", &ac.charge.to_string())?;
                    text(w, "cbc:AllowanceChargeReason", ac.reason)?;
                    self.c.money(w, "cbc:Amount", ac.amount)?;
                    self.c.tax_category(w, "cac:TaxCategory", false)
                })?;
        }
        self.c.tax_total(w, self.invoice.amounts.amount_due)?;
        self.totals(w)?;
        let lines = &self.invoice.lines;
        if lines.is_empty() {
            // BR-16: at least one line, even for an invoice of a carry alone.
            self.invoice_line(w, 1, None)?;
        }
        for (n, line) in lines.iter().enumerate() {
            self.invoice_line(w, n + 1, Some(line))?;
        }
        Ok(())
    }

    /// Credit transfer to the issuer's account, when its payment details
    /// hold an account number (an IBAN); the due date as payment terms.
    fn payment(&self, w: &mut W) -> Io {
        if let Some(account) = account_number(&self.c.parties.issuer.payment_details) {
            w.create_element("cac:PaymentMeans")
                .write_inner_content(|w| {
                    text(w, "cbc:PaymentMeansCode", "30")?;
                    text(w, "cbc:PaymentID", &self.invoice.number)?;
                    w.create_element("cac:PayeeFinancialAccount")
                        .write_inner_content(|w| text(w, "cbc:ID", &account))?;
                    Ok(())
                })?;
        }
        w.create_element("cac:PaymentTerms")
            .write_inner_content(|w| {
                text(
                    w,
                    "cbc:Note",
                    &format!("Payment due {}", self.invoice.due_date),
                )
            })?;
        Ok(())
    }

    /// Credits and a negative carry as allowances, a positive carry as a charge.
    fn allowances_and_charges(&self) -> Vec<AllowanceCharge> {
        let a = &self.invoice.amounts;
        let mut out = Vec::new();
        let mut add = |charge, reason, amount: Decimal| {
            if !amount.is_zero() {
                out.push(AllowanceCharge {
                    charge,
                    reason,
                    amount,
                });
            }
        };
        add(false, "Monthly credit", a.monthly_credit);
        add(false, "Prepaid credit", a.prepaid_credit);
        if a.carried_in < Decimal::ZERO {
            add(false, "Credit carried from earlier periods", -a.carried_in);
        } else {
            add(true, "Carried from earlier periods", a.carried_in);
        }
        out
    }

    fn totals(&self, w: &mut W) -> Io {
        let a = &self.invoice.amounts;
        let all = self.allowances_and_charges();
        let sum = |charge: bool| -> Decimal {
            all.iter()
                .filter(|ac| ac.charge == charge)
                .map(|ac| ac.amount)
                .sum()
        };
        let (allowances, charges) = (sum(false), sum(true));
        w.create_element("cac:LegalMonetaryTotal")
            .write_inner_content(|w| {
                self.c.money(w, "cbc:LineExtensionAmount", a.subtotal)?;
                self.c.money(w, "cbc:TaxExclusiveAmount", a.amount_due)?;
                self.c
                    .money(w, "cbc:TaxInclusiveAmount", self.invoice.total())?;
                if !allowances.is_zero() {
                    self.c.money(w, "cbc:AllowanceTotalAmount", allowances)?;
                }
                if !charges.is_zero() {
                    self.c.money(w, "cbc:ChargeTotalAmount", charges)?;
                }
                self.c.money(w, "cbc:PayableAmount", self.invoice.total())
            })?;
        Ok(())
    }

    /// Line `n`: `line`, or a line of nothing when the invoice has none.
    fn invoice_line(&self, w: &mut W, n: usize, line: Option<&Line>) -> Io {
        let amount = line.map_or(Decimal::ZERO, |l| l.amount);
        let quantity = if amount < Decimal::ZERO { "-1" } else { "1" };
        let (name, description) = match line {
            Some(line) => (item_name(line), self.item_description(line)),
            None => ("No usage in the period".to_string(), String::new()),
        };
        w.create_element("cac:InvoiceLine")
            .write_inner_content(|w| {
                text(w, "cbc:ID", &n.to_string())?;
                w.create_element("cbc:InvoicedQuantity")
                    .with_attribute(("unitCode", "C62"))
                    .write_text_content(BytesText::new(quantity))?;
                self.c.money(w, "cbc:LineExtensionAmount", amount)?;
                w.create_element("cac:Item").write_inner_content(|w| {
                    if !description.is_empty() {
                        text(w, "cbc:Description", &description)?;
                    }
                    text(w, "cbc:Name", &name)?;
                    self.c.tax_category(w, "cac:ClassifiedTaxCategory", false)
                })?;
                w.create_element("cac:Price")
                    .write_inner_content(|w| self.c.money(w, "cbc:PriceAmount", amount.abs()))?;
                Ok(())
            })?;
        Ok(())
    }

    /// What a line bills, for a person reading the e-invoice: subscription,
    /// quantity and unit, charge, and why its amount is what it is.
    fn item_description(&self, line: &Line) -> String {
        let k = &line.key;
        let subscription =
            (self.c.parties.subscription_name)(&k.subscription_id).unwrap_or(&k.subscription_id);
        let quantity = line.sums.quantity.normalize();
        let mut parts = vec![
            format!("Subscription {subscription}"),
            format!("{quantity} x {}", k.meter.unit_of_measure),
            format!(
                "{}, {}, {}",
                k.meter.charge_type, k.meter.pricing_model, k.meter.publisher_type
            ),
        ];
        match k.covered_by {
            CoveredBy::None => {}
            CoveredBy::Trial => parts.push("covered by the free trial".into()),
            CoveredBy::Adjustment => parts.push("adjustment for an earlier period".into()),
        }
        parts.join("; ")
    }
}

impl CreditDocument<'_, '_> {
    fn write(&self, w: &mut W) -> Io {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("CreditNote")
            .with_attributes([
                (
                    "xmlns",
                    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
                ),
                (
                    "xmlns:cac",
                    "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
                ),
                (
                    "xmlns:cbc",
                    "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
                ),
            ])
            .write_inner_content(|w| self.body(w))?;
        Ok(())
    }

    /// SPEC §6.2: the invoice it corrects as `BillingReference`, its
    /// buyer reference and parties, the reason as its one line
    /// (quantity 1 at `net_amount`), one VAT breakdown, payable = total.
    fn body(&self, w: &mut W) -> Io {
        let n = self.note;
        text(w, "cbc:CustomizationID", CUSTOMIZATION_ID)?;
        text(w, "cbc:ProfileID", PROFILE_ID)?;
        text(w, "cbc:ID", &n.number)?;
        text(w, "cbc:IssueDate", &n.issue_date.to_string())?;
        text(w, "cbc:CreditNoteTypeCode", "381")?;
        if self.c.vat.category == VatCategory::AE {
            text(w, "cbc:Note", "Reverse charge")?;
        }
        text(w, "cbc:DocumentCurrencyCode", &n.currency)?;
        text(w, "cbc:BuyerReference", &n.profile_id)?;
        w.create_element("cac:InvoicePeriod")
            .write_inner_content(|w| {
                text(w, "cbc:StartDate", &n.period.start.to_string())?;
                text(w, "cbc:EndDate", &n.period.end.to_string())
            })?;
        w.create_element("cac:BillingReference")
            .write_inner_content(|w| {
                w.create_element("cac:InvoiceDocumentReference")
                    .write_inner_content(|w| {
                        text(w, "cbc:ID", &n.invoice_number)?;
                        text(w, "cbc:IssueDate", &n.invoice_date.to_string())
                    })?;
                Ok(())
            })?;
        self.c.supplier(w)?;
        self.c.customer(w)?;
        self.c.tax_total(w, n.net_amount)?;
        w.create_element("cac:LegalMonetaryTotal")
            .write_inner_content(|w| {
                self.c.money(w, "cbc:LineExtensionAmount", n.net_amount)?;
                self.c.money(w, "cbc:TaxExclusiveAmount", n.net_amount)?;
                self.c.money(w, "cbc:TaxInclusiveAmount", n.total())?;
                self.c.money(w, "cbc:PayableAmount", n.total())
            })?;
        w.create_element("cac:CreditNoteLine")
            .write_inner_content(|w| {
                text(w, "cbc:ID", "1")?;
                w.create_element("cbc:CreditedQuantity")
                    .with_attribute(("unitCode", "C62"))
                    .write_text_content(BytesText::new("1"))?;
                self.c.money(w, "cbc:LineExtensionAmount", n.net_amount)?;
                w.create_element("cac:Item").write_inner_content(|w| {
                    text(w, "cbc:Description", &n.printable_reason())?;
                    text(
                        w,
                        "cbc:Name",
                        &format!("Correction of invoice {}", n.invoice_number),
                    )?;
                    self.c.tax_category(w, "cac:ClassifiedTaxCategory", false)
                })?;
                w.create_element("cac:Price")
                    .write_inner_content(|w| self.c.money(w, "cbc:PriceAmount", n.net_amount))?;
                Ok(())
            })?;
        Ok(())
    }
}

/// The VATEX code and reason of the categories that charge no VAT.
fn exemption(category: VatCategory) -> Option<(&'static str, &'static str)> {
    match category {
        VatCategory::AE => Some(("VATEX-EU-AE", "Reverse charge")),
        VatCategory::E => Some(("VATEX-EU-132", "Exempt from VAT")),
        VatCategory::O => Some(("VATEX-EU-O", "Not subject to VAT")),
        VatCategory::S | VatCategory::Z => None,
    }
}

fn item_name(line: &Line) -> String {
    let k = &line.key;
    let name = [k.meter.meter_category.as_str(), k.meter.meter_name.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    if name.is_empty() {
        k.meter.meter_id.clone()
    } else {
        name
    }
}

/// The account number in free-text payment details (`IBAN NO93 8601 1117
/// 947 · BIC DNBANOKK` gives `NO9386011117947`): the letters, digits and
/// spaces after an `IBAN` label (or from the start), without the spaces,
/// if that is 5 to 34 characters with a digit.
fn account_number(details: &str) -> Option<String> {
    let rest = match details.find("IBAN") {
        Some(at) => &details[at + 4..],
        None => details,
    };
    let number: String = rest
        .trim_start_matches([':', ' '])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ' ')
        .filter(|c| *c != ' ')
        .collect();
    let plausible = (5..=34).contains(&number.len()) && number.chars().any(|c| c.is_ascii_digit());
    plausible.then_some(number)
}

/// A VAT number as the e-invoice writes it: without spaces or dots
/// (`NO 123 456 785 MVA` is `NO123456785MVA`).
fn compact(vat_id: &str) -> String {
    vat_id
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '.')
        .collect()
}

/// `<element>value</element>`, or nothing when `value` is empty once the
/// characters XML forbids are left out: Peppol allows no empty element
/// (PEPPOL-EN16931-R008), and a reason of control characters alone is one.
fn text(w: &mut W, element: &str, value: &str) -> Io {
    let value = xml_chars(value);
    if value.trim().is_empty() {
        return Ok(());
    }
    w.create_element(element)
        .write_text_content(BytesText::new(&value))?;
    Ok(())
}

/// `value` without the characters XML 1.0 does not allow (NUL and the other
/// C0 controls but tab, line feed and carriage return; U+FFFE, U+FFFF),
/// which a usage file may carry in a meter name: the document stays
/// well-formed.
fn xml_chars(value: &str) -> std::borrow::Cow<'_, str> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    };
    if value.chars().all(allowed) {
        std::borrow::Cow::Borrowed(value)
    } else {
        std::borrow::Cow::Owned(value.chars().filter(|c| allowed(*c)).collect())
    }
}

/// `EndpointID`: a Peppol participant id `scheme:identifier` (SPEC §6.1).
fn endpoint(w: &mut W, peppol_id: &str) -> Io {
    let (scheme, id) = peppol_id.split_once(':').unwrap_or(("", peppol_id));
    w.create_element("cbc:EndpointID")
        .with_attribute(("schemeID", scheme))
        .write_text_content(BytesText::new(&xml_chars(id)))?;
    Ok(())
}

/// `PartyIdentification`: the Peppol id with its scheme.
fn party_identification(w: &mut W, peppol_id: &str) -> Io {
    let (scheme, id) = peppol_id.split_once(':').unwrap_or(("", peppol_id));
    w.create_element("cac:PartyIdentification")
        .write_inner_content(|w| {
            w.create_element("cbc:ID")
                .with_attribute(("schemeID", scheme))
                .write_text_content(BytesText::new(&xml_chars(id)))?;
            Ok(())
        })?;
    Ok(())
}

fn party_name(w: &mut W, name: &str) -> Io {
    w.create_element("cac:PartyName")
        .write_inner_content(|w| text(w, "cbc:Name", name))?;
    Ok(())
}

/// The address as written (one line) and the country.
fn postal_address(w: &mut W, address: &str, country: &str) -> Io {
    w.create_element("cac:PostalAddress")
        .write_inner_content(|w| {
            if !address.trim().is_empty() {
                text(w, "cbc:StreetName", address.trim())?;
            }
            w.create_element("cac:Country")
                .write_inner_content(|w| text(w, "cbc:IdentificationCode", country))?;
            Ok(())
        })?;
    Ok(())
}

fn party_tax_scheme(w: &mut W, company_id: &str, scheme: &str) -> Io {
    w.create_element("cac:PartyTaxScheme")
        .write_inner_content(|w| {
            text(w, "cbc:CompanyID", company_id)?;
            w.create_element("cac:TaxScheme")
                .write_inner_content(|w| text(w, "cbc:ID", scheme))?;
            Ok(())
        })?;
    Ok(())
}

fn legal_entity(w: &mut W, name: &str) -> Io {
    w.create_element("cac:PartyLegalEntity")
        .write_inner_content(|w| text(w, "cbc:RegistrationName", name))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_xml_forbids_are_left_out() {
        assert_eq!(xml_chars("D2s v3, Øst"), "D2s v3, Øst");
        assert_eq!(xml_chars("N\0U\u{1}L\u{1f}L\tok\u{FFFF}"), "NULL\tok");
    }

    #[test]
    fn account_numbers_from_payment_details() {
        assert_eq!(
            account_number("IBAN NO93 8601 1117 947").as_deref(),
            Some("NO9386011117947")
        );
        assert_eq!(
            account_number("NL91ABNA0417164300").as_deref(),
            Some("NL91ABNA0417164300")
        );
        assert_eq!(
            account_number("IBAN NO93 8601 1117 947 · BIC DNBANOKK").as_deref(),
            Some("NO9386011117947")
        );
        assert_eq!(account_number("Pay by card on our website"), None);
        assert_eq!(account_number(""), None);
    }
}
