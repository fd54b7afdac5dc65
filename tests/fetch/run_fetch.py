#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The fetcher and cachectl against a real s3rver (issue 5's tests).

Programs read a mounted bucket under the shim; the counters come from
`cachectl stats --json` (mounts[0].remote_requests counts the mount's data
GETs; LIST and HEAD count only in the totals). Where requests must overlap,
a proxy in front of s3rver holds each request for a fixed delay.
Prints one line per case and ends with `N passed, M failed`.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "preload"))
sys.path.insert(0, os.path.join(HERE, "..", "s3server"))
import mount_fixture as mf  # noqa: E402
from delay_proxy import DelayProxy  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402

PY = "/usr/bin/python3"

# Reads every file under argv[1] (sorted, or the files named on stdin) and
# prints "<count> <sha256 of names and contents>".
READER = textwrap.dedent("""
    import hashlib, os, sys
    root = sys.argv[1]
    chunk = int(sys.argv[2]) if len(sys.argv) > 2 else -1
    h = hashlib.sha256(); n = 0
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            h.update(os.path.relpath(p, root).encode())
            with open(p, 'rb') as fh:
                while True:
                    b = fh.read(chunk)
                    if not b: break
                    h.update(b)
                    if chunk < 0: break
            n += 1
    print(n, h.hexdigest())
""")


def local_digest(root):
    h = hashlib.sha256()
    n = 0
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            h.update(os.path.relpath(p, root).encode())
            with open(p, "rb") as fh:
                h.update(fh.read())
            n += 1
    return f"{n} {h.hexdigest()}"


def write_files(root, sub, count, size, seed):
    import random
    rnd = random.Random(seed)
    d = os.path.join(root, sub)
    os.makedirs(d, exist_ok=True)
    for i in range(count):
        with open(os.path.join(d, f"f{i:04d}.bin"), "wb") as f:
            f.write(rnd.randbytes(size))


class Env:
    """One fresh cache (its own name and shm dir) over the data set."""
    counter = 0

    def __init__(self, t, endpoint, memory="64MiB", extra_mount="", extra_store="", eviction="clock"):
        Env.counter += 1
        self.t = t
        tag = f"{os.getpid()}-{Env.counter}"
        self.shm = os.path.join(t.work, f"shm-{tag}")
        os.makedirs(self.shm)
        self.mount = f"/mnt/objcache-fetch-{tag}"
        self.config = os.path.join(t.work, f"fetch-{tag}.toml")
        mf.write_config(self.config, endpoint, self.mount, "s3://data/ds/", memory=memory,
                        name=f"f{tag}", extra_mount=extra_mount, extra_store=extra_store)
        if eviction != "clock":
            with open(self.config) as f:
                text = f.read().replace('page_size = "1MiB"', f'page_size = "1MiB"\neviction = "{eviction}"')
            with open(self.config, "w") as f:
                f.write(text)
        self.env = mf.shim_env(t.args.shim, self.config, self.shm, t.args.asan)
        if t.args.asan:  # the programs' leaks are theirs, not ours
            self.env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
        self.ctl_env = dict(os.environ, OBJCACHE_SHM_DIR=self.shm, AWS_ACCESS_KEY_ID=mf.ACCESS_KEY,
                            AWS_SECRET_ACCESS_KEY=mf.SECRET_KEY)
        self.ctl_env.pop("LD_PRELOAD", None)

    def path(self, sub=""):
        return os.path.join(self.mount, sub) if sub else self.mount

    def read(self, sub, chunk=-1, timeout=300):
        p = subprocess.run([PY, "-c", READER, self.path(sub), str(chunk)], env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout.strip(), p.stderr

    def spawn_read(self, sub):
        return subprocess.Popen([PY, "-c", READER, self.path(sub)], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ctl(self, *args, timeout=300):
        p = subprocess.run([self.t.args.cachectl, "--config", self.config, *args], env=self.ctl_env,
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def stats(self):
        rc, out, err = self.ctl("stats", "--json")
        if rc != 0:
            raise RuntimeError(f"cachectl stats failed: {err}")
        return json.loads(out)

    def data_gets(self):
        return self.stats()["mounts"][0]["remote_requests"]


class Tests:
    def __init__(self, args):
        self.args = args
        self.suite = mf.Suite()
        self.work = tempfile.mkdtemp(prefix="objcache-fetch-")
        self.local = os.path.join(self.work, "local")
        write_files(self.local, "many", 200, 8 << 10, 1)
        write_files(self.local, "mixed", 5, 3 << 20, 2)
        with open(os.path.join(self.local, "mixed", "big.bin"), "wb") as f:
            import random
            f.write(random.Random(3).randbytes(12 << 20))
        write_files(self.local, "half", 600, 100 << 10, 4)
        self.server = mf.S3Server(self.work)
        mf.upload_tree(self.server.client(), self.local, prefix="ds/")
        self.proxies = []

    def proxy(self, delay):
        p = DelayProxy(self.server.port, delay)
        self.proxies.append(p)
        return p.endpoint

    def limited_store(self, max_in_flight, hold_s):
        p = FaultProxy(self.server.port, max_in_flight=max_in_flight, hold_s=hold_s)
        self.proxies.append(p)
        return p

    def close(self):
        for p in self.proxies:
            p.stop()
        self.server.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    # ---- cases ---------------------------------------------------------------

    def two_processes_one_get_per_object(self):
        e = Env(self, self.proxy(0.02), extra_mount='prefetch = "none"')
        procs = [e.spawn_read("many") for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        want = local_digest(os.path.join(self.local, "many"))
        gets = e.data_gets()
        ok = all(p.returncode == 0 for p in procs) and all(o[0].strip() == want for o in outs) and gets == 200
        self.suite.check(f"two_processes_missing_200_objects_make_{gets}_gets", ok,
                         f"want 200 GETs, digests equal\n{outs}\n{e.stats()}")

    def demand_read_joins_prefetch(self):
        # Listing the directory queues its 6 files (5 of 3 MiB, one of 12 MiB)
        # for prefetch; the reads that follow at once find those GETs in
        # flight (300 ms each) and wait for them rather than send their own.
        e = Env(self, self.proxy(0.3), extra_mount='prefetch = "directory"')
        rc, out, err = e.read("mixed", chunk=1 << 20)
        s = e.stats()["mounts"][0]
        want = local_digest(os.path.join(self.local, "mixed"))
        ok = rc == 0 and out == want and s["remote_requests"] == 5 + 12 and s["prefetched_bytes"] > 0
        self.suite.check("demand_read_during_prefetch_makes_one_get_per_page", ok,
                         f"rc={rc} out={out} want={want}\nwant 17 GETs (5 small objects + 12 pages)\n{s}\n{err[-1500:]}")

    def small_object_one_get_large_readahead(self):
        e = Env(self, self.server.endpoint, extra_mount='prefetch = "file"')

        def sha(sub, chunk):
            code = ("import hashlib, sys\nh = hashlib.sha256()\nf = open(sys.argv[1], 'rb')\n"
                    "while True:\n    b = f.read(int(sys.argv[2]))\n    if not b: break\n    h.update(b)\n"
                    "print(h.hexdigest())")
            p = subprocess.run([PY, "-c", code, e.path(sub), str(chunk)], env=e.env, capture_output=True, text=True)
            with open(os.path.join(self.local, sub), "rb") as f:
                want = hashlib.sha256(f.read()).hexdigest()
            return p.returncode == 0 and p.stdout.strip() == want, p.stdout + p.stderr[-800:]

        ok, detail = sha("mixed/f0000.bin", 64 << 10)
        gets_small = e.data_gets()
        self.suite.check("small_object_of_3_pages_is_one_get", ok and gets_small == 1, f"gets={gets_small}\n{detail}")
        ok, detail = sha("mixed/big.bin", 256 << 10)
        s = e.stats()["mounts"][0]
        self.suite.check("large_object_12_pages_12_gets_with_readahead",
                         ok and s["remote_requests"] - gets_small == 12 and s["prefetched_bytes"] > 0,
                         f"{detail}\n{s}")

    def load_then_epoch_makes_no_get(self):
        e = Env(self, self.server.endpoint, extra_mount='prefetch = "none"')
        rc, out, err = e.ctl("load", "--json", e.path("many"))
        summary = json.loads(out) if rc == 0 else {}
        before = e.stats()
        rc2, out2, err2 = e.read("many")
        after = e.stats()
        want = local_digest(os.path.join(self.local, "many"))
        ok = (rc == 0 and summary.get("files") == 200 and summary.get("fetched_bytes") == 200 * (8 << 10)
              and rc2 == 0 and out2 == want
              and after["mounts"][0]["remote_requests"] == before["mounts"][0]["remote_requests"] == 200
              and after["remote_requests"] == before["remote_requests"])
        self.suite.check("cachectl_load_then_epoch_makes_no_get", ok,
                         f"load rc={rc} {out}{err}\nread rc={rc2} {out2}\nbefore={before}\nafter={after}")
        return e

    def eviction_none_keeps_half(self):
        e = Env(self, self.server.endpoint, memory="32MiB", eviction="none", extra_mount='prefetch = "none"')
        ratios = []
        last = {"ram_hits": 0, "misses": 0}
        ok = True
        for epoch in range(3):
            rc, out, err = e.read("half")
            ok = ok and rc == 0
            m = e.stats()["mounts"][0]
            hits = m["ram_hits"] - last["ram_hits"]
            misses = m["misses"] - last["misses"]
            last = m
            ratios.append(round(hits / max(1, hits + misses), 3))
        cap = e.stats()["ram_capacity_bytes"] / (600 * (100 << 10))
        ok = ok and ratios[0] == 0 and all(abs(r - cap) < 0.1 and r > 0.3 for r in ratios[1:]) and ratios[1] == ratios[2]
        self.suite.check(f"eviction_none_data_2x_cache_hit_ratio_per_epoch={ratios}", ok,
                         f"capacity/data={cap:.3f} ratios={ratios}\n{e.stats()}")

    def cachectl_commands(self, e):
        s = self.suite
        many = e.path("many")
        rc, out, err = e.ctl("ls", "--json", many)
        j = json.loads(out) if rc == 0 else {}
        s.check("cachectl_ls_cached_against_size",
                rc == 0 and j.get("size_bytes") == 200 * (8 << 10) and j.get("cached_bytes") == j.get("size_bytes")
                and len(j.get("entries", [])) == 200, f"{rc} {out[:800]} {err}")
        rc, out, err = e.ctl("ls", many)
        s.check("cachectl_ls_text", rc == 0 and "100%" in out and "f0000.bin" in out, out[-800:] + err)
        rc, out, err = e.ctl("pin", many)
        rc2, out2, err2 = e.ctl("unpin", many)
        s.check("cachectl_pin_unpin", rc == 0 and rc2 == 0 and out.startswith("pinned 1.56MiB of 200 files")
                and out2.startswith("unpinned 1.56MiB of 200 files"), out + err + out2 + err2)
        rc, out, err = e.ctl("evict", os.path.join(many, "f0000.bin"))
        rc2, out2, err2 = e.ctl("ls", "--json", os.path.join(many, "f0000.bin"))
        j = json.loads(out2) if rc2 == 0 else {}
        s.check("cachectl_evict", rc == 0 and out.startswith("evicted 8KiB of 1 files")
                and j.get("cached_bytes") == 0 and j.get("size_bytes") == 8 << 10, out + err + out2 + err2)
        rc, out, err = e.ctl("verify", "--json")
        j = json.loads(out) if rc == 0 else {}
        s.check("cachectl_verify", rc == 0 and j.get("ram_pages", 0) >= 199 and j.get("ram_bad") == 0, out + err)
        st = e.stats()
        s.check("cachectl_stats_working_set",
                st["working_set_bytes"] >= 199 * (8 << 10) and 0 < st["hit_ratio"] <= 1
                and st["capacity_bytes"] == st["ram_capacity_bytes"] + st["spill_capacity_bytes"], json.dumps(st))
        rc, out, err = e.ctl("stats", "--prometheus")
        s.check("cachectl_stats_prometheus", rc == 0 and re.search(r"^objcache_working_set_bytes\{.*\} \d+$", out, re.M)
                and re.search(r"^objcache_remote_requests_total\{", out, re.M), out[-800:] + err)
        rc, out, err = e.ctl("stats")
        s.check("cachectl_stats_text", rc == 0 and "working set" in out and "hit ratio" in out, out + err)
        p = subprocess.Popen([self.args.cachectl, "--config", e.config, "stats", "--json", "--watch", "1"],
                             env=e.ctl_env, stdout=subprocess.PIPE, text=True)
        # Interrupted once it has printed twice: read until two whole JSON
        # documents came (a watchdog kills it if they never do).
        watchdog = threading.Timer(30, p.kill)
        watchdog.start()
        out, pending, docs = "", "", 0
        while docs < 2:
            line = p.stdout.readline()
            if not line:
                break
            out += line
            pending += line
            try:
                if "ram_hits" in json.loads(pending):
                    docs += 1
                pending = ""
            except ValueError:  # not a whole document yet
                continue
        p.send_signal(signal.SIGINT)
        out += p.communicate(timeout=10)[0]
        watchdog.cancel()
        s.check("cachectl_stats_watch", docs >= 2, out[-500:])
        helps = []
        for cmd in ["check", "stats", "load", "ls", "evict", "pin", "unpin", "verify"]:
            rc, out, err = e.ctl(cmd, "--help")
            if rc != 0 or not out.startswith(f"usage: cachectl [--config FILE] {cmd}"):
                helps.append(f"{cmd}: rc={rc} {out[:200]} {err[:200]}")
        s.check("cachectl_help_on_every_command", not helps, "\n".join(helps))
        errs = []
        for args, want_rc, want in [(("ls", "/not/a/mount"), 1, "'/not/a/mount' is under no mount"),
                                    (("ls", os.path.join(many, "nope.bin")), 1, "nope.bin"),
                                    (("load",), 2, "give at least one PATH"),
                                    (("pin", "--bogus", many), 2, "unknown option '--bogus'"),
                                    (("bogus",), 2, "unknown command 'bogus'")]:
            rc, out, err = e.ctl(*args)
            if rc != want_rc or want not in err:
                errs.append(f"{args}: rc={rc} want {want_rc}; stderr={err[:300]}")
        s.check("cachectl_errors_name_what_was_wrong", not errs, "\n".join(errs))

    def load_interrupted_and_not_fitting(self):
        # Ctrl-C during a slow load: exit 130, the cache verifies, and every
        # file then reads back right.
        e = Env(self, self.proxy(0.05), extra_store="prefetch_concurrency = 4", extra_mount='prefetch = "none"')
        p = subprocess.Popen([self.args.cachectl, "--config", e.config, "load", e.path("half")], env=e.ctl_env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Ctrl-C once it is under way: 20 of its 600 GETs sent.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            try:
                if e.stats()["mounts"][0]["remote_requests"] >= 20:
                    break
            except RuntimeError:  # the load has not made the cache yet
                pass
            time.sleep(0.05)  # poll: a counter in another process (cachectl stats)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        rc_v, out_v, err_v = e.ctl("verify", "--json")
        rc_r, out_r, err_r = e.read("half")
        want = local_digest(os.path.join(self.local, "half"))
        self.suite.check("cachectl_load_ctrl_c_leaves_cache_consistent",
                         p.returncode == 130 and "interrupted" in out and rc_v == 0 and rc_r == 0 and out_r == want,
                         f"rc={p.returncode} {out} {err[-500:]}\nverify {rc_v} {out_v}\nread {rc_r} {out_r} want {want}")
        # 60 MiB into a 32 MiB cache without spill: what does not fit is named.
        e = Env(self, self.server.endpoint, memory="32MiB", extra_mount='prefetch = "none"')
        rc, out, err = e.ctl("load", "--json", e.path("half"))
        j = json.loads(out) if out.strip().startswith("{") else {}
        rc2, out2, err2 = e.ctl("load", e.path("half"))
        self.suite.check("cachectl_load_says_what_did_not_fit",
                         rc == 0 and j.get("left_out_files", 0) > 0 and j.get("files", 0) + j["left_out_files"] == 600
                         and "did not fit" in out2, f"{rc} {out} {err}\n{out2} {err2}")


    def reader_killed_mid_get_then_load(self):
        # Issue 18.1/18.2: a reader SIGKILLed with GETs in flight leaves its
        # claims and its gate slots in the segment. `cachectl load` must
        # take the claims over (not skip the pages and say "loaded"), and
        # the slots must be given back without anyone waiting on the gate.
        e = Env(self, self.proxy(1.5), extra_mount='prefetch = "file"')
        direct = e.config + ".direct.toml"  # the same cache, straight to s3rver
        with open(e.config) as f, open(direct, "w") as g:
            g.write(re.sub(r'^endpoint = ".*"$', f'endpoint = "{self.server.endpoint}"', f.read(), flags=re.M))
        path = e.path("mixed/big.bin")
        reader = subprocess.Popen([PY, "-c", "import sys; open(sys.argv[1], 'rb').read()", path], env=e.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        in_flight = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and reader.poll() is None:
            in_flight = e.stats()["gets_in_flight"]
            if in_flight >= 2:
                break
            time.sleep(0.05)  # poll: a counter in another process (its GETs are held 1.5 s by the proxy)
        reader.kill()
        reader.wait()
        after_kill = e.stats()
        self.suite.check("gets_in_flight_of_a_killed_reader_come_back_at_once",
                         in_flight >= 2 and after_kill["gets_in_flight"] == 0 and after_kill["processes"] == 0,
                         f"in flight before the kill: {in_flight}; after: {after_kill}")
        p = subprocess.run([self.args.cachectl, "--config", direct, "load", "--json", path], env=e.ctl_env,
                           capture_output=True, text=True, timeout=120)
        j = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {}
        rc_ls, out_ls, err_ls = e.ctl("ls", "--json", path)
        ls = json.loads(out_ls) if rc_ls == 0 else {}
        fully = ls.get("cached_bytes") == ls.get("size_bytes") == 12 << 20
        self.suite.check("cachectl_load_takes_over_the_pages_of_a_killed_reader",
                         p.returncode == 0 and fully and j.get("fetched_bytes", 0) + j.get("already_cached_bytes", 0)
                         == 12 << 20 and j.get("failed_pages") == 0,
                         f"load rc={p.returncode} {p.stdout} {p.stderr[-800:]}\nls {out_ls[:400]} {err_ls}")
        # Whatever happened, exit 0 means every page is cached.
        self.suite.check("cachectl_load_exit_0_only_when_every_page_is_cached", p.returncode != 0 or fully,
                         f"load rc={p.returncode} {p.stdout}\nls {out_ls[:400]}")

    def prefetch_failed_in_outage_is_requeued(self):
        # Issue 18.3: a directory prefetch that failed while the store was
        # away is sent again once it answers, by the process that queued
        # it, without anyone reading: the epoch that follows makes no GET.
        proxy = DelayProxy(self.server.port, 0)
        self.proxies.append(proxy)
        e = Env(self, proxy.endpoint, extra_mount='prefetch = "directory"')
        quiet = e.config + ".none.toml"  # the same cache, no prefetch: to list first
        with open(e.config) as f, open(quiet, "w") as g:
            g.write(f.read().replace('prefetch = "directory"', 'prefetch = "none"'))
        quiet_env = dict(e.env, OBJCACHE_CONFIG=quiet)
        d = e.path("many")
        p = subprocess.run([PY, "-c", "import os, sys; print(len(os.listdir(sys.argv[1])))", d], env=quiet_env,
                           capture_output=True, text=True, timeout=120)
        listed = p.stdout.strip() == "200"
        proxy.down = True
        # Lists the directory (from the cache: the listing queues its 200
        # files, which all fail now), says so, and waits; then reads them all.
        code = textwrap.dedent("""
            import os, sys
            d = sys.argv[1]
            names = sorted(os.listdir(d))
            print("listed", flush=True)
            sys.stdin.readline()
            for n in names:
                with open(os.path.join(d, n), "rb") as f:
                    f.read()
            print("read", len(names), flush=True)
        """)
        reader = subprocess.Popen([PY, "-c", code, d], env=e.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        first = reader.stdout.readline().strip()

        def wait_for(pred, limit):
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                st = e.stats()
                if pred(st):
                    return st
                time.sleep(0.1)  # poll: counters in other processes (cachectl stats)
            return e.stats()

        failed = wait_for(lambda st: st["mounts"][0]["errors"] >= 200, 60)
        proxy.down = False
        back = wait_for(lambda st: st["mounts"][0]["prefetched_bytes"] >= 200 * (8 << 10), 60)
        gets = back["mounts"][0]["remote_requests"]
        out, err = reader.communicate("go\n", timeout=120)
        after = e.stats()
        self.suite.check("prefetch_failed_in_an_outage_is_sent_again_once_the_store_answers",
                         listed and first == "listed" and failed["mounts"][0]["errors"] >= 200
                         and back["mounts"][0]["prefetched_bytes"] == 200 * (8 << 10)
                         and reader.returncode == 0 and "read 200" in out
                         and after["mounts"][0]["remote_requests"] == gets,
                         f"listed={listed} first={first!r}\nafter the outage: {failed['mounts'][0]}\n"
                         f"after the store came back: {back['mounts'][0]}\nreader rc={reader.returncode} {out} "
                         f"{err[-800:]}\nafter reading: {after['mounts'][0]}")

    def load_progress_bar_on_a_terminal(self):
        # stderr a terminal: the bar is redrawn in place (files, bytes, rate,
        # ETA) and ends at 100 %; stdout keeps the summary line.
        import pty
        e = Env(self, self.proxy(0.02), memory="128MiB", extra_store="prefetch_concurrency = 4",
                extra_mount='prefetch = "none"')
        master, slave = pty.openpty()
        p = subprocess.Popen([self.args.cachectl, "--config", e.config, "load", e.path("half")], env=e.ctl_env,
                             stdout=subprocess.PIPE, stderr=slave, text=True)
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            shown += chunk
        os.close(master)
        out, _ = p.communicate(timeout=120)
        text = shown.decode(errors="replace")
        frames = [f for f in text.split("\r") if f.strip()]
        self.suite.check("cachectl_load_progress_bar_on_a_terminal",
                         p.returncode == 0 and len(frames) >= 2 and all("ETA" in f and " files " in f for f in frames)
                         and "100%" in frames[-1] and "/s" in frames[-1] and "600 files" in frames[-1]
                         and "[" + "#" * 24 + "]" in frames[-1] and "600 files" in out,
                         f"rc={p.returncode} frames={len(frames)} last={frames[-1:]!r} stdout={out!r}")


    def adaptive_limit_settles_under_the_stores(self):
        # A store that takes 8 requests at once, 20 ms each, and answers 503
        # SlowDown to any more; the default ceiling (256) and the limit's
        # start (32) are both far above it. cachectl load of 600 files learns
        # it: every page loaded, no error, the limit ends at or below 8; a
        # second load (the pages evicted) starts from what the first learned
        # and is hardly throttled at all.
        n = 8
        fp = self.limited_store(n, 0.02)
        e = Env(self, fp.endpoint, memory="128MiB", extra_mount='prefetch = "none"')
        # The library's default deadline: the tests' 3 s can run out within
        # the backoff a few SlowDowns in a row ask for.
        with open(e.config) as f:
            text = f.read().replace('retry_deadline = "3s"', 'retry_deadline = "30s"')
        with open(e.config, "w") as f:
            f.write(text)
        rc1, out1, err1 = e.ctl("load", "--json", e.path("half"))
        first = fp.snapshot()
        st1 = e.stats()
        rc_ev, _, err_ev = e.ctl("evict", e.path("half"))
        rc2, out2, err2 = e.ctl("load", "--json", e.path("half"))
        second = fp.snapshot()
        st2 = e.stats()
        j1 = json.loads(out1) if rc1 == 0 else {}
        j2 = json.loads(out2) if rc2 == 0 else {}
        over1 = first["over_limit"]
        over2 = second["over_limit"] - over1
        requests2 = second["requests"] - first["requests"]
        rc, digest, rerr = e.read("half")
        want = local_digest(os.path.join(self.local, "half"))
        self.suite.check(
            f"adaptive_limit_settles_at_{st2['fetch_concurrency']}_under_a_store_of_{n}_"
            f"({over1}_then_{over2}_slowdowns)",
            rc1 == 0 and rc2 == 0 and rc_ev == 0 and j1.get("failed_pages") == 0 and j2.get("failed_pages") == 0
            and j1.get("files") == 600 and j2.get("files") == 600 and over1 > 0
            and st1["fetch_concurrency"] <= n and st2["fetch_concurrency"] <= n
            and over2 * 50 <= requests2 and st2["errors"] == 0
            and rc == 0 and digest == want,
            f"load 1 rc={rc1} {out1[-400:]} {err1[-400:]}\nload 2 rc={rc2} {out2[-400:]} {err2[-400:]}\n"
            f"evict {rc_ev} {err_ev[-300:]}\nproxy {first} -> {second}\n"
            f"limit {st1['fetch_concurrency']} ({st1['fetch_concurrency_reason']}) -> "
            f"{st2['fetch_concurrency']} ({st2['fetch_concurrency_reason']}), errors {st2['errors']}\n"
            f"read rc={rc} {rerr[-300:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim", required=True)
    ap.add_argument("--cachectl", required=True)
    ap.add_argument("--case", help="run only this case (a method of Tests, e.g. reader_killed_mid_get_then_load)")
    args = ap.parse_args()
    args.shim = os.path.abspath(args.shim)
    args.cachectl = os.path.abspath(args.cachectl)
    ldd = subprocess.run(["ldd", args.shim], capture_output=True, text=True).stdout
    if "libtsan" in ldd:
        print("skipped (exit 77): TSan cannot be preloaded into arbitrary programs.")
        return 77
    # ASan build: the runtime and an early-init helper go first (see
    # tests/support/asan_early_init.c).
    args.asan = mf.asan_preload(args.shim)
    t = Tests(args)
    try:
        if args.case:
            getattr(t, args.case)()
            return finish(t)
        t.two_processes_one_get_per_object()
        t.demand_read_joins_prefetch()
        t.small_object_one_get_large_readahead()
        e = t.load_then_epoch_makes_no_get()
        t.cachectl_commands(e)
        t.eviction_none_keeps_half()
        t.load_interrupted_and_not_fitting()
        t.load_progress_bar_on_a_terminal()
        t.reader_killed_mid_get_then_load()
        t.prefetch_failed_in_outage_is_requeued()
        t.adaptive_limit_settles_under_the_stores()
    finally:
        t.close()
    return finish(t)


def finish(t):
    print(f"{t.suite.passed} passed, {t.suite.failed} failed")
    return 0 if t.suite.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
