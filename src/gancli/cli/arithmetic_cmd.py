"""gancli arithmetic CKPT --expr "A - B + C" --define A=12,40,77 --define B=... --define C=... --out arith.png"""
from pathlib import Path
from typing import List, Optional

import typer

from gancli.cli._common import handle_errors, writable_output


@handle_errors
def arithmetic_command(
    checkpoint: Path = typer.Argument(..., help="A gancli checkpoint, an exported model folder, or a hub id owner/name."),
    expr: str = typer.Option(..., "--expr", "-e", help='Terms joined by + and -, optionally scaled: "A - B + C", "smiling - neutral + 0.5*man".'),
    define: List[str] = typer.Option(..., "--define", "-D", help="NAME=SEEDS: the term NAME is the mean latent of these seeds' samples (the paper averages 3), e.g. A=12,40,77; repeat for each name."),
    out: Path = typer.Option(Path("arithmetic.png"), "--out", "-o", help="Output image (.png, .jpg, .webp)."),
    variants: int = typer.Option(8, "--variants", help="Noisy variants of the result around it (the paper's 8)."),
    jitter: float = typer.Option(0.25, "--jitter", help="Uniform noise of the variants: ±J in z (the paper's 0.25); in W, ±J times each coordinate's spread."),
    seed: int = typer.Option(0, "--seed", help="Seed of the variants' noise."),
    truncation: Optional[float] = typer.Option(None, "--truncation", "-t", help="z models: draw each seed's z truncated at T; W-space models: ψ applied to each w before averaging."),
    noise_mode: Optional[str] = typer.Option(None, "--noise-mode", help="W-space models: const (default), none or random."),
    class_: Optional[str] = typer.Option(None, "--class", help="Conditional models: the class of every sample (default: class 0)."),
    ema: Optional[bool] = typer.Option(None, "--ema/--no-ema", help="Use the EMA generator (default: when present)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if available)."),
) -> None:
    """Vector arithmetic on mean latents (Radford et al. 2016, figure 7): each term's samples and mean, the result and its noisy variants."""
    from gancli.arithmetic import parse_definitions, parse_expression
    from gancli.errors import GancliError

    terms = parse_expression(expr)
    definitions = parse_definitions(define)
    missing = sorted({name for _, name in terms} - set(definitions))
    if missing:
        raise GancliError(f"--expr uses {', '.join(missing)}, which no --define gives (defined: "
                          f"{', '.join(sorted(definitions))}); add --define {missing[0]}=SEEDS")
    unused = sorted(set(definitions) - {name for _, name in terms})
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise GancliError(f"--out must be a .png, .jpg or .webp image; got {out.name}")
    import gancli
    from gancli.arithmetic import arithmetic_picture, latent_arithmetic
    from gancli.references import read_checkpoint
    from gancli.sampling import save_image

    read_checkpoint(checkpoint)  # a bad file fails before any output is touched
    pipe = gancli.load(checkpoint, device=device, ema=ema)
    result = latent_arithmetic(pipe, terms, definitions, class_=class_, truncation=truncation, noise_mode=noise_mode,
                               variants=variants, jitter=jitter, seed=seed)
    out = writable_output(out)
    save_image(arithmetic_picture(result), out)
    if unused:
        typer.echo(f"note: --define {', '.join(unused)} not used by --expr", err=True)
    typer.echo(f"wrote {result.expression} on mean latents in {result.space.upper()} ({len(result.terms)} terms, "
               f"{len(result.variants)} variants) to {out}", err=True)
