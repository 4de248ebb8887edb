"""Query parameters, checked: every value a request can send is bounded, and a wrong one is a 400 with a message."""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

from gancli.errors import GancliError

MAX_SEED = 2**32 - 1
MAX_TEXT = 200


class BadRequest(GancliError):
    """A request the server refuses (answered 400 with the message)."""


class Query:
    """The query of one request, read once: each parameter at most once, none the endpoint does not take."""

    def __init__(self, items: Iterable[tuple[str, str]], allowed: Sequence[str]):
        self.values: dict[str, str] = {}
        for key, value in items:
            if key not in allowed:
                takes = ", ".join(allowed) if allowed else "no parameters"
                raise BadRequest(f"unknown parameter {key!r}; this endpoint takes: {takes}")
            if key in self.values:
                raise BadRequest(f"parameter {key!r} is given twice")
            self.values[key] = value

    def _raw(self, name: str) -> Optional[str]:
        value = self.values.get(name)
        if value is None or value.strip() == "":
            return None
        if len(value) > MAX_TEXT:
            raise BadRequest(f"parameter {name!r} is longer than {MAX_TEXT} characters")
        return value.strip()

    def integer(self, name: str, default: Optional[int], low: int, high: int) -> Optional[int]:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(f"{name} must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise BadRequest(f"{name} must lie in {low}..{high}, got {value}")
        return value

    def seed(self, name: str, default: Optional[int] = None) -> Optional[int]:
        return self.integer(name, default, 0, MAX_SEED)

    def number(self, name: str, default: Optional[float], low: float, high: float) -> Optional[float]:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise BadRequest(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise BadRequest(f"{name} must lie in {low:g}..{high:g}, got {raw}")
        return value

    def numbers(self, name: str, default: Sequence[float], low: float, high: float, most: int) -> list[float]:
        raw = self._raw(name)
        if raw is None:
            return list(default)
        parts = [p for p in raw.replace(" ", "").split(",") if p]
        if not 1 <= len(parts) <= most:
            raise BadRequest(f"{name} takes 1 to {most} comma-separated numbers, got {len(parts)}")
        return [Query([(name, p)], [name]).number(name, None, low, high) for p in parts]

    def choice(self, name: str, default: Optional[str], options: Sequence[str]) -> Optional[str]:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw not in options:
            raise BadRequest(f"{name} must be one of {', '.join(options)}, got {raw!r}")
        return raw

    def text(self, name: str) -> Optional[str]:
        return self._raw(name)

