"""Driver for `make bench`: native CPython primitives vs ftshim, timed in C, same process.

Usage: bench.py wall N REPEATS     per-iteration ns (best of REPEATS) for every loop, and the
                                   2-thread shared-refcount contention, mortal vs immortal
       bench.py once N             each loop once (for callgrind's instruction counts)
"""
import sys
import threading

import ftbench


class Obj:
    pass


def contended_refcount_ns(obj, n, repeats):
    """Two threads doing Py_INCREF/Py_DECREF on one object at the same time: ns per pair."""
    best = None
    for _ in range(repeats):
        ftbench.reset_gate()
        times = []

        def run():
            times.append(ftbench.time("refcount", n, obj, obj, 2))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        per = max(times) / n
        best = per if best is None else min(best, per)
    return best


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    a, b = Obj(), Obj()
    if mode == "once":
        for name in ftbench.LOOPS:
            ftbench.time(name, n, a, b)
        return
    repeats = int(sys.argv[3])
    # Repeats are interleaved across loops (round r runs every loop once), so frequency changes
    # and background load hit native and ftshim loops alike; each loop keeps its best round.
    best = {}
    for _ in range(repeats):
        for name in ftbench.LOOPS:
            if name != "refcount":
                ns = ftbench.time(name, n, a, b) / n
                best[name] = min(ns, best.get(name, ns))
    for name, ns in best.items():
        print(f"{name}={ns:.3f}")
    shared = Obj()
    print(f"refcount_shared_2threads={contended_refcount_ns(shared, n, repeats):.3f}")
    immortal = Obj()
    status = ftbench.make_immortal(immortal)
    assert status == 0, status
    print(f"refcount_immortal_2threads={contended_refcount_ns(immortal, n, repeats):.3f}")


main()
