"""Shared by tests/ and plugins/*/tests: training runs in tests skip RUN/curves.png (matplotlib costs about a
second a run); tests/test_curves.py turns it back on where it is the subject."""
import os

os.environ.setdefault("GANCLI_CURVES", "0")
