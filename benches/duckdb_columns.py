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
