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

``train.allocator`` is the other way to the same end: jemalloc and tcmalloc keep freed blocks in lists
by size class, so the next step's request of the same size gets the same pages back, without glibc's
fragmentation. A process picks its allocator when it starts, so ``gancli train`` restarts itself with
the library in ``LD_PRELOAD`` (:func:`restart_with`) before it imports torch.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

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


# the library to preload, and its settings: jemalloc's decay of -1 never hands freed pages back, so a
# step's blocks are there for the next one (PyTorch's torch.backends.xeon.run_cpu sets the same idea)
PRELOADS = {
    "jemalloc": ("jemalloc", {"MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"}),
    "tcmalloc": ("tcmalloc_minimal", {}),
}
RESTARTED = "GANCLI_ALLOCATOR"  # set in the restarted process, so it does not restart again
INSTALL = {"jemalloc": "apt install libjemalloc2, dnf install jemalloc or conda install jemalloc",
           "tcmalloc": "apt install libtcmalloc-minimal4, dnf install gperftools-libs or conda install gperftools"}


def preload_environment(allocator: str) -> dict[str, str]:
    """The variables that start a process on ``allocator``: its library in LD_PRELOAD, its settings (where the
    user has set none) and the mark that it is in place."""
    from gancli.errors import GancliError

    if not sys.platform.startswith("linux"):
        raise GancliError(f"train.allocator={allocator} works on Linux only (LD_PRELOAD); "
                          "use train.allocator=system here")
    library, settings = PRELOADS[allocator]
    found = ctypes.util.find_library(library)
    if found is None:
        raise GancliError(f"train.allocator={allocator}: lib{library} is not installed ({INSTALL[allocator]}), "
                          "or use train.allocator=system")
    preload = " ".join(p for p in (found, os.environ.get("LD_PRELOAD", "")) if p)
    ours = {key: value for key, value in settings.items() if key not in os.environ}  # the user's own settings win
    return {"LD_PRELOAD": preload, **ours, RESTARTED: allocator}


def restart_with(allocator: str) -> None:
    """Re-execute this command with ``allocator`` preloaded; returns at once when it is already in place."""
    if allocator == "system" or os.environ.get(RESTARTED) == allocator:
        return
    env = {**os.environ, **preload_environment(allocator)}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def active(allocator: str) -> bool:
    """Whether the process runs on ``allocator`` (its library is mapped); "system" always is."""
    if allocator == "system":
        return True
    library = PRELOADS[allocator][0]
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    return f"lib{library}." in maps
