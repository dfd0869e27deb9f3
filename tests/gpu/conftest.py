"""GPU checks (issue 16): every test here is marked ``gpu``; a test that needs CUDA is skipped, with the reason,
where ``torch.cuda.is_available()`` is False. Tests parametrized by ``device`` also run their CPU case (tiny sizes),
so the code of each check runs on a machine without a GPU too.

On a GPU machine: ``python -m pytest -q -p no:cacheprovider tests/gpu`` (or ``-m gpu``).
"""

from __future__ import annotations

import pytest
import torch

CUDA = torch.cuda.is_available()
NO_CUDA = "no CUDA device (torch.cuda.is_available() is False): this GPU check runs only on a CUDA machine"

#: ``device`` parameters: the CPU case runs everywhere, the CUDA case only where a GPU is
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason=NO_CUDA))]
#: for tests that mean nothing on a CPU
requires_cuda = pytest.mark.skipif(not CUDA, reason=NO_CUDA)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: GPU checks (tests/gpu); the CUDA cases skip without a CUDA device")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = config.rootpath / "tests" / "gpu"
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.gpu)
            callspec = getattr(item, "callspec", None)
            if callspec is not None and callspec.params.get("device") == "cuda" and not CUDA:
                item.add_marker(pytest.mark.skip(reason=NO_CUDA))  # also for a "cuda" given by a fixture


@pytest.fixture(autouse=True)
def _ieee_float32():
    """No TF32 in float32 matmuls or cuDNN convolutions (the comparisons need IEEE float32 products), whatever the
    environment set; restored afterwards."""
    precision, cudnn_tf32 = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.set_float32_matmul_precision(precision)
    torch.backends.cudnn.allow_tf32 = cudnn_tf32
