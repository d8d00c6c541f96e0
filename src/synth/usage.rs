//! The generated usage: a meter catalogue, each subscription's meters,
//! and one day's usage file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::store;

use chrono::NaiveDate;

use super::reference::{GenProfile, GenSubscription};
use super::shape::{Layout, UsageShape, Zipf};
use super::{GenOptions, Result, Rng, Scaled, Trimmed};

/// A meter of the catalogue: category, name (CSV-quoted when needed), unit,
/// unit price at scale 6, publisher, pricing model, charge type.
pub(super) struct Meter {
    pub(super) id: String,
    pub(super) category: &'static str,
    pub(super) name: String,
    /// The name without commas and quotes, never quoted (the plain shape's).
    pub(super) plain_name: String,
    pub(super) unit: &'static str,
    pub(super) price_micros: u64,
    /// The unit price at scale 8, with up to 8 significant fraction
    /// digits (the azure shape's).
    pub(super) price_e8: i128,
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

/// The meter catalogue: the 15 base meters, then (for a larger
/// catalogue) variants of them in other sizes and regions, each with its
/// own id and price.
pub(super) fn meters(rng: &mut Rng, shape: &UsageShape) -> Vec<Meter> {
    let mut catalogue: Vec<Meter> = METER_SHAPES
        .iter()
        .map(
            |&(category, name, unit, price_micros, publisher, pricing, charge)| Meter {
                id: rng.guid(),
                category,
                name: csv_field(name),
                plain_name: plain(name),
                unit,
                price_micros,
                price_e8: price_micros as i128 * 100,
                publisher,
                pricing,
                charge,
            },
        )
        .collect();
    for i in METER_SHAPES.len()..shape.catalogue.max(METER_SHAPES.len()) {
        let base = &catalogue[i % METER_SHAPES.len()];
        let (_, name, ..) = METER_SHAPES[i % METER_SHAPES.len()];
        let region = REGIONS[rng.below(REGIONS.len() as u64) as usize];
        let name = format!("{name} v{}, {region}", i / METER_SHAPES.len());
        // 0.5x to 2x the base price, with up to 8 fraction digits.
        let price_e8 = base.price_e8 * (50 + rng.below(151) as i128) / 100 + rng.below(100) as i128;
        let meter = Meter {
            id: rng.guid(),
            name: csv_field(&name),
            plain_name: plain(&name),
            price_e8,
            category: base.category,
            unit: base.unit,
            price_micros: base.price_micros,
            publisher: base.publisher,
            pricing: base.pricing,
            charge: base.charge,
        };
        catalogue.push(meter);
    }
    catalogue
}

/// `name` without the commas and quotes that would make it a quoted field.
fn plain(name: &str) -> String {
    name.replace(", ", " ").replace([',', '"'], "")
}

/// Regions of the catalogue's variants: commas, quotes and æøå included.
const REGIONS: &[&str] = &[
    "Norge Øst",
    "Norge Vest",
    "Sverige Central",
    "Sverige Syd (Malmö)",
    "Danmark Ærø",
    "Suomi \"Helsinki\"",
    "West Europe",
    "North Europe, Dublin",
    "Deutschland Nord – Hamburg",
    "Schweiz Zürich",
    "France Centre",
    "Polska Środkowa",
    "UK South",
    "US East 2",
    "Brasil Sul",
    "Österreich Ost",
];

/// Gives each subscription the meters its resources use day after day
/// (the shape's range, 3 to 10 in the classic one), as in real exports: an
/// invoice has a bounded number of lines however many rows a month brings.
/// Popular meters are drawn more often under a meter skew. Marketplace
/// purchases only on MOSP profiles, where they make `purchases` invoices.
pub(super) fn choose_meters(
    subscriptions: &mut [GenSubscription],
    profiles: &[GenProfile],
    meters: &[Meter],
    shape: &UsageShape,
    rng: &mut Rng,
) {
    let popularity = Zipf::new(meters.len(), shape.meter_skew);
    let (low, high) = shape.meters_per_subscription;
    for sub in subscriptions {
        let mosp = profiles[sub.profile].mosp;
        let usable = |m: usize| {
            mosp || !(meters[m].charge == "Purchase" && meters[m].publisher == "Marketplace")
        };
        let usable_list: Vec<usize> = (0..meters.len()).filter(|&m| usable(m)).collect();
        let count = (low + rng.below((high - low + 1) as u64) as usize).min(usable_list.len());
        let mut chosen = Vec::with_capacity(count);
        while chosen.len() < count {
            let m = if shape.meter_skew == 0.0 {
                usable_list[rng.below(usable_list.len() as u64) as usize]
            } else {
                popularity.draw(rng)
            };
            if usable(m) && !chosen.contains(&m) {
                chosen.push(m);
            }
        }
        chosen.sort_unstable();
        sub.meters = chosen;
    }
}

pub(super) const HEADER: &str = "date,billingAccountId,billingProfileId,subscriptionId,meterId,meterCategory,meterName,unitOfMeasure,quantity,unitPrice,costInBillingCurrency,billingCurrency,chargeType,publisherType,pricingModel,isAzureCreditEligible,resourceId\n";

/// The azure shape's header: the usage columns and Azure's `tags`, a JSON
/// object in a quoted cell (an extra column faktura ignores).
const HEADER_WITH_TAGS: &str = "date,billingAccountId,billingProfileId,subscriptionId,meterId,meterCategory,meterName,unitOfMeasure,quantity,unitPrice,costInBillingCurrency,billingCurrency,chargeType,publisherType,pricingModel,isAzureCreditEligible,resourceId,tags\n";

/// The plain shape's 16 columns: no `isAzureCreditEligible`, no `tags`.
const PLAIN_HEADER: &str = "date,billingAccountId,billingProfileId,subscriptionId,meterId,meterCategory,meterName,unitOfMeasure,quantity,unitPrice,costInBillingCurrency,billingCurrency,chargeType,publisherType,pricingModel,resourceId\n";

/// Azure's MCA cost and usage details columns (version 2023-12-01-preview,
/// in Azure's order and casing; Microsoft's `cost-usage-details-mca`
/// schema).
const WIDE_HEADER: &str = "invoiceId,previousInvoiceId,billingAccountId,billingAccountName,billingProfileId,billingProfileName,invoiceSectionId,invoiceSectionName,resellerName,resellerMpnId,costCenter,billingPeriodEndDate,billingPeriodStartDate,servicePeriodEndDate,servicePeriodStartDate,date,serviceFamily,productOrderId,productOrderName,consumedService,meterId,meterName,meterCategory,meterSubCategory,meterRegion,ProductId,ProductName,SubscriptionId,subscriptionName,publisherType,publisherId,publisherName,resourceGroupName,ResourceId,resourceLocation,location,effectivePrice,quantity,unitOfMeasure,chargeType,billingCurrency,pricingCurrency,costInBillingCurrency,costInPricingCurrency,costInUsd,paygCostInBillingCurrency,paygCostInUsd,exchangeRatePricingToBilling,exchangeRateDate,isAzureCreditEligible,serviceInfo1,serviceInfo2,additionalInfo,tags,PayGPrice,frequency,term,reservationId,reservationName,pricingModel,unitPrice,costAllocationRuleName,benefitId,benefitName,provider\n";

/// What every day's rows are drawn from: the reference's profiles and
/// subscriptions, the catalogue, and the shape's skews as tables.
pub(super) struct RowPlan<'a> {
    pub(super) profiles: &'a [GenProfile],
    pub(super) subscriptions: &'a [GenSubscription],
    pub(super) meters: &'a [Meter],
    pub(super) shape: &'a UsageShape,
    /// Subscriptions from the busiest down (a shuffled order, so volume
    /// does not follow the profile number).
    by_volume: Vec<usize>,
    volume: Zipf,
    /// Meter popularity within a subscription using `n` meters: `within[n]`.
    within: Vec<Zipf>,
}

impl<'a> RowPlan<'a> {
    pub(super) fn new(
        profiles: &'a [GenProfile],
        subscriptions: &'a [GenSubscription],
        meters: &'a [Meter],
        shape: &'a UsageShape,
        rng: &mut Rng,
    ) -> RowPlan<'a> {
        let mut by_volume: Vec<usize> = (0..subscriptions.len()).collect();
        if !shape.is_classic() {
            for i in (1..by_volume.len()).rev() {
                by_volume.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        let most = subscriptions
            .iter()
            .map(|s| s.meters.len())
            .max()
            .unwrap_or(0);
        RowPlan {
            profiles,
            subscriptions,
            meters,
            shape,
            volume: Zipf::new(subscriptions.len(), shape.volume_skew),
            by_volume,
            within: (0..=most).map(|n| Zipf::new(n, shape.meter_skew)).collect(),
        }
    }
}

/// Writes one day's usage file; returns its row count.
pub(super) fn write_day(
    dir: &Path,
    opts: &GenOptions,
    day_index: u32,
    plan: &RowPlan,
) -> Result<u64> {
    let day = opts.start + chrono::Days::new(day_index as u64);
    let mut rng = Rng::new(opts.seed, 1 + day_index as u64);
    let path = dir.join(format!("usage/{day}.csv"));
    let file = std::fs::File::create(&path).map_err(store::failed("create", &path))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let written = |result: std::io::Result<()>| result.map_err(store::failed("write", &path));
    let header = match plan.shape.layout {
        Layout::Plain => PLAIN_HEADER,
        Layout::Wide => WIDE_HEADER,
        Layout::Usage if plan.shape.azure_mix => HEADER_WITH_TAGS,
        Layout::Usage => HEADER,
    };
    written(out.write_all(header.as_bytes()))?;
    let mut line = String::with_capacity(512);
    for _ in 0..opts.rows_per_day {
        line.clear();
        if plan.shape.is_classic() {
            classic_row(&mut line, day, plan, &mut rng)?;
        } else {
            shaped_row(&mut line, day, plan, &mut rng)?;
        }
        written(out.write_all(line.as_bytes()))?;
    }
    written(out.flush())?;
    Ok(opts.rows_per_day)
}

/// A row of the classic shape: uniform subscriptions and meters, the
/// meter's charge type and pricing model, 1 row in 200 a refund.
fn classic_row(line: &mut String, day: NaiveDate, plan: &RowPlan, rng: &mut Rng) -> Result<()> {
    let sub = &plan.subscriptions[rng.below(plan.subscriptions.len() as u64) as usize];
    let meter = &plan.meters[sub.meters[rng.below(sub.meters.len() as u64) as usize]];
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
    let values = RowValues {
        quantity: Scaled(quantity, 4).to_string(),
        price: Scaled(meter.price_micros as i128, 6).to_string(),
        cost: Scaled(cost, 10).to_string(),
        charge,
        pricing: meter.pricing,
    };
    write_row(line, day, plan, sub, meter, &values, rng)
}

/// A row of a shaped month: the subscription drawn by its volume, the
/// meter by its popularity within the subscription, Azure's mix of charge
/// types and pricing models, values with 0 to 8 fraction digits.
fn shaped_row(line: &mut String, day: NaiveDate, plan: &RowPlan, rng: &mut Rng) -> Result<()> {
    let sub = &plan.subscriptions[plan.by_volume[plan.volume.draw(rng)]];
    let meter = &plan.meters[sub.meters[plan.within[sub.meters.len()].draw(rng)]];
    let digits = rng.below(9) as u32;
    let step = 10i128.pow(8 - digits);
    let quantity = ((1 + rng.below(2_000_000_000) as i128) / step).max(1) * step;
    let cost = rounded_product(quantity, meter.price_e8);
    let (charge, cost) = match rng.below(100) {
        0 => ("Refund", -cost),
        1 | 2 => ("Purchase", cost),
        _ => ("Usage", cost),
    };
    let pricing = match rng.below(100) {
        0..40 => meter.pricing,
        40..65 => "OnDemand",
        65..80 => "Reservation",
        80..93 => "SavingsPlan",
        _ => "Spot",
    };
    let values = RowValues {
        quantity: Trimmed(quantity, 8).to_string(),
        price: Trimmed(meter.price_e8, 8).to_string(),
        cost: Trimmed(cost, 8).to_string(),
        charge,
        pricing,
    };
    write_row(line, day, plan, sub, meter, &values, rng)
}

/// `a * b` of two scale-8 values, rounded half away from zero to scale 8.
fn rounded_product(a: i128, b: i128) -> i128 {
    let exact = a * b;
    let unit = 100_000_000;
    (exact + exact.signum() * unit / 2) / unit
}

/// The values that differ between shapes.
struct RowValues {
    quantity: String,
    price: String,
    cost: String,
    charge: &'static str,
    pricing: &'static str,
}

fn write_row(
    line: &mut String,
    day: NaiveDate,
    plan: &RowPlan,
    sub: &GenSubscription,
    meter: &Meter,
    values: &RowValues,
    rng: &mut Rng,
) -> Result<()> {
    match plan.shape.layout {
        Layout::Usage => {}
        Layout::Plain => return plain_row(line, day, plan, sub, meter, values),
        Layout::Wide => return wide_row(line, day, plan, sub, meter, values),
    }
    let profile = &plan.profiles[sub.profile];
    let eligible = if meter.publisher == "Azure" {
        "True"
    } else {
        "False"
    };
    writeln!(
        line,
        "{day},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{eligible},/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/vm-{}-{:04}",
        profile.account,
        profile.id,
        sub.id,
        meter.id,
        meter.category,
        meter.name,
        meter.unit,
        values.quantity,
        values.price,
        values.cost,
        profile.currency,
        values.charge,
        meter.publisher,
        values.pricing,
        sub.id,
        sub.resource_group,
        meter.category.len(),
        rng.below(10_000),
    )?;
    if plan.shape.azure_mix {
        line.pop();
        writeln!(
            line,
            ",\"{{\"\"environment\"\":\"\"{}\"\",\"\"costCenter\"\":\"\"CC-{:04}\"\"}}\"",
            ["prod", "dev", "test", "shared"][sub.profile % 4],
            sub.profile % 5_000
        )?;
    }
    Ok(())
}

/// The resource a subscription's usage of `meter` comes from: the same id
/// day after day, as a real resource's.
fn resource_id(sub: &GenSubscription, meter: &Meter) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/vm-{}",
        sub.id,
        sub.resource_group,
        &meter.id[..8]
    )
}

/// A row of the plain shape's 16 columns, nothing quoted.
fn plain_row(
    line: &mut String,
    day: NaiveDate,
    plan: &RowPlan,
    sub: &GenSubscription,
    meter: &Meter,
    values: &RowValues,
) -> Result<()> {
    let profile = &plan.profiles[sub.profile];
    writeln!(
        line,
        "{day},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        profile.account,
        profile.id,
        sub.id,
        meter.id,
        meter.category,
        meter.plain_name,
        meter.unit,
        values.quantity,
        values.price,
        values.cost,
        profile.currency,
        values.charge,
        meter.publisher,
        values.pricing,
        resource_id(sub, meter),
    )?;
    Ok(())
}

/// A row of Azure's 65 MCA columns, its dates written `MM/DD/YYYY` as the
/// export writes them, with `additionalInfo` and `tags` JSON.
fn wide_row(
    line: &mut String,
    day: NaiveDate,
    plan: &RowPlan,
    sub: &GenSubscription,
    meter: &Meter,
    values: &RowValues,
) -> Result<()> {
    use chrono::Datelike;
    let profile = &plan.profiles[sub.profile];
    let us = |d: NaiveDate| d.format("%m/%d/%Y").to_string();
    let month_start = day.with_day(1).expect("day 1 exists");
    let month_end = month_start + chrono::Months::new(1) - chrono::Days::new(1);
    let eligible = if meter.publisher == "Azure" {
        "True"
    } else {
        "False"
    };
    let pricing = if values.pricing == "OnDemand" {
        "On Demand"
    } else {
        values.pricing
    };
    let (quantity, price, cost) = (&values.quantity, &values.price, &values.cost);
    let sub_index = sub.profile;
    write!(
        line,
        ",,{account},Customer {sub_index},{profile_id},Profile {sub_index},{profile_id}-IS1,Default,,,CC-{cc:04},\
         {end},{start},{end},{start},{date},Compute,,,Microsoft.Compute,{meter_id},{name},{category},{category},\
         West Europe,DZH318Z0BQ4K/00{cc:02},\"{category} {plain}\",{sub_id},Subscription {sub_index},{publisher},,\
         Microsoft,{rg},{resource},westeurope,EU West,{price},{quantity},{unit},{charge},{currency},{currency},\
         {cost},{cost},{cost},{cost},{cost},1,{start},{eligible},,",
        account = profile.account,
        profile_id = profile.id,
        cc = sub_index % 100,
        end = us(month_end),
        start = us(month_start),
        date = us(day),
        meter_id = meter.id,
        name = meter.name,
        category = meter.category,
        plain = meter.plain_name,
        sub_id = sub.id,
        publisher = meter.publisher,
        rg = sub.resource_group,
        resource = resource_id(sub, meter),
        unit = meter.unit,
        charge = values.charge,
        currency = profile.currency,
    )?;
    writeln!(
        line,
        ",\"{{\"\"ImageType\"\":\"\"Canonical\"\",\"\"ServiceType\"\":\"\"Standard_{unit_tag}\"\",\"\"VMName\"\":\"\"vm-{vm}\"\",\"\"UsageType\"\":\"\"ComputeHR\"\",\"\"VCPUs\"\":{vcpus},\"\"ConsumptionMeter\"\":\"\"{meter_id}\"\",\"\"ResourceCategory\"\":\"\"{category}\"\",\"\"RINormalizationRatio\"\":\"\"1\"\"}}\",\
         \"{{\"\"environment\"\":\"\"{env}\"\",\"\"costCenter\"\":\"\"CC-{cc:04}\"\",\"\"owner\"\":\"\"team-{team}@example.com\"\"}}\",\
         {price},UsageBased,,,,{pricing},{price},,,,Azure",
        unit_tag = meter.category.len(),
        vm = &meter.id[..8],
        vcpus = 2 << (sub_index % 4),
        meter_id = meter.id,
        category = meter.category,
        env = ["prod", "dev", "test", "shared"][sub_index % 4],
        cc = sub_index % 5_000,
        team = sub_index % 97,
    )?;
    Ok(())
}
