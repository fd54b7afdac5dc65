#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The dependency rule as a test: reads every #include "..." of libcache/,
preload/ and tools/ and fails on one that runs up the layer order written
in layers.txt (beside this file), names an internal libcache header from above the library, or names a folder or
public header that layers.txt does not know. Prints one line per broken
include and ends with "N passed, M failed" (one case per source file)."""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def read_layers(path):
    """Returns ({folder: rank}, {public header: folder}, set of folders above the library)."""
    rank, owner, above = {}, {}, set()
    level = 0
    in_above = False
    with open(path) as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("--"):
                in_above = True
                level += 1
                continue
            words = line.split()
            folder = words[0]
            level += 1
            rank[folder] = level
            if in_above:
                above.add(folder)
            for h in words[1:]:
                owner[h] = folder
    return rank, owner, above


def folder_of_file(rel):
    """The layer folder of a source file (relative to the top), or None."""
    parts = rel.split("/")
    if parts[0] == "libcache":
        if parts[1] == "include":
            return ("public", parts[-1])
        return ("folder", parts[1])
    if parts[0] in ("preload", "tools"):
        return ("folder", parts[0])
    return None


def main():
    rank, owner, above = read_layers(os.path.join(HERE, "layers.txt"))
    failures = []
    files = 0
    for root in ("libcache", "preload", "tools"):
        for dirpath, _, names in os.walk(os.path.join(TOP, root)):
            for n in sorted(names):
                if not n.endswith((".h", ".hpp", ".cpp", ".cc", ".c")):
                    continue
                path = os.path.join(dirpath, n)
                rel = os.path.relpath(path, TOP)
                kind, name = folder_of_file(rel)
                me = owner.get(name) if kind == "public" else name
                files += 1
                bad = []
                if me is None or me not in rank:
                    bad.append(f"{rel}: its folder or header is not in layers.txt")
                else:
                    with open(path, errors="replace") as f:
                        text = f.read()
                    for m in INCLUDE.finditer(text):
                        inc = m.group(1)
                        line = text.count("\n", 0, m.start()) + 1
                        target = None
                        if inc.startswith("objcache/"):
                            target = owner.get(inc.split("/", 1)[1])
                            if target is None:
                                bad.append(f"{rel}:{line}: includes {inc}, a public header layers.txt does not list")
                                continue
                        else:
                            first = inc.split("/", 1)[0]
                            if "/" not in inc:
                                continue  # a file of its own folder
                            if me in above:
                                bad.append(f"{rel}:{line}: includes {inc}: above the library only public headers (objcache/...) may be included")
                                continue
                            target = first
                            if target not in rank:
                                bad.append(f"{rel}:{line}: includes {inc}, in a folder layers.txt does not list")
                                continue
                        if target == me:
                            continue
                        if rank[target] >= rank[me] and not (target in above) :
                            bad.append(f"{rel}:{line}: includes {inc} ({target}) from {me}: "
                                       f"a higher layer "
                                       f"(layers.txt puts {target} at or above {me})")
                        elif target in above:
                            bad.append(f"{rel}:{line}: includes {inc} from {me}: the library never includes preload/ or tools/")
                if bad:
                    failures.append(rel)
                    for b in bad:
                        print("LAYERING: " + b)
    print(f"{files - len(failures)} passed, {len(failures)} failed")
    return 1 if failures or files == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
