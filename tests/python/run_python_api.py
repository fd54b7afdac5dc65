#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The Python module (python/objcache) against a real s3rver: open/readinto/
seek/tell/read, stat, list, errors as OSError with errno, writers, prefetch,
and a torch DataLoader with forked workers over MapDataset, every byte
compared with the same files on local disk.
Usage: run_python_api.py --lib build/libcache/libobjcache.so
Runs under Debian's /usr/bin/python3 (torch, boto3). Ends with "N passed, M failed"."""
import argparse
import errno
import io
import os
import random
import re
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "preload"))
from mount_fixture import ACCESS_KEY, SECRET_KEY, S3Server, Suite, upload_tree  # noqa: E402

BUCKET = "data"


def make_files(root, classes=4, per_class=12, seed=3):
    rng = random.Random(seed)
    for c in range(classes):
        d = os.path.join(root, "train", f"class{c}")
        os.makedirs(d, exist_ok=True)
        for i in range(per_class):
            with open(os.path.join(d, f"s{i:03d}.bin"), "wb") as f:
                f.write(rng.randbytes(rng.randrange(1, 150_000)))
    os.makedirs(os.path.join(root, "big"), exist_ok=True)
    with open(os.path.join(root, "big", "blob.bin"), "wb") as f:
        f.write(rng.randbytes(2 * 1024 * 1024 + 777))


def local_files(root, sub):
    out = {}
    for dirpath, _, names in os.walk(os.path.join(root, sub)):
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = p
    return out


def child_env(lib):
    """ASan builds: the runtime must come first in an interpreter that was
    not built with it (Python's own leaks are not ours to report)."""
    ldd = subprocess.run(["ldd", lib], capture_output=True, text=True).stdout
    rt = re.findall(r"(lib[at]san\.so\S*) => (\S+)", ldd)
    env = {}
    if rt:
        env["LD_PRELOAD"] = rt[0][1]
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
    return env, bool(rt and rt[0][0].startswith("libtsan"))


def cases(s, objcache, root, cfg_path, srv):
    cache = objcache.Cache(cfg_path)
    blob_local = open(os.path.join(root, "big", "blob.bin"), "rb").read()

    def case(name, fn):
        try:
            fn()
            s.check(name, True)
        except Exception:
            s.check(name, False, traceback.format_exc())

    def open_read_seek():
        with cache.open(f"s3://{BUCKET}/big/blob.bin", buffering=0) as f:
            assert isinstance(f, io.RawIOBase)
            assert f.size == len(blob_local) and f.etag
            b = bytearray(100_000)
            n = f.readinto(b)
            assert n == 100_000 and bytes(b) == blob_local[:100_000]
            assert f.tell() == 100_000
            assert f.seek(-10, io.SEEK_END) == len(blob_local) - 10
            assert f.read() == blob_local[-10:]
            assert f.read(5) == b""
            f.seek(1_048_000)
            assert f.read(2000) == blob_local[1_048_000:1_050_000]  # across a page
            f.seek(0)
            assert f.read() == blob_local
            mv = memoryview(bytearray(64))
            f.seek(5)
            assert f.readinto(mv[8:40]) == 32 and bytes(mv[8:40]) == blob_local[5:37]
        # The default: a buffered reader, as open(path, "rb") gives.
        with objcache.open(f"s3://{BUCKET}/big/blob.bin", cache=cache) as f:
            assert isinstance(f, io.BufferedReader)
            assert f.read(7) == blob_local[:7] and f.peek(1)[:1] == blob_local[7:8]
            assert f.read() == blob_local[7:]
        # A mounted path reads the same bytes.
        with cache.open("/mnt/pyapi/big/blob.bin") as f:
            assert f.read() == blob_local

    def errors():
        try:
            cache.open(f"s3://{BUCKET}/no/such")
            raise AssertionError("no error")
        except FileNotFoundError as e:
            assert e.errno == errno.ENOENT and "NotFound" in str(e), e
        try:
            cache.open(f"s3://{BUCKET}/train/")
            raise AssertionError("no error")
        except IsADirectoryError:
            pass
        try:
            objcache.Cache(os.path.join(root, "none.toml"))
            raise AssertionError("no error")
        except OSError:
            pass

    def stat_and_list():
        st = cache.stat(f"s3://{BUCKET}/big/blob.bin")
        assert st.size == len(blob_local) and not st.is_dir
        assert cache.stat(f"s3://{BUCKET}/train/").is_dir
        want = sorted(f"s3://{BUCKET}/" + k for k in local_files(root, "train"))
        got = [e.name for e in objcache.list(f"s3://{BUCKET}/train/", cache=cache)]
        assert got == want, (got[:3], want[:3])
        sizes = {e.key: e.size for e in cache.list(f"s3://{BUCKET}/train/class1/")}
        assert sizes == {k: os.path.getsize(p) for k, p in local_files(root, "train/class1").items()}
        paths = [e.name for e in cache.list("/mnt/pyapi/train/class2")]
        assert paths == sorted("/mnt/pyapi/" + k for k in local_files(root, "train/class2")), paths[:3]

    def writer():
        data = os.urandom(3 * 1024 * 1024 + 5)
        with cache.writer(f"s3://{BUCKET}/out/new/w.bin") as w:
            w.write(data[:1000])
            w.write(memoryview(data)[1000:])
        with cache.open(f"s3://{BUCKET}/out/new/w.bin") as f:
            assert f.read() == data
        body = srv.client().get_object(Bucket=BUCKET, Key="out/new/w.bin")["Body"].read()
        assert body == data
        try:
            with cache.writer(f"s3://{BUCKET}/out/aborted.bin") as w:
                w.write(b"x" * 100)
                raise KeyError("boom")
        except KeyError:
            pass
        try:
            cache.stat(f"s3://{BUCKET}/out/aborted.bin")
            raise AssertionError("an aborted writer left an object")
        except FileNotFoundError:
            pass

    def prefetch():
        names = [e.name for e in cache.list(f"s3://{BUCKET}/train/class3/")]
        random.Random(1).shuffle(names)
        assert cache.prefetch(names + [f"s3://{BUCKET}/train/missing"]) == len(names)
        cache.wait_prefetch()
        for n in names:
            assert cache.cached_bytes(n) == cache.stat(n).size, n

    def dataloader():
        import torch.utils.data

        ds = objcache.MapDataset.from_prefix(f"s3://{BUCKET}/train/", cache=cache,
                                             transform=lambda f: (f.name, f.read()))
        files = local_files(root, "train")
        assert len(ds) == len(files)
        dl = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, num_workers=2,
                                         multiprocessing_context="fork",
                                         collate_fn=lambda batch: batch)
        seen = {}
        for epoch in range(2):
            for batch in dl:
                for name, data in batch:
                    key = name[len(f"s3://{BUCKET}/"):]
                    with open(files[key], "rb") as f:
                        assert data == f.read(), name
                    seen[key] = seen.get(key, 0) + 1
        assert seen == {k: 2 for k in files}, len(seen)
        # The default transform: the object's bytes.
        plain = objcache.MapDataset.from_prefix(f"s3://{BUCKET}/train/class0/", cache=cache)
        with open(files["train/class0/s000.bin"], "rb") as f:
            assert plain[0] == f.read()

    def torch_checkpoint():
        import torch

        state = {"w": torch.arange(100_000, dtype=torch.float32), "b": torch.ones(7)}
        with cache.writer(f"s3://{BUCKET}/ckpt/model.pt") as w:
            torch.save(state, w)
        with cache.open(f"s3://{BUCKET}/ckpt/model.pt") as f:
            back = torch.load(f)
        assert torch.equal(back["w"], state["w"]) and torch.equal(back["b"], state["b"])

    case("open, readinto, seek, tell, read (raw and buffered, URI and path)", open_read_seek)
    case("errors are OSError with errno (ENOENT, EISDIR)", errors)
    case("stat and list (URI prefixes and mounted paths)", stat_and_list)
    case("writer: the object exists after the with block; an exception aborts it", writer)
    case("torch.save into a writer, torch.load from open()", torch_checkpoint)
    case("prefetch in a shuffled order fills the cache", prefetch)
    case("DataLoader with 2 forked workers over MapDataset, byte-compared, 2 epochs", dataloader)
    cache.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--python", default=os.path.join(HERE, "..", "..", "python"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root")
    ap.add_argument("--config")
    ap.add_argument("--endpoint")
    args = ap.parse_args()
    if args.child:
        return child(args)
    s = Suite()
    env_extra, tsan = child_env(args.lib)
    if tsan:
        print("skipped: the Python interpreter does not run a TSan-built library")
        print("0 passed, 0 failed")
        return 0
    with tempfile.TemporaryDirectory(prefix="objcache-pyapi-") as tmp:
        srv = S3Server(tmp, buckets=(BUCKET,))
        try:
            root = os.path.join(tmp, "local")
            make_files(root)
            upload_tree(srv.client(), root)
            cfg = os.path.join(tmp, "objcache.toml")
            with open(cfg, "w") as f:
                f.write(f"""[cache]
name = "py{os.getpid()}"
memory = "64MiB"
spill_dir = ""
page_size = "1MiB"
staging_dir = "{tmp}/staging"

[store]
endpoint = "{srv.endpoint}"
credentials = "env"
retry_deadline = "3s"

[[mount]]
path = "/mnt/pyapi"
source = "s3://{BUCKET}/"
prefetch = "none"
""")
            env = dict(os.environ, OBJCACHE_LIB=args.lib, OBJCACHE_SHM_DIR=tmp, OBJCACHE_CONFIG=cfg,
                       AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                       PYTHONPATH=os.path.abspath(args.python), **env_extra)
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--lib", args.lib,
                                "--root", root, "--config", cfg, "--endpoint", srv.endpoint],
                               env=env, capture_output=True, text=True, timeout=600)
            m = re.search(r"(\d+) passed, (\d+) failed", p.stdout)
            if p.returncode != 0 and not (m and int(m.group(2)) > 0):
                s.check("the test process ran to its end", False, p.stderr + f"\nexit {p.returncode}")
            sys.stdout.write(re.sub(r"^\d+ passed, \d+ failed\n?", "", p.stdout, flags=re.M))
            if m:
                s.passed += int(m.group(1))
                s.failed += int(m.group(2))
            elif p.returncode == 0:
                s.check("the test process reported", False, p.stderr)
        finally:
            srv.stop()
    print(f"{s.passed} passed, {s.failed} failed")
    return 0 if s.failed == 0 and s.passed > 0 else 1


def child(args):
    """Runs inside the environment the parent set (library, shm dir, config)."""
    import objcache

    s = Suite()
    srv = S3Server.__new__(S3Server)  # only its client(): the parent owns the server
    srv.endpoint = args.endpoint
    cases(s, objcache, args.root, args.config, srv)
    # The default Cache comes from OBJCACHE_CONFIG.
    try:
        with objcache.open(f"s3://{BUCKET}/big/blob.bin") as f:
            ok = f.read() == open(os.path.join(args.root, "big", "blob.bin"), "rb").read()
        s.check("objcache.open with the default Cache (OBJCACHE_CONFIG)", ok)
    except Exception:
        s.check("objcache.open with the default Cache (OBJCACHE_CONFIG)", False, traceback.format_exc())
    print(f"{s.passed} passed, {s.failed} failed")
    return 0 if s.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
