"""Write a pip constraints file that pins every dependency floor (``>=X``) of gancli and its plugins to ``==X``.

    python tools/floors.py [OUT]        # default: print to stdout

Reads ``[project] dependencies`` and the ``test`` extra of ./pyproject.toml and the dependencies of
plugins/*/pyproject.toml (the checkout's own distributions, installed editable, are skipped). A
requirement without a floor stays free, and so does everything it pulls in. ``make test-floors``
installs the checkout with these pins into .venv-floors and runs the quick tests there, so a floor
in a pyproject is a version the tests pass on. Standard library only (it runs before any venv).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _projects() -> list[dict]:
    paths = [ROOT / "pyproject.toml", *sorted(ROOT.glob("plugins/*/pyproject.toml"))]
    return [tomllib.loads(p.read_text())["project"] for p in paths]


def floors() -> dict[str, str]:
    """``{normalized name: floor}`` for every requirement with a ``>=`` floor."""
    projects = _projects()
    local = {_normalize(p["name"]) for p in projects}
    requirements = list(projects[0].get("optional-dependencies", {}).get("test", []))
    for project in projects:
        requirements += project.get("dependencies", [])
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"floors: cannot read requirement {requirement!r}")
        name, specifiers, marker = _normalize(match[1]), match[2], match[3]
        if name in local:
            continue
        if marker:
            raise SystemExit(f"floors: {requirement!r} has a marker; give it a floor pin by hand")
        for specifier in specifiers.split(","):
            specifier = specifier.strip()
            if specifier.startswith(">="):
                floor = specifier[2:].strip()
                if pins.setdefault(name, floor) != floor:
                    raise SystemExit(f"floors: {name} has two floors, {pins[name]} and {floor}")
    return pins


def constraints() -> str:
    pins = floors()
    lines = ["# Written by tools/floors.py: every >= floor of pyproject.toml and plugins/*/pyproject.toml."]
    lines += [f"{name}=={floor}" for name, floor in sorted(pins.items())]
    torch = pins.get("torch")
    if torch is not None and "torchvision" not in pins:
        # torch-fidelity (test extra) requires torchvision, and every torchvision release requires
        # one torch release: pin the one built for the torch floor (torch 2.N.M: torchvision
        # 0.(N+15).M, from torch 2.1 on), so pip does not walk back through torchvision's releases.
        major, minor, patch = (torch.split(".") + ["0", "0"])[:3]
        if major != "2" or int(minor) < 1:
            raise SystemExit(f"floors: no torchvision pairing known for torch {torch}")
        lines.append(f"torchvision==0.{int(minor) + 15}.{patch}  # the release built for torch=={torch}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    text = constraints()
    if len(argv) > 1:
        Path(argv[1]).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv)
