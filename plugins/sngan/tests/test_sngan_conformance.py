"""The plugin conformance kit on both families (shapes, determinism, training, reload, bit-exact resume,
accumulation), unconditional on 1- and 3-channel data and conditional on 3-class data."""
import pytest

from gancli.testing import check_family

# sngan's 5 D steps per G step make the kit's runs 2.5× longer than 2 do; 2 still takes the
# several-D-steps path (a fresh real batch and a G forward without a graph per D step)
FAST = {"sngan": {"n_critic": 2}, "sagan": {}}


@pytest.mark.slow
@pytest.mark.parametrize("family", ["sngan", "sagan"])
def test_conformance(family):
    report = check_family(family, settings=FAST[family])
    assert any("3 classes" in line for line in report.passed)
