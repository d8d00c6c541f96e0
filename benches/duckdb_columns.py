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


def columns_of(path):
    """The explicit types of a usage file's header: COLUMNS for the usage
    columns, VARCHAR for any other (Azure's `tags`, say). The header is
    read as CSV, so quoted names (every field quoted) come out right."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        names = next(csv.reader(f))
    return {name: COLUMNS.get(name, "VARCHAR") for name in names}
