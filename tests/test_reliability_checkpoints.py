"""Checkpoint files: atomic writes, rotation, and every kind of bad file refused with a clear GancliError."""
from __future__ import annotations

import errno
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from _reliability_support import one_torch_thread, safetensors_bytes, tiny_images

from gancli import checkpoint as ckpt_io
from gancli.errors import GancliError


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    """A real 2-step tiny DCGAN checkpoint, with EMA."""
    from gancli import config as cfg
    from gancli.train.loop import train

    root = tmp_path_factory.mktemp("ckpt")
    run, family_config = cfg.resolve(
        "dcgan",
        flags={"data": {"source": str(tiny_images(root / "data.npz")), "resolution": 16},
               "train": {"steps": 2, "batch_size": 8, "sample_every": 0, "checkpoint_every": 1, "sample_grid": 4}},
        overrides=["ngf=4", "ndf=4", "z_dim=8", "train.ema=true"],
    )
    return train(run, family_config, out=root / "run", show_progress=False).last_checkpoint


def _header_and_data(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def _with_metadata(good: Path, out: Path, **changes) -> Path:
    header, data = _header_and_data(good)
    metadata = dict(header["__metadata__"])
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            metadata.pop(key)
        else:
            metadata[key] = value
    header["__metadata__"] = metadata
    out.write_bytes(safetensors_bytes(header, data))
    return out


# ---------------------------------------------------------------- atomic writes


def test_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "state.txt"
    ckpt_io.atomic_write_text(target, "old")

    def disk_full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_io.os, "replace", disk_full)
    with pytest.raises(OSError):
        ckpt_io.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.txt"]


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    target = tmp_path / "f.bin"
    ckpt_io.atomic_write_bytes(target, b"x")
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_last_is_a_link_or_a_copy_of_the_newest_checkpoint(tmp_path, monkeypatch):
    step = tmp_path / "step-000002.safetensors"
    step.write_bytes(b"abc")
    last = tmp_path / "last.safetensors"
    ckpt_io.atomic_link_or_copy(step, last)
    assert last.read_bytes() == b"abc" and os.path.samefile(step, last)

    def no_links(*args):
        raise OSError(errno.EPERM, "links not supported")

    monkeypatch.setattr(ckpt_io.os, "link", no_links)  # e.g. some network file systems
    step.write_bytes(b"defg")
    ckpt_io.atomic_link_or_copy(step, tmp_path / "copy.safetensors")
    assert (tmp_path / "copy.safetensors").read_bytes() == b"defg"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_pruning_keeps_the_newest_by_step_number(tmp_path):
    from gancli.train.rundir import RunDir

    run = RunDir(tmp_path)
    run.checkpoints.mkdir()
    for step in (999_998, 999_999, 1_000_000, 1_000_001):
        run.step_checkpoint(step).write_bytes(b"")
    run.prune_checkpoints(2)
    assert [p.name for p in run.step_checkpoints()] == ["step-1000000.safetensors", "step-1000001.safetensors"]


def test_training_keeps_k_checkpoints_plus_last(tmp_path):
    from gancli import config as cfg
    from gancli.train.loop import train

    run, family_config = cfg.resolve(
        "dcgan",
        flags={"data": {"source": str(tiny_images(tmp_path / "d.npz")), "resolution": 16},
               "train": {"steps": 5, "batch_size": 8, "sample_every": 0, "checkpoint_every": 1,
                         "keep_checkpoints": 2, "sample_grid": 4}},
        overrides=["ngf=4", "ndf=4", "z_dim=8"],
    )
    result = train(run, family_config, out=tmp_path / "run", show_progress=False)
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["last.safetensors", "step-000004.safetensors", "step-000005.safetensors"]
    newest = tmp_path / "run" / "checkpoints" / "step-000005.safetensors"
    assert result.last_checkpoint.read_bytes() == newest.read_bytes()
    assert ckpt_io.read(result.last_checkpoint).step == 5


# ---------------------------------------------------------------- refusing bad files


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl", ".ckpt"])
def test_pickle_suffixes_are_refused_without_being_opened(tmp_path, suffix):
    import gancli

    path = tmp_path / f"weights{suffix}"
    path.write_bytes(pickle.dumps({"w": [1.0]}))
    with pytest.raises(GancliError, match="only loads .safetensors") as caught:
        gancli.load(path)
    assert "weights_only=True" in str(caught.value) and "save_file" in str(caught.value)


def test_pickle_renamed_to_safetensors_is_recognised(tmp_path):
    path = tmp_path / "renamed.safetensors"
    path.write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))
    with pytest.raises(GancliError, match="is a pickle, not safetensors"):
        ckpt_io.read(path)
    zipped = tmp_path / "torch_save.safetensors"
    with zipfile.ZipFile(zipped, "w") as archive:  # the layout torch.save writes
        archive.writestr("archive/data.pkl", pickle.dumps({}))
    with pytest.raises(GancliError, match="zip archive"):
        ckpt_io.read(zipped)


def test_safetensors_without_gancli_metadata(tmp_path):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(GancliError, match="not a gancli checkpoint"):
        ckpt_io.read(path)


@pytest.mark.parametrize("keep", [0, 5, 100, -100])
def test_truncated_files(good_checkpoint, tmp_path, keep):
    data = good_checkpoint.read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(GancliError, match="truncated|too short|only"):
        ckpt_io.read(path)


def test_header_bomb_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.safetensors"
    path.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    with pytest.raises(GancliError, match="header of .* bytes, the limit"):
        ckpt_io.read(path)


def test_corrupt_header_bytes(good_checkpoint, tmp_path):
    raw = bytearray(good_checkpoint.read_bytes())
    raw[8:20] = b"\xff" * 12
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(bytes(raw))
    with pytest.raises(GancliError, match="unreadable header"):
        ckpt_io.read(path)


def test_corrupt_tensor_table_is_caught_when_loading(good_checkpoint, tmp_path):
    import gancli

    header, data = _header_and_data(good_checkpoint)
    name = next(k for k in header if k.startswith("G_ema.") and header[k]["dtype"] == "F32")
    header[name]["dtype"] = "F64"  # the byte range no longer fits the shape
    path = tmp_path / "table.safetensors"
    path.write_bytes(safetensors_bytes(header, data))
    with pytest.raises(GancliError, match="corrupt"):
        gancli.load(path)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"gancli__step": 12}, "is a int, not a string"),
        ({"gancli__config": ["a"]}, "is a list, not a string"),
        ({"gancli__step": "-3"}, "non-negative integer"),
        ({"gancli__step": "1e99"}, "non-negative integer"),
        ({"gancli__config": "[1, 2]"}, "must be a JSON object"),
        ({"gancli__config": "{not json"}, "not valid JSON"),
        ({"gancli__config": "[" * 100_000 + "]" * 100_000}, "not valid JSON|nested deeper"),
        ({"gancli__config": json.dumps({"model": 3})}, "'model' that is not an object"),
        ({"gancli__data_spec": json.dumps({"kind": "audio"})}, "not image or points"),
        ({"gancli__data_spec": json.dumps({"kind": "image", "channels": "3"})}, "not a size"),
        ({"gancli__state": "[]"}, "must be a JSON object"),
        ({"gancli__family": None}, "lacks gancli metadata gancli.family"),
        ({"gancli__format": "99"}, "upgrade gancli"),
        ({"gancli__notes": "x" * (5 * 1024 * 1024)}, "more than the 4 MiB allowed"),
    ],
)
def test_bad_metadata_is_a_clear_error(good_checkpoint, tmp_path, changes, message):
    path = _with_metadata(good_checkpoint, tmp_path / "bad.safetensors", **changes)
    with pytest.raises(GancliError, match=message):
        ckpt_io.read(path)


def test_total_metadata_is_size_limited(good_checkpoint, tmp_path):
    chunks = {f"gancli__extra{i}": "x" * (3 * 1024 * 1024) for i in range(6)}
    path = _with_metadata(good_checkpoint, tmp_path / "big.safetensors", **chunks)
    with pytest.raises(GancliError, match="16 MiB"):
        ckpt_io.read(path)


def test_non_finite_generator_weights_are_refused(good_checkpoint, tmp_path):
    import gancli
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(good_checkpoint))
    name = next(k for k in tensors if k.startswith("G_ema.") and tensors[k].is_floating_point())
    tensors[name].view(-1)[0] = float("nan")
    path = tmp_path / "nan.safetensors"
    save_file(tensors, str(path), metadata=ckpt_io.read(good_checkpoint).metadata)
    with pytest.raises(GancliError, match="NaN or inf"):
        gancli.load(path)


def test_the_good_checkpoint_loads(good_checkpoint):
    import gancli

    pipe = gancli.load(good_checkpoint)
    assert pipe.ema and pipe.sample(2, seed=0).shape == (2, 1, 16, 16)
