"""The README's pictures: `python -m benchmarks gallery` on a tiny run, its parts, and the committed gallery
(every family has its picture, the README's table is the one gallery.json gives)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import gallery  # noqa: E402
from benchmarks.__main__ import main as benchmarks_main  # noqa: E402
from test_docs import parse_gancli  # noqa: E402

IMAGES = ROOT / "docs" / "images"
RECORDS = gallery.read_records(IMAGES)


def readme_block(text: str) -> str:
    return text.split(gallery.BEGIN + "\n", 1)[1].split("\n" + gallery.END, 1)[0]


# ---- the committed gallery ---------------------------------------------------------------------------

def test_the_readme_table_is_the_one_gallery_json_gives():
    written = readme_block((ROOT / "README.md").read_text(encoding="utf-8"))
    assert written == gallery.readme_block(RECORDS), "run `python -m benchmarks gallery --readme`"


@pytest.mark.parametrize("entry", gallery.ENTRIES, ids=lambda e: e.name)
def test_every_family_has_its_picture(entry):
    """A family the gallery has not made yet is skipped with the command that makes it (the README row
    says "not made yet"); a made one must have its small PNG and its record."""
    record = RECORDS.get(entry.name)
    if record is None:
        pytest.skip(f"no picture of {entry.name} yet (its recipe run is not made): "
                    f"python -m benchmarks gallery --only {entry.name}")
    picture = IMAGES / record["picture"]
    assert picture.is_file(), f"{picture} is missing"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size < 150_000, f"{picture.name}: {picture.stat().st_size} bytes; keep it small"
    assert (record["recipe"], record["kind"]) == (entry.recipe, entry.kind)
    assert len(record["commit"]) == 40 and record["steps"] > 0 and record["date"]


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_the_recorded_commands_parse(name):
    commands = list(RECORDS[name]["commands"])
    if RECORDS[name]["trains_an_equal_run"]:
        commands.append(RECORDS[name]["trains_an_equal_run"])
    for command in commands:
        words = command.split()
        assert words[0] == "gancli"
        parse_gancli(words[1:])


def test_the_entries_are_the_cpu_recipes_of_every_family():
    from gancli import plugins

    recipes = {p.stem for p in (ROOT / "recipes").glob("*-fashion-mnist.toml")} | {"gan-ring8"}
    assert {e.recipe for e in gallery.ENTRIES} == recipes
    families = {tomllib.loads((ROOT / "recipes" / f"{e.recipe}.toml").read_text())["family"] for e in gallery.ENTRIES}
    assert families == {name for name, record in plugins.discover().items() if record.builtin}


# ---- its parts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry", gallery.ENTRIES, ids=lambda e: e.name)
def test_each_kind_of_picture_is_a_valid_gancli_command(entry, tmp_path):
    ckpt = tmp_path / "run" / "checkpoints" / "last.safetensors"
    for argv in (gallery.picture_command(entry, ckpt, tmp_path), gallery.train_command(entry, tmp_path, 50),
                 gallery.eval_command(entry, ckpt, tmp_path / "e.json", num=2000, data="fashion-mnist",
                                      extractor=gallery.EXTRACTOR)):
        if argv is not None:
            parse_gancli([str(a) for a in argv])
    picture = gallery.picture_command(entry, ckpt, tmp_path)
    assert (picture is None) == (entry.kind in ("growth", "lab"))
    assert ("--per-class" in picture) == (entry.kind == "per-class") if picture else True


def fake_run(folder: Path, settings: dict, step: int) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.toml").write_text(toml(settings))
    save_file({"x": np.zeros(1, np.float32)}, str(folder / "checkpoints" / "last.safetensors"),
              metadata={"gancli.step": str(step)})
    return folder


def toml(settings: dict) -> str:
    lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items() if not isinstance(v, dict)]
    for section, part in settings.items():
        if isinstance(part, dict):
            lines += [f"[{section}]", *(f"{k} = {json.dumps(v)}" for k, v in part.items())]
    return "\n".join(lines) + "\n"


def test_runs_are_found_by_their_recipe(tmp_path):
    recipe = {"family": "dcgan", "data": {"source": "fashion-mnist"},
              "train": {"steps": 1200, "log_every": 50}, "model": {"lr": 0.0002}}
    def variant(**train):
        return {**recipe, "train": {**recipe["train"], **train}}
    fake_run(tmp_path / "short", variant(steps=50, log_every=10), 50)
    fake_run(tmp_path / "long", variant(steps=2400), 2400)
    fake_run(tmp_path / "killed", variant(), 600)                                  # not finished
    fake_run(tmp_path / "other-lr", {**variant(), "model": {"lr": 1e-4}}, 1200)    # another recipe
    assert gallery.find_run(recipe, [tmp_path], None) is None                      # none of the recipe's 1200 steps
    assert gallery.find_run(recipe, [tmp_path], 50) == tmp_path / "short"
    assert gallery.find_run(recipe, [tmp_path], 2400) == tmp_path / "long"
    fake_run(tmp_path / "recipe", variant(precision="bf16"), 1200)
    assert gallery.find_run(recipe, [tmp_path], None) == tmp_path / "recipe"
    assert gallery.find_run(recipe, [tmp_path / "nowhere"], None) is None
    assert gallery.differences({**recipe, "model": {"lr": 1e-4}}, recipe) == ["model.lr"]
    newer = {**recipe, "train": {**recipe["train"], "ema_rampup": 0.05}}  # a setting added after the run
    assert gallery.differences(recipe, newer) == [] and gallery.differences(newer, recipe) == ["train.ema_rampup"]
    named, roots = gallery.parse_runs(["dcgan=a,sngan-fashion-mnist=b", "runs"])
    assert named == {"dcgan": Path("a"), "sngan": Path("b")} and roots == [Path("runs")]


def test_the_table_says_how_far_a_run_trained():
    record = {"picture": "dcgan.png", "steps": 50, "recipe_steps": 1200, "num_samples": 2000, "date": "2026-01-02",
              "differs_from_recipe": [], "score": {"values": {"fid": 123.456}, "labels": {"fid": "FID-2k vs test (x)"}}}
    block = gallery.readme_block({"dcgan": record})
    row = next(line for line in block.splitlines() if "**dcgan**" in line)
    assert "![dcgan](docs/images/dcgan.png)" in row and "FID 123 (step 50 of the recipe's 1200; N = 2000" in row
    assert "`gancli train --recipe dcgan-fashion-mnist`" in row
    assert "FID-2k vs test (x)" in block
    assert block.count("not made yet") == len(gallery.ENTRIES) - 1


# ---- end to end, on a tiny run -----------------------------------------------------------------------

def test_the_gallery_draws_scores_and_records_a_tiny_run(tiny_run, tiny_npz, tmp_path, cli):
    run = tiny_run.parent.parent
    data = run.parent / "data.npz"
    extractor = tmp_path / "tiny-cnn.safetensors"
    made = cli("eval", "train-extractor", "--data", tiny_npz, "--steps", "2", "--resolution", "16", "--out", extractor)
    assert made.exit_code == 0, made.output
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{gallery.BEGIN}\nold\n{gallery.END}\n\nend\n")
    images = tmp_path / "images"
    assert benchmarks_main(["gallery", "--only", "dcgan", "--runs", f"dcgan={run}", "--data", str(data),
                            "--extractor", str(extractor), "-n", "8", "--images", str(images),
                            "--readme-file", str(readme)]) == 0

    from PIL import Image

    picture = Image.open(images / "dcgan.png")
    assert picture.size == ((8 * 18 + 2) * 2, (4 * 18 + 2) * 2) and picture.mode == "L"  # 8×4 of 16², ×2
    record = json.loads((images / "gallery.json").read_text())["dcgan"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert record["commit"] == head and record["steps"] == 3 and record["num_samples"] == 8
    assert math.isfinite(record["score"]["values"]["fid"]) and record["score"]["labels"]["fid"].startswith("FID-8 ")
    assert "model.ngf" in record["differs_from_recipe"] and record["trains_an_equal_run"] is None
    assert [c.split()[1] for c in record["commands"]] == ["sample", "eval"]
    for command in record["commands"]:
        parse_gancli(command.split()[1:])
    text = readme.read_text()
    assert text.startswith("# x\n\n") and text.endswith("\n\nend\n") and "old" not in text
    assert "step 3 of the recipe's 1200" in text and "settings changed: " in text
    assert "![dcgan](images/dcgan.png)" in text  # linked from the README's folder

    readme.write_text(f"# y\n{gallery.BEGIN}\n{gallery.END}\n")  # --readme: the same table from gallery.json alone
    assert benchmarks_main(["gallery", "--readme", "--images", str(images), "--readme-file", str(readme)]) == 0
    assert readme_block(readme.read_text()) == readme_block(text)
