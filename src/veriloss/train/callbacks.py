"""Callbacks: what the training loop tells the outside, and the built-in jobs that listen to it.

A :class:`Callback` may implement any of these events (the trainer passes itself first):

* ``on_fit_start(trainer)``: once, before the first step of this call (also after a resume);
* ``on_step_start(trainer)``: before each step (``trainer.step`` steps are done): change the loss here;
* ``on_step_end(trainer, loss, stats)``: after each step, with the batch loss and the head's statistics as 0-dim
  device tensors (reading one, e.g. ``float(loss)``, waits for the device: on a GPU, do it only now and then);
* ``on_log(trainer, row)``: each history row (training means every ``log.every_steps``, validation results);
* ``on_epoch_end(trainer)``: after an epoch (and its validation), before its checkpoint;
* ``on_evaluation(trainer, result, final)``: each all-pairs evaluation of the test split (``final``: the last one);
* ``on_fit_end(trainer, metrics)``: once, at the end of the call; ``metrics["status"]`` is ``finished``,
  ``interrupted`` or ``failed``.

Built in (the trainer adds them from its config): :class:`Checkpointing`, :class:`MarginWarmup`,
:class:`PrototypeReinit` (A3M-I), :class:`TensorBoard`, :class:`ProgressBar` (on a terminal), :class:`LogLines`
(without one) and :class:`FinalReport`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn

from ..functional.normalize import l2_normalize
from ..inference import embed
from . import distributed as D

__all__ = [
    "Callback",
    "Checkpointing",
    "FinalReport",
    "LogLines",
    "MarginWarmup",
    "ProgressBar",
    "PrototypeReinit",
    "TensorBoard",
]


class Callback:
    """The base of every callback: each event does nothing unless overridden (see the module docstring).

    >>> class CountSteps(Callback):
    ...     steps = 0
    ...     def on_step_end(self, trainer, loss, stats):
    ...         self.steps += 1
    """

    def on_fit_start(self, trainer) -> None: ...

    def on_step_start(self, trainer) -> None: ...

    def on_step_end(self, trainer, loss: float, stats: dict) -> None: ...

    def on_log(self, trainer, row: dict) -> None: ...

    def on_epoch_end(self, trainer) -> None: ...

    def on_evaluation(self, trainer, result, final: bool) -> None: ...

    def on_fit_end(self, trainer, metrics: dict) -> None: ...


class Checkpointing(Callback):
    """Write the checkpoint every ``every_steps`` steps and at each epoch end (the loop also writes one when it is
    interrupted, when a sample cannot be read, and before the final evaluation)."""

    def __init__(self, every_steps: int):
        self.every_steps = int(every_steps)

    def on_step_end(self, trainer, loss, stats) -> None:
        if trainer.step % self.every_steps == 0:
            trainer.save()

    def on_epoch_end(self, trainer) -> None:
        trainer.save()


class MarginWarmup(Callback):
    """Ramp a head's margin from 0 to its configured value over ``steps`` steps: ``head.ramp_margin(f)`` with
    f = min(1, (step + 1)/steps) (additive margins scale linearly; Q-Margin's κ geometrically, ``κ^f``).
    ``steps`` = 0 leaves the head alone; a head without a margin (``has_margin`` false) is an error.
    """

    def __init__(self, head: nn.Module, steps: int):
        if steps < 0:
            raise ValueError(f"loss.margin_warmup_steps must be ≥ 0, got {steps}")
        self.head, self.steps = head, steps
        if steps and not getattr(head, "has_margin", False):
            raise ValueError(f"loss.margin_warmup_steps is set but the {type(head).__name__} head has no margin")

    def __call__(self, step: int) -> None:
        if self.steps:
            self.head.ramp_margin(min(1.0, (step + 1) / self.steps))

    def on_step_start(self, trainer) -> None:
        self(trainer.step)


class PrototypeReinit(Callback):
    """A3M-I: before step ``at_step``, every prototype ← the normalized mean of its class's normalized embeddings
    of ``dataset`` (the training set without augmentation; embedded by rank slices, summed over ranks), and W's
    optimizer state is reset (:meth:`veriloss.heads.alpha.A3MIHead.reinitialize_prototypes`)."""

    def __init__(self, at_step: int, dataset: Callable[[], torch.utils.data.Dataset], batch_size: int = 512):
        self.at_step, self.dataset, self.batch_size = int(at_step), dataset, int(batch_size)

    def on_step_start(self, trainer) -> None:
        if trainer.step != self.at_step:
            return
        trainer.flush()
        plain = self.dataset()
        r, w = D.rank(), D.world_size()
        idx = list(range(r, len(plain), w))
        emb = embed(trainer.backbone, plain, idx, self.batch_size, trainer.device, trainer.amp_dtype)
        labels = plain.labels[idx]
        k = plain.num_classes
        x = l2_normalize(emb, dim=1)
        sums = torch.zeros(k, x.shape[1]).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).float()
        if D.is_distributed():
            sums, counts = sums.to(trainer.device), counts.to(trainer.device)
            dist.all_reduce(sums)
            dist.all_reduce(counts)
        means = sums.cpu() / counts.cpu().clamp_min(1)[:, None]
        n = trainer.head.reinitialize_prototypes(means, trainer.optimizer)
        trainer.log(f"step {trainer.step}: re-initialized {n} prototypes from class means")


class TensorBoard(Callback):
    """TensorBoard logs in ``folder``: every history row (``train/…``, ``val/…``) and, at the end of a finished run,
    the final test metrics (``test/eer``, ``test/tar@f``) with the hyperparameters (the config flattened by
    :meth:`hparams`) for the HPARAMS tab, all in the run's own event file. Rank 0 only; nothing when tensorboard is
    not installed."""

    def __init__(self, folder):
        self.folder, self.writer = folder, None

    @staticmethod
    def hparams(config: dict, prefix: str = "") -> dict:
        """The config flattened for TensorBoard: nested keys joined by ".", numbers, strings and booleans as they
        are, lists (and anything else) as JSON text, unset (None) values left out.

        >>> TensorBoard.hparams({"optim": {"lr": 0.1, "betas": [0.9, 0.999]}, "grad_clip": None, "amp": "auto"})
        {'optim.lr': 0.1, 'optim.betas': '[0.9, 0.999]', 'amp': 'auto'}
        """
        import json

        out: dict = {}
        for key, value in config.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                out.update(TensorBoard.hparams(value, f"{name}."))
            elif isinstance(value, (bool, int, float, str)):
                out[name] = value
            elif value is not None:
                out[name] = json.dumps(value, default=str)
        return out

    def on_fit_start(self, trainer) -> None:
        if D.rank() != 0:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: logs go to history.jsonl only
            return
        self.writer = SummaryWriter(str(self.folder), purge_step=trainer.step or None)

    def on_log(self, trainer, row: dict) -> None:
        if self.writer is None:
            return
        for key, value in row.items():
            if key in ("step", "epoch", "seconds"):
                continue
            tag = f"val/{key[4:]}" if key.startswith("val_") else f"train/{key}"
            self.writer.add_scalar(tag, value, row["step"])

    def on_fit_end(self, trainer, metrics: dict) -> None:
        if self.writer is None:
            return
        if metrics.get("status") == "finished" and "eer" in metrics:
            final = {"test/eer": metrics["eer"]}
            for t in metrics.get("tar_at_far", []):
                if t.get("measurable"):
                    final[f"test/tar@{t['far']:g}"] = t["tar"]
            for tag, value in final.items():
                self.writer.add_scalar(tag, value, trainer.step)
            from torch.utils.tensorboard.summary import hparams

            # what SummaryWriter.add_hparams writes, but into this run (add_hparams opens a new run folder)
            for summary in hparams(self.hparams(trainer.config), final):
                self.writer._get_file_writer().add_summary(summary, trainer.step)
        self.writer.close()
        self.writer = None


class ProgressBar(Callback):
    """A tqdm bar of steps with the batch loss and accuracy, on a terminal (rank 0)."""

    def __init__(self):
        self.bar = None

    def on_fit_start(self, trainer) -> None:
        if D.rank() != 0 or not sys.stderr.isatty():
            return
        from tqdm import tqdm

        self.bar = tqdm(total=trainer.total_steps, initial=trainer.step, unit="step", dynamic_ncols=True)

    def on_step_end(self, trainer, loss, stats) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_log(self, trainer, row: dict) -> None:  # the means of the logging interval: no host read per step
        if self.bar is not None and "loss" in row:
            self.bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row.get('accuracy', float('nan')):.3f}")

    def on_fit_end(self, trainer, metrics) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class LogLines(Callback):
    """Without a terminal (a batch job, a pipe, a log file), where :class:`ProgressBar` shows nothing: one line per
    history row on the trainer's log (rank 0). Training rows give the means since the previous row and the seconds
    since the run (or its resumption) started; validation rows their EER and TAR@FAR. ``stream`` is the one whose
    being a terminal turns the lines off (default ``sys.stderr``, where the trainer logs).

    >>> LogLines.line({"step": 120, "epoch": 0, "lr": 0.1, "loss": 5.4123, "accuracy": 0.12, "seconds": 3.21}, 903)
    'step 120/903 (epoch 0) loss 5.412 acc 0.12 lr 0.1 3.2 s'
    >>> LogLines.line({"step": 301, "epoch": 1, "val_eer": 0.1234, "val_tar@0.001": 0.456}, 903)
    'step 301/903 (epoch 1) validation EER 12.34% TAR@FAR=0.001 45.60%'
    """

    NAMES = (("accuracy", "acc"), ("support_size", "support"), ("py_zero", "p_y=0"))

    def __init__(self, stream=None):
        self.stream, self.active = stream, False

    def on_fit_start(self, trainer) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        self.active = D.rank() == 0 and not getattr(stream, "isatty", lambda: False)()

    def on_log(self, trainer, row: dict) -> None:
        if self.active and "loss" in row:  # the trainer logs validation rows itself, terminal or not
            trainer.log(self.line(row, trainer.total_steps))

    @classmethod
    def line(cls, row: dict, total_steps: int) -> str:
        """The log line of one history row."""
        parts = [f"step {row['step']}/{total_steps} (epoch {row['epoch']})"]
        val = {k[4:]: v for k, v in row.items() if k.startswith("val_")}
        if val:
            parts.append("validation")
            for key, value in sorted(val.items(), key=lambda kv: kv[0] != "eer"):
                name = "EER" if key == "eer" else key.replace("tar@", "TAR@FAR=")
                parts.append(f"{name} {100 * value:.2f}%")
            return " ".join(parts)
        stats = [k for k in row if k not in ("step", "epoch", "seconds", "lr", "loss")]
        for key in ("loss", *stats, "lr"):
            if key in row:
                parts.append(f"{dict(cls.NAMES).get(key, key)} {row[key]:.4g}")
        if "seconds" in row:
            parts.append(f"{row['seconds']:.1f} s")
        return " ".join(parts)


class FinalReport(Callback):
    """After the final evaluation, the run's report in the output folder: ``metrics.md``/``.json`` (with the
    config), ``roc.png``, ``det.png``, ``hist.png`` (log density, the TAR@FAR thresholds marked) and ``curves.png``
    (rank 0)."""

    def __init__(self):
        self.result = None

    def on_evaluation(self, trainer, result, final: bool) -> None:
        if final:
            self.result = result

    def on_fit_end(self, trainer, metrics: dict) -> None:
        if D.rank() != 0 or self.result is None or metrics.get("status") != "finished":
            return
        from ..report.curves import plot_training_curves
        from ..report.histograms import score_histograms
        from ..report.plots import det_plot, roc_plot
        from ..report.tables import write_metrics

        result, far = self.result, trainer.report_fars
        title = f"{trainer.name} on {trainer.data_name}: all pairs of {result.n_embeddings:,} test embeddings"
        meta: dict = {"config": trainer.config}
        if trainer.config_changes:  # --resume --force with another config: the run is a hybrid, and says so
            meta["config_changes"] = trainer.config_changes
        record = {k: v for k, v in metrics.items() if k != "status"}
        write_metrics(trainer.out, [record], title=title, meta=meta)
        systems = {trainer.name: (result.genuine, result.impostor)}
        roc_plot(systems, trainer.out / "roc.png", far=far, title=title)
        det_plot(systems, trainer.out / "det.png", far=far, title=title)
        score_histograms(systems, trainer.out / "hist.png", title=title, far=far)
        curves_title = f"{trainer.name} on {trainer.data_name}: training ({trainer.step:,} steps)"
        plot_training_curves(trainer.history, trainer.out / "curves.png", title=curves_title)
        self.result = None
