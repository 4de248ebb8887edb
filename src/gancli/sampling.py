"""Latents, truncation, interpolation paths and image grids."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor


def latents(n: int, z_dim: int, *, seed: Optional[int] = None, truncation: Optional[float] = None) -> Tensor:
    """n standard-normal latents on the CPU (the same numbers on every device).

    With ``truncation`` T, every coordinate with |z_i| > T is redrawn until it falls
    inside (BigGAN's truncation trick), which samples the truncated normal exactly.
    """
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(n, z_dim, generator=g)
    if truncation is not None:
        if truncation <= 0:
            raise ValueError("truncation must be positive")
        outside = z.abs() > truncation
        while outside.any():
            z[outside] = torch.randn(int(outside.sum()), generator=g)
            outside = z.abs() > truncation
    return z


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    t = t.view(-1, *([1] * a.dim()))
    return a.unsqueeze(0) * (1 - t) + b.unsqueeze(0) * t


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake; White 2016 for GAN latents); falls back to lerp for parallel vectors."""
    a_flat, b_flat = a.flatten().double(), b.flatten().double()
    cos = torch.dot(a_flat, b_flat) / (a_flat.norm() * b_flat.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:
        return lerp(a, b, t)
    t64 = t.double().view(-1, *([1] * a.dim()))
    so = torch.sin(omega)
    out = (torch.sin((1 - t64) * omega) / so) * a.double().unsqueeze(0) + (torch.sin(t64 * omega) / so) * b.double().unsqueeze(0)
    return out.to(a.dtype)


def path_through(points: Tensor, frames: int, *, spherical: bool = True) -> Tensor:
    """Latents through consecutive ``points`` (K, D), ``frames`` per segment, last point included."""
    t = torch.arange(frames, dtype=torch.float32) / frames
    step = slerp if spherical else lerp
    segments = [step(points[i], points[i + 1], t) for i in range(len(points) - 1)]
    return torch.cat(segments + [points[-1:]])


def grid_shape(n: int) -> tuple[int, int]:
    """Rows and columns of a square-ish grid holding n images."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def image_grid(images: Tensor, *, cols: Optional[int] = None, padding: int = 2):
    """uint8 (N, C, H, W) → one PIL image, row-major, white padding."""
    from PIL import Image

    n, c, h, w = images.shape
    rows, default_cols = grid_shape(n)
    cols = cols or default_cols
    rows = math.ceil(n / cols)
    canvas = torch.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), 255, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + k * (w + padding)
        canvas[:, top : top + h, left : left + w] = images[i]
    return _to_pil(canvas)


def _to_pil(chw: Tensor):
    from PIL import Image

    array = chw.permute(1, 2, 0).contiguous().numpy()
    if array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], mode="L")
    return Image.fromarray(array, mode="RGB")


def to_pil_images(images: Tensor) -> list:
    return [_to_pil(img) for img in images]


def save_gif(frames: Sequence, path: Path, *, duration_ms: int = 80) -> None:
    frames = [f.convert("P", palette=1, colors=256) if f.mode == "RGB" else f for f in frames]  # 1 = ADAPTIVE
    import io

    from gancli.checkpoint import atomic_write_bytes

    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=list(frames[1:]), duration=duration_ms, loop=0)
    atomic_write_bytes(Path(path), buffer.getvalue())


def save_image(image, path: Path) -> None:
    import io

    from gancli.checkpoint import atomic_write_bytes

    buffer = io.BytesIO()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF", ".webp": "WEBP"}.get(Path(path).suffix.lower(), "PNG")
    image.save(buffer, format=fmt)
    atomic_write_bytes(Path(path), buffer.getvalue())


def points_plot(points: Tensor, *, size: int = 256, extent: Optional[float] = None, reference: Optional[Tensor] = None):
    """A scatter plot of 2-D points as a PIL image (no plotting library needed)."""
    from PIL import Image, ImageDraw

    pts = points.detach().float().cpu()[:, :2]
    ref = reference.detach().float().cpu()[:, :2] if reference is not None else None
    if extent is None:
        both = pts if ref is None else torch.cat([pts, ref])
        extent = float(both.abs().quantile(0.995)) * 1.15 + 1e-6
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)

    def to_px(p: Tensor) -> Tensor:
        return ((p / extent + 1) * 0.5 * (size - 1)).round()

    for cloud, colour in ((ref, (150, 150, 150)), (pts, (30, 90, 200))):
        if cloud is None:
            continue
        px = to_px(cloud)
        for x, y in px.tolist():
            draw.point((x, size - 1 - y), fill=colour)
    return image


def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def _text_width(text: str) -> int:
    from PIL import Image, ImageDraw

    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=_font())
    return box[2] - box[0]


def labelled_rows(images: Tensor, labels: Sequence[str], *, cols: int, padding: int = 2):
    """uint8 (R·cols, C, H, W), row-major → a grid with each row's label written at its left (a PIL image)."""
    from PIL import Image, ImageDraw

    grid = image_grid(images, cols=cols, padding=padding).convert("RGB")
    rows = math.ceil(len(images) / cols)
    h = images.shape[-2]
    margin = max(_text_width(label) for label in labels) + 8
    canvas = Image.new("RGB", (grid.width + margin, grid.height), (255, 255, 255))
    canvas.paste(grid, (margin, 0))
    draw = ImageDraw.Draw(canvas)
    for r, label in enumerate(labels[:rows]):
        top = padding + r * (h + padding) + h // 2 - 6
        draw.text((4, top), label, fill=(0, 0, 0), font=_font())
    return canvas


def captioned_panels(panels: Sequence, captions: Sequence[str], *, gap: int = 12):
    """PIL images side by side, each with its caption above it."""
    from PIL import Image, ImageDraw

    head = 16
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    height = max(p.height for p in panels) + head
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    left = 0
    for panel, caption in zip(panels, captions):
        canvas.paste(panel.convert("RGB"), (left, head))
        draw.text((left + 2, 2), caption, fill=(0, 0, 0), font=_font())
        left += panel.width + gap
    return canvas


def style_mix_picture(rows: Tensor, cols: Tensor, mixes: Tensor, *, padding: int = 2):
    """The paper's style-mixing figure: column sources along the top, row sources down the left,
    and in cell (r, c) row r's image with column c's styles for the mixed layers (uint8 inputs)."""
    n_rows, n_cols = len(rows), len(cols)
    c, h, w = rows.shape[1:]
    blank = torch.full((1, c, h, w), 255, dtype=torch.uint8)
    cells = [blank, cols]
    for r in range(n_rows):
        cells += [rows[r : r + 1], mixes[r * n_cols : (r + 1) * n_cols]]
    return image_grid(torch.cat(cells), cols=n_cols + 1, padding=padding)


# ---------------------------------------------------------------- video


VIDEO_HINT = "MP4 output needs imageio with its ffmpeg plugin: pip install 'gancli[video]' (or write a .gif)"
VIDEO_MIN_SIDE = 128  # smaller frames are enlarged (nearest neighbour): players blur tiny videos
VIDEO_BLOCK = 16  # H.264 encodes 16×16 macroblocks; frames are padded to a multiple


def need_video_writer() -> None:
    """Raise one clear GancliError line when imageio-ffmpeg (the optional extra gancli[video]) is missing."""
    from gancli.errors import GancliError

    try:
        import imageio_ffmpeg
    except ImportError:
        raise GancliError(VIDEO_HINT) from None
    try:
        imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise GancliError(f"{VIDEO_HINT}; imageio-ffmpeg found no ffmpeg: {exc}") from None


def video_frames(frames: Sequence) -> list:
    """PIL frames as RGB uint8 arrays of one size: enlarged by a whole factor to at least
    VIDEO_MIN_SIDE, then padded with white to multiples of VIDEO_BLOCK."""
    import numpy as np
    from PIL import Image

    width, height = frames[0].size
    zoom = max(1, math.ceil(VIDEO_MIN_SIDE / max(1, min(width, height))))
    size = (width * zoom, height * zoom)
    padded = (math.ceil(size[0] / VIDEO_BLOCK) * VIDEO_BLOCK, math.ceil(size[1] / VIDEO_BLOCK) * VIDEO_BLOCK)
    out = []
    for frame in frames:
        canvas = Image.new("RGB", padded, (255, 255, 255))
        canvas.paste(frame.convert("RGB").resize(size, Image.NEAREST), (0, 0))
        out.append(np.asarray(canvas))
    return out


def save_video(frames: Sequence, path: Path, *, fps: int = 12) -> None:
    """Write PIL frames as an H.264 MP4 (yuv420p, plays everywhere) through imageio-ffmpeg, atomically."""
    import os
    import tempfile

    need_video_writer()
    import imageio_ffmpeg

    from gancli.checkpoint import _fsync_dir

    path = Path(path)
    arrays = video_frames(frames)
    height, width = arrays[0].shape[:2]
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.mp4", dir=path.parent)
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(name, (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                             quality=8, macro_block_size=VIDEO_BLOCK, ffmpeg_log_level="error")
        writer.send(None)  # start ffmpeg
        for array in arrays:
            writer.send(array)
        writer.close()
        os.chmod(name, 0o644)
        os.replace(name, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(name):
            os.unlink(name)


def count_video_frames(path: Path) -> int:
    """The number of frames of a video file (decodes it with imageio-ffmpeg)."""
    need_video_writer()
    import imageio_ffmpeg

    return int(imageio_ffmpeg.count_frames_and_secs(str(path))[0])
