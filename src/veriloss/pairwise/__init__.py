"""Pair, triplet and centre losses (LOSSES.md §3): ``create(name, **params)``, ``available()``, ``describe(name)``.

Every loss is a module ``loss(embeddings B×d, labels B) -> scalar``. Pair and triplet losses form their pairs and
triplets inside the batch and need several samples per identity: use :class:`veriloss.data.PKSampler`. Auxiliary
losses (center, center-invariant, range, marginal) are added to a head by weight with :class:`WeightedSum`.
"""

from .base import PairwiseLoss
from .center import CenterInvariantLoss, CenterLoss
from .combine import WeightedSum, combine
from .contrastive import ContrastiveLoss
from .marginal import MarginalLoss
from .range import RangeLoss
from .registry import aliases, available, create, describe, register
from .triplet import TripletLoss
from .tse import TPELoss, TSELoss

__all__ = [
    "CenterInvariantLoss",
    "CenterLoss",
    "ContrastiveLoss",
    "MarginalLoss",
    "PairwiseLoss",
    "RangeLoss",
    "TPELoss",
    "TSELoss",
    "TripletLoss",
    "WeightedSum",
    "aliases",
    "available",
    "combine",
    "create",
    "describe",
    "register",
]
