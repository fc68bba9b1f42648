"""gnnrec's own rating-aware graph neural network (:class:`GNNModel`): prediction, scoring, recommendation,
fold-in and its saved state; fitting is :class:`~gnnrec.models.gnn.training.GNNTrainer`'s."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from gnnrec.coldstart.fold_in import check_new_ratings, movie_indices_from_raw_ids
from gnnrec.config import config_to_dict, update_config
from gnnrec.data.split import RatingSplit
from gnnrec.data.user_features import layout_from_spec
from gnnrec.models.base import RatingModel, check_warm_start
from gnnrec.models.gnn.config import GNNConfig
from gnnrec.models.gnn.graph import TrainingGraph, rating_level_index
from gnnrec.models.gnn.network import build_network
from gnnrec.models.gnn.training import GNNTrainer, refit_overrides
from gnnrec.models.registry import register_model
from gnnrec.nn.grown_adjacency import GrownAdjacency
from gnnrec.nn.network import RatingGNN
from gnnrec.nn.rating_stats import rating_statistics

# what a refit may set differently from the selection fit it continues (GNNModel.warm_start_from)
CONTINUE_FREE_FIELDS = frozenset(
    {
        "max_epochs",
        "keep_rating_epoch",
        "keep_ranking_epoch",
        "patience",
        "refit_continue_share",
        "threads",
        "device",
        "histogram_every",
    }
)
PREDICT_PAIRS = 1 << 20  # pairs decoded at once by predict (bounded memory: the decoder holds a few [pairs, d] tensors)


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

    On scales with many levels (``rating_messages``, :mod:`gnnrec.nn.rating_messages`) :math:`\mathbf{W}_r` is
    shared by the levels of one bin of the scale, or interpolated between a few basis levels; the decoder
    and the loss keep every level. Fields left ``None`` come from the dataset's preset
    (:mod:`gnnrec.models.gnn.presets`), recorded as :attr:`preset_name` with the resolved :attr:`fit_config`.

    Message edges are the split's training ratings. In each step a random share
    ``edge_dropout`` of them is removed from message passing; with ``supervision="dropped"``
    the loss is computed on exactly those removed edges, so the model never reads the
    rating it predicts. Node dropout, feature dropout and an exponential moving average
    of the weights regularise.

    With ``rank_weight > 0`` a :class:`~gnnrec.nn.RankingHead` on the same representations learns
    "will this user rate this movie, and like it" jointly (a multinomial likelihood over the catalogue
    whose targets are the dropped edges, liked ones weighted up, see :mod:`gnnrec.nn.ranking`).
    Training keeps two averaged-weight snapshots: the best validation ``selection_metric`` (RMSE) serves
    :meth:`predict` and ``score_matrix(clip=True)``; the best ``rank_selection_metric`` (ndcg@10) serves
    :meth:`recommend` and ``score_matrix(clip=False)``, i.e. every top-K metric.
    :meth:`recommend_new_user` serves people who are not in the data without retraining.

    When the split has a user–user (``follows``) or movie–movie (``similar``) side graph, ``side_graphs="auto"``
    adds a :class:`~gnnrec.nn.SideGraphConv` per relation to the encoder (see
    :class:`~gnnrec.nn.RatingGraphEncoder`; edges from :func:`~gnnrec.models.gnn.graph.side_graph_edges`);
    ``"off"`` ignores them. Folded-in nodes have no side edges.

    Training (:class:`~gnnrec.models.gnn.training.GNNTrainer`) runs one step function,
    :class:`~gnnrec.models.gnn.step.TrainingStep`, whatever the batching: an epoch is one full-batch step up to
    2M training ratings (``batch_size="auto"``), above that a pass over the training edges in batches of 2^18,
    one optimizer step each, with the same edge dropout and disjoint message/supervision edges; the ranking loss
    then covers a sample of users per step, computed per block of users; predictions are decoded in chunks.
    Under ``torchrun`` every rank trains on its shard of each step's targets (DistributedDataParallel). The
    onehot first layer holds :math:`(U + M + 2) \times` ``hidden_dim`` weights (``accumulate="stack"``; R times
    more with ``"sum"``).
    """

    name = "gnn"
    fit_cost = 100.0
    fold_in_kinds = ("users", "movies")
    fold_in_settings = ("fold_in_offset_reg",)
    config_class = GNNConfig

    def __init__(self, config: GNNConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.members: list[RatingGNN] = []  # rating snapshots (predict)
        self.rank_members: list[RatingGNN] = []  # ranking snapshots (ranking scores); empty without a head
        self.selected_epochs: list[dict[str, int]] = []  # per member: epoch of each kept snapshot
        self.budget_hits: list[int] = []  # per member that used its whole budget while validation still improved
        self._rank_embeddings: list[tuple[Tensor, Tensor]] | None = None
        self._serve_ratings = False
        self.graph: TrainingGraph | None = None
        self.metadata: dict[str, Any] = {}
        self._embeddings: list[tuple[Tensor, Tensor]] | None = None
        self._encoding: tuple[TrainingGraph, Any] | None = None  # while training: the device graph, its adjacency
        self._fold_in_layout: tuple[TrainingGraph, GrownAdjacency | None] | None = None  # the graph it was built for
        self._fitted_statistics: tuple[TrainingGraph, tuple[Tensor, Tensor]] | None = None  # likewise
        self.preset_name: str | None = None  # the preset the last fit took its unset fields from
        self.fit_config: GNNConfig | None = None  # self.config with the preset (and "auto") filled in
        self._continued: tuple[list[dict[str, Tensor]], GNNConfig, tuple[int, int]] | None = None  # warm_start_from
        self.continued_selection = False  # whether the last fit continued a selection fit's networks

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
            max_epochs=150,
            patience=75,
            val_every=5,
            rank_dim=16,
            device="cpu",
            threads=1,
        )

    # ------------------------------------------------------------------ fitting
    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        """Resolve the preset for ``split`` (:meth:`GNNConfig.resolved`), then train with that config (continuing
        the networks :meth:`warm_start_from` took, for its share of the epochs)."""
        self.fit_config, self.preset_name = self.config.resolved(split.dataset, len(split.rating_levels))
        start_states = self._take_continued(split)
        if start_states is not None:
            epochs = max(1, round((self.fit_config.refit_continue_share or 0.0) * self.fit_config.max_epochs))
            self.fit_config = dataclasses.replace(
                self.fit_config, max_epochs=epochs, keep_rating_epoch=epochs, keep_ranking_epoch=epochs
            )
        self.continued_selection = start_states is not None
        with self._resolved_config():
            GNNTrainer(self, logger).fit(split, start_states)

    @property
    def refit_protocol(self) -> str:
        """``refit`` where the refit continues the selection fit (the ``ml-100k`` preset), else ``scaled`` (a fresh
        refit, its epochs scaled by the data added); each chosen on a second validation carve-out of train
        (``benchmarks/bench_refit_protocol.py``)."""
        return "refit" if self.continue_share(self) else "scaled"

    def warm_start_from(self, selection: RatingModel) -> bool:
        """Let the next fit continue ``selection``'s rating snapshots instead of training afresh.

        A refit on train ∪ validation then trains those networks (fitted on train alone, stopped where validation
        chose) for :meth:`continue_share` of its ``max_epochs``, with the validation ratings added, and keeps its
        last averaged weights for ratings and rankings alike. Taken from a fitted GNN with that share above 0;
        :meth:`fit` checks that the graph and every setting but the epoch counts agree
        (:data:`CONTINUE_FREE_FIELDS`).
        """
        if not isinstance(selection, GNNModel) or not self.continue_share(selection):
            return False
        if not selection.members or selection.fit_config is None or selection.graph is None:
            return False
        states = [{key: value.detach().clone() for key, value in m.state_dict().items()} for m in selection.members]
        shape = (selection.graph.num_users, selection.graph.num_movies)
        self._continued = (states, selection.fit_config, shape)
        return True

    @property
    def warm_start_note(self) -> str:
        share = self.continue_share(self)
        return f"the refit continues the selection fit's networks for {share:.0%} of the selected epochs"

    def _take_continued(self, split: RatingSplit) -> list[dict[str, Tensor]] | None:
        """The states :meth:`warm_start_from` took (once), checked against ``split`` and this fit's config."""
        if self._continued is None:
            return None
        states, source, (users, movies) = self._continued
        self._continued = None
        fields = [field.name for field in dataclasses.fields(GNNConfig) if field.name not in CONTINUE_FREE_FIELDS]
        fitted_on = ((users, "users"), (movies, "movies"))
        check_warm_start("continue the selection fit", fitted_on, split, self.fit_config, source, fields)
        return states

    def build_member(self) -> RatingGNN:
        """A fresh network for this model's graph and (resolved) config."""
        graph = self.graph
        return build_network(
            graph.num_users,
            graph.num_movies,
            graph.user_x.size(1),
            graph.movie_x.size(1),
            self.metadata["rating_values"],
            self.metadata["global_mean"],
            self.config,
            side_graphs=tuple(graph.side),
        )

    def use_members(
        self,
        members: list[RatingGNN],
        rank_members: list[RatingGNN],
        encoding: tuple[TrainingGraph, Any] | None = None,
    ) -> None:
        """Serve from these networks (validation swaps in the averaged weights); ``encoding``: the graph and its
        prebuilt adjacency to encode with (training keeps them on its device), ``None``: :attr:`graph`."""
        self.members, self.rank_members, self._encoding = list(members), list(rank_members), encoding
        self._embeddings = self._rank_embeddings = self._fold_in_layout = self._fitted_statistics = None

    def refit_overrides(self) -> dict[str, int]:
        """Config overrides that repeat what validation selected when fitting again without validation
        (on train + validation): ``max_epochs`` and the epochs of the rating and ranking snapshots."""
        return refit_overrides(self.selected_epochs)

    @contextlib.contextmanager
    def _resolved_config(self) -> Iterator[None]:
        """While fitting (or rebuilding networks), ``self.config`` is :attr:`fit_config`; then what was asked for."""
        requested, self.config = self.config, self.fit_config
        try:
            yield
        finally:
            self.config = requested

    # ------------------------------------------------------------------ inference
    def _encode_members(self, members: list[RatingGNN], ranking: bool = False) -> list[tuple[Tensor, Tensor]]:
        """Each member's representations: those its rating decoder reads, or (``ranking``) its ranking head."""
        graph, adjacency = self._encoding or (self.graph, None)
        ids = torch.arange(graph.user_x.size(0), device=graph.user_x.device)
        inputs = (graph.user_x, graph.movie_x, graph.edge_index, graph.rating_index, ids, adjacency)
        with torch.no_grad():
            return [
                (m.eval().encode_ranking if ranking else m.eval().encode)(*inputs, side=graph.side) for m in members
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
                r is m and m.rank_encoder is None for r, m in zip(self.rank_members, self.members, strict=True)
            )
            self._rank_embeddings = rating if same else self._encode_members(self.rank_members, ranking=True)
        return self._rank_embeddings

    def embeddings(self) -> dict[str, Tensor]:
        """Final node representations ``{"user": [U, d], "movie": [M, d]}`` (ensemble members concatenated)."""
        self._require_fitted()
        pairs = self._member_embeddings()
        return {"user": torch.cat([u for u, _ in pairs], -1), "movie": torch.cat([m for _, m in pairs], -1)}

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        pairs = self._member_embeddings()
        chunks = [
            torch.stack([
                member.decode(zu, zm, u.to(zu.device), m.to(zu.device))[1]
                for member, (zu, zm) in zip(self.members, pairs, strict=True)
            ]).mean(0)
            for u, m in zip(user.split(PREDICT_PAIRS), movie.split(PREDICT_PAIRS), strict=True)
        ]  # fmt: skip
        return torch.cat(chunks) if len(chunks) != 1 else chunks[0]

    def _score_matrix(self, users: Tensor) -> Tensor:
        ratings = self._serve_ratings or not self.rank_members
        members = self.members if ratings else self.rank_members
        pairs = self._member_embeddings() if ratings else self._ranking_embeddings()
        if ratings:
            scores = [
                member.decode_all(zu[users.to(zu.device)], zm) for member, (zu, zm) in zip(members, pairs, strict=True)
            ]
        else:
            history = self._history(users)
            scores = [
                member.rank_all(zu[users.to(zu.device)], zm, tuple(h.to(zu.device) for h in history))
                for member, (zu, zm) in zip(members, pairs, strict=True)
            ]
        return torch.stack(scores).mean(0)

    def _history(self, users: Tensor) -> tuple[Tensor, Tensor]:
        """``(row in users, movie)`` of the training edges of ``users``, which the head's item–item term reads."""
        graph = (self._encoding or (self.graph, None))[0]
        user, movie = graph.edge_index.cpu()
        row_of = torch.full((graph.user_x.size(0),), -1, dtype=torch.long)
        row_of[users.cpu()] = torch.arange(len(users))
        row = row_of[user]
        keep = row >= 0
        return row[keep], movie[keep]

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
        if layout.num_features == 0:  # no demographics: fold_in uses the average user's features (if any)
            row = None
        elif row.numel() != graph.user_x.size(1):
            raise ValueError(f"new user has {row.numel()} features, the model's users have {graph.user_x.size(1)}")
        levels = self.target_scale.to_user(meta["rating_values"])  # the model keeps its levels in its own units
        movies, values = check_new_ratings(ratings, info.num_movies, levels)
        unrated = info.num_movies - len(movies)
        if not 1 <= k <= unrated:
            raise ValueError(f"k must lie in 1..{unrated} (movies this person has not rated), got {k}")
        support = torch.stack([torch.zeros_like(movies), movies])
        features = None if row is None else row.view(1, -1)
        fold = self.fold_in("users", support, values, num_new=1, features=features)
        top = fold.top_k(k)[0]
        return top, fold.scores[0, top].clamp(info.rating_min, info.rating_max)

    def _fold_in(
        self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int
    ) -> tuple[Tensor, Tensor | None]:
        """New nodes join the training graph with the unknown ID rows, their features and support edges, whose
        messages flow into the new nodes only (:class:`~gnnrec.nn.grown_adjacency.GrownAdjacency`'s ``one_way``):
        the fitted nodes keep their representations (rating statistics included) and each new node is encoded as
        if it joined alone, however many one call folds in. Returns the rating head's scores and, with a ranking
        head, the ranking snapshot's scores that order top-K lists."""
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
        layout = self._fold_in_adjacency()
        adjacency = None if layout is None else layout(new_edges, level, user_x.size(0), movie_x.size(0), one_way=True)
        statistics = None
        if self.fit_config.rating_stats:  # the fitted nodes' from the training graph, the new nodes' from their support
            values = (self.members or self.rank_members)[0].encoder.stat_values
            if self._fitted_statistics is None or self._fitted_statistics[0] is not graph:
                fitted = rating_statistics(graph.edge_index, graph.rating_index, values, num_users, num_movies)
                self._fitted_statistics = (graph, fitted)
            fixed = self._fitted_statistics[1]
            new = rating_statistics(new_edges, level, values, user_x.size(0), movie_x.size(0))
            statistics = (
                torch.cat([fixed[0], new[0][num_users:]]),
                torch.cat([fixed[1], new[1][num_movies:]]),
            )

        def encode(member: RatingGNN, ranking: bool = False) -> tuple[Tensor, Tensor]:
            encoder = member.eval().encode_ranking if ranking else member.eval().encode
            return encoder(
                user_x, movie_x, edge_index, rating_index, user_ids, adjacency,
                movie_ids=movie_ids, side=graph.side, statistics=statistics,
            )  # fmt: skip

        scores, ranking = [], []
        for member in self.members:
            z_user, z_movie = encode(member)
            if kind == "users":
                scores.append(member.decode_all(z_user[num_users:], z_movie))
            else:
                scores.append(member.decode_all(z_user, z_movie[num_movies:]).T)
        for member in self.rank_members:
            z_user, z_movie = encode(member, ranking=True)
            head = member.ranker
            if kind == "users":  # the item-item term reads the new users' support films
                ranking.append(member.rank_all(z_user[num_users:], z_movie, (support[0], support[1])))
            else:  # the per-movie bias is unknown for a new movie and constant over the users it ranks
                ranking.append(head.movie(z_movie[num_movies:]) @ head.user(z_user).t())
        rating_scores = self._with_offset(torch.stack(scores).mean(0), support, rating, num_new)
        return rating_scores, (torch.stack(ranking).mean(0) if ranking else None)

    def _with_offset(self, scores: Tensor, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        """``scores`` ``[num_new, other]`` of folded-in nodes moved by ``fold_in_offset_reg``'s shrunk mean residual
        of each node's support ratings (predictions clipped to the scale; the model's units); unchanged without that
        setting."""
        reg = self.config.fold_in_offset_reg
        if reg is None or not support.size(1):
            return scores
        levels = self.metadata["rating_values"]
        predicted = scores[support[0], support[1]].clamp(float(levels.min()), float(levels.max()))
        residual = torch.zeros(num_new, dtype=scores.dtype).index_add_(0, support[0], rating.to(scores) - predicted)
        count = torch.bincount(support[0], minlength=num_new).to(scores.dtype)
        return scores + (residual / (count + reg)).unsqueeze(1)

    def _fold_in_adjacency(self) -> GrownAdjacency | None:
        """The training graph's matrices laid out once for fold-in (rebuilt when the graph changes); one serves every
        member and ranking snapshot, which :meth:`build_member` gives the same convolution layout."""
        graph = self.graph
        if self._fold_in_layout is None or self._fold_in_layout[0] is not graph:
            encoder = (self.members or self.rank_members)[0].encoder
            layout = encoder.grown_adjacency(graph.edge_index, graph.rating_index, graph.num_users, graph.num_movies)
            self._fold_in_layout = (graph, layout)
        return self._fold_in_layout[1]

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
            "preset": self.preset_name,
            "fit_config": config_to_dict(self.fit_config),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.graph = TrainingGraph(**state["graph"])
        self.metadata = dict(state["metadata"])
        self.preset_name = state.get("preset")
        if "fit_config" in state:
            # a checkpoint from before the item-item term records no rank_neighbours: it had none
            self.fit_config = update_config(GNNConfig(rank_neighbours=0), state["fit_config"])
        else:  # checkpoints older than presets: every network had per-level message weights
            old = dataclasses.replace(self.config, preset="ml-100k").resolved(None, 0)[0]  # all of today's defaults
            self.fit_config = dataclasses.replace(old, preset=self.config.preset)
        self.members, self.rank_members = [], []
        with self._resolved_config():
            for key, members in (("members", self.members), ("rank_members", self.rank_members)):
                for member_state in state.get(key, []):
                    member = self.build_member()
                    member.load_state_dict(member_state)
                    members.append(member.eval())
        self.selected_epochs = list(state.get("selected_epochs", []))
        self._embeddings = self._rank_embeddings = self._fold_in_layout = self._fitted_statistics = None
