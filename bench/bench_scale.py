# SPDX-License-Identifier: Apache-2.0
"""A million objects (issue 15): listing ImageNet-shaped trees and a flat
prefix at scale, cold through the 20 ms remote and warm from shared memory.

  /usr/bin/python3 bench/bench_scale.py [--build build] [--runs 5] [--out bench/results/scale.md]
      [--plot bench/results/scale_growth.png]

ImageNet-shaped trees (train/nXXXXXXXX/nXXXXXXXX_N.JPEG in 1,000 class
folders, a few bytes each) of 50,000, 100,000 and 200,000 objects and a
flat prefix of 200,000 keys, written straight into s3rver's on-disk layout
(tests/preload/scale_fixture.py), the trees also on local disk. s3rver runs
through tests/s3server/start_scale.js with --static-lists: LISTs of the
bucket are answered from an index made at the start (~3 ms a page), since
s3rver's own listing costs ~150 ms per 1,000 keys one request at a time
(and start.js's delimited listing reads every key below the prefix, so a
delimited LIST of train/ over 100,000 keys ran 68 s and answered 500):
with it, s3rver would be what is measured. nginx adds 20 ms to every
request in front of it (bench/latency_remote.py).

Every cache is new and at the library's defaults (list_concurrency 16,
prefetch "directory", page_size 1 MiB, memory 4 GiB) but for spill_dir ""
(RAM only). Per tree and run, on a new cache: (b) a process under the shim
builds torchvision's ImageFolder(train) cold, through the remote (seconds
of the constructor, LISTs and HEADs counted by `cachectl stats`), against
the ideal pages x 20 ms / list_concurrency; (a) a second process builds it
again from the metadata the first left (warm), against the same
constructor on the local tree in a fresh process (medians of --runs); (d)
the shared memory the metadata takes per object: `metadata_cached_bytes`
of `cachectl stats` after the cold scan when the build reports it, else
the growth of ram_used_bytes over the same scan on a cache with prefetch
"none" (no file data: all of it is metadata) through the remote's route
without the delay. (c) The flat prefix: os.listdir under the shim on a new
cache, cold through the remote, against one sequential boto3
list_objects_v2 paginator (Delimiter "/", as a directory listing asks)
through the same remote, alternating, medians of --flat-runs. Every
listing's names are checked against the fixture.

Writes the Markdown report (--out), results/scale.json beside it for
bench/report.py and the growth plot (--plot: seconds and bytes per object
against objects, a straight line through them extended to ImageNet's
1,281,167 objects); asserts nothing about speed (exit 1 only when a
listing was wrong or a step failed).
"""
import argparse
import datetime
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import targets  # noqa: E402

mf = bl.mf
lr = bl.lr
import scale_fixture as sf  # noqa: E402  (tests/preload, on benchlib's path)

log = bl.logger("bench_scale")
PY = bl.PY
IMAGENET = 1_281_167  # ImageNet-1k's training images

# ImageFolder(ROOT): the constructor's seconds, the samples and a digest of
# (classes, samples relative to ROOT).
IMAGEFOLDER = r"""
import hashlib, json, os, sys, time
from torchvision.datasets import ImageFolder
root = sys.argv[1]
t = time.perf_counter()
ds = ImageFolder(root)
s = time.perf_counter() - t
h = hashlib.sha256(json.dumps([ds.classes, [[os.path.relpath(p, root), c] for p, c in ds.samples]]).encode())
print(json.dumps({"s": s, "n": len(ds.samples), "classes": len(ds.classes), "h": h.hexdigest()}))
"""

# os.listdir(ROOT): seconds, count, digest of the sorted names.
LISTDIR = r"""
import hashlib, json, os, sys, time
t = time.perf_counter()
names = os.listdir(sys.argv[1])
s = time.perf_counter() - t
print(json.dumps({"s": s, "n": len(names), "h": hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()}))
"""

# One boto3 list_objects_v2 paginator (sequential): ENDPOINT BUCKET PREFIX;
# the client is made before the clock starts.
BOTO3_LIST = r"""
import hashlib, json, sys, time
import boto3
from botocore.config import Config
c = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
                 region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
prefix = sys.argv[3]
t = time.perf_counter()
names, pages = [], 0
for page in c.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2], Prefix=prefix, Delimiter="/"):
    pages += 1
    names += [o["Key"][len(prefix):] for o in page.get("Contents", [])]
s = time.perf_counter() - t
print(json.dumps({"s": s, "n": len(names), "pages": pages,
                  "h": hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()}))
"""

TOUCH = "import os, sys\nos.stat(sys.argv[1])\nprint('{}')\n"


ENGINE = "libobjcache_preload_engine.so"


def copy_shim(shim, work):
    """benchlib.copy_shim, and the engine the split shim dlopens from beside
    itself (benchlib's copies the shim alone, whose first call on a mount
    then fails to load the engine: EIO)."""
    copied, ident = bl.copy_shim(shim, work)
    engine = os.path.join(os.path.dirname(shim), ENGINE)
    if os.path.exists(engine):
        shutil.copy2(engine, os.path.join(work, ENGINE))
        with open(engine, "rb") as f:
            ident += f" + engine sha256 {hashlib.sha256(f.read()).hexdigest()[:12]}"
    return copied, ident


def names_digest(names):
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


def tree_digest(items, root_rel="train/"):
    """What IMAGEFOLDER prints as h for a tree of items (keys train/C/F)."""
    classes = sorted({k.split("/")[1] for k, _ in items if k.startswith(root_rel)})
    idx = {c: i for i, c in enumerate(classes)}
    samples = sorted([k[len(root_rel):], idx[k.split("/")[1]]] for k, _ in items if k.startswith(root_rel))
    return hashlib.sha256(json.dumps([classes, samples]).encode()).hexdigest()


class Cache:
    """A new cache at the library's defaults (but spill_dir "") over one
    mount; its own shm directory, removed by close()."""
    seq = 0

    def __init__(self, work, shim, cachectl, endpoint, mount, source, prefetch=None):
        Cache.seq += 1
        self.name = f"bs{os.getpid()}-{Cache.seq}"
        self.shm = tempfile.mkdtemp(prefix="objcache-bench-scale-shm-", dir="/dev/shm")
        self.config = os.path.join(work, f"{self.name}.toml")
        line = f'prefetch = "{prefetch}"\n' if prefetch else ""
        with open(self.config, "w") as f:
            f.write(f'[cache]\nname = "{self.name}"\nspill_dir = ""\n\n[store]\nendpoint = "{endpoint}"\n'
                    f'region = "us-east-1"\ncredentials = "env"\n\n[[mount]]\npath = "{mount}"\n'
                    f'source = "{source}"\n{line}')
        self.env = mf.shim_env(shim, self.config, self.shm)
        self.cachectl = cachectl

    def stats(self):
        s = bl.cache_stats(self.cachectl, self.config, self.shm)
        if s is None:
            raise bl.Failure(f"cachectl stats failed for {self.config}")
        return s

    def close(self):
        shutil.rmtree(self.shm, ignore_errors=True)
        try:
            os.unlink(self.config)
        except OSError:
            pass


def list_page_ms(endpoint, query, n=7):
    """Median ms of a LIST (urllib, unsigned: s3rver 3.7.1 checks no
    signature) and its reply size; the first request opens the connection."""
    ts, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        with urllib.request.urlopen(f"{endpoint}/{mf.BUCKET}?list-type=2&{query}", timeout=30) as r:
            size = len(r.read())
        ts.append((time.perf_counter() - t) * 1e3)
    return bl.med(ts[1:]), size


def linear_fit(xs, ys):
    """Least squares y = a + b x; (a, b)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the meson build directory")
    ap.add_argument("--runs", type=int, default=5, help="cold + warm + local runs per tree")
    ap.add_argument("--flat-runs", type=int, default=3, help="objcache / boto3 runs of the flat listing")
    ap.add_argument("--sizes", default=",".join(map(str, targets.SCALE_OBJECTS)), help="objects per tree")
    ap.add_argument("--classes", type=int, default=targets.SCALE_CLASSES)
    ap.add_argument("--flat", type=int, default=targets.SCALE_FLAT, help="keys in the flat prefix")
    ap.add_argument("--latency-ms", type=float, default=float(targets.LATENCY_MS))
    ap.add_argument("--out", default=None, help="write the Markdown report here (and the json beside it)")
    ap.add_argument("--json", default=None, help="write the json here (default: --out with .json)")
    ap.add_argument("--plot", default=None, help="write the growth plot (PNG) here")
    args = ap.parse_args()
    sizes = sorted({int(x) for x in args.sizes.split(",")})
    if min(args.runs, args.flat_runs, args.classes, args.flat, *sizes) < 1 or min(sizes) < 2 * args.classes:
        ap.error("--runs, --flat-runs, --classes, --flat >= 1 and every size >= 2 x --classes")
    shim, cachectl = bl.build_paths(args.build, log, "preload/libobjcache_preload.so", "tools/cachectl")
    command = bl.command_line("bench_scale.py")
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()

    work = tempfile.mkdtemp(prefix="objcache-bench-scale-")
    base_mount = f"/mnt/objcache-bench-scale-{os.getpid()}"
    server = remote = None
    caches = []
    stderr_seen = {}
    ctx = {"args": args, "sizes": sizes, "trees": {}, "flat": {}, "command": command, "started": started}
    plain_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}

    def run(label, argv, env):
        r = bl.run_json(label, argv, env)
        if "stderr" in r:
            stderr_seen.setdefault(label.split(",")[0], r["stderr"])
        return r

    def new_cache(endpoint, mount, source, prefetch=None):
        c = Cache(work, shim, cachectl, endpoint, mount, source, prefetch)
        caches.append(c)
        return c

    try:
        # ---- the fixture
        t0 = time.monotonic()
        s3_dir = os.path.join(work, "s3")
        trees = {}
        for i, n in enumerate(sizes):
            items = sf.imagenet_items(n, args.classes, seed=15 + i)
            prefix = f"in{n}/"
            sf.write_s3rver(s3_dir, mf.BUCKET, prefix, items)
            counts = {}
            for k, _ in items:
                counts[k.split("/")[1]] = counts.get(k.split("/")[1], 0) + 1
            trees[n] = {"prefix": prefix, "digest": tree_digest(items), "counts": counts,
                        "local": os.path.join(work, "local", f"in{n}")}
        flat = sf.flat_items(args.flat)
        sf.write_s3rver(s3_dir, mf.BUCKET, "flat/", flat)
        flat_digest = names_digest(k for k, _ in flat)
        del flat
        t1 = time.monotonic()
        for i, n in enumerate(sizes):
            sf.write_local(trees[n]["local"], sf.imagenet_items(n, args.classes, seed=15 + i))
        t2 = time.monotonic()
        ctx["fixture"] = {"s3rver_s": t1 - t0, "local_s": t2 - t1}
        log(f"fixture: {sum(sizes):,} tree objects + {args.flat:,} flat keys in s3rver's layout in {t1 - t0:.1f} s, "
            f"trees on local disk in {t2 - t1:.1f} s")

        # The remote's own object (for check_semantics: ranged GET, ETag,
        # If-Match, HEAD) in the bucket and in the remote's static directory,
        # which holds only it (the remote's ETag map of 550,000 objects
        # would not fit nginx's map; no file data is read here).
        probe_key, probe = "probe/probe.bin", os.urandom(4096)
        sf.write_s3rver(s3_dir, mf.BUCKET, "", [(probe_key, probe)])
        static = os.path.join(work, "static")
        sf.write_s3rver(static, mf.BUCKET, "", [(probe_key, probe)])

        t = time.monotonic()
        server = sf.start_server(work, [mf.BUCKET], static_lists=[mf.BUCKET])
        ctx["index_s"] = time.monotonic() - t
        log(f"s3rver (start_scale.js --static-lists) up, its index made, in {ctx['index_s']:.1f} s")
        remote = lr.LatencyRemote(static, server.port, args.latency_ms, workdir=work)
        one_ms = lr.check_semantics(remote, mf.BUCKET, probe_key, probe, hashlib.md5(probe).hexdigest())
        ctx["remote"] = {"latency_ms": args.latency_ms, "nginx_workers": remote.workers, "one_get_ms": one_ms,
                         "if_match_checked": remote.if_match_checked}
        lists = {}
        for label, q in (("1,000 keys of the flat prefix", "prefix=flat%2F&delimiter=%2F"),
                         (f"train/ of the {sizes[-1]:,} tree ({args.classes:,} prefixes)",
                          f"prefix=in{sizes[-1]}%2Ftrain%2F&delimiter=%2F")):
            lists[label] = {"remote": list_page_ms(remote.endpoint, q), "raw": list_page_ms(remote.raw_endpoint, q),
                            "direct": list_page_ms(server.endpoint, q)}
        ctx["remote"]["list_ms"] = lists
        log(f"remote {remote.endpoint}: one GET {one_ms:.1f} ms, If-Match "
            f"{'honoured' if remote.if_match_checked else 'NOT CHECKED'}; LIST "
            + "; ".join(f"{k}: {v['remote'][0]:.1f} ms (no delay {v['raw'][0]:.1f} ms)" for k, v in lists.items()))
        shim, shim_id = copy_shim(shim, work)
        cachectl = shutil.copy2(cachectl, os.path.join(work, "cachectl"))

        # ---- the trees
        for n in sizes:
            tr = trees[n]
            mount = f"{base_mount}/in{n}"
            source = f"s3://{mf.BUCKET}/{tr['prefix']}"
            want = {"n": n, "h": tr["digest"]}
            res = {k: [] for k in ("local", "cold", "warm", "lists", "heads", "warm_lists", "meta_bytes",
                                   "ram_bytes", "gets")}

            def check(label, r):
                if {k: r.get(k) for k in want} != want:
                    raise bl.Failure(f"{label}: ImageFolder gave {r.get('n')} samples, digest {r.get('h')}; "
                                     f"expected {n} and {tr['digest']}")
                return r

            for i in range(args.runs):
                rl = check(f"local ImageFolder, {n}", run(f"local ImageFolder, {n}",
                                                          [PY, "-c", IMAGEFOLDER, os.path.join(tr["local"], "train")],
                                                          plain_env))
                c = new_cache(remote.endpoint, mount, source)
                rc = check(f"cold ImageFolder, {n}", run(f"cold ImageFolder, {n}",
                                                         [PY, "-c", IMAGEFOLDER, f"{mount}/train"], c.env))
                s1 = c.stats()
                rw = check(f"warm ImageFolder, {n}", run(f"warm ImageFolder, {n}",
                                                         [PY, "-c", IMAGEFOLDER, f"{mount}/train"], c.env))
                s2 = c.stats()
                c.close()
                res["local"].append(rl["s"])
                res["cold"].append(rc["s"])
                res["warm"].append(rw["s"])
                res["lists"].append(s1["list_requests"])
                res["heads"].append(s1["head_requests"])
                res["warm_lists"].append(s2["list_requests"] - s1["list_requests"])
                res["gets"].append(s2["remote_requests"] - s2["list_requests"] - s2["head_requests"])
                if "metadata_cached_bytes" in s1:
                    res["meta_bytes"].append(s1["metadata_cached_bytes"])
                log(f"{n:,} objects, run {i + 1}/{args.runs}: local {rl['s']:.3f} s, cold {rc['s']:.2f} s "
                    f"({s1['list_requests']} LISTs, {s1['head_requests']} HEADs), warm (second process) "
                    f"{rw['s']:.3f} s ({res['warm_lists'][-1]} LISTs)")
            # Metadata only: prefetch "none" (no file data in the cache), no delay.
            c = new_cache(remote.raw_endpoint, mount, source, prefetch="none")
            run("touch", [PY, "-c", TOUCH, mount], c.env)
            s0 = c.stats()
            check(f"metadata-only ImageFolder, {n}", run(f"metadata-only ImageFolder, {n}",
                                                         [PY, "-c", IMAGEFOLDER, f"{mount}/train"], c.env))
            s1 = c.stats()
            # Information: the warm scan again with no prefetch beside it
            # (second and later processes on this cache).
            res["warm_none"] = []
            for i in range(args.runs):
                rw = check(f"warm ImageFolder, prefetch none, {n}", run(
                    f"warm ImageFolder, prefetch none, {n}", [PY, "-c", IMAGEFOLDER, f"{mount}/train"], c.env))
                res["warm_none"].append(rw["s"])
            c.close()
            res["ram_bytes"].append(s1["ram_used_bytes"] - s0["ram_used_bytes"])
            res["ram_stats"] = {k: v for k, v in s1.items() if k != "mounts"}
            if "metadata_cached_bytes" in s1:
                res["meta_bytes_none"] = s1["metadata_cached_bytes"]
            counts = tr["counts"]
            # The mount's root (where train/ is named), train/, every class.
            res["pages"] = 2 + sum(max(1, math.ceil(v / 1000)) for v in counts.values())
            res["classes"] = len(counts)
            ctx["trees"][n] = res
            log(f"{n:,} objects: metadata-only scan grew ram_used_bytes by {res['ram_bytes'][0]:,} "
                f"({res['ram_bytes'][0] / n:.1f} B/object)")

        # ---- the flat prefix
        fl = {"objcache": [], "boto3": [], "lists": [], "pages": [], "heads": []}
        mount = f"{base_mount}/flat"
        source = f"s3://{mf.BUCKET}/flat/"
        for i in range(args.flat_runs):
            for method in (("objcache", "boto3") if i % 2 == 0 else ("boto3", "objcache")):
                if method == "objcache":
                    c = new_cache(remote.endpoint, mount, source)
                    r = run("flat os.listdir", [PY, "-c", LISTDIR, mount], c.env)
                    s = c.stats()
                    c.close()
                    fl["lists"].append(s["list_requests"])
                    fl["heads"].append(s["head_requests"])
                else:
                    r = run("flat boto3", [PY, "-c", BOTO3_LIST, remote.endpoint, mf.BUCKET, "flat/"], plain_env)
                    fl["pages"].append(r["pages"])
                if r["n"] != args.flat or r["h"] != flat_digest:
                    raise bl.Failure(f"flat {method}: listed {r['n']} names, digest {r['h']}; expected "
                                     f"{args.flat} and {flat_digest}")
                fl[method].append(r["s"])
                log(f"flat {args.flat:,} keys, run {i + 1}/{args.flat_runs}: {method} {r['s']:.2f} s"
                    + (f" ({fl['lists'][-1]} LISTs)" if method == "objcache" else f" ({r['pages']} pages)"))
        c = new_cache(remote.raw_endpoint, mount, source, prefetch="none")
        run("touch", [PY, "-c", TOUCH, mount], c.env)
        s0 = c.stats()
        run("flat os.listdir, metadata only", [PY, "-c", LISTDIR, mount], c.env)
        s1 = c.stats()
        c.close()
        fl["ram_bytes"] = s1["ram_used_bytes"] - s0["ram_used_bytes"]
        if "metadata_cached_bytes" in s1:
            fl["meta_bytes"] = s1["metadata_cached_bytes"]
        ctx["flat"] = fl
        ctx["nginx_errors"] = remote.errors_logged()
    finally:
        for c in caches:
            c.close()
        if remote is not None:
            remote.close()
        if server is not None:
            server.stop()
        for n_local in (os.path.join(work, "local"),):
            if os.path.isdir(n_local):
                sf.unlock_local(n_local)
        shutil.rmtree(work, ignore_errors=True)

    elapsed = time.monotonic() - t_start
    ctx["elapsed"] = elapsed
    ctx["shim_id"] = shim_id
    ctx["stderr_seen"] = stderr_seen
    if args.plot:
        try:
            plot(ctx, args.plot)
            ctx["plot"] = args.plot
        except Exception as e:  # noqa: BLE001  (a missing matplotlib must not lose the numbers)
            log(f"plot FAILED: {type(e).__name__}: {e}")
            ctx["plot_error"] = f"{type(e).__name__}: {e}"
    md, figures, info = render(ctx)
    bl.write_results("scale", "bench_scale.py", md, args.out, args.json, figures, command=command,
                     started=started, elapsed=elapsed, runs=args.runs, shim_id=shim_id, remote=ctx["remote"],
                     information=info)
    if args.out:
        log(f"wrote {args.out} ({elapsed:.0f} s in all)")
    return 0


def per_object(res, n):
    """(bytes per object, which figure) for the tree of n objects."""
    if res["meta_bytes"]:
        return bl.med(res["meta_bytes"]) / n, "metadata_cached_bytes"
    return res["ram_bytes"][0] / n, "ram_used_bytes growth, prefetch none"


def extrapolate(ctx):
    """Straight lines (least squares) through the medians against objects,
    and their values at ImageNet's size: seconds, and the metadata's total
    bytes (per object: the line's value there over the objects)."""
    sizes = ctx["sizes"]
    out = {}
    for key, ys in (("cold", [bl.med(ctx["trees"][n]["cold"]) for n in sizes]),
                    ("warm", [bl.med(ctx["trees"][n]["warm"]) for n in sizes]),
                    ("local", [bl.med(ctx["trees"][n]["local"]) for n in sizes]),
                    ("bytes", [per_object(ctx["trees"][n], n)[0] * n for n in sizes])):
        if len(sizes) >= 2:
            a, b = linear_fit(sizes, ys)
        else:
            a, b = 0.0, ys[0] / sizes[0]
        out[key] = {"a": a, "b": b, "at_imagenet": a + b * IMAGENET, "points": ys}
    e = out["bytes"]
    e["per_object_points"] = [y / n for y, n in zip(e["points"], sizes)]
    e["per_object_at_imagenet"] = e["at_imagenet"] / IMAGENET
    return out


def plot(ctx, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = ctx["sizes"]
    ex = extrapolate(ctx)
    lat = ctx["args"].latency_ms / 1e3
    xs = [0, IMAGENET]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    for key, label, color in (("cold", f"cold, through {ctx['args'].latency_ms:g} ms (first process)", "tab:red"),
                              ("warm", "warm metadata (second process)", "tab:blue"),
                              ("local", "local disk", "tab:green")):
        e = ex[key]
        ax1.plot(sizes, e["points"], marker="o", color=color, label=label)
        ax1.plot(xs, [e["a"] + e["b"] * x for x in xs], linestyle="--", color=color, alpha=0.5)
        ax1.annotate(f"{e['at_imagenet']:.1f} s", (IMAGENET, e["at_imagenet"]), textcoords="offset points",
                     xytext=(-40, 6), color=color, fontsize=8)
    ideal = [ctx["trees"][n]["pages"] * lat / targets.DEFAULT_LIST_CONCURRENCY for n in sizes]
    ax1.plot(sizes, ideal, marker="x", color="gray", linestyle=":",
             label=f"ideal cold: pages x {ctx['args'].latency_ms:g} ms / {targets.DEFAULT_LIST_CONCURRENCY}")
    ax1.set_xlabel("objects")
    ax1.set_ylabel("ImageFolder(train) seconds (median)")
    ax1.set_title("ImageFolder construction (dashed: straight line to 1.28M)")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    e = ex["bytes"]
    ax2.plot(sizes, e["per_object_points"], marker="o", color="tab:purple", label="metadata bytes per object")
    curve = [IMAGENET * k / 40 for k in range(1, 41)]
    ax2.plot(curve, [(e["a"] + e["b"] * x) / x for x in curve], linestyle="--", color="tab:purple", alpha=0.5,
             label="from a straight line through the total bytes")
    ax2.axhline(targets.get("scale.bytes_per_object").threshold, color="gray", linestyle=":", label="target")
    ax2.annotate(f"{e['per_object_at_imagenet']:.0f} B", (IMAGENET, e["per_object_at_imagenet"]),
                 textcoords="offset points", xytext=(-40, 6), color="tab:purple", fontsize=8)
    ax2.set_xlabel("objects")
    ax2.set_ylabel("shared-memory bytes per object")
    ax2.set_ylim(bottom=0)
    ax2.set_title("Metadata in the segment (dashed: straight line to 1.28M)")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    from matplotlib.ticker import FuncFormatter
    for ax in (ax1, ax2):
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e6:g}M" if x >= 1e6 else f"{x / 1e3:g}k"))
    fig.suptitle(f"ImageNet-shaped trees, {ctx['args'].classes:,} classes; objcache defaults; "
                 f"{ctx['started']:%Y-%m-%d}", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(ctx):
    a = ctx["args"]
    med = bl.med
    sizes = ctx["sizes"]
    big = sizes[-1]
    lat = a.latency_ms / 1e3
    lc = targets.DEFAULT_LIST_CONCURRENCY
    out = ["## A million objects: listing at scale (bench_scale.py)\n"]
    fx = ctx["fixture"]
    out.append(f"ImageNet-shaped trees (`train/nXXXXXXXX/nXXXXXXXX_N.JPEG`, {a.classes:,} class folders, between "
               f"half and 1.5 times the mean per class, 1 to 24 bytes per object) of "
               f"{', '.join(f'{n:,}' for n in sizes)} objects and a flat prefix of {a.flat:,} keys, written "
               f"straight into s3rver's on-disk layout in {fx['s3rver_s']:.1f} s (`tests/preload/scale_fixture.py`; "
               f"the trees also on local disk, {fx['local_s']:.1f} s). Every cache is new and at the library's "
               f"defaults (`list_concurrency` {lc}, `prefetch = \"directory\"`, `page_size` 1 MiB, `memory` 4 GiB) "
               f"but for `spill_dir = \"\"`. ImageFolder figures are the constructor's own seconds inside the "
               f"process (Python and torch start-up excluded); every listing's names were checked against the "
               f"fixture.\n")
    out.append("### The store and the remote\n")
    rm = ctx["remote"]
    text = (f"s3rver through `tests/s3server/start_scale.js --static-lists` (index of the bucket made at its start: "
            f"{ctx['index_s']:.1f} s): LISTs come from the index, so a page costs what a LIST costs a real store "
            f"next to its round trip, not s3rver's ~150 ms per 1,000 keys one request at a time (measured "
            f"2026-12-03; start.js's delimited LIST of train/ over 100,000 keys ran 68 s and answered 500). nginx "
            f"adds {a.latency_ms:g} ms to every request in front of it (`bench/latency_remote.py`, "
            f"{rm['nginx_workers']} worker processes); it "
            + ("honours If-Match as S3 does (checked in this run on its probe object)" if rm["if_match_checked"]
               else "was NOT checked for If-Match in this run")
            + f"; one ranged GET took {rm['one_get_ms']:.1f} ms. One LIST (median of 6, urllib):")
    out.append(text + "\n")
    out.append("| LIST | through the remote ms | its route without the delay ms | s3rver directly ms | reply bytes |")
    out.append("|---|---|---|---|---|")
    for k, v in rm["list_ms"].items():
        out.append(f"| {k} | {v['remote'][0]:.1f} | {v['raw'][0]:.1f} | {v['direct'][0]:.1f} | {v['remote'][1]:,} |")
    out.append("")

    # ---- trees
    out.append("### ImageFolder(train): warm in a second process (a), cold through the remote (b)\n")
    out.append(f"Per run, on a new cache: a process builds `ImageFolder(train)` cold through the remote; a second "
               f"process builds it again from what the first left in shared memory (warm); a fresh process builds "
               f"it on the local tree. Medians of {a.runs} runs. The ideal cold time is pages x "
               f"{a.latency_ms:g} ms / list_concurrency {lc}, pages being the fewest 1,000-entry LIST pages "
               f"that list the mount's root (which names train/), train/ and every class folder.\n")
    warm_t = targets.threshold_text("scale.imagefolder_warm")
    out.append("| objects | local s | warm s (second process) | warm / local | target | | cold s | per run | LISTs "
               "(cold) | pages | ideal s | ideal / cold | HEADs | LISTs by the second process |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    ratio = {}
    for n in sizes:
        r = ctx["trees"][n]
        loc, warm, cold = med(r["local"]), med(r["warm"]), med(r["cold"])
        ratio[n] = warm / loc
        ideal = r["pages"] * lat / lc
        judged = n == big
        out.append(f"| {n:,} | {loc:.3f} | {warm:.3f} | **{ratio[n]:.2f}x** | {warm_t if judged else '(information)'} | "
                   f"{bl.verdict('scale.imagefolder_warm', ratio[n]) if judged else ''} | {cold:.2f} | "
                   f"{' / '.join(f'{x:.2f}' for x in r['cold'])} | {' / '.join(map(str, r['lists']))} | "
                   f"{r['pages']:,} | {ideal:.2f} | {ideal / cold:.2f} | {' / '.join(map(str, r['heads']))} | "
                   f"{' / '.join(map(str, r['warm_lists']))} |")
    out.append("")
    out.append("The same warm scan on a cache with `prefetch = \"none\"` (no GETs beside it; information, the "
               "median of as many processes): " + "; ".join(
                   f"{n:,}: {med(ctx['trees'][n]['warm_none']):.3f} s, "
                   f"{med(ctx['trees'][n]['warm_none']) / med(ctx['trees'][n]['local']):.2f}x local"
                   for n in sizes) + ".")
    out.append("Per run, local / warm seconds: " + "; ".join(
        f"{n:,}: " + ", ".join(f"{x:.3f}/{y:.3f}" for x, y in zip(ctx['trees'][n]['local'], ctx['trees'][n]['warm']))
        for n in sizes) + ".")
    out.append("At the defaults (`prefetch = \"directory\"`) listing a folder also queues its files for "
               "background GETs, in the first process and again in the second (the first one's prefetch died "
               "with it): data GETs counted by the end of the second process, per run: "
               + "; ".join(f"{n:,}: {' / '.join(map(str, ctx['trees'][n]['gets']))}" for n in sizes)
               + ". The second process's scan shares the 2 cores with its own GETs.\n")

    # ---- bytes per object
    out.append("### Shared memory per object (d)\n")
    bpo_t = targets.threshold_text("scale.bytes_per_object")
    out.append("| objects | bytes per object | from | target | | ram_used_bytes growth, metadata-only scan | per object |")
    out.append("|---|---|---|---|---|---|---|")
    bpo = {}
    for n in sizes:
        r = ctx["trees"][n]
        v, src = per_object(r, n)
        bpo[n] = v
        judged = n == big
        out.append(f"| {n:,} | **{v:.1f}** | {src} | {bpo_t if judged else '(information)'} | "
                   f"{bl.verdict('scale.bytes_per_object', v) if judged else ''} | {r['ram_bytes'][0]:,} | "
                   f"{r['ram_bytes'][0] / n:.1f} |")
    fl = ctx["flat"]
    out.append("")
    flat_bpo = (fl["meta_bytes"] if "meta_bytes" in fl else fl["ram_bytes"]) / a.flat
    out.append(f"The flat prefix of {a.flat:,} keys: {flat_bpo:.1f} bytes per key "
               f"({'metadata_cached_bytes' if 'meta_bytes' in fl else 'ram_used_bytes growth, prefetch none'}; "
               f"information). The metadata-only scans run on a cache with `prefetch = \"none\"` through the "
               f"remote's route without the delay, so no file data is cached: all of the growth is listings and "
               f"records. `metadata_cached_bytes` "
               + ("is reported by this build." if ctx["trees"][big]["meta_bytes"] else
                  "is not reported by this build of `cachectl stats`: the growth is the figure.") + "\n")

    # ---- flat
    out.append(f"### A flat prefix of {a.flat:,} keys, cold through the remote (c)\n")
    o, b = med(fl["objcache"]), med(fl["boto3"])
    flat_ratio = b / o
    pages = math.ceil(a.flat / 1000)
    out.append(f"os.listdir under the shim on a new cache (key ranges listed in parallel, list_concurrency {lc}) "
               f"against one boto3 `list_objects_v2` paginator (sequential, `Delimiter=\"/\"`, the client made "
               f"before the clock), through the same remote, alternating, medians of {a.flat_runs}. The ideal is "
               f"{pages} pages x {a.latency_ms:g} ms / {lc} = {pages * lat / lc:.2f} s.\n")
    out.append("| method | seconds (median) | per run | requests |")
    out.append("|---|---|---|---|")
    out.append(f"| objcache os.listdir | {o:.2f} | {' / '.join(f'{x:.2f}' for x in fl['objcache'])} | "
               f"{' / '.join(map(str, fl['lists']))} LISTs, {' / '.join(map(str, fl['heads']))} HEADs |")
    out.append(f"| boto3 paginator | {b:.2f} | {' / '.join(f'{x:.2f}' for x in fl['boto3'])} | "
               f"{' / '.join(map(str, fl['pages']))} pages |")
    out.append("")
    out.append(f"boto3 / objcache: **{flat_ratio:.1f}x** (target {targets.threshold_text('scale.flat_list')}: "
               f"{bl.verdict('scale.flat_list', flat_ratio)}); objcache against the ideal: "
               f"{pages * lat / lc / o:.2f}.\n")

    # ---- growth
    ex = extrapolate(ctx)
    out.append("### Growth, and a straight line to ImageNet's 1.28M\n")
    if ctx.get("plot"):
        rel = os.path.relpath(os.path.abspath(ctx["plot"]), os.path.dirname(os.path.abspath(a.out or ".")))
        out.append(f"![ImageFolder seconds and metadata bytes per object against objects]({rel})\n")
    elif ctx.get("plot_error"):
        out.append(f"The plot failed: {ctx['plot_error']}.\n")
    out.append(f"Least-squares lines through the medians at {', '.join(f'{n:,}' for n in sizes)} objects, read at "
               f"{IMAGENET:,} (a linear extrapolation, as asked; ImageNet's classes hold ~1,281 files each, so its "
               f"trees need ~2 LIST pages per class where these need 1, and a cold scan there would cost more "
               f"LISTs than the line says):\n")
    im_pages = 2 + a.classes * math.ceil(IMAGENET / a.classes / 1000)
    cold_ratio = med([ctx["trees"][n]["pages"] * lat / lc / med(ctx["trees"][n]["cold"]) for n in sizes])
    out.append(f"From the pages instead: ImageNet's train/ in {a.classes:,} classes of ~{IMAGENET // a.classes:,} "
               f"files needs {im_pages:,} LIST pages, an ideal cold scan of {im_pages * lat / lc:.2f} s at "
               f"list_concurrency {lc}; at the ideal / cold ratio measured here ({cold_ratio:.2f}, median over "
               f"the trees) that is ~{im_pages * lat / lc / cold_ratio:.1f} s.\n")
    out.append("| figure | per 100,000 objects | at 1,281,167 objects |")
    out.append("|---|---|---|")
    for key, label in (("cold", "ImageFolder cold through the remote"),
                       ("warm", "ImageFolder warm, second process"),
                       ("local", "ImageFolder on local disk")):
        e = ex[key]
        out.append(f"| {label}, seconds | {e['b'] * 100_000:+.3f} s | {e['at_imagenet']:.2f} s |")
    e = ex["bytes"]
    out.append(f"| metadata in shared memory | {e['b'] * 100_000 / 2**20:+.2f} MiB | {e['at_imagenet'] / 2**20:,.0f} "
               f"MiB, {e['per_object_at_imagenet']:.1f} B per object |")
    out.append("")
    out += bl.report_footer(ctx["stderr_seen"], ctx.get("nginx_errors", []), ctx["shim_id"], ctx["started"],
                            ctx["elapsed"], ctx["command"])

    at_tree = {"objects": big, "classes": a.classes, "list_concurrency": "default"}
    others = lambda f: [({"objects": n, "classes": a.classes}, f(n)) for n in sizes if n != big]  # noqa: E731
    figures = {
        "scale.imagefolder_warm": bl.figure(
            ratio[big], f"{ratio[big]:.2f}x ({med(ctx['trees'][big]['warm']):.3f} s / "
                        f"{med(ctx['trees'][big]['local']):.3f} s)", at_tree,
            others(lambda n: f"{ratio[n]:.2f}x")),
        "scale.flat_list": bl.figure(
            flat_ratio, f"{flat_ratio:.1f}x ({b:.2f} s / {o:.2f} s)",
            {"keys": a.flat, "latency_ms": a.latency_ms, "list_concurrency": "default"}),
        "scale.bytes_per_object": bl.figure(
            bpo[big], f"{bpo[big]:.1f} B ({per_object(ctx['trees'][big], big)[1]})",
            {"objects": big, "classes": a.classes}, others(lambda n: f"{bpo[n]:.1f} B")),
    }
    info = {"warm_prefetch_none": {str(n): med(ctx["trees"][n]["warm_none"]) for n in sizes},
            "cold": {str(n): {"s": med(ctx["trees"][n]["cold"]), "lists": med(ctx["trees"][n]["lists"]),
                              "pages": ctx["trees"][n]["pages"],
                              "ideal_s": ctx["trees"][n]["pages"] * lat / lc} for n in sizes},
            "extrapolation": {k: {"per_100k": v["b"] * 100_000, "at_imagenet": v["at_imagenet"]}
                              for k, v in ex.items()},
            "bytes_per_object_at_imagenet": ex["bytes"]["per_object_at_imagenet"],
            "flat": {"objcache_s": o, "boto3_s": b, "lists": fl["lists"], "bytes_per_key": flat_bpo},
            "plot": os.path.basename(ctx["plot"]) if ctx.get("plot") else None}
    return "\n".join(out) + "\n", figures, info


if __name__ == "__main__":
    try:
        sys.exit(main())
    except bl.Failure as e:
        log(f"FAILED: {e}")
        sys.exit(1)
