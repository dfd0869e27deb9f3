"""The training loop: steps with checkpoints, validation and logs; exact resume; DDP. Built from a config or objects.

Determinism: the batches of an epoch are a pure function of (seed, epoch); each sample's augmentation is seeded by
(seed, epoch, index) (:mod:`.loader`); the global RNG state is saved in every checkpoint. A run interrupted at any
step and resumed therefore ends with exactly the weights of an uninterrupted run. Under torch.distributed every rank
builds the same global batch and takes its slice; BatchNorm statistics are all-reduced (:class:`CrossRankBatchNorm`),
so a data-parallel step equals a single-process step on the global batch. The loop's jobs around the steps
(checkpoints, margin warm-up, A3M-I re-initialization, TensorBoard, the progress bar, the final report) are
callbacks (:mod:`.callbacks`).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from .._io import OutputLock, output_dir, write_text
from ..checkpoint import CHECKPOINT_NAME, save_checkpoint
from ..data import batch_plan
from ..heads import full_state_dicts, local_state_dicts, sharded_parameter_names, sharded_parameters, unchecked
from ..inference import embed
from ..losses import main_head
from ..models.base import ImageBackbone
from ..protocols import all_pairs, check_pairs
from ..report.tables import DEFAULT_FARS, system_metrics
from . import distributed as D
from .build import build_from_config
from .callbacks import (
    Callback,
    Checkpointing,
    FinalReport,
    LogLines,
    MarginWarmup,
    ProgressBar,
    PrototypeReinit,
    TensorBoard,
)
from .config import DEFAULTS, merge
from .loader import TrainingLoader
from .optimizers import build_optimizer
from .precision import amp_dtype, precision_name, resolve_device
from .resume import stored_state
from .schedules import build_schedule
from .schema import validate_config
from .sparse_optim import LazySGD

__all__ = ["Trainer"]

#: the config sections that say what to build; a trainer of user objects records only the rest (how to train)
_BUILD_KEYS = {"data", "model"}
_LOSS_BUILD_KEYS = {"name", "params", "aux", "init_std"}


def _channels_last(setting: bool | str, model: nn.Module) -> bool:
    """``channels_last: auto`` is on for image backbones (2-D convolutions on image batches), off otherwise."""
    if setting == "auto":
        return isinstance(model, ImageBackbone) and any(isinstance(m, nn.Conv2d) for m in model.modules())
    return bool(setting)


def _compile_backend(setting: bool | str) -> str:
    """``compile: true`` → inductor; a name must be one of torch.compile's backends."""
    if setting is True:
        return "inductor"
    import torch._dynamo

    names = torch._dynamo.list_backends(exclude_tags=())
    if setting not in names:
        raise ValueError(f"compile: {setting!r} is not a torch.compile backend; use true (inductor) or one of {names}")
    return setting


class _TrainStep(nn.Module):
    """backbone (under autocast) → float32 embeddings → loss; one module so DDP averages every gradient."""

    def __init__(self, backbone: nn.Module, loss: nn.Module, amp_dtype: torch.dtype | None, device_type: str):
        super().__init__()
        self.backbone, self.loss = backbone, loss
        self.amp_dtype, self.device_type = amp_dtype, device_type

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(
            self.device_type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        ):
            emb = self.backbone(x)
        return self.loss(emb.float(), y)


class Trainer:
    """Train ``model`` with ``loss`` on ``train_set``; evaluate all pairs of ``test_set`` (open set).

    Everything else comes from ``config`` (the keys of :data:`veriloss.train.config.DEFAULTS` that say how to train:
    epochs, batch size, optimizer, schedule, precision, validation, checkpoints, logs; missing keys take their
    defaults), unless given as objects: ``optimizer`` (a ``torch.optim.Optimizer`` over the model's and the loss's
    parameters), ``schedule`` (a function ``total_steps -> LR scheduler``) and ``callbacks``
    (:class:`veriloss.train.callbacks.Callback`). :meth:`from_config` builds model, loss and data from a whole
    config and calls this constructor: both paths are the same loop.

    ``fit()`` writes into ``out_dir``: ``checkpoint.pt`` (atomic; every ``checkpoint.every_steps``, at each epoch
    end, on Ctrl-C and at the end), ``history.jsonl``, ``metrics.json``/``.md`` and plots (the final evaluation),
    TensorBoard logs in ``tb/``. ``resume=True`` continues from the checkpoint there, exactly; a changed config is
    refused unless ``force``.

    >>> from veriloss.data import SyntheticIdentities
    >>> from veriloss.heads import create
    >>> from veriloss.models import create as create_model
    >>> import tempfile
    >>> model = create_model("small-cnn", width=4, embedding_dim=16)
    >>> trainer = Trainer(model, create("cosface", 16, 8), SyntheticIdentities(8, 4, image_size=28),
    ...                   SyntheticIdentities(4, 4, image_size=28, identity_offset=8), tempfile.mkdtemp(),
    ...                   config={"batch_size": 8, "max_steps": 2, "amp": "none", "log": {"tensorboard": False}},
    ...                   log=lambda message: None)
    >>> trainer.fit()["steps"]
    2
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        train_set: Dataset,
        test_set: Dataset | None,
        out_dir: str | Path,
        *,
        config: dict | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        schedule: Callable[[int], object] | None = None,
        callbacks: Sequence[Callback] = (),
        reinit_set: Callable[[], Dataset] | None = None,
        resume: bool = False,
        force: bool = False,
        log: Callable[[str], None] | None = None,
        test_chunks: tuple[int, int] | None = None,
        names: tuple[str, str] | None = None,
        model_args: dict | None = None,
    ):
        settings = validate_config(merge(DEFAULTS, config or {}), "config")
        if names is None:  # user objects: record how to train, not what the defaults would have built
            settings = {k: v for k, v in settings.items() if k not in _BUILD_KEYS}
            settings["loss"] = {k: v for k, v in settings["loss"].items() if k not in _LOSS_BUILD_KEYS}
            names = (type(main_head(loss)).__name__, type(train_set).__name__)
        self.config, (self.name, self.data_name) = settings, names
        self.out = Path(out_dir)
        log = log or (lambda msg: print(msg, file=sys.stderr))  # stdout is for results (the metrics table)
        self.log = log if D.rank() == 0 else (lambda _msg: None)
        if D.rank() == 0:
            output_dir(self.out)  # a file, an unwritable or read-only folder fails now, not after training
        stored, self.config_changes = stored_state(self.out, settings, force, self.log) if resume else (None, [])
        self.device = resolve_device(str(settings["device"]))
        self.amp_dtype = amp_dtype(str(settings["amp"]), self.device)
        self.seed = int(settings["seed"])
        self.train_set, self.test_set, self.model_args = train_set, test_set, model_args
        self.test_chunks = test_chunks
        self.backbone, self.loss, self.head = model, loss, main_head(loss)
        self.channels_last = _channels_last(settings["channels_last"], model)
        if self.channels_last:
            self.backbone.to(memory_format=torch.channels_last)  # in place: an optimizer given already still holds W
        if settings["compile"]:
            self.backbone.compile(backend=_compile_backend(settings["compile"]))  # in place: same state-dict keys
        stats = getattr(loss, "statistics", None)
        self._stats_on_device = callable(stats) and "as_tensors" in inspect.signature(stats).parameters
        for part in self.loss.modules():  # the steps skip the label checks (unchecked): the range is checked here
            if getattr(part, "num_classes", None) is not None and part.num_classes < train_set.num_classes:
                raise ValueError(
                    f"the loss's {type(part).__name__} has {part.num_classes} classes but the training set has"
                    f" {train_set.num_classes} identities: build it with num_classes={train_set.num_classes}"
                )
        if D.is_distributed():
            D.convert_batchnorm(self.backbone)
        self.step_module = _TrainStep(self.backbone, self.loss, self.amp_dtype, self.device.type).to(self.device)
        self.train_module: nn.Module = self.step_module
        self.sharded_params = sharded_parameters(self.loss)
        if D.is_distributed():
            # a sharded head's slices differ per rank: DDP must neither broadcast nor average them
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                self.step_module, sharded_parameter_names(self.step_module)
            )
            self.train_module = DistributedDataParallel(
                self.step_module, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.optimizer = optimizer or build_optimizer(self.backbone, self.loss, settings["optim"])
        if getattr(self.head, "sparse_gradients", False) and D.is_distributed() and not self.sharded_params:
            raise ValueError(
                "streaming heads run under torch.distributed only sharded (loss.params.sharded: true): DDP does"
                " not average sparse gradients"
            )
        self.batch_size = int(settings["batch_size"])
        if self.batch_size % D.world_size():
            raise ValueError(f"batch_size {self.batch_size} must be divisible by the {D.world_size()} processes")
        self.batch_plan = batch_plan(settings["sampler"], train_set.labels, self.batch_size, self.seed)
        self.steps_per_epoch = len(self._epoch_batches(0))
        if self.steps_per_epoch == 0:
            raise ValueError(f"the training set ({len(self.train_set)} samples) is smaller than one batch")
        self.total_steps = int(settings["max_steps"] or settings["epochs"] * self.steps_per_epoch)
        make_schedule = schedule or (lambda total: build_schedule(self.optimizer, settings["schedule"], total))
        self.scheduler = make_schedule(self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.callbacks = [*self._builtin_callbacks(reinit_set or (lambda: train_set)), *callbacks]
        self.step = self.epoch = self.batch_in_epoch = 0
        self._nonfinite_at = torch.full((), -1, dtype=torch.long, device=self.device)  # first step with a bad loss
        self._loader: TrainingLoader | None = None
        self.history: list[dict] = []
        self.finished = False
        self._interrupted = False
        self._rewrite_history = False
        self._saved_at: int | None = None
        self._check_test_split()
        if stored is not None:
            self._resume(stored)

    @classmethod
    def from_config(
        cls,
        config: dict,
        out_dir: str | Path,
        resume: bool = False,
        log: Callable[[str], None] | None = None,
        force: bool = False,
        callbacks: Sequence[Callback] = (),
    ) -> Trainer:
        """Build the data (``data``), the backbone (``model``) and the loss (``loss``) of a whole config (see
        :func:`veriloss.train.load_config`), then the trainer. The model and loss sections are checked on toy
        sizes before any data is read, and every sample's header before training."""
        config = validate_config(merge(DEFAULTS, config), "config")
        objects = build_from_config(config, log or (lambda m: print(m, file=sys.stderr)))
        return cls(**objects, out_dir=out_dir, config=config, resume=resume, force=force, log=log, callbacks=callbacks)

    # --- setup -------------------------------------------------------------------------------------------------
    def _builtin_callbacks(self, reinit_set: Callable[[], Dataset]) -> list[Callback]:
        cfg = self.config
        out: list[Callback] = [Checkpointing(cfg["checkpoint"]["every_steps"])]
        warmup = int(cfg["loss"].get("margin_warmup_steps") or 0)
        if warmup:
            out.append(MarginWarmup(self.head, warmup))
        reinit = cfg["loss"].get("reinit")
        if reinit:
            if not getattr(self.head, "can_reinitialize", False):
                raise ValueError(
                    f"loss.reinit needs a head that re-initializes its prototypes (a3m-i), not {self.name!r}"
                )
            ((kind, value),) = reinit.items()
            per = {"at": self.total_steps, "epoch": self.steps_per_epoch, "step": 1}[kind]
            at = round(value * per) if kind == "at" else value * per
            out.append(PrototypeReinit(at, reinit_set, cfg["validate"]["batch_size"]))
        if cfg["log"]["tensorboard"]:
            out.append(TensorBoard(self.out / "tb"))
        if cfg["log"]["progress"]:
            out += [ProgressBar(), LogLines()]  # a bar on a terminal, else a line per logging interval
        return [*out, FinalReport()]

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        """The global batches of ``epoch`` (:func:`veriloss.data.batch_plan`): a pure function of (seed, epoch)."""
        return self.batch_plan.batches(epoch)

    def _check_test_split(self) -> None:
        """Fail before training when the evaluations could not run: the test split, and the validation subset of
        its first ``validate.max_samples`` samples, need genuine and impostor pairs."""
        if self.test_set is None:
            return
        labels, n_val = self.test_set.labels, self.config["validate"]["max_samples"]
        check_pairs(labels, "the test split", "data")
        if self.config["validate"]["every_epochs"] and n_val:
            check_pairs(labels[:n_val], f"the validation subset (first validate.max_samples={n_val})",
                        "validate.max_samples")  # fmt: skip

    @property
    def precision(self) -> str:
        """What ``amp`` resolved to here (``auto`` differs between machines): logged and kept in metrics.json."""
        return precision_name(self.amp_dtype)

    @property
    def report_fars(self) -> list[float]:
        """The FARs of the final report: ``validate.far`` and the report's defaults."""
        return sorted({*self.config["validate"]["far"], *DEFAULT_FARS})

    # --- state -------------------------------------------------------------------------------------------------
    def state(self) -> dict:
        """The checkpoint; a sharded head's prototypes (and their optimizer state) whole on rank 0 (a collective)."""
        loss_state, optim_state = full_state_dicts(self.loss, self.optimizer)
        return {
            "config": self.config,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "total_steps": self.total_steps,
            "finished": self.finished,
            "model_args": self.model_args,
            "backbone": self.backbone.state_dict(),
            "loss": loss_state,
            "optimizer": optim_state,
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "history": self.history,
            "config_changes": self.config_changes,
            "num_classes": self.train_set.num_classes,
        }

    def flush(self) -> None:
        """Bring lazily updated rows up to date (LazySGD) before W is read outside a training step."""
        if isinstance(self.optimizer, LazySGD):
            self.optimizer.flush()

    def save(self) -> None:
        """Write the checkpoint (a collective under torch.distributed: every rank calls it); never one of weights
        that a non-finite loss has touched."""
        self._check_finite()
        self.flush()
        state = self.state()  # on every rank: a sharded head's prototypes are gathered to rank 0 (a collective)
        if D.rank() == 0:
            save_checkpoint(state, self.out)
        if D.is_distributed():
            torch.distributed.barrier()
        self._saved_at = self.step

    def _resume(self, state: dict) -> None:
        """Restore the trainer from a checked checkpoint (see :meth:`_stored_state`)."""
        path = self.out / CHECKPOINT_NAME
        if state["num_classes"] != self.train_set.num_classes:
            raise ValueError(
                f"--resume: {path} was trained on {state['num_classes']} identities, the training set now has "
                f"{self.train_set.num_classes}; use the data it was trained on or another --out"
            )
        try:
            self.backbone.load_state_dict(state["backbone"])
            loss_state, optim_state = local_state_dicts(self.loss, self.optimizer, state["loss"], state["optimizer"])
            self.loss.load_state_dict(loss_state)
            self.optimizer.load_state_dict(optim_state)
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            torch.set_rng_state(state["rng"])
            if state.get("cuda_rng") and self.device.type == "cuda":
                torch.cuda.set_rng_state_all(state["cuda_rng"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(
                f"--resume: {path} does not fit the configured model, loss or optimizer ({first}); "
                "resume with the config it was trained with, or use another --out"
            ) from None
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.history, self.finished = state["history"], state["finished"]
        self._rewrite_history = True  # rows logged after the checkpoint were lost with the interruption
        self.log(f"resumed from {path} at step {self.step} (epoch {self.epoch}, batch {self.batch_in_epoch})")

    # --- the loop ----------------------------------------------------------------------------------------------
    def _emit(self, event: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """One optimizer step. Returns the loss and the loss's statistics as device tensors: nothing here waits for
        the device (a non-finite loss is recorded on the device and reported at the next log step or checkpoint)."""
        layout = torch.channels_last if self.channels_last and x.dim() == 4 else torch.preserve_format
        x = x.to(self.device, non_blocking=True, memory_format=layout)
        y = y.to(self.device, non_blocking=True)
        with unchecked():  # labels in range (checked once at setup), the loss's finiteness below
            loss = self.train_module(x, y)
        bad = (self._nonfinite_at < 0) & ~torch.isfinite(loss.detach())
        self._nonfinite_at = torch.where(bad, self.step, self._nonfinite_at)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        clip = self.config["grad_clip"]
        if clip:
            self.scaler.unscale_(self.optimizer)
            D.clip_grad_norm(self.step_module.parameters(), float(clip), self.sharded_params)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self._stats_on_device:
            stats = self.loss.statistics(as_tensors=True)
        else:
            stats = self.loss.statistics() if hasattr(self.loss, "statistics") else {}
        return loss.detach(), stats

    def _check_finite(self) -> None:
        """Raise if a step since the start had a non-finite loss (one host read: at log steps and checkpoints)."""
        at = int(self._nonfinite_at)
        if at >= 0:
            saved = f"the last checkpoint (step {self._saved_at}) is kept" if self._saved_at else "no checkpoint"
            raise ValueError(
                f"step {at}: the loss is not finite; lower the learning rate (or set grad_clip); {saved}, nothing"
                " later is written"
            )

    def _on_sigint(self, signum, frame) -> None:
        self._interrupted = True

    def fit(self) -> dict:
        """Train to the end and evaluate; returns the final record (:func:`veriloss.report.tables.system_metrics`
        plus ``status``, ``steps``, ``precision``, ``n_embeddings``) or ``{"status": "interrupted", "step": N}``.

        The output folder is held for the whole call (:class:`veriloss._io.OutputLock`): a second process training
        into it is refused. Ctrl-C checkpoints and stops, also during an evaluation; a sample that cannot be read
        stops the run with a checkpoint of the last finished step.
        """
        lock = OutputLock(self.out, "training folder").acquire() if D.rank() == 0 else None
        metrics: dict = {"status": "failed"}
        try:
            metrics = self._fit()
            return metrics
        finally:
            try:
                self._emit("on_fit_end", metrics)
            finally:
                if lock is not None:
                    lock.release()

    def _fit(self) -> dict:
        if self._rewrite_history and D.rank() == 0:  # replay after a resume starts from the checkpoint's rows
            write_text(self.out / "history.jsonl", "".join(json.dumps(row) + "\n" for row in self.history))
            self._rewrite_history = False
        if self.finished:
            self.log(f"{self.out} holds a finished run; nothing to do")
            path = self.out / "metrics.json"
            if path.exists():
                return {**json.loads(path.read_text())["systems"][0], "status": "finished"}
            with _sigint_raises():
                return self._final_metrics()
        self.log(f"device {self.device}, {self.precision}, {torch.get_num_threads()} thread(s)")
        previous = signal.signal(signal.SIGINT, self._on_sigint) if _main_thread() else None
        self._emit("on_fit_start")
        running: dict[str, torch.Tensor | float] = {}
        self._loader = TrainingLoader(self.train_set, self.batch_size, self.seed, self.config["num_workers"],
                                      pin_memory=self.device.type == "cuda")  # fmt: skip
        count, t0, self._saved_at = 0, time.perf_counter(), None
        try:
            while self.step < self.total_steps:
                batches = self._epoch_batches(self.epoch)
                for x, y in self._batches(batches[self.batch_in_epoch :], self.epoch):
                    self._emit("on_step_start")
                    loss, stats = self._train_step(x, y)
                    self.step += 1
                    self.batch_in_epoch += 1
                    for key, value in {"loss": loss, **stats}.items():  # float64 sums, on the device
                        value = value.double() if isinstance(value, torch.Tensor) else float(value)
                        running[key] = running[key] + value if key in running else value
                    count += 1
                    if self.step % self.config["log"]["every_steps"] == 0 or self.step == self.total_steps:
                        self._check_finite()
                        row = {"step": self.step, "epoch": self.epoch, "lr": self.optimizer.param_groups[0]["lr"]}
                        row.update({k: float(v) / max(count, 1) for k, v in running.items()})
                        self._log_row({**row, "seconds": time.perf_counter() - t0})
                        running, count = {}, 0
                    self._emit("on_step_end", loss, stats)
                    if self._interrupted or self.step >= self.total_steps:
                        break
                if self._interrupted:
                    return self._stop()
                if self.batch_in_epoch >= len(batches):
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    every = self.config["validate"]["every_epochs"]
                    if every and self.epoch % every == 0 and self.step < self.total_steps:
                        try:
                            with _sigint_raises():
                                self._validate()
                        except KeyboardInterrupt:
                            return self._stop()
                    self._emit("on_epoch_end")
            if self._saved_at != self.step:
                self.save()  # the last step is on disk before the final evaluation, which Ctrl-C may stop
            try:
                with _sigint_raises():
                    self.finished = True
                    metrics = self._final_metrics()
            except KeyboardInterrupt:
                self.finished = False
                self.log(f"interrupted during the final evaluation; step {self.step} is saved: --resume evaluates")
                return {"status": "interrupted", "step": self.step}
            self.save()
            return metrics
        finally:
            self._loader.close()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _stop(self) -> dict:
        self.save()
        self.log(f"interrupted: checkpoint written at step {self.step}; continue with --resume")
        return {"status": "interrupted", "step": self.step}

    def _batches(self, batches: list[list[int]], epoch: int):
        """The loader's batches; a failure to read one (a corrupt sample) writes a checkpoint first, so the run
        resumes from the last finished step once the data is mended."""
        it = iter(self._loader.epoch(batches, epoch))
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except Exception as err:
                self.save()
                if isinstance(err, ValueError):
                    text = str(err).strip().splitlines()
                    reason = text[-1] if text else type(err).__name__
                    raise ValueError(
                        f"reading the training batch after step {self.step} failed: {reason}. A checkpoint of step "
                        f"{self.step} is written: mend or remove the sample (or set data.skip_corrupt: true where "
                        "the dataset has it), then --resume"
                    ) from None
                self.log(f"reading a training batch failed; checkpoint written at step {self.step}")
                raise
            yield batch

    # --- logging and evaluation ----------------------------------------------------------------------------------
    def _log_row(self, row: dict) -> None:
        self.history.append(row)
        if D.rank() == 0:
            with open(self.out / "history.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
        self._emit("on_log", row)

    def evaluate(self, max_samples: int | None = None, far: Sequence[float] | None = None):
        """All-pairs open-set evaluation of the test split (its first ``max_samples`` samples when given)."""
        self.flush()
        far = list(far or self.config["validate"]["far"])
        n = len(self.test_set) if not max_samples else min(int(max_samples), len(self.test_set))
        emb = embed(self.backbone, self.test_set, range(n), self.config["validate"]["batch_size"], self.device,
                    chunks=self.test_chunks, channels_last=self.channels_last)  # fmt: skip
        return all_pairs(emb, self.test_set.labels[:n], far=far)

    def _validate(self) -> None:
        if D.rank() != 0 or self.test_set is None:
            return
        result = self.evaluate(self.config["validate"]["max_samples"])
        self._emit("on_evaluation", result, False)
        row = {"step": self.step, "epoch": self.epoch, "val_eer": float(result.eer)}
        row.update({f"val_tar@{t.far_target:g}": float(t.tar) for t in result.tar if t.measurable})
        self._log_row(row)
        self.log(f"epoch {self.epoch} (step {self.step}): validation EER {100 * float(result.eer):.2f}%")

    def _final_metrics(self) -> dict:
        """Evaluate the whole test split: the system record of :func:`veriloss.report.tables.system_metrics` plus
        ``status``, ``n_embeddings``, ``steps``, ``precision`` and the mean α-head statistics over training (the
        report files are written by :class:`~veriloss.train.callbacks.FinalReport` at the end of :meth:`fit`)."""
        if D.rank() != 0 or self.test_set is None:
            return {"status": "finished", "steps": self.step}
        far = self.report_fars
        result = self.evaluate(far=far)
        extra = {"n_embeddings": result.n_embeddings, "steps": self.step, "precision": self.precision}
        train_rows = [r for r in self.history if "loss" in r]
        for key in ("support_size", "py_zero"):
            values = [r[key] for r in train_rows if key in r]
            if values:
                extra[f"train_{key}_mean"] = float(np.mean(values))
        self._emit("on_evaluation", result, True)
        return {**system_metrics(self.name, result.genuine, result.impostor, far, extra=extra), "status": "finished"}


@contextlib.contextmanager
def _sigint_raises():
    """Ctrl-C raises ``KeyboardInterrupt`` inside the block (evaluations stop at once), whatever handler is set."""
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
