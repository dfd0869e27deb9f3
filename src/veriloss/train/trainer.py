"""The trainer: config → data, backbone, loss → steps with checkpoints, validation, logs; exact resume; DDP.

Determinism: the batches of an epoch are a pure function of (seed, epoch); each sample's augmentation is seeded by
(seed, epoch, index); the global RNG state is saved in every checkpoint. A run interrupted at any step and resumed
therefore ends with exactly the weights of an uninterrupted run. Under torch.distributed every rank builds the same
global batch and takes its slice; BatchNorm statistics are all-reduced (:class:`CrossRankBatchNorm`), so a
data-parallel step equals a single-process step on the global batch.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from .. import heads, models, pairwise
from .._io import OutputLock, output_dir, write_text
from ..checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from ..data import PKSampler, build_dataset, verify_dataset
from ..heads import sharded
from ..heads.alpha import A3MIHead
from ..protocols import all_pairs
from ..report.curves import plot_training_curves
from ..report.histograms import score_histograms
from ..report.plots import det_plot, roc_plot
from ..report.tables import DEFAULT_FARS, system_metrics, write_metrics
from . import distributed as D
from .callbacks import MarginWarmup
from .resume import describe_changes, unsafe_changes
from .sparse_optim import LazySGD

__all__ = ["Trainer", "build_loss", "check_sections", "embed", "main_head"]


# --------------------------------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------------------------------
def _fill(cls_params: dict, params: dict, embedding_dim: int, num_classes: int) -> dict:
    """Add embedding_dim / num_classes to ``params`` when the loss takes them and they are not given."""
    out = dict(params)
    for key, value in (("embedding_dim", embedding_dim), ("num_classes", num_classes)):
        if key in cls_params and key not in out:
            out[key] = value
    return out


def build_loss(loss_cfg: dict, embedding_dim: int, num_classes: int) -> nn.Module:
    """The training loss: a head (veriloss.heads) or a pairwise loss, plus weighted auxiliary pairwise losses."""
    name = loss_cfg["name"]
    params = dict(loss_cfg.get("params") or {})
    shard = params.pop("sharded", False)  # α heads: prototypes split over the processes (veriloss.heads.sharded)
    if not isinstance(shard, bool):
        raise ValueError(f"loss.params.sharded must be true or false, got {shard!r}")
    if shard:
        main = sharded.create(name, embedding_dim, num_classes, **params)
    elif name.lower() in heads.available() or name.lower() in heads.aliases():
        main = heads.create(name, embedding_dim, num_classes, **params)
    elif name.lower() in pairwise.available() or name.lower() in pairwise.aliases():
        spec = pairwise.describe(name)["parameters"]
        main = pairwise.create(name, **_fill(spec, params, embedding_dim, num_classes))
    else:
        valid = ", ".join(heads.available() + pairwise.available())
        raise ValueError(f"loss.name: unknown loss {name!r}; available: {valid}")
    _init_prototypes(main, loss_cfg.get("init_std"))
    aux = loss_cfg.get("aux") or []
    if not aux:
        return main
    terms = {}
    for i, term in enumerate(aux):
        if not isinstance(term, dict) or "name" not in term or "weight" not in term:
            raise ValueError(f"loss.aux[{i}] must be a mapping with 'name', 'weight' and optional 'params'")
        spec = pairwise.describe(term["name"])["parameters"]
        module = pairwise.create(term["name"], **_fill(spec, term.get("params") or {}, embedding_dim, num_classes))
        terms[term["name"]] = (float(term["weight"]), module)
    return pairwise.WeightedSum(main, terms)


def _init_prototypes(head: nn.Module, init_std: float | None) -> None:
    """``loss.init_std``: redraw the prototypes W (K×d) from N(0, init_std²), e.g. 0.01 as insightface does.

    For cosine heads only the direction of a prototype enters the logits, but its norm sets the effective learning
    rate of that direction (the gradient of ``W/‖W‖`` scales as ``1/‖W‖``, the step on the angle as ``1/‖W‖²``):
    rows of norm 0.01·√d learn far faster than the default rows of norm ≈ 1. A sharded head draws the whole K×d
    matrix and keeps its slice, so every world size starts from the same prototypes.
    """
    if init_std is None:
        return
    std = float(init_std)
    if not math.isfinite(std) or std <= 0:
        raise ValueError(f"loss.init_std must be a positive number or null, got {init_std!r}")
    weight = getattr(head, "weight", None)
    if not isinstance(weight, nn.Parameter) or weight.ndim != 2:
        raise ValueError(f"loss.init_std applies to heads with prototypes (W), not to {type(head).__name__}")
    start = int(getattr(head, "shard_start", 0))
    rows = int(getattr(head, "num_classes", weight.shape[0]))
    full = torch.empty(rows, weight.shape[1], dtype=weight.dtype).normal_(0.0, std)
    with torch.no_grad():
        weight.copy_(full[start : start + weight.shape[0]])


def check_sections(config: dict) -> None:
    """Check the sections the config schema leaves to their registries, before any data is read: the model's
    parameters (built on the meta device; for real where construction computes, as the speaker front-ends do) and
    the loss with its parameters and auxiliary terms (on 8 dimensions and 4 classes)."""
    model_cfg = dict(config["model"])
    name = model_cfg.pop("name", None)
    if not name:
        raise ValueError("model.name is required; available: " + ", ".join(models.available()))
    try:
        with torch.device("meta"):
            models.create(name, **model_cfg)
    except RuntimeError:  # pragma: no cover - depends on the model: one that computes while it is built
        models.create(name, **model_cfg)
    loss = main_head(build_loss(config["loss"], 8, 4))
    if getattr(loss, "chunk_size", None) is not None and config["optim"]["name"] != "lazy-sgd":
        raise ValueError(
            "a streaming head (loss.params.chunk_size) gives sparse prototype gradients: use optim.name: lazy-sgd"
        )


def main_head(loss: nn.Module) -> nn.Module:
    """The head inside a loss (the loss itself, or the main term of a WeightedSum)."""
    return loss.main if isinstance(loss, pairwise.WeightedSum) else loss


class _TrainStep(nn.Module):
    """backbone (under autocast) → float32 embeddings → loss; one module so DDP averages every gradient."""

    def __init__(self, backbone: nn.Module, loss: nn.Module, amp_dtype: torch.dtype | None, device_type: str):
        super().__init__()
        self.backbone = backbone
        self.loss = loss
        self.amp_dtype = amp_dtype
        self.device_type = device_type

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(
            self.device_type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        ):
            emb = self.backbone(x)
        return self.loss(emb.float(), y)


class _SeededView(Dataset):
    """Sample i of epoch e is produced under the RNG seed (seed, e, i): augmentation independent of loaders."""

    def __init__(self, dataset: Dataset, seed: int, epoch: int):
        self.dataset, self.seed, self.epoch = dataset, seed, epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def _seed(self, i: int) -> int:
        return hash((self.seed, self.epoch, int(i))) & 0x7FFF_FFFF_FFFF_FFFF

    def __getitem__(self, i: int):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed(i))
            return self.dataset[i]

    def __getitems__(self, indices: list[int]) -> list:
        """Batched fetch (the DataLoader uses it): datasets that render a batch at once (``images``) do so, then
        each sample's transform runs under that sample's seed, exactly as :meth:`__getitem__` would."""
        render = getattr(self.dataset, "images", None)
        if render is None:
            return [self[i] for i in indices]
        images, labels = render(list(indices))
        transform = getattr(self.dataset, "transform", None)
        out = []
        for i, image, label in zip(indices, images, labels):
            if transform is not None:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self._seed(i))
                    image = transform(image)
            out.append((image, int(label)))
        return out


def _lr_lambda(schedule: dict, total_steps: int) -> Callable[[int], float]:
    warmup = int(schedule.get("warmup_steps") or 0)
    kind = schedule.get("kind", "cosine")
    floor = float(schedule.get("min_lr_scale") or 0.0)
    milestones = [round(f * total_steps) for f in schedule.get("milestones") or []]
    gamma = float(schedule.get("gamma", 0.1))
    if kind not in ("cosine", "step", "constant"):
        raise ValueError(f"schedule.kind must be cosine, step or constant, got {kind!r}")

    def lam(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if kind == "cosine":
            t = (step - warmup) / max(1, total_steps - warmup)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        if kind == "step":
            return gamma ** sum(step >= m for m in milestones)
        return 1.0

    return lam


@torch.no_grad()
def embed(
    backbone: nn.Module,
    dataset: Dataset,
    indices: Sequence[int] | None = None,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Embeddings (N×d, float32) of ``dataset`` (or of ``indices``) in eval mode; not normalized, except chunked.

    Items are read ``batch_size`` at a time and inputs of equal shape go through the backbone together (at most
    ``batch_size`` per pass): variable-length inputs (whole utterances; the speaker backbones take no padding mask)
    are grouped by length, an utterance whose length no other item of its window shares is embedded alone. Exact
    (no padding): in eval mode (BatchNorm on running statistics) an input's embedding does not depend on its batch,
    up to float rounding of batched kernels (~1e-7).
    An audio dataset with ``chunk_samples`` set (:func:`veriloss.data.audio.set_embedding_chunks`) is embedded in
    chunks: each utterance is cut by :func:`veriloss.data.audio.chunk_waveform`, the chunks (all of one length)
    are batched across utterances, and the utterance's embedding is ``normalize(mean_i normalize(e_i))`` over
    its chunks (unit norm; an utterance shorter than a chunk is embedded whole, then normalized).
    """
    from ..data.audio import chunk_waveform

    was_training = backbone.training
    backbone.eval()
    idx = list(range(len(dataset))) if indices is None else list(indices)
    chunk, hop = getattr(dataset, "chunk_samples", None), getattr(dataset, "chunk_hop_samples", None)
    out: list[torch.Tensor] = []
    device = torch.device(device)
    for start in range(0, len(idx), batch_size):
        items = [dataset[i][0] for i in idx[start : start + batch_size]]
        pieces = [t[None] if chunk is None else chunk_waveform(t, chunk, hop) for t in items]  # (n_i, *shape)
        groups: dict[tuple[int, ...], list[int]] = {}
        for j, p in enumerate(pieces):
            groups.setdefault(tuple(p.shape[1:]), []).append(j)
        window: list[torch.Tensor] = [torch.empty(0)] * len(items)
        for members in groups.values():
            x = torch.cat([pieces[j] for j in members])
            emb = []
            for k in range(0, len(x), batch_size):
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    emb.append(backbone(x[k : k + batch_size].to(device)).float().cpu())
            for j, e in zip(members, torch.cat(emb).split([len(pieces[j]) for j in members])):
                window[j] = e if chunk is None else nn.functional.normalize(nn.functional.normalize(e).mean(0, True))
        out.extend(window)
    backbone.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device: cuda was asked for but no CUDA device is available")
    return torch.device(name)


def _cpu_has_fast_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX-512/AMX); on AVX2-only CPUs bf16 is emulated and ≈ 8× slower than
    float32 (measured: small CNN, batch 256, one thread, 4.6 s vs 0.59 s per step)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    table = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if amp == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if _cpu_has_fast_bf16() else None
    if amp not in table:
        raise ValueError(f"amp must be auto, bf16, fp16 or none, got {amp!r}")
    return table[amp]


# --------------------------------------------------------------------------------------------------------------------
# the trainer
# --------------------------------------------------------------------------------------------------------------------
class Trainer:
    """Train a backbone with a loss from a config (see :data:`veriloss.train.config.DEFAULTS`).

    ``fit()`` runs until the configured number of steps, writing into ``out_dir``: ``checkpoint.pt`` (atomic,
    every ``checkpoint.every_steps``, at each epoch end, on Ctrl-C and at the end), ``history.jsonl`` (loss,
    learning rate, batch accuracy, α-head support size and p_y = 0 fraction), ``metrics.json`` (the final open-set
    evaluation of the test split) and TensorBoard logs in ``tb/``.
    """

    def __init__(
        self,
        config: dict,
        out_dir: str | Path,
        resume: bool = False,
        log: Callable[[str], None] | None = None,
        force: bool = False,
    ):
        self.config = config
        self.out = Path(out_dir)
        log = log or (lambda msg: print(msg, file=sys.stderr))  # stdout is for results (the metrics table)
        self.log = log if D.rank() == 0 else (lambda _msg: None)
        if D.rank() == 0:
            output_dir(self.out)  # a file, an unwritable or read-only folder fails now, not after training
        self.config_changes: list[dict] = []
        stored = self._stored_state(force) if resume else None
        self.device = _resolve_device(str(config.get("device", "auto")))
        self.amp_dtype = _amp_dtype(str(config.get("amp", "auto")), self.device)
        self.seed = int(config["seed"])
        check_sections(config)  # the model and the loss on toy sizes: a typo fails before any data is read
        torch.manual_seed(self.seed)

        self.train_set = build_dataset(config["data"], "train")
        self.test_set = build_dataset(config["data"], "test")
        for dataset in (self.train_set, self.test_set):  # headers of every sample: a corrupt one fails now
            for message in verify_dataset(dataset):  # with data.skip_corrupt: dropped, and said
                self.log(f"skipped: {message}")
        model_cfg = dict(config["model"])
        name = model_cfg.pop("name")
        model_cfg.setdefault("in_channels", self.train_set.channels)
        model_cfg.setdefault("input_size", self.train_set.image_size)
        self.model_args = {"name": name, **model_cfg}  # saved in checkpoints: rebuilds the backbone alone
        self.backbone = models.create(name, **model_cfg)
        self.loss = build_loss(config["loss"], self.backbone.embedding_dim, self.train_set.num_classes)
        self.head = main_head(self.loss)
        if D.is_distributed():
            D.convert_batchnorm(self.backbone)
        self.step_module = _TrainStep(self.backbone, self.loss, self.amp_dtype, self.device.type).to(self.device)
        self.train_module: nn.Module = self.step_module
        self.sharded_params = sharded.sharded_parameters(self.loss)
        if D.is_distributed():
            # a sharded head's slices differ per rank: DDP must neither broadcast nor average them
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                self.step_module, sharded.sharded_parameter_names(self.step_module)
            )
            self.train_module = DistributedDataParallel(
                self.step_module, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.optimizer = self._optimizer(config["optim"])
        if getattr(self.head, "chunk_size", None) is not None:
            if D.is_distributed() and not self.sharded_params:
                raise ValueError(
                    "streaming heads run under torch.distributed only sharded (loss.params.sharded: true): DDP does"
                    " not average sparse gradients"
                )
        self.batch_size = int(config["batch_size"])
        if self.batch_size % D.world_size():
            raise ValueError(f"batch_size {self.batch_size} must be divisible by the {D.world_size()} processes")
        self.steps_per_epoch = len(self._epoch_batches(0))
        if self.steps_per_epoch == 0:
            raise ValueError(f"the training set ({len(self.train_set)} samples) is smaller than one batch")
        self.total_steps = int(config.get("max_steps") or int(config["epochs"]) * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_lambda(config["schedule"], self.total_steps)
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.margin_warmup = MarginWarmup(self.head, int(config["loss"].get("margin_warmup_steps") or 0))
        self.reinit_step = self._reinit_step(config["loss"].get("reinit"))
        self.step = self.epoch = self.batch_in_epoch = 0
        self.history: list[dict] = []
        self.finished = False
        self._interrupted = False
        self._rewrite_history = False
        self._check_test_split()
        if stored is not None:
            self._resume(stored)

    # --- setup -------------------------------------------------------------------------------------------------
    def _optimizer(self, cfg: dict) -> torch.optim.Optimizer:
        lr, wd = float(cfg["lr"]), float(cfg["weight_decay"])
        head_wd = wd if cfg.get("head_weight_decay") is None else float(cfg["head_weight_decay"])
        groups = [
            {"params": [p for p in self.backbone.parameters() if p.requires_grad], "lr": lr, "weight_decay": wd},
            {
                "params": [p for p in self.loss.parameters() if p.requires_grad],
                "lr": lr * float(cfg.get("head_lr_scale", 1.0)),
                "weight_decay": head_wd,
            },
        ]
        groups = [g for g in groups if g["params"]]
        if cfg["name"] == "sgd":
            return torch.optim.SGD(groups, lr=lr, momentum=float(cfg["momentum"]), nesterov=bool(cfg["nesterov"]))
        if cfg["name"] == "adamw":
            return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg["betas"]))
        if cfg["name"] == "lazy-sgd":  # sparse prototype gradients of streaming α heads (see sparse_optim)
            return LazySGD(groups, lr=lr, momentum=float(cfg["momentum"]), nesterov=bool(cfg["nesterov"]))
        raise ValueError(f"optim.name must be sgd, adamw or lazy-sgd, got {cfg['name']!r}")

    def _reinit_step(self, reinit: dict | None) -> int | None:
        if not reinit:
            return None
        if not isinstance(self.head, A3MIHead):
            raise ValueError(f"loss.reinit needs the a3m-i head, not {self.config['loss']['name']!r}")
        if not isinstance(reinit, dict) or len(reinit) != 1 or next(iter(reinit)) not in ("at", "epoch", "step"):
            raise ValueError(f"loss.reinit must be one of {{at: fraction}}, {{epoch: N}}, {{step: N}}, got {reinit!r}")
        ((kind, value),) = reinit.items()
        if kind == "at":
            if not 0 <= float(value) < 1:
                raise ValueError(f"loss.reinit.at is a fraction of training in [0, 1), got {value!r}")
            return round(float(value) * self.total_steps)
        return int(value) * (self.steps_per_epoch if kind == "epoch" else 1)

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        """The global batches of ``epoch`` (dropping the last partial one), a pure function of (seed, epoch)."""
        cfg = self.config["sampler"]
        name = cfg.get("name", "random")
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        if name == "random":
            order = torch.randperm(len(self.train_set), generator=g).tolist()
            n = len(order) // self.batch_size
            return [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(n)]
        if name == "pk":
            p, k = cfg.get("p"), cfg.get("k")
            if not p or not k or int(p) * int(k) != self.batch_size:
                raise ValueError(f"sampler pk needs p and k with p·k = batch_size ({self.batch_size}), got {p}, {k}")
            sampler = PKSampler(self.train_set.labels, int(p), int(k), seed=self.seed)
            sampler.set_epoch(epoch)
            return [list(b) for b in sampler]
        if name == "class-balanced":
            from ..data.samplers import ClassBalancedSampler

            sampler = ClassBalancedSampler(self.train_set.labels, seed=self.seed)
            sampler.set_epoch(epoch)
            order = list(sampler)
            n = len(order) // self.batch_size
            return [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(n)]
        raise ValueError(f"sampler.name must be random, pk or class-balanced, got {name!r}")

    def _loader(self, batches: list[list[int]], epoch: int) -> DataLoader:
        r, w = D.rank(), D.world_size()
        local = self.batch_size // w
        mine = [b[r * local : (r + 1) * local] for b in batches]
        # the loader's own generator (workers' base seed) is a function of (seed, epoch): building the iterator
        # draws nothing from the global RNG, whose state the checkpoint carries for dropout and random margins
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch + 500_009)
        return DataLoader(
            _SeededView(self.train_set, self.seed, epoch),
            batch_sampler=mine,
            num_workers=int(self.config.get("num_workers") or 0),
            generator=generator,
        )

    # --- state -------------------------------------------------------------------------------------------------
    def state(self) -> dict:
        """The checkpoint; a sharded head's prototypes (and their optimizer state) whole on rank 0 (a collective)."""
        loss_state, optim_state = sharded.full_state_dicts(self.loss, self.optimizer)
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

    def _flush(self) -> None:
        """Bring lazily updated rows up to date (LazySGD) before W is read outside a training step."""
        if isinstance(self.optimizer, LazySGD):
            self.optimizer.flush()

    def save(self) -> None:
        self._flush()
        state = self.state()  # on every rank: a sharded head's prototypes are gathered to rank 0 (a collective)
        if D.rank() == 0:
            save_checkpoint(state, self.out)
        if D.is_distributed():
            dist.barrier()

    @property
    def precision(self) -> str:
        """What ``amp`` resolved to here (``auto`` differs between CPUs): logged and kept in metrics.json."""
        if self.amp_dtype is None:
            return "float32"
        return f"{str(self.amp_dtype).removeprefix('torch.')} autocast"

    def _stored_state(self, force: bool) -> dict | None:
        """The checkpoint to resume from (None: there is none), after comparing its config with this one: a change
        to a key outside :data:`~veriloss.train.resume.SAFE_TO_CHANGE` is refused, or with ``force`` recorded."""
        path = self.out / CHECKPOINT_NAME
        if not path.exists():
            self.log(f"no checkpoint in {self.out}; starting from scratch")
            return None
        state = load_checkpoint(path, map_location="cpu")
        changes = unsafe_changes(state["config"], self.config)
        self.config_changes = list(state.get("config_changes", []))
        if changes and not force:
            raise ValueError(
                f"--resume: {path} was trained with another config ({describe_changes(changes, then='stored')}); "
                "resuming would mix two runs. Use the stored config, another --out, or --force to continue anyway"
            )
        if changes:
            every = describe_changes(changes, limit=len(changes), then="stored")
            self.log(f"warning: --force: resuming with a changed config ({every}); the run records it")
            self.config_changes.append(
                {"step": state["step"], "changed": {k: {"stored": a, "now": b} for k, (a, b) in changes.items()}}
            )
        return state

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
            loss_state, optim_state = sharded.local_state_dicts(
                self.loss, self.optimizer, state["loss"], state["optimizer"]
            )
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

    def _check_test_split(self) -> None:
        """Fail before training when the evaluations could not run: the test split (and the validation subset of
        its first ``validate.max_samples`` samples) needs an identity with two samples and two identities."""
        labels = self.test_set.labels
        n_val = self.config["validate"].get("max_samples")
        checks = [(labels, "the test split", "data")]
        if self.config["validate"].get("every_epochs") and n_val:
            checks.append((labels[: int(n_val)], f"the validation subset (first validate.max_samples={n_val})",
                           "validate.max_samples"))  # fmt: skip
        for subset, what, fix in checks:
            counts = torch.bincount(subset) if len(subset) else torch.zeros(0, dtype=torch.long)
            if int((counts >= 2).sum()) == 0 or int((counts >= 1).sum()) < 2:
                raise ValueError(
                    f"{what} has {len(subset)} samples of {int((counts >= 1).sum())} identities, "
                    f"{int((counts >= 2).sum())} of them with two or more samples: all-pairs verification needs "
                    f"genuine pairs (an identity with ≥ 2 samples) and impostor pairs (≥ 2 identities); check {fix}"
                )

    # --- the loop ----------------------------------------------------------------------------------------------
    def _reinitialize(self) -> None:
        """A3M-I: prototypes ← normalized class means of the normalized training embeddings; W's optimizer state
        is reset."""
        self._flush()
        data_cfg = {**self.config["data"], "augment": False}
        plain = build_dataset(data_cfg, "train")
        r, w = D.rank(), D.world_size()
        idx = list(range(r, len(plain), w))
        emb = embed(self.backbone, plain, idx, int(self.config["validate"]["batch_size"]), self.device, self.amp_dtype)
        labels = plain.labels[idx]
        k = plain.num_classes
        x = torch.nn.functional.normalize(emb, dim=1)
        sums = torch.zeros(k, x.shape[1]).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).float()
        if D.is_distributed():
            sums, counts = sums.to(self.device), counts.to(self.device)
            dist.all_reduce(sums)
            dist.all_reduce(counts)
        means = sums.cpu() / counts.cpu().clamp_min(1)[:, None]
        n = self.head.reinitialize_prototypes(means, self.optimizer)
        self.log(f"step {self.step}: re-initialized {n} prototypes from class means")

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, dict]:
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        loss = self.train_module(x, y)
        if not torch.isfinite(loss):
            raise ValueError(f"step {self.step}: the loss is not finite ({float(loss)}); lower the learning rate")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        clip = self.config.get("grad_clip")
        if clip:
            self.scaler.unscale_(self.optimizer)
            _clip_grad_norm(self.step_module.parameters(), float(clip), self.sharded_params)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        stats = self.loss.statistics() if hasattr(self.loss, "statistics") else {}
        return float(loss.detach()), stats

    def _on_sigint(self, signum, frame) -> None:
        self._interrupted = True

    def fit(self) -> dict:
        """Train to the end (or until Ctrl-C: then checkpoint and return with ``status`` "interrupted").

        The output folder is held for the whole call (:class:`veriloss._io.OutputLock`): a second process training
        or evaluating into it is refused. A sample that cannot be read stops the run with a checkpoint of the last
        finished step. Ctrl-C during an evaluation stops it too (the checkpoint of that step is already written).
        """
        lock = OutputLock(self.out, "training folder") if D.rank() == 0 else None
        if lock is not None:
            lock.acquire()
        try:
            return self._fit()
        finally:
            if lock is not None:
                lock.release()

    def _fit(self) -> dict:
        if self._rewrite_history and D.rank() == 0:  # replay after a resume starts from the checkpoint's rows
            write_text(self.out / "history.jsonl", "".join(json.dumps(row) + "\n" for row in self.history))
            self._rewrite_history = False
        if self.finished:
            self.log(f"{self.out} holds a finished run; nothing to do")
            with _sigint_raises():
                return self._final_metrics(load_only=True)
        self.log(f"device {self.device}, {self.precision}, {torch.get_num_threads()} thread(s)")
        previous = signal.signal(signal.SIGINT, self._on_sigint) if _main_thread() else None
        writer = self._writer()
        progress = self._progress()
        cfg = self.config
        running: dict[str, float] = {}
        count = 0
        t0 = time.perf_counter()
        saved_at = None

        def save() -> None:
            nonlocal saved_at
            self.save()
            saved_at = self.step

        try:
            while self.step < self.total_steps:
                batches = self._epoch_batches(self.epoch)
                for x, y in self._batches(batches[self.batch_in_epoch :], self.epoch, save):
                    if self.reinit_step is not None and self.step == self.reinit_step:
                        self._reinitialize()
                    self.margin_warmup(self.step)
                    loss, stats = self._train_step(x, y)
                    self.step += 1
                    self.batch_in_epoch += 1
                    for key, value in {"loss": loss, **stats}.items():
                        running[key] = running.get(key, 0.0) + value
                    count += 1
                    if progress is not None:
                        progress.update(1)
                        progress.set_postfix(loss=f"{loss:.3f}", acc=f"{stats.get('accuracy', float('nan')):.3f}")
                    if self.step % int(cfg["log"]["every_steps"]) == 0 or self.step == self.total_steps:
                        self._log_row(running, count, writer, time.perf_counter() - t0)
                        running, count = {}, 0
                    if self.step % int(cfg["checkpoint"]["every_steps"]) == 0:
                        save()
                    if self._interrupted or self.step >= self.total_steps:
                        break
                if self._interrupted:
                    return self._stop(save)
                if self.batch_in_epoch >= len(batches):
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    every = cfg["validate"].get("every_epochs")
                    if every and self.epoch % int(every) == 0 and self.step < self.total_steps:
                        try:
                            with _sigint_raises():
                                self._validate(writer)
                        except KeyboardInterrupt:
                            return self._stop(save)
                    save()
            if saved_at != self.step:
                save()  # the last step is on disk before the final evaluation, which Ctrl-C may stop
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
            if progress is not None:
                progress.close()
            if writer is not None:
                writer.close()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _stop(self, save: Callable[[], None]) -> dict:
        save()
        self.log(f"interrupted: checkpoint written at step {self.step}; continue with --resume")
        return {"status": "interrupted", "step": self.step}

    def _batches(self, batches: list[list[int]], epoch: int, save: Callable[[], None]):
        """The loader's batches; a failure to read one (a corrupt sample) writes a checkpoint first, so the run
        resumes from the last finished step once the data is mended."""
        it = iter(self._loader(batches, epoch))
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except Exception as err:
                save()
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
    def _writer(self):
        if D.rank() != 0 or not self.config["log"].get("tensorboard"):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: logs go to history.jsonl only
            return None
        return SummaryWriter(str(self.out / "tb"), purge_step=self.step or None)

    def _progress(self):
        if D.rank() != 0 or not self.config["log"].get("progress") or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        return tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True)

    def _log_row(self, running: dict, count: int, writer, seconds: float) -> None:
        row = {"step": self.step, "epoch": self.epoch, "lr": self.optimizer.param_groups[0]["lr"]}
        row.update({k: v / max(count, 1) for k, v in running.items()})
        row["seconds"] = seconds
        self.history.append(row)
        if D.rank() == 0:
            with open(self.out / "history.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
        if writer is not None:
            for key, value in row.items():
                if key not in ("step", "epoch", "seconds"):
                    writer.add_scalar(f"train/{key}", value, self.step)

    def evaluate(self, max_samples: int | None = None, far: Sequence[float] | None = None):
        """All-pairs open-set evaluation of the test split (its first ``max_samples`` samples when given)."""
        self._flush()
        far = list(far or self.config["validate"]["far"])
        n = len(self.test_set) if not max_samples else min(int(max_samples), len(self.test_set))
        emb = embed(self.backbone, self.test_set, range(n), int(self.config["validate"]["batch_size"]), self.device)
        return all_pairs(emb, self.test_set.labels[:n], far=far)

    def _validate(self, writer) -> None:
        if D.rank() != 0:
            return
        result = self.evaluate(self.config["validate"].get("max_samples"))
        row = {"step": self.step, "epoch": self.epoch, "val_eer": float(result.eer)}
        row.update({f"val_tar@{t.far_target:g}": t.tar for t in result.tar if t.measurable})
        self.history.append(row)
        with open(self.out / "history.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        if writer is not None:
            for key, value in row.items():
                if key.startswith("val_"):
                    writer.add_scalar(f"val/{key[4:]}", value, self.step)
        self.log(f"epoch {self.epoch} (step {self.step}): validation EER {100 * float(result.eer):.2f}%")

    def _final_metrics(self, load_only: bool = False) -> dict:
        """Evaluate the test split and write the report: metrics.md/.json, roc.png, det.png, hist.png, curves.png.

        Returns the system record of :func:`veriloss.report.tables.system_metrics` plus ``status``; the record also
        holds ``n_embeddings``, ``steps``, ``precision`` and the mean α-head statistics over training.
        """
        path = self.out / "metrics.json"
        if load_only and path.exists():
            return {**json.loads(path.read_text())["systems"][0], "status": "finished"}
        if D.rank() != 0:
            return {"status": "finished"}
        far = sorted({*self.config["validate"]["far"], *DEFAULT_FARS})
        result = self.evaluate(far=far)
        extra = {"n_embeddings": result.n_embeddings, "steps": self.step, "precision": self.precision}
        train_rows = [r for r in self.history if "loss" in r]
        for key in ("support_size", "py_zero"):
            values = [r[key] for r in train_rows if key in r]
            if values:
                extra[f"train_{key}_mean"] = float(np.mean(values))
        name = self.config["loss"]["name"]
        record = system_metrics(name, result.genuine, result.impostor, far, extra=extra)
        title = f"{name} on {self.config['data']['name']}: all pairs of {result.n_embeddings:,} test embeddings"
        meta = {"config": self.config}
        if self.config_changes:  # --resume --force with another config: the run is a hybrid, and says so
            meta["config_changes"] = self.config_changes
        write_metrics(self.out, [record], title=title, meta=meta)
        systems = {name: (result.genuine, result.impostor)}
        roc_plot(systems, self.out / "roc.png", far=far, title=title)
        det_plot(systems, self.out / "det.png", far=far, title=title)
        score_histograms(systems, self.out / "hist.png", title=title)
        plot_training_curves(self.history, self.out / "curves.png")
        return {**record, "status": "finished"}


def _clip_grad_norm(parameters, max_norm: float, sharded_params: Sequence[torch.Tensor] = ()) -> float:
    """Scale all gradients so their global L2 norm is at most ``max_norm``; sparse gradients (streaming heads)
    count by their stored values. ``sharded_params`` (a sharded head's slices, different on each rank) count by
    their squares summed over ranks (a collective), so every rank clips by the norm of the whole model. Returns
    the norm before clipping."""
    shard_ids = {id(p) for p in sharded_params}
    params = [p for p in parameters if p.grad is not None]
    grads = [p.grad for p in params]

    def squares(gs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [(g.coalesce().values() if g.is_sparse else g).float().pow(2).sum() for g in gs]

    parts = squares([p.grad for p in params if id(p) not in shard_ids])
    if sharded_params:  # every rank takes part, with 0 where its slice has no gradient
        local = squares([p.grad for p in params if id(p) in shard_ids])
        total = torch.stack(local).sum() if local else torch.zeros((), device=sharded_params[0].device)
        if D.is_distributed():
            dist.all_reduce(total)
        parts.append(total)
    if not parts:
        return 0.0
    norm = float(torch.stack([t.to(parts[0].device) for t in parts]).sum().sqrt())
    if norm > max_norm:
        for g in grads:
            g.mul_(max_norm / (norm + 1e-6))
    return norm


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
    import threading

    return threading.current_thread() is threading.main_thread()
