"""A plain PyTorch training loop with a veriloss head, then an exact all-pairs evaluation on held-out identities.

Runs in a few seconds on a CPU:

    python examples/plain_loop.py                 # ArcFace
    python examples/plain_loop.py --head alpha    # any name of veriloss.heads.available()

The data are synthetic: each identity is a point in an 8-dimensional "identity" space, and every sample adds
noise plus 24 dimensions of identity-independent nuisance, so raw inputs verify poorly and the backbone has to learn
to ignore the nuisance. The model is trained on 40 identities and evaluated on 20 others (open set, as in
verification). Exits with status 1 unless training at least halves the EER of the raw inputs.
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

from veriloss import heads
from veriloss.protocols import all_pairs

IDENTITY_DIM, NUISANCE_DIM = 8, 24


def make_data(identities: int, per_identity: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs (N, 32), identity labels (N,)): identity centre + noise, then nuisance dimensions."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(identities, IDENTITY_DIM, generator=g)
    labels = torch.arange(identities).repeat_interleave(per_identity)
    n = labels.numel()
    signal = centers[labels] + 0.35 * torch.randn(n, IDENTITY_DIM, generator=g)
    nuisance = 1.5 * torch.randn(n, NUISANCE_DIM, generator=g)
    return torch.cat([signal, nuisance], dim=1), labels


def evaluate(embeddings: torch.Tensor, labels: torch.Tensor, title: str) -> float:
    """All pairs of the held-out samples: exact TAR@FAR and EER; returns the EER."""
    result = all_pairs(embeddings, labels, far=(1e-2, 1e-3), p_targets=(0.01,))
    print(f"{title}: {result.n_genuine} genuine / {result.n_impostor} impostor pairs")
    for t in result.tar:
        print(f"  {t}")
    print(f"  {result.eer}")
    return result.eer.eer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="arcface", help="a veriloss head (default: arcface)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)

    x_train, y_train = make_data(identities=40, per_identity=20, seed=args.seed)
    x_test, y_test = make_data(identities=20, per_identity=10, seed=args.seed + 1)  # identities never trained on

    embedding_dim, num_classes = 32, 40
    backbone = nn.Sequential(nn.Linear(IDENTITY_DIM + NUISANCE_DIM, 128), nn.ReLU(), nn.Linear(128, embedding_dim))
    # a prototype head: its weight (num_classes × embedding_dim) is a parameter, so the optimizer must see it
    params = {"s": 16.0, "m": 0.3} if args.head == "arcface" else {}
    head = heads.create(args.head, embedding_dim, num_classes, **params)
    optimizer = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=3e-3)

    for epoch in range(args.epochs):
        backbone.train()
        head.train()
        order = torch.randperm(len(y_train))
        total = 0.0
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            loss = head(backbone(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            stats = head.statistics()
            print(f"epoch {epoch + 1}: loss {total / len(y_train):.4f}, train accuracy {stats['accuracy']:.3f}")

    backbone.eval()
    with torch.no_grad():
        embeddings = backbone(x_test)
    raw_eer = evaluate(x_test, y_test, "raw inputs")
    eer = evaluate(embeddings, y_test, f"trained ({args.head})")
    if not eer < raw_eer / 2:
        print(f"FAILED: the trained EER {eer:.4f} is not below half the raw EER ({raw_eer / 2:.4f})")
        return 1
    print(f"OK: EER {100 * raw_eer:.2f}% (raw) -> {100 * eer:.2f}% (trained)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
