"""One intra-op thread for these tests: the networks are tiny, and on a shared CPU two spinning
OpenMP threads make each op many times slower than one."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
