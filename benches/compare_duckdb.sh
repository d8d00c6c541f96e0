#!/usr/bin/env bash
# Ingest side by side: faktura and DuckDB on the same generated month.
#   benches/compare_duckdb.sh [ROWS]        default 10,000,000 rows over 30 days (~3 GB)
# Needs a network to PyPI for duckdb (installed in a throwaway venv under
# $WORK). Prints wall time, MB/s, rows/s and peak RSS of both, and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
DAYS=${DAYS:-30}
PROFILES=${PROFILES:-5000}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
echo "work dir: $WORK"

cargo build --release --quiet
BIN=target/release/faktura
if [ ! -d "$WORK/data/usage" ]; then
  python3 benches/measure.py "$BIN" gen --out "$WORK/data" --days "$DAYS" \
    --rows-per-day $((ROWS / DAYS)) --profiles "$PROFILES" --seed 42 > "$WORK/gen.json"
  echo "gen: $(cat "$WORK/gen.json")"
fi
BYTES=$(du -sb "$WORK/data/usage" | cut -f1)
ROWS=$(( (ROWS / DAYS) * DAYS ))

if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install --quiet duckdb
fi

rm -rf "$WORK/out-faktura" "$WORK/out-duckdb"
python3 benches/measure.py "$BIN" ingest --data "$WORK/data" --out "$WORK/out-faktura" \
  --as-of 2026-11-03 > "$WORK/faktura.json"
python3 benches/measure.py "$WORK/venv/bin/python" benches/duckdb_ingest.py \
  "$WORK/data/usage" "$WORK/out-duckdb" > "$WORK/duckdb.json"

python3 - "$WORK" "$BYTES" "$ROWS" <<'PY'
import json, sys
work, size, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
f = json.load(open(f"{work}/faktura.json"))
d = json.load(open(f"{work}/duckdb.json"))
print(f"input: {rows:,} rows, {size / 1e6:,.0f} MB")
print(f"{'':8} {'seconds':>8} {'MB/s':>8} {'rows/s':>12} {'peak RSS MB':>12}")
for name, m in (("faktura", f), ("duckdb", d)):
    s = m["seconds"]
    print(f"{name:8} {s:8.1f} {size / 1e6 / s:8.1f} {rows / s:12,.0f} {m['max_rss_mb']:12.0f}")
print(f"ratio (duckdb time / faktura time): {d['seconds'] / f['seconds']:.2f}")
PY
