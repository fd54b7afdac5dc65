#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The library API (issue 14) against local disk and against the shim.

  /usr/bin/python3 bench/bench_api.py [--build build] [--runs 3] [--files 2000] [--out bench/results/api.md]

Two figures, medians of --runs runs, with examples/loader.cpp (built as
build/examples/example_loader; 8 threads, each opening an object, reading
it whole into its own buffer with File::pread and dropping it):
- warm: files/s of the loader over 100 KiB objects already in the cache
  (URIs, no mount, no shim), over files/s of the same loop reading the
  same files from local disk with open/pread/close (`--posix`), in the
  same run (the local files in the kernel's page cache);
- cold, through a remote adding 20 ms to every request
  (bench/latency_remote.py): the loader given the keys in a shuffled
  order with `--prefetch` (Cache::prefetch(keys) first) on a new cache,
  against the same loop (`--posix`, same shuffled order) reading the
  mounted paths under the shim with prefetch = "directory"; the ratio
  is shim seconds / API seconds. Twice: 8 threads reading as fast as they
  can, and 2 threads that wait --step-us after each file (a training step
  on an accelerator), where the order the fetches come in matters most.
Every run checks the bytes read (the loader's byte count against the
files'). Writes the Markdown report (--out) and prints it; asserts
nothing about speed. Not part of `make bench` (yet)."""
import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

mf = bl.mf
lr = bl.lr
log = bl.logger("bench_api")
LINE = re.compile(r"loader: (\d+) files, (\d+) bytes, (\d+) threads, ([\d.]+) s: ([\d.]+) files/s")


def loader(exe, args, env, want_files, want_bytes):
    p = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=1800)
    m = LINE.search(p.stdout)
    if p.returncode != 0 or not m:
        raise bl.Failure(f"loader {' '.join(args[:6])}...: exit {p.returncode}\n{p.stdout}\n{p.stderr[-3000:]}")
    files, size, secs, fps = int(m.group(1)), int(m.group(2)), float(m.group(4)), float(m.group(5))
    if files != want_files or size != want_bytes:
        raise bl.Failure(f"loader read {files} files, {size} bytes; expected {want_files}, {want_bytes}")
    return secs, fps


def config(path, name, endpoint, mount=None, concurrency=bl.CONCURRENCY):
    with open(path, "w") as f:
        f.write(f'[cache]\nname = "{name}"\nmemory = "1GiB"\nspill_dir = ""\npage_size = "1MiB"\n\n'
                f'[store]\nendpoint = "{endpoint}"\nregion = "us-east-1"\ncredentials = "env"\n'
                f'prefetch_concurrency = {concurrency}\n')
        if mount:
            f.write(f'\n[[mount]]\npath = "{mount[0]}"\nsource = "{mount[1]}"\nprefetch = "directory"\n')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=100 * 1024)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--step-us", type=int, default=1500,
                    help="the 2-thread cold loop's wait per file (a training step)")
    ap.add_argument("--out", default=os.path.join(bl.REPO, "bench", "results", "api.md"))
    args = ap.parse_args()
    exe, shim = bl.build_paths(args.build, log, "examples/example_loader", "preload/libobjcache_preload.so")
    work = tempfile.mkdtemp(prefix="objcache-bench-api-")
    seq = [0]

    def fresh(endpoint, mount=None):
        seq[0] += 1
        name = f"ba{os.getpid()}-{seq[0]}"
        shm = tempfile.mkdtemp(prefix="objcache-bench-api-shm-", dir="/dev/shm")
        cfg = os.path.join(work, name + ".toml")
        config(cfg, name, endpoint, mount)
        env = dict(os.environ, OBJCACHE_SHM_DIR=shm, OBJCACHE_CONFIG=cfg, AWS_ACCESS_KEY_ID=mf.ACCESS_KEY,
                   AWS_SECRET_ACCESS_KEY=mf.SECRET_KEY)
        env.pop("LD_PRELOAD", None)
        return cfg, shm, env

    srv = remote = None
    try:
        local = os.path.join(work, "local")
        log(f"making {args.files} files of {args.size} bytes")
        rels, _, _ = bl.make_files(local, args.files, args.size, 10)
        srv = mf.S3Server(work)
        prefix = "api/"
        bl.upload(srv, local, rels, prefix)
        total = args.files * args.size
        uris = os.path.join(work, "uris.txt")
        with open(uris, "w") as f:
            f.write("".join(f"s3://{mf.BUCKET}/{prefix}{r}\n" for r in rels))
        paths = os.path.join(work, "local.txt")
        with open(paths, "w") as f:
            f.write("".join(os.path.join(local, r) + "\n" for r in rels))
        bl.warm_page_cache(local)

        # ---- warm: the API over a filled cache vs local pread
        cfg, shm, env = fresh(srv.endpoint)
        th = ["--threads", str(args.threads)]
        loader(exe, ["--config", cfg, *th, f"@{uris}"], env, args.files, total)  # fills the cache
        api_warm, local_warm = [], []
        for r in range(args.runs):
            local_warm.append(loader(exe, ["--posix", *th, f"@{paths}"], env, args.files, total)[1])
            api_warm.append(loader(exe, ["--config", cfg, *th, f"@{uris}"], env, args.files, total)[1])
            log(f"warm run {r + 1}: API {api_warm[-1]:,.0f} files/s, local pread {local_warm[-1]:,.0f} files/s")
        shutil.rmtree(shm, ignore_errors=True)
        warm_ratio = statistics.median(api_warm) / statistics.median(local_warm)

        # ---- cold through 20 ms: prefetch(keys) in the order read vs the shim's directory prefetch
        remote = lr.LatencyRemote(srv.dir, srv.port, args.latency_ms, workdir=work, cache_lists=True)
        mount = "/mnt/objcache-bench-api"
        src = f"s3://{mf.BUCKET}/{prefix}"
        # One unmeasured epoch under the shim fills the remote's LIST replies
        # (s3rver is CPU-bound at LIST), so a LIST costs the delay for both.
        cfg, shm, env = fresh(remote.endpoint, (mount, src))
        env["LD_PRELOAD"] = shim
        with open(os.path.join(work, "warmup.txt"), "w") as f:
            f.write("".join(f"{mount}/{x}\n" for x in rels[:: max(1, len(rels) // 50)]))
        loader(exe, ["--posix", "--threads", "4", f"@{os.path.join(work, 'warmup.txt')}"], env,
               len(rels[:: max(1, len(rels) // 50)]), len(rels[:: max(1, len(rels) // 50)]) * args.size)
        shutil.rmtree(shm, ignore_errors=True)
        loops = [("8 threads, no step", ["--threads", str(args.threads)]),
                 (f"2 threads, {args.step_us} us step per file", ["--threads", "2", "--step-us", str(args.step_us)])]
        cold = {label: ([], []) for label, _ in loops}
        for r in range(args.runs):
            order = list(rels)
            random.Random(100 + r).shuffle(order)
            su = os.path.join(work, f"uris-{r}.txt")
            sp = os.path.join(work, f"paths-{r}.txt")
            with open(su, "w") as f:
                f.write("".join(f"{src}{x}\n" for x in order))
            with open(sp, "w") as f:
                f.write("".join(f"{mount}/{x}\n" for x in order))
            for label, largs in loops:
                cfg, shm, env = fresh(remote.endpoint, (mount, src))
                a = loader(exe, ["--config", cfg, *largs, "--prefetch", f"@{su}"], env, args.files, total)[0]
                shutil.rmtree(shm, ignore_errors=True)
                cfg, shm, env = fresh(remote.endpoint, (mount, src))
                env["LD_PRELOAD"] = shim
                b = loader(exe, ["--posix", *largs, f"@{sp}"], env, args.files, total)[0]
                shutil.rmtree(shm, ignore_errors=True)
                cold[label][0].append(a)
                cold[label][1].append(b)
                log(f"cold run {r + 1}, {label}: API prefetch(keys) {a:.2f} s, shim directory prefetch {b:.2f} s")

        md = [
            "# The library API (issue 14)\n",
            f"Reproduce: `{bl.command_line('bench_api.py')}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{os.cpu_count()} cores). {args.files} objects of {args.size} bytes, examples/loader.cpp with "
            f"{args.threads} threads, medians of {args.runs} runs.\n",
            "| figure | objcache API | comparison | ratio | target |",
            "|---|---|---|---|---|",
            f"| warm files/s (cache filled; local files in the kernel's page cache) | "
            f"{statistics.median(api_warm):,.0f} | local open/pread/close {statistics.median(local_warm):,.0f} | "
            f"{warm_ratio:.2f} | >= 1.0 |",
        ] + [
            f"| cold shuffled epoch through {args.latency_ms:g} ms, {label} (s) | prefetch(keys) "
            f"{statistics.median(a):.2f} | shim, directory prefetch {statistics.median(b):.2f} | "
            f"{statistics.median(b) / statistics.median(a):.2f}x | >= 1.3x |" for label, (a, b) in cold.items()
        ] + [
            "",
            f"Runs: warm API {', '.join(f'{x:,.0f}' for x in api_warm)}; local {', '.join(f'{x:,.0f}' for x in local_warm)}; "
            + "; ".join(f"cold {label}: API {', '.join(f'{x:.2f}' for x in a)} s, shim {', '.join(f'{x:.2f}' for x in b)} s"
                        for label, (a, b) in cold.items()) + ".",
            "",
            f"Load average when done: {os.getloadavg()[0]:.1f} (other builds share the cores).",
        ]
        text = "\n".join(md) + "\n"
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        print(text)
        return 0
    except bl.Failure as e:
        log(f"FAILED: {e}")
        return 1
    finally:
        if remote:
            remote.close()
        if srv:
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
