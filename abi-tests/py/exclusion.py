"""Mutual exclusion: 2 threads x N increments of shared C state under each kind of section/lock.

Usage: exclusion.py N KIND [KIND...]   (kinds: see probe.Probe.add; "none" is the racy control)

Both threads meet at a C-level gate before their loops, so the loops really run at the same time.
"""
import sys

from common import gil_enabled, out, run_together

import probe

n = int(sys.argv[1])
for kind in sys.argv[2:]:
    a, b, gate = probe.Probe(), probe.Probe(), probe.Probe()
    if kind.startswith("section2"):
        # Opposite orders: thread 1 locks (a, b), thread 2 (b, a); both update both objects.
        secs = run_together(lambda: a.add(kind, n, b, gate), lambda: b.add(kind, n, a, gate))
        out(f"{kind}.observed", f"{a.n},{b.n}")
        out(f"{kind}.expected", f"{2 * n},{2 * n}")
    else:
        secs = run_together(lambda: a.add(kind, n, None, gate), lambda: a.add(kind, n, None, gate))
        out(f"{kind}.observed", a.n)
        out(f"{kind}.expected", 2 * n)
    out(f"{kind}.locked_after", int(a.locked))
    out(f"{kind}.seconds", f"{secs:.4f}")
out("gil_enabled", gil_enabled())
