"""The examples/ scripts run to completion (exit status 0) and print their final check."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HAS_LIGHTNING = importlib.util.find_spec("lightning") is not None
needs_lightning = pytest.mark.skipif(
    not HAS_LIGHTNING, reason="lightning is not installed (pip install 'veriloss[test]' installs it)"
)


def _run(*args: str) -> str:
    # one thread per process: these models are tiny, and several threads on a busy CPU are much slower than one
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} exited with {done.returncode}:\n{output[-4000:]}"
    return done.stdout


def test_plain_loop():
    out = _run("examples/plain_loop.py")
    assert "trained (arcface)" in out and "TAR@FAR=0.001" in out
    assert "OK: EER" in out


def test_pml_migration():
    out = _run("examples/pml_migration.py")
    assert "BAD" not in out
    assert "OK: 8 checks, pytorch-metric-learning and veriloss agree" in out


@needs_lightning
def test_lightning_module():
    out = _run("examples/lightning_module.py")
    assert "val/tar@far=0.001:" in out and "val/eer:" in out
    assert "OK: EER" in out


@needs_lightning
def test_lightning_module_under_ddp_over_two_cpu_processes():
    out = _run("examples/lightning_module.py", "--devices", "2")
    assert "val/eer:" in out and "OK: EER" in out
