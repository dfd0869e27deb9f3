"""``veriloss bench``: train several losses (a suite) or a parameter grid (a sweep) with one identical recipe and
several seeds, resumably and in parallel, and report TAR@FAR / EER mean ± std, α-head statistics and one DET plot."""

from .grid import expand_grid, parse_grid
from .report import REPORT_FARS, collect, report_markdown, write_report
from .runner import RunSpec, Variant, available_cores, default_jobs, plan_runs, run_all, run_state
from .scores import load_scores, save_scores
from .suites import Suite, available_suites, load_suite, suite_variants

__all__ = [
    "REPORT_FARS",
    "RunSpec",
    "Suite",
    "Variant",
    "available_cores",
    "available_suites",
    "collect",
    "default_jobs",
    "expand_grid",
    "load_scores",
    "load_suite",
    "parse_grid",
    "plan_runs",
    "report_markdown",
    "run_all",
    "run_state",
    "save_scores",
    "suite_variants",
    "write_report",
]
