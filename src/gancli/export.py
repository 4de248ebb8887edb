"""Export a trained generator: generator-only safetensors, TorchScript or ONNX."""
from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Optional

import torch

from gancli import checkpoint as ckpt_io
from gancli.errors import GancliError

FORMATS = ("safetensors", "torchscript", "onnx")
SUFFIXES = {"safetensors": ".safetensors", "torchscript": ".pt", "onnx": ".onnx"}


class _Traceable(torch.nn.Module):
    """G with plain tensor inputs, as tracers want."""

    def __init__(self, generator: torch.nn.Module, conditional: bool) -> None:
        super().__init__()
        self.generator = generator
        self.conditional = conditional

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.generator(z, y if self.conditional else None)


def export(checkpoint: Path, fmt: str, out: Optional[Path] = None, *, ema: Optional[bool] = None) -> Path:
    if fmt not in FORMATS:
        raise GancliError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    checkpoint = Path(checkpoint)
    out = Path(out) if out is not None else checkpoint.with_name(checkpoint.stem + "-generator" + SUFFIXES[fmt])
    if out.resolve() == checkpoint.resolve():
        raise GancliError("--out must differ from the checkpoint itself")
    if fmt == "safetensors":
        return _export_safetensors(checkpoint, out, ema)
    import gancli

    from gancli.plugins import PluginFault, get_record

    pipe = gancli.load(checkpoint, device="cpu", ema=ema)
    fault = PluginFault(get_record(pipe.family), f"exporting to {fmt}")
    conditional = pipe.num_classes > 0
    module = _Traceable(pipe.generator, conditional).eval()
    z = torch.randn(2, pipe.z_dim)
    inputs = (z, torch.zeros(2, dtype=torch.long)) if conditional else (z,)
    if fmt == "torchscript":
        with torch.no_grad(), fault, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is still what many runtimes load
            traced = torch.jit.trace(module, inputs, check_trace=False)
        with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".tmp", delete=False) as tmp:
            tmp_path = Path(tmp.name)
        try:
            traced.save(str(tmp_path))
            tmp_path.replace(out)
        finally:
            tmp_path.unlink(missing_ok=True)
        return out
    with fault:
        return _export_onnx(module, inputs, out, conditional)


def _export_safetensors(checkpoint: Path, out: Path, ema: Optional[bool]) -> Path:
    ckpt = ckpt_io.read(checkpoint)
    prefix = ckpt_io.generator_prefix(ckpt, ema)
    tensors = {f"G.{k}": v for k, v in ckpt.tensors(prefix).items()}
    metadata = {k: v for k, v in ckpt.metadata.items() if k != "gancli.state"}
    metadata["gancli.exported_from"] = json.dumps({"file": ckpt.path.name, "weights": prefix.rstrip(".")})
    ckpt_io.save(out, tensors, metadata)
    return out


def _export_onnx(module, inputs, out: Path, conditional: bool) -> Path:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise GancliError("ONNX export needs the onnx package: pip install 'gancli[onnx]'") from None
    names = ["z", "y"] if conditional else ["z"]
    axes = {name: {0: "batch"} for name in names} | {"x": {0: "batch"}}
    with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".onnx.tmp", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        torch.onnx.export(
            module, inputs, str(tmp_path), input_names=names, output_names=["x"], dynamic_axes=axes,
            opset_version=17, dynamo=False,
        )
        tmp_path.replace(out)
    finally:
        tmp_path.unlink(missing_ok=True)
    return out
