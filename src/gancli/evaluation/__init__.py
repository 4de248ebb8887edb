"""`gancli eval` as a library: measure a checkpoint (or a dataset) against reference data.

    from gancli.evaluation import evaluate
    report = evaluate("run/checkpoints/last.safetensors", extractor="fmnist-cnn.safetensors", num_samples=10_000)
    report.results["fid"], report.protocol["extractor"]["sha256"]

    from gancli.evaluation import truncation_sweep
    sweep = truncation_sweep("run/checkpoints/last.safetensors", "0.5,1,none", extractor="fmnist-cnn.safetensors")
    sweep.rows[0]["fid"], sweep.write_png("sweep.png")

Cheap to import: torch and the metrics load when a function is called.
"""
from __future__ import annotations

from importlib import import_module

_LAZY_NAMES = {
    "evaluate": "gancli.evaluation.run",
    "truncation_sweep": "gancli.evaluation.sweep",
    "SweepReport": "gancli.evaluation.sweep",
    "EvalReport": "gancli.evaluation.report",
    "train_domain_extractor": "gancli.evaluation.extractor_training",
    "ExtractorTraining": "gancli.evaluation.extractor_training",
    "linear_probe": "gancli.evaluation.discriminator",
    "discriminator_accuracy": "gancli.evaluation.discriminator",
    "load_discriminator": "gancli.evaluation.discriminator",
}

__all__ = list(_LAZY_NAMES)


def __getattr__(name: str):
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'gancli.evaluation' has no attribute {name!r}")
    return getattr(import_module(module), name)
