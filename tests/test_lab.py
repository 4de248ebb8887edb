"""The 2-D lab: frames of a run, generator-gradient arrows, decision surface, loss curves."""
from __future__ import annotations

import json
import math
import numpy as np
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from gancli.config import RunConfig
from gancli.objective import AdversarialObjective
from gancli.train.lab import LAB_DATA, LAB_GIF, LOSSES_PNG, Lab, loss_plot, read_metrics


class _LinearD(nn.Module):
    """logit(x) = w·x + b: its slope is |w| everywhere."""

    def __init__(self, w: tuple[float, float], b: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x, y=None, return_features=False):
        out = x @ self.w + self.b
        return (out, x) if return_features else out


class _ShiftG(nn.Module):
    z_dim = 2
    num_classes = 0

    def __init__(self, shift: float = 0.0) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.tensor(shift))

    def forward(self, z, y=None):
        return 0.3 * z + self.shift


def _lab(tmp_path: Path) -> Lab:
    real = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]).repeat(50, 1)
    return Lab(tmp_path, real, num_fake=64, num_arrows=64, grid=16)


@pytest.mark.parametrize("loss", ["nonsaturating", "minimax"])
def test_arrows_are_minus_the_per_sample_gradient_of_the_generator_loss(tmp_path, loss):
    lab = _lab(tmp_path)
    w, b = torch.tensor([3.0, -4.0]), 0.5
    frame = lab.record(7, _ShiftG(), _LinearD(tuple(w.tolist()), b), AdversarialObjective(loss=loss))
    logits = frame.fake @ w + b
    # −∂/∂x of softplus(−l) is σ(−l)·w; of −softplus(l) it is σ(l)·w; arrows are in units of |w|
    slope = torch.sigmoid(-logits) if loss == "nonsaturating" else torch.sigmoid(logits)
    expected = slope.unsqueeze(1) * w / w.norm()
    torch.testing.assert_close(frame.arrows, expected, rtol=1e-4, atol=1e-6)
    assert frame.step == 7
    assert frame.signal == pytest.approx(float(slope.median()), rel=1e-4)


def test_saturation_shows_as_vanishing_arrows_for_minimax_only(tmp_path):
    confident = _LinearD((1.0, 1.0), -30.0)  # every generated point is judged fake with certainty
    frames = {
        loss: _lab(tmp_path).record(1, _ShiftG(), confident, AdversarialObjective(loss=loss))
        for loss in ("minimax", "nonsaturating")
    }
    assert frames["minimax"].signal < 1e-9
    assert frames["minimax"].arrows.norm(dim=1).max() < 1e-9
    assert frames["nonsaturating"].signal == pytest.approx(1.0, abs=1e-6)
    # the image tells them apart: the minimax frame carries the saturation note
    lab = _lab(tmp_path)
    lab.loss_name = "minimax"
    assert lab.render(frames["minimax"]).size == (lab.size, lab.size + 44)


def test_surface_is_sigmoid_of_d_on_the_grid_with_the_top_row_at_positive_y(tmp_path):
    lab = _lab(tmp_path)
    frame = lab.record(1, _ShiftG(), _LinearD((0.0, 2.0), 0.0), AdversarialObjective())
    e = lab.extent
    assert frame.surface.shape == (16, 16)
    assert frame.surface[0, 0] == pytest.approx(1 / (1 + math.exp(-2 * e)), rel=1e-5)  # (−e, +e)
    assert frame.surface[-1, 0] == pytest.approx(1 / (1 + math.exp(2 * e)), rel=1e-5)  # (−e, −e)
    # D depends on y only: every row is constant
    assert torch.allclose(frame.surface, frame.surface[:, :1].expand(16, 16))


def test_a_batch_dependent_discriminator_is_scored_in_the_company_of_generated_points(tmp_path):
    from gancli.nn.improved import MinibatchDiscrimination

    class CrowdD(nn.Module):
        """Minibatch discrimination only: the more company a point has in its batch, the faker it looks."""

        def __init__(self):
            super().__init__()
            self.mbd = MinibatchDiscrimination(2, num_kernels=1, kernel_dim=2)
            with torch.no_grad():
                self.mbd.T.copy_(3.0 * torch.eye(2).view(2, 1, 2))

        def forward(self, x, y=None, return_features=False):
            out = 2.5 - 0.4 * self.mbd(x)[:, 2]
            return (out, x) if return_features else out

    D = CrowdD()
    lab = _lab(tmp_path)
    lab.grid = 32
    frame = lab.record(1, _ShiftG(), D, AdversarialObjective())  # generated points crowd the origin
    assert Lab._depends_on_batch(D, frame.fake)
    centre, corner = float(frame.surface[16, 16]), float(frame.surface[0, 0])
    assert centre < 0.1 < 0.7 < corner


def test_loss_plot_draws_every_logged_term(tmp_path):
    rows = [{"step": s, "d/loss": 1.4 - 0.01 * s, "g/loss": 0.7 + 0.02 * s, "g/fm": 0.1} for s in range(1, 20)]
    image = loss_plot(rows)
    assert image.size == (640, 380)
    pixels = set(map(tuple, np.asarray(image.convert("RGB")).reshape(-1, 3).tolist()))
    for colour in ((31, 119, 180), (214, 39, 40), (44, 160, 44)):  # one line per term
        assert colour in pixels
    assert loss_plot([{"step": 1}]) is None
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows[:3]) + '\n{"step": 4, "d/lo')  # a line cut by a kill
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]


def _train_points(out: Path, steps: int, *, resume: bool = False):
    from gancli.data.sources import load_data
    from gancli.train.loop import train
    from gancli_plugin_gan.config import GANConfig

    model = GANConfig.model_validate({"z_dim": 4, "g_hidden": 16, "d_hidden": 16})
    run = RunConfig.model_validate({
        "family": "gan",
        "data": {"source": "ring8"},
        "train": {"steps": steps, "batch_size": 32, "log_every": 1, "sample_every": 2, "checkpoint_every": 0,
                  "seed": 0},
        "model": model.model_dump(mode="json"),
    })
    return train(run, model, out=out, resume=resume, data=load_data("ring8"), show_progress=False)


def _gif_frames(path: Path) -> int:
    with Image.open(path) as gif:
        return gif.n_frames


def test_a_short_2d_run_writes_the_animation_and_the_loss_curves(tmp_path):
    pytest.importorskip("gancli_plugin_gan")
    run_dir = tmp_path / "run"
    _train_points(run_dir, 6)
    assert _gif_frames(run_dir / LAB_GIF) == 3  # sample steps 2, 4, 6
    with Image.open(run_dir / LOSSES_PNG) as plot:
        assert plot.format == "PNG" and plot.size == (640, 380)
    with Image.open(run_dir / LAB_GIF) as gif:
        assert gif.size == (360, 404)

    # a resumed run extends the same animation
    _train_points(run_dir, 10, resume=True)
    assert _gif_frames(run_dir / LAB_GIF) == 5
    from safetensors.torch import load_file

    assert load_file(str(run_dir / LAB_DATA))["steps"].tolist() == [2, 4, 6, 8, 10]
