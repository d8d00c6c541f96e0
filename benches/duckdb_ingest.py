#!/usr/bin/env python3
"""DuckDB's side of the ingest comparison, tuned as its guide says
(`threads` = the cores, `preserve_insertion_order = false`, explicit types:
decimals as DECIMAL(38,10), dates as DATE): each day's CSV to one zstd
parquet file, no PARTITION_BY.
Usage: duckdb_ingest.py DATA/usage OUT_DIR"""
import glob
import os
import sys

import duckdb

from duckdb_columns import columns_of

usage, out = sys.argv[1], sys.argv[2]
con = duckdb.connect(config={
    "threads": os.cpu_count(),
    "preserve_insertion_order": False,
})
os.makedirs(out, exist_ok=True)
for path in sorted(glob.glob(f"{usage}/*.csv")):
    day = os.path.basename(path)[:10]
    con.execute(f"""
        COPY (SELECT * FROM read_csv('{path}', header = true, dateformat = '%Y-%m-%d', columns = {columns_of(path)!r}))
        TO '{out}/{day}.parquet' (FORMAT parquet, COMPRESSION zstd)
    """)
