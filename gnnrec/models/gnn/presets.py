"""Per-dataset presets of the ``gnn`` model's config, and the choice of rating messages by scale size.

A :class:`~gnnrec.models.gnn.GNNConfig` field left ``None`` is "from the preset": at fit time
:meth:`GNNConfig.resolved <gnnrec.models.gnn.GNNConfig.resolved>` fills it from the preset of
``split.dataset`` (:func:`gnnrec.config.resolve_preset`), or from :data:`FALLBACK_PRESET` for a dataset
without one; an explicit value always wins. ``rating_messages="auto"`` is then resolved by the number
of rating levels (:func:`auto_rating_messages`).

* ``ml-100k``: the defaults of :class:`~gnnrec.models.gnn.GNNConfig`, chosen on MovieLens-100k u1 validation,
  with ``rating_messages="levels"`` (GC-MC's one set of message weights per rating level), and a refit that
  continues the selection fit for half its epochs (:data:`ML100K_REFIT_CONTINUE_SHARE`; the other presets refit
  afresh).
* ``synthetic`` (:mod:`gnnrec.data.synthetic`): ``generic`` without feature and node dropout, without the ranking head's
  item-item term and with a longer patience (:data:`SYNTHETIC_TRAINING`). Ratings there are biases plus a low-rank
  interaction of latent factors; training starts near a saddle where only the biases are fitted and leaves it after a
  long flat stretch, which the dropouts of the other presets prevent (chosen on validation RMSE with
  ``benchmarks/bench_gnn_synthetic.py``; results in ``benchmarks/results/gnn_synthetic.md``). That choice was made on
  data generated with ``taste_exposure=0``, where which movies a user rated says nothing about them and the interaction
  must be read from the rating levels of the messages alone; the default data let the rated set carry taste too, and a
  small validation check there (``benchmarks/results/gnn_synthetic_taste.md``) still favours the preset over the
  dropouts of the other presets.
* ``generic`` (every other dataset): the ranking head's item-item term (``rank_neighbours``), chosen on Douban
  validation (``benchmarks/results/gnn_rank_neighbours.md``; ML-100k u1 validation ranked worse with it, so the
  ``ml-100k`` preset leaves it off); ML-100k's values for every other field (not tuned on those datasets), and
  ``rating_messages="auto"``: per-level weights up to :data:`MAX_LEVELS_FOR_LEVELS` levels (ML-1M, Douban,
  half-star scales), :data:`MANY_LEVELS_MESSAGES` above, chosen on validation RMSE of a synthetic 71-level scale
  shaped like YahooMusic's (``benchmarks/bench_rating_levels.py``, results in ``benchmarks/results/rating_levels.md``),
  not on YahooMusic itself.
"""

from __future__ import annotations

from typing import Any

from gnnrec.nn.rating_messages import RATING_MESSAGES

MAX_LEVELS_FOR_LEVELS = 10  # scales with at most this many levels keep per-level weights under "auto"
MANY_LEVELS_MESSAGES = "continuous"  # the best of the three on many-level scales (benchmarks/results/rating_levels.md)
RATING_MESSAGE_CHOICES = ("auto", *RATING_MESSAGES)

FALLBACK_PRESET = "generic"
# without feature and node dropout the GNN leaves the bias-only plateau of the synthetic data; the escape is
# preceded by a long flat stretch, hence the longer patience (benchmarks/results/gnn_synthetic.md)
SYNTHETIC_TRAINING: dict[str, Any] = {"dropout": 0.0, "node_dropout": 0.0, "patience": 200, "plateau_tolerance": 0.0}
# the regularisation and early stopping chosen on MovieLens-100k u1 validation (GC-MC's); the plateau tolerance from
# one long u1 fit's validation history replayed under stopping rules (benchmarks/results/gnn_stopping_ml100k.md)
ML100K_TRAINING: dict[str, Any] = {"dropout": 0.5, "node_dropout": 0.5, "patience": 60, "plateau_tolerance": 5e-4}
# neighbours per movie of the ranking head's item-item term: chosen on Douban validation, where it lifted ndcg@10
# from about half of EASE's to EASE's, and off on ML-100k u1 validation, where it ranked worse at every decay tried
# (benchmarks/results/gnn_rank_neighbours.md)
GENERIC_RANK_NEIGHBOURS = 50
# the refit continues the selection fit for this share of its epochs on ML-100k, where that beat a fresh refit on a
# second validation carve-out (every seed, RMSE and ndcg@10); on Douban the continuation's RMSE was worse, so the other
# presets refit afresh (benchmarks/results/refit_protocol_gnn_continue.md, refit_protocol_gnn_continue_douban.md)
ML100K_REFIT_CONTINUE_SHARE = 0.5
# cold-start training for a model that serves new people (`gnnrec recommend`, the `coldstart` suite): the shares of
# users and movies seen as new per step and the epoch budget (its ranking snapshot is chosen on warm validation, and
# longer fits rank new users worse), chosen on ML-100k validation cold users (benchmarks/results/
# gnn_coldstart_induction.md); off in the presets: it costs warm accuracy (benchmarks/results/coldstart_warm/)
COLDSTART_TRAINING: dict[str, Any] = {"induction_users": 0.3, "induction_movies": 0.1, "max_epochs": 300}
PRESETS: dict[str, dict[str, Any]] = {
    "ml-100k": {
        "rating_messages": "levels",
        "rank_neighbours": 0,
        "refit_continue_share": ML100K_REFIT_CONTINUE_SHARE,
        **ML100K_TRAINING,
    },
    FALLBACK_PRESET: {
        "rating_messages": "auto",
        "rank_neighbours": GENERIC_RANK_NEIGHBOURS,
        "refit_continue_share": 0.0,
        **ML100K_TRAINING,
    },
    "synthetic": {"rating_messages": "auto", "rank_neighbours": 0, "refit_continue_share": 0.0, **SYNTHETIC_TRAINING},
}


def auto_rating_messages(rating_messages: str, num_levels: int) -> str:
    """``rating_messages`` with ``"auto"`` resolved for a scale of ``num_levels`` levels."""
    if rating_messages not in RATING_MESSAGE_CHOICES:
        raise ValueError(f"rating_messages={rating_messages!r}; choose one of {', '.join(RATING_MESSAGE_CHOICES)}")
    if rating_messages != "auto":
        return rating_messages
    return "levels" if num_levels <= MAX_LEVELS_FOR_LEVELS else MANY_LEVELS_MESSAGES
