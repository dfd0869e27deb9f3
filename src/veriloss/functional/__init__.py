"""Pure tensor maths, no state: α-softargmax and α loss, margin transforms, distances, overflow-safe normalization."""

from .alpha import alpha_divergence_loss, alpha_softargmax
from .margins import arcface_margin, combined_margin, cosface_margin
from .normalize import cosine_matrix, l2_norm, l2_normalize

__all__ = [
    "alpha_divergence_loss",
    "alpha_softargmax",
    "arcface_margin",
    "combined_margin",
    "cosface_margin",
    "cosine_matrix",
    "l2_norm",
    "l2_normalize",
]
