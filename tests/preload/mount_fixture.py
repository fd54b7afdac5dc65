# SPDX-License-Identifier: Apache-2.0
"""A real S3 server with a data set in it, the same data set on local disk,
and an objcache configuration that mounts the bucket: what the tests of the
shim serving mounts (run_mounts.py) and the shim benchmark share.

Runs under Debian's /usr/bin/python3 (boto3, numpy, PIL and torch from apt).
"""
import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import tarfile
import tempfile
import time

SOURCE_DIR = os.environ.get(
    "OBJCACHE_TEST_SOURCE_DIR",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"
BUCKET = "data"


class Suite:
    """Counts cases and prints `ok NAME` or `FAIL NAME` with its details."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}", flush=True)
            for line in str(detail).splitlines()[-60:]:
                print(f"     {line}", flush=True)


def radosgw_selected():
    """OBJCACHE_TEST_S3=radosgw: Ceph's radosgw instead of s3rver."""
    return os.environ.get("OBJCACHE_TEST_S3") == "radosgw"


class S3Server:
    """s3rver on a free 127.0.0.1 port (or, with OBJCACHE_TEST_S3=radosgw,
    a one-node Ceph's radosgw: tests/s3server/radosgw.py); stops when its
    stdin closes."""

    def __init__(self, workdir, buckets=(BUCKET,)):
        self.dir = os.path.join(workdir, "s3")
        os.makedirs(self.dir, exist_ok=True)
        self.radosgw = radosgw_selected()
        if self.radosgw:
            args = ["/usr/bin/python3", os.path.join(SOURCE_DIR, "s3server", "radosgw.py"), "--dir", self.dir]
        else:
            start = os.path.join(SOURCE_DIR, "s3server", "start.js")
            args = ["node", "--openssl-legacy-provider", start, "--dir", self.dir]
        for b in buckets:
            args += ["--bucket", b]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("radosgw did not start" if self.radosgw else "s3rver did not start")
        self.port = json.loads(line)["port"]
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def client(self):
        import boto3
        from botocore.config import Config
        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def server_pids(self):
        """The processes that answer requests: s3rver itself, or the Ceph
        daemons radosgw.py started (its children)."""
        if not self.radosgw:
            return [self.proc.pid]
        kids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:  # field 4, ppid
                kids.append(int(d))
        return kids

    def pause(self):
        """SIGSTOP the server: connections stay open, nothing answers."""
        for pid in self.server_pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self):
        for pid in self.server_pids():
            os.kill(pid, signal.SIGCONT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30 if self.radosgw else 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_dataset(root, jpegs_per_class=6, classes=3, seed=7):
    """Writes the test tree under root: JPEGs in class folders, numpy and
    torch files, a sqlite database, a tar, text, a multi-page file, an
    empty file and awkward names."""
    import numpy as np
    from PIL import Image
    import torch

    rng = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    for c in range(classes):
        d = os.path.join(root, "imgs", f"class{c}")
        os.makedirs(d, exist_ok=True)
        for i in range(jpegs_per_class):
            arr = np.frombuffer(rng.randbytes(64 * 48 * 3), dtype=np.uint8).reshape(48, 64, 3)
            Image.fromarray(arr).save(os.path.join(d, f"img{i:03d}.jpg"), quality=90)
    os.makedirs(os.path.join(root, "arrays"), exist_ok=True)
    a = np.arange(10000, dtype=np.float32).reshape(100, 100)
    np.save(os.path.join(root, "arrays", "a.npy"), a)
    a.tofile(os.path.join(root, "arrays", "raw.bin"))
    os.makedirs(os.path.join(root, "model"), exist_ok=True)
    torch.save({"w": torch.arange(1000, dtype=torch.float32), "b": torch.ones(7)},
               os.path.join(root, "model", "t.pt"))
    os.makedirs(os.path.join(root, "db"), exist_ok=True)
    con = sqlite3.connect(os.path.join(root, "db", "test.sqlite"))
    con.execute("create table t (k integer primary key, v text)")
    con.executemany("insert into t values (?, ?)", [(i, f"value {i}") for i in range(2000)])
    con.commit()
    con.close()
    os.makedirs(os.path.join(root, "text"), exist_ok=True)
    with open(os.path.join(root, "text", "hello.txt"), "w") as f:
        f.write("".join(f"line {i}\n" for i in range(1000)))
    with open(os.path.join(root, "empty.txt"), "wb"):
        pass
    os.makedirs(os.path.join(root, "big"), exist_ok=True)
    with open(os.path.join(root, "big", "large.bin"), "wb") as f:
        f.write(rng.randbytes(3 * 1024 * 1024 + 12345))  # four 1 MiB pages, the last short
    os.makedirs(os.path.join(root, "tars"), exist_ok=True)
    with tarfile.open(os.path.join(root, "tars", "archive.tar"), "w") as t:
        t.add(os.path.join(root, "text"), arcname="text")
        t.add(os.path.join(root, "arrays"), arcname="arrays")
    os.makedirs(os.path.join(root, "odd names", "sub dir"), exist_ok=True)
    with open(os.path.join(root, "odd names", "sub dir", "ünï cödé+=.txt"), "w") as f:
        f.write("awkward\n")


def upload_tree(client, root, bucket=BUCKET, prefix=""):
    """Puts every file under root at prefix + its relative path."""
    count = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            key = prefix + os.path.relpath(path, root)
            with open(path, "rb") as f:
                client.put_object(Bucket=bucket, Key=key, Body=f.read())
            count += 1
    return count


def write_config(path, endpoint, mount_path, source, memory="64MiB", spill_dir="",
                 extra_store="", extra_mount="", name=None, metadata_ttl="5m"):
    name = name or f"t{os.getpid()}"
    with open(path, "w") as f:
        f.write(f"""[cache]
name = "{name}"
memory = "{memory}"
spill_dir = "{spill_dir}"
page_size = "1MiB"

[store]
endpoint = "{endpoint}"
region = "us-east-1"
credentials = "env"
retry_deadline = "3s"
{extra_store}

[[mount]]
path = "{mount_path}"
source = "{source}"
metadata_ttl = "{metadata_ttl}"
{extra_mount}
""")


def asan_preload(shim):
    """What goes ahead of an ASan build of the shim in LD_PRELOAD: the ASan
    runtime, then tests/support/asan_early_init.c built here (see there why);
    [] for any other build."""
    ldd = subprocess.run(["ldd", shim], capture_output=True, text=True).stdout
    runtime = re.findall(r"libasan\.so\S* => (\S+)", ldd)
    if not runtime:
        return []
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support", "asan_early_init.c")
    # One build per version of the source, shared by every test run.
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    out = os.path.join(tempfile.gettempdir(), f"objcache-asan-early-init-{os.getuid()}-{digest}.so")
    if not os.path.exists(out):
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise RuntimeError("no C compiler (cc) to build tests/support/asan_early_init.c")
        tmp = f"{out}.{os.getpid()}.tmp"
        subprocess.run([cc, "-shared", "-fPIC", "-nostdlib", "-Wl,-z,initfirst", "-o", tmp, src],
                       check=True, capture_output=True)
        os.replace(tmp, out)
    return runtime[:1] + [out]


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def at(epoch_s):
    """A wall-clock time for FAKETIME (UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_s))


def with_faketime(env, when):
    """env with the wall clock at `when` (FAKETIME's absolute form) for the
    programs run under it; monotonic time stays real, so deadlines and
    timeouts do too. Requests are signed with that time: stay within
    minutes of the real one."""
    e = dict(env)
    e["TZ"] = "UTC"
    e["FAKETIME"] = "@" + when
    e["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    # libfaketime goes just before the shim: in an ASan build the runtime
    # (and its early-init helper) must stay first in the list.
    parts = env["LD_PRELOAD"].split()
    e["LD_PRELOAD"] = " ".join(parts[:-1] + [FAKETIME_LIB, parts[-1]])
    return e


def shim_env(shim, config, shm_dir, asan_runtime=()):
    env = dict(os.environ)
    env["OBJCACHE_CONFIG"] = config
    env["OBJCACHE_SHM_DIR"] = shm_dir
    env["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
    env["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
    env["LD_PRELOAD"] = " ".join(list(asan_runtime) + [shim])
    if asan_runtime:
        # The programs under test (python3, coreutils) are not ours: their
        # own leaks at exit are not what an ASan build of the shim checks.
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
    return env
