"""Verification and identification metrics (docs/EVALUATION.md §Metrics), exact with ties, streaming when needed."""

from .identification import DirAtFpir, dir_at_fpir, identification_ranks, rank_k_accuracy
from .summary import ImpostorSummary, SummaryBuilder, summarize
from .verification import DET, EER, ROC, MinDCF, TarAtFar, auc, det, eer, min_dcf, roc, tar_at_far

__all__ = [
    "DET",
    "EER",
    "ROC",
    "DirAtFpir",
    "ImpostorSummary",
    "MinDCF",
    "SummaryBuilder",
    "TarAtFar",
    "auc",
    "det",
    "dir_at_fpir",
    "eer",
    "identification_ranks",
    "min_dcf",
    "rank_k_accuracy",
    "roc",
    "summarize",
    "tar_at_far",
]
