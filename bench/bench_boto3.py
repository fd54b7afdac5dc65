# SPDX-License-Identifier: Apache-2.0
"""Without the accelerator (issue 5): the cold epoch of bench_cold_epoch.py
with boto3 get_object per file against the same epoch through objcache, on
the same data through the same remote with latency, in the same run.

  /usr/bin/python3 bench/bench_boto3.py [--build build] [--runs 3] [--out bench/results/boto3.md]

2,000 files of 100 KiB in 10 folders in s3rver behind nginx adding
--latency-ms (20) to every request (bench/latency_remote.py, LIST replies
kept; its capacity is measured in the same run). Each run measures, in
alternating order, one boto3 epoch and one objcache cold epoch with
--readers (2) reader processes: for boto3 each reader has its own client
(made before the clock starts), the listing is ListObjectsV2 and every file
a get_object; for objcache the epoch is benchlib's EPOCH under the shim on a
new, empty cache (prefetch = "directory", prefetch_concurrency = 32). The
figure is the median boto3 epoch over the median objcache cold epoch.

Writes the Markdown report (--out) and results/boto3.json beside it for
bench/report.py; asserts nothing about speed (exit 1 only when a read
returned wrong bytes or a step failed).
"""
import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import targets  # noqa: E402

mf = bl.mf
log = bl.logger("bench_boto3")
CONCURRENCY = bl.CONCURRENCY


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the meson build directory")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=targets.FILES)
    ap.add_argument("--size", type=int, default=targets.SIZE)
    ap.add_argument("--dirs", type=int, default=10)
    ap.add_argument("--readers", type=int, default=2, help="reader processes for both methods")
    ap.add_argument("--latency-ms", type=float, default=float(targets.LATENCY_MS))
    ap.add_argument("--out", default=None, help="write the Markdown report here (and the json beside it)")
    ap.add_argument("--json", default=None, help="write the json here (default: --out with .json)")
    args = ap.parse_args()
    if min(args.runs, args.files, args.dirs, args.readers) < 1 or args.size < 8:
        ap.error("--runs, --files, --dirs, --readers >= 1 and --size >= 8")
    shim, cachectl = bl.build_paths(args.build, log, "preload/libobjcache_preload.so", "tools/cachectl")
    command = bl.command_line("bench_boto3.py")
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()

    work = tempfile.mkdtemp(prefix="objcache-bench-boto3-")
    files_mount = f"/mnt/objcache-bench-boto3-{os.getpid()}/files"
    server = remote = None
    caches = []
    res = {"boto3": [], "boto3_list_s": [], "objcache": [], "objcache_gets": []}
    W = args.readers
    try:
        t = time.monotonic()
        local = os.path.join(work, "files")
        rels, _, sample = bl.make_files(local, args.files, args.size, args.dirs)
        expect = {"files": args.files, "bytes": args.files * args.size, "sample": f"{sample:016x}"}
        server = mf.S3Server(work)
        bl.upload(server, local, rels, "files/")
        log(f"made and uploaded {args.files} files x {args.size} B in {args.dirs} folders "
            f"({time.monotonic() - t:.1f} s)")
        remote = bl.Remote(server, work, args.latency_ms, local, rels, "files/")
        log(remote.summary())
        shim, shim_id = bl.copy_shim(shim, work)
        cachectl = shutil.copy2(cachectl, os.path.join(work, "cachectl"))
        plain_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}

        def epoch(label, mode, root, env):
            r = bl.run_json(label, bl.epoch_argv(mode, W, root, remote.endpoint), env)
            got = {k: r.get(k) for k in expect}
            if got != expect:
                raise bl.Failure(f"{label}: read {got}, expected {expect}")
            return r

        def objcache(label):
            c = bl.Cache(work, shim, cachectl, remote.endpoint, files_mount, "s3://data/files/", "512MiB")
            caches.append(c)
            r = epoch(label, "fs", files_mount, c.env)
            r["gets"] = bl.mount_gets(None, c.stats())
            c.close()
            return r

        # warm-up, not measured: both methods' LISTs into nginx's LIST cache.
        objcache("warm-up objcache epoch")
        for _ in bl.s3_client(remote.endpoint).get_paginator("list_objects_v2").paginate(
                Bucket=mf.BUCKET, Prefix="files/"):
            pass

        for run in range(args.runs):
            for method in (("boto3", "objcache") if run % 2 == 0 else ("objcache", "boto3")):
                if method == "boto3":
                    rb = epoch(f"boto3, {W} readers", "boto3", "files/", plain_env)
                    res["boto3"].append(rb["epoch_s"])
                    res["boto3_list_s"].append(rb["list_s"])
                else:
                    ro = objcache(f"objcache cold epoch, {W} readers")
                    res["objcache"].append(ro["epoch_s"])
                    res["objcache_gets"].append(ro["gets"])
            log(f"run {run + 1}/{args.runs}: {W} readers: boto3 {res['boto3'][-1]:.2f} s, objcache cold "
                f"{res['objcache'][-1]:.2f} s ({res['objcache_gets'][-1]} GETs)")
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
    med = bl.med
    mb, mo = med(res["boto3"]), med(res["objcache"])
    rb = mb / mo
    out = ["## Without the accelerator: boto3 against objcache's cold epoch (bench_boto3.py)\n"]
    out.append(f"{args.files:,} files of {args.size // 1024} KiB ({args.files * args.size / 1e6:.0f} MB) in "
               f"{args.dirs} folders in s3rver, through nginx adding {args.latency_ms:g} ms to every request. The "
               f"epoch of `bench_cold_epoch.py` with {W} reader processes, by two methods in the same run "
               f"(alternating order): boto3, each reader with its own client (made before the clock starts), "
               f"listing with ListObjectsV2 and a `get_object` per file; objcache, the same epoch under the shim "
               f"on a new, empty cache (`prefetch = \"directory\"`, `prefetch_concurrency = {CONCURRENCY}`, "
               f"512 MiB RAM tier). Median of {args.runs} runs; every epoch's file count, bytes and first bytes "
               f"are checked.\n")
    out += bl.crashes_markdown()
    out += remote.markdown(args.size)
    out.append("### boto3 / objcache\n")
    out.append("| readers | boto3 s (median) | per run | files/s | listing s | objcache cold s (median) | per run "
               "| data GETs | boto3 / objcache | target | |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    out.append(f"| {W} | {mb:.2f} | {' / '.join(f'{x:.2f}' for x in res['boto3'])} | {args.files / mb:,.0f} | "
               f"{med(res['boto3_list_s']):.2f} | {mo:.2f} | {' / '.join(f'{x:.2f}' for x in res['objcache'])} | "
               f"{' / '.join(map(str, res['objcache_gets']))} | **{rb:.1f}** | "
               f"{targets.threshold_text('fetch.boto3')} | {bl.verdict('fetch.boto3', rb)} |")
    out.append("")
    if nginx_errors:
        out.append(f"nginx error log: {len(nginx_errors)} lines, first `{nginx_errors[0][:300]}`\n")
    out.append(f"Machine: {bl.machine()}; load average at the end {os.getloadavg()[0]:.1f} (other work shares "
               f"it, so numbers are noisy). Tree: {bl.tree_state()}; {shim_id}. Date: {started:%Y-%m-%d %H:%M} "
               f"UTC; the whole run took {elapsed:.0f} s.")
    out.append("")
    out.append(f"Reproduce: `{command}` (or `make bench`).")
    at = {"files": args.files, "size": args.size, "latency_ms": args.latency_ms,
          "prefetch_concurrency": CONCURRENCY, "readers": W}
    figures = {"fetch.boto3": bl.figure(rb, f"{rb:.1f}x ({mb:.2f} s / {mo:.2f} s)", at)}
    bl.write_results("boto3", "bench_boto3.py", "\n".join(out) + "\n", args.out, args.json, figures,
                     command=command, started=started, elapsed=elapsed, runs=args.runs, shim_id=shim_id,
                     remote=remote.json())
    if args.out:
        log(f"wrote {args.out} ({elapsed:.0f} s in all)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except bl.Failure as e:
        log(f"FAILED: {e}")
        sys.exit(1)
