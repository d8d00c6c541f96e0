//! VAT and Peppol e-invoices (SPEC §4.8, §6.1; issue 18): VAT per category,
//! the invoices table's new columns, payments against the total, and every
//! e-invoice read back (with quick-xml's reader, no Python) and checked
//! against the invoices table. The e-invoices are also copied to
//! `target/tmp/einvoices/` for `.ci/run` to check with the official
//! Peppol validator.

use std::collections::BTreeMap;
use std::path::Path;

use quick_xml::events::Event;
use rust_decimal::Decimal;

use crate::common::{
    files_under, keep_for_the_validator, read_parquet_dir, run, sample_copy, strings,
};

const AS_OF: &str = "2026-12-03";

/// An XML document as (path of element names, attributes, text) leaves,
/// e.g. `Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount` -> `170.40`.
struct Xml(Vec<(String, BTreeMap<String, String>, String)>);

impl Xml {
    fn parse(bytes: &[u8]) -> Xml {
        let mut reader = quick_xml::Reader::from_reader(bytes);
        let mut path: Vec<String> = Vec::new();
        let mut attributes = Vec::new();
        let mut out = Vec::new();
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) => {
                    path.push(e.name().into_inner().to_string());
                    attributes.push(
                        e.attributes()
                            .map(|a| {
                                let a = a.unwrap();
                                (
                                    a.key.into_inner().to_string(),
                                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                        .unwrap()
                                        .into_owned(),
                                )
                            })
                            .collect::<BTreeMap<_, _>>(),
                    );
                }
                Event::Text(t) => {
                    let text = t.xml10_content().trim().to_string();
                    if !text.is_empty() {
                        out.push((path.join("/"), attributes.last().cloned().unwrap(), text));
                    }
                }
                Event::End(_) => {
                    path.pop();
                    attributes.pop();
                }
                Event::Eof => break,
                _ => {}
            }
        }
        Xml(out)
    }

    /// Every text at `path`.
    fn all(&self, path: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, _, t)| t.as_str())
            .collect()
    }

    fn one(&self, path: &str) -> &str {
        let all = self.all(path);
        assert_eq!(all.len(), 1, "{path}: {all:?}");
        all[0]
    }

    fn attribute(&self, path: &str, name: &str) -> &str {
        let (_, attributes, _) = self.0.iter().find(|(p, _, _)| p == path).unwrap();
        &attributes[name]
    }

    fn amount(&self, path: &str) -> Decimal {
        self.one(path).parse().unwrap()
    }
}

/// One invoice row of the invoices table.
#[derive(Debug)]
struct Row {
    number: String,
    period: String,
    profile: String,
    currency: String,
    subtotal: Decimal,
    amount_due: Decimal,
    category: Option<String>,
    rate: Decimal,
    vat: Decimal,
    total: Decimal,
    status: String,
}

fn invoice_rows(out: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    for batch in read_parquet_dir(&out.join("invoices")) {
        use arrow::array::{Array, AsArray};
        let decimal = |name: &str| -> Vec<Decimal> {
            let array = batch
                .column_by_name(name)
                .unwrap()
                .as_primitive::<arrow::datatypes::Decimal128Type>();
            assert_eq!(array.scale(), 4, "{name} is Decimal(38,4)");
            (0..array.len())
                .map(|i| Decimal::from_i128_with_scale(array.value(i), 4).normalize())
                .collect()
        };
        let category = batch.column_by_name("vat_category").unwrap();
        let category = arrow::compute::cast(category, &arrow::datatypes::DataType::Utf8).unwrap();
        let category = category.as_string::<i32>();
        let starts = batch
            .column_by_name("period_start")
            .unwrap()
            .as_primitive::<arrow::datatypes::Date32Type>()
            .clone();
        let (subtotal, due, rate, vat, total) = (
            decimal("subtotal"),
            decimal("amount_due"),
            decimal("vat_rate"),
            decimal("vat_amount"),
            decimal("total"),
        );
        let (numbers, profiles, currencies, statuses) = (
            strings(&batch, "invoice_number"),
            strings(&batch, "billing_profile_id"),
            strings(&batch, "currency"),
            strings(&batch, "status"),
        );
        for i in 0..batch.num_rows() {
            let start = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                + chrono::Days::new(starts.value(i) as u64);
            rows.push(Row {
                number: numbers[i].clone(),
                period: start.format("%Y-%m").to_string(),
                profile: profiles[i].clone(),
                currency: currencies[i].clone(),
                subtotal: subtotal[i],
                amount_due: due[i],
                category: category.is_valid(i).then(|| category.value(i).to_string()),
                rate: rate[i],
                vat: vat[i],
                total: total[i],
                status: statuses[i].clone(),
            });
        }
    }
    rows.sort_by(|a, b| a.number.cmp(&b.number));
    rows
}

/// SPEC §4.8 read independently: the VAT of `amount_due` at `rate` percent,
/// rounded half away from zero to `digits` decimals.
fn expected_vat(amount_due: Decimal, rate: Decimal, digits: u32) -> Decimal {
    (amount_due * rate / Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(digits, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// Checks each invoice's VAT against SPEC §4.8 and its e-invoice against
/// the invoices table (SPEC §6.1); returns how many e-invoices were read.
fn check_einvoices(out: &Path, peppol_ids: &BTreeMap<String, String>) -> usize {
    let rows = invoice_rows(out);
    assert!(!rows.is_empty());
    for row in &rows {
        let category = row.category.as_deref().expect("VAT configured");
        let rate = if category == "S" {
            Decimal::new(25, 0)
        } else {
            Decimal::ZERO
        };
        assert_eq!(row.rate, rate, "{row:?}");
        let digits = if row.currency == "JPY" { 0 } else { 2 };
        assert_eq!(
            row.vat,
            expected_vat(row.amount_due, rate, digits),
            "{row:?}"
        );
        assert_eq!(row.total, row.amount_due + row.vat, "{row:?}");

        let path = out.join(format!("einvoice/{}/{}.xml", row.period, row.number));
        let xml = Xml::parse(&std::fs::read(&path).unwrap());
        assert_eq!(xml.one("Invoice/cbc:ID"), row.number);
        assert_eq!(xml.one("Invoice/cbc:DocumentCurrencyCode"), row.currency);
        assert_eq!(xml.one("Invoice/cbc:BuyerReference"), row.profile);
        let total = |name: &str| xml.amount(&format!("Invoice/cac:LegalMonetaryTotal/cbc:{name}"));
        assert_eq!(total("LineExtensionAmount"), row.subtotal, "{}", row.number);
        assert_eq!(
            total("TaxExclusiveAmount"),
            row.amount_due,
            "{}",
            row.number
        );
        assert_eq!(total("TaxInclusiveAmount"), row.total, "{}", row.number);
        assert_eq!(total("PayableAmount"), row.total, "{}", row.number);
        assert_eq!(xml.amount("Invoice/cac:TaxTotal/cbc:TaxAmount"), row.vat);
        assert_eq!(
            xml.one("Invoice/cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID"),
            category
        );
        // The lines add up to the line extension amount (BR-CO-10).
        let lines: Decimal = xml
            .all("Invoice/cac:InvoiceLine/cbc:LineExtensionAmount")
            .iter()
            .map(|v| v.parse::<Decimal>().unwrap())
            .sum();
        assert_eq!(lines, row.subtotal, "{}", row.number);
        // Buyer electronic address: the profile's Peppol id, else e-mail (EM).
        let endpoint = "Invoice/cac:AccountingCustomerParty/cac:Party/cbc:EndpointID";
        match peppol_ids.get(&row.profile) {
            Some(id) => {
                let (scheme, value) = id.split_once(':').unwrap();
                assert_eq!(xml.attribute(endpoint, "schemeID"), scheme);
                assert_eq!(xml.one(endpoint), value);
            }
            None => {
                assert_eq!(xml.attribute(endpoint, "schemeID"), "EM");
                assert!(xml.one(endpoint).contains('@'));
            }
        }
    }
    rows.len()
}

/// Profile id -> peppolId, from a data directory's profiles.csv.
fn peppol_ids(data: &Path) -> BTreeMap<String, String> {
    let mut reader = csv::Reader::from_path(data.join("profiles.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (id, peppol) = (column("billingProfileId"), column("peppolId"));
    reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| !r[peppol].is_empty())
        .map(|r| (r[id].to_string(), r[peppol].to_string()))
        .collect()
}

#[test]
fn the_sample_bills_vat_by_category_and_writes_an_einvoice_per_invoice() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&crate::common::sample_dir(), out.path(), AS_OF);
    assert_eq!(code, 3, "{stderr}");
    let checked = check_einvoices(out.path(), &peppol_ids(&crate::common::sample_dir()));
    assert_eq!(checked, 9);
    let categories: BTreeMap<String, String> = invoice_rows(out.path())
        .into_iter()
        .map(|r| (r.profile, r.category.unwrap()))
        .collect();
    assert_eq!(categories["PRF-NORDLYS-NO"], "S");
    assert_eq!(
        categories["PRF-POLDER-NL"], "AE",
        "Dutch company: reverse charge"
    );
    assert_eq!(
        categories["PRF-NORDLYS-SE"], "AE",
        "Swedish company: reverse charge"
    );
    assert_eq!(categories["PRF-POLDER-US"], "O");
    assert_eq!(
        categories["7f3c2a10-5b1e-4c2d-9a8e-0d4f6b7c8e91"], "S",
        "no VAT number"
    );
    keep_for_the_validator(out.path(), "sample");

    // Byte-reproducible, and written only when missing.
    let again = tempfile::tempdir().unwrap();
    run(&crate::common::sample_dir(), again.path(), AS_OF);
    let xmls = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        files_under(&dir.join("einvoice"))
            .into_iter()
            .map(|p| {
                let name = p.strip_prefix(dir).unwrap().display().to_string();
                (name, std::fs::read(p).unwrap())
            })
            .collect()
    };
    assert_eq!(xmls(out.path()), xmls(again.path()));
    let one = out.path().join("einvoice/2026-10/INV-00000004.xml");
    std::fs::write(&one, b"edited by hand").unwrap();
    run(&crate::common::sample_dir(), out.path(), AS_OF);
    assert_eq!(
        std::fs::read(&one).unwrap(),
        b"edited by hand",
        "present: kept"
    );
    std::fs::remove_file(&one).unwrap();
    run(&crate::common::sample_dir(), out.path(), AS_OF);
    assert_eq!(
        xmls(out.path()),
        xmls(again.path()),
        "missing: written again"
    );
}

#[test]
fn without_tax_there_is_no_vat_and_no_einvoice() {
    let data = sample_copy();
    let config = std::fs::read_to_string(data.path().join("faktura.toml")).unwrap();
    let without = config.split("[tax]").next().unwrap().to_string()
        + &config[config.find("[mail]").unwrap()..];
    std::fs::write(data.path().join("faktura.toml"), without).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(data.path(), out.path(), AS_OF);
    assert_eq!(code, 3, "{stderr}");
    for row in invoice_rows(out.path()) {
        assert_eq!(row.category, None);
        assert_eq!((row.rate, row.vat), (Decimal::ZERO, Decimal::ZERO));
        assert_eq!(row.total, row.amount_due);
    }
    assert!(!out.path().join("einvoice").exists());
    let pdf = std::fs::read(out.path().join("pdf/2026-10/INV-00000003.pdf")).unwrap();
    let text = crate::common::pdf_text(&pdf);
    assert!(text.contains("Beløpene er eksklusive mva"), "{text}");
    assert!(text.contains("Å betale"), "{text}");
}

#[test]
fn vat_configuration_errors_exit_2_naming_the_problem() {
    let profile = "NO,NO 987 654 325 MVA,,0192:987654325";
    // (file, text, replaced by, what the error names)
    let cases: [(&str, &str, &str, &str); 4] = [
        (
            "profiles.csv",
            profile,
            "NO,,AE,",
            "needs the customer's vatId",
        ),
        (
            "profiles.csv",
            profile,
            "NO,,X,",
            "not one of S, AE, Z, E, O",
        ),
        (
            "profiles.csv",
            profile,
            "XX,,,",
            "not an ISO 3166-1 alpha-2 country code",
        ),
        ("faktura.toml", "country = \"NO\"\n", "", "issuer.country"),
    ];
    for (file, from, to, problem) in cases {
        let data = sample_copy();
        let path = data.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let out = tempfile::tempdir().unwrap();
        let out_dir = out.path().join("out");
        let (code, stderr) = run(data.path(), &out_dir, AS_OF);
        assert_eq!(code, 2, "{to:?}: {stderr}");
        let named = if file == "faktura.toml" {
            "issuer.country"
        } else {
            "profiles.csv"
        };
        assert!(stderr.contains(named), "{stderr}");
        assert!(stderr.contains(problem), "{stderr}");
        assert!(!out_dir.exists());
    }
}

#[test]
fn an_invoice_is_paid_once_payments_reach_its_total() {
    let data = sample_copy();
    // Without the sample's credit note of INV-00000003.
    std::fs::remove_file(data.path().join("credit_notes.csv")).unwrap();
    // INV-00000003: amount due 830.21 NOK, VAT 207.55, total 1037.76.
    std::fs::write(
        data.path().join("payments.csv"),
        "invoiceNumber,amount,paidDate,paidBy\nINV-00000003,830.21,2026-12-04,ingrid.haugen@nordlys.example\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    run(data.path(), out.path(), AS_OF);
    let status = |out: &Path| {
        invoice_rows(out)
            .into_iter()
            .find(|r| r.number == "INV-00000003")
            .unwrap()
            .status
    };
    assert_eq!(status(out.path()), "due", "the net amount is not the total");
    std::fs::write(
        data.path().join("payments.csv"),
        "invoiceNumber,amount,paidDate,paidBy\nINV-00000003,830.21,2026-12-04,ingrid.haugen@nordlys.example\nINV-00000003,207.55,2026-12-05,ingrid.haugen@nordlys.example\n",
    )
    .unwrap();
    run(data.path(), out.path(), "2026-12-06");
    assert_eq!(status(out.path()), "paid");
}

/// A generated month and the next, with late usage (a charge and a refund)
/// for October arriving after October was invoiced: credits, refunds,
/// trials, carries and adjustment lines, in every VAT category.
#[test]
fn a_generated_month_with_adjustments_maps_to_valid_einvoices() {
    let data = crate::common::generated(65, 300, 36, 18);
    std::fs::write(
        data.path().join("faktura.toml"),
        "[billing]\nbilling_start = \"2026-10-01\"\n\
         [issuer]\nvat_id = \"NO 123 456 785 MVA\"\ncountry = \"NO\"\npeppol_id = \"0192:123456785\"\n\
         [tax]\nrate = 25\n",
    )
    .unwrap();
    // A refund larger than one profile's October bill (not credit-eligible,
    // so no credit changes) leaves October a credit of 1.00 carried into
    // November: a document-level allowance there.
    let probe = tempfile::tempdir().unwrap();
    run(data.path(), probe.path(), "2026-11-05");
    let refunded = invoice_rows(probe.path())
        .into_iter()
        .filter(|r| r.period == "2026-10" && r.profile.starts_with("prof-"))
        .max_by_key(|r| r.amount_due)
        .unwrap();
    let reference_row = |file: &str, column: usize| -> Vec<String> {
        std::fs::read_to_string(data.path().join(file))
            .unwrap()
            .lines()
            .find(|l| l.split(',').nth(column) == Some(refunded.profile.as_str()))
            .unwrap()
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let (profile_row, sub_row) = (
        reference_row("profiles.csv", 0),
        reference_row("subscriptions.csv", 1),
    );
    std::fs::write(
        data.path().join("usage/2026-10-11-refund.csv"),
        format!(
            "date,billingAccountId,billingProfileId,subscriptionId,meterId,meterCategory,meterName,unitOfMeasure,quantity,unitPrice,costInBillingCurrency,billingCurrency,chargeType,publisherType,isAzureCreditEligible\n\
             2026-10-11,{},{},{},refund-1,Support,Goodwill refund,1,1,0,-{},{},Refund,Azure,false\n",
            profile_row[1],
            refunded.profile,
            sub_row[0],
            refunded.amount_due + Decimal::ONE,
            refunded.currency
        ),
    )
    .unwrap();

    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(data.path(), out.path(), "2026-11-05");
    assert_eq!(code, 0, "{stderr}");
    let october = invoice_rows(out.path()).len();
    assert!(october > 20, "{october}");

    // Late usage for 10 October on the first few profiles: a charge on one
    // line, a refund on another.
    let subscriptions = std::fs::read_to_string(data.path().join("subscriptions.csv")).unwrap();
    let profiles = std::fs::read_to_string(data.path().join("profiles.csv")).unwrap();
    let mut late = String::from(
        "date,billingAccountId,billingProfileId,subscriptionId,meterId,meterCategory,meterName,unitOfMeasure,quantity,unitPrice,costInBillingCurrency,billingCurrency,chargeType,publisherType\n",
    );
    for profile_line in profiles.lines().skip(1).take(12) {
        let cells: Vec<&str> = profile_line.split(',').collect();
        let (profile, account, currency) = (cells[0], cells[1], cells[4]);
        let Some(sub) = subscriptions
            .lines()
            .find(|l| l.split(',').nth(1) == Some(profile))
            .and_then(|l| l.split(',').next())
        else {
            continue;
        };
        late += &format!(
            "2026-10-10,{account},{profile},{sub},late-1,Storage,Late blob,1 GB,10,1.25,12.5,{currency},Usage,Azure\n\
             2026-10-10,{account},{profile},{sub},late-2,Storage,Refunded blob,1 GB,-4,1.25,-5,{currency},Refund,Azure\n"
        );
    }
    std::fs::write(data.path().join("usage/2026-10-10-late.csv"), late).unwrap();
    let (_, stderr) = run(data.path(), out.path(), "2026-12-05");
    let lines = read_parquet_dir(&out.path().join("lines"));
    let covered: Vec<String> = lines
        .iter()
        .flat_map(|b| strings(b, "covered_by"))
        .collect();
    assert!(covered.iter().any(|c| c == "adjustment"), "{stderr}");
    assert!(covered.iter().any(|c| c == "trial"));
    let charge_types: Vec<String> = lines
        .iter()
        .flat_map(|b| strings(b, "charge_type"))
        .collect();
    assert!(charge_types.iter().any(|c| c == "Refund"));
    let rows = invoice_rows(out.path());
    assert!(rows.len() > october);
    let categories: std::collections::BTreeSet<String> =
        rows.iter().filter_map(|r| r.category.clone()).collect();
    for category in ["S", "AE", "Z", "E", "O"] {
        assert!(
            categories.contains(category),
            "{category} in {categories:?}"
        );
    }
    let checked = check_einvoices(out.path(), &peppol_ids(data.path()));
    assert_eq!(checked, rows.len());
    let november = rows
        .iter()
        .find(|r| r.profile == refunded.profile && r.period == "2026-11")
        .expect("November is invoiced");
    let xml = std::fs::read_to_string(
        out.path()
            .join(format!("einvoice/2026-11/{}.xml", november.number)),
    )
    .unwrap();
    assert!(xml.contains("Credit carried from earlier periods"), "{xml}");
    keep_for_the_validator(out.path(), "generated");
}

#[test]
fn control_characters_in_usage_never_reach_the_xml() {
    let data = sample_copy();
    let path = data.path().join("usage/2026-10-05.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(
        "2026-10-05,ACC-NORDLYS,PRF-NORDLYS-NO,SUB-NO-PROD,m\u{0}x,Virtual Machines,\"N\u{0}L\u{1}\",1 Hour,1,1,1,NOK,Usage,Azure,OnDemand,True,\n",
    );
    std::fs::write(&path, text).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(data.path(), out.path(), AS_OF);
    assert_eq!(code, 3, "{stderr}");
    for file in files_under(&out.path().join("einvoice")) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            bytes
                .iter()
                .all(|b| *b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r')),
            "{} holds a character XML 1.0 forbids",
            file.display()
        );
    }
    check_einvoices(out.path(), &peppol_ids(data.path()));
    keep_for_the_validator(out.path(), "control-characters");
}
