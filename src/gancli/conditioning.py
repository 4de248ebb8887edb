"""Which class to generate: an index, a class name from the data, or a weighted mixture.

``--class 7``, ``--class #7``, ``--class Sneaker`` and ``--class 3:0.5,7:0.5`` (a mixture, for
generators with a shared class embedding that accept class weights, e.g. BigGAN's "dog-ball")
all parse to a :class:`ClassChoice`. A name that matches exactly wins over an index; ``#N`` is
always the index. No torch here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

from gancli.errors import GancliError


@dataclass(frozen=True)
class ClassChoice:
    index: Optional[int] = None  # one class
    weights: tuple[tuple[int, float], ...] = ()  # a mixture: (class, weight) pairs summing to 1

    @property
    def is_mixture(self) -> bool:
        return bool(self.weights)

    def describe(self, names: Sequence[str]) -> str:
        def name(i: int) -> str:
            return names[i] if i < len(names) else str(i)

        if self.index is not None:
            return name(self.index)
        return " + ".join(f"{w:g}·{name(i)}" for i, w in self.weights)


def class_index(text: str, names: Sequence[str], num_classes: int) -> int:
    """One class by name or by index: an exact name wins (then a case-insensitive one); ``#N`` is
    always index N; a bare number that names no class is an index, unless the names are numbers
    other than their indices (folders named 0..11 sort as 0, 1, 10, 11, 2, ...): then it is ambiguous."""
    text = text.strip()
    if text in names:
        return list(names).index(text)
    lowered = [n.lower() for n in names]
    if text.lower() in lowered and lowered.count(text.lower()) == 1:
        return lowered.index(text.lower())
    explicit = text.startswith("#")
    number = text[1:] if explicit else text
    if number.lstrip("-").isdigit():
        index = int(number)
        misleading = any(n.isdigit() and n != str(i) for i, n in enumerate(names))  # numbers, not their indices
        if not explicit and misleading:
            raise GancliError(
                f"class {text!r} is ambiguous: no class is named {text!r} and this model's class names are "
                f"other numbers; say #{index} for the class at index {index}, or one of: {', '.join(names)}"
            )
        if not 0 <= index < num_classes:
            raise GancliError(f"class {text} is out of range: this model has classes 0..{num_classes - 1}")
        return index
    known = ", ".join(names) if names else f"0..{num_classes - 1}"
    raise GancliError(f"unknown class {text!r}; this model's classes are: {known} (or #0..#{num_classes - 1})")


def parse_class(value: Union[int, str, ClassChoice, None], names: Sequence[str], num_classes: int) -> Optional[ClassChoice]:
    """An index, a name (case-insensitive) or 'a:w,b:w' → ClassChoice; None stays None."""
    if value is None or isinstance(value, ClassChoice):
        return value
    if num_classes <= 0:
        raise GancliError("this model is unconditional; drop --class")
    if isinstance(value, int):  # from Python: an index
        return ClassChoice(index=class_index(f"#{value}", names, num_classes))
    text = str(value)
    if ":" not in text:
        return ClassChoice(index=class_index(text, names, num_classes))
    pairs = []
    for part in text.split(","):
        label, sep, weight = part.rpartition(":")
        if not sep or not label:
            raise GancliError(f"--class mixtures look like 3:0.5,7:0.5 (class:weight, ...); got {text!r}")
        try:
            w = float(weight)
        except ValueError:
            raise GancliError(f"--class mixture weight {weight!r} is not a number") from None
        if w < 0:
            raise GancliError(f"--class mixture weights must not be negative, got {w}")
        pairs.append((class_index(label, names, num_classes), w))
    total = sum(w for _, w in pairs)
    if total <= 0:
        raise GancliError("--class mixture weights must not all be 0")
    merged: dict[int, float] = {}
    for index, w in pairs:
        merged[index] = merged.get(index, 0.0) + w / total
    return ClassChoice(weights=tuple(sorted(merged.items())))
