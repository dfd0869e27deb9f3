"""Training throughput and the wall time of an Omniglot recipe.

    python benchmarks/train.py                       # throughput of small-cnn (28 px) and iresnet50 (112 px)
    python benchmarks/train.py --recipe omniglot_arcface --data-root ../shared/data/omniglot   # + one full recipe

Throughput is forward + backward + SGD step of backbone and head (ArcFace over 1,000 classes) on random inputs,
images/s as the median over repeats after a warm-up, in float32 and under bf16 autocast (what the recipes use on CPU;
the loss stays float32). The ratio column compares each to the float32 run of the same model in this process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from veriloss import heads, models


def throughput(name: str, size: int, channels: int, batch: int, amp: bool, repeats: int) -> float:
    torch.manual_seed(0)
    dim = 128 if name == "small-cnn" else 512
    model = models.create(name, in_channels=channels, input_size=size, embedding_dim=dim)
    head = heads.create("arcface", model.embedding_dim, 1000, s=30.0, m=0.5)
    opt = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=0.01, momentum=0.9)
    x = torch.randn(batch, channels, size, size)
    y = torch.randint(0, 1000, (batch,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            emb = model(x)
        loss = head(emb.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=None, help="also time `veriloss train RECIPE` (e.g. omniglot_arcface)")
    parser.add_argument("--data-root", default="../shared/data/omniglot")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| model | input | batch | precision | images/s | × float32 |")
    print("|---|---|---|---|---|---|")
    for name, size, channels, batch, repeats in (
        ("small-cnn", 28, 1, 256, args.repeats * 4),
        ("iresnet50", 112, 3, 32, args.repeats),
    ):
        base = throughput(name, size, channels, batch, False, repeats)
        print(f"| {name} | {channels}×{size}×{size} | {batch} | float32 | {base:.1f} | 1.00 |", flush=True)
        bf16 = throughput(name, size, channels, batch, True, repeats)
        row = f"| {name} | {channels}×{size}×{size} | {batch} | bf16 autocast | {bf16:.1f} | {bf16 / base:.2f} |"
        print(row, flush=True)
    if args.recipe:
        out = Path("runs") / f"bench_{args.recipe}"
        cmd = [sys.executable, "-m", "veriloss.cli", "train", args.recipe, "--out", str(out),
               "--set", f"data.root={args.data_root}"]  # fmt: skip
        t = time.perf_counter()
        subprocess.run(cmd, check=True)
        print(f"\n`veriloss train {args.recipe}` (train + all-pairs evaluation): {time.perf_counter() - t:.0f} s wall")


if __name__ == "__main__":
    main()
