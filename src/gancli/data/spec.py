"""DataSpec: what a model was trained on, stored with every checkpoint (no torch here)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal


@dataclass(frozen=True)
class DataSpec:
    kind: Literal["image", "points"]
    channels: int = 0
    resolution: int = 0
    num_classes: int = 0
    dim: int = 0  # for points
    name: str = ""
    class_names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def shape(self) -> tuple[int, ...]:
        if self.kind == "points":
            return (self.dim,)
        return (self.channels, self.resolution, self.resolution)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DataSpec":
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("kind") not in ("image", "points"):
            raise ValueError("data spec must be an object with kind 'image' or 'points'")
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in raw.items() if k in known}
        values["class_names"] = tuple(values.get("class_names") or ())
        return cls(**values)

    def describe(self) -> str:
        if self.kind == "points":
            return f"{self.dim}-D points"
        cond = f", {self.num_classes} classes" if self.num_classes else ""
        return f"{self.channels}×{self.resolution}×{self.resolution} images{cond}"


def class_name(spec: DataSpec, index: int) -> str:
    if 0 <= index < len(spec.class_names):
        return spec.class_names[index]
    return str(index)
