"""Non-graph baselines every GNN must beat: the global mean and user + item biases (MF: :mod:`gnnrec.models.mf`)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from gnnrec.coldstart.fold_in import ridge_fold_in
from gnnrec.config import Range, check_config
from gnnrec.data.split import RatingEdges, RatingSplit
from gnnrec.evaluation import check_selection_metric, improved, validation_metrics
from gnnrec.models.base import RatingModel
from gnnrec.models.registry import register_model


def rmse_on(model: RatingModel, split: RatingSplit, part: str) -> dict[str, float]:
    """``{"<part>_rmse": value}`` with the model's current weights, or ``{}`` when the part is empty."""
    if len(split.edges(part)) == 0:
        return {}
    return {f"{part}_rmse": validation_metrics(model, split, ["rmse"], part=part)["rmse"]}


def val_metrics(model: RatingModel, split: RatingSplit, selection_metric: str) -> dict[str, float]:
    """``{"val_rmse": ..., "val_<selection_metric>": ...}`` on the validation ratings (empty without any)."""
    if len(split.val) == 0:
        return {}
    names = list(dict.fromkeys(["rmse", selection_metric]))
    return {f"val_{name}": value for name, value in validation_metrics(model, split, names).items()}


# ---------------------------------------------------------------------- global mean
@dataclass
class GlobalMeanConfig:
    """The global mean has no hyperparameters."""

    def __post_init__(self) -> None:
        check_config(self)


@register_model
class GlobalMean(RatingModel):
    """r̂ = μ, the mean training rating."""

    name = "global-mean"
    config_class = GlobalMeanConfig

    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        started = time.perf_counter()
        self.mean = float(split.train.rating.double().mean())
        entry = {"epoch": 1, **rmse_on(self, split, "train"), **rmse_on(self, split, "val")}
        self.history.append({**entry, "seconds": time.perf_counter() - started})

    def refit_overrides(self) -> dict[str, Any]:
        return {}  # nothing selected, but a refit on train ∪ val sees more ratings

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        return torch.full(user.shape, self.mean)

    def _score_matrix(self, users: Tensor) -> Tensor:
        return torch.full((len(users), self.info.num_movies), self.mean)

    def _state(self) -> dict[str, Any]:
        return {"mean": self.mean}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.mean = float(state["mean"])


# ---------------------------------------------------------------------- user + item biases
@dataclass
class BiasConfig:
    """``reg_user``/``reg_item`` = None: pick each from ``reg_grid`` by validation RMSE."""

    reg_user: float | None = None
    reg_item: float | None = None
    reg_grid: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0)
    tol: float = 1e-8  # relative residual at which conjugate gradients stop
    max_iterations: int = 500
    selection_metric: str = "rmse"  # validation metric that picks the regularisation from the grid
    fold_in_reg: float | None = None  # ridge weight of a folded-in node's bias (None: the fitted reg_user/reg_item)

    def __post_init__(self) -> None:
        if not self.reg_grid:
            raise ValueError("BiasConfig: reg_grid=() is invalid; it must hold at least one positive value")
        positive = Range(0.0, low_open=True)
        ranges = dict.fromkeys(("reg_user", "reg_item", "reg_grid", "tol", "fold_in_reg"), positive)
        check_config(self, {**ranges, "max_iterations": Range(1, integer=True)})
        check_selection_metric(self.selection_metric)


def solve_biases(
    edges: RatingEdges,
    mean: float,
    num_users: int,
    num_movies: int,
    reg_user: float,
    reg_item: float,
    *,
    tol: float = 1e-8,
    max_iterations: int = 500,
) -> tuple[Tensor, Tensor, int]:
    """Ridge regression of the residuals r − μ on one-hot user and movie indicators.

    Minimises Σ (r_ui − μ − b_u − b_i)² + λ_u Σ b_u² + λ_i Σ b_i² exactly, by Jacobi-preconditioned
    conjugate gradients on the normal equations (AᵀA + Λ) b = Aᵀ(r − μ). Returns
    ``(user_bias, movie_bias, iterations)`` in float64.
    """
    if reg_user <= 0 or reg_item <= 0:
        raise ValueError(f"bias regularisation must be positive, got reg_user={reg_user}, reg_item={reg_item}")
    user, movie = edges.user, edges.movie
    reg = torch.cat([torch.full((num_users,), float(reg_user)), torch.full((num_movies,), float(reg_item))]).double()

    def gram(x: Tensor) -> Tensor:  # (AᵀA + Λ) x
        fitted = x[user] + x[num_users + movie]
        out = reg * x
        out[:num_users].index_add_(0, user, fitted)
        out[num_users:].index_add_(0, movie, fitted)
        return out

    residual = edges.rating.double() - mean
    rhs = torch.zeros(num_users + num_movies, dtype=torch.float64)
    rhs[:num_users].index_add_(0, user, residual)
    rhs[num_users:].index_add_(0, movie, residual)
    count = torch.cat([torch.bincount(user, minlength=num_users), torch.bincount(movie, minlength=num_movies)])
    inverse_diagonal = 1.0 / (count.double() + reg)

    x = rhs * inverse_diagonal  # one Jacobi step: the independent closed-form biases
    r = rhs - gram(x)
    z = r * inverse_diagonal
    p = z.clone()
    rz = float(r @ z)
    target = tol * float(rhs.norm())
    iterations = 0
    while float(r.norm()) > target and iterations < max_iterations:
        gp = gram(p)
        step = rz / float(p @ gp)
        x += step * p
        r -= step * gp
        z = r * inverse_diagonal
        rz, previous = float(r @ z), rz
        p = z + (rz / previous) * p
        iterations += 1
    return x[:num_users], x[num_users:], iterations


@register_model
class Bias(RatingModel):
    """r̂ = μ + b_u + b_i with ridge-regularised biases (regularisation picked on validation)."""

    name = "bias"
    fold_in_kinds = ("users", "movies")
    config_class = BiasConfig
    fold_in_settings: ClassVar[tuple[str, ...]] = ("fold_in_reg",)

    def _solve(self, split: RatingSplit, reg_user: float, reg_item: float) -> int:
        cfg = self.config
        user_bias, movie_bias, iterations = solve_biases(
            split.train, self.mean, split.num_users, split.num_movies, reg_user, reg_item,
            tol=cfg.tol, max_iterations=cfg.max_iterations,
        )  # fmt: skip
        self.user_bias, self.movie_bias = user_bias.float(), movie_bias.float()
        return iterations

    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        cfg = self.config
        started = time.perf_counter()
        metric = cfg.selection_metric
        self.mean = float(split.train.rating.double().mean())
        user_grid = [cfg.reg_user] if cfg.reg_user is not None else list(cfg.reg_grid)
        item_grid = [cfg.reg_item] if cfg.reg_item is not None else list(cfg.reg_grid)
        self.selection: list[dict[str, float]] = []
        if len(user_grid) * len(item_grid) > 1:
            if len(split.val) == 0:
                raise ValueError("bias: choosing reg_user/reg_item needs validation ratings; set both explicitly")
            best = None
            for step, (reg_user, reg_item) in enumerate(itertools.product(user_grid, item_grid)):
                self._solve(split, reg_user, reg_item)
                row = {"reg_user": reg_user, "reg_item": reg_item, **val_metrics(self, split, metric)}
                self.selection.append(row)
                if logger is not None:
                    logger.add_scalar(f"selection/val_{metric}", row[f"val_{metric}"], step)
                if best is None or improved(metric, row[f"val_{metric}"], best[f"val_{metric}"]):
                    best = row
            user_grid, item_grid = [best["reg_user"]], [best["reg_item"]]
        self.reg_user, self.reg_item = float(user_grid[0]), float(item_grid[0])
        iterations = self._solve(split, self.reg_user, self.reg_item)
        entry = {
            "epoch": 1,
            **rmse_on(self, split, "train"),
            **val_metrics(self, split, metric),
            "cg_iterations": iterations,
            "seconds": time.perf_counter() - started,
        }
        self.history.append(entry)
        if logger is not None:
            for key, value in entry.items():
                if key.startswith(("train_", "val_")):
                    part, _, name = key.partition("_")
                    logger.add_scalar(f"{name}/{part}", value, 1)
            logger.add_histogram("bias/user", self.user_bias, 1)
            logger.add_histogram("bias/movie", self.movie_bias, 1)

    def refit_overrides(self) -> dict[str, Any]:
        return {"reg_user": self.reg_user, "reg_item": self.reg_item}

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        return self.mean + self.user_bias[user] + self.movie_bias[movie]

    def _score_matrix(self, users: Tensor) -> Tensor:
        return self.mean + self.user_bias[users, None] + self.movie_bias[None, :]

    def _fold_in(self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        # the new node's bias is the ridge solution on its support with the other side's biases fixed
        other_bias = self.movie_bias if kind == "users" else self.user_bias
        reg = self.config.fold_in_reg or (self.reg_user if kind == "users" else self.reg_item)
        empty = torch.zeros(len(other_bias), 0)
        _, bias = ridge_fold_in(empty, other_bias, self.mean, support, rating, num_new, 1.0, reg)
        return self.mean + bias.float()[:, None] + other_bias[None, :]

    def _state(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "user_bias": self.user_bias,
            "movie_bias": self.movie_bias,
            "reg_user": self.reg_user,
            "reg_item": self.reg_item,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.mean = float(state["mean"])
        self.user_bias, self.movie_bias = state["user_bias"].float(), state["movie_bias"].float()
        self.reg_user, self.reg_item = float(state["reg_user"]), float(state["reg_item"])
