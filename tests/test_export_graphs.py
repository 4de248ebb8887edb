"""gancli export --format onnx|torchscript: loaded back and checked against PyTorch for every installed family
(an unconditional, a conditional and a W-space one at least), metadata in the files, failures leave nothing."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

import gancli
from gancli.errors import GancliError
from gancli.export import TOLERANCE, TORCHSCRIPT_METADATA, export

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _export_support import families_with_images, is_conditional_capable, tiny_checkpoint, wspace_toy_installed  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

CORE_CASES = [("dcgan", 0), ("dcgan", 3), ("wspace-toy", 0), ("wspace-toy", 3)]


def _other_families() -> list[tuple[str, int]]:
    """Every other installed image family once: conditional where it can be (it exercises the label input)."""
    from gancli import plugins

    plugins.refresh()
    cases = []
    for family in families_with_images():
        if family == "dcgan":
            continue
        cases.append((family, 3 if is_conditional_capable(family) else 0))
    return cases


CASES = CORE_CASES + _other_families()


@pytest.fixture(scope="module")
def toy_plugin(tmp_path_factory):
    with wspace_toy_installed(tmp_path_factory.mktemp("toy")):
        yield


@pytest.fixture(autouse=True)
def _keep_toy(toy_plugin):
    yield  # the module fixture's plugin stays registered (conftest refreshes the registry around each test)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, toy_plugin):
    root = tmp_path_factory.mktemp("graphs")
    made = {}

    def get(family: str, classes: int) -> Path:
        if (family, classes) not in made:
            made[family, classes] = tiny_checkpoint(family, root / f"{family}-{classes}", num_classes=classes)
        return made[family, classes]

    return get


def _onnx_run(path: Path):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session, names


@pytest.mark.parametrize("family, classes", CASES, ids=[f"{f}-{'cond' if k else 'uncond'}" for f, k in CASES])
def test_onnx_and_torchscript_match_pytorch(checkpoints, tmp_path, family, classes):
    ckpt = checkpoints(family, classes)
    pipe = gancli.load(ckpt, device="cpu")
    measured = {}
    for fmt in ("onnx", "torchscript"):
        result = export(ckpt, fmt, tmp_path / f"g.{fmt}")
        assert result.max_difference is not None and result.max_difference <= TOLERANCE, (fmt, result.max_difference)
        measured[fmt] = result.max_difference
    print(f"{family} classes={classes}: max |ONNX − PyTorch| {measured['onnx']:.3g}, "
          f"|TorchScript − PyTorch| {measured['torchscript']:.3g}")
    # an independent look at the files: a batch size neither the trace nor the export check used
    options = {"truncation": 1.0, "noise_mode": "const"} if pipe.w_space else {}
    g = torch.Generator().manual_seed(99)
    z = torch.randn(3, pipe.z_dim, generator=g)
    y = torch.randint(0, classes, (3,), generator=g) if classes else None
    with torch.no_grad():
        expected = pipe.generator(z, y, **options)
    session, names = _onnx_run(tmp_path / "g.onnx")
    assert names == (["z", "y"] if classes else ["z"])
    feed = {"z": z.numpy(), **({"y": y.numpy()} if classes else {})}
    assert (torch.from_numpy(session.run(None, feed)[0]) - expected).abs().max() <= TOLERANCE
    meta = session.get_modelmeta().custom_metadata_map
    described = json.loads(meta["gancli"])
    assert described["family"] == family and described["num_classes"] == classes
    assert float(meta["gancli.max_difference"]) == measured["onnx"]
    files = {TORCHSCRIPT_METADATA: ""}
    scripted = torch.jit.load(str(tmp_path / "g.torchscript"), _extra_files=files)
    assert json.loads(files[TORCHSCRIPT_METADATA])["family"] == family
    with torch.no_grad():
        got = scripted(z, y) if classes else scripted(z)
    assert (got - expected).abs().max() <= TOLERANCE


def test_w_space_graphs_fix_psi_and_noise_mode_and_record_them(checkpoints, tmp_path, cli):
    ckpt = checkpoints("wspace-toy", 0)
    out = tmp_path / "psi.onnx"
    result = cli("export", ckpt, "--format", "onnx", "--truncation", "0.5", "--noise-mode", "none", "--out", out)
    assert result.exit_code == 0, result.output
    assert "max |onnx − PyTorch| = " in result.stderr
    session, _ = _onnx_run(out)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["gancli.truncation"]) == 0.5 and json.loads(meta["gancli.noise_mode"]) == "none"
    pipe = gancli.load(ckpt, device="cpu")
    z = torch.randn(4, pipe.z_dim)
    expected = pipe.generate(z, truncation=0.5, noise_mode="none")
    assert (torch.from_numpy(session.run(None, {"z": z.numpy()})[0]) - expected).abs().max() <= TOLERANCE
    ts = tmp_path / "psi.pt"
    assert cli("export", ckpt, "--format", "torchscript", "--truncation", "0", "--out", ts).exit_code == 0
    files = {TORCHSCRIPT_METADATA: ""}
    scripted = torch.jit.load(str(ts), _extra_files=files)
    described = json.loads(files[TORCHSCRIPT_METADATA])
    assert (described["truncation"], described["noise_mode"], described["truncation_space"]) == (0.0, "const", "w")
    images = scripted(torch.randn(3, pipe.z_dim))
    assert torch.allclose(images, images[:1].expand_as(images), atol=1e-6)  # ψ = 0: the average image for every z


def test_spectral_norm_is_folded_into_plain_weights(checkpoints, tmp_path):
    def has_sn_generator(family: str) -> bool:  # BigGAN and SAGAN normalize G too (SNGAN only D)
        ckpt = checkpoints(family, 3 if is_conditional_capable(family) else 0)
        return any("parametrizations.weight.original" in name for name in gancli.load(ckpt).generator.state_dict())

    family = next((f for f in ("biggan", "sagan") if f in families_with_images() and has_sn_generator(f)), None)
    if family is None:
        pytest.skip("no family with a spectrally normalized generator installed")
    ckpt = checkpoints(family, 3 if is_conditional_capable(family) else 0)
    export(ckpt, "torchscript", tmp_path / "sn.pt")
    names = list(torch.jit.load(str(tmp_path / "sn.pt")).state_dict())
    assert names and not any("parametrizations" in n or n.endswith(("._u", "._v")) for n in names), names[:10]


def test_a_graph_that_differs_from_pytorch_fails_the_export_and_leaves_no_file(checkpoints, tmp_path, monkeypatch):
    from gancli import export as export_module

    original = export_module._Traceable.forward
    monkeypatch.setattr(export_module._Traceable, "forward", lambda self, z, y=None: original(self, z, y) + 1e-3)
    for fmt in ("onnx", "torchscript"):
        with pytest.raises(GancliError, match="differs from PyTorch by 0.001 .*nothing was written"):
            export(checkpoints("dcgan", 0), fmt, tmp_path / f"bad.{fmt}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--noise-mode", "random"], "cannot be checked against PyTorch"),
    (["--dtype", "fp16"], "exports are fp32"),
])
def test_graph_options_that_cannot_be_checked_are_refused(checkpoints, tmp_path, cli, args, message):
    result = cli("export", checkpoints("wspace-toy", 0), "--format", "onnx", *args, "--out", tmp_path / "x.onnx")
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "x.onnx").exists()


def test_z_models_take_no_psi_and_onnx_without_onnxruntime_is_one_line(checkpoints, tmp_path, cli, monkeypatch):
    refused = cli("export", checkpoints("dcgan", 0), "--format", "torchscript", "--truncation", "0.7",
                  "--out", tmp_path / "x.pt")
    assert refused.exit_code == 2 and "samples in z" in refused.stderr
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    missing = cli("export", checkpoints("dcgan", 0), "--format", "onnx", "--out", tmp_path / "x.onnx")
    assert missing.exit_code == 2 and "pip install 'gancli[onnx]'" in missing.stderr
    assert list(tmp_path.iterdir()) == []
