"""`make bench`'s report: a results.json (schema 3, written by abi-tests/src/bin/bench.rs) drawn as
a PNG, and written as Markdown tables into a document between the lines

    <!-- bench:begin -->
    <!-- bench:end -->

Everything outside the markers is kept as it is; everything inside comes from the results file.

Usage: report.py RESULTS_JSON PNG MARKDOWN

Run (abi-tests/src/bench.rs `render`) with the interpreter of the matplotlib venv that
scripts/setup.sh creates and records as FTSHIM_BENCH_PYTHON. The same results give the same PNG
bytes and the same Markdown: no clock, no version stamp in the image.
"""
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

SCHEMA = 3
BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"

# loop -> (short name for the figure, ftshim form, native form it is measured against)
PAIR_NAMES = {
    "cs_ftshim": ("section", "`FTSHIM_BEGIN/END_CRITICAL_SECTION`", "`Py_BEGIN/END_CRITICAL_SECTION`"),
    "cs_ftshim_fn": ("section fn", "`ftshim_critical_section_begin/end` (exported functions)", "object section"),
    "cs2_ftshim": ("section2", "`FTSHIM_BEGIN/END_CRITICAL_SECTION2`", "`Py_BEGIN/END_CRITICAL_SECTION2`"),
    "cs_mutex_ftshim": ("mutex section", "`FTSHIM_BEGIN/END_CRITICAL_SECTION_MUTEX`", "object section"),
    "mutex_ftshim": ("mutex", "`ftshim_mutex_lock/unlock` (inline)", "`PyMutex_Lock/Unlock`"),
    "mutex_ftshim_fn": ("mutex fn", "`(ftshim_mutex_lock/unlock)` (exported functions)", "`PyMutex_Lock/Unlock`"),
}
NATIVE_KINDS = (("pymutex", "PyMutex"), ("pythread", "PyThread_type_lock"))
LOOP_NAMES = {"c": "C loop", "python": "Python loop"}


class Bad(Exception):
    pass


def need(doc, *path):
    """doc[path[0]][path[1]]..., or Bad naming the missing key."""
    value = doc
    for i, key in enumerate(path):
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            raise Bad("results have no " + "/".join(str(k) for k in path[: i + 1])) from None
    return value


def dirty_text(doc):
    """results.json's "dirty" (git status of tracked files, the bench's outputs aside) as the report
    says it after the commit."""
    value = need(doc, "dirty")
    if value is not None and not isinstance(value, bool):
        raise Bad(f"results have dirty {value!r}: expected true, false or null")
    return {False: "", True: " plus uncommitted changes", None: " (uncommitted changes not known: no git)"}[value]


def number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fmt(x, spec):
    """x formatted, or an em dash when the run could not compute it (null in JSON)."""
    return format(x, spec) if number(x) else "—"


def rate(x):
    return f"{x / 1e6:.2f} M/s" if number(x) else "—"


def ratio(a, b):
    return a / b if number(a) and number(b) and b > 0 else None


# ---------------------------------------------------------------- Markdown


def table(header, rows, align):
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def versions(doc):
    return {i["label"]: i["version"] for i in need(doc, "interpreters")}


def region(doc, png_link):
    interp = need(doc, "interpreter")
    out = [
        BEGIN,
        "<!-- Written by `make bench` (abi-tests/bench/report.py, from target/bench/results.json);"
        " edit the text outside these markers. -->",
        "",
        f"Run of {need(doc, 'date')} at commit `{str(need(doc, 'commit'))[:12]}`"
        f"{dirty_text(doc)}, {need(doc, 'cpus')} CPUs;"
        f" the pairs, the shared refcount and checked mode on python{interp['label']}"
        f" {interp['version']} (`{interp['executable']}`).",
        "",
        f"![make bench: instructions per pair, contention ratios, scaling]({png_link})",
        "",
        f"Uncontended pairs: wall time best of {need(doc, 'wall', 'rounds')} interleaved rounds x"
        f" {need(doc, 'wall', 'iterations'):,} iterations, timed in C; instructions per iteration"
        f" under callgrind ({need(doc, 'callgrind_iterations'):,} iterations, inclusive).",
        "",
    ]
    rows = []
    for p in need(doc, "pairs"):
        _, shim, native = PAIR_NAMES.get(p["ftshim"], (p["ftshim"], f"`{p['ftshim']}`", f"`{p['native']}`"))
        w, i = need(p, "wall_ns"), need(p, "instructions")
        rows.append([shim, fmt(w["ftshim"], ".2f"), native, fmt(w["native"], ".2f"), fmt(w["ratio"], ".3f"),
                     fmt(i["ftshim"], ".1f"), fmt(i["native"], ".1f"), fmt(i["ratio"], ".3f")])
    out += table(["loop", "ftshim ns/op", "native", "native ns/op", "wall ratio", "instr/op ftshim",
                  "instr/op native", "instr ratio"], rows, ["---", "---:", "---", "---:", "---:", "---:", "---:", "---:"])

    out += ["", "Checked mode: instructions per pair of the function forms, `FTSHIM_CHECKED` off and on.", ""]
    rows = [[f"`{c['loop']}`", fmt(c["off"], ".1f"), fmt(c["on"], ".1f"), fmt(ratio(c["on"], c["off"]), ".1f") + "x"]
            for c in need(doc, "checked_instructions")]
    out += table(["loop", "off", "on", "on/off"], rows, ["---", "---:", "---:", "---:"])

    rc = need(doc, "refcount_2_threads_ns")
    out += ["", "Two threads doing `Py_INCREF`/`Py_DECREF` on one shared object at once:"
            f" {fmt(rc['mortal'], '.2f')} ns per pair on an ordinary object,"
            f" {fmt(rc['immortal'], '.2f')} ns after `ftshim_object_set_immortal`"
            f" ({fmt(ratio(rc['mortal'], rc['immortal']), '.1f')}x cheaper).", ""]

    win = need(doc, "contention_window")
    out += [f"Contention: {win['threads']} OS threads, one lock, one shared increment inside,"
            f" {win['seconds']} s x best of {win['rounds']} (lock/unlock pairs per second;"
            " fairness = most/fewest pairs per thread; ratio = ftshim / native, above 1 is ftshim faster).", ""]
    vers = versions(doc)
    rows = []
    for c in need(doc, "contention"):
        label = c["interpreter"]
        row = [label, vers.get(label, "—"), rate(c["ftshim"]["pairs_per_s"]), fmt(c["ftshim"]["fairness"], ".2f")]
        for kind, _ in NATIVE_KINDS:
            k = c.get(kind)
            row += [rate(k["pairs_per_s"]), fmt(k["fairness"], ".2f"), fmt(k["ftshim_ratio"], ".3f")] if k else ["—"] * 3
        rows.append(row)
    out += table(["interpreter", "version", "ftshim_mutex", "fairness", "PyMutex", "fairness", "ratio",
                  "PyThread lock", "fairness", "ratio"], rows,
                 ["---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"])

    sc = need(doc, "scaling")
    out += ["", f"Scaling: {sc['workload']}; each configuration a {sc['window_s']} s window (the threads start"
            f" at a gate, the window is timed in C), best of {sc['rounds']} interleaved rounds. Ratio = calls/s"
            " at 2 threads / at 1 thread (the limit is 2.0 with 2 or more CPUs); per thread = fewest and most"
            " calls made by one thread; cpu = the CPU time the threads used / (threads x window), 1.00 when"
            " every thread ran for the whole window; switches = context switches in the window, voluntary (a"
            " thread waited: the mutex, the GIL) / involuntary (another process took the CPU). The control runs"
            " the C loop on a cache of its own in 1 and in 2 separate processes over one window: the same code"
            " sharing nothing, not even the interpreter, so its ratio is what this machine allowed at the time.",
            ""]
    rows = []

    def row(r, loop, name, x, ratio_value):
        rows.append([f"{r['interpreter']} ({r['version']})", loop, name, rate(x["calls_per_s"]),
                     fmt(ratio_value, ".2f") if ratio_value != "" else "",
                     f"{x['min_thread_calls']:,} / {x['max_thread_calls']:,}", fmt(x["cpu_share"], ".2f"),
                     f"{x['voluntary_switches']:,} / {x['involuntary_switches']:,}"])

    for r in need(sc, "results"):
        for loop, v in need(r, "loops").items():
            name = LOOP_NAMES.get(loop, loop)
            row(r, name, "1 thread", need(v, "threads_1"), "")
            row(r, name, "2 threads, distinct caches", need(v, "threads_2_distinct"), v["ratio_distinct"])
            row(r, name, "2 threads, one shared cache", need(v, "threads_2_shared"), v["ratio_shared"])
        c = need(r, "control")
        row(r, "control: C loop", "1 process", need(c, "threads_1"), "")
        row(r, "control: C loop", "2 processes", need(c, "threads_2"), c["ratio"])
    out += table(["interpreter", "loop", "run by", "calls/s", "ratio", "per thread", "cpu", "switches"],
                 rows, ["---", "---", "---", "---:", "---:", "---:", "---:", "---:"])
    load = [f"{fmt(r['other_processes_cpus'], '.2f')} during the {r['interpreter']} run" for r in need(sc, "results")]
    out += ["", "CPUs other processes kept busy on average (/proc/stat less the bench's own CPU time): "
            + ", ".join(load) + "; more than a few hundredths means the windows competed with them."]
    limit = min(need(doc, "cpus"), 2)
    over = [f"{r['interpreter']} {LOOP_NAMES.get(loop, loop)}" for r in sc["results"] for loop, v in r["loops"].items()
            if any(number(v[k]) and v[k] > limit * 1.01 for k in ("ratio_distinct", "ratio_shared"))]
    if over:
        out += ["", f"Above the {limit}.0 limit ({', '.join(over)}): something else slowed the 1-thread windows"
                " of this run."]
    out += [""]

    out += ["The performance issue's goals in this run:", ""]
    out += table(["goal", "this run", "verdict"], [[g, v, "met" if ok else "NOT met"] for g, v, ok in goals(doc)],
                 ["---", "---:", "---"])
    out += [""]

    cli = need(doc, "cli")
    chk, aud = need(cli, "check_one_file_ms"), need(cli, "audit_20_wheels_ms")
    out += ["The `ftshim` command (describe cache warm):", ""]
    out += table(["what", "median", "best", "runs", "bar"], [
        ["warm `check` of one file", f"{chk['median']:.1f} ms", f"{chk['best']:.1f} ms", str(chk["runs"]), "50 ms"],
        [f"`audit` of {aud['wheels']} wheels ({aud['bytes'] / 1e6:.1f} MB)", f"{aud['median']:.0f} ms",
         f"{aud['best']:.0f} ms", str(aud["runs"]), "2 s"],
    ], ["---", "---:", "---:", "---:", "---:"])
    out += ["", END]
    return "\n".join(out)


def goals(doc):
    """The performance issue's goals, each (what, this run's figure, met?), from the run's numbers."""
    out = []
    pairs = {p["ftshim"]: p for p in need(doc, "pairs")}
    for loop, what, most in [("cs_ftshim_fn", "section function pair, instructions vs the macro", 1.15),
                             ("mutex_ftshim_fn", "mutex function pair, instructions vs the inline CAS pair", 2.0)]:
        x = pairs.get(loop, {}).get("instructions", {}).get("ratio")
        out.append((f"{what} <= {most}x", fmt(x, ".3f") + "x", number(x) and x <= most))
    cont = {c["interpreter"]: c for c in need(doc, "contention")}
    for label, kind, least in [("3.13t", "pymutex", 0.95), ("3.11", "pythread", 1.0), ("3.12", "pythread", 1.0)]:
        x = cont.get(label, {}).get(kind, {}).get("ftshim_ratio")
        native = "PyMutex" if kind == "pymutex" else "PyThread_type_lock"
        out.append((f"contended ftshim_mutex on {label} >= {least}x {native}", fmt(x, ".3f") + "x",
                    number(x) and x >= least))
    sc = need(doc, "scaling")
    goal = need(sc, "goal")
    for r in need(sc, "results"):
        if r["interpreter"] == goal["interpreter"]:
            for loop, v in r["loops"].items():
                x = v["ratio_distinct"]
                out.append((f"{goal['interpreter']} {LOOP_NAMES.get(loop, loop)}: 2 threads on distinct caches"
                            f" >= {goal['ratio']}x 1 thread", fmt(x, ".2f") + "x", number(x) and x >= goal["ratio"]))
    return out


def split(markdown):
    """The document's lines before the BEGIN line and after the END line; Bad unless it has one
    of each, in that order."""
    with open(markdown, encoding="utf-8") as f:
        lines = f.read().split("\n")
    begins = [i for i, l in enumerate(lines) if l.strip() == BEGIN]
    ends = [i for i, l in enumerate(lines) if l.strip() == END]
    if len(begins) != 1 or len(ends) != 1 or begins[0] > ends[0]:
        raise Bad(f"{markdown}: expected one line {BEGIN} before one line {END}, found"
                  f" {len(begins)} and {len(ends)}")
    return lines[: begins[0]], lines[ends[0] + 1:]


# ---------------------------------------------------------------- figure

FT, NATIVE, DISTINCT, SHARED = "#1f77b4", "#aaaaaa", "#2ca02c", "#d62728"
VS_PYMUTEX, VS_PYTHREAD = "#9467bd", "#ff7f0e"


def bar_labels(ax, bars, spec):
    for b in bars:
        h = b.get_height()
        if number(h) and h > 0:
            ax.annotate(format(h, spec), (b.get_x() + b.get_width() / 2, h), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7)


def figure(doc, png):
    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10})
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 4.6), dpi=100, gridspec_kw={"width_ratios": [5, 5, 6]})
    width = 0.38

    pairs = need(doc, "pairs")
    xs = range(len(pairs))
    shim = [p["instructions"]["ftshim"] for p in pairs]
    native = [p["instructions"]["native"] for p in pairs]
    bar_labels(a1, a1.bar([x - width / 2 for x in xs], shim, width, color=FT, label="ftshim"), ".1f")
    bar_labels(a1, a1.bar([x + width / 2 for x in xs], native, width, color=NATIVE, label="native CPython"), ".1f")
    a1.set_xticks(list(xs), [PAIR_NAMES.get(p["ftshim"], (p["ftshim"],))[0] for p in pairs], rotation=20)
    a1.set_ylabel("instructions per pair (callgrind)")
    a1.set_title(f"Uncontended pairs on python{doc['interpreter']['label']}")
    a1.set_ylim(0, 1.3 * max([1.0] + [v for v in shim + native if number(v)]))
    a1.legend(loc="upper center", ncol=2, frameon=False)

    cont = need(doc, "contention")
    xs = range(len(cont))
    for j, ((kind, name), color) in enumerate(zip(NATIVE_KINDS, (VS_PYMUTEX, VS_PYTHREAD))):
        vals = [c[kind]["ftshim_ratio"] if c.get(kind) and number(c[kind]["ftshim_ratio"]) else 0 for c in cont]
        offset = (j - 0.5) * width
        bar_labels(a2, a2.bar([x + offset for x in xs], vals, width, color=color, label=f"vs {name}"), ".2f")
    a2.axhline(1.0, color="black", linewidth=0.8)
    a2.set_xticks(list(xs), [c["interpreter"] for c in cont])
    a2.set_ylabel("ftshim_mutex pairs/s ÷ native (2 threads, log scale)")
    a2.set_title("Contended lock, 2 threads (above 1: ftshim faster)")
    ratios = [c[k]["ftshim_ratio"] for c in cont for k, _ in NATIVE_KINDS
              if c.get(k) and number(c[k]["ftshim_ratio"]) and c[k]["ftshim_ratio"] > 0]
    a2.set_yscale("log")
    a2.set_ylim(min([0.5] + [0.7 * r for r in ratios]), max([2.0] + [3.0 * r for r in ratios]))
    a2.legend(loc="upper center", ncol=2, frameon=False)

    sc = need(doc, "scaling")
    # Per interpreter: each loop's pair of bars (distinct, shared), then the control's bar.
    ticks, names, dist, shar, ctrl = [], [], [], [], []
    for r in need(sc, "results"):
        for loop, v in need(r, "loops").items():
            ticks.append(len(ticks))
            names.append(f"{r['interpreter']}\n{LOOP_NAMES.get(loop, loop)}")
            dist.append((ticks[-1], v["ratio_distinct"] if number(v["ratio_distinct"]) else 0))
            shar.append((ticks[-1], v["ratio_shared"] if number(v["ratio_shared"]) else 0))
        ticks.append(len(ticks))
        names.append(f"{r['interpreter']}\ncontrol")
        ratio_value = need(r, "control", "ratio")
        ctrl.append((ticks[-1], ratio_value if number(ratio_value) else 0))
    for bars, offset, color, label in ((dist, -width / 2, DISTINCT, "threads, distinct caches"),
                                       (shar, width / 2, SHARED, "threads, one shared cache"),
                                       (ctrl, 0, NATIVE, "control: 2 processes")):
        bar_labels(a3, a3.bar([x + offset for x, _ in bars], [v for _, v in bars], width, color=color,
                              label=label), ".2f")
    limit = need(doc, "cpus")
    a3.axhline(1.0, color="black", linewidth=0.8)
    a3.axhline(min(limit, 2), color="black", linewidth=0.8, linestyle=":", label=f"limit on {limit} CPUs")
    a3.axhline(sc["goal"]["ratio"], color=DISTINCT, linewidth=0.8, linestyle="--",
               label=f"goal {sc['goal']['ratio']}x ({sc['goal']['interpreter']}, distinct)")
    a3.set_ylim(0, max([2.8] + [1.3 * v for _, v in dist + shar + ctrl]))
    a3.set_xticks(ticks, names, fontsize=7)
    a3.set_ylabel("calls/s, 2 threads ÷ 1 thread")
    a3.set_title("Scaling: extensions/cache, 1 → 2 threads")
    a3.legend(loc="upper center", ncol=2, frameon=False, fontsize=7)

    fig.tight_layout()
    fig.savefig(png, dpi=100, metadata={"Software": None})
    plt.close(fig)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: report.py RESULTS_JSON PNG MARKDOWN")
    results, png, markdown = sys.argv[1:]
    with open(results, encoding="utf-8") as f:
        doc = json.load(f)
    try:
        if doc.get("schema") != SCHEMA:
            raise Bad(f"{results} has schema {doc.get('schema')!r}, this report reads schema {SCHEMA}")
        before, after = split(markdown)
        link = os.path.relpath(os.path.abspath(png), os.path.dirname(os.path.abspath(markdown)))
        text = region(doc, link)
        figure(doc, png)
        with open(markdown, "w", encoding="utf-8") as f:
            f.write("\n".join(before + [text] + after))
    except Bad as e:
        sys.exit(f"report.py: {e}")
    for what, value, ok in goals(doc):
        print(f"goal: {what}: {value} ({'met' if ok else 'NOT met'})")
    print(f"figure={png}")
    print(f"markdown={markdown}")


main()
