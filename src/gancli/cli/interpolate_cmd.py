"""gancli interpolate CKPT --seeds 1,2,3 ... (latent walks) or --classes 3,7 (class walks)"""
from pathlib import Path
from typing import Optional

import typer

from gancli.cli._common import handle_errors, parse_int_list, writable_output


@handle_errors
def interpolate_command(
    checkpoint: Path = typer.Argument(..., help="A gancli .safetensors checkpoint."),
    spherical: Optional[bool] = typer.Option(None, "--slerp/--lerp", help="Spherical or linear interpolation (default: slerp in z, lerp in W)."),
    space: Optional[str] = typer.Option(None, "--space", help="w or z: where to walk (default: w for W-space models such as stylegan, else z)."),
    seeds: str = typer.Option("0,1", "--seeds", help="Comma-separated seeds; the walk passes through each one's latent (one seed with --classes)."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Walk between class embeddings at a fixed z, e.g. 3,7 (generators with a shared class embedding)."),
    frames: int = typer.Option(16, "--frames", help="Frames per segment between consecutive seeds or classes."),
    loop: bool = typer.Option(False, "--loop", help="Walk back from the last point to the first, so the animation loops."),
    truncation: Optional[float] = typer.Option(None, "--truncation", "-t", help="Truncation applied to each seed's latent (ψ in W for W-space models)."),
    noise_mode: Optional[str] = typer.Option(None, "--noise-mode", help="W-space models: const (default), random or none."),
    class_: Optional[str] = typer.Option(None, "--class", help="Class (index, name or mixture) for conditional models."),
    out: Path = typer.Option(Path("interpolation.gif"), "--out", "-o", help="Animated .gif, a .png strip (one row per segment), or .csv/.npy for points."),
    fps: int = typer.Option(12, "--fps", help="GIF frames per second."),
    ema: Optional[bool] = typer.Option(None, "--ema/--no-ema", help="Use the EMA generator (default: when present)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if available)."),
) -> None:
    """Walk through latent space between the latents of several seeds, or between classes at a fixed z."""
    from gancli.errors import GancliError

    seed_list = parse_int_list(seeds, "--seeds")
    class_list = parse_int_list(classes, "--classes") if classes else None
    if class_list is not None:
        if len(class_list) < 2:
            raise GancliError(f"--classes needs at least 2 classes to walk between, got {len(class_list)}")
        if class_ is not None:
            raise GancliError("--classes walks between classes; drop --class")
        seed_list = seed_list[:1]
    elif len(seed_list) < 2:
        raise GancliError(f"--seeds needs at least 2 seeds to interpolate between, got {len(seed_list)}")
    if frames < 1:
        raise GancliError(f"--frames must be at least 1, got {frames}")
    if fps < 1:
        raise GancliError(f"--fps must be at least 1, got {fps}")
    if space not in (None, "w", "z"):
        raise GancliError(f"--space must be w or z, got {space!r}")
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
    if space == "w" and not pipe.w_space:
        raise GancliError(f"this {pipe.family} model has no W space; use --space z")
    walk_w = pipe.w_space and space != "z" and class_list is None
    out = writable_output(out)

    if class_list is not None:
        for c in class_list:
            pipe.check_class(c)
        z = latents(1, pipe.z_dim, seed=seed_list[0], truncation=None if pipe.w_space else truncation)
        stops = class_list + ([class_list[0]] if loop else [])
        t = torch.arange(frames, dtype=torch.float32) / frames
        y = torch.cat([pipe.class_weights(a, b, t) for a, b in zip(stops[:-1], stops[1:])]
                      + [pipe.class_weights(stops[-1], stops[-1], torch.zeros(1))])
        x = pipe.generate(z.expand(len(y), -1), y, truncation=truncation, noise_mode=_noise(pipe, noise_mode), seed=0)
        what = f"classes {class_list} at seed {seed_list[0]}"
    else:
        keys = torch.cat([latents(1, pipe.z_dim, seed=s, truncation=None if pipe.w_space else truncation)
                          for s in seed_list])
        if loop:
            keys = torch.cat([keys, keys[:1]])
        y = pipe.labels(1, class_, None)
        if walk_w:
            w_keys = pipe.mapping(keys, None if y is None else y.expand(len(keys), *y.shape[1:]), truncation=truncation)
            # linear in W, as StyleGAN's perceptual path length walks
            path = path_through(w_keys.flatten(1), frames, spherical=bool(spherical)).view(-1, *w_keys.shape[1:])
            x = pipe.synthesis(path, noise_mode=noise_mode or "const", seed=0)
        else:
            path = path_through(keys, frames, spherical=True if spherical is None else spherical)
            labels = None if y is None else y.expand(len(path), *y.shape[1:])
            x = pipe.generate(path, labels, truncation=truncation, noise_mode=_noise(pipe, noise_mode), seed=0)
        what = f"seeds {seed_list} in {'W' if walk_w else 'z'}"
    if points:
        from gancli.cli.sample_cmd import write_points

        write_points(x, out, False)
    else:
        from gancli.data.images import to_uint8
        from gancli.sampling import image_grid, save_gif, save_image, to_pil_images

        images = to_uint8(x)
        if loop:
            images = images[:-1]  # the last frame repeats the first
        if suffix == ".gif":
            save_gif(to_pil_images(images), out, duration_ms=max(1, round(1000 / fps)))
        else:
            save_image(image_grid(images, cols=frames), out)
    typer.echo(f"wrote {len(x) - int(loop)} frames through {what} to {out}", err=True)


def _noise(pipe, noise_mode):
    if not pipe.w_space:
        return noise_mode  # the pipeline refuses it with a clear line when given
    return noise_mode or "const"  # frames of one walk share their noise, so only the latent moves
