"""Training-step cost of a classification head at K = 1e5 … 4e6 identities: time and peak memory, one subprocess each.

    python benchmarks/scale.py                          # K ∈ {1e5, 1e6, 2e6} for every head, then 4e6 (streaming)
    python benchmarks/scale.py --k 1e5 --heads arcface partialfc --steps 3 --markdown
    python benchmarks/scale.py --k 2000 --steps 1       # a smoke run (~5 s per head: torch import)

One step = forward + backward + optimizer step on a fresh batch (B = 256 embeddings x ~ N(0, 1), d = 512, float32,
``requires_grad`` so the gradient to x is computed too; labels uniform in [0, K), new ones every step: no batch is
repeated). Heads (s, m, α stated here once; lr = 0.1, momentum μ = 0.9, weight decay λ = 5e-4 everywhere):

* ``arcface``: dense ArcFace, ``veriloss.heads.create("arcface", d, K, s=64, m=0.5)``, ``torch.optim.SGD``.
* ``qmargin``: dense α head, Q-Margin with α = 1.5, s = 16, m = 0.35 (κ from m), ``torch.optim.SGD``.
* ``qmargin-stream``: the same Q-Margin head with ``chunk_size`` (default 65536; :mod:`veriloss.heads.alpha.streaming`):
  no B×K logits, a sparse COO gradient for W, trained with :class:`veriloss.train.sparse_optim.LazySGD` (no
  :meth:`~veriloss.train.sparse_optim.LazySGD.flush` per step: untouched rows catch up lazily when next touched).
* ``partialfc``: a Partial FC-style sampled head (An et al. 2021, "Partial FC: training 10 million identities on a
  single machine", :class:`SampledArcFace`, for comparison only): every positive class of the batch plus a uniform
  random 10 % of the negative classes, ArcFace (s = 64, m = 0.5) on those prototypes only; W and its momentum are
  plain K×d tensors and SGD (momentum, weight decay) updates the sampled rows only, the other rows and their momentum
  staying frozen, as insightface's Partial FC does (it swaps the sampled rows and their momentum into the optimizer).

Time: the median of ``--steps`` timed steps after ``--warmup`` warm-up steps, and its ratio to dense ArcFace at the same
K (measured in the same run). Memory: each configuration runs in its own process (``--one HEAD:K``), whose peak RSS is
``resource.getrusage(RUSAGE_SELF).ru_maxrss``. The process first imports everything and runs two steps of the same head
at K = 1000 (libraries, kernels, thread pools), returns the freed heap to the OS (``malloc_trim``), resets the peak
counter (``/proc/self/clear_refs``) and records its RSS as the baseline (instead of a separate baseline process, which
would pay the same imports); "W+state" is the exact size of the head's parameters plus the optimizer state (momentum
buffers; LazySGD's per-row step counters; Partial FC's momentum bank), and "extra" = peak − baseline − W+state is what
the step itself needs on top of them, shown in MiB and as % of W+state. The issue's memory target (streaming α at K =
1e6: peak ≤ W + optimizer state + 10 %) is checked as extra ≤ 10 % of W+state.

Memory safety: before a configuration is started its peak is predicted (:func:`predicted_peak`, bytes per class
counted from the code and checked against the K = 1e5 measurements); if it exceeds ``--mem-limit-gb`` (default 20)
or the memory available now, the row says "OOM (predicted X GB)" and nothing is allocated. Each child also sets
``RLIMIT_AS`` to the limit, so an underestimate fails that child with an allocation error, never the machine.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from veriloss import heads
from veriloss.functional.margins import arcface_margin
from veriloss.heads.base import cosine
from veriloss.train.sparse_optim import LazySGD

HEADS = ("arcface", "qmargin", "qmargin-stream", "partialfc")
DEFAULT_K = (100_000, 1_000_000, 2_000_000)
STREAM_ONLY_K = (4_000_000,)
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4
ARCFACE = {"s": 64.0, "m": 0.5}
QMARGIN = {"alpha": 1.5, "s": 16.0, "m": 0.35}
SAMPLE_RATE = 0.1
MiB = 2**20
GB = 1e9


# ------------------------------------------------------------------------------------------------ Partial FC
class SampledArcFace:
    """Partial FC-style sampled ArcFace (An et al. 2021), for comparison only (not part of veriloss).

    Each step samples ``S`` = every positive class of the batch plus ``round(r·(K − |P|))`` negatives drawn uniformly
    without replacement (r = ``sample_rate``; insightface draws |S| = r·K in total, positives included: the same up to
    |P| ≤ B classes), by insightface's trick: uniform scores, the positives' set to 2, top-|S|. The loss is ArcFace on
    the sampled prototypes, ``mean_i −log softmax(z_i)[y_i]`` with ``z_ij = s·cos θ_ij`` (j ∈ S) and the target
    ``s·cos(θ_iy + m)`` (veriloss's ``arcface_margin``, fallback policy). Only the rows in S get a gradient, and the
    update is ``torch.optim.SGD``'s (no dampening) on those rows: ``b ← μ b + g + λ w``, ``w ← w − η b``; rows outside
    S keep their weights and their momentum (no decay, no drift), as Partial FC's memory bank.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        s: float = 64.0,
        m: float = 0.5,
        sample_rate: float = SAMPLE_RATE,
        lr: float = LR,
        momentum: float = MOMENTUM,
        weight_decay: float = WEIGHT_DECAY,
        generator: torch.Generator | None = None,
    ):
        self.s, self.m, self.sample_rate = s, m, sample_rate
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.generator = generator
        self.weight = torch.empty(num_classes, embedding_dim)
        torch.nn.init.normal_(self.weight, std=1.0 / math.sqrt(embedding_dim))  # as veriloss.heads.base.Head
        self.momentum_buffer = torch.zeros_like(self.weight)

    def sample(self, y: torch.Tensor) -> torch.Tensor:
        """The sampled classes S (sorted): all of ``unique(y)`` and a uniform ``sample_rate`` of the others."""
        K = self.weight.shape[0]
        positives = torch.unique(y)
        n = positives.numel() + round(self.sample_rate * (K - positives.numel()))
        score = torch.rand(K, generator=self.generator)
        score[positives] = 2.0
        return torch.topk(score, n, sorted=False).indices.sort().values

    def loss(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, sub_weight: torch.Tensor) -> torch.Tensor:
        """ArcFace cross-entropy of ``x`` against the prototypes ``sub_weight`` = W[index] (labels remapped)."""
        local = torch.searchsorted(index, y)
        cos = cosine(x, sub_weight.to(x.dtype))
        target = arcface_margin(cos.gather(1, local[:, None]), self.m)
        return F.cross_entropy(self.s * cos.scatter(1, local[:, None], target), local)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Sample, forward, backward (x gets its gradient), SGD on the sampled rows; returns the loss (detached)."""
        index = self.sample(y)
        sub = self.weight[index].requires_grad_(True)
        loss = self.loss(x, y, index, sub)
        loss.backward()
        with torch.no_grad():
            buf = self.momentum_buffer[index].mul_(self.momentum).add_(sub.grad).add_(sub, alpha=self.weight_decay)
            self.weight[index] = sub.sub_(buf, alpha=self.lr)
            self.momentum_buffer[index] = buf
        return loss.detach()

    def state_bytes(self) -> int:
        return self.weight.nbytes + self.momentum_buffer.nbytes


# ------------------------------------------------------------------------------------------------ configurations
class Trainer(NamedTuple):
    """One configuration: ``step(x, y)`` does forward + backward + optimizer step and returns the loss;
    ``state_bytes()`` is the size of W and the optimizer state; ``statistics()`` the head's last statistics."""

    step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    state_bytes: Callable[[], int]
    statistics: Callable[[], dict]


def _optimizer_state_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(v.nbytes for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor))


def build(head: str, K: int, d: int, chunk_size: int = 65536, seed: int = 0) -> Trainer:
    """The model and optimizer of configuration ``head`` at K classes (see the module docstring)."""
    torch.manual_seed(seed)
    if head == "partialfc":
        sampled = SampledArcFace(d, K, **ARCFACE, generator=torch.Generator().manual_seed(seed + 1))
        return Trainer(sampled.step, sampled.state_bytes, dict)
    if head == "arcface":
        module = heads.create("arcface", d, K, **ARCFACE)
    elif head in ("qmargin", "qmargin-stream"):
        module = heads.create("qmargin", d, K, **QMARGIN, chunk_size=chunk_size if head == "qmargin-stream" else None)
    else:
        raise ValueError(f"unknown head {head!r}; choose from {', '.join(HEADS)}")
    module.train()
    if head == "qmargin-stream":
        opt = LazySGD(module.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    else:
        opt = torch.optim.SGD(module.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = module(x, y)
        loss.backward()
        opt.step()
        return loss.detach()

    def state_bytes() -> int:
        return sum(p.nbytes for p in module.parameters()) + _optimizer_state_bytes(opt)

    return Trainer(step, state_bytes, module.statistics)


def batch(gen: torch.Generator, B: int, d: int, K: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random normal embeddings (B×d, requires_grad) and uniform labels in [0, K)."""
    x = torch.randn(B, d, generator=gen).requires_grad_(True)
    return x, torch.randint(0, K, (B,), generator=gen)


def predicted_peak(
    head: str, K: int, d: int = 512, B: int = 256, chunk_size: int = 65536, base: float = 0.5 * 2**30
) -> float:
    """Predicted peak RSS in bytes: ``base`` + W and optimizer state + the step's temporaries, counted per class.
     Dense heads hold at their peak (backward, then SGD's ``grad + λ w``) W, momentum, ∂W, normalize(W) and the
    normalization's K×d temporaries (≈ 6 K×d float32 arrays in all) and about 4 B×K float32 logit-sized arrays (ArcFace
    and the dense α head measured alike). The streaming head holds W and momentum (2 K×d) and LazySGD's per-row step
    counter (8 bytes per class), plus temporaries that do not grow with K: per chunk of C prototypes ≈ 4 B×C float32,
    and 512 MiB for the rest (the backward's gathered B×(r+1)×d rows, r the widest support of the batch, with their
    normalization and gradient; the sparse gradient; LazySGD's row gathers): 450–580 MiB were measured in all at K = 1e5
    and 1e6 with C from 8192 to 65536, for random embeddings (mean support ≈ 60–80 classes). Partial FC holds W and its
    momentum bank (2 K×d) plus, for the sampled 10 %: the gathered rows, their gradient, momentum and normalization (≈ 5
    × 0.1 K×d) and ≈ 4 × 0.1 B×K. The coefficients were checked against measurements at K = 1e5 (and 1e6 for the
    streaming head); the table prints both.
    """
    kd, bk = 4.0 * K * d, 4.0 * B * K
    if head in ("arcface", "qmargin"):
        extra = 6 * kd + 4 * bk
    elif head == "qmargin-stream":
        C = min(K, chunk_size)
        extra = 2 * kd + 8.0 * K + 4 * 4.0 * B * C + 512 * MiB
    elif head == "partialfc":
        extra = 2 * kd + SAMPLE_RATE * (5 * kd + 4 * bk) + 4.0 * K
    else:
        raise ValueError(f"unknown head {head!r}")
    return base + extra


# ------------------------------------------------------------------------------------------------ measurement
def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def _trim_and_reset_peak() -> None:
    """Return the warm-up's freed heap to the OS (glibc ``malloc_trim``) and reset the peak-RSS counter
    (``/proc/self/clear_refs`` = 5, which ``ru_maxrss`` follows), so the peak is that of the measured steps."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # pragma: no cover - not glibc
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # pragma: no cover - not Linux: the peak then includes the warm-up (small)
        pass


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def run_one(
    head: str,
    K: int,
    steps: int = 3,
    warmup: int = 1,
    d: int = 512,
    B: int = 256,
    chunk_size: int = 65536,
    seed: int = 0,
) -> dict:
    """Measure one configuration in this process: median step time, peak RSS, baseline RSS, W+state, statistics."""
    # warm the code paths (imports, kernels, thread pools) on a tiny instance before the baseline RSS is taken
    tiny = build(head, 1000, d, chunk_size=min(chunk_size, 512), seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    for _ in range(2):
        tiny.step(*batch(g, B, d, 1000))
    del tiny
    gc.collect()
    _trim_and_reset_peak()
    baseline = _rss()

    trainer = build(head, K, d, chunk_size=chunk_size, seed=seed)
    # batches from their own generator, seeded apart from the global one that drew W (the same seed would make the
    # first embeddings equal to the first prototypes: cos = 1)
    gen = torch.Generator().manual_seed(seed + 200)
    times, losses = [], []
    for i in range(warmup + steps):
        x, y = batch(gen, B, d, K)
        t = time.perf_counter()
        loss = trainer.step(x, y)
        elapsed = time.perf_counter() - t
        if not bool(torch.isfinite(loss)) or x.grad is None:
            raise RuntimeError(f"{head} at K={K}: step {i} gave loss {float(loss)} / no gradient to x")
        if i >= warmup:
            times.append(elapsed)
            losses.append(float(loss))
    stats = trainer.statistics()
    state = trainer.state_bytes()
    peak = _peak_rss()
    return {
        "head": head,
        "K": K,
        "time": statistics.median(times),
        "times": times,
        "loss": statistics.median(losses),
        "losses": losses,
        "peak": peak,
        "baseline": baseline,
        "state": state,
        "extra": peak - baseline - state,
        "predicted": predicted_peak(head, K, d, B, chunk_size),
        "support_size": stats.get("support_size"),
        "threads": torch.get_num_threads(),
    }


def _limit_address_space(limit_bytes: float) -> None:
    """RLIMIT_AS ≥ RSS: an allocation past the limit raises in this process instead of exhausting the machine."""
    lim = int(limit_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))


def _available_bytes() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    return math.inf


def plan(head: str, K: int, mem_limit: float, d: int = 512, B: int = 256, chunk_size: int = 65536) -> str | None:
    """None when the configuration may run, else the reason not to: ``"OOM (predicted X GB)"``."""
    pred = predicted_peak(head, K, d, B, chunk_size)
    room = min(mem_limit, _available_bytes() - 1 * 2**30)
    return f"OOM (predicted {pred / GB:.1f} GB)" if pred > room else None


def run_config(head: str, K: int, args: argparse.Namespace) -> dict:
    """Run ``--one HEAD:K`` in a subprocess (or report the predicted OOM without starting it)."""
    mem_limit = args.mem_limit_gb * GB
    reason = plan(head, K, mem_limit, args.dim, args.batch, args.chunk_size)
    row = {"head": head, "K": K, "predicted": predicted_peak(head, K, args.dim, args.batch, args.chunk_size)}
    if reason:
        return {**row, "error": reason}
    cmd = [sys.executable, os.path.abspath(__file__), "--one", f"{head}:{K}", "--steps", str(args.steps)]
    cmd += ["--warmup", str(args.warmup), "--threads", str(args.threads), "--chunk-size", str(args.chunk_size)]
    cmd += ["--batch", str(args.batch), "--dim", str(args.dim), "--mem-limit-gb", str(args.mem_limit_gb)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {**row, "error": f"timed out after {args.timeout:.0f} s"}
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
        if "can't allocate memory" in last or "MemoryError" in last or p.returncode == -9:
            last = f"OOM (RLIMIT_AS {args.mem_limit_gb:g} GB): {last[-120:]}"
        return {**row, "error": last}
    return json.loads(p.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ report
COLUMNS = (
    "head",
    "K",
    "step (ms)",
    "× ArcFace",
    "peak RSS (MiB)",
    "W+state (MiB)",
    "extra (MiB)",
    "extra / W+state",
    "predicted (MiB)",
    "α support",
)


def table_rows(results: list[dict]) -> list[list[str]]:
    """One row of cells per result, in the order given (``COLUMNS``)."""
    ref = {r["K"]: r["time"] for r in results if r["head"] == "arcface" and "error" not in r}
    out = []
    for r in results:
        pred = f"{r['predicted'] / MiB:.0f}"
        if "error" in r:
            out.append([r["head"], f"{r['K']:.0e}", r["error"], "", "", "", "", "", pred, ""])
            continue
        ratio = f"{r['time'] / ref[r['K']]:.2f}" if r["K"] in ref else "n/a"
        sup = "" if r.get("support_size") is None else f"{r['support_size']:.1f}"
        out.append(
            [
                r["head"],
                f"{r['K']:.0e}",
                f"{r['time'] * 1e3:.0f}",
                ratio,
                f"{r['peak'] / MiB:.0f}",
                f"{r['state'] / MiB:.0f}",
                f"{r['extra'] / MiB:.0f}",
                f"{r['extra'] / r['state']:.1%}",
                pred,
                sup,
            ]
        )
    return out


def format_table(results: list[dict], markdown: bool = True) -> str:
    """The results as a markdown table (or aligned text columns)."""
    rows = [list(COLUMNS), *table_rows(results)]
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in rows]
        lines.insert(1, "|" + "---|" * len(COLUMNS))
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def check_targets(results: list[dict], K: int = 1_000_000) -> list[str]:
    """The issue's targets at K: streaming α step ≤ ½ dense ArcFace step; its extra memory ≤ 10 % of W+state."""
    by = {(r["head"], r["K"]): r for r in results}
    stream, arc = by.get(("qmargin-stream", K)), by.get(("arcface", K))
    lines = []
    if stream is None or "error" in stream:
        return [f"targets at K = {K:.0e}: not checked (streaming α not measured at this K)"]
    if arc is None or "error" in arc:
        lines.append(f"time target at K = {K:.0e}: not checked (dense ArcFace not measured at this K)")
    else:
        ratio = stream["time"] / arc["time"]
        verdict = "PASS" if ratio <= 0.5 else "FAIL"
        lines.append(f"time target at K = {K:.0e}: streaming α / dense ArcFace = {ratio:.2f} (≤ 0.50): {verdict}")
    frac = stream["extra"] / stream["state"]
    verdict = "PASS" if frac <= 0.10 else "FAIL"
    lines.append(
        f"memory target at K = {K:.0e}: streaming α peak − baseline = W+state + {frac:.1%}"
        f" ({stream['extra'] / MiB:.0f} MiB over {stream['state'] / MiB:.0f} MiB; ≤ 10 %): {verdict}"
    )
    return lines


# ------------------------------------------------------------------------------------------------ driver
def _k(text: str) -> int:
    value = float(text)
    if value < 2 or value != int(value):
        raise argparse.ArgumentTypeError(f"K must be an integer ≥ 2, got {text!r}")
    return int(value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=_k, nargs="+", help="numbers of classes (default 1e5 1e6 2e6, then 4e6 streaming only)")
    ap.add_argument("--heads", nargs="+", choices=HEADS, default=list(HEADS))
    ap.add_argument("--steps", type=int, default=3, help="timed steps per configuration (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in each configuration")
    ap.add_argument("--chunk-size", type=int, default=65536, help="prototypes per chunk of the streaming head")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--mem-limit-gb", type=float, default=20.0, help="never start (or let grow) a child past this")
    ap.add_argument("--timeout", type=float, default=3600.0, help="per-configuration limit in seconds")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table (default: aligned text)")
    ap.add_argument("--one", metavar="HEAD:K", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--steps and --threads must be ≥ 1, --warmup ≥ 0")
    return args


def configurations(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(head, K) pairs in run order: the dense reference first at each K."""
    if args.k:
        return [(h, K) for K in args.k for h in args.heads]
    grid = [(h, K) for K in DEFAULT_K for h in args.heads]
    return grid + [("qmargin-stream", K) for K in STREAM_ONLY_K if "qmargin-stream" in args.heads]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.one:
        head, K = args.one.rsplit(":", 1)
        _limit_address_space(args.mem_limit_gb * GB)
        result = run_one(head, int(K), args.steps, args.warmup, args.dim, args.batch, args.chunk_size)
        print(json.dumps(result))
        return

    load0 = os.getloadavg()
    print(
        f"torch {torch.__version__}, {args.threads} threads per configuration, {os.cpu_count()} CPUs, load average"
        f" {load0[0]:.2f}; B = {args.batch}, d = {args.dim}, float32; median of {args.steps} steps after"
        f" {args.warmup} warm-up; SGD lr {LR}, momentum {MOMENTUM}, wd {WEIGHT_DECAY}; ArcFace s = 64, m = 0.5;"
        f" α head: Q-Margin α = 1.5, s = 16, m = 0.35 (streaming chunk {args.chunk_size});"
        f" Partial FC: positives + {SAMPLE_RATE:.0%} of negatives",
        flush=True,
    )
    results = []
    for head, K in configurations(args):
        r = run_config(head, K, args)
        results.append(r)
        status = r.get("error") or f"{r['time'] * 1e3:.0f} ms, peak {r['peak'] / MiB:.0f} MiB"
        print(f"  {head} K={K:.0e}: {status}", file=sys.stderr, flush=True)
    print()
    print(format_table(results, markdown=args.markdown))
    print()
    for line in check_targets(results):
        print(line)
    load1 = os.getloadavg()
    print(f"(load average at the end {load1[0]:.2f}; other processes share the CPUs when it exceeds the threads used)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "load": [load0, load1], "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
