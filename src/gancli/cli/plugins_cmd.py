"""gancli plugins list | info NAME | check NAME  (list and info never import torch)"""
import json as json_lib
from pathlib import Path
from typing import Optional

import typer

from gancli.cli._common import complete_family, handle_errors

plugins_app = typer.Typer(help="Installed GAN families (plugins).", no_args_is_help=True, rich_markup_mode=None)


@plugins_app.command("list")
@handle_errors
def list_plugins(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List installed families with their distribution, version and status."""
    from gancli.plugins import discover

    records = discover()
    if as_json:
        rows = [
            {"name": r.name, "distribution": r.distribution, "version": r.version, "ok": r.ok,
             "error": r.error, "summary": r.family.summary if r.family else None, "builtin": r.builtin}
            for r in records.values()
        ]
        typer.echo(json_lib.dumps(rows, indent=2))
        return
    from rich.console import Console

    console = Console()
    if not records:
        console.print("no families installed; pip install gancli-plugin-dcgan (or another gancli-plugin-*)")
        return
    # one line per family, whatever the terminal's width; `gancli plugins info NAME` has the whole story
    rows = [(r.name, r.version, r.distribution,
             short_summary(r.family.summary) if r.family and r.ok else f"warning: {r.error}", r.ok)
            for r in records.values()]
    widths = [max(len(row[i]) for row in rows + [("family", "version", "distribution", "", True)]) for i in range(3)]
    room = max(console.width - sum(widths) - 3, 10)

    def line(name: str, version: str, distribution: str, summary: str) -> str:
        if len(summary) > room:
            summary = summary[: room - 1] + "…"
        return f"{name:<{widths[0]}} {version:<{widths[1]}} {distribution:<{widths[2]}} {summary}".rstrip()

    console.print(line("family", "version", "distribution", "summary (the whole one: gancli plugins info NAME)"),
                  style="bold", markup=False, highlight=False, soft_wrap=True)
    for name, version, distribution, summary, ok in rows:
        console.print(line(name, version, distribution, summary), style=None if ok else "yellow", markup=False,
                      highlight=False, soft_wrap=True)


def short_summary(summary: str) -> str:
    """The summary up to its first colon or semicolon: the family in a few words."""
    for mark in (":", ";", " ("):
        summary = summary.split(mark, 1)[0]
    return summary.strip()


@plugins_app.command("info")
@handle_errors
def info(name: str = typer.Argument(..., help="Family name.", autocompletion=complete_family)) -> None:
    """Show a family's settings with their defaults and descriptions."""
    from rich.console import Console
    from rich.table import Table

    from gancli.plugins import get_record

    record = get_record(name)
    family = record.family
    model = family.load_config_model()
    console = Console()
    console.print(f"[bold]{family.name}[/] — {family.summary}")
    console.print(f"plugin {record.label}, API {family.api_version}; data: {', '.join(family.data_kinds)}")
    if family.paper:
        console.print(f"paper: {family.paper}")
    table = Table(title="settings (--set NAME=VALUE or model.NAME=VALUE)")
    for column in ("name", "type", "default", "description"):
        table.add_column(column)
    for field_name, field in model.model_fields.items():
        annotation = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        table.add_row(field_name, annotation, repr(field.default), field.description or "")
    console.print(table)
    for title, attr in (("train defaults", "train_defaults"), ("data defaults", "data_defaults")):
        values = getattr(model, attr, None)
        if values:
            console.print(f"{title}: " + ", ".join(f"{k}={v!r}" for k, v in values.items()))
    if family.notes:
        console.print("where this differs from the paper or its reference code:")
        for note in family.notes:
            console.print(f"  - {note}", highlight=False)


@plugins_app.command("check")
@handle_errors
def check(
    name: Optional[str] = typer.Argument(None, help="Family name (or --all).", autocompletion=complete_family),
    every: bool = typer.Option(False, "--all", help="Check every installed family."),
) -> None:
    """Run the conformance kit (gancli.testing.check_family) on a family."""
    from gancli.errors import GancliError
    from gancli.plugins import discover
    from gancli.testing import check_family

    if (name is None) == (not every):
        raise GancliError("name one family, or pass --all to check every installed family")
    names = [n for n, r in discover().items() if r.ok] if every else [name]
    for family in names:
        report = check_family(family, verbose=lambda line: typer.echo(line, err=True))
        typer.echo(f"{family}: {len(report.passed)} checks passed")


@plugins_app.command("new")
@handle_errors
def new(
    name: str = typer.Argument(..., help="The new family's name (lower case, words joined by '-')."),
    folder: Path = typer.Option(Path("."), "--dir", help="Where to create the gancli-plugin-NAME folder."),
) -> None:
    """Write a complete plugin distribution for a new family (pyproject, config, G/D, build, a recipe, tests)."""
    from gancli.scaffold import write_plugin

    root = write_plugin(name, folder)
    typer.echo(f"wrote {root}: pip install -e {root}, then run its tests with pytest {root}", err=True)
