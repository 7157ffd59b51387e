"""One torch thread while these tests run: their tensors are small, and two
threads spinning against other test processes on a 2-core machine cost more
than they give. Restored afterwards, so other test folders are untouched."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
