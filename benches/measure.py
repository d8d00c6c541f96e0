#!/usr/bin/env python3
"""Runs a command and prints its wall time and peak RSS as JSON:
`measure.py CMD ARGS...` -> {"seconds": 12.3, "max_rss_mb": 456.7, "exit": 0}.
Peak RSS is the largest resident set of the command or any child it waited for."""
import json
import resource
import subprocess
import sys
import time

start = time.monotonic()
exit_code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
seconds = time.monotonic() - start
rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": round(seconds, 3), "max_rss_mb": round(rss_kb / 1024, 1), "exit": exit_code}))
