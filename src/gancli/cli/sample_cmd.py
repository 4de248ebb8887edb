"""gancli sample CKPT -n 64 ..."""
from pathlib import Path
from typing import Optional

import typer

from gancli.cli._common import handle_errors, parse_float_list, writable_output


@handle_errors
def sample_command(
    checkpoint: Path = typer.Argument(..., help="A gancli checkpoint (.safetensors), an exported model folder, or a hub id owner/name."),
    n: int = typer.Option(64, "-n", "--num", help="Number of samples."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Same seed, same pixels (default: random)."),
    truncation: Optional[float] = typer.Option(None, "--truncation", "-t", help="z models: redraw z_i with |z_i| > T (T > 0). W-space models: ψ in w' = w_avg + ψ(w − w_avg) (0: the average image, 1: none)."),
    truncation_cutoff: Optional[int] = typer.Option(None, "--truncation-cutoff", help="W-space models: truncate only the first L layers of w (default: the family's: stylegan 8, the styles up to 32², as NVlabs' G_style; stylegan2 every layer)."),
    noise_mode: Optional[str] = typer.Option(None, "--noise-mode", help="W-space models: random, const (fixed by the checkpoint) or none."),
    class_: Optional[str] = typer.Option(None, "--class", help="Conditional models: a class name from the data (e.g. Sneaker), an index (#7 always means index 7; a bare 7 is the class named 7 if there is one), or a mixture 3:0.5,7:0.5 (biggan, sngan, sagan)."),
    per_class: Optional[int] = typer.Option(None, "--per-class", help="Conditional models: a grid with one labelled row of M samples per class."),
    truncation_sweep: Optional[str] = typer.Option(None, "--truncation-sweep", help="Comma-separated truncation values: one grid per value, side by side, same seeds."),
    standing_stats: Optional[int] = typer.Option(None, "--standing-stats", help="Re-estimate BatchNorm statistics from N forward passes first (BigGAN); the file is unchanged."),
    bn_mode: str = typer.Option("running", "--bn-mode", help="BatchNorm: running statistics (eval mode) or batch statistics."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output: grid .png (images), .npy/.csv (points), or a folder with --separate."),
    separate: bool = typer.Option(False, "--separate", help="Write one file per sample into the folder --out."),
    ema: Optional[bool] = typer.Option(None, "--ema/--no-ema", help="Use the EMA generator (default: when present)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)."),
) -> None:
    """Sample from a trained generator."""
    from gancli.errors import GancliError

    if n <= 0:
        raise GancliError(f"-n must be positive, got {n}")
    if per_class is not None and per_class <= 0:
        raise GancliError(f"--per-class must be positive, got {per_class}")
    if per_class is not None and class_ is not None:
        raise GancliError("--per-class writes every class; drop --class")
    if bn_mode not in ("running", "batch"):
        raise GancliError(f"--bn-mode must be running or batch, got {bn_mode!r}")
    if noise_mode is not None and noise_mode not in ("random", "const", "none"):
        raise GancliError(f"--noise-mode must be random, const or none, got {noise_mode!r}")
    sweep = parse_float_list(truncation_sweep, "--truncation-sweep") if truncation_sweep else None
    if sweep is not None and truncation is not None:
        raise GancliError("--truncation-sweep sets the truncation of each grid; drop --truncation")
    import gancli
    from gancli.references import read_checkpoint

    read_checkpoint(checkpoint)  # a bad file fails before any output is touched
    pipe = gancli.load(checkpoint, device=device, ema=ema, bn_mode=bn_mode)
    pipe.check_class(class_)
    if per_class is not None and pipe.num_classes == 0:
        raise GancliError(f"this {pipe.family} model is unconditional; --per-class needs a conditional model")
    points = pipe.spec.kind == "points"
    if points and (per_class or sweep):
        raise GancliError("--per-class and --truncation-sweep make image grids; this model makes points")
    if out is None:
        out = Path("samples" if separate else ("samples.csv" if points else "samples.png"))
    out = writable_output(out, is_dir=separate)
    if standing_stats is not None and sweep is None:
        pipe.standing_statistics(standing_stats, seed=seed or 0, truncation=truncation)
    _note_growth(pipe)
    options = dict(truncation_cutoff=truncation_cutoff, noise_mode=noise_mode)
    if per_class is not None or sweep is not None:
        if separate:
            raise GancliError("--separate writes single samples; drop it with --per-class or --truncation-sweep")
        _check_grid_suffix(out)
        from gancli.sampling import captioned_panels, save_image

        values = sweep if sweep is not None else [truncation]
        panels = []
        for t in values:
            if standing_stats is not None and sweep is not None:  # statistics at each value's truncation
                pipe.standing_statistics(standing_stats, seed=seed or 0, truncation=t)
            panels.append(_grid(pipe, n, seed, t, class_, per_class, options))
        picture = panels[0] if sweep is None else captioned_panels(panels, [f"truncation {t:g}" for t in values])
        save_image(picture, out)
        what = f"{per_class} per class" if per_class else f"{n} samples"
        typer.echo(f"wrote {what}{f' at truncation {truncation_sweep}' if sweep else ''} to {out}", err=True)
        return
    x = pipe.sample(n, seed=seed, truncation=truncation, class_=class_, **options)
    if points:
        write_points(x, out, separate)
    else:
        write_images(x, out, separate)
    typer.echo(f"wrote {n} samples to {out}", err=True)


def _grid(pipe, n: int, seed, truncation, class_, per_class, options):
    """One grid image: n samples, or one labelled row of per_class samples for every class."""
    import torch

    from gancli.data.images import to_uint8
    from gancli.sampling import image_grid, labelled_rows

    if per_class is None:
        return image_grid(to_uint8(pipe.sample(n, seed=seed, truncation=truncation, class_=class_, **options)))
    rows = [to_uint8(pipe.sample(per_class, seed=seed, truncation=truncation, class_=k, **options))
            for k in range(pipe.num_classes)]
    return labelled_rows(torch.cat(rows), pipe.class_names, cols=per_class)


def _note_growth(pipe) -> None:
    current = getattr(pipe.generator, "current_resolution", None)
    if current is not None and pipe.spec.kind == "image" and int(current) < pipe.spec.resolution:
        typer.echo(
            f"note: this checkpoint (step {pipe.checkpoint.step}) is at {int(current)}×{int(current)} of its "
            f"{pipe.spec.resolution}×{pipe.spec.resolution} target; samples are upsampled to the target",
            err=True,
        )


def _check_grid_suffix(out: Path) -> None:
    from gancli.errors import GancliError

    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise GancliError(f"image grids are written as .png, .jpg or .webp; got {out.name}")


def write_points(x, out: Path, separate: bool) -> None:
    import numpy as np

    from gancli.errors import GancliError
    from gancli.sampling import points_plot, save_image

    if separate:
        raise GancliError("--separate is for images; points go into one .npy or .csv file")
    suffix = out.suffix.lower()
    if suffix == ".npy":
        import io

        from gancli.checkpoint import atomic_write_bytes

        buffer = io.BytesIO()
        np.save(buffer, x.numpy(), allow_pickle=False)
        atomic_write_bytes(out, buffer.getvalue())
    elif suffix == ".csv":
        from gancli.checkpoint import atomic_write_text

        header = ",".join(f"x{i}" for i in range(x.shape[1]))
        rows = "\n".join(",".join(f"{v:.6g}" for v in row) for row in x.tolist())
        atomic_write_text(out, header + "\n" + rows + "\n")
    elif suffix == ".png":
        save_image(points_plot(x), out)
    else:
        raise GancliError(f"points are written as .npy, .csv or a .png scatter plot; got {out.name}")


def write_images(x, out: Path, separate: bool) -> None:
    from gancli.data.images import to_uint8
    from gancli.sampling import image_grid, save_image, to_pil_images

    images = to_uint8(x)
    if separate:
        for i, image in enumerate(to_pil_images(images)):
            save_image(image, out / f"{i:06d}.png")
        return
    _check_grid_suffix(out)
    save_image(image_grid(images), out)
