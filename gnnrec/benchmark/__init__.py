"""Benchmark suites, their runner, result files and plots.

* :mod:`gnnrec.benchmark.suite`: suites as data and the cells they expand to;
* :mod:`gnnrec.benchmark.runner`: :func:`run_benchmark` runs (or resumes) a suite into a run directory;
* :mod:`gnnrec.benchmark.report`: summaries, markdown/CSV/JSON and the one mean ± std formatter;
* :mod:`gnnrec.benchmark.plots`: metric bars and learning curves.
"""

from gnnrec.benchmark.plots import plot_learning_curves, plot_metric_bars
from gnnrec.benchmark.report import (
    OK,
    format_mean_std,
    higher_is_better,
    json_safe,
    mean_std,
    metric_names,
    results_csv,
    results_markdown,
    summarize,
    summary_table,
    write_results,
)
from gnnrec.benchmark.runner import BenchmarkRun, PeakMemory, default_run_dir, environment, run_benchmark
from gnnrec.benchmark.suite import (
    ALL_MODELS,
    ANY_MODEL,
    Cell,
    ModelEntry,
    Suite,
    available_suites,
    build_cells,
    builtin_suites_dir,
    load_suite,
    parse_targeted_overrides,
)
from gnnrec.config import epochs_hint

__all__ = [
    "ALL_MODELS",
    "ANY_MODEL",
    "BenchmarkRun",
    "Cell",
    "ModelEntry",
    "OK",
    "PeakMemory",
    "Suite",
    "available_suites",
    "build_cells",
    "builtin_suites_dir",
    "default_run_dir",
    "environment",
    "epochs_hint",
    "format_mean_std",
    "higher_is_better",
    "json_safe",
    "load_suite",
    "mean_std",
    "metric_names",
    "parse_targeted_overrides",
    "plot_learning_curves",
    "plot_metric_bars",
    "results_csv",
    "results_markdown",
    "run_benchmark",
    "summarize",
    "summary_table",
    "write_results",
]
