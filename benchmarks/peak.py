"""How close a training step comes to this CPU's convolution peak.

``conv_peak`` times the forward and backward pass of one well-shaped 3×3 convolution (the
kind oneDNN runs fastest here) and counts its floating-point operations with PyTorch's
flop formulas: that is the achievable GFLOP/s of the machine, measured in the same run
as the families. ``step_flops`` counts the operations of one training step of a plain
loop (the same mathematics as the gancli arm); a family's share of the peak is then
flops / step time / peak.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable


def count_flops(fn: Callable[[], object]) -> float:
    """Floating-point operations (convolutions and matrix products, forward and backward) of ``fn()``.

    PyTorch's own formulas (torch.utils.flop_counter.flop_registry) under a plain dispatch mode:
    FlopCounterMode itself also tracks modules through autograd hooks, which ``autograd.grad``
    with ``create_graph`` (a gradient penalty, R1) refuses."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **kwargs, out_val=out)
            return out

    with Counter() as counter:
        fn()
    return float(counter.total)


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
