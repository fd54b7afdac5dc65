# SPDX-License-Identifier: Apache-2.0
"""`make demo-checkpoint`: a training loop that checkpoints to the bucket
through a writable mount every epoch, is killed, and resumes.

  /usr/bin/python3 demo/checkpoint_loop.py [--build build] [--epochs 6] [--kill-after 3]
      [--hidden 1024] [--latency-ms 20] [--quick]

Starts a real S3 server (s3rver) on loopback, with a remote in front of it
that adds --latency-ms to every request (nginx, as `make demo`; 0: none),
and a configuration whose mount is writable. Then, under the shim:

 1. `train` (this file, an ordinary PyTorch loop with no objcache code: a
    small MLP, Adam, synthetic data made from a fixed seed) saves a
    checkpoint every epoch, tmp-then-rename: torch.save into an open
    MOUNT/epoch-NNNN.pt.tmp, close, then os.replace to MOUNT/epoch-NNNN.pt. It
    prints a digest (sha256 of every tensor and number) of what it saved.
    After epoch --kill-after it starts writing the next checkpoint, stops
    halfway through it and is killed with SIGKILL.
 2. The bucket is listed directly (boto3, no shim): every epoch saved, and
    no object, whole or partial, for the one being written at the kill; the
    killed writer's bytes are in the staging directory (`cachectl uploads`).
 3. `train --resume`, a fresh process, lists the mount, loads the latest
    checkpoint through it and prints what it resumed from; the state must
    equal, digest for digest, what run 1 saved (and what boto3 downloads
    without the shim). It trains to --epochs, checkpointing as before.
 4. Its final state must equal that of the same loop run straight through on
    local disk without the shim (the RNG state is in the checkpoint, so a
    resumed run is the same run).

Exits 0 only if every check holds; 1 if the resume does not match, 77 under
a TSan build (which cannot be preloaded). --quick: a small model, no delay
(the version `make test` runs).
"""
import argparse
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
PY = "/usr/bin/python3"
NAME = re.compile(r"^epoch-(\d{4})\.pt$")


# ---------------------------------------------------------------- the training program (run under the shim)

def digest(obj):
    """sha256 of a nested state (dicts by sorted key, lists, tensors' dtype,
    shape and bytes, numbers, strings)."""
    import torch
    h = hashlib.sha256()

    def walk(o):
        if isinstance(o, dict):
            h.update(b"{")
            for k in sorted(o, key=str):
                h.update(repr(k).encode())
                walk(o[k])
            h.update(b"}")
        elif isinstance(o, (list, tuple)):
            h.update(b"[")
            for x in o:
                walk(x)
            h.update(b"]")
        elif isinstance(o, torch.Tensor):
            t = o.detach().contiguous().cpu()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(o).encode())
    walk(obj)
    return h.hexdigest()


class PausingFile:
    """A file torch.save writes through that stops once `at` bytes are
    written: says so on stdout, then waits for stdin (run 1 is killed there)."""

    def __init__(self, f, at, epoch):
        self.f, self.at, self.epoch, self.n = f, at, epoch, 0

    def write(self, b):
        r = self.f.write(b)
        self.n += len(b)
        if self.n >= self.at:
            self.f.flush()
            emit(event="paused", epoch=self.epoch, bytes=self.n)
            sys.stdin.readline()  # the driver kills this process here
        return r

    def flush(self):
        self.f.flush()


def emit(**kv):
    sys.stdout.write(json.dumps(kv) + "\n")
    sys.stdout.flush()


def train(args):
    import torch
    import torch.nn as nn
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    g = torch.Generator().manual_seed(7)
    features, classes, samples = 64, 10, args.samples
    teacher = torch.randn(features, classes, generator=g)
    x = torch.randn(samples, features, generator=g)
    y = (x @ teacher).argmax(1)
    torch.manual_seed(11)
    net = nn.Sequential(nn.Linear(features, args.hidden), nn.ReLU(), nn.Linear(args.hidden, args.hidden), nn.ReLU(),
                        nn.Linear(args.hidden, classes))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    start, history = 0, []
    os.makedirs(args.ckpt_dir, exist_ok=True)
    if args.resume:
        names = sorted(n for n in os.listdir(args.ckpt_dir) if NAME.match(n))
        if not names:
            emit(event="error", error=f"no checkpoint in {args.ckpt_dir}")
            return 1
        path = os.path.join(args.ckpt_dir, names[-1])
        t = time.monotonic()
        ck = torch.load(path)
        load_s = time.monotonic() - t
        emit(event="resumed", epoch=ck["epoch"], path=path, digest=digest(ck), load_s=load_s,
             bytes=os.path.getsize(path), listed=names)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        torch.set_rng_state(ck["rng"])
        start, history = ck["epoch"], ck["loss"]
    for epoch in range(start + 1, args.epochs + 1):
        perm = torch.randperm(samples)
        total = 0.0
        for i in range(0, samples, args.batch):
            idx = perm[i:i + args.batch]
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        history.append(round(total / samples, 6))
        ck = {"epoch": epoch, "model": net.state_dict(), "optimizer": opt.state_dict(), "rng": torch.get_rng_state(),
              "loss": list(history)}
        final = os.path.join(args.ckpt_dir, f"epoch-{epoch:04d}.pt")
        tmp = final + ".tmp"
        t = time.monotonic()
        if args.pause_at == epoch:
            buf = io.BytesIO()
            torch.save(ck, buf)
            with open(tmp, "wb") as f:
                torch.save(ck, PausingFile(f, buf.tell() // 2, epoch))
            emit(event="error", error="not killed while paused")
            return 1
        # An open file, not a path: torch.save(obj, path) writes through
        # PyTorch's C++ writer, which does not check close (torch 1.13), so
        # a failed upload would only show as the rename's ENOENT; Python's
        # close raises it (OSError EIO) here.
        with open(tmp, "wb") as f:
            torch.save(ck, f)
        os.replace(tmp, final)
        emit(event="saved", epoch=epoch, path=final, digest=digest(ck), loss=history[-1],
             bytes=os.path.getsize(final), save_s=time.monotonic() - t)
    emit(event="done", epoch=args.epochs, digest=digest({"model": net.state_dict(), "optimizer": opt.state_dict()}))
    return 0


# ---------------------------------------------------------------- the driver

def say(msg):
    print(msg, flush=True)


class Failed(Exception):
    pass


def run_train(argv, env, on_event=None):
    """Runs `train` and returns its events; on_event(event, proc) may kill it."""
    p = subprocess.Popen([PY, os.path.abspath(__file__), "train", *argv], env=env, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    events = []
    for line in p.stdout:
        ev = json.loads(line)
        events.append(ev)
        if on_event is not None:
            on_event(ev, p)
    err = p.stderr.read()
    p.wait()
    p.stdin.close()
    p.stdout.close()
    p.stderr.close()
    return p.returncode, events, err


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "train":
        ap = argparse.ArgumentParser(prog="checkpoint_loop.py train")
        ap.add_argument("--ckpt-dir", required=True)
        ap.add_argument("--epochs", type=int, required=True)
        ap.add_argument("--hidden", type=int, default=1024)
        ap.add_argument("--samples", type=int, default=4096)
        ap.add_argument("--batch", type=int, default=128)
        ap.add_argument("--resume", action="store_true")
        ap.add_argument("--pause-at", type=int, default=0, help="stop halfway through writing this epoch's checkpoint")
        return train(ap.parse_args(sys.argv[2:]))

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--kill-after", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true", help="small model, no delay (the test)")
    args = ap.parse_args()
    if args.quick:
        args.hidden, args.latency_ms = 128, 0.0
    if not 1 <= args.kill_after < args.epochs:
        ap.error("need 1 <= --kill-after < --epochs")
    shim = os.path.abspath(os.path.join(args.build, "preload", "libobjcache_preload.so"))
    cachectl = os.path.abspath(os.path.join(args.build, "tools", "cachectl"))
    for f in (shim, cachectl):
        if not os.path.exists(f):
            sys.exit(f"demo-checkpoint: {f} is missing: run `make` first")
    sys.path.insert(0, os.path.join(TOP, "tests", "preload"))
    os.environ.setdefault("OBJCACHE_TEST_SOURCE_DIR", os.path.join(TOP, "tests"))
    import mount_fixture as mf
    if "libtsan" in subprocess.run(["ldd", shim], capture_output=True, text=True).stdout:
        say("skipped (exit 77): TSan cannot be preloaded into arbitrary programs.")
        return 77
    asan = mf.asan_preload(shim)

    work = tempfile.mkdtemp(prefix="objcache-demo-ckpt-")
    server = remote = None
    started = time.monotonic()
    count = {True: 0, False: 0}

    def check(what, cond, detail=""):
        say(f"demo-checkpoint: {'ok  ' if cond else 'FAIL'} {what}" + (f": {detail}" if detail and not cond else ""))
        count[bool(cond)] += 1
        return cond

    try:
        server = mf.S3Server(work)
        endpoint = server.endpoint
        if args.latency_ms > 0:
            sys.path.insert(0, os.path.join(TOP, "bench"))
            from latency_remote import LatencyRemote
            remote = LatencyRemote(server.dir, server.port, latency_ms=args.latency_ms, workdir=work)
            endpoint = remote.endpoint
            say(f"demo-checkpoint: s3rver at {server.endpoint}, {args.latency_ms:g} ms per request in front of it "
                f"at {endpoint}")
        else:
            say(f"demo-checkpoint: s3rver at {endpoint} (no added delay)")
        mount = f"/mnt/objcache-demo-ckpt-{os.getpid()}/ckpts"
        staging = os.path.join(work, "staging")
        os.makedirs(staging, mode=0o700)
        config = os.path.join(work, "objcache.toml")
        with open(config, "w") as f:
            f.write(f"""[cache]
name = "ckdemo{os.getpid()}"
memory = "256MiB"
spill_dir = ""
staging_dir = "{staging}"

[store]
endpoint = "{endpoint}"
region = "us-east-1"
credentials = "env"
retry_deadline = "30s"

[[mount]]
path = "{mount}"
source = "s3://{mf.BUCKET}/ckpts/"
writable = true
prefetch = "file"
""")
        say(f"demo-checkpoint: writable mount {mount} -> s3://{mf.BUCKET}/ckpts/ (staging in {staging})")
        shm = os.path.join(work, "shm")
        os.makedirs(shm)
        env = mf.shim_env(shim, config, shm, asan)
        plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        if asan:
            env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
        ctl_env = dict(plain, OBJCACHE_SHM_DIR=shm, AWS_ACCESS_KEY_ID=mf.ACCESS_KEY,
                       AWS_SECRET_ACCESS_KEY=mf.SECRET_KEY)
        common = ["--hidden", str(args.hidden)]

        # Run 1: checkpoints every epoch, killed halfway through the next one.
        say(f"demo-checkpoint: run 1: training {args.epochs} epochs, checkpoint every epoch (tmp-then-rename), "
            f"killed with SIGKILL halfway through writing epoch {args.kill_after + 1}'s checkpoint")

        def on_event(ev, p):
            if ev["event"] == "saved":
                say(f"  saved epoch {ev['epoch']} to {ev['path']} ({ev['bytes'] / 1e6:.1f} MB, {ev['save_s']:.2f} s, "
                    f"loss {ev['loss']:.4f}), digest {ev['digest'][:16]}")
            elif ev["event"] == "paused":
                say(f"  writing epoch {ev['epoch']}: {ev['bytes'] / 1e6:.1f} MB written to "
                    f"epoch-{ev['epoch']:04d}.pt.tmp; kill -9 {p.pid}")
                p.send_signal(signal.SIGKILL)

        rc, ev1, err1 = run_train(["--ckpt-dir", mount, "--epochs", str(args.epochs),
                                   "--pause-at", str(args.kill_after + 1), *common], env, on_event)
        saved = {e["epoch"]: e for e in ev1 if e["event"] == "saved"}
        if not check("run 1 was killed by SIGKILL while writing", rc == -signal.SIGKILL and
                     any(e["event"] == "paused" for e in ev1), f"exit {rc}, events {ev1}, stderr {err1[-1500:]}"):
            raise Failed("run 1")
        check(f"run 1 saved epochs 1..{args.kill_after}", sorted(saved) == list(range(1, args.kill_after + 1)),
              sorted(saved))

        client = server.client()
        keys = sorted(o["Key"][len("ckpts/"):] for o in
                      client.list_objects_v2(Bucket=mf.BUCKET, Prefix="ckpts/").get("Contents", []))
        say(f"  the bucket (boto3, no shim): {', '.join(keys)}")
        check("the bucket has every saved epoch and nothing of the one being written",
              keys == [f"epoch-{e:04d}.pt" for e in range(1, args.kill_after + 1)], keys)
        p = subprocess.run([cachectl, "--config", config, "uploads"], env=ctl_env, capture_output=True, text=True)
        say("  $ cachectl uploads\n" + "".join(f"    {line}\n" for line in (p.stdout + p.stderr).splitlines()))
        check("cachectl uploads lists the killed writer's staged checkpoint",
              p.returncode == 0 and f"epoch-{args.kill_after + 1:04d}.pt.tmp" in p.stdout, p.stdout + p.stderr)
        p = subprocess.run([cachectl, "--config", config, "uploads", "--discard"], env=ctl_env, capture_output=True,
                           text=True)
        check("cachectl uploads --discard drops it", p.returncode == 0, p.stdout + p.stderr)

        # Run 2: a fresh process resumes from the latest checkpoint, read back through the mount.
        say(f"demo-checkpoint: run 2: a fresh process resumes from the latest checkpoint in {mount}")
        rc, ev2, err2 = run_train(["--ckpt-dir", mount, "--epochs", str(args.epochs), "--resume", *common], env)
        res = next((e for e in ev2 if e["event"] == "resumed"), None)
        if not check("run 2 resumed and finished", rc == 0 and res is not None,
                     f"exit {rc}, events {ev2}, stderr {err2[-1500:]}"):
            raise Failed("run 2")
        say(f"  resumed from epoch {res['epoch']}: {res['path']} ({res['bytes'] / 1e6:.1f} MB, loaded in "
            f"{res['load_s']:.2f} s), digest {res['digest'][:16]}; listed {', '.join(res['listed'])}")
        want = saved.get(args.kill_after, {}).get("digest")
        check(f"it resumed from epoch {args.kill_after}, the last one saved", res["epoch"] == args.kill_after,
              res["epoch"])
        check("the state it loaded equals what run 1 saved", res["digest"] == want,
              f"{res['digest']} != {want}")
        import torch
        body = client.get_object(Bucket=mf.BUCKET, Key=f"ckpts/epoch-{args.kill_after:04d}.pt")["Body"].read()
        check("and what boto3 downloads from the bucket", digest(torch.load(io.BytesIO(body))) == want)
        for e in ev2:
            if e["event"] == "saved":
                say(f"  saved epoch {e['epoch']} ({e['bytes'] / 1e6:.1f} MB, {e['save_s']:.2f} s, loss {e['loss']:.4f})")

        # The same loop straight through on local disk, without the shim.
        rc, ev3, err3 = run_train(["--ckpt-dir", os.path.join(work, "local"), "--epochs", str(args.epochs), *common],
                                  plain)
        d2 = next((e["digest"] for e in ev2 if e["event"] == "done"), None)
        d3 = next((e["digest"] for e in ev3 if e["event"] == "done"), None)
        check("its final state equals the same loop run straight through on local disk", rc == 0 and d2 == d3,
              f"exit {rc}, {d2} != {d3}, stderr {err3[-1500:]}")
        keys = sorted(o["Key"][len("ckpts/"):] for o in
                      client.list_objects_v2(Bucket=mf.BUCKET, Prefix="ckpts/").get("Contents", []))
        check(f"the bucket holds epochs 1..{args.epochs}, no tmp",
              keys == [f"epoch-{e:04d}.pt" for e in range(1, args.epochs + 1)], keys)
        p = subprocess.run([cachectl, "--config", config, "stats"], env=ctl_env, capture_output=True, text=True)
        up = [line.strip() for line in p.stdout.splitlines() if "upload" in line or "staged" in line]
        if up:
            say("  $ cachectl stats  (the write counters)\n" + "".join(f"    {line}\n" for line in up))
    except Failed:
        pass
    finally:
        if remote is not None:
            remote.close()
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    ok = count[False] == 0 and count[True] > 0
    say(f"demo-checkpoint: {'all checks passed' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s")
    say(f"{count[True]} passed, {count[False]} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
