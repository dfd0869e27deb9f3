"""Pure tensor maths, no state: the α-softargmax and α-divergence loss, margin transforms, distances."""

from .alpha import alpha_divergence_loss, alpha_softargmax
from .margins import arcface_margin, combined_margin, cosface_margin

__all__ = ["alpha_divergence_loss", "alpha_softargmax", "arcface_margin", "combined_margin", "cosface_margin"]
