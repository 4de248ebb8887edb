"""The README and docs/*.md say only what the code does: every command line in a shell block is parsed by
the parser of the program it calls (gancli's own, python -m benchmarks', the Makefile's targets), the cheap
gancli commands run, Python and TOML blocks compile, and every linked local file (pictures included) exists."""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"", "sh", "bash", "shell", "console"}
UNCHECKED = {"text"}  # fenced blocks that are not code
EXTERNAL = {"pip", "hf", "huggingface-cli", "tensorboard", "pytest"}  # other tools: not ours to parse
RUN = {("plugins", "list"), ("plugins", "info"), ("recipes", "list"), ("recipes", "show")}  # cheap, torch-free


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def fenced_blocks(path: Path) -> list[tuple[str, int, str]]:
    """(language, first line number, text) of every fenced block."""
    blocks, lang, start, body = [], None, 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^\s*```\s*([\w-]*)\s*$", line)
        if fence and lang is None:
            lang, start, body = fence.group(1).lower(), number + 1, []
        elif fence and not fence.group(1):
            blocks.append((lang, start, "\n".join(body)))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"{rel(path)}: a fenced block opened at line {start - 1} is never closed"
    return blocks


def command_lines(text: str, start: int) -> list[tuple[int, list[str]]]:
    """(line number, argv) of each command in a shell block; comments and `$ ` prompts dropped."""
    out, pending, first = [], "", start
    for number, line in enumerate(text.splitlines(), start):
        if not pending:
            first = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words = shlex.split(pending + line.removeprefix("$ "), comments=True)
        pending = ""
        if words:
            out.append((first, words))
    return out


def all_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in DOCS:
        for lang, start, text in fenced_blocks(path):
            if lang in SHELL:
                found += [(f"{rel(path)}:{n}", argv) for n, argv in command_lines(text, start)]
    return found


# ---- parsers -------------------------------------------------------------------------------------------

def parse_gancli(argv: list[str]):
    """The click context gancli's own parser makes of argv (raises on a bad command line); nothing runs."""
    import typer
    from typer.core import TyperGroup

    from gancli.cli import app

    command, name, parent, args = typer.main.get_command(app), "gancli", None, list(argv)
    while True:
        ctx = command.make_context(name, args, parent=parent)
        if not isinstance(command, TyperGroup):
            return ctx
        rest = [*ctx._protected_args, *ctx.args]
        assert rest, f"`gancli {shlex.join(argv)}` names no command"
        name, command, args = command.resolve_command(ctx, rest)
        parent = ctx


class _Parsed(Exception):
    def __init__(self, namespace):
        self.namespace = namespace


def parse_benchmarks(argv: list[str], monkeypatch) -> argparse.Namespace:
    """`python -m benchmarks argv` parsed by its own parser: main() is stopped right after parse_args."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import __main__ as bench

    original = argparse.ArgumentParser.parse_args

    def stop(self, args=None, namespace=None):
        raise _Parsed(original(self, args, namespace))

    with monkeypatch.context() as m:
        m.setattr(argparse.ArgumentParser, "parse_args", stop)
        m.setattr(os, "environ", os.environ.copy())  # main() sets the workers' defaults in it
        try:
            bench.main(argv)
        except _Parsed as parsed:
            return parsed.namespace
        except SystemExit as exc:
            raise AssertionError(f"python -m benchmarks {shlex.join(argv)}: exit {exc.code}") from None
    raise AssertionError(f"python -m benchmarks {shlex.join(argv)} parsed nothing")


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.MULTILINE)}


def gancli_part(words: list[str]) -> list[str] | None:
    """The gancli arguments of `gancli ...`, `python -m gancli ...`, `accelerate launch ... -m gancli ...`."""
    if words[0] == "gancli":
        return words[1:]
    if words[0] in ("python", "python3", "accelerate", "torchrun") and "-m" in words:
        i = words.index("-m")
        if words[i + 1] == "gancli":
            return words[i + 2:]
    return None


# ---- the checks ----------------------------------------------------------------------------------------

COMMANDS = all_commands()


def test_the_docs_have_command_lines():
    assert len(COMMANDS) > 60, COMMANDS  # the parser above found the blocks


def test_every_fenced_block_has_a_known_language():
    for path in DOCS:
        for lang, start, _ in fenced_blocks(path):
            assert lang in SHELL | UNCHECKED | {"python", "toml"}, f"{rel(path)}:{start}: ```{lang}: teach the test"


@pytest.mark.parametrize("where,words", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_command_line_parses(where, words, monkeypatch, cli):
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value prefixes
        words = words[1:]
    args = gancli_part(words)
    if args is not None:
        ctx = parse_gancli(args)
        path = tuple(ctx.command_path.split()[1:])
        if path in RUN or ctx.params.get("print_config"):
            result = cli(*args)
            assert result.exit_code == 0, f"{where}: `gancli {shlex.join(args)}` failed:\n{result.output}"
        check_names(where, path, ctx.params)
    elif words[:3] in (["python", "-m", "benchmarks"], ["python3", "-m", "benchmarks"]):
        parse_benchmarks(words[3:], monkeypatch)
    elif words[0] == "make":
        missing = set(words[1:]) - make_targets()
        assert not missing, f"{where}: no make target {missing}"
    elif words[:2] == ["python", "-c"]:
        compile(words[2], where, "exec")
    else:
        assert words[0] in EXTERNAL, f"{where}: `{shlex.join(words)}`: no parser for {words[0]!r}; teach the test"


def scaffolded() -> set[str]:
    return {w[3] for _, w in COMMANDS if w[:3] == ["gancli", "plugins", "new"]}


def check_names(where: str, path: tuple, params: dict) -> None:
    """Families and recipe names the docs use exist (parsing alone takes any string)."""
    from gancli import plugins
    from gancli.config import list_recipes

    family = params.get("family") if path == ("train",) else params.get("name") if path[:1] == ("plugins",) else None
    if family and path != ("plugins", "new"):
        assert family in {*plugins.discover(), *scaffolded()}, f"{where}: no family {family!r}"
    recipe = params.get("recipe") if path == ("train",) else params.get("name") if path == ("recipes", "show") else None
    if recipe and not recipe.endswith(".toml"):
        assert recipe in list_recipes(), f"{where}: no recipe {recipe!r}"


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_python_and_toml_blocks_compile(path):
    for lang, start, text in fenced_blocks(path):
        if lang == "python":
            compile(text, f"{rel(path)}:{start}", "exec")
        elif lang == "toml":
            tomllib.loads(text)


# ---- links ---------------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|<(?:img|a)\s[^>]*?(?:src|href)=\"([^\"]+)\"")


def prose(path: Path) -> str:
    """The text without fenced blocks and inline code, where links are not links."""
    text = re.sub(r"^\s*```.*?^\s*```[ \t]*$", "", path.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def links(path: Path) -> list[str]:
    return [a or b for a, b in LINK.findall(prose(path))]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^\s*```.*?^\s*```[ \t]*$", "", path.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.MULTILINE)}


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_every_local_link_exists(path):
    problems = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: no heading #{anchor} in {rel(linked)}")
    assert not problems, f"{rel(path)} links:\n" + "\n".join(problems)


def test_the_link_check_sees_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A `b` c\n\n[x](missing.md) ![p](img/p.png) <img src=\"s.png\"> `[no](code.md)`\n"
                    "[web](https://example.org) [here](#a-b-c)\n\n```\n[no](block.md)\n```\n")
    assert links(page) == ["missing.md", "img/p.png", "s.png", "https://example.org", "#a-b-c"]
    assert anchors(page) == {"a-b-c"}


def test_the_checks_refuse_wrong_lines(monkeypatch):
    from typer._click.exceptions import UsageError

    for argv in (["sample", "x", "--bogus"], ["train", "--steps", "many"], ["eval", "a", "b"], ["nonsense"]):
        with pytest.raises(UsageError):
            parse_gancli(argv)
    with pytest.raises(AssertionError):
        parse_benchmarks(["gallery", "--bogus"], monkeypatch)
    with pytest.raises(AssertionError, match="no family"):
        check_names("here", ("train",), {"family": "nogan", "recipe": None})
    with pytest.raises(AssertionError, match="no recipe"):
        check_names("here", ("train",), {"family": None, "recipe": "nogan-fashion-mnist"})
    assert parse_benchmarks(["gallery", "--only", "dcgan", "--steps", "50"], monkeypatch).steps == 50
    assert "demo" in make_targets() and "test" in make_targets()
    assert command_lines("a b \\\n  c # note\n$ gancli x\n\n", 1) == [(1, ["a", "b", "c"]), (3, ["gancli", "x"])]


def test_the_readme_stays_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 210, f"README.md has {len(lines)} lines; move reference text to docs/"
