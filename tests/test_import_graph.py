"""No circle of imports among gancli's modules, function-level imports included: each layer only uses the ones below."""
from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "src"


def module_names(root: Path) -> dict[str, Path]:
    """{dotted module name: file} for every module of the gancli package under ``root``."""
    names = {}
    for path in sorted((root / "gancli").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The gancli modules that ``name`` imports anywhere in its file (in functions too).

    ``from gancli import checkpoint`` imports the submodule, not the package's own code; a name that is no
    submodule (``from gancli import __version__``) is an import of the package itself.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            submodules = {f"{origin}.{alias.name}" for alias in node.names} & modules.keys()
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(origin)
    return {module for module in found if module in modules and module != name}


def import_graph(root: Path = SOURCE) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One circle of the graph as [a, b, ..., a], or [] when there is none."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_gancli_modules_import_one_another_without_a_circle():
    graph = import_graph()
    assert "gancli.checkpoint" in graph and "gancli.objective.adversarial" in graph
    cycle = find_cycle(graph)
    assert not cycle, "import circle: " + " -> ".join(cycle)


def test_the_checkpoint_format_reads_files_only():
    graph = import_graph()
    assert not graph["gancli.checkpoint"] & {"gancli", "gancli.model_folder", "gancli.hub", "gancli.references"}


def test_the_circle_finder_finds_function_level_and_package_circles(tmp_path):
    package = tmp_path / "gancli"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("def __getattr__(name):\n    from gancli.a import thing\n    return thing\n")
    (package / "a.py").write_text("from gancli import b\n")
    (package / "b.py").write_text("def later():\n    from gancli import __version__\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("from . import d\n")
    (package / "sub" / "d.py").write_text("from .. import sub\n")
    graph = import_graph(tmp_path)
    assert graph["gancli.b"] == {"gancli"} and graph["gancli.sub.c"] == {"gancli.sub.d"}
    assert find_cycle(graph) == ["gancli", "gancli.a", "gancli.b", "gancli"]
    assert find_cycle({"x": {"y"}, "y": set()}) == []
