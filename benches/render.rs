//! Invoice rendering throughput: 5,000 invoices of 20 lines rendered in
//! parallel with rayon (as `faktura render` does), and one of 2,000 lines.
//! `cargo bench --bench render`; prints the PDF sizes once.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faktura::model::Locale;
use rayon::prelude::*;

fn parties(issuer: &faktura::config::IssuerSettings) -> faktura::render::Parties<'_> {
    faktura::render::Parties {
        issuer,
        locale: Locale::NbNo,
        customer_name: "Nordlys Analytics – Norge",
        customer_address: "Tøyengata 12, 0578 Oslo",
        account_name: "Nordlys Analytics AS",
        customer_vat_id: None,
        subscription_names: Default::default(),
    }
}

fn render(c: &mut Criterion) {
    let issuer = faktura::config::IssuerSettings::default();
    let invoices: Vec<_> = (1..=5000)
        .map(|n| faktura::synth::synthetic_invoice(&format!("INV-{n:08}"), 20, "NOK"))
        .collect();
    let long = faktura::synth::synthetic_invoice("INV-99999999", 2000, "NOK");
    let small_size = faktura::render::render_invoice(&invoices[0], &parties(&issuer)).len();
    let long_size = faktura::render::render_invoice(&long, &parties(&issuer)).len();
    eprintln!("PDF size: 20 lines {small_size} bytes, 2,000 lines {long_size} bytes");

    let mut group = c.benchmark_group("render");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(invoices.len() as u64));
    group.bench_function("5000 invoices x 20 lines", |b| {
        b.iter(|| {
            invoices
                .par_iter()
                .map(|i| faktura::render::render_invoice(i, &parties(&issuer)).len())
                .sum::<usize>()
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("1 invoice x 2000 lines", |b| {
        b.iter(|| faktura::render::render_invoice(&long, &parties(&issuer)).len())
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
