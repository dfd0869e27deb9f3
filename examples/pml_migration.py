"""From pytorch-metric-learning to veriloss: the same losses, parameters mapped, weights transposed.

    pip install pytorch-metric-learning
    python examples/pml_migration.py

For each loss that both libraries have, builds the pytorch-metric-learning (pml) loss and the veriloss loss with the
mapped parameters (docs/migration-pml.md), copies pml's weights into the veriloss head (pml's ``W`` is
embedding_size × num_classes, veriloss's ``weight`` num_classes × embedding_dim: a transpose), and checks that the
losses and their gradients agree. Exits with status 1 on a mismatch.
"""

from __future__ import annotations

import math
import sys

import torch
from pytorch_metric_learning import distances, losses, miners, reducers

from veriloss import heads, pairwise

D, K, B = 16, 7, 32  # embedding size, classes, batch


def compare(name: str, ours: torch.nn.Module, theirs: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, miner=None):
    """Loss values and gradients (embeddings; prototypes, transposed) of both libraries on the same batch."""
    ours.zero_grad()
    theirs.zero_grad()
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    a = ours(x1, y)
    b = theirs(x2, y) if miner is None else theirs(x2, y, miner(x, y))
    a.backward()
    b.backward()
    ok = torch.allclose(a, b, rtol=1e-5, atol=1e-6) and torch.allclose(x1.grad, x2.grad, rtol=1e-4, atol=1e-6)
    if hasattr(theirs, "W"):
        ok = ok and torch.allclose(ours.weight.grad, theirs.W.grad.t(), rtol=1e-4, atol=1e-6)
    print(f"{'ok ' if ok else 'BAD'} {name:<56} veriloss {a.item():10.6f}   pml {b.item():10.6f}")
    return ok


def port(head: torch.nn.Module, pml_loss: torch.nn.Module) -> torch.nn.Module:
    """pml's W (d × K) → the veriloss head's weight (K × d)."""
    with torch.no_grad():
        head.weight.copy_(pml_loss.W.t())
    return head


def main() -> int:
    torch.manual_seed(0)
    x = torch.randn(B, D)
    y = torch.arange(B) % K
    ok = []

    # ArcFace: pml's margin is in DEGREES, veriloss's m in radians; pml's scale is s. Both use insightface's fallback
    # cos θ − m·sin m where θ + m > π (veriloss: overflow="fallback", the default).
    pml_arc = losses.ArcFaceLoss(num_classes=K, embedding_size=D, margin=28.6, scale=64)  # pml's defaults
    arc = heads.create("arcface", D, K, s=64.0, m=math.radians(28.6))
    ok.append(compare("ArcFaceLoss(margin=28.6°) -> arcface(m=0.4992)", port(arc, pml_arc), pml_arc, x, y))
    # a checkpoint: the state dict's W, transposed
    arc2 = heads.create("arcface", D, K, s=64.0, m=math.radians(28.6))
    arc2.load_state_dict({"weight": pml_arc.state_dict()["W"].t()})
    ok.append(compare("  the same, from pml's state_dict: weight = W.t()", arc2, pml_arc, x, y))

    # CosFace: margin (a cosine) and scale carry over as m and s
    pml_cos = losses.CosFaceLoss(num_classes=K, embedding_size=D, margin=0.35, scale=64)
    cos = heads.create("cosface", D, K, s=64.0, m=0.35)
    ok.append(compare("CosFaceLoss -> cosface", port(cos, pml_cos), pml_cos, x, y))

    # NormalizedSoftmaxLoss: logits cos θ / temperature, i.e. normface with s = 1 / temperature
    pml_norm = losses.NormalizedSoftmaxLoss(num_classes=K, embedding_size=D, temperature=0.05)
    norm = heads.create("normface", D, K, s=1 / 0.05)
    ok.append(compare("NormalizedSoftmaxLoss(T=0.05) -> normface(s=20)", port(norm, pml_norm), pml_norm, x, y))

    # SphereFace / L-Softmax: integer margin m; pml has no λ annealing (veriloss's default anneals from 1000 to 5),
    # so switch it off for equal values; pml's scale must stay 1 (veriloss has none)
    small = 0.2 * x  # moderate ‖x‖·ψ logits
    plain = {"m": 4, "lambda_base": 0.0, "lambda_min": 0.0}
    pml_sphere = losses.SphereFaceLoss(num_classes=K, embedding_size=D, margin=4)
    sphere = heads.create("sphereface", D, K, **plain)
    ok.append(
        compare("SphereFaceLoss(margin=4) -> sphereface(m=4, λ=0)", port(sphere, pml_sphere), pml_sphere, small, y)
    )
    pml_ls = losses.LargeMarginSoftmaxLoss(num_classes=K, embedding_size=D, margin=4)
    ls = heads.create("lsoftmax", D, K, **plain)
    ok.append(compare("LargeMarginSoftmaxLoss(margin=4) -> lsoftmax(m=4, λ=0)", port(ls, pml_ls), pml_ls, small, y))

    # TripletMarginLoss: veriloss uses squared distances of L2-normalized embeddings and a plain mean; pml's
    # defaults are unsquared distances and the mean of the non-zero triplets. Configured alike, they are equal.
    sq = distances.LpDistance(normalize_embeddings=True, p=2, power=2)
    pml_tri = losses.TripletMarginLoss(margin=0.2, distance=sq, reducer=reducers.MeanReducer())
    ok.append(
        compare(
            "TripletMarginLoss -> triplet(mining='all')",
            pairwise.create("triplet", margin=0.2, mining="all"),
            pml_tri,
            x,
            y,
        )
    )
    hard = miners.BatchHardMiner(distance=distances.LpDistance(normalize_embeddings=True, p=2, power=2))
    ok.append(
        compare(
            "+ BatchHardMiner -> triplet(mining='batch-hard')",
            pairwise.create("triplet", margin=0.2, mining="batch-hard"),
            pml_tri,
            x,
            y,
            miner=hard,
        )
    )

    if not all(ok):
        print(f"FAILED: {ok.count(False)} of {len(ok)} checks disagree")
        return 1
    print(f"OK: {len(ok)} checks, pytorch-metric-learning and veriloss agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
