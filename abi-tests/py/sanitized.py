"""Proves the sanitizer runtime is in this process and exercises every status path once."""
import probe

from common import out

out("asan_mapped", int(any("libasan" in line for line in open("/proc/self/maps"))))
statuses = probe.statuses()
out("statuses_ok", int(statuses["mutex_unlock_unlocked"] == -4 and statuses["cs_end_twice"] == -3))
