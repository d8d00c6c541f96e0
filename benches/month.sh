#!/usr/bin/env bash
# The nightly job over a generated month, stage by stage, side by side with
# DuckDB doing the same ingest and aggregation; then day 31 alone.
#   benches/month.sh [ROWS]     default 10,000,000 rows (5,000 profiles)
# Needs PyPI for duckdb (a throwaway venv under $WORK).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
DAYS=30
PROFILES=${PROFILES:-5000}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
echo "work dir: $WORK"
cargo build --release --quiet
BIN=$PWD/target/release/faktura
PER_DAY=$((ROWS / DAYS))

rm -rf "$WORK/data" "$WORK/out" "$WORK/duck" "$WORK/duck2" "$WORK/day31" "$WORK/alone" "$WORK/alone-out"
python3 benches/measure.py "$BIN" gen --out "$WORK/data" --days 31 --rows-per-day "$PER_DAY" \
  --profiles "$PROFILES" --seed 42 > "$WORK/gen.json"
echo "gen (31 days): $(cat "$WORK/gen.json")"
# Day 31 (2026-10-31) waits aside for the incremental night.
mkdir -p "$WORK/day31"
mv "$WORK/data/usage/2026-10-31.csv" "$WORK/day31/"
BYTES=$(du -sb "$WORK/data/usage" | cut -f1)

if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install --quiet duckdb
fi

FAKTURA_LOG=warn python3 benches/measure.py "$BIN" run --data "$WORK/data" --out "$WORK/out" \
  --as-of 2026-10-31 > "$WORK/faktura.json"
mkdir -p "$WORK/duck"
python3 benches/measure.py "$WORK/venv/bin/python" benches/duckdb_month.py "$WORK/data/usage" "$WORK/duck" \
  > "$WORK/duckdb.json" 2>/dev/null
mkdir -p "$WORK/duck2"
"$WORK/venv/bin/python" benches/duckdb_month.py "$WORK/data/usage" "$WORK/duck2" > "$WORK/duckdb-steps.json"

# Night 31: the new day arrives; also time ingesting that day alone. Both
# read the new file from the page cache (a file that just arrived is there).
mv "$WORK/day31/2026-10-31.csv" "$WORK/data/usage/"
cat "$WORK/data/usage/2026-10-31.csv" > /dev/null
FAKTURA_LOG=warn python3 benches/measure.py "$BIN" run --data "$WORK/data" --out "$WORK/out" \
  --as-of 2026-11-01 > "$WORK/night31.json"
# Month end: as of 2026-11-03 every calendar-month period of October closes.
FAKTURA_LOG=warn python3 benches/measure.py "$BIN" run --data "$WORK/data" --out "$WORK/out" \
  --as-of 2026-11-03 > "$WORK/close.json"
mkdir -p "$WORK/alone/usage"
cp "$WORK/data/"*.csv "$WORK/alone/"
cp "$WORK/data/usage/2026-10-31.csv" "$WORK/alone/usage/"
FAKTURA_LOG=warn python3 benches/measure.py "$BIN" ingest --data "$WORK/alone" --out "$WORK/alone-out" \
  --as-of 2026-11-01 > "$WORK/alone.json"

python3 - "$WORK" "$BYTES" "$((PER_DAY * DAYS))" <<'PY'
import glob, json, sys
work, size, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
f = json.load(open(f"{work}/faktura.json"))
d = json.load(open(f"{work}/duckdb.json"))
steps = json.load(open(f"{work}/duckdb-steps.json"))
summary = json.load(open(sorted(glob.glob(f"{work}/out/runs/*.json"))[0]))
dur = summary["durations"]
print(f"input: {rows:,} rows in 30 files, {size / 1e6:,.0f} MB")
print(f"faktura run: {f['seconds']:.1f} s, peak RSS {f['max_rss_mb']:.0f} MB")
for stage in ("ingest", "aggregate", "decide", "render", "send"):
    s = dur.get(stage, 0.0)
    rate = f"{rows / s:12,.0f} rows/s" if stage in ("ingest", "aggregate") and s else ""
    print(f"  {stage:10} {s:8.2f} s {rate}")
fa = dur["ingest"] + dur["aggregate"]
da = steps["ingest"] + steps["aggregate"]
print(f"duckdb: ingest {steps['ingest']:.2f} s + aggregate {steps['aggregate']:.2f} s; peak RSS {d['max_rss_mb']:.0f} MB")
print(f"ingest+aggregate: faktura {fa:.2f} s, duckdb {da:.2f} s, ratio (duckdb/faktura) {da / fa:.2f}")
close = json.load(open(f"{work}/close.json"))
closing = json.load(open(sorted(glob.glob(f"{work}/out/runs/*.json"))[-1]))
print(f"month end (as of 2026-11-03): {close['seconds']:.1f} s, peak RSS {close['max_rss_mb']:.0f} MB; "
      f"{closing['aggregate_lines']:,} lines, {len(closing['invoices_issued']):,} invoices; "
      + ", ".join(f"{k} {v:.2f} s" for k, v in closing["durations"].items()))
n31 = json.load(open(f"{work}/night31.json"))
alone = json.load(open(f"{work}/alone.json"))
print(f"night 31: whole run {n31['seconds']:.2f} s vs ingest of that day alone {alone['seconds']:.2f} s "
      f"(ratio {n31['seconds'] / alone['seconds']:.2f}); peak RSS {n31['max_rss_mb']:.0f} MB")
PY
