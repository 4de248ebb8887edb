"""python -m benchmarks gallery: the README's pictures, one per family, each with what made it.

For each family's CPU recipe (recipes/*-fashion-mnist.toml, and gan-ring8 for the 2-D lab) the gallery
reuses a finished run (--runs NAME=DIR, or a runs root searched for runs of the recipe through their
config.toml) or trains the recipe into --out-root. Then it draws the family's picture with the gancli
commands (a sample grid; the per-class grid for conditional families; the style-mix figure for W-space
families; the last frame of growth.gif for growing ones; the last frame of lab.gif for the 2-D lab),
scores the checkpoint with `gancli eval`, and writes docs/images/NAME.png and docs/images/gallery.json
(commands, commit, date, steps, score). The README's families table, between <!-- gallery --> and
<!-- /gallery -->, is rewritten from gallery.json, so its numbers always come from here.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "docs" / "images"
README = REPO / "README.md"
EXTRACTOR = REPO / "benchmarks" / "artifacts" / "fmnist-cnn.safetensors"
RECORDS = "gallery.json"
BEGIN, END = "<!-- gallery -->", "<!-- /gallery -->"
GANCLI = [sys.executable, "-m", "gancli"]

# Settings that a run may change and still be a run of its recipe (what `gancli train --resume` lets change).
FREE_SETTINGS = {"steps", "precision", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
                 "log_with", "max_nonfinite"}


@dataclass(frozen=True)
class Entry:
    name: str    # the picture is docs/images/NAME.png
    recipe: str
    kind: str    # grid, per-class, style-mix, growth or lab
    line: str    # what the family is, in one line of the README


ENTRIES = (
    Entry("gan", "gan-fashion-mnist", "grid",
          "Goodfellow et al. 2014: MLP G and D; the Improved-GAN techniques of Salimans et al. 2016 as options"),
    Entry("dcgan", "dcgan-fashion-mnist", "grid",
          "Radford et al. 2015: transposed-conv G, strided-conv D, BatchNorm"),
    Entry("wgan", "wgan-fashion-mnist", "grid",
          "Arjovsky et al. 2017: a critic with weight clipping, RMSprop"),
    Entry("wgan-gp", "wgan-gp-fashion-mnist", "grid",
          "Gulrajani et al. 2017: a critic with a gradient penalty"),
    Entry("progan", "progan-fashion-mnist", "growth",
          "Karras et al. 2018: G and D grown by fading in new blocks, here from 16×16 (last frame of growth.gif)"),
    Entry("sngan", "sngan-fashion-mnist", "per-class",
          "Miyato et al. 2018: spectral norm in D, hinge loss, class-conditional (one row per class)"),
    Entry("sagan", "sagan-fashion-mnist", "per-class",
          "Zhang et al. 2019: SNGAN's ResNets with self-attention (one row per class)"),
    Entry("biggan", "biggan-fashion-mnist", "per-class",
          "Brock et al. 2019: shared class embedding, hierarchical latents, orthogonal regularization"),
    Entry("stylegan", "stylegan-fashion-mnist", "style-mix",
          "Karras et al. 2019: mapping network to W, AdaIN, noise inputs (style mixing: coarse styles from the top row)"),
    Entry("stylegan2", "stylegan2-fashion-mnist", "style-mix",
          "Karras et al. 2020: modulated convolutions, lazy R1 and path length (style mixing, as above)"),
    Entry("gan-ring8", "gan-ring8", "lab",
          "the 2-D lab: real and generated points over D's decision surface, with G's gradients (last frame of lab.gif)"),
)
BY_NAME = {e.name: e for e in ENTRIES}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- the commands ------------------------------------------------------------------------------------

def display(value) -> str:
    """A word of a command as a person types it: absolute paths inside the checkout relative to it."""
    text = str(value)
    if os.path.isabs(text) and Path(text).is_relative_to(REPO):
        text = str(Path(text).relative_to(REPO))
    return shlex.quote(text)


def shown(argv: list) -> str:
    return "gancli " + " ".join(display(a) for a in argv)


def gancli(argv: list, *, tmp: Path | None = None) -> str:
    """Run one gancli command; returns it as shown (a temporary folder shown as TMP)."""
    command = shown(argv)
    if tmp is not None:
        command = command.replace(str(tmp), "TMP")
    log(f"$ {command}")
    done = subprocess.run([*GANCLI, *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"gallery: `{command}` failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
    return command


def train_command(entry: Entry, out: Path, steps: int | None) -> list:
    argv = ["train", "--recipe", entry.recipe, "--out", out]
    return argv + (["--steps", steps] if steps else [])


def picture_command(entry: Entry, checkpoint: Path, tmp: Path) -> list | None:
    """The gancli command that draws the picture's pieces into tmp (growth and lab: written by training)."""
    if entry.kind == "grid":
        return ["sample", checkpoint, "-n", 32, "--seed", 0, "--separate", "--out", tmp / "samples"]
    if entry.kind == "per-class":
        return ["sample", checkpoint, "--per-class", 8, "--seed", 0, "--out", tmp / "per-class.png"]
    if entry.kind == "style-mix":
        return ["style-mix", checkpoint, "--rows", "1,2,3", "--cols", "4,5,6", "--styles", "coarse",
                "--out", tmp / "style-mix.png"]
    return None


def eval_command(entry: Entry, checkpoint: Path, out: Path, *, num: int, data: str, extractor: Path) -> list:
    if entry.kind == "lab":
        return ["eval", checkpoint, "--data", "ring8", "--metrics", "modes", "-n", num, "--out", out]
    metrics = "fid,class-acc" if entry.kind == "per-class" else "fid"
    return ["eval", checkpoint, "--data", data, "--extractor", extractor, "-n", num, "--metrics", metrics,
            "--out", out]


# ---- finding runs ------------------------------------------------------------------------------------

def parse_runs(values: list[str]) -> tuple[dict[str, Path], list[Path]]:
    """--runs NAME=DIR[,NAME=DIR...] names a run for a gallery entry; --runs DIR is a root to search."""
    named, roots = {}, []
    for value in values:
        for part in value.split(","):
            name, sep, folder = part.partition("=")
            if not sep:
                roots.append(Path(part))
                continue
            name = name.strip()
            entry = BY_NAME.get(name) or next((e for e in ENTRIES if e.recipe == name), None)
            if entry is None:
                raise SystemExit(f"gallery: --runs {part}: unknown entry {name!r} (one of {', '.join(BY_NAME)})")
            named[entry.name] = Path(folder)
    return named, roots


def recipe_settings(recipe: str) -> dict:
    """The settings `gancli train --recipe R` resolves (read back from --print-config)."""
    done = subprocess.run([*GANCLI, "train", "--recipe", recipe, "--print-config"], capture_output=True, text=True,
                          check=True)
    return tomllib.loads(done.stdout)


def checkpoint_step(path: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return int((f.metadata() or {}).get("gancli.step", -1))


def flat(tree: dict, prefix: str = "") -> dict:
    """{"train.steps": 1200, ...} from the nested settings."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differences(settings: dict, recipe: dict) -> list[str]:
    """The settings in which a run differs from its recipe, those in FREE_SETTINGS aside and those the run
    predates (a setting added to gancli after the run was made is absent from its config.toml)."""
    a, b = flat(settings), flat(recipe)
    free = {f"train.{k}" for k in FREE_SETTINGS}
    return sorted(k for k in a if k not in free and a[k] != b.get(k))


def finished_run(folder: Path) -> dict | None:
    """A run folder's settings when it trained to its steps, else None."""
    config, last = folder / "config.toml", folder / "checkpoints" / "last.safetensors"
    if not (config.is_file() and last.is_file()):
        return None
    settings = tomllib.loads(config.read_text())
    if checkpoint_step(last) != settings.get("train", {}).get("steps"):
        return None
    return settings


def find_run(recipe: dict, roots: list[Path], steps: int | None) -> Path | None:
    """The newest finished run of the recipe under the roots: the recipe's settings, those in FREE_SETTINGS
    aside, trained to `steps` (default: the recipe's)."""
    steps = steps or recipe["train"]["steps"]
    found = []
    for root in roots:
        for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []:
            settings = finished_run(folder)
            if settings is not None and not differences(settings, recipe) and settings["train"]["steps"] == steps:
                found.append(((folder / "checkpoints" / "last.safetensors").stat().st_mtime, folder))
    return max(found)[1] if found else None


# ---- pictures ----------------------------------------------------------------------------------------

def tile(paths: list[Path], cols: int, padding: int = 2):
    """The images side by side, row-major, with white padding (as gancli's own grids)."""
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in paths]
    w, h = images[0].size
    rows = -(-len(images) // cols)
    canvas = Image.new("RGB", (cols * (w + padding) + padding, rows * (h + padding) + padding), (255, 255, 255))
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas.paste(image, (padding + c * (w + padding), padding + r * (h + padding)))
    return canvas


def last_frame(path: Path):
    from PIL import Image

    with Image.open(path) as gif:
        gif.seek(gif.n_frames - 1)
        return gif.convert("RGB")


def picture(entry: Entry, run: Path, tmp: Path, scale: int):
    """The entry's picture from what its command drew into tmp, or from the run's own GIF."""
    from PIL import Image

    if entry.kind == "grid":
        image = tile(sorted((tmp / "samples").glob("*.png")), cols=8)
    elif entry.kind in ("per-class", "style-mix"):
        image = Image.open(tmp / f"{entry.kind}.png").convert("RGB")
    else:
        gif = run / ("growth.gif" if entry.kind == "growth" else "lab.gif")
        if not gif.is_file():
            raise SystemExit(f"gallery: {gif} is missing; train the run to its end first")
        image, scale = last_frame(gif), 1
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST) if scale > 1 else image


def save_small(image, path: Path) -> None:
    """PNG, grayscale where the picture is gray, else at most 128 colours; written atomically."""
    from PIL import Image

    r, g, b = image.convert("RGB").split()
    small = r if r.tobytes() == g.tobytes() == b.tobytes() else image.quantize(128, method=Image.Quantize.MEDIANCUT)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    small.save(part, format="PNG", optimize=True)
    os.replace(part, path)


# ---- scores ------------------------------------------------------------------------------------------

def score(report: dict) -> dict:
    """What the README shows of a `gancli eval --out` report, with the report's own labels."""
    results, labels = report["results"], report["labels"]
    keys = [k for k in ("fid", "class_acc", "modes_captured", "high_quality_share") if k in results]
    out = {"values": {k: results[k] for k in keys}, "labels": {k: labels[k] for k in keys}}
    if "total_modes" in results:
        out["values"]["total_modes"] = results["total_modes"]
    return out


def score_text(values: dict) -> str:
    parts = []
    if "fid" in values:
        parts.append(f"FID {values['fid']:.3g}")
    if "class_acc" in values:
        parts.append(f"class accuracy {values['class_acc']:.2f}")
    if "modes_captured" in values:
        parts.append(f"{values['modes_captured']:.0f} / {values['total_modes']:.0f} modes")
    if "high_quality_share" in values:
        parts.append(f"{values['high_quality_share']:.0%} high-quality")
    return ", ".join(parts)


# ---- one entry ---------------------------------------------------------------------------------------

def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def make(entry: Entry, *, run: Path | None, out_root: Path, steps: int | None, num: int, data: str,
         extractor: Path, images: Path, scale: int) -> dict:
    """Train (unless given a run), draw and score one entry; returns its gallery.json record."""
    commands, seconds = [], {}
    recipe = recipe_settings(entry.recipe)
    recipe_steps = recipe["train"]["steps"]
    if run is None:
        run = out_root / f"{entry.name}-{steps or recipe_steps}"
        argv = train_command(entry, run, steps) + (["--resume"] if run.exists() else [])
        started = time.perf_counter()
        commands.append(gancli(argv))
        seconds["train"] = round(time.perf_counter() - started, 1)
    else:
        log(f"{entry.name}: reusing the run in {run}")
        family = tomllib.loads((run / "config.toml").read_text()).get("family")
        if family != recipe["family"]:
            raise SystemExit(f"gallery: {run} is a {family} run; {entry.name} needs one of {entry.recipe}")
    settings = tomllib.loads((run / "config.toml").read_text())
    checkpoint = run / "checkpoints" / "last.safetensors"
    with tempfile.TemporaryDirectory(prefix="gancli-gallery-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        argv = picture_command(entry, checkpoint, tmp)
        if argv is not None:
            commands.append(gancli(argv, tmp=tmp))
        save_small(picture(entry, run, tmp, scale), images / f"{entry.name}.png")
        seconds["picture"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        commands.append(gancli(eval_command(entry, checkpoint, tmp / "eval.json", num=num, data=data,
                                            extractor=extractor), tmp=tmp))
        seconds["eval"] = round(time.perf_counter() - started, 1)
        report = json.loads((tmp / "eval.json").read_text())
    source = report["protocol"]["source"]
    changed = differences(settings, recipe)
    again = train_command(entry, out_root / f"{entry.name}-{source['step']}",
                          source["step"] if source["step"] != recipe_steps else None)
    return {
        "name": entry.name, "recipe": entry.recipe, "family": source["family"], "kind": entry.kind,
        "picture": f"{entry.name}.png", "run": display(run), "trained_here": "train" in seconds,
        "commands": commands, "trains_an_equal_run": None if changed else shown(again), "commit": git("rev-parse", "HEAD"), "tree_dirty": bool(git("status", "--porcelain")),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "steps": source["step"],
        "recipe_steps": recipe_steps,
        "differs_from_recipe": changed, "images_seen": source["images_seen"], "generator": source["generator"],
        "checkpoint_sha256": source["checkpoint_sha256"], "num_samples": report["protocol"]["num_samples"],
        "score": score(report), "seconds": seconds,
    }


# ---- gallery.json and the README ---------------------------------------------------------------------

def read_records(images: Path) -> dict:
    path = images / RECORDS
    return json.loads(path.read_text()) if path.is_file() else {}


def write_records(images: Path, records: dict) -> None:
    ordered = {e.name: records[e.name] for e in ENTRIES if e.name in records}
    path = images / RECORDS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_name(RECORDS + ".part").write_text(json.dumps(ordered, indent=1, ensure_ascii=False) + "\n")
    os.replace(path.with_name(RECORDS + ".part"), path)


def readme_block(records: dict, images_link: str = "docs/images") -> str:
    """The README's families table: a row per entry, the picture and score from its record."""
    rows = ["| picture | family | make it | score |", "|---|---|---|---|"]
    for entry in ENTRIES:
        command = f"`gancli train --recipe {entry.recipe}`"
        record = records.get(entry.name)
        if record is None:
            cell, measured = "not made yet", f"none yet: `python -m benchmarks gallery --only {entry.name}`"
        else:
            cell = f"![{entry.name}]({images_link}/{record['picture']})"
            notes = [f"step {record['steps']}" + (f" of the recipe's {record['recipe_steps']}"
                                                  if record["steps"] != record["recipe_steps"] else ""),
                     f"N = {record['num_samples']}", record["date"]]
            if record["differs_from_recipe"]:
                notes.append("settings changed: " + ", ".join(record["differs_from_recipe"]))
            measured = f"{score_text(record['score']['values'])} ({'; '.join(notes)})"
        rows.append(f"| {cell} | **{entry.name}**: {entry.line} | {command} | {measured} |")
    labels = sorted({label for record in records.values() for label in record["score"]["labels"].values()})
    if labels:
        rows += ["", "Scores by `gancli eval`, with its labels: " + "; ".join(labels) + ". Commands, commits and "
                 f"checkpoint hashes: [{RECORDS}]({images_link}/{RECORDS})."]
    return "\n".join(rows)


def rewrite_readme(path: Path, block: str) -> None:
    text = path.read_text(encoding="utf-8")
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise SystemExit(f"gallery: {path} needs one {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    path.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}", encoding="utf-8")


def main(args) -> int:
    images, readme = Path(args.images), Path(args.readme_file)
    link = Path(os.path.relpath(images.resolve(), readme.resolve().parent)).as_posix()
    if args.readme:
        rewrite_readme(readme, readme_block(read_records(images), link))
        log(f"wrote the gallery block of {readme}")
        return 0
    wanted = args.only.split(",") if args.only else list(BY_NAME)
    unknown = [n for n in wanted if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"gallery: unknown entries {unknown} (one of {', '.join(BY_NAME)})")
    named, roots = parse_runs(args.runs or [])
    out_root = Path(args.out_root)
    records, started = read_records(images), time.perf_counter()
    for name in wanted:
        entry = BY_NAME[name]
        run = named.get(name) or find_run(recipe_settings(entry.recipe), [*roots, out_root], args.steps)
        records[name] = make(entry, run=run, out_root=out_root, steps=args.steps, num=args.num_samples,
                             data=args.data, extractor=Path(args.extractor), images=images, scale=args.scale)
        write_records(images, records)
        log(f"{name}: {score_text(records[name]['score']['values'])} at step {records[name]['steps']}")
    if not args.no_readme:
        rewrite_readme(readme, readme_block(records, link))
    log(f"gallery: {len(wanted)} entries in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("--only", help=f"comma-separated entries (default: all: {','.join(BY_NAME)})")
    parser.add_argument("--runs", action="append",
                        help="NAME=DIR[,NAME=DIR...]: use that run; DIR: search it for finished runs of each recipe")
    parser.add_argument("--steps", type=int, help="train (or find) runs of this many steps, not the recipe's")
    parser.add_argument("-n", "--num-samples", type=int, default=2000, help="samples scored by gancli eval")
    parser.add_argument("--data", default="fashion-mnist", help="reference data of the image families")
    parser.add_argument("--extractor", default=str(EXTRACTOR), help="feature extractor of gancli eval")
    parser.add_argument("--out-root", default="runs/gallery", help="where new runs are trained (searched too)")
    parser.add_argument("--images", default=str(IMAGES), help="where the pictures and gallery.json go")
    parser.add_argument("--scale", type=int, default=2, help="nearest-neighbour enlargement of the grids")
    parser.add_argument("--readme-file", default=str(README), help="the README whose gallery block is rewritten")
    parser.add_argument("--readme", action="store_true", help="only rewrite the README block from gallery.json")
    parser.add_argument("--no-readme", action="store_true", help="leave the README alone")
