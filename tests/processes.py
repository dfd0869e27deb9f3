"""Run a test body in several gloo processes: forked from one preloaded server, torchrun's variables set, the group
left safely afterwards, and a hang turned into a failure."""

from __future__ import annotations

import multiprocessing
import os
import socket
import time

import torch
import torch.multiprocessing as mp

from veriloss.train import distributed as D

# imported once by the fork server instead of by each worker (seconds per process on a busy machine); the lazy
# imports of the optimizers' first step (torch._dynamo) and of broadcast_shapes (sympy) included
_PRELOAD = [
    "torch",
    "torch._dynamo",
    "torch.fx.experimental.symbolic_shapes",
    "veriloss.heads.alpha.sharded",
    "veriloss.train",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, fn, world: int, port: int, args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    fn(rank, world, *args)  # joins the group itself (some bodies build things before it); its locals die here
    D.shutdown()


def run_processes(fn, world: int, *args, timeout: float = 300.0) -> None:
    """``fn(rank, world, *args)`` in ``world`` processes (RANK, WORLD_SIZE, MASTER_ADDR/PORT set; ``fn`` joins the
    group); an error in one is raised here, and processes still running after ``timeout`` seconds fail the test."""
    multiprocessing.set_forkserver_preload(_PRELOAD)
    context = mp.start_processes(
        _rank_main, args=(fn, world, _free_port(), args), nprocs=world, join=False, start_method="forkserver"
    )
    deadline = time.monotonic() + timeout
    while not context.join(timeout=max(deadline - time.monotonic(), 0.0) + 0.1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise AssertionError(f"{world} processes still running after {timeout:g} s: a deadlock")
