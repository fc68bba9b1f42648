"""Per-dataset presets of the ``gnn`` model's config, and the choice of rating messages by scale size.

A :class:`~gnnrec.models.gnn.GNNConfig` field left ``None`` is "from the preset": at fit time
:meth:`GNNConfig.resolved <gnnrec.models.gnn.GNNConfig.resolved>` fills it from the preset of
``split.dataset`` (:func:`gnnrec.presets.resolve_preset`), or from :data:`FALLBACK_PRESET` for a dataset
without one; an explicit value always wins. ``rating_messages="auto"`` is then resolved by the number
of rating levels (:func:`auto_rating_messages`).

What is measured and what is a fallback:

* ``ml-100k``: today's defaults, exactly; the field values of :class:`GNNConfig` were chosen on
  MovieLens-100k u1 validation, and ``rating_messages="levels"`` is GC-MC's one set of message weights
  per rating level (the code path the published u1 numbers come from).
* ``synthetic`` (:mod:`gnnrec.data.synthetic`): ``generic`` without feature and node dropout and with a
  patience of 200 epochs (:data:`SYNTHETIC_TRAINING`). Ratings there are biases plus a low-rank interaction of
  latent factors, and which movies a user rated says nothing about them, so the interaction must be read from the
  rating levels of the messages alone; training starts near a saddle where only the biases are fitted and leaves
  it after a few hundred steps, which the dropouts of the other presets prevent (validation RMSE,
  ``benchmarks/bench_gnn_synthetic.py``, ``benchmarks/results/gnn_synthetic.md``).
* ``generic`` (every other dataset): ML-100k's values for every other field (not tuned on those datasets),
  and ``rating_messages="auto"``: per-level weights up to :data:`MAX_LEVELS_FOR_LEVELS` levels (ML-1M,
  Douban, half-star scales: the ML-100k code path), :data:`MANY_LEVELS_MESSAGES` above. That choice was
  measured on validation RMSE of a synthetic 71-level scale within 1..100 shaped like YahooMusic's
  (``benchmarks/bench_rating_levels.py``, ``benchmarks/results/rating_levels.md``), not on YahooMusic itself.
"""

from __future__ import annotations

from typing import Any

from gnnrec.nn.rating_messages import RATING_MESSAGES

MAX_LEVELS_FOR_LEVELS = 10  # scales with at most this many levels keep per-level weights under "auto"
# measured: best mean validation RMSE of the three on a synthetic 71-level scale (3 seeds: continuous 14.81 ± 1.57,
# binned 14.94 ± 1.13, levels 15.73 ± 0.72; continuous beat levels on every seed), benchmarks/results/rating_levels.md
MANY_LEVELS_MESSAGES = "continuous"
RATING_MESSAGE_CHOICES = ("auto", *RATING_MESSAGES)

FALLBACK_PRESET = "generic"
# measured on validation RMSE of the synthetic dataset (benchmarks/results/gnn_synthetic.md): without feature and
# node dropout the GNN leaves the bias-only plateau after a few hundred full-batch steps, with them it stays there;
# the escape is preceded by a long flat stretch, hence the longer patience
SYNTHETIC_TRAINING: dict[str, Any] = {"dropout": 0.0, "node_dropout": 0.0, "patience": 200}
# the regularisation and early stopping chosen on MovieLens-100k u1 validation (GC-MC's)
ML100K_TRAINING: dict[str, Any] = {"dropout": 0.5, "node_dropout": 0.5, "patience": 60}
PRESETS: dict[str, dict[str, Any]] = {
    "ml-100k": {"rating_messages": "levels", **ML100K_TRAINING},
    FALLBACK_PRESET: {"rating_messages": "auto", **ML100K_TRAINING},
    "synthetic": {"rating_messages": "auto", **SYNTHETIC_TRAINING},
}


def auto_rating_messages(rating_messages: str, num_levels: int) -> str:
    """``rating_messages`` with ``"auto"`` resolved for a scale of ``num_levels`` levels."""
    if rating_messages not in RATING_MESSAGE_CHOICES:
        raise ValueError(f"rating_messages={rating_messages!r}; choose one of {', '.join(RATING_MESSAGE_CHOICES)}")
    if rating_messages != "auto":
        return rating_messages
    return "levels" if num_levels <= MAX_LEVELS_FOR_LEVELS else MANY_LEVELS_MESSAGES
