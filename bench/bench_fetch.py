# SPDX-License-Identifier: Apache-2.0
"""The fetcher's benchmark (issue 5): cold epochs through a remote with
latency, against the link's limit, plain boto3, and local disk.

  /usr/bin/python3 bench/bench_fetch.py [--build build] [--runs 3] [--out bench/results/fetch.md]

The remote is nginx adding --latency-ms (20) to every request in front of a
real s3rver (bench/latency_remote.py); its capacity is measured in the same
run and reported. s3rver is slow at LIST (CPU-bound), so the remote keeps
LIST replies and one unmeasured warm-up epoch fills them in; a LIST then
costs the delay only, as GETs do. The mounts use prefetch = "directory" (the default) and
prefetch_concurrency = 32, RAM tier only. Every cold epoch starts on a new,
empty cache (its own OBJCACHE_SHM_DIR and cache name). Measurements, each
the median of --runs runs:

 a. 2,000 files of 100 KiB in 10 folders. An epoch is one Python process
    under the shim that forks W readers (1, 2, 4, 8), which wait; then it
    lists the folders (os.walk, as ImageFolder does) and hands the sorted
    list to the readers, each reading files i % W == w with open().read();
    the epoch is the wall time from before the listing until every reader
    is done. Reported: seconds per W, flatness (slowest / fastest), the
    link limit max(objects x latency / concurrency, bytes / bandwidth)
    over the measured time, the data GETs of the cold epoch and of a second
    (warm) epoch on the same cache.
 b. Without the accelerator: the same epoch with W processes each with its
    own boto3 client (made before the clock starts), listing with
    ListObjectsV2, get_object per file through the same remote.
 c. The whole loop: 640 JPEGs of ~100 KiB in 10 class folders, torchvision
    ImageFolder + DataLoader(num_workers=2, batch_size=32, shuffle with a
    fixed seed, PIL decode + ToTensor, no model): local disk (page cache
    warm), a Dataset doing boto3 get_object per sample through the remote,
    objcache cold (first epoch on a new cache) and warm (second epoch, same
    process and cache). Epoch 1 includes building the dataset (the listing).
    --loop-runs (5) runs, as this decode-bound epoch is noisy here; each run
    measures the three one after another, and the verdicts are the medians
    of the per-run ratios (objcache / local disk within a run).

Prints progress to stderr and writes a Markdown report; asserts nothing
about speed (exit 1 only when a read returned wrong bytes or a step failed).
"""
import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "preload"))
sys.path.insert(0, os.path.join(REPO, "bench"))
os.environ.setdefault("OBJCACHE_TEST_SOURCE_DIR", os.path.join(REPO, "tests"))
import mount_fixture as mf  # noqa: E402
import latency_remote as lr  # noqa: E402
from bench_shim import cache_stats, machine, make_files, tree_state, upload  # noqa: E402

PY = "/usr/bin/python3"
CONCURRENCY = 32
TARGET_FLAT = 1.15
TARGET_LIMIT = 0.8
TARGET_BOTO3 = 4.0
BOTO3_WORKERS = 2
TARGET_COLD = 1.25
TARGET_WARM = 1.1
# (c) runs objcache at the default prefetch_concurrency and at 2x and 4x
# it: a shuffled sampler reads at random while the prefetch goes in listing
# order, so a worker's first reads miss until most of the data set is in,
# and that time is set by how many GETs are in flight.
LOOP_CONCURRENCY = (CONCURRENCY, 2 * CONCURRENCY, 4 * CONCURRENCY)


def log(msg):
    print(f"bench_fetch: {msg}", file=sys.stderr, flush=True)


class Failure(Exception):
    pass


# One epoch of measurement (a) or (b):
#   python3 -c EPOCH MODE W ROOT_OR_PREFIX [ENDPOINT BUCKET]
# MODE "fs": ROOT is the mount (run under the shim); "boto3": PREFIX in
# BUCKET at ENDPOINT. Forks W readers first (a boto3 reader makes its client
# then), waits until all are ready, then starts the clock, lists, hands each
# reader the sorted list, and stops the clock when all have reported. Prints
# one JSON line. A reader leaves with os._exit as soon as its share is read
# (as multiprocessing's workers do), possibly while its own prefetch GETs are
# in flight; the parent reaps the readers in order.
EPOCH = r"""
import json, os, sys, time
mode, W, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def client():
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=sys.argv[4], aws_access_key_id="S3RVER",
                        aws_secret_access_key="S3RVER", region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                      max_pool_connections=4))

def read_all(fd):
    chunks = []
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            return b"".join(chunks)
        chunks.append(b)

kids = []
for w in range(W):
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w); os.close(res_r)
        for _, a, b in kids:  # earlier readers' pipe ends: holding them would delay their EOF
            os.close(a); os.close(b)
        c = client() if mode == "boto3" else None
        os.write(res_w, b"R")
        names = read_all(go_r).decode().split("\n")
        t0 = time.perf_counter()
        n = s = count = 0
        for name in names[w::W]:
            if c is not None:
                d = c.get_object(Bucket=sys.argv[5], Key=name)["Body"].read()
            else:
                with open(name, "rb") as f:
                    d = f.read()
            n += len(d)
            s ^= int.from_bytes(d[:8], "little")
            count += 1
        os.write(res_w, json.dumps({"files": count, "bytes": n, "sample": s,
                                    "read_s": time.perf_counter() - t0}).encode())
        os._exit(0)
    os.close(go_r); os.close(res_w)
    kids.append((pid, go_w, res_r))
for _, _, r in kids:
    if os.read(r, 1) != b"R":
        sys.exit("epoch: a reader died before it was ready")
c = client() if mode == "boto3" else None
t0 = time.perf_counter()
if c is not None:
    names = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[5], Prefix=root):
        names += [o["Key"] for o in page.get("Contents", [])]
    names.sort()
else:
    names = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        names += [os.path.join(d, f) for f in files]
    names.sort()
t_list = time.perf_counter() - t0
blob = "\n".join(names).encode()
for _, w_, _ in kids:
    os.write(w_, blob)
    os.close(w_)
tot = {"files": 0, "bytes": 0, "sample": 0}
reader_s = []
for pid, _, r in kids:  # reaped in reader order, as a simple parent joins them
    out = read_all(r)
    _, st = os.waitpid(pid, 0)
    if st != 0 or not out:
        sys.exit(f"epoch: reader {pid} failed (status {st})")
    x = json.loads(out)
    tot["files"] += x["files"]; tot["bytes"] += x["bytes"]; tot["sample"] ^= x["sample"]
    reader_s.append(round(x["read_s"], 3))
epoch = time.perf_counter() - t0
print(json.dumps(dict(tot, sample=f"{tot['sample']:016x}", epoch_s=epoch, list_s=t_list,
                      reader_s=reader_s, listed=len(names))))
"""

# Measurement (c): python3 -c LOOP MODE ROOT EPOCHS [ENDPOINT BUCKET]
# MODE "fs": torchvision ImageFolder over ROOT (local or the mount); "boto3":
# a Dataset listing PREFIX=ROOT and doing get_object per sample. Prints one
# JSON line with each epoch's seconds (epoch 1 includes building the dataset).
LOOP = r"""
import io, json, os, sys, time
mode, root, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms
from PIL import Image
torch.set_num_threads(1)
tf = transforms.ToTensor()

class S3Images(Dataset):
    def __init__(self, endpoint, bucket, prefix):
        self.endpoint, self.bucket = endpoint, bucket
        self._c, self._pid = None, None
        keys = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        keys.sort()
        classes = sorted({k[len(prefix):].split("/")[0] for k in keys})
        idx = {c: i for i, c in enumerate(classes)}
        self.samples = [(k, idx[k[len(prefix):].split("/")[0]]) for k in keys]
    def client(self):
        if self._pid != os.getpid():  # one client per worker process
            import boto3
            from botocore.config import Config
            self._c = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="S3RVER",
                                   aws_secret_access_key="S3RVER", region_name="us-east-1",
                                   config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))
            self._pid = os.getpid()
        return self._c
    def __len__(self):
        return len(self.samples)
    def __getitem__(self, i):
        k, y = self.samples[i]
        b = self.client().get_object(Bucket=self.bucket, Key=k)["Body"].read()
        return tf(Image.open(io.BytesIO(b)).convert("RGB")), y

times, counts, label_sums, means = [], [], [], []
ds = None
for e in range(epochs):
    t0 = time.perf_counter()
    if ds is None:
        ds = S3Images(sys.argv[4], sys.argv[5], root) if mode == "boto3" else datasets.ImageFolder(root, transform=tf)
    g = torch.Generator()
    g.manual_seed(1234 + e)
    loader = DataLoader(ds, batch_size=32, shuffle=True, num_workers=2, generator=g)
    n = ysum = 0
    m = 0.0
    for x, y in loader:
        n += x.shape[0]
        ysum += int(y.sum())
        m += float(x.mean())
    times.append(time.perf_counter() - t0)
    counts.append(n); label_sums.append(ysum); means.append(round(m, 3))
print(json.dumps({"epoch_s": times, "samples": counts, "label_sums": label_sums, "means": means}))
"""


# Processes killed by a signal after they printed their result (the shim
# crashing at exit): kept, and listed in the report.
CRASHES = []


def note_crash(label, p):
    try:
        sig = signal.Signals(-p.returncode).name
    except ValueError:
        sig = f"signal {-p.returncode}"
    CRASHES.append((label, sig, p.stderr.strip()[-300:]))
    log(f"{label}: killed by {sig} after it finished its work")


def run_json(label, argv, env, timeout=900):
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode < 0 and p.stdout.strip():
        note_crash(label, p)
    elif p.returncode != 0:
        raise Failure(f"{label}: exit {p.returncode}\n  stderr: {p.stderr.strip()[-2000:]}\n"
                      f"  stdout: {p.stdout.strip()[-500:]}")
    try:
        r = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        raise Failure(f"{label}: unreadable output {p.stdout[-500:]!r}: {e}") from e
    if p.stderr.strip():
        r["stderr"] = p.stderr.strip()
    return r


def write_config(path, endpoint, mount, source, name, memory, concurrency=CONCURRENCY):
    with open(path, "w") as f:
        f.write(f"""[cache]
name = "{name}"
memory = "{memory}"
spill_dir = ""
page_size = "1MiB"

[store]
endpoint = "{endpoint}"
region = "us-east-1"
credentials = "env"
prefetch_concurrency = {concurrency}

[[mount]]
path = "{mount}"
source = "{source}"
prefetch = "directory"
""")


class Cache:
    """A new, empty cache: a config with its own name and shm dir."""
    seq = 0

    def __init__(self, work, shim, cachectl, endpoint, mount, source, memory, concurrency=CONCURRENCY):
        Cache.seq += 1
        self.name = f"bf{os.getpid()}-{Cache.seq}"
        self.shm = tempfile.mkdtemp(prefix="objcache-bench-fetch-shm-",
                                    dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.config = os.path.join(work, f"{self.name}.toml")
        write_config(self.config, endpoint, mount, source, self.name, memory, concurrency)
        self.env = mf.shim_env(shim, self.config, self.shm)
        self.cachectl = cachectl

    def stats(self):
        s = cache_stats(self.cachectl, self.config, self.shm)
        if s is None:
            raise Failure(f"cachectl stats failed for {self.config}")
        return s

    def close(self):
        shutil.rmtree(self.shm, ignore_errors=True)
        try:
            os.unlink(self.config)
        except OSError:
            pass


def mount_gets(a, b):
    """Data GETs of mount 0 between two stats snapshots (a None = zero)."""
    return b["mounts"][0]["remote_requests"] - (a["mounts"][0]["remote_requests"] if a else 0)


def delta(a, b, key):
    return b.get(key, 0) - (a.get(key, 0) if a else 0)


class Sampler:
    """Polls `cachectl stats --json` in a thread (diagnostic epoch only)."""

    def __init__(self, cache, period=0.05):
        self.cache, self.period, self.samples = cache, period, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.perf_counter()
        while not self._stop.is_set():
            s = cache_stats(self.cache.cachectl, self.cache.config, self.cache.shm)
            if s is not None:
                self.samples.append((time.perf_counter() - t0, s.get("gets_in_flight", 0),
                                     s["mounts"][0]["remote_requests"] if s.get("mounts") else 0,
                                     s.get("prefetched_bytes", 0), s.get("remote_bytes", 0)))
            self._stop.wait(self.period)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def make_jpegs(root, count, classes, side=336, quality=90, seed=3):
    """count random-noise RGB JPEGs (~100 KiB at 336x336, quality 90) in
    `classes` folders; returns (relative paths, total bytes)."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    rels, total = [], 0
    per = (count + classes - 1) // classes
    for i in range(count):
        rel = os.path.join(f"class{i // per:02d}", f"img{i:05d}.jpg")
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        arr = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(arr).save(path, "JPEG", quality=quality)
        total += os.path.getsize(path)
        rels.append(rel)
    return sorted(rels), total


def warm_page_cache(root):
    for d, _, files in os.walk(root):
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                while fh.read(1 << 20):
                    pass


def med(xs):
    return statistics.median(xs)


def verdict(ok):
    return "MET" if ok else "**MISSED**"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the meson build directory")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=100 * 1024)
    ap.add_argument("--dirs", type=int, default=10)
    ap.add_argument("--workers", default="1,2,4,8", help="reader counts for (a)")
    ap.add_argument("--jpegs", type=int, default=640)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--loop-runs", type=int, default=5,
                    help="runs of (c), the DataLoader loop (noisier than (a): a decode-bound epoch of ~1.5 s)")
    ap.add_argument("--skip-loop", action="store_true", help="skip (c), the DataLoader loop")
    ap.add_argument("--out", default=None, help="write the Markdown report here")
    args = ap.parse_args()
    workers = [int(x) for x in args.workers.split(",")]
    if min(args.runs, args.loop_runs, args.files, args.dirs, args.jpegs, *workers) < 1 or args.size < 8:
        ap.error("--runs, --loop-runs, --files, --dirs, --jpegs, --workers >= 1 and --size >= 8")
    if BOTO3_WORKERS not in workers:
        workers.append(BOTO3_WORKERS)
        workers.sort()

    build = args.build if os.path.isabs(args.build) or os.path.isdir(args.build) \
        else os.path.join(REPO, args.build)
    build = os.path.abspath(build)
    shim = os.path.join(build, "preload", "libobjcache_preload.so")
    cachectl = os.path.join(build, "tools", "cachectl")
    for p in (shim, cachectl):
        if not os.path.exists(p):
            sys.exit(f"bench_fetch: no {p} (run `ninja -C {args.build}`)")
    command = "/usr/bin/python3 bench/bench_fetch.py " + " ".join(
        a if re.fullmatch(r"[\w./=,-]+", a) else repr(a) for a in sys.argv[1:])
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()

    work = tempfile.mkdtemp(prefix="objcache-bench-fetch-")
    mount_root = f"/mnt/objcache-bench-fetch-{os.getpid()}"
    files_mount = mount_root + "/files"
    imgs_mount = mount_root + "/imgs"
    server = remote = None
    caches = []
    res = {"a": {w: [] for w in workers}, "warm": {w: [] for w in workers}, "gets1": {w: [] for w in workers},
           "gets2": {w: [] for w in workers}, "prefetched": {w: [] for w in workers},
           "all_requests1": {w: [] for w in workers}, "errors": {w: [] for w in workers},
           "list_s": {w: [] for w in workers}, "readers": {w: [] for w in workers}, "boto3": [], "boto3_list_s": [],
           "loop": {k: [] for k in ("local1", "local2", "boto3")},
           "loop_cold": {n: [] for n in LOOP_CONCURRENCY}, "loop_warm": {n: [] for n in LOOP_CONCURRENCY},
           "loop_gets": {n: [] for n in LOOP_CONCURRENCY}}
    stderr_seen = {}
    try:
        # ---- data
        t = time.monotonic()
        local = os.path.join(work, "files")
        rels, _, sample = make_files(local, args.files, args.size, args.dirs)
        expect = {"files": args.files, "bytes": args.files * args.size, "sample": f"{sample:016x}"}
        jpeg_root = os.path.join(work, "jpegs")
        jrels, jbytes = ([], 0) if args.skip_loop else make_jpegs(jpeg_root, args.jpegs, 10)
        log(f"made {args.files} files x {args.size} B in {args.dirs} folders"
            + ("" if args.skip_loop else f" and {len(jrels)} JPEGs ({jbytes / len(jrels) / 1024:.0f} KiB avg)")
            + f" ({time.monotonic() - t:.1f} s)")
        server = mf.S3Server(work)
        t = time.monotonic()
        upload(server, local, rels, "files/")
        if jrels:
            upload(server, jpeg_root, jrels, "jpegs/")
        log(f"uploaded to s3rver {server.endpoint} ({time.monotonic() - t:.1f} s)")

        # ---- the remote, checked and measured
        remote = lr.LatencyRemote(server.dir, server.port, args.latency_ms, workdir=work, cache_lists=True)
        with open(os.path.join(local, rels[0]), "rb") as f:
            d0 = f.read()
        one_ms = lr.check_semantics(remote, mf.BUCKET, "files/" + rels[0], d0, hashlib.md5(d0).hexdigest())
        objs = []
        for rel in rels[:500]:
            with open(os.path.join(local, rel), "rb") as f:
                objs.append((f"/{mf.BUCKET}/files/{rel}", args.size, hashlib.md5(f.read()).hexdigest()))
        cap = lr.capacity(remote, objs, plan=((1, 50), (32, 2000), (64, 3000), (128, 4000)), tmpdir=work)
        # LIST through the remote as objcache sends it (delimiter), timed.
        list_ms = {}
        import boto3
        from botocore.config import Config
        rc = boto3.client("s3", endpoint_url=remote.endpoint, aws_access_key_id=mf.ACCESS_KEY,
                          aws_secret_access_key=mf.SECRET_KEY, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
        per = args.files // args.dirs
        for label, prefix in ((f"root ({args.dirs} prefixes, {args.files:,} keys below)", "files/"),
                              (f"one folder ({per} keys)", "files/" + rels[0].split("/")[0] + "/")):
            ts = []
            for _ in range(5):
                t = time.perf_counter()
                rc.list_objects_v2(Bucket=mf.BUCKET, Prefix=prefix, Delimiter="/")
                ts.append((time.perf_counter() - t) * 1e3)
            list_ms[label] = (ts[0], med(ts[1:]))
        log(f"remote {remote.endpoint}: one GET {one_ms:.1f} ms; "
            + "; ".join(f"c={r['concurrency']} {r['where']}: {r['gets_per_s']:,.0f} GETs/s p50 {r['p50_ms']:.1f} ms"
                        for r in cap)
            + "; LIST " + ", ".join(f"{k} {v[0]:.0f} ms, cached {v[1]:.0f} ms" for k, v in list_ms.items()))
        bandwidth = max(r["mb_per_s"] for r in cap) * 1e6

        # A copy of the shim, so a rebuild of build/ during the run cannot swap it.
        shim = shutil.copy2(shim, os.path.join(work, "libobjcache_preload.so"))
        with open(shim, "rb") as f:
            shim_id = (f"libobjcache_preload.so sha256 {hashlib.sha256(f.read()).hexdigest()[:12]}, built "
                       f"{datetime.datetime.fromtimestamp(os.stat(shim).st_mtime, datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
        cachectl = shutil.copy2(cachectl, os.path.join(work, "cachectl"))
        plain_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}

        def new_cache(mount, source, memory, concurrency=CONCURRENCY):
            c = Cache(work, shim, cachectl, remote.endpoint, mount, source, memory, concurrency)
            caches.append(c)
            return c

        def check(label, r):
            got = {k: r.get(k) for k in expect}
            if got != expect:
                raise Failure(f"{label}: read {got}, expected {expect}")
            if "stderr" in r:
                stderr_seen.setdefault(label.split(",")[0], r["stderr"])

        def epoch_argv(mode, w, root):
            return [PY, "-c", EPOCH, mode, str(w), root, remote.endpoint, mf.BUCKET]

        # ---- warm-up, not measured: fills nginx's LIST cache with the LISTs
        # objcache and boto3 send, and the OS's caches of Python and torch.
        t = time.monotonic()
        c = new_cache(files_mount, "s3://data/files/", "512MiB")
        check("warm-up epoch", run_json("warm-up epoch", epoch_argv("fs", 2, files_mount), c.env))
        c.close()
        for prefix in ("files/", "jpegs/"):
            for _ in rc.get_paginator("list_objects_v2").paginate(Bucket=mf.BUCKET, Prefix=prefix):
                pass
        if jrels:
            c = new_cache(imgs_mount, "s3://data/jpegs/", "256MiB")
            p = subprocess.run([PY, "-c", "import os, sys, torch, torchvision\nfor _ in os.walk(sys.argv[1]): pass\n"
                                "print('listed')", imgs_mount], env=c.env, capture_output=True, text=True,
                               timeout=300)
            if p.returncode < 0 and p.stdout.strip() == "listed":
                note_crash("warm-up listing of the JPEG mount (import torch; os.walk; exit)", p)
            elif p.returncode != 0:
                raise Failure(f"warm-up listing: exit {p.returncode}: {p.stderr.strip()[-1000:]}")
            c.close()
        log(f"warm-up done ({time.monotonic() - t:.1f} s)")

        # ---- the runs
        for run in range(max(args.runs, 0 if args.skip_loop else args.loop_runs)):
            if run < args.runs:
                order = workers if run % 2 == 0 else list(reversed(workers))
                for w in order:
                    c = new_cache(files_mount, "s3://data/files/", "512MiB")
                    r1 = run_json(f"(a) cold epoch, {w} readers", epoch_argv("fs", w, files_mount), c.env)
                    check(f"(a) cold epoch, {w} readers", r1)
                    s1 = c.stats()
                    r2 = run_json(f"(a) warm epoch, {w} readers", epoch_argv("fs", w, files_mount), c.env)
                    check(f"(a) warm epoch, {w} readers", r2)
                    s2 = c.stats()
                    res["a"][w].append(r1["epoch_s"])
                    res["list_s"][w].append(r1["list_s"])
                    res["readers"][w].append(r1["reader_s"])
                    res["warm"][w].append(r2["epoch_s"])
                    res["gets1"][w].append(mount_gets(None, s1))
                    res["gets2"][w].append(mount_gets(s1, s2))
                    res["all_requests1"][w].append(s1["remote_requests"])
                    res["prefetched"][w].append(s1["prefetched_bytes"] / max(1, s1["remote_bytes"]))
                    res["errors"][w].append(s2["errors"])
                    log(f"run {run + 1}/{args.runs}: (a) {w} readers: cold {r1['epoch_s']:.2f} s "
                        f"(listing {r1['list_s']:.2f} s), {mount_gets(None, s1)} GETs "
                        f"({res['prefetched'][w][-1] * 100:.0f} % of bytes prefetched), "
                        f"warm {r2['epoch_s']:.3f} s, {mount_gets(s1, s2)} GETs")
                    c.close()
                rb = run_json(f"(b) boto3, {BOTO3_WORKERS} readers",
                              epoch_argv("boto3", BOTO3_WORKERS, "files/"), plain_env)
                check(f"(b) boto3, {BOTO3_WORKERS} readers", rb)
                res["boto3"].append(rb["epoch_s"])
                res["boto3_list_s"].append(rb["list_s"])
                log(f"run {run + 1}/{args.runs}: (b) boto3 {BOTO3_WORKERS} readers: {rb['epoch_s']:.2f} s")
            if args.skip_loop or run >= args.loop_runs:
                continue
            lexp = [args.jpegs]

            def loop_check(label, r, epochs):
                if r["samples"] != lexp * epochs:
                    raise Failure(f"{label}: samples {r['samples']}, expected {lexp * epochs}")
                loop_ref.setdefault("label_sums", r["label_sums"][0])
                if any(x != loop_ref["label_sums"] for x in r["label_sums"]):
                    raise Failure(f"{label}: label sums {r['label_sums']} != {loop_ref['label_sums']}")
                if "stderr" in r:
                    stderr_seen.setdefault(label, r["stderr"])

            loop_ref = res.setdefault("loop_ref", {})
            warm_page_cache(jpeg_root)
            rl = run_json("(c) local disk", [PY, "-c", LOOP, "fs", jpeg_root, "2"], plain_env)
            loop_check("(c) local disk", rl, 2)
            rbl = run_json("(c) boto3 Dataset", [PY, "-c", LOOP, "boto3", "jpegs/", "1", remote.endpoint,
                                                 mf.BUCKET], plain_env)
            loop_check("(c) boto3 Dataset", rbl, 1)
            res["loop"]["local1"].append(rl["epoch_s"][0])
            res["loop"]["local2"].append(rl["epoch_s"][1])
            res["loop"]["boto3"].append(rbl["epoch_s"][0])
            said = []
            for n in (LOOP_CONCURRENCY if run % 2 == 0 else tuple(reversed(LOOP_CONCURRENCY))):
                c = new_cache(imgs_mount, "s3://data/jpegs/", "256MiB", n)
                label = f"(c) objcache, prefetch_concurrency {n}"
                ro = run_json(label, [PY, "-c", LOOP, "fs", imgs_mount, "2"], c.env)
                loop_check(label, ro, 2)
                so = c.stats()
                c.close()
                if ro["means"] != rl["means"]:
                    raise Failure(f"{label}: batch means {ro['means']} != local {rl['means']}")
                res["loop_cold"][n].append(ro["epoch_s"][0])
                res["loop_warm"][n].append(ro["epoch_s"][1])
                res["loop_gets"][n].append(so["mounts"][0]["remote_requests"])
                said.append(f"objcache@{n} cold {ro['epoch_s'][0]:.2f} s warm {ro['epoch_s'][1]:.2f} s "
                            f"({so['mounts'][0]['remote_requests']} GETs in all)")
            log(f"run {run + 1}/{args.loop_runs}: (c) local {rl['epoch_s'][0]:.2f}/{rl['epoch_s'][1]:.2f} s, "
                f"boto3 {rbl['epoch_s'][0]:.2f} s, " + ", ".join(said))

        # ---- one diagnostic cold epoch (not in the medians): the gate sampled
        w = BOTO3_WORKERS
        c = new_cache(files_mount, "s3://data/files/", "512MiB")
        with Sampler(c) as smp:
            rd = run_json("diagnostic epoch", epoch_argv("fs", w, files_mount), c.env)
        check("diagnostic epoch", rd)
        sd = c.stats()
        c.close()
        diag = {"epoch_s": rd["epoch_s"], "list_s": rd["list_s"], "samples": smp.samples, "stats": sd, "w": w}
        log(f"diagnostic epoch ({w} readers, gate sampled): {rd['epoch_s']:.2f} s, "
            f"{len(smp.samples)} samples")
        nginx_errors = remote.errors_logged()
    finally:
        for c in caches:
            c.close()
        if remote is not None:
            remote.close()
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    elapsed = time.monotonic() - t_start
    report = render(args, workers, command, started, elapsed, res, cap, one_ms, list_ms, bandwidth, diag,
                    stderr_seen, nginx_errors, shim_id, files_mount, imgs_mount, jbytes, len(jrels), remote.workers)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(report)
    print(report, flush=True)
    if args.out:
        log(f"wrote {args.out} ({elapsed:.0f} s in all)")
    return 0


def render(args, workers, command, started, elapsed, res, cap, one_ms, list_ms, bandwidth, diag,
           stderr_seen, nginx_errors, shim_id, files_mount, imgs_mount, jbytes, njpegs, nginx_workers):
    lat = args.latency_ms / 1e3
    nbytes = args.files * args.size
    t_lat = args.files * lat / CONCURRENCY
    t_bw = nbytes / bandwidth
    limit = max(t_lat, t_bw)
    runs = args.runs
    out = []
    out.append("## The fetcher: cold epochs through a remote with latency (bench_fetch.py)\n")
    out.append(f"{args.files:,} files of {args.size // 1024} KiB ({nbytes / 1e6:.0f} MB) in {args.dirs} folders "
               f"in s3rver, read through nginx adding {args.latency_ms:g} ms to every request "
               f"(`bench/latency_remote.py`, {nginx_workers} worker processes), mounted at `{files_mount}` with `prefetch = \"directory\"` and "
               f"`prefetch_concurrency = {CONCURRENCY}`, RAM tier only (512 MiB, no spill). Each cold epoch "
               f"starts on a new, empty cache. An epoch: one Python process under the shim forks W readers, "
               f"then (clock started) lists the folders with `os.walk` as ImageFolder does and hands the "
               f"sorted list to the readers; reader w reads files i % W == w with `open().read()`; the "
               f"clock stops when all are done. Median of {runs} runs; every epoch's file count, bytes and "
               f"first bytes are checked.\n")

    if CRASHES:
        out.append(f"**Crashes.** Processes under the shim killed by a signal at exit, after their work "
                   f"was done and "
                   f"checked ({len(CRASHES)}; their measurements are kept):\n")
        for label, sig, err in CRASHES:
            out.append(f"- {label}: {sig}" + (f" (stderr: `{err.splitlines()[-1][:200]}`)" if err else ""))
        out.append("")
    # remote
    out.append("### The remote\n")
    out.append(f"Measured in the same run with curl's parallel mode (whole-object ranged GETs with "
               f"`If-Match`, as objcache sends them; curl shares the 2 cores). One ranged GET took "
               f"{one_ms:.1f} ms. LISTs go to s3rver, which is slow at them (CPU-bound, it reads every "
               f"key's metadata); the remote keeps LIST replies (the bucket does not change during the run) "
               f"and an unmeasured warm-up epoch fills that cache, so a LIST costs the delay, not s3rver's "
               f"CPU. A LIST with delimiter, first (s3rver) and then cached (median of 4): "
               + ", ".join(f"{k} {v[0]:.0f} ms, then {v[1]:.0f} ms" for k, v in list_ms.items()) + ".\n")
    out.append(lr.format_capacity(cap, args.size))
    r32 = next((r for r in cap if r["concurrency"] == CONCURRENCY and r["where"] == "with latency"), None)
    out.append("")
    if r32:
        out.append(f"At concurrency {CONCURRENCY} the remote served {r32['gets_per_s']:,.0f} GETs/s "
                   f"(the link limit is {CONCURRENCY / lat:,.0f}/s) with nginx at {r32['nginx_cpu_pct']:.0f} % of "
                   f"a core; without the delay it carried {max(r['gets_per_s'] for r in cap):,.0f} GETs/s: "
                   f"the remote is not the bottleneck for the GETs below. "
                   f"Bandwidth for the link limit: {bandwidth / 1e6:,.0f} MB/s (the best measured above; "
                   f"the remote has no bandwidth cap, so this is a floor of what it can carry).\n")

    # (a)
    out.append("### a. Cold epoch by W readers\n")
    out.append(f"Link limit = max(objects x latency / concurrency, bytes / bandwidth) = "
               f"max({args.files:,} x {args.latency_ms:g} ms / {CONCURRENCY}, {nbytes / 1e6:.0f} MB / "
               f"{bandwidth / 1e6:,.0f} MB/s) = max({t_lat:.2f}, {t_bw:.2f}) = **{limit:.2f} s**.\n")
    r32 = next((r for r in cap if r["concurrency"] == CONCURRENCY and r["where"] == "with latency"), None)
    practical = args.files / r32["gets_per_s"] if r32 else None
    if practical:
        out.append(f"What the remote itself gave at {CONCURRENCY} in flight (curl, above): {args.files:,} / "
                   f"{r32['gets_per_s']:,.0f} GETs/s = {practical:.2f} s; the column *curl@{CONCURRENCY} / "
                   f"measured* compares with that (information, no target).\n")
    out.append("| readers | cold epoch s (median) | per run | files/s | limit / measured | target | | "
               f"curl@{CONCURRENCY} / measured | listing s | after listing s | data GETs epoch 1 | "
               "all requests epoch 1 | bytes prefetched | warm epoch s | data GETs warm epoch |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for w in workers:
        m = med(res["a"][w])
        ratio = limit / m
        g1 = res["gets1"][w]
        g2 = res["gets2"][w]
        out.append(f"| {w} | {m:.2f} | {' / '.join(f'{x:.2f}' for x in res['a'][w])} | {args.files / m:,.0f} | "
                   f"**{ratio:.2f}** | >= {TARGET_LIMIT} | {verdict(ratio >= TARGET_LIMIT)} | "
                   f"{practical / m if practical else float('nan'):.2f} | {med(res['list_s'][w]):.2f} | "
                   f"{med([a - b for a, b in zip(res['a'][w], res['list_s'][w])]):.2f} | "
                   f"{' / '.join(str(x) for x in g1)} | "
                   f"{' / '.join(str(x) for x in res['all_requests1'][w])} | "
                   f"{med(res['prefetched'][w]) * 100:.0f} % | {med(res['warm'][w]):.3f} | "
                   f"{' / '.join(str(x) for x in g2)} |")
    meds = {w: med(res["a"][w]) for w in workers}
    flat = max(meds.values()) / min(meds.values())
    out.append("")
    out.append(f"Flatness (slowest / fastest median over W = {', '.join(map(str, workers))}): **{flat:.2f}** "
               f"(target <= {TARGET_FLAT}): {verdict(flat <= TARGET_FLAT)}.")
    all_g1 = [x for w in workers for x in res["gets1"][w]]
    all_g2 = [x for w in workers for x in res["gets2"][w]]
    out.append(f"Data GETs (`mounts[0].remote_requests`): epoch 1 {min(all_g1)}..{max(all_g1)} "
               f"(expected {args.files}: {verdict(all(x == args.files for x in all_g1))}), warm epoch "
               f"{min(all_g2)}..{max(all_g2)} (expected 0: {verdict(all(x == 0 for x in all_g2))}). "
               f"*All requests* adds LIST/HEAD. Errors counted by the cache: "
               f"{max(x for w in workers for x in res['errors'][w])} at most per epoch.\n")
    stalls = [(i, w, x) for w in workers for i, x in enumerate(res["a"][w]) if x > max(10.0, 3 * meds[w])]
    extra = any(x != args.files for x in all_g1)
    if stalls:
        out.append("Stalled cold epochs (over 3x their median and 10 s; in the medians above):\n")
        for i, w, x in stalls:
            out.append(f"- run {i + 1}, {w} readers: {x:.2f} s; each reader's read time "
                       f"{', '.join(f'{t:.2f}' for t in res['readers'][w][i])} s; "
                       f"{res['gets1'][w][i]} data GETs")
        out.append("")
    if stalls or extra:
        out.append("Why there are extra GETs or a stall (reproduced on its own while writing this benchmark): "
                   "a reader process leaves (`os._exit`, as multiprocessing's workers do) as soon as its "
                   "share is read, while its own directory-prefetch GETs are still in flight. Their fill "
                   "claims die with it. Once it is gone, a waiter takes the claim over and GETs the page "
                   "again (an extra GET). While it is an unreaped zombie, `kill(pid, 0)` still succeeds, so "
                   "the claim looks alive and waiters sleep until `fill_deadline` (120 s) runs out; the "
                   "parent here reaps its readers in order, so a zombie can outlive the reader that waits "
                   "for it.\n")

    # (b)
    out.append("### b. Without the accelerator: boto3\n")
    mb = med(res["boto3"])
    mo = meds[BOTO3_WORKERS]
    rb = mb / mo
    out.append(f"The same epoch with {BOTO3_WORKERS} reader processes, each with its own boto3 client (made "
               f"before the clock starts), `get_object` per file through the same remote, listing with "
               f"ListObjectsV2 ({med(res['boto3_list_s']):.2f} s).\n")
    out.append("| readers | boto3 s (median) | per run | files/s | objcache cold s | boto3 / objcache | target | |")
    out.append("|---|---|---|---|---|---|---|---|")
    out.append(f"| {BOTO3_WORKERS} | {mb:.2f} | {' / '.join(f'{x:.2f}' for x in res['boto3'])} | "
               f"{args.files / mb:,.0f} | {mo:.2f} | **{rb:.1f}** | >= {TARGET_BOTO3:g} | "
               f"{verdict(rb >= TARGET_BOTO3)} |")
    out.append("")

    # (c)
    if res["loop"]["local1"]:
        L = {k: med(v) for k, v in res["loop"].items()}
        out.append("### c. The whole loop: ImageFolder + DataLoader\n")
        out.append(f"{njpegs} random-noise RGB JPEGs (336x336, quality 90, {jbytes / njpegs / 1024:.0f} KiB "
                   f"average, {jbytes / 1e6:.0f} MB) in 10 class folders; torchvision `ImageFolder` "
                   f"(PIL decode + `ToTensor`) and `DataLoader(batch_size=32, shuffle=True, num_workers=2)` "
                   f"(fork), no model; each epoch's sample count, label sum and batch means are checked "
                   f"(objcache's against local disk's). Epoch 1 includes building the dataset (the listing); "
                   f"epoch 2 is the same process again. Objcache is mounted at `{imgs_mount}` (256 MiB, new "
                   f"cache per run). {len(res['loop']['local1'])} runs (`--loop-runs`); each run measures local "
                   f"disk, boto3 and objcache one after another, and a ratio is taken within a run. "
                   f"Objcache runs {len(LOOP_CONCURRENCY)} times in each run: with `prefetch_concurrency = "
                   f"{LOOP_CONCURRENCY[0]}` (the default, as in (a)) and with "
                   f"{' and '.join(str(n) for n in LOOP_CONCURRENCY[1:])}, in alternating order. The shuffled "
                   f"sampler reads at random while the prefetch goes in listing order, so a worker's first "
                   f"reads miss (about 20 ms each) until most of the set is in: the cold epoch pays about "
                   f"the time to fetch the set, {njpegs} x {args.latency_ms:g} ms / concurrency.\n")
        # Each run measures local disk and objcache side by side: the verdict is
        # the median of the per-run ratios; the ratio of the medians is shown too.
        lp = res["loop"]
        boto_r = [b / l for b, l in zip(lp["boto3"], lp["local1"])]

        def runs(xs):
            return " / ".join(f"{x:.2f}" for x in xs)
        out.append("| epoch | seconds (median) | per run | / local (median of per-run ratios) | per-run ratios "
                   "| median / median | target | |")
        out.append("|---|---|---|---|---|---|---|---|")
        out.append(f"| (i) local disk (page cache warm), epoch 1 | {L['local1']:.2f} | {runs(lp['local1'])} | 1.00 | | | | |")
        out.append(f"| (i) local disk, epoch 2 | {L['local2']:.2f} | {runs(lp['local2'])} | 1.00 | | | | |")
        out.append(f"| (ii) boto3 `get_object` per sample | {L['boto3']:.2f} | {runs(lp['boto3'])} | {med(boto_r):.2f} "
                   f"| {runs(boto_r)} | {L['boto3'] / L['local1']:.2f} | | |")
        numerals = iter(("iii", "iv", "v", "vi", "vii", "viii"))
        for n in LOOP_CONCURRENCY:
            cold, warm = res["loop_cold"][n], res["loop_warm"][n]
            cold_r = [c / l for c, l in zip(cold, lp["local1"])]
            warm_r = [w / l for w, l in zip(warm, lp["local2"])]
            cr, wr = med(cold_r), med(warm_r)
            out.append(f"| ({next(numerals)}) objcache cold (epoch 1, new cache), prefetch_concurrency {n} | "
                       f"{med(cold):.2f} | {runs(cold)} | **{cr:.2f}** | {runs(cold_r)} | "
                       f"{med(cold) / L['local1']:.2f} | <= {TARGET_COLD} | {verdict(cr <= TARGET_COLD)} |")
            out.append(f"| ({next(numerals)}) objcache warm (epoch 2, same cache), prefetch_concurrency {n} | "
                       f"{med(warm):.2f} | {runs(warm)} | **{wr:.2f}** | {runs(warm_r)} | "
                       f"{med(warm) / L['local2']:.2f} | <= {TARGET_WARM} | {verdict(wr <= TARGET_WARM)} |")
        out.append("")
        out.append(f"Cold is compared with local epoch 1, warm with local epoch 2 (same place in a process's "
                   f"life). Data GETs over both objcache epochs: "
                   + "; ".join(f"at {n}: {' / '.join(str(x) for x in res['loop_gets'][n])}" for n in LOOP_CONCURRENCY)
                   + f" (expected {njpegs}).\n")
        out.append(f"The time to fetch the whole set with every slot busy ({njpegs} x {args.latency_ms:g} ms / "
                   f"concurrency) against local disk's epoch 1 ({L['local1']:.2f} s): "
                   + ", ".join(f"{n}: {njpegs * lat / n:.2f} s ({njpegs * lat / n / L['local1']:.2f})"
                               for n in LOOP_CONCURRENCY)
                   + ". While it lasts, each read of a worker misses with the probability that its file is "
                   "not in yet and then waits a round trip; the cold epoch's excess over local disk follows "
                   "it.\n")

    # diagnostic
    s = diag["samples"]
    st = diag["stats"]
    out.append("### Diagnostic: the gate during one more cold epoch\n")
    if s:
        infl = [x[1] for x in s]
        busy = [x for x in s if x[2] < args.files]
        out.append(f"One more cold epoch with {diag['w']} readers (not in the medians: `cachectl stats --json` "
                   f"polled every ~50 ms while it ran, which costs CPU): {diag['epoch_s']:.2f} s "
                   f"(listing {diag['list_s']:.2f} s). `gets_in_flight` over {len(s)} samples: mean "
                   f"{statistics.mean(infl):.1f}, max {max(infl)}; while GETs were still to come "
                   f"({len(busy)} samples) mean {statistics.mean([x[1] for x in busy]) if busy else 0:.1f}. "
                   f"End of epoch: {st['mounts'][0]['remote_requests']} data GETs, "
                   f"{st['prefetched_bytes'] / max(1, st['remote_bytes']) * 100:.0f} % of remote bytes "
                   f"prefetched, {st['misses']} misses, {st['ram_hits']} RAM hits.\n")
        out.append("| t (s) | gets_in_flight | data GETs so far | prefetched MB |")
        out.append("|---|---|---|---|")
        step = max(1, len(s) // 16)
        for x in s[::step]:
            out.append(f"| {x[0]:.2f} | {x[1]} | {x[2]} | {x[3] / 1e6:.1f} |")
        out.append("")

    if stderr_seen or nginx_errors:
        out.append("Messages seen (first per kind):\n")
        for k, v in stderr_seen.items():
            out.append(f"- {k}: `{v.splitlines()[0][:300]}`")
        if nginx_errors:
            out.append(f"- nginx error log: {len(nginx_errors)} lines, first `{nginx_errors[0][:300]}`")
        out.append("")
    out.append(f"Machine: {machine()}; load average at the end {os.getloadavg()[0]:.1f} "
               f"(other work shares it, so numbers are noisy). Tree: {tree_state()}; {shim_id}. "
               f"Date: {started:%Y-%m-%d %H:%M} UTC; the whole run took {elapsed:.0f} s.")
    out.append("")
    out.append(f"Reproduce: `{command}` (or `make bench`).")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print(f"bench_fetch: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
