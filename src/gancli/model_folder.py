"""The exported model folder (``gancli export --format hf``), laid out as Hugging Face model repositories are.

``model.safetensors`` holds the generator's state dict under its own names (no ``G.`` prefix), so
``generator.load_state_dict(safetensors.torch.load_file(...))`` works on a generator gancli built;
``config.json`` says what the weights are and everything gancli needs to rebuild the generator:

=====================  ================================================================
``library_name``       ``"gancli"``
``gancli_export``      the version of this layout (:data:`EXPORT_FORMAT`)
``gancli_version``     the gancli that exported it
``family``             the GAN family, e.g. ``"dcgan"``
``plugin``             ``{"distribution", "version", "api_version"}`` of the family's plugin
``checkpoint_format``  the checkpoint format the weights came from
``weights``            ``"ema"`` (the EMA generator) or ``"trained"`` (the raw one)
``dtype``              ``"float32"``, ``"float16"`` or ``"bfloat16"`` (floating tensors)
``z_dim``              latent size; ``w_space`` with ``w_dim`` and ``num_ws`` for style-based models
``kind``               ``"image"`` or ``"points"``; ``resolution``, ``channels`` (images), ``dim`` (points)
``num_classes``        0 for unconditional models; ``class_names`` (one per class)
``data_spec``          the DataSpec the model was trained on (as checkpoints store it)
``config``             the resolved run config (``family``, ``data``, ``train``, ``model``)
``progress``           ``{"step", "images_seen"}``: growing families rebuild the layers of that phase
``exported_from``      ``{"file", "sha256", "weights"}``: the checkpoint it came from
=====================  ================================================================

Reading is as strict as reading a checkpoint's metadata: the file is capped in size, every field
is type-checked, the duplicated fields must agree with ``data_spec``, the config and DataSpec go
through :func:`gancli.checkpoint.validate_metadata`, and the weights file's header through
:func:`gancli.checkpoint.read_header`. Nothing is unpickled.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from gancli.checkpoint import MAX_JSON_DEPTH, READABLE_FORMATS, Checkpoint, json_depth, read_header, validate_metadata
from gancli.errors import GancliError
from gancli.version import __version__

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
EXPORT_FORMAT = 1
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # as much as a checkpoint's metadata may hold
DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}  # config.json name -> safetensors name
WEIGHTS = {"ema": "G_ema.", "trained": "G."}  # config.json name -> the checkpoint prefix it stands for
_FLOAT_CODES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}


def is_model_folder(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / CONFIG_NAME).is_file()


def describe(ckpt, generator, *, weights: str, dtype: str, sha256: str) -> dict[str, Any]:
    """config.json for ``generator`` (a built generator of ``ckpt``'s family) exported from ``ckpt``."""
    spec = json.loads(ckpt.metadata["gancli.data_spec"])
    w_space = getattr(generator, "truncation_space", "z") == "w"
    num_classes = int(getattr(generator, "num_classes", 0) or 0)
    names = list(spec.get("class_names") or [])
    config = {
        "library_name": "gancli",
        "gancli_export": EXPORT_FORMAT,
        "gancli_version": __version__,
        "family": ckpt.family,
        "plugin": {
            "distribution": ckpt.metadata["gancli.plugin.distribution"],
            "version": ckpt.metadata["gancli.plugin.version"],
            "api_version": ckpt.metadata["gancli.plugin.api_version"],
        },
        "checkpoint_format": ckpt.metadata["gancli.format"],
        "weights": weights,
        "dtype": dtype,
        "z_dim": int(generator.z_dim),
        "w_space": w_space,
        "w_dim": int(generator.w_dim) if w_space else None,
        "num_ws": int(generator.num_ws) if w_space else None,
        "kind": spec["kind"],
        "resolution": int(spec.get("resolution", 0)),
        "channels": int(spec.get("channels", 0)),
        "dim": int(spec.get("dim", 0)),
        "num_classes": num_classes,
        "class_names": [names[i] if i < len(names) else str(i) for i in range(num_classes)],
        "data_spec": spec,
        "config": json.loads(ckpt.metadata["gancli.config"]),
        "progress": {"step": ckpt.step, "images_seen": ckpt.images_seen},
        "exported_from": {"file": ckpt.path.name, "sha256": sha256, "weights": WEIGHTS[weights].rstrip(".")},
    }
    return config


def read(folder: Path):
    """The :class:`gancli.checkpoint.Checkpoint` of an exported model folder (validated; tensors on demand)."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not config_path.is_file():
        if (folder / "checkpoints").is_dir():
            raise GancliError(f"{folder} is a run folder; pass one of its checkpoints, e.g. "
                              f"{folder / 'checkpoints' / 'last.safetensors'}")
        raise GancliError(f"{folder} is a folder without {CONFIG_NAME}; pass a .safetensors checkpoint or a folder "
                          f"written by 'gancli export --format hf'")
    config = read_config(config_path)
    if not weights_path.is_file():
        raise GancliError(f"{folder} has {CONFIG_NAME} but no {WEIGHTS_NAME}; the folder is incomplete")
    header = read_header(weights_path)
    _check_weights_header(weights_path, header, config["dtype"])
    metadata = validate_metadata(config_path, _as_metadata(config))
    prefix = WEIGHTS[config["weights"]]
    names = [prefix + name for name in header if name != "__metadata__"]
    return Checkpoint(path=weights_path, metadata=metadata, tensor_names=names, exported_as=prefix,
                      export=config)


def read_config(path: Path) -> dict[str, Any]:
    """config.json, parsed and checked field by field."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise GancliError(f"{path} is {size} bytes, more than the {MAX_CONFIG_BYTES >> 20} MiB a model config may be")
        raw = path.read_bytes()
    except PermissionError:
        raise GancliError(f"cannot read {path}: permission denied") from None
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise GancliError(f"{path} is not valid JSON; the model folder is damaged") from None
    if not isinstance(config, dict):
        raise GancliError(f"{path} must hold a JSON object, got {type(config).__name__}")
    if json_depth(config) > MAX_JSON_DEPTH:
        raise GancliError(f"{path} is nested deeper than {MAX_JSON_DEPTH} levels")
    if config.get("library_name") != "gancli":
        raise GancliError(f"{path} is not a gancli model config (library_name is {config.get('library_name')!r}, "
                          f"not 'gancli'); pass a folder written by 'gancli export --format hf'")
    _check_fields(path, config)
    return config


def _bad(path: Path, key: str, value: Any, wanted: str) -> GancliError:
    shown = repr(value)
    return GancliError(f"{path}: {key} = {shown[:60]}{'…' if len(shown) > 60 else ''} is not {wanted}; "
                       f"the model config is damaged or foreign")


def _size(value: Any) -> bool:
    return type(value) is int and 0 <= value <= 1 << 20


def _text(value: Any, limit: int = 200) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def _check_fields(path: Path, config: dict[str, Any]) -> None:
    export = config.get("gancli_export")
    if type(export) is not int:
        raise _bad(path, "gancli_export", export, "an integer")
    if export > EXPORT_FORMAT:
        raise GancliError(f"{path} uses export layout {export}; this gancli reads layouts up to {EXPORT_FORMAT}: "
                          f"upgrade gancli")
    for key in ("gancli_version", "family", "checkpoint_format"):
        if not _text(config.get(key)):
            raise _bad(path, key, config.get(key), "a non-empty string")
    if config["checkpoint_format"] not in READABLE_FORMATS:
        raise GancliError(f"{path}: checkpoint_format {config['checkpoint_format'][:20]!r} is not one this gancli reads "
                          f"({', '.join(READABLE_FORMATS)}); upgrade gancli")
    plugin = config.get("plugin")
    if not isinstance(plugin, dict) or not all(_text(plugin.get(k)) for k in ("distribution", "version", "api_version")):
        raise _bad(path, "plugin", plugin, "an object with distribution, version and api_version strings")
    if config.get("weights") not in WEIGHTS:
        raise _bad(path, "weights", config.get("weights"), "'ema' or 'trained'")
    if config.get("dtype") not in DTYPES:
        raise _bad(path, "dtype", config.get("dtype"), f"one of {', '.join(DTYPES)}")
    z_dim = config.get("z_dim")
    if not _size(z_dim) or z_dim == 0:
        raise _bad(path, "z_dim", z_dim, "a positive size")
    if type(config.get("w_space")) is not bool:
        raise _bad(path, "w_space", config.get("w_space"), "true or false")
    for key in ("w_dim", "num_ws"):
        value = config.get(key)
        if config["w_space"] and (not _size(value) or value == 0):
            raise _bad(path, key, value, "a positive size (the model has a W space)")
        if not config["w_space"] and value is not None:
            raise _bad(path, key, value, "null (the model has no W space)")
    for key in ("resolution", "channels", "dim", "num_classes"):
        if not _size(config.get(key)):
            raise _bad(path, key, config.get(key), "a size")
    names = config.get("class_names")
    if not (isinstance(names, list) and all(isinstance(n, str) and len(n) <= 1000 for n in names)):
        raise _bad(path, "class_names", names, "a list of strings")
    if len(names) != config["num_classes"]:
        raise GancliError(f"{path}: {len(names)} class_names for num_classes = {config['num_classes']}; "
                          f"the model config is damaged")
    for key in ("data_spec", "config"):
        if not isinstance(config.get(key), dict):
            raise _bad(path, key, config.get(key), "an object")
    spec = config["data_spec"]
    for key in ("kind", "resolution", "channels", "dim"):
        if spec.get(key, 0) != config.get(key):
            raise GancliError(f"{path}: {key} = {config.get(key)!r} disagrees with data_spec.{key} = "
                              f"{spec.get(key, 0)!r}; the model config is damaged")
    spec_names = spec.get("class_names") or []
    if isinstance(spec_names, list) and any(i < len(spec_names) and spec_names[i] != n for i, n in enumerate(names)):
        raise GancliError(f"{path}: class_names disagree with data_spec.class_names; the model config is damaged")
    if config["config"].get("family", config["family"]) != config["family"]:
        raise GancliError(f"{path}: family {config['family']!r} disagrees with config.family; the model config is damaged")
    progress = config.get("progress")
    if not (isinstance(progress, dict) and all(type(progress.get(k)) is int and 0 <= progress[k] < 10**18
                                               for k in ("step", "images_seen"))):
        raise _bad(path, "progress", progress, "an object with non-negative integers step and images_seen")
    source = config.get("exported_from", {})
    if not isinstance(source, dict) or not all(isinstance(v, str) and len(v) <= 1000 for v in source.values()):
        raise _bad(path, "exported_from", source, "an object of strings")


def _as_metadata(config: dict[str, Any]) -> dict[str, str]:
    """The checkpoint metadata the config stands for, so checkpoint.validate_metadata checks it the same way."""
    plugin = config["plugin"]
    return {
        "gancli.format": config["checkpoint_format"],
        "gancli.version": config["gancli_version"],
        "gancli.family": config["family"],
        "gancli.plugin.distribution": plugin["distribution"],
        "gancli.plugin.version": plugin["version"],
        "gancli.plugin.api_version": plugin["api_version"],
        "gancli.config": json.dumps(config["config"]),
        "gancli.data_spec": json.dumps(config["data_spec"]),
        "gancli.step": str(config["progress"]["step"]),
        "gancli.images_seen": str(config["progress"]["images_seen"]),
        "gancli.exported_from": json.dumps(config.get("exported_from", {})),
    }


def _check_weights_header(path: Path, header: dict[str, Any], dtype: str) -> None:
    wanted = DTYPES[dtype]
    for name, info in header.items():
        if name == "__metadata__":
            continue
        code = info.get("dtype") if isinstance(info, dict) else None
        if not isinstance(code, str):
            raise GancliError(f"{path}: tensor {name!r} has no dtype; the file is damaged")
        if code in _FLOAT_CODES and code != wanted:
            raise GancliError(f"{path}: tensor {name!r} is {code} but config.json says dtype {dtype}; "
                              f"the model folder is damaged")
    if not any(name != "__metadata__" for name in header):
        raise GancliError(f"{path} holds no tensors; the model folder is damaged")


def weights_metadata() -> dict[str, str]:
    """The safetensors header metadata of model.safetensors (the Hugging Face convention)."""
    return {"format": "pt"}


def sibling_folder(weights: Path, metadata: Optional[dict]) -> Optional[Path]:
    """The model folder of a ``model.safetensors`` without gancli metadata that sits beside a gancli config.json."""
    weights = Path(weights)
    if weights.name != WEIGHTS_NAME or (isinstance(metadata, dict) and "gancli.format" in metadata):
        return None
    return weights.parent if (weights.parent / CONFIG_NAME).is_file() else None


def check_generator(ckpt, generator) -> None:
    """An exported folder's config.json must describe the generator its family rebuilt (z_dim, W space, classes)."""
    config = ckpt.export
    if config is None:
        return
    built = {
        "z_dim": int(generator.z_dim),
        "w_space": getattr(generator, "truncation_space", "z") == "w",
        "num_classes": int(getattr(generator, "num_classes", 0) or 0),
    }
    if built["w_space"]:
        built |= {"w_dim": int(generator.w_dim), "num_ws": int(generator.num_ws)}
    for key, value in built.items():
        if config.get(key) != value:
            raise GancliError(f"{ckpt.path.parent / CONFIG_NAME}: {key} = {config.get(key)!r}, but the {ckpt.family} "
                              f"generator its settings build has {key} = {value!r}; the model config is damaged")
