"""Immortal objects: set_immortal, contention, survival, and the refusals."""
import gc
import sys
import threading
import weakref

from common import gil_enabled, out, run_together

import constants
import probe

N = int(sys.argv[1])


class Thing:
    pass


# A fresh object, created and referenced only by this thread.
obj = Thing()
out("set_fresh", probe.set_immortal(obj))
out("is_fresh", probe.is_immortal(obj))
out("set_again", probe.set_immortal(obj))
run_together(lambda: probe.hammer(obj, N), lambda: probe.hammer(obj, N))
out("is_after_hammer", probe.is_immortal(obj))
ref = weakref.ref(obj)
oid = id(obj)
del obj
gc.collect()
survivor = ref()
out("survives", int(survivor is not None and id(survivor) == oid))
out("is_after_collect", probe.is_immortal(survivor) if survivor is not None else -1)
del survivor

# An object another thread holds references to: refused on free-threaded builds.
shared = Thing()
hold = threading.Event()
release = threading.Event()


def keep_reference():
    refs = [shared, shared]
    hold.set()
    release.wait()
    refs.clear()


t = threading.Thread(target=keep_reference)
t.start()
hold.wait()
before = sys.getrefcount(shared)
out("set_shared", probe.set_immortal(shared))
out("is_shared", probe.is_immortal(shared))
out("refcount_unchanged", int(sys.getrefcount(shared) == before))
release.set()
t.join()

# An object created by another thread (owned by it on free-threaded builds).
box = []
t = threading.Thread(target=lambda: box.append(Thing()))
t.start()
t.join()
out("set_foreign", probe.set_immortal(box[0]))

# str: intern instead.
s = "".join(["not", "-", "interned"])
out("set_str", probe.set_immortal(s))
out("is_str", probe.is_immortal(s))


class S(str):
    pass


out("set_str_subclass", probe.set_immortal(S("x")))
out("is_none", probe.is_immortal(None))
out("constants_immortal", int(constants.IMMORTAL))
out("constants_lookup", constants.lookup("timeout_ms"))
out("constants_missing", int(constants.lookup("nope") is constants.MISSING))
out("gil_enabled", gil_enabled())
