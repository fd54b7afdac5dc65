#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs each libFuzzer target of a fuzz build (make fuzz) for a bounded time
over a copy of its seed corpus (tests/fuzz/corpus/<name>/, never changed
here), with ASan+UBSan as built. A crash, a leak, an abort of an invariant,
a timeout of one input or running out of memory fails the target; its
reproducer is kept in <build>/fuzz-artifacts/. Ends with "N passed, M failed".

  run_fuzz.py BUILD_DIR SECONDS [NAME...]

FUZZ_SEED (default 1) fixes libFuzzer's random seed; FUZZ_SEED=0 lets
libFuzzer pick one (longer hunts). A fixed seed does not make a run
repeatable across machines: the time bound lets a faster machine try more
inputs, and libFuzzer's schedule follows what each input covered in time. So
every reproducer a run finds, here or in CI, goes into the seed corpus once
fixed (tests/fuzz/corpus/<name>/crash-*), and every later run replays it
first."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CORPORA = os.path.join(ROOT, "tests", "fuzz", "corpus")


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    build, seconds = sys.argv[1], int(sys.argv[2])
    seed = int(os.environ.get("FUZZ_SEED", "1"))
    names = sys.argv[3:] or sorted(d for d in os.listdir(CORPORA) if os.path.isdir(os.path.join(CORPORA, d)))
    artifacts = os.path.join(build, "fuzz-artifacts") + "/"
    os.makedirs(artifacts, exist_ok=True)
    passed = failed = 0
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    for name in names:
        exe = os.path.join(build, "tests", "fuzz", f"fuzz_{name}")
        if not os.path.exists(exe):
            print(f"FAIL fuzz_{name}: {exe} was not built", flush=True)
            failed += 1
            continue
        work = tempfile.mkdtemp(prefix=f"objcache-fuzz-{name}-")
        try:
            cmd = [exe, f"-seed={seed}", f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048",
                   "-use_value_profile=1",
                   "-print_final_stats=1", f"-artifact_prefix={artifacts}{name}-", work,
                   os.path.join(CORPORA, name)]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 300)
            runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", r.stderr)
            cov = re.findall(r"cov: (\d+)", r.stderr)
            if r.returncode == 0:
                passed += 1
                print(f"ok   fuzz_{name}: {runs[-1] if runs else '?'} inputs in {seconds} s (seed {seed}), "
                      f"coverage {cov[-1] if cov else '?'}, 0 crashes, 0 leaks", flush=True)
            else:
                failed += 1
                print(f"FAIL fuzz_{name}: exit {r.returncode}; reproducer in {artifacts}", flush=True)
                for line in r.stderr.splitlines()[-40:]:
                    print(f"     {line}", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
