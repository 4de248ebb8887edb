"""Data sources for ``--data``: every dataset yields uint8 images (N, C, R, R) or float points."""
from gancli.data.spec import DataSpec

__all__ = ["DataSpec", "load_data"]


def __getattr__(name):
    if name == "load_data":
        from gancli.data.sources import load_data

        return load_data
    raise AttributeError(name)
