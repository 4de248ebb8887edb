"""Fixtures for the BigGAN tests; the tiny models live in _biggan_testkit."""
from __future__ import annotations

import pytest


@pytest.fixture(params=["biggan", "biggan-deep"])
def arch(request) -> str:
    return request.param
