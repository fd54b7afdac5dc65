#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The chaos suite: the whole read and write path through faults, kills,
replaced objects and exhausted resources, with unmodified programs under the
shim and every byte checked against a local mirror. Real s3rver, with the
fault-injecting proxy (tests/s3server/fault_proxy.py) in front of it.

  faults      an epoch of small and large objects read by 4 processes
              through ~10% injected faults (503 SlowDown, 500, resets and
              truncations mid-body, stalls, delays): 0 wrong bytes, every
              fault retried or surfaced as EIO
  store_stop  the store SIGSTOPped mid-epoch (retry_deadline 5 s, stall_timeout
              10 s): every blocked read is EIO within the deadline plus a
              margin, later ones fail fast; after SIGCONT a new process reads
              everything
  store_kill  the store SIGKILLed mid-epoch (retry_deadline 5 s): every
              blocked read is EIO within the deadline plus a margin; once it
              is back on the same port a new process reads everything
  kill_storm  random SIGKILLs of reader and writer processes during an epoch
              and a checkpoint write: then a fresh reader reads everything
              byte-exact, gets_in_flight is 0, and every object in the bucket
              is complete (a killed writer's object is absent or whole)
  replaced    an object replaced (same size, other bytes) while a reader
              holds it open, cached and uncached, metadata_ttl 0 (never
              revalidate) and 1 s: a reader sees the old object or the new
              one or an errno, never a mix; after a 1 s TTL a new open sees
              the new object
  secrets     the secret key and the session token appear in no log line, no
              cachectl output and no staged, spill or segment file name
  damage      the spill file with flipped bytes and then cut short, and the
              segment file of the wrong size, with a damaged header,
              world-writable, and owned by another user (a temporary
              useradd): damage is detected and counted in `errors`, never
              served; a segment that cannot be trusted is refused with a line
              naming it, and reads get an errno, never wrong bytes
  exhaustion  a full staging disk, a full spill disk and a full shared-memory
              file system (small tmpfs), and a reader at `ulimit -n 64`:
              errnos, no crash (no SIGBUS), nothing lost (needs root for the
              tmpfs mounts)

make test runs the short form; `make chaos` the long one (--long: a 1 GiB
epoch of 100 KiB and 64 MiB objects, 100 kills), which writes
bench/results/chaos.md and .json. Ends with "N passed, M failed"."""
import argparse
import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "preload"))
sys.path.insert(0, os.path.join(HERE, "..", "s3server"))
import mount_fixture as mf  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402

PY = "/usr/bin/python3"
MNT = "/mnt/objcache-chaos"
WMNT = "/mnt/objcache-chaos-w"

# One JSON line per file: ["start", path] before it is opened, then
# ["ok", path, sha256, seconds] or [ERRNO, path, "", seconds]. With --loop it
# goes over its list again and again (until killed).
READER = r"""
import errno, hashlib, json, random, sys, time
loop = sys.argv[1] == "loop"
seed = int(sys.argv[2])
paths = sys.argv[3:]
rng = random.Random(seed)
while True:
    order = list(paths)
    rng.shuffle(order)
    for p in order:
        print(json.dumps(["start", p]), flush=True)
        t = time.monotonic()
        try:
            h = hashlib.sha256()
            with open(p, "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
            print(json.dumps(["ok", p, h.hexdigest(), time.monotonic() - t]), flush=True)
        except OSError as e:
            print(json.dumps([errno.errorcode.get(e.errno, str(e.errno)), p, "", time.monotonic() - t]),
                  flush=True)
    if not loop:
        break
"""

# Writes checkpoint files w<seed>-<i>.bin of SIZE bytes whose content is a
# function of their name, one after another, until killed or COUNT are done.
WRITER = r"""
import hashlib, json, os, sys
d, seed, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def content(name, size):
    block = hashlib.sha256(name.encode()).digest() * 32768  # 1 MiB
    out = bytearray()
    while len(out) < size:
        out += block
    return bytes(out[:size])
for i in range(count):
    name = f"w{seed}-{i}.bin"
    data = content(name, size)
    print(json.dumps(["start", name]), flush=True)
    try:
        with open(os.path.join(d, name), "wb") as f:
            for off in range(0, size, 1 << 20):
                f.write(data[off:off + (1 << 20)])
        print(json.dumps(["done", name]), flush=True)
    except OSError as e:
        print(json.dumps(["error", name, e.errno]), flush=True)
"""


def writer_content(name, size):
    block = hashlib.sha256(name.encode()).digest() * 32768
    out = bytearray()
    while len(out) < size:
        out += block
    return bytes(out[:size])


def write_config(path, endpoint, name, memory="256MiB", retry_deadline="30s", stall_timeout="2s",
                 ttl="5m", spill_dir="", staging_dir="", writable=False, extra_cache="", log="", mount_extra=""):
    staging = f'staging_dir = "{staging_dir}"\n' if staging_dir else ""
    wmount = ""
    if writable:
        wmount = f"""
[[mount]]
path = "{WMNT}"
source = "s3://{mf.BUCKET}/ckpt/"
writable = true
metadata_ttl = "{ttl}"
"""
    with open(path, "w") as f:
        f.write(f"""[cache]
name = "{name}"
memory = "{memory}"
spill_dir = "{spill_dir}"
page_size = "1MiB"
{staging}{extra_cache}
[store]
endpoint = "{endpoint}"
region = "us-east-1"
credentials = "env"
retry_deadline = "{retry_deadline}"
stall_timeout = "{stall_timeout}"
{log}
[[mount]]
path = "{MNT}"
source = "s3://{mf.BUCKET}/data/"
metadata_ttl = "{ttl}"
{mount_extra}
{wmount}""")


def stats(cachectl, env):
    r = subprocess.run([cachectl, "stats", "--json"], env=env, capture_output=True, text=True, timeout=120)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"_error": r.stderr}


def spawn(env, script, *args):
    return subprocess.Popen([PY, "-c", script, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.PIPE, text=True)


def run_py(env, script, *args, timeout=600):
    return subprocess.run([PY, "-c", script, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def run_reader(env, paths, seed=1, timeout=900):
    r = subprocess.run([PY, "-c", READER, "once", str(seed), *paths], env=env, capture_output=True,
                       text=True, timeout=timeout)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()], r


def results(lines):
    return [x for x in lines if x[0] != "start"]


class Data:
    """Objects under data/ in the bucket and the same bytes in a local mirror."""

    def __init__(self, client, root, small, small_size, large, large_size, seed=11):
        self.digests = {}
        rng = random.Random(seed)
        os.makedirs(root, exist_ok=True)
        for i in range(small + large):
            big = i >= small
            name = f"{'big' if big else 'img'}/{i:05d}.bin"
            size = large_size if big else small_size + rng.randrange(4096)
            body = rng.randbytes(size)
            client.put_object(Bucket=mf.BUCKET, Key="data/" + name, Body=body)
            os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
            with open(os.path.join(root, name), "wb") as f:
                f.write(body)
            self.digests[f"{MNT}/{name}"] = hashlib.sha256(body).hexdigest()
        self.bytes = sum(os.path.getsize(os.path.join(dp, n)) for dp, _, ns in os.walk(root) for n in ns)

    def paths(self):
        return sorted(self.digests)

    def wrong(self, res):
        return [x for x in res if x[0] == "ok" and self.digests.get(x[1]) != x[2]]


class Chaos:
    def __init__(self, args, suite, tmp):
        self.args, self.suite, self.tmp = args, suite, tmp
        self.asan = mf.asan_preload(args.shim)
        self.report = {}
        self.n = 0

    def env(self, cfg, shm=None, **extra):
        shm = shm or os.path.join(self.tmp, "shm")
        os.makedirs(shm, exist_ok=True)
        e = mf.shim_env(self.args.shim, cfg, shm, self.asan)
        e.update(extra)
        return e

    def config(self, endpoint, **kw):
        self.n += 1
        path = os.path.join(self.tmp, f"c{self.n}.toml")
        write_config(path, endpoint, f"chaos{os.getpid()}x{self.n}", **kw)
        return path


# ---- faults: an epoch through ~10% injected faults ---------------------------
def case_faults(cx, srv, data):
    s = cx.suite
    rates = {"slowdown": 0.03, "error500": 0.02, "reset": 0.02, "truncate": 0.02, "stall": 0.005,
             "delay": 0.005}
    proxy = FaultProxy(srv.port, seed=cx.args.seed, rates=rates, stall_s=20)
    print(f"     faults: seed {cx.args.seed} (--seed to replay), rates {rates}", flush=True)
    try:
        cfg = cx.config(proxy.endpoint, memory="2GiB" if cx.args.long else "256MiB")
        env = cx.env(cfg)
        t0 = time.monotonic()
        procs = [spawn(env, READER, "once", i, *data.paths()) for i in range(4)]
        outs = [p.communicate(timeout=3600) for p in procs]
        took = time.monotonic() - t0
        res = [json.loads(line) for out, _ in outs for line in out.splitlines() if line.strip()]
        res = results(res)
        wrong = data.wrong(res)
        errnos = sorted({x[0] for x in res if x[0] != "ok"})
        surfaced = sum(1 for x in res if x[0] != "ok")
        counts = proxy.snapshot()
        faults = proxy.faults()
        st = stats(cx.args.cachectl, env)
        print(f"     faults: proxy {counts}; {surfaced} errors surfaced {errnos}; {took:.1f} s", flush=True)
        detail = json.dumps({"counts": counts, "errnos": errnos, "surfaced": surfaced,
                             "stderr": [e[-2000:] for _, e in outs if e.strip()][:2]})
        s.check("faults: every reader read every file (a result per file)",
                len(res) == 4 * len(data.digests) and all(p.returncode == 0 for p in procs), detail)
        s.check("faults: 0 wrong bytes (sha256 of every file read against the mirror)", not wrong,
                json.dumps(wrong[:5]))
        s.check("faults: faults were injected (at least 5% of requests)",
                counts["requests"] > 0 and faults >= 0.05 * counts["requests"], detail)
        s.check("faults: a fault not retried surfaced as EIO, never as another errno or wrong bytes",
                set(errnos) <= {"EIO"}, detail)
        s.check("faults: gets_in_flight is 0 after the epoch", st.get("gets_in_flight") == 0, json.dumps(st)[:2000])
        # The same files straight from the store: all there.
        proxy.set_rates({})
        res2, r = run_reader(cx.env(cx.config(srv.endpoint)), data.paths())
        res2 = results(res2)
        s.check("faults: afterwards a fresh cache reads every file byte-exact",
                len(res2) == len(data.digests) and all(x[0] == "ok" for x in res2) and not data.wrong(res2),
                r.stderr[-3000:])
        cx.report["faults"] = {"files": len(data.digests), "bytes": data.bytes, "readers": 4, "seconds": took,
                               "seed": cx.args.seed, "rates": rates, "proxy": counts, "faults_injected": faults,
                               "wrong_files": len(wrong), "errors_surfaced": surfaced, "errnos": errnos,
                               "errors_counted": st.get("errors")}
    finally:
        proxy.stop()


# ---- store_kill: the store killed mid-epoch, then back on the same port -----
def hurt_store_mid_epoch(env, paths, seed, hurt, heal=None):
    """Reads paths in one reader process and calls hurt() once 5 files are
    read (heal() when the reader is done, if given). Returns (hurt or not,
    every result, the results after the first 5, the reader's stderr)."""
    p = spawn(env, READER, "once", seed, *paths)
    lines = []
    done = False
    try:
        for line in p.stdout:
            x = json.loads(line)
            lines.append(x)
            if not done and x[0] == "ok" and sum(1 for y in lines if y[0] == "ok") >= 5:
                hurt()
                done = True
        p.wait(timeout=600)
    finally:
        if done and heal is not None:
            heal()
    res = results(lines)
    return done, res, res[5:], p.stderr.read()


def case_store_stop(cx, srv, data):
    """The store stopped (SIGSTOP: connections open, no answer) mid-epoch:
    every blocked read is EIO within retry_deadline (the stalled attempt
    included, though stall_timeout is longer), later reads fail fast, and
    once it runs again a new process reads everything."""
    s = cx.suite
    deadline = 5.0
    cfg = cx.config(srv.endpoint, retry_deadline="5s", stall_timeout="10s", memory="64MiB",
                    mount_extra='prefetch = "none"')
    env = cx.env(cfg)
    paths = [p for p in data.paths() if "/img/" in p][40:80]
    stopped, res, after, err = hurt_store_mid_epoch(env, paths, 4, srv.pause, srv.resume)  # SIGSTOP, then SIGCONT
    detail = json.dumps(after[:8]) + "\n" + err[-2000:]
    s.check("store_stop: the reads after SIGSTOP fail with EIO (or were already cached)",
            stopped and after and all(x[0] in ("EIO", "ok") for x in after) and any(x[0] == "EIO" for x in after),
            detail)
    slowest = max((x[3] for x in after if x[0] == "EIO"), default=0.0)
    total = sum(x[3] for x in after if x[0] == "EIO")
    s.check(f"store_stop: every blocked read returns within retry_deadline + 3 s (slowest {slowest:.2f} s, "
            f"stall_timeout 10 s)", slowest <= deadline + 3.0, detail)
    n_eio = sum(1 for x in after if x[0] == "EIO")
    s.check(f"store_stop: the store found dead, later reads fail fast ({n_eio} EIOs in {total:.1f} s, "
            f"not {n_eio} x {deadline:.0f} s)", n_eio > 1 and total <= 2 * deadline + 3.0, detail)
    s.check("store_stop: 0 wrong bytes", not data.wrong(res), json.dumps(data.wrong(res)[:3]))
    res2, r = run_reader(env, paths)
    res2 = results(res2)
    s.check("store_stop: after SIGCONT a new process reads every file byte-exact",
            len(res2) == len(paths) and all(x[0] == "ok" for x in res2) and not data.wrong(res2), r.stderr[-2000:])
    cx.report["store_stop"] = {"reads_after_stop": len(after), "eio": n_eio, "slowest_error_s": slowest,
                               "eio_total_s": total, "retry_deadline_s": deadline}


def case_store_kill(cx, srv, data):
    s = cx.suite
    deadline = 5.0
    # No prefetch: the files after the kill must still need the store.
    cfg = cx.config(srv.endpoint, retry_deadline="5s", stall_timeout="30s", memory="64MiB",
                    mount_extra='prefetch = "none"')
    env = cx.env(cfg)
    paths = [p for p in data.paths() if "/img/" in p][:40]
    killed, res, after, err = hurt_store_mid_epoch(env, paths, 3, srv.proc.kill)  # SIGKILL: the store dies
    srv.proc.wait()
    detail = json.dumps(after[:8]) + "\n" + err[-2000:]
    s.check("store_kill: the reads after the kill fail with EIO (or were already cached)",
            killed and after and all(x[0] in ("EIO", "ok") for x in after) and any(x[0] == "EIO" for x in after),
            detail)
    slowest = max((x[3] for x in after if x[0] == "EIO"), default=0.0)
    s.check(f"store_kill: every blocked read returns within retry_deadline + 3 s (slowest {slowest:.2f} s)",
            slowest <= deadline + 3.0, detail)
    s.check("store_kill: 0 wrong bytes", not data.wrong(res), json.dumps(data.wrong(res)[:3]))
    srv.restart()
    res2, r = run_reader(env, paths)
    res2 = results(res2)
    s.check("store_kill: store back on its port: a new process reads every file byte-exact",
            len(res2) == len(paths) and all(x[0] == "ok" for x in res2) and not data.wrong(res2), r.stderr[-2000:])
    cx.report["store_kill"] = {"reads_after_kill": len(after), "eio": sum(1 for x in after if x[0] == "EIO"),
                               "slowest_error_s": slowest, "retry_deadline_s": deadline}


# ---- kill_storm: SIGKILLs of readers and writers ------------------------------
def case_kill_storm(cx, srv, data, kills):
    s = cx.suite
    client = srv.client()
    staging = os.path.join(cx.tmp, "staging-storm")
    os.makedirs(staging, mode=0o700, exist_ok=True)
    storm_log = os.path.join(cx.tmp, "storm.log")
    cfg = cx.config(srv.endpoint, memory="128MiB", writable=True, staging_dir=staging,
                    log=f'\n[log]\nlevel = "debug"\nfile = "{storm_log}"\n')
    env = cx.env(cfg)
    # A multipart upload (objcache's first part is 8 MiB; smaller files are
    # one PUT at close). Not one PUT: s3rver 3.7.1 keeps the body of a PUT
    # whose client died mid-request as the object (a 6 MiB writer killed in
    # close left a 5.3 MiB object in 2 of 5 runs; S3 refuses a short body),
    # so only the multipart path can be judged against it.
    size = 10 << 20
    rng = random.Random(cx.args.seed)
    paths = data.paths()
    started = [0]

    def new(kind):
        started[0] += 1
        if kind == "writer":
            return spawn(env, WRITER, WMNT, started[0], size, 1000)
        return spawn(env, READER, "loop", started[0], *paths)

    live = [new("reader") for _ in range(3)] + [new("writer")]
    kinds = {id(p): ("writer" if i == 3 else "reader") for i, p in enumerate(live)}
    seen_lines = []
    writer_done = set()
    done = 0
    try:
        while done < kills:
            i = rng.randrange(len(live))
            victim = live[i]
            # Kill it while it works: right after it says it started a file
            # (the read or the upload is then in flight), an event, not a time.
            while True:
                line = victim.stdout.readline()
                if not line:
                    break
                x = json.loads(line)
                seen_lines.append(x)
                if x[0] == "done":
                    writer_done.add(x[1])
                if x[0] == "start" and rng.random() < 0.5:
                    break
            victim.kill()
            victim.wait()
            kind = kinds.pop(id(victim))
            live[i] = new(kind)
            kinds[id(live[i])] = kind
            done += 1
    finally:
        for p in live:
            p.kill()
            p.wait()
    wrong = data.wrong([x for x in seen_lines if x[0] == "ok"])
    s.check(f"kill_storm: {done} SIGKILLs, 0 wrong bytes read by the processes killed",
            done == kills and not wrong, json.dumps(wrong[:3]))
    res, r = run_reader(env, paths)
    res = results(res)
    s.check("kill_storm: afterwards a fresh reader reads every file byte-exact (no stuck claim)",
            len(res) == len(paths) and all(x[0] == "ok" for x in res) and not data.wrong(res), r.stderr[-3000:])
    st = stats(cx.args.cachectl, env)
    s.check("kill_storm: gets_in_flight returns to 0", st.get("gets_in_flight") == 0, json.dumps(st)[:2000])
    objs = client.list_objects_v2(Bucket=mf.BUCKET, Prefix="ckpt/").get("Contents", [])
    bad = []
    for o in objs:
        name = o["Key"][len("ckpt/"):]
        body = client.get_object(Bucket=mf.BUCKET, Key=o["Key"])["Body"].read()
        if body != writer_content(name, size):
            bad.append((o["Key"], len(body)))
    why = ""
    if bad and os.path.exists(storm_log):
        with open(storm_log, errors="replace") as f:
            why = "".join(line for line in f if any(k.split("/")[-1] in line for k, _ in bad))[-6000:]
    s.check(f"kill_storm: every object the writers left in the bucket is complete ({len(objs)} objects)",
            not bad and len(objs) >= len(writer_done), json.dumps(bad[:5]) + "\n" + why)
    missing = sorted(n for n in writer_done if n not in {o["Key"][len("ckpt/"):] for o in objs})
    s.check("kill_storm: every checkpoint whose close returned is in the bucket", not missing, json.dumps(missing[:5]))
    cx.report["kill_storm"] = {"kills": done, "objects_in_bucket": len(objs), "closed_by_writers": len(writer_done),
                               "incomplete_objects": len(bad), "wrong_bytes_files": len(wrong),
                               "gets_in_flight_after": st.get("gets_in_flight")}


# ---- replaced: an object replaced while held open -----------------------------
HOLDER = r"""
import errno, hashlib, json, sys
p = sys.argv[1]
try:
    with open(p, "rb") as f:
        a = f.read(1 << 20)
        print("half", flush=True)
        sys.stdin.readline()
        b = f.read()
    print(json.dumps(["ok", hashlib.sha256(a + b).hexdigest()]), flush=True)
except OSError as e:
    print(json.dumps([errno.errorcode.get(e.errno, str(e.errno)), ""]), flush=True)
"""


def case_replaced(cx, srv):
    s = cx.suite
    client = srv.client()
    size = 6 << 20
    rng = random.Random(5)
    # metadata_ttl 0 means "never revalidate" (immutable data): a new open
    # keeps the version it knows or fails; 1 s: a new open after it sees the
    # new object.
    for ttl in ("0", "1s"):
        for cached in (False, True):
            key = f"data/rep/{ttl}-{int(cached)}.bin"
            path = f"{MNT}/rep/{ttl}-{int(cached)}.bin"
            old, new = rng.randbytes(size), rng.randbytes(size)
            client.put_object(Bucket=mf.BUCKET, Key=key, Body=old)
            h_old, h_new = hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()
            # Not cached: no readahead either, so the pages after the first
            # are fetched after the replacement (the reply's ETag must catch it).
            env = cx.env(cx.config(srv.endpoint, ttl=ttl, memory="64MiB",
                                   mount_extra="" if cached else 'prefetch = "none"'))
            name = f"replaced (metadata_ttl {ttl}, {'cached' if cached else 'not cached'})"
            if cached:
                res, r = run_reader(env, [path])
                if not (res and results(res)[0][2] == h_old):
                    s.check(f"{name}: the old object is read first", False, r.stderr[-2000:])
                    continue
            p = spawn(env, HOLDER, path)
            first = p.stdout.readline().strip()
            client.put_object(Bucket=mf.BUCKET, Key=key, Body=new)
            out, err = p.communicate("go\n", timeout=300)
            try:
                got = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                got = ["?", ""]
            ok = first == "half" and (got[0] != "ok" or got[1] in (h_old, h_new))
            s.check(f"{name}: the reader holding it sees the old or the new object or an errno, never a mix "
                    f"({'old' if got[1] == h_old else 'new' if got[1] == h_new else got[0]})", ok, err[-2000:])
            if ttl == "0":
                res, r = run_reader(env, [path])
                res = results(res)
                h = res[0][2] if res and res[0][0] == "ok" else (res[0][0] if res else "?")
                s.check(f"{name}: a new open sees one whole version or an errno, never a mix",
                        bool(res) and (res[0][0] != "ok" or h in (h_old, h_new)), r.stderr[-2000:])
                continue
            # Before the TTL a new open sees one whole version; after it (the
            # wall clock moved 3 s on with libfaketime, no waiting) the new one.
            seen = []
            for when in (None, time.time() + 3):
                e = env if when is None else mf.with_faketime(env, mf.at(int(when)))
                res, r = run_reader(e, [path])
                res = results(res)
                h = res[0][2] if res and res[0][0] == "ok" else (res[0][0] if res else "?")
                seen.append("new" if h == h_new else "old" if h == h_old else h)
            s.check(f"{name}: a new open sees one whole version, and after the TTL the new object "
                    f"({' then '.join(seen)})",
                    seen[0] in ("old", "new", "ESTALE", "EIO") and seen[1] == "new", r.stderr[-2000:])


# ---- secrets: nowhere in logs, outputs or file names --------------------------
def case_secrets(cx, srv, data):
    s = cx.suite
    secret, token = "chaosSECRETk3y9f3c1aQ", "chaosTOKEN77e1b2dd"
    staging = os.path.join(cx.tmp, "staging-secrets")
    spill = os.path.join(cx.tmp, "spill-secrets")
    shm = os.path.join(cx.tmp, "shm-secrets")
    for d in (staging, spill, shm):
        os.makedirs(d, mode=0o700, exist_ok=True)
    logfile = os.path.join(cx.tmp, "secrets.log")
    cfg = cx.config(srv.endpoint, memory="32MiB", writable=True, staging_dir=staging, spill_dir=spill,
                    log=f'\n[log]\nlevel = "debug"\nfile = "{logfile}"\n')
    env = cx.env(cfg, shm=shm, AWS_SECRET_ACCESS_KEY=secret, AWS_SESSION_TOKEN=token)
    texts = []
    res, r = run_reader(env, data.paths()[:20])
    texts += [r.stdout, r.stderr]
    w = run_py(env, WRITER, WMNT, 99, 1 << 20, 2)
    texts += [w.stdout, w.stderr]
    # A failing request too: a key that does not exist, and a write to a
    # store that is gone (its error lines).
    bad = subprocess.run([PY, "-c", "open('/mnt/objcache-chaos/none/such')"], env=env, capture_output=True,
                         text=True, timeout=120)
    texts += [bad.stderr]
    for cmd in (["check"], ["stats"], ["stats", "--json"], ["stats", "--prometheus"], ["uploads"],
                ["uploads", "--json"], ["ls", MNT], ["verify"]):
        c = subprocess.run([cx.args.cachectl, *cmd], env=env, capture_output=True, text=True, timeout=300)
        texts += [c.stdout, c.stderr]
    if os.path.exists(logfile):
        with open(logfile, errors="replace") as f:
            texts.append(f.read())
    names = [os.path.join(dp, n) for d in (staging, spill, shm, cx.tmp) for dp, _, ns in os.walk(d) for n in ns]
    blob = "\n".join(texts + names)
    s.check("secrets: the reads and the writes worked with that secret",
            res and all(x[0] == "ok" for x in results(res)) and w.returncode == 0, r.stderr[-1000:] + w.stderr[-1000:])
    s.check("secrets: a debug log was written", os.path.exists(logfile) and os.path.getsize(logfile) > 0, logfile)
    leaks = [t for t in (secret, token) if t in blob]
    s.check("secrets: neither the secret key nor the session token appears in any log line, cachectl output "
            "or file name", not leaks, f"found {leaks}")
    # A spill directory writable by others is refused, with a line naming it.
    loose = os.path.join(cx.tmp, "spill-loose")
    os.makedirs(loose, exist_ok=True)
    os.chmod(loose, 0o777)
    env2 = cx.env(cx.config(srv.endpoint, spill_dir=loose), shm=shm)
    res2, c = run_reader(env2, data.paths()[:3])
    s.check("secrets: a spill directory writable by others is refused with a line naming it (reads go on)",
            loose in c.stderr and "writable by others" in c.stderr and
            all(x[0] == "ok" for x in results(res2)) and not os.listdir(loose), c.stderr[-2000:])
    ck = subprocess.run([cx.args.cachectl, "check"], env=env2, capture_output=True, text=True, timeout=120)
    s.check("secrets: cachectl check fails (exit 1) on that spill directory and names it",
            ck.returncode == 1 and f"FAILED: spill_dir {loose} is writable by others" in ck.stdout,
            ck.stdout[-2000:] + ck.stderr[-500:])
    loose_st = os.path.join(cx.tmp, "staging-loose")
    os.makedirs(loose_st, exist_ok=True)
    os.chmod(loose_st, 0o777)
    env3 = cx.env(cx.config(srv.endpoint, writable=True, staging_dir=loose_st), shm=shm)
    w = subprocess.run([PY, "-c", "open('/mnt/objcache-chaos-w/x.bin', 'wb').write(b'x')"], env=env3,
                       capture_output=True, text=True, timeout=120)
    s.check("secrets: a staging directory writable by others is refused (the write fails, the line names it)",
            w.returncode != 0 and loose_st in w.stderr, w.stderr[-2000:])


# ---- damage: the spill file and the segment file, hurt on disk ---------------
def flip_every(path, stride, at=1000):
    """XORs one byte every stride bytes of path (from offset at); how many."""
    n = 0
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        for off in range(at, size, stride):
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0xFF]))
            n += 1
    return n


def temp_user():
    """A throwaway user's (name, uid), or (None, why not)."""
    name = f"occhaos{os.getpid() % 100000}"
    r = subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None, (r.stderr.strip() or f"useradd exit {r.returncode}")
    import pwd
    return name, pwd.getpwnam(name).pw_uid


def case_damage(cx, srv, data):
    s = cx.suite
    paths = data.paths()
    spill = os.path.join(cx.tmp, "spill-damage")
    os.makedirs(spill, mode=0o700, exist_ok=True)
    cfg = cx.config(srv.endpoint, memory="16MiB", spill_dir=spill, extra_cache='spill_size = "256MiB"\n')
    fresh = [0]

    def new_segment():
        fresh[0] += 1
        return os.path.join(cx.tmp, f"shm-damage-{fresh[0]}")

    env = cx.env(cfg, shm=new_segment())
    res, r = run_reader(env, paths)  # fills RAM and, written through, the spill file
    res = results(res)
    s.check("damage: the first epoch fills the spill file, byte-exact",
            len(res) == len(paths) and all(x[0] == "ok" for x in res) and not data.wrong(res), r.stderr[-2000:])
    datafile = [os.path.join(spill, n) for n in os.listdir(spill) if n.endswith(".data")]
    if len(datafile) != 1:
        s.check("damage: one spill data file", False, str(os.listdir(spill)))
        return
    datafile = datafile[0]
    flipped = flip_every(datafile, 64 << 10)
    # A new segment (RAM empty): every page is looked for in the damaged spill.
    env = cx.env(cfg, shm=new_segment())
    res, r = run_reader(env, paths)
    res = results(res)
    st = stats(cx.args.cachectl, env)
    s.check(f"damage: with {flipped} bytes of the spill file flipped every file still reads byte-exact",
            len(res) == len(paths) and all(x[0] == "ok" for x in res) and not data.wrong(res), r.stderr[-2000:])
    s.check("damage: the damaged spill blocks are counted in errors (cachectl stats, after the reader exited)",
            st.get("errors", 0) > 0, json.dumps(st)[:2000])
    # The spill file cut short under the index that describes it.
    res, r = run_reader(cx.env(cfg, shm=new_segment()), paths)  # rewrites the blocks
    res = results(res)
    os.truncate(datafile, 4 << 20)  # the log is written from its start: most blocks are past 4 MiB
    env = cx.env(cfg, shm=new_segment())
    res2, r2 = run_reader(env, paths)
    res2 = results(res2)
    v = subprocess.run([cx.args.cachectl, "verify"], env=env, capture_output=True, text=True, timeout=300)
    s.check("damage: with the spill file cut to 4 MiB every file still reads byte-exact, cachectl verify runs",
            all(x[0] == "ok" for x in res) and len(res2) == len(paths) and all(x[0] == "ok" for x in res2) and
            not data.wrong(res2) and v.returncode in (0, 1) and "Traceback" not in v.stderr,
            r2.stderr[-2000:] + v.stdout[-1000:] + v.stderr[-1000:])

    # The segment file: made by one reader, then hurt while no process has it.
    def segment_of(shm):
        names = [n for n in os.listdir(shm) if n.startswith("objcache-") and ".new-" not in n]
        return os.path.join(shm, names[0]) if len(names) == 1 else None

    def refused(label, hurt, want_text, errnos):
        shm = new_segment()
        env = cx.env(cx.config(srv.endpoint, memory="32MiB"), shm=shm)
        first, r0 = run_reader(env, paths[:3])
        seg = segment_of(shm)
        if seg is None or not all(x[0] == "ok" for x in results(first)):
            s.check(f"damage: {label}: a segment to hurt", False, r0.stderr[-1000:])
            return
        hurt(seg)
        res, r = run_reader(env, paths[:3])
        res = results(res)
        s.check(f"damage: {label}: refused with a line naming the file; reads get {'/'.join(errnos)}, "
                f"never bytes, no crash",
                r.returncode == 0 and len(res) == 3 and all(x[0] in errnos for x in res) and seg in r.stderr and
                want_text in r.stderr, f"exit {r.returncode}\n{json.dumps(res)[:800]}\n{r.stderr[-2000:]}")

    refused("a segment of the wrong size", lambda seg: os.truncate(seg, 8 << 20), "cache.memory is",
            ("EINVAL", "EIO"))

    def bad_magic(seg):
        with open(seg, "r+b") as f:
            f.write(b"\xde\xad\xbe\xef\xde\xad\xbe\xef")
    refused("a segment with a damaged header", bad_magic, "not an objcache segment", ("EIO",))
    refused("a world-writable segment", lambda seg: os.chmod(seg, 0o666), "refusing it", ("EACCES", "EIO"))
    if os.geteuid() != 0:
        print("     damage: not root: the foreign-owner case was not run", flush=True)
        return
    user, uid = temp_user()
    if user is None:
        print(f"     damage: no temporary user ({uid}): the foreign-owner case was not run", flush=True)
        return
    try:
        refused(f"a segment owned by another user ({user})", lambda seg: os.chown(seg, uid, -1), "refusing it",
                ("EACCES", "EIO"))
    finally:
        subprocess.run(["userdel", user], capture_output=True)


# ---- exhaustion: full disks, the fd limit -------------------------------------
def tmpfs(path, size):
    """Mounts a small tmpfs at path; the error text, or "" when mounted."""
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                       capture_output=True, text=True)
    return "" if r.returncode == 0 else (r.stderr.strip() or f"mount exit {r.returncode}")


def case_exhaustion(cx, srv, data):
    s = cx.suite
    client = srv.client()
    paths = data.paths()
    staging = os.path.join(cx.tmp, "staging-full")
    spill = os.path.join(cx.tmp, "spill-full")
    why_not = "not root" if os.geteuid() != 0 else tmpfs(staging, "4m") or tmpfs(spill, "2m")
    if not why_not:
        try:
            cfg = cx.config(srv.endpoint, memory="16MiB", writable=True, staging_dir=staging, spill_dir=spill,
                            extra_cache='spill_size = "64MiB"\n')
            env = cx.env(cfg)
            w = run_py(env, WRITER, WMNT, 1007, 8 << 20, 1)
            lines = [json.loads(x) for x in w.stdout.splitlines() if x.strip()]
            s.check("exhaustion: a write larger than the staging disk fails with ENOSPC (or EIO), no crash",
                    w.returncode == 0 and any(x[0] == "error" and x[2] in (errno.ENOSPC, errno.EIO) for x in lines),
                    w.stdout + w.stderr[-2000:])
            keys = [o["Key"] for o in client.list_objects_v2(Bucket=mf.BUCKET, Prefix="ckpt/w1007-").get("Contents", [])]
            s.check("exhaustion: no partial object of the failed write is in the bucket", not keys, json.dumps(keys))
            # The failed file's bytes stay staged, as incomplete: listed,
            # never uploaded as the object; --discard frees the disk.
            cc = [cx.args.cachectl]
            ls = subprocess.run(cc + ["uploads", "--json"], env=env, capture_output=True, text=True, timeout=120)
            try:
                rows = [x for x in json.loads(ls.stdout) if x.get("key", "").startswith("ckpt/w1007-")]
            except ValueError:
                rows = []
            s.check("exhaustion: the failed write is listed by cachectl uploads as incomplete",
                    len(rows) == 1 and rows[0].get("state") == "incomplete", ls.stdout[-2000:] + ls.stderr[-500:])
            rt = subprocess.run(cc + ["uploads", "--retry"], env=env, capture_output=True, text=True, timeout=120)
            keys = [o["Key"] for o in client.list_objects_v2(Bucket=mf.BUCKET, Prefix="ckpt/w1007-").get("Contents", [])]
            s.check("exhaustion: cachectl uploads --retry refuses it (exit 1), no partial object appears",
                    rt.returncode == 1 and not keys and "not the whole file" in rt.stdout + rt.stderr,
                    rt.stdout[-2000:] + rt.stderr[-500:])
            dc = subprocess.run(cc + ["uploads", "--discard"], env=env, capture_output=True, text=True, timeout=120)
            s.check("exhaustion: cachectl uploads --discard removes it", dc.returncode == 0,
                    dc.stdout[-2000:] + dc.stderr[-500:])
            # Then a file that fits lands.
            w2 = run_py(env, WRITER, WMNT, 1008, 1 << 20, 1)
            got = client.get_object(Bucket=mf.BUCKET, Key="ckpt/w1008-0.bin")["Body"].read() if w2.returncode == 0 \
                else b""
            s.check("exhaustion: after the failure a write that fits lands complete",
                    got == writer_content("w1008-0.bin", 1 << 20), w2.stdout + w2.stderr[-2000:])
            # The spill disk (2 MiB) is far smaller than spill_size: reads stay right.
            res, r = run_reader(env, paths)
            res = results(res)
            s.check("exhaustion: with the spill disk full every file still reads byte-exact",
                    len(res) == len(paths) and all(x[0] == "ok" for x in res) and not data.wrong(res),
                    r.stderr[-2000:])
        finally:
            subprocess.run(["umount", "-l", staging])
            subprocess.run(["umount", "-l", spill])
    else:
        subprocess.run(["umount", "-l", staging], capture_output=True)
        print(f"     exhaustion: no small tmpfs ({why_not}): the full-disk cases were not run", flush=True)
    if not why_not:
        # Shared memory full: the segment's file system (a 24 MiB tmpfs, as
        # a container's /dev/shm may be) is far smaller than cache.memory.
        # A write to a page it cannot back would be a SIGBUS in the reader.
        shm = os.path.join(cx.tmp, "shm-full")
        why = tmpfs(shm, "24m")
        try:
            if why:
                s.check("exhaustion: a small tmpfs for the segment", False, why)
            else:
                env = cx.env(cx.config(srv.endpoint, memory="256MiB"), shm=shm)
                res, r = run_reader(env, paths)
                res = results(res)
                st = stats(cx.args.cachectl, env)
                s.check(f"exhaustion: with shared memory full ({data.bytes >> 20} MiB read through a 24 MiB "
                        "tmpfs, cache.memory 256 MiB) every file reads byte-exact, no SIGBUS, a line says why",
                        r.returncode == 0 and len(res) == len(paths) and all(x[0] == "ok" for x in res) and
                        not data.wrong(res) and "cache.memory" in r.stderr and shm in r.stderr,
                        f"exit {r.returncode}\n{r.stderr[-2000:]}")
                s.check("exhaustion: the cache held what fits and evicted within it (stats)",
                        st.get("evictions", 0) > 0 and st.get("errors", 0) >= 1 and
                        0 < st.get("ram_used_bytes", 0) <= 24 << 20, json.dumps(st)[:2000])
        finally:
            subprocess.run(["umount", "-l", shm], capture_output=True)
        shm = os.path.join(cx.tmp, "shm-tiny")
        why = tmpfs(shm, "256k")
        try:
            if not why:
                env = cx.env(cx.config(srv.endpoint, memory="256MiB"), shm=shm)
                res, r = run_reader(env, paths[:3])
                res = results(res)
                s.check("exhaustion: shared memory too small for the segment's index: reads get ENOSPC, "
                        "no SIGBUS, a line says so",
                        r.returncode == 0 and len(res) == 3 and all(x[0] == "ENOSPC" for x in res) and
                        "shared memory full" in r.stderr, f"exit {r.returncode}\n{json.dumps(res)}\n{r.stderr[-2000:]}")
        finally:
            subprocess.run(["umount", "-l", shm], capture_output=True)
    # The fd limit: open files until EMFILE, then close them and read on.
    env = cx.env(cx.config(srv.endpoint, memory="64MiB"))
    script = r"""
import errno, hashlib, json, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
paths = sys.argv[1:]
held, err = [], None
for p in paths * 2:
    try:
        held.append(open(p, "rb"))
    except OSError as e:
        err = errno.errorcode.get(e.errno)
        break
for f in held:
    f.close()
digests = {}
for p in paths:
    with open(p, "rb") as f:
        digests[p] = hashlib.sha256(f.read()).hexdigest()
print(json.dumps({"held": len(held), "err": err, "digests": digests}))
"""
    r = subprocess.run([PY, "-c", script, *paths[:60]], env=env, capture_output=True, text=True, timeout=600)
    try:
        out = json.loads(r.stdout)
    except ValueError:
        out = {}
    s.check("exhaustion: at `ulimit -n 64` opening too many mapped files is EMFILE, no crash",
            r.returncode == 0 and out.get("err") == "EMFILE" and out.get("held", 0) > 10,
            r.stdout[-500:] + r.stderr[-2000:])
    s.check("exhaustion: after closing them every file reads byte-exact",
            bool(out) and all(data.digests[p] == h for p, h in out.get("digests", {}).items()) and
            len(out.get("digests", {})) == len(paths[:60]), r.stderr[-1000:])


class Server(mf.S3Server):
    """s3rver that can be killed and started again on the same port."""

    def restart(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        start = os.path.join(mf.SOURCE_DIR, "s3server", "start.js")
        self.proc = subprocess.Popen(["node", "--openssl-legacy-provider", start, "--dir", self.dir,
                                      "--port", str(self.port), "--bucket", mf.BUCKET],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line or json.loads(line)["port"] != self.port:
            raise RuntimeError("s3rver did not start again on its port")


class Suite(mf.Suite):
    """mf.Suite that also keeps every check's name and verdict, for the report."""

    def __init__(self):
        super().__init__()
        self.results = []

    def check(self, name, ok, detail=""):
        self.results.append((name, bool(ok)))
        super().check(name, ok, detail)


def write_report(path, cx, took):
    rep = dict(cx.report)
    rep["seconds"] = took
    rep["checks"] = [{"name": n, "ok": ok} for n, ok in cx.suite.results]
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(rep, f, indent=1)
    f_ = rep.get("faults", {})
    k = rep.get("kill_storm", {})
    sk = rep.get("store_kill", {})
    lines = ["# Chaos run (long form)", "",
             f"`/usr/bin/python3 tests/chaos/run_chaos.py --long --seed {cx.args.seed}` "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {took:.0f} s in all); "
             f"{cx.suite.passed} checks passed, {cx.suite.failed} failed.", "",
             "| what | figure |", "|---|---|"]
    if f_:
        pc = f_["proxy"]
        lines += [f"| epoch through faults | {f_['files']} files, {f_['bytes'] / 2**20:.0f} MiB, {f_['readers']} reader "
                  f"processes, {f_['seconds']:.1f} s |",
                  f"| requests seen by the proxy | {pc['requests']} |",
                  f"| faults injected | {f_['faults_injected']} ({', '.join(f'{k_} {pc[k_]}' for k_ in ('slowdown', 'error500', 'reset', 'truncate', 'stall', 'delay'))}) |",
                  f"| wrong bytes | {f_['wrong_files']} files with a wrong sha256 |",
                  f"| errors surfaced to programs | {f_['errors_surfaced']} ({', '.join(f_['errnos']) or 'none'}) |"]
    ss = rep.get("store_stop", {})
    if ss:
        lines += [f"| store SIGSTOPped mid-epoch | {ss['eio']} of {ss['reads_after_stop']} later reads EIO, slowest "
                  f"{ss['slowest_error_s']:.2f} s, all of them in {ss['eio_total_s']:.1f} s (retry_deadline "
                  f"{ss['retry_deadline_s']:.0f} s, stall_timeout 10 s) |"]
    if sk:
        lines += [f"| store SIGKILLed mid-epoch | {sk['eio']} of {sk['reads_after_kill']} later reads EIO, slowest "
                  f"{sk['slowest_error_s']:.2f} s (retry_deadline {sk['retry_deadline_s']:.0f} s) |"]
    if k:
        lines += [f"| SIGKILLs of readers and writers | {k['kills']}; afterwards {k['incomplete_objects']} incomplete "
                  f"objects of {k['objects_in_bucket']}, gets_in_flight {k['gets_in_flight_after']}, "
                  f"{k['wrong_bytes_files']} wrong files |"]
    lines += ["", "Every check of the run:", ""]
    lines += [f"- {'ok' if ok else '**FAIL**'}: {name}" for name, ok in cx.suite.results]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim", required=True)
    ap.add_argument("--cachectl", required=True)
    ap.add_argument("--long", action="store_true", help="the long run (1 GiB, 100 kills) and its report")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("OBJCACHE_CHAOS_SEED", "1")))
    ap.add_argument("--out", default="", help="with --long: the report (.md; a .json beside it)")
    ap.add_argument("--only", default="", help="comma-separated cases")
    args = ap.parse_args()
    suite = Suite()
    tmp = tempfile.mkdtemp(prefix="objcache-chaos-")
    cx = Chaos(args, suite, tmp)
    srv = Server(tmp)
    t0 = time.monotonic()
    only = set(filter(None, args.only.split(",")))
    try:
        client = srv.client()
        if args.long:
            data = Data(client, os.path.join(tmp, "mirror"), 5000, 100 << 10, 8, 64 << 20)
        else:
            data = Data(client, os.path.join(tmp, "mirror"), 120, 100 << 10, 2, 12 << 20)
        cases = [("faults", lambda: case_faults(cx, srv, data)),
                 ("kill_storm", lambda: case_kill_storm(cx, srv, data, 100 if args.long else 12)),
                 ("replaced", lambda: case_replaced(cx, srv)),
                 ("secrets", lambda: case_secrets(cx, srv, data)),
                 ("damage", lambda: case_damage(cx, srv, data)),
                 ("exhaustion", lambda: case_exhaustion(cx, srv, data)),
                 ("store_stop", lambda: case_store_stop(cx, srv, data)),
                 ("store_kill", lambda: case_store_kill(cx, srv, data))]  # last: it restarts the store
        for name, fn in cases:
            if only and name not in only:
                continue
            try:
                fn()
            except Exception as e:  # a crash of the harness is a failure, not a pass
                import traceback
                suite.check(f"{name}: ran to the end", False, traceback.format_exc())
                del e
    finally:
        srv.stop()
        if suite.failed == 0:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"     kept {tmp} for a look", flush=True)
    took = time.monotonic() - t0
    if args.long and args.out:
        write_report(args.out, cx, took)
        print(f"wrote {args.out}")
    print(f"{suite.passed} passed, {suite.failed} failed")
    return 0 if suite.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
