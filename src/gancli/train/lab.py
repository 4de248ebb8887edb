"""The 2-D lab: an animation of the adversarial game, after GAN Lab (Kahng et al. 2018).

For a run on 2-D points the trainer asks a :class:`Lab` to record a frame at every
sample step and to write its outputs when training ends:

* ``RUN/lab.gif``: one frame per recorded step with the real points (green), the
  generated points (purple), the discriminator's decision surface sigmoid(D(x)) as a
  heat map (green where D says real, purple where it says fake) and, for generated
  points, arrows along −∇ₓ of the generator's loss: where each sample would move to
  fool D.
* ``RUN/losses.png``: the loss terms of ``metrics.jsonl`` against the step.
* ``RUN/lab.safetensors``: the recorded frames, so a resumed run extends its animation.

Arrow lengths are comparable across frames and runs: each arrow is the per-sample
gradient of the G loss divided by the typical slope of D's logit at the generated
points, so an arrow has full length when the loss passes D's whole slope on to G and
shrinks to nothing when the loss saturates (the minimax loss once D confidently
rejects the fakes). The caption prints that ratio as "G signal".

The arrows come from the objective's own ``g_loss`` (whatever it is: adversarial loss,
feature matching, penalties), called with a stand-in generator that returns the plotted
samples; ``g_loss`` is expected not to change the objective's state.

Only PIL and torch are used; recording draws no random numbers from the training
generators, so a run with and without the lab trains identically. On the lab you can
watch, for instance, saturation (``--set loss=minimax --set n_critic=5``: D(fake) → 0,
"G signal 0.00 (saturated)", the arrows vanish) and a late collapse of a run whose
learning rates are too high for its seed.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

LAB_GIF = "lab.gif"
LAB_DATA = "lab.safetensors"
LOSSES_PNG = "losses.png"

REAL_COLOUR = (24, 140, 60)
FAKE_COLOUR = (120, 40, 170)
ARROW_COLOUR = (230, 40, 120)
SURFACE_REAL = (150, 215, 150)  # sigmoid(D) = 1
SURFACE_FAKE = (205, 170, 230)  # sigmoid(D) = 0
SURFACE_MIDDLE = (250, 250, 250)
SATURATED_SIGNAL = 0.05
REAL_SHOWN = 400
CONTEXT_POINTS = 256  # batch-dependent D: generated points in the company of each forward over grid points


@dataclass
class Frame:
    step: int
    fake: Tensor  # (M, 2) generated points
    arrows: Tensor  # (A, 2) −∇ₓ L_G per sample for fake[:A], in units of D's logit slope
    surface: Tensor  # (R, R) sigmoid(D) on the grid, row 0 at the top (y = +extent)
    d_real: float  # mean sigmoid(D) on the real points shown
    d_fake: float
    signal: float  # median |∇ₓ L_G| / |∇ₓ logit| over generated points: 0 = saturated


class _FixedOutput(nn.Module):
    """Stands in for G so that the objective's own g_loss can be differentiated w.r.t. the samples."""

    def __init__(self, x: Tensor) -> None:
        super().__init__()
        self.x = x

    def forward(self, z: Tensor, y: Optional[Tensor] = None, **kwargs: Any) -> Tensor:
        return self.x


def _gan_logit(out: Any) -> Tensor:
    out = out[0] if isinstance(out, tuple) else out
    out = out.float()
    # a K-class (semi-supervised) discriminator: the real-vs-fake logit is logsumexp
    return torch.logsumexp(out, dim=1) if out.dim() == 2 else out


class Lab:
    """Records frames of a 2-D run and writes the animation and the loss curves."""

    def __init__(
        self,
        run_dir: Path,
        real: Tensor,
        *,
        num_fake: int = 512,
        num_arrows: int = 160,
        grid: int = 64,
        size: int = 360,
        seed: int = 0,
        frames: Optional[list[Frame]] = None,
    ) -> None:
        real = real.detach().float().cpu()
        if real.dim() != 2 or real.shape[1] != 2:
            raise ValueError(f"the lab shows 2-D points, got shape {tuple(real.shape)}")
        self.run_dir = Path(run_dir)
        self.real = real[:1000]
        self.num_fake = num_fake
        self.num_arrows = min(num_arrows, num_fake)
        self.grid = grid
        self.size = size
        self.seed = seed
        self.frames: list[Frame] = list(frames or [])
        spread = float(self.real.abs().quantile(0.999))
        self.extent = 1.3 * spread + 1e-3
        self.loss_name = ""

    # ------------------------------------------------------------ construction

    @classmethod
    def for_run(cls, run_dir: Path, real: Tensor, *, resume_step: Optional[int] = None, seed: int = 0) -> "Lab":
        """A lab for ``run_dir``; when resuming, frames recorded up to ``resume_step`` are kept."""
        frames: list[Frame] = []
        path = Path(run_dir) / LAB_DATA
        if resume_step is not None and path.exists():
            frames = [f for f in _read_frames(path) if f.step <= resume_step]
        return cls(run_dir, real, seed=seed, frames=frames)

    # ------------------------------------------------------------ recording

    def _grid_points(self, device: torch.device) -> Tensor:
        e = self.extent
        coords = torch.linspace(-e, e, self.grid, device=device)
        ys, xs = torch.meshgrid(coords.flip(0), coords, indexing="ij")  # row 0 is the top
        return torch.stack([xs.flatten(), ys.flatten()], dim=1)

    @staticmethod
    def _depends_on_batch(D: nn.Module, fake: Tensor) -> bool:
        # minibatch discrimination (and the like) scores a point by its batch
        alone = _gan_logit(D(fake[:1]))
        together = _gan_logit(D(fake[:16]))[:1]
        return not torch.allclose(alone, together, rtol=1e-4, atol=1e-4)

    def _surface(self, D: nn.Module, fake: Tensor) -> Tensor:
        points = self._grid_points(fake.device)
        if not self._depends_on_batch(D, fake):
            logits = torch.cat([_gan_logit(D(chunk)) for chunk in points.split(4096)])
            return torch.sigmoid(logits).view(self.grid, self.grid)
        # a batch-dependent D is asked about grid points in the company of generated
        # points; each forward takes grid points an eighth of the plot apart, so that
        # they see the generated points far more than each other
        company = fake[:CONTEXT_POINTS]
        spacing = max(1, self.grid // 8)
        index = torch.arange(len(points), device=fake.device).view(self.grid, self.grid)
        logits = torch.empty(len(points), device=fake.device)
        for row in range(spacing):
            for col in range(spacing):
                chunk = index[row::spacing, col::spacing].flatten()
                logits[chunk] = _gan_logit(D(torch.cat([points[chunk], company])))[: len(chunk)]
        return torch.sigmoid(logits).view(self.grid, self.grid)

    def _generator_gradients(self, objective: Any, D: nn.Module, fake: Tensor, real: Tensor, z_dim: int,
                             step: int) -> tuple[Tensor, Tensor]:
        """Per-sample −∇ₓ L_G and |∇ₓ logit| for the generated points."""
        from gancli.objective import Step

        x = fake.detach().clone().requires_grad_(True)
        s = Step(
            index=step, real=real, labels=None, G=_FixedOutput(x), D=D, z_dim=z_dim, num_classes=0, seed=self.seed,
            phase="G",
        )
        loss = objective.g_loss(s)["loss"]
        # the loss is a batch mean: times the batch size gives each sample's own gradient
        (g_grad,) = torch.autograd.grad(loss * len(x), x, allow_unused=True)
        if g_grad is None:
            g_grad = torch.zeros_like(x)
        x_logit = fake.detach().clone().requires_grad_(True)
        (logit_grad,) = torch.autograd.grad(_gan_logit(D(x_logit)).sum(), x_logit)
        return -g_grad.detach(), logit_grad.detach().norm(dim=1)

    def record(self, step: int, G: nn.Module, D: nn.Module, objective: Any) -> Frame:
        """Add the frame of ``step``: G's samples, D's surface and the generator's gradients."""
        device = next(iter(D.parameters())).device
        g_training, d_training = G.training, D.training
        G.eval()
        D.eval()
        try:
            z_gen = torch.Generator().manual_seed(self.seed)
            z = torch.randn(self.num_fake, int(G.z_dim), generator=z_gen).to(device)
            num_classes = int(getattr(G, "num_classes", 0) or 0)
            y = torch.arange(self.num_fake, device=device) % num_classes if num_classes else None
            with torch.no_grad():
                fake = G(z, y).float()
                surface = self._surface(D, fake)
                real = self.real.to(device)
                d_real = float(torch.sigmoid(_gan_logit(D(real))).mean())
                d_fake = float(torch.sigmoid(_gan_logit(D(fake))).mean())
            with torch.enable_grad():
                push, slope = self._generator_gradients(objective, D, fake, real, int(G.z_dim), step)
        finally:
            G.train(g_training)
            D.train(d_training)
        slope_ref = float(slope.median()) if len(slope) else 0.0
        if slope_ref > 0:
            arrows = push / slope_ref
            signal = float((push.norm(dim=1) / slope.clamp_min(1e-12)).median())
        else:  # D is flat where the samples are: it tells G nothing
            arrows, signal = torch.zeros_like(push), 0.0
        self.loss_name = str(getattr(objective, "loss", "") or "")
        frame = Frame(
            step=int(step), fake=fake.cpu(), arrows=arrows[: self.num_arrows].cpu(), surface=surface.cpu(),
            d_real=d_real, d_fake=d_fake, signal=signal,
        )
        self.frames = [f for f in self.frames if f.step != frame.step] + [frame]
        return frame

    # ------------------------------------------------------------ output

    def render(self, frame: Frame):
        """One frame as a PIL image."""
        from PIL import Image, ImageDraw

        size, header = self.size, 44
        surface = frame.surface.clamp(0, 1)
        image = Image.new("RGB", (size, size + header), (255, 255, 255))
        image.paste(_heat_map(surface).resize((size, size), Image.BILINEAR), (0, header))
        draw = ImageDraw.Draw(image)
        font = _font(12)
        e = self.extent

        def to_px(points: Tensor) -> Tensor:
            px = (points[:, 0] + e) / (2 * e) * (size - 1)
            py = (e - points[:, 1]) / (2 * e) * (size - 1) + header
            return torch.stack([px, py], dim=1)

        fake_px = to_px(frame.fake)
        inside = ((frame.fake.abs() <= e).all(dim=1)).tolist()
        for (x, y), ok in zip(fake_px.tolist(), inside):
            if ok:
                draw.ellipse((x - 1.6, y - 1.6, x + 1.6, y + 1.6), fill=FAKE_COLOUR)
        arrow_px = frame.arrows * (0.09 * size)  # a full-strength arrow is 9% of the plot
        length = arrow_px.norm(dim=1, keepdim=True)
        arrow_px = arrow_px * (length.clamp(max=0.15 * size) / length.clamp_min(1e-12))
        for (x, y), (dx, dy), ok in zip(fake_px.tolist(), arrow_px.tolist(), inside):
            if ok:
                _arrow(draw, x, y, x + dx, y - dy)
        # real points last, as rings: the modes stay visible under a crowd of generated
        # points, and generated points on a mode still show through
        for x, y in to_px(self.real[:REAL_SHOWN]).tolist():
            draw.ellipse((x - 2.5, y - 2.5, x + 2.5, y + 2.5), outline=REAL_COLOUR, width=1)
        outside = len(inside) - sum(inside)
        loss = f" · {self.loss_name}" if self.loss_name else ""
        saturated = " (saturated)" if frame.signal < SATURATED_SIGNAL else ""
        draw.text((6, 4), f"step {frame.step}{loss}", fill=(0, 0, 0), font=font)
        draw.text(
            (6, 22),
            f"D(real) {frame.d_real:.2f}  D(fake) {frame.d_fake:.2f}  G signal {frame.signal:.2f}{saturated}"
            + (f"  {outside} off-plot" if outside else ""),
            fill=(40, 40, 40), font=font,
        )
        return image

    def write(self, *, duration_ms: int = 120) -> list[Path]:
        """Write lab.gif, losses.png and lab.safetensors into the run directory; returns the paths written."""
        from gancli.sampling import save_gif, save_image

        written = []
        frames = sorted(self.frames, key=lambda f: f.step)
        if frames:
            gif = self.run_dir / LAB_GIF
            save_gif([self.render(f) for f in frames], gif, duration_ms=duration_ms)
            _write_frames(self.run_dir / LAB_DATA, frames)
            written += [gif, self.run_dir / LAB_DATA]
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.exists():
            plot = loss_plot(read_metrics(metrics))
            if plot is not None:
                save_image(plot, self.run_dir / LOSSES_PNG)
                written.append(self.run_dir / LOSSES_PNG)
        return written


# ---------------------------------------------------------------- drawing helpers


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _heat_map(surface: Tensor):
    """sigmoid(D) in [0, 1] → RGB: purple (fake) · white (0.5) · green (real)."""
    from PIL import Image

    fake, middle, real = (torch.tensor(c, dtype=torch.float32) for c in (SURFACE_FAKE, SURFACE_MIDDLE, SURFACE_REAL))
    t = surface.float().unsqueeze(2)
    low = middle + (fake - middle) * (1 - 2 * t).clamp(0, 1)
    rgb = torch.where(t < 0.5, low, middle + (real - middle) * (2 * t - 1).clamp(0, 1))
    return Image.fromarray(rgb.round().clamp(0, 255).to(torch.uint8).numpy(), mode="RGB")


def _arrow(draw, x0: float, y0: float, x1: float, y1: float) -> None:
    length = math.hypot(x1 - x0, y1 - y0)
    if length < 0.5:
        return
    draw.line((x0, y0, x1, y1), fill=ARROW_COLOUR, width=1)
    if length < 4:
        return
    head = min(4.0, 0.4 * length)
    angle = math.atan2(y1 - y0, x1 - x0)
    for side in (2.6, -2.6):
        draw.line((x1, y1, x1 + head * math.cos(angle + side), y1 + head * math.sin(angle + side)),
                  fill=ARROW_COLOUR, width=1)


LINE_COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75),
                (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def read_metrics(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if isinstance(row, dict) and isinstance(row.get("step"), (int, float)):
            rows.append(row)
    return rows


def loss_plot(rows: list[dict[str, Any]], *, width: int = 640, height: int = 380):
    """The d/* and g/* terms of metrics rows against the step, as a PIL image (None if nothing to plot)."""
    from PIL import Image, ImageDraw

    keys = sorted({k for row in rows for k in row if k.startswith(("d/", "g/"))},
                  key=lambda k: (k.split("/")[0], k.split("/")[1] != "loss", k))
    series = {k: [(float(r["step"]), float(r[k])) for r in rows if isinstance(r.get(k), (int, float))
                  and math.isfinite(float(r[k]))] for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    values = torch.tensor([y for v in series.values() for _, y in v], dtype=torch.float64)
    lo, hi = float(values.quantile(0.01)), float(values.quantile(0.99))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    steps = [x for v in series.values() for x, _ in v]
    x0, x1 = min(steps), max(steps)
    if x1 <= x0:
        x1 = x0 + 1

    font = _font(12)
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 56, width - 12, 34, height - 30

    def px(x: float, y: float) -> tuple[float, float]:
        y = min(max(y, lo), hi)
        return (left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - lo) / (hi - lo) * (bottom - top))

    for i in range(5):
        y = lo + (hi - lo) * i / 4
        _, py = px(x0, y)
        draw.line((left, py, right, py), fill=(230, 230, 230))
        draw.text((4, py - 7), f"{y:.3g}", fill=(80, 80, 80), font=font)
    ticks = _nice_ticks(x0, x1)
    for i, x in enumerate(ticks):
        qx, _ = px(x, lo)
        last = i == len(ticks) - 1
        label = f"{x:.0f}" + (" steps" if last else "")
        # the last label may not run past the right edge
        shift = draw.textlength(label, font=font) / 2
        left_edge = min(qx - shift, width - 4 - draw.textlength(label, font=font))
        draw.line((qx, bottom, qx, bottom + 3), fill=(120, 120, 120))
        draw.text((left_edge, bottom + 6), label, fill=(80, 80, 80), font=font)
    draw.rectangle((left, top, right, bottom), outline=(120, 120, 120))
    legend_x = left
    for i, (key, points) in enumerate(series.items()):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        if len(points) == 1:
            qx, qy = px(*points[0])
            draw.ellipse((qx - 2, qy - 2, qx + 2, qy + 2), fill=colour)
        else:
            draw.line([px(x, y) for x, y in points], fill=colour, width=2)
        draw.line((legend_x, 16, legend_x + 16, 16), fill=colour, width=3)
        draw.text((legend_x + 20, 9), key, fill=(0, 0, 0), font=font)
        legend_x += 28 + int(draw.textlength(key, font=font))
    return image


def _nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick positions (1, 2 or 5 times a power of ten apart) inside [lo, hi]."""
    raw = (hi - lo) / max(target - 1, 1)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next((m * power for m in (1, 2, 5, 10) if m * power >= raw), 10 * power)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) // step) + 1)]


# ---------------------------------------------------------------- frame storage (safetensors, no pickle)


def _write_frames(path: Path, frames: list[Frame]) -> None:
    from gancli import checkpoint as ckpt_io

    tensors = {
        "steps": torch.tensor([f.step for f in frames], dtype=torch.int64),
        "fake": torch.stack([f.fake for f in frames]),
        "arrows": torch.stack([f.arrows for f in frames]),
        "surface": torch.stack([f.surface for f in frames]),
        "scalars": torch.tensor([[f.d_real, f.d_fake, f.signal] for f in frames], dtype=torch.float64),
    }
    ckpt_io.save(path, tensors, {"gancli.lab": "1"})


def _read_frames(path: Path) -> list[Frame]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        t = load_file(str(path))
        return [
            Frame(step=int(step), fake=t["fake"][i], arrows=t["arrows"][i], surface=t["surface"][i],
                  d_real=float(t["scalars"][i, 0]), d_fake=float(t["scalars"][i, 1]),
                  signal=float(t["scalars"][i, 2]))
            for i, step in enumerate(t["steps"].tolist())
        ]
    except (SafetensorError, OSError, KeyError, IndexError, RuntimeError):
        # a damaged lab file only costs the earlier frames, never the run
        return []
