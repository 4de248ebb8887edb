"""Use a trained model from one checkpoint: ``gancli.load(path).sample(16, seed=0)``.

Needs only the checkpoint and the family's plugin; no training code, no dataset.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from gancli import checkpoint as ckpt_io
from gancli.conditioning import ClassChoice, parse_class
from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.objective import GAN, Progress
from gancli.references import read_checkpoint


@dataclass
class Pipeline:
    """A trained generator, ready to sample: classes by index, name or mixture; W space when it has one.

    Sampling is a pure function of the arguments: the same seed gives the same pixels, also
    with random noise inputs (they are drawn from a generator seeded by ``seed``).
    """

    generator: torch.nn.Module
    spec: DataSpec
    config: dict[str, Any]
    checkpoint: ckpt_io.Checkpoint
    device: torch.device
    ema: bool
    record: Optional[Any] = None  # the plugin's PluginRecord: its errors are reported as its fault
    bn_mode: str = "running"  # BatchNorm at sampling: "running" statistics (eval) or "batch" statistics

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

    @property
    def class_names(self) -> list[str]:
        """The data's class names (indices as text where the data had none)."""
        names = list(self.spec.class_names)
        return [names[i] if i < len(names) else str(i) for i in range(self.num_classes)]

    @property
    def w_space(self) -> bool:
        return getattr(self.generator, "truncation_space", "z") == "w"

    @property
    def accepts_class_mixtures(self) -> bool:
        return bool(getattr(self.generator, "accepts_class_mixtures", False))

    @property
    def w_avg(self) -> Tensor:
        """The tracked average w of a W-space generator (CPU float32)."""
        self._need_w_space("w_avg")
        return self.generator.w_avg.detach().float().cpu()

    def _need_w_space(self, what: str) -> None:
        if not self.w_space:
            raise GancliError(f"{what} needs a generator with a W space (e.g. stylegan); this {self.family} model has none")

    # ------------------------------------------------------------ classes

    def choose_class(self, class_: Any) -> Optional[ClassChoice]:
        """--class as an index, a name from the data or a mixture 'a:w,b:w'."""
        choice = parse_class(class_, self.class_names, self.num_classes)
        if choice is not None and choice.is_mixture and not self.accepts_class_mixtures:
            raise GancliError(
                f"this {self.family} generator takes one class at a time; class mixtures need a generator that "
                f"weights its class parameters (biggan, sngan, sagan)"
            )
        return choice

    def check_class(self, class_: Any) -> None:
        self.choose_class(class_)

    def labels(self, n: int, class_: Any = None, seed: Optional[int] = None) -> Optional[Tensor]:
        """Labels for n samples: the chosen class (an index or mixture weights), or classes in turn."""
        choice = self.choose_class(class_)
        if self.num_classes == 0:
            return None
        if choice is None:
            return torch.arange(n) % self.num_classes
        if choice.index is not None:
            return torch.full((n,), choice.index, dtype=torch.long)
        weights = torch.zeros(n, self.num_classes)
        for index, w in choice.weights:
            weights[:, index] = w
        return weights

    def class_weights(self, a: int, b: int, t: Tensor) -> Tensor:
        """(N, K) class weights walking from class a to class b (BigGAN's class interpolation)."""
        if not self.accepts_class_mixtures:
            raise GancliError(f"interpolating between classes needs a generator that weights its class parameters "
                              f"(biggan, sngan, sagan); "
                              f"this {self.family} generator takes one class at a time")
        weights = torch.zeros(len(t), self.num_classes)
        weights[:, a] += 1 - t
        weights[:, b] += t
        return weights

    # ------------------------------------------------------------ running the generator

    @contextmanager
    def _sampling_mode(self, seed: Optional[int]):
        """Eval mode (BatchNorm running statistics, or batch statistics with bn_mode="batch"), and the
        global random state (noise inputs) seeded by ``seed`` and restored afterwards."""
        from gancli.nn.norms import batch_norm_layers

        layers = batch_norm_layers(self.generator) if self.bn_mode == "batch" else []
        saved = [(layer, layer.momentum) for layer in layers]
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.manual_seed(seed)
            for layer in layers:
                layer.train()
                layer.momentum = 0.0  # batch statistics, leaving the loaded running statistics alone
            try:
                yield
            finally:
                for layer, momentum in saved:
                    layer.momentum = momentum
                    layer.eval()

    def _generator_kwargs(self, truncation, truncation_cutoff, noise_mode) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.w_space:
            if truncation is not None:
                kwargs["truncation"] = truncation
            if truncation_cutoff is not None:
                kwargs["truncation_cutoff"] = truncation_cutoff
            if noise_mode is not None:
                kwargs["noise_mode"] = noise_mode
        elif truncation_cutoff is not None or noise_mode is not None:
            raise GancliError(f"--truncation-cutoff and --noise-mode are for W-space generators; this {self.family} "
                              f"model samples in z (use --truncation T to redraw |z_i| > T)")
        return kwargs

    @torch.no_grad()
    def generate(self, z: Tensor, y: Optional[Tensor] = None, *, truncation: Optional[float] = None,
                 truncation_cutoff: Optional[int] = None, noise_mode: Optional[str] = None,
                 batch_size: int = 256, seed: Optional[int] = None) -> Tensor:
        """Generator output for latents ``z`` (CPU float32 out): images in [-1, 1] or points."""
        if self.num_classes and y is None:
            y = torch.arange(len(z)) % self.num_classes
        kwargs = self._generator_kwargs(truncation, truncation_cutoff, noise_mode)
        out = []
        with self._sampling_mode(seed):
            for i in range(0, len(z), batch_size):
                zb = z[i : i + batch_size].to(self.device)
                yb = y[i : i + batch_size].to(self.device) if y is not None else None
                with self._plugin_code("generating samples"):
                    out.append(self.generator(zb, yb, **kwargs).float().cpu())
        return torch.cat(out) if out else torch.empty(0)

    def sample(self, n: int, seed: Optional[int] = None, truncation: Optional[float] = None,
               class_: Any = None, *, truncation_cutoff: Optional[int] = None,
               noise_mode: Optional[str] = None) -> Tensor:
        """n samples; the same seed gives the same output. Images are float in [-1, 1].

        ``truncation``: in W (ψ, towards w_avg) for W-space generators, else |z_i| > T is redrawn.
        ``class_``: an index, a class name, or a mixture "3:0.5,7:0.5".
        """
        from gancli.sampling import latents

        if n <= 0:
            raise GancliError(f"number of samples must be positive, got {n}")
        self._check_truncation(truncation)
        z = latents(n, self.z_dim, seed=seed, truncation=None if self.w_space else truncation)
        return self.generate(z, self.labels(n, class_, seed), truncation=truncation,
                             truncation_cutoff=truncation_cutoff, noise_mode=noise_mode, seed=seed)

    def _check_truncation(self, truncation: Optional[float]) -> None:
        if truncation is None:
            return
        if self.w_space and truncation < 0:
            raise GancliError(f"--truncation ψ must be ≥ 0 for W-space models (0: the average image), got {truncation}")
        if not self.w_space and truncation <= 0:
            raise GancliError(f"--truncation must be positive, got {truncation}")

    def sample_images(self, n: int, **kwargs: Any) -> Tensor:
        """Like :meth:`sample` but uint8 (N, C, H, W)."""
        from gancli.data.images import to_uint8

        if self.spec.kind != "image":
            raise GancliError("this model makes points, not images")
        return to_uint8(self.sample(n, **kwargs))

    # ------------------------------------------------------------ W space

    @torch.no_grad()
    def mapping(self, z: Tensor, y: Optional[Tensor] = None, *, truncation: Optional[float] = None,
                truncation_cutoff: Optional[int] = None) -> Tensor:
        """w (N, num_ws, w_dim) for latents z, ψ-truncated towards w_avg when ``truncation`` is given."""
        self._need_w_space("mapping")
        self._check_truncation(truncation)
        if self.num_classes and y is None:
            y = torch.arange(len(z)) % self.num_classes
        psi = 1.0 if truncation is None else truncation
        with self._sampling_mode(None), self._plugin_code("mapping latents"):
            w = self.generator.mapping(z.to(self.device), y.to(self.device) if y is not None else None,
                                       psi=psi, cutoff=truncation_cutoff)
        return w.float().cpu()

    @torch.no_grad()
    def synthesis(self, w: Tensor, *, noise_mode: str = "const", seed: Optional[int] = None,
                  batch_size: int = 256) -> Tensor:
        """Images (CPU float32 in [-1, 1]) from w; noise "const" (fixed by the checkpoint), "random" or "none"."""
        self._need_w_space("synthesis")
        if noise_mode not in NOISE_MODES:
            raise GancliError(f"--noise-mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        out = []
        with self._sampling_mode(seed), self._plugin_code("synthesising images"):
            for i in range(0, len(w), batch_size):
                out.append(self.generator.synthesis(w[i : i + batch_size].to(self.device), noise_mode=noise_mode)
                           .float().cpu())
        return torch.cat(out) if out else torch.empty(0)

    def style_groups(self) -> dict[str, list[int]]:
        """The W layers of the paper's style groups: coarse (4²–8²), middle (16²–32²), fine (64² and up)."""
        self._need_w_space("style groups")
        resolutions = list(getattr(self.generator, "layer_resolutions"))
        return {
            "coarse": [i for i, r in enumerate(resolutions) if r <= 8],
            "middle": [i for i, r in enumerate(resolutions) if 16 <= r <= 32],
            "fine": [i for i, r in enumerate(resolutions) if r >= 64],
        }

    def style_mix(self, row_seeds: list[int], col_seeds: list[int], layers: list[int], *,
                  truncation: Optional[float] = None, noise_mode: str = "const", class_: Any = None) -> dict[str, Tensor]:
        """The paper's style-mixing grid: each row source's w with ``layers`` taken from each column source.

        Every source of a conditional model gets ``class_`` (class 0 when None). Returns ``rows``
        (R images), ``cols`` (C images) and ``mixes`` (R·C images, row-major).
        """
        from gancli.sampling import latents

        self._need_w_space("style mixing")
        z_rows = torch.cat([latents(1, self.z_dim, seed=s) for s in row_seeds])
        z_cols = torch.cat([latents(1, self.z_dim, seed=s) for s in col_seeds])
        chosen = class_ if class_ is not None else (0 if self.num_classes else None)
        w_rows = self.mapping(z_rows, self.labels(len(z_rows), chosen), truncation=truncation)
        w_cols = self.mapping(z_cols, self.labels(len(z_cols), chosen), truncation=truncation)
        mixed = w_rows.unsqueeze(1).repeat(1, len(col_seeds), 1, 1)
        mixed[:, :, layers] = w_cols.unsqueeze(0)[:, :, layers]
        return {
            "rows": self.synthesis(w_rows, noise_mode=noise_mode, seed=0),
            "cols": self.synthesis(w_cols, noise_mode=noise_mode, seed=0),
            "mixes": self.synthesis(mixed.flatten(0, 1), noise_mode=noise_mode, seed=0),
        }

    # ------------------------------------------------------------ BatchNorm statistics

    def standing_statistics(self, passes: int, *, batch_size: int = 64, seed: int = 0,
                            truncation: Optional[float] = None) -> int:
        """Re-estimate the loaded generator's BatchNorm statistics from ``passes`` forward passes
        (BigGAN's standing statistics), with latents at ``truncation`` (z models); the checkpoint file
        is never changed. Returns the layers updated."""
        from gancli.nn.norms import standing_statistics

        if passes < 1:
            raise GancliError(f"--standing-stats needs at least 1 forward pass, got {passes}")
        with torch.no_grad(), self._plugin_code("re-estimating BatchNorm statistics"):
            updated = standing_statistics(self.generator, batches=passes, batch_size=batch_size, seed=seed,
                                          device=self.device, truncation=None if self.w_space else truncation)
        if not updated:
            raise GancliError(f"this {self.family} generator has no BatchNorm layers; drop --standing-stats")
        return updated


NOISE_MODES = ("random", "const", "none")


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


def load(path: str | Path, *, device: Optional[str] = None, ema: Optional[bool] = None,
         bn_mode: str = "running") -> Pipeline:
    """Rebuild the generator stored in a gancli checkpoint (the EMA weights when present).

    ``path``: a checkpoint file, a model folder from ``gancli export --format hf``, or the hub id
    ``owner/name`` of such a folder (fetched into the Hugging Face cache; HF_HUB_OFFLINE is honoured).

    ``bn_mode``: BatchNorm layers normalise with their running statistics ("running", eval
    mode, the default) or with each batch's own statistics ("batch", as pytorch/examples'
    DCGAN and the WGAN reference code sample).
    """
    if bn_mode not in ("running", "batch"):
        raise GancliError(f"--bn-mode must be running or batch, got {bn_mode!r}")
    ckpt = read_checkpoint(path)
    gan, record = rebuild_gan(ckpt, "building the generator")
    generator, spec = gan.generator, ckpt.spec
    prefix = ckpt_io.generator_prefix(ckpt, ema)
    if ckpt.export is not None:  # an exported model folder: its config.json must describe this generator
        from gancli.model_folder import check_generator

        check_generator(ckpt, generator)
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
    return Pipeline(generator, spec, ckpt.config, ckpt, target, ema=prefix == "G_ema.", record=record, bn_mode=bn_mode)
