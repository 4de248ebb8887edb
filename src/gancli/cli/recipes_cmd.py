"""gancli recipes list | show NAME"""
import typer

from gancli.cli._common import complete_recipe, handle_errors

recipes_app = typer.Typer(help="Ready-to-run settings from the papers (TOML).", no_args_is_help=True, rich_markup_mode=None)


def _description(path) -> str:
    import tomllib

    try:
        return str(tomllib.loads(path.read_text(encoding="utf-8")).get("description", ""))
    except (OSError, tomllib.TOMLDecodeError):
        return "(unreadable)"


@recipes_app.command("list")
@handle_errors
def list_recipes() -> None:
    """List the recipes of the installed families, with the plugin that ships each."""
    from rich.console import Console
    from rich.table import Table

    from gancli.config import list_recipes as find_all

    table = Table(title="gancli recipes (use with: gancli train --recipe NAME)")
    table.add_column("name")
    table.add_column("from")
    table.add_column("description")
    for name, entry in find_all().items():
        table.add_row(name, entry.distribution, _description(entry.path))
    Console().print(table)


@recipes_app.command("show")
@handle_errors
def show(name: str = typer.Argument(..., help="Recipe name or path.", autocompletion=complete_recipe)) -> None:
    """Print a recipe's TOML."""
    from gancli.config import find_recipe

    typer.echo(find_recipe(name).read_text(encoding="utf-8"), nl=False)
