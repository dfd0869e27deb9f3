"""Evaluation protocols (docs/EVALUATION.md §Scores and pairs): embeddings → scores → metrics."""

from .all_pairs import AllPairsResult, all_pairs, check_pairs

__all__ = ["AllPairsResult", "all_pairs", "check_pairs"]
