"""Several extensions using ftshim in one process (some linked dynamically, some statically)."""
import sys

from common import gil_enabled, out, run_together

import bank
import cache
import constants
import counter
import probe

c = counter.Counter()
run_together(lambda: c.increment(10000), lambda: c.increment(10000))
out("counter", c.value)
k = cache.Cache()
k.set("a", 1)
out("cache", "%s,%d" % (k.get("a"), len(k)))
a, b = bank.Account(100), bank.Account(0)
out("bank", "%d,%d,%d" % (bank.transfer(a, b, 30, times=5), a.balance, b.balance))
p = probe.Probe()
run_together(lambda: p.add("mutex", 10000), lambda: p.add("mutex_fn", 10000))
out("probe", p.n)
out("constants", constants.lookup("retries"))
for m in (bank, cache, constants, counter, probe):
    out(f"file.{m.__name__}", m.__file__)
out("gil_enabled", gil_enabled())
