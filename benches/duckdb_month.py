#!/usr/bin/env python3
"""DuckDB's side of the month benchmark: the same ingest (CSV to typed
parquet by day) and aggregation (lines per profile, period and meter with
exact DECIMAL sums) that faktura's ingest + aggregate stages do.
Usage: duckdb_month.py DATA/usage OUT_DIR; prints seconds per step as JSON."""
import json
import sys
import time

import duckdb

from duckdb_columns import COLUMNS

usage, out = sys.argv[1], sys.argv[2]
columns = COLUMNS
con = duckdb.connect()
t0 = time.monotonic()
con.execute(f"""
    COPY (SELECT * FROM read_csv('{usage}/*.csv', header = true, columns = {columns!r}))
    TO '{out}/usage' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date))
""")
t1 = time.monotonic()
con.execute(f"""
    COPY (
        SELECT billingProfileId, date_trunc('month', date) AS period_start, subscriptionId, meterId,
               meterCategory, meterName, unitOfMeasure, chargeType, publisherType, pricingModel,
               isAzureCreditEligible, sum(quantity) AS quantity, sum(costInBillingCurrency) AS cost,
               count(*) AS rows
        FROM read_parquet('{out}/usage/**/*.parquet', hive_partitioning = true)
        GROUP BY ALL
    ) TO '{out}/lines.parquet' (FORMAT parquet)
""")
t2 = time.monotonic()
print(json.dumps({"ingest": round(t1 - t0, 3), "aggregate": round(t2 - t1, 3)}))
