# SPDX-License-Identifier: Apache-2.0
"""The split shim: libobjcache_preload.so alone until a call touches a
mount, then the engine (libobjcache_preload_engine.so) dlopened once.

Against a real s3rver holding a few files (and the same files on local
disk): a process that touches no mount never maps the engine; one that
does maps it once; the first mounted read may come after fork, in a
vfork+exec child (subprocess, posix_spawn, an fd handed over as stdin),
from many threads at once, or from a signal handler (where it fails with
EAGAIN instead of loading, and the next call outside the handler works).
Every byte read through the mount is compared (sha256) with the local copy.

  run_split.py --shim build/preload/libobjcache_preload.so

Prints one line per case and "N passed, M failed"; 77 (skipped) under TSan.
"""
import argparse
import hashlib
import os
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
ENGINE = "libobjcache_preload_engine.so"
TIMEOUT = 120  # a failure guard only: every case waits for its processes to end

# argv: mount, local root. Prints "engine N" (mappings of the engine) last.
MAPS = "def engine_maps():\n    return sum('" + ENGINE + "' in l for l in open('/proc/self/maps'))\n"


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run(argv, env, cwd=None, stdin=None):
    p = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=TIMEOUT,
                       stdin=stdin if stdin is not None else subprocess.DEVNULL)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def py(code, env, *args, cwd=None):
    return run([PY, "-c", MAPS + textwrap.dedent(code)] + list(args), env, cwd=cwd)


SIGNAL_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char* g_path;
static int g_pipe[2];
static volatile int g_rc, g_err;

static void on_signal(int sig) {
  (void)sig;
  int fd = open(g_path, O_RDONLY);
  g_rc = fd;
  g_err = fd < 0 ? errno : 0;
  if (fd >= 0) close(fd);
  char c = 1;
  (void)write(g_pipe[1], &c, 1);  /* the event main waits for */
}

int main(int argc, char** argv) {
  if (argc < 2 || pipe(g_pipe) != 0) return 2;
  g_path = argv[1];
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL) != 0) return 2;
  if (kill(getpid(), SIGUSR1) != 0) return 2;
  struct pollfd p = {g_pipe[0], POLLIN, 0};
  if (poll(&p, 1, 60000) != 1) {  /* a failure guard: the handler writes at once */
    fprintf(stderr, "the handler never finished\n");
    return 3;
  }
  fprintf(stderr, "handler rc=%d errno=%s\n", g_rc < 0 ? -1 : 0, g_err == 0 ? "0" : strerrorname_np(g_err));
  /* Outside the handler: the first load happens here. */
  int fd = open(g_path, O_RDONLY);
  if (fd < 0) { perror("open"); return 4; }
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, stdout);
  close(fd);
  /* Now the engine is loaded: a handler's mounted call is served. */
  g_rc = g_err = 0;
  if (kill(getpid(), SIGUSR1) != 0) return 2;
  if (poll(&p, 1, 60000) != 1) return 3;
  char c;
  (void)read(g_pipe[0], &c, 1);
  (void)read(g_pipe[0], &c, 1);
  fprintf(stderr, "loaded handler rc=%d errno=%s\n", g_rc < 0 ? -1 : 0, g_err == 0 ? "0" : strerrorname_np(g_err));
  return 0;
}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim", required=True)
    args = ap.parse_args()
    shim = os.path.abspath(args.shim)
    ldd = subprocess.run(["ldd", shim], capture_output=True, text=True).stdout
    if "libtsan" in ldd:
        print("skipped (exit 77): TSan cannot be preloaded into arbitrary programs.")
        return 77
    asan = mf.asan_preload(shim)
    suite = mf.Suite()
    work = tempfile.mkdtemp(prefix="objcache-split-")
    server = None
    try:
        local = os.path.join(work, "local")
        os.makedirs(os.path.join(local, "many"))
        rnd = open("/dev/urandom", "rb")
        files = {"big.bin": rnd.read(3 * 1024 * 1024 + 777), "small.txt": b"hello split\n"}
        for i in range(16):
            files[f"many/f{i:02d}.bin"] = rnd.read(200_000 + i * 1000)
        for rel, data in files.items():
            with open(os.path.join(local, rel), "wb") as f:
                f.write(data)
        server = mf.S3Server(work)
        mf.upload_tree(server.client(), local, prefix="ds/")
        shm = os.path.join(work, "shm")
        os.makedirs(shm)
        # The mount sits inside the work directory, so that a process whose
        # current directory is above it resolves relative paths near it.
        mount = os.path.join(work, "mnt", "data")
        # Its parent exists on disk: the disk's directory, not one of ours
        # (a missing parent is shown by the engine, hence touches the mount).
        os.makedirs(os.path.dirname(mount))
        config = os.path.join(work, "objcache.toml")
        mf.write_config(config, server.endpoint, mount, "s3://data/ds/", name=f"split{os.getpid()}")
        env = mf.shim_env(shim, config, shm, asan)
        want = {rel: hashlib.sha256(d).hexdigest() for rel, d in files.items()}

        # ---- no mount touched: no engine ---------------------------------------
        rc, out, err = py("""
            import os, subprocess, sys
            mount, local = sys.argv[1], sys.argv[2]
            open('/etc/hostname').read()
            os.listdir(local); os.stat(local + '/small.txt'); os.path.exists('/nonexistent/x')
            os.chdir(os.path.dirname(os.path.dirname(mount)))   # above the mount
            os.listdir('.'); os.stat('local/small.txt'); os.listdir('mnt')   # relative, near it
            os.chdir(local)
            open('small.txt', 'rb').read(); os.stat('../local/many/f00.bin')
            for d, ds, fs in os.walk(local): pass
            print('engine', engine_maps())
        """, env, mount, local)
        suite.check("no_mount_touched_no_engine", rc == 0 and out.strip() == "engine 0", f"{rc} {out} {err}")

        for argv in (["cat", "/proc/self/maps"], ["sh", "-c", "cat /proc/self/maps"],
                     ["bash", "-c", f"ls {local} >/dev/null; cd {work}; cat local/small.txt >/dev/null; "
                                    f"cat /proc/$$/maps"]):
            rc, out, err = run(argv, env)
            suite.check(f"no_engine_in {' '.join(argv)[:40]}",
                        rc == 0 and ENGINE not in out and "libobjcache_preload.so" in out,
                        f"{rc} {err[-800:]}")

        rc, out, err = py("""
            import hashlib, sys
            mount = sys.argv[1]
            print('before', engine_maps() > 0)
            print(hashlib.sha256(open(mount + '/big.bin', 'rb').read()).hexdigest())
            print('after', engine_maps() > 0)
        """, env, mount)
        suite.check("a_mounted_read_loads_the_engine",
                    rc == 0 and out.split() == ["before", "False", want["big.bin"], "after", "True"],
                    f"{rc} {out} {err[-1500:]}")

        # ---- fork -----------------------------------------------------------------
        rc, out, err = py("""
            import hashlib, os, sys
            mount = sys.argv[1]
            def sha(p): return hashlib.sha256(open(p, 'rb').read()).hexdigest()
            # The first mounted read in a child forked before the engine was loaded.
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.write(w, (sha(mount + '/many/f01.bin') + ' %d' % engine_maps()).encode())
                os._exit(0)
            os.close(w)
            got = os.read(r, 200).decode().split()
            _, status = os.waitpid(pid, 0)
            print('child', got[0], int(got[1]) > 0, status)
            print('parent', engine_maps())
            # Loaded in the parent, then forked: the child reads with its own fetcher.
            print('parent', sha(mount + '/many/f02.bin'))
            pids = []
            for i in range(3):
                pid = os.fork()
                if pid == 0:
                    ok = sha(mount + '/many/f%02d.bin' % (3 + i)) == sys.argv[2 + i]
                    os._exit(0 if ok else 1)
                pids.append(pid)
            print('children', [os.waitpid(p, 0)[1] for p in pids])
        """, env, mount, want["many/f03.bin"], want["many/f04.bin"], want["many/f05.bin"])
        lines = out.splitlines()
        suite.check("fork_before_and_after_the_engine",
                    rc == 0 and lines == [f"child {want['many/f01.bin']} True 0", "parent 0",
                                          f"parent {want['many/f02.bin']}", "children [0, 0, 0]"],
                    f"{rc} {out} {err[-1500:]}")

        # ---- vfork + exec ---------------------------------------------------------
        rc, out, err = py("""
            import os, subprocess, sys
            mount = sys.argv[1]
            # Before the engine: subprocess (vfork/posix_spawn + exec) of a
            # child that reads the mount itself.
            a = subprocess.run(['sha256sum', mount + '/many/f06.bin'], capture_output=True).stdout.split()[0]
            print('spawned', a.decode(), engine_maps())
            # After it: a mounted fd handed to the child as its stdin
            # (materialised before exec), and os.posix_spawn.
            with open(mount + '/many/f07.bin', 'rb') as f:
                b = subprocess.run(['sha256sum'], stdin=f, capture_output=True).stdout.split()[0]
            print('stdin', b.decode(), engine_maps() > 0)
            r, w = os.pipe()
            pid = os.posix_spawn('/usr/bin/sha256sum', ['sha256sum', mount + '/many/f08.bin'], os.environ,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_CLOSE, r)])
            os.close(w)
            c = b''
            while True:
                chunk = os.read(r, 4096)
                if not chunk: break
                c += chunk
            print('posix_spawn', c.split()[0].decode(), os.waitpid(pid, 0)[1])
        """, env, mount)
        suite.check("vfork_exec_children",
                    rc == 0 and out.splitlines() == [f"spawned {want['many/f06.bin']} 0",
                                                     f"stdin {want['many/f07.bin']} True",
                                                     f"posix_spawn {want['many/f08.bin']} 0"],
                    f"{rc} {out} {err[-1500:]}")

        # ---- threads racing to the first load ----------------------------------------
        rc, out, err = py("""
            import hashlib, os, sys, threading
            mount = sys.argv[1]
            n = 16
            gate = threading.Barrier(n)
            got = [None] * n
            def read(i):
                gate.wait()
                with open(mount + '/many/f%02d.bin' % i, 'rb') as f:
                    got[i] = hashlib.sha256(f.read()).hexdigest()
            ts = [threading.Thread(target=read, args=(i,)) for i in range(n)]
            for t in ts: t.start()
            for t in ts: t.join()
            for i, g in enumerate(got): print(i, g)
            print('engine files', len({l.split()[-1] for l in open('/proc/self/maps') if '""" + ENGINE + """' in l}))
        """, env, mount)
        expect = [f"{i} {want[f'many/f{i:02d}.bin']}" for i in range(16)] + ["engine files 1"]
        suite.check("threads_start_their_first_mounted_read_at_once",
                    rc == 0 and out.splitlines() == expect, f"{rc} {out} {err[-1500:]}")
        # The same from C threads (no interpreter lock between them at all).
        rc, out, err = py("""
            import ctypes, hashlib, sys, threading
            mount = sys.argv[1]
            libc = ctypes.CDLL(None, use_errno=True)
            n = 8
            gate = threading.Barrier(n)
            got = [None] * n
            def read(i):
                gate.wait()
                fd = libc.open((mount + '/big.bin').encode(), 0)
                buf = ctypes.create_string_buffer(4 << 20)
                total = b''
                while True:
                    k = libc.read(fd, buf, 4 << 20)
                    if k <= 0: break
                    total += buf.raw[:k]
                libc.close(fd)
                got[i] = hashlib.sha256(total).hexdigest()
            ts = [threading.Thread(target=read, args=(i,)) for i in range(n)]
            for t in ts: t.start()
            for t in ts: t.join()
            print(len(set(got)), got[0])
        """, env, mount)
        suite.check("threads_through_ctypes", rc == 0 and out.split() == ["1", want["big.bin"]],
                    f"{rc} {out} {err[-1500:]}")

        # ---- a signal handler's first mounted call ----------------------------------
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            suite.check("signal_handler_first_call", False, "no C compiler")
        else:
            src = os.path.join(work, "sig.c")
            exe = os.path.join(work, "sig")
            with open(src, "w") as f:
                f.write(SIGNAL_C)
            subprocess.run([cc, "-O1", "-Wall", "-Werror", "-o", exe, src], check=True, capture_output=True)
            p = subprocess.run([exe, mount + "/small.txt"], env=env, capture_output=True, timeout=TIMEOUT)
            err = p.stderr.decode(errors="replace")
            suite.check("signal_handler_first_call_fails_with_EAGAIN_then_loads",
                        p.returncode == 0 and p.stdout == files["small.txt"] and
                        "handler rc=-1 errno=EAGAIN" in err and "loaded handler rc=0 errno=0" in err,
                        f"rc {p.returncode} {p.stdout[:100]!r} {err[-1500:]}")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{suite.passed} passed, {suite.failed} failed")
    return 0 if suite.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
