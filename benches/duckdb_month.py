#!/usr/bin/env python3
"""DuckDB's side of the month benchmark, run as its tuning guide says:
`threads` = the cores, `preserve_insertion_order = false`, explicit column
types (decimals as DECIMAL(38,10), dates as DATE), each day's CSV to one
zstd parquet file (no PARTITION_BY, which buffers every partition). Then
the invoice lines per profile, month, subscription and line key with
exact DECIMAL sums, from that parquet. The same work as faktura's ingest
+ aggregate stages. As an expert would: only the columns billing needs are
kept (a 65-column export's others are read as VARCHAR and dropped), the
date format given (Azure's MM/DD/YYYY where the file has it).
Usage: duckdb_month.py DATA/usage OUT_DIR
Prints seconds per step and the number of lines as JSON."""
import glob
import json
import os
import sys
import time

import duckdb

from duckdb_columns import columns_of, dateformat_of, needed_of

usage, out = sys.argv[1], sys.argv[2]
con = duckdb.connect(config={
    "threads": os.cpu_count(),
    "preserve_insertion_order": False,
})
os.makedirs(f"{out}/usage", exist_ok=True)
t0 = time.monotonic()
for path in sorted(glob.glob(f"{usage}/*.csv")):
    day = os.path.basename(path)[:10]
    con.execute(f"""
        COPY (SELECT {needed_of(path)} FROM read_csv('{path}', header = true,
              dateformat = '{dateformat_of(path)}', columns = {columns_of(path)!r}))
        TO '{out}/usage/{day}.parquet' (FORMAT parquet, COMPRESSION zstd)
    """)
t1 = time.monotonic()
con.execute(f"""
    COPY (
        SELECT billingProfileId, date_trunc('month', date) AS period_start, subscriptionId, meterId,
               meterCategory, meterName, unitOfMeasure, chargeType, publisherType, pricingModel,
               isAzureCreditEligible, sum(quantity) AS quantity, sum(costInBillingCurrency) AS cost,
               count(*) AS rows
        FROM read_parquet('{out}/usage/*.parquet')
        GROUP BY ALL
    ) TO '{out}/lines.parquet' (FORMAT parquet)
""")
t2 = time.monotonic()
lines = con.execute(f"SELECT count(*) FROM read_parquet('{out}/lines.parquet')").fetchone()[0]
print(json.dumps({"ingest": round(t1 - t0, 3), "aggregate": round(t2 - t1, 3), "lines": lines}))
