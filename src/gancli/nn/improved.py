"""Layers from "Improved Techniques for Training GANs" (Salimans et al. 2016).

* :class:`MinibatchDiscrimination` lets the discriminator see how close each example
  is to the others in its batch, so a collapsed generator becomes easy to detect.
* :class:`VirtualBatchNorm` normalizes each example with the statistics of a fixed
  reference batch plus that example alone, so an output never depends on the other
  examples of its batch (unlike batch norm, whose batch statistics correlate samples).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn


class MinibatchDiscrimination(nn.Module):
    """Appends per-example closeness-to-the-batch features: ``[f(x_i), o(x_i)]``.

    A tensor T (A×B×C) maps f(x_i) ∈ R^A to M_i ∈ R^{B×C};
    c_b(x_i, x_j) = exp(−‖M_i,b − M_j,b‖₁) and o(x_i)_b = Σ_{j≠i} c_b(x_i, x_j).

    The sum leaves out j = i. The paper writes Σ_{j=1}^{n}, which adds the constant
    c_b(x_i, x_i) = 1 to every feature; both released implementations (openai/improved-gan,
    Lasagne ``MinibatchLayer`` and the TensorFlow ImageNet discriminator) mask the
    diagonal out, and so do we. Each o(x_i)_b therefore lies in [0, n − 1], with n − 1
    reached when the whole batch has collapsed to one point.

    Inputs with more than two dimensions are flattened per example.
    """

    def __init__(self, in_features: int, num_kernels: int, kernel_dim: int, *, init_std: float = 0.05):
        super().__init__()
        self.in_features = in_features
        self.num_kernels = num_kernels
        self.kernel_dim = kernel_dim
        self.out_features = in_features + num_kernels
        # N(0, 0.05) as in the Lasagne reference (its weight normalization is left out)
        self.T = nn.Parameter(torch.randn(in_features, num_kernels, kernel_dim) * init_std)

    def closeness(self, features: Tensor) -> Tensor:
        """o(x_i) for every example: shape (N, num_kernels)."""
        features = features.flatten(1)
        if features.shape[1] != self.in_features:
            raise ValueError(
                f"MinibatchDiscrimination expects {self.in_features} features per example, "
                f"got {features.shape[1]}"
            )
        m = torch.einsum("na,abc->nbc", features, self.T)
        # the explicit pairwise difference (rather than cdist) keeps double backward
        # available for gradient penalties taken through the discriminator
        l1 = (m.unsqueeze(1) - m.unsqueeze(0)).abs().sum(dim=3)  # (N, N, B)
        kernel = torch.exp(-l1)
        n = features.shape[0]
        not_self = 1.0 - torch.eye(n, device=features.device, dtype=kernel.dtype)
        return (kernel * not_self.unsqueeze(2)).sum(dim=1)

    def forward(self, features: Tensor) -> Tensor:
        flat = features.flatten(1)
        return torch.cat([flat, self.closeness(flat)], dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_kernels={self.num_kernels}, kernel_dim={self.kernel_dim}"


class VirtualBatchNorm(nn.Module):
    """Virtual batch normalization for (N, C) and (N, C, H, W) inputs.

    The reference statistics (per-channel mean and mean of squares over the reference
    batch, and its size n) are buffers, so checkpoints carry them and a reloaded model
    normalizes exactly as it did in training. Each example x is normalized with the
    statistics of the union of the reference batch and x itself, each of the n + 1
    examples weighted 1/(n + 1) (Salimans et al.; openai/improved-gan ``VBN``):

        mean    = n/(n+1) · μ_ref + 1/(n+1) · mean_{H,W}(x)
        mean_sq = n/(n+1) · s_ref + 1/(n+1) · mean_{H,W}(x²)
        y       = γ · (x − mean) / sqrt(mean_sq − mean² + eps) + β

    The example's own statistics are taken over its spatial positions only, never over
    the batch: averaging over the batch axis here is the bug torchgan issue #146 and
    openai/improved-gan PR #19 describe, and it makes an output depend on its neighbours.

    Salimans et al. forward the reference batch through the current network together
    with every batch, and the reference statistics are part of the graph: the gradient
    flows through them, as batch norm's gradient flows through batch statistics
    (openai/improved-gan builds them as graph tensors). :func:`joint_vbn_reference` does
    that: inside it, the first ``reference_size`` rows of every input are the reference
    batch, whose statistics (with gradient) normalize the other rows, and are also stored
    (detached) in the buffers. Outside it, a layer normalizes with the stored statistics:
    recorded by the first forward call, by :meth:`set_reference`, or for a whole network
    by :func:`recording_vbn_reference`.
    """

    reference_mean: Tensor
    reference_mean_sq: Tensor
    reference_size: Tensor

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        # named like nn.BatchNorm's affine parameters so the usual DCGAN init code finds them
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("reference_mean", torch.zeros(num_features))
        self.register_buffer("reference_mean_sq", torch.ones(num_features))
        # 0 means "no reference yet": the next forward call records one
        self.register_buffer("reference_size", torch.zeros((), dtype=torch.int64))
        self.recording = False
        self.joint_reference = 0  # > 0: the first rows of the input are the reference batch

    @property
    def has_reference(self) -> bool:
        return int(self.reference_size) > 0

    def _check(self, x: Tensor) -> None:
        if x.dim() not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(
                f"VirtualBatchNorm({self.num_features}) expects (N, {self.num_features}) or "
                f"(N, {self.num_features}, H, W), got {tuple(x.shape)}"
            )

    @staticmethod
    def _per_example_moments(x: Tensor) -> tuple[Tensor, Tensor]:
        # (N, C) per example and channel; spatial positions only, never the batch axis
        flat = x.float().flatten(2) if x.dim() == 4 else x.float().unsqueeze(2)
        return flat.mean(dim=2), flat.square().mean(dim=2)

    def _normalize(self, x: Tensor, mean: Tensor, mean_sq: Tensor) -> Tensor:
        var = (mean_sq - mean.square()).clamp_min(0.0)
        scale = self.weight.float() * torch.rsqrt(var + self.eps)
        shift = self.bias.float() - mean * scale
        if x.dim() == 4:
            scale, shift = scale[..., None, None], shift[..., None, None]
        return (x.float() * scale + shift).to(x.dtype)

    @torch.no_grad()
    def _record(self, x: Tensor) -> None:
        example_mean, example_mean_sq = self._per_example_moments(x)
        self.reference_mean.copy_(example_mean.mean(dim=0))
        self.reference_mean_sq.copy_(example_mean_sq.mean(dim=0))
        self.reference_size.fill_(x.shape[0])

    def set_reference(self, x_ref: Tensor) -> Tensor:
        """Record x_ref as the reference batch; returns x_ref normalized by its own statistics."""
        self._check(x_ref)
        if x_ref.shape[0] < 2:
            raise ValueError("the VirtualBatchNorm reference batch needs at least 2 examples")
        self._record(x_ref)
        example_mean, example_mean_sq = self._per_example_moments(x_ref)
        return self._normalize(x_ref, example_mean.mean(dim=0), example_mean_sq.mean(dim=0))

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        if self.joint_reference:
            return self._joint(x, self.joint_reference)
        if self.recording or not self.has_reference:
            return self.set_reference(x)
        return self._with_reference(x, self.reference_mean, self.reference_mean_sq, float(self.reference_size))

    def _with_reference(self, x: Tensor, ref_mean: Tensor, ref_mean_sq: Tensor, n: float) -> Tensor:
        example_mean, example_mean_sq = self._per_example_moments(x)
        own = 1.0 / (n + 1.0)
        mean = (1.0 - own) * ref_mean + own * example_mean
        mean_sq = (1.0 - own) * ref_mean_sq + own * example_mean_sq
        return self._normalize(x, mean, mean_sq)

    def _joint(self, x: Tensor, n: int) -> Tensor:
        if x.shape[0] < n + 1 or n < 2:
            raise ValueError(f"joint VBN needs the {n} reference rows (n ≥ 2) and at least one example")
        reference, batch = x[:n], x[n:]
        example_mean, example_mean_sq = self._per_example_moments(reference)
        ref_mean, ref_mean_sq = example_mean.mean(dim=0), example_mean_sq.mean(dim=0)  # graph tensors
        with torch.no_grad():
            self.reference_mean.copy_(ref_mean)
            self.reference_mean_sq.copy_(ref_mean_sq)
            self.reference_size.fill_(n)
        normalized_reference = self._normalize(reference, ref_mean, ref_mean_sq)
        return torch.cat([normalized_reference, self._with_reference(batch, ref_mean, ref_mean_sq, float(n))])

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, reference_size={int(self.reference_size)}"


@contextmanager
def recording_vbn_reference(module: nn.Module) -> Iterator[None]:
    """Inside this block, every VirtualBatchNorm in ``module`` records the batch it sees.

        with recording_vbn_reference(generator):
            generator(z_reference)      # refresh the reference statistics
        fake = generator(z)             # each sample normalized with reference + itself
    """
    layers = [m for m in module.modules() if isinstance(m, VirtualBatchNorm)]
    for layer in layers:
        layer.recording = True
    try:
        yield
    finally:
        for layer in layers:
            layer.recording = False


@contextmanager
def joint_vbn_reference(module: nn.Module, reference_size: int) -> Iterator[None]:
    """Inside this block, the first ``reference_size`` rows of every VirtualBatchNorm input in
    ``module`` are the reference batch, normalizing the other rows with gradient through its statistics:

        with joint_vbn_reference(generator, len(z_reference)):
            out = generator(torch.cat([z_reference, z]))[len(z_reference):]
    """
    layers = [m for m in module.modules() if isinstance(m, VirtualBatchNorm)]
    for layer in layers:
        layer.joint_reference = reference_size
    try:
        yield
    finally:
        for layer in layers:
            layer.joint_reference = 0
