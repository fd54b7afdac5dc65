# SPDX-License-Identifier: Apache-2.0
"""What the benchmarks in bench/ share: the data sets and their upload, a
new empty objcache cache per epoch, the epoch program (forks W readers,
lists, reads), the 20 ms remote checked and measured, the machine and tree
they ran on, and the result files (Markdown for people, json for report.py).

Helpers only: it runs no benchmark, sets no target (bench/targets.py does)
and prints nothing but progress to stderr.
"""
import concurrent.futures
import datetime
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "preload"))
sys.path.insert(0, os.path.join(REPO, "bench"))
os.environ.setdefault("OBJCACHE_TEST_SOURCE_DIR", os.path.join(REPO, "tests"))
import latency_remote as lr  # noqa: E402
import mount_fixture as mf  # noqa: E402
import targets  # noqa: E402

PY = "/usr/bin/python3"
CONCURRENCY = targets.DEFAULT_CONCURRENCY


class Failure(Exception):
    """A step failed or a read returned wrong bytes: the benchmark stops."""


def logger(name):
    def log(msg):
        print(f"{name}: {msg}", file=sys.stderr, flush=True)
    return log


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def verdict(target_id, value):
    return "MET" if targets.met(target_id, value) else "**MISSED**"


# ---------------------------------------------------------------- the data

def make_files(root, files, size, classes, seed=11):
    """files random files of size bytes in `classes` folders; returns the
    relative paths (sorted), {rel: sha256} and the XOR of first-8-byte words."""
    rng = random.Random(seed)
    rels, shas, sample = [], {}, 0
    per = (files + classes - 1) // classes
    for i in range(files):
        rel = os.path.join(f"class{i // per:02d}", f"img{i:05d}.bin")
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = rng.randbytes(size)
        with open(path, "wb") as f:
            f.write(data)
        rels.append(rel)
        shas[rel] = hashlib.sha256(data).hexdigest()
        sample ^= int.from_bytes(data[:8], "little")
    rels.sort()
    return rels, shas, sample


def upload(server, root, rels, prefix, workers=8):
    client = server.client()

    def put(rel):
        with open(os.path.join(root, rel), "rb") as f:
            client.put_object(Bucket=mf.BUCKET, Key=prefix + rel, Body=f.read())

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for fut in [pool.submit(put, rel) for rel in rels]:
            fut.result()


def warm_page_cache(root):
    for d, _, files in os.walk(root):
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                while fh.read(1 << 20):
                    pass


# ---------------------------------------------------------------- the build and the run

def build_paths(build_arg, log, *names):
    """The absolute paths of build/NAME for each name; exits when one is missing."""
    build = build_arg if os.path.isabs(build_arg) or os.path.isdir(build_arg) else os.path.join(REPO, build_arg)
    paths = [os.path.join(os.path.abspath(build), n) for n in names]
    for p in paths:
        if not os.path.exists(p):
            log(f"no {p} (run `ninja -C {build_arg}`)")
            sys.exit(1)
    return paths


def command_line(script):
    """The command that ran this benchmark, for its Reproduce line."""
    return f"/usr/bin/python3 bench/{script} " + " ".join(
        a if re.fullmatch(r"[\w./=,-]+", a) else repr(a) for a in sys.argv[1:])


def copy_shim(shim, work):
    """A copy of the shim in work (a rebuild of build/ during the run cannot
    swap it under the readers) and the line that identifies it."""
    shim = shutil.copy2(shim, os.path.join(work, "libobjcache_preload.so"))
    with open(shim, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    built = datetime.datetime.fromtimestamp(os.stat(shim).st_mtime, datetime.timezone.utc)
    return shim, f"libobjcache_preload.so sha256 {digest}, built {built:%Y-%m-%d %H:%M} UTC"


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {model or 'unknown CPU'}, "
            f"{mem}, Linux {platform.release()}")


def tree_state():
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "preload", "libcache"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"
    return head + (" with uncommitted changes in preload/ or libcache/" if dirty else "")


# ---------------------------------------------------------------- processes under the shim

# Processes killed by a signal after they printed their result (the shim
# crashing at exit): kept, and listed in the report.
CRASHES = []



def report_footer(stderr_seen, nginx_errors, shim_id, started, elapsed, command):
    """The closing lines of a benchmark's Markdown: messages seen (first per
    kind), the machine and tree, and the command that reproduces it."""
    out = []
    if stderr_seen or nginx_errors:
        out.append("Messages seen (first per kind):\n")
        for k, v in stderr_seen.items():
            out.append(f"- {k}: `{v.splitlines()[0][:300]}`")
        if nginx_errors:
            out.append(f"- nginx error log: {len(nginx_errors)} lines, first `{nginx_errors[0][:300]}`")
        out.append("")
    out.append(f"Machine: {machine()}; load average at the end {os.getloadavg()[0]:.1f} (other work shares "
               f"it, so numbers are noisy). Tree: {tree_state()}; {shim_id}. Date: {started:%Y-%m-%d %H:%M} "
               f"UTC; the whole run took {elapsed:.0f} s.")
    out.append("")
    out.append(f"Reproduce: `{command}` (or `make bench`).")
    return out

def note_crash(label, p):
    try:
        sig = signal.Signals(-p.returncode).name
    except ValueError:
        sig = f"signal {-p.returncode}"
    CRASHES.append((label, sig, p.stderr.strip()[-300:]))
    print(f"{label}: killed by {sig} after it finished its work", file=sys.stderr, flush=True)


def crashes_markdown():
    if not CRASHES:
        return []
    out = [f"**Crashes.** Processes under the shim killed by a signal at exit, after their work was done and "
           f"checked ({len(CRASHES)}; their measurements are kept):\n"]
    for label, sig, err in CRASHES:
        out.append(f"- {label}: {sig}" + (f" (stderr: `{err.splitlines()[-1][:200]}`)" if err else ""))
    out.append("")
    return out


def run_json(label, argv, env, timeout=900):
    """Runs argv; its last stdout line as json (plus "stderr" if it wrote any)."""
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
    """concurrency None: no prefetch_concurrency line (the library's default,
    an adaptive limit under a ceiling of 256)."""
    line = "" if concurrency is None else f"prefetch_concurrency = {concurrency}"
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
{line}

[[mount]]
path = "{mount}"
source = "{source}"
prefetch = "directory"
""")


def cache_stats(cachectl, config, shm):
    """cachectl stats --json, or None if it is not there or fails."""
    if not os.path.exists(cachectl):
        return None
    env = dict(os.environ, OBJCACHE_SHM_DIR=shm)
    env.pop("LD_PRELOAD", None)
    p = subprocess.run([cachectl, "--config", config, "stats", "--json"], env=env,
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        return None
    try:
        return json.loads(p.stdout)
    except ValueError:
        return None


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


# One epoch: python3 -c EPOCH MODE W ROOT_OR_PREFIX [ENDPOINT BUCKET]
# MODE "fs": ROOT is the mount (run under the shim) or a local folder;
# "boto3": PREFIX in BUCKET at ENDPOINT. Forks W readers first (a boto3
# reader makes its client then), waits until all are ready, then starts the
# clock, lists, hands each reader the sorted list, and stops the clock when
# all have reported. Prints one JSON line. A reader leaves with os._exit as
# soon as its share is read (as multiprocessing's workers do), possibly
# while its own prefetch GETs are in flight; the parent reaps the readers
# in order.
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


def epoch_argv(mode, w, root, endpoint):
    return [PY, "-c", EPOCH, mode, str(w), root, endpoint, mf.BUCKET]


def s3_client(endpoint):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=mf.ACCESS_KEY,
                        aws_secret_access_key=mf.SECRET_KEY, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


# ---------------------------------------------------------------- the 20 ms remote

CAPACITY_PLAN = ((1, 50), (32, 2000), (64, 3000), (128, 4000))


class Remote:
    """latency_remote in front of server (objects uploaded before), checked
    (check_semantics: ranges, ETag, If-Match, HEAD, LIST) and measured with
    curl (capacity) in the run that uses it; with list_prefixes, the LIST
    objcache sends (with delimiter) timed, first and cached."""

    def __init__(self, server, work, latency_ms, local, rels, prefix, plan=CAPACITY_PLAN, list_prefixes=()):
        self.latency_ms = latency_ms
        self.remote = lr.LatencyRemote(server.dir, server.port, latency_ms, workdir=work, cache_lists=True)
        self.endpoint = self.remote.endpoint
        self.workers = self.remote.workers
        md5 = {}
        for rel in rels[:500]:
            with open(os.path.join(local, rel), "rb") as f:
                md5[rel] = (os.fstat(f.fileno()).st_size, hashlib.md5(f.read()).hexdigest())
        with open(os.path.join(local, rels[0]), "rb") as f:
            d0 = f.read()
        self.one_ms = lr.check_semantics(self.remote, mf.BUCKET, prefix + rels[0], d0, md5[rels[0]][1])
        objs = [(f"/{mf.BUCKET}/{prefix}{rel}", size, m) for rel, (size, m) in md5.items()]
        self.cap = lr.capacity(self.remote, objs, plan=plan, tmpdir=work)
        self.bandwidth = max(r["mb_per_s"] for r in self.cap) * 1e6
        self.list_ms = {}
        if list_prefixes:
            rc = s3_client(self.endpoint)
            for label, p in list_prefixes:
                ts = []
                for _ in range(5):
                    t = time.perf_counter()
                    rc.list_objects_v2(Bucket=mf.BUCKET, Prefix=p, Delimiter="/")
                    ts.append((time.perf_counter() - t) * 1e3)
                self.list_ms[label] = (ts[0], med(ts[1:]))

    def at(self, concurrency):
        return next((r for r in self.cap if r["concurrency"] == concurrency and r["where"] == "with latency"), None)

    def summary(self):
        return (f"remote {self.endpoint}: one GET {self.one_ms:.1f} ms; If-Match "
                f"{'honoured' if self.remote.if_match_checked else 'NOT CHECKED'}; "
                + "; ".join(f"c={r['concurrency']} {r['where']}: {r['gets_per_s']:,.0f} GETs/s "
                            f"p50 {r['p50_ms']:.1f} ms" for r in self.cap)
                + ("; LIST " + ", ".join(f"{k} {v[0]:.0f} ms, cached {v[1]:.0f} ms" for k, v in self.list_ms.items())
                   if self.list_ms else ""))

    def if_match_text(self):
        if self.remote.if_match_checked:
            return ("It honours If-Match as S3 does (checked in this run: a GET with another ETag got 412 "
                    "PreconditionFailed, one with the object's ETag was served).")
        return "Its If-Match was NOT checked in this run (no object ETag known to the remote)."

    def markdown(self, size, concurrency=CONCURRENCY):
        """The '### The remote' section of a report."""
        out = ["### The remote\n"]
        text = (f"nginx adding {self.latency_ms:g} ms to every request in front of s3rver "
                f"(`bench/latency_remote.py`, {self.workers} worker processes, LIST replies kept). "
                f"{self.if_match_text()} Measured in the same run with curl's parallel mode (whole-object "
                f"ranged GETs with `If-Match`, as objcache sends them; curl shares the cores). One ranged GET "
                f"took {self.one_ms:.1f} ms.")
        if self.list_ms:
            text += (" LISTs go to s3rver, which is slow at them (CPU-bound, it reads every key's metadata); "
                     "the remote keeps LIST replies (the bucket does not change during the run) and an "
                     "unmeasured warm-up epoch fills that cache, so a LIST costs the delay, not s3rver's CPU. "
                     "A LIST with delimiter, first (s3rver) and then cached (median of 4): "
                     + ", ".join(f"{k} {v[0]:.0f} ms, then {v[1]:.0f} ms" for k, v in self.list_ms.items()) + ".")
        out.append(text + "\n")
        out.append(lr.format_capacity(self.cap, size))
        out.append("")
        r = self.at(concurrency)
        if r:
            out.append(f"At concurrency {concurrency} the remote served {r['gets_per_s']:,.0f} GETs/s (the link "
                       f"limit is {concurrency / (self.latency_ms / 1e3):,.0f}/s) with nginx at "
                       f"{r['nginx_cpu_pct']:.0f} % of a core; without the delay it carried "
                       f"{max(x['gets_per_s'] for x in self.cap):,.0f} GETs/s: the remote is not the bottleneck "
                       f"for the GETs below.\n")
        return out

    def json(self):
        return {"latency_ms": self.latency_ms, "nginx_workers": self.workers, "one_get_ms": self.one_ms,
                "if_match_checked": self.remote.if_match_checked, "capacity": self.cap,
                "list_ms": self.list_ms}

    def errors_logged(self):
        return self.remote.errors_logged()

    def close(self):
        self.remote.close()


# ---------------------------------------------------------------- results

def figure(value, shown, at, others=(), note=""):
    """One measured figure for a target: the value judged, how it reads,
    the settings it was measured at, and the same figure at other settings
    (information: [(setting, shown)])."""
    f = {"value": value, "shown": shown, "at": at}
    if others:
        f["others"] = [{"at": a, "shown": s} for a, s in others]
    if note:
        f["note"] = note
    return f


def json_path(out, json_arg=None):
    """Where the json goes: --json, else --out with .json for .md, else none."""
    if json_arg:
        return json_arg
    if out:
        return (out[:-3] if out.endswith(".md") else out) + ".json"
    return None


def write_results(bench, script, md, out, json_arg, figures, *, command, started, elapsed, runs,
                  shim_id=None, remote=None, information=None):
    """Prints md and writes it to out; writes the json next to it (json_path)."""
    print(md, flush=True)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            f.write(md)
    jp = json_path(out, json_arg)
    if jp:
        doc = {"bench": bench, "script": f"bench/{script}",
               "markdown": os.path.relpath(os.path.abspath(out), os.path.dirname(os.path.abspath(jp))) if out else None,
               "command": command, "date": f"{started:%Y-%m-%d %H:%M} UTC", "elapsed_s": round(elapsed),
               "tree": tree_state(), "machine": machine(), "load_average": round(os.getloadavg()[0], 2),
               "runs": runs, "shim": shim_id, "figures": figures}
        if remote is not None:
            doc["remote"] = remote
        if information:
            doc["information"] = information
        os.makedirs(os.path.dirname(os.path.abspath(jp)), exist_ok=True)
        tmp = jp + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, jp)
    return jp
