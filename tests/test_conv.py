"""RatingConv / BipartiteRatingConv against a dense reference, invariances and gradients."""

from __future__ import annotations

import pytest
import torch

from gnnrec.nn import BipartiteRatingConv, RatingConv

NUM_SRC, NUM_DST, NUM_EDGES, NUM_LEVELS = 6, 5, 14, 4


def tiny_graph(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    pairs = torch.randperm(NUM_SRC * NUM_DST, generator=generator)[:NUM_EDGES]  # no duplicate edges
    edge_index = torch.stack([pairs // NUM_DST, pairs % NUM_DST])
    rating_index = torch.randint(0, NUM_LEVELS, (NUM_EDGES,), generator=generator)
    x_src = torch.randn(NUM_SRC, 3, generator=generator)
    x_dst = torch.randn(NUM_DST, 2, generator=generator)
    return edge_index, rating_index, x_src, x_dst


def randomise(conv: RatingConv, seed: int = 1) -> RatingConv:
    """Give every parameter (also the initially zero bias) random values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in conv.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return conv


def dense_reference(conv: RatingConv, x_src, x_dst, edge_index, rating_index) -> torch.Tensor:
    """out = x_dst W0 + b + sum_r (C ⊙ A_r) m_r(x_src), with dense per-level adjacency matrices A_r."""
    num_src, num_dst = x_src.size(0), x_dst.size(0)
    adjacency = torch.zeros(NUM_LEVELS, num_dst, num_src)
    adjacency[rating_index, edge_index[1], edge_index[0]] = 1.0
    deg_dst = adjacency.sum((0, 2)).clamp(min=1)
    deg_src = adjacency.sum((0, 1)).clamp(min=1)
    scale = (deg_dst[:, None] * deg_src[None, :]).rsqrt()
    out = x_dst @ conv.root.weight.t() + conv.bias
    blocks = []
    for level in range(NUM_LEVELS):
        if conv.message_mode == "levels":
            weight = sum(conv.weight[: level + 1]) if conv.ordinal else conv.weight[level]
            messages = x_src @ weight
        else:
            messages = x_src @ conv.weight[0]
        blocks.append((scale * adjacency[level]) @ messages)
    if conv.accumulate == "stack":
        return out + torch.cat(blocks, dim=-1)
    return out + sum(blocks)


@pytest.mark.parametrize(
    "message, ordinal, accumulate",
    [
        ("levels", True, "sum"),
        ("levels", False, "sum"),
        ("plain", True, "sum"),
        ("levels", True, "stack"),
        ("levels", False, "stack"),
    ],
)
def test_conv_matches_dense_reference_on_both_paths(message, ordinal, accumulate):
    edge_index, rating_index, x_src, x_dst = tiny_graph()
    out_channels = 8 if accumulate == "stack" else 7
    conv = RatingConv((3, 2), out_channels, NUM_LEVELS, message=message, ordinal=ordinal, accumulate=accumulate)
    conv = randomise(conv)
    expected = dense_reference(conv, x_src, x_dst, edge_index, rating_index)
    scattered = conv((x_src, x_dst), edge_index, rating_index)
    adjacency = conv.adjacency(edge_index, rating_index, (NUM_SRC, NUM_DST))
    fused = conv((x_src, x_dst), adjacency)
    torch.testing.assert_close(scattered, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("message, accumulate", [("levels", "sum"), ("levels", "stack"), ("plain", "sum")])
def test_node_ids_act_as_one_hot_features(message, accumulate):
    edge_index, rating_index, _, _ = tiny_graph()
    conv = randomise(RatingConv((NUM_SRC, NUM_DST), 8, NUM_LEVELS, message=message, accumulate=accumulate))
    src_ids, dst_ids = torch.arange(NUM_SRC), torch.arange(NUM_DST)
    by_id = conv((src_ids, dst_ids), edge_index, rating_index)
    one_hot = conv((torch.eye(NUM_SRC), torch.eye(NUM_DST)), edge_index, rating_index)
    torch.testing.assert_close(by_id, one_hot, rtol=1e-5, atol=1e-5)


def test_node_dropout_drops_whole_sources_only_in_training():
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 0, 0]])
    conv = RatingConv(4, 2, 1, root_weight=False, bias=False, node_dropout=0.5)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.eye(4)
    conv.eval()
    # symmetric normalisation: 4 sources of degree 1 into a target of degree 4 weigh 1/2 each
    assert conv(x, edge_index, torch.zeros(4, dtype=torch.long))[0].tolist() == [2.0, 2.0]
    conv.train()
    torch.manual_seed(0)
    with torch.no_grad():
        outs = torch.stack([conv(x, edge_index, torch.zeros(4, dtype=torch.long))[0, 0] for _ in range(200)])
    assert set(outs.tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}  # whole sources of weight 1/2, scaled by 2
    assert abs(float(outs.mean()) - 2.0) < 0.25


def test_ordinal_sharing_makes_level_weights_cumulative():
    conv = randomise(RatingConv(3, 4, NUM_LEVELS, ordinal=True))
    torch.testing.assert_close(conv.level_weights()[2], conv.weight[0] + conv.weight[1] + conv.weight[2])


def test_rating_changes_the_message_unless_plain():
    edge_index, rating_index, x_src, x_dst = tiny_graph()
    shifted = (rating_index + 1) % NUM_LEVELS
    for ordinal in (True, False):
        conv = randomise(RatingConv((3, 2), 5, NUM_LEVELS, ordinal=ordinal))
        assert not torch.allclose(
            conv((x_src, x_dst), edge_index, rating_index), conv((x_src, x_dst), edge_index, shifted)
        )
    plain = randomise(RatingConv((3, 2), 5, NUM_LEVELS, message="plain"))
    torch.testing.assert_close(
        plain((x_src, x_dst), edge_index, rating_index), plain((x_src, x_dst), edge_index, shifted)
    )


@pytest.mark.parametrize("fused", [False, True])
def test_permuting_nodes_and_edges_permutes_the_output(fused):
    edge_index, rating_index, x_src, x_dst = tiny_graph()
    conv = randomise(RatingConv((3, 2), 5, NUM_LEVELS))
    src_perm, dst_perm, edge_perm = torch.randperm(NUM_SRC), torch.randperm(NUM_DST), torch.randperm(NUM_EDGES)
    # node new_i holds old node perm[new_i], so old node i is renamed inverse[i]
    src_inverse, dst_inverse = torch.argsort(src_perm), torch.argsort(dst_perm)
    permuted_edges = torch.stack([src_inverse[edge_index[0]], dst_inverse[edge_index[1]]])[:, edge_perm]
    permuted_ratings = rating_index[edge_perm]

    def run(xs, xd, edges, ratings):
        if fused:
            return conv((xs, xd), conv.adjacency(edges, ratings, (NUM_SRC, NUM_DST)))
        return conv((xs, xd), edges, ratings)

    original = run(x_src, x_dst, edge_index, rating_index)
    permuted = run(x_src[src_perm], x_dst[dst_perm], permuted_edges, permuted_ratings)
    torch.testing.assert_close(permuted, original[dst_perm], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("message", ["levels", "plain"])
def test_gradients_reach_every_parameter(message):
    edge_index, rating_index, x_src, x_dst = tiny_graph()
    conv = BipartiteRatingConv(3, 3, 4, NUM_LEVELS, message=message, act="tanh")
    x_user, x_movie = torch.randn(NUM_SRC, 3), torch.randn(NUM_DST, 3)
    for edges in (edge_index, conv.adjacency(edge_index, rating_index, NUM_SRC, NUM_DST)):
        conv.zero_grad()
        user, movie = conv(x_user, x_movie, edges, rating_index)
        (user.pow(2).sum() + movie.pow(2).sum()).backward()
        for name, parameter in conv.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_bipartite_conv_keeps_separate_parameters_per_direction():
    edge_index, rating_index, _, _ = tiny_graph()
    conv = BipartiteRatingConv(3, 3, 4, NUM_LEVELS)
    assert conv.user_to_movie.weight is not conv.movie_to_user.weight
    x_user, x_movie = torch.randn(NUM_SRC, 3), torch.randn(NUM_DST, 3)
    user, movie = conv(x_user, x_movie, edge_index, rating_index)
    with torch.no_grad():
        conv.user_to_movie.weight.mul_(3.0)
    user_after, movie_after = conv(x_user, x_movie, edge_index, rating_index)
    torch.testing.assert_close(user_after, user)  # users only hear from movies
    assert not torch.allclose(movie_after, movie)


def test_bipartite_conv_is_the_two_directed_convs():
    edge_index, rating_index, _, _ = tiny_graph()
    conv = BipartiteRatingConv(3, 3, 4, NUM_LEVELS, act="identity")
    x_user, x_movie = torch.randn(NUM_SRC, 3), torch.randn(NUM_DST, 3)
    user, movie = conv(x_user, x_movie, edge_index, rating_index)
    torch.testing.assert_close(movie, conv.user_to_movie((x_user, x_movie), edge_index, rating_index))
    torch.testing.assert_close(user, conv.movie_to_user((x_movie, x_user), edge_index.flip(0), rating_index))


def test_reset_parameters_restores_the_initial_distribution():
    conv = randomise(RatingConv(3, 4, NUM_LEVELS))
    conv.reset_parameters()
    assert torch.equal(conv.bias, torch.zeros_like(conv.bias))
    # ordinal increments start small: |T_s| <= bound / R for s > 0, |T_0| <= bound
    bound = (6.0 / (3 + 4)) ** 0.5
    assert float(conv.weight[1:].abs().max()) <= bound / NUM_LEVELS and float(conv.weight[0].abs().max()) <= bound


def test_isolated_target_gets_root_and_bias_only():
    edge_index = torch.tensor([[0, 1], [0, 0]])
    conv = randomise(RatingConv(2, 3, 2))
    x_src, x_dst = torch.randn(2, 2), torch.randn(2, 2)
    out = conv((x_src, x_dst), edge_index, torch.tensor([0, 1]))
    torch.testing.assert_close(out[1], conv.root(x_dst[1]) + conv.bias)


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="message mode"):
        RatingConv(3, 4, NUM_LEVELS, message="attention")
    with pytest.raises(ValueError, match="activation"):
        BipartiteRatingConv(3, 3, 4, NUM_LEVELS, act="swish")
    with pytest.raises(ValueError, match="divisible by the number of levels"):
        RatingConv(3, 6, NUM_LEVELS, accumulate="stack")
    with pytest.raises(ValueError, match="node_dropout"):
        RatingConv(3, 4, NUM_LEVELS, node_dropout=1.0)
    edge_index, rating_index, x_src, x_dst = tiny_graph()
    conv = RatingConv((3, 2), 4, NUM_LEVELS)
    with pytest.raises(ValueError, match="entries for"):
        conv((x_src, x_dst), edge_index, rating_index[:-1])
    with pytest.raises(ValueError, match="rating_index must lie in"):
        conv((x_src, x_dst), edge_index, rating_index + NUM_LEVELS)
    with pytest.raises(ValueError, match="needs the rating_index"):
        conv((x_src, x_dst), edge_index)
    adjacency = RatingConv((3, 2), 4, NUM_LEVELS, message="plain").adjacency(edge_index, None, (NUM_SRC, NUM_DST))
    with pytest.raises(ValueError, match="columns"):
        conv((x_src, x_dst), adjacency)
