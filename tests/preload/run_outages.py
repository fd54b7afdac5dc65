#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What a program under the shim sees when the store is away, and how long
metadata lives. Real s3rver, real programs under LD_PRELOAD:

- the store stopped (SIGSTOP): a read of an uncached file fails with EIO
  within retry_deadline (plus a margin), not after stall_timeout; the next
  reads fail at once (the circuit breaker) instead of each waiting again;
  the errors are counted in `errors`; once the store runs again a new
  process reads everything byte-exact;
- metadata_ttl is a lifetime: under libfaketime, a listing made at
  21:08:55 with a 10 m TTL is still used at 21:10:00 (no request) and is
  made again at 21:19:00 (one LIST);
- a fully cached file whose metadata expired while the store is down is
  served from the cache (with a log line), not refused.

Bounds on time here are generous correctness bounds (a deadline is a
promise), never speed measurements. Ends with "N passed, M failed"."""
import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mount_fixture as mf  # noqa: E402

READER = r"""
import errno, hashlib, json, sys, time
out = []
for path in sys.argv[1:]:
    t = time.monotonic()
    try:
        with open(path, "rb") as f:
            out.append(["ok", hashlib.sha256(f.read()).hexdigest(), time.monotonic() - t])
    except OSError as e:
        out.append([errno.errorcode.get(e.errno, str(e.errno)), "", time.monotonic() - t])
print(json.dumps(out))
"""

LISTER = r"""
import json, os, sys
print(json.dumps(sorted(os.listdir(sys.argv[1]))))
"""


def write_config(path, endpoint, mount, name, ttl, retry_deadline="2s", stall_timeout="10s"):
    with open(path, "w") as f:
        f.write(f"""[cache]
name = "{name}"
memory = "64MiB"
spill_dir = ""

[store]
endpoint = "{endpoint}"
region = "us-east-1"
credentials = "env"
retry_deadline = "{retry_deadline}"
stall_timeout = "{stall_timeout}"

[[mount]]
path = "{mount}"
source = "s3://{mf.BUCKET}/"
metadata_ttl = "{ttl}"
prefetch = "none"
""")


def stats(cachectl, env):
    r = subprocess.run([cachectl, "stats", "--json"], env=env, capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout) if r.returncode == 0 else {}


def run_py(env, script, *args, timeout=120):
    return subprocess.run(["/usr/bin/python3", "-c", script, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim", required=True)
    ap.add_argument("--cachectl", required=True)
    args = ap.parse_args()
    suite = mf.Suite()
    asan = mf.asan_preload(args.shim)
    tmp = tempfile.mkdtemp(prefix="objcache-outages-")
    srv = mf.S3Server(tmp)
    try:
        client = srv.client()
        local = os.path.join(tmp, "local")
        os.makedirs(os.path.join(local, "d"))
        digests = {}
        for i in range(3):
            body = os.urandom(200 * 1024 + i)
            name = f"d/f{i}.bin"
            with open(os.path.join(local, name), "wb") as f:
                f.write(body)
            client.put_object(Bucket=mf.BUCKET, Key=name, Body=body)
            digests[name] = hashlib.sha256(body).hexdigest()
        mnt = "/mnt/objcache-outages"
        shm = os.path.join(tmp, "shm")
        os.makedirs(shm)

        # ---- the store stopped: EIO within the deadline, then fail fast ----------
        cfg = os.path.join(tmp, "stall.toml")
        write_config(cfg, srv.endpoint, mnt, f"stall{os.getpid()}", "5m", stall_timeout="30s")
        env = mf.shim_env(args.shim, cfg, shm, asan)
        paths = [f"{mnt}/{n}" for n in sorted(digests)]
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            r = run_py(env, READER, *paths)
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        try:
            res = json.loads(r.stdout)
        except ValueError:
            res = []
        detail = f"{res}\n{r.stderr}"
        suite.check("stalled store: every read fails with EIO",
                    len(res) == 3 and all(x[0] == "EIO" for x in res), detail)
        # stall_timeout is 30 s: the first error must come from the 2 s deadline.
        suite.check("stalled store: the first EIO comes within retry_deadline, not stall_timeout",
                    len(res) == 3 and res[0][2] < 15, detail)
        suite.check("stalled store: later reads fail at once (circuit breaker), not after another deadline",
                    len(res) == 3 and res[1][2] < 1.5 and res[2][2] < 1.5, detail)
        s = stats(args.cachectl, env)
        suite.check("stalled store: the errors programs saw are counted", s.get("errors", 0) >= 3, json.dumps(s))
        r = run_py(env, READER, *paths)
        try:
            res = json.loads(r.stdout)
        except ValueError:
            res = []
        suite.check("store running again: a new process reads every file byte-exact",
                    [x[:2] for x in res] == [["ok", digests[n]] for n in sorted(digests)], f"{res}\n{r.stderr}")

        # ---- metadata_ttl is a lifetime -------------------------------------------
        if not os.path.exists(mf.FAKETIME_LIB):
            suite.check("libfaketime is installed (make deps)", False, mf.FAKETIME_LIB)
        else:
            cfg = os.path.join(tmp, "ttl.toml")
            # Requests are signed with the (fake) time and a store refuses more
            # than 15 minutes of skew: stay within 5 minutes of the real time.
            # t0 is 5 s before a multiple of the 5 m TTL, where a wall-clock
            # bucket (the old scheme) would expire 5 s later.
            ttl = 300
            t0 = int(time.time()) // ttl * ttl - 5
            write_config(cfg, srv.endpoint, mnt, f"ttl{os.getpid()}", "5m")
            env = mf.shim_env(args.shim, cfg, shm, asan)
            made = mf.with_faketime(env, mf.at(t0))
            r = run_py(made, LISTER, f"{mnt}/d")
            suite.check("ttl: the directory lists", r.returncode == 0 and "f0.bin" in r.stdout, r.stderr)
            before = stats(args.cachectl, env).get("remote_requests", -1)
            r = run_py(mf.with_faketime(env, mf.at(t0 + 65)), "import os,sys; os.stat(sys.argv[1])",
                       f"{mnt}/d/f0.bin")
            after = stats(args.cachectl, env).get("remote_requests", -1)
            # A wall-clock bucket of 5 m would have expired 5 s after t0.
            suite.check("ttl: 65 s into a 5 m lifetime the listing answers with no request",
                        r.returncode == 0 and after == before, f"requests {before} -> {after}\n{r.stderr}")
            r = run_py(mf.with_faketime(env, mf.at(t0 + ttl + 1)), "import os,sys; os.stat(sys.argv[1])",
                       f"{mnt}/d/f0.bin")
            later = stats(args.cachectl, env).get("remote_requests", -1)
            suite.check("ttl: after its lifetime the listing is made again (requests are made)",
                        r.returncode == 0 and later > after, f"requests {after} -> {later}\n{r.stderr}")

            # ---- expired metadata, store down, file fully cached: served ------------
            cfg = os.path.join(tmp, "stale.toml")
            write_config(cfg, srv.endpoint, mnt, f"stale{os.getpid()}", "1m")
            env = mf.shim_env(args.shim, cfg, shm, asan)
            now = int(time.time())
            r = run_py(mf.with_faketime(env, mf.at(now)), READER, *paths)
            first = json.loads(r.stdout) if r.returncode == 0 else []
            suite.check("stale: the files are read (and cached) while the store runs",
                        [x[0] for x in first] == ["ok"] * 3, r.stderr)
            os.kill(srv.proc.pid, signal.SIGSTOP)
            try:
                r = run_py(mf.with_faketime(env, mf.at(now + 120)), READER, *paths)
            finally:
                os.kill(srv.proc.pid, signal.SIGCONT)
            try:
                res = json.loads(r.stdout)
            except ValueError:
                res = []
            suite.check("stale: with the metadata expired and the store stopped, cached files are served byte-exact",
                        [x[:2] for x in res] == [["ok", digests[n]] for n in sorted(digests)],
                        f"{res}\n{r.stderr}")
            suite.check("stale: serving expired metadata is logged", "cannot revalidate" in r.stderr, r.stderr)
    finally:
        srv.stop()
    print(f"{suite.passed} passed, {suite.failed} failed")
    return 0 if suite.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
