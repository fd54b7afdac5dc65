#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The public API boundary as a test: libobjcache.so (built with hidden
visibility) exports only what carries OBJCACHE_API, i.e. names in the
namespace objcache itself, never an internal one (objcache::store::,
objcache::fetch::, ...) nor a dependency's (curl, OpenSSL, toml11,
pugixml). With --only NAME[,NAME...], the library must export exactly those
names (the shim's engine: its init function alone). Usage: check_exports.py
[--only NAMES] LIBRARY. Ends with "N passed, M failed"."""
import re
import subprocess
import sys

INTERNAL = re.compile(r"objcache::(util|config|store|shm|mounts|stats|index|fill|ram|spill|cache|fetch|meta|prefetch|upload|vfs|api|log|proc)::")


def only(names, lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True, check=True).stdout
    got = sorted(line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip())
    got = [g for g in got if not g.startswith(("_init", "_fini")) and g not in ("_edata", "_end", "__bss_start")]
    want = sorted(names)
    for b in sorted(set(got) - set(want)):
        print("EXPORT: " + b)
    for m in sorted(set(want) - set(got)):
        print("MISSING: " + m)
    ok = got == want
    print(f"{1 if ok else 0} passed, {0 if ok else 1} failed  ({len(got)} exported, {len(want)} expected)")
    return 0 if ok else 1


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--only":
        return only(sys.argv[2].split(","), sys.argv[3])
    lib = sys.argv[1]
    out = subprocess.run(["nm", "-D", "--defined-only", "-C", lib], capture_output=True, text=True, check=True).stdout
    bad, ours = [], 0
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 3 or parts[1] not in ("T", "D", "B", "R"):
            continue  # weak (templates, inline) and undefined symbols are not the API's choice
        name = parts[2]
        if name.startswith(("_init", "_fini")) or name in ("_edata", "_end", "__bss_start"):
            continue
        if INTERNAL.search(name) or not (name.startswith("objcache::") or name.startswith("objcache_")):
            bad.append(name)
        else:
            ours += 1
    for b in bad:
        print("EXPORT: " + b)
    ok = ours > 0 and not bad
    print(f"{1 if ok else 0} passed, {0 if ok else 1} failed  ({ours} public symbols, {len(bad)} that should be hidden)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
