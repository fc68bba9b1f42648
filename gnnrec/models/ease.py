"""EASE (Steck 2019): a shallow item-item autoencoder with a closed-form solution.

With ``X`` the binary ``[users, movies]`` matrix of training interactions and
``P = (XᵀX + λI)⁻¹``, the item-item weights are ``B = I − P · diagMat(1 / diag(P))`` (zero
diagonal), and user ``u`` scores movie ``i`` with ``(X B)_ui``. ``λ`` is chosen from a grid on the
validation part by a top-K metric (``selection_metric``, default ``ndcg@10``). The model keeps the
training-only fit after selection (the benchmark runner refits on train + validation with
``refit_overrides``) and scores from each user's training interactions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gnnrec.config import check_device, check_range
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation.validation import check_selection_metric, improved, validation_metrics
from gnnrec.models.base import RatingModel
from gnnrec.models.registry import register_model


@dataclass
class EASEConfig:
    """``reg`` = None: pick λ from ``reg_grid`` by validation ``selection_metric``.

    ``min_rating``: a training rating ≥ this counts as an interaction (0: every rating).
    """

    reg: float | None = None
    reg_grid: tuple[float, ...] = (50.0, 100.0, 200.0, 300.0, 500.0, 1000.0)
    selection_metric: str = "ndcg@10"
    min_rating: float = 0.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.reg is not None:
            check_range("EASEConfig", "reg", self.reg, 0.0, low_open=True)
        if not self.reg_grid:
            raise ValueError("EASEConfig: reg_grid=() is invalid; give at least one λ")
        for value in self.reg_grid:
            check_range("EASEConfig", "reg_grid", value, 0.0, low_open=True)
        check_selection_metric(self.selection_metric)
        check_range("EASEConfig", "min_rating", self.min_rating, 0.0)
        check_device("EASEConfig", self.device)


def ease_weights(gram: Tensor, reg: float) -> Tensor:
    """``B = I − P·diagMat(1/diag(P))`` with ``P = (G + λI)⁻¹`` for a Gram matrix ``G = XᵀX``."""
    if reg <= 0:
        raise ValueError(f"ease: the regularisation λ must be positive, got {reg}")
    eye = torch.eye(gram.size(0), dtype=gram.dtype, device=gram.device)
    precision = torch.linalg.inv(gram + reg * eye)
    weights = -precision / torch.diagonal(precision)[None, :]
    weights.fill_diagonal_(0.0)
    return weights


@register_model
class EASE(RatingModel):
    """Embarrassingly shallow autoencoder: score(u, ·) = X_u · B, ranking-only."""

    name = "ease"
    fold_in_kinds = ("users",)
    config_class = EASEConfig
    predicts_ratings = False

    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        cfg = self.config
        check_selection_metric(cfg.selection_metric)
        start = time.perf_counter()
        device = self.device
        train = split.train
        keep = train.rating >= cfg.min_rating
        interactions = torch.zeros(split.num_users, split.num_movies, dtype=torch.float64, device=device)
        interactions[train.user[keep].to(device), train.movie[keep].to(device)] = 1.0
        gram = interactions.T @ interactions
        self.interactions = interactions.float().cpu()
        grid = [cfg.reg] if cfg.reg is not None else list(cfg.reg_grid)
        if len(grid) > 1 and len(split.val) == 0:
            raise ValueError("ease: choosing λ needs validation ratings; set reg explicitly")
        best, best_reg, best_weights = None, grid[0], None
        for epoch, reg in enumerate(grid, start=1):
            self.reg = float(reg)
            self.weights = ease_weights(gram, reg).float().cpu()
            entry: dict[str, Any] = {"epoch": epoch, "reg": float(reg)}
            if len(grid) > 1:
                value = validation_metrics(self, split, [cfg.selection_metric])[cfg.selection_metric]
                entry[f"val_{cfg.selection_metric}"] = value
                if logger is not None:
                    logger.add_scalar(f"selection/val_{cfg.selection_metric}", value, epoch)
                if improved(cfg.selection_metric, value, best):
                    best, best_reg, best_weights = value, float(reg), self.weights
            entry["seconds"] = time.perf_counter() - start
            self.history.append(entry)
        if best_weights is not None:
            self.reg, self.weights = best_reg, best_weights

    def refit_overrides(self) -> dict[str, Any]:
        return {"reg": self.reg}

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        return (self.interactions[user] * self.weights[:, movie].T).sum(-1)

    def _score_matrix(self, users: Tensor) -> Tensor:
        return self.interactions[users] @ self.weights

    def _fold_in(self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        if kind != "users":
            return super()._fold_in(kind, features, support, rating, num_new)  # B has no column for a new movie
        rows = torch.zeros(num_new, self.weights.size(0))
        keep = rating >= self.config.min_rating
        rows[support[0, keep], support[1, keep]] = 1.0
        return rows @ self.weights

    def _state(self) -> dict[str, Any]:
        return {"interactions": self.interactions.to_sparse(), "weights": self.weights, "reg": self.reg}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.interactions = state["interactions"].to_dense().float()
        self.weights = state["weights"].float()
        self.reg = float(state["reg"])
