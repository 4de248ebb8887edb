"""gancli plot and RUN/curves.png: the figure's panels come from metrics.jsonl, several runs share it."""
from __future__ import annotations

import json

import pytest

from gancli.curves import smoothed


def test_smoothing_is_the_debiased_exponential_average_by_hand():
    # weight 0.5: the averages 1 then 0.5·1 + 0.5·4 = 2.5, over the weights 0.5 then 0.75: 2 and 10/3
    assert smoothed([2.0, 4.0], weight=0.5) == pytest.approx([2.0, (0.5 * 0.5 * 2 + 0.5 * 4) / 0.75])
    assert smoothed([1.0] * 5) == pytest.approx([1.0] * 5)


def _fake_run(path, rows):
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 9, "cut')


def test_plot_of_two_runs_writes_one_png(cli, tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    rows = [{"step": s, "images_seen": 64 * s, "d/loss": 1.4 - 0.01 * s, "g/loss": 0.7, "lr/G": 2e-4, "lr/D": 2e-4,
             "images_per_second": 100.0} for s in range(1, 30)]
    _fake_run(tmp_path / "a", rows)
    _fake_run(tmp_path / "b", [{**r, "augment/p": 0.01 * r["step"]} for r in rows])
    result = cli("plot", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "both.png"))
    assert result.exit_code == 0, result.output
    image = Image.open(tmp_path / "both.png")
    assert image.width == 9 * 90 and image.height == pytest.approx(4 * 3.2 * 90, abs=1)  # losses, rates, img/s, p
    one = cli("plot", str(tmp_path / "a"))
    assert one.exit_code == 0 and Image.open(tmp_path / "a" / "curves.png").height == pytest.approx(3 * 3.2 * 90, abs=1)  # no p


def test_plot_refuses_what_is_not_a_run(cli, tmp_path):
    result = cli("plot", str(tmp_path))
    assert result.exit_code == 2 and "has no metrics.jsonl" in result.stderr and result.stderr.count("\n") == 1


def test_training_draws_curves_png_at_each_checkpoint(tiny_npz, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from gancli import config as cfg
    from gancli.train.loop import train

    monkeypatch.setenv("GANCLI_CURVES", "1")
    run, family_config = cfg.resolve(
        "dcgan", flags={"data": {"source": str(tiny_npz), "resolution": 16},
                        "train": {"steps": 2, "batch_size": 8, "log_every": 1, "sample_every": 0}},
        overrides=["ngf=4", "ndf=4", "z_dim=8"])
    result = train(run, family_config, out=tmp_path / "run", show_progress=False)
    assert (result.run_dir / "curves.png").stat().st_size > 0
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["lr/G"] == pytest.approx(2e-4)
