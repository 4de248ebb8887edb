"""gancli interpolate CKPT --slerp --seeds 1,2,3 ..."""
from pathlib import Path
from typing import Optional

import typer

from gancli.cli._common import handle_errors, parse_int_list, writable_output


@handle_errors
def interpolate_command(
    checkpoint: Path = typer.Argument(..., help="A gancli .safetensors checkpoint."),
    spherical: bool = typer.Option(True, "--slerp/--lerp", help="Spherical (default) or linear interpolation."),
    seeds: str = typer.Option("0,1", "--seeds", help="Comma-separated seeds; the walk passes through each one's latent."),
    frames: int = typer.Option(16, "--frames", help="Frames per segment between consecutive seeds."),
    truncation: Optional[float] = typer.Option(None, "--truncation", "-t", help="Truncation applied to each seed's latent."),
    class_: Optional[int] = typer.Option(None, "--class", help="Class index for conditional models."),
    out: Path = typer.Option(Path("interpolation.gif"), "--out", "-o", help="Animated .gif, or a .png strip (one row per segment); .csv for points."),
    fps: int = typer.Option(12, "--fps", help="GIF frames per second."),
    ema: Optional[bool] = typer.Option(None, "--ema/--no-ema", help="Use the EMA generator (default: when present)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if available)."),
) -> None:
    """Walk through latent space between the latents of several seeds."""
    from gancli.errors import GancliError

    seed_list = parse_int_list(seeds, "--seeds")
    if len(seed_list) < 2:
        raise GancliError(f"--seeds needs at least 2 seeds to interpolate between, got {len(seed_list)}")
    if frames < 1:
        raise GancliError(f"--frames must be at least 1, got {frames}")
    if fps < 1:
        raise GancliError(f"--fps must be at least 1, got {fps}")
    if truncation is not None and truncation <= 0:
        raise GancliError(f"--truncation must be positive, got {truncation}")
    suffix = out.suffix.lower()
    import torch

    import gancli
    from gancli import checkpoint as ckpt_io
    from gancli.sampling import latents, path_through

    ckpt_io.read(checkpoint)
    pipe = gancli.load(checkpoint, device=device, ema=ema)
    pipe.check_class(class_)
    points = pipe.spec.kind == "points"
    allowed = (".csv", ".npy", ".png") if points else (".gif", ".png")
    if suffix not in allowed:
        raise GancliError(f"--out must end in {' or '.join(allowed)} for this model; got {out.name}")
    out = writable_output(out)
    w_space = getattr(pipe.generator, "truncation_space", "z") == "w"
    keys = torch.cat([latents(1, pipe.z_dim, seed=s, truncation=None if w_space else truncation) for s in seed_list])
    path = path_through(keys, frames, spherical=spherical)
    y = pipe.labels(len(path), class_, None)
    if y is not None and class_ is None:
        y = torch.zeros(len(path), dtype=torch.long)
    x = pipe.generate(path, y, truncation=truncation)
    if points:
        from gancli.cli.sample_cmd import write_points

        write_points(x, out, False)
    else:
        from gancli.data.images import to_uint8
        from gancli.sampling import image_grid, save_gif, save_image, to_pil_images

        images = to_uint8(x)
        if suffix == ".gif":
            save_gif(to_pil_images(images), out, duration_ms=max(1, round(1000 / fps)))
        else:
            save_image(image_grid(images, cols=frames), out)
    typer.echo(f"wrote {len(path)} frames through seeds {seed_list} to {out}", err=True)
