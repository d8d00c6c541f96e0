"""The disk's floor for the reminder night of `lifecycle.sh` (issue 30).

Writes what the night's send writes, without faktura: one `reminder-1`
folder per past-due invoice, three messages in most (two in every 20th),
each FILE_BYTES long, under a temporary name and renamed into place, by
four threads (each filling whole folders, as the file transport's
writers do); then flushes the file system once. The time is what this
disk needs for the files alone.

    python3 benches/files_floor.py DIR [INVOICES] [FILE_BYTES]

Defaults: 82,227 invoices (242,569 files) of 21,300 bytes, as the
night of 2026-12-20 at 100,000 profiles. DIR must not exist yet, on the
file system measured; remove it after.
"""
import os
import sys
import threading
import time

root = sys.argv[1]
invoices = int(sys.argv[2]) if len(sys.argv) > 2 else 82227
file_bytes = int(sys.argv[3]) if len(sys.argv) > 3 else 21300
writers = 4
body = (os.urandom(file_bytes).hex() * 2)[:file_bytes].encode()
os.makedirs(root)


def recipients(invoice):
    return 3 if invoice % 20 else 2


def write(first):
    for i in range(first, invoices, writers):
        folder = f"{root}/INV-{i:08d}/reminder-1"
        os.makedirs(folder)
        for r in range(recipients(i)):
            path = f"{folder}/person{r}@customer.example.eml"
            with open(path + ".tmp", "wb") as f:
                f.write(body)
            os.rename(path + ".tmp", path)


start = time.time()
threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
written = time.time()
os.sync()
done = time.time()
files = sum(recipients(i) for i in range(invoices))
print(f"{files} files of {file_bytes} bytes: written {written - start:.2f} s, "
      f"synced {done - written:.2f} s, {done - start:.2f} s in all")
