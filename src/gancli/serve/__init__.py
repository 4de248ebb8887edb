"""gancli serve: a local web page to explore trained models (the optional extra gancli[serve]).

Modules, one job each: :mod:`~gancli.serve.sources` (what the command line names: checkpoints, model
folders, run folders), :mod:`~gancli.serve.registry` (one loaded model per source, reloaded when a run
writes a newer checkpoint), :mod:`~gancli.serve.params` (query parameters, checked), :mod:`~gancli.serve.rendering`
(pictures from the public pipeline), :mod:`~gancli.serve.jobs` (generation off the event loop, bounded),
:mod:`~gancli.serve.app` (the routes) and :mod:`~gancli.serve.server` (binding and running uvicorn).
Importing this package is cheap: no torch, no web framework.
"""
from __future__ import annotations

EXTRA_HINT = "gancli serve needs the web extra: pip install 'gancli[serve]'"


def need_serve_extra() -> None:
    """Raise one clear GancliError line when starlette or uvicorn (the extra gancli[serve]) is missing."""
    from gancli.errors import GancliError

    missing = []
    for name in ("starlette", "uvicorn"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise GancliError(f"{EXTRA_HINT} ({' and '.join(missing)} not installed)")
