"""Smoke test of the benchmark code paths at toy sizes (benchmarks/ itself measures; nothing is timed here)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import report  # noqa: E402
from benchmarks.throughput import Arm, Case, run_case  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("arms_in_turn", [True, False], ids=["in-turn", "one-after-the-other"])
def test_throughput_runs_gancli_and_plain_side_by_side(tmp_path, arms_in_turn):
    case = Case("tiny", resolution=16, channels=1, width=4, batch=8, z_dim=8, dataset_size=32,
                arms_in_turn=arms_in_turn)
    arms = [Arm("plain fp32", "plain", "no", warmup=1, rounds=2, per_round=1),
            Arm("gancli fp32", "gancli", "no", warmup=1, rounds=2, per_round=1, sampling=True)]
    result = run_case(case, arms, tmp_path, progress=lambda message: None)
    plain, gancli = result.arms
    assert len(plain.steps("wall")) == len(gancli.steps("wall")) == 2
    assert all(t > 0 for t in plain.steps("wall") + gancli.steps("cpu"))
    assert result.ratio(plain) == pytest.approx(1.0)
    assert result.ratio(gancli) > 0 and result.paired_ratio(gancli) > 0
    assert gancli.maxrss_mib > 50 and plain.maxrss_mib > 50
    assert gancli.sampling["batch"] == 64 and gancli.sampling["images_per_second"] > 0
    # the gancli arm went through `gancli train`: a real run directory with a checkpoint
    assert (tmp_path / "run-dcgan-16-gancli-fp32" / "checkpoints" / "last.safetensors").is_file()


def test_plain_loop_trains_the_plugin_networks():
    import torch

    from benchmarks.plain_dcgan import PlainDCGAN

    images = torch.randint(0, 256, (16, 1, 16, 16), dtype=torch.uint8)
    model = PlainDCGAN(images, z_dim=8, width=4, batch_size=8)
    before = [p.detach().clone() for p in model.netG.parameters()]
    terms = [model.step() for _ in range(3)]
    assert all(math.isfinite(v) for t in terms for v in t.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.netG.parameters()))


def test_plain_wgan_gp_loop_trains_the_plugin_networks():
    import torch

    from benchmarks import plain_wgan_gp
    from benchmarks.plain_wgan_gp import PlainWGANGP
    from gancli_plugin_wgan.config import WGANGPConfig

    # the gancli arm runs the plugin's defaults: both arms must do the same maths
    config = WGANGPConfig()
    assert (plain_wgan_gp.LAMBDA, plain_wgan_gp.CRITIC_ITERS) == (config.gp_lambda, config.n_critic)
    assert (plain_wgan_gp.LR, plain_wgan_gp.BETAS) == (config.lr, (config.beta1, config.beta2))
    assert config.critic_norm == "none"
    images = torch.randint(0, 256, (16, 1, 16, 16), dtype=torch.uint8)
    model = PlainWGANGP(images, z_dim=8, width=4, batch_size=8)
    before = [p.detach().clone() for p in model.netG.parameters()]
    terms = [model.step() for _ in range(3)]
    assert all(math.isfinite(v) for t in terms for v in t.values())
    assert all(t["gp"] >= 0 for t in terms)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.netG.parameters()))
    from benchmarks.peak import count_flops

    assert count_flops(model.step) > 0  # the penalty's double backward under the FLOP counter


def test_results_blocks_are_refreshed_not_duplicated(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# results\n\nhand-written reading\n")
    report.update_results({"throughput": "table one", "modes": "modes one"}, "| a | b |", path)
    report.update_results({"throughput": "table two"}, "| c | d |", path)
    text = path.read_text()
    assert "hand-written reading" in text
    assert "table two" in text and "table one" not in text
    assert "modes one" in text  # a part that did not run keeps its last table
    assert text.count("<!-- bench:throughput -->") == 1
    assert text.index("| a | b |") < text.index("| c | d |")  # history is appended
    assert text.index("<!-- /bench:throughput -->") < text.index(report.HISTORY_TITLE)


def test_line_chart_writes_a_png(tmp_path):
    from PIL import Image

    from benchmarks.plot import line_chart

    path = line_chart({"dcgan": [(0.5, 80.0), (1.0, 40.0)], "wgan": [(1.0, 60.0)]}, tmp_path / "fid.png",
                      title="t", x_label="minutes", y_label="FID", floor=2.0)
    with Image.open(path) as image:
        assert image.size == (900, 560)
        assert len(image.getcolors(maxcolors=10_000) or ()) > 3  # more than a blank canvas


def test_quality_scoring_speaks_the_metrics_api():
    import torch

    from benchmarks.quality import score
    from gancli.metrics.classifier import ClassifierExtractor, SmallCNN

    torch.manual_seed(0)
    extractor = ClassifierExtractor(SmallCNN(1, 32, 10), {"name": "untrained"}, "0" * 64)
    real = torch.randint(0, 256, (64, 1, 32, 32), dtype=torch.uint8)
    real_features, _ = extractor.features(real)
    same = score(extractor, real_features, real, kid_subsets=5)
    noise = score(extractor, real_features, torch.rand(64, 1, 32, 32) * 2 - 1, kid_subsets=5)
    assert same.fid == pytest.approx(0.0, abs=1e-3)
    assert noise.fid > same.fid
    assert 0.0 <= noise.precision <= 1.0 and 0.0 <= noise.recall <= 1.0


@pytest.mark.slow
def test_mode_coverage_harness_trains_and_scores_a_toy():
    from benchmarks import modes

    config = modes.ModeConfig("GAN (non-saturating)", "gan")
    if modes._available(config):
        pytest.skip(modes._available(config))
    results = modes.run(seeds=1, steps=5, configs=(config, modes.ModeConfig("no such", "no-such-family")),
                        datasets=("ring8",), progress=lambda message: None)
    cell = results.cells[("GAN (non-saturating)", "ring8")]
    assert cell.failure is None and cell.total_modes == 8 and 0 <= cell.modes[0] <= 8
    assert results.skipped and results.skipped[0][0] == "no such"
    text = results.markdown()
    assert "PacGAN T1" in text and "GAN (non-saturating)" in text


def test_latency_probe_sees_whether_torch_was_imported():
    from benchmarks import latency

    assert latency.imports_torch(["--help"]) is False
    assert latency._wall(latency.gancli_executable() + ["--version"]) > 0


@pytest.mark.parametrize("family, conditional", [("sngan", True), ("sagan", True), ("biggan", True),
                                                 ("progan", False), ("stylegan", False), ("stylegan2", False)])
def test_plain_loops_of_the_api2_families_train_the_family_networks(family, conditional):
    """Each plain loop builds the networks `gancli train FAMILY` builds (the conformance kit's tiny
    settings here) and trains them: finite losses, G's weights move."""
    import importlib

    import torch

    from benchmarks.worker import FAMILIES, gancli_settings
    from gancli.plugins import get_family

    kit = get_family(family)
    resolution = kit.check_resolution
    tiny = {**kit.check_settings, **({"start_resolution": resolution} if family == "progan" else {})}
    tiny.pop("conditional", None)  # the kit's tiny settings may switch classes off
    arms = FAMILIES[family]
    width = int(tiny.get(arms.width_settings[0], 4))
    z_dim = int(tiny.pop("z_dim", 8))
    worker = {"family": family, "width": width, "z_dim": z_dim, "set": [f"{k}={v}" for k, v in tiny.items()]}
    module, _, name = arms.plain.partition(":")
    plain_loop = getattr(importlib.import_module(module), name)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (16, 1, resolution, resolution), dtype=torch.uint8)
    model = plain_loop(images, z_dim=z_dim, width=width, batch_size=8, settings=gancli_settings(worker),
                       labels=torch.arange(16) % 3 if conditional else None)
    assert model.num_classes == (3 if conditional else 0)
    before = [p.detach().clone() for p in model.netG.parameters()]
    terms = [model.step() for _ in range(2)]
    assert all(math.isfinite(v) for t in terms for v in t.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.netG.parameters()))
