#!/usr/bin/env python3
"""DuckDB's side of the ingest comparison: every usage CSV of a data
directory to typed parquet partitioned by date, with explicit types
(decimals as DECIMAL(38,10), dates as DATE), zstd like faktura.
Usage: duckdb_ingest.py DATA/usage OUT_DIR"""
import sys

import duckdb

from duckdb_columns import COLUMNS

usage, out = sys.argv[1], sys.argv[2]
columns = COLUMNS
con = duckdb.connect()
con.execute(f"""
    COPY (SELECT * FROM read_csv('{usage}/*.csv', header = true, columns = {columns!r}))
    TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date))
""")
