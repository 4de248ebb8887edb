"""The conformance kit for both architectures (tiny widths from the family's check_settings)."""
from __future__ import annotations

import pytest

from gancli.testing import check_family


@pytest.mark.slow
@pytest.mark.parametrize("settings", [{"arch": "biggan"}, {"arch": "biggan-deep", "depth": 1}], ids=["biggan", "deep"])
def test_conformance(settings):
    # one bottleneck block per resolution keeps the kit fast; the two-block stages are checked in test_biggan_networks
    report = check_family("biggan", settings=settings)
    assert any("3 classes" in line for line in report.passed)  # the class-conditional variant ran
    assert any("gradient accumulation" in line for line in report.passed)
