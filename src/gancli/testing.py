"""The plugin conformance kit: ``check_family(name)`` runs what every family must pass.

Third-party plugin authors call it from their own tests, as gancli's built-in
families do (scikit-learn's ``check_estimator`` is the model)::

    from gancli.testing import check_family

    def test_conformance():
        check_family("myfamily")
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from gancli.plugins import Family, get_record


@dataclass
class Report:
    family: str
    passed: list[str] = field(default_factory=list)


class ConformanceError(AssertionError):
    pass


def _tiny_data(kind: str, *, channels: int, resolution: int, num_classes: int, n: int = 64):
    import torch

    from gancli.data.images import TensorData
    from gancli.data.spec import DataSpec

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % num_classes if num_classes else None
    if kind == "points":
        values = torch.randn(n, 2, generator=g)
        return TensorData(DataSpec(kind="points", dim=2, name="check"), values)
    values = torch.randint(0, 256, (n, channels, resolution, resolution), generator=g, dtype=torch.uint8)
    spec = DataSpec(kind="image", channels=channels, resolution=resolution, num_classes=num_classes, name="check")
    return TensorData(spec, values, labels)


def check_family(
    family: Union[str, Family],
    *,
    settings: Optional[dict[str, Any]] = None,
    steps: int = 3,
    verbose: Optional[Callable[[str], None]] = None,
) -> Report:
    """Build, run, train a few steps, checkpoint and reload a family; raise ConformanceError on a failure."""
    import torch

    import gancli
    from gancli.config import RunConfig
    from gancli.objective import GAN, Objective, check_phases
    from gancli.train.loop import train

    name = family if isinstance(family, str) else family.name
    record = get_record(name)
    fam = record.family
    report = Report(name)
    say = verbose or (lambda line: None)

    def passed(what: str) -> None:
        report.passed.append(what)
        say(f"ok  {what}")

    def expect(condition: bool, message: str) -> None:
        if not condition:
            raise ConformanceError(f"{name}: {message}")

    config_model = fam.load_config_model()
    tiny = {**fam.check_settings, **(settings or {})}
    config = config_model.model_validate(tiny)
    config_model.model_validate({})  # the paper's defaults must validate on their own
    passed("config defaults and tiny settings validate")
    first_variant = True

    kinds = [k for k in fam.data_kinds]
    variants = []
    for kind in kinds:
        if kind == "points":
            variants.append(("points", 0, 0, 0))
        else:
            variants.append(("image", 1, fam.check_resolution, 0))
            variants.append(("image", 3, fam.check_resolution, 0))
    if "conditional" in config_model.model_fields and "image" in kinds:
        variants.append(("image", 3, fam.check_resolution, 3))

    for kind, channels, resolution, num_classes in variants:
        label = f"{kind}" + (f" {channels}×{resolution}²" if kind == "image" else "") + (f" {num_classes} classes" if num_classes else "")
        data = _tiny_data(kind, channels=channels, resolution=resolution, num_classes=num_classes)
        cfg = config_model.model_validate({**tiny, **({"conditional": True} if num_classes else {})})
        builder = fam.load_builder()
        torch.manual_seed(0)
        gan = builder(cfg, data.spec)
        expect(isinstance(gan, GAN), "build() must return gancli.objective.GAN")
        expect(isinstance(gan.objective, Objective), "GAN.objective must be a gancli.objective.Objective")
        try:
            phases = check_phases(gan.objective.phases())
        except ValueError as exc:
            raise ConformanceError(f"{name}: objective.phases(): {exc}") from None
        expect(any(p.network == "D" for p in phases) and any(p.network == "G" for p in phases),
               "the phases must train both networks")
        G, D = gan.generator, gan.discriminator
        expect(isinstance(getattr(G, "z_dim", None), int) and G.z_dim > 0, "generator needs an int attribute z_dim")
        expect(int(getattr(G, "num_classes", 0) or 0) == num_classes, f"generator.num_classes must be {num_classes}")
        n = 4
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(1))
        y = torch.arange(n) % num_classes if num_classes else None
        G.eval()
        with torch.no_grad():
            x = G(z, y)
            x_again = G(z, y)
        expect(tuple(x.shape) == (n, *data.spec.shape), f"G output shape {tuple(x.shape)} != {(n, *data.spec.shape)}")
        expect(torch.isfinite(x).all().item(), "G output has non-finite values")
        if kind == "image":
            expect(x.min().item() >= -1.0 - 1e-5 and x.max().item() <= 1.0 + 1e-5, "G images must lie in [-1, 1]")
        expect(torch.equal(x, x_again), "G in eval mode must be deterministic for the same z")
        torch.manual_seed(0)
        G2 = builder(cfg, data.spec).generator.eval()
        with torch.no_grad():
            expect(torch.allclose(G2(z, y), x), "building with the same seed must give the same generator")
        passed(f"{label}: G shapes, range, determinism")
        D.eval()
        with torch.no_grad():
            out = D(x, y)
        out = out[0] if isinstance(out, tuple) else out
        expect(out.shape[0] == n and out.dim() in (1, 2), f"D output must be (N,) or (N, K), got {tuple(out.shape)}")
        passed(f"{label}: D output shape")

        with tempfile.TemporaryDirectory() as tmp:
            def run_config(**train_settings):
                return RunConfig.model_validate({
                    "family": name,
                    "data": {"source": "check"},
                    # a 4-image sample grid: the sampling path is the same, a 64-image grid only costs time
                    "train": {"steps": steps, "batch_size": 8, "log_every": 1, "sample_every": steps,
                              "checkpoint_every": steps, "seed": 0, "ema": True, "sample_grid": 4,
                              **train_settings},
                    "model": cfg.model_dump(mode="json"),
                })

            run = run_config()
            result = train(run, cfg, out=Path(tmp) / "run", data=data, show_progress=False)
            expect(result.step == steps, f"training stopped at step {result.step}, expected {steps}")
            lines = (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()
            expect(len(lines) == steps, "metrics.jsonl must have one line per logged step")
            import json
            import math

            for line in lines:
                values = json.loads(line)
                expect(all(math.isfinite(v) for k, v in values.items() if isinstance(v, float)), f"non-finite metric: {line}")
            passed(f"{label}: {steps} training steps, finite losses")
            pipe = gancli.load(result.last_checkpoint, device="cpu")
            a = pipe.sample(n, seed=3, class_=0 if num_classes else None)
            b = pipe.sample(n, seed=3, class_=0 if num_classes else None)
            expect(torch.equal(a, b), "sampling the same seed twice must give the same output")
            expect(tuple(a.shape) == (n, *data.spec.shape), "sample shape mismatch after reload")
            pipe.sample(n, seed=3, truncation=0.5)
            passed(f"{label}: checkpoint reload, seeded sampling without data")
            if first_variant:
                _check_resume_and_accumulation(name, cfg, data, run_config, result.last_checkpoint, Path(tmp),
                                               steps, expect)
                passed(f"{label}: resume is bit-exact, gradient accumulation trains")
                first_variant = False
    return report


def _check_resume_and_accumulation(name, cfg, data, run_config, straight, tmp: Path, steps: int, expect) -> None:
    """Stopping after steps − 1 and resuming gives the straight run's checkpoint bit for bit; two
    micro-batches per step (train.accumulate = 2) train with finite losses."""
    import torch

    from gancli import checkpoint as ckpt_io
    from gancli.train.loop import train

    first = run_config(steps=steps - 1, checkpoint_every=steps - 1, sample_every=0)
    train(first, cfg, out=tmp / "resumed", data=data, show_progress=False)
    resumed = train(run_config(), cfg, out=tmp / "resumed", data=data, show_progress=False, resume=True)
    a, b = ckpt_io.read(straight), ckpt_io.read(resumed.last_checkpoint)
    expect(set(a.tensor_names) == set(b.tensor_names), "a resumed run must save the same tensors as a straight one")
    ta, tb = a.tensors(""), b.tensors("")
    differing = [k for k in ta if not torch.equal(ta[k], tb[k])]
    expect(not differing, f"resuming is not bit-exact on the CPU: {differing[:3]} differ (objective state or "
                          f"randomness outside Step's draws is missing from the checkpoint)")
    accumulated = train(run_config(steps=2, accumulate=2, checkpoint_every=2, sample_every=0), cfg,
                        out=tmp / "accumulated", data=data, show_progress=False)
    expect(accumulated.step == 2, "training with train.accumulate = 2 must run")
