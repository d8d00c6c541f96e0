//! The generated usage: a meter catalogue, each subscription's meters,
//! and one day's usage file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::store;

use super::*;

/// A meter of the catalogue: category, name (CSV-quoted when needed), unit,
/// unit price at scale 6, publisher, pricing model, charge type.
pub(super) struct Meter {
    pub(super) id: String,
    pub(super) category: &'static str,
    pub(super) name: String,
    pub(super) unit: &'static str,
    pub(super) price_micros: u64,
    pub(super) publisher: &'static str,
    pub(super) pricing: &'static str,
    pub(super) charge: &'static str,
}

pub(super) const METER_SHAPES: &[(&str, &str, &str, u64, &str, &str, &str)] = &[
    (
        "Virtual Machines",
        "D2s v3, Nordic – Øst",
        "1 Hour",
        96_000,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Virtual Machines",
        "E4as v5 \"Spot\", Sverige Central",
        "1 Hour",
        41_300,
        "Azure",
        "Spot",
        "Usage",
    ),
    (
        "Virtual Machines",
        "B2ms Linux, Västeurope",
        "1 Hour",
        83_200,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Storage",
        "Hot LRS Data Stored, Østlandet",
        "1 GB/Month",
        18_400,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Storage",
        "Premium SSD Managed Disks – P10",
        "1/Month",
        19_712_000,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Storage",
        "Read Operations (Hot), Noord-Holland",
        "10K",
        4_400,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Bandwidth",
        "Standard Data Transfer Out, Zone 1",
        "1 GB",
        87_000,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Azure Cosmos DB",
        "100 RU/s, Malmö",
        "1/Hour",
        8_000,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "SQL Database",
        "vCore – General Purpose, Gen5",
        "1 Hour",
        252_000,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Azure Monitor",
        "Log Analytics – Data Ingestion",
        "1 GB",
        2_760_000,
        "Azure",
        "OnDemand",
        "Usage",
    ),
    (
        "Azure App Service",
        "P1v3 App Service Plan, Linux",
        "1 Hour",
        169_000,
        "Azure",
        "SavingsPlan",
        "Usage",
    ),
    (
        "Virtual Machines",
        "D4s v5 Reserved, 1 Year",
        "1 Hour",
        0,
        "Azure",
        "Reservation",
        "Usage",
    ),
    (
        "Virtual Machines",
        "D4s v5 Reservation, 1 Year",
        "1",
        1_261_440_000,
        "Azure",
        "Reservation",
        "Purchase",
    ),
    (
        "SaaS",
        "Contoso Analytics, Premium “Teams” Plan",
        "1 Month",
        49_000_000,
        "Marketplace",
        "OnDemand",
        "Purchase",
    ),
    (
        "Virtual Machines Licenses",
        "Fjällräven Linux, Enterprise",
        "1 Hour",
        120_000,
        "Marketplace",
        "OnDemand",
        "Usage",
    ),
];

pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(super) fn meters(rng: &mut Rng) -> Vec<Meter> {
    METER_SHAPES
        .iter()
        .map(
            |&(category, name, unit, price_micros, publisher, pricing, charge)| Meter {
                id: rng.guid(),
                category,
                name: csv_field(name),
                unit,
                price_micros,
                publisher,
                pricing,
                charge,
            },
        )
        .collect()
}

/// Gives each subscription the handful of meters (3 to 10) its resources
/// use day after day, as in real exports: an invoice has a bounded number
/// of lines however many rows a month brings. Marketplace purchases only
/// on MOSP profiles, where they make `purchases` invoices.
pub(super) fn choose_meters(
    subscriptions: &mut [GenSubscription],
    profiles: &[GenProfile],
    meters: &[Meter],
    rng: &mut Rng,
) {
    for sub in subscriptions {
        let mosp = profiles[sub.profile].mosp;
        let usable: Vec<usize> = (0..meters.len())
            .filter(|&m| {
                mosp || !(meters[m].charge == "Purchase" && meters[m].publisher == "Marketplace")
            })
            .collect();
        let count = (3 + rng.below(8) as usize).min(usable.len());
        let mut chosen = Vec::with_capacity(count);
        while chosen.len() < count {
            let m = usable[rng.below(usable.len() as u64) as usize];
            if !chosen.contains(&m) {
                chosen.push(m);
            }
        }
        chosen.sort_unstable();
        sub.meters = chosen;
    }
}

pub(super) const HEADER: &str = "date,billingAccountId,billingProfileId,subscriptionId,meterId,meterCategory,meterName,unitOfMeasure,quantity,unitPrice,costInBillingCurrency,billingCurrency,chargeType,publisherType,pricingModel,isAzureCreditEligible,resourceId\n";

/// Writes one day's usage file; returns its row count.
pub(super) fn write_day(
    dir: &Path,
    opts: &GenOptions,
    day_index: u32,
    profiles: &[GenProfile],
    subscriptions: &[GenSubscription],
    meters: &[Meter],
) -> Result<u64> {
    let day = opts.start + chrono::Days::new(day_index as u64);
    let mut rng = Rng::new(opts.seed, 1 + day_index as u64);
    let path = dir.join(format!("usage/{day}.csv"));
    let file = std::fs::File::create(&path).map_err(store::failed("create", &path))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let written = |result: std::io::Result<()>| result.map_err(store::failed("write", &path));
    written(out.write_all(HEADER.as_bytes()))?;
    let mut line = String::with_capacity(512);
    for _ in 0..opts.rows_per_day {
        let sub = &subscriptions[rng.below(subscriptions.len() as u64) as usize];
        let profile = &profiles[sub.profile];
        let meter = &meters[sub.meters[rng.below(sub.meters.len() as u64) as usize]];
        // quantity at scale 4, price at scale 6: the cost is exact at scale 10.
        let quantity = 1 + rng.below(2_000_000) as i128;
        let refund = rng.below(200) == 0;
        let mut cost = quantity * meter.price_micros as i128;
        let charge = if refund {
            cost = -cost;
            "Refund"
        } else {
            meter.charge
        };
        let eligible = if meter.publisher == "Azure" {
            "True"
        } else {
            "False"
        };
        line.clear();
        writeln!(
            line,
            "{day},{},{},{},{},{},{},{},{},{},{},{},{charge},{},{},{eligible},/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/vm-{}-{:04}",
            profile.account,
            profile.id,
            sub.id,
            meter.id,
            meter.category,
            meter.name,
            meter.unit,
            Scaled(quantity, 4),
            Scaled(meter.price_micros as i128, 6),
            Scaled(cost, 10),
            profile.currency,
            meter.publisher,
            meter.pricing,
            sub.id,
            sub.resource_group,
            meter.category.len(),
            rng.below(10_000),
        )?;
        written(out.write_all(line.as_bytes()))?;
    }
    written(out.flush())?;
    Ok(opts.rows_per_day)
}
