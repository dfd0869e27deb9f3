"""``veriloss demo``: train a small embedding network with several losses on synthetic identities, then evaluate
all pairs of unseen identities (open set) and print the metrics table.

The data is generated here, deterministically from a seed: each identity is a point in a hidden 16-d latent space,
each sample that point plus strong intra-class noise, observed through a fixed random non-linear "sensor"
(64 features). Training and test identities are disjoint. Until the trainer lands this stands in for the real demo.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from .. import heads
from ..heads.alpha import normalized_class_means
from ..protocols import all_pairs

#: (name, parameters): one recipe, different losses
DEMO_LOSSES = (
    ("softmax", {}),
    ("normface", {"s": 16.0}),
    ("cosface", {"s": 30.0, "m": 0.35}),
    ("arcface", {"s": 30.0, "m": 0.5}),
    ("alpha", {"alpha": 1.5, "s": 8.0}),
    ("qmargin", {"alpha": 1.5, "s": 16.0, "m": 0.35}),
    ("a3m", {"alpha": 1.5, "s": 16.0, "m": 0.2}),
    ("a3m-i", {"alpha": 1.5, "s": 16.0, "m": 0.2}),
)
FARS = (1e-3, 1e-4, 1e-5, 1e-6)


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="train and evaluate several losses on synthetic identities (about a minute)")
    p.add_argument("--train-identities", type=int, default=500)
    p.add_argument("--test-identities", type=int, default=300)
    p.add_argument("--samples", type=int, default=20, help="samples per identity")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--losses", default=",".join(n for n, _ in DEMO_LOSSES), help="comma-separated subset")
    p.add_argument("--out", type=Path, default=Path("reports/demo"), help="where metrics.md and metrics.json go")
    p.set_defaults(run=run)


def synthetic_identities(
    n_ids: int, per_id: int, seed: int, sensor_seed: int = 1234
) -> tuple[torch.Tensor, torch.Tensor]:
    """Observations (n_ids·per_id, 64) and labels of ``n_ids`` random identities; the sensor is shared by all."""
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(n_ids, 1, 16, generator=g) + 0.8 * torch.randn(n_ids, per_id, 16, generator=g)
    s = torch.Generator().manual_seed(sensor_seed)
    a1 = torch.randn(16, 64, generator=s) / 4.0
    a2 = torch.randn(64, 64, generator=s) / 8.0
    x = torch.tanh(latent @ a1 * 1.5) @ a2 + 0.05 * torch.randn(n_ids, per_id, 64, generator=g)
    y = torch.arange(n_ids).repeat_interleave(per_id)
    return x.reshape(-1, 64), y


def embedding_net(dim_in: int = 64, dim_out: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.Linear(dim_in, 256), nn.BatchNorm1d(256), nn.ReLU(),
        nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(),
        nn.Linear(256, dim_out), nn.BatchNorm1d(dim_out),
    )  # fmt: skip


def train_one(name, params, x, y, num_classes, steps, seed) -> tuple[nn.Module, dict]:
    torch.manual_seed(seed)
    net = embedding_net()
    head = heads.create(name, 64, num_classes, **params)
    opt = torch.optim.SGD(
        [{"params": net.parameters()}, {"params": head.parameters()}], lr=0.1, momentum=0.9, weight_decay=5e-4
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)))
    g = torch.Generator().manual_seed(seed)
    stats_sum: dict[str, float] = {}
    for step in range(steps):
        if name == "a3m-i" and step == steps // 4:
            net.eval()
            with torch.no_grad():
                means = normalized_class_means(net(x), y, num_classes)
            net.train()
            head.reinitialize_prototypes(means, opt)
        idx = torch.randint(0, x.shape[0], (256,), generator=g)
        loss = head(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step >= steps - 50:  # statistics over the last 50 steps
            for k, v in head.statistics().items():
                stats_sum[k] = stats_sum.get(k, 0.0) + v / 50
    return net, stats_sum


def run(args: argparse.Namespace) -> int:
    chosen = [s.strip() for s in args.losses.split(",") if s.strip()]
    table = dict(DEMO_LOSSES)
    unknown = [n for n in chosen if n not in table]
    if unknown:
        raise ValueError(f"--losses: unknown demo loss(es) {', '.join(unknown)}; choose from {', '.join(table)}")
    x_tr, y_tr = synthetic_identities(args.train_identities, args.samples, seed=args.seed)
    x_te, y_te = synthetic_identities(args.test_identities, args.samples, seed=args.seed + 10_000)
    print(
        f"veriloss demo: {args.train_identities} training identities, {args.test_identities} unseen test identities, "
        f"{args.samples} samples each; {args.steps} steps per loss\n"
    )
    rows = []
    for name in chosen:
        t0 = time.perf_counter()
        net, stats = train_one(name, table[name], x_tr, y_tr, args.train_identities, args.steps, args.seed)
        net.eval()
        with torch.no_grad():
            emb = net(x_te)
        result = all_pairs(emb, y_te, far=FARS)
        rows.append(
            {
                "loss": name,
                "params": table[name],
                "train_accuracy": stats.get("accuracy"),
                "support_size": stats.get("support_size"),
                "py_zero": stats.get("py_zero"),
                "eer": float(result.eer),
                "tar": {str(t.far_target): (float(t) if t.measurable else None) for t in result.tar},
                "n_genuine": result.n_genuine,
                "n_impostor": result.n_impostor,
                "seconds": time.perf_counter() - t0,
            }
        )
        print(f"  {name:<9} done in {rows[-1]['seconds']:.1f} s", flush=True)
    md = _markdown(rows)
    print("\n" + md)
    args.out.mkdir(parents=True, exist_ok=True)
    _write_atomic(args.out / "metrics.md", md + "\n")
    _write_atomic(args.out / "metrics.json", json.dumps(rows, indent=2) + "\n")
    print(f"\nwrote {args.out / 'metrics.md'} and {args.out / 'metrics.json'}")
    return 0


def _markdown(rows: list[dict]) -> str:
    r0 = rows[0]
    head = f"{r0['n_genuine']:,} genuine and {r0['n_impostor']:,} impostor pairs (all pairs of unseen identities)\n\n"
    cols = ["loss", "train acc %", "EER %", *[f"TAR@{f:.0e} %" for f in FARS], "α support", "p_y=0 %", "time s"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        tars = [r["tar"][str(f)] for f in FARS]
        cells = [
            r["loss"],
            f"{100 * r['train_accuracy']:.1f}",
            f"{100 * r['eer']:.2f}",
            *("n/a" if t is None else f"{100 * t:.2f}" for t in tars),
            ""
            if r["support_size"] is None or r["loss"] not in ("alpha", "qmargin", "a3m", "a3m-i")
            else f"{r['support_size']:.1f}",
            "" if r["py_zero"] is None else f"{100 * r['py_zero']:.1f}",
            f"{r['seconds']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
