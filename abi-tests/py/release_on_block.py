"""Critical sections are released while their thread blocks; a plain mutex is not.

Thread 1 enters a section (or locks the mutex) and calls time.sleep(SLEEP) inside it. Thread 2
waits until thread 1 is inside, then takes the same section/lock 1000 times. Prints, for each way,
whether thread 2 finished before thread 1 left (i.e. got in while thread 1 was blocked).
"""
import threading
import time

from common import gil_enabled, out, run_together

import probe

SLEEP = 0.5

WAYS = {
    # holder method, the kind thread 2 uses
    "section": ("section_and_call", "section"),
    "mutex_section": ("mutex_section_and_call", "mutex_section"),
    "mutex": ("hold_mutex_and_call", "mutex"),
}

for way, (hold, kind) in WAYS.items():
    p = probe.Probe()
    inside = threading.Event()
    done = {}

    def blocker():
        getattr(p, hold)(lambda: (inside.set(), time.sleep(SLEEP)))
        done["holder"] = time.perf_counter()

    def contender():
        inside.wait()
        p.add(kind, 1000)
        done["contender"] = time.perf_counter()

    run_together(blocker, contender, timeout=30)
    out(f"{way}.contender_first", int(done["contender"] < done["holder"]))
    out(f"{way}.n", p.n)
out("gil_enabled", gil_enabled())
