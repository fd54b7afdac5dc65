# SPDX-License-Identifier: Apache-2.0
"""The shim serving a mount, tested with real, unmodified programs.

A real s3rver holds a data set; the same files sit on local disk. Each case
runs a program twice: on the local copy without the shim, and on the mount
path under LD_PRELOAD. Both runs must print the same (paths shown relative
to the root) and exit the same way; outputs carry sha256 of what was read.
Then cases that have no local twin: error numbers, metadata requests, fork
under threads, memory with 1,000 open files.

  run_mounts.py --shim build/preload/libobjcache_preload.so --cachectl build/tools/cachectl

Prints one line per case and "N passed, M failed"; exit 0 only if all pass,
77 (skipped) under TSan, whose runtime cannot be preloaded into arbitrary
programs.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ.setdefault("OBJCACHE_TEST_SOURCE_DIR", os.path.dirname(HERE))
import mount_fixture as mf  # noqa: E402

PY = "/usr/bin/python3"

# Python snippets: argv[1] is the root (local copy or mount path).
SNIPPETS = {
    "py_open_read": """
        import hashlib, os, sys
        root = sys.argv[1]
        for d, dirs, files in sorted(os.walk(root)):
            dirs.sort()
            for f in sorted(files):
                p = os.path.join(d, f)
                with open(p, 'rb') as fh:
                    data = fh.read()
                print(os.path.relpath(p, root), len(data), hashlib.sha256(data).hexdigest())
    """,
    "py_stat_family": """
        import os, stat, sys
        root = sys.argv[1]
        for rel in ['text/hello.txt', 'big/large.bin', 'empty.txt', 'imgs', 'imgs/class1', '.',
                    'odd names/sub dir/ünï cödé+=.txt', 'missing', 'text/missing.txt']:
            p = os.path.join(root, rel)
            try:
                st = os.stat(p)
                lst = os.lstat(p)
                print(rel, stat.S_IFMT(st.st_mode), st.st_size if not stat.S_ISDIR(st.st_mode) else '-',
                      st.st_blocks * 512 >= st.st_size if not stat.S_ISDIR(st.st_mode) else '-',
                      st.st_ino == lst.st_ino, os.path.isdir(p), os.path.isfile(p),
                      os.path.exists(p), os.access(p, os.R_OK))
            except OSError as e:
                print(rel, 'error', e.errno)
        print(os.path.getsize(os.path.join(root, 'big/large.bin')))
        print(os.path.relpath(os.path.realpath(os.path.join(root, 'imgs/../text/./hello.txt')), root))
    """,
    "py_listdir_scandir_walk_glob": """
        import glob, os, sys
        root = sys.argv[1]
        print(sorted(os.listdir(root)))
        print(sorted((e.name, e.is_dir(), e.is_file()) for e in os.scandir(os.path.join(root, 'imgs'))))
        print(sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, 'imgs/*/*.jpg'))))
        print([(os.path.relpath(d, root), sorted(ds), sorted(fs)) for d, ds, fs in sorted(os.walk(root))])
        fd = os.open(os.path.join(root, 'imgs'), os.O_RDONLY | os.O_DIRECTORY)
        print(sorted(os.listdir(fd)))
        print(sorted(e.name for e in os.scandir(fd)))
        print(os.stat('class0/img001.jpg', dir_fd=fd).st_size)
        print(sorted(os.path.join(d, f) for d, _, fs, _ in os.fwalk('.', dir_fd=fd) for f in fs))
        os.close(fd)
    """,
    "py_os_io": """
        import hashlib, os, sys
        root = sys.argv[1]
        p = os.path.join(root, 'big/large.bin')
        fd = os.open(p, os.O_RDONLY)
        print(os.fstat(fd).st_size, os.lseek(fd, 0, os.SEEK_END), os.lseek(fd, 1000, os.SEEK_SET))
        a = os.read(fd, 5000)
        b = os.pread(fd, 3000, 1048570)          # crosses a page boundary
        bufs = [bytearray(700), bytearray(1300)]
        n = os.preadv(fd, bufs, 2097000)
        m = os.readv(fd, [bytearray(100), bytearray(50)])
        print(len(a), hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest(), n,
              hashlib.sha256(bytes(bufs[0]) + bytes(bufs[1])).hexdigest(), m, os.lseek(fd, 0, os.SEEK_CUR))
        d = os.dup(fd)
        os.lseek(d, 42, os.SEEK_SET)
        print('dup shares offset', os.lseek(fd, 0, os.SEEK_CUR))
        d2 = os.dup2(fd, 100)
        print(os.read(100, 8).hex(), os.lseek(fd, 0, os.SEEK_CUR))
        os.close(d); os.close(100)
        print(os.read(fd, 4).hex())
        try:
            os.lseek(fd, 0, os.SEEK_DATA); print('data ok', os.lseek(fd, 0, os.SEEK_HOLE))
        except OSError as e:
            print('seek data', e.errno)
        os.close(fd)
        fd = os.open(os.path.join(root, 'text/hello.txt'), os.O_RDONLY)
        print(os.read(fd, 20), os.isatty(fd))
        os.close(fd)
    """,
    "py_shutil": """
        import hashlib, os, shutil, sys, tempfile
        root = sys.argv[1]
        with tempfile.TemporaryDirectory() as t:
            shutil.copyfile(os.path.join(root, 'big/large.bin'), os.path.join(t, 'x'))
            shutil.copy2(os.path.join(root, 'text/hello.txt'), os.path.join(t, 'y'))
            shutil.copytree(os.path.join(root, 'imgs'), os.path.join(t, 'imgs'))
            for d, ds, fs in sorted(os.walk(t)):
                for f in sorted(fs):
                    p = os.path.join(d, f)
                    print(os.path.relpath(p, t), hashlib.sha256(open(p, 'rb').read()).hexdigest())
    """,
    "numpy_load_fromfile_memmap": """
        import os, sys, hashlib
        import numpy as np
        root = sys.argv[1]
        a = np.load(os.path.join(root, 'arrays/a.npy'))
        b = np.fromfile(os.path.join(root, 'arrays/raw.bin'), dtype=np.float32)
        c = np.memmap(os.path.join(root, 'arrays/raw.bin'), dtype=np.float32, mode='r')
        d = np.load(os.path.join(root, 'arrays/a.npy'), mmap_mode='r')
        with open(os.path.join(root, 'arrays/a.npy'), 'rb') as f:
            e = np.load(f)
            rest = f.read()
        print(a.shape, float(a.sum()), float(b.sum()), float(c.sum()), float(d.sum()), float(e.sum()), len(rest))
        import mmap
        with open(os.path.join(root, 'big/large.bin'), 'rb') as f:
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            print(hashlib.sha256(m[:]).hexdigest(), len(m))
            m.close()
    """,
    "torch_load_and_image": """
        import os, sys, hashlib
        import torch
        root = sys.argv[1]
        t = torch.load(os.path.join(root, 'model/t.pt'))
        print(sorted(t), float(t['w'].sum()), float(t['b'].sum()))
        from PIL import Image
        im = Image.open(os.path.join(root, 'imgs/class2/img003.jpg'))
        im.load()
        print(im.size, im.mode, hashlib.sha256(im.tobytes()).hexdigest())
        import torchvision.io
        data = torchvision.io.read_file(os.path.join(root, 'imgs/class0/img000.jpg'))
        img = torchvision.io.decode_jpeg(data)
        print(tuple(img.shape), int(img.sum()))
    """,
    "imagefolder_dataloader_2_workers": """
        import os, sys, hashlib
        import torch
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms
        root = sys.argv[1]
        ds = datasets.ImageFolder(os.path.join(root, 'imgs'), transform=transforms.ToTensor())
        print(ds.classes, len(ds))
        dl = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
        h = hashlib.sha256()
        labels = []
        for x, y in dl:
            h.update(x.numpy().tobytes())
            labels += y.tolist()
        print(labels, h.hexdigest())
    """,
    "tarfile_and_sqlite_module": """
        import os, sys, sqlite3, tarfile, hashlib
        root = sys.argv[1]
        with tarfile.open(os.path.join(root, 'tars/archive.tar')) as t:
            for m in sorted(t.getmembers(), key=lambda m: m.name):
                data = t.extractfile(m).read() if m.isfile() else b''
                print(m.name, m.size, hashlib.sha256(data).hexdigest())
        con = sqlite3.connect('file:' + os.path.join(root, 'db/test.sqlite') + '?mode=ro', uri=True)
        print(con.execute('select count(*), sum(k), max(v) from t').fetchone())
        con.close()
    """,
    "subprocess_stdin_and_exec": """
        import os, subprocess, sys
        root = sys.argv[1]
        with open(os.path.join(root, 'big/large.bin'), 'rb') as f:
            f.read(10)
            out = subprocess.run(['sha256sum'], stdin=f, capture_output=True, check=True).stdout
        print(out.split()[0].decode())
        with open(os.path.join(root, 'text/hello.txt'), 'rb') as f:
            out = subprocess.run(['head', '-c', '30'], stdin=f, capture_output=True).stdout
        print(out)
        pid = os.fork()
        if pid == 0:
            with open(os.path.join(root, 'text/hello.txt'), 'rb') as f:
                os._exit(0 if len(f.read()) == 8890 else 3)
        print('fork child', os.waitpid(pid, 0)[1])
    """,
}

# Programs: shell command lines, {R} is the root.
COMMANDS = {
    "cat_wc": "cat {R}/text/hello.txt | sha256sum && wc -l -c {R}/text/hello.txt | sed 's|{R}|ROOT|'",
    "head_tail": "head -c 100 {R}/big/large.bin | sha256sum && tail -c 5000 {R}/big/large.bin | sha256sum && head -n 3 {R}/text/hello.txt",
    "md5sum_sha256sum": "cd {R} && md5sum text/hello.txt big/large.bin empty.txt && sha256sum imgs/class0/img000.jpg",
    "cp_and_cp_r": "t=$(mktemp -d) && cp {R}/big/large.bin $t/ && cp -r {R}/imgs $t/imgs && (cd $t && find . -type f | sort | xargs sha256sum) && rm -rf $t",
    "ls_stat": "ls {R} && ls -R {R}/imgs && ls -l {R}/text | awk 'NR > 1 {{print $1, $5, $NF}}' && stat -c '%s %F %a %h' {R}/text/hello.txt && stat -c '%F %a' {R}/imgs",
    "find_du": "cd {R} && find . -type f | sort && find . -type d | sort && du -ab text/hello.txt big/large.bin | sort -k2",
    "tar_read_and_create": "cd {R} && tar -tf tars/archive.tar | sort && t=$(mktemp -d) && tar -xf tars/archive.tar -C $t && (cd $t && find . -type f | sort | xargs sha256sum) && rm -rf $t && tar -cf - imgs | tar -tf - | sort",
    "redirect_stdin": "sha256sum < {R}/big/large.bin && wc -l < {R}/text/hello.txt",
    "sqlite3_cli": "sqlite3 -readonly {R}/db/test.sqlite 'select count(*), min(v) from t;'",
}


def normalize(text, root):
    return text.replace(root, "ROOT")


def run(args, env, timeout=300, shell=False, cwd=None):
    try:
        p = subprocess.run(args, env=env, capture_output=True, timeout=timeout, shell=shell, cwd=cwd)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return "timeout", "", ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim", required=True)
    ap.add_argument("--cachectl", required=True)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    args.shim = os.path.abspath(args.shim)  # programs under test change directory
    args.cachectl = os.path.abspath(args.cachectl)

    ldd = subprocess.run(["ldd", args.shim], capture_output=True, text=True).stdout
    if "libtsan" in ldd:
        print("skipped (exit 77): TSan cannot be preloaded into arbitrary programs.")
        return 77
    # ASan build: the runtime and an early-init helper go first (see
    # tests/support/asan_early_init.c).
    asan = mf.asan_preload(args.shim)

    suite = mf.Suite()
    work = tempfile.mkdtemp(prefix="objcache-mounts-")
    server = None
    try:
        local = os.path.join(work, "local")
        mf.make_dataset(local)
        server = mf.S3Server(work)
        client = server.client()
        mf.upload_tree(client, local, prefix="ds/")
        # The mount is read-only (files 0444, directories 0555): make the
        # local twin so, so that ls and stat print the same.
        for d, dirs, files in os.walk(local):
            for f in files:
                os.chmod(os.path.join(d, f), 0o444)
        for d, dirs, files in os.walk(local, topdown=False):
            os.chmod(d, 0o555)
        shm = os.path.join(work, "shm")
        os.makedirs(shm)
        mount = f"/mnt/objcache-test-{os.getpid()}"
        config = os.path.join(work, "objcache.toml")
        mf.write_config(config, server.endpoint, mount, "s3://data/ds/", name=f"m{os.getpid()}")

        base_env = dict(os.environ)
        base_env["LC_ALL"] = "C.UTF-8"
        if asan:
            base_env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
            base_env["LD_PRELOAD"] = " ".join(asan)
        shim_env = mf.shim_env(args.shim, config, shm, asan)
        shim_env["LC_ALL"] = "C.UTF-8"
        if asan:
            shim_env["ASAN_OPTIONS"] = base_env["ASAN_OPTIONS"]

        def compare(name, local_run, shim_run):
            if args.only and args.only not in name:
                return
            rc_l, out_l, err_l = local_run(local)
            rc_s, out_s, err_s = shim_run(mount)
            out_l, out_s = normalize(out_l, local), normalize(out_s, mount)
            ok = rc_l == 0 and rc_s == 0 and out_l == out_s and out_l.strip() != ""
            suite.check(name, ok, f"local rc={rc_l}\n{out_l[-1500:]}\n{err_l[-800:]}\n"
                                  f"shim rc={rc_s}\n{out_s[-1500:]}\n{err_s[-1500:]}")

        for name, code in SNIPPETS.items():
            src = textwrap.dedent(code)
            compare(name, lambda r: run([PY, "-c", src, r], base_env),
                    lambda r: run([PY, "-c", src, r], shim_env))
        for name, cmd in COMMANDS.items():
            compare(name, lambda r: run(["bash", "-c", cmd.format(R=r).replace(r, r)], base_env),
                    lambda r: run(["bash", "-c", cmd.format(R=r)], shim_env))

        if not args.only or "errors" in args.only:
            errors_case(suite, shim_env, mount)
        if not args.only or "metadata" in args.only:
            metadata_case(suite, args, shim_env, mount, config, shm, local)
        if not args.only or "fork" in args.only:
            fork_case(suite, shim_env, mount)
        # Memory is measured in the plain build only: ASan's shadow memory and
        # allocator quarantine are most of what a process holds under it.
        if (not args.only or "memory" in args.only) and not asan:
            memory_case(suite, base_env, shim_env, mount, local)
        if not args.only or "bad_store" in args.only:
            bad_store_case(suite, args, server, work, asan)
        if not args.only or "log" in args.only:
            log_case(suite, args, server, work, asan)
    finally:
        if server is not None:
            server.stop()
        for d, dirs, files in os.walk(work):
            os.chmod(d, 0o755)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{suite.passed} passed, {suite.failed} failed")
    return 0 if suite.failed == 0 else 1


def errors_case(suite, env, mount):
    code = textwrap.dedent("""
        import errno, os, sys
        root = sys.argv[1]
        def err(f):
            try:
                f(); return 'ok'
            except OSError as e:
                return errno.errorcode[e.errno]
        print('missing', err(lambda: open(os.path.join(root, 'nope.txt'), 'rb')))
        print('missing dir', err(lambda: os.listdir(os.path.join(root, 'nope'))))
        print('read dir', err(lambda: os.read(os.open(os.path.join(root, 'imgs'), os.O_RDONLY), 10)))
        print('open dir', err(lambda: open(os.path.join(root, 'imgs'), 'rb')))
        print('write', err(lambda: open(os.path.join(root, 'text/hello.txt'), 'wb')))
        print('create', err(lambda: open(os.path.join(root, 'new.txt'), 'wb')))
        print('append', err(lambda: open(os.path.join(root, 'text/hello.txt'), 'ab')))
        print('notdir', err(lambda: os.listdir(os.path.join(root, 'text/hello.txt'))))
        print('xattr', err(lambda: os.getxattr(os.path.join(root, 'text/hello.txt'), 'user.x')))
        print('listxattr', os.listxattr(os.path.join(root, 'text/hello.txt')))
        print('readlink', err(lambda: os.readlink(os.path.join(root, 'text/hello.txt'))))
        fd = os.open(os.path.join(root, 'text/hello.txt'), os.O_RDONLY)
        import fcntl
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        print('lock ok', fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY)
        print('write fd', err(lambda: os.write(fd, b'x')))
        os.close(fd)
        fd = os.open(os.path.join(root, 'text/hello.txt'), os.O_PATH)
        print('O_PATH read', err(lambda: os.read(fd, 1)), os.fstat(fd).st_size)
        os.close(fd)
    """)
    rc, out, err = run([PY, "-c", code, mount], env)
    want = ("missing ENOENT\nmissing dir ENOENT\nread dir EISDIR\nopen dir EISDIR\nwrite EROFS\n"
            "create EROFS\nappend EROFS\nnotdir ENOTDIR\nxattr ENODATA\nlistxattr []\n"
            "readlink EINVAL\nlock ok True\nwrite fd EBADF\nO_PATH read EBADF 8890\n")
    suite.check("errors_enoent_eisdir_erofs_enodata", rc == 0 and out == want,
                f"rc={rc}\n{out}\n{err[-1500:]}")


def cachectl_stats(args, config, shm):
    env = dict(os.environ, OBJCACHE_SHM_DIR=shm)
    env.pop("LD_PRELOAD", None)
    p = subprocess.run([args.cachectl, "--config", config, "stats", "--json"], env=env,
                       capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else None


def metadata_case(suite, args, env, mount, config, shm, local):
    # A fresh cache: list a directory, then open every file in it. The
    # requests: a HEAD and a one-key LIST (is imgs/class1 a file or a
    # directory? its parent was never listed), the directory's LIST, then
    # one GET per file: no HEAD for the files the listing named.
    name = f"meta{os.getpid()}"
    cfg2 = config + ".meta"
    with open(config) as f:
        text = re.sub(r'^name = "[^"]*"$', f'name = "{name}"', f.read(), count=1, flags=re.M)
    with open(cfg2, "w") as f:
        f.write(text)
    env2 = dict(env, OBJCACHE_CONFIG=cfg2)
    code = textwrap.dedent("""
        import os, sys
        d = os.path.join(sys.argv[1], 'imgs', 'class1')
        names = sorted(os.listdir(d))
        for n in names:
            with open(os.path.join(d, n), 'rb') as f:
                f.read()
        print(len(names))
    """)
    rc, out, err = run([PY, "-c", code, mount], env2)
    stats = cachectl_stats(args, cfg2, shm)
    files = len(os.listdir(os.path.join(local, "imgs", "class1")))
    ok = rc == 0 and stats is not None and stats["remote_requests"] == files + 3
    suite.check("metadata_open_after_listing_sends_no_head", ok,
                f"rc={rc} out={out} err={err[-800:]}\nstats={stats}\nwant remote_requests={files + 3}")
    # A second process: listing and files come from shared memory, no request.
    rc, out, err = run([PY, "-c", code, mount], env2)
    stats2 = cachectl_stats(args, cfg2, shm)
    ok = rc == 0 and stats2 is not None and stats2["remote_requests"] == stats["remote_requests"]
    suite.check("metadata_shared_by_a_second_process", ok,
                f"rc={rc} err={err[-800:]}\nbefore={stats and stats['remote_requests']} after={stats2}")


def fork_case(suite, env, mount):
    # DataLoader-like: threads reading (and fetching) while the process forks;
    # each child reads through the shim and exits. Must never hang.
    code = textwrap.dedent("""
        import hashlib, os, sys, threading
        root = sys.argv[1]
        files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
        stop = False
        def reader():
            while not stop:
                for p in files:
                    with open(p, 'rb') as f:
                        f.read()
        ts = [threading.Thread(target=reader) for _ in range(3)]
        for t in ts: t.start()
        bad = 0
        for i in range(30):
            pid = os.fork()
            if pid == 0:
                n = 0
                for p in files:
                    with open(p, 'rb') as f:
                        n += len(f.read())
                os._exit(0 if n > 0 else 1)
            _, status = os.waitpid(pid, 0)
            bad += status != 0
        stop = True
        for t in ts: t.join()
        print('bad children', bad)
    """)
    rc, out, err = run([PY, "-c", code, mount], env, timeout=240)
    suite.check("fork_while_threads_fetch", rc == 0 and out.strip() == "bad children 0",
                f"rc={rc}\n{out}\n{err[-1500:]}")


def memory_case(suite, base_env, env, mount, local):
    # Private memory (smaps_rollup) with 1,000 mapped files open, against the
    # same program on local files without the shim.
    code = textwrap.dedent("""
        import os, sys
        root = sys.argv[1]
        files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if not f.endswith('.bin')]
        held = []
        while len(held) < 1000:
            for p in files:
                if len(held) == 1000: break
                f = open(p, 'rb'); f.read(); held.append(f)
        kb = 0
        for line in open('/proc/self/smaps_rollup'):
            if line.startswith(('Private_Clean:', 'Private_Dirty:')):
                kb += int(line.split()[1])
        print(kb)
    """)
    rc_l, out_l, _ = run([PY, "-c", code, local], base_env)
    rc_s, out_s, err_s = run([PY, "-c", code, mount], env)
    ok = rc_l == 0 and rc_s == 0
    delta = (int(out_s) - int(out_l)) / 1024 if ok else None
    suite.check(f"memory_1000_open_files_private_delta_MiB={delta if delta is None else round(delta, 1)}",
                ok and delta <= 32, f"local={out_l} shim={out_s} {err_s[-800:]}")


def bad_store_case(suite, args, server, work, asan):
    # Wrong access key: EACCES. A store that is down: EIO after the retry
    # deadline (3 s here), never a hang.
    code = textwrap.dedent("""
        import errno, os, sys, time
        t = time.time()
        try:
            open(os.path.join(sys.argv[1], 'text/hello.txt'), 'rb').read(); print('ok')
        except OSError as e:
            print(errno.errorcode[e.errno], time.time() - t < 60)
    """)
    for label, endpoint, key, want in [
            ("denied_bucket_eacces", server.endpoint, "WRONGKEY", "EACCES True"),
            ("store_down_eio", "http://127.0.0.1:9", "S3RVER", "EIO True")]:
        shm = os.path.join(work, "shm-" + label)
        os.makedirs(shm)
        config = os.path.join(work, label + ".toml")
        mount = f"/mnt/objcache-{label}-{os.getpid()}"
        mf.write_config(config, endpoint, mount, "s3://data/ds/", name=label)
        env = mf.shim_env(args.shim, config, shm, asan)
        env["AWS_ACCESS_KEY_ID"] = key
        if asan:
            env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
        rc, out, err = run([PY, "-c", code, mount], env, timeout=120)
        suite.check(label, rc == 0 and out.strip() == want, f"rc={rc}\n{out}\n{err[-1500:]}")


# Distinctive credentials: whatever a log line carries, these must not be in it
# (s3rver 3.7.1 checks the key id only, so any secret and token will do).
LOG_SECRET = "ocSecretKey-5e1f0c7a9b3d42e8"
LOG_TOKEN = "ocSessionToken-a8d2c4e6f1b3"

LOG_PROGRAM = textwrap.dedent("""
    import errno, os, sys
    up, down, log_path, clobber = sys.argv[1:5]
    def attempt(path):
        try:
            with open(path, 'rb') as f:
                return len(f.read())
        except OSError as e:
            return errno.errorcode[e.errno]
    # The engine opens the log when it loads, on the first call that
    # touches a mount (this stat; its first lines are the configuration).
    # The program then takes its descriptor over (a shell's `exec 3>out`)
    # before any file is read: the lines that follow (the retries) must go
    # to the log file again, never into the program's.
    os.path.isdir(up)
    fds = [int(fd) for fd in os.listdir('/proc/self/fd')
           if os.path.realpath('/proc/self/fd/' + fd) == os.path.realpath(log_path)]
    print('log fds', len(fds))
    for fd in fds:
        mine = os.open(clobber, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(mine, fd)
        os.close(mine)
    print('up', attempt(os.path.join(up, 'text/hello.txt')))
    print('missing', attempt(os.path.join(up, 'nope.txt')))
    print('down', attempt(os.path.join(down, 'text/hello.txt')))
""")


def log_case(suite, args, server, work, asan):
    # [log] level and file: debug lines in the file (the configuration, the
    # mounts, the cache attached, the store's retries), nothing of ours on
    # stderr; "error" keeps warnings out; a file that cannot be opened is
    # said once, then stderr. Never a secret or a token, anywhere.
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    not_a_dir = os.path.join(work, "spill-is-a-file")  # the spill tier warns and turns off
    with open(not_a_dir, "w") as f:
        f.write("x")
    up = f"/mnt/objcache-log-up-{os.getpid()}"
    down = f"/mnt/objcache-log-down-{os.getpid()}"

    def setup(label, level, log_file):
        config = os.path.join(work, label + ".toml")
        mf.write_config(config, server.endpoint, up, "s3://data/ds/", name=label, spill_dir=not_a_dir)
        with open(config, "a") as f:
            f.write(f'\n[[mount]]\npath = "{down}"\nsource = "s3://data/unreachable/"\n'
                    f'endpoint = "http://127.0.0.1:9"\n'
                    f'\n[log]\nlevel = "{level}"\nfile = "{log_file}"\n')
        shm = os.path.join(work, "shm-" + label)
        os.makedirs(shm)
        env = mf.shim_env(args.shim, config, shm, asan)
        env["AWS_SECRET_ACCESS_KEY"] = LOG_SECRET
        env["AWS_SESSION_TOKEN"] = LOG_TOKEN
        if asan:
            env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
        return env

    def read(path):
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def secret_free(*texts):
        return all(t is None or (LOG_SECRET not in t and LOG_TOKEN not in t) for t in texts)

    debug_log = os.path.join(logs, "debug.log")
    clobber = os.path.join(work, "program-output.txt")
    env = setup("logdebug", "debug", debug_log)
    rc, out, err = run([PY, "-c", LOG_PROGRAM, up, down, debug_log, clobber], env, timeout=120)
    text = read(debug_log)
    want_out = "log fds 1\nup 8890\nmissing ENOENT\ndown EIO\n"
    wanted = ["debug: configuration ", f"debug: mount[1] {up} = s3://data/ds/", f"debug: mount[2] {down} = s3://data/unreachable/",
              'debug: cache "logdebug" attached', "debug: retrying ", "warn: spill tier disabled"]
    missing = [w for w in wanted if text is None or w not in text]
    lines = (text or "").splitlines()
    suite.check("log_debug_goes_to_the_file",
                rc == 0 and out == want_out and not missing and "objcache" not in err
                and all(" objcache[" in line for line in lines),
                f"rc={rc}\n{out}\nmissing={missing}\nstderr:\n{err[-1500:]}\nlog:\n{(text or 'no file')[-3000:]}")
    clobbered = read(clobber) or ""
    suite.check("log_survives_the_program_reusing_its_fd",
                "log fds 1\n" in out and "objcache" not in clobbered and 'cache "logdebug" attached' in (text or ""),
                f"program's file:\n{clobbered[-1500:]}\nlog:\n{(text or 'no file')[-1500:]}")
    suite.check("log_debug_carries_no_secret_or_token", secret_free(text, out, err) and text,
                "a secret or token was printed" if text else "no log file")

    error_log = os.path.join(logs, "error.log")
    env = setup("logerror", "error", error_log)
    rc, out, err = run([PY, "-c", LOG_PROGRAM, up, down, error_log, clobber], env, timeout=120)
    text = read(error_log) or ""
    noisy = [line for line in (text + err).splitlines() if re.search(r"objcache\[\d+\] (warn|info|debug):", line)]
    suite.check("log_level_error_keeps_warnings_out", rc == 0 and "up 8890\n" in out and not noisy
                and secret_free(text, out, err),
                f"rc={rc}\n{out}\nlines below error:\n" + "\n".join(noisy[-20:]))

    bad = os.path.join(work, "no-such-dir", "x.log")
    env = setup("logbad", "warn", bad)
    rc, out, err = run([PY, "-c", LOG_PROGRAM, up, down, bad, clobber], env, timeout=120)
    said = err.count(f'objcache: cannot open log.file "{bad}"')
    suite.check("log_file_that_cannot_be_opened_is_said_once_then_stderr",
                rc == 0 and said == 1 and "warn: spill tier disabled" in err and not os.path.exists(bad),
                f"rc={rc} said={said}\n{out}\nstderr:\n{err[-2000:]}")


if __name__ == "__main__":
    sys.exit(main())
