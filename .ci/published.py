"""CI: what `[publish]` wrote, read back from a real S3 server by pyarrow.

Starts moto's S3 server on 127.0.0.1, runs the debug faktura on the bundled
sample with `[publish] to = "s3://lake/faktura"`, then reads every published
table from the server with pyarrow's own S3 client and parquet reader (hive
partitions) and checks it equals the same table read from OUT, and that the
bucket holds exactly OUT's published files.
"""

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import boto3
import pyarrow.dataset as ds
import pyarrow.fs

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDERS = ["usage", "lines", "decisions", "invoices", "credit_notes", "pdf", "einvoice"]
TABLES = ["usage", "lines", "decisions", "invoices", "credit_notes"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        env = dict(
            os.environ,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_REGION="us-east-1",
            AWS_ENDPOINT=endpoint,
            AWS_ALLOW_HTTP="true",
        )
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="lake")
        with tempfile.TemporaryDirectory() as work:
            work = pathlib.Path(work)
            config = work / "faktura.toml"
            config.write_text(
                (ROOT / "data/sample/faktura.toml").read_text()
                + '\n[publish]\nto = "s3://lake/faktura"\n'
            )
            out = work / "out"
            for as_of in ["2026-12-05", "2027-01-10"]:
                run = subprocess.run(
                    [str(ROOT / "target/debug/faktura"), "-q", "run", "--data",
                     str(ROOT / "data/sample"), "--out", str(out), "--as-of", as_of,
                     "--config", str(config)],
                    env=env, capture_output=True, text=True,
                )
                if run.returncode not in (0, 3) or " 0 pending" not in run.stderr:
                    sys.exit(f"faktura run failed ({run.returncode}):\n{run.stderr}")
            check(out, endpoint, s3)
    finally:
        server.terminate()
        server.wait()


def check(out, endpoint, s3):
    local_files = sorted(
        str(p.relative_to(out))
        for folder in FOLDERS
        for p in (out / folder).rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="lake", Prefix="faktura/"):
        keys += [o["Key"][len("faktura/"):] for o in page.get("Contents", [])]
    if sorted(keys) != local_files:
        sys.exit(f"the bucket holds {len(keys)} objects, OUT {len(local_files)} files")
    fs = pyarrow.fs.S3FileSystem(
        access_key="test", secret_key="test", region="us-east-1",
        endpoint_override=endpoint.removeprefix("http://"), scheme="http",
    )
    for table in TABLES:
        # The files' own columns (usage's `date` column is also its partition key).
        remote = ds.dataset(f"lake/faktura/{table}", filesystem=fs, format="parquet").to_table()
        local = ds.dataset(str(out / table), format="parquet").to_table()
        if remote.num_rows == 0 or not remote.equals(local):
            sys.exit(f"{table}: {remote.num_rows} rows in the store, {local.num_rows} in OUT")
        print(f"published {table}: {remote.num_rows} rows, equal to OUT's")
    print(f"published files: {len(keys)}, equal to OUT's")


if __name__ == "__main__":
    main()
