"""gancli sample CKPT -n 64 ..."""
from pathlib import Path
from typing import Optional

import typer

from gancli.cli._common import handle_errors, writable_output


@handle_errors
def sample_command(
    checkpoint: Path = typer.Argument(..., help="A gancli .safetensors checkpoint."),
    n: int = typer.Option(64, "-n", "--num", help="Number of samples."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Same seed, same pixels (default: random)."),
    truncation: Optional[float] = typer.Option(None, "--truncation", "-t", help="Truncation T > 0: z_i with |z_i| > T are redrawn (W-space ψ for style-based models)."),
    class_: Optional[int] = typer.Option(None, "--class", help="Class index for conditional models."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output: grid .png (images), .npy/.csv (points), or a folder with --separate."),
    separate: bool = typer.Option(False, "--separate", help="Write one file per sample into the folder --out."),
    ema: Optional[bool] = typer.Option(None, "--ema/--no-ema", help="Use the EMA generator (default: when present)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)."),
) -> None:
    """Sample from a trained generator."""
    from gancli.errors import GancliError

    if n <= 0:
        raise GancliError(f"-n must be positive, got {n}")
    if truncation is not None and truncation <= 0:
        raise GancliError(f"--truncation must be positive, got {truncation}")
    import gancli
    from gancli import checkpoint as ckpt_io

    ckpt_io.read(checkpoint)  # a bad file fails before any output is touched
    pipe = gancli.load(checkpoint, device=device, ema=ema)
    pipe.check_class(class_)
    points = pipe.spec.kind == "points"
    if out is None:
        out = Path("samples" if separate else ("samples.csv" if points else "samples.png"))
    out = writable_output(out, is_dir=separate)
    x = pipe.sample(n, seed=seed, truncation=truncation, class_=class_)
    if points:
        write_points(x, out, separate)
    else:
        write_images(x, out, separate)
    typer.echo(f"wrote {n} samples to {out}", err=True)


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
    from gancli.errors import GancliError
    from gancli.sampling import image_grid, save_image, to_pil_images

    images = to_uint8(x)
    if separate:
        for i, image in enumerate(to_pil_images(images)):
            save_image(image, out / f"{i:06d}.png")
        return
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise GancliError(f"image grids are written as .png, .jpg or .webp; got {out.name}")
    save_image(image_grid(images), out)
