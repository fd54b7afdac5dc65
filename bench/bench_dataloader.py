# SPDX-License-Identifier: Apache-2.0
"""The whole loop (issue 5): torchvision ImageFolder + DataLoader over
JPEGs on local disk, through boto3, and through objcache at several
prefetch_concurrency settings, via a remote with latency, in the same run.

  /usr/bin/python3 bench/bench_dataloader.py [--build build] [--runs 5] [--out bench/results/dataloader.md]

640 JPEGs of ~100 KiB in 10 class folders in s3rver behind nginx adding
--latency-ms (20) to every request (bench/latency_remote.py, LIST replies
kept; its capacity is measured in the same run). ImageFolder +
DataLoader(num_workers=2, batch_size=32, shuffle with a fixed seed, PIL
decode + ToTensor, no model): local disk (page cache warm), a Dataset doing
boto3 get_object per sample through the remote, and objcache cold (first
epoch on a new cache) and warm (second epoch, same process and cache) at
prefetch_concurrency 32 (the default, which the targets judge), 64 and 128
in alternating order. Epoch 1 includes building the dataset (the listing).
--runs (5) runs, as this decode-bound epoch is noisy; each run measures
them one after another, and the figures are the medians of the per-run
ratios (objcache / local disk within a run).

Writes the Markdown report (--out) and results/dataloader.json beside it
for bench/report.py; asserts nothing about speed (exit 1 only when a read
returned wrong bytes or a step failed).
"""
import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import targets  # noqa: E402

mf = bl.mf
log = bl.logger("bench_dataloader")
PY = bl.PY
CONCURRENCY = bl.CONCURRENCY
# objcache at the default prefetch_concurrency and at 2x and 4x it: a
# shuffled sampler reads at random while the prefetch goes in listing
# order, so a worker's first reads miss until most of the data set is in,
# and that time is set by how many GETs are in flight.
# DEFAULTS (None): no prefetch_concurrency in the config, so the library's
# default: a limit that adapts under a ceiling of 256 (issue 17's targets).
DEFAULTS = None
LOOP_CONCURRENCY = (CONCURRENCY, 2 * CONCURRENCY, 4 * CONCURRENCY, DEFAULTS)


def setting(n):
    return "defaults (adaptive, ceiling 256)" if n is DEFAULTS else f"prefetch_concurrency {n}"

# python3 -c LOOP MODE ROOT EPOCHS [ENDPOINT BUCKET]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the meson build directory")
    ap.add_argument("--runs", type=int, default=5,
                    help="runs (the DataLoader epoch is decode-bound, ~1.5 s, and noisy)")
    ap.add_argument("--jpegs", type=int, default=targets.JPEGS)
    ap.add_argument("--latency-ms", type=float, default=float(targets.LATENCY_MS))
    ap.add_argument("--out", default=None, help="write the Markdown report here (and the json beside it)")
    ap.add_argument("--json", default=None, help="write the json here (default: --out with .json)")
    args = ap.parse_args()
    if min(args.runs, args.jpegs) < 1:
        ap.error("--runs and --jpegs >= 1")
    shim, cachectl = bl.build_paths(args.build, log, "preload/libobjcache_preload.so", "tools/cachectl")
    command = bl.command_line("bench_dataloader.py")
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()

    work = tempfile.mkdtemp(prefix="objcache-bench-dataloader-")
    imgs_mount = f"/mnt/objcache-bench-dataloader-{os.getpid()}/imgs"
    server = remote = None
    caches = []
    res = {"local1": [], "local2": [], "boto3": [], "cold": {n: [] for n in LOOP_CONCURRENCY},
           "warm": {n: [] for n in LOOP_CONCURRENCY}, "gets": {n: [] for n in LOOP_CONCURRENCY}}
    stderr_seen = {}
    try:
        t = time.monotonic()
        jpeg_root = os.path.join(work, "jpegs")
        jrels, jbytes = make_jpegs(jpeg_root, args.jpegs, 10)
        server = mf.S3Server(work)
        bl.upload(server, jpeg_root, jrels, "jpegs/")
        log(f"made and uploaded {len(jrels)} JPEGs ({jbytes / len(jrels) / 1024:.0f} KiB avg) "
            f"({time.monotonic() - t:.1f} s)")
        remote = bl.Remote(server, work, args.latency_ms, jpeg_root, jrels, "jpegs/")
        log(remote.summary())
        shim, shim_id = bl.copy_shim(shim, work)
        cachectl = shutil.copy2(cachectl, os.path.join(work, "cachectl"))
        plain_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}

        def new_cache(concurrency=CONCURRENCY):
            c = bl.Cache(work, shim, cachectl, remote.endpoint, imgs_mount, "s3://data/jpegs/", "256MiB",
                         concurrency)
            caches.append(c)
            return c

        # warm-up, not measured: boto3's LIST into nginx's LIST cache; torch
        # imported and the mount listed under the shim (objcache's LISTs).
        for _ in bl.s3_client(remote.endpoint).get_paginator("list_objects_v2").paginate(
                Bucket=mf.BUCKET, Prefix="jpegs/"):
            pass
        c = new_cache()
        p = subprocess.run([PY, "-c", "import os, sys, torch, torchvision\nfor _ in os.walk(sys.argv[1]): pass\n"
                            "print('listed')", imgs_mount], env=c.env, capture_output=True, text=True, timeout=300)
        if p.returncode < 0 and p.stdout.strip() == "listed":
            bl.note_crash("warm-up listing of the JPEG mount (import torch; os.walk; exit)", p)
        elif p.returncode != 0:
            raise bl.Failure(f"warm-up listing: exit {p.returncode}: {p.stderr.strip()[-1000:]}")
        c.close()

        ref = {}

        def loop(label, argv, env, epochs):
            r = bl.run_json(label, argv, env)
            if r["samples"] != [args.jpegs] * epochs:
                raise bl.Failure(f"{label}: samples {r['samples']}, expected {[args.jpegs] * epochs}")
            ref.setdefault("label_sums", r["label_sums"][0])
            if any(x != ref["label_sums"] for x in r["label_sums"]):
                raise bl.Failure(f"{label}: label sums {r['label_sums']} != {ref['label_sums']}")
            if "stderr" in r:
                stderr_seen.setdefault(label, r["stderr"])
            return r

        for run in range(args.runs):
            bl.warm_page_cache(jpeg_root)
            rl = loop("local disk", [PY, "-c", LOOP, "fs", jpeg_root, "2"], plain_env, 2)
            rb = loop("boto3 Dataset", [PY, "-c", LOOP, "boto3", "jpegs/", "1", remote.endpoint, mf.BUCKET],
                      plain_env, 1)
            res["local1"].append(rl["epoch_s"][0])
            res["local2"].append(rl["epoch_s"][1])
            res["boto3"].append(rb["epoch_s"][0])
            said = []
            for n in (LOOP_CONCURRENCY if run % 2 == 0 else tuple(reversed(LOOP_CONCURRENCY))):
                c = new_cache(n)
                label = f"objcache, {setting(n)}"
                ro = loop(label, [PY, "-c", LOOP, "fs", imgs_mount, "2"], c.env, 2)
                so = c.stats()
                c.close()
                if ro["means"] != rl["means"]:
                    raise bl.Failure(f"{label}: batch means {ro['means']} != local {rl['means']}")
                res["cold"][n].append(ro["epoch_s"][0])
                res["warm"][n].append(ro["epoch_s"][1])
                res["gets"][n].append(so["mounts"][0]["remote_requests"])
                res.setdefault("chosen", {}).setdefault(n, []).append(so.get("fetch_concurrency"))
                said.append(f"objcache@{n} cold {ro['epoch_s'][0]:.2f} s warm {ro['epoch_s'][1]:.2f} s "
                            f"({res['gets'][n][-1]} GETs in all)")
            log(f"run {run + 1}/{args.runs}: local {rl['epoch_s'][0]:.2f}/{rl['epoch_s'][1]:.2f} s, "
                f"boto3 {rb['epoch_s'][0]:.2f} s, " + ", ".join(said))
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
    md, figures = render(args, command, started, elapsed, res, remote, stderr_seen, nginx_errors, shim_id,
                         imgs_mount, jbytes)
    bl.write_results("dataloader", "bench_dataloader.py", md, args.out, args.json, figures, command=command,
                     started=started, elapsed=elapsed, runs=args.runs, shim_id=shim_id, remote=remote.json())
    if args.out:
        log(f"wrote {args.out} ({elapsed:.0f} s in all)")
    return 0


def render(args, command, started, elapsed, res, remote, stderr_seen, nginx_errors, shim_id, imgs_mount, jbytes):
    """The Markdown report and the figures for the json."""
    med = bl.med
    lat = args.latency_ms / 1e3
    n_img = args.jpegs
    L = {k: med(res[k]) for k in ("local1", "local2", "boto3")}

    def runs(xs):
        return " / ".join(f"{x:.2f}" for x in xs)
    out = ["## The whole loop: ImageFolder + DataLoader (bench_dataloader.py)\n"]
    out.append(f"{n_img} random-noise RGB JPEGs (336x336, quality 90, {jbytes / n_img / 1024:.0f} KiB average, "
               f"{jbytes / 1e6:.0f} MB) in 10 class folders, in s3rver behind nginx adding {args.latency_ms:g} ms "
               f"to every request; torchvision `ImageFolder` (PIL decode + `ToTensor`) and "
               f"`DataLoader(batch_size=32, shuffle=True, num_workers=2)` (fork), no model; each epoch's sample "
               f"count, label sum and batch means are checked (objcache's against local disk's). Epoch 1 includes "
               f"building the dataset (the listing); epoch 2 is the same process again. Objcache is mounted at "
               f"`{imgs_mount}` (256 MiB, new cache per run). {args.runs} runs; each run measures local disk, "
               f"boto3 and objcache one after another, and a ratio is taken within a run. Objcache runs "
               f"{len(LOOP_CONCURRENCY)} times in each run: with `prefetch_concurrency = {LOOP_CONCURRENCY[0]}` "
               f"(the old default, which issue 5's targets judge), with "
               f"{' and '.join(str(n) for n in LOOP_CONCURRENCY[1:-1])} (information), and at the defaults "
               f"(no prefetch_concurrency: the adaptive limit, ceiling 256; issue 17's targets), in alternating "
               f"order. The "
               f"shuffled sampler reads at random while the prefetch goes in listing order, so a worker's first "
               f"reads miss (about {args.latency_ms:g} ms each) until most of the set is in: the cold epoch pays "
               f"about the time to fetch the set, {n_img} x {args.latency_ms:g} ms / concurrency.\n")
    out += bl.crashes_markdown()
    out += remote.markdown(int(jbytes / n_img))
    out.append("### Epoch seconds and ratios to local disk\n")
    boto_r = [b / l for b, l in zip(res["boto3"], res["local1"])]
    out.append("| epoch | seconds (median) | per run | / local (median of per-run ratios) | per-run ratios "
               "| median / median | target | |")
    out.append("|---|---|---|---|---|---|---|---|")
    out.append(f"| (i) local disk (page cache warm), epoch 1 | {L['local1']:.2f} | {runs(res['local1'])} | 1.00 | "
               "| | | |")
    out.append(f"| (i) local disk, epoch 2 | {L['local2']:.2f} | {runs(res['local2'])} | 1.00 | | | | |")
    out.append(f"| (ii) boto3 `get_object` per sample | {L['boto3']:.2f} | {runs(res['boto3'])} | {med(boto_r):.2f} "
               f"| {runs(boto_r)} | {L['boto3'] / L['local1']:.2f} | | |")
    numerals = iter(("iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii"))
    ratio = {}
    for n in LOOP_CONCURRENCY:
        cold, warm = res["cold"][n], res["warm"][n]
        cold_r = [c / l for c, l in zip(cold, res["local1"])]
        warm_r = [w / l for w, l in zip(warm, res["local2"])]
        ratio[n] = (med(cold_r), med(warm_r))
        judged = n == CONCURRENCY or n is DEFAULTS
        ids = ("fetch.loop_cold", "fetch.loop_warm") if n == CONCURRENCY else \
            ("fetch.loop_cold_defaults", "fetch.loop_warm_defaults")
        for kind, xs, rs, ref, tid in (("cold (epoch 1, new cache)", cold, cold_r, L["local1"], ids[0]),
                                       ("warm (epoch 2, same cache)", warm, warm_r, L["local2"], ids[1])):
            r = med(rs)
            tgt, verd = ((targets.threshold_text(tid), bl.verdict(tid, r)) if judged
                         else ("(information)", ""))
            out.append(f"| ({next(numerals)}) objcache {kind}, {setting(n)} | {med(xs):.2f} | "
                       f"{runs(xs)} | **{r:.2f}** | {runs(rs)} | {med(xs) / ref:.2f} | {tgt} | {verd} |")
    out.append("")
    out.append("Cold is compared with local epoch 1, warm with local epoch 2 (same place in a process's life). "
               "Data GETs over both objcache epochs: "
               + "; ".join(f"at {setting(n)}: {' / '.join(str(x) for x in res['gets'][n])}" for n in LOOP_CONCURRENCY)
               + f" (expected {n_img}). The limit each cache ended at (`cachectl stats` fetch_concurrency): "
               + "; ".join(f"{setting(n)}: {' / '.join(str(x) for x in res.get('chosen', {}).get(n, []))}"
                           for n in LOOP_CONCURRENCY) + ".\n")
    out.append(f"The time to fetch the whole set with every slot busy ({n_img} x {args.latency_ms:g} ms / "
               f"concurrency) against local disk's epoch 1 ({L['local1']:.2f} s): "
               + ", ".join(f"{n}: {n_img * lat / n:.2f} s ({n_img * lat / n / L['local1']:.2f})"
                           for n in LOOP_CONCURRENCY if n is not DEFAULTS)
               + ". While it lasts, each read of a worker misses with the probability that its file is not in "
                 "yet and then waits a round trip; the cold epoch's excess over local disk follows it.\n")
    out += bl.report_footer(stderr_seen, nginx_errors, shim_id, started, elapsed, command)

    def at(n):
        return {"jpegs": n_img, "num_workers": 2, "latency_ms": args.latency_ms,
                "prefetch_concurrency": "default" if n is DEFAULTS else n}
    others = [n for n in LOOP_CONCURRENCY if n != CONCURRENCY]
    figures = {
        tid: bl.figure(ratio[CONCURRENCY][i], f"{ratio[CONCURRENCY][i]:.2f}x", at(CONCURRENCY),
                       [(setting(n), f"{ratio[n][i]:.2f}x") for n in others])
        for i, tid in enumerate(("fetch.loop_cold", "fetch.loop_warm"))}
    for i, tid in enumerate(("fetch.loop_cold_defaults", "fetch.loop_warm_defaults")):
        figures[tid] = bl.figure(ratio[DEFAULTS][i], f"{ratio[DEFAULTS][i]:.2f}x", at(DEFAULTS))
    return "\n".join(out) + "\n", figures


if __name__ == "__main__":
    try:
        sys.exit(main())
    except bl.Failure as e:
        log(f"FAILED: {e}")
        sys.exit(1)
