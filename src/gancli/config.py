"""Run configuration: pydantic models, TOML recipes and ``--set key=value`` overrides.

Precedence, lowest first: the family's defaults (its Config and ``train_defaults``),
the recipe, then command-line flags and ``--set`` overrides.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gancli.errors import GancliError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Strict):
    source: str = Field("", description="image folder, IDX/npz file, HF dataset id, alias or 2-D toy name")
    resolution: Optional[int] = Field(None, ge=1, description="image side in pixels (None: the family's default)")
    channels: Optional[int] = Field(None, description="1 or 3 (None: as stored)")
    split: str = Field("train", description="train or test (IDX/HF sources)")
    labeled: Optional[int] = Field(None, ge=1, description="keep labels for only N examples per class (semi-supervised)")
    limit: Optional[int] = Field(None, ge=1, description="train on a seeded random subset of N examples")
    mirror: bool = Field(False, description="add every image's left-right mirror image (doubles the data)")


class TrainConfig(Strict):
    steps: int = Field(10_000, ge=1, description="generator updates")
    batch_size: int = Field(64, ge=1, description="images per step, summed over processes")
    precision: Optional[Literal["no", "bf16", "fp16"]] = Field(
        None, description="mixed precision (None: the launcher's setting, e.g. accelerate launch --mixed_precision, else no)"
    )
    accumulate: int = Field(1, ge=1, description="micro-batches per optimizer step (gradient accumulation); "
                            "each process computes batch_size / (processes × accumulate) examples at a time")
    sync_batchnorm: Optional[bool] = Field(
        None, description="synchronized BatchNorm across CUDA processes (None: when the family asks for it)"
    )
    seed: int = Field(0, description="seeds weights, latents and data order")
    log_every: int = Field(50, ge=1, description="steps between metrics.jsonl lines")
    sample_every: int = Field(500, ge=0, description="steps between sample grids (0: only at the end)")
    checkpoint_every: int = Field(1000, ge=0, description="steps between checkpoints (0: only at the end)")
    keep_checkpoints: int = Field(3, ge=1, description="step checkpoints kept besides last.safetensors")
    max_nonfinite: int = Field(0, ge=0, description="non-finite steps skipped before stopping")
    num_workers: Optional[int] = Field(
        None, ge=0, description="data loader workers decoding image folders and HF datasets (None: half the cores, at most 8)"
    )
    sample_grid: int = Field(64, ge=1, description="images in the fixed-latent sample grid")
    ema: bool = Field(False, description="keep an exponential moving average of G")
    ema_half_life_kimg: float = Field(10.0, gt=0, description="EMA half-life in thousands of images")
    ema_decay: Optional[float] = Field(None, gt=0, lt=1, description="fixed EMA decay per step (overrides the half-life)")
    ema_start_step: int = Field(0, ge=0, description="EMA copies G until this step")
    ema_rampup: Optional[float] = Field(
        None, gt=0, description="EMA ramp-up (stylegan2-ada): the half-life is at most this × the images seen so far "
        "(its cifar and auto configs: 0.05); None: the full half-life from the first step",
    )
    ema_discriminator: bool = Field(
        False, description="keep a Polyak average of D too (D_ema in checkpoints; openai/improved-gan tests its "
        "semi-supervised classifier with one)",
    )
    ema_discriminator_decay: float = Field(0.9999, gt=0, lt=1, description="decay of D's average per D update")
    channels_last: bool = Field(True, description="channels-last memory format for conv nets")
    keep_freed_memory: bool = Field(
        False, description="CPU training on Linux: keep freed tensor memory in malloc's heap for the next step "
        "instead of returning it to the kernel (no page faults for large activations: at 256² ~23% less CPU "
        "time a step, but the heap's fragmentation raises peak memory; see gancli.train.allocator)",
    )
    allocator: Literal["system", "jemalloc", "tcmalloc"] = Field(
        "system", description="CPU training on Linux: the C allocator under torch; jemalloc or tcmalloc (installed "
        "separately) keep freed blocks by size for the next step, so large activations are not faulted in again "
        "(at 256², batch 4, 1.2–1.4× the plain loop's speed with less peak memory than it; `gancli train` restarts "
        "itself with LD_PRELOAD; see gancli.train.allocator)",
    )
    augment: Literal["none", "diffaugment", "ada"] = Field(
        "none", description="differentiable augmentation of every image D sees: diffaugment (Zhao et al. 2020) or "
        "ada (Karras et al. 2020, p adjusted from D's outputs on reals)",
    )
    augment_policy: Optional[str] = Field(
        None, description="diffaugment: its policy (default color,translation,cutout); ada: its pipeline "
        "(default bgc: blitting, geometry, colour)",
    )
    ada_target: float = Field(0.6, gt=0, lt=1, description="ADA: the target of E[sign D(real)]")
    ada_interval: int = Field(4, ge=1, description="ADA: steps between adjustments of p")
    ada_kimg: float = Field(500.0, gt=0, description="ADA: thousands of images over which p can move by 1")
    ada_p: float = Field(0.0, ge=0, le=1, description="ADA: the augmentation probability to start from")
    log_with: list[Literal["tensorboard", "wandb", "mlflow", "aim"]] = Field(
        default_factory=list, description="experiment trackers (accelerate's): tensorboard, wandb, mlflow, aim",
    )


class RunConfig(Strict):
    family: str
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    model: dict[str, Any] = Field(default_factory=dict, description="the family's own settings")


class LinearLRDecaySettings(BaseModel):
    """A family config's delayed linear learning-rate decay (mix it into the family's Config).

    The fields are what ``AdversarialObjective(lr_decay_steps=..., lr_decay_start=...)`` takes: both
    rates are held until G step ``lr_decay_start`` and fall linearly to 0 at G step ``lr_decay_steps``.
    List both names in the family's ``resume_may_change`` to let a resumed run change its schedule.
    """

    lr_decay_steps: int = Field(
        0, ge=0, description="decay both learning rates linearly to 0 at this G step (0: constant rates)",
    )
    lr_decay_start: int = Field(0, ge=0, description="G step at which that linear decay begins (0: from the start)")

    @model_validator(mode="after")
    def _decay_starts_before_it_ends(self):
        if self.lr_decay_steps and self.lr_decay_start >= self.lr_decay_steps:
            raise ValueError(f"lr_decay_start ({self.lr_decay_start}) must be below lr_decay_steps "
                             f"({self.lr_decay_steps}), the step at which the rates reach 0")
        return self


SECTIONS = ("data", "train", "model")


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        loc = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "config"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown setting {loc!r}")
        else:
            parts.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)


# ---------------------------------------------------------------- recipes


@dataclass(frozen=True)
class RecipeEntry:
    name: str
    path: Path
    distribution: str  # the plugin distribution that ships it


_warned_duplicates: set[str] = set()


def list_recipes() -> dict[str, RecipeEntry]:
    """Every installed family's recipes by name (recipes travel with the plugin that trains them).

    Two distributions shipping the same recipe name: the first found (built-in families
    first) wins and a warning names both.
    """
    import sys

    from gancli.plugins import discover

    records = sorted((r for r in discover().values() if r.ok), key=lambda r: (not r.builtin, r.distribution))
    found: dict[str, RecipeEntry] = {}
    seen_folders: set[str] = set()
    for record in records:
        try:
            folder = record.family.recipe_folder()
        except (ModuleNotFoundError, ValueError, TypeError):
            continue
        if folder is None or not folder.is_dir() or str(folder) in seen_folders:
            continue
        seen_folders.add(str(folder))  # one distribution may register several families sharing a folder
        for item in sorted(folder.iterdir(), key=lambda t: t.name):
            if not item.name.endswith(".toml"):
                continue
            name = item.name[: -len(".toml")]
            entry = RecipeEntry(name, Path(str(item)), record.distribution)
            if name in found:
                if found[name].distribution != entry.distribution and name not in _warned_duplicates:
                    _warned_duplicates.add(name)
                    print(f"warning: recipe {name!r} is shipped by both {found[name].distribution} and "
                          f"{entry.distribution}; using {found[name].distribution}'s", file=sys.stderr)
                continue
            found[name] = entry
    return dict(sorted(found.items()))


def find_recipe(name_or_path: str) -> Path:
    path = Path(name_or_path).expanduser()
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise GancliError(f"recipe file {name_or_path} does not exist; see 'gancli recipes list'")
        return path
    recipes = list_recipes()
    if name_or_path not in recipes:
        raise GancliError(
            f"unknown recipe {name_or_path!r}; see 'gancli recipes list' (recipes come with their family's "
            f"plugin) or give a path to a .toml file"
        )
    return recipes[name_or_path].path


def read_recipe(name_or_path: str) -> dict[str, Any]:
    path = find_recipe(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GancliError(f"recipe {path} is not valid TOML: {exc}") from None
    data.pop("description", None)
    unknown = set(data) - {"family", *SECTIONS}
    if unknown:
        raise GancliError(f"recipe {path} has unknown top-level keys {sorted(unknown)}; use family, data, train, model")
    return data


# ---------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise GancliError(f"--set expects key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise GancliError(f"--set {dotted}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def apply_overrides(tree: dict[str, Any], overrides: list[str], model_fields: set[str]) -> None:
    """Apply ``key=value`` overrides; a bare key names a model, train or data field."""
    section_fields = {
        "model": model_fields,
        "train": set(TrainConfig.model_fields),
        "data": set(DataConfig.model_fields),
    }
    for text in overrides:
        key, value = parse_override(text)
        if "." in key or key == "family":
            if key == "family":
                raise GancliError("--set family=... is not allowed; name the family as the command's argument")
            section = key.split(".", 1)[0]
            if section not in SECTIONS:
                raise GancliError(f"--set {key}: unknown section {section!r}; use data., train. or model.")
            _set_path(tree, key, value)
            continue
        owners = [s for s, fields in section_fields.items() if key in fields]
        if not owners:
            raise GancliError(
                f"--set {key}: unknown setting; see 'gancli plugins info FAMILY' and 'gancli train --help'"
            )
        if len(owners) > 1:
            raise GancliError(f"--set {key} is ambiguous; write {' or '.join(f'{o}.{key}' for o in owners)}")
        _set_path(tree, f"{owners[0]}.{key}", value)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve(
    family_name: Optional[str],
    *,
    recipe: Optional[str] = None,
    base: Optional[dict[str, Any]] = None,
    flags: Optional[dict[str, Any]] = None,
    overrides: Optional[list[str]] = None,
) -> tuple[RunConfig, Any]:
    """Build and validate the run config and the family's own config.

    ``flags`` is a nested dict of explicit command-line values (None values ignored).
    Returns (RunConfig whose ``model`` holds the full family config, family config object).
    """
    from gancli.plugins import PluginFault, get_record

    tree: dict[str, Any] = dict(base or {})
    if base and family_name and base.get("family") not in (None, family_name):
        raise GancliError(f"the run to resume is a {base['family']!r} run, not {family_name!r}")
    family_name = family_name or (base or {}).get("family")
    if recipe:
        recipe_tree = read_recipe(recipe)
        tree = deep_merge(tree, recipe_tree)
        recipe_family = recipe_tree.get("family")
        if family_name and recipe_family and recipe_family != family_name:
            raise GancliError(
                f"recipe {recipe!r} is for family {recipe_family!r}, not {family_name!r}; drop one of them"
            )
        family_name = family_name or recipe_family
    if not family_name:
        raise GancliError("name a GAN family (e.g. 'gancli train dcgan ...') or a --recipe that names one")
    record = get_record(family_name)
    with PluginFault(record, "loading its settings model"):
        config_model = record.family.load_config_model()

    defaults = {
        "train": dict(getattr(config_model, "train_defaults", {}) or {}),
        "data": dict(getattr(config_model, "data_defaults", {}) or {}),
    }
    tree = deep_merge(defaults, {k: v for k, v in tree.items() if k != "family"})
    for section, values in (flags or {}).items():
        for key, value in values.items():
            if value is not None:
                tree.setdefault(section, {})[key] = value
    apply_overrides(tree, overrides or [], set(config_model.model_fields))
    tree["family"] = family_name

    model_tree = tree.pop("model", {}) or {}
    try:
        run = RunConfig.model_validate({**tree, "model": {}})
    except ValidationError as exc:
        raise GancliError(f"invalid settings: {format_validation_error(exc)}") from None
    try:
        family_config = config_model.model_validate(model_tree)
    except ValidationError as exc:
        raise GancliError(
            f"invalid {family_name} settings: {format_validation_error(exc, 'model.')}; "
            f"see 'gancli plugins info {family_name}'"
        ) from None
    run = run.model_copy(update={"model": family_config.model_dump(mode="json")})
    return run, family_config


def to_toml(run: RunConfig) -> str:
    """The resolved config as a recipe that reproduces the run."""
    data = run.model_dump(mode="json")
    lines = [f'family = {json.dumps(data["family"])}']
    for section in SECTIONS:
        lines.append("")
        lines.append(f"[{section}]")
        for key, value in data[section].items():
            if value is None:
                continue  # TOML has no null: an absent key means the default
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
