"""Style mixing regularization (Karras et al. 2019, §3.1): two latents, a random crossover layer.

With probability ``p`` (0.9) a generated image takes its styles from w₁ = f(z₁) in the layers
before a crossover point and from w₂ = f(z₂) from that layer on, so that neighbouring styles
cannot rely on being correlated. NVlabs draw the crossover uniformly from 1 … L − 1, L the
layers in use (v1 ``G_style``: ``num_layers − 2·int(lod)`` while growing; stylegan2-ada
``run_G``: all of them), and "no mixing" as crossover = L.

NVlabs draw one decision and one crossover per minibatch (per GPU). Here both are drawn
**per example**, from the Step's counter-based draws: those give each micro-batch its slice
of one draw for the whole global batch, so only per-example draws are the same numbers
whether a batch runs on one process or is split over several processes or accumulation
steps (a per-batch draw would become a per-shard one), and a resumed run repeats them. Each
image still mixes with probability p at a uniformly chosen layer, as in the paper; what
changes is only that the images of one batch no longer share the crossover.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def mix_styles(w1: Tensor, w2: Tensor, crossover: Tensor | int) -> Tensor:
    """Per example n: layers ``< crossover[n]`` from ``w1``, layers ``≥ crossover[n]`` from ``w2``.

    ``w1`` and ``w2`` are (N, num_ws, w_dim); ``crossover`` is an int or (N,) integers.
    A crossover of 0 gives w2, one of num_ws or more gives w1.
    """
    if w1.shape != w2.shape or w1.dim() != 3:
        raise ValueError(f"mix_styles needs two (N, num_ws, w_dim) tensors of one shape, got {tuple(w1.shape)}, "
                         f"{tuple(w2.shape)}")
    crossover = torch.as_tensor(crossover, device=w1.device).reshape(-1, 1)
    layers = torch.arange(w1.shape[1], device=w1.device).unsqueeze(0)
    from_first = (layers < crossover).unsqueeze(2)  # (N or 1, num_ws, 1)
    return torch.where(from_first, w1, w2)


def draw_crossovers(step, *, layers: int, prob: float, no_mix: int, n: Optional[int] = None) -> Tensor:
    """(n,) crossover layers (n: the Step's micro-batch by default): with probability ``prob``
    uniform in [1, ``layers``), else ``no_mix`` (a value ≥ the layers in use: w₁ everywhere).

    Two draws, in this order: U[0, 1) per example for the decision, then the layer.
    """
    if layers < 2:
        raise ValueError(f"style mixing needs at least 2 layers, got {layers}")
    mixes = step.rand(n=n) < prob
    points = step.randint(layers - 1, n=n) + 1
    return torch.where(mixes, points, torch.full_like(points, no_mix))


def generate_with_ws(step, style_mixing_prob: float, n: Optional[int] = None, *,
                     layers: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """(G(w), w) for n (default: the micro-batch's) latents with style mixing, under the Step's autocast.

    The mapping network twice, then the synthesis network, as NVlabs' losses do; only the
    first mapping call moves ``w_avg`` (v1 ``G_style`` and stylegan2-ada update the average
    from the first latents). ``layers``: the w layers in use, among which the crossover falls
    (a growing network's active ones; default all). w is the (n, num_ws, w_dim) tensor the
    synthesis network saw, so gradients can be taken with respect to it (path length).
    """
    G = step.G
    z = step.latents(n)
    z2 = step.latents(n) if style_mixing_prob > 0 else None
    with step.autocast():
        ws = G.mapping(z)
        if z2 is not None:
            w2 = G.mapping(z2, update_w_avg=False)
            crossover = draw_crossovers(step, layers=G.num_ws if layers is None else layers, prob=style_mixing_prob,
                                        no_mix=G.num_ws, n=n)
            ws = mix_styles(ws, w2, crossover)
        return G.synthesis(ws), ws
