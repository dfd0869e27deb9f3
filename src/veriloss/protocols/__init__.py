"""Evaluation protocols (docs/evaluation.md §Scores and pairs): embeddings → scores → metrics."""

from .all_pairs import AllPairsResult, all_pairs, check_pairs
from .bootstrap import bootstrap_all_pairs, bootstrap_trials, key_identity

__all__ = ["AllPairsResult", "all_pairs", "bootstrap_all_pairs", "bootstrap_trials", "check_pairs", "key_identity"]
