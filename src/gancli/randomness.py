"""Counter-based seeds: random draws that are a pure function of where they happen in a run.

The trainer draws latents, fake labels and penalty mixing weights from a generator
re-seeded for every call with ``mix_seed(run seed, step, phase, repeat, call)``, always
for the whole global batch, and each process and micro-batch takes its own slice.
So the numbers do not depend on how a batch is split over processes or micro-batches
(a 2-process run sees exactly the draws of a 1-process run), and a resumed run needs
no generator state to continue them.
"""
from __future__ import annotations

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from a sequence of integers; stable across runs, processes and platforms."""
    x = 0x6A09E667F3BCC908
    for part in parts:
        x = _splitmix64(x ^ (int(part) & _MASK64))
    return x & ((1 << 63) - 1)
