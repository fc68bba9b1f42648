"""Fitting the ``gnn`` model (:class:`GNNTrainer`): the members' epochs of :mod:`~gnnrec.models.gnn.step`, the two
validation snapshots with early stopping, the refit overrides and TensorBoard logging."""

from __future__ import annotations

import copy
import math
import time
import warnings
from typing import TYPE_CHECKING, Any

import torch

from gnnrec import distributed
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation.validation import improved, validation_metrics
from gnnrec.models.gnn.graph import TrainingGraph, arrival_shares, graph_metadata
from gnnrec.models.gnn.step import StepPlan, TrainingStep, train_epoch
from gnnrec.nn.network import RatingGNN
from gnnrec.utils import seed_everything, subnormals_flushed

if TYPE_CHECKING:
    from gnnrec.models.gnn.model import GNNModel

Snapshot = tuple[float | None, int, dict | None]  # (validation value, epoch, averaged weights) of the best epoch


def plateau_gain(metric: str, value: float, last_gain: float | None, tolerance: float) -> bool:
    """Whether ``value`` of ``metric`` beats the last counted gain by more than ``tolerance`` of its size."""
    return improved(metric, value, last_gain, 0.0 if last_gain is None else tolerance * abs(last_gain))


def refit_overrides(selected_epochs: list[dict[str, int]]) -> dict[str, int]:
    """Config overrides that repeat what validation selected when fitting again without validation
    (on train + validation): the epoch budget and the epochs of the rating and ranking snapshots, averaged
    over the ensemble's members."""
    if not selected_epochs:  # not fitted (or an old checkpoint): nothing was selected
        return {}
    chosen = {
        f"keep_{role}_epoch": round(sum(s[role] for s in selected_epochs) / len(selected_epochs))
        for role in selected_epochs[0]
    }
    return {"max_epochs": max(chosen.values()), **chosen}


class GNNTrainer:
    """Fits a :class:`~gnnrec.models.gnn.GNNModel`: its graph and metadata, then each ensemble member in turn.

    Each member trains for up to ``max_epochs`` epochs of :func:`~gnnrec.models.gnn.step.train_epoch` (one
    full-batch step, or mini-batches, alone or under torchrun alike). With validation ratings the member keeps
    two snapshots of its averaged weights: the best ``selection_metric`` (the rating snapshot, serving
    predictions) and the best ``rank_selection_metric`` (the ranking snapshot, serving top-K lists); training
    stops when neither improved for ``patience`` epochs. Without them it runs every epoch and keeps
    ``keep_rating_epoch`` / ``keep_ranking_epoch``.

    Args:
        model: the model to fit; its ``config`` is the resolved one while the trainer runs.
        logger: a TensorBoard ``SummaryWriter``-like object, or ``None``.
    """

    def __init__(self, model: GNNModel, logger: Any | None = None) -> None:
        self.model = model
        self.config = model.config
        self.logger = logger

    def fit(self, split: RatingSplit, start_states: list[dict[str, torch.Tensor]] | None = None) -> None:
        """Fit every member on ``split``; ``start_states``: one state per member to continue instead of a fresh
        initialisation (:meth:`GNNModel.warm_start_from`)."""
        threads = torch.get_num_threads()
        if self.config.threads:
            # on small graphs (and on busy CPUs) intra-op threads cost more than they give
            torch.set_num_threads(self.config.threads)
        try:
            with subnormals_flushed():  # the ranking head's softmax gives subnormal probabilities late in a fit
                self.fit_members(split, start_states)
        finally:
            torch.set_num_threads(threads)

    def fit_members(self, split: RatingSplit, start_states: list[dict[str, torch.Tensor]] | None = None) -> None:
        config, model = self.config, self.model
        seed_everything(config.seed)
        model.graph = TrainingGraph.of(split, config.side_graphs)
        model.metadata = graph_metadata(split)
        model.use_members([], [])
        graph = model.graph.to(model.device)
        model.selected_epochs = []
        model.budget_hits = []
        members: list[RatingGNN] = []
        rank_members: list[RatingGNN] = []
        for member_index in range(config.ensemble):
            member = model.build_member().to(model.device)
            if member.ranker is not None:  # the item-item term's neighbours, from the training graph
                member.ranker.set_neighbours(*graph.edge_index, graph.num_users)
            if start_states is not None:  # after set_neighbours: learned item-item weights keep their neighbours
                member.load_state_dict(start_states[member_index])
            try:
                ranking = self.train_member(member, member_index, split, graph, members, rank_members)
            finally:
                model.use_members(members, rank_members)
            members.append(member.cpu().eval())
            if ranking is not None:
                rank_members.append(ranking.cpu().eval())
        model.use_members(members, rank_members)

    def train_member(
        self,
        member: RatingGNN,
        member_index: int,
        split: RatingSplit,
        graph: TrainingGraph,
        done: list[RatingGNN],
        done_rank: list[RatingGNN],
    ) -> RatingGNN | None:
        """Train one member; load its rating snapshot into it and return the ranking snapshot (None: no head).
        ``done`` / ``done_rank``: the members trained before it."""
        config, model = self.config, self.model
        # foreach: one multi-tensor update per step (the same values as the per-tensor loop, CPU included)
        optimizer = torch.optim.Adam(member.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True)
        suffix = f"/member{member_index}" if config.ensemble > 1 else ""
        # with ema_decay, validation and the kept weights use the moving average of the weights
        averaged = copy.deepcopy(member) if config.ema_decay > 0 else member
        watch = {"rating": config.selection_metric}
        if member.ranker is not None:
            watch["ranking"] = config.rank_selection_metric
        metrics = list(dict.fromkeys(["rmse", "mae", *watch.values()]))
        has_val = len(split.val) > 0
        keep_at = {"rating": config.keep_rating_epoch, "ranking": config.keep_ranking_epoch}
        best: dict[str, Snapshot] = {role: (None, 0, None) for role in watch}
        # (value, epoch) of each role's last gain beyond the plateau tolerance: patience counts from these
        gain: dict[str, tuple[float | None, int]] = {role: (None, 0) for role in watch}
        full_adjacency = member.adjacency(graph.edge_index, graph.rating_index, graph.num_users, graph.num_movies)
        inducing = bool(config.induction_users or config.induction_movies)
        arrival = arrival_shares(split) if inducing and config.induction_order == "earliest" else None
        plan = StepPlan(config, member, graph, full_adjacency, arrival)
        step = distributed.wrap(TrainingStep(member, plan))
        main = distributed.is_main()
        started = time.perf_counter()
        for epoch in range(1, config.max_epochs + 1):
            member.train()
            row, tic = {"epoch": epoch}, time.perf_counter()
            loss, mse, rank_loss = train_epoch(plan, step, member, averaged, optimizer)
            row.update(train_seconds=time.perf_counter() - tic, steps=plan.steps)
            if member.ranker is not None:
                row["train_rank_loss"] = rank_loss.item()
            validate = has_val and (epoch % config.val_every == 0 or epoch == config.max_epochs)
            if validate and main:  # under torchrun rank 0 alone validates (and decides early stopping)
                # validate the averaged weights alone through the shared evaluator
                model.use_members([averaged], [averaged], encoding=(graph, full_adjacency))
                values = validation_metrics(model, split, metrics, relevance_threshold=None)
                model.use_members(done, done_rank)
                row.update({f"val_{name}": value for name, value in values.items()})
            row.update(train_loss=loss.item(), train_rmse=math.sqrt(mse.item()), lr=config.lr)
            row["seconds"] = time.perf_counter() - started
            if config.ensemble > 1:
                row["member"] = member_index
            model.history.append(row)
            if self.logger is not None and main:
                self.log(averaged, row, suffix, graph, full_adjacency)
            if not has_val:  # no validation ratings: train for all epochs, keep the asked-for snapshots
                for role in watch:
                    if epoch == keep_at[role]:
                        best[role] = (None, epoch, copy.deepcopy(averaged.state_dict()))
                continue
            if not validate:
                continue
            better = [main and improved(metric, values[metric], best[role][0]) for role, metric in watch.items()]
            gained = [
                main and plateau_gain(metric, values[metric], gain[role][0], config.plateau_tolerance)
                for role, metric in watch.items()
            ]
            flags = distributed.broadcast_flags(better + gained)
            for index, (role, metric) in enumerate(watch.items()):
                if flags[index]:  # rank 0's decision, on every rank
                    best[role] = (values[metric] if main else None, epoch, copy.deepcopy(averaged.state_dict()))
                if flags[len(watch) + index]:
                    gain[role] = (values[metric] if main else None, epoch)
            if epoch - max(epoch_ for _, epoch_ in gain.values()) >= config.patience:
                break
        else:
            if has_val:
                self.warn_if_still_improving(epoch, gain)
        final = averaged.state_dict()
        model.selected_epochs.append({role: best[role][1] or epoch for role in watch})
        ranking = None
        if member.ranker is not None:
            ranking = copy.deepcopy(member)
            ranking.load_state_dict(best["ranking"][2] or final)
        member.load_state_dict(best["rating"][2] or final)
        return ranking

    def warn_if_still_improving(self, epoch: int, gain: dict[str, tuple[float | None, int]]) -> None:
        """The fit used its whole epoch budget: say so when validation was still improving (its snapshot may not be
        the model's best), and record it in ``model.budget_hits``."""
        last = max(epoch_ for _, epoch_ in gain.values())
        if epoch - last < self.config.patience:
            self.model.budget_hits.append(epoch)
            warnings.warn(
                f"gnn: the fit reached max_epochs={epoch} while validation was still improving (last gain at epoch "
                f"{last}, patience {self.config.patience}); raise max_epochs",
                stacklevel=2,
            )

    def log(self, member: RatingGNN, row: dict[str, float], suffix: str, graph: TrainingGraph, adjacency: Any) -> None:
        """Scalars every epoch; weight and node-embedding histograms every ``histogram_every`` epochs."""
        logger, epoch = self.logger, row["epoch"]
        logger.add_scalar(f"loss/train{suffix}", row["train_loss"], epoch)
        logger.add_scalar(f"rmse/train{suffix}", row["train_rmse"], epoch)
        logger.add_scalar(f"lr{suffix}", row["lr"], epoch)
        for key, value in row.items():
            if key.startswith("val_"):
                logger.add_scalar(f"{key[4:]}/val{suffix}", value, epoch)
        every = self.config.histogram_every
        if every and epoch % every == 0:
            for name, parameter in member.named_parameters():
                logger.add_histogram(f"weights{suffix}/{name}", parameter.detach().cpu(), epoch)
            member.eval()
            with torch.no_grad():
                ids = torch.arange(graph.num_users, device=graph.user_x.device)
                z_user, z_movie = member.encode(
                    graph.user_x, graph.movie_x, graph.edge_index, graph.rating_index, ids, adjacency, side=graph.side
                )
            logger.add_histogram(f"embedding{suffix}/user", z_user.cpu(), epoch)
            logger.add_histogram(f"embedding{suffix}/movie", z_movie.cpu(), epoch)
