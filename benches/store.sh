#!/usr/bin/env bash
# Ingest of a month from a local S3 server (moto) against the same month from
# a local folder (issue 32: within 1.3x). Release binary; moto_server and
# boto3 on PATH (python3 -m venv v && v/bin/pip install 'moto[server]').
#
#   WORK=/tmp/store ROWS=40000 DAYS=30 SHAPE=azure benches/store.sh
#
# Prints, per turn, the wall time and peak RSS of `faktura ingest` from the
# folder and from s3://month/data (turns alternate; OUT is new each time).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/faktura-store-bench}
ROWS=${ROWS:-40000}
DAYS=${DAYS:-30}
SHAPE=${SHAPE:-azure}
TURNS=${TURNS:-3}
PORT=${PORT:-5391}
bin=target/release/faktura
python=$(command -v python3)
[ -n "${VENV:-}" ] && python="$VENV/bin/python" && PATH="$VENV/bin:$PATH"

mkdir -p "$WORK"
data="$WORK/data-$SHAPE-$DAYS-$ROWS"
if [ ! -d "$data" ]; then
  "$bin" gen --out "$data" --days "$DAYS" --rows-per-day "$ROWS" --profiles 5000 --seed 42 --shape "$SHAPE" >/dev/null
fi
rows=$(( DAYS * ROWS ))
bytes=$(du -sb "$data/usage" | cut -f1)

moto_server -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
moto=$!
trap 'kill $moto' EXIT
until (echo > /dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; do sleep 0.2; done
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
  AWS_ENDPOINT=http://127.0.0.1:$PORT AWS_ALLOW_HTTP=true
"$python" - "$data" "$PORT" <<'EOF'
import os, sys, boto3
root, port = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
s3.create_bucket(Bucket="month")
for dirpath, _, names in os.walk(root):
    for name in names:
        path = os.path.join(dirpath, name)
        s3.upload_file(path, "month", "data/" + os.path.relpath(path, root))
EOF

echo "shape=$SHAPE rows=$rows usage_bytes=$bytes"
measure() { # label data
  local out="$WORK/out"
  rm -rf "$out"
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$bin" -q ingest --data "$2" --out "$out" --as-of 2026-12-31 2>/dev/null
  read -r wall kb < "$WORK/time"
  echo "$1 wall=${wall}s peak=$(( kb / 1024 ))MB rows/s=$(python3 -c "print(round($rows/$wall))")"
}
for turn in $(seq "$TURNS"); do
  measure "turn $turn folder" "$data"
  measure "turn $turn s3    " "s3://month/data"
done
