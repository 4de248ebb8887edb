"""The conformance kit every family passes: shapes, range, determinism, training, reload, bit-exact resume."""
from gancli.testing import check_family


def test_conformance_kit():
    report = check_family("stylegan")
    assert any("resume is bit-exact" in line for line in report.passed)
