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
PRESETS: dict[str, dict[str, Any]] = {
    "ml-100k": {"rating_messages": "levels"},
    FALLBACK_PRESET: {"rating_messages": "auto"},
}


def auto_rating_messages(rating_messages: str, num_levels: int) -> str:
    """``rating_messages`` with ``"auto"`` resolved for a scale of ``num_levels`` levels."""
    if rating_messages not in RATING_MESSAGE_CHOICES:
        raise ValueError(f"rating_messages={rating_messages!r}; choose one of {', '.join(RATING_MESSAGE_CHOICES)}")
    if rating_messages != "auto":
        return rating_messages
    return "levels" if num_levels <= MAX_LEVELS_FOR_LEVELS else MANY_LEVELS_MESSAGES
