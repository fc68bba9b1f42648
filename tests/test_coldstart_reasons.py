"""Reasons of a fold-in: leave-one-out contributions, named support films only, the sentence people read."""

from __future__ import annotations

import pytest
import torch

from gnnrec.coldstart.fold_in import FoldIn, leave_one_out_support
from gnnrec.coldstart.protocol import coldstart_draw
from gnnrec.models import available_models, create_model

SUPPORT = torch.tensor([[0, 0, 0, 2], [1, 4, 6, 1]])
RATING = torch.tensor([5.0, 1.0, 4.0, 3.0])


def test_leave_one_out_support_builds_one_pseudo_node_per_pair():
    support, rating, owner = leave_one_out_support(SUPPORT, RATING, num_new=3)
    assert owner.tolist() == [0, 1, 2, 0, 0, 0, 2]
    by_node = {}
    for node, movie, value in zip(support[0].tolist(), support[1].tolist(), rating.tolist(), strict=True):
        by_node.setdefault(node, []).append((movie, value))
    assert by_node == {
        0: [(1, 5.0), (4, 1.0), (6, 4.0)],
        2: [(1, 3.0)],
        3: [(4, 1.0), (6, 4.0)],  # row 0 without movie 1
        4: [(1, 5.0), (6, 4.0)],  # without movie 4
        5: [(1, 5.0), (4, 1.0)],  # without movie 6
    }  # node 1 (no support) and node 6 (row 2 without its only film) have no pairs


def _fold(contributions: list[list[float]]) -> FoldIn:
    return FoldIn(
        "users", torch.zeros(3, 8), SUPPORT, True, 1.0, 5.0, rating=RATING, contributions=torch.tensor(contributions)
    )


def test_reasons_name_positive_support_of_the_row_strongest_first():
    contributions = [[0.0] * 8 for _ in range(4)]
    contributions[0][7], contributions[1][7], contributions[2][7] = 0.2, 0.5, 0.1  # row 0's films for movie 7
    contributions[3][7] = 9.0  # row 2's film: never a reason for row 0
    contributions[0][5], contributions[1][5], contributions[2][5] = -0.3, 0.0, 0.4
    fold = _fold(contributions)
    seven, five, zero = fold.reasons(0, [7, 5, 0])
    assert [(r.other, r.rating, round(r.contribution, 3)) for r in seven] == [(4, 1.0, 0.5), (1, 5.0, 0.2)]
    assert [r.other for r in five] == [6] and zero == []
    labels = [f"Film {i}" for i in range(8)]
    assert fold.explain(0, [7, 5, 0], labels) == [
        "because you disliked Film 4 and liked Film 1",
        "because you liked Film 6",
        "high for most people: none of the films you rated raises it",
    ]
    assert fold.explain(1, [7], labels) == ["popular with most people: no rated films yet"]
    left_out = torch.zeros(3, 8)
    left_out[:2] = 1.0  # rows 0 and 1 score otherwise without their features, row 2 the same
    profiled = FoldIn(
        "users", torch.zeros(3, 8), SUPPORT, True, 1.0, 5.0, rating=RATING, contributions=torch.tensor(contributions),
        features_left_out=lambda: left_out,
    )  # fmt: skip
    assert profiled.uses_features.tolist() == [True, True, False]
    assert profiled.explain(1, [7], labels) == ["from your profile alone: no rated films yet"]
    assert profiled.explain(0, [0], labels) == ["from your profile: none of the films you rated raises it"]
    contributions[0][3], contributions[2][3] = 0.3, 0.2
    assert _fold(contributions).explain(0, [3], labels) == ["because you liked Film 1 and Film 6"]
    assert _fold(contributions).explain(2, [7], labels) == ["because you rated Film 1"]
    with pytest.raises(ValueError, match="explain=True"):
        FoldIn("users", torch.zeros(1, 2), SUPPORT[:, :0], True, 1.0, 5.0).reasons(0, [1])


def test_contributions_are_the_score_drops_of_separate_fold_ins(tiny_split):
    """For a model whose new users do not interact (MF), the batched leave-one-out equals separate fold-ins."""
    model = create_model("mf", {}, test_config=True).fit(tiny_split)
    fold = model.fold_in("users", SUPPORT, RATING, num_new=3, explain=True)
    plain = model.fold_in("users", SUPPORT, RATING, num_new=3)
    torch.testing.assert_close(fold.scores, plain.scores)
    for pair in range(SUPPORT.size(1)):
        keep = torch.arange(SUPPORT.size(1)) != pair
        without = model.fold_in("users", SUPPORT[:, keep], RATING[keep], num_new=3)
        row = int(SUPPORT[0, pair])
        torch.testing.assert_close(fold.contributions[pair], plain.scores[row] - without.scores[row])


@pytest.mark.parametrize("name", sorted(available_models()))
def test_every_model_that_folds_in_users_explains_with_its_support_only(tiny_split, name):
    model = create_model(name, {"max_epochs": 2} if name == "gnn" else {}, test_config=True)
    if "users" not in type(model).fold_in_kinds:
        pytest.skip(f"{name} does not fold in users")
    draw = coldstart_draw(tiny_split, "users", seed=0)
    model.fit(draw.split)
    fold = model.fold_in("users", SUPPORT, RATING, num_new=3, explain=True)
    assert fold.contributions.shape == (SUPPORT.size(1), tiny_split.num_movies)
    assert torch.isfinite(fold.contributions).all()
    for row in range(3):
        mine = set(SUPPORT[1, SUPPORT[0] == row].tolist())
        for reasons in fold.reasons(row, fold.top_k(5)[row]):
            assert {r.other for r in reasons} <= mine and len(reasons) <= 2
            assert all(r.contribution > 0 for r in reasons)


@pytest.mark.parametrize("name", ["popularity", "gnn"])
def test_a_list_is_said_to_come_from_the_profile_only_where_the_features_changed_it(tiny_split, name):
    model = create_model(name, {}, test_config=True).fit(tiny_split)
    layout = tiny_split.user_layout
    features = torch.stack([layout.encode(age=25, gender="F", occupation="student"),
                            layout.encode(age=60, gender="M", occupation="engineer")])  # fmt: skip
    fold = model.fold_in("users", num_new=2, features=features, explain=True)
    blind = model.fold_in("users", num_new=2)
    changed = not torch.allclose(fold.rank_scores, blind.rank_scores, rtol=1e-5, atol=1e-6)
    assert fold.uses_features.tolist() == [changed, changed] and changed == (name == "gnn")
    text = fold.explain(0, fold.top_k(3)[0], [f"Film {i}" for i in range(tiny_split.num_movies)])
    expected = "from your profile alone" if changed else "popular with most people"
    assert text == [f"{expected}: no rated films yet"] * 3
    assert model.fold_in("users", num_new=2, features=features).uses_features is None  # only with explain=True
