"""Verification and identification metrics (docs/evaluation.md §Metrics), exact with ties, streaming when needed."""

from .bootstrap import BootstrapResult, Interval, bootstrap_scores, paired_difference, subject_multiplicities
from .identification import DirAtFpir, dir_at_fpir, identification_ranks, rank_k_accuracy
from .stateful import VerificationMetric
from .summary import ImpostorSummary, SummaryBuilder, summarize
from .verification import DET, EER, ROC, MinDCF, TarAtFar, auc, det, eer, min_dcf, roc, tar_at_far

__all__ = [
    "DET",
    "EER",
    "ROC",
    "BootstrapResult",
    "DirAtFpir",
    "ImpostorSummary",
    "Interval",
    "MinDCF",
    "SummaryBuilder",
    "TarAtFar",
    "VerificationMetric",
    "auc",
    "bootstrap_scores",
    "det",
    "dir_at_fpir",
    "eer",
    "identification_ranks",
    "min_dcf",
    "paired_difference",
    "rank_k_accuracy",
    "roc",
    "subject_multiplicities",
    "summarize",
    "tar_at_far",
]
