#!/usr/bin/env bash
# After issue: the two figures of issue 30, on generated data.
#   1. `faktura preview` of one profile in a 10-million-row month (azure
#      shape, 5,000 profiles), October open on 2026-10-31, every day ingested.
#   2. Reminders over many past-due invoices: a month of PROFILES (default
#      100,000) profiles issued on 2026-11-05; then the night of 2026-12-20
#      (reminder 1 of every unpaid invoice, due 2026-12-05 + 14 days) with
#      `[reminders] days = [14]` against the same night without reminders,
#      each on a fresh copy of OUT: the difference is what reminders add.
#   benches/lifecycle.sh [preview|reminders|all]   WORK (scratch dir)
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
echo "work dir: $WORK"
cargo build --release --quiet
cp target/release/faktura "$WORK/faktura"
BIN=$WORK/faktura
MEASURE="python3 benches/measure.py"
export FAKTURA_LOG=warn

if [ "$WHAT" = preview ] || [ "$WHAT" = all ]; then
  rm -rf "$WORK/p-data" "$WORK/p-out"
  "$BIN" gen --out "$WORK/p-data" --days 31 --rows-per-day 330000 --profiles 5000 \
    --seed 42 --shape azure > /dev/null
  $MEASURE "$BIN" ingest --data "$WORK/p-data" --out "$WORK/p-out" --as-of 2026-10-31 \
    > "$WORK/p-ingest.json"
  echo "ingest of the month (10.2 M rows): $(cat "$WORK/p-ingest.json")"
  PROFILE=$(sed -n 2p "$WORK/p-data/profiles.csv" | cut -d, -f1)
  for i in 1 2 3; do
    $MEASURE "$BIN" preview --data "$WORK/p-data" --out "$WORK/p-out" --profile "$PROFILE" \
      --as-of 2026-10-31 --format json > "$WORK/p-preview.json"
    echo "preview of $PROFILE, October open (try $i): $(cat "$WORK/p-preview.json")"
  done
  "$BIN" preview --data "$WORK/p-data" --out "$WORK/p-out" --profile "$PROFILE" \
    --as-of 2026-10-31 --format json | python3 -c \
    'import json,sys; p=json.load(sys.stdin); print("  periods:", len(p), "lines:", sum(len(x["lines"]) for x in p))'
fi

if [ "$WHAT" = reminders ] || [ "$WHAT" = all ]; then
  PROFILES=${PROFILES:-100000}
  rm -rf "$WORK/r-data" "$WORK/r-out"
  "$BIN" gen --out "$WORK/r-data" --days 31 --rows-per-day $((PROFILES * 2)) \
    --profiles "$PROFILES" --seed 7 > /dev/null
  printf '[issuer]\nvat_id = "NO 123 456 785 MVA"\ncountry = "NO"\n' > "$WORK/r-data/faktura.toml"
  $MEASURE "$BIN" run --data "$WORK/r-data" --out "$WORK/r-out" --as-of 2026-11-05 \
    > "$WORK/r-issue.json"
  echo "month end, $PROFILES profiles: $(cat "$WORK/r-issue.json")"
  python3 - "$WORK/r-out" <<'PY'
import glob, json, sys
runs = sorted(glob.glob(sys.argv[1] + "/runs/*.json"))
s = json.load(open(runs[-1]))
print("  invoices issued:", len(s["invoices_issued"]), "e-mails:", s["delivery"]["sent"])
PY
  for mode in without with; do
    rm -rf "$WORK/r-night"
    cp -a "$WORK/r-out" "$WORK/r-night"
    # The copy's gigabytes on disk before the night starts, as last
    # night's files are: else the first flush of the night's own messages
    # (the file transport syncs before recording them sent) writes the
    # copy too, and the night without messages never waits for it.
    sync
    cp "$WORK/r-data/faktura.toml" "$WORK/r-$mode.toml"
    [ "$mode" = with ] && printf '[reminders]\ndays = [14]\n' >> "$WORK/r-$mode.toml"
    $MEASURE "$BIN" run --data "$WORK/r-data" --out "$WORK/r-night" --as-of 2026-12-20 \
      --config "$WORK/r-$mode.toml" > "$WORK/r-$mode.json"
    echo "night of 2026-12-20 $mode reminders: $(cat "$WORK/r-$mode.json")"
  done
  python3 - "$WORK/r-night" <<'PY'
import glob, json, sys
runs = sorted(glob.glob(sys.argv[1] + "/runs/*.json"))
s = json.load(open(runs[-1]))
print("  reminders issued:", len(s["reminders_issued"]), "messages:", s["delivery"]["reminders_sent"],
      "stages:", {k: round(v, 2) for k, v in s["durations"].items()})
PY
fi
