# SPDX-License-Identifier: Apache-2.0
"""Checkpoints to a writable mount (issue 13): torch.save of a state dict
straight to the bucket through the shim, against torch.save to local disk
and boto3 upload_file of that file, through the same 20 ms remote, in the
same run; tmp-then-rename; torch.load of it back on the node; a DataLoader
epoch while another process writes a checkpoint.

  /usr/bin/python3 bench/bench_checkpoint.py [--build build] [--runs 3] [--size 2GiB]
      [--out bench/results/checkpoint.md]

The checkpoint is a state dict of --tensors (32) float32 tensors of --size
(2 GiB) bytes in all, made once per writer process (not timed). s3rver
holds the bucket; two nginx remotes in front of it add --latency-ms (20) to
every request (bench/latency_remote.py): one for the checkpoints (writes
pass through with the delay, checked in the run: small PUTs, a multipart
upload, HEAD, DELETE; no LIST cache, the bucket changes) and one for the
DataLoader's JPEGs (LIST replies kept, If-Match checked, capacity measured,
as bench_dataloader.py). Each run, in alternating order:

  S   torch.save(sd, local file), under the shim (a local path passes
      through), no fsync (what a training job sees);
  U   boto3 upload_file of that file through the remote with
      TransferConfig(max_concurrency=upload_concurrency) (8 MiB parts, as
      objcache's), from a client with as many connections;
  T   torch.save(sd, path on the writable mount): from the call to its
      return, which is close returning, so the object is complete in the
      bucket;
  T_rename  torch.save(sd, tmp on the mount), then os.replace(tmp, final):
      the rename step is judged (what the rename adds to T); beside it,
      copy+delete as a client (or a FUSE mount) renames an object: boto3
      copy_object + delete_object of the same 2 GiB object;
  load  torch.load of the object T wrote, in a fresh process under the
      shim (the same cache: the pages were admitted at close), against
      torch.load of S's local file in a fresh process (page cache warm);
      every tensor's CRC-32 is checked and the GETs counted;
  loop  bench_dataloader.py's loop (ImageFolder + DataLoader, 2 workers,
      640 JPEGs on a read-only mount, new cache, epoch 1 cold and epoch 2
      warm) alone, and while another process under the same cache writes
      the checkpoint to the writable mount (its torch.save starts before
      the loop's first epoch; whether it was still writing when the loop
      ended is recorded).

Figures are medians of per-run ratios. Writes bench/results/checkpoint.md
(--out) and checkpoint.json beside it for bench/report.py; asserts nothing
about speed (exit 1 only when bytes read back differ or a step failed).
"""
import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import targets  # noqa: E402
from bench_dataloader import LOOP, make_jpegs  # noqa: E402

mf = bl.mf
lr = bl.lr
log = bl.logger("bench_checkpoint")
PY = bl.PY
CONCURRENCY = bl.CONCURRENCY
GiB = 1 << 30
STALL_TIMEOUT, RETRY_DEADLINE = "300s", "900s"

# python3 -c WRITER BYTES TENSORS: makes the state dict, prints
# {"ready": ..., "crc": {...}, "bytes": N}, then serves one JSON command per
# stdin line, one JSON reply per line:
#   {"op": "save", "path": P}              -> {"started": mono} then {"save_s", "start", "end"}
#   {"op": "save_rename", "tmp": A, "final": B} -> {"save_s", "rename_s", "total_s"}
#   {"op": "quit"}
# save_s is the torch.save call: open, writes, close (under the shim, close
# returns when the object is complete in the bucket).
WRITER = r"""
import json, os, sys, time, zlib
import torch
torch.set_num_threads(1)
nbytes, count = int(sys.argv[1]), int(sys.argv[2])
g = torch.Generator()
g.manual_seed(13)
base = torch.rand(1 << 20, generator=g)
per = nbytes // count // 4
sd, crc = {}, {}
for i in range(count):
    n = per if i < count - 1 else nbytes // 4 - per * (count - 1)
    t = base.repeat((n + base.numel() - 1) // base.numel())[:n].clone().add_(i)
    name = f"layers.{i}.weight"
    sd[name] = t.view(-1, 1024) if n % 1024 == 0 else t
    crc[name] = zlib.crc32(t.numpy().data)
def say(d):
    sys.stdout.write(json.dumps(d) + "\n")
    sys.stdout.flush()
say({"ready": True, "crc": crc, "bytes": sum(t.numel() * 4 for t in sd.values())})
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "quit":
        break
    if cmd["op"] == "save":
        say({"started": time.monotonic()})
        t0 = time.monotonic()
        torch.save(sd, cmd["path"])
        t1 = time.monotonic()
        say({"save_s": t1 - t0, "start": t0, "end": t1, "size": os.stat(cmd["path"]).st_size})
    elif cmd["op"] == "save_rename":
        t0 = time.monotonic()
        torch.save(sd, cmd["tmp"])
        t1 = time.monotonic()
        os.replace(cmd["tmp"], cmd["final"])
        t2 = time.monotonic()
        say({"save_s": t1 - t0, "rename_s": t2 - t1, "total_s": t2 - t0,
             "size": os.stat(cmd["final"]).st_size, "tmp_gone": not os.path.exists(cmd["tmp"])})
"""

# python3 -c LOAD PATH: torch.load timed (the call only), then each
# tensor's CRC-32; one JSON line.
LOAD = r"""
import json, sys, time, zlib
import torch
torch.set_num_threads(1)
t0 = time.monotonic()
sd = torch.load(sys.argv[1])
t1 = time.monotonic()
print(json.dumps({"load_s": t1 - t0, "crc": {k: zlib.crc32(v.contiguous().numpy().data) for k, v in sd.items()}}))
"""

# The DataLoader loop of bench_dataloader.py, made to wait after its imports
# for a line on stdin (so the writer's torch.save is under way first).
_ANCHOR = "times, counts, label_sums, means = [], [], [], []\n"
assert _ANCHOR in LOOP, "bench_dataloader.LOOP changed: update bench_checkpoint's LOOP_WAIT"
LOOP_WAIT = LOOP.replace(_ANCHOR, "print('ready', flush=True)\nsys.stdin.readline()\n" + _ANCHOR, 1)


def cpu_seconds(pid):
    """User + system CPU seconds of a process (all its threads) so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 2GiB, 512MiB, 1000000)")
    mult = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
            "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}[(m.group(2) or "").lower()]
    return int(float(m.group(1)) * mult)


def size_text(n):
    return f"{n / GiB:g} GiB" if n % (GiB // 16) == 0 else f"{n / (1 << 20):.0f} MiB"


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def write_config(path, name, memory, staging, ckpt_mount, ckpt_endpoint, imgs_mount, imgs_endpoint, upload_concurrency):
    with open(path, "w") as f:
        f.write(f"""[cache]
name = "{name}"
memory = "{memory}"
spill_dir = ""
staging_dir = "{staging}"
page_size = "1MiB"

[store]
endpoint = "{ckpt_endpoint}"
region = "us-east-1"
credentials = "env"
prefetch_concurrency = {CONCURRENCY}
upload_concurrency = {upload_concurrency}
# s3rver answers CompleteMultipartUpload only once it has joined the parts
# (tens of seconds for 2 GiB here), sending nothing meanwhile; S3 answers at
# once and keeps the connection alive. The default stall_timeout (10s) takes
# that silence for a dead connection.
stall_timeout = "{STALL_TIMEOUT}"
retry_deadline = "{RETRY_DEADLINE}"

[[mount]]
path = "{ckpt_mount}"
source = "s3://{mf.BUCKET}/ckpt/"
writable = true
prefetch = "file"

[[mount]]
path = "{imgs_mount}"
source = "s3://{mf.BUCKET}/jpegs/"
endpoint = "{imgs_endpoint}"
prefetch = "directory"
""")


class CkptCache(bl.Cache):
    """benchlib's Cache (a new, empty cache with its own name and shm dir)
    with this benchmark's configuration (write(path, name))."""

    def __init__(self, work, shim, cachectl, write):
        bl.Cache.seq += 1
        self.name = f"bk{os.getpid()}-{bl.Cache.seq}"
        self.shm = tempfile.mkdtemp(prefix="objcache-bench-ckpt-shm-",
                                    dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.config = os.path.join(work, f"{self.name}.toml")
        write(self.config, self.name)
        self.env = mf.shim_env(shim, self.config, self.shm)
        self.cachectl = cachectl


class Writer:
    """WRITER in its own process (under the shim of `env`)."""

    def __init__(self, label, env, nbytes, tensors):
        self.label = label
        self.p = subprocess.Popen([PY, "-c", WRITER, str(nbytes), str(tensors)], env=env, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        r = self.reply()
        self.crc, self.bytes = r["crc"], r["bytes"]

    def reply(self):
        line = self.p.stdout.readline()
        if not line:
            err = self.p.stderr.read()
            self.p.wait()
            raise bl.Failure(f"{self.label}: exit {self.p.returncode}: {err.strip()[-2000:]}")
        return json.loads(line)

    def send(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()

    def quit(self):
        if self.p.poll() is None:
            try:
                self.send(op="quit")
                self.p.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        err = self.p.stderr.read().strip()
        self.p.stderr.close()
        self.p.stdout.close()
        if self.p.returncode != 0:
            raise bl.Failure(f"{self.label}: exit {self.p.returncode}: {err[-2000:]}")
        return err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the meson build directory")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=parse_size, default=targets.CHECKPOINT_BYTES,
                    help="checkpoint size (2GiB; the targets are judged at 2 GiB)")
    ap.add_argument("--tensors", type=int, default=32, help="float32 tensors in the state dict")
    ap.add_argument("--upload-concurrency", type=int, default=targets.UPLOAD_CONCURRENCY,
                    help="objcache's upload_concurrency and boto3's max_concurrency")
    ap.add_argument("--jpegs", type=int, default=targets.JPEGS)
    ap.add_argument("--latency-ms", type=float, default=float(targets.LATENCY_MS))
    ap.add_argument("--workdir", default=None, help="where the files go (default: a new directory in $TMPDIR)")
    ap.add_argument("--out", default=None, help="write the Markdown report here (and the json beside it)")
    ap.add_argument("--json", default=None, help="write the json here (default: --out with .json)")
    args = ap.parse_args()
    if min(args.runs, args.tensors, args.jpegs, args.upload_concurrency) < 1 or args.size < args.tensors * 4096:
        ap.error("--runs, --tensors, --jpegs, --upload-concurrency >= 1 and --size >= 4 KiB per tensor")
    shim, cachectl = bl.build_paths(args.build, log, "preload/libobjcache_preload.so", "tools/cachectl")
    command = bl.command_line("bench_checkpoint.py")
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    size, uc = args.size, args.upload_concurrency

    work = tempfile.mkdtemp(prefix="objcache-bench-checkpoint-", dir=args.workdir)
    # What one run holds at most: on disk the local file, a staged file, the
    # objects (boto3's, T's, the rename's and its copy) and s3rver's parts
    # while it assembles one; in RAM two writers' dicts and one checkpoint
    # admitted to a cache's shared memory.
    disk_need, ram_need = 7 * size + (2 << 30), 4 * size + (2 << 30)
    disk_free, ram_free = shutil.disk_usage(work).free, mem_available()
    log(f"checkpoint {size_text(size)}: {disk_free / GiB:.1f} GiB free on disk for {work} (needs ~"
        f"{disk_need / GiB:.1f}), {ram_free / GiB:.1f} GiB RAM available (needs ~{ram_need / GiB:.1f})")
    if disk_free < disk_need or ram_free < ram_need:
        shutil.rmtree(work, ignore_errors=True)
        log("not enough disk or RAM for this --size: give a smaller --size or another --workdir")
        return 1

    pid = os.getpid()
    ckpt_mount = f"/mnt/objcache-bench-checkpoint-{pid}/ckpt"
    imgs_mount = f"/mnt/objcache-bench-checkpoint-{pid}/imgs"
    # A file just written is admitted to the page cache only when it is at
    # most half the RAM tier (libcache/upload/staged_file.cpp: a larger
    # checkpoint would push out the data set): a RAM tier of twice the
    # checkpoint and some, as a node that reads its checkpoints back has.
    memory = f"{(2 * size + (512 << 20)) >> 20}MiB"
    server = remote = wremote = None
    caches, writers = [], []
    res = {k: [] for k in ("S", "U", "T", "T_rename", "save_before_rename", "rename", "copy_delete", "copy",
                           "delete", "load_local", "load_shim", "load_gets", "cold", "warm", "cold_w", "warm_w",
                           "contended_save", "overlap", "T_uploaded", "T_requests", "cpu_writer", "cpu_s3rver",
                           "cpu_s3rver_alone", "cpu_nginx", "cpu_loop_window")}
    stderr_seen = {}
    try:
        t = time.monotonic()
        jpeg_root = os.path.join(work, "jpegs")
        jrels, jbytes = make_jpegs(jpeg_root, args.jpegs, 10)
        server = mf.S3Server(work)
        bl.upload(server, jpeg_root, jrels, "jpegs/")
        log(f"made and uploaded {len(jrels)} JPEGs ({time.monotonic() - t:.1f} s)")
        remote = bl.Remote(server, work, args.latency_ms, jpeg_root, jrels, "jpegs/")
        log("JPEG " + remote.summary())
        wremote = lr.LatencyRemote(server.dir, server.port, args.latency_ms, workdir=work, cache_lists=False)
        wcheck = lr.check_writes(wremote, server.endpoint, mf.BUCKET, tmpdir=work)
        log(f"checkpoint remote {wremote.endpoint}: PUT {wcheck['put_ms']:.1f} ms (s3rver direct "
            f"{wcheck['put_direct_ms']:.1f} ms); a {wcheck['multipart_bytes'] >> 20} MiB multipart upload "
            f"{wcheck['multipart_s']:.2f} s, read back equal")
        shim, shim_id = bl.copy_shim(shim, work)
        cachectl = shutil.copy2(cachectl, os.path.join(work, "cachectl"))
        plain_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        rc = bl.s3_client(wremote.endpoint)
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config
        up_client = boto3.client("s3", endpoint_url=wremote.endpoint, aws_access_key_id=mf.ACCESS_KEY,
                                 aws_secret_access_key=mf.SECRET_KEY, region_name="us-east-1",
                                 config=Config(s3={"addressing_style": "path"}, max_pool_connections=uc))
        tconf = TransferConfig(max_concurrency=uc)
        staging = os.path.join(work, "staging")
        os.makedirs(staging, mode=0o700)

        def new_cache(label):
            c = CkptCache(work, shim, cachectl, lambda path, name: write_config(
                path, name, memory, staging, ckpt_mount, wremote.endpoint, imgs_mount, remote.endpoint, uc))
            caches.append(c)
            return c

        def mount_stats(c, path):
            s = c.stats()
            return next(m for m in s["mounts"] if m.get("path") == path), s

        def writer(label, c):
            w = Writer(label, c.env, size, args.tensors)
            writers.append(w)
            return w

        def finish_writer(w):
            err = w.quit()
            writers.remove(w)
            if err:
                stderr_seen.setdefault(w.label, err)

        # warm-up, not measured: the JPEG LISTs into nginx's LIST cache, torch
        # and torchvision imported once.
        c = new_cache("warm-up")
        p = subprocess.run([PY, "-c", "import os, sys, torch, torchvision\nfor _ in os.walk(sys.argv[1]): pass\n"
                            "print('listed')", imgs_mount], env=c.env, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise bl.Failure(f"warm-up listing: exit {p.returncode}: {p.stderr.strip()[-1000:]}")
        c.close()
        caches.remove(c)

        local_file = os.path.join(work, "local.pt")
        ref = {}

        def check_crc(label, got, want):
            if got != want:
                bad = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
                raise bl.Failure(f"{label}: tensors differ from what was saved: {bad[:8]}")

        for run in range(args.runs):
            c = new_cache(f"run {run + 1}")
            w = writer(f"writer, run {run + 1}", c)
            ref.setdefault("crc", w.crc)
            check_crc("writer", w.crc, ref["crc"])

            def do_S():
                w.send(op="save", path=local_file)
                w.reply()
                r = w.reply()
                res["S"].append(r["save_s"])
                ref["file_size"] = r["size"]

            def do_U():
                t0 = time.monotonic()
                up_client.upload_file(local_file, mf.BUCKET, "boto3/ckpt.pt", Config=tconf)
                res["U"].append(time.monotonic() - t0)
                h = rc.head_object(Bucket=mf.BUCKET, Key="boto3/ckpt.pt")
                if h["ContentLength"] != ref["file_size"]:
                    raise bl.Failure(f"boto3 upload: {h['ContentLength']} bytes, expected {ref['file_size']}")
                rc.delete_object(Bucket=mf.BUCKET, Key="boto3/ckpt.pt")

            def do_T():
                m0, _ = mount_stats(c, ckpt_mount)
                w.send(op="save", path=os.path.join(ckpt_mount, "ckpt.pt"))
                w.reply()
                r = w.reply()
                m1, _ = mount_stats(c, ckpt_mount)
                res["T"].append(r["save_s"])
                res["T_uploaded"].append(m1["uploaded_bytes"] - m0["uploaded_bytes"])
                res["T_requests"].append(m1["upload_requests"] - m0["upload_requests"])
                h = rc.head_object(Bucket=mf.BUCKET, Key="ckpt/ckpt.pt")
                if h["ContentLength"] != r["size"]:
                    raise bl.Failure(f"T: object of {h['ContentLength']} bytes after close, file {r['size']}")
                ref["T_etag"] = h["ETag"]

            def do_loads():
                for kind in (("local", "shim") if run % 2 == 0 else ("shim", "local")):
                    if kind == "local":
                        r = bl.run_json("torch.load, local disk", [PY, "-c", LOAD, local_file], plain_env)
                        check_crc("torch.load of the local file", r["crc"], ref["crc"])
                        res["load_local"].append(r["load_s"])
                    else:
                        m0, _ = mount_stats(c, ckpt_mount)
                        r = bl.run_json("torch.load, through the shim", [PY, "-c", LOAD,
                                        os.path.join(ckpt_mount, "ckpt.pt")], c.env)
                        m1, _ = mount_stats(c, ckpt_mount)
                        check_crc("torch.load through the shim", r["crc"], ref["crc"])
                        res["load_shim"].append(r["load_s"])
                        res["load_gets"].append(m1["remote_requests"] - m0["remote_requests"])
                        if "stderr" in r:
                            stderr_seen.setdefault("torch.load through the shim", r["stderr"])

            def do_rename():
                w.send(op="save_rename", tmp=os.path.join(ckpt_mount, "renamed.pt.tmp"),
                       final=os.path.join(ckpt_mount, "renamed.pt"))
                r = w.reply()
                if not r["tmp_gone"]:
                    raise bl.Failure("tmp-then-rename: the tmp name still exists after os.replace")
                res["T_rename"].append(r["total_s"])
                res["save_before_rename"].append(r["save_s"])
                res["rename"].append(r["rename_s"])
                keys = {o["Key"] for o in rc.list_objects_v2(Bucket=mf.BUCKET, Prefix="ckpt/").get("Contents", [])}
                if "ckpt/renamed.pt" not in keys or "ckpt/renamed.pt.tmp" in keys:
                    raise bl.Failure(f"tmp-then-rename: the bucket has {sorted(keys)}")
                # copy+delete as a client renames: the same object moved once more.
                t0 = time.monotonic()
                rc.copy_object(Bucket=mf.BUCKET, Key="peer/renamed.pt",
                               CopySource={"Bucket": mf.BUCKET, "Key": "ckpt/renamed.pt"})
                t1 = time.monotonic()
                rc.delete_object(Bucket=mf.BUCKET, Key="ckpt/renamed.pt")
                t2 = time.monotonic()
                res["copy"].append(t1 - t0)
                res["delete"].append(t2 - t1)
                res["copy_delete"].append(t2 - t0)
                rc.delete_object(Bucket=mf.BUCKET, Key="peer/renamed.pt")

            # The loads come right after T in both orders: the rename writes
            # another checkpoint through the same cache, and run after T it
            # evicted T's pages before the load (1,819 GETs in one run).
            order = (do_S, do_U, do_T, do_loads, do_rename) if run % 2 == 0 else (do_T, do_S, do_loads, do_U,
                                                                                  do_rename)
            for step in order:
                step()
            finish_writer(w)
            os.unlink(local_file)
            c.close()
            caches.remove(c)
            log(f"run {run + 1}/{args.runs}: S {res['S'][-1]:.1f} s, U {res['U'][-1]:.1f} s, T {res['T'][-1]:.1f} s "
                f"({res['T_requests'][-1]} upload requests), T_rename {res['T_rename'][-1]:.1f} s (rename "
                f"{res['rename'][-1]:.2f} s; copy+delete {res['copy_delete'][-1]:.2f} s), load local "
                f"{res['load_local'][-1]:.2f} s / shim {res['load_shim'][-1]:.2f} s ({res['load_gets'][-1]} GETs)")

            # The DataLoader loop, alone and with a writer, each on a new cache.
            for with_writer in ((False, True) if run % 2 == 0 else (True, False)):
                c = new_cache("loop")
                cw = writer(f"checkpoint writer beside the loop, run {run + 1}", c) if with_writer else None
                label = "DataLoader loop" + (" with a checkpoint writer" if with_writer else "")
                lp = subprocess.Popen([PY, "-c", LOOP_WAIT, "fs", imgs_mount, "2"], env=c.env, text=True,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                if lp.stdout.readline().strip() != "ready":
                    lp.wait()
                    raise bl.Failure(f"{label}: exit {lp.returncode}: {lp.stderr.read().strip()[-2000:]}")
                if cw is not None:
                    cw.send(op="save", path=os.path.join(ckpt_mount, "beside-loop.pt"))
                    cw.reply()  # its torch.save has started
                cpu0 = (cpu_seconds(cw.p.pid) if cw else 0.0, cpu_seconds(server.proc.pid),
                        lr.nginx_cpu_seconds(wremote.proc.pid), time.monotonic())
                out, err = lp.communicate(input="go\n", timeout=900)
                loop_end = time.monotonic()
                cpu1 = (cpu_seconds(cw.p.pid) if cw else 0.0, cpu_seconds(server.proc.pid),
                        lr.nginx_cpu_seconds(wremote.proc.pid), loop_end)
                if lp.returncode != 0:
                    raise bl.Failure(f"{label}: exit {lp.returncode}: {err.strip()[-2000:]}")
                r = json.loads(out.strip().splitlines()[-1])
                if err.strip():
                    stderr_seen.setdefault(label, err.strip())
                if r["samples"] != [args.jpegs] * 2:
                    raise bl.Failure(f"{label}: samples {r['samples']}, expected {[args.jpegs] * 2}")
                ref.setdefault("label_sums", r["label_sums"][0])
                if any(x != ref["label_sums"] for x in r["label_sums"]):
                    raise bl.Failure(f"{label}: label sums {r['label_sums']} != {ref['label_sums']}")
                if cw is not None:
                    rw = cw.reply()
                    res["contended_save"].append(rw["save_s"])
                    res["overlap"].append(rw["end"] > loop_end)
                    finish_writer(cw)
                    res["cold_w"].append(r["epoch_s"][0])
                    res["warm_w"].append(r["epoch_s"][1])
                    window = cpu1[3] - cpu0[3]
                    res["cpu_loop_window"].append(window)
                    res["cpu_writer"].append((cpu1[0] - cpu0[0]) / window)
                    res["cpu_s3rver"].append((cpu1[1] - cpu0[1]) / window)
                    res["cpu_nginx"].append((cpu1[2] - cpu0[2]) / window)
                else:
                    res["cpu_s3rver_alone"].append((cpu1[1] - cpu0[1]) / (cpu1[3] - cpu0[3]))
                    res["cold"].append(r["epoch_s"][0])
                    res["warm"].append(r["epoch_s"][1])
                c.close()
                caches.remove(c)
            log(f"run {run + 1}/{args.runs}: loop cold/warm {res['cold'][-1]:.2f}/{res['warm'][-1]:.2f} s alone, "
                f"{res['cold_w'][-1]:.2f}/{res['warm_w'][-1]:.2f} s with the writer (its save "
                f"{res['contended_save'][-1]:.1f} s, {'still writing' if res['overlap'][-1] else 'DONE'} when the "
                f"loop ended)")
        nginx_errors = remote.errors_logged() + wremote.errors_logged()
    finally:
        for w in writers:
            try:
                w.p.kill()
                w.p.wait()
            except OSError:
                pass
        for c in caches:
            c.close()
        if wremote is not None:
            wremote.close()
        if remote is not None:
            remote.close()
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    elapsed = time.monotonic() - t_start
    md, figures, info = render(args, command, started, elapsed, res, ref, remote, wcheck, stderr_seen, nginx_errors,
                               shim_id, jbytes)
    bl.write_results("checkpoint", "bench_checkpoint.py", md, args.out, args.json, figures, command=command,
                     started=started, elapsed=elapsed, runs=args.runs, shim_id=shim_id, remote=remote.json(),
                     information=info)
    if args.out:
        log(f"wrote {args.out} ({elapsed:.0f} s in all)")
    return 0


def render(args, command, started, elapsed, res, ref, remote, wcheck, stderr_seen, nginx_errors, shim_id, jbytes):
    """The Markdown report, the figures and the information for the json."""
    med = bl.med
    size, uc = args.size, args.upload_concurrency

    def runs(xs, f="{:.2f}"):
        return " / ".join(f.format(x) for x in xs)

    S, U, T = res["S"], res["U"], res["T"]
    SU = [s + u for s, u in zip(S, U)]
    MX = [max(s, u) for s, u in zip(S, U)]
    r_overlap = [t / m for t, m in zip(T, MX)]
    r_serial = [t / su for t, su in zip(T, SU)]
    r_rename = [100 * rn / t for rn, t in zip(res["rename"], T)]
    r_rename_total = [tr / t for tr, t in zip(res["T_rename"], T)]
    r_copy = [100 * cd / t for cd, t in zip(res["copy_delete"], T)]
    r_load = [lo / sh for lo, sh in zip(res["load_local"], res["load_shim"])]
    r_cold = [a / b for a, b in zip(res["cold_w"], res["cold"])]
    r_warm = [a / b for a, b in zip(res["warm_w"], res["warm"])]
    gb = size / 1e9

    out = ["## Checkpoints to a writable mount (bench_checkpoint.py)\n"]
    out.append(f"A state dict of {args.tensors} float32 tensors, {size_text(size)} in all (`torch.save` writes "
               f"{ref.get('file_size', 0):,} bytes), made once per writer process (not timed). s3rver holds the bucket; "
               f"two nginx remotes in front of it add {args.latency_ms:g} ms to every request: one for the checkpoints "
               f"(no LIST cache: the bucket changes) and one for the DataLoader's JPEGs (LIST replies kept). objcache's "
               f"writable mount has `upload_concurrency = {uc}` (8 MiB parts) and a RAM tier of "
               f"{(2 * size + (512 << 20)) / GiB:.1f} GiB (a file just written is admitted to it at close when it is "
               f"at most half of it); boto3's `upload_file` has "
               f"`TransferConfig(max_concurrency={uc})` (8 MiB parts) and {uc} connections. Everything runs on this "
               f"machine: s3rver, which stores and assembles every upload, shares the {os.cpu_count()} cores with the "
               f"writer, so U and T are both bounded by it; they are measured side by side. s3rver answers "
               f"CompleteMultipartUpload only once it has joined the parts, silent meanwhile (S3 answers at once and "
               f"keeps the connection alive), so the mount has `stall_timeout = \"{STALL_TIMEOUT}\"` and "
               f"`retry_deadline = \"{RETRY_DEADLINE}\"` (with the default 10 s stall timeout a 2 GiB close failed "
               f"here with EIO). After every T the object's length is checked with HEAD: `torch.save(obj, path)` "
               f"writes through PyTorch's C++ writer, which does not check close, so a failed upload would not "
               f"raise. {args.runs} runs in "
               f"alternating order; the figures are medians of per-run ratios. Every checkpoint read back has each "
               f"tensor's CRC-32 checked against the one saved.\n")
    out += bl.crashes_markdown()
    out.append("### The remotes\n")
    out.append(f"Checkpoints: writes pass through the same delay as reads (checked in this run): a small PUT took "
               f"{wcheck['put_ms']:.1f} ms through it and {wcheck['put_direct_ms']:.1f} ms to s3rver directly "
               f"(medians of 5); a {wcheck['multipart_bytes'] / (1 << 20):.0f} MiB multipart upload in 3 parts took "
               f"{wcheck['multipart_s']:.2f} s and read back (from s3rver directly) equal; HEAD and DELETE through it "
               f"answered as S3 does.\n")
    out += ["JPEGs (the DataLoader's read-only mount): " + "\n".join(remote.markdown(int(jbytes / args.jpegs))[1:])]

    out.append("### Writing the checkpoint: T against S, U, S + U and max(S, U)\n")
    out.append("| | seconds (median) | per run | GB/s |")
    out.append("|---|---|---|---|")
    for label, xs in (("S: `torch.save` to local disk", S), ("U: boto3 `upload_file` of that file", U),
                      ("S + U (serial: save, then upload)", SU), ("max(S, U) (perfect overlap)", MX),
                      ("**T: `torch.save` to the writable mount, until close returned**", T)):
        out.append(f"| {label} | {med(xs):.2f} | {runs(xs)} | {gb / med(xs):.2f} |")
    out.append("")
    out.append("| figure | per run | median | target | |")
    out.append("|---|---|---|---|---|")
    out.append(f"| T / max(S, U) | {runs(r_overlap)} | **{med(r_overlap):.2f}** | "
               f"{targets.threshold_text('write.checkpoint_overlap')} | "
               f"{bl.verdict('write.checkpoint_overlap', med(r_overlap))} |")
    out.append(f"| T / (S + U) (information) | {runs(r_serial)} | {med(r_serial):.2f} | | |")
    out.append("")
    out.append(f"objcache sent {runs([x / 1e9 for x in res['T_uploaded']])} GB in "
               f"{runs(res['T_requests'], '{}')} upload requests per T (cachectl stats), for a file of "
               f"{ref.get('file_size', 0) / 1e9:.2f} GB.\n")

    out.append("### tmp-then-rename\n")
    out.append("`torch.save(sd, 'renamed.pt.tmp')` then `os.replace('renamed.pt.tmp', 'renamed.pt')` on the mount, "
               "as safetensors, torch.distributed.checkpoint's `.metadata` and most checkpointers do: the file is "
               "closed (committed under its tmp name) before it is renamed, so objcache's rename is of a complete "
               "object: a server-side copy, then a delete (README, Semantics: a rename is free only for a file "
               "still open for writing). Beside it, copy+delete as a client or a FUSE mount renames: boto3 "
               "`copy_object` + `delete_object` of the same object, through the same remote.\n")
    out.append("| | seconds (median) | per run | / T |")
    out.append("|---|---|---|---|")
    out.append(f"| T (from the table above) | {med(T):.2f} | {runs(T)} | 1.00 |")
    out.append(f"| T_rename: save to tmp + rename | {med(res['T_rename']):.2f} | {runs(res['T_rename'])} | "
               f"{med(r_rename_total):.2f} |")
    out.append(f"| its save to tmp | {med(res['save_before_rename']):.2f} | {runs(res['save_before_rename'])} | |")
    out.append(f"| **its rename (`os.replace`)** | {med(res['rename']):.2f} | {runs(res['rename'])} | "
               f"{med(r_rename):.1f} % |")
    out.append(f"| copy+delete with boto3 (copy / delete) | {med(res['copy_delete']):.2f} ({med(res['copy']):.2f} / "
               f"{med(res['delete']):.2f}) | {runs(res['copy_delete'])} | {med(r_copy):.1f} % |")
    out.append("")
    out.append("| figure | per run | median | target | |")
    out.append("|---|---|---|---|---|")
    out.append(f"| what the rename adds: `os.replace` / T | {runs(r_rename, '{:.1f} %')} | **{med(r_rename):.1f} %** | "
               f"{targets.threshold_text('write.rename')} | {bl.verdict('write.rename', med(r_rename))} |")
    out.append("")

    out.append("### Reading it back: torch.load on the same node\n")
    out.append("The object T wrote, loaded by a fresh process under the shim (same cache: the pages were admitted "
               "when close committed), against the local file S wrote, loaded by a fresh process without the shim "
               "(page cache warm). The `torch.load` call only.\n")
    out.append("| | seconds (median) | per run | data GETs |")
    out.append("|---|---|---|---|")
    out.append(f"| local disk | {med(res['load_local']):.2f} | {runs(res['load_local'])} | |")
    out.append(f"| through the shim | {med(res['load_shim']):.2f} | {runs(res['load_shim'])} | "
               f"{runs(res['load_gets'], '{}')} |")
    out.append("")
    out.append("| figure | per run | median | target | |")
    out.append("|---|---|---|---|---|")
    out.append(f"| local load time / shim load time | {runs(r_load)} | **{med(r_load):.2f}** | "
               f"{targets.threshold_text('write.load')} | {bl.verdict('write.load', med(r_load))} |")
    out.append("")

    out.append("### A DataLoader epoch while another process writes a checkpoint\n")
    out.append(f"bench_dataloader.py's loop ({args.jpegs} JPEGs, ImageFolder, `DataLoader(batch_size=32, shuffle=True, "
               f"num_workers=2)`, no model) on the read-only mount of a new cache: epoch 1 cold, epoch 2 warm. With "
               f"the writer, another process under the same cache (its node-wide gate, its shared memory) starts "
               f"`torch.save` of the {size_text(size)} checkpoint to the writable mount, and the loop's first epoch "
               f"starts once that call is under way.\n")
    out.append("| epoch | alone, s (median) | per run | with the writer, s (median) | per run | ratio per run | "
               "median ratio | target | |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for kind, a, b, rs, tid in (("cold (epoch 1)", res["cold"], res["cold_w"], r_cold, "write.loop_cold_with_writer"),
                                ("warm (epoch 2)", res["warm"], res["warm_w"], r_warm, "write.loop_warm_with_writer")):
        out.append(f"| {kind} | {med(a):.2f} | {runs(a)} | {med(b):.2f} | {runs(b)} | {runs(rs)} | **{med(rs):.2f}** | "
                   f"{targets.threshold_text(tid)} | {bl.verdict(tid, med(rs))} |")
    out.append("")
    out.append(f"While the loop ran beside the writer (its {med(res['cpu_loop_window']):.1f} s, from its start to its "
               f"result), the writer process used {med(res['cpu_writer']):.2f} cores (serializing, CRC-32 in "
               f"torch.save, the upload's SigV4 payload hashing and sending), s3rver {med(res['cpu_s3rver']):.2f} "
               f"(receiving and storing the parts; {med(res['cpu_s3rver_alone']):.2f} while the loop ran alone) and "
               f"the checkpoints' nginx {med(res['cpu_nginx']):.2f}, medians, on a machine of {os.cpu_count()} cores "
               f"that the loop's main process and its 2 workers need too, and that other work shares (load average "
               f"{os.getloadavg()[1]:.1f} over the last 5 minutes at the end).\n")
    still = sum(1 for x in res["overlap"] if x)
    out.append(f"The writer's `torch.save` took {runs(res['contended_save'])} s (alone, T: {med(T):.2f} s); it was "
               f"still writing when the loop ended in {still} of {len(res['overlap'])} runs"
               + ("" if still == len(res["overlap"]) else " (in the others the epochs were not wholly beside it)")
               + ".\n")
    out += bl.report_footer(stderr_seen, nginx_errors, shim_id, started, elapsed, command)

    at = {"checkpoint_bytes": size, "latency_ms": args.latency_ms, "upload_concurrency": uc}
    at_loop = dict(at, jpegs=args.jpegs, num_workers=2)
    figures = {
        "write.checkpoint_overlap": bl.figure(
            med(r_overlap), f"{med(r_overlap):.2f}x (T {med(T):.1f} s; S {med(S):.1f} s, U {med(U):.1f} s, "
                            f"S+U {med(SU):.1f} s)", at),
        "write.rename": bl.figure(med(r_rename), f"{med(r_rename):.1f} % ({med(res['rename']):.2f} s of T "
                                                 f"{med(T):.1f} s; copy+delete {med(res['copy_delete']):.2f} s)", at),
        "write.load": bl.figure(med(r_load), f"{med(r_load):.2f} ({med(res['load_local']):.2f} s / "
                                             f"{med(res['load_shim']):.2f} s, {max(res['load_gets'])} GETs)", at),
        "write.loop_cold_with_writer": bl.figure(med(r_cold), f"{med(r_cold):.2f}x ({med(res['cold_w']):.2f} s / "
                                                              f"{med(res['cold']):.2f} s)", at_loop),
        "write.loop_warm_with_writer": bl.figure(med(r_warm), f"{med(r_warm):.2f}x ({med(res['warm_w']):.2f} s / "
                                                              f"{med(res['warm']):.2f} s)", at_loop),
    }
    info = {"seconds": {k: v for k, v in res.items() if k != "overlap"}, "writer_still_writing": res["overlap"],
            "write_remote": wcheck, "file_bytes": ref.get("file_size")}
    return "\n".join(out) + "\n", figures, info


if __name__ == "__main__":
    try:
        sys.exit(main())
    except bl.Failure as e:
        log(f"FAILED: {e}")
        sys.exit(1)
