"""gnnrec's own rating-aware graph neural network (GC-MC-like encoder, ordinal bilinear decoder)."""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnrec.coldstart import check_new_ratings, movie_indices_from_raw_ids
from gnnrec.data.graph import RATES
from gnnrec.data.split import RatingSplit
from gnnrec.data.user_features import layout_from_spec
from gnnrec.evaluation.validation import check_selection_metric, improved, validation_metrics
from gnnrec.models.base import RatingModel
from gnnrec.models.registry import register_model
from gnnrec.nn.conv import ACCUMULATIONS, MESSAGE_MODES
from gnnrec.nn.encoder import LAYER_AGGREGATIONS
from gnnrec.nn.network import DECODERS, RatingGNN
from gnnrec.nn.ranking import RANK_LOSSES, ranking_loss, scale_gradient
from gnnrec.utils import seed_everything

__all__ = ["GNNConfig", "GNNModel", "RatingGNN", "rating_level_index"]

SUPERVISION = ("all", "dropped")


@dataclasses.dataclass
class GNNConfig:
    """Hyper-parameters of :class:`GNNModel`; every switch the ablations use is a field here."""

    # encoder
    input: str = "onehot"  # first convolution reads: onehot (free weights per ID and level, GC-MC) | embedding
    embedding_dim: int = 32  # layer-0 size: ID embeddings and side-feature projections (skip path)
    use_ids: bool = False  # layer 0 holds an ID embedding (which input="embedding" also passes along edges)
    use_features: bool = True  # layer 0 holds a projection of the side features
    num_layers: int = 1
    hidden_dim: int = 250  # output size of each convolution (stacking: rounded down to a multiple of the levels)
    message: str = "levels"  # levels (per-rating matrices) | plain (rating-blind)
    ordinal: bool = True  # GC-MC ordinal weight sharing between rating levels
    accumulate: str = "stack"  # per-level messages stacked side by side (GC-MC; R times cheaper) | sum
    root_weight: bool = False  # convolutions add a transform of the node's own previous features
    layer_aggregation: str = "concat"  # concat | mean | last (of layer 0..L outputs, before the dense layer)
    output_dim: int = 75  # size of the final node representations the decoder reads
    # decoder
    decoder: str = "bilinear"  # bilinear (mixture over levels) | dot | mlp
    num_bases: int = 2  # basis matrices shared by the bilinear decoder's levels
    # regularisation
    dropout: float = 0.5  # on node features entering every convolution and dense layer
    node_dropout: float = 0.5  # share of source nodes whose messages are all dropped in a training step
    edge_dropout: float = 0.25  # share of message edges removed in every training step
    id_dropout: float = 0.05  # share of users seen as the "unknown user" (trains its row for cold start)
    supervision: str = "dropped"  # dropped: loss only on the edges removed from messages | all: every train edge
    # training
    ce_weight: float = 1.0  # cross-entropy over rating levels (level decoders only)
    mse_weight: float = 1.0  # squared error of the expected rating
    lr: float = 0.01
    weight_decay: float = 0.0
    epochs: int = 1000
    patience: int = 60  # stop after this many epochs without a better validation selection_metric
    selection_metric: str = "rmse"  # validation metric for early stopping and the kept weights
    ema_decay: float = 0.99  # >0: validate and keep an exponential moving average of the weights
    ensemble: int = 1  # independently initialised members whose predictions are averaged
    val_every: int = 5  # epochs between validations (patience counts epochs)
    # ranking head: "will this user rate this movie, and like it", trained jointly (0: rank by the rating head)
    rank_weight: float = 0.5  # weight of the ranking loss beside the rating loss
    rank_dim: int = 75  # size of the ranking head's user and movie projections
    rank_loss: str = "multinomial"  # multinomial (softmax over the catalogue) | bpr (one sampled negative)
    rank_like_weight: float = 1.0  # extra weight of a target the user liked (rating >= 3/4 up the scale)
    rank_grad_scale: float = 0.1  # share of the ranking loss's gradient that reaches the encoder
    rank_selection_metric: str = "ndcg@10"  # validation metric that picks the ranking snapshot
    # without validation ratings (a refit on train + validation): the epochs whose weights are kept (0: the last)
    keep_rating_epoch: int = 0
    keep_ranking_epoch: int = 0
    histogram_every: int = 50  # epochs between TensorBoard histograms (0: never)
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch intra-op CPU threads while fitting (0: leave torch's setting)

    def __post_init__(self) -> None:
        check_selection_metric(self.selection_metric)
        check_selection_metric(self.rank_selection_metric)
        choices = {
            "message": MESSAGE_MODES,
            "layer_aggregation": LAYER_AGGREGATIONS,
            "decoder": DECODERS,
            "supervision": SUPERVISION,
            "input": ("embedding", "onehot"),
            "accumulate": ACCUMULATIONS,
            "rank_loss": RANK_LOSSES,
        }
        for key, valid in choices.items():
            if getattr(self, key) not in valid:
                raise ValueError(f"config {key}={getattr(self, key)!r}; choose one of {', '.join(valid)}")
        positive = ("embedding_dim", "hidden_dim", "output_dim", "num_bases", "epochs", "ensemble", "rank_dim")
        positive += ("val_every",)
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"config {key} must be at least 1, got {getattr(self, key)}")
        if self.num_layers < 0:
            raise ValueError(f"config num_layers must be >= 0, got {self.num_layers}")
        for key in ("dropout", "edge_dropout", "node_dropout", "id_dropout", "ema_decay"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ValueError(f"config {key} must lie in [0, 1), got {getattr(self, key)}")
        if self.supervision == "dropped" and self.edge_dropout == 0.0:
            raise ValueError("supervision='dropped' needs edge_dropout > 0 (the dropped edges are the targets)")
        if self.accumulate == "stack" and self.message == "plain":
            raise ValueError("accumulate='stack' stacks per-level messages; with message='plain' use accumulate='sum'")
        if self.layer_aggregation == "mean" and self.num_layers and self.hidden_dim != self.embedding_dim:
            raise ValueError("layer_aggregation='mean' needs hidden_dim == embedding_dim")
        if not (self.use_ids or self.use_features or (self.input == "onehot" and self.num_layers)):
            raise ValueError("use_ids and use_features are both off: nodes would have no input")
        if self.rank_weight < 0 or self.rank_like_weight < 0 or not 0.0 <= self.rank_grad_scale <= 1.0:
            raise ValueError("config rank_weight and rank_like_weight must be >= 0 and rank_grad_scale in [0, 1]")
        if self.rank_weight > 0 and self.edge_dropout == 0.0:
            raise ValueError("rank_weight > 0 needs edge_dropout > 0 (the ranking targets are the dropped edges)")
        if self.keep_rating_epoch < 0 or self.keep_ranking_epoch < 0:
            raise ValueError("config keep_rating_epoch and keep_ranking_epoch must be >= 0")
        if self.threads < 0:
            raise ValueError(f"config threads must be >= 0, got {self.threads}")
        if self.lr <= 0:
            raise ValueError(f"config lr must be positive, got {self.lr}")


@dataclasses.dataclass
class _Graph:
    """The tensors a fitted model keeps to run message passing again (also for cold start)."""

    user_x: Tensor
    movie_x: Tensor
    edge_index: Tensor  # [2, E] (user, movie) message edges = training ratings
    rating_index: Tensor  # [E] 0-based rating levels of the message edges

    def to(self, device: torch.device) -> _Graph:
        return _Graph(*(t.to(device) for t in dataclasses.astuple(self)))


def rating_level_index(rating: Tensor, rating_values: Tensor) -> Tensor:
    """0-based level of each rating; raises if a rating is not one of ``rating_values``."""
    distance = (rating.float().unsqueeze(-1) - rating_values.float().to(rating.device)).abs()
    gap, index = distance.min(-1)
    if rating.numel() and float(gap.max()) > 1e-4:
        bad = float(rating.flatten()[gap.flatten().argmax()])
        values = ", ".join(f"{float(v):g}" for v in rating_values)
        raise ValueError(f"rating {bad:g} is not one of the split's rating levels ({values})")
    return index


@register_model
class GNNModel(RatingModel):
    r"""Rating-aware graph autoencoder trained end to end on the training ratings (GC-MC-like).

    With the default config a user :math:`u` is encoded from the movies it rated and its side features:

    .. math::
        \mathbf{h}_u = \mathrm{LReLU}\Big(\big\Vert_{r=1}^{R} \sum_{j \in \mathcal{N}_r(u)}
            \frac{\mathbf{W}_r[j]}{\sqrt{|\mathcal{N}(u)|\,|\mathcal{N}(j)|}} + \mathbf{b}\Big),\quad
        \mathbf{W}_r = \sum_{s \le r} \mathbf{T}_s,\quad
        \mathbf{z}_u = \mathbf{W}_d [\mathbf{F}\mathbf{x}_u \,\Vert\, \mathbf{h}_u] + \mathbf{b}_d

    (:math:`\mathbf{T}_s[j]` a free row per movie and level, :math:`\Vert` concatenation), movies likewise
    with their own parameters; the bilinear decoder of :class:`RatingGNN` turns
    :math:`(\mathbf{z}_u, \mathbf{z}_m)` into a distribution over rating levels and its expected value.
    The loss is cross-entropy over levels plus squared error of the expected rating.

    Message edges are the split's training ratings. In each step a random share
    ``edge_dropout`` of them is removed from message passing; with ``supervision="dropped"``
    the loss is computed on exactly those removed edges, so the model never reads the
    rating it predicts. Node dropout, feature dropout and an exponential moving average
    of the weights regularise; training keeps the averaged weights with the best
    validation RMSE. :meth:`recommend_new_user` serves people who are not in the data
    without retraining.
    """

    name = "gnn"
    config_class = GNNConfig

    def __init__(self, config: GNNConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.members: list[RatingGNN] = []  # rating snapshots (predict)
        self.rank_members: list[RatingGNN] = []  # ranking snapshots (ranking scores); empty without a head
        self.selected_epochs: list[dict[str, int]] = []  # per member: epoch of each kept snapshot
        self._rank_embeddings: list[tuple[Tensor, Tensor]] | None = None
        self._serve_ratings = False
        self.graph: _Graph | None = None
        self.metadata: dict[str, Any] = {}
        self._embeddings: list[tuple[Tensor, Tensor]] | None = None
        self._eval_graph: tuple[_Graph, Any] | None = None

    @classmethod
    def test_config(cls) -> GNNConfig:
        """A small, fast configuration for tests on tiny fixture graphs."""
        return GNNConfig(
            embedding_dim=8,
            hidden_dim=20,
            output_dim=16,
            dropout=0.2,
            node_dropout=0.2,
            lr=0.03,
            epochs=150,
            patience=75,
            val_every=1,
            rank_dim=16,
            device="cpu",
            threads=1,
        )

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
        started = time.perf_counter()
        for epoch in range(1, config.epochs + 1):
            member.train()
            keep = torch.rand(num_edges, device=all_ids.device) >= config.edge_dropout
            if config.edge_dropout > 0:
                edge_index, rating_index, adjacency = graph.edge_index[:, keep], graph.rating_index[keep], None
            else:
                edge_index, rating_index, adjacency = graph.edge_index, graph.rating_index, full_adjacency
            user_ids = torch.where(torch.rand(num_users, device=all_ids.device) < config.id_dropout, num_users, all_ids)
            z_user, z_movie = member.encode(graph.user_x, graph.movie_x, edge_index, rating_index, user_ids, adjacency)
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
            if validate:
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
            if logger is not None:
                self._log(logger, averaged, row, suffix, graph, full_adjacency)
            if not has_val:  # no validation ratings: train for all epochs, keep the asked-for snapshots
                for role in watch:
                    if epoch == keep_at[role]:
                        best[role] = (None, epoch, copy.deepcopy(averaged.state_dict()))
                continue
            if not validate:
                continue
            for role, metric in watch.items():
                if improved(metric, values[metric], best[role][0]):
                    best[role] = (values[metric], epoch, copy.deepcopy(averaged.state_dict()))
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
        if not self.selected_epochs:
            raise ValueError("gnn: refit_overrides needs a model fitted with validation ratings")
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
                    graph.user_x, graph.movie_x, graph.edge_index, graph.rating_index, ids, adjacency
                )
            logger.add_histogram(f"embedding{suffix}/user", z_user.cpu(), epoch)
            logger.add_histogram(f"embedding{suffix}/movie", z_movie.cpu(), epoch)

    # ------------------------------------------------------------------ inference
    def _encode_members(self, members: list[RatingGNN]) -> list[tuple[Tensor, Tensor]]:
        # while training: the graph on the training device and its prebuilt adjacency
        graph, adjacency = self._eval_graph or (self.graph, None)
        ids = torch.arange(graph.user_x.size(0), device=graph.user_x.device)
        with torch.no_grad():
            return [
                m.eval().encode(graph.user_x, graph.movie_x, graph.edge_index, graph.rating_index, ids, adjacency)
                for m in members
            ]

    def _member_embeddings(self) -> list[tuple[Tensor, Tensor]]:
        if self._embeddings is None:
            self._embeddings = self._encode_members(self.members)
            self._rank_embeddings = None
        return self._embeddings

    def _ranking_embeddings(self) -> list[tuple[Tensor, Tensor]]:
        rating = self._member_embeddings()
        if self._rank_embeddings is None:
            same = len(self.rank_members) == len(self.members) and all(
                r is m for r, m in zip(self.rank_members, self.members, strict=True)
            )
            self._rank_embeddings = rating if same else self._encode_members(self.rank_members)
        return self._rank_embeddings

    def embeddings(self) -> dict[str, Tensor]:
        """Final node representations ``{"user": [U, d], "movie": [M, d]}`` (ensemble members concatenated)."""
        self._require_fitted()
        pairs = self._member_embeddings()
        return {"user": torch.cat([u for u, _ in pairs], -1), "movie": torch.cat([m for _, m in pairs], -1)}

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        preds = [
            member.decode(zu, zm, user.to(zu.device), movie.to(zu.device))[1]
            for member, (zu, zm) in zip(self.members, self._member_embeddings(), strict=True)
        ]
        return torch.stack(preds).mean(0)

    def _score_matrix(self, users: Tensor) -> Tensor:
        ratings = self._serve_ratings or not self.rank_members
        members = self.members if ratings else self.rank_members
        pairs = self._member_embeddings() if ratings else self._ranking_embeddings()
        scores = [
            member.decode_all(zu[users.to(zu.device)], zm) if ratings else member.rank_all(zu[users.to(zu.device)], zm)
            for member, (zu, zm) in zip(members, pairs, strict=True)
        ]
        return torch.stack(scores).mean(0)

    def score_matrix(self, user_index: Any | None = None, *, clip: bool = True) -> Tensor:
        """``clip=True``: predicted ratings clipped to the scale; ``clip=False`` (ranking, :meth:`recommend`):
        the raw ranking scores of the ranking head (of the rating head without one)."""
        self._serve_ratings = clip
        try:
            return super().score_matrix(user_index, clip=clip)
        finally:
            self._serve_ratings = False

    def recommend(self, user_index: Any, k: int = 10, exclude_seen: bool = True) -> tuple[Tensor, Tensor]:
        """Top-``k`` movies per user by the ranking score, with their predicted ratings (clipped)."""
        top, scores = super().recommend(user_index, k, exclude_seen)
        if self.rank_members:
            users = self._as_index(user_index, self.info.num_users, "user").reshape(-1, 1).expand_as(top)
            scores = self.predict(users, top)
        return top, scores

    # ------------------------------------------------------------------ cold start
    def recommend_new_user(
        self, *, ratings: list[tuple[int, float]] | tuple = (), k: int = 10, **person: Any
    ) -> tuple[Tensor, Tensor]:
        """Top-``k`` movies for a person who is not in the data, without retraining.

        ``person`` holds the fields of the dataset's user-feature layout (``split.user_layout.fields()``;
        for MovieLens ``age``, ``gender``, ``occupation``; none for datasets without demographics). The
        person becomes a new user node with the "unknown user" ID embedding, that feature row and one edge
        per ``(movie index, rating)`` pair; message passing then runs on the enlarged graph.
        Returns ``(movie indices [k], predicted ratings [k])``; rated movies are never recommended.
        With no ratings the ranking comes from the demographics alone.
        """
        info = self._require_fitted()
        graph = self.graph
        meta = self.metadata
        layout = layout_from_spec(meta.get("user_layout"))
        row = layout.encode(**person)
        if layout.num_features == 0:  # no demographics: the average user's features (if any)
            row = graph.user_x.mean(0) if len(graph.user_x) else graph.user_x.new_zeros(graph.user_x.size(1))
        elif row.numel() != graph.user_x.size(1):
            raise ValueError(f"new user has {row.numel()} features, the model's users have {graph.user_x.size(1)}")
        movies, values = check_new_ratings(ratings, info.num_movies, meta["rating_values"])
        unrated = info.num_movies - len(movies)
        if not 1 <= k <= unrated:
            raise ValueError(f"k must lie in 1..{unrated} (movies this person has not rated), got {k}")

        new_user = graph.user_x.size(0)
        user_x = torch.cat([graph.user_x, row.view(1, -1).to(graph.user_x)])
        new_edges = torch.stack([torch.full_like(movies, new_user), movies])
        edge_index = torch.cat([graph.edge_index, new_edges], dim=1)
        rating_index = torch.cat([graph.rating_index, rating_level_index(values, meta["rating_values"])])
        ids = torch.arange(new_user + 1)  # row new_user of the ID table is the "unknown user" embedding
        scores = []
        with torch.no_grad():
            for member in self.members:
                z_user, z_movie = member.eval().encode(user_x, graph.movie_x, edge_index, rating_index, ids)
                scores.append(member.decode_all(z_user[new_user:], z_movie)[0])
        score = torch.stack(scores).mean(0).clamp(info.rating_min, info.rating_max)
        ranked = score.clone()
        ranked[movies] = float("-inf")
        top = torch.topk(ranked, k).indices
        return top, score[top]

    def movie_indices(self, raw_ids: Iterable[Any]) -> list[int]:
        """Movie indices of raw dataset movie ids (e.g. MovieLens ``u.item`` ids), for :meth:`recommend_new_user`."""
        self._require_fitted()
        raw = self.metadata.get("movie_raw_ids")
        if raw is None:
            raise ValueError("this model's dataset has no raw movie ids; pass movie indices")
        return movie_indices_from_raw_ids(raw_ids, raw)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        return {
            "members": [member.state_dict() for member in self.members],
            "rank_members": [member.state_dict() for member in self.rank_members],
            "selected_epochs": self.selected_epochs,
            "graph": dataclasses.asdict(self.graph),
            "metadata": self.metadata,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.graph = _Graph(**state["graph"])
        self.metadata = dict(state["metadata"])
        self.members, self.rank_members = [], []
        for key, members in (("members", self.members), ("rank_members", self.rank_members)):
            for member_state in state.get(key, []):
                member = self._build_member()
                member.load_state_dict(member_state)
                members.append(member.eval())
        self.selected_epochs = list(state.get("selected_epochs", []))
        self._embeddings = self._rank_embeddings = None
