"""Latent arithmetic on mean latents (Radford et al. 2016, figure 7): parsing, exactness, the picture, the CLI."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import gancli
from gancli.arithmetic import arithmetic_picture, latent_arithmetic, parse_definitions, parse_expression
from gancli.errors import GancliError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _export_support import tiny_checkpoint, wspace_toy_installed  # noqa: E402

DEFINITIONS = {"A": [12, 40, 77], "B": [3, 5, 9], "C": [1, 2]}


def test_expressions_parse_with_signs_and_scales():
    assert parse_expression("A - B + C") == [(1.0, "A"), (-1.0, "B"), (1.0, "C")]
    assert parse_expression(" -smiling_woman+0.5*man − 2 B") == [(-1.0, "smiling_woman"), (0.5, "man"), (-2.0, "B")]
    assert parse_definitions(["A=12,40,77", "B = 3"]) == {"A": [12, 40, 77], "B": [3]}


@pytest.mark.parametrize("text, message", [
    ("", "--expr is empty"),
    ("A -", "ends without a term"),
    ("A B", "expected + or - before 'B' at position 3"),
    ("A - - B", "follows another sign"),
    ("A / B", "unexpected '/' at position 3"),
    ("A*2", "'*' at position 2 must stand between a number and a name"),
])
def test_bad_expressions_are_one_clear_line(text, message):
    with pytest.raises(GancliError) as caught:
        parse_expression(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("definitions, message", [
    (["A"], "must be NAME=SEEDS"), (["A=1", "A=2"], "gives A twice"), (["A=x"], "comma-separated integers"),
    (["A="], "has no seeds"), (["1A=3"], "must be NAME=SEEDS"),
])
def test_bad_definitions_are_one_clear_line(definitions, message):
    with pytest.raises(GancliError, match=message):
        parse_definitions(definitions)


def _check_a_minus_a_plus_b(pipe, **options):
    result = latent_arithmetic(pipe, "A - A + B", DEFINITIONS, **options)
    b = result.terms[2]
    assert b.name == "B" and torch.equal(result.latent, b.latent)
    assert torch.equal(result.image, b.mean_image)  # the same latent gives the same pixels
    # and B's mean latent is the mean of its seeds' latents, rendered like any sample
    assert len(b.images) == 3 and not torch.equal(b.images[0], b.images[1])
    return result


def test_a_minus_a_plus_b_is_bs_mean_latent_image_in_z(tiny_run):
    pipe = gancli.load(tiny_run, device="cpu")
    result = _check_a_minus_a_plus_b(pipe)
    from gancli.sampling import latents

    mean_z = torch.cat([latents(1, pipe.z_dim, seed=s) for s in DEFINITIONS["B"]]).mean(0)
    assert result.space == "z" and torch.allclose(result.latent, mean_z)
    assert torch.equal(result.image, pipe.generate(mean_z[None], seed=0)[0])
    # the variants are the result plus uniform noise of at most ±0.25 in each coordinate
    assert result.variants.shape == (8, *result.image.shape) and not torch.equal(result.variants[0], result.image)


def test_a_minus_a_plus_b_in_w_and_for_a_conditional_model(tmp_path):
    with wspace_toy_installed(tmp_path / "toy"):
        toy = gancli.load(tiny_checkpoint("wspace-toy", tmp_path / "toy-run", num_classes=3), device="cpu")
        result = _check_a_minus_a_plus_b(toy, class_="Shirt")
        assert result.space == "w" and result.latent.shape == (toy.generator.num_ws, toy.generator.w_dim)
        from gancli.sampling import latents

        z = torch.cat([latents(1, toy.z_dim, seed=s) for s in DEFINITIONS["B"]])
        w = toy.mapping(z, torch.full((3,), 1, dtype=torch.long))
        assert torch.allclose(result.latent, w.mean(0))  # the mean of the mapped w, not the map of the mean z
    dcgan = gancli.load(tiny_checkpoint("dcgan", tmp_path / "cond", num_classes=3), device="cpu")
    _check_a_minus_a_plus_b(dcgan, class_=2)


def test_arithmetic_itself_combines_the_means(tiny_run):
    pipe = gancli.load(tiny_run, device="cpu")
    result = latent_arithmetic(pipe, "A - B + 0.5*C", DEFINITIONS, variants=0)
    means = {term.name: term.latent for term in result.terms}
    assert torch.allclose(result.latent, means["A"] - means["B"] + 0.5 * means["C"])
    assert result.variants.shape[0] == 0


def test_the_picture_has_a_column_per_term_and_the_result_block(tiny_run, cli, tmp_path):
    pipe = gancli.load(tiny_run, device="cpu")
    picture = arithmetic_picture(latent_arithmetic(pipe, "A - B + C", DEFINITIONS))
    # 16-px images are drawn at 64 px (4×): three term columns with signs, then a 3×3 block
    assert picture.width == 4 + 3 * (68 + 34) + 3 * 68 + 4
    assert picture.height >= 30 + 3 * 68 + 14 + 68
    out = tmp_path / "arith.png"
    result = cli("arithmetic", tiny_run, "--expr", "A - B + C", "--define", "A=12,40,77", "-D", "B=3,5,9",
                 "-D", "C=1,2", "-D", "unused=4", "--out", out)
    assert result.exit_code == 0, result.output
    assert "A − B + C on mean latents in Z" in result.stderr and "unused not used" in result.stderr
    assert Image.open(out).size == picture.size


@pytest.mark.parametrize("args, message", [
    (["--expr", "A - B", "-D", "A=1"], "uses B, which no --define gives"),
    (["--expr", "A +", "-D", "A=1"], "ends without a term"),
    (["--expr", "A", "-D", "A=1", "--noise-mode", "const"], "--noise-mode is for W-space generators"),
    (["--expr", "A", "-D", "A=1", "--out", "x.gif"], "--out must be a .png"),
])
def test_cli_errors_are_one_line_and_write_nothing(tiny_run, cli, tmp_path, args, message):
    out = ["--out", str(tmp_path / "a.png")] if "--out" not in args else []
    result = cli("arithmetic", tiny_run, *args, *out)
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "a.png").exists()
