"""The plugin contract and the registry of installed families.

A distribution adds families by declaring entry points in the ``gancli.plugins``
group. Each entry point names a :class:`Family` object that must be cheap to
import (no torch at import time): listing plugins never imports a model.

    [project.entry-points."gancli.plugins"]
    dcgan = "gancli_plugin_dcgan:FAMILY"

The heavy parts are named as "module:attribute" strings and loaded on use:

* ``config``: a pydantic model of the family's hyperparameters (the papers' defaults).
* ``build``: ``build(config, spec) -> gancli.objective.GAN`` holding the generator,
  the discriminator and the :class:`gancli.objective.Objective` that trains them.

Optional on the config model: ``resume_may_change: ClassVar[frozenset[str]]``, the
settings (learning rates, loss weights, ...) that ``gancli train --resume`` may change;
every other setting defines the architecture and must match the checkpoint's.

A plugin whose import fails or whose ``api_version`` has another major version is
kept as a row with an error, so one broken plugin never breaks other commands.

Environment: ``GANCLI_PLUGINS=a,b`` loads only the named plugins (family or
distribution names); ``GANCLI_DISABLE_PLUGINS=1`` loads only the families that ship
with gancli. An exception raised by plugin code while building, training or sampling
is reported as that plugin's fault (:class:`PluginFault`), with its name and version.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional

from gancli.errors import GancliError

API_VERSION = "2.0"
ENTRY_POINT_GROUP = "gancli.plugins"
# Families shipped by the gancli project itself (plugins/ in the repository).
BUILTIN_DISTRIBUTIONS = frozenset(
    {
        "gancli-plugin-dcgan",
        "gancli-plugin-gan",
        "gancli-plugin-wgan",
        "gancli-plugin-sngan",
        "gancli-plugin-sagan",
        "gancli-plugin-biggan",
        "gancli-plugin-progan",
        "gancli-plugin-stylegan",
    }
)


@dataclass(frozen=True)
class Family:
    """What an entry point names: a description plus lazy references to the heavy parts."""

    name: str
    summary: str
    config: str
    build: str
    api_version: str = API_VERSION
    data_kinds: tuple[str, ...] = ("image",)
    paper: str = ""
    # settings that make a tiny model for the conformance kit (gancli.testing.check_family)
    check_settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    check_resolution: int = 32
    # "package:folder" holding the family's recipes (*.toml) as package data, e.g. "gancli_plugin_dcgan:recipes"
    recipes: str = ""
    # where the implementation deviates from the paper or its reference code (gancli plugins info prints them)
    notes: tuple[str, ...] = ()

    def recipe_folder(self):
        """The folder (an importlib.resources Traversable) holding this family's recipes, or None."""
        if not self.recipes:
            return None
        from importlib.resources import files

        package, _, folder = self.recipes.partition(":")
        root = files(package)
        return root / folder if folder else root

    def load_config_model(self) -> Any:
        return _load_reference(self.config)

    def load_builder(self) -> Any:
        return _load_reference(self.build)


def _load_reference(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


@dataclass
class PluginRecord:
    """One row of ``gancli plugins list``: a family, or the reason it could not load."""

    name: str
    distribution: str
    version: str
    family: Optional[Family] = None
    error: Optional[str] = None
    builtin: bool = False

    @property
    def ok(self) -> bool:
        return self.family is not None and self.error is None

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.version}"


def api_compatible(version: str) -> bool:
    return str(version).split(".")[0] == API_VERSION.split(".")[0]


def _allowed(name: str, distribution: str) -> bool:
    if os.environ.get("GANCLI_DISABLE_PLUGINS", "").strip().lower() not in ("", "0", "false", "no"):
        if distribution not in BUILTIN_DISTRIBUTIONS:
            return False
    only = os.environ.get("GANCLI_PLUGINS", "").strip()
    if only:
        wanted = {n.strip().lower() for n in only.split(",") if n.strip()}
        return name.lower() in wanted or distribution.lower() in wanted
    return True


def _record_from_entry_point(ep: Any) -> PluginRecord:
    dist = getattr(ep, "dist", None)
    distribution = dist.metadata["Name"] if dist is not None else "?"
    version = dist.version if dist is not None else "?"
    record = PluginRecord(
        name=ep.name,
        distribution=distribution,
        version=version,
        builtin=distribution in BUILTIN_DISTRIBUTIONS,
    )
    try:
        family = ep.load()
    except Exception as exc:  # a broken plugin must not break the registry
        record.error = f"import failed: {type(exc).__name__}: {exc}"
        return record
    if not isinstance(family, Family):
        record.error = f"entry point {ep.value!r} is not a gancli.plugins.Family"
        return record
    if not api_compatible(family.api_version):
        record.error = (
            f"plugin API {family.api_version} is incompatible with this gancli (API {API_VERSION}); "
            f"upgrade {distribution} or gancli"
        )
        return record
    if family.name != ep.name:
        record.error = f"entry point {ep.name!r} names family {family.name!r}; they must match"
        return record
    record.family = family
    return record


@lru_cache(maxsize=1)
def discover() -> dict[str, PluginRecord]:
    """All installed families by name, broken ones included (with ``error`` set)."""
    from importlib.metadata import entry_points

    records: dict[str, PluginRecord] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        distribution = dist.metadata["Name"] if dist is not None else "?"
        if not _allowed(ep.name, distribution):
            continue
        if ep.name in records and records[ep.name].ok:
            continue  # the same dist seen twice on sys.path (editable + site), keep the first
        records[ep.name] = _record_from_entry_point(ep)
    return dict(sorted(records.items()))


def refresh() -> None:
    """Forget what was discovered (after installing a plugin, or in tests)."""
    discover.cache_clear()


def get_record(name: str) -> PluginRecord:
    records = discover()
    record = records.get(name)
    if record is None:
        known = ", ".join(n for n, r in records.items() if r.ok) or "none installed"
        limits = [v for v in ("GANCLI_PLUGINS", "GANCLI_DISABLE_PLUGINS") if os.environ.get(v, "").strip()]
        hint = f" or unset {' and '.join(limits)}" if limits else ""
        raise GancliError(
            f"unknown GAN family {name!r} (available: {known}); "
            f"install its plugin, e.g. pip install gancli-plugin-{name}{hint}"
        )
    if not record.ok:
        raise GancliError(f"family {name!r} from {record.label} cannot be used: {record.error}")
    return record


def get_family(name: str) -> Family:
    family = get_record(name).family
    assert family is not None
    return family


@dataclass
class PluginFault:
    """Context manager that turns an exception raised inside a plugin into a PluginError."""

    record: PluginRecord
    action: str = "running"
    _debug: bool = field(default=False)

    def __enter__(self) -> "PluginFault":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        from gancli.errors import PluginError

        if exc is None or isinstance(exc, GancliError) or not isinstance(exc, Exception):
            return False  # user errors, Ctrl-C and exits pass through unchanged
        if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
            raise GancliError(
                f"out of memory while {self.action} ({self.record.name}); lower --batch or the model size, "
                f"or use --precision bf16"
            ) from exc
        raise PluginError(
            f"plugin {self.record.label} (family {self.record.name!r}) failed while {self.action}: "
            f"{type(exc).__name__}: {exc}; report it to the plugin's authors (run with --debug for the traceback)"
        ) from exc
