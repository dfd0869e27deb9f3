"""The multi-process test helper turns a hang into a failure and reports an error raised in one process."""

from __future__ import annotations

import time

import pytest

from tests.processes import run_processes


def _hangs(rank: int, world: int) -> None:
    if rank == 1:
        time.sleep(60)


def _fails(rank: int, world: int) -> None:
    if rank == 1:
        raise ValueError("rank 1 fails")


def test_a_hanging_process_fails_the_test_after_the_timeout():
    start = time.monotonic()
    with pytest.raises(AssertionError, match="still running after 2 s"):
        run_processes(_hangs, 2, timeout=2.0)
    assert time.monotonic() - start < 30


def test_an_error_in_one_process_is_raised():
    with pytest.raises(Exception, match="rank 1 fails"):
        run_processes(_fails, 2)
