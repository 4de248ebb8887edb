"""Use a trained model from one checkpoint: ``gancli.load(path).sample(16, seed=0)``.

Needs only the checkpoint and the family's plugin; no training code, no dataset.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from gancli import checkpoint as ckpt_io
from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.objective import GAN, Progress


@dataclass
class Pipeline:
    generator: torch.nn.Module
    spec: DataSpec
    config: dict[str, Any]
    checkpoint: ckpt_io.Checkpoint
    device: torch.device
    ema: bool
    record: Optional[Any] = None  # the plugin's PluginRecord: its errors are reported as its fault

    def _plugin_code(self, action: str):
        from contextlib import nullcontext

        from gancli.plugins import PluginFault

        return PluginFault(self.record, action) if self.record is not None else nullcontext()

    @property
    def z_dim(self) -> int:
        return int(self.generator.z_dim)

    @property
    def num_classes(self) -> int:
        return int(getattr(self.generator, "num_classes", 0) or 0)

    @property
    def family(self) -> str:
        return self.checkpoint.family

    def check_class(self, class_: Optional[int]) -> None:
        if class_ is None:
            return
        if self.num_classes == 0:
            raise GancliError(f"this {self.family} model is unconditional; drop --class")
        if not 0 <= class_ < self.num_classes:
            raise GancliError(f"--class must be in 0..{self.num_classes - 1} for this model, got {class_}")

    def labels(self, n: int, class_: Optional[int], seed: Optional[int]) -> Optional[Tensor]:
        """Class labels for n samples: the given class, or classes in turn for a conditional model."""
        self.check_class(class_)
        if self.num_classes == 0:
            return None
        if class_ is not None:
            return torch.full((n,), class_, dtype=torch.long)
        return torch.arange(n) % self.num_classes

    @torch.no_grad()
    def generate(self, z: Tensor, y: Optional[Tensor] = None, *, truncation: Optional[float] = None,
                 batch_size: int = 256) -> Tensor:
        """Generator output for latents ``z`` (CPU float32 out): images in [-1, 1] or points."""
        if self.num_classes and y is None:
            y = torch.arange(len(z)) % self.num_classes
        kwargs = {}
        if truncation is not None and getattr(self.generator, "truncation_space", "z") == "w":
            kwargs["truncation"] = truncation
        out = []
        for i in range(0, len(z), batch_size):
            zb = z[i : i + batch_size].to(self.device)
            yb = y[i : i + batch_size].to(self.device) if y is not None else None
            with self._plugin_code("generating samples"):
                out.append(self.generator(zb, yb, **kwargs).float().cpu())
        return torch.cat(out) if out else torch.empty(0)

    def sample(self, n: int, seed: Optional[int] = None, truncation: Optional[float] = None,
               class_: Optional[int] = None) -> Tensor:
        """n samples; the same seed gives the same output. Images are float in [-1, 1]."""
        from gancli.sampling import latents

        if n <= 0:
            raise GancliError(f"number of samples must be positive, got {n}")
        if truncation is not None and truncation <= 0:
            raise GancliError(f"--truncation must be positive, got {truncation}")
        w_space = getattr(self.generator, "truncation_space", "z") == "w"
        z = latents(n, self.z_dim, seed=seed, truncation=None if w_space else truncation)
        return self.generate(z, self.labels(n, class_, seed), truncation=truncation)

    def sample_images(self, n: int, **kwargs: Any) -> Tensor:
        """Like :meth:`sample` but uint8 (N, C, H, W)."""
        from gancli.data.images import to_uint8

        if self.spec.kind != "image":
            raise GancliError("this model makes points, not images")
        return to_uint8(self.sample(n, **kwargs))


def rebuild_gan(ckpt: ckpt_io.Checkpoint, action: str) -> tuple[GAN, Any]:
    """The family's GAN for a checkpoint, freshly initialised (no weights loaded), and its plugin record.

    The builder initialises weights from the global RNG; the caller's random stream is left untouched.
    """
    from pydantic import ValidationError

    from gancli.config import format_validation_error
    from gancli.plugins import PluginFault, get_record

    try:
        record = get_record(ckpt.family)
    except GancliError:
        raise GancliError(
            f"{ckpt.path} needs family {ckpt.family!r} from {ckpt.plugin}, which is not installed; "
            f"pip install {ckpt.metadata['gancli.plugin.distribution']}"
        ) from None
    with PluginFault(record, "loading its config model"):
        config_model = record.family.load_config_model()
    try:
        family_config = config_model.model_validate(ckpt.config.get("model", {}))
    except ValidationError as exc:
        raise GancliError(
            f"{ckpt.path}: its {ckpt.family} settings do not validate with {record.label} "
            f"({format_validation_error(exc, 'model.')})"
        ) from None
    with torch.random.fork_rng(devices=[]), PluginFault(record, action):
        gan = record.family.load_builder()(family_config, ckpt.spec)
    if not isinstance(gan, GAN):
        raise GancliError(f"plugin {record.label}: build() must return gancli.objective.GAN, got {type(gan).__name__}")
    with torch.random.fork_rng(devices=[]), PluginFault(record, "growing its networks to the checkpoint's phase"):
        # a growing family has the layers of the checkpoint's phase, so its weights load strictly
        gan.objective.grow(Progress(ckpt.step, ckpt.images_seen), gan.generator, gan.discriminator)
    return gan, record


def load(path: str | Path, *, device: Optional[str] = None, ema: Optional[bool] = None) -> Pipeline:
    """Rebuild the generator stored in a gancli checkpoint (the EMA weights when present)."""
    ckpt = ckpt_io.read(path)
    gan, record = rebuild_gan(ckpt, "building the generator")
    generator, spec = gan.generator, ckpt.spec
    prefix = ckpt_io.generator_prefix(ckpt, ema)
    tensors = ckpt.tensors(prefix)
    if not tensors:
        raise GancliError(f"{ckpt.path} holds no generator weights ({prefix}*); the file is damaged or foreign")
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise GancliError(
            f"{ckpt.path}: generator weight {prefix}{bad[0]} holds NaN or inf; the file is damaged, "
            f"use an earlier checkpoint"
        )
    try:
        generator.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise GancliError(
            f"{ckpt.path}: generator weights do not fit {record.label} ({str(exc).splitlines()[0]})"
        ) from None
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    generator.to(target).eval().requires_grad_(False)
    return Pipeline(generator, spec, ckpt.config, ckpt, target, ema=prefix == "G_ema.", record=record)
