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

from gnnrec.coldstart import check_new_ratings, movie_indices_from_raw_ids, new_user_feature_row
from gnnrec.data.graph import RATES
from gnnrec.data.split import RatingSplit
from gnnrec.models.base import RatingModel
from gnnrec.models.registry import register_model
from gnnrec.nn.conv import ACCUMULATIONS, MESSAGE_MODES, NORMALIZATIONS, BipartiteRatingConv
from gnnrec.utils import seed_everything

DECODERS = ("bilinear", "dot", "mlp")
LAYER_AGGREGATIONS = ("concat", "mean", "last")
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
    # training
    ce_weight: float = 1.0  # cross-entropy over rating levels (level decoders only)
    mse_weight: float = 1.0  # squared error of the expected rating
    lr: float = 0.01
    lr_schedule: str = "constant"  # constant | cosine (from lr down to lr / 10 at the last epoch)
    weight_decay: float = 0.0
    epochs: int = 1000
    patience: int = 60  # stop after this many epochs without a better validation RMSE
    ema_decay: float = 0.99  # >0: validate and keep an exponential moving average of the weights
    ensemble: int = 1  # independently initialised members whose predictions are averaged
    histogram_every: int = 50  # epochs between TensorBoard histograms (0: never)
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch intra-op CPU threads while fitting (0: leave torch's setting)

    def check(self) -> None:
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
    r"""Encoder–decoder network behind :class:`GNNModel`.

    Layer 0 (skip path): :math:`\mathbf{h}^0_u = \mathbf{E}_u[\mathrm{id}_u] + \mathbf{F}_u \mathbf{x}_u`
    with each term present when ``use_ids`` / ``use_features`` (row :math:`U` of :math:`\mathbf{E}_u` is the
    "unknown user"); likewise for movies. Layers :math:`1..L`: :class:`~gnnrec.nn.BipartiteRatingConv`; with
    ``input="onehot"`` the first one reads node IDs, so every (node, level) pair has its own message weights.
    Node representation: :math:`\mathbf{z} = \mathbf{W}_d\,\mathrm{agg}(\mathbf{h}^0, \dots, \mathbf{h}^L)
    + \mathbf{b}_d` (concat, mean or last). Decoder ``bilinear``: logits
    :math:`\ell_r = \sum_b a_{rb}\, \mathbf{z}_u^\top \mathbf{P}_b \mathbf{z}_m + \beta_r(\mathbf{z}_u)
    + \beta'_r(\mathbf{z}_m)` with affine per-level biases :math:`\beta, \beta'`, and the expected rating
    :math:`\hat r = \sum_r \mathrm{softmax}(\ell)_r\, v_r` over the split's rating values :math:`v_r`;
    ``mlp``: logits from an MLP of :math:`[\mathbf{z}_u, \mathbf{z}_m, \mathbf{z}_u \odot \mathbf{z}_m]` plus
    the same biases; ``dot``: :math:`\hat r = \mathbf{z}_u^\top\mathbf{z}_m + b(\mathbf{z}_u) + b'(\mathbf{z}_m)
    + \mu`.
    """

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
        self.config = config
        self.num_users = num_users
        self.num_levels = len(rating_values)
        self.register_buffer("rating_values", rating_values.float().clone())
        self.global_mean = float(global_mean)
        d = config.embedding_dim
        onehot = config.input == "onehot" and config.num_layers > 0
        use_user_features = config.use_features and user_features > 0
        use_movie_features = config.use_features and movie_features > 0
        for kind, has_features in (("users", use_user_features), ("movies", use_movie_features)):
            if not (config.use_ids or has_features or onehot):
                raise ValueError(f"{kind} would have no input: enable use_ids, give features or use input='onehot'")
        # layer 0 (skip path and, unless one-hot, the first convolution's input); the extra last
        # user row is the "unknown user" used for ID dropout and cold start
        self.user_id = nn.Embedding(num_users + 1, d) if config.use_ids else None
        self.movie_id = nn.Embedding(num_movies, d) if config.use_ids else None
        self.user_features = nn.Linear(user_features, d) if use_user_features else None
        self.movie_features = nn.Linear(movie_features, d) if use_movie_features else None
        self.onehot = onehot

        hidden = config.hidden_dim
        if config.accumulate == "stack":
            hidden = max(self.num_levels, hidden - hidden % self.num_levels)
        self.convs = nn.ModuleList()
        user_channels, movie_channels = (num_users + 1, num_movies) if onehot else (d, d)
        for _ in range(config.num_layers):
            self.convs.append(
                BipartiteRatingConv(
                    user_channels,
                    movie_channels,
                    hidden,
                    self.num_levels,
                    act=config.activation,
                    message=config.message,
                    ordinal=config.ordinal,
                    normalize=config.normalize,
                    accumulate=config.accumulate,
                    root_weight=config.root_weight,
                    node_dropout=config.node_dropout,
                )
            )
            user_channels = movie_channels = hidden
        user_layer0 = self.user_id is not None or self.user_features is not None
        movie_layer0 = self.movie_id is not None or self.movie_features is not None
        if config.layer_aggregation == "concat":
            user_in = d * user_layer0 + config.num_layers * hidden
            movie_in = d * movie_layer0 + config.num_layers * hidden
        else:
            user_in = movie_in = hidden if config.num_layers else d
        out = config.output_dim
        self.user_dense = nn.Linear(user_in, out)
        self.movie_dense = nn.Linear(movie_in, out)

        if config.decoder == "bilinear":
            self.bases = nn.Parameter(torch.empty(config.num_bases, out, out))
            self.mixture = nn.Parameter(torch.empty(self.num_levels, config.num_bases))
        if config.decoder == "mlp":
            self.mlp = nn.Sequential(
                nn.Linear(3 * out, out), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(out, self.num_levels)
            )
        outputs = 1 if config.decoder == "dot" else self.num_levels
        self.user_bias = nn.Linear(out, outputs)
        self.movie_bias = nn.Linear(out, outputs)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for embedding in (self.user_id, self.movie_id):
            if embedding is not None:
                nn.init.normal_(embedding.weight, std=0.1)
        for linear in (self.user_features, self.movie_features, self.user_dense, self.movie_dense):
            if linear is not None:
                linear.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        for linear in (self.user_bias, self.movie_bias):
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)
        if self.config.decoder == "bilinear":
            nn.init.orthogonal_(self.bases.view(-1, self.bases.size(-1)))
            nn.init.xavier_uniform_(self.mixture)
        if self.config.decoder == "mlp":
            for layer in self.mlp:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()

    # ------------------------------------------------------------------ encoder
    def adjacency(self, edge_index: Tensor, rating_index: Tensor, num_users: int, num_movies: int):
        """The sparse matrices every convolution of this network multiplies (``None`` without convolutions)."""
        if not self.convs:
            return None
        return self.convs[0].adjacency(edge_index, rating_index, num_users, num_movies)

    def encode(
        self,
        user_x: Tensor,
        movie_x: Tensor,
        edge_index: Tensor,
        rating_index: Tensor,
        user_ids: Tensor,
        adjacency: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Final ``(user, movie)`` representations.

        ``user_ids`` holds each user's row of the ID table (``num_users`` = the unknown user);
        ``adjacency`` (from :meth:`adjacency` on the same edges) saves rebuilding it.
        """
        if adjacency is None and self.convs:
            adjacency = self.adjacency(edge_index, rating_index, user_x.size(0), movie_x.size(0))
        user = movie = None
        if self.user_id is not None:
            user = self.user_id(user_ids)
            movie = self.movie_id.weight
        if self.user_features is not None:
            projected = self.user_features(user_x)
            user = projected if user is None else user + projected
        if self.movie_features is not None:
            projected = self.movie_features(movie_x)
            movie = projected if movie is None else movie + projected
        users = [user] if user is not None else []
        movies = [movie] if movie is not None else []
        for index, conv in enumerate(self.convs):
            if index == 0 and self.onehot:
                # featureless first layer: every (node, level) pair has its own message weights
                user, movie = conv(user_ids, torch.arange(movie_x.size(0), device=user_ids.device), adjacency)
            else:
                user, movie = conv(self._dropout(user), self._dropout(movie), adjacency)
            users.append(user)
            movies.append(movie)
        mode = self.config.layer_aggregation
        if mode == "concat":
            user, movie = torch.cat(users, dim=-1), torch.cat(movies, dim=-1)
        elif mode == "mean":
            user, movie = torch.stack(users).mean(0), torch.stack(movies).mean(0)
        return self.user_dense(self._dropout(user)), self.movie_dense(self._dropout(movie))

    def _dropout(self, x: Tensor) -> Tensor:
        """Inverted dropout from a uniform mask: same as ``F.dropout``, about 3x faster on CPU than ``bernoulli_``."""
        p = self.config.dropout
        if not self.training or p == 0.0:
            return x
        return x * (torch.rand_like(x) >= p).to(x.dtype) * (1.0 / (1.0 - p))

    # ------------------------------------------------------------------ decoder
    def decode(self, z_user: Tensor, z_movie: Tensor, user: Tensor, movie: Tensor) -> tuple[Tensor | None, Tensor]:
        """Decode the pairs ``(user[e], movie[e])`` of node rows: ``(level logits [E, R] or None, rating [E])``."""
        # index_select rather than indexing: its backward (index_add) is much faster on CPU
        decoder = self.config.decoder
        user_bias = self.user_bias(z_user).index_select(0, user)
        movie_bias = self.movie_bias(z_movie).index_select(0, movie)
        zm = z_movie.index_select(0, movie)
        if decoder == "dot":
            dot = (z_user.index_select(0, user) * zm).sum(-1)
            return None, dot + user_bias[:, 0] + movie_bias[:, 0] + self.global_mean
        if decoder == "bilinear":
            # project the (few) user rows by every basis before gathering the (many) pairs
            # one basis at a time: a broadcast [E, B, d] product is several times slower to differentiate
            scores = [((z_user @ basis).index_select(0, user) * zm).sum(-1) for basis in self.bases]
            logits = torch.stack(scores, dim=-1) @ self.mixture.t()
        else:
            zu = z_user.index_select(0, user)
            logits = self.mlp(torch.cat([zu, zm, zu * zm], dim=-1))
        logits = logits + user_bias + movie_bias
        return logits, logits.softmax(-1) @ self.rating_values

    def decode_all(self, z_user: Tensor, z_movie: Tensor, chunk_pairs: int = 2**22) -> Tensor:
        """Expected ratings of every (user row, movie row) pair: ``[U, M]``, in user chunks."""
        num_movies = z_movie.size(0)
        decoder = self.config.decoder
        rows = []
        if decoder == "dot":
            movie_bias = self.movie_bias(z_movie)[:, 0] + self.global_mean
            for part in z_user.split(max(1, chunk_pairs // max(num_movies, 1))):
                rows.append(part @ z_movie.t() + self.user_bias(part) + movie_bias)
            return torch.cat(rows) if rows else z_user.new_empty(0, num_movies)
        movie_bias = self.movie_bias(z_movie)
        per_pair = self.num_levels + (self.bases.size(0) if decoder == "bilinear" else 3 * z_movie.size(1))
        for part in z_user.split(max(1, chunk_pairs // max(num_movies * per_pair, 1))):
            if decoder == "bilinear":
                projected = torch.einsum("ud,bdk->ubk", part, self.bases)
                logits = torch.einsum("ubk,mk->umb", projected, z_movie) @ self.mixture.t()
            else:
                u = part.unsqueeze(1).expand(-1, num_movies, -1)
                m = z_movie.unsqueeze(0).expand(part.size(0), -1, -1)
                logits = self.mlp(torch.cat([u, m, u * m], dim=-1))
            logits = logits + self.user_bias(part).unsqueeze(1) + movie_bias.unsqueeze(0)
            rows.append(logits.softmax(-1) @ self.rating_values)
        return torch.cat(rows) if rows else z_user.new_empty(0, num_movies)


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
        self.config.check()
        self.members: list[RatingGNN] = []
        self.graph: _Graph | None = None
        self.metadata: dict[str, Any] = {}
        self._embeddings: list[tuple[Tensor, Tensor]] | None = None

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
            "occupation_names": list(getattr(data, "occupation_names", None) or []) or None,
            "age_range": [float(v) for v in data.age_range] if "age_range" in data else None,
            "age_buckets": [int(v) for v in data.age_buckets] if "age_buckets" in data else None,
            "movie_raw_ids": data["movie"].raw_id.cpu() if "raw_id" in data["movie"] else None,
        }
        self._embeddings = None
        graph = self.graph.to(device)
        train = split.train.to(device)
        train_level = rating_level_index(train.rating, rating_values)
        val = split.val.to(device)
        self.members = []
        for member_index in range(config.ensemble):
            member = self._build_member().to(device)
            self._train_member(member, member_index, graph, train, train_level, val, logger)
            self.members.append(member.cpu().eval())

    def _train_member(
        self,
        member: RatingGNN,
        member_index: int,
        graph: _Graph,
        train,
        train_level: Tensor,
        val,
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
        best_rmse, best_state, best_epoch = math.inf, None, 0
        full_adjacency = member.adjacency(graph.edge_index, graph.rating_index, num_users, graph.movie_x.size(0))
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
            z_user, z_movie = member.encode(graph.user_x, graph.movie_x, edge_index, rating_index, user_ids, adjacency)
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

            val_metrics = self._validate(averaged, graph, val, all_ids, full_adjacency)
            row = {"epoch": epoch, "train_loss": loss.item(), "train_rmse": math.sqrt(mse.item()), **val_metrics}
            row["lr"] = optimizer.param_groups[0]["lr"]
            row["seconds"] = time.perf_counter() - started
            if config.ensemble > 1:
                row["member"] = member_index
            self.history.append(row)
            if logger is not None:
                self._log(logger, averaged, row, suffix, graph, full_adjacency)
            if "val_rmse" not in val_metrics:  # no validation ratings: train for all epochs
                continue
            if val_metrics["val_rmse"] < best_rmse:
                best_rmse, best_epoch = val_metrics["val_rmse"], epoch
                best_state = copy.deepcopy(averaged.state_dict())
            elif epoch - best_epoch >= config.patience:
                break
        member.load_state_dict(best_state if best_state is not None else averaged.state_dict())

    @torch.no_grad()
    def _validate(
        self, member: RatingGNN, graph: _Graph, val, all_ids: Tensor, adjacency: tuple[Tensor, Tensor] | None
    ) -> dict[str, float]:
        if len(val) == 0:
            return {}
        member.eval()
        z_user, z_movie = member.encode(
            graph.user_x, graph.movie_x, graph.edge_index, graph.rating_index, all_ids, adjacency
        )
        pred = member.decode(z_user, z_movie, val.user, val.movie)[1]
        low, high = float(member.rating_values.min()), float(member.rating_values.max())
        error = pred.clamp(low, high) - val.rating
        out = {"val_rmse": float(error.pow(2).mean().sqrt()), "val_mae": float(error.abs().mean())}
        ndcg = _ndcg_function()
        if ndcg is not None:
            value = float(ndcg(val.user.cpu(), pred.clamp(low, high).cpu(), val.rating.cpu()))
            if math.isfinite(value):  # NaN when no validation user has two ratings to order
                out["val_ndcg"] = value
        return out

    def _log(
        self, logger: Any, member: RatingGNN, row: dict[str, float], suffix: str, graph: _Graph, adjacency
    ) -> None:
        """Scalars every epoch; weight and node-embedding histograms every ``histogram_every`` epochs."""
        epoch = row["epoch"]
        logger.add_scalar(f"loss/train{suffix}", row["train_loss"], epoch)
        logger.add_scalar(f"rmse/train{suffix}", row["train_rmse"], epoch)
        logger.add_scalar(f"lr{suffix}", row["lr"], epoch)
        for key in ("rmse", "mae", "ndcg"):
            if f"val_{key}" in row:
                logger.add_scalar(f"{key}/val{suffix}", row[f"val_{key}"], epoch)
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
            graph = self.graph
            ids = torch.arange(graph.user_x.size(0))
            with torch.no_grad():
                self._embeddings = [
                    m.eval().encode(graph.user_x, graph.movie_x, graph.edge_index, graph.rating_index, ids)
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
            member.decode(zu, zm, user, movie)[1]
            for member, (zu, zm) in zip(self.members, self._member_embeddings(), strict=True)
        ]
        return torch.stack(preds).mean(0)

    def _score_matrix(self, users: Tensor) -> Tensor:
        scores = [
            member.decode_all(zu[users], zm)
            for member, (zu, zm) in zip(self.members, self._member_embeddings(), strict=True)
        ]
        return torch.stack(scores).mean(0)

    # ------------------------------------------------------------------ cold start
    def recommend_new_user(
        self,
        *,
        age: float | None = None,
        gender: str | None = None,
        occupation: str | None = None,
        ratings: list[tuple[int, float]] | tuple = (),
        k: int = 10,
    ) -> tuple[Tensor, Tensor]:
        """Top-``k`` movies for a person who is not in the data, without retraining.

        The person becomes a new user node with the "unknown user" ID embedding, the
        side features of ``age``/``gender``/``occupation`` and one edge per
        ``(movie index, rating)`` pair; message passing then runs on the enlarged graph.
        Returns ``(movie indices [k], predicted ratings [k])``; rated movies are never
        recommended. With no ratings the ranking comes from the demographics alone.
        """
        info = self._require_fitted()
        graph = self.graph
        meta = self.metadata
        demographics = (age, gender, occupation)
        if meta.get("occupation_names") is not None and graph.user_x.size(1) > 0:
            missing = [n for n, v in zip(("age", "gender", "occupation"), demographics, strict=True) if v is None]
            if missing:
                raise ValueError(f"recommend_new_user needs {', '.join(missing)} for this model's user features")
            row = new_user_feature_row(
                age,
                gender,
                occupation,
                occupation_names=meta["occupation_names"],
                age_range=meta["age_range"],
                age_buckets=meta.get("age_buckets"),
            )
            if row.numel() != graph.user_x.size(1):
                raise ValueError(f"new user has {row.numel()} features, the model's users have {graph.user_x.size(1)}")
        else:
            if any(v is not None for v in demographics):
                raise ValueError("this model's dataset has no demographic user features; pass only ratings")
            row = graph.user_x.mean(0) if len(graph.user_x) else graph.user_x.new_zeros(graph.user_x.size(1))
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


def _ndcg_function():
    """The evaluator's GLocal-K NDCG when the evaluation package is installed, else ``None``."""
    try:
        from gnnrec.evaluation.metrics import glocal_ndcg
    except ImportError:
        return None
    return glocal_ndcg
