"""Threaded stress driver for the counter example (used by `make run` and the abi-tests).

Usage: python stress.py THREADS INCREMENTS [--unlocked]

Each thread calls Counter.increment(INCREMENTS) (INCREMENTS critical sections in C), all starting
together. Prints one `key=value` per line: the interpreter, the GIL state before and after the
import, the expected and observed counts and the wall time.
"""
import sys
import sysconfig
import threading
import time


def gil_enabled():
    return getattr(sys, "_is_gil_enabled", lambda: True)()


def main():
    threads, increments = int(sys.argv[1]), int(sys.argv[2])
    unlocked = "--unlocked" in sys.argv[3:]
    gil_before = gil_enabled()
    import counter

    gil_after = gil_enabled()
    c = counter.Counter()
    work = c.increment_unlocked if unlocked else c.increment
    barrier = threading.Barrier(threads)

    def run():
        barrier.wait()
        work(increments)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.perf_counter() - t0
    print(f"interpreter={sys.executable}")
    print(f"version={sys.version.split()[0]}")
    print(f"free_threaded={int(bool(sysconfig.get_config_var('Py_GIL_DISABLED')))}")
    print(f"gil_enabled_before_import={int(gil_before)}")
    print(f"gil_enabled_after_import={int(gil_after)}")
    print(f"gil_enabled_at_end={int(gil_enabled())}")
    print(f"module={counter.__file__}")
    print(f"threads={threads}")
    print(f"increments_per_thread={increments}")
    print(f"locked={int(not unlocked)}")
    print(f"expected={threads * increments}")
    print(f"observed={c.value}")
    print(f"seconds={elapsed:.6f}")


if __name__ == "__main__":
    main()
