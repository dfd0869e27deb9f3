"""Subject-level bootstrap on real all-pairs embeddings: the fast exact route against brute-force resampling.

    python benchmarks/bootstrap.py                      # 1,000 replicates, Omniglot CosFace embeddings (cached)
    python benchmarks/bootstrap.py --replicates 200 --brute 2 --embeddings PATH.npy

The embeddings default to the cache that benchmarks/metrics.py makes (/tmp/veriloss-bench/omniglot_cosface150/
emb.npy with emb.labels.npy beside it: 13,180 Omniglot evaluation images, 659 identities, 8.7e7 impostor pairs;
see that script's docstring for the two commands that make it). It times, at ``--threads`` (default 2):

* ``veriloss.protocols.bootstrap_all_pairs`` with ``--replicates`` replicates (TAR@FAR at 1e-6…1e-2, EER, minDCF
  at p = 0.01 and 0.05; scoring, the one-off reduction and every replicate included), and
* brute force: every pair scored once (not timed), then per replicate the scores repeated by their multiplicities
  (c_i for genuine, c_i·c_j for impostor pairs) and the exact metric functions called on them. Only ``--brute``
  replicates are run (each takes seconds); their mean time × the replicate count is the extrapolated total. Their
  values are checked equal to the fast route's replicates (exactness).

It prints both totals and their ratio.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from veriloss.metrics.bootstrap import _brute_force_metrics, subject_multiplicities
from veriloss.protocols import bootstrap_all_pairs
from veriloss.protocols.all_pairs import _prepared

FARS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
P_TARGETS = (0.01, 0.05)
CACHE = Path("/tmp/veriloss-bench/omniglot_cosface150/emb.npy")


def _all_scores(x: torch.Tensor, y: torch.Tensor, rows: int = 1024):
    """Every unordered pair's score with its identity indices (upper triangle, in row blocks)."""
    e, ys, _ = _prepared(x, y)
    _, yi = np.unique(ys, return_inverse=True)
    yi = yi.reshape(-1)
    n = e.shape[0]
    sc, a, b = [], [], []
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        s = (e[i0:i1] @ e.T).numpy()
        r, c = np.nonzero(np.arange(n)[None, :] > np.arange(i0, i1)[:, None])
        sc.append(s[r, c])
        a.append(yi[i0 + r])
        b.append(yi[c])
    sc, a, b = np.concatenate(sc), np.concatenate(a), np.concatenate(b)
    gm = a == b
    return sc[gm], a[gm], sc[~gm], a[~gm], b[~gm]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embeddings", type=Path, default=CACHE)
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--brute", type=int, default=2, help="brute-force replicates actually run [2]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = args.embeddings
    x = torch.from_numpy(np.load(path))
    y = torch.from_numpy(np.load(path.with_name(path.name[: -len(".npy")] + ".labels.npy")))
    print(f"{path}: {x.shape[0]:,} embeddings, {len(torch.unique(y))} identities, threads {args.threads}")

    t0 = time.perf_counter()
    res = bootstrap_all_pairs(x, y, FARS, P_TARGETS, replicates=args.replicates, seed=args.seed)
    fast = time.perf_counter() - t0
    print(res)
    print(f"fast exact route: {fast:.1f} s for {args.replicates} replicates ({res.n_impostor:,} impostor pairs)")

    g, gi, imp, ia, ib = _all_scores(x, y)
    cs = subject_multiplicities(res.identities.size, args.replicates, args.seed)
    times, mism = [], 0
    for r in range(args.brute):
        t0 = time.perf_counter()
        ref = _brute_force_metrics(g, gi, imp, ia, ib, cs[r], FARS, P_TARGETS)
        times.append(time.perf_counter() - t0)
        for k, v in ref.items():
            got = res.metrics[k].replicates[r]
            mism += not (got == v or (np.isnan(got) and np.isnan(v)))
    per = float(np.mean(times))
    brute = per * args.replicates
    print(
        f"brute force: {per:.2f} s per replicate (mean of {args.brute} run), extrapolated {brute:.0f} s for "
        f"{args.replicates}; values equal to the fast route's: {'yes' if mism == 0 else f'NO ({mism} differ)'}"
    )
    print(f"ratio brute/fast: {brute / fast:.1f}×")


if __name__ == "__main__":
    main()
