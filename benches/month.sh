#!/usr/bin/env bash
# A month of usage shaped like a large Azure tenant, stage by stage, side by
# side with DuckDB doing the same ingest and aggregation; the month-end run;
# then night 31 against ingesting that day alone.
#   benches/month.sh [ROWS]   default 10,230,000 rows over 31 days
# Environment: PROFILES (5000), SHAPE (azure), MPS (meters per subscription,
# e.g. 20-80; default the shape's 5-40), WORK (a scratch dir; default mktemp).
# Needs PyPI for duckdb (a throwaway venv under $WORK).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10230000}
DAYS=31
PROFILES=${PROFILES:-5000}
SHAPE=${SHAPE:-azure}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
echo "work dir: $WORK (run output in $WORK/runs.log)"
cargo build --release --quiet
cargo build --release --quiet --example floor
# A copy: a rebuild while this runs must not change the binary measured.
cp target/release/faktura "$WORK/faktura"
BIN=$WORK/faktura
PER_DAY=$((ROWS / DAYS))
MEASURE="python3 benches/measure.py"
export FAKTURA_LOG=warn

rm -rf "$WORK/data" "$WORK/out" "$WORK/duck" "$WORK/night" "$WORK/night-out" "$WORK/alone" \
  "$WORK/alone-out" "$WORK/runs.log"
# Each run's own summary goes to a log, not between the figures.
exec 2>>"$WORK/runs.log"
GEN_SHAPE=(--shape "$SHAPE")
[ -n "${MPS:-}" ] && GEN_SHAPE+=(--meters-per-subscription "$MPS")
$MEASURE "$BIN" gen --out "$WORK/data" --days $DAYS --rows-per-day "$PER_DAY" \
  --profiles "$PROFILES" --seed 42 "${GEN_SHAPE[@]}" > "$WORK/gen.json"
echo "gen (31 days, ${GEN_SHAPE[*]}): $(cat "$WORK/gen.json")"
BYTES=$(du -sb "$WORK/data/usage" | cut -f1)

if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install --quiet duckdb
fi

# The month as one batch, each stage on its own: ingest, then the month-end
# aggregate (as of 2026-11-05 every October period has closed), then the
# month-end run (aggregate, decide, render, send to the file transport).
cat "$WORK"/data/usage/*.csv > /dev/null
$MEASURE "$BIN" ingest --data "$WORK/data" --out "$WORK/out" --as-of 2026-11-05 > "$WORK/ingest.json"
# The machine's floor in the same sitting: reading the files, and reading
# and splitting them with the csv crate (examples/floor.rs).
target/release/examples/floor "$WORK/data/usage" > "$WORK/floor.json"
$MEASURE "$BIN" aggregate --data "$WORK/data" --out "$WORK/out" --as-of 2026-11-05 > "$WORK/aggregate.json"
$MEASURE "$BIN" run --data "$WORK/data" --out "$WORK/out" --as-of 2026-11-05 > "$WORK/close.json"

cat "$WORK"/data/usage/*.csv > /dev/null
mkdir -p "$WORK/duck"
$MEASURE "$WORK/venv/bin/python" benches/duckdb_month.py "$WORK/data/usage" "$WORK/duck" \
  > "$WORK/duckdb.json" 2>/dev/null
rm -rf "$WORK/duck" && mkdir -p "$WORK/duck"
"$WORK/venv/bin/python" benches/duckdb_month.py "$WORK/data/usage" "$WORK/duck" > "$WORK/duckdb-steps.json"

# Night 31: 30 days ingested, then the new day arrives (read from the page
# cache, as a file that just arrived is); and that day ingested alone.
mkdir -p "$WORK/night/usage"
cp "$WORK/data/"*.csv "$WORK/night/"
for f in "$WORK"/data/usage/*.csv; do
  case "$f" in *2026-10-31.csv) ;; *) ln -s "$f" "$WORK/night/usage/" ;; esac
done
$BIN run --data "$WORK/night" --out "$WORK/night-out" --as-of 2026-10-31 > /dev/null || true
ln -s "$WORK/data/usage/2026-10-31.csv" "$WORK/night/usage/"
cat "$WORK/data/usage/2026-10-31.csv" > /dev/null
$MEASURE "$BIN" run --data "$WORK/night" --out "$WORK/night-out" --as-of 2026-11-01 > "$WORK/night31.json"
mkdir -p "$WORK/alone/usage"
cp "$WORK/data/"*.csv "$WORK/alone/"
ln -s "$WORK/data/usage/2026-10-31.csv" "$WORK/alone/usage/"
$MEASURE "$BIN" ingest --data "$WORK/alone" --out "$WORK/alone-out" --as-of 2026-11-01 > "$WORK/alone.json"

python3 - "$WORK" "$BYTES" "$((PER_DAY * DAYS))" <<'PY'
import glob, json, sys
work, size, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
load = lambda name: json.load(open(f"{work}/{name}.json"))
runs = [json.load(open(p)) for p in sorted(glob.glob(f"{work}/out/runs/*.json"))]
ingest_run, aggregate_run, close_run = runs[-3], runs[-2], runs[-1]
ingest, aggregate, close = load("ingest"), load("aggregate"), load("close")
duck, steps = load("duckdb"), load("duckdb-steps")
print(f"input: {rows:,} rows in 31 files, {size / 1e6:,.0f} MB ({size / rows:.0f} bytes a row); "
      f"{steps['lines']:,} distinct lines (DuckDB), {aggregate_run['aggregate_lines']:,} (faktura, "
      f"with kind and trial coverage)")
def stage(name, measured, run):
    secs = run["durations"].get(name, 0.0)
    peak = run.get("peak_rss_mb", {}).get(name, measured["max_rss_mb"])
    print(f"  {name:10} {secs:7.2f} s  {rows / secs if secs else 0:12,.0f} rows/s  peak RSS {peak:6.0f} MB")
    return secs
print("faktura, stage by stage:")
fi = stage("ingest", ingest, ingest_run)
floor = load("floor")
print(f"  floor: reading the files {floor['read_seconds']:.2f} s, reading and splitting them with csv "
      f"{floor['read_and_split_seconds']:.2f} s (both cores): ingest is "
      f"{fi / floor['read_and_split_seconds']:.1f}x the split floor")
fa = stage("aggregate", aggregate, aggregate_run)
print(f"duckdb (threads=2, preserve_insertion_order=false, explicit types): ingest {steps['ingest']:.2f} s "
      f"+ aggregate {steps['aggregate']:.2f} s; peak RSS {duck['max_rss_mb']:.0f} MB")
da = steps["ingest"] + steps["aggregate"]
print(f"ingest+aggregate: faktura {fi + fa:.2f} s, duckdb {da:.2f} s, "
      f"ratio (duckdb/faktura) {da / (fi + fa):.2f} (target >= 1.5)")
print(f"month-end run (as of 2026-11-05): {close['seconds']:.1f} s, peak RSS {close['max_rss_mb']:.0f} MB "
      f"(targets 30 s, 1000 MB); {close_run['aggregate_lines']:,} lines, "
      f"{len(close_run['invoices_issued']):,} invoices")
for name in ("ingest", "aggregate", "decide", "render", "send"):
    if name in close_run["durations"]:
        print(f"  {name:10} {close_run['durations'][name]:7.2f} s  peak RSS "
              f"{close_run.get('peak_rss_mb', {}).get(name, 0):6.0f} MB")
n31, alone = load("night31"), load("alone")
print(f"night 31: whole run {n31['seconds']:.2f} s vs ingest of that day alone {alone['seconds']:.2f} s "
      f"(ratio {n31['seconds'] / alone['seconds']:.2f}, target <= 1.2); peak RSS {n31['max_rss_mb']:.0f} MB")
PY
