"""The trainer against the bare training step of the same model, as images/s measured in one process.

    python benchmarks/train.py --data-root ../shared/data                 # Omniglot (CosFace) and speaker (ECAPA)
    python benchmarks/train.py --data-root ../shared/data --only omniglot --steps 60

For a packaged recipe, the *bare step* is forward + backward + optimizer step of the recipe's own backbone, loss and
optimizer on one fixed batch held in memory (no data loading, no logging, no checkpoints), in every layout and
precision the recipe could use (NCHW / channels-last, float32 / bf16 autocast where the CPU runs bf16 natively); the
best of them is the reference. The *trainer* is ``Trainer.from_config(recipe)`` as ``veriloss train`` runs it
(validation off, no TensorBoard, checkpoints only at the end), its images/s taken between two steps after a warm-up
(a callback's clock, so start-up and the final evaluation are not counted). Target: trainer ≥ 0.9× the best bare
step on Omniglot, ≥ 0.85× on the speaker recipe (2 s crops with speed and noise augmentation).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from veriloss.data import build_dataset
from veriloss.train import Callback, Trainer, load_config
from veriloss.train.build import build_from_config
from veriloss.train.optimizers import build_optimizer
from veriloss.train.precision import _cpu_has_fast_bf16

#: recipe, timed steps, warm-up steps (speaker: the first epoch fills the decoded-audio cache, ``data.cache_mb``, so
#: the timed steps are those of the second epoch, as in every epoch after the first of a run)
RECIPES = {
    "omniglot": ("omniglot_cosface", 25, 3),
    "speaker": ("speechocean_arcface", 6, 31),
}


class Clock(Callback):
    """Wall time at the end of every step from step 3 on (step 1 and 2 warm the allocator and the kernels)."""

    def __init__(self):
        self.marks: dict[int, float] = {}

    def on_step_end(self, trainer, loss, stats) -> None:
        if trainer.step >= 3:
            self.marks[trainer.step] = time.perf_counter()

    def rate(self, batch: int, first: int, last: int) -> float:
        """Samples/s between the end of step ``first`` and the end of step ``last``."""
        return batch * (last - first) / (self.marks[last] - self.marks[first])


def trainer_rate(config: dict, steps: int, warmup: int) -> tuple[float, float | None, str]:
    """(samples/s after ``warmup`` steps, samples/s over steps 3 … ``warmup`` or None, precision)."""
    config = {**config, "max_steps": warmup + steps}
    clock = Clock()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer.from_config(config, out, log=lambda _m: None, callbacks=[clock])
        trainer.test_set = None  # the final evaluation is not training speed
        trainer.fit()
    batch, last = config["batch_size"], warmup + steps
    early = clock.rate(batch, 3, warmup) if warmup > 3 else None
    return clock.rate(batch, warmup, last), early, trainer.precision


def first_batch(config: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The recipe's first ``batch_size`` training items as one batch (x, y), held in memory for the bare step."""
    data = build_dataset(config["data"], "train")
    batch = [data[i] for i in range(config["batch_size"])]
    return torch.stack([b[0] for b in batch]), torch.tensor([b[1] for b in batch])


def bare_rate(config: dict, x: torch.Tensor, y: torch.Tensor, channels_last: bool, bf16: bool, repeats: int) -> float:
    torch.manual_seed(0)
    objects = build_from_config(config, lambda _m: None)
    model, loss = objects["model"], objects["loss"]
    optimizer = build_optimizer(model, loss, config["optim"])
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            emb = model(x)
        value = loss(emb.float(), y)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()

    step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return x.shape[0] / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--only", choices=tuple(RECIPES), default=None)
    parser.add_argument("--steps", type=int, default=None, help="timed trainer steps (default per recipe)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first trainer steps (default per recipe)")
    args = parser.parse_args()
    fast_bf16 = _cpu_has_fast_bf16()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {fast_bf16}\n")
    print("| recipe | bare step: layout, precision | images/s | trainer images/s | trainer ÷ best bare |")
    print("|---|---|---|---|---|")
    for key, (recipe, default_steps, default_warmup) in RECIPES.items():
        if args.only and key != args.only:
            continue
        overrides = ["validate.every_epochs=0", "log.tensorboard=false", "log.progress=false",
                     "checkpoint.every_steps=100000", *args.set]  # fmt: skip
        config = load_config(recipe, overrides, data_root=args.data_root)
        steps = args.steps or default_steps
        repeats = max(5, steps // 2)
        rates = {}
        x, y = first_batch(config)
        for channels_last in (False, True) if x.dim() == 4 else (False,):  # channels-last changes image batches only
            for bf16 in (False, True) if fast_bf16 else (False,):
                name = f"{'channels-last' if channels_last else 'NCHW'}, {'bf16' if bf16 else 'float32'}"
                rates[name] = bare_rate(config, x, y, channels_last, bf16, repeats)
        best = max(rates, key=rates.get)
        warmup = default_warmup if args.warmup is None else args.warmup
        trainer, early, precision = trainer_rate(config, steps, warmup)
        for name, rate in rates.items():
            mark = " (best)" if name == best else ""
            print(f"| {recipe} | {name}{mark} | {rate:.0f} | | |")
        if early is not None:  # the steps before the timed ones, e.g. the first epoch of the speaker recipe
            print(f"| {recipe} | trainer, steps 3–{warmup} ({precision}) | | {early:.0f} | {early / rates[best]:.2f} |")
        timed = f"steps {warmup}–{warmup + steps}"
        ratio = trainer / rates[best]
        print(f"| {recipe} | trainer, {timed} ({precision}) | | {trainer:.0f} | **{ratio:.2f}** |", flush=True)


if __name__ == "__main__":
    main()
