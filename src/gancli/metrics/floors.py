"""Measured real-vs-real floors: what a metric gives when both sides are real images, under one protocol.

A floor applies only to the protocol it was measured under: the same extractor file (sha256), the very
same reference pixels (the sha256 of the decoded uint8 reference subset, so data, split, resolution,
channels, loader and subset all match) and the same N on both sides. Values are means over seeds of a
train subset against the fixed reference subset; the measurements are in benchmarks/RESULTS.md.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Floor:
    value: float
    count: int
    seeds: int
    where: str  # how it was measured, for the report

    def describe(self) -> str:
        return f"real-vs-real floor at N = {format_count(self.count)}: {self.value:.3g}"


@dataclass(frozen=True)
class FloorTable:
    extractor_sha256: str
    reference_pixels_sha256: str
    count: int
    seeds: int
    where: str
    values: dict[str, float]


FMNIST_CNN_SHA256 = "544244f09e41adc32896dda3f74236813ee0b264f71a9a8460718e0694904061"  # benchmarks/artifacts/fmnist-cnn.safetensors
_FMNIST_FLOORS = "benchmarks/RESULTS.md, Real-vs-real floors: fashion-mnist train subsets (seeds 0-2) vs test, 28×28, 2026-11-25"

FLOOR_TABLES: tuple[FloorTable, ...] = (
    FloorTable(
        FMNIST_CNN_SHA256, "c27fb6cf07e0df0b0aa89af374b80e5a3528784cdc7e8c5ae9cb348f00f49bae", 2_000, 3, _FMNIST_FLOORS,
        {"fid": 1.644, "kid_mean": -0.343, "precision": 0.900, "recall": 0.886, "density": 1.021, "coverage": 0.968,
         "is_mean": 7.733},
    ),
    FloorTable(
        FMNIST_CNN_SHA256, "c0a78911578a9e0622ce0aa997cb2af88717d344b362e95730401f4c5114ea88", 10_000, 3, _FMNIST_FLOORS,
        {"fid": 0.259, "kid_mean": -0.173, "precision": 0.887, "recall": 0.882, "density": 1.014, "coverage": 0.969,
         "is_mean": 7.913},
    ),
)


def find_floor(key: str, *, extractor_sha256: str, reference_pixels_sha256: str, count: int) -> Floor | None:
    for table in FLOOR_TABLES:
        if (table.extractor_sha256, table.reference_pixels_sha256, table.count) == (extractor_sha256, reference_pixels_sha256, count):
            if key in table.values:
                return Floor(table.values[key], table.count, table.seeds, table.where)
    return None


def format_count(count: int) -> str:
    """10000 → "10k", 2500 → "2.5k", 40 → "40": how N appears in labels such as "FID-10k"."""
    if count >= 1000 and count % 100 == 0:
        return f"{count / 1000:g}k"
    return str(count)
