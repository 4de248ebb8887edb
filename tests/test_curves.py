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


def test_eval_of_a_run_checkpoint_is_drawn_against_the_step(cli, tmp_path, monkeypatch):
    """gancli eval of RUN/checkpoints/step-N adds a line to RUN/evals.jsonl; gancli plot gains the scores panel."""
    pytest.importorskip("matplotlib")
    import numpy as np
    from PIL import Image

    from _labelled_images import quadrant_images
    from gancli import config as cfg
    from gancli.evaluation import train_domain_extractor
    from gancli.run_evals import read_evals, score_series
    from gancli.train.loop import train

    monkeypatch.setenv("GANCLI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GANCLI_OFFLINE", "1")
    images, labels = quadrant_images(64, 0)
    np.savez(tmp_path / "q.npz", images=images, labels=labels)
    extractor = train_domain_extractor(str(tmp_path / "q.npz"), tmp_path / "x.safetensors", steps=4, batch_size=16,
                                       resolution=16, name="quadrant-cnn").path
    run, family_config = cfg.resolve(
        "dcgan", flags={"data": {"source": str(tmp_path / "q.npz"), "resolution": 16},
                        "train": {"steps": 4, "batch_size": 8, "log_every": 1, "sample_every": 0, "checkpoint_every": 2}},
        overrides=["ngf=4", "ndf=4", "z_dim=8"])
    run_dir = train(run, family_config, out=tmp_path / "run", show_progress=False).run_dir
    fids = {}
    for step in (2, 4):
        out = tmp_path / f"fid{step}.json"
        result = cli("eval", run_dir / "checkpoints" / f"step-{step:06d}.safetensors", "--extractor", extractor,
                     "-n", "24", "--metrics", "fid", "--out", out)
        assert result.exit_code == 0, result.output
        assert "evals.jsonl" in result.stderr
        fids[step] = json.loads(out.read_text())["results"]["fid"]
    again = cli("eval", run_dir / "checkpoints" / "step-000004.safetensors", "--extractor", extractor, "-n", "24",
                "--metrics", "fid", "--seed", "5")
    assert again.exit_code == 0, again.output

    rows = read_evals(run_dir)
    assert [row["step"] for row in rows] == [2, 4]  # the re-measurement of step 4 replaced the first
    assert rows[0]["images_seen"] == 16 and rows[0]["generator"] == "G"
    assert rows[0]["results"]["fid"] == pytest.approx(fids[2])
    assert rows[1]["results"]["fid"] != pytest.approx(fids[4])  # the seed-5 measurement won
    (label, (key, points)), = score_series(rows).items()
    assert key == "fid" and label.startswith("FID-24 vs all data (quadrant-cnn") and [s for s, _ in points] == [2, 4]

    plotted = cli("plot", run_dir)
    assert plotted.exit_code == 0, plotted.output
    # losses, scores, learning rates, img/s: one panel more than the run without evals
    assert Image.open(run_dir / "curves.png").height == pytest.approx(4 * 3.2 * 90, abs=1)


def test_a_checkpoint_outside_a_run_records_nothing(tmp_path):
    from gancli.run_evals import run_of_checkpoint

    (tmp_path / "checkpoints").mkdir()
    assert run_of_checkpoint(tmp_path / "checkpoints" / "last.safetensors") is None  # no metrics.jsonl beside it
    assert run_of_checkpoint(tmp_path / "model.safetensors") is None
    (tmp_path / "metrics.jsonl").write_text("")
    assert run_of_checkpoint(tmp_path / "checkpoints" / "last.safetensors") == tmp_path
