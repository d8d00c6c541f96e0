//! Configuration (SPEC §8): `faktura.toml`, then `FAKTURA_<SECTION>_<KEY>`
//! environment variables, resolved once into [`Settings`] before any stage
//! runs. Unknown keys are an error, so a typo in the nightly config fails
//! loudly instead of silently using a default.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config `{origin}`: {problem}")]
    Invalid { origin: String, problem: String },
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub billing: BillingSettings,
    pub issuer: IssuerSettings,
    /// Absent: no VAT and no e-invoices (SPEC §4.8).
    pub tax: Option<TaxSettings>,
    pub mail: MailSettings,
    /// Absent: no reminders (SPEC §5.1).
    pub reminders: Option<ReminderSettings>,
    /// Where outputs are mirrored (SPEC §8).
    pub publish: Option<PublishSettings>,
}

/// `[publish]` (SPEC §8): an object store to mirror OUT's tables and
/// documents to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishSettings {
    pub to: String,
}

/// `[reminders]` (SPEC §5.1): reminder *k* is due `days[k-1]` days after
/// an invoice's due date.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderSettings {
    pub days: Vec<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxSettings {
    /// The standard VAT rate in percent (category S): `25`, `25.5` or "25.5".
    #[serde(with = "rate_text")]
    pub rate: rust_decimal::Decimal,
}

/// A rate written as a TOML integer, float or string, kept exactly (a float
/// is read back from its shortest decimal form).
mod rate_text {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Integer(i64),
        Float(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let text = match Written::deserialize(d)? {
            Written::Integer(n) => n.to_string(),
            Written::Float(x) => x.to_string(),
            Written::Text(s) => s.trim().to_string(),
        };
        crate::parse::parse_money(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a decimal rate")))
    }

    pub fn serialize<S: Serializer>(rate: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(rate)
    }
}

impl Settings {
    /// The VAT rule of SPEC §4.8, when `[tax]` is configured.
    pub fn tax_rule(&self) -> Option<crate::model::TaxRule> {
        let tax = self.tax.as_ref()?;
        Some(crate::model::TaxRule {
            rate: tax.rate,
            issuer_country: self.issuer.country.clone().unwrap_or_default(),
            seller_peppol_id: self.issuer.peppol_address(),
        })
    }
}

impl IssuerSettings {
    /// The issuer's Peppol address (SPEC §6.1): `peppol_id`, else the id
    /// its `vat_id` stands for.
    pub fn peppol_address(&self) -> Option<String> {
        self.peppol_id.clone().or_else(|| {
            self.vat_id
                .as_deref()
                .and_then(crate::model::peppol_id_of_vat_id)
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingSettings {
    pub invoice_prefix: String,
    pub settle_days: u32,
    pub billing_start: Option<NaiveDate>,
    /// Credit notes' own sequence (SPEC §4.9); must differ from `invoice_prefix`.
    pub credit_note_prefix: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerSettings {
    pub name: String,
    pub address: String,
    pub email: String,
    pub payment_details: String,
    /// Required with `[tax]`.
    pub vat_id: Option<String>,
    /// ISO 3166-1 alpha-2; required with `[tax]`.
    pub country: Option<String>,
    /// The issuer's Peppol participant id, `scheme:identifier`.
    pub peppol_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    File,
    Smtp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    pub transport: TransportKind,
    pub from: String,
    pub reply_to: Option<String>,
    pub smtp: SmtpSettings,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    None,
    Starttls,
    Tls,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub timeout_secs: u64,
    /// A CA certificate (PEM) to trust besides the system's, for a relay
    /// whose certificate a private CA signed (SPEC §8).
    pub ca_file: Option<PathBuf>,
    pub max_per_second: Option<u32>,
    /// From FAKTURA_SMTP_USER only; never read from or written to a file.
    #[serde(skip)]
    pub user: Option<String>,
    /// From FAKTURA_SMTP_PASSWORD only; never printed.
    #[serde(skip)]
    pub password: Option<String>,
}

impl Default for BillingSettings {
    fn default() -> Self {
        BillingSettings {
            invoice_prefix: "INV-".into(),
            settle_days: 2,
            billing_start: None,
            credit_note_prefix: "CN-".into(),
        }
    }
}

impl Default for IssuerSettings {
    fn default() -> Self {
        IssuerSettings {
            name: "Example Cloud AS".into(),
            address: "Storgata 1, 0155 Oslo, Norway".into(),
            email: "billing@example.com".into(),
            payment_details: "IBAN NO93 8601 1117 947".into(),
            vat_id: None,
            country: None,
            peppol_id: None,
        }
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            transport: TransportKind::File,
            from: "Example Cloud Billing <billing@example.com>".into(),
            reply_to: None,
            smtp: SmtpSettings::default(),
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: 25,
            security: Security::None,
            timeout_secs: 30,
            ca_file: None,
            max_per_second: None,
            user: None,
            password: None,
        }
    }
}

/// Keys that environment variables may set, as (path, is_integer).
const ENV_KEYS: &[(&[&str], bool)] = &[
    (&["billing", "invoice_prefix"], false),
    (&["billing", "settle_days"], true),
    (&["billing", "billing_start"], false),
    (&["billing", "credit_note_prefix"], false),
    (&["issuer", "name"], false),
    (&["issuer", "address"], false),
    (&["issuer", "email"], false),
    (&["issuer", "payment_details"], false),
    (&["issuer", "vat_id"], false),
    (&["issuer", "country"], false),
    (&["issuer", "peppol_id"], false),
    (&["tax", "rate"], false),
    (&["mail", "transport"], false),
    (&["mail", "from"], false),
    (&["mail", "reply_to"], false),
    (&["mail", "smtp", "host"], false),
    (&["mail", "smtp", "port"], true),
    (&["mail", "smtp", "security"], false),
    (&["mail", "smtp", "timeout_secs"], true),
    (&["mail", "smtp", "ca_file"], false),
    (&["mail", "smtp", "max_per_second"], true),
];

/// The environment variable of a key: `FAKTURA_MAIL_SMTP_HOST`.
pub fn env_name(path: &[&str]) -> String {
    format!("FAKTURA_{}", path.join("_").to_uppercase())
}

impl Settings {
    /// Resolves `--config FILE`, else `DATA/faktura.toml` if it exists, else
    /// defaults; then applies the environment (`env` is a lookup so tests
    /// need not touch the process environment).
    pub fn load(
        data_dir: &Path,
        config_file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let default_file = data_dir.join("faktura.toml");
        let default_exists = default_file
            .try_exists()
            .map_err(|source| ConfigError::Read {
                path: default_file.clone(),
                source,
            })?;
        let file = config_file
            .map(Path::to_path_buf)
            .or_else(|| default_exists.then_some(default_file));
        let (mut table, origin) = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let table: toml::Table =
                    toml::from_str(&text).map_err(|e| ConfigError::Invalid {
                        origin: path.display().to_string(),
                        problem: e.to_string(),
                    })?;
                (table, path.display().to_string())
            }
            None => (toml::Table::new(), "defaults".to_string()),
        };
        apply_env(&mut table, env)?;
        let mut settings: Settings =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    origin: origin.clone(),
                    problem: e.to_string(),
                })?;
        // A country code in any case is the country (`no` is `NO`).
        if let Some(country) = &settings.issuer.country
            && let Some(code) = crate::model::country_code(country)
        {
            settings.issuer.country = Some(code);
        }
        settings.mail.smtp.user = env("FAKTURA_SMTP_USER");
        settings.mail.smtp.password = env("FAKTURA_SMTP_PASSWORD");
        settings.validate(&origin)?;
        Ok(settings)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        self.check_billing()
            .and_then(|()| self.check_issuer_and_tax())
            .and_then(|()| self.check_mail())
            .and_then(|()| self.check_publish())
            .map_err(|problem| ConfigError::Invalid {
                origin: origin.to_string(),
                problem,
            })
    }

    /// The prefixes (distinct, no path separator) and the reminder days.
    fn check_billing(&self) -> Result<(), String> {
        let prefixes = [
            ("billing.invoice_prefix", &self.billing.invoice_prefix),
            (
                "billing.credit_note_prefix",
                &self.billing.credit_note_prefix,
            ),
        ];
        for (key, prefix) in prefixes {
            if prefix
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
            {
                return Err(format!(
                    "key `{key}`: {prefix:?} may not contain `/`, `\\` or control characters"
                ));
            }
        }
        if self.billing.credit_note_prefix == self.billing.invoice_prefix {
            return Err(format!(
                "key `billing.credit_note_prefix`: {:?} equals `billing.invoice_prefix`; \
                 credit notes need a sequence of their own (SPEC §4.9)",
                self.billing.credit_note_prefix
            ));
        }
        if let Some(reminders) = &self.reminders {
            let days = &reminders.days;
            let increasing = days.windows(2).all(|w| w[0] < w[1]);
            if days.is_empty() || days[0] < 1 || !increasing {
                return Err(format!(
                    "key `reminders.days`: {days:?} is not a non-empty list of whole days \
                     after the due date, each at least 1, strictly increasing (SPEC §5.1)"
                ));
            }
        }
        Ok(())
    }

    /// The issuer's country and Peppol id, and what `[tax]` needs.
    fn check_issuer_and_tax(&self) -> Result<(), String> {
        if let Some(country) = &self.issuer.country
            && crate::model::country_code(country).as_deref() != Some(country.as_str())
        {
            return Err(format!(
                "key `issuer.country`: {country:?} is not an ISO 3166-1 alpha-2 code"
            ));
        }
        if let Some(id) = &self.issuer.peppol_id
            && crate::model::peppol_id(id)
                .filter(|id| crate::model::peppol_id_passes_checks(id))
                .is_none()
        {
            return Err(format!(
                "key `issuer.peppol_id`: {id:?} is not a Peppol participant id `scheme:identifier` \
                 whose check digits pass the official rules (SPEC §6.1)"
            ));
        }
        let Some(tax) = &self.tax else {
            return Ok(());
        };
        if tax.rate.is_sign_negative() || tax.rate >= rust_decimal::Decimal::ONE_HUNDRED {
            return Err(format!(
                "key `tax.rate`: {} is not a percentage from 0 to under 100",
                tax.rate
            ));
        }
        for (key, value) in [
            ("issuer.vat_id", &self.issuer.vat_id),
            ("issuer.country", &self.issuer.country),
        ] {
            if value.as_deref().is_none_or(str::is_empty) {
                return Err(format!("key `{key}` is required with [tax] (SPEC §8)"));
            }
        }
        Ok(())
    }

    /// The addresses of `[mail]` and the relay's CA file.
    fn check_mail(&self) -> Result<(), String> {
        if let Some(ca_file) = &self.mail.smtp.ca_file {
            let pem = std::fs::read(ca_file).map_err(|e| {
                format!(
                    "key `mail.smtp.ca_file`: cannot read `{}`: {e}",
                    ca_file.display()
                )
            })?;
            let has_certificate = pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----");
            if !has_certificate
                || lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err()
            {
                return Err(format!(
                    "key `mail.smtp.ca_file`: `{}` is not a PEM certificate",
                    ca_file.display()
                ));
            }
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "key `mail.from`: {:?} is not a mailbox",
                self.mail.from
            ));
        }
        if let Some(reply_to) = &self.mail.reply_to
            && reply_to.parse::<lettre::message::Mailbox>().is_err()
        {
            return Err(format!(
                "key `mail.reply_to`: {reply_to:?} is not a mailbox"
            ));
        }
        Ok(())
    }

    /// `[publish] to` is an object-store URL (`s3://`, `az://`, `gs://`).
    fn check_publish(&self) -> Result<(), String> {
        match &self.publish {
            Some(publish) if !crate::remote::is_store_url(&publish.to) => Err(format!(
                "key `publish.to`: {:?} is not an object-store URL \
                 (s3://bucket/prefix, az://container/prefix or gs://bucket/prefix)",
                publish.to
            )),
            Some(publish) => crate::remote::Remote::open(&publish.to)
                .map(drop)
                .map_err(|e| format!("key `publish.to`: {e}")),
            None => Ok(()),
        }
    }
}

fn apply_env(
    table: &mut toml::Table,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (path, is_integer) in ENV_KEYS {
        let name = env_name(path);
        let Some(raw) = env(&name) else { continue };
        let value = if *is_integer {
            let n = raw
                .trim()
                .parse::<i64>()
                .map_err(|_| ConfigError::Invalid {
                    origin: format!("environment variable {name}"),
                    problem: format!("{raw:?} is not an integer"),
                })?;
            toml::Value::Integer(n)
        } else {
            toml::Value::String(raw)
        };
        let (last, sections) = path.split_last().expect("paths are not empty");
        let mut current = &mut *table;
        for section in sections {
            let entry = current
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            current = entry.as_table_mut().ok_or_else(|| ConfigError::Invalid {
                origin: format!("environment variable {name}"),
                problem: format!("`{section}` is not a section"),
            })?;
        }
        current.insert(last.to_string(), value);
    }
    apply_reminder_days_env(table, env)
}

/// `FAKTURA_REMINDERS_DAYS="14,28"`: the list `[reminders] days`.
fn apply_reminder_days_env(
    table: &mut toml::Table,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let name = env_name(&["reminders", "days"]);
    let Some(raw) = env(&name) else {
        return Ok(());
    };
    let days = raw
        .split(',')
        .map(|d| d.trim().parse::<i64>().map(toml::Value::Integer))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ConfigError::Invalid {
            origin: format!("environment variable {name}"),
            problem: format!(
                "key `reminders.days`: {raw:?} is not a comma-separated list of whole days"
            ),
        })?;
    let section = table
        .entry("reminders".to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let section = section.as_table_mut().ok_or_else(|| ConfigError::Invalid {
        origin: format!("environment variable {name}"),
        problem: "`reminders` is not a section".into(),
    })?;
    section.insert("days".into(), toml::Value::Array(days));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faktura.toml");
        std::fs::write(&path, "[billing]\nsettle_dayz = 3\n").unwrap();
        let err = Settings::load(dir.path(), None, &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("settle_dayz"), "{err}");
        assert!(err.contains("faktura.toml"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("faktura.toml"),
            "[billing]\nsettle_days = 3\n[mail.smtp]\nhost = \"mail.example\"\n",
        )
        .unwrap();
        let env = |name: &str| match name {
            "FAKTURA_BILLING_SETTLE_DAYS" => Some("5".to_string()),
            "FAKTURA_SMTP_PASSWORD" => Some("secret".to_string()),
            _ => None,
        };
        let settings = Settings::load(dir.path(), None, &env).unwrap();
        assert_eq!(settings.billing.settle_days, 5);
        assert_eq!(settings.mail.smtp.host, "mail.example");
        assert_eq!(settings.mail.smtp.password.as_deref(), Some("secret"));
        let printed = toml::to_string(&settings).unwrap();
        assert!(!printed.contains("secret"));
    }

    #[test]
    fn tax_rates_are_exact_and_tax_needs_the_issuers_vat_id_and_country() {
        let load = |toml: &str, env: &dyn Fn(&str) -> Option<String>| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("faktura.toml"), toml).unwrap();
            Settings::load(dir.path(), None, env)
        };
        let issuer = "[issuer]\nvat_id = \"NO123456785MVA\"\ncountry = \"no\"\n";
        for (rate, expected) in [("25", "25"), ("25.5", "25.5"), ("\"12.5\"", "12.5")] {
            let settings = load(&format!("{issuer}[tax]\nrate = {rate}\n"), &no_env).unwrap();
            assert_eq!(settings.tax.unwrap().rate.to_string(), expected);
            assert_eq!(settings.issuer.country.as_deref(), Some("NO"));
        }
        let from_env = |name: &str| (name == "FAKTURA_TAX_RATE").then(|| "15".to_string());
        let settings = load(issuer, &from_env).unwrap();
        assert_eq!(settings.tax.unwrap().rate.to_string(), "15");
        for (toml, named) in [
            ("[tax]\nrate = 25\n", "issuer.vat_id"),
            (&format!("{issuer}[tax]\nrate = 100\n"), "tax.rate"),
            (&format!("{issuer}[tax]\nrate = -1\n"), "tax.rate"),
            ("[issuer]\ncountry = \"XX\"\n", "issuer.country"),
            ("[issuer]\npeppol_id = \"no scheme\"\n", "issuer.peppol_id"),
        ] {
            let err = load(toml, &no_env).unwrap_err().to_string();
            assert!(err.contains(named), "{toml}: {err}");
        }
    }
}
