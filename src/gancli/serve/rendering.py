"""The page's pictures, made with the public pipeline (gancli.pipeline.Pipeline) and gancli.sampling.

Every image here is a function of its seed and the settings alone (never of its place in a batch),
so the file a user downloads is the image they saw, and ``gancli sample CKPT -n 1 --seed S ...``
with the settings written into it makes it again. Called on a worker thread (gancli.serve.jobs).
"""
from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from gancli.data.images import to_uint8
from gancli.sampling import latents, path_through, points_plot, to_pil_images
from gancli.serve.params import BadRequest


@dataclass(frozen=True)
class Look:
    """How images are drawn: truncation (ψ in W, the |z_i| bound in z), class (name, #N or a mixture), noise."""

    truncation: Optional[float] = None
    class_: Optional[str] = None
    noise_mode: Optional[str] = None  # W-space models: const (the default), random or none


def truncation_bounds(pipe) -> tuple[float, float]:
    return (0.0, 2.0) if pipe.w_space else (0.05, 10.0)


def check_look(pipe, look: Look) -> None:
    """A clear 400 for settings this model does not take (before any work is queued)."""
    if look.noise_mode is not None and not pipe.w_space:
        raise BadRequest(f"noise modes are for W-space models (stylegan, stylegan2); this {pipe.family} model has none")
    pipe.choose_class(look.class_)  # class names, #N and mixtures, as `gancli sample --class`


def _noise(pipe, look: Look) -> Optional[str]:
    return (look.noise_mode or "const") if pipe.w_space else None


def _z(pipe, seeds: Sequence[int], truncation: Optional[float]) -> Tensor:
    """One latent per seed, each drawn as `gancli sample -n 1 --seed S` draws it."""
    return torch.cat([latents(1, pipe.z_dim, seed=s, truncation=None if pipe.w_space else truncation) for s in seeds])


def _labels(pipe, seeds: Sequence[int], look: Look) -> Optional[Tensor]:
    """The chosen class for every seed; without a choice seed S gets class S mod K (its own, on every page)."""
    if pipe.num_classes == 0:
        return None
    choice = pipe.choose_class(look.class_)
    if choice is None:
        return torch.tensor([s % pipe.num_classes for s in seeds], dtype=torch.long)
    return pipe.labels(len(seeds), choice)


def class_label(pipe, seed: int, look: Look) -> Optional[str]:
    """The class an image of ``seed`` shows, by name (None for unconditional models)."""
    if pipe.num_classes == 0:
        return None
    choice = pipe.choose_class(look.class_)
    return choice.describe(pipe.class_names) if choice is not None else pipe.class_names[seed % pipe.num_classes]


def seed_images(pipe, seeds: Sequence[int], look: Look) -> Tensor:
    """uint8 (N, C, H, W), image i from seeds[i]."""
    z, y = _z(pipe, seeds, look.truncation), _labels(pipe, seeds, look)
    noise = _noise(pipe, look)
    if noise == "random":  # the noise inputs are drawn from each image's own seed
        parts = [pipe.generate(z[i : i + 1], None if y is None else y[i : i + 1], truncation=look.truncation,
                               noise_mode=noise, seed=s) for i, s in enumerate(seeds)]
        return to_uint8(torch.cat(parts))
    return to_uint8(pipe.generate(z, y, truncation=look.truncation, noise_mode=noise, seed=seeds[0]))


def walk(pipe, a: int, b: int, frames: int, look: Look) -> Tensor:
    """``frames`` images from seed a's image to seed b's: slerp in z, or lerp in W for W-space models
    (as `gancli interpolate`); without a chosen class a class-mixing model walks between their classes too."""
    keys = _z(pipe, [a, b], look.truncation)
    y = _labels(pipe, [a, b], look)
    if pipe.w_space:
        w = pipe.mapping(keys, y, truncation=look.truncation)
        path = path_through(w.flatten(1), frames - 1, spherical=False).view(-1, *w.shape[1:])
        return to_uint8(pipe.synthesis(path, noise_mode=_noise(pipe, look), seed=0))
    path = path_through(keys, frames - 1, spherical=True)
    labels = None
    if y is not None:
        if look.class_ is None and pipe.accepts_class_mixtures and int(y[0]) != int(y[1]):
            t = torch.cat([torch.arange(frames - 1, dtype=torch.float32) / (frames - 1), torch.ones(1)])
            labels = pipe.class_weights(int(y[0]), int(y[1]), t)
        else:
            labels = y[:1].expand(len(path), *y.shape[1:])
    return to_uint8(pipe.generate(path, labels, truncation=look.truncation, seed=0))


def style_mix(pipe, source: int, destination: int, group: str, look: Look) -> dict[str, Tensor]:
    """Seed ``destination``'s image with the ``group`` styles (coarse, middle or fine layers of w) of ``source``'s."""
    layers = pipe.style_groups().get(group)
    if not layers:
        raise BadRequest(f"this model has no {group} layers (its W layers drive resolutions up to "
                         f"{pipe.spec.resolution}²); choose another style range")
    class_ = look.class_
    if class_ is None and pipe.num_classes:
        class_ = f"#{destination % pipe.num_classes}"  # both sources at the destination's class
    out = pipe.style_mix([destination], [source], layers, truncation=look.truncation,
                         noise_mode=_noise(pipe, look), class_=class_)
    return {"source": to_uint8(out["cols"]), "destination": to_uint8(out["rows"]), "mix": to_uint8(out["mixes"])}


def class_mixture(pipe, seed: int, a: int, b: int, steps: int, look: Look) -> Tensor:
    """One z, its class weights going from class a to class b (BigGAN's class interpolation)."""
    weights = pipe.class_weights(a, b, torch.linspace(0, 1, steps))
    z = _z(pipe, [seed], look.truncation).expand(steps, -1)
    return to_uint8(pipe.generate(z, weights, truncation=look.truncation, noise_mode=_noise(pipe, look), seed=seed))


def truncation_sweep(pipe, seed: int, values: Sequence[float], look: Look) -> Tensor:
    """Seed ``seed``'s image at each truncation value (the other settings fixed)."""
    return torch.cat([seed_images(pipe, [seed], Look(v, look.class_, look.noise_mode)) for v in values])


def points_picture(pipe, n: int, seed: int):
    """A scatter plot of n generated points (2-D models)."""
    return points_plot(pipe.sample(n, seed=seed))


# ---------------------------------------------------------------- encoding


def png_bytes(image, text: Optional[dict[str, str]] = None) -> bytes:
    """A PIL image as PNG, with ``text`` as its tEXt chunks (what made it)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def data_urls(images: Tensor) -> list[str]:
    return ["data:image/png;base64," + base64.b64encode(png_bytes(im)).decode("ascii") for im in to_pil_images(images)]


def settings_text(model_name: str, pipe, look: Look, **extra: Any) -> dict[str, str]:
    """PNG metadata of a downloaded image: the model, its step and every setting that made the image."""
    text = {"Software": "gancli serve", "gancli.model": model_name, "gancli.family": pipe.family,
            "gancli.step": str(pipe.checkpoint.step)}
    if look.truncation is not None:
        text["gancli.truncation"] = f"{look.truncation:g}"
    if pipe.w_space:
        text["gancli.noise_mode"] = _noise(pipe, look)
    for key, value in extra.items():
        if value is not None:
            text[f"gancli.{key}"] = str(value)
    return text


def sample_command(model_name: str, pipe, seed: int, look: Look) -> str:
    """The `gancli sample` line that makes the same image from the served checkpoint."""
    parts = [f"gancli sample {model_name} -n 1 --seed {seed}"]
    if look.truncation is not None:
        parts.append(f"--truncation {look.truncation:g}")
    if pipe.num_classes:
        parts.append(f"--class '{look.class_}'" if look.class_ is not None else f"--class '#{seed % pipe.num_classes}'")
    if pipe.w_space:
        parts.append(f"--noise-mode {_noise(pipe, look)}")
    return " ".join(parts)


def file_name(*parts: Optional[str]) -> str:
    """A safe download name from its parts (model, seed, settings), joined by '-'."""
    cleaned = [re.sub(r"[^A-Za-z0-9.#_+-]+", "_", p).strip("_") for p in parts if p]
    return "-".join(p.replace("#", "n") for p in cleaned if p)[:180] + ".png"
