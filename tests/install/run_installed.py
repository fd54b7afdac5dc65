#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The installed package as a user gets it: `meson install --destdir` of the
build, then the examples (examples/*.cpp) and a C program built in a
separate directory with `pkg-config --cflags --libs objcache` only
(PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR into the destdir), and run
against s3rver, with the installed Python module's Dataset example.
Usage: run_installed.py --build-dir build --source-dir .
Ends with "N passed, M failed"."""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "preload"))
from mount_fixture import ACCESS_KEY, SECRET_KEY, S3Server, Suite  # noqa: E402

C_PROGRAM = r"""
#include <objcache/objcache.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char** argv) {
  objcache_cache* c;
  objcache_file* f;
  char buf[64];
  if (argc < 3 || objcache_cache_open(argv[1], &c) != 0) return 1;
  if (objcache_open(c, argv[2], &f) != 0) { fprintf(stderr, "%s\n", objcache_last_error()); return 1; }
  long long n = objcache_pread(f, buf, sizeof buf - 1, 0);
  if (n < 0) return 1;
  buf[n] = 0;
  printf("c: %s %llu %s\n", objcache_version(), (unsigned long long) objcache_file_size(f), buf);
  objcache_close(f);
  if (objcache_open(c, "s3://data/none", &f) != -2) return 1; /* -ENOENT */
  objcache_cache_close(c);
  return 0;
}
"""


def run(s, name, args, env=None, cwd=None, want=None):
    try:
        p = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    except OSError as e:
        s.check(name, False, f"$ {' '.join(args)}\n{e}")
        return None
    ok = p.returncode == 0 and (want is None or re.search(want, p.stdout) is not None)
    s.check(name, ok, f"$ {' '.join(args)}\nexit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout if ok else None


def sanitizer_flags(lib):
    ldd = subprocess.run(["ldd", lib], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        return ["-fsanitize=address,undefined"]
    if "libtsan" in ldd:
        return ["-fsanitize=thread"]
    return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    s = Suite()
    with tempfile.TemporaryDirectory(prefix="objcache-install-") as tmp:
        dest = os.path.join(tmp, "dest")
        if run(s, "meson install --destdir", ["meson", "install", "-C", args.build_dir, "--no-rebuild",
                                               "--quiet", "--destdir", dest]) is None:
            print(f"{s.passed} passed, {s.failed} failed")
            return 1
        pcs = glob.glob(os.path.join(dest, "**", "pkgconfig", "objcache.pc"), recursive=True)
        s.check("objcache.pc is installed", len(pcs) == 1, pcs)
        libs = glob.glob(os.path.join(dest, "**", "libobjcache.so.0"), recursive=True)
        s.check("libobjcache.so.0 (the SONAME) is installed", len(libs) == 1, libs)
        if not pcs or not libs:
            print(f"{s.passed} passed, {s.failed} failed")
            return 1
        libdir = os.path.dirname(libs[0])
        soname = subprocess.run(["readelf", "-d", libs[0]], capture_output=True, text=True).stdout
        s.check("the library's SONAME is libobjcache.so.0", "[libobjcache.so.0]" in soname, soname)
        for rel in ("include/objcache/cache.h", "include/objcache/cache_stream.h", "include/objcache/objcache.h",
                    "bin/cachectl", "share/objcache/python/objcache/__init__.py",
                    "share/objcache/python/objcache/_install.py", "share/objcache/examples/loader.cpp"):
            found = glob.glob(os.path.join(dest, "**", rel), recursive=True)
            s.check(f"{rel} is installed", len(found) == 1, found)
        # The shim finds its engine beside itself (preload/engine_loader.cpp).
        shims = glob.glob(os.path.join(dest, "**", "libobjcache_preload.so"), recursive=True)
        s.check("libobjcache_preload.so is installed, its engine beside it",
                len(shims) == 1 and os.path.exists(os.path.join(os.path.dirname(shims[0]),
                                                                "libobjcache_preload_engine.so")), shims)
        pyinst = glob.glob(os.path.join(dest, "**", "share/objcache/python/objcache/_install.py"), recursive=True)
        pydir = os.path.dirname(os.path.dirname(pyinst[0])) if pyinst else ""
        if pyinst:
            text = open(pyinst[0]).read()
            s.check("_install.py names the installed library directory",
                    os.path.join(dest, re.search(r'LIBDIR = "([^"]*)"', text).group(1).lstrip("/")) == libdir, text)

        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]), PKG_CONFIG_SYSROOT_DIR=dest)
        pc = run(s, "pkg-config --cflags --libs objcache", ["pkg-config", "--cflags", "--libs", "objcache"], env=env,
                 want=r"-lobjcache")
        if pc is None:
            print(f"{s.passed} passed, {s.failed} failed")
            return 1
        flags = pc.split()
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        san = sanitizer_flags(libs[0])
        # The examples as installed (PREFIX/share/objcache/examples), built as a user would.
        exs = glob.glob(os.path.join(dest, "**", "share/objcache/examples"), recursive=True)
        ex = exs[0] if exs else os.path.join(os.path.abspath(args.source_dir), "examples")
        for name in ("loader", "write_blob"):
            run(s, f"examples/{name}.cpp builds against the installed package",
                ["c++", "-std=c++20", "-O2", "-Wall", "-Wextra", "-Werror", *san, os.path.join(ex, name + ".cpp"),
                 "-o", os.path.join(out, name), *flags], cwd=out)
        with open(os.path.join(out, "check.c"), "w") as f:
            f.write(C_PROGRAM)
        run(s, "a C program builds against objcache.h (C11, no C++)",
            ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", *san, "check.c", "-o", "check", *flags], cwd=out)

        srv = S3Server(tmp, buckets=("data",))
        try:
            c = srv.client()
            keys = []
            for i in range(40):
                c.put_object(Bucket="data", Key=f"train/c{i % 4}/s{i:03d}.bin", Body=os.urandom(10_000 + i))
                keys.append(f"s3://data/train/c{i % 4}/s{i:03d}.bin")
            c.put_object(Bucket="data", Key="hello.txt", Body=b"hello from the bucket")
            cfg = os.path.join(tmp, "objcache.toml")
            with open(cfg, "w") as f:
                f.write(f'[cache]\nname = "inst{os.getpid()}"\nmemory = "64MiB"\nspill_dir = ""\n'
                        f'staging_dir = "{tmp}/staging"\n\n[store]\nendpoint = "{srv.endpoint}"\n'
                        'credentials = "env"\nretry_deadline = "3s"\n')
            renv = dict(os.environ, LD_LIBRARY_PATH=libdir, OBJCACHE_SHM_DIR=tmp, OBJCACHE_CONFIG=cfg,
                        AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                        ASAN_OPTIONS="detect_leaks=0")
            run(s, "loader (8 threads) reads the keys and prints files/s and bytes/s",
                [os.path.join(out, "loader"), "--config", cfg, "--threads", "8", "--repeat", "3", "--prefetch", *keys],
                env=renv, want=r"120 files, .* files/s, .* MiB/s")
            run(s, "write_blob writes 24 MiB with Writer and reads it back, checked",
                [os.path.join(out, "write_blob"), "--config", cfg, "--size", "24MiB", "s3://data/blob/big.bin"],
                env=renv, want=r"25165824 bytes: written and committed")
            run(s, "the C program opens, reads and gets -ENOENT",
                [os.path.join(out, "check"), cfg, "s3://data/hello.txt"], env=renv,
                want=r"c: \d+\.\d+\.\d+ 21 hello from the bucket")
            if san:
                s.check("examples/dataset.py with the installed module (skipped: sanitizer build)", True)
            else:
                penv = dict(renv, PYTHONPATH=pydir, OBJCACHE_LIB=libs[0])
                run(s, "examples/dataset.py: DataLoader (2 forked workers) over the installed module",
                    ["/usr/bin/python3", os.path.join(ex, "dataset.py"), "s3://data/train/", "--epochs", "2"],
                    env=penv, want=r"epoch 2: 40 samples")
        finally:
            srv.stop()
    print(f"{s.passed} passed, {s.failed} failed")
    return 0 if s.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
