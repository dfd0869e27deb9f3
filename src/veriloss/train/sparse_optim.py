"""SGD for parameters with sparse row gradients (the W of a streaming α head), with lazily applied momentum and
weight decay.

:class:`LazySGD` accepts dense gradients (a plain SGD step, identical to ``torch.optim.SGD``) and sparse COO
gradients whose sparse dimension is the first one (rows of W, as :mod:`veriloss.heads.alpha.streaming` returns). A row
without gradient at a step would, under dense SGD, still move: with gradient 0 the update of that row is linear,

    non-Nesterov:  b ← μ b + λ w,   w ← w − η b                 i.e. (w, b) ← M (w, b),  M = [[1 − ηλ, −ημ], [λ, μ]]
    Nesterov:      b ← μ b + λ w,   w ← w − η (λ w + μ b)       M = [[1 − ηλ(1 + μ), −ημ²], [λ, μ]]

(η = lr, μ = momentum, λ = weight_decay, no dampening). LazySGD records for each row the last step at which it was
updated, and when a row next receives a gradient (or at :meth:`LazySGD.flush`) it first applies the Δ missed steps at
once as ``M^Δ`` (a 2×2 matrix power, computed in float64 by repeated squaring; ``(1 − ηλ)^Δ`` when μ = 0), then the
ordinary SGD step. A change of lr, momentum, weight_decay or nesterov in a group (e.g. by a scheduler) first flushes
every lagging row with the old values, so M is constant over every interval it is raised over.

What equals dense ``torch.optim.SGD`` exactly (up to float rounding of the matrix power):

- the parameters themselves, for any lr schedule, momentum, weight decay and Nesterov, *after* :meth:`flush`, given
  the same sequence of gradients (the dense gradient being the sparse one with zero rows). Rows that received no
  gradient lag behind until they are flushed or touched.
- a whole training run (the gradients depend on W): only if every forward pass sees the same W as dense training.
  With momentum = 0 and weight_decay = 0 a row without gradient does not move under dense SGD either, so the run
  equals dense SGD with no flush at all. With momentum > 0 a lagging row has not yet moved along its velocity, and
  with weight_decay > 0 it has not yet shrunk (a pure scaling, which cosine logits ignore, but the gradient of a
  cosine head scales with 1/‖W_j‖): the run then differs from dense SGD (an approximation: rows that get no
  gradient drift late, in one closed-form jump when next touched) unless :meth:`flush` is called before each
  forward pass, which makes it exact at the cost of one O(K·d) pass over W (and its momentum buffer) per step,
  still without any dense K×d gradient.

Always call :meth:`flush` before reading W for evaluation, re-initialization or a checkpoint. Not supported:
dampening, maximize, and sparse gradients with more than one sparse dimension. The momentum buffer is a dense
tensor like W (as in dense SGD).

Memory: every row-wise update (a sparse step, a catch-up, :meth:`LazySGD.flush`) runs in blocks of about 2¹⁸
elements (1 MiB in float32; 2²⁴ on a GPU, where each block costs launches and a synchronization): the rows of one
block and their momentum are gathered once, caught up and stepped in place, and written back, so the temporaries do
not grow with the number of rows updated. A sparse gradient whose rows are already ascending and distinct (the
streaming heads') is read as is, without a coalesced copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from .._checks import check_positive

__all__ = ["LazySGD"]

#: elements per block of the row-wise updates: on the CPU 2**18 (1 MiB in float32: a block stays in cache); on an
#: accelerator 2**24 (64 MiB), where every block costs kernel launches and a host synchronization
_BLOCK_ELEMENTS = 2**18
_DEVICE_BLOCK_ELEMENTS = 2**24


def _hyper(group: dict) -> tuple[float, float, float, bool]:
    return (group["lr"], group["momentum"], group["weight_decay"], group["nesterov"])


def _transition(lr: float, mu: float, wd: float, nesterov: bool) -> torch.Tensor:
    """The 2×2 matrix M of one gradient-free SGD step acting on (w, b), float64."""
    if nesterov:
        return torch.tensor([[1.0 - lr * wd * (1.0 + mu), -lr * mu * mu], [wd, mu]], dtype=torch.float64)
    return torch.tensor([[1.0 - lr * wd, -lr * mu], [wd, mu]], dtype=torch.float64)


def _block_rows(p: torch.Tensor) -> int:
    """Rows of ``p`` per block of the row-wise updates (:data:`_BLOCK_ELEMENTS` on the CPU, else
    :data:`_DEVICE_BLOCK_ELEMENTS` elements)."""
    elements = _BLOCK_ELEMENTS if p.device.type == "cpu" else _DEVICE_BLOCK_ELEMENTS
    return max(1, elements // max(1, p[0].numel()))


def _sorted_rows(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows (ascending, distinct) and values of a row-sparse gradient. A gradient whose rows are already
    ascending and distinct (the streaming heads': autograd's accumulation drops the coalesced flag but keeps the
    order) is used as is; any other is coalesced (a copy)."""
    if not grad.is_coalesced():
        rows = grad._indices()[0]
        if not bool((rows[1:] > rows[:-1]).all()):
            grad = grad.coalesce()
    return grad._indices()[0], grad._values()


def _matrix_powers(m: torch.Tensor, exponents: torch.Tensor) -> torch.Tensor:
    """``m^e`` (n×2×2, float64) for each non-negative integer e of ``exponents`` (n,), by repeated squaring."""
    e = exponents.to(torch.int64).cpu().clone()
    out = torch.eye(2, dtype=torch.float64).expand(e.shape[0], 2, 2).clone()
    base = m.clone()
    while bool((e > 0).any()):
        odd = (e % 2 == 1)[:, None, None]
        out = torch.where(odd, out @ base, out)
        base = base @ base
        e = e // 2
    return out


class LazySGD(torch.optim.Optimizer):
    """SGD with momentum, Nesterov and weight decay (as ``torch.optim.SGD``, no dampening) that accepts sparse row
    gradients and applies the missed steps of untouched rows lazily, in closed form (see the module docstring for
    what equals dense SGD exactly).

    Args:
        params: parameters or parameter groups; each may receive dense or sparse COO gradients.
        lr: learning rate η > 0.
        momentum: μ in [0, 1).
        weight_decay: λ ≥ 0 (L2 added to the gradient, as ``torch.optim.SGD``).
        nesterov: Nesterov momentum (needs μ > 0).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        lr = check_positive(lr, "lr")
        momentum = check_positive(momentum, "momentum", strict=False)
        if momentum >= 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        weight_decay = check_positive(weight_decay, "weight_decay", strict=False)
        if nesterov and momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "nesterov": nesterov})

    # --- lazy rows ---------------------------------------------------------------------------------------------
    @staticmethod
    def _advance(w: torch.Tensor, b: torch.Tensor | None, missed: torch.Tensor, hyper: tuple) -> None:
        """Apply in place to gathered rows ``w`` (and their momentum ``b``) the ``missed`` (n,) gradient-free steps
        of each row: ``(w, b) ← M^missed (w, b)``, or ``w ← (1 − ηλ)^missed w`` when μ = 0."""
        lr, mu, wd, nesterov = hyper
        if (mu == 0.0 and wd == 0.0) or not bool((missed > 0).any()):
            return
        shape = (-1,) + (1,) * (w.dim() - 1)
        if mu == 0.0:
            factor = torch.tensor(1.0 - lr * wd, dtype=torch.float64).pow(missed.double().cpu())
            w.mul_(factor.to(w.device, w.dtype).view(shape))
            return
        exps, inverse = torch.unique(missed.cpu(), return_inverse=True)
        m = _matrix_powers(_transition(lr, mu, wd, nesterov), exps)[inverse].to(w.device, w.dtype)
        b_old = b * m[:, 0, 1].view(shape)  # the only temporary: M's (w, b) product needs the old b
        b.mul_(m[:, 1, 1].view(shape)).addcmul_(w, m[:, 1, 0].view(shape))
        w.mul_(m[:, 0, 0].view(shape)).add_(b_old)

    @classmethod
    def _catch_up(cls, p: torch.Tensor, state: dict, rows: torch.Tensor, until: int) -> None:
        """Apply to ``rows`` of ``p`` the gradient-free steps from their last update up to step ``until``, in blocks
        of rows (the gathered rows and their momentum are the only temporaries)."""
        buf = state.get("momentum_buffer") if state["hyper"][1] > 0 else None
        for block in rows.split(_block_rows(p)):
            r = block[state["last"][block] < until]  # the lagging rows only
            if r.numel() > 0:
                w, b = p[r], None if buf is None else buf[r]
                cls._advance(w, b, until - state["last"][r], state["hyper"])
                p[r] = w
                if b is not None:
                    buf[r] = b
        state["last"][rows] = until

    @torch.no_grad()
    def flush(self) -> None:
        """Bring every lagging row up to date (apply its missed gradient-free steps); W then equals dense SGD's."""
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p)
                if state and "last" in state:
                    rows = torch.arange(p.shape[0], device=p.device)
                    self._catch_up(p, state, rows, state["step"])

    # --- the step ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One SGD step; sparse gradients update only their rows (after their lazy catch-up)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu, wd, nesterov = hyper = _hyper(group)
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["momentum_buffer"] = torch.zeros_like(p) if mu > 0 else None
                if mu > 0 and state.get("momentum_buffer") is None:
                    state["momentum_buffer"] = torch.zeros_like(p)
                if "last" in state and state["hyper"] != hyper:
                    self._catch_up(p, state, torch.arange(p.shape[0], device=p.device), state["step"])
                step = state["step"] + 1
                if grad.is_sparse:
                    if grad.sparse_dim() != 1:
                        raise ValueError(
                            f"LazySGD needs row-sparse gradients (sparse_dim 1), got sparse_dim {grad.sparse_dim()}"
                        )
                    if "last" not in state:
                        state["last"] = torch.zeros(p.shape[0], dtype=torch.long, device=p.device)
                    state["hyper"] = hyper
                    rows, values = _sorted_rows(grad)
                    buf = state["momentum_buffer"]
                    n = _block_rows(p)
                    for block, g in zip(rows.split(n), values.split(n)):
                        # per block: gather the rows (and momentum) once, catch up, step, write back
                        g = g.to(p.dtype)
                        w, b = p[block], None if buf is None or mu == 0 else buf[block]
                        self._advance(w, b, (step - 1) - state["last"][block], hyper)
                        d = g.add(w, alpha=wd) if wd != 0 else g
                        if b is not None:
                            b.mul_(mu).add_(d)
                            buf[block] = b
                            d = d.add(b, alpha=mu) if nesterov else b
                        p[block] = w.add_(d, alpha=-lr)
                    state["last"][rows] = step
                else:
                    if "last" in state:  # a row-lazy parameter now given a dense gradient: bring it up to date
                        self._catch_up(p, state, torch.arange(p.shape[0], device=p.device), step - 1)
                        state["last"].fill_(step)
                        state["hyper"] = hyper
                    d = grad.add(p, alpha=wd) if wd != 0 else grad
                    if mu > 0:
                        buf = state["momentum_buffer"]
                        buf.mul_(mu).add_(d)
                        d = d.add(buf, alpha=mu) if nesterov else buf
                    p.add_(d, alpha=-lr)
                state["step"] = step
        return loss
