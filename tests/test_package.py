"""The package: `import veriloss` is light and reaches every subpackage lazily."""

from __future__ import annotations

import subprocess
import sys


def test_import_veriloss_loads_no_torch_and_reaches_subpackages_lazily():
    code = (
        "import sys, veriloss; assert 'torch' not in sys.modules, 'torch imported eagerly'; "
        "assert veriloss.heads.create('cosface', 8, 4).num_classes == 4; "
        "assert callable(veriloss.metrics.tar_at_far) and callable(veriloss.train.Trainer); "
        "assert 'heads' in dir(veriloss); print(veriloss.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().count(".") == 2


def test_an_unknown_attribute_is_an_attribute_error():
    import pytest

    import veriloss

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        veriloss.nope  # noqa: B018
