"""gancli interpolate: GIF, MP4 and PNG walks with the requested frame counts, --grid R walks, --loop."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _export_support import tiny_checkpoint, wspace_toy_installed  # noqa: E402


def _video_frames(path: Path) -> int:
    pytest.importorskip("imageio_ffmpeg")
    from gancli.sampling import count_video_frames

    return count_video_frames(path)


@pytest.mark.parametrize("args, frames", [
    (["--seeds", "1,2,3", "--frames", "4"], 2 * 4 + 1),  # two segments and the last seed
    (["--seeds", "1,2,3", "--frames", "4", "--loop"], 3 * 4),  # back to the start; the repeated first frame dropped
    (["--grid", "4", "--frames", "5"], 5 + 1),  # 4 walks of 2 seeds (0,1 | 2,3 | 4,5 | 6,7)
    (["--grid", "2", "--seeds", "1,2,3,4,5,6", "--frames", "3", "--loop"], 3 * 3),
])
def test_gif_and_mp4_have_the_requested_frame_count(tiny_run, cli, tmp_path, args, frames):
    pytest.importorskip("imageio_ffmpeg")
    gif, mp4 = tmp_path / "walk.gif", tmp_path / "walk.mp4"
    for out in (gif, mp4):
        result = cli("interpolate", tiny_run, *args, "--out", out)
        assert result.exit_code == 0, result.output
        assert f"wrote {frames} frames" in result.stderr
    assert Image.open(gif).n_frames == frames
    assert _video_frames(mp4) == frames


def test_grid_frames_tile_the_walks_and_the_png_has_one_row_per_walk(tiny_run, cli, tmp_path):
    gif = tmp_path / "grid.gif"
    assert cli("interpolate", tiny_run, "--grid", "4", "--frames", "2", "--out", gif).exit_code == 0
    assert Image.open(gif).size == (2 * 18 + 2, 2 * 18 + 2)  # 4 walks of 16 px in a 2×2 grid
    first = cli("interpolate", tiny_run, "--seeds", "0,1", "--frames", "2", "--out", tmp_path / "one.gif")
    assert first.exit_code == 0
    assert Image.open(tmp_path / "one.gif").size == (16, 16)  # a single walk: the image itself, as before
    strip = tmp_path / "grid.png"
    assert cli("interpolate", tiny_run, "--grid", "3", "--frames", "4", "--out", strip).exit_code == 0
    assert Image.open(strip).size == (5 * 18 + 2, 3 * 18 + 2)  # 3 rows of 4 + 1 frames


def test_grid_walks_are_the_single_walks_of_their_seed_groups(tiny_run, cli, tmp_path):
    import numpy as np

    grid, alone = tmp_path / "grid.png", tmp_path / "alone.png"
    assert cli("interpolate", tiny_run, "--grid", "2", "--seeds", "5,6,7,8", "--frames", "3", "--out", grid).exit_code == 0
    assert cli("interpolate", tiny_run, "--seeds", "7,8", "--frames", "3", "--out", alone).exit_code == 0
    rows = np.asarray(Image.open(grid))
    second_row = rows[18:38, :]  # row 2 of the grid: the walk 7 → 8
    assert np.array_equal(second_row[2:18, 2:3 * 18], np.asarray(Image.open(alone))[2:18, 2:3 * 18])  # its first 3 frames


@pytest.mark.parametrize("args, message", [
    (["--grid", "2", "--seeds", "1,2,3"], "equal groups of at least 2 seeds"),
    (["--grid", "0"], "--grid must be at least 1"),
    (["--seeds", "3"], "at least 2 seeds"),
])
def test_bad_grids_are_one_clear_line(tiny_run, cli, tmp_path, args, message):
    result = cli("interpolate", tiny_run, *args, "--out", tmp_path / "x.gif")
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "x.gif").exists()


def test_mp4_without_imageio_ffmpeg_is_one_clear_line(tiny_run, cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    result = cli("interpolate", tiny_run, "--out", tmp_path / "walk.mp4")
    assert result.exit_code == 2 and "pip install 'gancli[video]'" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "walk.mp4").exists()


def test_walks_in_w_and_class_walks_take_grids_and_model_folders(tmp_path, cli):
    with wspace_toy_installed(tmp_path / "toy"):
        ckpt = tiny_checkpoint("wspace-toy", tmp_path / "run", num_classes=3)
        folder = tmp_path / "toy-hf"
        assert cli("export", ckpt, "--format", "hf", "--out", folder).exit_code == 0
        a, b = tmp_path / "a.gif", tmp_path / "b.gif"
        assert cli("interpolate", ckpt, "--grid", "2", "--frames", "3", "--loop", "--out", a).exit_code == 0
        assert cli("interpolate", folder, "--grid", "2", "--frames", "3", "--loop", "--out", b).exit_code == 0
        assert a.read_bytes() == b.read_bytes() and Image.open(a).n_frames == 2 * 3
        classes = tmp_path / "classes.png"
        result = cli("interpolate", folder, "--classes", "0,2", "--grid", "3", "--seeds", "4,5,6", "--frames", "4",
                     "--out", classes)
        assert result.exit_code == 0, result.output
        assert Image.open(classes).size == (5 * 10 + 2, 3 * 10 + 2)  # 8-px toy images: 3 walks of 4 + 1 frames
        wrong = cli("interpolate", folder, "--classes", "0,2", "--grid", "3", "--seeds", "4", "--out", tmp_path / "x.png")
        assert wrong.exit_code == 2 and "give 3 seeds" in wrong.stderr
        mix = tmp_path / "mix.png"
        assert cli("style-mix", folder, "--rows", "1,2", "--cols", "3", "--styles", "0-1", "--out", mix).exit_code == 0
