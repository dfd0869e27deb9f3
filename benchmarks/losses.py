"""Forward+backward cost of every head, and of the α loss against F.cross_entropy and entmax, as ratios.

    python benchmarks/losses.py                 # full run: K ∈ {1e3, 1e4, 1e5}, d = 512, B = 256
    python benchmarks/losses.py --quick         # smaller K, fewer repeats (a smoke run)
    python benchmarks/losses.py --targets       # only the α solver's targets at K = 1e5 (issue 16, item 3)
    python benchmarks/losses.py --compile       # only each head eager vs torch.compile (inductor), K = 2e4

The last section (always printed; alone with ``--targets``) checks the α solver at wide supports against its
targets, forward+backward, best of ``--repeats`` (at least 5) after a warm-up: the α loss ÷ F.cross_entropy on the
same B × K = 1e5 logits for α ∈ {1.25, 1.5, 2} on ``normal`` logits (N(0, 1)) and ``wide`` ones (s·cos θ with s = 8
at a fresh init: random embeddings and prototypes, cosines within a few 1/√d of each other: a support of ~18% of
the classes at α = 1.25), target ≤ 1.5×; and the α head (``heads.create("alpha", d, K, alpha=1.25, s=8.0)``, fresh)
÷ pytorch-metric-learning's ArcFaceLoss on the same embeddings and labels, target ≤ 1.5×.

Times are medians over repeats after a warm-up, measured in this process; every ratio is against a reference measured
in the same run (F.cross_entropy on the same logits; the softmax head at the same K), so machine noise cancels.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

from veriloss import heads
from veriloss.functional import alpha_divergence_loss
from veriloss.functional.alpha import alpha_divergence_loss_with_stats

try:  # test-only dependency, the reference of the issue
    from entmax import Entmax15Loss, EntmaxBisectLoss, SparsemaxLoss
except ImportError:  # pragma: no cover
    EntmaxBisectLoss = Entmax15Loss = SparsemaxLoss = None

try:  # test-only dependency, the reference of the α head's target
    from pytorch_metric_learning.losses import ArcFaceLoss
except ImportError:  # pragma: no cover
    ArcFaceLoss = None


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def module_step(module, x, y, call=None):
    """Forward + backward of ``call`` (default: ``module`` itself; e.g. its compiled form) on a fresh leaf copy of the
    embeddings ``x``, the module's gradients cleared first."""
    call = module if call is None else call

    def run():
        xx = x.detach().requires_grad_(True)
        module.zero_grad(set_to_none=True)
        call(xx, y).backward()

    return run


def logits_step(loss_fn, z, y):
    def run():
        zz = z.detach().requires_grad_(True)
        loss_fn(zz, y).backward()

    return run


def regime_logits(regime: str, B: int, K: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``normal``: z ~ N(0, 1) (entmax's own benchmarks); ``cosine``: s·cos θ with s = 30, non-target cosines
    uniform in [−0.3, 0.3] and the target 0.4 higher: a head early in training, where supports are widest
    (hundreds to thousands of classes at α = 1.25)."""
    torch.manual_seed(0)
    y = torch.randint(0, K, (B,))
    if regime == "normal":
        return torch.randn(B, K), y
    z = (torch.rand(B, K) * 2 - 1) * 0.3 * 30
    z[torch.arange(B), y] += 0.4 * 30
    return z, y


def bench_alpha_vs_references(B: int, K: int, repeats: int, regime: str) -> list[tuple]:
    z, y = regime_logits(regime, B, K)
    rows = []
    ce = median_time(logits_step(lambda t, yy: F.cross_entropy(t, yy), z, y), repeats)
    rows.append(("F.cross_entropy", "-", ce, 1.0))
    for alpha in (1.25, 1.5, 2.0):
        t = median_time(logits_step(lambda tt, yy, a=alpha: alpha_divergence_loss(tt, yy, a), z, y), repeats)
        rows.append(("veriloss alpha_divergence_loss", alpha, t, t / ce))
    if EntmaxBisectLoss is not None:
        for alpha in (1.25, 1.5, 2.0):
            loss = EntmaxBisectLoss(alpha=alpha)
            t = median_time(logits_step(lambda tt, yy, f=loss: f(tt, yy).mean(), z, y), max(1, repeats // 3))
            rows.append(("entmax EntmaxBisectLoss", alpha, t, t / ce))
        t = median_time(logits_step(lambda tt, yy: Entmax15Loss()(tt, yy).mean(), z, y), repeats)
        rows.append(("entmax Entmax15Loss (sort)", 1.5, t, t / ce))
        t = median_time(logits_step(lambda tt, yy: SparsemaxLoss()(tt, yy).mean(), z, y), repeats)
        rows.append(("entmax SparsemaxLoss (sort)", 2.0, t, t / ce))
    return rows


def best_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def wide_logits(B: int, K: int, d: int, s: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``s·cos θ`` of random embeddings and random prototypes (a head at a fresh init) and random labels."""
    torch.manual_seed(0)
    x = F.normalize(torch.randn(B, d), dim=1)
    w = F.normalize(torch.randn(K, d), dim=1)
    return s * (x @ w.t()), torch.randint(0, K, (B,))


def bench_alpha_targets(B: int, d: int, K: int, repeats: int) -> list[tuple]:
    """(what, α, logits, ours (s), reference (s), ratio, target, mean support) for the solver's targets."""
    rows = []
    torch.manual_seed(0)
    regimes = {"normal": (torch.randn(B, K), torch.randint(0, K, (B,))), "wide": wide_logits(B, K, d)}
    for regime, (z, y) in regimes.items():
        for alpha in (1.25, 1.5, 2.0):
            # the reference again next to each measurement: the ratio of two best times taken side by side
            ce = best_time(logits_step(lambda t, yy: F.cross_entropy(t, yy), z, y), repeats)
            ours = best_time(logits_step(lambda t, yy, a=alpha: alpha_divergence_loss(t, yy, a), z, y), repeats)
            support = float(alpha_divergence_loss_with_stats(z, y, alpha)[1]["support_size"])
            rows.append(("α loss ÷ F.cross_entropy", alpha, regime, ours, ce, ours / ce, 1.5, support))
    if ArcFaceLoss is not None:
        torch.manual_seed(0)
        x = torch.randn(B, d)
        y = torch.randint(0, K, (B,))
        head = heads.create("alpha", d, K, alpha=1.25, s=8.0)
        arc = ArcFaceLoss(num_classes=K, embedding_size=d)

        with torch.no_grad():  # the α head stays at its fresh init: its support is measured once, then timed
            head(x, y)
        support = head.statistics().get("support_size")
        ref = best_time(module_step(arc, x, y), repeats)
        ours = best_time(module_step(head, x, y), repeats)
        rows.append(("α head ÷ pml ArcFaceLoss", 1.25, "fresh init", ours, ref, ours / ref, 1.5, support))
    return rows


def print_alpha_targets(B: int, d: int, K: int, repeats: int) -> None:
    print(
        f"\n## α solver targets: forward+backward, B = {B}, K = {K}, d = {d}, best of {repeats}"
        " (ratio to a reference timed in the same run)\n"
    )
    print("| measure | α | logits | ours (ms) | reference (ms) | ratio | target | met | mean support |")
    print("|---|---|---|---|---|---|---|---|---|")
    for what, alpha, regime, ours, ref, ratio, target, support in bench_alpha_targets(B, d, K, repeats):
        sup = "" if support is None else f"{support:.0f}"
        met = "yes" if ratio <= target else "NO"
        print(
            f"| {what} | {alpha} | {regime} | {ours * 1e3:.1f} | {ref * 1e3:.1f} | {ratio:.2f} | ≤ {target} | {met} |"
            f" {sup} |",
            flush=True,
        )


def bench_heads(B: int, d: int, K: int, repeats: int) -> list[tuple]:
    torch.manual_seed(0)
    x = torch.randn(B, d)
    y = torch.randint(0, K, (B,))
    rows = []
    reference = None
    for name in ["softmax", *[n for n in heads.available() if n != "softmax"]]:
        head = heads.create(name, d, K)
        head.train()

        t = median_time(module_step(head, x, y), repeats)
        reference = reference or t
        stats = head.statistics()
        rows.append((name, K, t, t / reference, stats.get("support_size")))
        del head
    return rows


def bench_compiled_heads(B: int, d: int, K: int, repeats: int) -> list[tuple]:
    """(head, eager (s), compiled (s), compiled ÷ eager, first two compiled steps (s)) for every head, forward+backward
    under ``unchecked()`` as the trainer runs it, best of ``repeats`` interleaved rounds; ``torch.compile`` with its
    default backend (inductor: C++ code generation on the CPU)."""
    from veriloss.heads import unchecked

    torch.manual_seed(0)
    x = torch.randn(B, d)
    y = torch.randint(0, K, (B,))
    rows = []
    for name in heads.available():
        head = heads.create(name, d, K)
        steps = {"eager": module_step(head, x, y), "compiled": module_step(head, x, y, torch.compile(head))}
        torch._dynamo.reset()
        with unchecked():
            t = time.perf_counter()
            steps["compiled"]()
            steps["compiled"]()
            first = time.perf_counter() - t
            best = {"eager": math.inf, "compiled": math.inf}
            for _ in range(repeats):
                for kind, run in steps.items():
                    t = time.perf_counter()
                    run()
                    best[kind] = min(best[kind], time.perf_counter() - t)
        rows.append((name, best["eager"], best["compiled"], best["compiled"] / best["eager"], first))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="K up to 1e4 and fewer repeats")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--targets", action="store_true", help="only the α solver's targets at K = 1e5")
    parser.add_argument("--compile", action="store_true", help="only each head eager vs torch.compile, K = 2e4")
    args = parser.parse_args()
    sizes = (1000, 10_000) if args.quick else (1000, 10_000, 100_000)
    repeats = 2 if args.quick else args.repeats
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; B = {args.batch}, d = {args.dim}")
    if args.targets:
        print_alpha_targets(args.batch, args.dim, 100_000, max(5, args.repeats))
        return
    if args.compile:
        K = 20_000
        print(f"\n## Every head eager vs torch.compile (inductor): forward+backward, K = {K}, best of {args.repeats}\n")
        print("| head | eager (ms) | compiled (ms) | compiled ÷ eager | first two compiled steps (s) |")
        print("|---|---|---|---|---|")
        for name, eager, compiled, ratio, first in bench_compiled_heads(args.batch, args.dim, K, args.repeats):
            print(f"| {name} | {eager * 1e3:.1f} | {compiled * 1e3:.1f} | {ratio:.2f} | {first:.1f} |", flush=True)
        return

    K = sizes[-1]
    print(f"\n## α loss vs references: forward+backward on the same B = {args.batch} × K = {K} logits\n")
    print("| logits | loss | α | time (ms) | × F.cross_entropy | mean support |")
    print("|---|---|---|---|---|---|")
    for regime in ("normal", "cosine"):
        for name, alpha, t, ratio in bench_alpha_vs_references(args.batch, K, repeats, regime):
            support = ""
            if name.startswith("veriloss"):
                z, y = regime_logits(regime, args.batch, K)
                support = f"{float(alpha_divergence_loss_with_stats(z, y, alpha)[1]['support_size']):.0f}"
            print(f"| {regime} | {name} | {alpha} | {t * 1e3:.1f} | {ratio:.2f} | {support} |", flush=True)

    print(
        f"\n## Every head: forward+backward, B = {args.batch}, d = {args.dim}"
        " (ratio to the softmax head at the same K)\n"
    )
    print("| head | K | time (ms) | × softmax head | α support |")
    print("|---|---|---|---|---|")
    for K in sizes:
        for name, k, t, ratio, support in bench_heads(args.batch, args.dim, K, max(2, repeats // 2)):
            sup = "" if support is None or name in ("softmax",) else f"{support:.1f}"
            print(f"| {name} | {k:.0e} | {t * 1e3:.1f} | {ratio:.2f} | {sup} |", flush=True)

    print_alpha_targets(args.batch, args.dim, sizes[-1], max(2, repeats) if args.quick else max(5, repeats))


if __name__ == "__main__":
    main()
