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
from torch import Tensor, nn

from gnnrec.coldstart import check_new_ratings, movie_indices_from_raw_ids
from gnnrec.data.graph import RATES
from gnnrec.data.split import RatingSplit
from gnnrec.data.user_features import layout_from_spec
from gnnrec.evaluation.validation import check_selection_metric, improved, validation_metrics
from gnnrec.models.base import RatingModel
from gnnrec.models.induction import induction_step
from gnnrec.models.registry import register_model
from gnnrec.nn.conv import ACCUMULATIONS, MESSAGE_MODES, NORMALIZATIONS
from gnnrec.nn.decoders import BilinearDecoder, DotDecoder, MLPDecoder
from gnnrec.nn.encoder import LAYER_AGGREGATIONS, RatingGraphEncoder
from gnnrec.utils import seed_everything

DECODERS = ("bilinear", "dot", "mlp")
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
    message: str = "levels"  # levels (per-rating matrices) | film (rating scale/shift) | plain (rating-blind)
    ordinal: bool = True  # GC-MC ordinal weight sharing between rating levels
    accumulate: str = "stack"  # per-level messages stacked side by side (GC-MC; R times cheaper) | sum
    normalize: str = "symmetric"
    root_weight: bool = False  # convolutions add a transform of the node's own previous features
    activation: str = "leaky_relu"
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
    # cold-start training (gnnrec.models.induction): share of users / movies seen as new in each step
    induction_users: float = 0.0
    induction_movies: float = 0.0
    # training
    ce_weight: float = 1.0  # cross-entropy over rating levels (level decoders only)
    mse_weight: float = 1.0  # squared error of the expected rating
    lr: float = 0.01
    lr_schedule: str = "constant"  # constant | cosine (from lr down to lr / 10 at the last epoch)
    weight_decay: float = 0.0
    epochs: int = 1000
    patience: int = 60  # stop after this many epochs without a better validation selection_metric
    selection_metric: str = "rmse"  # validation metric for early stopping and the kept weights
    ema_decay: float = 0.99  # >0: validate and keep an exponential moving average of the weights
    ensemble: int = 1  # independently initialised members whose predictions are averaged
    histogram_every: int = 50  # epochs between TensorBoard histograms (0: never)
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch intra-op CPU threads while fitting (0: leave torch's setting)

    def __post_init__(self) -> None:
        check_selection_metric(self.selection_metric)
        choices = {
            "message": MESSAGE_MODES,
            "normalize": NORMALIZATIONS,
            "layer_aggregation": LAYER_AGGREGATIONS,
            "decoder": DECODERS,
            "supervision": SUPERVISION,
            "input": ("embedding", "onehot"),
            "lr_schedule": ("constant", "cosine"),
            "accumulate": ACCUMULATIONS,
            "activation": ("relu", "tanh", "sigmoid", "identity", "leaky_relu"),
        }
        for key, valid in choices.items():
            if getattr(self, key) not in valid:
                raise ValueError(f"config {key}={getattr(self, key)!r}; choose one of {', '.join(valid)}")
        for key in ("embedding_dim", "hidden_dim", "output_dim", "num_bases", "epochs", "ensemble"):
            if getattr(self, key) < 1:
                raise ValueError(f"config {key} must be at least 1, got {getattr(self, key)}")
        if self.num_layers < 0:
            raise ValueError(f"config num_layers must be >= 0, got {self.num_layers}")
        for key in ("dropout", "edge_dropout", "node_dropout", "id_dropout", "ema_decay"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ValueError(f"config {key} must lie in [0, 1), got {getattr(self, key)}")
        for key in ("induction_users", "induction_movies"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ValueError(f"config {key} must lie in [0, 1), got {getattr(self, key)}")
        if (self.induction_users or self.induction_movies) and self.edge_dropout == 0.0:
            raise ValueError("induction_users/induction_movies need edge_dropout > 0 (they drop a new node's edges)")
        if self.supervision == "dropped" and self.edge_dropout == 0.0:
            raise ValueError("supervision='dropped' needs edge_dropout > 0 (the dropped edges are the targets)")
        if self.accumulate == "stack" and self.message == "plain":
            raise ValueError("accumulate='stack' stacks per-level messages; with message='plain' use accumulate='sum'")
        if self.layer_aggregation == "mean" and self.num_layers and self.hidden_dim != self.embedding_dim:
            raise ValueError("layer_aggregation='mean' needs hidden_dim == embedding_dim")
        if not (self.use_ids or self.use_features or (self.input == "onehot" and self.num_layers)):
            raise ValueError("use_ids and use_features are both off: nodes would have no input")
        if self.threads < 0:
            raise ValueError(f"config threads must be >= 0, got {self.threads}")
        if self.lr <= 0:
            raise ValueError(f"config lr must be positive, got {self.lr}")


class RatingGNN(nn.Module):
    """One network of :class:`GNNModel`: a :class:`~gnnrec.nn.RatingGraphEncoder` and a decoder from
    :mod:`gnnrec.nn.decoders` (``bilinear``, ``dot`` or ``mlp``), built from a :class:`GNNConfig`."""

    def __init__(
        self,
        num_users: int,
        num_movies: int,
        user_features: int,
        movie_features: int,
        rating_values: Tensor,
        global_mean: float,
        config: GNNConfig,
    ) -> None:
        super().__init__()
        self.register_buffer("rating_values", rating_values.float().clone())
        self.encoder = RatingGraphEncoder(
            num_users,
            num_movies,
            user_features,
            movie_features,
            len(rating_values),
            embedding_dim=config.embedding_dim,
            hidden_dim=config.hidden_dim,
            output_dim=config.output_dim,
            num_layers=config.num_layers,
            onehot=config.input == "onehot",
            use_ids=config.use_ids,
            use_features=config.use_features,
            layer_aggregation=config.layer_aggregation,
            dropout=config.dropout,
            act=config.activation,
            message=config.message,
            ordinal=config.ordinal,
            normalize=config.normalize,
            accumulate=config.accumulate,
            root_weight=config.root_weight,
            node_dropout=config.node_dropout,
        )
        out = config.output_dim
        if config.decoder == "bilinear":
            self.decoder = BilinearDecoder(out, rating_values, config.num_bases)
        elif config.decoder == "mlp":
            self.decoder = MLPDecoder(out, rating_values, config.dropout)
        else:
            self.decoder = DotDecoder(out, global_mean)

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        self.decoder.reset_parameters()

    def adjacency(self, edge_index: Tensor, rating_index: Tensor, num_users: int, num_movies: int):
        return self.encoder.adjacency(edge_index, rating_index, num_users, num_movies)

    def encode(self, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        """:meth:`RatingGraphEncoder.forward <gnnrec.nn.RatingGraphEncoder.forward>`."""
        return self.encoder(*args, **kwargs)

    def decode(self, z_user: Tensor, z_movie: Tensor, user: Tensor, movie: Tensor) -> tuple[Tensor | None, Tensor]:
        """``(level logits [E, R] or None, rating [E])`` of the pairs ``(user[e], movie[e])``."""
        return self.decoder(z_user, z_movie, user, movie)

    def decode_all(self, z_user: Tensor, z_movie: Tensor) -> Tensor:
        """Expected ratings of every (user row, movie row) pair: ``[U, M]``."""
        return self.decoder.score_all(z_user, z_movie)


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
    fold_in_kinds = ("users", "movies")
    config_class = GNNConfig

    def __init__(self, config: GNNConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.members: list[RatingGNN] = []
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
        train = split.train.to(device)
        train_level = rating_level_index(train.rating, rating_values)
        self.members = []
        for member_index in range(config.ensemble):
            member = self._build_member().to(device)
            try:
                self._train_member(member, member_index, split, graph, train, train_level, logger)
            finally:
                self._eval_graph, self._embeddings = None, None
            self.members.append(member.cpu().eval())
        self._embeddings = None

    def _train_member(
        self,
        member: RatingGNN,
        member_index: int,
        split: RatingSplit,
        graph: _Graph,
        train,
        train_level: Tensor,
        logger: Any | None,
    ) -> None:
        config = self.config
        optimizer = torch.optim.Adam(member.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        num_users = graph.user_x.size(0)
        num_edges = graph.edge_index.size(1)
        all_ids = torch.arange(num_users, device=graph.user_x.device)
        suffix = f"/member{member_index}" if config.ensemble > 1 else ""
        # with ema_decay, validation and the kept weights use the moving average of the weights
        averaged = copy.deepcopy(member) if config.ema_decay > 0 else member
        selection = config.selection_metric
        metrics = list(dict.fromkeys(["rmse", "mae", selection]))
        has_val = len(split.val) > 0
        best, best_state, best_epoch = None, None, 0
        done = list(self.members)
        full_adjacency = member.adjacency(graph.edge_index, graph.rating_index, num_users, graph.movie_x.size(0))
        self._eval_graph = (graph, full_adjacency)
        started = time.perf_counter()
        for epoch in range(1, config.epochs + 1):
            if config.lr_schedule == "cosine":
                progress = (epoch - 1) / max(config.epochs - 1, 1)
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * progress)))
            member.train()
            if config.edge_dropout > 0:
                keep = torch.rand(num_edges, device=all_ids.device) >= config.edge_dropout
                edge_index, rating_index, adjacency = graph.edge_index[:, keep], graph.rating_index[keep], None
            else:
                edge_index, rating_index, adjacency = graph.edge_index, graph.rating_index, full_adjacency
            user_ids = torch.where(torch.rand(num_users, device=all_ids.device) < config.id_dropout, num_users, all_ids)
            if config.induction_users or config.induction_movies:  # cold-start training (issue 12), see induction_step
                keep, user_ids, movie_ids = induction_step(
                    keep, user_ids, graph.edge_index, num_users, graph.movie_x.size(0),
                    config.induction_users, config.induction_movies,
                )  # fmt: skip
                edge_index, rating_index = graph.edge_index[:, keep], graph.rating_index[keep]
                z_user, z_movie = member.encode(
                    graph.user_x, graph.movie_x, edge_index, rating_index, user_ids, None, movie_ids=movie_ids
                )
            else:
                z_user, z_movie = member.encode(
                    graph.user_x, graph.movie_x, edge_index, rating_index, user_ids, adjacency
                )
            if config.supervision == "dropped":
                user, movie, target, level = (
                    graph.edge_index[0, ~keep],
                    graph.edge_index[1, ~keep],
                    member.rating_values[graph.rating_index[~keep]],
                    graph.rating_index[~keep],
                )
            else:
                user, movie, target, level = train.user, train.movie, train.rating, train_level
            logits, pred = member.decode(z_user, z_movie, user, movie)
            mse = F.mse_loss(pred, target)
            loss = config.mse_weight * mse
            if logits is not None and config.ce_weight > 0:
                loss = loss + config.ce_weight * F.cross_entropy(logits, level)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if averaged is not member:
                # warm-up: roughly an average over the last tenth of the steps, until that reaches ema_decay
                decay = min(config.ema_decay, epoch / (epoch + 10))
                with torch.no_grad():
                    for average, parameter in zip(averaged.parameters(), member.parameters(), strict=True):
                        average.lerp_(parameter, 1.0 - decay)

            val_metrics = {}
            if has_val:
                # validate the averaged weights alone through the shared evaluator
                self.members, self._embeddings = [averaged], None
                values = validation_metrics(self, split, metrics, relevance_threshold=None)
                self.members, self._embeddings = done, None
                val_metrics = {f"val_{name}": value for name, value in values.items()}
            row = {"epoch": epoch, "train_loss": loss.item(), "train_rmse": math.sqrt(mse.item()), **val_metrics}
            row["lr"] = optimizer.param_groups[0]["lr"]
            row["seconds"] = time.perf_counter() - started
            if config.ensemble > 1:
                row["member"] = member_index
            self.history.append(row)
            if logger is not None:
                self._log(logger, averaged, row, suffix, graph, full_adjacency)
            if not has_val:  # no validation ratings: train for all epochs
                continue
            if improved(selection, values[selection], best):
                best, best_epoch = values[selection], epoch
                best_state = copy.deepcopy(averaged.state_dict())
            elif epoch - best_epoch >= config.patience:
                break
        member.load_state_dict(best_state if best_state is not None else averaged.state_dict())

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
    def _member_embeddings(self) -> list[tuple[Tensor, Tensor]]:
        if self._embeddings is None:
            # while training: the graph on the training device and its prebuilt adjacency
            graph, adjacency = self._eval_graph or (self.graph, None)
            ids = torch.arange(graph.user_x.size(0), device=graph.user_x.device)
            with torch.no_grad():
                self._embeddings = [
                    m.eval().encode(graph.user_x, graph.movie_x, graph.edge_index, graph.rating_index, ids, adjacency)
                    for m in self.members
                ]
        return self._embeddings

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
        scores = [
            member.decode_all(zu[users.to(zu.device)], zm)
            for member, (zu, zm) in zip(self.members, self._member_embeddings(), strict=True)
        ]
        return torch.stack(scores).mean(0)

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
        if layout.num_features == 0:  # no demographics: fold_in uses the average user's features (if any)
            row = None
        elif row.numel() != graph.user_x.size(1):
            raise ValueError(f"new user has {row.numel()} features, the model's users have {graph.user_x.size(1)}")
        movies, values = check_new_ratings(ratings, info.num_movies, meta["rating_values"])
        unrated = info.num_movies - len(movies)
        if not 1 <= k <= unrated:
            raise ValueError(f"k must lie in 1..{unrated} (movies this person has not rated), got {k}")
        support = torch.stack([torch.zeros_like(movies), movies])
        features = None if row is None else row.view(1, -1)
        fold = self.fold_in("users", support, values, num_new=1, features=features)
        top = fold.top_k(k)[0]
        return top, fold.scores[0, top].clamp(info.rating_min, info.rating_max)

    def _fold_in(self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        """New nodes join the training graph with the unknown ID rows, their features and support edges;
        message passing then runs on the enlarged graph (all new nodes of one call together)."""
        graph = self.graph
        level = rating_level_index(rating, self.metadata["rating_values"])
        num_users, num_movies = graph.user_x.size(0), graph.movie_x.size(0)
        own_x = graph.user_x if kind == "users" else graph.movie_x
        if features is None:  # unknown features: the average node's
            features = own_x.mean(0, keepdim=True).expand(num_new, -1) if len(own_x) else own_x.new_zeros(num_new, 0)
        if features.size(1) != own_x.size(1):
            raise ValueError(f"new {kind} have {features.size(1)} features, the model's {kind} have {own_x.size(1)}")
        new_x = torch.cat([own_x, features.to(own_x)])
        user_x, movie_x = (new_x, graph.movie_x) if kind == "users" else (graph.user_x, new_x)
        if kind == "users":
            new_edges = torch.stack([support[0] + num_users, support[1]])
        else:
            new_edges = torch.stack([support[1], support[0] + num_movies])
        edge_index = torch.cat([graph.edge_index, new_edges], dim=1)
        rating_index = torch.cat([graph.rating_index, level])
        user_ids = torch.arange(user_x.size(0)).clamp(max=num_users)  # new users: the "unknown user" row
        movie_ids = torch.arange(movie_x.size(0)).clamp(max=num_movies)  # new movies: the "unknown movie" row
        scores = []
        for member in self.members:
            z_user, z_movie = member.eval().encode(
                user_x, movie_x, edge_index, rating_index, user_ids, None, movie_ids=movie_ids
            )
            if kind == "users":
                scores.append(member.decode_all(z_user[num_users:], z_movie))
            else:
                scores.append(member.decode_all(z_user, z_movie[num_movies:]).T)
        return torch.stack(scores).mean(0)

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
            "graph": dataclasses.asdict(self.graph),
            "metadata": self.metadata,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.graph = _Graph(**state["graph"])
        self.metadata = dict(state["metadata"])
        self.members = []
        for member_state in state["members"]:
            member = self._build_member()
            member.load_state_dict(member_state)
            self.members.append(member.eval())
        self._embeddings = None
