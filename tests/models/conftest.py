"""The backbone tests run tiny convolutions: one intra-op thread is as fast on an idle machine and avoids the
OpenMP spin-wait slow-down (measured 3× on the whole file, 60× on single small forwards) when other processes
share the cores."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
