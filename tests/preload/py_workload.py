# SPDX-License-Identifier: Apache-2.0
"""The Python side of tests/preload: what data loaders do to files (open and
read, stat, scandir, walk, glob, pathlib, subprocess with a pipe, fork,
threads, os.pread/preadv, fd-relative calls, shutil's sendfile copy, mmap,
sqlite3, tarfile), printed so that a run under the shim can be compared with
a plain run. Paths are printed relative to ROOT; nothing time-dependent is.

    python3 py_workload.py ROOT OUT
"""
import concurrent.futures
import glob
import hashlib
import mmap
import os
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import tarfile

root, out = sys.argv[1], sys.argv[2]
data = os.path.join(root, "data")


def rel(p):
    return os.path.relpath(p, root)


def sha(b):
    return hashlib.sha256(b).hexdigest()[:16]


def show(*parts):
    print(*parts, flush=True)


def errname(e):
    return type(e).__name__ + ":" + (os.strerror(e.errno) if getattr(e, "errno", None) else "")


files = sorted(p for p in glob.glob(os.path.join(data, "**", "*"), recursive=True)
               if os.path.isfile(p) and not os.path.islink(p))

# open().read(), os.stat, os.lstat, exists/isdir/getsize
for p in files:
    with open(p, "rb") as f:
        show("read", rel(p), sha(f.read()))
    st = os.stat(p)
    show("stat", rel(p), st.st_size, oct(st.st_mode), st.st_nlink, st.st_mtime_ns)
show("lstat link", os.path.islink(os.path.join(data, "link")), os.lstat(os.path.join(data, "link")).st_size)
show("exists", os.path.exists(os.path.join(data, "nope")), os.path.isdir(os.path.join(data, "sub")))
show("realpath", rel(os.path.realpath(os.path.join(data, "dirlink", "a"))))
show("readlink", os.readlink(os.path.join(data, "link")))
show("access", os.access(files[0], os.R_OK), os.access(os.path.join(data, "nope"), os.F_OK))

# text mode, readline, seek/tell
with open(os.path.join(data, "sub", "a", "b", "c", "deep.txt")) as f:
    show("readline", repr(f.readline()), f.tell())
    f.seek(0)
    show("lines", len(f.readlines()))

# scandir, listdir, walk, glob, pathlib
with os.scandir(data) as it:
    show("scandir", sorted((e.name, e.is_dir(), e.is_file(), e.is_symlink()) for e in it))
show("listdir", sorted(os.listdir(data)))
for dirpath, dirnames, filenames in os.walk(data):
    show("walk", rel(dirpath), sorted(dirnames), sorted(filenames))
show("glob", sorted(rel(p) for p in glob.glob(os.path.join(data, "sub", "many", "f01*"))))
show("pathlib", sorted(rel(str(p)) for p in pathlib.Path(data).rglob("*.txt")))
show("pathlib.read", sha(pathlib.Path(data, "big.bin").read_bytes()))

# fd-relative: listdir(fd), scandir(fd), fwalk, dir_fd=
dfd = os.open(data, os.O_RDONLY | os.O_DIRECTORY)
show("listdir(fd)", sorted(os.listdir(dfd)))
with os.scandir(dfd) as it:
    show("scandir(fd)", sorted(e.name for e in it))
show("fwalk", sorted(rel(d) for d, _, _, _ in os.fwalk(data)))
fd = os.open("small.txt", os.O_RDONLY, dir_fd=dfd)
show("dir_fd", os.read(fd, 100), os.stat("small.txt", dir_fd=dfd).st_size)
os.close(fd)
os.close(dfd)

# os.open/pread/preadv/readv/lseek, dup and a shared offset (numpy's pattern)
fd = os.open(os.path.join(data, "big.bin"), os.O_RDONLY)
show("pread", sha(os.pread(fd, 5000, 123)))
bufs = [bytearray(100), bytearray(3000)]
show("preadv", os.preadv(fd, bufs, 4096), sha(bytes(bufs[1])))
show("readv", os.readv(fd, bufs), sha(bytes(bufs[0])))
show("lseek", os.lseek(fd, 0, os.SEEK_END), os.fstat(fd).st_size)
os.lseek(fd, 10, os.SEEK_SET)
dup = os.dup(fd)
with os.fdopen(dup, "rb") as f:
    show("fdopen(dup)", sha(f.read(1000)))
show("shared offset", os.lseek(fd, 0, os.SEEK_CUR))
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
show("isatty", os.isatty(fd))
# mmap (mmap64 + the dup the module keeps)
with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as m:
    show("mmap", len(m), sha(m[:]))
os.close(fd)

# subprocess with a pipe, stdin from a file (fd inheritance), and fork
r = subprocess.run(["cat", os.path.join(data, "big.bin")], stdout=subprocess.PIPE, check=True)
show("subprocess pipe", sha(r.stdout))
with open(os.path.join(data, "big.bin"), "rb") as f:
    r = subprocess.run(["sha256sum"], stdin=f, stdout=subprocess.PIPE, check=True)
show("subprocess stdin", r.stdout.split()[0][:16].decode())
r = subprocess.run("wc -c < " + os.path.join(data, "big.bin"), shell=True, stdout=subprocess.PIPE, check=True)
show("shell redirect", r.stdout.strip().decode())
rfd, wfd = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(rfd)
    with open(os.path.join(data, "big.bin"), "rb") as f:
        os.write(wfd, sha(f.read()).encode())
    os._exit(0)
os.close(wfd)
child = os.read(rfd, 100).decode()
os.close(rfd)
show("fork", child, os.waitpid(pid, 0)[1])
pid = os.posix_spawn("/bin/sh", ["sh", "-c", "exit 5"], {})
show("posix_spawn", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

# threads reading and stating concurrently
def work(p):
    with open(p, "rb") as f:
        return rel(p), sha(f.read()), os.stat(p).st_size
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    results = sorted(ex.map(work, files * 4))
show("threads", len(results), sha(repr(results).encode()))

# shutil (sendfile, copytree with listxattr), write paths pass through too
os.makedirs(out, exist_ok=True)
shutil.copyfile(os.path.join(data, "big.bin"), os.path.join(out, "copy.bin"))
with open(os.path.join(out, "copy.bin"), "rb") as f:
    show("copyfile", sha(f.read()))
shutil.copytree(os.path.join(data, "sub"), os.path.join(out, "tree"), symlinks=True)
show("copytree", sorted(os.path.relpath(os.path.join(d, f), out)
                        for d, _, fs in os.walk(os.path.join(out, "tree")) for f in fs)[:5])
try:
    os.getxattr(os.path.join(data, "small.txt"), "user.none")
except OSError as e:
    show("getxattr", errname(e))
show("statvfs", os.statvfs(data).f_bsize > 0)

# chdir and relative paths
cwd = os.getcwd()
os.chdir(os.path.join(data, "sub"))
show("chdir", rel(os.getcwd()), os.path.getsize("../small.txt"))
os.chdir(cwd)

# sqlite3 (read) and tarfile
con = sqlite3.connect("file:" + os.path.join(root, "db.sqlite") + "?mode=ro", uri=True)
show("sqlite3", con.execute("select count(*), sum(length(v)) from t").fetchone())
con.close()
with tarfile.open(os.path.join(root, "archive.tar")) as t:
    show("tarfile", sorted(m.name for m in t.getmembers())[:5])
    show("tarfile.read", sha(t.extractfile("data/big.bin").read()))

try:
    import numpy as np
    a = np.fromfile(os.path.join(data, "big.bin"), dtype=np.uint8)
    m = np.memmap(os.path.join(data, "big.bin"), dtype=np.uint8, mode="r")
    show("numpy", a.size, int(a[:1000].sum()), int(m[-1000:].sum()))
    np.save(os.path.join(out, "arr.npy"), a[:4096])
    show("numpy.load", int(np.load(os.path.join(out, "arr.npy")).sum()))
except ImportError:
    show("numpy", "absent")
show("done")
