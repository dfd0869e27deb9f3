"""SGD for parameters with sparse row gradients (the W of a streaming α head), with lazily applied momentum and
weight decay.

:class:`LazySGD` accepts dense gradients (a plain SGD step, identical to ``torch.optim.SGD``) and sparse COO
gradients whose sparse dimension is the first one (rows of W, as :mod:`veriloss.heads.streaming` returns). A row
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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from .._checks import check_positive

__all__ = ["LazySGD"]


def _hyper(group: dict) -> tuple[float, float, float, bool]:
    return (group["lr"], group["momentum"], group["weight_decay"], group["nesterov"])


def _transition(lr: float, mu: float, wd: float, nesterov: bool) -> torch.Tensor:
    """The 2×2 matrix M of one gradient-free SGD step acting on (w, b), float64."""
    if nesterov:
        return torch.tensor([[1.0 - lr * wd * (1.0 + mu), -lr * mu * mu], [wd, mu]], dtype=torch.float64)
    return torch.tensor([[1.0 - lr * wd, -lr * mu], [wd, mu]], dtype=torch.float64)


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
    def _catch_up(p: torch.Tensor, state: dict, rows: torch.Tensor, until: int) -> None:
        """Apply to ``rows`` of ``p`` the gradient-free steps from their last update up to step ``until``."""
        lr, mu, wd, nesterov = state["hyper"]
        missed = until - state["last"][rows]
        keep = missed > 0
        if not bool(keep.any()) or (mu == 0.0 and wd == 0.0):
            state["last"][rows] = until
            return
        rows, missed = rows[keep], missed[keep]
        shape = (-1,) + (1,) * (p.dim() - 1)
        if mu == 0.0:
            factor = torch.tensor(1.0 - lr * wd, dtype=torch.float64).pow(missed.double().cpu())
            p[rows] = p[rows] * factor.to(p.device, p.dtype).view(shape)
        else:
            exps, inverse = torch.unique(missed.cpu(), return_inverse=True)
            m = _matrix_powers(_transition(lr, mu, wd, nesterov), exps)[inverse].to(p.device, p.dtype)
            buf = state["momentum_buffer"]
            w, b = p[rows], buf[rows]
            p[rows] = m[:, 0, 0].view(shape) * w + m[:, 0, 1].view(shape) * b
            buf[rows] = m[:, 1, 0].view(shape) * w + m[:, 1, 1].view(shape) * b
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
                    grad = grad.coalesce()
                    rows, g = grad.indices()[0], grad.values().to(p.dtype)
                    self._catch_up(p, state, rows, step - 1)
                    w = p[rows]
                    d = g + wd * w if wd != 0 else g
                    if mu > 0:
                        buf = state["momentum_buffer"]
                        b = buf[rows] * mu + d
                        buf[rows] = b
                        d = d + mu * b if nesterov else b
                    p[rows] = w - lr * d
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
