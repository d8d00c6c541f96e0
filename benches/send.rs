//! E-mail throughput: 10,000 invoice messages (a 20-line PDF attached)
//! through lettre's pooled SMTP transport to a local SMTP server started
//! here (the same one the tests use), sent as `faktura send` does: one
//! sender per pooled connection (`deliver::SMTP_CONNECTIONS`), and, for
//! comparison, one sender alone. `cargo bench --bench send`.

#[path = "../tests/common/smtp.rs"]
#[allow(dead_code)]
mod smtp;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faktura::config::{MailSettings, TransportKind};
use faktura::deliver::{Mailer, Outcome, SMTP_CONNECTIONS, build_message};
use faktura::model::Locale;
use lettre::Message;

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
            customer_vat_id: None,
            subscription_names: Default::default(),
        },
    );
    let messages: Vec<_> = (0..MESSAGES)
        .map(|i| {
            let recipient = format!("person{i}@customer.example");
            build_message(
                &invoice.head(),
                &recipient,
                Locale::NlNl,
                "Polder Data B.V.",
                lettre::message::Body::new(pdf.clone()),
                &settings,
            )
            .unwrap()
        })
        .collect();
    eprintln!("message size: {} bytes", messages[0].formatted().len());

    let send_all = |messages: &[Message], senders: usize| {
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..senders {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(message) = messages.get(i) else {
                            return;
                        };
                        let outcome = mailer.send(
                            message,
                            "INV-00000001",
                            &format!("person{i}@customer.example"),
                        );
                        assert_eq!(outcome, Outcome::Sent);
                    }
                });
            }
        });
    };

    let mut group = c.benchmark_group("send");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(MESSAGES as u64));
    let pooled = format!("10000 messages, {SMTP_CONNECTIONS} senders over the pool");
    group.bench_function(pooled, |b| b.iter(|| send_all(&messages, SMTP_CONNECTIONS)));
    // One connection alone is latency-bound (~44 ms a message), so it gets
    // a smaller batch.
    let alone = &messages[..200];
    group.throughput(Throughput::Elements(alone.len() as u64));
    group.measurement_time(Duration::from_secs(90));
    group.bench_function("200 messages, one sender", |b| {
        b.iter(|| send_all(alone, 1))
    });
    group.finish();
}

criterion_group!(benches, send);
criterion_main!(benches);
