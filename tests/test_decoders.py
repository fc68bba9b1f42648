"""Rating decoders: pairwise forward and the all-pairs scorer agree; shapes; reset."""

from __future__ import annotations

import math

import pytest
import torch

from gnnrec.nn import BilinearDecoder, DotDecoder, MLPDecoder

LEVELS = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])


def make(name: str):
    torch.manual_seed(0)
    if name == "bilinear":
        return BilinearDecoder(6, LEVELS, num_bases=3)
    if name == "mlp":
        return MLPDecoder(6, LEVELS, dropout=0.3)
    return DotDecoder(6, global_mean=3.5)


@pytest.mark.parametrize("name", ["bilinear", "mlp", "dot"])
def test_forward_matches_all_pairs_scorer(name):
    decoder = make(name).eval()
    for parameter in decoder.parameters():  # non-zero biases so they are part of the check
        torch.nn.init.normal_(parameter)
    z_user, z_movie = torch.randn(4, 6), torch.randn(7, 6)
    user = torch.arange(4).repeat_interleave(7)
    movie = torch.arange(7).repeat(4)
    logits, rating = decoder(z_user, z_movie, user, movie)
    assert rating.shape == (28,)
    assert (logits is None) == (name == "dot")
    if logits is not None:
        assert logits.shape == (28, 5)
        assert float(rating.min()) >= 1.0 and float(rating.max()) <= 5.0
    all_pairs = decoder.score_all(z_user, z_movie)
    torch.testing.assert_close(all_pairs, rating.view(4, 7), rtol=1e-5, atol=1e-5)
    # small chunks give the same numbers as one block
    torch.testing.assert_close(decoder.score_all(z_user, z_movie, chunk_pairs=1), all_pairs, rtol=1e-5, atol=1e-5)
    assert decoder.score_all(z_user[:0], z_movie).shape == (0, 7)


@pytest.mark.parametrize("name", ["bilinear", "mlp", "dot"])
def test_reset_parameters_zeroes_the_biases(name):
    decoder = make(name)
    for parameter in decoder.parameters():
        torch.nn.init.normal_(parameter)
    decoder.reset_parameters()
    assert float(decoder.user_bias.weight.abs().sum()) == 0.0 and float(decoder.movie_bias.bias.abs().sum()) == 0.0


def test_dot_decoder_starts_at_the_global_mean():
    decoder = DotDecoder(4, global_mean=3.5)
    _, rating = decoder(torch.zeros(2, 4), torch.zeros(3, 4), torch.tensor([0, 1]), torch.tensor([2, 0]))
    torch.testing.assert_close(rating, torch.full((2,), 3.5))


def test_multinomial_ranking_loss_masks_message_edges_and_batches_by_user():
    from gnnrec.nn.ranking import RankingHead, ranking_loss

    torch.manual_seed(0)
    head = RankingHead(4, 6, rank_dim=3)
    with torch.no_grad():
        head.bias.normal_()
    z_user, z_movie = torch.randn(3, 4), torch.randn(6, 4)
    scores = head(z_user, z_movie)
    assert scores.shape == (3, 6)
    targets = torch.tensor([[0, 0, 2], [1, 4, 5]])
    weight = torch.tensor([1.0, 2.0, 1.0])
    masked = torch.tensor([[0, 1], [3, 2]])  # user 0 read movie 3, user 1 read movie 2
    loss = ranking_loss(scores, torch.arange(3), 3, *targets, weight, *masked)
    by_hand = 0.0
    for (u, m), w in zip(targets.t().tolist(), weight.tolist(), strict=True):
        allowed = [j for j in range(6) if (u, j) not in {(0, 3), (1, 2)}]
        by_hand -= w * (scores[u, m] - scores[u, allowed].logsumexp(0))
    torch.testing.assert_close(loss, by_hand / 3)
    # a block of users (a mini-batch) sees only its own targets and masks
    block = ranking_loss(scores[[2]], torch.tensor([2]), 3, *targets, weight, *masked)
    torch.testing.assert_close(block, -(scores[2, 5] - scores[2].logsumexp(0)))


def test_sampled_multinomial_loss_is_the_exact_one_with_every_movie_and_estimates_its_normaliser():
    from gnnrec.nn.ranking import RankingHead, multinomial_loss, ranking_loss

    torch.manual_seed(0)
    head = RankingHead(4, 8, rank_dim=3)
    with torch.no_grad():
        head.bias.normal_()
    z_user, z_movie = torch.randn(3, 4, requires_grad=True), torch.randn(8, 4)
    targets = torch.tensor([[0, 0, 2, 1], [1, 4, 5, 7]])
    weight = torch.tensor([1.0, 2.0, 1.0, 0.5])
    other = torch.tensor([[0, 1, 2], [3, 2, 4]])
    rows = torch.arange(3)
    exact = ranking_loss(head(z_user, z_movie), rows, 3, *targets, weight, *other)
    every = multinomial_loss(head, z_user, z_movie, rows, 3, *targets, weight, *other, torch.randperm(8))
    torch.testing.assert_close(every, exact)
    (grad_every,) = torch.autograd.grad(every, z_user)
    (grad_exact,) = torch.autograd.grad(exact, z_user)
    torch.testing.assert_close(grad_every, grad_exact)
    # a block sees only its own users' targets and edges
    block = multinomial_loss(head, z_user[[2]], z_movie, torch.tensor([2]), 3, *targets, weight, *other,
                                     torch.arange(8))  # fmt: skip
    torch.testing.assert_close(block, ranking_loss(head(z_user[[2]], z_movie), torch.tensor([2]), 3, *targets,
                                                   weight, *other))  # fmt: skip
    # with half the movies sampled, exp(-loss)-style normalisers average to the exact one over the draws
    with torch.no_grad():
        scores = head(z_user, z_movie)
        user = 0  # targets 1 and 4, other edge 3
        free = [j for j in range(8) if j not in (1, 3, 4)]
        exact_z = scores[user, [1, 4]].exp().sum() + scores[user, free].exp().sum()
        draws = [torch.randperm(8)[:4] for _ in range(4000)]
        estimates = []
        for negatives in draws:
            sampled = [int(j) for j in negatives if int(j) in free]
            estimates.append(scores[user, [1, 4]].exp().sum() + 2.0 * scores[user, sampled].exp().sum())
        assert float(torch.stack(estimates).mean()) == pytest.approx(float(exact_z), rel=0.02)
        one = multinomial_loss(head, z_user[[0]], z_movie, torch.tensor([0]), 3, *targets, weight, *other,
                                       draws[0])  # fmt: skip
        log_z = estimates[0].log()
        by_hand = -(1.0 * (scores[0, 1] - log_z) + 2.0 * (scores[0, 4] - log_z))
        torch.testing.assert_close(one, by_hand)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("block_cells", [2**19, 16, 8])  # one block; blocks of 2 rows; of 1 row
@pytest.mark.parametrize("neighbours", [0, 3])  # without and with the item-item term
def test_the_blocked_multinomial_loss_equals_the_composed_one(dtype, block_cells, neighbours, monkeypatch):
    from gnnrec.nn import ranking
    from gnnrec.nn.ranking import RankingHead, block_pairs, multinomial_loss, ranking_loss

    monkeypatch.setattr(ranking, "LOSS_BLOCK_CELLS", block_cells)
    monkeypatch.setattr(ranking, "LOSS_WHOLE_CELLS", 0)
    torch.manual_seed(0)
    head = RankingHead(4, 8, rank_dim=3, neighbours=neighbours).to(dtype)
    with torch.no_grad():
        head.bias.normal_()
        if neighbours:
            head.neighbour_weight.normal_()
            head.neighbour_index.copy_(torch.stack([torch.randperm(8)[:neighbours] for _ in range(8)]))
    z_user = torch.randn(5, 4, dtype=dtype, requires_grad=True)
    z_movie = torch.randn(8, 4, dtype=dtype, requires_grad=True)
    targets = torch.tensor([[0, 0, 2, 1, 4], [1, 4, 5, 7, 0]])
    weight = torch.tensor([1.0, 2.0, 1.0, 0.5, 1.0])
    masked = torch.tensor([[0, 1, 2, 4, 4], [3, 2, 4, 1, 2]])
    for rows in (torch.arange(5), torch.tensor([1, 4])):  # every user; a block (user 3 has no target)
        low_rank = head(z_user[rows], z_movie)
        composed = ranking_loss(low_rank, rows, 5, *targets, weight, *masked)
        if neighbours:  # plus the loss of the full scores, the low-rank ones held constant
            item_row, item_movie, value = head.item_item(*block_pairs(rows, 5, *masked), 1.5)
            full = low_rank.detach().index_put((item_row, item_movie), value, accumulate=True)
            composed = composed + ranking_loss(full, rows, 5, *targets, weight, *masked)
        fused = multinomial_loss(head, z_user[rows], z_movie, rows, 5, *targets, weight, *masked, history_scale=1.5)
        torch.testing.assert_close(fused, composed)
        inputs = (z_user, z_movie, *head.parameters())
        for a, b in zip(torch.autograd.grad(3.0 * fused, inputs), torch.autograd.grad(3.0 * composed, inputs),
                        strict=True):  # fmt: skip
            torch.testing.assert_close(a, b)


def test_the_blocked_multinomial_loss_ignores_a_user_without_a_free_movie():
    """A user whose every movie is masked (and who has no target) adds nothing: no NaN in loss or gradients."""
    from gnnrec.nn.ranking import RankingHead, multinomial_loss, ranking_loss

    torch.manual_seed(0)
    head = RankingHead(4, 3, rank_dim=3)
    z_user = torch.randn(3, 4, requires_grad=True)
    z_movie = torch.randn(3, 4, requires_grad=True)
    targets, weight = torch.tensor([[0, 1], [2, 0]]), torch.tensor([1.0, 2.0])
    masked = torch.tensor([[0, 2, 2, 2], [1, 0, 1, 2]])  # user 2 has rated every movie
    fused = multinomial_loss(head, z_user, z_movie, torch.arange(3), 3, *targets, weight, *masked)
    without = torch.tensor([0, 1])
    composed = ranking_loss(head(z_user[without], z_movie), without, 3, *targets, weight, *masked)
    torch.testing.assert_close(3 * fused, 2 * composed)
    inputs = (z_user, z_movie, *head.parameters())
    for a, b in zip(torch.autograd.grad(3 * fused, inputs), torch.autograd.grad(2 * composed, inputs), strict=True):
        assert bool(torch.isfinite(a).all())
        torch.testing.assert_close(a, b)


def test_bpr_ranking_loss_and_gradient_scaling():
    from gnnrec.nn.ranking import ranking_loss, scale_gradient

    scores = torch.zeros(2, 4, requires_grad=True)
    loss = ranking_loss(scores, torch.arange(2), 2, torch.tensor([0]), torch.tensor([1]), torch.ones(1),
                        torch.tensor([1]), torch.tensor([0]), loss="bpr")  # fmt: skip
    assert float(loss) == pytest.approx(math.log(2.0) / 2)  # equal scores: -log sigmoid(0), over 2 rows
    with pytest.raises(ValueError, match="ranking loss"):
        ranking_loss(scores, torch.arange(2), 2, *torch.zeros(2, 1).long(), torch.ones(1), *torch.zeros(2, 0).long(),
                     loss="listnet")  # fmt: skip
    x = torch.ones(3, requires_grad=True)
    (scale_gradient(x, 0.1) * 2).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3,), 0.2))


def test_co_rated_neighbours_rank_movies_by_shared_users():
    from gnnrec.nn.ranking import co_rated_neighbours

    # movie 0 shares users 0, 1 with movie 1 and user 0 with movie 2; movie 3 is rated by nobody else's users
    user = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3])
    movie = torch.tensor([0, 1, 2, 0, 1, 2, 4, 3])
    index = co_rated_neighbours(user, movie, 4, 5, 2)
    assert index.tolist() == [[1, 2], [0, 2], [0, 1], [0, 1], [2, 0]]  # counts first, then the lower index
    assert bool((index != torch.arange(5).unsqueeze(1)).all())  # never a movie's own neighbour
    with pytest.raises(ValueError, match="neighbours per movie"):
        co_rated_neighbours(user, movie, 4, 5, 5)
