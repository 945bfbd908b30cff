"""Evaluation: aggregate statistics (IQM, stratified bootstrap), O2O metrics, run reports.

`hybridrl.evaluation.stats` holds the numpy statistics; `hybridrl.evaluation.report` reads the
run directories the runner writes and produces the table and plots behind ``hybridrl report``.
See ``docs/evaluation.md`` for the definitions and the run-directory format.
"""

from __future__ import annotations

from hybridrl.evaluation.report import (
    RunRecord,
    format_table,
    load_run,
    load_runs,
    plot_curves,
    plot_summary,
    summarize,
    write_report,
)
from hybridrl.evaluation.stats import iqm, o2o_metrics, stratified_bootstrap_ci

__all__ = [
    "RunRecord",
    "format_table",
    "iqm",
    "load_run",
    "load_runs",
    "o2o_metrics",
    "plot_curves",
    "plot_summary",
    "stratified_bootstrap_ci",
    "summarize",
    "write_report",
]
