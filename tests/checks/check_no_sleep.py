#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Tests wait for events (pipes, latches, counters), never for time. This
check greps every test source under tests/ for a sleep (C/C++ sleep_for,
usleep, nanosleep, sleep(); Python time.sleep and asyncio.sleep; shell
sleep) and fails on any that is not named in a comment, on its line or the
line above, as one of:
  pace:  it paces a load generator or plays a slow peer (a server that takes
         D ms to answer); it orders nothing in the test;
  poll:  a bounded wait for a condition the loop tests, where no event can be
         blocked on (a port opening, a counter in another process).
Ends with "N passed, M failed" (one case per file that has a sleep)."""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.normpath(os.path.join(HERE, ".."))
SLEEP = re.compile(r"sleep_for\s*\(|sleep_until\s*\(|\busleep\s*\(|\bnanosleep\s*\(|(?<![\w.])sleep\s*\(|"
                   r"time\.sleep\s*\(|asyncio\.sleep\s*\(|^\s*sleep\s+[0-9]")
MARK = re.compile(r"(//|#)\s*(pace|poll):")
EXTS = (".c", ".cc", ".cpp", ".h", ".hpp", ".py", ".sh", ".js")


def main():
    checked = failed = 0
    for dirpath, dirs, names in os.walk(TESTS):
        dirs[:] = [d for d in dirs if d not in ("node_modules", "__pycache__")]
        for n in sorted(names):
            if not n.endswith(EXTS):
                continue
            path = os.path.join(dirpath, n)
            if os.path.abspath(path) == os.path.abspath(__file__):
                continue
            with open(path, errors="replace") as f:
                lines = f.read().split("\n")
            hits = [i for i, line in enumerate(lines) if SLEEP.search(line.split("//")[0] if n.endswith(EXTS[:5]) else line.split("#")[0])]
            if not hits:
                continue
            checked += 1
            bad = [i for i in hits if not MARK.search(lines[i]) and not (i > 0 and MARK.search(lines[i - 1]))]
            if bad:
                failed += 1
                for i in bad:
                    print(f"SLEEP: {os.path.relpath(path, TESTS)}:{i + 1}: {lines[i].strip()}  "
                          "(wait for an event, or name it 'pace:' / 'poll:' in a comment)")
    print(f"{checked - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
