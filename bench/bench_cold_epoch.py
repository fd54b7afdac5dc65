# SPDX-License-Identifier: Apache-2.0
"""The fetcher's cold epoch (issue 5) through a remote with latency, by
reader count, against the link's limit.

  /usr/bin/python3 bench/bench_cold_epoch.py [--build build] [--runs 3] [--out bench/results/cold_epoch.md]

2,000 files of 100 KiB in 10 folders in a real s3rver, behind nginx adding
--latency-ms (20) to every request (bench/latency_remote.py; its capacity
is measured in the same run and reported). s3rver is slow at LIST
(CPU-bound), so the remote keeps LIST replies and one unmeasured warm-up
epoch fills them in; a LIST then costs the delay only, as GETs do. The
mount uses prefetch = "directory" (the default) and prefetch_concurrency
= 32, RAM tier only; every cold epoch starts on a new, empty cache (its own
OBJCACHE_SHM_DIR and cache name).

An epoch is one Python process under the shim that forks W readers (1, 2,
4, 8), which wait; then it lists the folders (os.walk, as ImageFolder does)
and hands the sorted list to the readers, each reading files i % W == w
with open().read(); the epoch is the wall time from before the listing
until every reader is done. Reported, medians of --runs runs: seconds per
W, flatness (slowest / fastest), the link limit max(objects x latency /
concurrency, bytes / bandwidth) over the measured time, the data GETs of
the cold epoch and of a second (warm) epoch on the same cache; and one
more cold epoch with the gate sampled (diagnostic, not in the medians).

Writes the Markdown report (--out) and results/cold_epoch.json beside it
for bench/report.py; asserts nothing about speed (exit 1 only when a read
returned wrong bytes or a step failed).
"""
import argparse
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import targets  # noqa: E402

mf = bl.mf
log = bl.logger("bench_cold_epoch")
CONCURRENCY = bl.CONCURRENCY


class Sampler:
    """Polls `cachectl stats --json` in a thread (diagnostic epoch only)."""

    def __init__(self, cache, period=0.05):
        self.cache, self.period, self.samples = cache, period, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.perf_counter()
        while not self._stop.is_set():
            s = bl.cache_stats(self.cache.cachectl, self.cache.config, self.cache.shm)
            if s is not None:
                self.samples.append((time.perf_counter() - t0, s.get("gets_in_flight", 0),
                                     s["mounts"][0]["remote_requests"] if s.get("mounts") else 0,
                                     s.get("prefetched_bytes", 0), s.get("remote_bytes", 0),
                                     s.get("fetch_concurrency", 0)))
            self._stop.wait(self.period)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the meson build directory")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=targets.FILES)
    ap.add_argument("--size", type=int, default=targets.SIZE)
    ap.add_argument("--dirs", type=int, default=10)
    ap.add_argument("--workers", default=",".join(map(str, targets.READERS)), help="reader counts W")
    ap.add_argument("--latency-ms", type=float, default=float(targets.LATENCY_MS))
    ap.add_argument("--out", default=None, help="write the Markdown report here (and the json beside it)")
    ap.add_argument("--json", default=None, help="write the json here (default: --out with .json)")
    args = ap.parse_args()
    workers = sorted({int(x) for x in args.workers.split(",")})
    if min(args.runs, args.files, args.dirs, *workers) < 1 or args.size < 8:
        ap.error("--runs, --files, --dirs, --workers >= 1 and --size >= 8")
    shim, cachectl = bl.build_paths(args.build, log, "preload/libobjcache_preload.so", "tools/cachectl")
    command = bl.command_line("bench_cold_epoch.py")
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()

    work = tempfile.mkdtemp(prefix="objcache-bench-cold-epoch-")
    files_mount = f"/mnt/objcache-bench-cold-epoch-{os.getpid()}/files"
    server = remote = None
    caches = []
    keys = ("a", "warm", "gets1", "gets2", "prefetched", "all_requests1", "errors", "list_s", "readers")
    res = {k: {w: [] for w in workers} for k in keys}
    stderr_seen = {}
    try:
        t = time.monotonic()
        local = os.path.join(work, "files")
        rels, _, sample = bl.make_files(local, args.files, args.size, args.dirs)
        expect = {"files": args.files, "bytes": args.files * args.size, "sample": f"{sample:016x}"}
        server = mf.S3Server(work)
        bl.upload(server, local, rels, "files/")
        log(f"made and uploaded {args.files} files x {args.size} B in {args.dirs} folders "
            f"({time.monotonic() - t:.1f} s)")
        per = args.files // args.dirs
        remote = bl.Remote(server, work, args.latency_ms, local, rels, "files/", list_prefixes=(
            (f"root ({args.dirs} prefixes, {args.files:,} keys below)", "files/"),
            (f"one folder ({per} keys)", "files/" + rels[0].split("/")[0] + "/")))
        log(remote.summary())
        shim, shim_id = bl.copy_shim(shim, work)
        cachectl = shutil.copy2(cachectl, os.path.join(work, "cachectl"))

        def new_cache(concurrency=CONCURRENCY):
            c = bl.Cache(work, shim, cachectl, remote.endpoint, files_mount, "s3://data/files/", "512MiB",
                         concurrency)
            caches.append(c)
            return c

        def epoch(label, w, c):
            r = bl.run_json(label, bl.epoch_argv("fs", w, files_mount, remote.endpoint), c.env)
            got = {k: r.get(k) for k in expect}
            if got != expect:
                raise bl.Failure(f"{label}: read {got}, expected {expect}")
            if "stderr" in r:
                stderr_seen.setdefault(label.split(",")[0], r["stderr"])
            return r

        # warm-up, not measured: fills nginx's LIST cache with objcache's
        # LISTs, and the OS's caches of Python.
        c = new_cache()
        epoch("warm-up epoch", 2, c)
        c.close()

        for run in range(args.runs):
            for w in (workers if run % 2 == 0 else list(reversed(workers))):
                c = new_cache()
                r1 = epoch(f"cold epoch, {w} readers", w, c)
                s1 = c.stats()
                r2 = epoch(f"warm epoch, {w} readers", w, c)
                s2 = c.stats()
                c.close()
                res["a"][w].append(r1["epoch_s"])
                res["list_s"][w].append(r1["list_s"])
                res["readers"][w].append(r1["reader_s"])
                res["warm"][w].append(r2["epoch_s"])
                res["gets1"][w].append(bl.mount_gets(None, s1))
                res["gets2"][w].append(bl.mount_gets(s1, s2))
                res["all_requests1"][w].append(s1["remote_requests"])
                res["prefetched"][w].append(s1["prefetched_bytes"] / max(1, s1["remote_bytes"]))
                res["errors"][w].append(s2["errors"])
                log(f"run {run + 1}/{args.runs}: {w} readers: cold {r1['epoch_s']:.2f} s "
                    f"(listing {r1['list_s']:.2f} s), {res['gets1'][w][-1]} GETs "
                    f"({res['prefetched'][w][-1] * 100:.0f} % of bytes prefetched), "
                    f"warm {r2['epoch_s']:.3f} s, {res['gets2'][w][-1]} GETs")

        # At the defaults (no prefetch_concurrency: the adaptive limit under a
        # ceiling of 256), 2 readers, the limit sampled: the concurrency it
        # chose is the mean of the samples taken while the epoch ran.
        adaptive = []
        for run in range(args.runs):
            c = new_cache(None)
            with Sampler(c) as smp:
                ra = epoch(f"cold epoch at the defaults, 2 readers (run {run + 1})", 2, c)
            sa = c.stats()
            c.close()
            chosen = [x[5] for x in smp.samples if x[5]]
            adaptive.append({"epoch_s": ra["epoch_s"], "chosen": statistics.mean(chosen) if chosen else 0,
                             "end": sa.get("fetch_concurrency", 0), "reason": sa.get("fetch_concurrency_reason", ""),
                             "gets": bl.mount_gets(None, sa), "errors": sa["errors"]})
            log(f"defaults run {run + 1}/{args.runs}: cold {ra['epoch_s']:.2f} s, limit mean "
                f"{adaptive[-1]['chosen']:.0f}, at the end {adaptive[-1]['end']} ({adaptive[-1]['reason']})")
        res["adaptive"] = adaptive

        # one diagnostic cold epoch (not in the medians): the gate sampled
        w = 2
        c = new_cache()
        with Sampler(c) as smp:
            rd = epoch("diagnostic epoch", w, c)
        sd = c.stats()
        c.close()
        diag = {"epoch_s": rd["epoch_s"], "list_s": rd["list_s"], "samples": smp.samples, "stats": sd, "w": w}
        log(f"diagnostic epoch ({w} readers, gate sampled): {rd['epoch_s']:.2f} s, {len(smp.samples)} samples")
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
    md, figures = render(args, workers, command, started, elapsed, res, remote, diag, stderr_seen,
                         nginx_errors, shim_id, files_mount)
    bl.write_results("cold_epoch", "bench_cold_epoch.py", md, args.out, args.json, figures, command=command,
                     started=started, elapsed=elapsed, runs=args.runs, shim_id=shim_id, remote=remote.json())
    if args.out:
        log(f"wrote {args.out} ({elapsed:.0f} s in all)")
    return 0


def render(args, workers, command, started, elapsed, res, remote, diag, stderr_seen, nginx_errors, shim_id,
           files_mount):
    """The Markdown report and the figures for the json."""
    med = bl.med
    lat = args.latency_ms / 1e3
    nbytes = args.files * args.size
    t_lat = args.files * lat / CONCURRENCY
    t_bw = nbytes / remote.bandwidth
    limit = max(t_lat, t_bw)
    at = {"files": args.files, "size": args.size, "latency_ms": args.latency_ms,
          "prefetch_concurrency": CONCURRENCY, "readers": workers}
    out = ["## The fetcher: cold epochs by reader count through a remote with latency (bench_cold_epoch.py)\n"]
    out.append(f"{args.files:,} files of {args.size // 1024} KiB ({nbytes / 1e6:.0f} MB) in {args.dirs} folders "
               f"in s3rver, read through nginx adding {args.latency_ms:g} ms to every request "
               f"(`bench/latency_remote.py`, {remote.workers} worker processes), mounted at `{files_mount}` with "
               f"`prefetch = \"directory\"` and `prefetch_concurrency = {CONCURRENCY}`, RAM tier only (512 MiB, "
               f"no spill). Each cold epoch starts on a new, empty cache. An epoch: one Python process under the "
               f"shim forks W readers, then (clock started) lists the folders with `os.walk` as ImageFolder does "
               f"and hands the sorted list to the readers; reader w reads files i % W == w with `open().read()`; "
               f"the clock stops when all are done. Median of {args.runs} runs; every epoch's file count, bytes "
               f"and first bytes are checked.\n")
    out += bl.crashes_markdown()
    out += remote.markdown(args.size)
    out.append(f"Bandwidth for the link limit: {remote.bandwidth / 1e6:,.0f} MB/s (the best measured above; the "
               f"remote has no bandwidth cap, so this is a floor of what it can carry).\n")

    out.append("### Cold epoch by W readers\n")
    out.append(f"Link limit = max(objects x latency / concurrency, bytes / bandwidth) = "
               f"max({args.files:,} x {args.latency_ms:g} ms / {CONCURRENCY}, {nbytes / 1e6:.0f} MB / "
               f"{remote.bandwidth / 1e6:,.0f} MB/s) = max({t_lat:.2f}, {t_bw:.2f}) = **{limit:.2f} s**.\n")
    r32 = remote.at(CONCURRENCY)
    practical = args.files / r32["gets_per_s"] if r32 else None
    if practical:
        out.append(f"What the remote itself gave at {CONCURRENCY} in flight (curl, above): {args.files:,} / "
                   f"{r32['gets_per_s']:,.0f} GETs/s = {practical:.2f} s; the column *curl@{CONCURRENCY} / "
                   f"measured* compares with that (information, no target).\n")
    lim_t = targets.threshold_text("fetch.link_limit")
    out.append("| readers | cold epoch s (median) | per run | files/s | limit / measured | target | | "
               f"curl@{CONCURRENCY} / measured | listing s | after listing s | data GETs epoch 1 | "
               "all requests epoch 1 | bytes prefetched | warm epoch s | data GETs warm epoch |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    ratios = {}
    for w in workers:
        m = med(res["a"][w])
        ratios[w] = limit / m
        out.append(f"| {w} | {m:.2f} | {' / '.join(f'{x:.2f}' for x in res['a'][w])} | {args.files / m:,.0f} | "
                   f"**{ratios[w]:.2f}** | {lim_t} | {bl.verdict('fetch.link_limit', ratios[w])} | "
                   f"{practical / m if practical else float('nan'):.2f} | {med(res['list_s'][w]):.2f} | "
                   f"{med([a - b for a, b in zip(res['a'][w], res['list_s'][w])]):.2f} | "
                   f"{' / '.join(str(x) for x in res['gets1'][w])} | "
                   f"{' / '.join(str(x) for x in res['all_requests1'][w])} | "
                   f"{med(res['prefetched'][w]) * 100:.0f} % | {med(res['warm'][w]):.3f} | "
                   f"{' / '.join(str(x) for x in res['gets2'][w])} |")
    meds = {w: med(res["a"][w]) for w in workers}
    flat = max(meds.values()) / min(meds.values())
    all_g1 = [x for w in workers for x in res["gets1"][w]]
    all_g2 = [x for w in workers for x in res["gets2"][w]]
    off1 = max(abs(x - args.files) for x in all_g1)
    most2 = max(all_g2)
    out.append("")
    out.append(f"Flatness (slowest / fastest median over W = {', '.join(map(str, workers))}): **{flat:.2f}** "
               f"(target {targets.threshold_text('fetch.flatness')}): {bl.verdict('fetch.flatness', flat)}.")
    out.append(f"Data GETs (`mounts[0].remote_requests`): epoch 1 {min(all_g1)}..{max(all_g1)} "
               f"(expected {args.files}: {bl.verdict('fetch.gets_cold', off1)}), warm epoch "
               f"{min(all_g2)}..{max(all_g2)} (expected 0: {bl.verdict('fetch.gets_warm', most2)}). "
               f"*All requests* adds LIST/HEAD. Errors counted by the cache: "
               f"{max(x for w in workers for x in res['errors'][w])} at most per epoch.\n")
    stalls = [(i, w, x) for w in workers for i, x in enumerate(res["a"][w]) if x > max(10.0, 3 * meds[w])]
    if stalls:
        out.append("Stalled cold epochs (over 3x their median and 10 s; in the medians above):\n")
        for i, w, x in stalls:
            out.append(f"- run {i + 1}, {w} readers: {x:.2f} s; each reader's read time "
                       f"{', '.join(f'{t:.2f}' for t in res['readers'][w][i])} s; "
                       f"{res['gets1'][w][i]} data GETs")
        out.append("")
    if stalls or off1:
        out.append("Why there are extra GETs or a stall (reproduced on its own while writing this benchmark): "
                   "a reader process leaves (`os._exit`, as multiprocessing's workers do) as soon as its "
                   "share is read, while its own directory-prefetch GETs are still in flight. Their fill "
                   "claims die with it. Once it is gone, a waiter takes the claim over and GETs the page "
                   "again (an extra GET). While it is an unreaped zombie, `kill(pid, 0)` still succeeds, so "
                   "the claim looks alive and waiters sleep until `fill_deadline` (120 s) runs out; the "
                   "parent here reaps its readers in order, so a zombie can outlive the reader that waits "
                   "for it.\n")
    ad = res.get("adaptive", [])
    ad_ratio = None
    if ad:
        out.append("### At the defaults: the adaptive limit (issue 17)\n")
        out.append("The same cold epoch with 2 readers on a config without `prefetch_concurrency` (the limit "
                   "starts at 32 and adapts under a ceiling of 256), `cachectl stats` sampled every 50 ms. The "
                   "concurrency it chose is the mean of the limit over the samples; the link limit at it is "
                   f"max({args.files:,} x {args.latency_ms:g} ms / chosen, bytes / bandwidth).\n")
        out.append("| run | cold epoch s | limit, mean over the epoch | limit at the end (why) | link limit s at "
                   "the mean | limit / measured | data GETs | errors |")
        out.append("|---|---|---|---|---|---|---|---|")
        rs = []
        for i, a in enumerate(ad):
            lim_a = max(args.files * lat / max(1.0, a["chosen"]), t_bw)
            rs.append(lim_a / a["epoch_s"])
            out.append(f"| {i + 1} | {a['epoch_s']:.2f} | {a['chosen']:.0f} | {a['end']} ({a['reason']}) | "
                       f"{lim_a:.2f} | {rs[-1]:.2f} | {a['gets']} | {a['errors']} |")
        ad_ratio = med(rs)
        out.append(f"\nMedian limit / measured: **{ad_ratio:.2f}** (target "
                   f"{targets.threshold_text('fetch.adaptive_link')}: {bl.verdict('fetch.adaptive_link', ad_ratio)}); "
                   f"the epoch itself: {med([a['epoch_s'] for a in ad]):.2f} s against {meds.get(2, 0):.2f} s at "
                   f"`prefetch_concurrency = {CONCURRENCY}`.\n")
    out += diagnostic(args, diag)
    out += bl.report_footer(stderr_seen, nginx_errors, shim_id, started, elapsed, command)

    def per_w(fmt):
        return [(f"{w} reader{'s' if w > 1 else ''}", fmt(w)) for w in workers]
    low = min(ratios.values())
    figures = {
        "fetch.flatness": bl.figure(flat, f"{flat:.2f}", at, per_w(lambda w: f"{meds[w]:.2f} s")),
        "fetch.link_limit": bl.figure(low, f"{low:.2f} (at {min(ratios, key=ratios.get)} readers; limit "
                                           f"{limit:.2f} s)", at, per_w(lambda w: f"{ratios[w]:.2f}")),
        "fetch.gets_cold": bl.figure(off1, f"{min(all_g1)}..{max(all_g1)} (objects {args.files})", at,
                                     per_w(lambda w: " / ".join(map(str, res["gets1"][w])))),
        "fetch.gets_warm": bl.figure(most2, f"{min(all_g2)}..{max(all_g2)}", at,
                                     per_w(lambda w: " / ".join(map(str, res["gets2"][w])))),
    }
    if ad_ratio is not None:
        figures["fetch.adaptive_link"] = bl.figure(
            ad_ratio, f"{ad_ratio:.2f} (limit mean {med([a['chosen'] for a in ad]):.0f})",
            {"files": args.files, "size": args.size, "latency_ms": args.latency_ms,
             "prefetch_concurrency": "default", "readers": 2})
    return "\n".join(out) + "\n", figures


def diagnostic(args, diag):
    s, st = diag["samples"], diag["stats"]
    out = ["### Diagnostic: the gate during one more cold epoch\n"]
    if not s:
        return out + ["No `cachectl stats` samples were taken.\n"]
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
    for x in s[::max(1, len(s) // 16)]:
        out.append(f"| {x[0]:.2f} | {x[1]} | {x[2]} | {x[3] / 1e6:.1f} |")
    out.append("")
    return out


if __name__ == "__main__":
    try:
        sys.exit(main())
    except bl.Failure as e:
        log(f"FAILED: {e}")
        sys.exit(1)
