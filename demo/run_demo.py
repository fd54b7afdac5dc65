# SPDX-License-Identifier: Apache-2.0
"""`make demo`: objcache end to end on this machine, no cloud account.

Starts a real S3 server (s3rver) on loopback and, in front of it, a remote
that adds 20 ms to every request, like a cloud store; generates an image
classification data set (JPEGs of ~110 KiB in class folders) and uploads
it; runs the same PyTorch loop (demo/train_loop.py) for several epochs with
2 and 4 DataLoader workers, first with one boto3 GET per sample (no cache),
then on the mapped path under objcache (a fresh, cold cache each time),
then on a local copy of the same images (the limit: what decode and the
model step take on this machine, with no storage in the way); prints time
per epoch by worker count for all three and objcache's ratio to local disk
per epoch, then `cachectl stats`; stops everything it started.
"""
import argparse
import concurrent.futures as cf
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "preload"))
sys.path.insert(0, os.path.join(TOP, "bench"))
import mount_fixture as mf  # noqa: E402
from latency_remote import LatencyRemote, capacity  # noqa: E402

PY = "/usr/bin/python3"


def say(msg):
    print(msg, flush=True)


def make_jpegs(root, count, classes, seed=1):
    """count JPEGs of about 110 KiB (400x400, gradient plus noise) in class folders."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, 400 * 400 * 3).reshape(400, 400, 3)
    noise = rng.normal(0, 64, (8, 400, 400, 3))
    for i in range(count):
        d = os.path.join(root, f"class{i % classes:02d}")
        os.makedirs(d, exist_ok=True)
        img = np.clip(base * rng.random() + np.roll(noise[i % 8], i, axis=0) + i % 50, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(d, f"img{i:05d}.jpg"), "JPEG", quality=88)


def upload(client, root, prefix):
    paths = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]

    def put(p):
        with open(p, "rb") as f:
            client.put_object(Bucket=mf.BUCKET, Key=prefix + os.path.relpath(p, root), Body=f.read())
    with cf.ThreadPoolExecutor(8) as ex:
        list(ex.map(put, paths))
    return len(paths), sum(os.path.getsize(p) for p in paths)


def check_remote(remote, root, prefix):
    """Measures the remote: with its delay at 32 GETs in flight (what
    objcache uses at most) and without the delay; says whether it can be
    the bottleneck."""
    import hashlib
    objects = []
    for d, _, fs in os.walk(root):
        for f in sorted(fs)[:20]:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                data = fh.read()
            key = prefix + os.path.relpath(p, root)
            objects.append((f"/{mf.BUCKET}/{key}", len(data), hashlib.md5(data).hexdigest()))
    rows = capacity(remote, objects, plan=((1, 20), (32, 1000)), raw=(32, 2000), tmpdir=None)
    one, busy, raw = rows
    say(f"demo: the remote measured: one GET {one['p50_ms']:.1f} ms; at 32 in flight {busy['gets_per_s']:,.0f} GETs/s "
        f"(p50 {busy['p50_ms']:.1f} ms, nginx {busy['nginx_cpu_pct']:.0f}% of a core); without the delay "
        f"{raw['gets_per_s']:,.0f} GETs/s: the delay, not the server, bounds every loop below")


def run_loop(args, env, workers, epochs):
    p = subprocess.run([PY, os.path.join(HERE, "train_loop.py"), *args, "--workers", str(workers),
                        "--epochs", str(epochs)], env=env, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"train_loop failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])["epochs"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", default="2,4")
    ap.add_argument("--latency-ms", type=float, default=20.0)
    args = ap.parse_args()
    shim = os.path.abspath(os.path.join(args.build, "preload", "libobjcache_preload.so"))
    cachectl = os.path.abspath(os.path.join(args.build, "tools", "cachectl"))
    for f in (shim, cachectl):
        if not os.path.exists(f):
            sys.exit(f"demo: {f} is missing: run `make` first")
    worker_counts = [int(w) for w in args.workers.split(",")]

    work = tempfile.mkdtemp(prefix="objcache-demo-")
    server = remote = None
    started = time.monotonic()
    try:
        say(f"demo: generating {args.images} JPEGs in {args.classes} classes ...")
        local = os.path.join(work, "images")
        make_jpegs(local, args.images, args.classes)
        server = mf.S3Server(work)
        n, size = upload(server.client(), local, "train/")
        say(f"demo: uploaded {n} files ({size / n / 1024:.0f} KiB each on average) to s3rver at {server.endpoint}")
        remote = LatencyRemote(server.dir, server.port, latency_ms=args.latency_ms, workdir=work, cache_lists=True)
        say(f"demo: remote with {args.latency_ms:.0f} ms per request at {remote.endpoint} (nginx in front of s3rver)")
        check_remote(remote, local, "train/")

        base_env = dict(os.environ, AWS_ACCESS_KEY_ID=mf.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=mf.SECRET_KEY)
        base_env.pop("LD_PRELOAD", None)
        mount = "/mnt/objcache-demo/train"
        rows = []
        last_config = None
        shm = os.path.join(work, "shm")
        os.makedirs(shm)
        for w in worker_counts:
            say(f"demo: {w} workers, boto3 GET per sample (no cache), {args.epochs} epochs ...")
            plain = run_loop(["--s3", f"{remote.endpoint}/{mf.BUCKET}/train/"], base_env, w, args.epochs)
            config = os.path.join(work, f"objcache-{w}.toml")
            mf.write_config(config, remote.endpoint, mount, f"s3://{mf.BUCKET}/train/", memory="1GiB",
                            name=f"demo{w}-{os.getpid()}")
            env = mf.shim_env(shim, config, shm)
            say(f"demo: {w} workers, objcache on {mount} (cold cache), {args.epochs} epochs ...")
            cached = run_loop(["--root", mount], env, w, args.epochs)
            say(f"demo: {w} workers, local disk copy of the images (the limit), {args.epochs} epochs ...")
            disk = run_loop(["--root", local], base_env, w, args.epochs)
            rows.append((w, plain, cached, disk))
            last_config = config

        say("")
        say(f"Time per epoch (s), {n} JPEGs of ~{size / n / 1024:.0f} KiB, "
            f"{args.latency_ms:.0f} ms per request, {os.cpu_count()} cores")
        epochs = " / ".join(str(e + 1) for e in range(args.epochs))
        say(f"| workers | boto3 per sample, epochs {epochs} | objcache, epochs {epochs} | "
            f"local disk, epochs {epochs} | objcache / local disk, per epoch |")
        say("|---|---|---|---|---|")
        for w, plain, cached, disk in rows:
            say(f"| {w} | " + " / ".join(f"{t:.1f}" for t in plain) + " | " +
                " / ".join(f"{t:.1f}" for t in cached) + " | " +
                " / ".join(f"{t:.1f}" for t in disk) + " | " +
                " / ".join(f"{c / max(1e-9, d):.2f}x" for c, d in zip(cached, disk)) + " |")
        say("")
        for w, plain, cached, disk in rows:
            later = sum(cached[1:]) / max(1e-9, sum(disk[1:]))
            say(f"{w} workers: objcache epoch 1 (cold) {plain[0] / cached[0]:.1f}x faster than boto3, "
                f"later epochs {sum(plain[1:]) / max(1e-9, sum(cached[1:])):.1f}x; against local disk "
                f"epoch 1 {cached[0] / max(1e-9, disk[0]):.2f}x, later epochs {later:.2f}x"
                + (" (at the limit: decode and the model step, not storage, set the pace)" if later <= 1.1 else ""))
        say("")
        ctl_env = dict(base_env, OBJCACHE_SHM_DIR=shm)
        say(f"$ cachectl --config {os.path.basename(last_config)} stats")
        p = subprocess.run([cachectl, "--config", last_config, "stats"], env=ctl_env, capture_output=True, text=True)
        say(p.stdout + p.stderr)
        say(f"demo: done in {time.monotonic() - started:.0f} s")
        return 0
    finally:
        if remote is not None:
            remote.close()
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
