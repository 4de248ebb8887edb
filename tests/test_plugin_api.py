"""The public plugin API is written down in docs/plugins.md; built-in plugins import nothing else from gancli."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def documented_names() -> dict[str, set[str]]:
    """{module: names} from the table in docs/plugins.md; gancli.nn means its __all__."""
    import gancli.nn

    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = text.split("## Names a plugin may import", 1)[1].split("\n## ", 1)[0]
    names: dict[str, set[str]] = {}
    for module, cell in re.findall(r"^\| `(gancli[\w.]*)` \| (.+) \|$", section, flags=re.M):
        names[module] = set(re.findall(r"`(\w+)`", cell))
    names["gancli.nn"] = set(gancli.nn.__all__)
    return names


def gancli_imports(path: Path) -> list[tuple[str, str, int]]:
    """(module, name, line) for every ``from gancli... import name`` and ``import gancli...`` in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gancli":
            found += [(node.module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "*", node.lineno) for alias in node.names if alias.name.split(".")[0] == "gancli"]
    return found


def test_the_documented_names_exist():
    import importlib

    for module, names in documented_names().items():
        imported = importlib.import_module(module)
        missing = sorted(n for n in names if not hasattr(imported, n))
        assert not missing, f"docs/plugins.md lists {module}.{missing} which does not exist"


def test_built_in_plugins_import_only_the_public_api():
    allowed = documented_names()
    offences = []
    sources = sorted((ROOT / "plugins").glob("*/src/**/*.py"))
    assert sources
    for path in sources:
        for module, name, line in gancli_imports(path):
            # gancli.nn's submodules hold the same public layers
            key = "gancli.nn" if module.startswith("gancli.nn.") else module
            if module == "gancli" and f"gancli.{name}" in allowed:
                continue  # "from gancli import checkpoint": a documented module
            if name == "*" and key in allowed:
                continue  # "import gancli.x": the names used are checked where they are imported from
            if name not in allowed.get(key, set()):
                offences.append(f"{path.relative_to(ROOT)}:{line}: {module}{'.' + name if name else ''}")
    assert not offences, "not in docs/plugins.md:\n" + "\n".join(offences)


def test_a_scaffolded_plugin_imports_only_the_public_api(tmp_path):
    from gancli.scaffold import write_plugin

    root = write_plugin("apicheck", tmp_path)
    allowed = documented_names()
    imports = [(m, n) for path in root.rglob("*.py") for m, n, _ in gancli_imports(path)]
    assert imports
    for module, name in imports:
        key = "gancli.nn" if module.startswith("gancli.nn.") else module
        assert name in allowed.get(key, set()), f"{module}.{name}"


def test_scaffold_refuses_bad_names_and_existing_folders(tmp_path, cli):
    assert cli("plugins", "new", "Bad_Name", "--dir", tmp_path).exit_code == 2
    assert cli("plugins", "new", "fine", "--dir", tmp_path).exit_code == 0
    again = cli("plugins", "new", "fine", "--dir", tmp_path)
    assert again.exit_code == 2 and "already exists" in again.stderr
    import tomllib

    pyproject = tomllib.loads((tmp_path / "gancli-plugin-fine" / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["gancli.plugins"] == {"fine": "gancli_plugin_fine:FAMILY"}
    assert pyproject["project"]["dependencies"] == ["gancli>=0.2,<0.3"]
