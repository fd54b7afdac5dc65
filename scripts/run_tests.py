#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs every meson test of a build dir and ends with one line
"N passed, M failed" that counts test cases (doctest's), not executables.
A test executable that crashed or timed out before doctest could summarize
counts as one failed case, so nothing is lost in the count."""
import json
import os
import re
import subprocess
import sys

build = sys.argv[1] if len(sys.argv) > 1 else "build"
extra = sys.argv[2:]
log = os.path.join(build, "meson-logs", "testlog.json")
if os.path.exists(log):
    os.remove(log)

cmd = ["meson", "test", "-C", build, "--print-errorlogs", "--num-processes", "2"] + extra
rc = subprocess.call(cmd)

summary = re.compile(r"\[doctest\] test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed"
                     r"|^()(\d+) passed, (\d+) failed$", re.M)  # doctest's, or a script's own
passed = failed = 0
try:
    with open(log) as f:
        records = [json.loads(line) for line in f if line.strip()]
except FileNotFoundError:
    records = []
for rec in records:
    m = None
    for m in summary.finditer(rec.get("stdout") or ""):
        pass
    ok = rec.get("result") in ("OK", "EXPECTEDFAIL")
    skipped = rec.get("result") == "SKIP"
    if m:
        p, f = (m.group(2), m.group(3)) if m.group(2) is not None else (m.group(5), m.group(6))
        passed += int(p)
        failed += int(f)
        if not ok and not skipped and int(f) == 0:
            failed += 1  # it crashed or timed out after its summary
    elif skipped:
        continue
    elif ok:
        passed += 1
    else:
        failed += 1
        print(f"{rec.get('name')}: {rec.get('result')} before any summary", file=sys.stderr)

print(f"{passed} passed, {failed} failed")
sys.exit(0 if rc == 0 and failed == 0 and passed > 0 else 1)
