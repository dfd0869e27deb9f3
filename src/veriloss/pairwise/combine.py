"""A main loss plus weighted auxiliary losses, e.g. a softmax head + λ · center loss (Wen et al. 2016)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .._checks import check_positive

__all__ = ["WeightedSum", "combine"]


class WeightedSum(nn.Module):
    """``L = main(x, y) + Σ_t λ_t · aux_t(x, y)``, every term on the same embeddings and labels.

    ``main`` is any module ``(embeddings, labels) -> scalar`` (a head from :func:`veriloss.heads.create`, a pair
    loss, ...). ``terms`` is a list of ``(weight, module)`` (named ``aux0``, ``aux1``, ...) or a mapping
    ``name -> (weight, module)``; weights are finite and ≥ 0. All modules are registered as children, so
    ``WeightedSum.parameters()`` holds the head's prototypes and any learned projection, and ``.to()``/``.train()``
    reach the centre buffers.

    :meth:`statistics` merges the children's statistics under ``"<name>/<key>"`` (``main/accuracy``,
    ``center/center_distance``, ...) and adds ``"<name>/loss"``, the unweighted value of each term on the last batch.
    """

    def __init__(
        self,
        main: nn.Module,
        terms: Iterable[tuple[float, nn.Module]] | Mapping[str, tuple[float, nn.Module]] = (),
    ):
        super().__init__()
        if not isinstance(main, nn.Module):
            raise ValueError(f"main must be an nn.Module (embeddings, labels) -> loss, got {type(main).__name__}")
        items = terms.items() if isinstance(terms, Mapping) else ((f"aux{i}", t) for i, t in enumerate(terms))
        self.main = main
        self.terms = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for name, term in items:
            if not isinstance(name, str) or not name.isidentifier() or name == "main":
                raise ValueError(f"auxiliary term name must be an identifier other than 'main', got {name!r}")
            if not (isinstance(term, tuple | list) and len(term) == 2):
                raise ValueError(f"auxiliary term {name!r} must be a (weight, module) pair, got {term!r}")
            weight, module = term
            if not isinstance(module, nn.Module):
                raise ValueError(f"auxiliary term {name!r} must hold an nn.Module, got {type(module).__name__}")
            self.weights[name] = check_positive(weight, f"weight of {name!r}", strict=False)
            self.terms[name] = module
        self._values: dict[str, torch.Tensor] = {}

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        total = self.main(embeddings, labels)
        values = {"main": total.detach()}
        for name, module in self.terms.items():
            value = module(embeddings, labels)
            values[name] = value.detach()
            total = total + self.weights[name] * value
        self._values = values
        return total

    def statistics(self, as_tensors: bool = False) -> dict[str, float] | dict[str, torch.Tensor]:
        """Children's statistics prefixed by their name, plus each term's unweighted ``loss`` on the last batch
        (``as_tensors``: detached device tensors, no host synchronization)."""
        out: dict = {}
        for name, module in [("main", self.main), *self.terms.items()]:
            if name in self._values:
                value = self._values[name]
                out[f"{name}/loss"] = value if as_tensors else float(value)
            stats = getattr(module, "statistics", None)
            if callable(stats):
                out.update({f"{name}/{k}": v for k, v in stats(as_tensors=as_tensors).items()})
        return out

    def extra_repr(self) -> str:
        return ", ".join(f"{name}: λ={w}" for name, w in self.weights.items())


def combine(main: nn.Module, **weighted: tuple[float, nn.Module]) -> WeightedSum:
    """``combine(head, center=(0.01, CenterLoss(...)))`` = ``WeightedSum(head, {"center": (0.01, ...)})``."""
    return WeightedSum(main, weighted)
