#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The library API (issue 14) against local disk and against the shim.

  /usr/bin/python3 bench/bench_api.py [--build build] [--runs 3] [--files 2000] [--out bench/results/api.md]

Three figures, medians of --runs runs, each judged once (bench/targets.py):
- api.warm: examples/loader.cpp (built as build/examples/example_loader;
  8 threads, each opening an object, reading it whole into its own buffer
  with File::pread and dropping it) over 100 KiB objects already in the
  cache (URIs, no mount, no shim), --epochs passes in one process, in
  files/s, over the same loop reading the same files from local disk with
  open/pread/close (`--posix`) in the same run (the local files in the
  kernel's page cache). One pass in a fresh process is shown beside it:
  there the first touch of each shared page costs a page fault that local
  disk does not pay (issue 17, huge pages);
- api.cold_order: through a remote adding 20 ms to every request
  (bench/latency_remote.py), the loader given the keys in a shuffled order
  with `--prefetch` (Cache::prefetch(keys) first) on a new cache, against
  the same loop (`--posix`, same shuffled order) reading the mounted paths
  under the shim with prefetch = "directory"; the ratio is shim seconds /
  API seconds. Judged with 2 threads that wait --step-us after each file
  (a training step: the consumer, not the link, sets the pace, so the
  order the fetches come in decides how often it waits); 8 threads with no
  step (bound by the link at prefetch_concurrency, where order cannot
  matter) is shown beside it;
- api.python_warm: one PyTorch DataLoader loop (2 forked workers, batch
  16, shuffled with a fixed seed, each sample the object's bytes read
  whole) over objcache.MapDataset (the ctypes module, URIs) and over a
  Dataset of the mounted paths read with open() under the shim, warm,
  epochs 2 and 3 of a fresh process each; the ratio of the medians is
  Dataset seconds / shim seconds.
Every run checks the bytes read (the loader's byte count against the
files'; the DataLoader's sample sizes). Writes the Markdown report (--out)
and its json (bench/report.py reads it) and prints it; asserts nothing
about speed."""
import argparse
import datetime
import json
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
import targets  # noqa: E402

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


# A DataLoader loop, the same for both: `api` reads objcache.MapDataset over
# URIs, `shim` a Dataset of paths read with open(). Prints one JSON line:
# seconds per epoch and the bytes of every epoch.
PY_LOOP = r"""
import json, sys, time
import torch.utils.data
mode, names = sys.argv[1], open(sys.argv[2]).read().split()
epochs = int(sys.argv[3])
if mode == "api":
    import objcache
    ds = objcache.MapDataset.from_uris(names, transform=lambda f: len(f.read()))
else:
    class Paths(torch.utils.data.Dataset):
        def __len__(self):
            return len(names)
        def __getitem__(self, i):
            with open(names[i], "rb", buffering=0) as f:
                return len(f.read())
    ds = Paths()
g = torch.Generator()
g.manual_seed(7)
dl = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True, num_workers=2, generator=g,
                                 multiprocessing_context="fork", collate_fn=list)
secs, sizes = [], []
for _ in range(epochs):
    t = time.monotonic()
    n = sum(sum(b) for b in dl)
    secs.append(time.monotonic() - t)
    sizes.append(n)
print(json.dumps({"seconds": secs, "bytes": sizes}))
"""


def py_loop(mode, names_file, env, want_bytes, epochs=2):
    p = subprocess.run(["/usr/bin/python3", "-c", PY_LOOP, mode, names_file, str(epochs)], env=env,
                       capture_output=True, text=True, timeout=1800)
    try:
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise bl.Failure(f"DataLoader loop ({mode}): exit {p.returncode}\\n{p.stdout[-2000:]}\\n{p.stderr[-3000:]}")
    if p.returncode != 0 or any(b != want_bytes for b in out["bytes"]):
        raise bl.Failure(f"DataLoader loop ({mode}) read {out['bytes']} bytes, expected {want_bytes} per epoch")
    return out["seconds"]


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
    ap.add_argument("--epochs", type=int, default=5, help="passes of the warm loader in one process")
    ap.add_argument("--out", default=os.path.join(bl.REPO, "bench", "results", "api.md"))
    ap.add_argument("--json", default=None, help="write the json here (default: --out with .json)")
    args = ap.parse_args()
    command = bl.command_line("bench_api.py")
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
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
        ep = ["--repeat", str(args.epochs)]
        n_ep = args.files * args.epochs
        api_warm, local_warm, api_fresh, local_fresh = [], [], [], []
        for r in range(args.runs):
            local_warm.append(loader(exe, ["--posix", *th, *ep, f"@{paths}"], env, n_ep, total * args.epochs)[1])
            api_warm.append(loader(exe, ["--config", cfg, *th, *ep, f"@{uris}"], env, n_ep, total * args.epochs)[1])
            local_fresh.append(loader(exe, ["--posix", *th, f"@{paths}"], env, args.files, total)[1])
            api_fresh.append(loader(exe, ["--config", cfg, *th, f"@{uris}"], env, args.files, total)[1])
            log(f"warm run {r + 1}: {args.epochs} passes: API {api_warm[-1]:,.0f} files/s, local pread "
                f"{local_warm[-1]:,.0f}; one pass in a fresh process: API {api_fresh[-1]:,.0f}, local "
                f"{local_fresh[-1]:,.0f}")
        shutil.rmtree(shm, ignore_errors=True)
        warm_ratio = statistics.median(api_warm) / statistics.median(local_warm)
        fresh_ratio = statistics.median(api_fresh) / statistics.median(local_fresh)

        # ---- Python: the same DataLoader loop over MapDataset and over the shim, warm
        mount = "/mnt/objcache-bench-api"
        src = f"s3://{mf.BUCKET}/{prefix}"
        cfg, shm, env = fresh(srv.endpoint, (mount, src))
        env["PYTHONPATH"] = os.path.join(bl.REPO, "python")
        env["OBJCACHE_LIB"] = os.path.join(os.path.abspath(args.build), "libcache", "libobjcache.so")
        shim_env = dict(env, LD_PRELOAD=shim)
        mpaths = os.path.join(work, "mounted.txt")
        with open(mpaths, "w") as f:
            f.write("".join(f"{mount}/{r}\n" for r in rels))
        py_loop("api", uris, env, total, epochs=1)  # fills the cache (and the URIs' metadata)
        py_loop("shim", mpaths, shim_env, total, epochs=1)  # and the mount's metadata
        py_api, py_shim = [], []
        for r in range(args.runs):
            # Epochs 2 and 3 of each process: the first of a process pays its
            # workers' first touch of the shared pages, for both loops alike.
            py_api += py_loop("api", uris, env, total, epochs=3)[1:]
            py_shim += py_loop("shim", mpaths, shim_env, total, epochs=3)[1:]
            log(f"python run {r + 1}: MapDataset {py_api[-2]:.3f}, {py_api[-1]:.3f} s, shim {py_shim[-2]:.3f}, "
                f"{py_shim[-1]:.3f} s (epochs 2, 3)")
        shutil.rmtree(shm, ignore_errors=True)
        py_ratio = statistics.median(py_api) / statistics.median(py_shim)

        # ---- cold through 20 ms: prefetch(keys) in the order read vs the shim's directory prefetch
        remote = lr.LatencyRemote(srv.dir, srv.port, args.latency_ms, workdir=work, cache_lists=True)
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

        labels = [label for label, _ in loops]
        judged, other = labels[1], labels[0]
        ca, cb = (statistics.median(x) for x in cold[judged])
        oa, ob = (statistics.median(x) for x in cold[other])
        elapsed = time.monotonic() - t_start
        warm_at = {"files": args.files, "size": args.size, "threads": args.threads, "epochs": args.epochs}
        cold_at = {"files": args.files, "size": args.size, "latency_ms": args.latency_ms,
                   "prefetch_concurrency": bl.CONCURRENCY, "threads": 2, "step_us": args.step_us}
        py_at = {"files": args.files, "size": args.size, "num_workers": 2, "epochs": [2, 3]}
        figures = {
            "api.warm": bl.figure(warm_ratio, f"{warm_ratio:.2f} ({statistics.median(api_warm):,.0f} vs "
                                  f"{statistics.median(local_warm):,.0f} files/s)", warm_at,
                                  others=[("1 pass in a fresh process",
                                           f"{fresh_ratio:.2f} ({statistics.median(api_fresh):,.0f} vs "
                                           f"{statistics.median(local_fresh):,.0f} files/s)")]),
            "api.cold_order": bl.figure(cb / ca, f"{cb / ca:.2f}x ({cb:.2f} s / {ca:.2f} s)", cold_at,
                                        others=[(f"{args.threads} threads, no step (link-bound)",
                                                 f"{ob / oa:.2f}x ({ob:.2f} s / {oa:.2f} s)")]),
            "api.python_warm": bl.figure(py_ratio, f"{py_ratio:.2f}x ({statistics.median(py_api):.3f} s / "
                                         f"{statistics.median(py_shim):.3f} s)", py_at),
        }

        def verdict(tid, value):
            t = targets.get(tid)
            return f"{'met' if t.met(value) else '**MISSED**'} ({t.threshold_text()})"

        md = [
            "# The library API (issue 14)\n",
            f"Reproduce: `{command}` ({started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
            f"{elapsed:.0f} s). {args.files} objects of {args.size} bytes, medians of {args.runs} runs.\n",
            "| figure | objcache | comparison | ratio | verdict |",
            "|---|---|---|---|---|",
            f"| warm, examples/loader.cpp, {args.threads} threads, {args.epochs} passes in one process (files/s) | "
            f"{statistics.median(api_warm):,.0f} | local open/pread/close {statistics.median(local_warm):,.0f} | "
            f"{warm_ratio:.2f} | {verdict('api.warm', warm_ratio)} |",
            f"| the same, one pass in a fresh process (information) | {statistics.median(api_fresh):,.0f} | "
            f"{statistics.median(local_fresh):,.0f} | {fresh_ratio:.2f} | — |",
            f"| cold shuffled epoch through {args.latency_ms:g} ms, {judged} (s) | prefetch(keys) {ca:.2f} | "
            f"shim, directory prefetch {cb:.2f} | {cb / ca:.2f}x | {verdict('api.cold_order', cb / ca)} |",
            f"| the same, {other} (information: bound by the link) | {oa:.2f} | {ob:.2f} | {ob / oa:.2f}x | — |",
            f"| warm DataLoader epoch (2 workers), objcache.MapDataset vs a Dataset of mounted paths under the "
            f"shim (s) | {statistics.median(py_api):.3f} | {statistics.median(py_shim):.3f} | {py_ratio:.2f}x | "
            f"{verdict('api.python_warm', py_ratio)} |",
            "",
            f"Runs: warm API {', '.join(f'{x:,.0f}' for x in api_warm)}; local {', '.join(f'{x:,.0f}' for x in local_warm)}; "
            f"fresh API {', '.join(f'{x:,.0f}' for x in api_fresh)}; local {', '.join(f'{x:,.0f}' for x in local_fresh)}; "
            + "; ".join(f"cold {label}: API {', '.join(f'{x:.2f}' for x in a)} s, shim {', '.join(f'{x:.2f}' for x in b)} s"
                        for label, (a, b) in cold.items())
            + f"; Python MapDataset {', '.join(f'{x:.3f}' for x in py_api)} s, shim {', '.join(f'{x:.3f}' for x in py_shim)} s.",
            "",
            f"Tree {bl.tree_state()}; load average when done: {os.getloadavg()[0]:.1f}.",
        ]
        bl.write_results("api", "bench_api.py", "\n".join(md) + "\n", args.out, args.json, figures,
                         command=command, started=started, elapsed=elapsed, runs=args.runs,
                         remote={"latency_ms": args.latency_ms, "proxy": "bench/latency_remote.py",
                                 "if_match_checked": False})
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
