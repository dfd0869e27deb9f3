"""Running a bench: named training configs (variants) × seeds, one run folder each, resumable, in parallel processes.

Layout: ``OUT/<variant>/seed<k>/`` holds what :class:`veriloss.train.Trainer` writes (checkpoint.pt, metrics.json,
history.jsonl, plots) plus the bench's own files: ``config.yaml`` (the run's full config: ``veriloss train
config.yaml`` reproduces it), ``bench.json`` (that config and one record per session: wall seconds, status, threads,
steps), ``train.log``, ``scores.npz`` (genuine scores + impostor summary for the DET plot, :mod:`.scores`) and
``bootstrap.npz`` (subject-bootstrap replicates of TAR@FAR, EER and minDCF for paired comparisons,
:mod:`.bootstrap`; written at the end of every run, and from the checkpoint for older finished runs when a
comparison asks for it).

Restart rules (a run's state is read from its folder, never from memory):

* *finished*: ``metrics.json`` is complete (the trainer writes it atomically after the final all-pairs evaluation) —
  not redone;
* *partial*: a checkpoint exists — resumed with the trainer's exact resume (``Trainer(..., resume=True)``);
* *new*: started from scratch (a stale ``history.jsonl`` of a run killed before its first checkpoint is removed).

A folder whose recorded config differs from the planned one raises ``ValueError`` (naming the differing keys) rather
than mixing results of two configs; choose another ``--out`` or delete the folder. A relative ``data.root`` is the
folder it names from the current directory.

Parallelism: ``jobs`` trainings run at once, each in its own process (``spawn``) with ``torch.set_num_threads(
threads)``; its stdout/stderr go to its ``train.log``. With ``jobs = 1`` runs execute in this process (no start-up
cost; the trainer's progress bar shows on a terminal). Runs are ordered seed-major (every variant's seed 0, then
seed 1, ...) so an interrupted bench already holds one seed of every variant. Ctrl-C: each trainer checkpoints and
stops (its own SIGINT handling); the bench waits for them, reports what is finished and returns "interrupted".
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from multiprocessing.connection import wait as wait_for
from pathlib import Path

import yaml

from .._io import write_text
from ..train.resume import config_changes, describe_changes
from .bootstrap import BOOTSTRAP_NAME, compute_bootstrap, save_bootstrap, trainer_bootstrap
from .scores import SCORES_NAME, compute_scores, save_scores

__all__ = [
    "BENCH_NAME",
    "RunSpec",
    "Variant",
    "available_cores",
    "default_jobs",
    "execute",
    "make_variant",
    "plan_runs",
    "read_finished",
    "run_all",
    "run_state",
]

BENCH_NAME = "bench.json"

#: config keys added after bench folders existed, with the default that reproduces what older versions did: a
#: recorded config without the key is the same config as one with this value
ADDED_KEYS = {"validate.split": "test"}
_EXIT = {"finished": 0, "failed": 1, "interrupted": 130}


# --------------------------------------------------------------------------------------------------------------------
# what to run
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One named training config of a bench (a suite entry or a sweep grid point), trained once per seed.

    ``columns`` are the descriptive cells the report shows for it (e.g. loss and parameters, or the grid values).
    """

    name: str
    config: dict
    columns: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSpec:
    """One training run: a variant's config with ``seed`` set, trained into ``dir``."""

    variant: str
    seed: int
    dir: Path
    config: dict


def make_variant(name: str, config: dict, columns: dict[str, str] | None = None) -> Variant:
    """A :class:`Variant` after checking its name (a folder name) and its loss (name and parameters, by building
    it on a toy size), so that a typo fails before hours of training rather than at the run's start."""
    from ..losses import from_config as build_loss
    from ..train.schema import validate_config

    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ValueError(f"variant name {name!r} must be a non-empty folder name (no '/', '\\\\')")
    validate_config(config, name)  # the merged config of the entry or grid point, before anything trains
    try:
        build_loss(config["loss"], 8, 4)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    return Variant(name, _canonical(config), dict(columns or {}))


def plan_runs(variants: Sequence[Variant], seeds: int, out: str | os.PathLike, first_seed: int = 0) -> list[RunSpec]:
    """Every (variant, seed) run, seeds first_seed..first_seed+seeds−1, seed-major; run folders
    ``out/<variant>/seed<k>``. A sweep can tune on seeds that the final comparison does not use."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    if isinstance(first_seed, bool) or not isinstance(first_seed, int) or first_seed < 0:
        raise ValueError(f"first_seed must be a non-negative integer, got {first_seed!r}")
    names = [v.name for v in variants]
    if not names:
        raise ValueError("nothing to run: no variants")
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    out = Path(out)
    return [
        RunSpec(v.name, s, out / v.name / f"seed{s}", {**copy.deepcopy(v.config), "seed": s})
        for s in range(first_seed, first_seed + seeds)
        for v in variants
    ]


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def default_jobs(cores: int) -> int:
    """Default number of parallel trainings: ``max(1, cores // 4)``, i.e. at least 4 threads per training.

    Choice: a small CNN's intra-op parallelism (batch 256) scales well up to a few threads and flattens beyond ~4-8,
    where independent processes use the cores better; below 8 cores one training with every core is as fast per run
    and keeps memory (one dataset copy, one all-pairs evaluation at a time) low. On 2 cores: 1 job × 2 threads.
    """
    return max(1, int(cores) // 4)


# --------------------------------------------------------------------------------------------------------------------
# run folders: state and bookkeeping
# --------------------------------------------------------------------------------------------------------------------
def _canonical(config: dict) -> dict:
    """The config as JSON sees it (tuples → lists), so configs from YAML, JSON and memory compare equal."""
    return json.loads(json.dumps(config))


def read_finished(run_dir: str | os.PathLike) -> dict | None:
    """The ``metrics.json`` document of a finished run (complete: a system record with EER and TAR@FAR), or None."""
    path = Path(run_dir) / "metrics.json"
    try:
        doc = json.loads(path.read_text())
        record = doc["systems"][0]
        if "eer" in record and "tar_at_far" in record:
            return doc
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    return None


def _read_book(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / BENCH_NAME).read_text())
    except (OSError, ValueError):
        return None


def _recorded_config(run_dir: Path) -> dict | None:
    """The config a run folder was made with: bench.json, else metrics.json, else the checkpoint; None if empty."""
    book = _read_book(run_dir)
    if book and "config" in book:
        return book["config"]
    done = read_finished(run_dir)
    if done is not None and "config" in done.get("meta", {}):
        return done["meta"]["config"]
    from ..checkpoint import CHECKPOINT_NAME, load_checkpoint

    if (run_dir / CHECKPOINT_NAME).exists():
        return load_checkpoint(run_dir / CHECKPOINT_NAME)["config"]
    return None


def run_state(spec: RunSpec) -> str:
    """ "finished", "partial" (a checkpoint to resume) or "new"; ``ValueError`` if the folder holds another config."""
    from ..checkpoint import CHECKPOINT_NAME

    recorded = _recorded_config(spec.dir)
    changes = config_changes(recorded, spec.config) if recorded is not None else {}
    changes = {k: v for k, v in changes.items() if not (k in ADDED_KEYS and _added_default(v, ADDED_KEYS[k]))}
    if changes:
        raise ValueError(
            f"{spec.dir} holds a run of a different config ({describe_changes(changes)}); "
            "use another --out or delete that folder"
        )
    if read_finished(spec.dir) is not None:
        return "finished"
    return "partial" if (spec.dir / CHECKPOINT_NAME).exists() else "new"


def _added_default(change: tuple[object, object], default: object) -> bool:
    """A change between "absent" and the key's default (either way round)."""
    return set(map(str, change)) == {"<absent>", str(default)}


def _write_book(run_dir: Path, book: dict) -> None:
    write_text(run_dir / BENCH_NAME, json.dumps(book, indent=2) + "\n")


# --------------------------------------------------------------------------------------------------------------------
# executing one run (in this process or a child)
# --------------------------------------------------------------------------------------------------------------------
def _final_capture():
    """A callback keeping the final all-pairs evaluation of the whole test split, so the bench stores the DET data
    without a second evaluation."""
    from ..train.callbacks import Callback

    class FinalCapture(Callback):
        result = None

        def on_evaluation(self, trainer, result, final: bool) -> None:
            if final:
                self.result = result

    return FinalCapture()


def _train(run_dir: Path, config: dict, threads: int, far: Sequence[float], log: Callable[[str], None]) -> str:
    from ..checkpoint import CHECKPOINT_NAME

    book = _read_book(run_dir) or {"sessions": []}
    book["config"] = config
    _write_book(run_dir, book)
    write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    if not (run_dir / CHECKPOINT_NAME).exists():
        (run_dir / "history.jsonl").unlink(missing_ok=True)  # rows of a session killed before its first checkpoint
    session: dict = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "threads": threads,
        "status": "failed",
    }
    t0 = time.perf_counter()
    trainer = None
    try:
        from ..train import Trainer

        capture = _final_capture()
        trainer = Trainer.from_config(config, run_dir, resume=True, log=log, callbacks=[capture])
        session["start_step"] = trainer.step
        metrics = trainer.fit()
        session["status"] = str(metrics.get("status", "finished"))
        if session["status"] == "finished" and capture.result is not None:
            save_scores(run_dir / SCORES_NAME, capture.result.genuine, capture.result.impostor, far)
        if session["status"] == "finished" and trainer.test_set is not None:
            try:  # the metrics are written: a failed bootstrap is logged and redone from the checkpoint on demand
                save_bootstrap(run_dir / BOOTSTRAP_NAME, trainer_bootstrap(trainer, far), far)
            except Exception:
                log("bootstrap.npz not written:\n" + traceback.format_exc())
        return session["status"]
    except KeyboardInterrupt:
        session["status"] = "interrupted"
        raise
    finally:
        session["seconds"] = time.perf_counter() - t0
        session["end_step"] = None if trainer is None else trainer.step
        book["sessions"].append(session)
        _write_book(run_dir, book)


def execute(task: dict) -> str:
    """Run one task: ``{"dir", "config", "threads", "far", "train": bool, "scores": bool, "bootstrap": bool}``.

    Trains (or resumes) when ``train``; then, when ``scores`` and the run has no ``scores.npz``, re-evaluates it
    from its checkpoint; when ``bootstrap`` and the run has no ``bootstrap.npz``, makes it from the checkpoint.
    Returns "finished", "interrupted" (Ctrl-C: checkpoint written) or "failed" (traceback in the run's
    ``train.log``).
    """
    import torch

    run_dir = Path(task["dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = torch.get_num_threads()
    torch.set_num_threads(int(task["threads"]))
    try:
        with open(run_dir / "train.log", "a") as log_file:

            def log(msg: str) -> None:
                print(msg, file=log_file, flush=True)

            try:
                if task["train"]:
                    status = _train(run_dir, task["config"], int(task["threads"]), task["far"], log)
                    if status != "finished":
                        return status
                if task["scores"] and not (run_dir / SCORES_NAME).exists():
                    compute_scores(run_dir, task["far"])
                if task.get("bootstrap") and not (run_dir / BOOTSTRAP_NAME).exists():
                    compute_bootstrap(run_dir, task["far"])
                return "finished"
            except Exception:
                log(traceback.format_exc())
                return "failed"
    finally:
        torch.set_num_threads(previous)


def _child(task: dict) -> None:  # pragma: no cover - runs in a spawned process (its effects are tested)
    Path(task["dir"]).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(task["dir"]) / "train.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    try:
        result = execute(task)
    except KeyboardInterrupt:  # Ctrl-C before the trainer's own handler was installed
        result = "interrupted"
    sys.exit(_EXIT[result])


# --------------------------------------------------------------------------------------------------------------------
# executing many
# --------------------------------------------------------------------------------------------------------------------
def _tasks(
    specs: Sequence[RunSpec], threads: int, far: Sequence[float], bootstrap: bool = False
) -> list[tuple[RunSpec, dict]]:
    """The work left: unfinished runs to train; for a variant with no stored scores, its lowest finished seed's;
    with ``bootstrap``, every finished run without ``bootstrap.npz``."""
    states = {spec.dir: run_state(spec) for spec in specs}  # raises before anything runs if a folder conflicts
    has_scores: dict[str, bool] = {}
    for spec in specs:
        if states[spec.dir] == "finished":
            has_scores[spec.variant] = has_scores.get(spec.variant, False) or (spec.dir / SCORES_NAME).exists()
        else:
            has_scores.setdefault(spec.variant, False)
    out = []
    for spec in specs:  # plan_runs' order: seed-major
        train = states[spec.dir] != "finished"
        scores = train or not has_scores[spec.variant]
        boot = bootstrap and (train or not (spec.dir / BOOTSTRAP_NAME).exists())
        if not train and scores:
            has_scores[spec.variant] = True  # this seed's scores will be computed
        if train or scores or boot:
            task = {"dir": str(spec.dir), "config": spec.config, "threads": threads, "far": list(far)}
            work = {"train": train, "scores": scores, "bootstrap": boot, "state": states[spec.dir]}
            out.append((spec, {**task, **work}))
    return out


def run_all(
    specs: Sequence[RunSpec],
    jobs: int,
    threads: int,
    far: Sequence[float],
    echo: Callable[[str], None] | None = None,
    bootstrap: bool = False,
) -> dict[Path, str]:
    """Train every unfinished run of ``specs`` (``jobs`` at a time, ``threads`` torch threads each); with
    ``bootstrap``, also make ``bootstrap.npz`` from the checkpoint of finished runs that lack it (older runs).

    Returns the status of each run folder that had work: "finished", "failed" or "interrupted" (and "skipped"
    for those not started after an interruption). Finished runs are left untouched.
    """
    for name, value in (("jobs", jobs), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    echo = echo or (lambda msg: print(msg, file=sys.stderr, flush=True))
    todo = _tasks(specs, threads, far, bootstrap)
    done = len(specs) - sum(1 for _, t in todo if t["train"])
    echo(f"bench: {len(specs)} runs, {done} finished, {len(todo)} to do; {jobs} job(s) × {threads} thread(s)")
    status: dict[Path, str] = {}

    def start_line(i: int, spec: RunSpec, task: dict) -> str:
        scoring = "bootstrapping (for the comparison)" if not task["scores"] else "scoring (for the DET plot)"
        what = {"new": "training", "partial": "resuming", "finished": scoring}[task["state"]]
        return f"[{i + 1}/{len(todo)}] {spec.variant} seed {spec.seed}: {what} → {spec.dir}"

    def end_line(i: int, spec: RunSpec, result: str, seconds: float) -> str:
        line = f"[{i + 1}/{len(todo)}] {spec.variant} seed {spec.seed}: {result} ({seconds / 60:.1f} min)"
        doc = read_finished(spec.dir) if result == "finished" else None
        if doc is not None:
            record = doc["systems"][0]
            tars = ", ".join(f"TAR@{t['far']:g} {100 * t['tar']:.2f}%" for t in record["tar_at_far"] if t["measurable"])
            line += f": EER {100 * record['eer']:.2f}%, {tars}"
        elif result == "failed":
            line += f"; see {spec.dir / 'train.log'}"
        return line

    if jobs == 1:
        for i, (spec, task) in enumerate(todo):
            echo(start_line(i, spec, task))
            t0 = time.perf_counter()
            try:
                result = execute(task)
            except KeyboardInterrupt:
                result = "interrupted"
            status[spec.dir] = result
            echo(end_line(i, spec, result, time.perf_counter() - t0))
            if result == "interrupted":
                break
    else:
        status.update(_run_parallel(todo, jobs, echo, start_line, end_line))
    for spec, _ in todo:
        status.setdefault(spec.dir, "skipped")
    return status


def _run_parallel(todo, jobs: int, echo, start_line, end_line) -> dict[Path, str]:
    ctx = multiprocessing.get_context("spawn")
    running: dict[int, tuple[int, RunSpec, multiprocessing.process.BaseProcess, float]] = {}
    status: dict[Path, str] = {}
    queue = list(enumerate(todo))
    stopping = False
    try:
        while queue or running:
            while queue and len(running) < jobs and not stopping:
                i, (spec, task) = queue.pop(0)
                proc = ctx.Process(target=_child, args=(task,), name=f"bench-{spec.variant}-{spec.seed}")
                proc.start()
                running[proc.sentinel] = (i, spec, proc, time.perf_counter())
                echo(start_line(i, spec, task))
            if not running:
                break
            try:
                ready = wait_for(list(running))
            except KeyboardInterrupt:
                stopping = True
                for _, _, proc, _ in running.values():
                    if proc.pid is not None:
                        os.kill(proc.pid, signal.SIGINT)  # the trainer checkpoints and stops
                continue
            for sentinel in ready:
                i, spec, proc, t0 = running.pop(sentinel)
                proc.join()
                result = {v: k for k, v in _EXIT.items()}.get(proc.exitcode, "failed")
                status[spec.dir] = result
                echo(end_line(i, spec, result, time.perf_counter() - t0))
                if result == "interrupted":
                    stopping = True
    finally:
        for _, _, proc, _ in running.values():  # only reached early on a second Ctrl-C or an error
            proc.join()
    return status
