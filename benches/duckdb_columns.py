"""The usage columns with explicit DuckDB types, shared by the DuckDB sides
of the benchmarks (decimals as DECIMAL(38,10), dates as DATE)."""

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
    columns, VARCHAR for any other (Azure's `tags`, say)."""
    with open(path, encoding="utf-8-sig") as f:
        names = f.readline().rstrip("\r\n").split(",")
    return {name: COLUMNS.get(name, "VARCHAR") for name in names}
