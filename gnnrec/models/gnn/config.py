"""Hyper-parameters of gnnrec's GNN (:class:`GNNConfig`), validated on construction and resolved per dataset."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from gnnrec.config import Range, check_config, deprecated_key, resolve_preset
from gnnrec.evaluation.validation import check_selection_metric
from gnnrec.models.gnn.graph import SIDE_GRAPH_MODES
from gnnrec.models.gnn.presets import FALLBACK_PRESET, PRESETS, RATING_MESSAGE_CHOICES, auto_rating_messages
from gnnrec.nn.conv import ACCUMULATIONS, MESSAGE_MODES
from gnnrec.nn.encoder import LAYER_AGGREGATIONS
from gnnrec.nn.network import DECODERS, RANK_ENCODERS
from gnnrec.nn.ranking import RANK_LOSSES

SUPERVISION = ("all", "dropped")
INDUCTION_ORDERS = ("earliest", "random")
INPUTS = ("embedding", "onehot")

SHARE = Range(0.0, 1.0, high_open=True)  # a probability that must leave something: [0, 1)
COUNT = Range(1, integer=True)
RANGES: dict[str, Range] = {
    **dict.fromkeys(("embedding_dim", "hidden_dim", "output_dim", "num_bases", "rank_dim"), COUNT),
    **dict.fromkeys(("max_epochs", "patience", "ensemble", "val_every"), COUNT),
    "num_layers": Range(0, integer=True),
    "rating_bins": Range(2, integer=True),
    **dict.fromkeys(("dropout", "node_dropout", "edge_dropout", "id_dropout", "ema_decay"), SHARE),
    **dict.fromkeys(("induction_users", "induction_movies"), SHARE),
    **dict.fromkeys(
        (
            "ce_weight",
            "mse_weight",
            "weight_decay",
            "rank_weight",
            "rank_like_weight",
            "rank_negatives",
            "induction_weight",
            "fold_in_offset_reg",
        ),
        Range(0.0),
    ),
    "plateau_tolerance": Range(0.0, 1.0, high_open=True),
    "lr": Range(0.0, low_open=True),
    "rank_grad_scale": Range(0.0, 1.0),
    "refit_continue_share": Range(0.0, 1.0),
    **dict.fromkeys(
        ("keep_rating_epoch", "keep_ranking_epoch", "rank_users", "threads", "rank_neighbours"), Range(0, integer=True)
    ),
    "rank_neighbour_decay": Range(0.0),
    "histogram_every": Range(0, integer=True),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "input": INPUTS,
    "message": MESSAGE_MODES,
    "rating_messages": RATING_MESSAGE_CHOICES,
    "accumulate": ACCUMULATIONS,
    "side_graphs": SIDE_GRAPH_MODES,
    "layer_aggregation": LAYER_AGGREGATIONS,
    "decoder": DECODERS,
    "supervision": SUPERVISION,
    "rank_loss": RANK_LOSSES,
    "rank_encoder": RANK_ENCODERS,
    "induction_order": INDUCTION_ORDERS,
}


@dataclasses.dataclass
class GNNConfig:
    """Hyper-parameters of :class:`~gnnrec.models.gnn.GNNModel`; every switch the ablations use is a field here.

    Fields that default to ``None`` follow the split's dataset: at fit time :meth:`resolved` fills them
    from the dataset's preset (:mod:`gnnrec.models.gnn.presets`; ``preset="auto"``, datasets without one
    use the ``generic`` preset). Setting one explicitly always wins; ``preset="ml-100k"`` etc. uses that
    preset whatever the dataset. The model records the preset and the resolved config it fitted with.
    ``epochs`` is the deprecated name of ``max_epochs`` (it warns).
    """

    DEPRECATED_KEYS: ClassVar[dict[str, str]] = {"epochs": "max_epochs"}

    # ---- encoder (gnnrec.nn.RatingGraphEncoder)
    input: str = "onehot"  # first convolution reads: onehot (free weights per ID and level, GC-MC) | embedding
    embedding_dim: int = 32  # layer-0 size: ID embeddings and side-feature projections (skip path)
    use_ids: bool = False  # layer 0 holds an ID embedding (which input="embedding" also passes along edges)
    use_features: bool = True  # layer 0 holds a projection of the side features
    # layer 0 holds a projection of each node's rating statistics from its message edges (log-degree, scaled mean
    # rating, share of each level; gnnrec.nn.rating_stats): training ratings only, an input without side features
    rating_stats: bool = False
    num_layers: int = 1
    hidden_dim: int = 250  # output size of each convolution (stacking: rounded down to a multiple of the levels)
    message: str = "levels"  # levels (per-rating matrices) | plain (rating-blind)
    # which message weights a rating level uses (gnnrec.nn.rating_messages): levels (one set per level, GC-MC) |
    # binned (per bin of the scale) | continuous (interpolated between basis levels) | auto (levels up to 10
    # levels, else the variant chosen on validation); None: the dataset's preset
    rating_messages: str | None = None
    rating_bins: int = 5  # bins (binned) or basis levels (continuous) of the rating scale
    ordinal: bool = True  # GC-MC ordinal weight sharing between rating levels
    accumulate: str = "stack"  # per-level messages stacked side by side (GC-MC; R times cheaper) | sum
    root_weight: bool = False  # convolutions add a transform of the node's own previous features
    side_graphs: str = "auto"  # auto: also pass messages over the split's user–user / movie–movie graphs | off
    layer_aggregation: str = "concat"  # concat | mean | last (of layer 0..L outputs, before the dense layer)
    output_dim: int = 75  # size of the final node representations the decoder reads

    # ---- rating decoder (gnnrec.nn.decoders)
    decoder: str = "bilinear"  # bilinear (mixture over levels) | dot | mlp
    num_bases: int = 2  # basis matrices shared by the bilinear decoder's levels

    # ---- regularisation (None: the preset's; ml-100k and generic: 0.5 each, synthetic: 0)
    dropout: float | None = None  # on node features entering every convolution and dense layer
    node_dropout: float | None = None  # share of source nodes whose messages are all dropped in a training step
    edge_dropout: float = 0.25  # share of message edges removed in every training step
    id_dropout: float = 0.05  # share of users seen as the "unknown user" (trains its row for cold start)
    supervision: str = "dropped"  # dropped: loss only on the edges removed from messages | all: every train edge
    # cold-start training (gnnrec.models.gnn.step.induction_step): share of users / movies seen as new in each step
    induction_users: float = 0.0
    induction_movies: float = 0.0
    # which message edges a "new" node keeps: earliest (its first ratings by time, what a newcomer has given; random
    # where the split has no rating times) | random
    induction_order: str = "earliest"
    induction_weight: float = 1.0  # weight of a new node's rating and ranking targets (1: as a warm node's)
    # fold-in only: a new node's predicted ratings move by the mean residual of its support ratings, shrunk by this
    # ridge weight (sum of residuals / (n + reg)); None: no offset. 10: chosen on ML-100k validation cold users and
    # films, for the default and the cold-start training (benchmarks/results/gnn_coldstart_induction.md)
    fold_in_offset_reg: float | None = 10.0

    # ---- rating losses and optimisation
    ce_weight: float = 1.0  # cross-entropy over rating levels (level decoders only)
    mse_weight: float = 1.0  # squared error of the expected rating
    lr: float = 0.01
    weight_decay: float = 0.0
    max_epochs: int = 2000  # a cap: the default fits stop on a validation plateau well before it
    ema_decay: float = 0.99  # >0: validate and keep an exponential moving average of the weights
    ensemble: int = 1  # independently initialised members whose predictions are averaged
    # training edges per optimizer step (gnnrec.models.gnn.step): "auto"/0 one full-batch step per epoch up to
    # 2M training ratings, batches of 2^18 edges above; a number N: an epoch is a pass over the edges in batches of N
    batch_size: str | int = "auto"
    rank_users: int = 0  # users in a mini-batch step's ranking loss (0: all, at most 2^23 / num_movies of them)

    # ---- ranking head: "will this user rate this movie, and like it", trained jointly (0: rank by the rating head)
    rank_weight: float = 0.5  # weight of the ranking loss beside the rating loss
    rank_dim: int = 75  # size of the ranking head's user and movie projections
    # what the head reads: shared (the rating encoder's outputs, its gradient scaled by rank_grad_scale) | own (an
    # encoder of the same shape trained by the ranking loss alone; each step encodes twice)
    rank_encoder: str = "shared"
    rank_loss: str = "multinomial"  # multinomial (softmax over the catalogue) | bpr (one sampled negative)
    # multinomial: movies sampled per step for the softmax's normaliser, as a multiple of the mean training ratings
    # per user (so that its cost follows the ratings); 0: the whole catalogue
    rank_negatives: float = 0.0
    rank_like_weight: float = 1.0  # extra weight of a target the user liked (rating >= 3/4 up the scale)
    rank_grad_scale: float = 0.1  # share of the ranking loss's gradient that reaches a shared encoder
    # item-item term of the head (gnnrec.nn.RankingHead): a learned weight from each movie to each of its N most
    # co-rated movies, summed over the user's history (0: none; None: the preset's, generic 50, ml-100k and
    # synthetic 0, and 0 where the ranking loss is not the exact one); exact multinomial loss only; at most the
    # number of other movies
    rank_neighbours: int | None = None
    rank_neighbour_decay: float = 0.001  # L2 penalty on those weights, added to the ranking loss

    # ---- validation, early stopping and the kept snapshots
    val_every: int = 5  # epochs between validations (patience counts epochs)
    patience: int | None = None  # stop after this many epochs without a better validation metric (None: preset's)
    # a validation value better than the last counted gain by less than this share of it is a plateau: it updates
    # the kept snapshot but does not reset patience (0: every gain counts; None: the preset's)
    plateau_tolerance: float | None = None
    selection_metric: str = "rmse"  # validation metric for early stopping and the kept rating weights
    rank_selection_metric: str = "ndcg@10"  # validation metric that picks the ranking snapshot
    # without validation ratings (a refit on train + validation): the epochs whose weights are kept (0: the last)
    keep_rating_epoch: int = 0
    keep_ranking_epoch: int = 0
    # a refit after selection (a benchmark cell's, RatingModel.warm_start_from) continues the selection fit's rating
    # snapshots on train ∪ validation for this share of the selected epochs instead of training afresh for all of
    # them (0: train afresh, the epochs scaled by the data added; None: the preset's)
    refit_continue_share: float | None = None

    # ---- run
    histogram_every: int = 50  # epochs between TensorBoard histograms (0: never)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch intra-op CPU threads while fitting (0: leave torch's setting)
    preset: str = "auto"  # where the None fields come from: auto (the split's dataset) | a name in PRESETS

    # ---- deprecated spelling (warns): epochs=N sets max_epochs
    epochs: dataclasses.InitVar[int | None] = None

    def __post_init__(self, epochs: int | None) -> None:
        if epochs is not None:
            deprecated_key("GNNConfig", "epochs", "max_epochs")
            self.max_epochs = epochs
        if isinstance(self.batch_size, str) and self.batch_size.strip().isdigit():
            self.batch_size = int(self.batch_size)  # from --set batch_size=N
        check_config(self, RANGES, CHOICES)
        check_selection_metric(self.selection_metric)
        check_selection_metric(self.rank_selection_metric)
        if self.preset != "auto" and str(self.preset).lower() not in PRESETS:
            raise ValueError(f"GNNConfig: preset={self.preset!r}; choose 'auto' or one of {', '.join(PRESETS)}")
        if self.batch_size != "auto" and (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
                                          or self.batch_size < 0):  # fmt: skip
            raise ValueError(f"GNNConfig: batch_size must be 'auto' or a number of edges >= 0, got {self.batch_size!r}")
        needs_dropped_edges = {
            "induction_users/induction_movies": bool(self.induction_users or self.induction_movies),
            "supervision='dropped'": self.supervision == "dropped",
            "rank_weight > 0": self.rank_weight > 0,
        }
        for what, needed in needs_dropped_edges.items():
            if needed and self.edge_dropout == 0.0:
                raise ValueError(f"GNNConfig: {what} needs edge_dropout > 0 (it works on the edges a step drops)")
        if self.rank_neighbours and (self.rank_loss != "multinomial" or self.rank_negatives or not self.rank_weight):
            raise ValueError(
                "GNNConfig: rank_neighbours > 0 needs the exact ranking loss "
                "(rank_weight > 0, rank_loss='multinomial', rank_negatives=0)"
            )
        if self.accumulate == "stack" and self.message == "plain":
            raise ValueError("accumulate='stack' stacks per-level messages; with message='plain' use accumulate='sum'")
        if self.layer_aggregation == "mean" and self.num_layers and self.hidden_dim != self.embedding_dim:
            raise ValueError("layer_aggregation='mean' needs hidden_dim == embedding_dim")
        if not (self.use_ids or self.use_features or self.rating_stats or (self.input == "onehot" and self.num_layers)):
            raise ValueError(
                "use_ids and use_features are both off, without rating_stats or an onehot convolution: "
                "nodes would have no input"
            )

    def resolved(self, dataset: str | None, num_levels: int) -> tuple[GNNConfig, str]:
        """This config with its ``None`` fields from the preset for ``dataset`` and ``rating_messages="auto"``
        resolved for ``num_levels`` rating levels; and the preset's name."""
        config = self
        exact_loss = self.rank_loss == "multinomial" and not self.rank_negatives and self.rank_weight > 0
        if self.rank_neighbours is None and not exact_loss:  # the preset's item-item term only where it can train
            config = dataclasses.replace(self, rank_neighbours=0)
        config, name = resolve_preset(config, PRESETS, dataset, FALLBACK_PRESET, preset=self.preset)
        messages = auto_rating_messages(config.rating_messages, num_levels)
        return dataclasses.replace(config, rating_messages=messages), name
