"""Benchmark suites, their runner, result files and plots.

* :mod:`gnnrec.benchmark.suite`: suites as data and the cells they expand to;
* :mod:`gnnrec.benchmark.runner`: :func:`run_benchmark` runs (or resumes) a suite into a run directory;
* :mod:`gnnrec.benchmark.cell`: one cell (fit with selection, refit on train ∪ validation, test once);
* :mod:`gnnrec.benchmark.report`: summaries, markdown/CSV/JSON and the one mean ± std formatter;
* :mod:`gnnrec.benchmark.plots`: metric bars and learning curves;
* :mod:`gnnrec.benchmark.significance`: paired user bootstrap of the leading model against the others;
* :mod:`gnnrec.benchmark.harness`: a benchmark script's run (shared options, timing, peak memory, provenance,
  results record), used by every script in ``benchmarks/``;
* :mod:`gnnrec.benchmark.markers`: named tables in results files and the README blocks that copy them.
"""

from gnnrec.benchmark.cell import supports_refit
from gnnrec.benchmark.harness import PeakMemory, environment
from gnnrec.benchmark.markers import extract_table, wrap_table
from gnnrec.benchmark.plots import plot_learning_curves, plot_metric_bars
from gnnrec.benchmark.report import (
    OK,
    format_estimate,
    format_mean_std,
    higher_is_better,
    json_safe,
    mean_std,
    metric_names,
    metric_table,
    results_csv,
    results_markdown,
    significance_table,
    summarize,
    summary_table,
    write_results,
)
from gnnrec.benchmark.runner import BenchmarkRun, ablation_choice, default_run_dir, run_benchmark
from gnnrec.benchmark.significance import leader_comparisons
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
    "OK",
    "ablation_choice",
    "available_suites",
    "BenchmarkRun",
    "build_cells",
    "builtin_suites_dir",
    "Cell",
    "default_run_dir",
    "environment",
    "epochs_hint",
    "extract_table",
    "format_estimate",
    "format_mean_std",
    "higher_is_better",
    "json_safe",
    "leader_comparisons",
    "load_suite",
    "mean_std",
    "metric_names",
    "metric_table",
    "ModelEntry",
    "parse_targeted_overrides",
    "PeakMemory",
    "plot_learning_curves",
    "plot_metric_bars",
    "results_csv",
    "results_markdown",
    "run_benchmark",
    "significance_table",
    "Suite",
    "summarize",
    "summary_table",
    "supports_refit",
    "wrap_table",
    "write_results",
]
