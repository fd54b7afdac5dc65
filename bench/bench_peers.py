# SPDX-License-Identifier: Apache-2.0
"""objcache against the tools a user would pick instead (issue 6), on the
same data in the same run, through the same remote with latency.

  /usr/bin/python3 bench/bench_peers.py [--build build] [--runs 3]
      [--out bench/results/peers.md] [--plots bench/results]

The data: --files (2,000) files of --size (100 KiB) in --dirs (10) folders,
uploaded to s3rver under data/files/ and kept on local disk too. The remote
is nginx adding --latency-ms (20) to every request in front of that s3rver
(bench/latency_remote.py, LIST replies kept, cache_lists=True); its capacity
is measured in the same run. One unmeasured warm-up pass lists the bucket
the way every method lists it (objcache, boto3, s3fs and rclone send
different LIST query strings), so s3rver's slow, CPU-bound LIST is not what
is measured; a LIST then costs the delay, as a GET does.

The methods:
  local     the files on local disk, page cache warm (the limit);
  objcache  the LD_PRELOAD shim on a mount, prefetch = "directory",
            prefetch_concurrency = 32, RAM tier only, a new empty cache for
            every cold epoch;
  s3fs      s3fs-fuse (Debian) with -o use_cache=DIR, a new mount and an
            empty cache dir for every cold epoch;
  rclone    rclone mount (Debian) with --vfs-cache-mode full, a new mount
            and an empty cache dir for every cold epoch;
  boto3     get_object per file, no cache (one client per reader).

An epoch (benchlib.py's EPOCH, the same code for every method): one
process forks W readers (for boto3 each makes its client), then, clock
started, lists the folders (os.walk; ListObjectsV2 for boto3) and hands the
sorted list to the readers; reader w reads files i % W == w with
open().read() (get_object for boto3); the clock stops when all are done.
Every epoch's file count, bytes and first bytes are checked.
Measurements, per method and W: (A) the cold epoch (new cache, new mount)
and the warm epoch (a second epoch on the same cache and mount); (B) warm
files/s. Medians of --runs runs; --limits reduces the runs and reader
counts of the slow methods to keep a run short, and the report says so.
boto3 has no cache: its epochs all do the same GETs, so one epoch is
measured per run and W and shown as both cold and warm.

The remote gives S3's ETag (the md5) on the GETs nginx serves statically
(latency_remote.py maps each key to the md5 s3rver stored): rclone's VFS
cache needs it, or it fetches every file again on the warm epoch. It
honours If-Match on them as S3 does (checked in the run).

Every FUSE mount has a start timeout and every epoch a timeout; mounts are
unmounted (fusermount -u, else umount -l) and servers stopped in finally
blocks and on SIGTERM/SIGINT. A method that cannot be made to work is
reported with its exact error, and the run goes on with the others.
Writes the Markdown report (--out), results/peers.json beside it for
bench/report.py (information only: no target is set on the peers) and
three PNG plots (--plots); asserts nothing about speed.
"""
import argparse
import datetime
import hashlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402  (sets up tests/preload and bench on sys.path)
import latency_remote as lr  # noqa: E402
import mount_fixture as mf  # noqa: E402
from benchlib import machine, make_files, tree_state, upload  # noqa: E402

PY = bl.PY
CONCURRENCY = bl.CONCURRENCY
METHODS = ["local", "objcache", "s3fs", "rclone", "boto3"]
LABEL = {
    "local": "local disk (page cache warm)",
    "objcache": "objcache (LD_PRELOAD)",
    "s3fs": "s3fs-fuse, use_cache",
    "rclone": "rclone mount, vfs-cache-mode full",
    "boto3": "boto3 get_object (no cache)",
}
SHORT = {"local": "local disk", "objcache": "objcache", "s3fs": "s3fs-fuse", "rclone": "rclone mount",
         "boto3": "boto3"}
COLOR = {"local": "#444444", "objcache": "#1f77b4", "s3fs": "#d62728", "rclone": "#2ca02c", "boto3": "#ff7f0e"}
# No reductions by default: every method gets --runs runs (the report asks
# for medians of 3). A run at W = 1, 2, 4 takes ~5.5 min for s3fs (two
# round trips per file cold, a HEAD per file warm), ~2 min for rclone and
# ~1.4 min for boto3 on 2 cores; --limits "s3fs=1,rclone=2,boto3=1" gives a
# quicker, reduced run (and the report says so).
DEFAULT_LIMITS = ""
MOUNT_TIMEOUT = 30
EPOCH_TIMEOUT = 600
S3FS_OPTS = ["use_path_request_style", "parallel_count=32", "multireq_max=32", "max_stat_cache_size=100000",
             "enable_noobj_cache", "ro", "retries=2", "connect_timeout=10", "readwrite_timeout=60"]
RCLONE_OPTS = ["--vfs-cache-mode", "full", "--read-only", "--use-server-modtime", "--dir-cache-time", "1h",
               "--low-level-retries", "2", "--retries", "1", "--timeout", "60s", "--log-level", "NOTICE"]


def log(msg):
    print(f"bench_peers: {msg}", file=sys.stderr, flush=True)


class PeerError(Exception):
    """A method that could not be made to work: the message is reported."""


# ---------------------------------------------------------------- FUSE mounts

ACTIVE_MOUNTS = []


def mounted(path):
    """Whether path is a mount point, from /proc/self/mountinfo (does not
    touch the file system, which may hang)."""
    path = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4].encode().decode("unicode_escape")
                if mp == path:
                    return True
    except OSError:
        pass
    return False


def tail(path, n=1500):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:].strip()
    except OSError:
        return ""


class FuseMount:
    """A FUSE daemon in the foreground as our child, mounted at mountpoint
    within MOUNT_TIMEOUT or PeerError (with its output)."""

    def __init__(self, name, argv, mountpoint, env, log_path):
        self.name, self.argv, self.mountpoint, self.log_path = name, argv, mountpoint, log_path
        os.makedirs(mountpoint, exist_ok=True)
        self.logf = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        ACTIVE_MOUNTS.append(self)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while time.monotonic() < deadline:
            if mounted(mountpoint):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        rc = self.proc.poll()
        self.close()
        raise PeerError(f"{name} did not mount within {MOUNT_TIMEOUT} s "
                        f"({'exit ' + str(rc) if rc is not None else 'still running'}); command "
                        f"`{' '.join(argv)}`; output: {tail(log_path) or '(none)'}")

    def close(self):
        """Unmount (fusermount -u, then umount -l) and end the daemon."""
        if mounted(self.mountpoint):
            for cmd in (["fusermount3", "-u", self.mountpoint], ["fusermount", "-u", self.mountpoint],
                        ["umount", "-l", self.mountpoint]):
                if not shutil.which(cmd[0]):
                    continue
                try:
                    subprocess.run(cmd, capture_output=True, timeout=15)
                except subprocess.TimeoutExpired:
                    continue
                if not mounted(self.mountpoint):
                    break
        p = self.proc
        if p is not None and p.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    p.send_signal(sig)
                    p.wait(timeout=wait)
                    break
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    continue
        if mounted(self.mountpoint):  # the daemon is gone: a lazy unmount frees the point
            subprocess.run(["umount", "-l", self.mountpoint], capture_output=True, timeout=15)
        self.proc = None
        self.logf.close()
        if self in ACTIVE_MOUNTS:
            ACTIVE_MOUNTS.remove(self)


def s3fs_mount(work, endpoint, tag):
    mnt = os.path.join(work, f"mnt-s3fs-{tag}")
    cache = tempfile.mkdtemp(prefix="s3fs-cache-", dir=work)
    passwd = os.path.join(work, "s3fs.passwd")
    if not os.path.exists(passwd):
        with open(os.open(passwd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(f"{mf.ACCESS_KEY}:{mf.SECRET_KEY}\n")
    argv = ["s3fs", f"{mf.BUCKET}:/files", mnt, "-f", "-o", f"url={endpoint}", "-o", f"passwd_file={passwd}",
            "-o", f"use_cache={cache}"]
    for o in S3FS_OPTS:
        argv += ["-o", o]
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    m = FuseMount("s3fs", argv, mnt, env, os.path.join(work, "s3fs.log"))
    m.cache_dir = cache
    return m


def rclone_mount(work, endpoint, tag):
    mnt = os.path.join(work, f"mnt-rclone-{tag}")
    cache = tempfile.mkdtemp(prefix="rclone-cache-", dir=work)
    conf = os.path.join(work, "rclone.conf")
    if not os.path.exists(conf):
        with open(os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(f"[peer]\ntype = s3\nprovider = Other\nendpoint = {endpoint}\n"
                    f"access_key_id = {mf.ACCESS_KEY}\nsecret_access_key = {mf.SECRET_KEY}\n"
                    f"region = us-east-1\nforce_path_style = true\n")
    argv = ["rclone", "mount", f"peer:{mf.BUCKET}/files", mnt, "--config", conf, "--cache-dir", cache] + RCLONE_OPTS
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "AWS_CA_BUNDLE")}
    m = FuseMount("rclone", argv, mnt, env, os.path.join(work, "rclone.log"))
    m.cache_dir = cache
    return m


def close_mount(m):
    if m is not None:
        m.close()
        shutil.rmtree(getattr(m, "cache_dir", ""), ignore_errors=True)


# ---------------------------------------------------------------- running epochs

def check_etag(remote, rel, md5):
    import urllib.request
    req = urllib.request.Request(f"{remote.endpoint}/{mf.BUCKET}/files/{rel}", headers={"Range": "bytes=0-9"})
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.headers.get("ETag") != f'"{md5}"':
            raise bl.Failure(f"bench_peers: a GET through the remote gave ETag {r.headers.get('ETag')!r}, "
                             f"expected the md5 {md5}")


def run_epoch(label, argv, env, expect, timeout=EPOCH_TIMEOUT):
    """One epoch (bench_fetch's EPOCH); PeerError on a failure, a timeout or
    wrong bytes."""
    try:
        r = bl.run_json(label, argv, env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PeerError(f"{label}: no result within {timeout} s") from None
    except bl.Failure as e:
        raise PeerError(str(e)) from None
    got = {k: r.get(k) for k in expect}
    if got != expect:
        raise PeerError(f"{label}: read {got}, expected {expect}")
    return r


def secs(x):
    return f"{x:.3f}" if x < 1 else f"{x:.2f}"


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the meson build directory")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=100 * 1024)
    ap.add_argument("--dirs", type=int, default=10)
    ap.add_argument("--workers", default="1,2,4", help="reader counts W")
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--limits", default=DEFAULT_LIMITS,
                    help="fewer runs or readers for slow methods: METHOD=RUNS[@W/W...],... "
                         f"(default {DEFAULT_LIMITS}; '' for none)")
    ap.add_argument("--out", default=None, help="write the Markdown report here (and the json beside it)")
    ap.add_argument("--json", default=None, help="write the json here (default: --out with .json)")
    ap.add_argument("--plots", default=None, help="write peers_*.png into this directory")
    args = ap.parse_args()
    workers = sorted({int(x) for x in args.workers.split(",")})
    methods = [m for m in METHODS if m in args.methods.split(",")]
    if min(args.runs, args.files, args.dirs, *workers) < 1 or args.size < 8 or not methods:
        ap.error("--runs, --files, --dirs, --workers >= 1, --size >= 8, and a known method")
    plan = {m: {"runs": args.runs, "workers": workers} for m in methods}
    for item in filter(None, args.limits.split(",")):
        mm = re.fullmatch(r"(\w+)=(\d+)(?:@(\d+(?:/\d+)*))?", item.strip())
        if not mm or mm.group(1) not in METHODS or int(mm.group(2)) < 1:
            ap.error(f"--limits: bad item {item!r} (METHOD=RUNS[@W/W...])")
        if mm.group(1) in plan:
            plan[mm.group(1)]["runs"] = min(args.runs, int(mm.group(2)))
            if mm.group(3):
                plan[mm.group(1)]["workers"] = sorted({int(x) for x in mm.group(3).split("/")})

    shim = cachectl = None
    if "objcache" in methods:
        shim, cachectl = bl.build_paths(args.build, log, "preload/libobjcache_preload.so", "tools/cachectl")
    command = bl.command_line("bench_peers.py")
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()

    def on_signal(sig, _frame):
        raise SystemExit(f"bench_peers: {signal.Signals(sig).name}, cleaning up")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    work = tempfile.mkdtemp(prefix="objcache-bench-peers-")
    mount_root = f"/mnt/objcache-bench-peers-{os.getpid()}"
    files_mount = mount_root + "/files"
    server = remote = None
    caches = []
    res = {m: {"cold": {w: [] for w in plan[m]["workers"]}, "warm": {w: [] for w in plan[m]["workers"]},
               "list_cold": {w: [] for w in plan[m]["workers"]}, "list_warm": {w: [] for w in plan[m]["workers"]},
               "gets1": {w: [] for w in plan[m]["workers"]}, "gets2": {w: [] for w in plan[m]["workers"]}}
           for m in methods}
    failed = {}
    versions = {}
    warmup_notes = {}
    cap, one_ms, shim_id, nginx_errors, remote_json = [], float("nan"), "", [], None
    try:
        # ---- data
        t = time.monotonic()
        local = os.path.join(work, "files")
        rels, _, sample = make_files(local, args.files, args.size, args.dirs)
        expect = {"files": args.files, "bytes": args.files * args.size, "sample": f"{sample:016x}"}
        server = mf.S3Server(work)
        upload(server, local, rels, "files/")
        log(f"made and uploaded {args.files} files x {args.size} B in {args.dirs} folders "
            f"({time.monotonic() - t:.1f} s)")

        # ---- the remote, checked and measured
        remote = bl.Remote(server, work, args.latency_ms, local, rels, "files/",
                           plan=((1, 50), (32, 2000), (64, 3000)))
        with open(os.path.join(local, rels[0]), "rb") as f:
            check_etag(remote, rels[0], hashlib.md5(f.read()).hexdigest())
        one_ms, cap, remote_json = remote.one_ms, remote.cap, remote.json()
        log(remote.summary())

        plain_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        if "objcache" in methods:
            shim, shim_id = bl.copy_shim(shim, work)
            cachectl = shutil.copy2(cachectl, os.path.join(work, "cachectl"))
        for tool, argv in (("s3fs", ["s3fs", "--version"]), ("rclone", ["rclone", "version"])):
            if tool in methods:
                try:
                    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                    versions[tool] = (p.stdout or p.stderr).strip().splitlines()[0]
                except (OSError, subprocess.TimeoutExpired, IndexError) as e:
                    versions[tool] = f"not runnable: {e}"
        if "s3fs" in methods or "rclone" in methods:
            if not os.path.exists("/dev/fuse"):
                for m in ("s3fs", "rclone"):
                    if m in methods:
                        failed[m] = "no /dev/fuse on this machine"
        for m in ("s3fs", "rclone"):
            if m in methods and m not in failed and not shutil.which(m):
                failed[m] = f"`{m}` is not installed (apt-get install {m}, or make deps)"

        def new_cache():
            c = bl.Cache(work, shim, cachectl, remote.endpoint, files_mount, "s3://data/files/", "512MiB")
            caches.append(c)
            return c

        def close_cache(c):
            c.close()
            caches.remove(c)

        def epoch_argv(mode, w, root):
            return [PY, "-c", bl.EPOCH, mode, str(w), root, remote.endpoint, mf.BUCKET]

        # ---- warm-up, not measured: every method's LISTs into nginx's LIST
        # cache, the OS's caches of the programs, the local files' pages.
        t = time.monotonic()
        bl.warm_page_cache(local)
        run_epoch("warm-up local", epoch_argv("fs", 2, local), plain_env, expect)
        if "objcache" in methods:
            c = new_cache()
            run_epoch("warm-up objcache", epoch_argv("fs", 2, files_mount), c.env, expect)
            close_cache(c)
        if "boto3" in methods:
            import boto3
            from botocore.config import Config
            rc = boto3.client("s3", endpoint_url=remote.endpoint, aws_access_key_id=mf.ACCESS_KEY,
                              aws_secret_access_key=mf.SECRET_KEY, region_name="us-east-1",
                              config=Config(s3={"addressing_style": "path"}))
            for _ in rc.get_paginator("list_objects_v2").paginate(Bucket=mf.BUCKET, Prefix="files/"):
                pass
        for m, mount in (("s3fs", s3fs_mount), ("rclone", rclone_mount)):
            if m not in methods or m in failed:
                continue
            fm = None
            try:
                t1 = time.monotonic()
                fm = mount(work, remote.endpoint, "warmup")
                r = run_epoch(f"warm-up {m} (list only)", [PY, "-c", LIST_ONLY, fm.mountpoint], plain_env,
                              {"files": args.files})
                warmup_notes[m] = f"listing {r['list_s']:.2f} s (mount {time.monotonic() - t1 - r['list_s']:.2f} s)"
            except PeerError as e:
                failed[m] = str(e)
                log(f"{m}: FAILED in the warm-up: {e}")
            finally:
                close_mount(fm)
        log(f"warm-up done ({time.monotonic() - t:.1f} s)")

        # ---- the runs
        for run in range(args.runs):
            for m in methods:
                if m in failed or run >= plan[m]["runs"]:
                    continue
                ws = plan[m]["workers"] if run % 2 == 0 else list(reversed(plan[m]["workers"]))
                for w in ws:
                    label = f"run {run + 1}/{args.runs}: {m}, {w} readers"
                    fm = c = None
                    try:
                        if m == "local":
                            r1 = run_epoch(label + ", epoch 1", epoch_argv("fs", w, local), plain_env, expect)
                            r2 = run_epoch(label + ", epoch 2", epoch_argv("fs", w, local), plain_env, expect)
                        elif m == "objcache":
                            c = new_cache()
                            r1 = run_epoch(label + ", cold", epoch_argv("fs", w, files_mount), c.env, expect)
                            s1 = c.stats()
                            r2 = run_epoch(label + ", warm", epoch_argv("fs", w, files_mount), c.env, expect)
                            s2 = c.stats()
                            res[m]["gets1"][w].append(bl.mount_gets(None, s1))
                            res[m]["gets2"][w].append(bl.mount_gets(s1, s2))
                        elif m == "boto3":
                            r1 = r2 = run_epoch(label, epoch_argv("boto3", w, "files/"), plain_env, expect)
                        else:
                            fm = (s3fs_mount if m == "s3fs" else rclone_mount)(work, remote.endpoint,
                                                                              f"{run}-{w}")
                            r1 = run_epoch(label + ", cold", epoch_argv("fs", w, fm.mountpoint), plain_env, expect)
                            r2 = run_epoch(label + ", warm", epoch_argv("fs", w, fm.mountpoint), plain_env, expect)
                    except PeerError as e:
                        failed[m] = str(e)
                        log(f"{m}: FAILED: {e}")
                        break
                    finally:
                        close_mount(fm)
                        if c is not None:
                            close_cache(c)
                    res[m]["cold"][w].append(r1["epoch_s"])
                    res[m]["warm"][w].append(r2["epoch_s"])
                    res[m]["list_cold"][w].append(r1["list_s"])
                    res[m]["list_warm"][w].append(r2["list_s"])
                    extra = ""
                    if m == "objcache":
                        extra = f" ({res[m]['gets1'][w][-1]} / {res[m]['gets2'][w][-1]} data GETs)"
                    log(f"{label}: cold {r1['epoch_s']:.2f} s, warm {r2['epoch_s']:.3f} s{extra} "
                        f"[{time.monotonic() - t_start:.0f} s in]")
        nginx_errors = remote.errors_logged()
    finally:
        for fm in list(ACTIVE_MOUNTS):
            close_mount(fm)
        for c in list(caches):
            c.close()
        if remote is not None:
            remote.close()
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
        try:
            os.rmdir(mount_root)
        except OSError:
            pass

    elapsed = time.monotonic() - t_start
    ctx = dict(args=args, plan=plan, methods=methods, res=res, failed=failed, versions=versions, cap=cap,
               one_ms=one_ms, command=command, started=started, elapsed=elapsed, shim_id=shim_id,
               nginx_errors=nginx_errors, warmup_notes=warmup_notes, crashes=list(bl.CRASHES),
               if_match=remote_json["if_match_checked"] if remote_json else False)
    plots = []
    if args.plots:
        try:
            plots = make_plots(ctx, args.plots)
        except Exception as e:  # noqa: BLE001  (a missing matplotlib must not lose the numbers)
            log(f"plots FAILED: {type(e).__name__}: {e}")
            ctx["plot_error"] = f"{type(e).__name__}: {e}"
    ctx["plots"] = plots
    report = render(ctx)
    bl.write_results("peers", "bench_peers.py", report, args.out, args.json, {}, command=command, started=started,
                     elapsed=elapsed, runs=args.runs, shim_id=shim_id or None, remote=remote_json,
                     information=information(ctx))
    if args.out:
        log(f"wrote {args.out} ({elapsed:.0f} s in all)")
    return 0


# The warm-up pass over a FUSE mount: the listing only (os.walk as EPOCH does).
LIST_ONLY = r"""
import json, os, sys, time
t0 = time.perf_counter()
n = 0
for d, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    n += len(files)
print(json.dumps({"files": n, "list_s": time.perf_counter() - t0}))
"""


# ---------------------------------------------------------------- plots

def plot_caption(ctx):
    import textwrap
    return "\n".join(textwrap.wrap(f"Reproduce: {ctx['command']}  (or make bench)", 150))


def runs_text(ctx):
    a, plan = ctx["args"], ctx["plan"]
    fewer = [m for m in ctx["methods"] if plan[m]["runs"] != a.runs]
    out = f"median of {a.runs} runs"
    if fewer:
        out += " (" + ", ".join(f"{SHORT[m]} {plan[m]['runs']}" for m in fewer) + ")"
    return out


def make_plots(ctx, outdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(outdir, exist_ok=True)
    a = ctx["args"]
    res, plan = ctx["res"], ctx["plan"]
    ok = [m for m in ctx["methods"] if any(res[m]["cold"][w] for w in plan[m]["workers"])]
    sub = f"{a.files:,} files of {a.size // 1024} KiB, {a.latency_ms:g} ms per request; {runs_text(ctx)}"
    paths = []
    for kind, title, fname in (("cold", "Cold epoch (new cache / new mount)", "peers_cold.png"),
                               ("warm", "Warm epoch (second epoch, same cache / mount)", "peers_warm.png")):
        fig, ax = plt.subplots(figsize=(10, 5.6))
        for m in ok:
            ws = [w for w in plan[m]["workers"] if res[m][kind][w]]
            ys = [med(res[m][kind][w]) for w in ws]
            lab = LABEL[m] + (": one epoch per W" if m == "boto3" else "")
            ax.plot(ws, ys, marker="o", color=COLOR[m], label=lab)
            for x, y in zip(ws, ys):
                ax.annotate(f"{y:.3g}", (x, y), textcoords="offset points",
                            xytext=(5, 4), fontsize=7, color=COLOR[m])
        ax.set_yscale("log")
        ax.set_xscale("log", base=2)
        allw = sorted({w for m in ok for w in plan[m]["workers"]})
        ax.set_xticks(allw)
        ax.set_xticklabels([str(w) for w in allw])
        ax.set_xlabel("reader processes W")
        ax.set_ylabel("epoch seconds (log scale, lower is better)")
        ax.set_title(f"{title}\n{sub}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
        fig.text(0.01, 0.01, plot_caption(ctx), fontsize=6.5, family="monospace")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        p = os.path.join(outdir, fname)
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)

    fig, ax = plt.subplots(figsize=(10, 5.6))
    allw = sorted({w for m in ok for w in plan[m]["workers"]})
    width = 0.8 / max(1, len(allw))
    for j, w in enumerate(allw):
        xs, ys = [], []
        for i, m in enumerate(ok):
            if w in plan[m]["workers"] and res[m]["warm"][w]:
                xs.append(i + (j - (len(allw) - 1) / 2) * width)
                ys.append(a.files / med(res[m]["warm"][w]))
        bars = ax.bar(xs, ys, width * 0.95, label=f"W = {w}", color=plt.cm.Blues(0.35 + 0.6 * j / max(1, len(allw) - 1)),
                      edgecolor="black", linewidth=0.4)
        for b, y in zip(bars, ys):
            ax.annotate(f"{y:,.0f}", (b.get_x() + b.get_width() / 2, y), textcoords="offset points",
                        xytext=(0, 2), ha="center", fontsize=6.5)
    ax.set_xticks(range(len(ok)))
    ax.set_xticklabels([SHORT[m] for m in ok])
    ax.set_yscale("log")
    ax.set_ylabel("warm files/s (log scale, higher is better)")
    ax.set_title(f"Warm files/s (files / warm epoch seconds, listing included)\n{sub}", fontsize=10)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, title="readers")
    fig.text(0.01, 0.01, plot_caption(ctx), fontsize=6.5, family="monospace")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    p = os.path.join(outdir, "peers_warm_files_per_s.png")
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


# ---------------------------------------------------------------- report

def information(ctx):
    """For results/peers.json: every method's median epoch seconds and its
    ratio to objcache's by kind and W (no target is set on them)."""
    plan, res = ctx["plan"], ctx["res"]
    info = {"epoch_s": {}, "over_objcache": {}}
    for m in ctx["methods"]:
        info["epoch_s"][m] = {k: {str(w): med(res[m][k][w]) for w in plan[m]["workers"] if res[m][k][w]}
                              for k in ("cold", "warm")}
    ref = info["epoch_s"].get("objcache", {})
    for m, by in info["epoch_s"].items():
        if m != "objcache" and ref:
            info["over_objcache"][m] = {k: {w: v / ref[k][w] for w, v in by[k].items() if w in ref.get(k, {})}
                                        for k in by}
    info["failed"] = ctx["failed"]
    return info


def render(ctx):
    a, plan, res, methods, failed = ctx["args"], ctx["plan"], ctx["res"], ctx["methods"], ctx["failed"]
    lat = a.latency_ms / 1e3
    out = []
    out.append("## objcache and its peers, side by side (bench_peers.py)\n")
    out.append(f"{a.files:,} files of {a.size // 1024} KiB ({a.files * a.size / 1e6:.0f} MB) in {a.dirs} folders, "
               f"in s3rver under `data/files/` and on local disk; every remote method reads through the same "
               f"nginx adding {a.latency_ms:g} ms to every request (`bench/latency_remote.py`, LIST replies "
               f"kept), in the same run. An epoch (benchlib.py's, the same code for every method): one "
               f"process forks W readers, then, clock started, lists the folders (`os.walk`; ListObjectsV2 for "
               f"boto3) and hands the sorted list to the readers; reader w reads files i % W == w with "
               f"`open().read()` (`get_object` for boto3); the clock stops when all are done. *Cold* is the "
               f"first epoch on a new, empty cache and a new mount; *warm* is a second epoch (a new process) on "
               f"the same cache and mount. Every epoch's file count, bytes and first bytes are checked. One "
               f"unmeasured warm-up pass first lists the bucket the way each method lists it, so s3rver's slow "
               f"LIST is not measured (a LIST costs the delay, as a GET does).\n")
    out.append("### The methods\n")
    out.append("| method | how | runs | W |")
    out.append("|---|---|---|---|")
    how = {
        "local": "the same files on local disk, page cache warm (read once before): the limit",
        "objcache": (f"`LD_PRELOAD=libobjcache_preload.so`, mount `s3://data/files/`, `prefetch = \"directory\"`, "
                     f"`prefetch_concurrency = {CONCURRENCY}`, RAM tier 512 MiB, no spill; a new cache (own "
                     f"name and shm dir) per cold epoch"),
        "s3fs": (f"{ctx['versions'].get('s3fs', 's3fs')}: `s3fs data:/files MNT -f -o url=ENDPOINT -o passwd_file=F "
                 f"(S3RVER:S3RVER) -o use_cache=DIR " + " ".join(f"-o {o}" for o in S3FS_OPTS) +
                 "`; a new mount and empty cache dir per cold epoch"),
        "rclone": (f"{ctx['versions'].get('rclone', 'rclone')}: remote `type = s3, provider = Other, endpoint = "
                   f"ENDPOINT, force_path_style = true`; `rclone mount peer:data/files MNT --cache-dir DIR "
                   + " ".join(RCLONE_OPTS) + "` (AWS_CA_BUNDLE unset); a new mount and empty cache dir per cold "
                   "epoch"),
        "boto3": ("one boto3 client per reader (made before the clock starts), `get_object` per file; no cache, "
                  "so every epoch does the same GETs: one epoch is measured per run and W and shown as both "
                  "cold and warm"),
    }
    for m in methods:
        out.append(f"| {LABEL[m]} | {how[m]} | {plan[m]['runs']} | {', '.join(map(str, plan[m]['workers']))} |")
    out.append("")
    reduced = [m for m in methods if plan[m]["runs"] < a.runs or plan[m]["workers"] != sorted(
        {int(x) for x in a.workers.split(",")})]
    if reduced:
        out.append("**Reduced to keep one run under ~12 minutes on 2 cores:** "
                   + "; ".join(f"{SHORT[m]} {plan[m]['runs']} run{'s' if plan[m]['runs'] > 1 else ''} at "
                               f"W = {', '.join(map(str, plan[m]['workers']))}" for m in reduced)
                   + f" (the others {a.runs} runs at W = {a.workers}). With 1 run a figure is a single "
                   f"measurement, with 2 the mean of two, not a median of {a.runs}.\n")

    if failed:
        out.append("### Methods that failed\n")
        for m, err in failed.items():
            got = any(res[m]["cold"][w] for w in plan[m]["workers"]) if m in res else False
            out.append(f"- **{LABEL.get(m, m)}**{' (after some results, kept below)' if got else ''}: `{err[:1500]}`")
        out.append("")

    # results
    out.append("### A. Epoch seconds by W readers (median; per run in brackets)\n")
    out.append("For local disk *cold* is the first of two epochs (the page cache is warm for both). The mounts "
               "are made before the clock starts.\n")
    allw = sorted({w for m in methods for w in plan[m]["workers"]})
    out.append("| method | " + " | ".join(f"cold W={w}" for w in allw) + " | " +
               " | ".join(f"warm W={w}" for w in allw) + " |")
    out.append("|---|" + "---|" * (2 * len(allw)))
    for m in methods:
        cells = []
        for kind in ("cold", "warm"):
            for w in allw:
                xs = res[m][kind].get(w, [])
                if not xs:
                    cells.append("failed" if m in failed else "—")
                elif m == "boto3" and kind == "warm":
                    cells.append(f"{secs(med(xs))} (= cold)")
                else:
                    cells.append(f"**{secs(med(xs))}**" + (f" ({' / '.join(secs(x) for x in xs)})"
                                                            if len(xs) > 1 else ""))
        out.append(f"| {LABEL[m]} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("### B. Warm files/s (files / median warm epoch seconds, listing included)\n")
    out.append("| method | " + " | ".join(f"W={w}" for w in allw) + " | best | objcache best / this best |")
    out.append("|---|" + "---|" * (len(allw) + 2))
    best = {}
    for m in methods:
        fs = {w: a.files / med(res[m]["warm"][w]) for w in allw if res[m]["warm"].get(w)}
        best[m] = max(fs.values()) if fs else None
    for m in methods:
        cells = [f"{a.files / med(res[m]['warm'][w]):,.0f}" if res[m]["warm"].get(w) else "—" for w in allw]
        b = best[m]
        rel = f"{best['objcache'] / b:,.2f}" if b and best.get("objcache") else "—"
        out.append(f"| {LABEL[m]} | " + " | ".join(cells) + f" | {f'{b:,.0f}' if b else '—'} | {rel} |")
    out.append("")

    # comparisons
    if "objcache" in methods and any(res["objcache"]["cold"][w] for w in plan["objcache"]["workers"]):
        out.append("### Ratios against objcache (peer median / objcache median at the same W; > 1 means objcache "
                   "is faster)\n")
        out.append("| method | " + " | ".join(f"cold W={w}" for w in allw) + " | " +
                   " | ".join(f"warm W={w}" for w in allw) + " |")
        out.append("|---|" + "---|" * (2 * len(allw)))
        for m in methods:
            if m == "objcache":
                continue
            cells = []
            for kind in ("cold", "warm"):
                for w in allw:
                    xs, ys = res[m][kind].get(w, []), res["objcache"][kind].get(w, [])
                    cells.append(f"{med(xs) / med(ys):.2f}" if xs and ys else "—")
            out.append(f"| {LABEL[m]} | " + " | ".join(cells) + " |")
        out.append("")
        g1 = [x for w in plan["objcache"]["workers"] for x in res["objcache"]["gets1"][w]]
        g2 = [x for w in plan["objcache"]["workers"] for x in res["objcache"]["gets2"][w]]
        if g1:
            out.append(f"objcache data GETs (`cachectl stats`): cold epochs {min(g1)}..{max(g1)} (objects: "
                       f"{a.files}), warm epochs {min(g2)}..{max(g2)}.\n")
    link = a.files * lat / CONCURRENCY
    out.append(f"For scale: {a.files:,} GETs one after another at {a.latency_ms:g} ms take "
               f"{a.files * lat:.0f} s; with W in flight {a.files * lat:.0f} / W s; with {CONCURRENCY} in flight "
               f"{link:.2f} s.\n")
    # listing
    out.append("Listing seconds inside the epochs (median, cold / warm; the listing is part of the epoch times "
               "above):\n")
    out.append("| method | " + " | ".join(f"W={w}" for w in allw) + " |")
    out.append("|---|" + "---|" * len(allw))
    for m in methods:
        cells = [f"{med(res[m]['list_cold'][w]):.2f} / {med(res[m]['list_warm'][w]):.2f}"
                 if res[m]["list_cold"].get(w) else "—" for w in allw]
        out.append(f"| {LABEL[m]} | " + " | ".join(cells) + " |")
    out.append("")
    if ctx["warmup_notes"]:
        out.append("Warm-up (unmeasured) listing of each FUSE mount: "
                   + "; ".join(f"{SHORT[m]} {v}" for m, v in ctx["warmup_notes"].items()) + ".\n")

    out.append("### Notes\n")
    out.append("- The remote gives S3's ETag (the md5) on every GET, as S3 does (`latency_remote.py` maps each "
               "key to the md5 s3rver stored; one GET is checked for it). Without it, rclone's VFS cache takes "
               "the object from the GET reply (no md5) as changed since the LIST (md5) and fetches every file "
               "again on the warm epoch (seen while writing this benchmark: its log says `removing cached entry "
               "as stale`).")
    out.append("- s3fs sends a HEAD for every open, also when the file is in its `use_cache` directory (seen in "
               "its `curldbg` output while writing this benchmark): its warm epoch costs one round trip per file, "
               "its cold epoch two (HEAD, GET), and its listing a HEAD per file (`multireq_max` in parallel).")
    out.append("- rclone runs with `--use-server-modtime`: without it, it sends a HEAD per file for the "
               "modification time (seen in its `--dump headers` output), as its S3 documentation says.")
    out.append("- Every method runs on the same 2 cores as the remote (nginx, s3rver) and the readers.\n")
    # remote
    out.append("### The remote\n")
    out.append(("It honours If-Match as S3 does (checked in this run: a GET with another ETag got 412). "
                if ctx["if_match"] else "Its If-Match was NOT checked in this run. ")
               + f"Measured in the same run with curl's parallel mode (whole-object ranged GETs); one ranged GET "
               f"took {ctx['one_ms']:.1f} ms.\n")
    if ctx["cap"]:
        out.append(lr.format_capacity(ctx["cap"], a.size))
        out.append("")

    if ctx["plots"]:
        out.append("### Plots\n")
        for p in ctx["plots"]:
            rel = os.path.relpath(p, os.path.dirname(os.path.abspath(a.out)) if a.out else os.getcwd())
            out.append(f"![{os.path.basename(p)}]({rel})\n")
    elif ctx.get("plot_error"):
        out.append(f"Plots failed: `{ctx['plot_error']}`\n")

    if ctx["crashes"]:
        out.append("Processes killed by a signal after printing their result (kept):\n")
        for label, sig, err in ctx["crashes"]:
            out.append(f"- {label}: {sig}" + (f" (`{err.splitlines()[-1][:200]}`)" if err else ""))
        out.append("")
    if ctx["nginx_errors"]:
        out.append(f"nginx error log: {len(ctx['nginx_errors'])} lines, first `{ctx['nginx_errors'][0][:300]}`\n")
    out.append(f"Machine: {machine()}; load average at the end {os.getloadavg()[0]:.1f} (other work shares it, so "
               f"numbers are noisy). Tree: {tree_state()}" + (f"; {ctx['shim_id']}" if ctx["shim_id"] else "")
               + f". Date: {ctx['started']:%Y-%m-%d %H:%M} UTC; the whole run took {ctx['elapsed']:.0f} s.\n")
    out.append(f"Reproduce: `{ctx['command']}` (or `make bench`).")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except bl.Failure as e:
        print(f"bench_peers: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
