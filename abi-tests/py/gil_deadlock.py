"""A thread holds an ftshim_mutex and runs Python code (which needs the GIL / an attached thread
state) while another thread waits on that mutex. Completes only if the waiter releases the GIL
while it waits.
"""
import threading
import time

from common import gil_enabled, out, run_together

import cache
import probe

# 1. Probe: hold the mutex across a Python call, while the other thread locks it 1000 times.
p = probe.Probe()
holding = threading.Event()


def busy_python():
    holding.set()
    total = 0
    t_end = time.perf_counter() + 0.3
    while time.perf_counter() < t_end:  # pure Python: needs the GIL on GIL builds throughout
        total += sum(range(100))
    return total


def holder():
    p.hold_mutex_and_call(busy_python)


def waiter():
    holding.wait()
    p.add("mutex", 1000)
    p.add("mutex_fn", 1000)


secs = run_together(holder, waiter, timeout=60)
out("probe_n", p.n)
out("probe_seconds", f"{secs:.3f}")

# 2. The cache example: one thread computes a value under the cache's mutex (slow Python code),
#    the other asks for the same key and must wait, then get the computed value (computed once).
c = cache.Cache()
computing = threading.Event()
calls = []
got = {}


def slow():
    computing.set()
    calls.append("slow")
    busy_python()
    return "computed"


def other():
    calls.append("other")
    return "other"


def first():
    got["first"] = c.get_or_compute("k", slow)


def second():
    computing.wait()
    got["second"] = c.get_or_compute("k", other)


secs = run_together(first, second, timeout=60)
out("cache_first", got["first"])
out("cache_second", got["second"])
out("cache_calls", ",".join(calls))
out("cache_stats", "%d,%d" % c.stats())
out("cache_seconds", f"{secs:.3f}")
out("gil_enabled", gil_enabled())
