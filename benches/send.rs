//! E-mail throughput: 10,000 invoice messages (a 20-line PDF attached)
//! through lettre's pooled SMTP transport to a local SMTP server started
//! here (the same one the tests use). `cargo bench --bench send`.

#[path = "../tests/common/smtp.rs"]
#[allow(dead_code)]
mod smtp;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faktura::config::{MailSettings, TransportKind};
use faktura::deliver::{Mailer, Outcome, build_message};
use faktura::model::Locale;

const MESSAGES: usize = 10_000;

fn send(c: &mut Criterion) {
    let server = smtp::SmtpServer::start(smtp::Script {
        discard_bodies: true,
        ..Default::default()
    });
    let mut settings = MailSettings {
        transport: TransportKind::Smtp,
        ..MailSettings::default()
    };
    settings.smtp.port = server.addr.port();
    let out = tempfile::tempdir().unwrap();
    let mailer = Mailer::new(&settings, out.path()).unwrap();
    let issuer = faktura::config::IssuerSettings::default();
    let invoice = faktura::synth::synthetic_invoice("INV-00000001", 20, "EUR");
    let pdf = faktura::render::render_invoice(
        &invoice,
        &faktura::render::Parties {
            issuer: &issuer,
            locale: Locale::NlNl,
            customer_name: "Polder Data B.V.",
            customer_address: "Keizersgracht 221, 1016 DV Amsterdam",
            account_name: "Polder Data",
            subscription_names: Default::default(),
        },
    );
    let messages: Vec<_> = (0..MESSAGES)
        .map(|i| {
            let recipient = format!("person{i}@customer.example");
            build_message(
                &invoice,
                &recipient,
                Locale::NlNl,
                "Polder Data B.V.",
                pdf.clone(),
                &settings,
            )
            .unwrap()
        })
        .collect();
    eprintln!("message size: {} bytes", messages[0].formatted().len());

    let mut group = c.benchmark_group("send");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(60));
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("10000 messages, pooled SMTP", |b| {
        b.iter(|| {
            for (i, message) in messages.iter().enumerate() {
                let outcome = mailer.send(
                    message,
                    "INV-00000001",
                    &format!("person{i}@customer.example"),
                );
                assert_eq!(outcome, Outcome::Sent);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, send);
criterion_main!(benches);
