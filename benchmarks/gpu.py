"""GPU benchmarks: the Trainer's throughput against a bare training step, and heads at 10⁶ and 10⁷ classes.

    python benchmarks/gpu.py                          # on a CUDA machine: both parts (a few minutes on an H200)
    python benchmarks/gpu.py --only trainer --batch-size 256
    python benchmarks/gpu.py --only heads --k 1e6 1e7
    python benchmarks/gpu.py --device cpu --quick     # a smoke run at tiny sizes: the numbers mean nothing

Without a CUDA device (unless ``--device cpu``) it prints "no CUDA device: nothing measured" and exits with status 0.

(a) Trainer against the bare step. IResNet-50 (``veriloss.models.create("iresnet50")``, 3×112×112 input, 512-d
embeddings), ArcFace (s = 64, m = 0.5) over ``--classes`` identities, batch ``--batch-size`` (128), bf16 autocast of
the backbone, channels-last weights, SGD (lr 0.1, momentum 0.9, weight decay 5e-4). The data is a synthetic in-memory
set of random float32 images (a pool of distinct images repeated; items draw no random numbers), so the trainer's
data path costs indexing, collation, pinning and the host-to-device copy, nothing else. The *trainer* is
``veriloss.train.Trainer(model, head, data, None, out, config=...)`` with ``num_workers = --workers``, no validation,
no TensorBoard, no checkpoint until the end; its images/s are taken from a callback's clock between the ends of the
steps after ``--warmup`` steps (start-up and the final checkpoint not counted; the trainer reads its loss only at log
steps, here the last step). The *bare step* is forward (autocast) + ArcFace + backward + ``optimizer.step()`` on one
batch already on the device, no checks, no data loading, no synchronization between steps, timed over ``--steps``
steps (one synchronization at each end), in both layouts (NCHW, and channels-last weights and input); the best is the
reference. The trainer's input batches come in NCHW (a collated batch), so its first convolution converts them.
**Target: trainer ≥ 0.9 × the best bare step.**

With ``--compile`` the Trainer also runs with ``compile: true`` (the backbone through inductor; the compilation falls
in the warm-up steps), reported against the same eager bare step.

(b) Heads at scale, d = 512, B = 256, for K in ``--k`` (10⁶, 10⁷): one step = forward + backward (the embeddings
get their gradient too) + the optimizer's step, on a fresh batch (x ~ N(0, 1), labels uniform in [0, K)). Heads:

* ``alpha-stream``: Q-Margin (α = 1.5, s = 16, m = 0.35) with ``chunk_size`` (``--chunk-size``, 2²⁰ = 1,048,576:
  a 1 GiB logit buffer at B = 256; on a GPU each chunk costs a fixed number of launches and host synchronizations,
  so large chunks pay): no B×K logits, a sparse gradient for W, trained with
  :class:`veriloss.train.sparse_optim.LazySGD` (no flush per step).
* ``alpha-dense``: the same Q-Margin without ``chunk_size`` (B×K logits, dense gradient), ``torch.optim.SGD``.
* ``arcface``: dense ArcFace, ``veriloss.heads.create("arcface", d, K, s=64, m=0.5)``, ``torch.optim.SGD``.
* ``partialfc``: a Partial FC-style sampled ArcFace (An et al. 2021), a reference written here (:class:`SampledArcFace`,
  not part of veriloss): every positive class of the batch plus random negatives up to ``--sample-rate`` (0.1) of K,
  ArcFace on those prototypes only, SGD with momentum on the sampled rows.

Time: the median of ``--head-steps`` steps after ``--head-warmup``, each between two ``torch.cuda.synchronize()``.
Memory: ``torch.cuda.max_memory_allocated`` over the whole case (W, optimizer state, the steps), reset between cases;
"W+state" is the size of W and its optimizer state. A case that runs out of memory prints "OOM".
**Target: the streaming α head trains at K = 10⁷ within GPU memory where dense ArcFace does not.**

SGD hyper-parameters everywhere: lr 0.1, momentum 0.9, weight decay 5e-4.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from veriloss import heads, models
from veriloss.functional.margins import arcface_margin
from veriloss.heads import unchecked
from veriloss.heads.base import cosine
from veriloss.train import Callback, Trainer
from veriloss.train.config import DEFAULTS
from veriloss.train.optimizers import build_optimizer
from veriloss.train.sparse_optim import LazySGD

LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4
ARCFACE = {"s": 64.0, "m": 0.5}
QMARGIN = {"alpha": 1.5, "s": 16.0, "m": 0.35}
OPTIM = {**DEFAULTS["optim"], "name": "sgd", "lr": LR, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY}
HEADS = ("alpha-stream", "alpha-dense", "arcface", "partialfc")
GiB = 2**30


# ------------------------------------------------------------------------------------------------- (a) the trainer
class RandomImages(torch.utils.data.Dataset):
    """``n`` samples of random C×S×S float32 images (a pool of ``pool`` distinct ones, repeated), labels ``i % K``."""

    random_items = False  # items draw no random numbers: the loader reads them as they are

    def __init__(self, n: int, classes: int, channels: int, size: int, pool: int = 256, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(min(pool, n), channels, size, size, generator=g)
        self.labels = np.arange(n) % classes
        self.num_classes = classes

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i % len(self.images)], int(self.labels[i])


class Clock(Callback):
    """Wall time at the end of each step from ``warmup`` on."""

    def __init__(self, warmup: int):
        self.warmup, self.marks = warmup, []

    def on_step_end(self, trainer, loss, stats) -> None:
        if trainer.step >= self.warmup:
            self.marks.append(time.perf_counter())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _parts(args, device: torch.device, channels_last: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    model = models.create(args.model, in_channels=3, embedding_dim=512, input_size=args.image_size)
    head = heads.create("arcface", 512, args.classes, **ARCFACE)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.to(device), head.to(device)


def trainer_rate(args, device: torch.device, amp: str, compile: bool = False) -> tuple[float, str]:
    """Images/s of the Trainer between the ends of its steps after the warm-up (``compile``: ``compile: true``, the
    backbone through inductor, compiled during the warm-up); and the precision it ran."""
    steps = args.warmup + args.steps
    data = RandomImages(args.batch_size * steps, args.classes, 3, args.image_size)
    model, head = _parts(args, device, channels_last=True)
    config = {
        "device": str(device),
        "amp": amp,
        "batch_size": args.batch_size,
        "max_steps": steps,
        "num_workers": args.workers,
        "compile": compile,
        "optim": OPTIM,
        "schedule": {"kind": "constant", "warmup_steps": 0},
        "validate": {"every_epochs": 0},
        "checkpoint": {"every_steps": 10**9},
        "log": {"every_steps": 10**9, "tensorboard": False, "progress": False},
    }
    clock = Clock(args.warmup)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model, head, data, None, out, config=config, callbacks=[clock], log=lambda _m: None)
        trainer.fit()
        precision = trainer.precision
    seconds = (clock.marks[-1] - clock.marks[0]) / (len(clock.marks) - 1)
    return args.batch_size / seconds, precision


def bare_rate(args, device: torch.device, dtype: torch.dtype | None, channels_last: bool) -> float:
    """Images/s of forward + loss + backward + SGD step on one batch held on the device (``--steps`` steps)."""
    model, head = _parts(args, device, channels_last)
    model.train()
    optimizer = build_optimizer(model, head, OPTIM)
    data = RandomImages(args.batch_size, args.classes, 3, args.image_size, pool=args.batch_size)
    x = data.images.to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.as_tensor(data.labels).to(device)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            emb = model(x)
        loss = head(emb.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with unchecked():  # as the trainer's steps: no input checks that read tensor values (host synchronizations)
        for _ in range(args.warmup):
            step()
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        _sync(device)
    return args.batch_size * args.steps / (time.perf_counter() - t0)


def bench_trainer(args, device: torch.device) -> None:
    bf16 = device.type == "cuda" or args.cpu_bf16
    amp, dtype = ("bf16", torch.bfloat16) if bf16 else ("none", None)
    print(f"## (a) Trainer vs bare step: {args.model} at {args.image_size} px, batch {args.batch_size}, ArcFace over "
          f"{args.classes} classes, {amp if bf16 else 'float32'}, {args.workers} loader worker(s)\n")  # fmt: skip
    print("| loop | layout | images/s |")
    print("|---|---|---|")
    rates = {}
    for layout in ("NCHW", "channels-last"):
        rates[layout] = bare_rate(args, device, dtype, channels_last=layout == "channels-last")
        _free(device)
    best = max(rates, key=rates.get)
    for layout, rate in rates.items():
        print(f"| bare step{' (best)' if layout == best else ''} | {layout} | {rate:.0f} |", flush=True)
    rate, precision = trainer_rate(args, device, amp)
    _free(device)
    print(f"| Trainer ({precision}) | channels-last weights, NCHW batches | {rate:.0f} |")
    if args.compile:
        compiled, _ = trainer_rate(args, device, amp, compile=True)
        _free(device)
        print(f"| Trainer ({precision}, compile: true) | channels-last weights, NCHW batches | {compiled:.0f} |")
    ratio = rate / rates[best]
    verdict = "meets" if ratio >= 0.9 else "misses"
    print(f"\ntrainer ÷ best bare step = **{ratio:.2f}** ({verdict} the target ≥ 0.90)", flush=True)
    if args.compile:
        print(f"compiled trainer ÷ best (eager) bare step = {compiled / rates[best]:.2f}", flush=True)
    print()


# ------------------------------------------------------------------------------------------------ (b) heads at scale
class SampledArcFace:
    """Partial FC-style sampled ArcFace (An et al. 2021), a reference for comparison only (not part of veriloss).

    Each step samples S = every positive class of the batch plus uniform random negatives, |S| = max(|P|, round(r·K))
    (r = ``sample_rate``, as insightface: positives included), by insightface's trick: uniform scores, the positives'
    set to 2, top-|S|. The loss is ArcFace on the sampled prototypes (labels remapped into S). Only the rows in S get a
    gradient, and SGD (momentum μ, weight decay λ, no dampening) updates those rows: ``b ← μ b + g + λ w``,
    ``w ← w − η b``; the other rows keep their weights and momentum, as Partial FC's memory bank.
    """

    def __init__(self, d: int, k: int, s: float, m: float, sample_rate: float, device: torch.device):
        self.s, self.m, self.sample_rate = s, m, sample_rate
        self.weight = torch.empty(k, d, device=device).normal_(0.0, 0.01)  # veriloss's cosine heads' init
        self.momentum_buffer = torch.zeros_like(self.weight)

    def sample(self, y: torch.Tensor) -> torch.Tensor:
        k = self.weight.shape[0]
        positives = torch.unique(y)
        n = max(positives.numel(), round(self.sample_rate * k))
        score = torch.rand(k, device=self.weight.device)
        score[positives] = 2.0
        return torch.topk(score, n, sorted=False).indices.sort().values

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        index = self.sample(y)
        sub = self.weight[index].requires_grad_(True)
        local = torch.searchsorted(index, y)
        cos = cosine(x, sub)
        target = arcface_margin(cos.gather(1, local[:, None]), self.m)
        loss = F.cross_entropy(self.s * cos.scatter(1, local[:, None], target), local)
        loss.backward()
        with torch.no_grad():
            buf = self.momentum_buffer[index].mul_(MOMENTUM).add_(sub.grad).add_(sub, alpha=WEIGHT_DECAY)
            self.weight[index] = sub.sub_(buf, alpha=LR)
            self.momentum_buffer[index] = buf
        return loss.detach()

    def state_bytes(self) -> int:
        return self.weight.nbytes + self.momentum_buffer.nbytes


def _optimizer_bytes(optimizer: torch.optim.Optimizer) -> int:
    return sum(v.nbytes for st in optimizer.state.values() for v in st.values() if isinstance(v, torch.Tensor))


def build_head(name: str, k: int, args, device: torch.device) -> tuple[Callable, Callable[[], int]]:
    """``(step(x, y) -> loss, state_bytes())`` of configuration ``name`` at K classes, W built on the device."""
    torch.manual_seed(0)
    if name == "partialfc":
        sampled = SampledArcFace(args.d, k, **ARCFACE, sample_rate=args.sample_rate, device=device)
        return sampled.step, sampled.state_bytes
    with torch.device(device):  # W drawn on the device (10⁷×512 is not drawn on the host first)
        if name == "alpha-stream":
            module = heads.create("qmargin", args.d, k, chunk_size=args.chunk_size, **QMARGIN)
            optimizer = LazySGD(module.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        elif name == "alpha-dense":
            module = heads.create("qmargin", args.d, k, **QMARGIN)
        elif name == "arcface":
            module = heads.create("arcface", args.d, k, **ARCFACE)
        else:
            raise ValueError(f"unknown head {name!r}; choose from {', '.join(HEADS)}")
        if name != "alpha-stream":
            optimizer = torch.optim.SGD(module.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    module.train()

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = module(x, y)
        loss.backward()
        optimizer.step()
        return loss.detach()

    def state_bytes() -> int:
        return sum(p.nbytes for p in module.parameters()) + _optimizer_bytes(optimizer)

    return step, state_bytes


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_head(name: str, k: int, args, device: torch.device) -> dict:
    """One case: median step time, peak memory, W+state; ``{"error": "OOM"}`` when the device runs out of memory.

    The peak is ``max_memory_allocated`` during the steps (reset after the head is built: its init draws W into a
    temporary first) minus what was allocated before the head was built: W, the optimizer state and the steps."""
    cuda = device.type == "cuda"
    _free(device)
    base = torch.cuda.memory_allocated(device) if cuda else 0
    try:
        step, state_bytes = build_head(name, k, args, device)
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        g = torch.Generator(device).manual_seed(1)
        times, losses = [], []
        for i in range(args.head_warmup + args.head_steps):
            x = torch.randn(args.b, args.d, device=device, generator=g).requires_grad_(True)
            y = torch.randint(0, k, (args.b,), device=device, generator=g)
            _sync(device)
            t0 = time.perf_counter()
            loss = step(x, y)
            _sync(device)
            if i >= args.head_warmup:
                times.append(time.perf_counter() - t0)
                losses.append(float(loss))
        peak = torch.cuda.max_memory_allocated(device) - base if cuda else None
        result = {"time": statistics.median(times), "state": state_bytes(), "loss": losses[-1], "peak": peak}
    except torch.OutOfMemoryError:
        result = {"error": "OOM"}
    except RuntimeError as err:  # e.g. a kernel's size limit: reported, the other cases still run
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        result = {"error": f"failed: {first[:100]}"}
    return result  # the case's tensors go with this frame; the next case frees the cache first


def _k(k: int) -> str:
    """10⁶ as ``1e6``; other counts with thousands separators."""
    power = round(math.log10(k))
    return f"1e{power}" if 10**power == k else f"{k:,}"


def _gb(n: float | None) -> str:
    return "n/a" if n is None else f"{n / GiB:.2f}"


def bench_heads(args, device: torch.device) -> None:
    print(f"## (b) Heads at scale: d = {args.d}, B = {args.b}, chunk_size = {args.chunk_size}, Partial FC rate "
          f"{args.sample_rate}; median of {args.head_steps} steps\n")  # fmt: skip
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        print(f"device memory: {_gb(total)} GiB\n")
    print("| head | K | step ms | peak GiB | W+state GiB | last loss |")
    print("|---|---|---|---|---|---|")
    fits: dict[tuple[str, int], bool] = {}
    for k in args.k:
        for name in args.heads:
            r = run_head(name, k, args, device)
            fits[name, k] = "error" not in r
            if "error" in r:
                print(f"| {name} | {_k(k)} | {r['error']} | | | |", flush=True)
            else:
                print(f"| {name} | {_k(k)} | {1e3 * r['time']:.1f} | {_gb(r['peak'])} | {_gb(r['state'])} "
                      f"| {r['loss']:.3f} |", flush=True)  # fmt: skip
    big = max(args.k)
    if ("alpha-stream", big) in fits and ("arcface", big) in fits:
        stream_ok, dense_ok = fits["alpha-stream", big], fits["arcface", big]
        met = stream_ok and not dense_ok
        print(f"\nat K = {_k(big)}: streaming α {'fits' if stream_ok else 'does not fit'}, dense ArcFace "
              f"{'fits' if dense_ok else 'does not fit'} ({'meets' if met else 'does not meet'} the target: streaming "
              "within memory where dense ArcFace is not)")  # fmt: skip


# ---------------------------------------------------------------------------------------------------------- main
def _count(text: str) -> int:
    value = float(text)
    if not math.isfinite(value) or value < 2 or value != int(value):
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 2 (1e6 is fine), got {text!r}")
    return int(value)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (a smoke run)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run; the numbers mean nothing)")
    parser.add_argument("--only", choices=("trainer", "heads"), default=None)
    a = parser.add_argument_group("(a) trainer vs bare step")
    a.add_argument("--model", default=None, help="backbone (default iresnet50; --quick: small-cnn)")
    a.add_argument("--image-size", type=_positive, default=None, help="input size in px (default 112; --quick: 28)")
    a.add_argument("--batch-size", type=_positive, default=None, help="default 128 (--quick: 4)")
    a.add_argument("--classes", type=_count, default=None, help="ArcFace classes (default 10000; --quick: 16)")
    a.add_argument("--steps", type=_positive, default=None, help="timed steps (default 30; --quick: 2)")
    a.add_argument("--warmup", type=_positive, default=None, help="warm-up steps (default 5; --quick: 1)")
    a.add_argument("--workers", type=int, default=None, help="the trainer's loader workers (default 4 on CUDA, else 0)")
    a.add_argument("--compile", action="store_true", help="also the Trainer with compile: true (inductor)")
    a.add_argument("--cpu-bf16", action="store_true", help="on --device cpu: bf16 autocast as on a GPU (slow on AVX2)")
    b = parser.add_argument_group("(b) heads at scale")
    b.add_argument("--k", type=_count, nargs="+", default=None, help="classes (default 1e6 1e7; --quick: 1e3 1e4)")
    b.add_argument("--heads", nargs="+", choices=HEADS, default=list(HEADS))
    b.add_argument("--d", type=_positive, default=None, help="embedding dimension (default 512; --quick: 32)")
    b.add_argument("--b", type=_positive, default=None, help="batch (default 256; --quick: 16)")
    b.add_argument("--chunk-size", type=_positive, default=None, help="streaming chunk (default 1048576; --quick: 512)")
    b.add_argument("--sample-rate", type=float, default=0.1, help="Partial FC's sampled fraction of K")
    b.add_argument("--head-steps", type=_positive, default=None, help="timed steps per case (default 5; --quick: 2)")
    b.add_argument("--head-warmup", type=int, default=None, help="warm-up steps per case (default 2; --quick: 1)")
    args = parser.parse_args(argv)
    full = {
        "model": "iresnet50", "image_size": 112, "batch_size": 128, "classes": 10_000, "steps": 30, "warmup": 5,
        "k": [10**6, 10**7], "d": 512, "b": 256, "chunk_size": 2**20, "head_steps": 5, "head_warmup": 2,
    }  # fmt: skip
    quick = {
        "model": "small-cnn", "image_size": 28, "batch_size": 4, "classes": 16, "steps": 2, "warmup": 1,
        "k": [1000, 10_000], "d": 32, "b": 16, "chunk_size": 512, "head_steps": 2, "head_warmup": 1,
    }  # fmt: skip
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.workers is None:
        args.workers = 4 if args.device.startswith("cuda") else 0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: nothing measured (run on a CUDA machine, or --device cpu --quick for a smoke run)")
        return 0
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"# veriloss GPU benchmarks: torch {torch.__version__}, {name}\n")
    if device.type != "cuda" or args.quick:
        print("(a smoke run: tiny sizes or no GPU; the numbers below are not meaningful)\n")
    if args.only in (None, "trainer"):
        bench_trainer(args, device)
    if args.only in (None, "heads"):
        bench_heads(args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
