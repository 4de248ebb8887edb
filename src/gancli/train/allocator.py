"""Keep freed tensor memory in the C allocator's heap during CPU training (``train.keep_freed_memory``).

glibc's malloc serves a block larger than its mmap threshold (at most 32 MB by its own dynamic rule)
with a fresh mapping and returns it to the kernel when the block is freed. A training step at 128²
and above frees and allocates gigabytes of such activations, so every step faults all of their
pages in again: the plain StyleGAN loop at 128², batch 4, took ~1.1M minor page faults and spent
~10% of its CPU time in the kernel per step (benchmarks/RESULTS.md). Raising the mmap and trim
thresholds keeps those blocks in the heap, where the next step reuses them with no faults. The
price is the heap's fragmentation, paid in peak resident memory (+5% for that loop; at 256², batch
4, +24% for StyleGAN and +47% for StyleGAN2 over the same run without it), so it is a choice
(``--set train.keep_freed_memory=true``), not the default.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30      # blocks up to 1 GiB come from the heap
TRIM_THRESHOLD = (1 << 31) - 1  # and freed memory is not handed back while the process trains

_applied = False


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process; False where there is no glibc (macOS, Windows, musl)."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc only: musl's mallopt ignores these parameters
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
