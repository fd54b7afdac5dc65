# SPDX-License-Identifier: Apache-2.0
"""A million objects, tested at a tenth of it (issue 15): a mount of
100,000+ small objects in 500+ prefixes, ImageNet-shaped
(train/nXXXXXXXX/nXXXXXXXX_N.JPEG, a few bytes each), and a flat prefix of
100,000 keys, on a real s3rver, with the same trees on local disk.

Each case runs a real, unmodified program twice, on the local tree and on
the mount under LD_PRELOAD, and compares what they print byte for byte
(sorted where the program's order is the file system's; paths relative to
the root; the sha256 of each output is shown): os.walk, os.scandir with
stat (kind, mode, size, mtime), glob.glob('**', recursive=True), `find`,
`find | wc -l`, `find -printf`, `ls -R`, torchvision's ImageFolder
(classes, class_to_idx, samples); the flat prefix with os.listdir and
os.scandir + stat. Then the LISTs, counted by `cachectl stats --json`
(list_requests, node-wide): a scan on a fresh cache makes some number L;
two processes started together (a pipe as the latch, no sleep) on another
fresh cache make L between them (one LIST pass); every process after the
first makes 0. Last, a cache whose `cache.metadata_budget` is far below
what the listings take still lists correctly (skipped, with the reason,
while the configuration does not know the key).

The fixture is written straight into s3rver's on-disk layout
(scale_fixture.py; checked against an object PUT through s3rver) and
served by tests/s3server/start_scale.js: s3rver itself, with a listing
that costs one page (start.js's delimited LIST of train/ over 100,000 keys
ran 68 s and answered 500). Each cache has its own name (with the pid);
its segment is removed at the end.

  /usr/bin/python3 tests/preload/run_scale.py --shim SO --cachectl EXE
      [--objects 100000 --classes 520 --flat 100000]

Prints one line per case and "N passed, M failed"; exit 0 only if all pass,
77 (skipped) under TSan, whose runtime cannot be preloaded into arbitrary
programs.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ.setdefault("OBJCACHE_TEST_SOURCE_DIR", os.path.dirname(HERE))
import mount_fixture as mf  # noqa: E402
import scale_fixture as sf  # noqa: E402

PY = "/usr/bin/python3"
MTIME = 1_700_000_000  # every object's Last-Modified and every local file's mtime

# The Python scans: argv = MODE ROOT [SUBDIR...]; paths printed relative to
# ROOT, lines sorted (ImageFolder's own order is kept: it is its output).
# With OBJCACHE_TEST_LATCH=R,W set, says "R" on fd W once loaded and waits
# for fd R to close before it scans (two scans started together).
SCAN = r"""
import glob, json, os, stat, sys
mode, root = sys.argv[1], sys.argv[2]
subs = sys.argv[3:] or ["."]
if mode == "imagefolder":
    from torchvision.datasets import ImageFolder
latch = os.environ.get("OBJCACHE_TEST_LATCH")
if latch:
    r, w = (int(x) for x in latch.split(","))
    os.write(w, b"R")
    os.close(w)
    while os.read(r, 1):
        pass
out = []
rel = lambda p: os.path.relpath(p, root)
for sub in subs:
    top = os.path.normpath(os.path.join(root, sub))
    if mode == "walk":
        for d, dirs, files in os.walk(top):
            out.append(f"{rel(d)}\t{'/'.join(sorted(dirs))}\t{'/'.join(sorted(files))}")
    elif mode == "scandir":
        stack = [top]
        while stack:
            d = stack.pop()
            with os.scandir(d) as it:
                for e in it:
                    st = e.stat(follow_symlinks=False)
                    kind = "d" if e.is_dir(follow_symlinks=False) else "f" if e.is_file(follow_symlinks=False) else "?"
                    # A directory's size and mtime are the file system's own.
                    size = st.st_size if kind == "f" else "-"
                    mtime = int(st.st_mtime) if kind == "f" else "-"
                    out.append(f"{rel(e.path)} {kind} {stat.S_IFMT(st.st_mode):o} {stat.S_IMODE(st.st_mode):o} "
                               f"{size} {mtime}")
                    if kind == "d":
                        stack.append(e.path)
    elif mode == "listdir":
        out += [f"{sub}/{n}" for n in os.listdir(top)]
    elif mode == "glob":
        out += ["** " + rel(p) for p in glob.glob(os.path.join(glob.escape(top), "**"), recursive=True)]
        out += ["*/* " + rel(p) for p in glob.glob(os.path.join(glob.escape(top), "train", "*", "*.JPEG"))]
    elif mode == "imagefolder":
        ds = ImageFolder(top)
        print(json.dumps({"classes": ds.classes, "class_to_idx": ds.class_to_idx,
                          "samples": [[rel(p), t] for p, t in ds.samples], "targets": ds.targets}))
        sys.exit(0)
    else:
        sys.exit(f"scan: unknown mode {mode}")
out.sort()
sys.stdout.write("".join(line + "\n" for line in out))
"""


def digest(text):
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def first_difference(a, b):
    la, lb = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            return f"line {i + 1}: local {x!r}\n         shim  {y!r}"
    return f"local {len(la)} lines, shim {len(lb)} lines"


class Runner:
    def __init__(self, args, work, asan):
        self.args = args
        self.work = work
        self.asan = asan
        self.base_env = dict(os.environ, LC_ALL="C")
        if asan:
            self.base_env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
            self.base_env["LD_PRELOAD"] = " ".join(asan)
        self.names = []

    def cache(self, label, server, mounts, extra_cache=""):
        """A configuration for a new cache named label + pid over mounts
        [(path, source)]; returns (config path, env for the shim, env for
        cachectl)."""
        name = f"scale{os.getpid()}-{label}"
        self.names.append(name)
        config = os.path.join(self.work, f"{label}.toml")
        with open(config, "w") as f:
            f.write(f"""[cache]
name = "{name}"
memory = "256MiB"
spill_dir = ""
{extra_cache}

[store]
endpoint = "{server.endpoint}"
region = "us-east-1"
credentials = "env"
retry_deadline = "30s"
""")
            for path, source in mounts:
                # No prefetch: these cases read no file data, and a listing
                # queues no GETs.
                f.write(f'\n[[mount]]\npath = "{path}"\nsource = "{source}"\nmetadata_ttl = "1h"\n'
                        'prefetch = "none"\n')
        env = mf.shim_env(self.args.shim, config, "/dev/shm", self.asan)
        env.pop("OBJCACHE_SHM_DIR")  # the default: /dev/shm/objcache-<uid>-<name>
        env["LC_ALL"] = "C"
        if self.asan:
            env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
        tool_env = dict(env)
        tool_env.pop("LD_PRELOAD")
        return config, env, tool_env

    def stats(self, config, tool_env):
        p = subprocess.run([self.args.cachectl, "--config", config, "stats", "--json"], env=tool_env,
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"cachectl stats: exit {p.returncode}: {p.stderr.strip()}")
        return json.loads(p.stdout)

    def run(self, argv, env, timeout=600):
        t = time.perf_counter()
        try:
            p = subprocess.run(argv, env=env, capture_output=True, timeout=timeout)
            rc, out, err = p.returncode, p.stdout.decode(errors="surrogateescape"), p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            rc, out, err = "timeout", "", ""
        return rc, out, err, time.perf_counter() - t

    def cleanup(self):
        for name in self.names:
            try:
                os.unlink(f"/dev/shm/objcache-{os.getuid()}-{name}")
            except FileNotFoundError:
                pass


def scan_argv(mode, root, subs=()):
    return [PY, "-c", SCAN, mode, root, *subs]


def compare(suite, name, local, shim, local_root, mount, sort=False):
    """local and shim are Runner.run results; checks both exited 0 and
    printed the same non-empty bytes (after the roots are named alike, and
    sorted if asked)."""
    rc_l, out_l, err_l, t_l = local
    rc_s, out_s, err_s, t_s = shim
    out_l, out_s = out_l.replace(local_root, "ROOT"), out_s.replace(mount, "ROOT")
    if sort:
        out_l = "".join(sorted(out_l.splitlines(keepends=True)))
        out_s = "".join(sorted(out_s.splitlines(keepends=True)))
    ok = rc_l == 0 and rc_s == 0 and out_l == out_s and out_l.strip() != ""
    lines = out_l.count("\n")
    suite.check(f"{name}: {lines:,} lines, sha256 {digest(out_l)} local / {digest(out_s)} shim "
                f"(local {t_l:.2f} s, shim {t_s:.2f} s)", ok,
                f"local rc={rc_l} shim rc={rc_s}\n{first_difference(out_l, out_s)}\n"
                f"local stderr: {err_l[-800:]}\nshim stderr: {err_s[-1500:]}")
    return ok


def layout_case(suite, server, work, bare_key):
    """The fixture's files are what s3rver writes for a PUT; an object
    written without its metadata file (bare_key) answers HEAD as one PUT
    without headers does."""
    client = server.client()
    key, data = "probe/n00000001/n00000001_7.JPEG", b"JPEG?"
    client.put_object(Bucket=mf.BUCKET, Key=key, Body=data)
    mine = os.path.join(work, "layout")
    sf.write_s3rver(mine, mf.BUCKET, "", [(key, data)])
    same = []
    for suffix in ("._S3rver_object", "._S3rver_object.md5", "._S3rver_metadata.json"):
        with open(os.path.join(server.dir, mf.BUCKET, key + suffix), "rb") as a, \
                open(os.path.join(mine, mf.BUCKET, key + suffix), "rb") as b:
            same.append((suffix, a.read() == b.read()))
    shutil.rmtree(mine)
    suite.check("the fixture's files are byte for byte what s3rver writes for a PUT (object, .md5, metadata)",
                all(ok for _, ok in same), same)
    with open(os.path.join(server.dir, mf.BUCKET, bare_key + "._S3rver_object"), "rb") as f:
        bare = f.read()
    client.put_object(Bucket=mf.BUCKET, Key="probe/bare-twin", Body=bare)
    keep = ("ContentType", "ContentLength", "ETag", "AcceptRanges", "Metadata")
    h1 = {k: v for k, v in client.head_object(Bucket=mf.BUCKET, Key=bare_key).items() if k in keep}
    h2 = {k: v for k, v in client.head_object(Bucket=mf.BUCKET, Key="probe/bare-twin").items() if k in keep}
    suite.check("a flat object written without its metadata file answers HEAD as the same bytes PUT through s3rver",
                h1 == h2 and h1.get("ETag") == '"' + hashlib.md5(bare).hexdigest() + '"', f"{h1}\n{h2}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim", required=True)
    ap.add_argument("--cachectl", required=True)
    ap.add_argument("--objects", type=int, default=100_000, help="objects under train/")
    ap.add_argument("--classes", type=int, default=520, help="class prefixes under train/")
    ap.add_argument("--flat", type=int, default=100_000, help="keys in the flat prefix")
    args = ap.parse_args()
    args.shim = os.path.abspath(args.shim)
    args.cachectl = os.path.abspath(args.cachectl)
    if "libtsan" in subprocess.run(["ldd", args.shim], capture_output=True, text=True).stdout:
        print("skipped (exit 77): TSan cannot be preloaded into arbitrary programs.")
        return 77
    asan = mf.asan_preload(args.shim)
    suite = mf.Suite()
    started = time.perf_counter()
    work = tempfile.mkdtemp(prefix="objcache-scale-")
    runner = Runner(args, work, asan)
    server = None
    pid = os.getpid()
    tree_mount = f"/mnt/objcache-scale-{pid}/imagenet"
    flat_mount = f"/mnt/objcache-scale-{pid}/flat"
    try:
        # ---- the fixture
        t0 = time.perf_counter()
        tree = sf.imagenet_items(args.objects, args.classes, big_classes=2)
        tree += [("LOC_synset_mapping.txt", b"n01440764 tench\n"), ("README.txt", b"ImageNet-shaped\n")]
        tree.sort()
        flat = sf.flat_items(args.flat)
        s3_dir = os.path.join(work, "s3")
        sf.write_s3rver(s3_dir, mf.BUCKET, "imagenet/", tree, mtime=MTIME)
        sf.write_s3rver(s3_dir, mf.BUCKET, "flat/", flat, mtime=MTIME, metadata=False)
        t1 = time.perf_counter()
        local_tree = os.path.join(work, "local", "imagenet")
        local_flat = os.path.join(work, "local", "flat")
        sf.write_local(local_tree, tree, mtime=MTIME)
        sf.write_local(local_flat, flat, mtime=MTIME)
        t2 = time.perf_counter()
        classes = len({k.split("/")[1] for k, _ in tree if k.startswith("train/")})
        print(f"fixture: {len(tree):,} objects in {classes} class prefixes (train/nXXXXXXXX/, two of 2,500 "
              f"keys) and {len(flat):,} keys in one flat prefix: written in s3rver's layout in {t1 - t0:.1f} s "
              f"and on local disk in {t2 - t1:.1f} s ({t2 - t0:.1f} s in all)", flush=True)
        server = sf.start_server(work, [mf.BUCKET])
        layout_case(suite, server, work, "flat/" + flat[0][0])
        guarded(suite, "the cases", lambda: cases_at_scale(suite, runner, server, tree, flat, classes, local_tree,
                                                           local_flat, tree_mount, flat_mount))
        # A metadata budget far below what the listings take (on its own:
        # it runs whatever befell the cases above).
        guarded(suite, "the metadata budget case",
                lambda: budget_case(suite, runner, server, runner.base_env, tree, local_tree, tree_mount))
    finally:
        if server is not None:
            server.stop()
        runner.cleanup()
        for root in (os.path.join(work, "local", "imagenet"), os.path.join(work, "local", "flat")):
            if os.path.isdir(root):
                sf.unlock_local(root)
        shutil.rmtree(work, ignore_errors=True)
    print(f"test took {time.perf_counter() - started:.0f} s", flush=True)
    print(f"{suite.passed} passed, {suite.failed} failed")
    return 0 if suite.failed == 0 else 1


def guarded(suite, what, fn):
    """Runs fn; an exception (a tool that failed, a crash) is one failed
    case with its traceback, and the summary line still comes."""
    try:
        fn()
    except Exception:  # noqa: BLE001
        import traceback
        suite.check(f"{what} ran to the end", False, traceback.format_exc())


def cases_at_scale(suite, runner, server, tree, flat, classes, local_tree, local_flat, tree_mount, flat_mount):
    """The programs on the tree and the flat prefix against local disk, and
    the LISTs counted."""

    # ---- the same programs on local disk and on the mount: one cache;
    # the first program lists it cold, every later one reads what the
    # first left in shared memory.
    cfg, env, tool_env = runner.cache("a", server, [(tree_mount, f"s3://{mf.BUCKET}/imagenet/"),
                                                    (flat_mount, f"s3://{mf.BUCKET}/flat/")])
    base = runner.base_env
    walk_l = runner.run(scan_argv("walk", local_tree), base)
    walk_s = runner.run(scan_argv("walk", tree_mount), env)
    compare(suite, "os.walk of the tree (cold: the first scan of a fresh cache)", walk_l, walk_s,
            local_tree, tree_mount)
    first = runner.stats(cfg, tool_env)
    single_lists = first["list_requests"]
    print(f"     info: the cold os.walk made {single_lists} LISTs and {first['head_requests']} HEADs "
          f"({classes + 2} directories)", flush=True)
    cases = [
        ("os.scandir + stat (kind, mode, size, mtime) of every entry", scan_argv("scandir", local_tree),
         scan_argv("scandir", tree_mount), False),
        ("glob.glob('**', recursive=True) and glob('train/*/*.JPEG')", scan_argv("glob", local_tree),
         scan_argv("glob", tree_mount), False),
        ("find ROOT (sorted)", ["find", local_tree], ["find", tree_mount], True),
        ("find ROOT | wc -l", ["sh", "-c", f"find {local_tree} | wc -l"],
         ["sh", "-c", f"find {tree_mount} | wc -l"], False),
        ("find ROOT -type f -printf '%y %m %s %T@ %P' (sorted)",
         ["find", local_tree, "-type", "f", "-printf", "%y %m %s %T@ %P\n"],
         ["find", tree_mount, "-type", "f", "-printf", "%y %m %s %T@ %P\n"], True),
        ("cd ROOT && ls -R", ["sh", "-c", f"cd {local_tree} && ls -R"],
         ["sh", "-c", f"cd {tree_mount} && ls -R"], False),
        ("torchvision ImageFolder(train).classes, class_to_idx, samples",
         scan_argv("imagefolder", os.path.join(local_tree, "train")),
         scan_argv("imagefolder", os.path.join(tree_mount, "train")), False),
    ]
    for name, argv_l, argv_s, sort in cases:
        compare(suite, name, runner.run(argv_l, base), runner.run(argv_s, env), local_tree, tree_mount, sort)
    after = runner.stats(cfg, tool_env)
    suite.check(f"the {len(cases)} programs after the first scan made 0 LISTs and 0 HEADs "
                f"(list_requests {single_lists} -> {after['list_requests']}, head_requests "
                f"{first['head_requests']} -> {after['head_requests']})",
                after["list_requests"] == single_lists and after["head_requests"] == first["head_requests"],
                json.dumps({k: after.get(k) for k in ("list_requests", "head_requests", "errors")}))

    # ---- the flat prefix: listed as key ranges in parallel
    before = after
    ls_l = runner.run(scan_argv("listdir", local_flat), base)
    ls_s = runner.run(scan_argv("listdir", flat_mount), env)
    compare(suite, f"os.listdir of a flat prefix of {len(flat):,} keys (cold)", ls_l, ls_s,
            local_flat, flat_mount)
    mid = runner.stats(cfg, tool_env)
    flat_lists = mid["list_requests"] - before["list_requests"]
    pages = -(-len(flat) // 1000)
    print(f"     info: the flat listing made {flat_lists} LISTs ({pages} pages of 1,000 keys at least; "
          f"ram_used_bytes grew {mid['ram_used_bytes'] - before['ram_used_bytes']:,})", flush=True)
    compare(suite, f"os.scandir + stat of the flat prefix ({len(flat):,} entries)",
            runner.run(scan_argv("scandir", local_flat), base), runner.run(scan_argv("scandir", flat_mount), env),
            local_flat, flat_mount)
    end = runner.stats(cfg, tool_env)
    suite.check(f"the flat listing took at least {pages} LISTs, then a second process listed it with none "
                f"({flat_lists} LISTs, then {end['list_requests'] - mid['list_requests']})",
                flat_lists >= pages and end["list_requests"] == mid["list_requests"]
                and end["head_requests"] == mid["head_requests"],
                json.dumps({k: end.get(k) for k in ("list_requests", "head_requests", "errors")}))

    # ---- two processes scanning at once on a fresh cache: one LIST pass
    cfg2, env2, tool_env2 = runner.cache("b", server, [(tree_mount, f"s3://{mf.BUCKET}/imagenet/")])
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    procs = []
    for _ in range(2):
        e = dict(env2, OBJCACHE_TEST_LATCH=f"{go_r},{ready_w}")
        procs.append(subprocess.Popen(scan_argv("walk", tree_mount), env=e, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, pass_fds=(go_r, ready_w)))
    os.close(go_r)
    os.close(ready_w)
    got = b""
    while len(got) < 2:
        b = os.read(ready_r, 2)
        if not b:
            break
        got += b
    os.close(ready_r)
    t = time.perf_counter()
    os.close(go_w)  # both scans start now
    outs = [p.communicate(timeout=600) for p in procs]
    t_both = time.perf_counter() - t
    both = runner.stats(cfg2, tool_env2)
    for i, (p, (o, e)) in enumerate(zip(procs, outs)):
        compare(suite, f"os.walk, one of two processes scanning at once ({i + 1})", walk_l,
                (p.returncode, o.decode(errors="surrogateescape"), e.decode(errors="replace"), t_both),
                local_tree, tree_mount)
    suite.check(f"two processes started together on a fresh cache made one LIST pass between them "
                f"(list_requests {both['list_requests']}, one scan alone {single_lists}; both ready: "
                f"{got == b'RR'})",
                got == b"RR" and both["list_requests"] == single_lists,
                json.dumps({k: both.get(k) for k in ("list_requests", "head_requests", "errors")}))
    third = runner.run(scan_argv("walk", tree_mount), env2)
    compare(suite, "os.walk in a third process, after them", walk_l, third, local_tree, tree_mount)
    end2 = runner.stats(cfg2, tool_env2)
    suite.check(f"the third process made 0 LISTs (list_requests {both['list_requests']} -> "
                f"{end2['list_requests']})", end2["list_requests"] == both["list_requests"],
                json.dumps({k: end2.get(k) for k in ("list_requests", "head_requests", "errors")}))



BUDGET = "64KiB"


def budget_case(suite, runner, server, base, tree, local_tree, tree_mount):
    """cache.metadata_budget far below the listings of the classes scanned
    (16 classes, ~3,000 entries of ~80 bytes): the listing is refetched
    rather than kept, and is still what local disk says."""
    cfg, env, tool_env = runner.cache("budget", server, [(tree_mount, f"s3://{mf.BUCKET}/imagenet/")],
                                      extra_cache=f'metadata_budget = "{BUDGET}"')
    p = subprocess.run([runner.args.cachectl, "--config", cfg, "stats", "--json"], env=tool_env,
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0 and "unknown key" in p.stderr and "metadata_budget" in p.stderr:
        print(f"skip the metadata budget exceeded ({BUDGET}): this build's configuration does not know "
              f"cache.metadata_budget ({p.stderr.strip().splitlines()[-1]})", flush=True)
        return
    classes = sorted({k.split("/")[1] for k, _ in tree if k.startswith("train/")})[:16]
    subs = [f"train/{c}" for c in classes]
    n = sum(1 for k, _ in tree if k.split("/")[1:2] and k.split("/")[1] in set(classes))
    for mode in ("walk", "scandir"):
        compare(suite, f"with cache.metadata_budget = {BUDGET}, {mode} of {len(subs)} classes ({n:,} files) "
                f"is what local disk says",
                runner.run(scan_argv(mode, local_tree, subs), base), runner.run(scan_argv(mode, tree_mount, subs), env),
                local_tree, tree_mount)
    s = runner.stats(cfg, tool_env)
    print(f"     info: under the budget: list_requests {s.get('list_requests')}, head_requests "
          f"{s.get('head_requests')}, ram_used_bytes {s.get('ram_used_bytes')}"
          + "".join(f", {k} {v}" for k, v in s.items() if "metadata" in k), flush=True)


if __name__ == "__main__":
    sys.exit(main())
