"""The fitting half of :class:`~gnnrec.models.gnn.GNNModel` (a mixin), kept apart so that each file stays
under ~400 lines: the training loop with its rating and ranking losses, the two validation snapshots,
:meth:`refit_overrides` and TensorBoard logging; also the graph tensors a fitted model keeps."""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnrec import distributed
from gnnrec.data.graph import RATES
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation.validation import improved, validation_metrics
from gnnrec.models.gnn_steps import StepLoss, StepPlan, batch_edges, train_epoch
from gnnrec.models.induction import induction_step
from gnnrec.models.side_graphs import side_graph_edges
from gnnrec.nn.network import RatingGNN
from gnnrec.nn.ranking import ranking_loss, scale_gradient
from gnnrec.utils import seed_everything


@dataclasses.dataclass
class _Graph:
    """The tensors a fitted model keeps to run message passing again (also for cold start)."""

    user_x: Tensor
    movie_x: Tensor
    edge_index: Tensor  # [2, E] (user, movie) message edges = training ratings
    rating_index: Tensor  # [E] 0-based rating levels of the message edges
    # side graphs used in message passing: {"user" / "movie": (edge_index, edge_weight)}, see side_graph_edges
    side: dict[str, tuple[Tensor, Tensor]] = dataclasses.field(default_factory=dict)

    def to(self, device: torch.device) -> _Graph:
        return _Graph(
            *(t.to(device) for t in (self.user_x, self.movie_x, self.edge_index, self.rating_index)),
            {kind: (edges.to(device), weight.to(device)) for kind, (edges, weight) in self.side.items()},
        )


def rating_level_index(rating: Tensor, rating_values: Tensor) -> Tensor:
    """0-based level of each rating; raises if a rating is not one of ``rating_values``."""
    distance = (rating.float().unsqueeze(-1) - rating_values.float().to(rating.device)).abs()
    gap, index = distance.min(-1)
    if rating.numel() and float(gap.max()) > 1e-4:
        bad = float(rating.flatten()[gap.flatten().argmax()])
        values = ", ".join(f"{float(v):g}" for v in rating_values)
        raise ValueError(f"rating {bad:g} is not one of the split's rating levels ({values})")
    return index


class GNNTraining:
    """Fitting methods of :class:`~gnnrec.models.gnn.GNNModel` (which holds the state they use)."""

    # ------------------------------------------------------------------ fitting
    def _build_member(self) -> RatingGNN:
        graph = self.graph
        return RatingGNN(
            num_users=graph.user_x.size(0),
            num_movies=graph.movie_x.size(0),
            user_features=graph.user_x.size(1),
            movie_features=graph.movie_x.size(1),
            rating_values=self.metadata["rating_values"],
            global_mean=self.metadata["global_mean"],
            config=self.config,
            side_graphs=tuple(graph.side),
        )

    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        threads = torch.get_num_threads()
        if self.config.threads:
            # on small graphs (and on busy CPUs) intra-op threads cost more than they give
            torch.set_num_threads(self.config.threads)
        try:
            self._fit_members(split, logger)
        finally:
            torch.set_num_threads(threads)

    def _fit_members(self, split: RatingSplit, logger: Any | None) -> None:
        config = self.config
        seed_everything(config.seed)
        device = self.device
        data = split.graph
        rating_values = split.rating_levels.float().cpu()
        store = data[RATES]
        empty = torch.zeros
        user_x = data["user"].x.float() if "x" in data["user"] else empty(split.num_users, 0)
        movie_x = data["movie"].x.float() if "x" in data["movie"] else empty(split.num_movies, 0)
        self.graph = _Graph(
            user_x.cpu(),
            movie_x.cpu(),
            store.edge_index.long().cpu(),
            rating_level_index(store.rating.cpu(), rating_values),
            side_graph_edges(data, config.side_graphs),
        )
        self.metadata = {
            "rating_values": rating_values,
            "global_mean": float(split.train.rating.float().mean()),
            "user_layout": split.user_layout.spec(),
            "movie_raw_ids": data["movie"].raw_id.cpu() if "raw_id" in data["movie"] else None,
        }
        self._embeddings = None
        graph = self.graph.to(device)
        self.members, self.rank_members, self.selected_epochs = [], [], []
        for member_index in range(config.ensemble):
            member = self._build_member().to(device)
            try:
                ranking = self._train_member(member, member_index, split, graph, logger)
            finally:
                self._eval_graph, self._embeddings = None, None
            self.members.append(member.cpu().eval())
            if ranking is not None:
                self.rank_members.append(ranking.cpu().eval())
        self._embeddings = None

    def _ranking_loss(self, member: RatingGNN, z_user: Tensor, z_movie: Tensor, keep: Tensor, graph: _Graph) -> Tensor:
        """The ranking head's loss: targets are the edges dropped from this step's messages, liked ones weigh more."""
        config = self.config
        values = member.rating_values
        low, high = float(values.min()), float(values.max())
        level_weight = 1.0 + config.rank_like_weight * (values >= low + 0.75 * (high - low)).float()
        g = config.rank_grad_scale
        scores = member.ranker(scale_gradient(z_user, g), scale_gradient(z_movie, g))
        users = torch.arange(z_user.size(0), device=scores.device)
        dropped, kept = graph.edge_index[:, ~keep], graph.edge_index[:, keep]
        weight = level_weight[graph.rating_index[~keep]]
        return ranking_loss(scores, users, len(users), *dropped, weight, *kept, loss=config.rank_loss)

    def _train_member(
        self, member: RatingGNN, member_index: int, split: RatingSplit, graph: _Graph, logger: Any | None
    ) -> RatingGNN | None:
        """Train one member; load its rating snapshot into it and return the ranking snapshot (None: no head).

        With validation ratings the rating snapshot has the best ``selection_metric`` and the ranking
        snapshot the best ``rank_selection_metric``; training stops when neither improved for ``patience``
        epochs. Without them it runs all epochs and keeps ``keep_rating_epoch`` / ``keep_ranking_epoch``.
        """
        config = self.config
        optimizer = torch.optim.Adam(member.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        num_users = graph.user_x.size(0)
        num_edges = graph.edge_index.size(1)
        all_ids = torch.arange(num_users, device=graph.user_x.device)
        suffix = f"/member{member_index}" if config.ensemble > 1 else ""
        # with ema_decay, validation and the kept weights use the moving average of the weights
        averaged = copy.deepcopy(member) if config.ema_decay > 0 else member
        watch = {"rating": config.selection_metric}
        if member.ranker is not None:
            watch["ranking"] = config.rank_selection_metric
        metrics = list(dict.fromkeys(["rmse", "mae", *watch.values()]))
        has_val = len(split.val) > 0
        keep_at = {"rating": config.keep_rating_epoch, "ranking": config.keep_ranking_epoch}
        best: dict[str, tuple[float | None, int, dict | None]] = {role: (None, 0, None) for role in watch}
        done, done_rank = list(self.members), list(self.rank_members)
        full_adjacency = member.adjacency(graph.edge_index, graph.rating_index, num_users, graph.movie_x.size(0))
        self._eval_graph = (graph, full_adjacency)
        # mini-batches and/or several processes (gnnrec.models.gnn_steps); else today's one full-batch step per epoch
        batch, main = batch_edges(config.batch_size, num_edges), distributed.is_main()
        plan = None
        if batch is not None or distributed.world_size() > 1:
            plan = StepPlan(config, member, graph, batch, full_adjacency)
            step_loss = distributed.wrap(StepLoss(member, plan))
        started = time.perf_counter()
        for epoch in range(1, config.epochs + 1):
            member.train()
            if plan is not None:
                row, tic = {"epoch": epoch}, time.perf_counter()
                loss, mse, rank_loss = train_epoch(plan, step_loss, member, averaged, optimizer)
                row.update(train_seconds=time.perf_counter() - tic, steps=plan.steps)
                if member.ranker is not None:
                    row["train_rank_loss"] = rank_loss.item()
            else:
                keep = torch.rand(num_edges, device=all_ids.device) >= config.edge_dropout
                if config.edge_dropout > 0:
                    edge_index, rating_index, adjacency = graph.edge_index[:, keep], graph.rating_index[keep], None
                else:
                    edge_index, rating_index, adjacency = graph.edge_index, graph.rating_index, full_adjacency
                user_ids = torch.where(
                    torch.rand(num_users, device=all_ids.device) < config.id_dropout, num_users, all_ids
                )
                if config.induction_users or config.induction_movies:  # cold-start training, see induction_step
                    keep, user_ids, movie_ids = induction_step(
                        keep, user_ids, graph.edge_index, num_users, graph.movie_x.size(0),
                        config.induction_users, config.induction_movies,
                    )  # fmt: skip
                    edge_index, rating_index = graph.edge_index[:, keep], graph.rating_index[keep]
                    z_user, z_movie = member.encode(
                        graph.user_x, graph.movie_x, edge_index, rating_index, user_ids, None,
                        movie_ids=movie_ids, side=graph.side,
                    )  # fmt: skip
                else:
                    z_user, z_movie = member.encode(
                        graph.user_x, graph.movie_x, edge_index, rating_index, user_ids, adjacency, side=graph.side
                    )
                if config.supervision == "dropped":
                    targets, level = graph.edge_index[:, ~keep], graph.rating_index[~keep]
                else:
                    targets, level = graph.edge_index, graph.rating_index
                logits, pred = member.decode(z_user, z_movie, targets[0], targets[1])
                mse = F.mse_loss(pred, member.rating_values[level])
                loss = config.mse_weight * mse
                if logits is not None and config.ce_weight > 0:
                    loss = loss + config.ce_weight * F.cross_entropy(logits, level)
                row = {"epoch": epoch}
                if member.ranker is not None:
                    rank_loss = self._ranking_loss(member, z_user, z_movie, keep, graph)
                    loss = loss + config.rank_weight * rank_loss
                    row["train_rank_loss"] = rank_loss.item()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if averaged is not member:
                    # warm-up: roughly an average over the last tenth of the steps, until that reaches ema_decay
                    decay = min(config.ema_decay, epoch / (epoch + 10))
                    with torch.no_grad():
                        for average, parameter in zip(averaged.parameters(), member.parameters(), strict=True):
                            average.lerp_(parameter, 1.0 - decay)

            validate = has_val and (epoch % config.val_every == 0 or epoch == config.epochs)
            if validate and main:  # under torchrun rank 0 alone validates (and decides early stopping)
                # validate the averaged weights alone through the shared evaluator
                self.members, self.rank_members, self._embeddings = [averaged], [averaged], None
                values = validation_metrics(self, split, metrics, relevance_threshold=None)
                self.members, self.rank_members, self._embeddings = done, done_rank, None
                row.update({f"val_{name}": value for name, value in values.items()})
            row.update(train_loss=loss.item(), train_rmse=math.sqrt(mse.item()), lr=config.lr)
            row["seconds"] = time.perf_counter() - started
            if config.ensemble > 1:
                row["member"] = member_index
            self.history.append(row)
            if logger is not None and main:
                self._log(logger, averaged, row, suffix, graph, full_adjacency)
            if not has_val:  # no validation ratings: train for all epochs, keep the asked-for snapshots
                for role in watch:
                    if epoch == keep_at[role]:
                        best[role] = (None, epoch, copy.deepcopy(averaged.state_dict()))
                continue
            if not validate:
                continue
            better = [main and improved(metric, values[metric], best[role][0]) for role, metric in watch.items()]
            for (role, metric), better_ in zip(watch.items(), distributed.broadcast_flags(better), strict=True):
                if better_:  # rank 0's decision, on every rank
                    best[role] = (values[metric] if main else None, epoch, copy.deepcopy(averaged.state_dict()))
            if epoch - max(epoch_ for _, epoch_, _ in best.values()) >= config.patience:
                break
        final = averaged.state_dict()
        self.selected_epochs.append({role: best[role][1] or epoch for role in watch})
        ranking = None
        if member.ranker is not None:
            ranking = copy.deepcopy(member)
            ranking.load_state_dict(best["ranking"][2] or final)
        member.load_state_dict(best["rating"][2] or final)
        return ranking

    def refit_overrides(self) -> dict[str, int]:
        """Config overrides that repeat what validation selected when fitting again without validation
        (on train + validation): the epoch count and the epochs of the rating and ranking snapshots."""
        if not self.selected_epochs:  # not fitted (or an old checkpoint): nothing was selected
            return {}
        chosen = {
            f"keep_{role}_epoch": round(sum(s[role] for s in self.selected_epochs) / len(self.selected_epochs))
            for role in self.selected_epochs[0]
        }
        return {"epochs": max(chosen.values()), **chosen}

    def _log(
        self, logger: Any, member: RatingGNN, row: dict[str, float], suffix: str, graph: _Graph, adjacency
    ) -> None:
        """Scalars every epoch; weight and node-embedding histograms every ``histogram_every`` epochs."""
        epoch = row["epoch"]
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
                ids = torch.arange(graph.user_x.size(0), device=graph.user_x.device)
                z_user, z_movie = member.encode(
                    graph.user_x, graph.movie_x, graph.edge_index, graph.rating_index, ids, adjacency, side=graph.side
                )
            logger.add_histogram(f"embedding{suffix}/user", z_user.cpu(), epoch)
            logger.add_histogram(f"embedding{suffix}/movie", z_movie.cpu(), epoch)
