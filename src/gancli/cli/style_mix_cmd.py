"""gancli style-mix CKPT --rows 1,2,3 --cols 4,5,6 --styles coarse|middle|fine|0-3"""
from pathlib import Path
from typing import Optional

import typer

from gancli.cli._common import handle_errors, parse_int_list, writable_output


@handle_errors
def style_mix_command(
    checkpoint: Path = typer.Argument(..., help="A checkpoint, model folder or hub id of a W-space model (e.g. stylegan)."),
    rows: str = typer.Option("1,2,3", "--rows", help="Seeds of the row sources (down the left)."),
    cols: str = typer.Option("4,5,6", "--cols", help="Seeds of the column sources (along the top)."),
    styles: str = typer.Option("coarse", "--styles", help="Layers of w taken from the column source: coarse (4²–8²), middle (16²–32²), fine (64²+), or a range such as 0-3 or a list 0,1,5."),
    truncation: Optional[float] = typer.Option(None, "--truncation", "-t", help="ψ towards w_avg for every source."),
    noise_mode: str = typer.Option("const", "--noise-mode", help="const (default), random or none."),
    class_: Optional[str] = typer.Option(None, "--class", help="Conditional models: the class of every source (default: class 0)."),
    out: Path = typer.Option(Path("style-mix.png"), "--out", "-o", help="Output image (.png, .jpg, .webp)."),
    ema: Optional[bool] = typer.Option(None, "--ema/--no-ema", help="Use the EMA generator (default: when present)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if available)."),
) -> None:
    """Style-mixing grid (Karras et al. 2019): row sources with some styles from column sources."""
    from gancli.errors import GancliError

    row_seeds, col_seeds = parse_int_list(rows, "--rows"), parse_int_list(cols, "--cols")
    if not row_seeds or not col_seeds:
        raise GancliError("--rows and --cols need at least one seed each")
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise GancliError(f"--out must be a .png, .jpg or .webp image; got {out.name}")
    import gancli
    from gancli.data.images import to_uint8
    from gancli.references import read_checkpoint
    from gancli.sampling import save_image, style_mix_picture

    read_checkpoint(checkpoint)
    pipe = gancli.load(checkpoint, device=device, ema=ema)
    if not pipe.w_space:
        raise GancliError(f"style mixing needs a generator with a W space (e.g. stylegan); this {pipe.family} model has none")
    layers = parse_layers(styles, pipe.style_groups(), int(pipe.generator.num_ws))
    out = writable_output(out)
    pipe.check_class(class_)
    grid = pipe.style_mix(row_seeds, col_seeds, layers, truncation=truncation, noise_mode=noise_mode, class_=class_)
    picture = style_mix_picture(to_uint8(grid["rows"]), to_uint8(grid["cols"]), to_uint8(grid["mixes"]))
    save_image(picture, out)
    typer.echo(f"wrote a {len(row_seeds)}×{len(col_seeds)} style-mixing grid (layers {layers} from the columns) "
               f"to {out}", err=True)


def parse_layers(text: str, groups: dict[str, list[int]], num_ws: int) -> list[int]:
    """'coarse' | 'middle' | 'fine' | 'a-b' | 'a,b,c' → sorted layer indices of w."""
    from gancli.errors import GancliError

    text = text.strip().lower()
    if text in groups:
        layers = groups[text]
        if not layers:
            raise GancliError(f"this model has no {text} layers (its W layers drive resolutions "
                              f"up to the model's own); choose another --styles")
        return layers
    try:
        if "-" in text:
            first, last = (int(v) for v in text.split("-", 1))
            layers = list(range(first, last + 1))
        else:
            layers = [int(v) for v in text.split(",") if v]
    except ValueError:
        raise GancliError(f"--styles must be coarse, middle, fine, a range like 0-3 or a list like 0,1,5; got {text!r}") from None
    if not layers or min(layers) < 0 or max(layers) >= num_ws:
        raise GancliError(f"--styles layers must lie in 0..{num_ws - 1}; got {text!r}")
    return sorted(set(layers))
