//! The four invoice languages: labels, month names, dates, numbers and money
//! as a customer in that locale writes them (`$1,234.56`, `1 234,56 kr`,
//! `€ 1.234,56`). Used by the PDF and the e-mail.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::model::{Locale, Period};

/// Every text an invoice or its e-mail prints, in one language.
pub struct Labels {
    pub invoice: &'static str,
    pub purchases_invoice: &'static str,
    pub invoice_number: &'static str,
    pub invoice_date: &'static str,
    pub due_date: &'static str,
    pub billing_period: &'static str,
    pub billing_account: &'static str,
    pub billing_profile: &'static str,
    pub sold_to: &'static str,
    pub summary: &'static str,
    pub subtotal: &'static str,
    pub trial_covered: &'static str,
    pub credits: &'static str,
    pub carried_in: &'static str,
    pub amount_due: &'static str,
    pub description: &'static str,
    pub quantity: &'static str,
    pub amount: &'static str,
    pub subscription: &'static str,
    pub payment_details: &'static str,
    pub payment_reference: &'static str,
    pub excludes_vat: &'static str,
    pub vat_id: &'static str,
    pub net_amount: &'static str,
    pub vat: &'static str,
    pub total: &'static str,
    /// The note an `AE` invoice carries (SPEC §4.8).
    pub reverse_charge: &'static str,
    pub zero_rated: &'static str,
    pub exempt: &'static str,
    pub outside_scope: &'static str,
    pub page: &'static str,
    pub of: &'static str,
    pub adjustment: &'static str,
    pub free_trial: &'static str,
    pub email_subject: &'static str,
    pub email_greeting: &'static str,
    pub email_body: &'static str,
    pub email_attached: &'static str,
    pub credit_note: &'static str,
    pub credit_note_number: &'static str,
    pub credit_note_date: &'static str,
    pub corrects_invoice: &'static str,
    pub reason: &'static str,
    pub credit_email_body: &'static str,
    pub credit_email_attached: &'static str,
    pub reminder_subject: &'static str,
    pub reminder_body: &'static str,
    pub amount_outstanding: &'static str,
    pub reminder_attached: &'static str,
    pub reminder_paid_already: &'static str,
}

const EN: Labels = Labels {
    invoice: "Invoice",
    purchases_invoice: "Invoice for purchases",
    invoice_number: "Invoice number",
    invoice_date: "Invoice date",
    due_date: "Due date",
    billing_period: "Billing period",
    billing_account: "Billing account",
    billing_profile: "Billing profile",
    sold_to: "Sold to",
    summary: "Summary",
    subtotal: "Subtotal",
    trial_covered: "Free-trial usage (not charged)",
    credits: "Credits",
    carried_in: "Carried from earlier periods",
    amount_due: "Amount due",
    description: "Description",
    quantity: "Quantity",
    amount: "Amount",
    subscription: "Subscription",
    payment_details: "Payment details",
    payment_reference: "Please use the invoice number as the payment reference",
    excludes_vat: "Amounts exclude VAT",
    vat_id: "VAT ID",
    net_amount: "Net amount",
    vat: "VAT",
    total: "Total",
    reverse_charge: "Reverse charge: the customer accounts for the VAT",
    zero_rated: "Zero-rated",
    exempt: "Exempt from VAT",
    outside_scope: "Outside the scope of VAT",
    page: "Page",
    of: "of",
    adjustment: "adjustment for an earlier period",
    free_trial: "free trial",
    email_subject: "Your invoice",
    email_greeting: "Hello,",
    email_body: "your invoice is ready.",
    email_attached: "The invoice is attached as a PDF.",
    credit_note: "Credit note",
    credit_note_number: "Credit note number",
    credit_note_date: "Credit note date",
    corrects_invoice: "Corrects invoice",
    reason: "Reason",
    credit_email_body: "a credit note for your invoice is ready.",
    credit_email_attached: "The credit note is attached as a PDF.",
    reminder_subject: "Payment reminder",
    reminder_body: "this invoice is past due and we have not yet received full payment.",
    amount_outstanding: "Amount still owed",
    reminder_attached: "The invoice is attached again as a PDF.",
    reminder_paid_already: "If you have paid in the last few days, please disregard this reminder.",
};

const NB: Labels = Labels {
    invoice: "Faktura",
    purchases_invoice: "Faktura for kjøp",
    invoice_number: "Fakturanummer",
    invoice_date: "Fakturadato",
    due_date: "Forfallsdato",
    billing_period: "Faktureringsperiode",
    billing_account: "Fakturakonto",
    billing_profile: "Faktureringsprofil",
    sold_to: "Kunde",
    summary: "Sammendrag",
    subtotal: "Delsum",
    trial_covered: "Bruk i gratis prøveperiode (ikke fakturert)",
    credits: "Kreditt",
    carried_in: "Overført fra tidligere perioder",
    amount_due: "Å betale",
    description: "Beskrivelse",
    quantity: "Antall",
    amount: "Beløp",
    subscription: "Abonnement",
    payment_details: "Betalingsinformasjon",
    payment_reference: "Oppgi fakturanummeret som betalingsreferanse",
    excludes_vat: "Beløpene er eksklusive mva",
    vat_id: "Org.nr.",
    net_amount: "Nettobeløp",
    vat: "MVA",
    total: "Totalt",
    reverse_charge: "Omvendt avgiftsplikt: kjøper beregner merverdiavgiften",
    zero_rated: "Nullsats",
    exempt: "Fritatt for merverdiavgift",
    outside_scope: "Utenfor merverdiavgiftsloven",
    page: "Side",
    of: "av",
    adjustment: "justering for en tidligere periode",
    free_trial: "gratis prøveperiode",
    email_subject: "Din faktura",
    email_greeting: "Hei,",
    email_body: "fakturaen din er klar.",
    email_attached: "Fakturaen er vedlagt som PDF.",
    credit_note: "Kreditnota",
    credit_note_number: "Kreditnotanummer",
    credit_note_date: "Kreditnotadato",
    corrects_invoice: "Korrigerer faktura",
    reason: "Årsak",
    credit_email_body: "en kreditnota for fakturaen din er klar.",
    credit_email_attached: "Kreditnotaen er vedlagt som PDF.",
    reminder_subject: "Betalingspåminnelse",
    reminder_body: "denne fakturaen har forfalt, og vi har ennå ikke mottatt full betaling.",
    amount_outstanding: "Utestående beløp",
    reminder_attached: "Fakturaen er vedlagt på nytt som PDF.",
    reminder_paid_already: "Har du betalt de siste dagene, kan du se bort fra denne påminnelsen.",
};

const NL: Labels = Labels {
    invoice: "Factuur",
    purchases_invoice: "Factuur voor aankopen",
    invoice_number: "Factuurnummer",
    invoice_date: "Factuurdatum",
    due_date: "Vervaldatum",
    billing_period: "Factuurperiode",
    billing_account: "Factuuraccount",
    billing_profile: "Factuurprofiel",
    sold_to: "Klant",
    summary: "Overzicht",
    subtotal: "Subtotaal",
    trial_covered: "Gebruik in gratis proefperiode (niet gefactureerd)",
    credits: "Tegoed",
    carried_in: "Overgedragen uit eerdere perioden",
    amount_due: "Te betalen",
    description: "Omschrijving",
    quantity: "Hoeveelheid",
    amount: "Bedrag",
    subscription: "Abonnement",
    payment_details: "Betaalgegevens",
    payment_reference: "Vermeld het factuurnummer als betalingskenmerk",
    excludes_vat: "Bedragen zijn exclusief btw",
    vat_id: "Btw-nummer",
    net_amount: "Nettobedrag",
    vat: "Btw",
    total: "Totaal",
    reverse_charge: "Btw verlegd: de afnemer voldoet de btw",
    zero_rated: "Nultarief",
    exempt: "Vrijgesteld van btw",
    outside_scope: "Buiten de reikwijdte van de btw",
    page: "Pagina",
    of: "van",
    adjustment: "correctie voor een eerdere periode",
    free_trial: "gratis proefperiode",
    email_subject: "Uw factuur",
    email_greeting: "Beste klant,",
    email_body: "uw factuur staat klaar.",
    email_attached: "De factuur is als pdf bijgevoegd.",
    credit_note: "Creditnota",
    credit_note_number: "Creditnotanummer",
    credit_note_date: "Creditnotadatum",
    corrects_invoice: "Corrigeert factuur",
    reason: "Reden",
    credit_email_body: "er is een creditnota voor uw factuur.",
    credit_email_attached: "De creditnota is als pdf bijgevoegd.",
    reminder_subject: "Betalingsherinnering",
    reminder_body: "de vervaldatum van deze factuur is verstreken en wij hebben nog geen volledige betaling ontvangen.",
    amount_outstanding: "Openstaand bedrag",
    reminder_attached: "De factuur is opnieuw als pdf bijgevoegd.",
    reminder_paid_already: "Heeft u de afgelopen dagen betaald, dan kunt u deze herinnering negeren.",
};

const SV: Labels = Labels {
    invoice: "Faktura",
    purchases_invoice: "Faktura för köp",
    invoice_number: "Fakturanummer",
    invoice_date: "Fakturadatum",
    due_date: "Förfallodatum",
    billing_period: "Faktureringsperiod",
    billing_account: "Faktureringskonto",
    billing_profile: "Faktureringsprofil",
    sold_to: "Kund",
    summary: "Sammanfattning",
    subtotal: "Delsumma",
    trial_covered: "Användning under provperiod (debiteras ej)",
    credits: "Kredit",
    carried_in: "Överfört från tidigare perioder",
    amount_due: "Att betala",
    description: "Beskrivning",
    quantity: "Antal",
    amount: "Belopp",
    subscription: "Prenumeration",
    payment_details: "Betalningsinformation",
    payment_reference: "Ange fakturanumret som betalningsreferens",
    excludes_vat: "Beloppen är exklusive moms",
    vat_id: "Momsreg.nr",
    net_amount: "Nettobelopp",
    vat: "Moms",
    total: "Totalt",
    reverse_charge: "Omvänd betalningsskyldighet: köparen redovisar momsen",
    zero_rated: "Nollskattesats",
    exempt: "Undantaget från moms",
    outside_scope: "Utanför momsens tillämpningsområde",
    page: "Sida",
    of: "av",
    adjustment: "justering för en tidigare period",
    free_trial: "kostnadsfri provperiod",
    email_subject: "Din faktura",
    email_greeting: "Hej,",
    email_body: "din faktura är klar.",
    email_attached: "Fakturan bifogas som PDF.",
    credit_note: "Kreditfaktura",
    credit_note_number: "Kreditfakturanummer",
    credit_note_date: "Kreditfakturadatum",
    corrects_invoice: "Korrigerar faktura",
    reason: "Orsak",
    credit_email_body: "en kreditfaktura för din faktura är klar.",
    credit_email_attached: "Kreditfakturan bifogas som PDF.",
    reminder_subject: "Betalningspåminnelse",
    reminder_body: "denna faktura har förfallit och vi har ännu inte fått full betalning.",
    amount_outstanding: "Utestående belopp",
    reminder_attached: "Fakturan bifogas igen som PDF.",
    reminder_paid_already: "Om du har betalat de senaste dagarna kan du bortse från denna påminnelse.",
};

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_NB: [&str; 12] = [
    "januar",
    "februar",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "desember",
];
const MONTHS_NL: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];
const MONTHS_SV: [&str; 12] = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
];

impl Locale {
    pub fn labels(self) -> &'static Labels {
        match self {
            Locale::EnUs => &EN,
            Locale::NbNo => &NB,
            Locale::NlNl => &NL,
            Locale::SvSe => &SV,
        }
    }

    pub fn month_name(self, month: u32) -> &'static str {
        let names = match self {
            Locale::EnUs => &MONTHS_EN,
            Locale::NbNo => &MONTHS_NB,
            Locale::NlNl => &MONTHS_NL,
            Locale::SvSe => &MONTHS_SV,
        };
        names[(month - 1) as usize]
    }

    /// A date with the month written out: `November 30, 2026`,
    /// `30. november 2026`, `30 november 2026`.
    pub fn date(self, d: NaiveDate) -> String {
        let month = self.month_name(d.month());
        match self {
            Locale::EnUs => format!("{month} {}, {}", d.day(), d.year()),
            Locale::NbNo => format!("{}. {month} {}", d.day(), d.year()),
            Locale::NlNl | Locale::SvSe => format!("{} {month} {}", d.day(), d.year()),
        }
    }

    /// A billing period: `October 1 – October 31, 2026`.
    pub fn period(self, p: Period) -> String {
        format!("{} – {}", self.date(p.start), self.date(p.end))
    }

    /// The month a period starts in, for `explain` and subjects: `October 2026`.
    pub fn month_year(self, d: NaiveDate) -> String {
        format!("{} {}", self.month_name(d.month()), d.year())
    }

    /// A plain number with the locale's separators, `decimals` fraction digits.
    pub fn number(self, value: Decimal, decimals: u32) -> String {
        let (group, point) = match self {
            Locale::EnUs => (",", "."),
            Locale::NbNo | Locale::SvSe => (" ", ","),
            Locale::NlNl => (".", ","),
        };
        let rounded = value.round_dp_with_strategy(
            decimals,
            rust_decimal::RoundingStrategy::MidpointAwayFromZero,
        );
        let text = format!("{:.*}", decimals as usize, rounded.abs());
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push_str(group);
            }
            grouped.push(c);
        }
        let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
            "-"
        } else {
            ""
        };
        if frac.is_empty() {
            format!("{sign}{grouped}")
        } else {
            format!("{sign}{grouped}{point}{frac}")
        }
    }

    /// Money as the customer writes it, with the currency's minor unit.
    pub fn money(self, value: Decimal, currency: &str) -> String {
        let minor = crate::model::Currency::parse(currency).map_or(2, |c| c.minor_unit);
        let number = self.number(value, minor);
        let (sign, digits) = match number.strip_prefix('-') {
            Some(rest) => ("-", rest.to_string()),
            None => ("", number.clone()),
        };
        let symbol = match currency {
            "USD" => Some("$"),
            "EUR" => Some("€"),
            "GBP" => Some("£"),
            _ => None,
        };
        match (self, currency, symbol) {
            (Locale::NbNo, "NOK", _) | (Locale::SvSe, "SEK", _) => format!("{number} kr"),
            (Locale::EnUs, _, Some(s)) => format!("{sign}{s}{digits}"),
            (Locale::NlNl, _, Some(s)) => format!("{s} {sign}{digits}"),
            (Locale::NbNo | Locale::SvSe, "EUR", Some(s)) => format!("{s} {number}"),
            _ => format!("{number} {currency}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn money_per_locale() {
        let cases = [
            (Locale::EnUs, "1234.56", "USD", "$1,234.56"),
            (Locale::EnUs, "-5", "USD", "-$5.00"),
            (Locale::NbNo, "1234.56", "NOK", "1 234,56 kr"),
            (Locale::SvSe, "1234567.5", "SEK", "1 234 567,50 kr"),
            (Locale::NlNl, "1234.56", "EUR", "€ 1.234,56"),
            (Locale::NlNl, "-0.5", "EUR", "€ -0,50"),
            (Locale::EnUs, "1234", "JPY", "1,234 JPY"),
            (Locale::NbNo, "12", "USD", "12,00 USD"),
        ];
        for (locale, value, currency, expected) in cases {
            assert_eq!(
                locale.money(dec(value), currency),
                expected,
                "{locale:?} {value} {currency}"
            );
        }
    }

    #[test]
    fn dates_per_locale() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(Locale::EnUs.date(d), "November 30, 2026");
        assert_eq!(Locale::NbNo.date(d), "30. november 2026");
        assert_eq!(Locale::NlNl.date(d), "30 november 2026");
        assert_eq!(Locale::SvSe.date(d), "30 november 2026");
    }
}
