"""RUN/growth.gif: the fixed-latent grid at the end of every stage an objective reports (growth phases)."""
from __future__ import annotations

import re
from pathlib import Path

STAGE_PATTERN = "stage-*.png"


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=()-]+", "_", label.replace("×", "x")).strip("_")[:80]


def stage_path(samples: Path, label: str) -> Path:
    """samples/stage-NN-<label>.png, numbered after the stages already saved (also by an earlier run)."""
    count = len(list(Path(samples).glob(STAGE_PATTERN)))
    return Path(samples) / f"stage-{count:02d}-{_slug(label)}.png"


def write_growth_gif(samples: Path, out: Path, *, duration_ms: int = 900) -> None:
    """One captioned frame per saved stage grid, in order."""
    from PIL import Image, ImageDraw, ImageFont

    from gancli.sampling import save_gif

    paths = sorted(Path(samples).glob(STAGE_PATTERN))
    if not paths:
        return
    font = ImageFont.load_default()
    frames = []
    for path in paths:
        grid = Image.open(path).convert("RGB")
        caption = path.stem.split("-", 2)[2].replace("_", " ")
        frame = Image.new("RGB", (grid.width, grid.height + 16), (255, 255, 255))
        frame.paste(grid, (0, 16))
        ImageDraw.Draw(frame).text((2, 2), caption, fill=(0, 0, 0), font=font)
        frames.append(frame)
    save_gif(frames, out, duration_ms=duration_ms)


def drop_final_frame(samples: Path) -> None:
    """On resume: the last run's closing frame ("... (step N)") is not the end of a stage; drop it."""
    for path in Path(samples).glob(STAGE_PATTERN):
        if "(step_" in path.name:
            path.unlink(missing_ok=True)
