"""Shared helpers for the abi-tests drivers: run functions on threads that start together."""
import sys
import threading
import time


def gil_enabled():
    return int(getattr(sys, "_is_gil_enabled", lambda: True)())


def run_together(*targets, timeout=120.0):
    """Runs each callable on its own thread, all released by one barrier; returns the elapsed
    seconds. A thread still alive after `timeout` is reported as a deadlock and the process
    exits with status 3 (the caller's own timeout is the second line of defence)."""
    barrier = threading.Barrier(len(targets))
    errors = []

    def wrap(fn):
        def run():
            barrier.wait()
            try:
                fn()
            except BaseException as e:  # reported below, never swallowed
                errors.append(repr(e))
        return run

    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, timeout - (time.perf_counter() - t0)))
    elapsed = time.perf_counter() - t0
    if any(t.is_alive() for t in threads):
        print(f"deadlock=1 after {elapsed:.1f}s", flush=True)
        sys.stdout.flush()
        import os
        os._exit(3)
    if errors:
        raise RuntimeError("worker failed: " + "; ".join(errors))
    return elapsed


def out(key, value):
    print(f"{key}={value}", flush=True)
