"""Datasets, decoders and samplers."""

from .samplers import PKSampler

__all__ = ["PKSampler"]
