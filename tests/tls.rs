//! SMTP over TLS (SPEC §8; issue 33) against a real TLS relay the test
//! starts on 127.0.0.1 (rustls, as lettre uses), with certificates from a
//! test CA made with rcgen: `starttls` and `tls` deliver when
//! `[mail.smtp] ca_file` names the CA, with AUTH over TLS; a certificate
//! from another CA, an expired one, one for another host, and a relay
//! without STARTTLS each end as a failed delivery that says why (never a
//! fall back to plain text), exit 3, and are retried by the next run.

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use crate::common::smtp::{Script, SmtpServer, Tls};
use crate::common::{faktura_env, run_args, sample_copy};

const AS_OF: &str = "2026-12-03";
/// What the sample sends on 2026-12-03: 15 invoice and 4 credit-note messages.
const MESSAGES: usize = 19;

/// A certificate authority of the test's own.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A relay's TLS configuration with a certificate this CA signed for
    /// `names`, valid from `not_before` to `not_after` (years).
    fn server(&self, names: &[&str], years: (i32, i32)) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
        params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        Arc::new(config)
    }

    /// The CA's certificate as a PEM file in `dir`.
    fn pem_file(&self, dir: &Path, name: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, self.cert.pem()).unwrap();
        path.to_str().unwrap().to_string()
    }
}

/// `faktura run` on the sample through `server` with `security` and `ca_file`.
fn run_tls(
    data: &Path,
    out: &Path,
    server: &SmtpServer,
    security: &str,
    ca_file: &str,
    extra: &[(&str, &str)],
) -> (i32, String) {
    let mut env = server.env();
    env.retain(|(k, _)| k != "FAKTURA_MAIL_SMTP_SECURITY");
    env.push(("FAKTURA_MAIL_SMTP_SECURITY".into(), security.into()));
    env.push(("FAKTURA_MAIL_SMTP_CA_FILE".into(), ca_file.into()));
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    faktura_env(&run_args(data, out, AS_OF), &env)
}

fn years_valid() -> (i32, i32) {
    (2020, 2090)
}

#[test]
fn starttls_and_tls_deliver_with_the_test_ca_and_auth_goes_over_tls() {
    let ca = Ca::new("faktura test CA");
    let certs = tempfile::tempdir().unwrap();
    let ca_file = ca.pem_file(certs.path(), "ca.pem");
    let config = ca.server(&["127.0.0.1", "localhost"], years_valid());
    for (security, tls) in [
        ("starttls", Tls::Starttls(config.clone())),
        ("tls", Tls::Wrapper(config.clone())),
    ] {
        let data = sample_copy();
        let out = tempfile::tempdir().unwrap();
        let server = SmtpServer::start(Script {
            tls: Some(tls),
            ..Default::default()
        });
        let secret = "s3cret-Pa55word";
        let (code, stderr) = run_tls(
            data.path(),
            out.path(),
            &server,
            security,
            &ca_file,
            &[
                ("FAKTURA_SMTP_USER", "billing@example.com"),
                ("FAKTURA_SMTP_PASSWORD", secret),
            ],
        );
        assert_eq!(code, 3, "{security}: {stderr}"); // the sample's rejected rows
        let received = server.received();
        assert_eq!(received.len(), MESSAGES, "{security}: {stderr}");
        for m in &received {
            assert!(m.tls, "{security}: a message over plain text");
            assert_eq!(
                m.auth,
                Some(("billing@example.com".to_string(), secret.to_string())),
                "{security}"
            );
        }
        // The password is in no log, summary or configuration print-out.
        assert!(!stderr.contains(secret));
        for summary in crate::common::files_under(&out.path().join("runs")) {
            assert!(!std::fs::read_to_string(summary).unwrap().contains(secret));
        }
        // `faktura config` prints the resolved settings on stdout.
        let config = std::process::Command::new(env!("CARGO_BIN_EXE_faktura"))
            .args(["config", "--data", data.path().to_str().unwrap()])
            .env("FAKTURA_SMTP_PASSWORD", secret)
            .output()
            .unwrap();
        assert!(config.status.success());
        let printed = String::from_utf8_lossy(&config.stdout);
        assert!(printed.contains("[mail.smtp]"), "{printed}");
        assert!(
            !printed.contains(secret) && !String::from_utf8_lossy(&config.stderr).contains(secret)
        );
    }
}

#[test]
fn every_tls_failure_is_a_failed_delivery_saying_why_and_retried_next_run() {
    let ca = Ca::new("faktura test CA");
    let other = Ca::new("someone else's CA");
    let certs = tempfile::tempdir().unwrap();
    let ca_file = ca.pem_file(certs.path(), "ca.pem");
    let good = ca.server(&["127.0.0.1"], years_valid());
    let cases: Vec<(&str, &str, Option<Tls>, &str)> = vec![
        (
            "a certificate from another CA",
            "starttls",
            Some(Tls::Starttls(other.server(&["127.0.0.1"], years_valid()))),
            "UnknownIssuer",
        ),
        (
            "an expired certificate",
            "tls",
            Some(Tls::Wrapper(ca.server(&["127.0.0.1"], (2020, 2021)))),
            "certificate expired",
        ),
        (
            "a certificate for another host",
            "starttls",
            Some(Tls::Starttls(
                ca.server(&["relay.other.example"], years_valid()),
            )),
            "certificate not valid for name",
        ),
        (
            "a relay that offers no STARTTLS",
            "starttls",
            None,
            "STARTTLS is not supported",
        ),
    ];
    for (what, security, tls, reason) in cases {
        let data = sample_copy();
        let out = tempfile::tempdir().unwrap();
        let bad = SmtpServer::start(Script {
            tls,
            ..Default::default()
        });
        let (code, stderr) = run_tls(data.path(), out.path(), &bad, security, &ca_file, &[]);
        assert_eq!(code, 3, "{what}: {stderr}");
        assert!(bad.received().is_empty(), "{what}: nothing may go out");
        assert!(stderr.contains(reason), "{what}: {reason:?} in {stderr}");
        assert!(
            stderr.contains(&format!("0 sent, {MESSAGES} failed")),
            "{what}: {stderr}"
        );
        // Fixed (the right relay): the next run delivers each message once.
        let fixed = SmtpServer::start(Script {
            tls: Some(match security {
                "tls" => Tls::Wrapper(good.clone()),
                _ => Tls::Starttls(good.clone()),
            }),
            ..Default::default()
        });
        let (_, stderr) = run_tls(data.path(), out.path(), &fixed, security, &ca_file, &[]);
        assert!(
            stderr.contains(&format!("{MESSAGES} sent, 0 failed")),
            "{what}: {stderr}"
        );
        assert_eq!(fixed.received().len(), MESSAGES, "{what}");
    }
}

#[test]
fn a_ca_file_that_cannot_be_read_is_a_configuration_error() {
    let data = sample_copy();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("o");
    for (ca_file, problem) in [
        ("/nonexistent/ca.pem", "No such file"),
        ("/etc/hostname", "not a PEM certificate"),
    ] {
        let env = [("FAKTURA_MAIL_SMTP_CA_FILE".to_string(), ca_file.to_string())];
        let (code, stderr) = faktura_env(&run_args(data.path(), &out_dir, AS_OF), &env);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("mail.smtp.ca_file"), "{stderr}");
        assert!(stderr.contains(problem), "{stderr}");
        assert!(!out_dir.exists());
    }
}
