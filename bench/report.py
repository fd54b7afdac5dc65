# SPDX-License-Identifier: Apache-2.0
"""Writes bench/REPORT.md from the result files `make bench` wrote:
bench/results/page_cache.md, shim.md, fetch.md and peers.md (and the plots
peers_*.png next to them).

  /usr/bin/python3 bench/report.py [--results bench/results] [--out bench/REPORT.md]

Every number in the summary is parsed from those Markdown reports; a number
that cannot be found is reported as not found, never guessed. Met / MISSED
is decided here from the parsed value and the target the issues set. The
machine (nproc, CPU model, RAM, kernel) is the one report.py runs on; each
source file's own machine and date lines are quoted as they are.
"""
import argparse
import datetime
import os
import platform
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM = r"([-+−]?[\d,]*\.?\d+)"


def num(s):
    return float(s.replace(",", "").replace("−", "-"))


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def section(text, start, stop=r"^#{2,3} "):
    """The text after the line matching start, up to the next heading (stop)."""
    if text is None:
        return None
    m = re.search(start + r".*$", text, re.M)
    if not m:
        return None
    rest = text[m.end():]
    e = re.search(stop, rest, re.M)
    return rest[:e.start()] if e else rest


def find(text, pattern, flags=re.M):
    if text is None:
        return None
    m = re.search(pattern, text, flags)
    return m


class Row:
    def __init__(self, area, what, target, source, value=None, shown=None, ok=None, note=""):
        self.area, self.what, self.target, self.source = area, what, target, source
        self.value, self.shown, self.ok, self.note = value, shown, ok, note


def ratio_row(area, what, source, text, pattern, op, target, fmt="{:.2f}", unit="", note=""):
    m = find(text, pattern)
    tgt = f"{op} {target:g}{unit}"
    if text is None:
        return Row(area, what, tgt, source, note=f"{source} not found")
    if not m:
        return Row(area, what, tgt, source, note=f"not found in {source}")
    v = num(m.group(1))
    ok = v >= target if op == ">=" else v <= target
    return Row(area, what, tgt, source, v, fmt.format(v) + unit, ok, note)


def checks(results, rel):
    rows = []
    pc_path = os.path.join(results, "page_cache.md")
    sh_path = os.path.join(results, "shim.md")
    fe_path = os.path.join(results, "fetch.md")
    pc, sh, fe = read(pc_path), read(sh_path), read(fe_path)
    src = rel

    # page cache (issue 2)
    rows.append(ratio_row("page cache", "RAM tier, 1 process / memcpy", src(pc_path), pc,
                          rf"^\| RAM tier, 1 process \|[^|]*\|[^|]*\| {NUM} of memcpy", ">=", 0.8))
    rows.append(ratio_row("page cache", "RAM tier, 2 processes / 1 process (aggregate)", src(pc_path), pc,
                          rf"^\| RAM tier, 2 processes[^|]*\|[^|]*\|[^|]*\| {NUM} x 1 process", ">=", 1.7,
                          fmt="{:.2f}x"))
    rows.append(ratio_row("page cache", "spill tier reads / pread (page cache warm)", src(pc_path), pc,
                          rf"^\| spill tier reads \|[^|]*\|[^|]*\| {NUM} of pread", ">=", 0.8))

    # shim (issue 4)
    rows.append(ratio_row("shim", "warm epoch through the shim / local disk, Python open().read()", src(sh_path), sh,
                          rf"^\| Python `open\(p, 'rb'\)\.read\(\)` \|[^|]*\|[^|]*\| \*\*{NUM}\*\*", ">=", 0.9))
    rows.append(ratio_row("shim", "warm epoch through the shim / local disk, C reader", src(sh_path), sh,
                          rf"^\| C reader[^|]*\|[^|]*\|[^|]*\| \*\*{NUM}\*\*", ">=", 0.9))
    rows.append(ratio_row("shim", "pass-through overhead (paths outside any mount)", src(sh_path), sh,
                          rf"^\| pass-through overhead[^|]*\|[^|]*\|[^|]*\| \*\*{NUM} %\*\*", "<=", 3,
                          fmt="{:.2f}", unit=" %"))

    # fetcher (issue 5)
    rows.append(ratio_row("fetcher", "cold epoch flatness over W (slowest / fastest median)", src(fe_path), fe,
                          rf"Flatness \([^)]*\): \*\*{NUM}\*\*", "<=", 1.15))
    a = section(fe, r"^### a\. ")
    link = []
    if a:
        for m in re.finditer(rf"^\| (\d+) \| {NUM} \|[^|]*\|[^|]*\| \*\*{NUM}\*\* \|", a, re.M):
            link.append((int(m.group(1)), num(m.group(3))))
    if link:
        for w, v in link:
            rows.append(Row("fetcher", f"link limit / measured cold epoch, {w} reader{'s' if w > 1 else ''}", ">= 0.8",
                            src(fe_path), v, f"{v:.2f}", v >= 0.8))
    else:
        rows.append(Row("fetcher", "link limit / measured cold epoch", ">= 0.8", src(fe_path),
                        note=f"not found in {src(fe_path)}" if fe else f"{src(fe_path)} not found"))
    b = section(fe, r"^### b\. ")
    m = find(b, rf"^\| (\d+) \| {NUM} \|[^|]*\|[^|]*\| {NUM} \| \*\*{NUM}\*\* \|")
    if m:
        v = num(m.group(4))
        rows.append(Row("fetcher", f"boto3 / objcache cold epoch, {m.group(1)} readers", ">= 4", src(fe_path), v,
                        f"{v:.1f}x", v >= 4 and int(m.group(1)) == 2,
                        "" if int(m.group(1)) == 2 else "measured at a different reader count than the target's 2"))
    else:
        rows.append(Row("fetcher", "boto3 / objcache cold epoch, 2 readers", ">= 4", src(fe_path),
                        note=f"not found in {src(fe_path)}"))
    m1 = find(fe, r"epoch 1 (\d+)\.\.(\d+) \(expected (\d+)")
    m2 = find(fe, r"warm epoch (\d+)\.\.(\d+) \(expected 0")
    if m1:
        lo, hi, exp = int(m1.group(1)), int(m1.group(2)), int(m1.group(3))
        rows.append(Row("fetcher", "data GETs in a cold epoch (every run and W)", f"= objects ({exp})", src(fe_path),
                        hi, f"{lo}..{hi}", lo == hi == exp))
    else:
        rows.append(Row("fetcher", "data GETs in a cold epoch", "= objects", src(fe_path),
                        note=f"not found in {src(fe_path)}"))
    if m2:
        lo, hi = int(m2.group(1)), int(m2.group(2))
        rows.append(Row("fetcher", "data GETs in the warm epoch (every run and W)", "= 0", src(fe_path), hi,
                        f"{lo}..{hi}", lo == hi == 0))
    else:
        rows.append(Row("fetcher", "data GETs in the warm epoch", "= 0", src(fe_path),
                        note=f"not found in {src(fe_path)}"))
    # (c) runs objcache at several prefetch_concurrency settings; a row per setting.
    loop_rows = re.findall(r"^\| \((\w+)\) objcache (cold|warm) [^|]*prefetch_concurrency (\d+) \|", fe, re.M)
    if not loop_rows:  # a file from before the settings were added
        loop_rows = [("iii", "cold", ""), ("iv", "warm", "")]
    for numeral, kind, n in loop_rows:
        at = f", prefetch_concurrency {n}" if n else ""
        rows.append(ratio_row("fetcher", f"DataLoader loop, objcache {kind} epoch / local disk{at}", src(fe_path), fe,
                              rf"^\| \({numeral}\) objcache {kind}[^|]*\|[^|]*\|[^|]*\| \*\*{NUM}\*\*", "<=",
                              1.25 if kind == "cold" else 1.1, fmt="{:.2f}x"))
    return rows


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "unknown"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": len(os.sched_getaffinity(0)), "cpus": os.cpu_count(), "model": model, "ram": mem,
            "kernel": f"{platform.system()} {platform.release()}"}


def line_of(text, prefix):
    """The first line of text starting with prefix, without it."""
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=os.path.join(REPO, "bench", "results"))
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "REPORT.md"))
    args = ap.parse_args()
    results = os.path.abspath(args.results)
    outdir = os.path.dirname(os.path.abspath(args.out))
    rel = lambda p: os.path.relpath(p, outdir)  # noqa: E731
    now = datetime.datetime.now(datetime.timezone.utc)
    rows = checks(results, rel)
    files = {n: os.path.join(results, n) for n in ("page_cache.md", "shim.md", "fetch.md", "peers.md")}
    texts = {n: read(p) for n, p in files.items()}
    peers, fetch = texts["peers.md"], texts["fetch.md"]

    out = ["# objcache benchmark report", ""]
    out.append(f"Written by `bench/report.py` on {now:%Y-%m-%d %H:%M} UTC from the result files of `make bench` "
               f"in `{rel(results)}/`. Every number below is parsed from those files (the source column names "
               f"the file); met / MISSED is decided from the parsed value and the issue's target. The benchmarks "
               f"assert nothing: a MISSED target is a finding, not a failure of `make bench`.")
    out.append("")
    mc = machine()
    out.append(f"**Machine:** nproc {mc['nproc']} ({mc['cpus']} CPUs), {mc['model']}, {mc['ram']} RAM, "
               f"{mc['kernel']}. **Date:** {now:%Y-%m-%d}.")
    out.append("")

    # summary
    met = sum(1 for r in rows if r.ok is True)
    missed = sum(1 for r in rows if r.ok is False)
    unknown = sum(1 for r in rows if r.ok is None)
    out.append("## Targets")
    out.append("")
    out.append(f"{met} met, {missed} missed" + (f", {unknown} not found" if unknown else "") + ".")
    out.append("")
    out.append("| area | ratio | measured | target | | source |")
    out.append("|---|---|---|---|---|---|")
    for r in rows:
        if r.ok is None:
            verdict = "not found"
            shown = f"— ({r.note})"
        else:
            verdict = "met" if r.ok else "**MISSED**"
            shown = r.shown + (f" ({r.note})" if r.note else "")
        out.append(f"| {r.area} | {r.what} | {shown} | {r.target} | {verdict} | [{r.source}]({r.source}) |")
    out.append("")
    notes = []
    if texts["shim.md"] and "Noise:" in texts["shim.md"]:
        notes.append("shim.md notes its own noise: " + line_of(texts["shim.md"], "Noise:"))
    rat = section(peers, r"^### Ratios against objcache")
    head = find(rat, r"^\| method \|(.*)\|$")
    loc = find(rat, r"^\| local disk[^|]*\|(.*)\|$")
    if head and loc:
        cols = [c.strip() for c in head.group(1).split("|")]
        vals = [c.strip() for c in loc.group(1).split("|")]
        warm = [(c, num(v)) for c, v in zip(cols, vals) if c.startswith("warm") and re.fullmatch(NUM, v)]
        if warm:
            lo, hi = min(1 / v for _, v in warm), max(1 / v for _, v in warm)
            notes.append(f"Information, no target: in the peers run (results/peers.md) objcache's warm epoch took "
                         f"{lo:.1f}-{hi:.1f}x local disk's (" + ", ".join(f"{c} {1 / v:.1f}x" for c, v in warm)
                         + "). An epoch there is a new process that forks W readers and lists the folders, and is short "
                         "on local disk, so start-up in each process is inside the measurement; shim.md measures "
                         "a warm read pass on its own.")
    trees = {m.group(1) for m in (find(t, r"Tree: ([0-9a-f]{7,})") for t in texts.values()) if m}
    if len(trees) > 1:
        notes.append(f"The result files come from at least {len(trees)} different runs and trees ({', '.join(sorted(trees))}; "
                     "see *Where the numbers come from*): each is as its benchmark last wrote it.")
    if notes:
        out.extend(f"- {n}" for n in notes)
        out.append("")

    # remote
    out.append("## The remote")
    out.append("")
    cap = section(peers, r"^### The remote") if peers else None
    tbl = "\n".join(l for l in (cap or "").splitlines() if l.startswith("|"))
    fm = find(fetch, r"At concurrency (\d+) the remote served ([\d,]+) GETs/s \(the link limit is ([\d,]+)/s\)")
    out.append("nginx adding 20 ms to every request in front of s3rver (`bench/latency_remote.py`), measured in "
               "each benchmark's own run with curl's parallel mode (whole-object ranged GETs of 100 KiB).")
    out.append("")
    if tbl:
        out.append("In the peers run (`results/peers.md`):")
        out.append("")
        out.append(tbl)
        out.append("")
    else:
        out.append("The peers run's capacity table: not found in `results/peers.md`.")
        out.append("")
    if fm:
        out.append(f"In the fetcher run (`results/fetch.md`): {fm.group(2)} GETs/s at concurrency {fm.group(1)} "
                   f"(link limit {fm.group(3)}/s).")
    else:
        out.append("The fetcher run's capacity: not found in `results/fetch.md`.")
    out.append("")

    # peers
    out.append("## objcache and its peers")
    out.append("")
    if peers is None:
        out.append("`results/peers.md` not found: run `/usr/bin/python3 bench/bench_peers.py --build build "
                   "--runs 3 --out bench/results/peers.md --plots bench/results`.")
        out.append("")
    else:
        intro = section(peers, r"^## objcache and its peers")
        if intro and intro.strip():
            out.append(intro.strip().split("\n\n")[0])
            out.append("")
        for head in (r"^### The methods", r"^### Methods that failed", r"^### A\. ", r"^### B\. ",
                     r"^### Ratios against objcache", r"^### Notes"):
            body = section(peers, head)
            if body is None:
                continue
            title = re.search(head + r".*$", peers, re.M).group(0).lstrip("# ").strip()
            out.append(f"### {title}")
            out.append("")
            out.append(body.strip())
            out.append("")
        for n, cap_ in (("peers_cold.png", "Cold epoch seconds against reader processes W, per method"),
                        ("peers_warm.png", "Warm epoch seconds against reader processes W, per method"),
                        ("peers_warm_files_per_s.png", "Warm files/s per method and W (log scale)")):
            p = os.path.join(results, n)
            if os.path.exists(p):
                out.append(f"![{cap_}]({rel(p)})")
                out.append("")
                out.append(f"*{cap_}.* Reproduce: `make bench`, or the `bench_peers.py` command below.")
            else:
                out.append(f"Plot `{rel(p)}` not found.")
            out.append("")

    # per-file provenance
    out.append("## Where the numbers come from")
    out.append("")
    out.append("| file | run | reproduce |")
    out.append("|---|---|---|")
    for n, p in files.items():
        t = texts[n]
        if t is None:
            out.append(f"| {rel(p)} | not found | |")
            continue
        date = find(t, r"Date: ([\d-]+ [\d:]+ UTC)")
        tree = find(t, r"Tree: ([0-9a-f]{7,}[^;.]*)")
        repro = line_of(t, "Reproduce:")
        mtime = datetime.datetime.fromtimestamp(os.stat(p).st_mtime, datetime.timezone.utc)
        run = (f"{date.group(1)}" if date else f"no date in the file (file written {mtime:%Y-%m-%d %H:%M} UTC)")
        if tree:
            run += f", tree {tree.group(1).strip()}"
        out.append(f"| [{rel(p)}]({rel(p)}) | {run} | {repro or 'not given'} |")
    out.append("")
    mach = {n: find(texts[n], r"[Mm]achine: (.*?)(?:;|\. |\.?$)") for n in files}
    lines = [f"{n}: {m.group(1).strip()}" for n, m in mach.items() if m]
    if lines:
        out.append("Machines as the files give them: " + "; ".join(lines) + ".")
        out.append("")

    out.append("## Commands")
    out.append("")
    out.append("`make bench` runs, in this order (from the repository root, as root, after `make deps` and "
               "`make`):")
    out.append("")
    out.append("```")
    out.append("build/bench/bench_page_cache --runs 7 --out bench/results/page_cache.md")
    out.append("/usr/bin/python3 bench/bench_shim.py --build build --runs 5 --out bench/results/shim.md")
    out.append("/usr/bin/python3 bench/bench_fetch.py --build build --runs 3 --out bench/results/fetch.md")
    out.append("/usr/bin/python3 bench/bench_peers.py --build build --runs 3 --out bench/results/peers.md "
               "--plots bench/results")
    out.append("/usr/bin/python3 bench/report.py")
    out.append("```")
    out.append("")
    text = "\n".join(out) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(f"report: wrote {args.out}: {met} met, {missed} missed, {unknown} not found", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
