"""One intra-op thread for these tiny networks: on a shared 2-core machine a second thread that is not
scheduled makes every small op wait (measured here: 25× slower steps at load 9), and the tests check
behaviour, not speed. The previous setting is restored after each test."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
