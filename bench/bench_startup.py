#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What preloading the shim costs a process that never touches a mount
(issue 17: data preparation scripts start thousands of short processes).

  /usr/bin/python3 bench/bench_startup.py [--build build] [--runs 1000]
      [--compare OTHER_SHIM] [--out bench/results/startup.md]

--runs starts each of `/bin/true` and `/usr/bin/python3 -c pass` that many
times with no preload and that many times with LD_PRELOAD set to the
shim (a copy of build/preload/libobjcache_preload.so and its engine) and
OBJCACHE_CONFIG naming a configuration whose one mount the programs never
touch, interleaved in the same run (each round starts every variant once,
in a shuffled order), each start timed from posix_spawn to its exit. The
figures, per program: the extra wall time per process (the median of the
round-by-round differences, shim minus no preload, in ms) and the same as
a percentage of the median start without preload. Each is judged once
(bench/targets.py: at most 0.3 ms and at most 3 %). --compare adds another
shim (for example the unsplit one of an older tree) as a third variant in
the same rounds, shown as information; so is an empty shared object
preloaded (built here with cc: the floor any LD_PRELOAD pays, the loader
mapping one more object). Every run's exit status is checked
(0), and a run under the shim that maps the engine fails the benchmark.
Writes the Markdown report (--out) and its json (bench/report.py reads
it) and prints it; asserts nothing about speed."""
import argparse
import datetime
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import targets  # noqa: E402

log = bl.logger("bench_startup")
ENGINE = "libobjcache_preload_engine.so"
EMPTY = "an empty preloaded object (the floor)"
PROGRAMS = [("true", ["/bin/true"]), ("python", ["/usr/bin/python3", "-c", "pass"])]


def copy_shim(shim, dest):
    """The shim and, when there is one, its engine copied into dest (a
    rebuild of build/ cannot swap them under the runs); the copy of the
    shim and a line that identifies it."""
    os.makedirs(dest)
    engine = os.path.join(os.path.dirname(shim), ENGINE)
    if os.path.exists(engine):
        shutil.copy2(engine, os.path.join(dest, ENGINE))
    copied, ident = bl.copy_shim(shim, dest)
    return copied, ident + (" + engine" if os.path.exists(engine) else " (one object, no engine)")


def empty_object(work):
    """An empty shared object (one function, no constructor), or None
    without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src, so = os.path.join(work, "empty.c"), os.path.join(work, "libempty.so")
    with open(src, "w") as f:
        f.write("int objcache_bench_empty(void) { return 0; }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", so, src], check=True, capture_output=True)
    return so


def spawn_ns(argv, env):
    """Wall nanoseconds from posix_spawn to the exit of argv; fails on a
    non-zero exit."""
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter_ns()
    if status != 0:
        raise bl.Failure(f"{' '.join(argv)} exited with status {status:#x}")
    return t1 - t0


def engine_free(argv, env):
    """Whether a process under the shim, doing what argv's program does at
    start, maps no engine (python reads its own maps; /bin/true cannot, so
    cat of /proc/self/maps stands in for a C program)."""
    import subprocess
    probe = (["/usr/bin/python3", "-c", "import sys; sys.exit(int('" + ENGINE + "' in open('/proc/self/maps').read()))"]
             if argv[0].endswith("python3") else ["/bin/sh", "-c", f"! grep -q {ENGINE} /proc/self/maps"])
    return subprocess.run(probe, env=env, timeout=60).returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--compare", default="", help="another libobjcache_preload.so, as a third variant")
    ap.add_argument("--compare-label", default="other shim")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--out", default="")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    command = bl.command_line("bench_startup.py")
    (shim_built,) = bl.build_paths(args.build, log, "preload/libobjcache_preload.so")
    work = tempfile.mkdtemp(prefix="objcache-bench-startup-")
    try:
        shim, shim_id = copy_shim(shim_built, os.path.join(work, "new"))
        variants = [("none", None), ("shim", shim)]
        other_id = ""
        if args.compare:
            other, other_id = copy_shim(os.path.abspath(args.compare), os.path.join(work, "other"))
            variants.append((args.compare_label, other))
        empty = empty_object(work)
        if empty is not None:
            variants.append((EMPTY, empty))
        # A configuration with a mount the programs never touch (the shim
        # reads it at start; the mount is under the work directory, which
        # nothing here opens).
        config = os.path.join(work, "objcache.toml")
        bl.write_config(config, "http://127.0.0.1:9", os.path.join(work, "mnt", "data"), "s3://data/ds/",
                        name=f"startup{os.getpid()}", memory="64MiB")
        base = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("OBJCACHE_")}
        envs = {}
        for label, so in variants:
            e = dict(base)
            if so is not None:
                e["LD_PRELOAD"] = so
                e["OBJCACHE_CONFIG"] = config  # read by the shims; the empty object ignores it
            envs[label] = e
        for _, argv in PROGRAMS:
            for label, so in variants:
                if so is not None and label != EMPTY and not engine_free(argv, envs[label]):
                    raise bl.Failure(f"{label}: a process that touches no mount mapped the engine")
        rng = random.Random(args.seed)
        times = {(p, label): [] for p, _ in PROGRAMS for label, _ in variants}
        for name, argv in PROGRAMS:
            for label, _ in variants:  # warm-up: the binaries and libraries into the page cache
                for _ in range(5):
                    spawn_ns(argv, envs[label])
            for r in range(args.runs):
                order = list(variants)
                rng.shuffle(order)
                for label, _ in order:
                    times[(name, label)].append(spawn_ns(argv, envs[label]))
                if (r + 1) % 250 == 0:
                    log(f"{name}: {r + 1} of {args.runs} rounds")
        elapsed = time.monotonic() - t_start

        def extra(name, label):
            """(ms per process, % of no preload's median, medians in ms)."""
            base_t, t = times[(name, "none")], times[(name, label)]
            paired = statistics.median(b - a for a, b in zip(base_t, t)) / 1e6
            base_med = statistics.median(base_t) / 1e6
            return paired, 100.0 * paired / base_med, base_med, statistics.median(t) / 1e6

        figures, rows = {}, []
        for name, argv in PROGRAMS:
            ms, pct, base_med, shim_med = extra(name, "shim")
            at = {"runs": args.runs, "program": " ".join(argv)}
            others_ms, others_pct = [], []
            for label, so in variants[2:]:
                oms, opct, _, omed = extra(name, label)
                others_ms.append((label, f"{oms:+.3f} ms ({omed:.3f} ms per start)"))
                others_pct.append((label, f"{opct:+.1f} %"))
                rows.append((name, label, base_med, omed, oms, opct))
            rows.append((name, "shim", base_med, shim_med, ms, pct))
            figures[f"startup.{name}_ms"] = bl.figure(ms, f"{ms:+.3f} ms ({shim_med:.3f} vs {base_med:.3f} ms per start)",
                                                      at, others=others_ms)
            figures[f"startup.{name}_pct"] = bl.figure(pct, f"{pct:+.1f} %", at, others=others_pct)

        def verdict(tid, value):
            t = targets.get(tid)
            return f"{'met' if t.met(value) else '**MISSED**'} ({t.threshold_text()})"

        md = [
            "# Process start-up under the shim (issue 17)\n",
            f"Reproduce: `{command}` ({started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {elapsed:.0f} s). "
            f"{args.runs} rounds per program; each round starts the program once per variant in a shuffled order; "
            f"figures are medians of the round-by-round differences against no preload. The configuration has one "
            f"mount the programs never touch.\n",
            "| program | variant | no preload (ms, median) | with it (ms, median) | extra per process | extra % | "
            "verdict (ms) | verdict (%) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, label, base_med, med, ms, pct in rows:
            judged = label == "shim"
            v_ms = verdict(f"startup.{name}_ms", ms) if judged else "— (information)"
            v_pct = verdict(f"startup.{name}_pct", pct) if judged else "— (information)"
            prog = " ".join(dict(PROGRAMS)[name])
            md.append(f"| `{prog}` | {label} | {base_med:.3f} | {med:.3f} | {ms:+.3f} ms | {pct:+.1f} % | {v_ms} | {v_pct} |")
        md += ["", f"Shim: {shim_id}." + (f" {args.compare_label}: {other_id}." if other_id else ""),
               f"Tree {bl.tree_state()}; machine {bl.machine()}; load average when done: {os.getloadavg()[0]:.1f} "
               f"(other work shares the machine: a start's wall time is noisy, the paired median is what holds).", ""]
        bl.write_results("startup", "bench_startup.py", "\n".join(md) + "\n", args.out, args.json, figures,
                         command=command, started=started, elapsed=elapsed, runs=args.runs, shim_id=shim_id)
        return 0
    except bl.Failure as e:
        log(f"FAILED: {e}")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
