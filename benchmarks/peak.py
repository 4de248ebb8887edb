"""How close a training step comes to this CPU's convolution peak.

``conv_peak`` times the forward and backward pass of one well-shaped 3×3 convolution (the
kind oneDNN runs fastest here) and counts its floating-point operations with PyTorch's
FlopCounterMode: that is the achievable GFLOP/s of the machine, measured in the same run
as the families. ``step_flops`` counts the operations of one training step of a plain
loop (the same mathematics as the gancli arm); a family's share of the peak is then
flops / step time / peak.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable


def count_flops(fn: Callable[[], object]) -> float:
    """Floating-point operations (convolutions and matrix products, forward and backward) of ``fn()``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def conv_peak(*, batch: int = 32, channels: int = 128, size: int = 16, repeats: int = 7) -> dict:
    """Median GFLOP/s of forward + backward (input and weight gradients) of a 3×3 convolution."""
    import torch

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
    x = torch.randn(batch, channels, size, size, requires_grad=True)

    def once() -> None:
        conv.zero_grad(set_to_none=True)
        x.grad = None
        conv(x).sum().backward()

    flops = count_flops(once)
    for _ in range(2):
        once()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    seconds = statistics.median(times)
    return {"gflops": flops / seconds / 1e9, "flops": flops, "seconds": seconds,
            "shape": f"3×3 conv {channels}→{channels} at {size}×{size}, batch {batch}, forward + backward",
            "threads": torch.get_num_threads()}
