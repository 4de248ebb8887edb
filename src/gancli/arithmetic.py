"""Latent vector arithmetic on averaged latents (Radford et al. 2016, "Unsupervised Representation
Learning with Deep Convolutional GANs", §6.3 and figure 7).

Each term of an expression such as ``A - B + C`` stands for the mean latent of a few samples
(the paper averages three: single samples were unstable); the arithmetic is done on those means
and the result is generated. As in the paper's figure, a few variants of the result are drawn
with uniform noise added to it (±0.25 in z, whose coordinates have unit spread). W-space
generators (style-based families) average and add their mapped w instead of z, where the
paper's follow-ups do it; their noise is scaled by each coordinate's spread of w.

    result = latent_arithmetic(pipe, "A - B + C", {"A": [12, 40, 77], "B": [3, 5, 9], "C": [1, 2, 4]})
    arithmetic_picture(result).save("arith.png")
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from gancli.errors import GancliError

JITTER = 0.25  # the paper's figure 7: "uniform noise sampled with scale +-0.25 was added to Y"
SPREAD_SAMPLES = 512  # latents mapped to measure the per-coordinate spread of w
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<op>[-+*\u2212]))")


@dataclass
class Term:
    name: str
    coefficient: float
    seeds: list[int]
    latent: Tensor  # the mean latent: (z_dim,) or, in W, (num_ws, w_dim)
    images: Tensor  # each seed's image, float (k, C, H, W) in [-1, 1]
    mean_image: Tensor  # the image of the mean latent, (C, H, W)


@dataclass
class ArithmeticResult:
    expression: str  # as written back, e.g. "A − B + C"
    space: str  # "z" or "w"
    terms: list[Term]  # in the expression's order
    latent: Tensor
    image: Tensor  # (C, H, W)
    variants: Tensor  # (V, C, H, W): the result with uniform noise added
    jitter: float


def parse_expression(text: str) -> list[tuple[float, str]]:
    """``"A - B + 0.5*C"`` → [(1.0, "A"), (-1.0, "B"), (0.5, "C")]; a bad expression is one GancliError line."""
    source = text
    if not text.strip():
        raise GancliError('--expr is empty; write terms with + and -, e.g. --expr "A - B + C"')
    terms: list[tuple[float, str]] = []
    sign, signed, coefficient, star, expect_term = 1.0, False, None, False, True
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if match is None:
            at = len(text) - len(text[position:].lstrip())
            raise GancliError(f"--expr {source!r}: unexpected {text[at]!r} at position {at + 1}; terms are names "
                              f"(A, smiling_woman) joined by + and -, optionally scaled (0.5*A)")
        kind, token, where = match.lastgroup, match.group(match.lastgroup), match.start(match.lastgroup) + 1
        position = match.end()
        if kind == "op" and token != "*":
            if not expect_term:
                sign, signed, expect_term = (1.0 if token == "+" else -1.0), True, True
            elif not terms and not signed and coefficient is None:
                sign, signed = (1.0 if token == "+" else -1.0), True  # a leading sign: "-A + B"
            else:
                raise GancliError(f"--expr {source!r}: {token!r} at position {where} follows another sign or a number; "
                                  f"write one sign between two terms")
        elif kind == "op":
            if coefficient is None or star:
                raise GancliError(f"--expr {source!r}: '*' at position {where} must stand between a number and a name")
            star = True
        elif kind == "number":
            if not expect_term or coefficient is not None:
                raise GancliError(f"--expr {source!r}: expected + or - before {token!r} at position {where}")
            coefficient = float(token)
        else:
            if not expect_term:
                raise GancliError(f"--expr {source!r}: expected + or - before {token!r} at position {where}")
            terms.append((sign * (1.0 if coefficient is None else coefficient), token))
            sign, signed, coefficient, star, expect_term = 1.0, False, None, False, False
    if expect_term:
        raise GancliError(f"--expr {source!r} ends without a term after its last sign or number")
    return terms


def format_expression(terms: Sequence[tuple[float, str]]) -> str:
    parts = []
    for i, (coefficient, name) in enumerate(terms):
        size = abs(coefficient)
        scaled = name if size == 1 else f"{size:g}·{name}"
        if i == 0:
            parts.append(("−" if coefficient < 0 else "") + scaled)
        else:
            parts.append(("− " if coefficient < 0 else "+ ") + scaled)
    return " ".join(parts)


def parse_definitions(definitions: Sequence[str]) -> dict[str, list[int]]:
    """``["A=12,40,77", "B=3"]`` → {"A": [12, 40, 77], "B": [3]}."""
    out: dict[str, list[int]] = {}
    for text in definitions:
        name, equals, seeds = text.partition("=")
        name = name.strip()
        if not equals or not _NAME.match(name):
            raise GancliError(f"--define {text!r} must be NAME=SEEDS, e.g. --define A=12,40,77")
        if name in out:
            raise GancliError(f"--define gives {name} twice; give each name once")
        try:
            values = [int(part) for part in seeds.replace(" ", "").split(",") if part]
        except ValueError:
            raise GancliError(f"--define {text!r}: the seeds must be comma-separated integers, e.g. {name}=12,40,77") from None
        if not values:
            raise GancliError(f"--define {text!r} has no seeds; give one or more, e.g. {name}=12,40,77")
        if any(v < 0 for v in values):
            raise GancliError(f"--define {text!r}: seeds are non-negative integers")
        out[name] = values
    return out


@torch.no_grad()
def latent_arithmetic(pipe, expression: str | Sequence[tuple[float, str]], definitions: dict[str, Sequence[int]], *,
                      class_: Any = None, truncation: Optional[float] = None, noise_mode: Optional[str] = None,
                      variants: int = 8, jitter: float = JITTER, seed: int = 0) -> ArithmeticResult:
    """Evaluate ``expression`` on the mean latents of each name's seeds and generate the result.

    ``class_``: the class of every sample of a conditional model (class 0 when None). ``truncation``:
    z models draw each seed's z truncated at T; W-space models truncate each w by ψ before averaging.
    ``noise_mode``: W-space models' noise inputs ("const" by default, so only the latent differs).
    """
    from gancli.sampling import latents

    terms = parse_expression(expression) if isinstance(expression, str) else list(expression)
    missing = sorted({name for _, name in terms} - set(definitions))
    if missing:
        known = ", ".join(sorted(definitions)) or "none"
        raise GancliError(f"--expr uses {', '.join(missing)}, which no --define gives (defined: {known}); add "
                          f"--define {missing[0]}=SEEDS")
    if pipe.spec.kind != "image":
        raise GancliError("latent arithmetic draws pictures; this model makes points")
    if variants < 0:
        raise GancliError(f"--variants must be 0 or more, got {variants}")
    if not (jitter >= 0 and math.isfinite(jitter)):
        raise GancliError(f"--jitter must be a finite number ≥ 0, got {jitter}")
    w_space = pipe.w_space
    if not w_space and noise_mode is not None:
        raise GancliError(f"--noise-mode is for W-space generators; this {pipe.family} model has no noise inputs to choose")
    if noise_mode is not None and noise_mode not in ("const", "none", "random"):
        raise GancliError(f"--noise-mode must be const, none or random, got {noise_mode!r}")
    chosen = class_ if class_ is not None else (0 if pipe.num_classes else None)
    pipe.check_class(chosen)
    pipe._check_truncation(truncation)
    noise = noise_mode or "const"

    def labels(n: int) -> Optional[Tensor]:
        return pipe.labels(n, chosen)

    def to_latent(seeds: Sequence[int]) -> Tensor:
        z = torch.cat([latents(1, pipe.z_dim, seed=s, truncation=None if w_space else truncation) for s in seeds])
        return pipe.mapping(z, labels(len(z)), truncation=truncation) if w_space else z

    def render(latent: Tensor) -> Tensor:
        if w_space:
            return pipe.synthesis(latent, noise_mode=noise, seed=0)
        return pipe.generate(latent, labels(len(latent)), seed=0)

    means: dict[str, tuple[Tensor, Tensor, Tensor]] = {}
    for name in dict.fromkeys(name for _, name in terms):
        seeds = list(definitions[name])
        each = to_latent(seeds)
        mean = each.mean(0)
        means[name] = (mean, render(each), render(mean.unsqueeze(0))[0])
    total = torch.zeros_like(next(iter(means.values()))[0])
    for coefficient, name in terms:
        total = total + coefficient * means[name][0]
    image = render(total.unsqueeze(0))[0]
    scale = _spread(pipe, labels, truncation) if w_space else torch.ones_like(total)
    g = torch.Generator().manual_seed(seed)
    offsets = (torch.rand(variants, *total.shape, generator=g) * 2 - 1) * jitter * scale
    shown = render(total.unsqueeze(0) + offsets) if variants else image.new_zeros((0, *image.shape))
    return ArithmeticResult(
        expression=format_expression(terms), space="w" if w_space else "z",
        terms=[Term(name, coefficient, list(definitions[name]), *means[name]) for coefficient, name in terms],
        latent=total, image=image, variants=shown, jitter=jitter,
    )


def _spread(pipe, labels, truncation) -> Tensor:
    """Each coordinate's standard deviation of w over a fixed set of latents (the scale of W's noise)."""
    from gancli.sampling import latents

    z = latents(SPREAD_SAMPLES, pipe.z_dim, seed=2**31 - 1)
    w = pipe.mapping(z, labels(SPREAD_SAMPLES), truncation=truncation)
    return w.std(0)


# ---------------------------------------------------------------- the picture


def arithmetic_picture(result: ArithmeticResult, *, min_side: int = 64, padding: int = 4):
    """The paper's figure 7 as one PIL image: a column per term (each seed's image, then, below a gap,
    the image of their mean latent), the signs between the means, and the result in the middle of
    its noisy variants after "=" (framed)."""
    from PIL import Image, ImageDraw

    from gancli.data.images import to_uint8

    c, h, w = result.image.shape
    zoom = max(1, math.ceil(min_side / max(h, w)))
    side_h, side_w = h * zoom, w * zoom
    cell_h, cell_w = side_h + padding, side_w + padding
    font, big = _fonts()
    head = 30
    gap = 14  # between a column's samples and its mean
    sign_w = 34
    rows = max(len(term.seeds) for term in result.terms)
    mean_top = head + rows * cell_h + gap
    block = _result_block(result)
    block_cols = min(3, len(block)) if len(block) <= 9 else math.ceil(math.sqrt(len(block)))
    block_rows = math.ceil(len(block) / block_cols)
    centre = block.index(None)  # where the result itself sits
    centre_row = centre // block_cols
    block_top = max(head, mean_top - centre_row * cell_h)
    width = padding + len(result.terms) * (cell_w + sign_w) + block_cols * cell_w + padding
    height = max(mean_top + cell_h + 22, block_top + block_rows * cell_h + 22)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)

    def tile(image: Tensor):
        pil = _pil(to_uint8(image.unsqueeze(0))[0])
        return pil.resize((side_w, side_h), Image.NEAREST)

    left = padding
    for i, term in enumerate(result.terms):
        caption = f"{term.name}" if abs(term.coefficient) == 1 else f"{abs(term.coefficient):g}*{term.name}"
        if i == 0 and term.coefficient < 0:
            caption = "-" + caption  # the signs between columns say the others
        draw.text((left, 2), caption, fill=(0, 0, 0), font=font)
        draw.text((left, 15), _short(",".join(map(str, term.seeds)), side_w), fill=(110, 110, 110), font=font)
        for r, image in enumerate(term.images):
            canvas.paste(tile(image), (left, head + r * cell_h))
        draw.line([(left, mean_top - gap // 2), (left + side_w, mean_top - gap // 2)], fill=(160, 160, 160))
        canvas.paste(tile(term.mean_image), (left, mean_top))
        draw.text((left, mean_top + side_h + 3), "mean", fill=(110, 110, 110), font=font)
        left += cell_w
        sign = ("=" if i == len(result.terms) - 1 else
                ("-" if result.terms[i + 1].coefficient < 0 else "+"))  # ASCII: the default font has no U+2212
        draw.text((left + sign_w // 2 - 6, mean_top + side_h // 2 - 12), sign, fill=(0, 0, 0), font=big)
        left += sign_w
    for k, item in enumerate(block):
        r, col = divmod(k, block_cols)
        x, y = left + col * cell_w, block_top + r * cell_h
        canvas.paste(tile(result.image if item is None else item), (x, y))
        if item is None:
            draw.rectangle([x - 2, y - 2, x + side_w + 1, y + side_h + 1], outline=(200, 30, 30), width=2)
    note = f"result (framed) and +-{result.jitter:g} noise in {result.space.upper()}" if len(block) > 1 else "result"
    draw.text((left, block_top + block_rows * cell_h + 3), _short(note, block_cols * cell_w + 40), fill=(110, 110, 110), font=font)
    return canvas


def _result_block(result: ArithmeticResult) -> list:
    """The variants with the result (None) in the middle, as the paper's 3×3 block has it."""
    items = list(result.variants)
    middle = len(items) // 2
    return items[:middle] + [None] + items[middle:]


def _pil(chw: Tensor):
    from PIL import Image

    array = chw.permute(1, 2, 0).contiguous().numpy()
    if array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], mode="L").convert("RGB")
    return Image.fromarray(array, mode="RGB")


def _fonts():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=11), ImageFont.load_default(size=22)
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
        return font, font


def _short(text: str, width_px: int) -> str:
    limit = max(4, width_px // 6)
    return text if len(text) <= limit else text[: limit - 1] + "…"
