"""The matrices and resampling behind ADA's geometric and colour transforms (gancli.augment.ada).

Homogeneous 2-D (3×3) and colour-space (4×4) matrices per image, as stylegan2-ada-pytorch
``training/augment.py`` builds them, and :func:`resample`, its execution of the composed geometric
matrix: reflect padding, ×2 upsampling with the sym6 wavelet filter, bilinear ``grid_sample``, ×2
downsampling. Padding and resampling are linear and separable, so they run as matrix products
(:func:`upfirdn_matrix`, :func:`separable`).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

# sym6 wavelet low-pass filter (stylegan2-ada augment.py ``wavelets['sym6']``): the geometric transforms' resampling
SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633, 0.4910559419267466,
    0.787641141030194, 0.3379294217276218, -0.07263752278646252, -0.021060292512300564, 0.04472490177066578,
    0.0017677118642428036, -0.007800708325034148,
)


def eye(n: int, size: int, device) -> Tensor:
    return torch.eye(size, device=device).expand(n, size, size).clone()


def translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    m = eye(tx.shape[0], 3, tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    m = eye(sx.shape[0], 3, sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def rotate2d(theta: Tensor) -> Tensor:
    m = eye(theta.shape[0], 3, theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def translate3d(t: Tensor) -> Tensor:
    m = eye(t.shape[0], 4, t.device)
    m[:, 0, 3] = m[:, 1, 3] = m[:, 2, 3] = t
    return m


def scale3d(s: Tensor) -> Tensor:
    m = eye(s.shape[0], 4, s.device)
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = s
    return m


def rotate3d(v: Tensor, theta: Tensor) -> Tensor:
    """Rotation by theta about the unit axis v (3,), homogeneous 4×4 (Rodrigues)."""
    vx, vy, vz = v[0], v[1], v[2]
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    m = eye(theta.shape[0], 4, theta.device)
    rows = [[vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s],
            [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s],
            [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c]]
    for i in range(3):
        for j in range(3):
            m[:, i, j] = rows[i][j]
    return m


def resample(x: Tensor, g_inv: Tensor) -> Tensor:
    """AugmentPipe's execution of the geometric transforms: reflect padding by the margin the corners need,
    ×2 upsampling (sym6), bilinear grid_sample with the composed matrix, ×2 downsampling (sym6) and crop.

    Padding, upsampling and downsampling are linear and separable, so each runs as two small matrix
    products per image (rows, then columns) with matrices made by :func:`upfirdn_matrix`: the same
    maps as upfirdn2d's, and 20-30× faster on the CPU than 1-D depthwise convolutions of 1-3 channels.
    """
    n, channels, h, w = x.shape
    device = x.device
    pad = len(SYM6) // 4
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device=device)  # (4, 3)
    corners = g_inv @ corners.t()  # (N, 3, 4)
    margin = corners[:, :2, :].permute(1, 0, 2).flatten(1)  # (2, N·4)
    margin = torch.cat([-margin, margin]).max(dim=1).values  # (4,): x0, y0, x1, y1
    margin = margin + torch.tensor([pad * 2 - cx, pad * 2 - cy] * 2, device=device)
    margin = margin.clamp(min=0)
    margin = torch.minimum(margin, torch.tensor([w - 1, h - 1] * 2, device=device, dtype=margin.dtype))
    mx0, my0, mx1, my1 = (int(v) for v in margin.ceil().tolist())

    k = len(SYM6)
    # reflect padding, then upsample2d: zero insertion, padding ((k + 1) // 2, (k − 2) // 2), gain 2 per axis
    up_rows = upfirdn_matrix(h, up=2, padding=((k + 1) // 2, (k - 2) // 2), reflect=(my0, my1))
    up_cols = upfirdn_matrix(w, up=2, padding=((k + 1) // 2, (k - 2) // 2), reflect=(mx0, mx1))
    x = separable(x, up_rows.to(device), up_cols.to(device))
    g_inv = translate2d(torch.full((n,), (mx0 - mx1) / 2, device=device),
                         torch.full((n,), (my0 - my1) / 2, device=device)) @ g_inv
    two, half = torch.full((n,), 2.0, device=device), torch.full((n,), 0.5, device=device)
    g_inv = scale2d(two, two) @ g_inv @ scale2d(half, half)
    shift, unshift = torch.full((n,), -0.5, device=device), torch.full((n,), 0.5, device=device)
    g_inv = translate2d(shift, shift) @ g_inv @ translate2d(unshift, unshift)
    shape = [n, channels, (h + pad * 2) * 2, (w + pad * 2) * 2]
    to_unit = scale2d(torch.full((n,), 2 / x.shape[3], device=device), torch.full((n,), 2 / x.shape[2], device=device))
    from_unit = scale2d(torch.full((n,), shape[3] / 2, device=device), torch.full((n,), shape[2] / 2, device=device))
    g_inv = to_unit @ g_inv @ from_unit
    grid = F.affine_grid(g_inv[:, :2, :].to(x.dtype), shape, align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # downsample2d(padding = −2·pad, flip_filter=True): its default padding (5, 5) for 12 taps, less 2·pad = 6
    down = ((k - 1) // 2 - 2 * pad, (k - 2) // 2 - 2 * pad)
    down_rows = upfirdn_matrix(shape[2], down=2, padding=down, flip_filter=True)
    down_cols = upfirdn_matrix(shape[3], down=2, padding=down, flip_filter=True)
    return separable(x, down_rows.to(device), down_cols.to(device))


def separable(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """rows @ plane @ colsᵀ for every (N, C) plane of x."""
    return torch.matmul(torch.matmul(rows.to(x.dtype), x), cols.to(x.dtype).t())


@functools.lru_cache(maxsize=256)
def upfirdn_matrix(size: int, *, up: int = 1, down: int = 1, padding: tuple[int, int] = (0, 0),
                    flip_filter: bool = False, reflect: tuple[int, int] = (0, 0)) -> Tensor:
    """The (out, size) matrix of upfirdn2d's 1-D pass with the sym6 taps (normalized, gain ``up`` per axis),
    after reflect padding by ``reflect``: the responses to the unit signals, one column each."""
    signals = F.pad(torch.eye(size, dtype=torch.float64).unsqueeze(1), list(reflect), mode="reflect")
    if up > 1:  # each sample followed by up − 1 zeros
        signals = F.pad(signals.unsqueeze(-1), (0, up - 1)).flatten(-2)
    before, after = padding
    length = signals.shape[-1]
    signals = signals[..., max(-before, 0): length - max(-after, 0)]  # negative padding crops
    signals = F.pad(signals, (max(before, 0), max(after, 0)))
    taps = torch.tensor(SYM6, dtype=torch.float64)
    taps = taps / taps.sum() * up
    # flipped taps: a convolution, as upfirdn2d's default; flip_filter=True correlates (conv1d's own sense)
    kernel = taps if flip_filter else taps.flip(0)
    out = F.conv1d(signals, kernel.view(1, 1, -1))[..., ::down]
    return out.squeeze(1).t().to(torch.float32).contiguous()
