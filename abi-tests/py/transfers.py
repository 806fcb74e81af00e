"""Two-object sections taken in opposite orders by two threads, with a reader checking the
invariant (the sum of both balances) under the same two-object section.

Usage: transfers.py N
"""
import sys
import threading

from common import gil_enabled, out, run_together

import bank

n = int(sys.argv[1])
START = 10**12
a, b = bank.Account(START), bank.Account(START)
done = {}
stop = threading.Event()
reads = violations = 0


def forward():
    done["ab"] = bank.transfer(a, b, 1, times=n)


def backward():
    done["ba"] = bank.transfer(b, a, 3, times=n)


def reader():
    global reads, violations
    while not stop.is_set():
        if bank.total(a, b) != 2 * START:
            violations += 1
        reads += 1


r = threading.Thread(target=reader, daemon=True)
r.start()
secs = run_together(forward, backward)
stop.set()
r.join(10)
out("transfers_ab", done["ab"])
out("transfers_ba", done["ba"])
out("balance_a", a.balance)
out("balance_b", b.balance)
out("total", bank.total(a, b))
out("reads", reads)
out("violations", violations)
out("seconds", f"{secs:.4f}")
out("gil_enabled", gil_enabled())
