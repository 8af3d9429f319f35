"""torch's intra-op thread count for a block, the caller's restored afterwards: a command run
in-process (as the tests run them) leaves the count as it found it."""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
