#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tests/preload: the LD_PRELOAD shim in pass-through mode, under real,
unmodified programs. Each program runs twice, plainly and with
LD_PRELOAD=libobjcache_preload.so and no objcache configuration; exit codes,
output and the files it writes must be the same. Also checks what the .so
exports and links, and that a missing libc symbol fails softly.

Ends with a doctest-style summary line for scripts/run_tests.py; exits 1 if
a case failed. In an ASan build the ASan runtime is preloaded first in BOTH
runs (so the comparison isolates the shim); in a TSan build the test is
skipped (exit 77): TSan cannot be preloaded into arbitrary programs.

    run_passthrough.py --shim SO --probe EXE --exports MAP --workload PY [-k SUBSTR]
"""
import argparse
import glob
import hashlib
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import traceback

ap = argparse.ArgumentParser()
ap.add_argument("--shim", required=True)
ap.add_argument("--probe", required=True)
ap.add_argument("--exports", required=True)
ap.add_argument("--workload", required=True)
ap.add_argument("-k", default="", help="run only cases whose name contains this")
opt = ap.parse_args()

SHIM = os.path.abspath(opt.shim)
PRELOAD_SRC = os.path.dirname(os.path.abspath(opt.exports))
PYTHON = "/usr/bin/python3"  # Debian's, as users run it; not a venv or pyenv shim
LIBC = "/lib/x86_64-linux-gnu/libc.so.6" if os.path.exists("/lib/x86_64-linux-gnu/libc.so.6") else None


class Failed(Exception):
    pass


CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def check(cond, msg):
    if not cond:
        raise Failed(msg)


# ---- environment -------------------------------------------------------------

tmp = tempfile.mkdtemp(prefix="objcache-preload-")
ROOT = os.path.join(tmp, "root")
DATA = os.path.join(ROOT, "data")
home = os.path.join(tmp, "home")  # no ~/.config/objcache/config.toml here
os.makedirs(home)

BASE_ENV = {k: v for k, v in os.environ.items()
            if k != "LD_PRELOAD" and not k.startswith("OBJCACHE_")}
BASE_ENV.update({"HOME": home, "LC_ALL": "C", "TZ": "UTC", "PYTHONHASHSEED": "0",
                 "PYTHONDONTWRITEBYTECODE": "1"})


def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


SANITIZERS = [d for d in needed(SHIM) if re.match(r"lib(a|t|ub|hwa)san\.", d)]
ASAN_RUNTIME = []  # preloaded ahead of everything in an ASan build
if any(d.startswith("libasan.") for d in SANITIZERS):
    # The runtime and an early-init helper (tests/support/asan_early_init.c).
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import mount_fixture  # noqa: E402
    ASAN_RUNTIME = mount_fixture.asan_preload(SHIM)
    # Leaks of the programs under test are theirs, not ours.
    BASE_ENV["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"


def run(argv, preload, extra_env=None, shell=False, stdin=None, cwd=None, timeout=120):
    env = dict(BASE_ENV)
    if preload or ASAN_RUNTIME:
        env["LD_PRELOAD"] = " ".join(ASAN_RUNTIME + ([SHIM] if preload else []))
    env.update(extra_env or {})
    return subprocess.run(argv, env=env, shell=shell, cwd=cwd, capture_output=True,
                          stdin=stdin if stdin is not None else subprocess.DEVNULL, timeout=timeout)


def brief(b):
    b = b if isinstance(b, bytes) else b.encode()
    return b[:600].decode(errors="replace") + ("..." if len(b) > 600 else "")


def first_diff(a, b):
    al, bl = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(al, bl)):
        if x != y:
            return f"line {i + 1}: plain {x[:200]!r} vs shim {y[:200]!r}"
    return f"plain has {len(al)} lines, shim {len(bl)}"


def same(make_argv, shell=False, expect_rc=0, trees=None, stdin_path=None):
    """Runs the command plainly and under the shim; each gets its own output
    directory (make_argv(outdir)). Compares exit code, stdout, stderr and,
    for each name in `trees`, the digest of outdir/name."""
    results = {}
    for label, preload in (("plain", False), ("shim", True)):
        out = os.path.join(tmp, "out", f"{len(os.listdir(os.path.join(tmp, 'out')))}-{label}")
        os.makedirs(out)
        argv = make_argv(out)
        stdin = open(stdin_path, "rb") if stdin_path else None
        try:
            r = run(argv, preload, shell=shell, stdin=stdin)
        finally:
            if stdin:
                stdin.close()
        # The run's own output directory appears in some outputs (error text).
        norm = lambda b: b.replace(out.encode(), b"OUT")
        results[label] = (r.returncode, norm(r.stdout), norm(r.stderr),
                          {t: tree_digest(os.path.join(out, t)) for t in (trees or [])})
    p, s = results["plain"], results["shim"]
    cmd = make_argv("OUT")
    check(p[0] == expect_rc, f"{cmd}: plain run exited {p[0]}, expected {expect_rc}: {brief(p[2])}")
    check(s[0] == p[0], f"{cmd}: exit {s[0]} under the shim, {p[0]} plainly; stderr: {brief(s[2])}")
    check(s[1] == p[1], f"{cmd}: stdout differs: {first_diff(p[1], s[1])}")
    check(s[2] == p[2], f"{cmd}: stderr differs: {first_diff(p[2], s[2])}")
    for t in trees or []:
        check(s[3][t] == p[3][t], f"{cmd}: written tree {t} differs: {first_diff(p[3][t], s[3][t])}")
    return p


def tree_digest(top, times=False):
    """One line per entry: path, type, permissions, size, content hash or
    link target (and mtime when asked)."""
    lines = []
    if not os.path.lexists(top):
        return b"(missing)"
    for d, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(d, name)
            st = os.lstat(p)
            kind = "l" if os.path.islink(p) else "d" if os.path.isdir(p) else "f"
            what = os.readlink(p) if kind == "l" else ""
            if kind == "f":
                with open(p, "rb") as f:
                    what = hashlib.sha256(f.read()).hexdigest()[:16]
            extra = f" {st.st_mtime_ns}" if times and kind != "l" else ""
            lines.append(f"{os.path.relpath(p, top)} {kind} {oct(st.st_mode & 0o7777)} "
                         f"{st.st_size if kind == 'f' else ''} {what}{extra}")
    return "\n".join(lines).encode()


def make_fixture():
    rnd = random.Random(20240601)
    os.makedirs(os.path.join(DATA, "sub", "a", "b", "c"))
    os.makedirs(os.path.join(DATA, "sub", "many"))
    os.makedirs(os.path.join(tmp, "out"))
    files = {
        "small.txt": b"hello\n",
        "empty.bin": b"",
        "page.bin": rnd.randbytes(4096),
        "odd.bin": rnd.randbytes(4097),
        "big.bin": rnd.randbytes((1 << 20) + 123),
        "text.txt": "".join(f"line {i} {'x' * (i % 50)}\n" for i in range(500)).encode(),
        "sub/a/b/c/deep.txt": b"line1\nline2\nline3\n",
    }
    for i in range(200):
        files[f"sub/many/f{i:03d}"] = rnd.randbytes(rnd.randrange(1, 3000))
    for name, content in files.items():
        with open(os.path.join(DATA, name), "wb") as f:
            f.write(content)
    os.symlink("small.txt", os.path.join(DATA, "link"))
    os.symlink("sub", os.path.join(DATA, "dirlink"))
    for d, dirs, fs in os.walk(DATA, topdown=False):
        for name in fs + dirs:
            os.utime(os.path.join(d, name), (1700000000, 1700000000), follow_symlinks=False)
    os.utime(DATA, (1700000000, 1700000000))
    con = sqlite3.connect(os.path.join(ROOT, "db.sqlite"))
    con.execute("create table t (k integer primary key, v text)")
    con.executemany("insert into t values (?, ?)", [(i, f"value-{i}" * (i % 7 + 1)) for i in range(2000)])
    con.commit()
    con.close()
    subprocess.run(["tar", "-cf", os.path.join(ROOT, "archive.tar"), "--sort=name", "-C", ROOT, "data"],
                   check=True, env=BASE_ENV)


def export_names():
    text = re.sub(r"/\*.*?\*/", "", open(opt.exports).read(), flags=re.S)
    glob_part = text.split("global:")[1].split("local:")[0]
    return sorted(n.strip() for n in glob_part.split(";") if n.strip())


# ---- the shared object itself ---------------------------------------------------

@case
def exports_only_the_interposed_libc_names():
    out = subprocess.run(["nm", "-D", "--defined-only", SHIM], capture_output=True, text=True, check=True).stdout
    defined = sorted(line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip())
    want = export_names()
    check(defined == want, f"exported {sorted(set(defined) - set(want))} beyond exports.map, "
                           f"missing {sorted(set(want) - set(defined))}")
    check(len(want) >= 120, f"exports.map lists only {len(want)} names")
    if LIBC:
        libc = subprocess.run(["nm", "-D", "--defined-only", LIBC], capture_output=True, text=True, check=True).stdout
        libc_names = {line.split()[-1].split("@")[0] for line in libc.splitlines() if line.strip()}
        check(set(want) <= libc_names, f"not libc names: {sorted(set(want) - libc_names)}")


ENGINE = os.path.join(os.path.dirname(SHIM), "libobjcache_preload_engine.so")


@case
def the_shim_links_libc_alone_and_the_engine_the_rest():
    """The preloaded object is small and needs libc alone (no C++ runtime,
    no libcurl or OpenSSL: a process that touches no mount pays for nothing
    more); the engine beside it holds the library (linked in statically, its
    symbols hidden), needs only the library's own dependencies, never
    libobjcache.so, and exports its init function alone."""
    deps = [d for d in needed(SHIM) if d not in SANITIZERS]
    # A sanitizer runtime brings the C++ runtime along in its build.
    allowed = ("libc.so", "ld-linux", "libdl.so") + (("libstdc++.so", "libgcc_s.so", "libm.so") if SANITIZERS else ())
    check(not [d for d in deps if not d.startswith(allowed)], f"the shim links more than libc: {deps}")
    out = subprocess.run(["nm", "-D", "--undefined-only", SHIM], capture_output=True, text=True, check=True).stdout
    strong = [line.split()[-1] for line in out.splitlines() if line.split()[0] == "U"]
    exported = set(export_names())
    check(not [s for s in strong if s.split("@")[0] in exported],
          f"the shim imports a function it interposes (it must call its own, guarded): {strong}")
    check(not [s for s in strong if "toml" in s or "curl" in s or s.startswith("_Z")],
          f"the shim imports C++ or library names: {[s for s in strong if s.startswith('_Z')][:10]}")
    check(os.path.exists(ENGINE), f"no engine beside the shim: {ENGINE}")
    edeps = [d for d in needed(ENGINE) if d not in SANITIZERS]
    eallowed = ("libc.so", "libm.so", "libstdc++.so", "libgcc_s.so", "libcurl.so", "libcrypto.so",
                "libssl.so", "libxxhash.so", "libpugixml.so", "ld-linux", "libdl.so", "libpthread.so")
    check(not [d for d in edeps if not d.startswith(eallowed)], f"the engine links something unexpected: {edeps}")
    out = subprocess.run(["nm", "-D", "--defined-only", ENGINE], capture_output=True, text=True, check=True).stdout
    defined = sorted(line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip())
    check(defined == ["objcache_preload_engine_init"], f"the engine exports {defined[:20]}")
    for so in (SHIM, ENGINE):
        flags = subprocess.run(["readelf", "-d", so], capture_output=True, text=True, check=True).stdout
        check("BIND_NOW" in flags or "Flags: NOW" in flags, f"{so} is not linked with -z now")


@case
def entry_exception_specs_match_glibc():
    """GCC accepts a definition whose noexcept differs from a system header's
    declaration, so check it: a cancellation point declared noexcept would
    turn pthread_cancel into std::terminate."""
    cxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    check(cxx is not None, "no C++ compiler to check the prototypes with")
    real_h = open(os.path.join(PRELOAD_SRC, "real.h")).read()
    names = re.findall(r"X\((\w+),", real_h[real_h.index("#define OBJCACHE_PRELOAD_REAL_SYMBOLS"):])
    headers = real_h[real_h.index("#include <dirent.h>"):real_h.index("namespace objcache::preload {")]
    src = ("#include <cstdio>\n" + headers +
           "template <class F> struct NE;\n"
           "template <class R, bool N, class... A> struct NE<R (*)(A...) noexcept(N)> { static constexpr bool v = N; };\n"
           "template <class R, bool N, class... A> struct NE<R (*)(A..., ...) noexcept(N)> { static constexpr bool v = N; };\n"
           "int main() {\n" +
           "".join(f'  std::printf("%s %d\\n", "{n}", int(NE<decltype(&::{n})>::v));\n' for n in names) + "}\n")
    work = os.path.join(tmp, "specs")
    os.makedirs(work)
    with open(os.path.join(work, "specs.cpp"), "w") as f:
        f.write(src)
    c = subprocess.run([cxx, "-std=c++20", "-D_GNU_SOURCE", "-Wno-deprecated-declarations",
                        "-Wno-ignored-attributes", "specs.cpp", "-o", "specs"], cwd=work, capture_output=True, text=True)
    check(c.returncode == 0, f"compiling the header check failed: {c.stderr[:800]}")
    header = dict(line.split() for line in subprocess.run([os.path.join(work, "specs")], capture_output=True,
                                                         text=True, check=True).stdout.splitlines())
    mine = {}
    for path in glob.glob(os.path.join(PRELOAD_SRC, "entry_*.cpp")):
        for m in re.finditer(r"OBJCACHE_ENTRY\s[^{;]*?\b(\w+)\((?:[^()]|\([^()]*\))*\)\s*(noexcept)?\s*\{",
                             open(path).read()):
            mine[m.group(1)] = bool(m.group(2))
    # Real functions the shim only calls itself (real.h says which).
    internal = set(re.findall(r"not interposed: (\w+)", real_h))
    missing = [n for n in names if n not in mine and n not in internal]
    check(not missing, f"no entry point for {missing}")
    wrong = [f"{n} (glibc {'noexcept' if header[n] == '1' else 'may throw'})"
             for n in names if n in mine and mine[n] != (header[n] == "1")]
    check(not wrong, f"exception specification differs from glibc's header: {wrong}")


@case
def errno_is_written_in_one_place():
    offenders = []
    for path in glob.glob(os.path.join(PRELOAD_SRC, "*.[ch]*")):
        if os.path.basename(path) == "errno_scope.h":
            continue
        for i, line in enumerate(open(path), 1):
            code = line.split("//")[0]
            if re.search(r"\berrno\s*=[^=]", code):
                offenders.append(f"{os.path.basename(path)}:{i}")
    check(not offenders, f"errno assigned outside errno_scope.h: {offenders}")


@case
def every_name_resolves_into_the_shim():
    if ASAN_RUNTIME:
        return  # ASan's interceptors come first by design; the shim is next in line
    r = run([opt.probe, "interposed"] + export_names(), True)
    check(r.returncode == 0, f"{brief(r.stdout)} {brief(r.stderr)}")


@case
def dlopen_of_the_shim_works():
    # Loaded late (ctypes, RTLD_LOCAL): initial-exec TLS, the constructor and
    # RTLD_NEXT must still work.
    code = ("import ctypes, os, sys\n"
            "l = ctypes.CDLL(sys.argv[1])\n"
            "fd = os.open(sys.argv[2], os.O_RDONLY)\n"
            "b = ctypes.create_string_buffer(16)\n"
            "n = l.read(fd, b, 16)\n"
            "print(n, b.raw[:n], l.isatty(fd))\n")
    r = run([PYTHON, "-c", code, SHIM, os.path.join(DATA, "small.txt")], False)
    check(r.returncode == 0 and r.stdout == b"6 b'hello\\n' 0\n",
          f"rc {r.returncode}: {brief(r.stdout)} {brief(r.stderr)}")


# ---- missing real functions ---------------------------------------------------

HIDDEN = "stat,__xstat,open64,opendir,isatty,mmap,fopen,fork,getcwd,closefrom,fcntl,posix_fadvise"


@case
def missing_real_functions_fail_softly():
    r = run([opt.probe, "missing", ROOT], True, {"OBJCACHE_PRELOAD_TEST_UNRESOLVED": HIDDEN})
    check(r.returncode == 0, f"rc {r.returncode}: {brief(r.stdout)} {brief(r.stderr)}")


@case
def unmodified_programs_survive_missing_functions():
    hide = {"OBJCACHE_PRELOAD_TEST_UNRESOLVED": "posix_fadvise,posix_fadvise64,isatty,statx,fstatfs"}
    r = run(["cat", os.path.join(DATA, "text.txt")], True, hide)
    check(r.returncode == 0 and r.stdout == open(os.path.join(DATA, "text.txt"), "rb").read(),
          f"cat: rc {r.returncode} {brief(r.stderr)}")
    r = run([PYTHON, "-c", "import sys; print(open(sys.argv[1]).read(), end='')",
             os.path.join(DATA, "small.txt")], True, hide)
    check(r.returncode == 0 and r.stdout == b"hello\n", f"python: rc {r.returncode} {brief(r.stderr)}")
    r = run(["stat", "-c", "%s", os.path.join(DATA, "small.txt")], True, hide)
    check(r.returncode != 0 and r.returncode < 128, f"stat with statx missing: rc {r.returncode} (a crash?)")


@case
def interposing_allocators():
    """The dlsym -> calloc trap: a malloc replacement preloaded before or
    after the shim, with lookups that fail (and so allocate) at startup."""
    if ASAN_RUNTIME:
        return  # ASan brings its own allocator
    libdir = "/usr/lib/x86_64-linux-gnu"
    allocators = [p for p in (f"{libdir}/libmimalloc.so.2", f"{libdir}/libjemalloc.so.2") if os.path.exists(p)]
    check(allocators, "no malloc replacement to test with (libmimalloc2.0 comes with make deps)")
    # readlink: jemalloc calls it (/etc/malloc.conf) inside its init lock.
    hide = {"OBJCACHE_PRELOAD_TEST_UNRESOLVED": "posix_fadvise,posix_fadvise64,readahead,__fxstat,readlink"}
    code = ("import os, subprocess, sys\n"
            "print(sorted(os.listdir(sys.argv[1])), open(sys.argv[2], 'rb').read(),\n"
            "      subprocess.run(['md5sum', sys.argv[2]], capture_output=True).stdout)\n")
    argv = [PYTHON, "-c", code, DATA, os.path.join(DATA, "text.txt")]
    for alloc in allocators:
        plain = run(argv, False, {"LD_PRELOAD": alloc})
        check(plain.returncode == 0, f"{alloc} alone: rc {plain.returncode} {brief(plain.stderr)}")
        for order in (f"{alloc} {SHIM}", f"{SHIM} {alloc}"):
            r = run(argv, False, {"LD_PRELOAD": order, **hide}, timeout=60)
            check((r.returncode, r.stdout) == (0, plain.stdout),
                  f"LD_PRELOAD='{order}': rc {r.returncode} {brief(r.stderr)}")


# ---- real programs ----------------------------------------------------------------

@case
def probe_calls_every_symbol_the_same_way():
    same(lambda out: [opt.probe, "calls", ROOT, out])


@case
def python_workload():
    p = same(lambda out: [PYTHON, opt.workload, ROOT, out])
    check(p[1].endswith(b"done\n"), "the workload did not finish")


@case
def cat_head_tail_wc():
    big, text = os.path.join(DATA, "big.bin"), os.path.join(DATA, "text.txt")
    same(lambda out: ["cat", big, text, os.path.join(DATA, "empty.bin")])
    same(lambda out: ["head", "-c", "100000", big])
    same(lambda out: ["head", "-n", "7", text])
    same(lambda out: ["tail", "-c", "5000", big])
    same(lambda out: ["tail", "-n", "3", text])
    same(lambda out: ["wc", "-c", big, text])


@case
def md5sum_sha256sum():
    files = sorted(glob.glob(os.path.join(DATA, "*.bin")) + glob.glob(os.path.join(DATA, "sub/many/*")))
    same(lambda out: ["md5sum"] + files)
    same(lambda out: ["sha256sum", "-b"] + files[:20])


@case
def cp_recursive():
    same(lambda out: ["cp", "-r", DATA, os.path.join(out, "copy")], trees=["copy"])
    same(lambda out: ["cp", "-a", DATA, os.path.join(out, "archive")], trees=["archive"])
    same(lambda out: ["cp", os.path.join(DATA, "big.bin"), os.path.join(out, "one.bin")], trees=["one.bin"])


@case
def ls():
    same(lambda out: ["ls", "-l", "--time-style=+%s", DATA])
    same(lambda out: ["ls", "-laR", "--time-style=+%s", DATA])
    same(lambda out: ["ls", "-lL", os.path.join(DATA, "link"), os.path.join(DATA, "nope")], expect_rc=2)


@case
def stat_command():
    files = [os.path.join(DATA, n) for n in ("small.txt", "big.bin", "link", "sub", "empty.bin")]
    same(lambda out: ["stat", "-c", "%n %s %a %F %h %u %g %Y %b %B %N"] + files)
    same(lambda out: ["stat", "-L", "-c", "%n %s %F"] + files)
    same(lambda out: ["stat", "-f", "-c", "%T %s %S", DATA])


@case
def find_du():
    same(lambda out: ["find", DATA, "-printf", "%p %s %y %m %n %T@\n"])
    same(lambda out: ["find", DATA, "-name", "*.bin", "-size", "+1k"])
    same(lambda out: ["find", "-L", DATA, "-type", "f", "-newer", os.path.join(DATA, "nope")], expect_rc=1)
    same(lambda out: ["find", DATA, "-type", "f", "-name", "f1*", "-exec", "md5sum", "{}", "+"])
    same(lambda out: ["du", "-a", DATA])
    same(lambda out: ["du", "-sb", DATA])


@case
def tar_create_extract_list():
    same(lambda out: ["tar", "-cf", os.path.join(out, "a.tar"), "--sort=name", "-C", ROOT, "data"],
         trees=["a.tar"])
    same(lambda out: ["sh", "-c", f"mkdir {out}/x && tar -xf {ROOT}/archive.tar -C {out}/x"], trees=["x"])
    same(lambda out: ["tar", "-tvf", os.path.join(ROOT, "archive.tar")])
    same(lambda out: ["sh", "-c", f"tar -cf - -C {ROOT} data | tar -tf - | sort"])


@case
def sqlite3_cli():
    if shutil.which("sqlite3") is None:
        raise Failed("sqlite3 is not installed (make deps installs it)")
    db = os.path.join(ROOT, "db.sqlite")
    same(lambda out: ["sqlite3", db, "select count(*), sum(k), max(v) from t; pragma integrity_check;"])
    same(lambda out: ["sqlite3", "-readonly", db, "select v from t where k % 97 = 3 order by k;"])
    same(lambda out: ["sqlite3", os.path.join(out, "new.db"),
                      "create table u(a, b); insert into u select k, v from (select 1 as k, 'x' as v); "
                      "pragma journal_mode=wal; insert into u values (2, 'y'); select * from u; "
                      "vacuum; select count(*) from u;"])


@case
def shell_redirects():
    big = os.path.join(DATA, "big.bin")
    same(lambda out: ["bash", "-c", f"cat < {big} > {out}/r.bin && sha256sum < {out}/r.bin"], trees=["r.bin"])
    same(lambda out: ["bash", "-c", f"exec 3< {big}; head -c 4096 <&3 | md5sum; wc -c <&3"])
    same(lambda out: ["sh", "-c", f"while read l; do echo \"$l\"; done < {DATA}/text.txt | tail -n 2"])
    same(lambda out: ["md5sum"], stdin_path=big)


# ---- configurations that must not break the programs ----------------------------

@case
def a_mount_over_etc_is_refused_and_etc_stays_readable():
    # `path = "/etc"` would take /etc/hostname, /etc/passwd... from every
    # program: the configuration is refused (file, line, key) and every
    # path passes through.
    config = os.path.join(tmp, "etc-mount.toml")
    with open(config, "w") as f:
        f.write('[cache]\nspill_dir = ""\n\n[[mount]]\npath = "/etc"\nsource = "s3://bucket/etc/"\n')
    plain = run(["cat", "/etc/hostname"], False)
    shim = run(["cat", "/etc/hostname"], True, {"OBJCACHE_CONFIG": config})
    said = (f"objcache: ConfigError: {config}:5: key 'mount[1].path': expected a path that hides no directory the "
            f'programs under the shim need, got "/etc" (it would hide the system directory /etc) '
            f"(passing every path through)\n").encode()
    check(shim.returncode == 0 and shim.stdout == plain.stdout,
          f"cat /etc/hostname: rc {shim.returncode}, {brief(shim.stdout)} {brief(shim.stderr)}")
    check(shim.stderr == said, f"stderr: {brief(shim.stderr)}")


@case
def ten_thousand_mounts_start_and_match():
    # Every process under the shim reads the whole configuration: with
    # 10,000 mounts it must still start (this took hours before the loader
    # and the mount table were made near-linear), pass other paths through,
    # and route a path to the right mount (EIO: the store is down) but not
    # its byte-order neighbours (ENOENT from the kernel).
    base = f"/mnt/objcache-many-{os.getpid()}"
    config = os.path.join(tmp, "many-mounts.toml")
    with open(config, "w") as f:
        f.write('[cache]\nname = "many"\nspill_dir = ""\n[store]\nendpoint = "http://127.0.0.1:9"\n'
                'retry_deadline = "1s"\n')
        for i in range(10000):
            f.write(f'[[mount]]\npath = "{base}/d{i}"\nsource = "s3://bucket/p{i}/"\n')
    code = ("import errno, os, sys\n"
            "print(open('/etc/hostname').read().strip())\n"
            "for p in sys.argv[1:]:\n"
            "    try:\n"
            "        os.stat(p); print(p, 'ok')\n"
            "    except OSError as e:\n"
            "        print(p.replace(sys.argv[1].rsplit('/', 2)[0], 'BASE'), errno.errorcode[e.errno])\n")
    paths = [f"{base}/d5000/x", f"{base}/d5000x/x", f"{base}/d500/x/../../d50/y", f"{base}/d10000/x"]
    shm = os.path.join(tmp, "shm-many")
    os.makedirs(shm, exist_ok=True)
    env = {"OBJCACHE_CONFIG": config, "OBJCACHE_SHM_DIR": shm,
           "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-secret"}
    r = run([PYTHON, "-c", code] + paths, True, env, timeout=300)
    with open("/etc/hostname") as f:
        host = f.read().strip()
    want = f"{host}\nBASE/d5000/x EIO\nBASE/d5000x/x ENOENT\nBASE/d500/x/../../d50/y EIO\nBASE/d10000/x ENOENT\n"
    check(r.returncode == 0 and r.stdout.decode() == want,
          f"rc {r.returncode}: {brief(r.stdout)} {brief(r.stderr)}")


# ---- main -------------------------------------------------------------------------

def main():
    if SANITIZERS and not ASAN_RUNTIME:
        print(f"SKIP: the shim is built with {SANITIZERS}, which cannot be preloaded into "
              "uninstrumented programs; the plain build runs these tests.")
        return 77
    make_fixture()
    selected = [c for c in CASES if opt.k in c.__name__]
    passed = failed = 0
    for c in selected:
        try:
            c()
            passed += 1
            print(f"ok   {c.__name__}")
        except Failed as e:
            failed += 1
            print(f"FAIL {c.__name__}: {e}")
        except Exception:  # a bug in the driver counts as a failure, never a crash
            failed += 1
            print(f"FAIL {c.__name__}: {traceback.format_exc()}")
        sys.stdout.flush()
    print(f"[doctest] test cases: {len(selected)} | {passed} passed | {failed} failed | 0 skipped")
    return 0 if failed == 0 else 1


try:
    rc = main()
finally:
    if not os.environ.get("OBJCACHE_KEEP_TEST_DIRS"):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp}")
sys.exit(rc)
