"""Rating messages on many-level scales (levels, binned, continuous, auto) and the GNN's dataset presets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gnnrec.benchmark import OK, run_benchmark
from gnnrec.data.synthetic import SyntheticDataset
from gnnrec.models.checkpoint import read_checkpoint, write_checkpoint
from gnnrec.models.gnn import GNNConfig, GNNModel
from gnnrec.models.gnn.network import build_network
from gnnrec.models.gnn.presets import (
    FALLBACK_PRESET,
    GENERIC_RANK_NEIGHBOURS,
    MANY_LEVELS_MESSAGES,
    auto_rating_messages,
)
from gnnrec.nn import RatingConv
from gnnrec.nn.rating_messages import RatingMessageMap, level_bins, level_interpolation
from gnnrec.utils import seed_everything

# a YahooMusic-like scale: 71 integer levels within 1..100
MANY_LEVELS = sorted({1, 100, *np.random.default_rng(0).choice(np.arange(2, 100), 69, replace=False).tolist()})


def fast(**overrides) -> GNNConfig:
    return dataclasses.replace(GNNModel.test_config(), **overrides)


@pytest.fixture(scope="module")
def many_level_split(tmp_path_factory):
    """A tiny synthetic split on the 71-level scale (dataset "synthetic": its preset resolves "auto" as generic's)."""
    root = tmp_path_factory.mktemp("many_levels")
    dataset = SyntheticDataset(root, num_users=120, num_movies=60, num_ratings=3000, levels=MANY_LEVELS, log=False)
    return dataset.rating_split()


# ---------------------------------------------------------------------- the level -> channel maps
def test_bins_group_contiguous_equal_width_parts_of_the_scale():
    assert level_bins(torch.tensor([1.0, 2, 3, 4, 5]), 5).tolist() == [0, 1, 2, 3, 4]
    assert level_bins(torch.tensor([1.0, 2, 3, 4, 5]), 2).tolist() == [0, 0, 1, 1, 1]  # 3 is the midpoint
    assert level_bins(torch.tensor([1.0, 5.0]), 5).tolist() == [0, 1]  # two levels: empty bins dropped
    assert level_bins(torch.tensor([1.0, 2, 3, 100]), 10).tolist() == [0, 0, 0, 1]  # more bins than levels
    assert level_bins(torch.tensor([0.5, 1, 1.5]), 1).tolist() == [0, 0, 0]
    bins = level_bins(torch.tensor(MANY_LEVELS, dtype=torch.float), 5)
    assert bins.unique().tolist() == [0, 1, 2, 3, 4] and bool((bins.diff() >= 0).all())
    # the bin of v is floor(5 (v - 1) / 99): 1..20 -> 0, 21..40 -> 1, ..., 80..100 -> 4
    for value, expected in zip(MANY_LEVELS, bins.tolist(), strict=True):
        assert min(4, int(5 * (value - 1) / 99)) == expected


def test_interpolation_weights_sum_to_one_and_hit_the_basis_levels():
    values = torch.tensor(MANY_LEVELS, dtype=torch.float)
    channel, weight = level_interpolation(values, 5)
    assert channel.shape == weight.shape == (71, 2) and bool((channel[:, 1] == channel[:, 0] + 1).all())
    torch.testing.assert_close(weight.sum(-1), torch.ones(71))
    assert bool((weight >= 0).all()) and int(channel.max()) == 4
    position = ((values - 1) / 99 * 4).double()  # the rating in basis units: channel + upper weight
    torch.testing.assert_close((channel[:, 0] + weight[:, 1]).double(), position, atol=1e-6, rtol=0)
    channel, weight = level_interpolation(torch.tensor([1.0, 2.0, 5.0]), 2)  # W_0 h + r~ (W_1 - W_0) h
    assert channel.tolist() == [[0, 1]] * 3 and weight[:, 1].tolist() == [0.0, 0.25, 1.0]


def test_message_map_modes():
    values = torch.tensor([1.0, 2, 3, 4, 5])
    levels, binned = RatingMessageMap(values, "levels"), RatingMessageMap(values, "binned", bins=2)
    continuous = RatingMessageMap(values, "continuous", bins=3)
    index = torch.tensor([4, 0, 2])
    assert levels(index)[0].tolist() == [4, 0, 2] and levels(index)[1] is None and levels.num_channels == 5
    assert binned(index)[0].tolist() == [1, 0, 1] and binned.num_channels == 2
    channel, weight = continuous(index)
    assert channel.tolist() == [[1, 2], [0, 1], [1, 2]] and weight.tolist() == [[0, 1], [1, 0], [1, 0]]
    assert RatingMessageMap(torch.tensor([1.0, 5.0]), "binned", bins=5).num_channels == 2
    with pytest.raises(ValueError, match="rating_index must lie"):
        levels(torch.tensor([5]))
    with pytest.raises(ValueError, match="unknown rating message mode"):
        RatingMessageMap(values, "ordinal")
    with pytest.raises(ValueError, match="at least 2 basis levels"):
        RatingMessageMap(values, "continuous", bins=1)


@pytest.mark.parametrize("accumulate", ["sum", "stack"])
def test_interpolated_messages_match_a_dense_reference(accumulate):
    """Each edge sends w c_ij W_k h_j through both of its channels; degrees count edges, not channels."""
    generator = torch.Generator().manual_seed(0)
    num_src, num_dst, channels = 6, 5, 3
    pairs = torch.randperm(num_src * num_dst, generator=generator)[:14]
    edge_index = torch.stack([pairs // num_dst, pairs % num_dst])
    low = torch.randint(0, channels - 1, (14,), generator=generator)
    share = torch.rand(14, generator=generator)
    channel, weight = torch.stack([low, low + 1], -1), torch.stack([1 - share, share], -1)
    x_src, x_dst = torch.randn(num_src, 3, generator=generator), torch.randn(num_dst, 2, generator=generator)
    conv = RatingConv((3, 2), 6, channels, accumulate=accumulate)
    with torch.no_grad():
        for parameter in conv.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    adjacency = torch.zeros(channels, num_dst, num_src)
    for a in range(2):
        adjacency[channel[:, a], edge_index[1], edge_index[0]] += weight[:, a]
    deg_dst = torch.bincount(edge_index[1], minlength=num_dst).clamp(min=1).float()
    deg_src = torch.bincount(edge_index[0], minlength=num_src).clamp(min=1).float()
    scale = (deg_dst[:, None] * deg_src[None, :]).rsqrt()
    blocks = [(scale * adjacency[k]) @ (x_src @ conv.level_weights()[k]) for k in range(channels)]
    aggregated = torch.cat(blocks, -1) if accumulate == "stack" else sum(blocks)
    expected = x_dst @ conv.root.weight.t() + conv.bias + aggregated
    scattered = conv((x_src, x_dst), edge_index, channel, rating_weight=weight)
    fused = conv((x_src, x_dst), conv.adjacency(edge_index, channel, (num_src, num_dst), weight))
    torch.testing.assert_close(scattered, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="rating_weight has shape"):
        conv((x_src, x_dst), edge_index, channel, rating_weight=weight[:, :1])


# ---------------------------------------------------------------------- the model on a many-level scale
@pytest.mark.parametrize("messages", ["levels", "binned", "continuous"])
def test_each_variant_fits_within_the_scale_and_beats_the_global_mean(many_level_split, messages):
    torch.set_num_threads(1)
    split = many_level_split
    model = GNNModel(fast(rating_messages=messages, max_epochs=100)).fit(split)
    assert model.fit_config.rating_messages == messages and model.preset_name == "synthetic"
    channels = {"levels": 71, "binned": 5, "continuous": 5}[messages]
    assert model.members[0].encoder.convs[0].user_to_movie.num_levels == channels
    scores = model.score_matrix()
    assert float(scores.min()) >= 1.0 and float(scores.max()) <= 100.0
    test = split.test
    error = float((model.predict(test.user, test.movie) - test.rating).pow(2).mean().sqrt())
    mean_error = float((split.train.rating.mean() - test.rating).pow(2).mean().sqrt())
    assert error < 0.95 * mean_error


def test_auto_keeps_levels_on_small_scales_and_picks_the_measured_variant_above():
    for levels in (2, 5, 10):  # ML-100k's five stars, half stars
        assert auto_rating_messages("auto", levels) == "levels"
    assert auto_rating_messages("auto", 11) == auto_rating_messages("auto", 71) == MANY_LEVELS_MESSAGES
    assert auto_rating_messages("continuous", 5) == "continuous"
    assert GNNConfig(rating_messages="auto").resolved("ml-1m", 5)[0].rating_messages == "levels"


def test_auto_on_five_levels_is_the_levels_code_path(tiny_split):
    torch.set_num_threads(1)
    fitted = {}
    for messages in ("auto", "levels"):
        seed_everything(0)
        fitted[messages] = GNNModel(fast(rating_messages=messages, max_epochs=10)).fit(tiny_split)
    assert fitted["auto"].fit_config.rating_messages == "levels"
    assert fitted["auto"].members[0].encoder.rating_map is None
    assert torch.equal(fitted["auto"].score_matrix(clip=False), fitted["levels"].score_matrix(clip=False))


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="rating_messages='bins'"):
        GNNModel(rating_messages="bins")
    for bins in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="rating_bins"):
            GNNModel(rating_bins=bins)
    with pytest.raises(ValueError, match="preset='yahoo'"):
        GNNModel(preset="yahoo")
    with pytest.raises(ValueError, match="not resolved"):
        build_network(3, 4, 0, 0, torch.tensor([1.0, 2.0]), 1.5, GNNConfig(rating_messages="auto"))
    with pytest.raises(ValueError, match="key 'rating_bins' expects int"):
        GNNModel(rating_bins="many")


def test_save_load_round_trips_the_resolved_config(many_level_split, tmp_path):
    torch.set_num_threads(1)
    model = GNNModel(fast(rating_messages="continuous", rating_bins=3, max_epochs=10)).fit(many_level_split)
    loaded = GNNModel.load(model.save(tmp_path / "gnn.pt"), split=many_level_split)
    torch.testing.assert_close(loaded.score_matrix(), model.score_matrix())
    assert loaded.config == model.config and loaded.config.rating_bins == 3
    assert loaded.fit_config == model.fit_config and loaded.preset_name == "synthetic"
    assert loaded.members[0].encoder.rating_map.num_channels == 3


def test_checkpoints_from_before_presets_load_with_per_level_weights(tiny_split, tmp_path):
    torch.set_num_threads(1)
    model = GNNModel(fast(max_epochs=5)).fit(tiny_split)
    path = model.save(tmp_path / "gnn.pt")
    payload = read_checkpoint(path)  # strip what older checkpoints did not have
    for key in ("preset", "fit_config"):
        del payload["state"][key]
    for key in ("rating_messages", "rating_bins", "preset"):
        del payload["config"][key]
    write_checkpoint(path, payload)
    loaded = GNNModel.load(path, split=tiny_split)
    assert loaded.fit_config.rating_messages == "levels" and loaded.preset_name is None
    torch.testing.assert_close(loaded.score_matrix(), model.score_matrix())


def test_checkpoints_from_before_the_item_item_term_load_without_it(tiny_split, tmp_path):
    torch.set_num_threads(1)
    model = GNNModel(fast(max_epochs=5)).fit(tiny_split)
    path = model.save(tmp_path / "gnn.pt")
    payload = read_checkpoint(path)
    del payload["state"]["fit_config"]["rank_neighbours"], payload["config"]["rank_neighbours"]
    write_checkpoint(path, payload)
    loaded = GNNModel.load(path, split=tiny_split)
    assert loaded.fit_config.rank_neighbours == 0 and loaded.config.rank_neighbours is None
    torch.testing.assert_close(loaded.score_matrix(), model.score_matrix())


# ---------------------------------------------------------------------- dataset presets
def test_preset_follows_the_dataset_and_an_override_wins():
    config, name = GNNConfig().resolved("ml-100k", 5)
    assert name == "ml-100k" and config.rating_messages == "levels"
    assert GNNConfig().resolved("ML-100K", 5)[1] == "ml-100k"
    config, name = GNNConfig().resolved("yahoo-music", 71)
    assert name == FALLBACK_PRESET and config.rating_messages == MANY_LEVELS_MESSAGES
    assert GNNConfig().resolved("ml-1m", 5)[0].rating_messages == "levels"
    # explicit values win over the preset; a named preset wins over the dataset
    assert GNNConfig(rating_messages="binned").resolved("ml-100k", 5)[0].rating_messages == "binned"
    config, name = GNNConfig(preset="ml-100k").resolved("yahoo-music", 71)
    assert name == "ml-100k" and config.rating_messages == "levels"
    # resolving leaves the asked-for config alone
    requested = GNNConfig()
    requested.resolved("ml-100k", 5)
    assert requested.rating_messages is requested.dropout is requested.node_dropout is requested.patience is None


def test_ml100k_and_generic_keep_todays_training_defaults_synthetic_drops_the_dropouts():
    for dataset in ("ml-100k", "ml-1m", "yahoo-music"):
        config = GNNConfig().resolved(dataset, 5)[0]
        assert (config.dropout, config.node_dropout, config.patience) == (0.5, 0.5, 60)
    config, name = GNNConfig().resolved("synthetic", 10)
    assert name == "synthetic" and (config.dropout, config.node_dropout, config.patience) == (0.0, 0.0, 200)
    assert config.rating_messages == "levels"
    assert GNNConfig().resolved("synthetic", 71)[0].rating_messages == MANY_LEVELS_MESSAGES
    assert GNNConfig(dropout=0.3).resolved("synthetic", 10)[0].dropout == 0.3  # an explicit value wins
    with pytest.raises(ValueError, match="dropout, node_dropout not resolved"):
        build_network(3, 4, 0, 0, torch.tensor([1.0, 2.0]), 1.5, GNNConfig(rating_messages="levels"))


def test_fit_records_the_preset_and_keeps_the_requested_config(tiny_split):
    torch.set_num_threads(1)
    model = GNNModel(fast(max_epochs=5)).fit(tiny_split)
    assert model.preset_name == "ml-100k" and model.fit_config.rating_messages == "levels"
    assert model.config.rating_messages is None  # what was asked for; a refit resolves it again
    assert model.config.plateau_tolerance is None and model.fit_config.plateau_tolerance == 5e-4  # the preset's
    assert model.config.rank_neighbours is None and model.fit_config.rank_neighbours == 0
    assert model.config.refit_continue_share is None and model.fit_config.refit_continue_share == 0.5
    unresolved = dataclasses.replace(
        model.fit_config, rating_messages=None, plateau_tolerance=None, rank_neighbours=None, refit_continue_share=None
    )
    assert unresolved == model.config


def test_the_item_item_term_comes_from_the_preset_where_the_exact_ranking_loss_can_train_it():
    assert GNNConfig().resolved("douban", 5)[0].rank_neighbours == GENERIC_RANK_NEIGHBOURS > 0
    assert GNNConfig().resolved("ml-100k", 5)[0].rank_neighbours == 0
    assert GNNConfig().resolved("synthetic", 10)[0].rank_neighbours == 0
    assert GNNConfig(rank_neighbours=7).resolved("ml-100k", 5)[0].rank_neighbours == 7  # an explicit value wins
    for inexact in ({"rank_negatives": 2.0}, {"rank_loss": "bpr"}, {"rank_weight": 0.0}):
        assert GNNConfig(**inexact).resolved("douban", 5)[0].rank_neighbours == 0  # the preset's term stays off
        with pytest.raises(ValueError, match="rank_neighbours > 0 needs the exact ranking loss"):
            GNNConfig(rank_neighbours=5, **inexact)  # one the user asked for is refused
    net = build_network(3, 4, 0, 0, torch.tensor([1.0, 2.0]), 1.5, GNNConfig(dropout=0.0, node_dropout=0.0,
                                                                            rank_neighbours=50))  # fmt: skip
    assert net.ranker.neighbour_index.shape == (4, 3)  # a catalogue of 4: every other movie


def test_benchmark_cell_records_the_gnn_preset_and_resolved_config(ml100k_fixture_dir, tmp_path):
    suite = {"name": "t", "splits": ["u1"], "seeds": [0], "test_config": True, "models": ["gnn"]}
    suite["overrides"] = {"gnn": {"max_epochs": 10, "device": "cpu", "threads": 1}}
    run = run_benchmark(
        suite, tmp_path / "run", data_dir=ml100k_fixture_dir, progress=False, log=lambda line: None,
        tensorboard=False, plots=False, save_models=True,
    )  # fmt: skip
    (cell,) = run.cells
    assert cell["status"] == OK and cell["preset_name"] == "ml-100k"
    assert cell["fit_config"]["rating_messages"] == "levels" and cell["fit_config"]["preset"] == "auto"
    assert cell["refit_fit"]["config"]["rating_messages"] is None  # the refit resolved the preset again
    loaded = GNNModel.load(tmp_path / "run" / cell["checkpoint"])
    assert loaded.preset_name == "ml-100k" and loaded.fit_config.rating_messages == "levels"
