"""EASE (Steck 2019): a shallow item-item autoencoder with a closed-form solution.

With ``X`` the binary ``[users, movies]`` matrix of training interactions and
``P = (XᵀX + λI)⁻¹``, the item-item weights are ``B = I − P · diagMat(1 / diag(P))`` (zero
diagonal), and user ``u`` scores movie ``i`` with ``(X B)_ui``. ``λ`` is chosen from a grid on the
validation part by a top-K metric (``selection_metric``, default ``ndcg@10``). The model keeps the
training-only fit after selection (the benchmark runner refits on train + validation with
``refit_overrides``) and scores from each user's training interactions.

``X`` is kept sparse (CSR) and scored a chunk of users at a time; the dense ``movies × movies`` Gram
matrix and its inverse are what limit the catalogue size, so the fit first estimates that memory
(:func:`fit_memory_estimate`) and refuses with a ``MemoryError`` when it exceeds what is available.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse
import torch
from torch import Tensor

from gnnrec.config import Range, check_config
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation.validation import check_selection_metric, improved, validation_metrics
from gnnrec.models.base import RatingModel
from gnnrec.models.registry import register_model
from gnnrec.utils import available_memory

# Bytes per movie² at the fit's peak: the float64 Gram matrix (8) kept for the
# λ grid, torch.linalg.inv's input, LU workspace and output plus the float32 result (32), and the current
# and best float32 weights (8).
FIT_BYTES_PER_MOVIE_PAIR = 48
PREDICT_MEMORY_BUDGET = 1 << 28  # bytes of dense [pairs, movies] rows per predict chunk


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
        if not self.reg_grid:
            raise ValueError("EASEConfig: reg_grid=() is invalid; give at least one λ")
        positive = Range(0.0, low_open=True)
        check_config(self, {"reg": positive, "reg_grid": positive, "min_rating": Range(0.0)})
        check_selection_metric(self.selection_metric)


def ease_weights(gram: Tensor, reg: float) -> Tensor:
    """``B = I − P·diagMat(1/diag(P))`` with ``P = (G + λI)⁻¹`` for a Gram matrix ``G = XᵀX``."""
    if reg <= 0:
        raise ValueError(f"ease: the regularisation λ must be positive, got {reg}")
    eye = torch.eye(gram.size(0), dtype=gram.dtype, device=gram.device)
    precision = torch.linalg.inv(gram + reg * eye)
    weights = -precision / torch.diagonal(precision)[None, :]
    weights.fill_diagonal_(0.0)
    return weights


def fit_memory_estimate(num_movies: int) -> int:
    """Bytes an EASE fit needs for its dense ``movies × movies`` matrices."""
    return FIT_BYTES_PER_MOVIE_PAIR * num_movies * num_movies


def check_fit_memory(num_movies: int, device: torch.device) -> None:
    """Refuse (``MemoryError``) a fit whose dense matrices would not fit, instead of being killed mid-way."""
    need, have = fit_memory_estimate(num_movies), available_memory(device)
    if need > have:
        raise MemoryError(
            f"EASE needs about {need / 2**30:.1f} GiB on {device} for its dense {num_movies:,} × {num_movies:,} "
            f"movie-movie matrices, but only {have / 2**30:.1f} GiB is available; use a smaller catalogue "
            "(e.g. drop rarely rated movies) or a machine with more memory"
        )


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
        check_fit_memory(split.num_movies, device)
        keep = train.rating >= cfg.min_rating
        # Gram matrix from the sparse X: integer counts, exact in float64 (what a dense XᵀX gives)
        rows = scipy.sparse.csr_matrix(
            (np.ones(int(keep.sum())), (train.user[keep].numpy(), train.movie[keep].numpy())),
            shape=(split.num_users, split.num_movies),
        )
        rows.sum_duplicates()
        rows.data[:] = 1.0
        gram = torch.from_numpy((rows.T @ rows).toarray()).to(device)
        self._set_interactions(torch.from_numpy(rows.indptr).long(), torch.from_numpy(rows.indices).long())
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

    def _set_interactions(self, indptr: Tensor, indices: Tensor) -> None:
        """The training interactions as CSR rows (``indptr``, ``indices``), one row per user."""
        self._indptr, self._indices = indptr, indices

    def _dense_rows(self, users: Tensor) -> Tensor:
        """``X[users]`` as a dense float32 ``[len(users), movies]`` block."""
        start, stop = self._indptr[users], self._indptr[users + 1]
        counts = stop - start
        row = torch.repeat_interleave(torch.arange(len(users)), counts)
        first = torch.repeat_interleave(start - (torch.cumsum(counts, 0) - counts), counts)
        dense = torch.zeros(len(users), self.weights.size(0))
        dense[row, self._indices[first + torch.arange(len(row))]] = 1.0
        return dense

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        chunk = max(1, PREDICT_MEMORY_BUDGET // (8 * self.weights.size(0)))
        parts = zip(user.split(chunk), movie.split(chunk), strict=True)
        return torch.cat([(self._dense_rows(u) * self.weights[:, m].T).sum(-1) for u, m in parts])

    def _score_matrix(self, users: Tensor) -> Tensor:
        return self._dense_rows(users) @ self.weights

    def _fold_in(self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        if kind != "users":
            return super()._fold_in(kind, features, support, rating, num_new)  # B has no column for a new movie
        rows = torch.zeros(num_new, self.weights.size(0))
        keep = rating >= self.config.min_rating
        rows[support[0, keep], support[1, keep]] = 1.0
        return rows @ self.weights

    def _state(self) -> dict[str, Any]:
        num_users = len(self._indptr) - 1
        row = torch.repeat_interleave(torch.arange(num_users), self._indptr.diff())
        interactions = torch.sparse_coo_tensor(
            torch.stack([row, self._indices]), torch.ones(len(row)), (num_users, self.weights.size(0))
        )
        return {"interactions": interactions.coalesce(), "weights": self.weights, "reg": self.reg}

    def _load_state(self, state: dict[str, Any]) -> None:
        csr = state["interactions"].coalesce().to_sparse_csr()
        self._set_interactions(csr.crow_indices().long(), csr.col_indices().long())
        self.weights = state["weights"].float()
        self.reg = float(state["reg"])
