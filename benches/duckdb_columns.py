"""The usage columns with explicit DuckDB types, shared by the DuckDB sides
of the benchmarks (decimals as DECIMAL(38,10), dates as DATE)."""
import csv

COLUMNS = {
    "date": "DATE", "billingAccountId": "VARCHAR", "billingProfileId": "VARCHAR",
    "subscriptionId": "VARCHAR", "meterId": "VARCHAR", "meterCategory": "VARCHAR",
    "meterName": "VARCHAR", "unitOfMeasure": "VARCHAR", "quantity": "DECIMAL(38,10)",
    "unitPrice": "DECIMAL(38,10)", "costInBillingCurrency": "DECIMAL(38,10)",
    "billingCurrency": "VARCHAR", "chargeType": "VARCHAR", "publisherType": "VARCHAR",
    "pricingModel": "VARCHAR", "isAzureCreditEligible": "BOOLEAN", "resourceId": "VARCHAR",
}


KNOWN = {name.lower(): (name, kind) for name, kind in COLUMNS.items()}


def header_of(path):
    """A usage file's header and first row, read as CSV (quoted names, every
    field quoted, come out right)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        return next(reader), next(reader, [])


def columns_of(path):
    """The explicit types of a usage file's header: COLUMNS for the usage
    columns (matched without case, as faktura matches them: Azure writes
    `SubscriptionId`), VARCHAR for any other (Azure's `tags`, say)."""
    names, _ = header_of(path)
    return {name: KNOWN.get(name.lower(), (name, "VARCHAR"))[1] for name in names}


def needed_of(path):
    """`SELECT` items that read only the columns billing needs, named as
    COLUMNS names them; `isAzureCreditEligible` from `publisherType` (SPEC
    §2.1's default) when the file has none."""
    names, _ = header_of(path)
    present = {name.lower(): name for name in names}
    items = [f'"{present[key]}" AS {name}' for key, (name, _) in KNOWN.items() if key in present]
    if "isazurecrediteligible" not in present:
        items.append(f"\"{present['publishertype']}\" <> 'Marketplace' AS isAzureCreditEligible")
    return ", ".join(items)


def dateformat_of(path):
    """The date format of a file's first row: `MM/DD/YYYY` as Azure's
    exports write it, else ISO."""
    names, row = header_of(path)
    dates = [v for n, v in zip(names, row) if n.lower() == "date"]
    return "%m/%d/%Y" if dates and "/" in dates[0] else "%Y-%m-%d"
