"""Installed from wheels as users install it: the core, every built-in plugin and a plugin scaffolded by
`gancli plugins new`, in a fresh virtual environment with no editable install and no checkout in sight."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # builds every wheel and a fresh virtual environment (about a minute)

ROOT = Path(__file__).resolve().parent.parent
THIRD_PARTY = "wheeltest"


def _run(args, *, cwd: Path, env=None, timeout=900) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def _copy_project(project: Path, target: Path) -> Path:
    """What a source distribution holds (pyproject, README, src/), so building leaves the checkout untouched."""
    import shutil

    target.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        if (project / name).exists():
            shutil.copy2(project / name, target / name)
    shutil.copytree(project / "src", target / "src", symlinks=False,
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("wheels")
    elsewhere = root / "elsewhere"  # commands run far from the checkout
    elsewhere.mkdir()
    _run([sys.executable, "-m", "gancli", "plugins", "new", THIRD_PARTY, "--dir", root], cwd=elsewhere)
    scaffolded = root / f"gancli-plugin-{THIRD_PARTY}"
    sources = [ROOT, *sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))]
    projects = [_copy_project(project, root / "sources" / project.name) for project in sources] + [scaffolded]
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, *projects],
         cwd=elsewhere)
    env_dir = root / "env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    wheels = sorted(dist.glob("*.whl"))
    _run([python, "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt", *wheels, "pytest"], cwd=elsewhere)
    return {"root": root, "elsewhere": elsewhere, "python": python, "gancli": env_dir / "bin" / "gancli",
            "scaffolded": scaffolded, "wheels": wheels}


def test_nothing_comes_from_the_checkout(installed):
    done = _run([installed["python"], "-c", "import gancli, gancli_plugin_dcgan; print(gancli.__file__); "
                 "print(gancli_plugin_dcgan.__file__)"], cwd=installed["elsewhere"])
    assert str(ROOT) not in done.stdout and "site-packages" in done.stdout


def test_every_family_and_its_recipes_are_listed(installed):
    env = {"PYTHONPATH": ""}
    listed = json.loads(_run([installed["gancli"], "plugins", "list", "--json"], cwd=installed["elsewhere"], env=env).stdout)
    families = {row["name"]: row for row in listed}
    builtin = {p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists()}
    assert all(row["ok"] for row in listed), listed
    assert THIRD_PARTY in families and not families[THIRD_PARTY]["builtin"]
    assert {"dcgan", "gan", "wgan", "wgan-gp"} <= set(families) and builtin
    recipes = _run([installed["gancli"], "recipes", "list"], cwd=installed["elsewhere"], env=env).stdout
    for name, source in (("dcgan-fashion-mnist", "gancli-plugin-dcgan"), ("wgan-gp-grid25", "gancli-plugin-wgan"),
                         (f"{THIRD_PARTY}-fashion-mnist", f"gancli-plugin-{THIRD_PARTY}")):
        line = next(row for row in recipes.splitlines() if name in row)
        assert source in line


def test_a_recipe_trains_and_samples_from_the_wheels(installed):
    where = installed["elsewhere"]
    rng = np.random.default_rng(0)
    np.savez(where / "tiny.npz", images=rng.integers(0, 256, size=(32, 16, 16), dtype=np.uint8))
    for recipe, settings in (("dcgan-fashion-mnist", ["ngf=4", "ndf=4", "z_dim=8"]),
                             (f"{THIRD_PARTY}-fashion-mnist", ["width=4", "z_dim=8"])):
        out = where / f"run-{recipe}"
        _run([installed["gancli"], "train", "--recipe", recipe, "--data", "tiny.npz", "--resolution", "16",
              "--steps", "2", "--batch", "8", "--out", out, *[a for s in settings for a in ("--set", s)]], cwd=where)
        _run([installed["gancli"], "sample", out / "checkpoints" / "last.safetensors", "-n", "4", "--seed", "0",
              "--out", where / f"{recipe}.png"], cwd=where)
        assert (where / f"{recipe}.png").stat().st_size > 0


def test_the_conformance_kit_runs_from_the_wheels_on_the_scaffolded_family(installed):
    # the built-in families run the same kit in their own tests (plugins/*/tests), so once is enough there
    done = _run([installed["gancli"], "plugins", "check", THIRD_PARTY], cwd=installed["elsewhere"], timeout=900)
    assert f"{THIRD_PARTY}:" in done.stdout


def test_the_scaffolded_plugin_passes_its_own_tests_from_its_wheel(installed):
    _run([installed["python"], "-m", "pytest", "-q", "-p", "no:cacheprovider", installed["scaffolded"] / "tests"],
         cwd=installed["elsewhere"])
