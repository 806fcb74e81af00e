"""Driver for `make bench`'s scaling figure: the cache extension (extensions/cache) at 1 and 2
threads, each thread on its own Cache ("distinct") or all on one ("shared").

Usage: scaling.py SECONDS ROUNDS
       scaling.py solo START_NS END_NS     (the control's child process, below)

The operation is a cache hit, `Cache.get(key)`, cycling over KEYS keys (small ints: immortal, so
the keys add no reference-count traffic); the values are strings made by the thread that fills the
cache (each worker its own for "distinct", the main thread for "shared"). Two loops call it:

  c        scalebench.calls: the same vectorcall the interpreter makes, from a C loop
  python   `for k in keys: get(k)` in Python (what a user's code pays on top)

Every worker gets its own bound method and key tuple; all wait at scalebench's gate and run
until scalebench.window closes it, so the threads overlap for the whole window, which is timed
in C. Each worker also measures what its thread used in the window: CPU time (summed over the
threads and divided by threads x window: the CPU share, 1.0 when every thread ran for the whole
window) and context switches, voluntary (it waited: parked on the cache's mutex, or for the GIL)
and involuntary (another process took its CPU).

The control ("control", layout "processes") runs the C loop on a cache of its own in 1 and in 2
separate processes (`solo`), over one window given as two CLOCK_MONOTONIC instants: the same
code with nothing shared, not even the interpreter, which shows how far this code can scale on
this machine at the time of the run.

Rounds are interleaved (every configuration once per round); each keeps its best round. Prints
one line per loop and configuration:

  <loop>.<threads>.<layout>=<calls/s>,<fewest calls by a thread>,<most>,<CPU share>,<voluntary>,<involuntary>
"""
import subprocess
import sys
import threading
import time

import cache
import scalebench

KEYS = 64
LOOPS = ("c", "python")
CONFIGS = ((1, "distinct"), (2, "distinct"), (2, "shared"))
CONTROL = ((1, "processes"), (2, "processes"))
# How long before its window a control child is started, and how late it may start the window.
CONTROL_LEAD_NS = 500_000_000
CONTROL_LATE_NS = 20_000_000


def filled_cache():
    c = cache.Cache()
    for k in range(KEYS):
        c.set(k, f"value-{k}")
    return c


def worker(loop, shared, out, i):
    c = filled_cache() if shared is None else shared
    get = c.get
    keys = tuple(range(KEYS))
    if loop == "c":
        out[i] = scalebench.calls(get, keys)
        return
    stopped, usage = scalebench.stopped, scalebench.thread_usage
    n = 0
    scalebench.arrive()
    before = usage()
    while not stopped():
        for k in keys:
            get(k)
        n += KEYS
    out[i] = (n,) + tuple(b - a for a, b in zip(before, usage()))


def summary(out, threads, ns):
    """(calls/s, fewest calls by one thread, most, CPU share, voluntary, involuntary switches)."""
    calls = [o[0] for o in out]
    share = sum(o[1] for o in out) / (threads * ns)
    return sum(calls) / (ns / 1e9), min(calls), max(calls), share, sum(o[2] for o in out), sum(o[3] for o in out)


def run(loop, threads, layout, seconds):
    shared = filled_cache() if layout == "shared" else None
    out = [(0, 0, 0, 0)] * threads
    scalebench.arm(threads)
    workers = [threading.Thread(target=worker, args=(loop, shared, out, i)) for i in range(threads)]
    for t in workers:
        t.start()
    ns = scalebench.window(threads, seconds)
    for t in workers:
        t.join()
    return summary(out, threads, ns)


def control(processes, seconds):
    start = time.monotonic_ns() + CONTROL_LEAD_NS
    end = start + int(seconds * 1e9)
    children = [subprocess.Popen([sys.executable, __file__, "solo", str(start), str(end)],
                                 stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    out = []
    for child in children:
        stdout, _ = child.communicate()
        if child.returncode != 0:
            sys.exit(f"scaling.py solo exited {child.returncode}")
        *usage, late = (int(x) for x in stdout.split(","))
        if late > CONTROL_LATE_NS:
            sys.exit(f"a control process started its window {late / 1e6:.1f} ms late (machine overloaded?)")
        out.append(tuple(usage))
    return summary(out, processes, end - start)


def solo(start, end):
    get = filled_cache().get
    print(",".join(str(x) for x in scalebench.calls_between(get, tuple(range(KEYS)), start, end)))


def main():
    if sys.argv[1] == "solo":
        solo(int(sys.argv[2]), int(sys.argv[3]))
        return
    seconds, rounds = float(sys.argv[1]), int(sys.argv[2])
    best = {}
    for _ in range(rounds):
        for loop in LOOPS:
            for threads, layout in CONFIGS:
                best_of(best, f"{loop}.{threads}.{layout}", run(loop, threads, layout, seconds))
        for processes, layout in CONTROL:
            best_of(best, f"control.{processes}.{layout}", control(processes, seconds))
    for key, (rate, lo, hi, share, voluntary, involuntary) in best.items():
        print(f"{key}={rate:.1f},{lo},{hi},{share:.3f},{voluntary},{involuntary}")


def best_of(best, key, result):
    if key not in best or result[0] > best[key][0]:
        best[key] = result


main()
