"""Critical sections are released while their thread blocks; a plain mutex is not.

Thread 1 enters a section (or locks the mutex) and calls time.sleep(SLEEP) inside it. Thread 2
waits until thread 1 is inside, then takes the same section/lock 1000 times. Prints, for each way,
whether thread 2 finished before thread 1's last moment inside (i.e. got in while thread 1 was
blocked). That moment is read inside the section/lock, after the sleep: read after thread 1 left,
it could come after thread 2's 1000 turns although thread 2 waited for the unlock (a holder
preempted right after its unlock: seen once on 3.13t, in a fresh-clone .ci/run).
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

    def held():
        inside.set()
        time.sleep(SLEEP)
        done["holder"] = time.perf_counter()

    def blocker():
        getattr(p, hold)(held)

    def contender():
        inside.wait()
        p.add(kind, 1000)
        done["contender"] = time.perf_counter()

    run_together(blocker, contender, timeout=30)
    out(f"{way}.contender_first", int(done["contender"] < done["holder"]))
    out(f"{way}.n", p.n)
out("gil_enabled", gil_enabled())
