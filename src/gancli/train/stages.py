"""RUN/growth.gif: the fixed-latent grid at the end of every stage an objective reports (growth phases)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

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


def reopen_stages(samples: Path, stage: Optional[str]) -> None:
    """On resume at ``stage``: the last run's closing frame ("<its stage> (step N)") ended no stage if
    the run goes on in the same one, so it is dropped; if that run stopped just as its stage ended
    (the resumed run starts the next), the frame is that stage's last grid and stays as its frame."""
    for path in Path(samples).glob(STAGE_PATTERN):
        number, label = path.stem.split("-", 2)[1:]
        if "_(step_" not in label:
            continue
        ended = label.rsplit("_(step_", 1)[0]
        if stage is not None and ended == _slug(stage):
            path.unlink(missing_ok=True)
        else:
            path.replace(path.with_name(f"stage-{number}-{ended}.png"))
