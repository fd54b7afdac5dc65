#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""POSIX answers on hostile paths: the same program run on a local tree and,
under the shim, on a mount of the same tree in a real s3rver must get the
same errno for every path: a component longer than NAME_MAX, a trailing
'/' or '/.' on a file, a path through a file, '..' of the mount root (and
`ls -la` of the mount root must show '..' as a directory). Ends with
"N passed, M failed"."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mount_fixture as mf  # noqa: E402

PROBE = r"""
import errno, json, os, stat, sys
root = sys.argv[1]
paths = json.loads(sys.argv[2])
out = {}
for name, rel in paths.items():
    p = root + rel
    r = {}
    for what, fn in (("stat", os.stat), ("lstat", os.lstat),
                     ("open", lambda q: os.close(os.open(q, os.O_RDONLY))),
                     ("listdir", os.listdir), ("access", lambda q: os.access(q, os.R_OK) or (_ for _ in ()).throw(OSError(errno.EACCES, "no")))):
        try:
            v = fn(p)
            r[what] = "dir" if what in ("stat", "lstat") and stat.S_ISDIR(v.st_mode) else "ok"
        except OSError as e:
            r[what] = errno.errorcode.get(e.errno, str(e.errno))
    out[name] = r
print(json.dumps(out, sort_keys=True))
"""

PATHS = {
    "long component": "/d/" + "x" * 300,
    "long file name": "/" + "y" * 256 + ".txt",
    "trailing slash on a file": "/d/file.txt/",
    "slash dot on a file": "/d/file.txt/.",
    "through a file": "/d/file.txt/x",
    "deep through a file": "/d/file.txt/x/y/z",
    "missing in a directory": "/d/nope",
    "trailing slash on a directory": "/d/",
    "dot dot of the root": "/..",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim", required=True)
    args = ap.parse_args()
    suite = mf.Suite()
    asan = mf.asan_preload(args.shim)
    tmp = tempfile.mkdtemp(prefix="objcache-posix-")
    srv = mf.S3Server(tmp)
    try:
        local = os.path.join(tmp, "local")
        os.makedirs(os.path.join(local, "d"))
        with open(os.path.join(local, "d", "file.txt"), "w") as f:
            f.write("hello\n")
        mf.upload_tree(srv.client(), local)
        # A mount whose parent does not exist on disk (as /mnt/data on a
        # machine without /mnt): its '..' must still be a directory.
        mnt = f"/objcache-posix-{os.getpid()}/mnt"
        assert not os.path.exists(os.path.dirname(mnt))
        cfg = os.path.join(tmp, "objcache.toml")
        mf.write_config(cfg, srv.endpoint, mnt, f"s3://{mf.BUCKET}/")
        shm = os.path.join(tmp, "shm")
        os.makedirs(shm)
        env = mf.shim_env(args.shim, cfg, shm, asan)
        plain = subprocess.run(["/usr/bin/python3", "-c", PROBE, local, json.dumps(PATHS)],
                               capture_output=True, text=True, timeout=120)
        shimmed = subprocess.run(["/usr/bin/python3", "-c", PROBE, mnt, json.dumps(PATHS)], env=env,
                                 capture_output=True, text=True, timeout=120)
        want = json.loads(plain.stdout) if plain.returncode == 0 else {}
        got = json.loads(shimmed.stdout) if shimmed.returncode == 0 else {}
        for name in PATHS:
            suite.check(f"same answers as local disk: {name}", want.get(name) == got.get(name) and name in want,
                        f"local {want.get(name)}\nmount {got.get(name)}\n{plain.stderr}{shimmed.stderr}")
        # ls -la of the mount root: '..' is a directory, not 'd?????????'.
        ls = shutil.which("ls") or "/bin/ls"
        r = subprocess.run([ls, "-la", mnt], env=env, capture_output=True, text=True, timeout=60)
        dotdot = [line for line in r.stdout.splitlines() if line.endswith(" ..")]
        suite.check("ls -la of the mount root shows '..' as a directory",
                    r.returncode == 0 and len(dotdot) == 1 and dotdot[0].startswith("d") and "?" not in dotdot[0],
                    r.stdout + r.stderr)
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{suite.passed} passed, {suite.failed} failed")
    return 0 if suite.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
