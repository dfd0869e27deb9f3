"""Pair, triplet and centre losses (docs/losses.md): ``create(name, **params)``, ``available()``, ``describe(name)``.

Every loss is a module ``loss(embeddings B×d, labels B)`` → a scalar (``reduction="mean"``, default), a sum, or the
per-sample losses (``reduction="none"``, each class documents its per-sample share), exported under its class name.
Pair and triplet losses form their pairs and triplets inside the batch and need several samples per identity: use
:class:`veriloss.data.PKSampler`. Auxiliary losses (center, center-invariant, range, marginal) are added to a head by
weight with :class:`WeightedSum`. :func:`unchecked` turns off the input checks that read tensor values.
"""

from .._checks import unchecked
from .base import PairwiseLoss
from .center import CenterInvariantLoss, CenterLoss
from .combine import WeightedSum, combine
from .contrastive import ContrastiveLoss
from .marginal import MarginalLoss
from .range import RangeLoss
from .registry import OPTIONS, aliases, available, create, describe, register
from .triplet import TripletLoss
from .tse import TPELoss, TripletProjectionLoss, TSELoss

__all__ = [
    "OPTIONS",
    "CenterInvariantLoss",
    "CenterLoss",
    "ContrastiveLoss",
    "MarginalLoss",
    "PairwiseLoss",
    "RangeLoss",
    "TPELoss",
    "TSELoss",
    "TripletLoss",
    "TripletProjectionLoss",
    "WeightedSum",
    "aliases",
    "available",
    "combine",
    "create",
    "describe",
    "register",
    "unchecked",
]
