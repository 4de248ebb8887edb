"""The conformance kit every family passes: shapes, range, determinism, training, reload, bit-exact resume."""
import pytest
from gancli.testing import check_family


@pytest.mark.slow
def test_conformance_kit():
    report = check_family("stylegan")
    assert any("resume is bit-exact" in line for line in report.passed)
