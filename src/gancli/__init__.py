"""gancli: train, sample, interpolate, evaluate and export GANs; every family is a plugin.

Importing this package is cheap: torch is only imported when a heavy name is used.
"""
from __future__ import annotations

from gancli.version import __version__

__all__ = ["__version__", "load", "GancliError"]


def __getattr__(name: str):
    if name == "load":
        from gancli.pipeline import load

        return load
    if name == "GancliError":
        from gancli.errors import GancliError

        return GancliError
    raise AttributeError(f"module 'gancli' has no attribute {name!r}")
