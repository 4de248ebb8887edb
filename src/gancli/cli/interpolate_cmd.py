"""gancli interpolate CKPT --seeds 1,2,3 ... (latent walks) or --classes 3,7 (class walks); --grid R walks at once"""
from pathlib import Path
from typing import Optional

import typer

from gancli.cli._common import handle_errors, parse_int_list, writable_output

VIDEO_SUFFIXES = (".mp4",)


@handle_errors
def interpolate_command(
    checkpoint: Path = typer.Argument(..., help="A gancli .safetensors checkpoint, an exported model folder, or a hub id owner/name."),
    spherical: Optional[bool] = typer.Option(None, "--slerp/--lerp", help="Spherical or linear interpolation (default: slerp in z, lerp in W)."),
    space: Optional[str] = typer.Option(None, "--space", help="w or z: where to walk (default: w for W-space models such as stylegan, else z)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma-separated seeds; the walk passes through each one's latent (default 0,1). With --grid R they are split into R equal groups, one walk each (default 0..2R-1). With --classes: one seed per walk."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Walk between class embeddings at a fixed z, e.g. 3,7 or Sneaker,Bag (names win over indices; #3 is always index 3; biggan, sngan and sagan generators)."),
    frames: int = typer.Option(16, "--frames", help="Frames per segment between consecutive seeds or classes."),
    loop: bool = typer.Option(False, "--loop", help="Walk back from the last point to the first, so the animation loops."),
    grid: Optional[int] = typer.Option(None, "--grid", help="R independent walks side by side in every frame (a square-ish grid; a .png gets one row per walk)."),
    truncation: Optional[float] = typer.Option(None, "--truncation", "-t", help="Truncation applied to each seed's latent (ψ in W for W-space models)."),
    noise_mode: Optional[str] = typer.Option(None, "--noise-mode", help="W-space models: const (default), random or none."),
    class_: Optional[str] = typer.Option(None, "--class", help="Class (index, name or mixture) for conditional models."),
    out: Path = typer.Option(Path("interpolation.gif"), "--out", "-o", help="Animated .gif, .mp4 video (needs gancli[video]), a .png strip (one row per segment, or per walk with --grid), or .csv/.npy for points."),
    fps: int = typer.Option(12, "--fps", help="Frames per second of a GIF or MP4."),
    ema: Optional[bool] = typer.Option(None, "--ema/--no-ema", help="Use the EMA generator (default: when present)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if available)."),
) -> None:
    """Walk through latent space between the latents of several seeds, or between classes at a fixed z."""
    from gancli.errors import GancliError

    walks_wanted = 1 if grid is None else grid
    if grid is not None and grid < 1:
        raise GancliError(f"--grid must be at least 1 walk, got {grid}")
    class_list = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    if seeds is not None:
        seed_list = parse_int_list(seeds, "--seeds")
    elif class_list is not None:
        seed_list = list(range(walks_wanted))
    else:
        seed_list = list(range(2 * walks_wanted))
    if class_list is not None:
        if len(class_list) < 2:
            raise GancliError(f"--classes needs at least 2 classes to walk between, got {len(class_list)}")
        if class_ is not None:
            raise GancliError("--classes walks between classes; drop --class")
        if grid is None:
            seed_groups = [seed_list[:1]]
        elif len(seed_list) != grid:
            raise GancliError(f"--grid {grid} with --classes walks once per seed: give {grid} seeds, got {len(seed_list)}")
        else:
            seed_groups = [[s] for s in seed_list]
    else:
        seed_groups = _split_seeds(seed_list, grid)
    if frames < 1:
        raise GancliError(f"--frames must be at least 1, got {frames}")
    if fps < 1:
        raise GancliError(f"--fps must be at least 1, got {fps}")
    if space not in (None, "w", "z"):
        raise GancliError(f"--space must be w or z, got {space!r}")
    suffix = out.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        from gancli.sampling import need_video_writer

        need_video_writer()
    import gancli
    from gancli.references import read_checkpoint

    read_checkpoint(checkpoint)
    pipe = gancli.load(checkpoint, device=device, ema=ema)
    pipe.check_class(class_)
    if class_list is not None:
        from gancli.conditioning import class_index

        if not pipe.num_classes:
            raise GancliError("this model is unconditional; drop --classes")
        class_list = [class_index(c, pipe.class_names, pipe.num_classes) for c in class_list]
    points = pipe.spec.kind == "points"
    allowed = (".csv", ".npy", ".png") if points else (".gif", ".mp4", ".png")
    if suffix not in allowed:
        raise GancliError(f"--out must end in {' or '.join(allowed)} for this model; got {out.name}")
    if points and grid is not None:
        raise GancliError("--grid tiles image walks; this model makes points")
    if space == "w" and not pipe.w_space:
        raise GancliError(f"this {pipe.family} model has no W space; use --space z")
    walk_w = pipe.w_space and space != "z" and class_list is None
    if class_list is not None:
        for c in class_list:
            pipe.check_class(c)
    out = writable_output(out)

    options = dict(frames=frames, loop=loop, truncation=truncation, noise_mode=noise_mode, spherical=spherical)
    walks = [_class_walk(pipe, group[0], class_list, **options) if class_list is not None
             else _latent_walk(pipe, group, class_, walk_w=walk_w, **options) for group in seed_groups]
    if class_list is not None:
        what = f"classes {class_list} at seed{'s' if len(seed_groups) > 1 else ''} {', '.join(str(g[0]) for g in seed_groups)}"
    else:
        what = " and ".join(f"seeds {g}" for g in seed_groups) + f" in {'W' if walk_w else 'z'}"
    count = len(walks[0]) - int(loop)
    if points:
        from gancli.cli.sample_cmd import write_points

        write_points(walks[0], out, False)
    else:
        _write_images(walks, out, suffix, frames=frames, loop=loop, fps=fps, as_grid=grid is not None)
    typer.echo(f"wrote {count} frames{f' of {len(walks)} walks' if len(walks) > 1 else ''} through {what} to {out}",
               err=True)


def _split_seeds(seed_list: list[int], grid: Optional[int]) -> list[list[int]]:
    """One walk through all seeds, or with --grid R, R walks through R equal consecutive groups of them."""
    from gancli.errors import GancliError

    if grid is None:
        if len(seed_list) < 2:
            raise GancliError(f"--seeds needs at least 2 seeds to interpolate between, got {len(seed_list)}")
        return [seed_list]
    if len(seed_list) % grid or len(seed_list) // grid < 2:
        raise GancliError(f"--grid {grid} splits --seeds into {grid} equal groups of at least 2 seeds (one walk each); "
                          f"got {len(seed_list)} seeds: give {2 * grid}, {3 * grid}, ... seeds")
    size = len(seed_list) // grid
    return [seed_list[i : i + size] for i in range(0, len(seed_list), size)]


def _latent_walk(pipe, seeds: list[int], class_, *, walk_w: bool, frames: int, loop: bool, truncation, noise_mode,
                 spherical):
    """Frames (float) through the latents of ``seeds``: slerp in z by default, linear in W for W-space models."""
    import torch

    from gancli.sampling import latents, path_through

    keys = torch.cat([latents(1, pipe.z_dim, seed=s, truncation=None if pipe.w_space else truncation) for s in seeds])
    if loop:
        keys = torch.cat([keys, keys[:1]])
    y = pipe.labels(1, class_, None)
    if walk_w:
        w_keys = pipe.mapping(keys, None if y is None else y.expand(len(keys), *y.shape[1:]), truncation=truncation)
        # linear in W, as StyleGAN's perceptual path length walks
        path = path_through(w_keys.flatten(1), frames, spherical=bool(spherical)).view(-1, *w_keys.shape[1:])
        return pipe.synthesis(path, noise_mode=noise_mode or "const", seed=0)
    path = path_through(keys, frames, spherical=True if spherical is None else spherical)
    labels = None if y is None else y.expand(len(path), *y.shape[1:])
    return pipe.generate(path, labels, truncation=truncation, noise_mode=_noise(pipe, noise_mode), seed=0)


def _class_walk(pipe, seed: int, class_list: list[int], *, frames: int, loop: bool, truncation, noise_mode, spherical):
    """Frames (float) between class embeddings at the fixed z of ``seed`` (BigGAN's class interpolation)."""
    import torch

    from gancli.sampling import latents

    z = latents(1, pipe.z_dim, seed=seed, truncation=None if pipe.w_space else truncation)
    stops = class_list + ([class_list[0]] if loop else [])
    t = torch.arange(frames, dtype=torch.float32) / frames
    y = torch.cat([pipe.class_weights(a, b, t) for a, b in zip(stops[:-1], stops[1:])]
                  + [pipe.class_weights(stops[-1], stops[-1], torch.zeros(1))])
    return pipe.generate(z.expand(len(y), -1), y, truncation=truncation, noise_mode=_noise(pipe, noise_mode), seed=0)


def _write_images(walks, out: Path, suffix: str, *, frames: int, loop: bool, fps: int, as_grid: bool) -> None:
    """GIF or MP4 frames (each a grid of the walks with --grid), or a PNG strip."""
    import torch

    from gancli.data.images import to_uint8
    from gancli.sampling import grid_shape, image_grid, save_gif, save_image, save_video, to_pil_images

    walks = [to_uint8(x)[:-1] if loop else to_uint8(x) for x in walks]  # a loop's last frame repeats the first
    if suffix == ".png":
        if as_grid:  # one row per walk, its frames left to right
            save_image(image_grid(torch.cat(walks), cols=len(walks[0])), out)
        else:
            save_image(image_grid(walks[0], cols=frames), out)
        return
    cols = grid_shape(len(walks))[1]
    if as_grid:
        pictures = [image_grid(torch.stack([walk[i] for walk in walks]), cols=cols) for i in range(len(walks[0]))]
    else:
        pictures = to_pil_images(walks[0])
    if suffix == ".gif":
        save_gif(pictures, out, duration_ms=max(1, round(1000 / fps)))
    else:
        save_video(pictures, out, fps=fps)


def _noise(pipe, noise_mode):
    if not pipe.w_space:
        return noise_mode  # the pipeline refuses it with a clear line when given
    return noise_mode or "const"  # frames of one walk share their noise, so only the latent moves
