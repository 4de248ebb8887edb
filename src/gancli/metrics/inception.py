"""The TF-compatible FID Inception-v3 (graph `inception-2015-12-05`), written without torchvision.

Parameter names follow the standard port `pt_inception-2015-12-05-6726825d.pth` (pytorch-fid,
torch-fidelity), so that file loads with strict key matching. It differs from torchvision's Inception-v3
where the TF graph differs: 1008 classes, no auxiliary head, pool branches of the 35×35, 17×17 and first
8×8 blocks average without counting the zero padding (TF's avg_pool), and the last block's pool branch is a
max pool. Input pixels are resized to 299×299 with TensorFlow 1.x `resize_bilinear` semantics
(align_corners=False, no half-pixel centres) and mapped to [-1, 1] by (x − 128) / 128, as the TF graph does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Bump when a change here changes any feature: it is part of the reference-feature cache key.
CODE_VERSION = "gancli-fid-inception-v3/1 (TF1 bilinear resize, (x - 128) / 128)"
INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_LOGITS = 1008


def resize_bilinear_tf1(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TensorFlow 1.x bilinear resize (align_corners=False, half_pixel_centers=False) of NCHW floats.

    Output pixel i samples input position i · (in / out) with the scale in float32, interpolating between
    floor and floor + 1 (clamped to the edge). torch's F.interpolate(align_corners=False) samples
    (i + ½) · scale − ½ instead, which shifts the image and changes FID noticeably.
    """
    height, width = images.shape[-2:]
    if (height, width) == tuple(size):
        return images
    rows_lo, rows_hi, rows_frac = _tf1_sample_positions(height, size[0], images.dtype, images.device)
    cols_lo, cols_hi, cols_frac = _tf1_sample_positions(width, size[1], images.dtype, images.device)
    top = images.index_select(-2, rows_lo)
    bottom = images.index_select(-2, rows_hi)
    top = top.index_select(-1, cols_lo) + (top.index_select(-1, cols_hi) - top.index_select(-1, cols_lo)) * cols_frac
    bottom = bottom.index_select(-1, cols_lo) + (
        bottom.index_select(-1, cols_hi) - bottom.index_select(-1, cols_lo)
    ) * cols_frac
    return top + (bottom - top) * rows_frac.unsqueeze(-1)


def _tf1_sample_positions(in_size: int, out_size: int, dtype: torch.dtype, device):
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    positions = torch.arange(out_size, dtype=torch.float32) * scale
    low = positions.floor().long()
    high = (low + 1).clamp_max(in_size - 1)
    fraction = (positions - low.float()).to(dtype)
    return low.to(device), high.to(device), fraction.to(device)


class ConvBNReLU(nn.Module):
    """Convolution without bias, batch norm with TF's epsilon 0.001, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_average_pool(x: torch.Tensor) -> torch.Tensor:
    # TF's average pool divides by the number of real pixels under the window, not by 9.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class Mixed35(nn.Module):
    """35×35 block (Mixed_5b–5d): 1×1, 5×5, double 3×3 and pool branches."""

    def __init__(self, in_channels: int, pool_channels: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBNReLU(in_channels, 64, 1)
        self.branch5x5_1 = ConvBNReLU(in_channels, 48, 1)
        self.branch5x5_2 = ConvBNReLU(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBNReLU(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBNReLU(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBNReLU(96, 96, 3, padding=1)
        self.branch_pool = ConvBNReLU(in_channels, pool_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_tf_average_pool(x)),
            ],
            dim=1,
        )


class Reduce35To17(nn.Module):
    """Grid reduction 35×35 → 17×17 (Mixed_6a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBNReLU(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBNReLU(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBNReLU(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBNReLU(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            dim=1,
        )


class Mixed17(nn.Module):
    """17×17 block (Mixed_6b–6e) with factorised 1×7 / 7×1 convolutions."""

    def __init__(self, in_channels: int, mid_channels: int) -> None:
        super().__init__()
        c = mid_channels
        self.branch1x1 = ConvBNReLU(in_channels, 192, 1)
        self.branch7x7_1 = ConvBNReLU(in_channels, c, 1)
        self.branch7x7_2 = ConvBNReLU(c, c, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBNReLU(c, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBNReLU(in_channels, c, 1)
        self.branch7x7dbl_2 = ConvBNReLU(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBNReLU(c, c, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBNReLU(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBNReLU(c, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBNReLU(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
                double,
                self.branch_pool(_tf_average_pool(x)),
            ],
            dim=1,
        )


class Reduce17To8(nn.Module):
    """Grid reduction 17×17 → 8×8 (Mixed_7a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBNReLU(in_channels, 192, 1)
        self.branch3x3_2 = ConvBNReLU(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBNReLU(in_channels, 192, 1)
        self.branch7x7x3_2 = ConvBNReLU(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBNReLU(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBNReLU(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tower = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat(
            [self.branch3x3_2(self.branch3x3_1(x)), tower, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1
        )


class Mixed8(nn.Module):
    """8×8 block (Mixed_7b, Mixed_7c) with split 1×3 / 3×1 heads.

    `max_pool_branch` reproduces the TF graph's last block, whose pool branch is a 3×3 max pool where the
    Inception-v3 paper (and torchvision) average; the FID statistics everyone publishes depend on it.
    """

    def __init__(self, in_channels: int, max_pool_branch: bool) -> None:
        super().__init__()
        self.max_pool_branch = max_pool_branch
        self.branch1x1 = ConvBNReLU(in_channels, 320, 1)
        self.branch3x3_1 = ConvBNReLU(in_channels, 384, 1)
        self.branch3x3_2a = ConvBNReLU(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBNReLU(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBNReLU(in_channels, 448, 1)
        self.branch3x3dbl_2 = ConvBNReLU(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBNReLU(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBNReLU(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBNReLU(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        if self.max_pool_branch:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _tf_average_pool(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(single),
                self.branch3x3_2b(single),
                self.branch3x3dbl_3a(double),
                self.branch3x3dbl_3b(double),
                self.branch_pool(pooled),
            ],
            dim=1,
        )


class FIDInceptionV3(nn.Module):
    """pool3 features (2048) and bias-free logits (1008) of the FID Inception network.

    `forward` takes NCHW float pixels in [0, 255] (any size, 3 channels) and returns (features, logits).
    The logits omit the fc bias, which is what the Inception Score reference code scores.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBNReLU(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBNReLU(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBNReLU(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBNReLU(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBNReLU(80, 192, 3)
        self.Mixed_5b = Mixed35(192, pool_channels=32)
        self.Mixed_5c = Mixed35(256, pool_channels=64)
        self.Mixed_5d = Mixed35(288, pool_channels=64)
        self.Mixed_6a = Reduce35To17(288)
        self.Mixed_6b = Mixed17(768, mid_channels=128)
        self.Mixed_6c = Mixed17(768, mid_channels=160)
        self.Mixed_6d = Mixed17(768, mid_channels=160)
        self.Mixed_6e = Mixed17(768, mid_channels=192)
        self.Mixed_7a = Reduce17To8(768)
        self.Mixed_7b = Mixed8(1280, max_pool_branch=False)
        self.Mixed_7c = Mixed8(2048, max_pool_branch=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_LOGITS)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = resize_bilinear_tf1(pixels, (INPUT_SIZE, INPUT_SIZE))
        x = (x - 128.0) / 128.0
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
            self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c,
        ):
            x = block(x)
        features = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        logits = features @ self.fc.weight.T
        return features, logits
