# SPDX-License-Identifier: Apache-2.0
"""Writes bench/REPORT.md from the result files `make bench` wrote:
bench/results/<bench>.json (the figures, keyed by target id) beside each
benchmark's Markdown, and the peers plots.

  /usr/bin/python3 bench/report.py [--results bench/results] [--out bench/REPORT.md]

Every target in bench/targets.py gets exactly one verdict, at the settings
the target names: met, MISSED, or not measured (its result file is missing
or unreadable, the figure is absent or not a number, or it was measured at
other settings). The same figure at other settings is shown beside it as
information, never judged. Nothing is guessed or parsed out of prose; the
peers' Markdown sections are quoted as they are. The machine (nproc, CPU
model, RAM, kernel) is the one report.py runs on; each file's own machine,
date and tree are quoted as they are.
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import targets  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MET, MISSED, NOT_MEASURED = "met", "**MISSED**", "not measured"


def load(results, bench):
    """(the json document of results/<bench>.json, None) or (None, why not)."""
    path = os.path.join(results, f"{bench}.json")
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None, "not found"
    except (OSError, ValueError) as e:
        return None, f"unreadable ({type(e).__name__}: {str(e)[:120]})"
    if not isinstance(doc, dict) or not isinstance(doc.get("figures", {}), dict):
        return None, "unreadable (not a result file: no figures object)"
    return doc, None


class Verdict:
    def __init__(self, target, status, shown="", why="", others="", note="", remote="—"):
        self.target, self.status, self.shown, self.why = target, status, shown, why
        self.others, self.note, self.remote = others, note, remote


def judge(t, doc, why, src):
    """The one verdict of target t from its benchmark's document."""
    if doc is None:
        return Verdict(t, NOT_MEASURED, why=f"`{src}` {why}")
    fig = doc["figures"].get(t.id)
    if not isinstance(fig, dict):
        return Verdict(t, NOT_MEASURED, why=f"no figure `{t.id}` in `{src}`")
    v = fig.get("value")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        return Verdict(t, NOT_MEASURED, why=f"figure `{t.id}` in `{src}` is not a number ({v!r})")
    at = fig.get("at") if isinstance(fig.get("at"), dict) else {}
    off = [k for k, want in t.at.items() if at.get(k) != want]
    if off:
        return Verdict(t, NOT_MEASURED, shown=str(fig.get("shown", v)),
                       why="measured at " + ", ".join(f"{k} {at.get(k, 'unstated')}" for k in off)
                           + f", not at the target's {', '.join(f'{k} {t.at[k]}' for k in off)}")
    others = "; ".join(f"{o.get('at')}: {o.get('shown')}" for o in fig.get("others", []) if isinstance(o, dict))
    remote = "—"
    if t.through_remote():
        rm = doc.get("remote") if isinstance(doc.get("remote"), dict) else {}
        remote = "checked" if rm.get("if_match_checked") is True else "**not checked**"
    return Verdict(t, MET if t.met(v) else MISSED, shown=str(fig.get("shown", f"{v:g}")), others=others,
                   note=str(fig.get("note", "")), remote=remote)


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
    return (f"nproc {len(os.sched_getaffinity(0))} ({os.cpu_count()} CPUs), {model}, {mem} RAM, "
            f"{platform.system()} {platform.release()}")


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


def bench_commands():
    """The benchmark commands of the Makefile's `bench:` recipe, in order."""
    text = read(os.path.join(REPO, "Makefile")) or ""
    m = re.search(r"^bench:.*\n((?:\t.*\n)+)", text, re.M)
    if not m:
        return []
    return [line.strip().replace("$(BUILD)", "build") for line in m.group(1).splitlines()
            if line.strip() and not line.strip().startswith("@")]


def peers_section(out, results, doc, rel):
    out.append("## objcache and its peers")
    out.append("")
    md_name = (doc or {}).get("markdown") or "peers.md"
    md_path = os.path.join(results, md_name)
    peers = read(md_path)
    if peers is None:
        out.append(f"`{rel(md_path)}` not found: run `/usr/bin/python3 bench/bench_peers.py --build build --runs 3 "
                   "--out bench/results/peers.md --plots bench/results`.")
        out.append("")
        return
    intro = section(peers, r"^## objcache and its peers")
    if intro and intro.strip():
        out.append(intro.strip().split("\n\n")[0])
        out.append("")
    for head in (r"^### The methods", r"^### Methods that failed", r"^### A\. ", r"^### B\. ",
                 r"^### Ratios against objcache", r"^### Notes", r"^### The remote"):
        body = section(peers, head)
        if body is None:
            continue
        title = re.search(head + r".*$", peers, re.M).group(0).lstrip("# ").strip()
        out += [f"### {title}", "", body.strip(), ""]
    for n, cap in (("peers_cold.png", "Cold epoch seconds against reader processes W, per method"),
                   ("peers_warm.png", "Warm epoch seconds against reader processes W, per method"),
                   ("peers_warm_files_per_s.png", "Warm files/s per method and W (log scale)")):
        p = os.path.join(results, n)
        if os.path.exists(p):
            out += [f"![{cap}]({rel(p)})", "", f"*{cap}.* Reproduce: `make bench`, or the `bench_peers.py` command "
                    "below."]
        else:
            out.append(f"Plot `{rel(p)}` not found.")
        out.append("")


def scale_section(out, results, doc, rel):
    """The growth plot of bench_scale.py (issue 15), when it wrote one."""
    name = (((doc or {}).get("information") or {}).get("plot")) or "scale_growth.png"
    p = os.path.join(results, name)
    if not os.path.exists(p):
        return
    cap = "ImageFolder seconds and metadata bytes per object against objects, with straight lines to 1.28M"
    out += ["## At scale", "", f"![{cap}]({rel(p)})", "",
            f"*{cap}.* From results/scale.md (its tables and the extrapolation are there). Reproduce: `make bench`, "
            "or the `bench_scale.py` command below.", ""]


def information(docs):
    """Lines of information (no verdict) drawn from the result files."""
    notes = []
    peers = docs.get("peers")
    es = ((peers or {}).get("information") or {}).get("epoch_s") or {}
    loc, obj = (es.get("local") or {}).get("warm") or {}, (es.get("objcache") or {}).get("warm") or {}
    ws = [w for w in sorted(obj, key=int) if w in loc and loc[w]]
    if ws:
        r = {w: obj[w] / loc[w] for w in ws}
        notes.append(f"Information, no target: in the peers run (results/peers.md) objcache's warm epoch took "
                     f"{min(r.values()):.1f}-{max(r.values()):.1f}x local disk's ("
                     + ", ".join(f"warm W={w} {r[w]:.1f}x" for w in ws) + "). An epoch there is a new process that "
                     "forks W readers and lists the folders, and is short on local disk, so start-up in each "
                     "process is inside the measurement; shim.md measures a warm read pass on its own.")
    scale = ((docs.get("scale") or {}).get("information") or {})
    cold = scale.get("cold") or {}
    if isinstance(cold, dict) and cold:
        try:
            rows = sorted(cold.items(), key=lambda kv: int(kv[0]))
            ex = (scale.get("extrapolation") or {}).get("cold") or {}
            notes.append("Information, no target (issue 15, results/scale.md): a cold ImageFolder scan through the "
                         f"{targets.LATENCY_MS} ms remote at the defaults, against the ideal pages x "
                         f"{targets.LATENCY_MS} ms / list_concurrency {targets.DEFAULT_LIST_CONCURRENCY}: "
                         + ", ".join(f"{int(n):,} objects {c['s']:.2f} s, {c['lists']:.0f} LISTs (ideal "
                                     f"{c['ideal_s']:.2f} s)" for n, c in rows)
                         + (f"; a straight line through them reads {ex['at_imagenet']:.1f} s at ImageNet's 1.28M"
                            if "at_imagenet" in ex else "") + ".")
        except (KeyError, TypeError, ValueError):
            pass
    trees = {d.get("tree") for d in docs.values() if d and d.get("tree")}
    if len(trees) > 1:
        notes.append(f"The result files come from {len(trees)} different trees ({', '.join(sorted(trees))}; see "
                     "*Where the numbers come from*): each is as its benchmark last wrote it.")
    return notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=os.path.join(REPO, "bench", "results"))
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "REPORT.md"))
    args = ap.parse_args()
    results = os.path.abspath(args.results)
    outdir = os.path.dirname(os.path.abspath(args.out))
    rel = lambda p: os.path.relpath(p, outdir)  # noqa: E731
    now = datetime.datetime.now(datetime.timezone.utc)
    loaded = {b: load(results, b) for b in targets.BENCHES}
    docs = {b: d for b, (d, _) in loaded.items()}
    src = {b: rel(os.path.join(results, f"{b}.json")) for b in targets.BENCHES}
    verdicts = [judge(t, *loaded[t.bench], src[t.bench]) for t in targets.TARGETS]
    count = {s: sum(1 for v in verdicts if v.status == s) for s in (MET, MISSED, NOT_MEASURED)}

    out = ["# objcache benchmark report", ""]
    out.append(f"Written by `bench/report.py` on {now:%Y-%m-%d %H:%M} UTC from the result files in `{rel(results)}/`. "
               f"Each target of `bench/targets.py` has exactly one verdict, at the settings it names (*judged at*): "
               f"met, MISSED, or not measured when its figure is missing, unreadable or measured at other settings. "
               f"The same figure at other settings is shown as information, not judged. The benchmarks assert "
               f"nothing: a MISSED target is a finding, not a failure of `make bench`.")
    out.append("")
    out.append(f"**Machine:** {machine()}. **Date:** {now:%Y-%m-%d}.")
    out.append("")
    out.append("## Targets")
    out.append("")
    out.append(f"{len(verdicts)} targets: {count[MET]} met, {count[MISSED]} missed, {count[NOT_MEASURED]} not measured.")
    out.append("")
    out.append("| issue | area | figure | judged at | measured | target | verdict | other settings (information) "
               "| remote If-Match | source |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for v in verdicts:
        t = v.target
        shown = v.shown if v.status != NOT_MEASURED else (f"— ({v.why})" if not v.shown else f"{v.shown} ({v.why})")
        s = src[t.bench]
        out.append(f"| {t.issue} | {t.area} | {t.what} | {t.at_text() or '—'} | {shown} | {t.threshold_text()} | "
                   f"{v.status} | {v.others or '—'} | {v.remote} | [{s}]({s}) |")
    out.append("")
    out.append("*remote If-Match*: whether the 20 ms remote the figure was measured through was checked, in that run, "
               "to answer If-Match as S3 does (412 for another ETag); — for a figure not measured through it.")
    out.append("")
    notes = [f"{v.target.id}: {v.note}." for v in verdicts if v.note]
    known = set(targets.BY_ID)
    for b, d in docs.items():
        for fid in sorted(set((d or {}).get("figures", {})) - known):
            notes.append(f"`{src[b]}` has a figure `{fid}` that no target in `bench/targets.py` names (not judged).")
    notes += information(docs)
    if notes:
        out += [f"- {n}" for n in notes] + [""]

    out.append("## The remote")
    out.append("")
    out.append("nginx adding 20 ms to every request in front of s3rver (`bench/latency_remote.py`), checked and "
               "measured in each benchmark's own run with curl's parallel mode (whole-object ranged GETs with "
               "If-Match).")
    out.append("")
    remotes = [(b, d["remote"]) for b, d in docs.items() if d and isinstance(d.get("remote"), dict)]
    if remotes:
        out.append(f"| run | one GET ms | GETs/s at {targets.DEFAULT_CONCURRENCY} in flight | GETs/s without the "
                   "delay | If-Match honoured |")
        out.append("|---|---|---|---|---|")
    else:
        out.append("No result file found that was measured through it.")
    for b, rm in remotes:
        cap = rm.get("capacity") or []
        at = [r for r in cap if r.get("where") == "with latency" and r.get("concurrency") == targets.DEFAULT_CONCURRENCY]
        raw = [r for r in cap if r.get("where") == "without latency"]
        lat = rm.get("latency_ms") or targets.LATENCY_MS
        cells = [f"[{src[b]}]({src[b]})", f"{rm.get('one_get_ms', float('nan')):.1f}",
                 f"{at[0]['gets_per_s']:,.0f} (link limit {targets.DEFAULT_CONCURRENCY / (lat / 1e3):,.0f})"
                 if at else "—",
                 f"{raw[0]['gets_per_s']:,.0f} at {raw[0]['concurrency']} in flight" if raw else "—",
                 "yes, checked in the run" if rm.get("if_match_checked") is True else "**not checked**"]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")

    peers_section(out, results, docs.get("peers"), rel)
    scale_section(out, results, docs.get("scale"), rel)

    out.append("## Where the numbers come from")
    out.append("")
    out.append("| result file | Markdown | run | runs | machine | reproduce |")
    out.append("|---|---|---|---|---|---|")
    for b, (d, why) in loaded.items():
        if d is None:
            out.append(f"| {src[b]} | | {why} (written by `{targets.BENCHES[b]}`) | | | |")
            continue
        md = d.get("markdown")
        md_cell = f"[{rel(os.path.join(results, md))}]({rel(os.path.join(results, md))})" if md else ""
        run = f"{d.get('date', 'no date')}" + (f", tree {d['tree']}" if d.get("tree") else "")
        out.append(f"| [{src[b]}]({src[b]}) | {md_cell} | {run} | {d.get('runs', '?')} | {d.get('machine', '?')} | "
                   f"`{d.get('command', '?')}` |")
    out.append("")
    out.append("## Commands")
    out.append("")
    out.append("`make bench` runs, in this order (from the repository root, as root, after `make deps` and `make`):")
    out.append("")
    out += ["```"] + (bench_commands() or ["(no bench: target found in the Makefile)"]) + ["```", ""]
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"report: wrote {args.out}: {len(verdicts)} targets, {count[MET]} met, {count[MISSED]} missed, "
          f"{count[NOT_MEASURED]} not measured", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
