"""Export a trained generator: a Hugging Face style model folder, generator-only safetensors,
TorchScript or ONNX.

Every export reads and validates its source first and writes into a temporary file or folder
beside the output, renamed into place only when complete, so a damaged checkpoint, a failed
check or a crash leaves nothing behind; an existing output is never replaced.

TorchScript and ONNX files are checked after writing: the file is loaded back (torch.jit.load,
onnxruntime) and run on random inputs next to the PyTorch generator; a difference above
:data:`TOLERANCE` fails the export.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from gancli import checkpoint as ckpt_io
from gancli.errors import GancliError
from gancli.references import read_checkpoint

FORMATS = ("hf", "safetensors", "torchscript", "onnx")
SUFFIXES = {"hf": "-hf", "safetensors": "-generator.safetensors", "torchscript": "-generator.pt", "onnx": "-generator.onnx"}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
TOLERANCE = 1e-4  # fp32: the largest |exported − PyTorch| an export may show on random inputs
CHECK_BATCHES = (5, 1)  # traced at batch 2; checked at other sizes, so a batch size fixed by tracing shows
SAMPLE_IMAGE = "samples.png"
TORCHSCRIPT_METADATA = "gancli.json"  # the TorchScript extra file holding the export's description


@dataclass
class ExportResult:
    path: Path
    format: str
    max_difference: Optional[float] = None  # |exported − PyTorch| (graphs) or |folder − checkpoint| (hf samples)
    compared: str = ""  # what the difference was measured on
    notes: list[str] = field(default_factory=list)


def default_output(checkpoint: Path, fmt: str) -> Path:
    return checkpoint.with_name(checkpoint.stem + SUFFIXES[fmt])


def export(checkpoint: str | Path, fmt: str, out: Optional[Path] = None, *, ema: Optional[bool] = None,
           dtype: str = "fp32", truncation: Optional[float] = None, noise_mode: Optional[str] = None,
           license: Optional[str] = None, repo_id: Optional[str] = None, eval_reports: Sequence[Path] = (),
           log: Optional[Callable[[str], None]] = None) -> ExportResult:
    """Export the generator of ``checkpoint`` (a checkpoint file, model folder or hub id) as ``fmt``.

    ``ema``: None exports the EMA generator when present, False the trained (raw) weights.
    ``dtype`` (hf, safetensors): fp32, fp16 or bf16 floating tensors. ``truncation`` (ψ) and
    ``noise_mode`` ("const" or "none") are fixed into TorchScript/ONNX graphs of W-space models.
    ``license``, ``repo_id`` and ``eval_reports`` (JSON written by ``gancli eval --out``) go into the
    hf model card.
    """
    say = log or (lambda message: None)
    if fmt not in FORMATS:
        raise GancliError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if dtype not in DTYPES:
        raise GancliError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if fmt in ("torchscript", "onnx") and dtype != "fp32":
        raise GancliError(f"{fmt} exports are fp32 (their check against PyTorch is at fp32 tolerance); drop --dtype")
    if fmt not in ("torchscript", "onnx") and (truncation is not None or noise_mode is not None):
        raise GancliError("--truncation and --noise-mode are fixed into torchscript and onnx graphs; an hf or "
                          "safetensors export keeps the whole generator, so choose them when sampling")
    if fmt != "hf" and (license is not None or repo_id is not None or eval_reports):
        raise GancliError("--license, --repo-id and --eval-report describe the model card of --format hf")
    ckpt = read_checkpoint(checkpoint)  # a damaged source fails before anything is written
    out = Path(out).expanduser() if out is not None else default_output(ckpt.path, fmt)
    if out.exists() or out.is_symlink():
        raise GancliError(f"{out} already exists; choose another --out or remove it first (exports never overwrite)")
    if out.resolve() in (ckpt.path.resolve(), ckpt.path.parent.resolve()):
        raise GancliError("--out must differ from the checkpoint itself")
    _make_parent(out)
    if fmt == "hf":
        from gancli.model_card import CardInputs

        card = CardInputs(license=license, repo_id=repo_id, eval_reports=[Path(p) for p in eval_reports])
        return _export_hf(ckpt, out, ema=ema, dtype=dtype, card=card, say=say)
    if fmt == "safetensors":
        return _export_safetensors(ckpt, out, ema, dtype)
    return _export_graph(ckpt, fmt, out, ema=ema, truncation=truncation, noise_mode=noise_mode, say=say)


def _make_parent(out: Path) -> None:
    blocker = next((p for p in (out.parent, *out.parent.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise GancliError(f"cannot write {out}: {blocker} is a file, not a folder; choose another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GancliError(f"cannot create {out.parent}: {exc.strerror}; choose another --out") from None
    if not os.access(out.parent, os.W_OK):
        raise GancliError(f"cannot write to {out.parent}: permission denied; choose another --out")


# ---------------------------------------------------------------- weights


def _cast(tensors: dict[str, torch.Tensor], dtype: str) -> dict[str, torch.Tensor]:
    """Floating tensors in ``dtype``; integer buffers (BatchNorm's num_batches_tracked) as they are."""
    target = DTYPES[dtype]
    return {k: v.to(target) if v.is_floating_point() else v for k, v in tensors.items()}


def _export_safetensors(ckpt, out: Path, ema: Optional[bool], dtype: str) -> ExportResult:
    prefix = ckpt_io.generator_prefix(ckpt, ema)
    tensors = {f"G.{k}": v for k, v in _cast(ckpt.tensors(prefix), dtype).items()}
    metadata = {k: v for k, v in ckpt.metadata.items() if k != "gancli.state"}
    metadata["gancli.exported_from"] = json.dumps({"file": ckpt.path.name, "weights": prefix.rstrip("."),
                                                   "dtype": DTYPE_NAMES[dtype]})
    ckpt_io.save(out, tensors, metadata)
    return ExportResult(out, "safetensors")


# ---------------------------------------------------------------- the Hugging Face model folder


def _export_hf(ckpt, out: Path, *, ema: Optional[bool], dtype: str, card, say) -> ExportResult:
    import gancli
    from gancli import model_card, model_folder
    from gancli.metrics._files import sha256_of_file

    prefix = ckpt_io.generator_prefix(ckpt, ema)
    sha256 = sha256_of_file(ckpt.path)
    model_card.check_inputs(card, sha256=sha256, generator=prefix.rstrip("."))  # bad card inputs fail before any work
    source = gancli.load(ckpt.path, device="cpu", ema=prefix == "G_ema.")
    weights = "ema" if prefix == "G_ema." else "trained"
    config = model_folder.describe(ckpt, source.generator, weights=weights, dtype=DTYPE_NAMES[dtype], sha256=sha256)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        ckpt_io.save(staging / model_folder.WEIGHTS_NAME, _cast(ckpt.tensors(prefix), dtype),
                     model_folder.weights_metadata())
        ckpt_io.atomic_write_text(staging / model_folder.CONFIG_NAME, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        exported = gancli.load(staging, device="cpu")
        difference, compared = _compare_samples(source, exported)
        if dtype == "fp32" and difference != 0.0:
            raise GancliError(f"the exported folder samples differently from {ckpt.path.name} (max difference "
                              f"{difference:.3g}); nothing was written. This is a bug: please report it")
        say(f"the folder samples {'the same pixels as' if difference == 0 else f'within {difference:.3g} of'} "
            f"the checkpoint ({compared})")
        picture = _sample_picture(exported)
        if picture is not None:
            from gancli.sampling import save_image

            save_image(picture, staging / SAMPLE_IMAGE)
        facts = model_card.collect(ckpt, config, card, sha256=sha256, generator=exported.generator,
                                   image=SAMPLE_IMAGE if picture is not None else None,
                                   parity={"difference": difference, "compared": compared})
        ckpt_io.atomic_write_text(staging / "README.md", model_card.render(facts))
        if facts.settings_toml is not None:
            ckpt_io.atomic_write_text(staging / model_card.SETTINGS_NAME, facts.settings_toml)
        os.chmod(staging, 0o777 & ~ckpt_io._umask())  # mkdtemp makes 0700 folders
        if out.exists():
            raise GancliError(f"{out} appeared while exporting; nothing was replaced")
        os.rename(staging, out)
        ckpt_io._fsync_dir(out.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    notes = [f"{name} ignored: {why}" for name, why in facts.skipped_reports]
    return ExportResult(out, "hf", max_difference=difference, compared=compared, notes=notes)


def _compare_samples(source, exported) -> tuple[float, str]:
    """The largest difference between the folder's samples and the checkpoint's, same seeds and classes."""
    n = max(8, min(2 * source.num_classes, 32))
    a, b = source.sample(n, seed=0), exported.sample(n, seed=0)
    return float((a - b).abs().max()), f"{n} samples, seed 0"


def _sample_picture(pipe):
    """The card's picture: a labelled row per class (at most 10) for conditional models, else 8×8 samples."""
    from gancli.data.images import to_uint8
    from gancli.sampling import image_grid, labelled_rows, points_plot

    if pipe.spec.kind == "points":
        return points_plot(pipe.sample(2000, seed=0))
    if pipe.num_classes:
        shown = list(range(min(pipe.num_classes, 10)))
        rows = [to_uint8(pipe.sample(8, seed=0, class_=k)) for k in shown]
        return labelled_rows(torch.cat(rows), [pipe.class_names[k] for k in shown], cols=8)
    return image_grid(to_uint8(pipe.sample(64, seed=0)))


# ---------------------------------------------------------------- TorchScript and ONNX


class _Traceable(torch.nn.Module):
    """G with plain tensor inputs (z, and y for conditional models); ψ and the noise mode are constants."""

    def __init__(self, generator: torch.nn.Module, conditional: bool, options: dict[str, Any]) -> None:
        super().__init__()
        self.generator = generator
        self.conditional = conditional
        self.options = options

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.generator(z, y if self.conditional else None, **self.options)


def _lower_for_tracing(module: torch.nn.Module) -> torch.nn.Module:
    """Give layers whose kernels the tracers cannot see as constants an equivalent forward that they can.

    :class:`gancli.nn.style.Blur` expands its taps to the input's channel count, so a traced graph
    builds the depthwise kernel from the input's shape and the ONNX exporter refuses a convolution
    with a kernel of unknown shape; ``Blur.forward_planes`` filters every (N·C) plane with one
    1-channel kernel, which computes the same (resampling and padding included). The folded copy
    alone is changed; the export is checked against the original generator.
    """
    from gancli.nn.style import Blur

    for layer in module.modules():
        if isinstance(layer, Blur):
            layer.forward = layer.forward_planes
    return module


def _graph_options(pipe, truncation: Optional[float], noise_mode: Optional[str]) -> dict[str, Any]:
    if not pipe.w_space:
        if truncation is not None or noise_mode is not None:
            raise GancliError(f"--truncation and --noise-mode are fixed into the graphs of W-space models; this "
                              f"{pipe.family} model samples in z (truncate z when you draw it)")
        return {}
    noise_mode = noise_mode or "const"
    if noise_mode == "random":
        raise GancliError("--noise-mode random cannot be checked against PyTorch (the runtimes draw other noise); "
                          "export const (the checkpoint's fixed noise) or none")
    if noise_mode not in ("const", "none"):
        raise GancliError(f"--noise-mode must be const or none, got {noise_mode!r}")
    if truncation is not None and truncation < 0:
        raise GancliError(f"--truncation ψ must be ≥ 0, got {truncation}")
    return {"truncation": 1.0 if truncation is None else float(truncation), "noise_mode": noise_mode}


def _graph_description(pipe, ckpt, options: dict[str, Any]) -> dict[str, Any]:
    import gancli

    conditional = pipe.num_classes > 0
    shape = list(pipe.spec.shape)
    return {
        "library_name": "gancli",
        "gancli_version": gancli.__version__,
        "family": ckpt.family,
        "plugin": ckpt.plugin,
        "weights": "ema" if pipe.ema else "trained",
        "step": ckpt.step,
        "inputs": {"z": ["batch", pipe.z_dim], **({"y": ["batch"]} if conditional else {})},
        "input_notes": "z: float32 standard normal; y: int64 class indices" if conditional else "z: float32 standard normal",
        "output": {"x": ["batch", *shape], "range": [-1, 1]},
        "num_classes": pipe.num_classes,
        "class_names": pipe.class_names,
        "truncation_space": "w" if pipe.w_space else "z",
        "truncation": options.get("truncation"),
        "noise_mode": options.get("noise_mode"),
        "spectral_norm": "folded into plain weights",
    }


def _export_graph(ckpt, fmt: str, out: Path, *, ema, truncation, noise_mode, say) -> ExportResult:
    import gancli
    from gancli.nn.spectral import remove_spectral_norm
    from gancli.plugins import PluginFault

    if fmt == "onnx":
        _need_onnx()
    pipe = gancli.load(ckpt.path, device="cpu", ema=ema)
    options = _graph_options(pipe, truncation, noise_mode)
    conditional = pipe.num_classes > 0
    # a second, independent copy to fold: removing a parametrization from a deepcopy also strips the
    # original's (the parametrized class is shared), and the original is what the export is checked against
    folded = gancli.load(ckpt.path, device="cpu", ema=ema).generator
    with pipe._plugin_code(f"preparing the generator for {fmt}"):
        module = _Traceable(_lower_for_tracing(remove_spectral_norm(folded)).eval(), conditional, options).eval()
    example = _inputs(pipe, 2, seed=12345)
    description = _graph_description(pipe, ckpt, options)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    staging = Path(name)
    try:
        with torch.no_grad(), PluginFault(pipe.record, f"exporting to {fmt}"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation warnings: the check below is what counts
            traced = torch.jit.trace(module, example, check_trace=False)
            if fmt == "torchscript":
                traced.save(str(staging), _extra_files={TORCHSCRIPT_METADATA: json.dumps(description)})
            else:
                # frozen, what depends on the weights alone (equalized-LR scales, kernels assembled
                # from them) is computed once and exported as constants of known shape
                _write_onnx(torch.jit.freeze(traced.eval()), example, staging, conditional, description)
        run = _load_torchscript(staging) if fmt == "torchscript" else _load_onnx(staging)
        difference, compared = _compare_graph(pipe, options, run, fmt)
        if not difference <= TOLERANCE:
            raise GancliError(
                f"the exported {fmt} generator differs from PyTorch by {difference:.3g} on random inputs (more than "
                f"{TOLERANCE:g}); nothing was written. The {ckpt.family} generator's code does something tracing "
                f"does not capture (data-dependent control flow, a fixed batch size): report it to {ckpt.plugin}")
        _add_difference(staging, fmt, description, difference)
        os.chmod(staging, 0o666 & ~ckpt_io._umask())
        os.replace(staging, out)
        ckpt_io._fsync_dir(out.parent)
    finally:
        staging.unlink(missing_ok=True)
    say(f"loaded the {fmt} file back and ran it next to PyTorch: max |difference| = {difference:.3g} ({compared})")
    return ExportResult(out, fmt, max_difference=difference, compared=compared)


def _inputs(pipe, n: int, *, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, pipe.z_dim, generator=g)
    if pipe.num_classes:
        return z, torch.randint(0, pipe.num_classes, (n,), generator=g)
    return (z,)


def _compare_graph(pipe, options: dict[str, Any], run: Callable, fmt: str) -> tuple[float, str]:
    worst = 0.0
    for i, n in enumerate(CHECK_BATCHES):
        inputs = _inputs(pipe, n, seed=i)
        with torch.no_grad(), pipe._plugin_code("running the generator"):
            expected = pipe.generator(inputs[0], inputs[1] if len(inputs) > 1 else None, **options).float()
        try:
            got = run(*inputs)
        except Exception as exc:
            raise GancliError(f"the exported {fmt} generator fails on a batch of {n} ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); nothing was written. The generator's "
                              f"code fixes something at the traced batch size of 2: report it to {pipe.checkpoint.plugin}") from None
        if tuple(got.shape) != tuple(expected.shape):
            raise GancliError(f"the exported {fmt} generator returns shape {tuple(got.shape)} for a batch of {n}, "
                              f"PyTorch {tuple(expected.shape)}; nothing was written")
        worst = max(worst, float((got.float() - expected).abs().max()))
    return worst, f"random inputs, batches of {' and '.join(map(str, CHECK_BATCHES))}"


def _load_torchscript(path: Path) -> Callable:
    files = {TORCHSCRIPT_METADATA: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is still what many runtimes load
        loaded = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    json.loads(files[TORCHSCRIPT_METADATA])  # the description travels with the file

    def run(*inputs):
        with torch.no_grad():
            return loaded(*inputs)

    return run


def _need_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise GancliError(f"ONNX export needs onnx and onnxruntime (missing: {exc.name}): "
                          f"pip install 'gancli[onnx]'") from None


def _write_onnx(module, example, path: Path, conditional: bool, description: dict[str, Any]) -> None:
    import onnx

    names = ["z", "y"] if conditional else ["z"]
    axes = {name: {0: "batch"} for name in names} | {"x": {0: "batch"}}
    torch.onnx.export(module, example, str(path), input_names=names, output_names=["x"], dynamic_axes=axes,
                      opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    _set_onnx_metadata(model, description)
    onnx.save(model, str(path))


def _set_onnx_metadata(model, description: dict[str, Any]) -> None:
    values = {"gancli": json.dumps(description), "gancli.family": description["family"],
              "gancli.truncation": json.dumps(description["truncation"]),
              "gancli.noise_mode": json.dumps(description["noise_mode"])}
    if "max_difference" in description:
        values["gancli.max_difference"] = repr(description["max_difference"])
    kept = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "gancli"


def _load_onnx(path: Path) -> Callable:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # a failing run is reported as one GancliError line, not as runtime logs
    options.intra_op_num_threads = 1  # small graphs; the check must not fight the machine's other work
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if "gancli" not in meta:
        raise GancliError(f"{path}: the ONNX file lost its gancli metadata")
    names = [i.name for i in session.get_inputs()]

    def run(*inputs):
        feed = {name: value.numpy() for name, value in zip(names, inputs)}
        return torch.from_numpy(session.run(None, feed)[0])

    return run


def _add_difference(path: Path, fmt: str, description: dict[str, Any], difference: float) -> None:
    """Record the measured difference in the file's own metadata (it does not change the graph)."""
    description = {**description, "max_difference": difference}
    if fmt == "onnx":
        import onnx

        model = onnx.load(str(path))
        _set_onnx_metadata(model, description)
        onnx.save(model, str(path))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
        module.save(str(path), _extra_files={TORCHSCRIPT_METADATA: json.dumps(description)})
