"""The gancli command line. Subcommands live in one small module each and import torch lazily."""
from __future__ import annotations

import os

import typer

from gancli.cli import _common
from gancli.cli.arithmetic_cmd import arithmetic_command
from gancli.cli.eval_cmd import eval_app
from gancli.cli.export_cmd import export_command
from gancli.cli.interpolate_cmd import interpolate_command
from gancli.cli.plot_cmd import plot_command
from gancli.cli.plugins_cmd import plugins_app
from gancli.cli.recipes_cmd import recipes_app
from gancli.cli.sample_cmd import sample_command
from gancli.cli.serve_cmd import serve_command
from gancli.cli.style_mix_cmd import style_mix_command
from gancli.cli.train_cmd import train_command

app = typer.Typer(
    name="gancli",
    help="Train, sample, interpolate, evaluate and export GANs. Every GAN family is a plugin.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (Typer's mechanism)
    pretty_exceptions_enable=False,
    # click's plain help: typer's rich help imports rich.markdown (markdown-it), ~0.2 s of every --help
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from gancli import __version__

        typer.echo(f"gancli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    _common.STATE.debug = debug


app.command("train")(train_command)
app.command("sample")(sample_command)
app.command("interpolate")(interpolate_command)
app.command("style-mix")(style_mix_command)
app.command("arithmetic")(arithmetic_command)
app.add_typer(eval_app, name="eval")
app.command("export")(export_command)
app.command("plot")(plot_command)
app.command("serve")(serve_command)
app.add_typer(plugins_app, name="plugins")
app.add_typer(recipes_app, name="recipes")


def main() -> None:
    # Before torch loads OpenMP: waiting threads sleep instead of spinning. On a busy machine spinning
    # threads stall each other (a 2-core DCGAN step ran several times slower); idle, it costs nothing.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()
