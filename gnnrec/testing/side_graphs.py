"""A small rating dataset with a user–user side graph, in the generic CSV layout (:class:`gnnrec.data.CSVRatings`).

Users belong to communities that share latent taste factors, and each rates only a few items, so what a user's
own ratings say is weak and what the people it is linked to rated says more. Two flavours of side graph:

* ``"signal"`` — every user is linked to users of its own community (shared tastes);
* ``"noise"`` — every user is linked to users drawn from everyone (random links).

The ratings depend only on the generator's settings and ``seed``, never on the flavour, so the two flavours
differ in their links alone (same number per user, same weight distribution).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gnnrec.data.csv_ratings import CSVRatings
from gnnrec.data.split import RatingSplit
from gnnrec.testing.csv_ratings import CSV_FILES
from gnnrec.utils import atomic_write_text

SIDE_GRAPH_FLAVOURS = ("signal", "noise")


def write_side_graph_fixture(
    directory: str | Path,
    flavour: str = "signal",
    *,
    num_users: int = 300,
    num_items: int = 120,
    communities: int = 6,
    ratings_per_user: int = 8,
    links_per_user: int = 6,
    factors: int = 4,
    taste_noise: float = 0.3,
    rating_noise: float = 0.3,
    seed: int = 0,
) -> Path:
    """Write ``ratings.csv`` (``user,item,rating,time``, ratings 1..5) and ``user_edges.csv``
    (``source,target,weight``) of ``flavour`` into ``directory``; returns ``directory``.

    User ``u`` is in community ``u % communities``; its taste is the community's factor vector plus
    ``taste_noise`` times a Gaussian; items have Gaussian factors and a bias. A rating is
    ``3 + item bias + taste · item factors + rating_noise · ε`` rounded and clipped to 1..5, for
    ``ratings_per_user`` items drawn uniformly per user. Each user lists ``links_per_user`` distinct other
    users (weights uniform in [0.5, 1]): of its own community (``"signal"``) or of all users (``"noise"``).
    Ids are strings ``u1``, ``i1``, ...
    """
    if flavour not in SIDE_GRAPH_FLAVOURS:
        raise ValueError(f"unknown side-graph flavour {flavour!r}; choose one of {', '.join(SIDE_GRAPH_FLAVOURS)}")
    if communities < 1 or num_users // communities < links_per_user + 1:
        raise ValueError(f"{num_users} users in {communities} communities: a community needs links_per_user + 1 users")
    if not 1 <= ratings_per_user <= num_items:
        raise ValueError(f"ratings_per_user must lie in 1..{num_items}, got {ratings_per_user}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    community = np.arange(num_users) % communities
    taste = rng.normal(size=(communities, factors))[community] + taste_noise * rng.normal(size=(num_users, factors))
    item_factor = rng.normal(size=(num_items, factors)) / np.sqrt(factors)
    item_bias = 0.4 * rng.normal(size=num_items)
    rows = ["user,item,rating,time"]
    for u in range(num_users):
        items = np.sort(rng.choice(num_items, size=ratings_per_user, replace=False))
        score = 3.0 + item_bias[items] + item_factor[items] @ taste[u] + rating_noise * rng.normal(size=len(items))
        rating = np.clip(np.rint(score), 1, 5).astype(int)
        for i, r in zip(items.tolist(), rating.tolist(), strict=True):
            rows.append(f"u{u + 1},i{i + 1},{r},{1_600_000_000 + int(rng.integers(1_000_000))}")
    atomic_write_text(directory / CSV_FILES["ratings"], "\n".join(rows) + "\n")

    # the links use their own generator, so that the ratings above are the same for both flavours
    links = np.random.default_rng([seed, SIDE_GRAPH_FLAVOURS.index(flavour)])
    edges = ["source,target,weight"]
    for u in range(num_users):
        pool = np.flatnonzero(community == community[u]) if flavour == "signal" else np.arange(num_users)
        pool = pool[pool != u]
        for v in np.sort(links.choice(pool, size=links_per_user, replace=False)).tolist():
            edges.append(f"u{u + 1},u{v + 1},{links.uniform(0.5, 1.0):.3f}")
    atomic_write_text(directory / CSV_FILES["user_edges"], "\n".join(edges) + "\n")
    return directory


def side_graph_split(
    directory: str | Path,
    root: str | Path,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    data_seed: int = 0,
    **fixture: object,
) -> RatingSplit:
    """Write the fixture (``**fixture``: the settings of :func:`write_side_graph_fixture`) into ``directory``
    and load it through the ``csv`` dataset (cache under ``root``): a random split with the side graph as
    ``('user', 'follows', 'user')``."""
    source = write_side_graph_fixture(directory, **fixture)
    dataset = CSVRatings(
        root,
        source_dir=source,
        user_edges=CSV_FILES["user_edges"],
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        seed=data_seed,
        log=False,
    )
    return dataset.rating_split()
