"""How `gancli eval` draws a checkpoint's samples, and how the protocol says so: the seeded latents of
`gancli sample -n N --seed S`, the class scheme of a conditional generator, what a truncation value means
for this generator (ψ in W, T in z), and how its BatchNorm layers normalised (--bn-mode, --standing-stats).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import Tensor

from gancli.errors import GancliError

GENERATION_CHUNK = 1000  # samples turned into uint8 at once: 10k RGB images as floats would take half a gigabyte
GENERATION_BATCH = 256  # the generator's batch: with --bn-mode batch, BatchNorm normalises over it
CHUNK_NOISE_STRIDE = 1_000_003  # chunk c of the samples draws its noise inputs from seed + c · stride
BN_MODES = ("running", "batch")
STANDING_BATCH = 64  # the batch of each --standing-stats forward pass


def check_truncation(pipe, truncation: Optional[float]) -> None:
    """ψ = 0 is the average image of a W-space model; z truncation redraws |z_i| > T, so T must be positive."""
    if truncation is None:
        return
    if truncation < 0:
        raise GancliError(f"--truncation must be ≥ 0, got {truncation:g}")
    if not pipe.w_space and truncation == 0:
        raise GancliError(f"--truncation T must be positive for this {pipe.family} model (it redraws |z_i| > T), got 0")


def truncation_space(pipe) -> dict:
    """What a truncation value means for this generator, as the protocol records it."""
    if pipe.w_space:
        return {"space": "w", "symbol": "ψ", "meaning": "w' = w_avg + ψ·(w − w_avg) (ψ = 1: none, 0: the average image)"}
    return {"space": "z", "symbol": "T", "meaning": "every latent coordinate with |z_i| > T is redrawn (BigGAN's truncation trick)"}


def generate_samples(pipe, count: int, *, seed: int, truncation: Optional[float], say: Callable[[str], None]
                     ) -> tuple[Tensor, dict[str, Any], Optional[Tensor]]:
    """uint8 images (N, C, H, W) or float points (N, D), how they were drawn, and the class each sample was
    generated for (None for an unconditional generator): what `gancli sample -n N --seed S` draws."""
    from gancli.data.images import to_uint8
    from gancli.sampling import latents

    ckpt = pipe.checkpoint
    at = f", truncation {truncation:g}" if truncation is not None else ""
    say(f"generating {count} samples from {ckpt.path} (step {ckpt.step}, {'EMA' if pipe.ema else 'raw'} generator{at})")
    z = latents(count, pipe.z_dim, seed=seed, truncation=None if pipe.w_space else truncation)
    y = pipe.labels(count, None, seed)
    chunks = []
    for number, start in enumerate(range(0, count, GENERATION_CHUNK)):
        rows = slice(start, start + GENERATION_CHUNK)
        out = pipe.generate(z[rows], y[rows] if y is not None else None, truncation=truncation, batch_size=GENERATION_BATCH,
                            seed=seed + number * CHUNK_NOISE_STRIDE)
        chunks.append(to_uint8(out) if pipe.spec.kind == "image" else out)
    description = {
        "latents": f"gancli.sampling.latents(N, z_dim, seed={seed}), as `gancli sample -n N --seed {seed}` draws",
        "noise_inputs": (f"the global generator seeded with {seed} + c·{CHUNK_NOISE_STRIDE} for chunk c of {GENERATION_CHUNK} "
                         "samples (only generators with random noise inputs draw from it)"),
        "labels": (f"conditional on {pipe.num_classes} classes: sample i gets class i mod {pipe.num_classes} (balanced)"
                   if pipe.num_classes else "unconditional"),
    }
    return torch.cat(chunks), description, (y if y is not None and y.dim() == 1 else None)


def describe_batch_norm(pipe, mode: str, standing_passes: Optional[int], standing_layers: Optional[int]) -> dict:
    """How the generator's BatchNorm layers normalised its samples: --bn-mode and --standing-stats, as run."""
    from gancli.nn.norms import batch_norm_layers

    layers = len(batch_norm_layers(pipe.generator))
    standing = None
    if standing_passes:
        standing = {
            "passes": standing_passes, "batch_size": STANDING_BATCH, "layers": standing_layers,
            "latents": "untruncated N(0, I) and uniform random classes, from their own generator seeded with --seed",
            "note": "BigGAN-PyTorch's sample.py re-accumulates them at each truncation setting; here they come from untruncated latents",
        }
    if layers == 0:
        text = f"{mode} (no BatchNorm layers: the mode changes nothing)"
    elif mode == "running":
        text = (f"running statistics (eval mode), re-estimated from {standing_passes} standing passes" if standing
                else "running statistics stored in the checkpoint (eval mode)")
    else:
        text = (f"batch statistics of each generation batch of up to {GENERATION_BATCH} samples (classes mixed); "
                "the stored running statistics are not used")
    return {"mode": mode, "batch_norm_layers": layers, "text": text, "standing_statistics": standing}
