# SPDX-License-Identifier: Apache-2.0
"""A mount with a manifest (issue 15): `cachectl manifest` writes one for a
mounted prefix of a real s3rver; a second cache whose mount names it walks,
stats and reads the tree under the shim byte-exact with the same tree on
local disk, making no LIST and no HEAD (cachectl stats); wrong rows surface
as the errno a read would give (a file the manifest leaves out is ENOENT, a
row whose object is gone is ENOENT, a row with a stale ETag is ESTALE and
never other bytes); a bad manifest names its file and line; a writable
mount with a manifest is a configuration error.

  /usr/bin/python3 tests/preload/run_manifest.py --shim SO --cachectl EXE
"""
import argparse
import errno
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mount_fixture as mf  # noqa: E402

MOUNT = "/mnt/objcache-manifest-test"

# Walks root under the shim: every file's relative path, size and sha256,
# then the errno (or bytes digest) of each extra path named on argv.
WALK = r"""
import errno, hashlib, json, os, sys
root = sys.argv[1]
skip = set(json.loads(sys.argv[2]))
files = {}
for d, dirs, names in os.walk(root):
    dirs.sort()
    for n in sorted(names):
        if n in skip:
            continue
        p = os.path.join(d, n)
        with open(p, "rb") as f:
            data = f.read()
        files[os.path.relpath(p, root)] = [os.stat(p).st_size, hashlib.sha256(data).hexdigest()]
probes = {}
for p in sys.argv[3:]:
    try:
        with open(os.path.join(root, p), "rb") as f:
            probes[p] = "bytes " + hashlib.sha256(f.read()).hexdigest()
    except OSError as e:
        probes[p] = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps({"files": files, "probes": probes}))
"""


def local_tree(root):
    import hashlib
    out = {}
    for d, dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = [os.path.getsize(p), hashlib.sha256(f.read()).hexdigest()]
    return out


def run(cmd, env, timeout=120):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def stats(cachectl, env):
    r = run([cachectl, "stats", "--json"], env)
    if r.returncode != 0:
        raise RuntimeError(f"cachectl stats: {r.stderr}")
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim", required=True)
    ap.add_argument("--cachectl", required=True)
    args = ap.parse_args()
    suite = mf.Suite()
    asan = mf.asan_preload(args.shim)
    with tempfile.TemporaryDirectory(prefix="objcache-manifest-") as work:
        server = mf.S3Server(work)
        try:
            local = os.path.join(work, "local")
            mf.make_dataset(local, jpegs_per_class=4, classes=3)
            client = server.client()
            mf.upload_tree(client, local, prefix="m/")
            client.put_object(Bucket=mf.BUCKET, Key="m/unlisted.txt", Body=b"in the bucket, not in the manifest\n")
            shm = os.path.join(work, "shm")
            os.makedirs(shm)
            manifest = os.path.join(work, "manifest.jsonl")

            # 1. cachectl manifest through a cache that lists the bucket.
            cfg_list = os.path.join(work, "list.toml")
            mf.write_config(cfg_list, server.endpoint, MOUNT, f"s3://{mf.BUCKET}/m/", name=f"mlist{os.getpid()}")
            env = mf.shim_env(args.shim, cfg_list, shm, asan)
            tool_env = dict(env)
            tool_env.pop("LD_PRELOAD")
            r = run([args.cachectl, "manifest", MOUNT, "--out", manifest], tool_env)
            want = local_tree(local)
            rows = []
            if r.returncode == 0:
                with open(manifest) as f:
                    rows = [json.loads(line) for line in f]
            keys = sorted(row["key"] for row in rows)
            expect_keys = sorted(["m/" + k for k in want] + ["m/unlisted.txt"])
            suite.check("cachectl manifest writes one JSON line (key, size, etag, mtime) per object under the mount",
                        r.returncode == 0 and keys == expect_keys and all(
                            set(row) == {"key", "size", "etag", "mtime"} and row["etag"] for row in rows),
                        f"exit {r.returncode}\n{r.stderr}\n{keys[:5]}")

            # 2. A mount naming the manifest, minus one row: no LIST, no HEAD.
            kept = [row for row in rows if row["key"] != "m/unlisted.txt"]
            ghost = {"key": "m/imgs/class0/ghost.jpg", "size": 10, "etag": "0123456789abcdef0123456789abcdef"}
            stale = None
            for row in kept:
                if row["key"] == "m/text/hello.txt":
                    stale = dict(row, etag="ffffffffffffffffffffffffffffffff")
            fixed = os.path.join(work, "fixed.jsonl")
            with open(fixed, "w") as f:
                for row in kept:
                    f.write(json.dumps(stale if row["key"] == "m/text/hello.txt" else row) + "\n")
                f.write(json.dumps(ghost) + "\n")
            cfg_fixed = os.path.join(work, "fixed.toml")
            mf.write_config(cfg_fixed, server.endpoint, MOUNT, f"s3://{mf.BUCKET}/m/", name=f"mfix{os.getpid()}",
                            extra_mount=f'manifest = "{fixed}"\nprefetch = "none"')
            env = mf.shim_env(args.shim, cfg_fixed, shm, asan)
            tool_env = dict(env)
            tool_env.pop("LD_PRELOAD")
            probes = ["unlisted.txt", "imgs/class0/ghost.jpg", "text/hello.txt", "imgs/nosuchdir/x.jpg"]
            r = run(["/usr/bin/python3", "-c", WALK, MOUNT, json.dumps(["ghost.jpg", "hello.txt"])] + probes, env)
            got = json.loads(r.stdout) if r.returncode == 0 else {"files": {}, "probes": {}}
            want_walk = {k: v for k, v in want.items() if k != "text/hello.txt"}
            suite.check("a manifest mount walks, stats and reads byte-exact with the tree on local disk",
                        r.returncode == 0 and got["files"] == want_walk,
                        f"exit {r.returncode}\n{r.stderr[-3000:]}\n"
                        f"missing {sorted(set(want_walk) - set(got['files']))[:5]} "
                        f"extra {sorted(set(got['files']) - set(want_walk))[:5]}")
            s = stats(args.cachectl, tool_env)
            suite.check("with a manifest, no LIST and no HEAD was made (cachectl stats)",
                        s.get("list_requests") == 0 and s.get("head_requests") == 0 and s.get("misses", 0) > 0,
                        json.dumps({k: s.get(k) for k in ("list_requests", "head_requests", "remote_requests",
                                                          "misses")}))
            p = got["probes"]
            suite.check("a file the manifest leaves out is ENOENT, though it is in the bucket",
                        p.get("unlisted.txt") == "ENOENT", p)
            suite.check("a row whose object is gone reads ENOENT", p.get("imgs/class0/ghost.jpg") == "ENOENT", p)
            suite.check("a row with a stale ETag reads ESTALE, never the other bytes",
                        p.get("text/hello.txt") == "ESTALE", p)
            suite.check("a directory the manifest does not name is ENOENT", p.get("imgs/nosuchdir/x.jpg") == "ENOENT", p)

            # 3. A bad manifest: an error naming the file and line, no crash.
            bad = os.path.join(work, "bad.jsonl")
            with open(bad, "w") as f:
                f.write(json.dumps(kept[0]) + "\n")
                f.write("m/a.jpg,12\n")
            cfg_bad = os.path.join(work, "bad.toml")
            mf.write_config(cfg_bad, server.endpoint, MOUNT, f"s3://{mf.BUCKET}/m/", name=f"mbad{os.getpid()}",
                            extra_mount=f'manifest = "{bad}"')
            env = mf.shim_env(args.shim, cfg_bad, shm, asan)
            r = run(["/usr/bin/python3", "-c",
                     "import os, sys\ntry:\n    os.listdir(sys.argv[1])\nexcept OSError as e:\n"
                     "    print(e.errno)\n", MOUNT], env)
            suite.check("a bad manifest row: listing fails with EINVAL and the log names the file and line",
                        r.returncode == 0 and r.stdout.strip() == str(errno.EINVAL) and f"{bad}:2:" in r.stderr,
                        f"exit {r.returncode}\nstdout {r.stdout}\nstderr {r.stderr[-2000:]}")

            # 4. A writable mount with a manifest is refused where it is written.
            cfg_w = os.path.join(work, "w.toml")
            mf.write_config(cfg_w, server.endpoint, MOUNT, f"s3://{mf.BUCKET}/m/", name=f"mw{os.getpid()}",
                            extra_mount=f'writable = true\nmanifest = "{fixed}"')
            r = run([args.cachectl, "--config", cfg_w, "check"], tool_env)
            suite.check("a writable mount with a manifest is a configuration error naming the key",
                        r.returncode == 2 and "mount[1].manifest" in r.stderr and "read-only" in r.stderr,
                        f"exit {r.returncode}\n{r.stderr}")
        finally:
            server.stop()
    print(f"{suite.passed} passed, {suite.failed} failed")
    return 0 if suite.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
