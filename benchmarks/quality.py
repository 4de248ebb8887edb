"""Quality at a fixed CPU budget on Fashion-MNIST 32×32: FID/KID/precision/recall against wall-clock.

Each installed family with a ``<family>-fashion-mnist`` recipe trains through the real command line
for the same wall-clock budget (stopped with SIGINT, which saves a checkpoint), keeping a checkpoint
every 100 steps; checkpoints are then scored with a Fashion-MNIST classifier as the feature extractor
(gancli.metrics.classifier; its numbers are not Inception FIDs and are named by the extractor's
sha256). The real-vs-real floor compares training and test images at the same N.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from benchmarks.machine import worker_env

HERE = Path(__file__).resolve().parent
PLOT = HERE / "fid_vs_time.png"
CHECKPOINT_EVERY = 100
POINTS_PER_CURVE = 8


def cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    path = root / "gancli" / "benchmarks"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Score:
    step: int
    minutes: float
    fid: float
    kid: float
    precision: float
    recall: float
    class_acc: Optional[float] = None  # conditional models: share of samples the classifier puts in their class


@dataclass
class FamilyRun:
    family: str
    recipe: str
    scores: list[Score] = field(default_factory=list)
    images_seen: int = 0
    failure: Optional[str] = None


@dataclass
class QualityResults:
    runs: list[FamilyRun]
    floor: Score
    budget_minutes: float
    num_samples: int
    extractor: str
    skipped: list[str]

    def markdown(self) -> str:
        from benchmarks.report import fmt, table

        rows = []
        for run in self.runs:
            if run.failure or not run.scores:
                rows.append((run.family, run.recipe, "—", "—", "—", "—", "—", "—", "—", run.failure or "no checkpoint"))
                continue
            last = run.scores[-1]
            best = min(run.scores, key=lambda s: s.fid)
            rows.append((run.family, run.recipe, last.step, run.images_seen, fmt(last.fid, 2), fmt(last.kid, 2),
                         fmt(last.precision, 3), fmt(last.recall, 3),
                         "—" if last.class_acc is None else fmt(last.class_acc, 3),
                         f"best FID {best.fid:.2f} at {best.minutes:.1f} min"))
        f = self.floor
        rows.append(("real vs real (train vs test)", "—", "—", "—", fmt(f.fid, 2), fmt(f.kid, 2),
                     fmt(f.precision, 3), fmt(f.recall, 3), fmt(f.class_acc, 3), "the floor (class acc.: the classifier on these training images)"))
        skipped = "".join(f"\n- skipped {s}" for s in self.skipped)
        return (
            f"### Quality at a fixed CPU budget: Fashion-MNIST 32×32, {self.budget_minutes:g} min of training per family\n\n"
            f"Features: {self.extractor}. N = {self.num_samples} generated vs {self.num_samples} test images; KID is on the scale of these unnormalised features (read it against the floor); "
            "precision/recall with k = 3; class accuracy (conditional models): the share of samples, drawn with the classes in turn, "
            "that the classifier assigns to the class they were generated for. "
            "Scores are those of the last checkpoint kept (every 100 steps) within the budget.\n\n"
            + table(("family", "recipe", "steps", "images seen", "FID", "KID", "precision", "recall", "class acc.", "notes"), rows)
            + skipped + f"\n\n![FID against wall-clock]({PLOT.name})"
        )


def _extractor(progress):
    """The Fashion-MNIST classifier extractor, trained once and cached (by its file's sha256)."""
    from gancli.data.sources import load_data
    from gancli.metrics.classifier import load_extractor, save_extractor, train_extractor

    try:  # the evaluation library's own recipe for the extractor (`gancli eval train-extractor`)
        from gancli.evaluation.extractor_training import train_domain_extractor
    except ImportError:
        train_domain_extractor = None
    if train_domain_extractor is not None:
        path = cache_dir() / "fashion-mnist-domain-extractor.safetensors"
        if not path.exists():
            progress("quality: training the Fashion-MNIST feature extractor with gancli.evaluation (cached afterwards)")
            train_domain_extractor("fashion-mnist", path, log=progress)
        return load_extractor(path)
    path = cache_dir() / "fashion-mnist-smallcnn.safetensors"
    if not path.exists():
        progress("quality: training the Fashion-MNIST feature extractor (cached afterwards)")
        train = load_data("fashion-mnist", resolution=32, channels=1, split="train")
        test = load_data("fashion-mnist", resolution=32, channels=1, split="test")
        model, accuracy = train_extractor(train.values, train.labels.numpy(), test.values, test.labels.numpy(),
                                          steps=3000, seed=0)
        save_extractor(model, path, {"name": "fashion-mnist-smallcnn", "test_accuracy": accuracy,
                                     "training_data": "fashion-mnist train, 3000 steps, seed 0"})
    return load_extractor(path)


def score(extractor, real_features, images, step: int = 0, minutes: float = 0.0, kid_subsets: int = 100,
          labels=None) -> Score:
    from gancli.metrics.frechet import frechet_distance
    from gancli.metrics.kid import kernel_inception_distance
    from gancli.metrics.manifold import precision_recall

    fake_features, logits = extractor.features(images)
    kid = kernel_inception_distance(real_features, fake_features, subsets=kid_subsets)
    pr = precision_recall(real_features, fake_features, k=3)
    class_acc = None if labels is None else float((logits.argmax(axis=1) == np.asarray(labels)).mean())
    return Score(step, minutes, frechet_distance(real_features, fake_features), float(kid[0]), float(pr[0]), float(pr[1]),
                 class_acc)


def train_for(family: str, recipe: str, budget_seconds: float, out: Path, progress) -> Optional[str]:
    """Run ``gancli train`` until its own clock passes the budget, then interrupt it (it saves first)."""
    from benchmarks.latency import gancli_executable

    argv = [*gancli_executable(), "train", family, "--recipe", recipe, "--out", str(out), "--steps", "10000000",
            "--checkpoint-every", str(CHECKPOINT_EVERY), "--log-every", "50", "--set", "train.keep_checkpoints=100000"]
    log = open(out.parent / f"{out.name}.log", "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=worker_env())
    metrics = out / "metrics.jsonl"
    try:
        while proc.poll() is None:
            time.sleep(2.0)
            if metrics.exists():
                lines = metrics.read_text().strip().splitlines()
                if lines and json.loads(lines[-1])["seconds"] >= budget_seconds:
                    proc.send_signal(signal.SIGINT)
                    proc.wait(timeout=300)
                    break
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    if code not in (0, 130):
        return (out.parent / f"{out.name}.log").read_text(errors="replace").strip().splitlines()[-1][:200]
    return None


def _evenly(items: list, count: int) -> list:
    if len(items) <= count:
        return items
    picks = {round(i * (len(items) - 1) / (count - 1)) for i in range(count)}
    return [items[i] for i in sorted(picks)]


def _recipes() -> tuple[list[tuple[str, str]], list[str]]:
    from gancli.config import list_recipes
    from gancli.plugins import discover

    records = discover()
    found, skipped = [], []
    for name in sorted(list_recipes()):
        if not name.endswith("-fashion-mnist"):
            continue
        family = name.removesuffix("-fashion-mnist")
        record = records.get(family)
        if record is None or not record.ok:
            skipped.append(f"recipe {name}: family {family!r} not installed or broken")
        else:
            found.append((family, name))
    return found, skipped


def _score_run(run: FamilyRun, out: Path, extractor, real_features, num_samples: int, progress) -> None:
    import gancli

    seconds = {}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        entry = json.loads(line)
        seconds[entry["step"]] = entry["seconds"]
        run.images_seen = entry["images_seen"]
    checkpoints = sorted(out.glob("checkpoints/step-*.safetensors"))
    for path in _evenly(checkpoints, POINTS_PER_CURVE):
        step = int(path.stem.split("-")[1])
        if step not in seconds:
            continue
        pipe = gancli.load(path)
        images = pipe.sample(num_samples, seed=0)
        labels = pipe.labels(num_samples)  # sample() draws the classes in turn; None when unconditional
        run.scores.append(score(extractor, real_features, images, step, seconds[step] / 60,
                                labels=None if labels is None else labels.numpy()))
        progress(f"quality: {run.family} step {step} ({seconds[step] / 60:.1f} min): FID {run.scores[-1].fid:.2f}")


def run(budget_minutes: float = 10.0, num_samples: int = 5000, progress=print) -> QualityResults:
    from gancli.data.sources import load_data

    extractor = _extractor(progress)
    test = load_data("fashion-mnist", resolution=32, channels=1, split="test")
    train = load_data("fashion-mnist", resolution=32, channels=1, split="train")
    real_features, _ = extractor.features(test.values[:num_samples])
    floor = score(extractor, real_features, train.values[:num_samples], labels=train.labels[:num_samples].numpy())
    label = (f"{extractor.name} (test accuracy {extractor.metadata.get('test_accuracy', float('nan')):.3f}, "
             f"sha256 {extractor.sha256[:12]})")
    families, skipped = _recipes()
    runs = []
    with tempfile.TemporaryDirectory(prefix="gancli-quality-") as tmp:
        # every family trains first, one at a time, so that only the timed part needs the machine alone
        for family, recipe in families:
            progress(f"quality: {family} ({recipe}) for {budget_minutes:g} min")
            run = FamilyRun(family, recipe)
            runs.append(run)
            run.failure = train_for(family, recipe, budget_minutes * 60, Path(tmp) / family, progress)
        progress("quality: training done; scoring the checkpoints")
        for run in runs:
            if not run.failure:
                _score_run(run, Path(tmp) / run.family, extractor, real_features, num_samples, progress)
    from benchmarks.plot import line_chart

    series = {r.family: [(s.minutes, s.fid) for s in r.scores] for r in runs if r.scores}
    line_chart(series, PLOT, title=f"Fashion-MNIST 32x32: FID ({extractor.name} features) vs training wall-clock",
               x_label="minutes of training", y_label="FID", floor=floor.fid)
    return QualityResults(runs, floor, budget_minutes, num_samples, label, skipped)
