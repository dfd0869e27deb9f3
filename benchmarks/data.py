"""The training data path: the seeded view's cost per batch, and samples/s of the speaker and Omniglot training sets.

    python benchmarks/data.py                          # data roots ../shared/data/{speechocean762,omniglot}
    python benchmarks/data.py --speechocean DIR --omniglot DIR --repeats 5

One thread, the main process (``num_workers`` 0): what one core gives. Each table runs its rows in turn, once per
round, after a warm-up; times are medians over rounds and every ratio is the median over rounds of a row's time over
the reference row's in the same round, so machine noise cancels:

- seeded view: ms per batch of 256 Omniglot items through ``training_loader`` (per-sample seeds) against a plain
  ``DataLoader`` over the same batches (no seeding, global RNG), without and with the recipe's augmentation;
- speaker: samples/s of the speechocean training set with the recipe's data section
  (``speechocean_arcface.yaml``: 2 s crops, ``augment: true``) through ``training_loader``, one batch of 64,
  against decoding the same 64 utterances (``read_audio``, nothing else);
- Omniglot: samples/s of the training set with ``augment: true`` through ``training_loader`` against the same
  batches without augmentation through a plain ``DataLoader``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from veriloss.data import build_dataset
from veriloss.data.audio import read_audio
from veriloss.train import load_config
from veriloss.train.loader import training_loader


def interleaved(fns: list, repeats: int) -> tuple[list[float], list[float]]:
    """Median time of each of ``fns`` and the median over repeats of its time / the first one's: one round runs
    every fn once, so a busy machine slows the reference and the others alike."""
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    for _ in range(repeats):
        for t, fn in zip(times, fns):
            start = time.perf_counter()
            fn()
            t.append(time.perf_counter() - start)
    ratios = [statistics.median(a / b for a, b in zip(t, times[0])) for t in times]
    return [statistics.median(t) for t in times], ratios


def drain(loader) -> None:
    for _ in loader:
        pass


def batches_of(n: int, size: int, count: int, seed: int = 0) -> list[list[int]]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return [order[i * size : (i + 1) * size] for i in range(count)]


def seeded_view(root: Path, repeats: int) -> None:
    print("\n### Seeded view: ms per batch of 256 (Omniglot train, 28 px)\n")
    print("| loader | augmentation | ms/batch | × plain, no augmentation |")
    print("|---|---|---|---|")
    data = load_config("omniglot_softmax", [f"data.root={root}"])["data"]
    plain_ds = build_dataset(data, "train")
    aug_ds = build_dataset({**data, "augment": True}, "train")
    batches = batches_of(len(plain_ds), 256, 4)
    rows, fns = [], []
    for name, ds in (("off", plain_ds), ("on", aug_ds)):
        rows += [("plain DataLoader", name), ("training_loader", name)]
        fns += [
            lambda ds=ds: drain(DataLoader(ds, batch_sampler=batches)),
            lambda ds=ds: drain(training_loader(ds, batches, 256, 0, 0)),
        ]
    times, ratios = interleaved(fns, repeats)
    for (loader, name), t, r in zip(rows, times, ratios):
        print(f"| {loader} | {name} | {1000 * t / len(batches):.1f} | {r:.2f} |")


def speaker(root: Path, repeats: int) -> None:
    print("\n### Speaker training set (speechocean762, speechocean_arcface data section): 64 samples\n")
    print("| path | samples/s | × decode only |")
    print("|---|---|---|")
    data = load_config("speechocean_arcface", [f"data.root={root}"])["data"]
    ds = build_dataset(data, "train")
    plain = build_dataset({**data, "augment": False}, "train")
    batch = batches_of(len(ds), 64, 1)
    sources = [ds.sources[i] for i in batch[0]]
    times, ratios = interleaved(
        [
            lambda: [read_audio(s) for s in sources],
            lambda: drain(training_loader(plain, batch, 64, 0, 0)),
            lambda: drain(training_loader(ds, batch, 64, 0, 0)),
        ],
        repeats,
    )
    names = ["decode only (read_audio)", "training_loader, augment: false", "training_loader, augment: true"]
    for name, t, r in zip(names, times, ratios):
        print(f"| {name} | {64 / t:.1f} | {r:.2f} |")


def omniglot(root: Path, repeats: int) -> None:
    print("\n### Omniglot training set (omniglot_softmax data section, augment: true): 4 batches of 256\n")
    print("| path | samples/s | × plain, no augmentation |")
    print("|---|---|---|")
    data = load_config("omniglot_softmax", [f"data.root={root}"])["data"]
    plain_ds, aug_ds = build_dataset(data, "train"), build_dataset({**data, "augment": True}, "train")
    batches = batches_of(len(plain_ds), 256, 4)
    times, ratios = interleaved(
        [
            lambda: drain(DataLoader(plain_ds, batch_sampler=batches)),
            lambda: drain(training_loader(aug_ds, batches, 256, 0, 0)),
        ],
        repeats,
    )
    n = 256 * len(batches)
    for name, t, r in zip(["plain DataLoader, augment: false", "training_loader, augment: true"], times, ratios):
        print(f"| {name} | {n / t:.0f} | {r:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speechocean", type=Path, default=Path("../shared/data/speechocean762"))
    parser.add_argument("--omniglot", type=Path, default=Path("../shared/data/omniglot"))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), num_workers 0")
    seeded_view(args.omniglot, args.repeats)
    speaker(args.speechocean, args.repeats)
    omniglot(args.omniglot, args.repeats)


if __name__ == "__main__":
    main()
