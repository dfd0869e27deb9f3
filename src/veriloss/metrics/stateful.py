"""A stateful verification metric (docs/evaluation.md §Metrics), in the style of torchmetrics but without it.

:class:`VerificationMetric` accumulates either scored pairs (``update(scores, labels)``) or labelled embeddings
(``update(embeddings=..., identities=...)``, scored all-pairs at the end), and ``compute()`` returns the exact
TAR@FAR, EER, minDCF and AUC of everything seen so far, as a dict of floats ready for Lightning's ``log_dict``.
Under ``torch.distributed`` the states of all processes are gathered at ``compute()`` time (sizes first, then the
padded tensors), so every process gets the metrics of the union.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist

from .._checks import check_bool, check_int
from ._scores import check_cost, check_fars, check_rate
from .verification import auc, eer, min_dcf, tar_at_far

__all__ = ["VerificationMetric"]

_NONE, _SCORES, _EMBEDDINGS = 0, 1, 2
_MODE_NAMES = {_SCORES: "scores/labels", _EMBEDDINGS: "embeddings/identities"}


def _tensor(x: object, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor (or a numpy array), got {type(x).__name__}")
    return x.detach()


def _check_finite(x: torch.Tensor, name: str) -> None:
    if x.numel() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf); check the model outputs")


def _is_integer(x: torch.Tensor) -> bool:
    return not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool)


def _rates(value: object, name: str) -> tuple[float, ...]:
    """One rate in (0, 1) or a non-empty sequence of them, as a tuple of floats."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a rate in (0, 1) or a sequence of them, got the string {value!r}")
    if isinstance(value, (int, float, np.number)) or (isinstance(value, torch.Tensor) and value.dim() == 0):
        value = [value]
    try:
        values = list(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be a rate in (0, 1) or a sequence of them, got {value!r}") from None
    if not values:
        raise ValueError(f"{name} is an empty sequence; pass at least one rate in (0, 1)")
    return tuple(check_rate(v, name) for v in values)


def _fmt(value: float) -> str:
    return f"{value:g}"


class VerificationMetric:
    """Exact verification metrics accumulated over batches: TAR@FAR (each ``far``), EER, minDCF (each
    ``p_target``) and AUC, computed by :mod:`veriloss.metrics`' exact functions on everything seen since the last
    :meth:`reset`.

    Two ways to feed it, one per metric object (mixing them raises):

    * ``update(scores, labels)``: scored pairs, ``scores`` a 1-D real tensor (higher = more similar) and ``labels``
      1-D, 1 (or ``True``) for a genuine (same-identity) pair and 0 for an impostor pair;
    * ``update(embeddings=..., identities=...)``: labelled embeddings (B×d, B integer identities ≥ 0); ``compute()``
      scores every unordered pair of all the embeddings seen with :func:`veriloss.protocols.all_pairs` (cosine
      similarity, float32), so pairs across batches count too.

    ``compute()`` returns a dict of Python floats, with keys ``prefix`` followed by ``"tar@far=<f>"`` per FAR,
    ``"eer"``, ``"min_dcf@p=<p>"`` per P_target (normalized minDCF with costs ``c_miss``, ``c_fa``) and ``"auc"``,
    e.g. ``{"tar@far=0.001": 0.91, "eer": 0.031, "min_dcf@p=0.01": 0.27, "auc": 0.995}``. A TAR@FAR that is not
    measurable (fewer than 1/f impostor pairs) is NaN. Its values equal :func:`~veriloss.metrics.tar_at_far`,
    :func:`~veriloss.metrics.eer`, :func:`~veriloss.metrics.min_dcf` and :func:`~veriloss.metrics.auc` on the
    genuine and impostor scores of all the pairs (resp. ``all_pairs`` on all the embeddings). In a LightningModule::

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.metric.update(embeddings=self(x), identities=y)

        def on_validation_epoch_end(self):
            self.log_dict(self.metric.compute())
            self.metric.reset()

    **Distributed.** With ``dist_sync`` (default) and an initialized ``torch.distributed`` group of more than one
    process, ``compute()`` is a collective: every process must call it; it gathers the accumulated tensors of all
    processes (their sizes first, then the tensors padded to the largest: any number of samples per process, none
    included) and returns on every process the metrics of the union, in rank order. The local state is left as it
    was. With nccl the tensors travel on the current CUDA device, otherwise on the CPU. ``dist_sync=False`` computes
    on the local state only. A ``DistributedSampler`` that pads the last batch repeats a few samples: they are
    counted twice (as in any all-gathering metric); evaluate with a sampler that does not pad for exact values.

    The state is kept detached on the device of the inputs (float32 embeddings, int64 identities; scores in their
    own float dtype, 16-bit floats as float32). Each update checks its inputs (a host synchronization on a GPU).

    Args:
        far: a target FAR in (0, 1) or a sequence of them; default (1e-3, 1e-4).
        p_target: a target prior in (0, 1) or a sequence of them for minDCF; default (0.01,).
        c_miss: cost of a miss for minDCF, > 0; default 1.
        c_fa: cost of a false acceptance for minDCF, > 0; default 1.
        dist_sync: gather the states of all processes at ``compute()`` under ``torch.distributed``; default True.
        process_group: the group to gather over; default ``None``, the default group.
        prefix: prepended to every key of ``compute()``'s dict (e.g. ``"val/"``); default ``""``.
        block_size: rows scored at a time by ``all_pairs`` in embeddings mode; default 1024.

    >>> import torch
    >>> from veriloss.metrics import VerificationMetric
    >>> metric = VerificationMetric(far=0.25, p_target=0.1)
    >>> metric.update(torch.tensor([0.9, 0.8, 0.3]), torch.tensor([1, 1, 0]))
    >>> metric.update(torch.tensor([0.6, 0.2, 0.1, 0.7]), torch.tensor([1, 0, 0, 0]))
    >>> {k: round(v, 4) for k, v in metric.compute().items()}
    {'tar@far=0.25': 1.0, 'eer': 0.25, 'min_dcf@p=0.1': 0.3333, 'auc': 0.9167}
    >>> metric.reset()
    >>> metric.update(embeddings=torch.eye(4).repeat(2, 1), identities=torch.arange(4).repeat(2))
    >>> metric.compute()["eer"]
    0.0
    """

    def __init__(
        self,
        far: float | Sequence[float] = (1e-3, 1e-4),
        p_target: float | Sequence[float] = (0.01,),
        c_miss: float = 1.0,
        c_fa: float = 1.0,
        dist_sync: bool = True,
        process_group: object = None,
        prefix: str = "",
        block_size: int = 1024,
    ):
        self.far = tuple(check_fars(far, "far")[0])
        self.p_target = _rates(p_target, "p_target")
        self.c_miss = check_cost(c_miss, "c_miss")
        self.c_fa = check_cost(c_fa, "c_fa")
        self.dist_sync = check_bool(dist_sync, "dist_sync")
        self.process_group = process_group
        if not isinstance(prefix, str):
            raise ValueError(f"prefix must be a string (e.g. 'val/'), got {prefix!r}")
        self.prefix = prefix
        self.block_size = check_int(block_size, "block_size", 1, what="a positive integer")
        self.reset()

    # ------------------------------------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget everything accumulated; the next update may use either mode."""
        self._mode = _NONE
        self._values: list[torch.Tensor] = []  # scores (1-D) or embeddings (B×d)
        self._labels: list[torch.Tensor] = []  # 0/1 pair labels or identities, int64
        self._dim: int | None = None

    @property
    def mode(self) -> str | None:
        """``"scores"``, ``"embeddings"`` or ``None`` (nothing accumulated since the last reset)."""
        return {_NONE: None, _SCORES: "scores", _EMBEDDINGS: "embeddings"}[self._mode]

    @property
    def num_samples(self) -> int:
        """Pairs (scores mode) or embeddings (embeddings mode) accumulated locally since the last reset."""
        return sum(int(v.shape[0]) for v in self._values)

    def _set_mode(self, mode: int) -> None:
        if self._mode not in (_NONE, mode):
            raise ValueError(
                f"this metric accumulates {_MODE_NAMES[self._mode]} and cannot also take {_MODE_NAMES[mode]}; "
                "use one update form per metric object (or call reset() first)"
            )
        self._mode = mode

    def update(
        self,
        scores: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        *,
        embeddings: torch.Tensor | None = None,
        identities: torch.Tensor | None = None,
    ) -> None:
        """Add a batch: scored pairs ``update(scores, labels)`` or labelled samples
        ``update(embeddings=..., identities=...)`` (see the class). An empty batch is accepted and adds nothing."""
        pair_form = scores is not None or labels is not None
        sample_form = embeddings is not None or identities is not None
        if pair_form and sample_form:
            raise ValueError(
                "pass either scores and labels (scored pairs) or embeddings= and identities= (labelled samples), "
                "not both"
            )
        if sample_form:
            self._update_embeddings(embeddings, identities)
        elif pair_form:
            self._update_scores(scores, labels)
        else:
            raise ValueError("update() needs scores and labels, or embeddings= and identities=")

    def _update_scores(self, scores: object, labels: object) -> None:
        if scores is None or labels is None:
            raise ValueError("update(scores, labels) needs both: the pair scores and their 0/1 labels")
        s, y = _tensor(scores, "scores"), _tensor(labels, "labels")
        if s.dim() != 1:
            raise ValueError(f"scores must be 1-D (one score per pair), got shape {tuple(s.shape)}; flatten it")
        if s.is_complex() or s.dtype == torch.bool:
            raise ValueError(f"scores must hold real similarity scores, got dtype {s.dtype}")
        if y.dim() != 1 or y.shape[0] != s.shape[0]:
            raise ValueError(f"labels must be 1-D with one entry per score ({s.shape[0]}), got shape {tuple(y.shape)}")
        if not (y.dtype == torch.bool or _is_integer(y)):
            raise ValueError(
                f"labels must be 0/1 integers or booleans (1 = genuine pair), got dtype {y.dtype}; "
                "convert with labels.long()"
            )
        if s.dtype in (torch.float16, torch.bfloat16):
            s = s.float()
        elif not s.is_floating_point():
            s = s.double()
        _check_finite(s, "scores")
        y = y.long()
        if y.numel() and not bool(((y == 0) | (y == 1)).all()):
            raise ValueError(
                f"labels must be 0 (impostor pair) or 1 (genuine pair), got values in "
                f"[{int(y.min())}, {int(y.max())}]; for identity labels use update(embeddings=..., identities=...)"
            )
        self._set_mode(_SCORES)
        if s.numel():
            self._values.append(s)
            self._labels.append(y)

    def _update_embeddings(self, embeddings: object, identities: object) -> None:
        if embeddings is None or identities is None:
            raise ValueError("update(embeddings=..., identities=...) needs both: the embeddings and their identities")
        x, y = _tensor(embeddings, "embeddings"), _tensor(identities, "identities")
        if x.dim() != 2:
            raise ValueError(f"embeddings must have shape (batch, dim), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"embeddings must be a floating-point tensor, got dtype {x.dtype}")
        if self._dim is not None and x.shape[1] != self._dim:
            raise ValueError(
                f"embeddings must have {self._dim} features per row, as the earlier batches, got shape {tuple(x.shape)}"
            )
        if y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"identities must be 1-D with one entry per embedding ({x.shape[0]}), got shape {tuple(y.shape)}"
            )
        if not _is_integer(y):
            raise ValueError(f"identities must be an integer tensor (identity indices), got dtype {y.dtype}")
        _check_finite(x, "embeddings")
        if y.numel() and int(y.min()) < 0:
            raise ValueError(f"identities must be non-negative integers, got minimum {int(y.min())}")
        self._set_mode(_EMBEDDINGS)
        self._dim = int(x.shape[1])
        if x.shape[0]:
            self._values.append(x.float())
            self._labels.append(y.long())

    # ------------------------------------------------------------------------------------------------ compute
    def _syncing(self) -> bool:
        return (
            self.dist_sync
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size(self.process_group) > 1
        )

    def _local(self) -> tuple[int, torch.Tensor | None, torch.Tensor | None]:
        if not self._values:
            return self._mode, None, None
        return self._mode, torch.cat(self._values), torch.cat(self._labels)

    def _gathered(self) -> tuple[int, torch.Tensor | None, torch.Tensor | None]:
        """(mode, values, labels) of the union of every process's state, in rank order (a collective)."""
        mode, values, labels = self._local()
        group = self.process_group
        backend = str(dist.get_backend(group))
        device = (
            torch.device("cuda", torch.cuda.current_device())
            if "nccl" in backend and torch.cuda.is_available()
            else torch.device("cpu")
        )
        n = 0 if values is None else int(values.shape[0])
        dim = self._dim or 0
        wide = int(values is not None and values.dtype == torch.float64)
        world = dist.get_world_size(group)
        meta = torch.tensor([mode, n, dim, wide], dtype=torch.int64, device=device)
        metas = [torch.empty_like(meta) for _ in range(world)]
        dist.all_gather(metas, meta, group=group)
        table = torch.stack(metas).cpu().tolist()  # identical on every process: so are the errors below
        modes = {m for m, *_ in table if m != _NONE}
        if len(modes) > 1:
            raise ValueError(
                "the processes accumulated different kinds of input ("
                + ", ".join(f"rank {r}: {_MODE_NAMES.get(m, 'nothing')}" for r, (m, *_) in enumerate(table))
                + "); use the same update form on every process"
            )
        if not modes:
            return _NONE, None, None
        mode = modes.pop()
        dims = {d for m, c, d, _ in table if m == _EMBEDDINGS}
        if len(dims) > 1:
            raise ValueError(f"the processes accumulated embeddings of different sizes {sorted(dims)}")
        dim = dims.pop() if dims else 0
        sizes = [c for _, c, _, _ in table]
        width = max(sizes)
        if width == 0:
            return mode, None, None
        if mode == _SCORES:
            dtype = torch.float64 if any(w for *_, w in table) else torch.float32
            shape: tuple[int, ...] = (width,)
        else:
            dtype, shape = torch.float32, (width, dim)
        pad_v = torch.zeros(shape, dtype=dtype, device=device)
        pad_y = torch.zeros(width, dtype=torch.int64, device=device)
        if n:
            pad_v[:n] = values.to(device=device, dtype=dtype)
            pad_y[:n] = labels.to(device)
        all_v = [torch.empty_like(pad_v) for _ in range(world)]
        all_y = [torch.empty_like(pad_y) for _ in range(world)]
        dist.all_gather(all_v, pad_v, group=group)
        dist.all_gather(all_y, pad_y, group=group)
        out_v = torch.cat([v[:c].cpu() for v, c in zip(all_v, sizes)])
        out_y = torch.cat([y[:c].cpu() for y, c in zip(all_y, sizes)])
        return mode, out_v, out_y

    def compute(self) -> dict[str, float]:
        """The metrics of everything accumulated (of every process when synchronized), as a dict of floats (see the
        class for the keys). Raises ``ValueError`` when nothing was accumulated or when the pairs lack genuine or
        impostor pairs."""
        mode, values, labels = self._gathered() if self._syncing() else self._local()
        if values is None:
            raise ValueError(
                "the metric has no data: call update(scores, labels) or update(embeddings=..., identities=...) "
                "before compute()" + (" on at least one process" if self._syncing() else "")
            )
        if mode == _EMBEDDINGS:
            from ..protocols.all_pairs import all_pairs, check_pairs

            check_pairs(labels, "the accumulated identities", "that the evaluation set has repeated identities")
            r = all_pairs(
                values,
                labels,
                far=self.far,
                p_targets=self.p_target,
                c_miss=self.c_miss,
                c_fa=self.c_fa,
                block_size=self.block_size,
            )
            tars, e, dcfs, area = r.tar, r.eer, r.min_dcf, r.auc
        else:
            scores, labels = values.cpu(), labels.cpu()
            genuine, impostor = scores[labels == 1], scores[labels == 0]
            if genuine.numel() == 0 or impostor.numel() == 0:
                raise ValueError(
                    f"the accumulated pairs have {genuine.numel()} genuine (label 1) and {impostor.numel()} impostor "
                    "(label 0) scores; the verification metrics need both kinds"
                )
            tars = tar_at_far(genuine, impostor, list(self.far))
            e = eer(genuine, impostor)
            dcfs = [min_dcf(genuine, impostor, p, self.c_miss, self.c_fa) for p in self.p_target]
            area = auc(genuine, impostor)
        out = {f"{self.prefix}tar@far={_fmt(t.far_target)}": math.nan if t.tar is None else t.tar for t in tars}
        out[f"{self.prefix}eer"] = float(e.eer)
        out.update({f"{self.prefix}min_dcf@p={_fmt(d.p_target)}": float(d.min_dcf) for d in dcfs})
        out[f"{self.prefix}auc"] = float(area)
        return out

    def __repr__(self) -> str:
        fars = ", ".join(_fmt(f) for f in self.far)
        ps = ", ".join(_fmt(p) for p in self.p_target)
        return (
            f"VerificationMetric(far=({fars}), p_target=({ps}), mode={self.mode!r}, "
            f"num_samples={self.num_samples}, dist_sync={self.dist_sync})"
        )
