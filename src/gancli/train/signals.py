"""Ctrl-C and SIGTERM as a flag the loop reads between steps, so a checkpoint is saved before it stops."""
from __future__ import annotations

import signal
from typing import Any, Optional


class StopSignals:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps, so a checkpoint is saved first."""

    def __init__(self) -> None:
        self.signal_name: Optional[str] = None
        self._previous: dict[int, Any] = {}
        self._depth = 0

    def __enter__(self) -> "StopSignals":
        self._depth += 1
        if self._depth > 1:  # already installed by an outer block
            return self
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside some test runners)
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.signal_name is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
