//! Renders a synthetic 300-line invoice to `long-invoice.pdf`, to look at.
fn main() {
    let issuer = faktura::config::IssuerSettings::default();
    let invoice = faktura::synth::synthetic_invoice("INV-00000300", 300, "NOK");
    let parties = faktura::render::Parties {
        issuer: &issuer,
        locale: faktura::model::Locale::NbNo,
        customer_name: "Nordlys Analytics – Norge",
        customer_address: "Tøyengata 12, 0578 Oslo",
        account_name: "Nordlys Analytics AS",
        subscription_names: Default::default(),
    };
    std::fs::write(
        "long-invoice.pdf",
        faktura::render::render_invoice(&invoice, &parties),
    )
    .unwrap();
}
