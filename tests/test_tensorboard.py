"""TensorBoard helpers: projector metadata, hparams, embedding checks."""

from __future__ import annotations

import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from gnnrec.tensorboard import (
    flatten_hparams,
    log_embeddings,
    log_hparams,
    movie_metadata,
    read_projector_metadata,
    read_projector_tensor,
    tensorboard_command,
    user_metadata,
)


class _Embedded:
    """A stand-in model exposing ``embeddings()`` with chosen row counts."""

    name = "stub"

    def __init__(self, num_users: int, num_movies: int, dim: int = 3) -> None:
        generator = torch.Generator().manual_seed(0)
        self.tables = {
            "user": torch.randn(num_users, dim, generator=generator),
            "movie": torch.randn(num_movies, dim, generator=generator),
        }

    def embeddings(self) -> dict[str, torch.Tensor]:
        return self.tables


def _events(log_dir) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return events


def test_projector_metadata_has_one_row_per_embedding_row(tiny_split, tmp_path):
    graph = tiny_split.graph
    model = _Embedded(tiny_split.num_users, tiny_split.num_movies)
    with SummaryWriter(tmp_path) as writer:
        assert log_embeddings(writer, model, graph, step=7) == ["user", "movie"]

    header, rows = read_projector_metadata(tmp_path, "movie")
    assert header == ["title", "year", "genres", "raw_id"]
    assert len(rows) == tiny_split.num_movies == read_projector_tensor(tmp_path, "movie").size(0)
    assert all(len(row) == len(header) for row in rows)
    genre_names = graph.genre_names
    for index in (0, tiny_split.num_movies - 1):
        title, year, genres, raw_id = rows[index]
        assert title == graph["movie"].title[index] and raw_id == str(int(graph["movie"].raw_id[index]))
        flags = graph["movie"].genre[index].nonzero().view(-1).tolist()
        assert genres == ("|".join(genre_names[j] for j in flags) or "unknown")
        assert year == (str(int(graph["movie"].year[index])) if graph["movie"].year[index] > 0 else "unknown")
    torch.testing.assert_close(read_projector_tensor(tmp_path, "movie"), model.tables["movie"], rtol=1e-4, atol=1e-4)

    header, rows = read_projector_metadata(tmp_path, "user")
    assert header == ["raw_id", "age", "gender", "occupation"]
    assert len(rows) == tiny_split.num_users == read_projector_tensor(tmp_path, "user").size(0)
    assert rows[3] == [
        str(int(graph["user"].raw_id[3])),
        str(int(graph["user"].age[3])),
        graph["user"].gender[3],
        graph["user"].occupation[3],
    ]
    assert {"embeddings/user", "embeddings/movie"} <= set(_events(tmp_path).Tags()["histograms"])


def test_metadata_helpers_cover_every_node(tiny_split):
    assert len(movie_metadata(tiny_split.graph)[1]) == tiny_split.num_movies
    assert len(user_metadata(tiny_split.graph)[1]) == tiny_split.num_users


def test_embeddings_with_wrong_row_count_are_refused(tiny_split, tmp_path):
    model = _Embedded(tiny_split.num_users, tiny_split.num_movies - 1)
    with SummaryWriter(tmp_path) as writer, pytest.raises(ValueError, match="one row per movie"):
        log_embeddings(writer, model, tiny_split.graph)


def test_model_without_embeddings_logs_nothing(tiny_split, tmp_path):
    with SummaryWriter(tmp_path) as writer:
        assert log_embeddings(writer, object(), tiny_split.graph) == []
    with pytest.raises(FileNotFoundError):
        read_projector_metadata(tmp_path, "movie")


def test_hparams_row_and_metric_scalars(tmp_path):
    config = {"lr": 0.01, "hidden_sizes": (16, 16), "reg": None, "ordinal": True, "nested": {"a": 1}}
    with SummaryWriter(tmp_path) as writer:
        logged = log_hparams(writer, config, {"rmse": 0.91, "ndcg": math.nan, "mae": None})
    assert logged == {"hparam/rmse": 0.91}
    events = _events(tmp_path)
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
    assert [s.value for s in events.Scalars("hparam/rmse")] == [pytest.approx(0.91)]


def test_flatten_hparams_gives_plugin_types():
    flat = flatten_hparams({"a": (1, 2), "b": None, "c": {"d": 2.5, "e": "x"}, "f": math.inf})
    assert flat == {"a": "[1, 2]", "b": "none", "c.d": 2.5, "c.e": "x", "f": "inf"}


def test_tensorboard_command_quotes_the_path(tmp_path):
    assert tensorboard_command(tmp_path / "a b") == f"tensorboard --logdir '{tmp_path / 'a b'}'"


@pytest.mark.parametrize("model_name", ["gnn"])
def test_real_model_embeddings_reach_the_projector(model_name, tiny_split, tmp_path):
    from gnnrec.models import available_models, create_model

    if model_name not in available_models():
        pytest.skip(f"{model_name} is not registered")
    model = create_model(model_name, {"max_epochs": 2}, test_config=True).fit(tiny_split)
    with SummaryWriter(tmp_path) as writer:
        assert set(log_embeddings(writer, model, tiny_split.graph)) == {"user", "movie"}
    assert len(read_projector_metadata(tmp_path, "movie")[1]) == read_projector_tensor(tmp_path, "movie").size(0)
    assert len(read_projector_metadata(tmp_path, "user")[1]) == read_projector_tensor(tmp_path, "user").size(0)
