"""``gancli plugins new NAME``: write a complete third-party plugin distribution that passes its own tests.

The files come from ``template/`` (``$name`` placeholders, ``string.Template``); paths
containing ``PACKAGE``, ``MODULE`` (the name as an identifier) and ``FAMILY`` are renamed. The result uses only the public plugin
API (docs/plugins.md) and requires a compatible gancli (this release series).
"""
from __future__ import annotations

import re
import string
from importlib.resources import files
from pathlib import Path

from gancli.errors import GancliError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def names(family: str) -> dict[str, str]:
    import gancli
    from gancli.plugins import API_VERSION

    if not NAME_PATTERN.match(family):
        raise GancliError(
            f"family name {family!r} must be lower-case letters and digits, words joined by '-', starting with a "
            f"letter (e.g. mygan or my-gan)"
        )
    major, minor = (int(p) for p in gancli.__version__.split(".")[:2])
    series = f">={major}.{minor},<{major}.{minor + 1}" if major == 0 else f">={major}.{minor},<{major + 1}"
    return {
        "family": family,
        "distribution": f"gancli-plugin-{family}",
        "package": f"gancli_plugin_{family.replace('-', '_')}",
        "summary": f"The {family} GAN family for gancli",
        "requirement": f"gancli{series}",
        "api_version": API_VERSION,
        "gancli_version": gancli.__version__,
    }


def write_plugin(family: str, folder: Path) -> Path:
    """Write the distribution into ``folder / gancli-plugin-FAMILY``; refuses to touch an existing folder."""
    values = names(family)
    root = Path(folder).expanduser() / values["distribution"]
    if root.exists():
        raise GancliError(f"{root} already exists; choose another --dir or remove it first")
    template = files("gancli.scaffold") / "template"
    written = []
    for source, relative in _walk(template, ""):
        renamed = (relative.replace("PACKAGE", values["package"]).replace("MODULE", family.replace("-", "_"))
                   .replace("FAMILY", family))
        target = root / renamed.removesuffix(".tmpl")
        text = string.Template(source.read_text(encoding="utf-8")).substitute(values)
        written.append((target, text))
    try:
        for target, text in written:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise GancliError(f"cannot write {root}: {exc.strerror}; choose another --dir") from None
    return root


def _walk(folder, prefix: str):
    for item in sorted(folder.iterdir(), key=lambda t: t.name):
        path = f"{prefix}{item.name}"
        if item.is_dir():
            if item.name != "__pycache__":
                yield from _walk(item, path + "/")
        elif item.name.endswith(".tmpl"):
            yield item, path
