"""Hyper-parameters of GLocal-K (:class:`GLocalKConfig`) and the authors' per-dataset settings (:data:`PRESETS`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from gnnrec.config import Range, check_config, resolve_preset
from gnnrec.evaluation import check_selection_metric

PROTOCOLS = ("honest", "paper")
SELECTIONS = ("best_val", "last")
PAPER_METRICS = ("rmse", "mae", "ndcg")  # the official notebook's per-metric best test epochs
FALLBACK_PRESET = "ml-100k"  # datasets without a preset of their own (Monti's Flixster, Yahoo, ...) use ML-100k's

# The authors' per-dataset settings (their notebook); ``iterations`` = L-BFGS-B iterations per epoch.
# ``refit_continue_share`` is gnnrec's, not the authors': how a refit starts (GLocalK.warm_start_from), chosen on
# a second validation carve-out of train (benchmarks/bench_refit_protocol.py).
PRESETS: dict[str, dict[str, Any]] = {
    "ml-100k": {
        "lambda_2": 20.0,
        "lambda_s": 0.006,
        "pretrain_iterations": 5,
        "finetune_iterations": 5,
        "pretrain_epochs": 30,
        "finetune_epochs": 60,
        "dot_scale": 1.0,
        "refit_continue_share": 0.25,
    },
    "ml-1m": {
        "lambda_2": 70.0,
        "lambda_s": 0.018,
        "pretrain_iterations": 50,
        "finetune_iterations": 10,
        "pretrain_epochs": 20,
        "finetune_epochs": 30,
        "dot_scale": 0.5,
        "refit_continue_share": 0.0,
    },
    "douban": {
        "lambda_2": 10.0,
        "lambda_s": 0.022,
        "pretrain_iterations": 5,
        "finetune_iterations": 5,
        "pretrain_epochs": 20,
        "finetune_epochs": 60,
        "dot_scale": 2.0,
        "refit_continue_share": 0.0,
    },
}


@dataclasses.dataclass
class GLocalKConfig:
    """Hyper-parameters of :class:`GLocalK`.

    The fields of :data:`PRESETS` (λ₂, λₛ, epochs, iterations, dot scale) default to ``None``:
    "the preset of the split's dataset", filled in at fit time (``preset="auto"``; datasets
    without a preset use :data:`FALLBACK_PRESET`). Setting one explicitly always wins;
    ``preset="ml-1m"`` etc. uses that preset whatever the dataset. ``reuse_pretraining``: a refit on
    train ∪ validation (a benchmark cell's) starts fine-tuning from its selection fit's pre-training, which
    selection does not touch, instead of pre-training again (:meth:`GLocalK.warm_start_from`);
    ``refit_continue_share`` above 0 makes it continue the selection fit's selected fine-tuning instead, for
    that share of the selected fine-tuning epochs.
    """

    hidden_sizes: tuple[int, ...] = (500, 500)
    kernel_dim: int = 5
    global_kernel_size: int = 3
    lambda_2: float | None = None
    lambda_s: float | None = None
    pretrain_epochs: int | None = None
    finetune_epochs: int | None = None
    pretrain_iterations: int | None = None
    finetune_iterations: int | None = None
    lbfgs_history: int = 10
    reuse_pretraining: bool = True
    refit_continue_share: float | None = None
    dot_scale: float | None = None
    preset: str = "auto"
    protocol: str = "honest"
    selection: str = "best_val"
    selection_metric: str = "rmse"
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_config(self, {"refit_continue_share": Range(0.0, 1.0)})  # finite numbers, a valid device
        try:
            self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        except (TypeError, ValueError):
            raise ValueError(f"hidden_sizes must be a sequence of integers, got {self.hidden_sizes!r}") from None
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must hold at least one positive size, got {self.hidden_sizes}")
        positive = ("kernel_dim", "global_kernel_size", "pretrain_iterations", "finetune_iterations", "lbfgs_history")
        counts = (*positive, "pretrain_epochs", "finetune_epochs", "seed")
        for name in counts:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not isinstance(self.reuse_pretraining, bool):
            raise ValueError(f"reuse_pretraining must be true or false, got {self.reuse_pretraining!r}")
        if self.global_kernel_size % 2 == 0:
            raise ValueError(f"global_kernel_size must be odd ('same' padding), got {self.global_kernel_size}")
        for name in ("pretrain_epochs", "finetune_epochs", "seed"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.pretrain_epochs == 0 and self.finetune_epochs == 0:
            raise ValueError("pretrain_epochs and finetune_epochs cannot both be 0")
        for name in ("lambda_2", "lambda_s", "dot_scale"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or not math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        for name in ("lambda_2", "lambda_s"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.preset != "auto" and self.preset.lower() not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose 'auto' or one of {', '.join(PRESETS)}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; choose one of {', '.join(SELECTIONS)}")
        check_selection_metric(self.selection_metric)

    @classmethod
    def preset_config(cls, dataset: str, **overrides: Any) -> GLocalKConfig:
        """The authors' settings for ``"ml-100k"``, ``"ml-1m"`` or ``"douban"`` filled in, updated by ``overrides``."""
        key = dataset.lower()
        if key not in PRESETS:
            raise ValueError(f"no GLocal-K preset for {dataset!r}; presets: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[key], "preset": key, **overrides})

    def resolved(self, dataset: str | None) -> tuple[GLocalKConfig, str]:
        """This config with its ``None`` fields taken from the preset for ``dataset``; and that preset's name."""
        return resolve_preset(self, PRESETS, dataset, FALLBACK_PRESET, preset=self.preset)
