"""Biased matrix factorisation (Adam, mini-batches, early stopping on validation; data parallel under torchrun)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from gnnrec import distributed
from gnnrec.coldstart.fold_in import ridge_fold_in
from gnnrec.config import Range, check_config
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation import check_selection_metric, improved
from gnnrec.models.base import RatingModel
from gnnrec.models.baselines import rmse_on, val_metrics
from gnnrec.models.registry import register_model

# default ridge weight of a folded-in node's factors and bias (the training objective's per-rating weight would
# leave a node with one or two ratings almost unregularised); the cold-start suite chooses it on validation
MF_FOLD_IN_REG = 5.0


@dataclass
class MFConfig:
    """Defaults chosen on the ML-100k u1 validation ratings."""

    dim: int = 64
    lr: float = 0.01
    reg: float = 0.12  # L2 weight on ‖p_u‖² + ‖q_i‖² per rating in the batch
    bias_reg: float = 0.005  # L2 weight on b_u² + b_i² per rating in the batch
    batch_size: int = 4096
    max_epochs: int = 100
    patience: int = 5  # epochs without a better validation metric before stopping
    init_std: float = 0.1
    seed: int = 0
    device: str = "auto"
    selection_metric: str = "rmse"  # validation metric of early stopping and of the kept epoch
    fold_in_reg: float = MF_FOLD_IN_REG  # ridge weight of a folded-in node's factors and bias (fold-in only)

    def __post_init__(self) -> None:
        counts = dict.fromkeys(("dim", "batch_size", "max_epochs", "patience"), Range(1, integer=True))
        ranges = {**counts, "lr": Range(0.0, low_open=True), "seed": Range(0, integer=True)}
        ranges["fold_in_reg"] = Range(0.0, low_open=True)
        check_config(self, {**ranges, **dict.fromkeys(("reg", "bias_reg", "init_std"), Range(0.0))})
        check_selection_metric(self.selection_metric)


class _BiasedMF(torch.nn.Module):
    """r̂ = μ + b_u + b_i + p_u · q_i."""

    def __init__(self, num_users: int, num_movies: int, dim: int, mean: float) -> None:
        super().__init__()
        self.user_bias = torch.nn.Parameter(torch.zeros(num_users))
        self.movie_bias = torch.nn.Parameter(torch.zeros(num_movies))
        self.user_factor = torch.nn.Parameter(torch.empty(num_users, dim))
        self.movie_factor = torch.nn.Parameter(torch.empty(num_movies, dim))
        self.register_buffer("mean", torch.tensor(float(mean)))

    def forward(self, user: Tensor, movie: Tensor) -> Tensor:
        dot = (self.user_factor[user] * self.movie_factor[movie]).sum(-1)
        return self.mean + self.user_bias[user] + self.movie_bias[movie] + dot

    def score_matrix(self, users: Tensor) -> Tensor:
        dot = self.user_factor[users] @ self.movie_factor.T
        return self.mean + self.user_bias[users, None] + self.movie_bias[None, :] + dot


class _BiasedMFLoss(torch.nn.Module):
    """MF's batch loss as a module (what DistributedDataParallel wraps): sums over this rank's shard / (B / N).

    With a global batch of B ratings split over N ranks and DDP averaging gradients, the gradient equals
    the one-process gradient of the mean loss over the whole batch.
    """

    def __init__(self, mf: _BiasedMF, reg: float, bias_reg: float) -> None:
        super().__init__()
        self.mf, self.reg, self.bias_reg = mf, reg, bias_reg

    def forward(self, user: Tensor, movie: Tensor, rating: Tensor, per_rank_batch: float) -> Tensor:
        mf = self.mf
        pred = mf(user, movie)
        factors = mf.user_factor[user].pow(2).sum(-1) + mf.movie_factor[movie].pow(2).sum(-1)
        biases = mf.user_bias[user].pow(2) + mf.movie_bias[movie].pow(2)
        total = (pred - rating).pow(2).sum() + self.reg * factors.sum() + self.bias_reg * biases.sum()
        return total / per_rank_batch


@register_model
class MF(RatingModel):
    """Biased matrix factorisation r̂ = μ + b_u + b_i + p_u·q_i, trained with Adam on minibatches of ratings.

    Loss per batch: mean (r̂ − r)² + ``reg`` · mean(‖p_u‖² + ‖q_i‖²) + ``bias_reg`` · mean(b_u² + b_i²).
    Early stopping keeps the weights of the epoch with the best validation ``selection_metric``.
    """

    name = "mf"
    fit_cost = 5.0
    fold_in_kinds = ("users", "movies")
    config_class = MFConfig
    fold_in_settings: ClassVar[tuple[str, ...]] = ("fold_in_reg",)

    @classmethod
    def test_config(cls) -> MFConfig:
        return MFConfig(dim=8, max_epochs=5, batch_size=256, device="cpu")

    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        cfg = self.config
        device = self.device
        generator = torch.Generator().manual_seed(cfg.seed)
        mean = float(split.train.rating.double().mean())
        module = _BiasedMF(split.num_users, split.num_movies, cfg.dim, mean)
        with torch.no_grad():
            module.user_factor.normal_(0.0, cfg.init_std, generator=generator)
            module.movie_factor.normal_(0.0, cfg.init_std, generator=generator)
        self.module = module.to(device)
        optimizer = torch.optim.Adam(self.module.parameters(), lr=cfg.lr)
        train = split.train.to(device)
        metric = cfg.selection_metric
        best_value, best_state, stale = None, None, 0
        self.best_epoch = 0
        started = time.perf_counter()
        # Data parallel under torchrun (gnnrec.distributed): every rank draws the same global batches and
        # takes its shard; rank 0 alone validates, logs and decides early stopping. Alone: one process.
        world, main = distributed.world_size(), distributed.is_main()
        step = distributed.wrap(_BiasedMFLoss(self.module, cfg.reg, cfg.bias_reg))
        for epoch in range(1, cfg.max_epochs + 1):
            self.module.train()
            order = torch.randperm(len(train), generator=generator).to(device)
            total_loss = 0.0
            for batch in order.split(cfg.batch_size):
                part = distributed.shard(batch)
                loss = step(train.user[part], train.movie[part], train.rating[part], len(batch) / world)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total_loss += float(loss.detach()) * len(batch) / world
            total_loss = distributed.all_reduce_sum(total_loss)
            self.module.eval()
            entry = {"epoch": epoch, "train_loss": total_loss / len(train)}
            if main:
                entry |= {**rmse_on(self, split, "train"), **val_metrics(self, split, metric)}
                entry["lr"] = optimizer.param_groups[0]["lr"]
            entry["seconds"] = time.perf_counter() - started
            self.history.append(entry)
            if logger is not None and main:
                self._log(logger, entry)
            if len(split.val) == 0:  # nothing to stop on: keep the last epoch
                self.best_epoch = epoch
                continue
            better = main and improved(metric, entry[f"val_{metric}"], best_value)
            stop = main and not better and stale + 1 >= cfg.patience
            better, stop = distributed.broadcast_flags([better, stop])
            if better:
                best_value, stale, self.best_epoch = entry.get(f"val_{metric}"), 0, epoch
                best_state = copy.deepcopy(self.module.state_dict())
            else:
                stale += 1
                if stop:
                    break
        if best_state is not None:
            self.module.load_state_dict(best_state)
        self.module = self.module.cpu()

    def _log(self, logger: Any, entry: dict[str, float]) -> None:
        epoch = entry["epoch"]
        logger.add_scalar("loss/train", entry["train_loss"], epoch)
        for key, value in entry.items():
            if key.startswith(("train_", "val_")) and key != "train_loss":
                part, _, name = key.partition("_")
                logger.add_scalar(f"{name}/{part}", value, epoch)
        logger.add_scalar("lr", entry["lr"], epoch)
        for name, weight in self.module.named_parameters():
            logger.add_histogram(f"weights/{name}", weight.detach().cpu(), epoch)

    def refit_overrides(self) -> dict[str, Any]:
        return {"max_epochs": max(1, self.best_epoch)}

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        device = self.module.mean.device  # the module may sit on the GPU while validation predicts during fit
        return self.module(user.to(device), movie.to(device))

    def _score_matrix(self, users: Tensor) -> Tensor:
        return self.module.score_matrix(users.to(self.module.mean.device))

    def _fold_in(self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        # standard fold-in: ridge solve of the new node's factors and bias, the other side's factors fixed
        module = self.module.cpu()
        factor = (module.movie_factor if kind == "users" else module.user_factor).detach()
        bias = (module.movie_bias if kind == "users" else module.user_bias).detach()
        mean = float(module.mean)
        new_factor, new_bias = ridge_fold_in(
            factor, bias, mean, support, rating, num_new, self.config.fold_in_reg, self.config.fold_in_reg
        )
        return (mean + new_bias[:, None] + bias[None, :].double() + new_factor @ factor.T.double()).float()

    def _state(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "best_epoch": self.best_epoch}

    def _load_state(self, state: dict[str, Any]) -> None:
        weights = state["module"]
        num_users, dim = weights["user_factor"].shape
        self.module = _BiasedMF(num_users, weights["movie_factor"].size(0), dim, float(weights["mean"]))
        self.module.load_state_dict(weights)
        self.module.eval()
        self.best_epoch = int(state["best_epoch"])
