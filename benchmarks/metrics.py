"""Speed and peak memory of veriloss.metrics against sklearn and speechbrain, as ratios measured in one run.

    python benchmarks/metrics.py                 # full run: 1e6, 1e7, 1e8 scores + all-pairs 13,180 × 128
    python benchmarks/metrics.py --quick         # 1e5 and 1e6 scores, all-pairs on 3,000 embeddings (smoke run)
    python benchmarks/metrics.py --sklearn-max 1e7   # skip sklearn above 1e7 (its 1e8 run needs ~8 GB, minutes)
    python benchmarks/metrics.py --real-only --embeddings PATH.npy   # all-pairs on real embeddings vs its floor only

All-pairs on REAL embeddings (Omniglot's 13,180 evaluation images, 128-d, from a short CosFace run): ``--embeddings
PATH`` names an .npy with its ``.labels.npy`` beside it, as ``veriloss embed`` writes them; without it the benchmark
uses ``--cache`` (default /tmp/veriloss-bench/omniglot_cosface150/emb.npy) and, when that file is missing, makes it
once (a few minutes on 2 cores) with::

    veriloss train omniglot_cosface --set data.root=OMNIGLOT --set max_steps=150 --set validate.every_epochs=0 --out DIR
    veriloss embed DIR --data test --out DIR/emb.npy

(OMNIGLOT = ``--omniglot``, default ../shared/data/omniglot beside the repository). That case runs at ``--threads``
(default 1) and times, in one process, ``veriloss.protocols.all_pairs`` (every metric, exact) against its floor: the
same blocked matmul of every unordered pair (into a reused buffer), a 2^20-bin histogram of the scores (float32 bit
bins: in-place integer ops on cache-sized chunks, ``index_add_`` into int32 counts) and the running exact top-M
(M = ⌊1e-2·I⌋ + 1) — one pass, no metric. It prints both times (best of ``--repeats``, alternated; wall clock and
process CPU time, the latter less disturbed by other jobs on a shared machine), their ratios, the extra peak RSS of
each, and checks the metrics against the full score arrays scored in all_pairs' own blocks (exact equality).

Every case runs in its own subprocess. The scores are generated there first (float32, in place, 1% genuine), then
the peak-RSS counter is reset (/proc/self/clear_refs) and the call is timed; "extra peak" is the peak RSS above
the resident size before the call (the loaded scores), so "extra / scores" is the memory the metric itself needs.
Times are the best of ``--repeats`` calls for ≤ 1e7 scores and a single call above.

References:
* sklearn: ``roc_curve`` (the field's usual route), then TAR = TPR of the last ROC point with FPR ≤ f, and EER
  (NIST/Kaldi interpolation) + minDCF computed from the same single ``roc_curve`` call.
* speechbrain ``EER`` / ``minDCF`` (``speechbrain.utils.metric_stats``): importing speechbrain needs torchaudio,
  which does not work here, so the two functions' source is read from the installed speechbrain package and executed
  verbatim (their only dependency is torch). Both are quadratic (a Python loop over 2N thresholds; a 2N×N matrix),
  so they run at 3e3 and 1e4 scores only.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

FARS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
GEN_FRACTION = 0.01


# ------------------------------------------------------------------------------------------------ measurement
def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(key)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(fn, repeats: int) -> tuple[float, int, object]:
    """(best time, peak RSS above the RSS before the first call, result of the last call)."""
    rss0 = _status("VmRSS")
    _reset_peak()
    best, out = math.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, _status("VmHWM") - rss0, out


def make_scores(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n float32 scores, 1% genuine ~ N(2.5, 1), the rest impostor ~ N(0, 1), generated in place (no temporaries)."""
    rng = np.random.default_rng(seed)
    n_gen = int(n * GEN_FRACTION)
    g = np.empty(n_gen, dtype=np.float32)
    i = np.empty(n - n_gen, dtype=np.float32)
    for a in (g, i):
        for s in range(0, a.size, 1 << 22):
            rng.standard_normal(out=a[s : s + (1 << 22)], dtype=np.float32)
    g += 2.5
    return g, i


def labelled(g: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.r_[np.ones(g.size, np.int8), np.zeros(i.size, np.int8)], np.concatenate([g, i])


def speechbrain_functions():
    """speechbrain.utils.metric_stats.EER and minDCF, executed from the installed package's source (see header)."""
    spec = importlib.util.find_spec("speechbrain")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "utils" / "metric_stats.py"
    tree = ast.parse(path.read_text())
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ("EER", "minDCF")]
    ns: dict = {"torch": torch}
    exec(compile(ast.Module(body=fns, type_ignores=[]), str(path), "exec"), ns)
    from importlib.metadata import version

    return ns["EER"], ns["minDCF"], version("speechbrain")


# ------------------------------------------------------------------------------------------------ worker cases
def sk_curve(y, s):
    from sklearn.metrics import roc_curve

    return roc_curve(y, s, drop_intermediate=False)


def sk_tar(y, s):
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    return [float(tpr[np.searchsorted(fpr, f, side="right") - 1]) for f in FARS]


def sk_eer_dcf(y, s, p=0.01):
    fpr, tpr, _ = sk_curve(y, s)
    fnr, fpr = (1 - tpr)[::-1], fpr[::-1]  # ascending threshold
    d = fnr - fpr
    x1 = np.flatnonzero(d >= 0)[0]
    x2 = x1 - 1
    a = (fnr[x1] - fpr[x1]) / (fpr[x2] - fpr[x1] - (fnr[x2] - fnr[x1]))
    e = fnr[x1] + a * (fnr[x2] - fnr[x1])
    dcf = np.min(p * fnr + (1 - p) * fpr) / min(p, 1 - p)
    return [float(e), float(dcf)]


def make_fn(case: str, lib: str, g: np.ndarray, i: np.ndarray):
    """(the call to time, bytes of its input arrays); builds the reference's input layout outside the timing."""
    from veriloss.metrics import eer, min_dcf, tar_at_far

    if lib == "sklearn":
        y, s = labelled(g, i)
        return ((lambda: sk_tar(y, s)) if case == "tar" else (lambda: sk_eer_dcf(y, s))), y.nbytes + s.nbytes
    if lib == "speechbrain":
        sb_eer, sb_dcf, _ = speechbrain_functions()
        gt, it = torch.from_numpy(g), torch.from_numpy(i)
        # speechbrain's minDCF is the raw cost; divide by min(p, 1 − p) to compare with the normalized value
        return (lambda: [sb_eer(gt, it)[0], sb_dcf(gt, it, p_target=0.01)[0] / 0.01]), g.nbytes + i.nbytes
    if case == "tar":
        return (lambda: [r.tar for r in tar_at_far(g, i, FARS)]), g.nbytes + i.nbytes
    return (lambda: [eer(g, i).eer, min_dcf(g, i).min_dcf]), g.nbytes + i.nbytes


def worker(case: str, lib: str, n: int, repeats: int, a=None) -> dict:
    if case == "real":
        torch.set_num_threads(a.threads)
        return real_worker(lib, repeats, a.embeddings)
    if case == "allpairs":
        return allpairs_worker(lib, n)
    out: dict = {"case": case, "lib": lib, "n": n}
    if lib == "speechbrain":
        sb = speechbrain_functions()
        if sb is None:
            return {**out, "error": "speechbrain not installed"}
        out["version"] = sb[2]
    warm, _ = make_fn(case, lib, *make_scores(2000, seed=1))
    warm()  # imports and first-call allocations happen here, before the peak counter is reset
    g, i = make_scores(n)
    fn, out["scores_bytes"] = make_fn(case, lib, g, i)
    if lib == "sklearn":
        del g, i  # sklearn gets the concatenated (labels, scores) arrays only
    t, peak, res = measure(fn, repeats if n <= 10**7 else 1)
    return {**out, "time": t, "peak": peak, "result": res}


def synthetic_embeddings(n: int, dim: int = 128, per_class: int = 20, seed: int = 0):
    """n embeddings of n/per_class identities (Omniglot's evaluation split: 659 × 20 = 13,180), with spread."""
    g = torch.Generator().manual_seed(seed)
    n_cls = n // per_class
    y = torch.arange(n_cls).repeat_interleave(per_class)
    x = torch.randn(n_cls, dim, generator=g)[y] + 1.5 * torch.randn(n, dim, generator=g)
    perm = torch.randperm(n, generator=g)
    return x[perm].contiguous(), y[perm].contiguous()


def allpairs_worker(lib: str, n: int) -> dict:
    from veriloss.metrics import auc, eer, min_dcf, tar_at_far
    from veriloss.protocols import all_pairs

    x, y = synthetic_embeddings(n)
    out: dict = {"case": "allpairs", "lib": lib, "n": n, "threads": torch.get_num_threads()}
    if lib == "veriloss":

        def fn():
            r = all_pairs(x, y, far=FARS)
            return [r.eer.eer, r.min_dcf[0].min_dcf, r.min_dcf[1].min_dcf, r.auc, *(t.tar for t in r.tar)]

    else:  # the naive route: the full N×N matrix, the upper triangle as arrays, the same metrics on arrays

        def fn():
            e = torch.nn.functional.normalize(x, dim=1)
            s = e @ e.T
            iu = torch.triu_indices(n, n, 1)
            same = (y[iu[0]] == y[iu[1]]).numpy()
            v = s[iu[0], iu[1]].numpy()
            del s, iu
            g, i = v[same], v[~same]
            del v
            return [
                eer(g, i).eer,
                min_dcf(g, i).min_dcf,
                min_dcf(g, i, 0.05).min_dcf,
                auc(g, i),
                *(t.tar for t in tar_at_far(g, i, FARS)),
            ]

    xw, yw = synthetic_embeddings(400, seed=1)
    warm = all_pairs(xw, yw, far=FARS) if lib == "veriloss" else eer([0.5, 0.7], [0.1, 0.6])
    del warm
    t, peak, res = measure(fn, 1)
    return {**out, "time": t, "peak": peak, "result": res}


# ------------------------------------------------------------------------------------------------ real embeddings
DEFAULT_CACHE = "/tmp/veriloss-bench/omniglot_cosface150/emb.npy"


def real_embeddings(path: str, omniglot: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, labels) from ``path`` and its .labels.npy; made with the CLI if missing (given ``omniglot``)."""
    p = Path(path)
    labels = p.with_name(p.stem + ".labels.npy")
    if not (p.exists() and labels.exists()):
        if omniglot is None:
            raise FileNotFoundError(f"{p} or {labels} is missing")
        cli = [sys.executable, "-c", "import sys; from veriloss.cli import main; sys.argv[0] = 'veriloss'; main()"]
        train = ["train", "omniglot_cosface", "--set", f"data.root={omniglot}", "--set", "max_steps=150"]
        train += ["--set", "validate.every_epochs=0", "--out", str(p.parent)]
        for step in (train, ["embed", str(p.parent), "--data", "test", "--out", str(p)]):
            print(f"making real embeddings: veriloss {' '.join(step)}", flush=True)
            subprocess.run([*cli, *step], check=True, stdout=subprocess.DEVNULL)
    return torch.from_numpy(np.load(p)), torch.from_numpy(np.load(labels))


FLOOR_CHUNK = 1 << 17


def floor_pass(x: torch.Tensor, top: int, block_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The floor of an all-pairs evaluation: every unordered pair scored once (blocked matmul, strict upper triangle),
    its 2^20-bin float32-bit histogram and running exact top-``top``; (counts, top values)."""
    from veriloss.functional.normalize import l2_normalize
    from veriloss.metrics._scores import TopAccumulator

    e = l2_normalize(x.float(), dim=1).contiguous()
    n = e.shape[0]
    shift, off = 12, 0x7F800000 >> 12
    counts = torch.zeros(2 * off + 1, dtype=torch.int32)  # < 2^31 scores here
    acc = TopAccumulator(top)
    sign, key = np.empty(FLOOR_CHUNK, np.int32), np.empty(FLOOR_CHUNK, np.int32)
    tkey = torch.from_numpy(key)
    ones = torch.ones(FLOOR_CHUNK, dtype=torch.int32)
    tri = torch.triu(torch.ones(block_size, block_size, dtype=torch.bool), 1)
    out = torch.empty(block_size * n)
    for i0 in range(0, n, block_size):
        i1 = min(n, i0 + block_size)
        parts = [(e[i0:i1] @ e[i0:i1].T)[tri[: i1 - i0, : i1 - i0]]]
        if i1 < n:
            parts.append(torch.mm(e[i0:i1], e[i1:].T, out=out[: (i1 - i0) * (n - i1)].view(i1 - i0, n - i1)))
        for part in parts:
            flat = part.numpy().reshape(-1)
            for c0 in range(0, flat.size, FLOOR_CHUNK):
                c = flat[c0 : c0 + FLOOR_CHUNK]
                m = c.size
                v, t, k = c.view(np.int32), sign[:m], key[:m]
                np.right_shift(v, 31, out=t)
                np.bitwise_and(v, 0x7FFFFFFF, out=k)
                np.bitwise_xor(k, t, out=k)
                np.subtract(k, t, out=k)
                np.right_shift(k, shift, out=k)
                np.add(k, off, out=k)
                counts.index_add_(0, tkey[:m], ones[:m])
                acc.add(c)
    return counts.numpy().astype(np.int64), acc.result()


def all_pairs_arrays(x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) score arrays of every unordered pair, scored exactly as all_pairs scores them."""
    import importlib

    ap = importlib.import_module("veriloss.protocols.all_pairs")  # the module (the package exports the function)
    gen, imp = [], []
    for g, parts in ap._score_blocks(x, y):
        gen.append(g)
        imp += [p.copy() for p in parts]
    return np.concatenate(gen), np.concatenate(imp)


def real_worker(lib: str, repeats: int, path: str) -> dict:
    from veriloss.metrics import auc, eer, min_dcf, tar_at_far
    from veriloss.metrics._scores import floor_far_count
    from veriloss.protocols import all_pairs

    x, y = real_embeddings(path)
    n = x.shape[0]
    out: dict = {"case": "real", "lib": lib, "n": n, "threads": torch.get_num_threads()}

    def metrics(r):
        return [r.eer.eer, r.min_dcf[0].min_dcf, r.min_dcf[1].min_dcf, r.auc, *(t.tar for t in r.tar)]

    if lib == "arrays":  # the oracle: the full arrays of the same scores, the array metrics
        g, i = all_pairs_arrays(x, y)
        res = [
            eer(g, i).eer,
            min_dcf(g, i).min_dcf,
            min_dcf(g, i, 0.05).min_dcf,
            auc(g, i),
            *(t.tar for t in tar_at_far(g, i, FARS)),
        ]
        return {**out, "result": res, "n_genuine": int(g.size), "n_impostor": int(i.size)}
    counts_y = np.bincount(y.numpy())
    n_imp = n * (n - 1) // 2 - int(np.sum(counts_y * (counts_y - 1) // 2))
    top = floor_far_count(max(FARS), n_imp) + 1
    warm = x[:400], y[:400]
    all_pairs(*warm, far=FARS)
    floor_pass(warm[0], top)
    best = {"floor": math.inf, "all_pairs": math.inf}
    cpu = dict(best)
    peak = {"floor": 0, "all_pairs": 0}
    res = None
    for _ in range(repeats):  # alternated, so that a busy moment of the machine hits both
        for name in ("floor", "all_pairs"):
            fn = (lambda: floor_pass(x, top)) if name == "floor" else (lambda: all_pairs(x, y, far=FARS))
            c0 = time.process_time()
            t, p, r = measure(fn, 1)
            cpu[name] = min(cpu[name], time.process_time() - c0)
            best[name] = min(best[name], t)
            peak[name] = max(peak[name], p)
            if name == "all_pairs":
                res = metrics(r)
    return {
        **out,
        "time": best["all_pairs"],
        "cpu": cpu["all_pairs"],
        "peak": peak["all_pairs"],
        "floor_time": best["floor"],
        "floor_cpu": cpu["floor"],
        "floor_peak": peak["floor"],
        "result": res,
    }


def real_case(a) -> None:
    path = a.embeddings or a.cache
    try:
        x, _ = real_embeddings(path, None if a.embeddings else a.omniglot)
    except (FileNotFoundError, subprocess.CalledProcessError) as err:
        print(f"\nall-pairs on real embeddings: skipped ({err})")
        return
    print(
        f"\nall-pairs on real embeddings {path}: {x.shape[0]} × {x.shape[1]}, {a.threads} thread(s), "
        f"best of {a.repeats} (alternated)"
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    extra = ["--embeddings", path, "--threads", str(a.threads)]
    mine = run_case("real", "veriloss", 0, a.repeats, a.timeout, extra, env)
    ref = run_case("real", "arrays", 0, 1, a.timeout, extra, env)
    if "error" in mine:
        print(f"  veriloss: {mine['error']}")
        return
    print(f"  {'':<52}{'wall':>8}  {'CPU':>8}  extra peak RSS")
    for name, key in (("floor (blocked matmul + 2^20-bin histogram + top-M)", "floor_"), ("veriloss all_pairs", "")):
        print(f"  {name:<52}{mine[key + 'time']:7.2f}s  {mine[key + 'cpu']:7.2f}s  {fmt_bytes(mine[key + 'peak'])}")
    print(
        f"  ratio all_pairs / floor: {mine['time'] / mine['floor_time']:.2f}× wall, "
        f"{mine['cpu'] / mine['floor_cpu']:.2f}× CPU  (target ≤ 2×)"
    )
    names = ["EER", "minDCF 0.01", "minDCF 0.05", "AUC", *(f"TAR@{f:g}" for f in FARS)]
    print("  " + "  ".join(f"{k} {v:.6f}" for k, v in zip(names, mine["result"])))
    if "error" in ref:
        print(f"  oracle (full score arrays): {ref['error']}")
    else:
        same = all(u == v for u, v in zip(ref["result"], mine["result"]))
        print(
            f"  equal to the metrics of the full score arrays ({ref['n_genuine']} genuine, "
            f"{ref['n_impostor']} impostor): {same}"
        )


# ------------------------------------------------------------------------------------------------ driver
def run_case(case: str, lib: str, n: int, repeats: int, timeout: float, extra=(), env=None) -> dict:
    cmd = [sys.executable, __file__, "--worker", case, lib, str(n), "--repeats", str(repeats), *extra]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy())
    except subprocess.TimeoutExpired:
        return {"case": case, "lib": lib, "n": n, "error": f"timed out after {timeout:.0f} s"}
    if p.returncode != 0:
        return {"case": case, "lib": lib, "n": n, "error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def agrees(ref: list, mine: list, atol: float) -> bool:
    """Equal within atol where veriloss reports a value (None = not measurable, which sklearn never says)."""
    return all(abs(r - m) <= atol for r, m in zip(ref, mine) if m is not None)


def fmt_bytes(b: float) -> str:
    return f"{b / 2**20:8.1f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sklearn-max", type=float, default=1e8, help="largest n at which sklearn runs")
    ap.add_argument("--timeout", type=float, default=600.0, help="per-case limit in seconds")
    ap.add_argument("--real-only", action="store_true", help="only the all-pairs case on real embeddings")
    ap.add_argument("--embeddings", help="real embeddings (.npy, with .labels.npy beside it) for the all-pairs case")
    ap.add_argument("--cache", default=DEFAULT_CACHE, help="where to make the real embeddings when missing")
    ap.add_argument("--omniglot", default=str(Path(__file__).resolve().parents[2] / "shared/data/omniglot"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the real-embeddings case")
    ap.add_argument("--worker", nargs=3, metavar=("CASE", "LIB", "N"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        case, lib, n = a.worker
        print(json.dumps(worker(case, lib, int(float(n)), a.repeats, a)))
        return
    if a.real_only:
        real_case(a)
        return

    sizes = [10**5, 10**6] if a.quick else [10**6, 10**7, 10**8]
    sb_sizes = [3000] if a.quick else [3000, 10**4]
    n_emb = 3000 if a.quick else 13180
    print(
        f"veriloss.metrics benchmark — torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs; scores float32, {GEN_FRACTION:.0%} genuine"
    )
    sb = speechbrain_functions()
    if sb is None:
        print("speechbrain: NOT INSTALLED — its rows are skipped")
    else:
        print(
            f"speechbrain {sb[2]}: EER/minDCF source executed verbatim from the installed package "
            "(the package import needs torchaudio, unavailable here)"
        )

    rows = []

    def row(task, n, ref, mine):
        if "error" in ref or "error" in mine:
            print(f"{task:<14}{n:>10.0e}  {ref['lib']}: {ref.get('error', 'ok')} / veriloss: {mine.get('error', 'ok')}")
            return
        speed = ref["time"] / mine["time"]
        agree = agrees(ref["result"], mine["result"], 1e-4)
        rows.append((task, n, ref["lib"], speed))
        print(
            f"{task:<14}{n:>10.0e}  {ref['lib']:<12}{ref['time']:9.3f} s {fmt_bytes(ref['peak'])}   "
            f"veriloss {mine['time']:8.3f} s {fmt_bytes(mine['peak'])}  ({mine['peak'] / mine['scores_bytes']:6.1%}"
            f" of scores)   speed-up {speed:7.1f}×   values agree: {agree}"
        )
        if ref["lib"] == "speechbrain":
            (e1, d1), (e2, d2) = ref["result"], mine["result"]
            print(f"{'':<26}speechbrain EER {e1:.5f} minDCF {d1:.5f}  |  veriloss EER {e2:.5f} minDCF {d2:.5f}")

    print(f"\n{'task':<14}{'n scores':>10}  reference: time, extra peak RSS   veriloss: time, extra peak RSS")
    for case, task in (("tar", "TAR@FAR×5"), ("eerdcf", "EER+minDCF")):
        for n in sizes:
            mine = run_case(case, "veriloss", n, a.repeats, a.timeout)
            if n <= a.sklearn_max:
                row(task, n, run_case(case, "sklearn", n, a.repeats, a.timeout), mine)
            else:
                print(
                    f"{task:<14}{n:>10.0e}  sklearn skipped (--sklearn-max)   veriloss {mine.get('time', 0):8.3f} s "
                    f"{fmt_bytes(mine.get('peak', 0))}"
                )
        if case == "eerdcf" and sb is not None:
            for n in sb_sizes:
                row(task, n, run_case(case, "speechbrain", n, 1, a.timeout), run_case(case, "veriloss", n, 1, 60))
    print(
        "  (speechbrain's EER is (FAR+FRR)/2 at its threshold closest to FAR = FRR, not interpolated: it can differ"
        " by up to ~1/n_genuine; its minDCF is shown normalized)"
    )

    print(f"\nall-pairs, {n_emb} embeddings × 128 (every metric: EER, minDCF p=0.01/0.05, AUC, TAR@FAR ×5)")
    mine = run_case("allpairs", "veriloss", n_emb, 1, a.timeout)
    ref = run_case("allpairs", "naive", n_emb, 1, a.timeout)
    for r, name in ((mine, "veriloss all_pairs (blocks)"), (ref, "naive: N×N matrix + arrays")):
        if "error" in r:
            print(f"  {name:<30} {r['error']}")
        else:
            print(f"  {name:<30} {r['time']:8.2f} s  extra peak {fmt_bytes(r['peak'])}  ({r['threads']} threads)")
    if "error" not in mine and "error" not in ref:
        print(
            f"  speed-up {ref['time'] / mine['time']:.1f}×, memory ratio {ref['peak'] / max(mine['peak'], 1):.1f}×,"
            f" values agree: {agrees(ref['result'], mine['result'], 1e-9)}"
        )
    real_case(a)


if __name__ == "__main__":
    main()
