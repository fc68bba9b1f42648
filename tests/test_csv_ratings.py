"""The generic CSV dataset: what it builds from good files and the settings the conformance test does not vary.

Bad-input cases (each naming file and line) are in test_dataset_conformance.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gnnrec.data import FOLLOWS, RATES, SIMILAR, CSVRatings, DataFormatError
from gnnrec.testing import CSV_FILES, write_csv_fixture


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory) -> Path:
    return write_csv_fixture(tmp_path_factory.mktemp("csv"), num_users=12, num_items=15, ratings_per_user=6)


def _load(source: Path, root: Path, **settings) -> CSVRatings:
    return CSVRatings(root, source_dir=source, log=False, **settings)


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_features_side_graphs_and_cold_start_users(csv_dir, tmp_path):
    data = _load(csv_dir, tmp_path, **CSV_FILES)[0]
    users = (csv_dir / "users.csv").read_text().splitlines()[1:]
    assert "raw_id" not in data["user"] and data["user"].ids == [
        row.split(",")[0] for row in users
    ]  # users.csv order, unrated users included
    assert data["user"].num_nodes == 12 and data["movie"].num_nodes == 15
    assert data["user"].feature_names == ["age", "country=br", "country=fr", "country=jp"]
    x = data["user"].x
    assert x[:, 0].min() == 0 and x[:, 0].max() == 1 and torch.all(x[:, 1:].sum(1) == 1)
    assert data["user"].x[0, 2] == 1  # u1 is from "fr"
    assert data["movie"].feature_names == ["year", "genre=comedy", "genre=drama"]
    rated = torch.cat([data[RATES][f"{p}_edge_label_index"][0] for p in ("train", "val", "test")]).unique()
    assert set(rated.tolist()) == set(range(10))  # the last two users rate nothing
    follows, similar = data[FOLLOWS], data[SIMILAR]
    assert follows.edge_index.shape == (2, 12) and similar.edge_index.shape == (2, 15)
    assert follows.edge_index[:, 0].tolist() == [0, 1] and 0.1 <= float(follows.edge_weight.min())
    assert set(data.rating_levels.tolist()) <= {v / 2 for v in range(1, 11)}
    times = data[RATES].train_edge_time
    assert times.dtype == torch.long and int(times.min()) >= 1_600_000_000


def test_ratings_only_nodes_in_order_of_appearance(tmp_path):
    source = _write(tmp_path / "src", {"ratings.csv": "user,item,rating\nbob,x,3\nann,y,1\nbob,y,5\nann,z,2\n"})
    data = _load(source, tmp_path / "root", test_fraction=0.25, val_fraction=0.0)[0]
    assert data["user"].ids == ["bob", "ann"] and data["movie"].ids == ["x", "y", "z"]
    assert data["user"].x.tolist() == [[1.0], [1.0]] and data["user"].feature_names == ["constant"]
    assert data.rating_levels.tolist() == [1, 2, 3, 5]  # inferred from the data
    assert data[RATES].train_edge_time.eq(0).all()  # no time column
    assert FOLLOWS not in data.edge_types


def test_no_header_other_separator_and_named_columns(tmp_path):
    rows = "1;10;4.5\n2;10;1\n1;11;2\n2;12;3.5\n3;11;5\n"
    plain = _load(_write(tmp_path / "a", {"r.csv": rows}), tmp_path / "ra", ratings="r.csv", sep=";", header=False)
    assert plain[0]["user"].ids == ["1", "2", "3"] and plain[0]["user"].raw_id.tolist() == [1, 2, 3]
    named_rows = "stamp;score;who;what\n" + "".join(
        f"7;{r.split(';')[2]};{r.split(';')[0]};{r.split(';')[1]}\n" for r in rows.splitlines()
    )
    named = _load(
        _write(tmp_path / "b", {"r.csv": named_rows}),
        tmp_path / "rb",
        ratings="r.csv",
        sep=";",
        columns=("who", "what", "score", "stamp"),
    )
    split_a, split_b = plain.rating_split(), named.rating_split()
    assert torch.equal(split_a.known.rating.sort().values, split_b.known.rating.sort().values)
    assert torch.equal(split_a.test.edge_label_index, split_b.test.edge_label_index)
    assert int(named[0][RATES].train_edge_time[0]) == 7


def test_declared_rating_levels(tmp_path):
    source = _write(tmp_path / "src", {"ratings.csv": "user,item,rating\na,x,1\na,y,3\nb,x,2\nb,z,3\nc,y,1\n"})
    data = _load(source, tmp_path / "ok", rating_levels=[1, 2, 3, 4])[0]
    assert data.rating_levels.tolist() == [1, 2, 3, 4]  # an unused declared level is kept
    with pytest.raises(DataFormatError, match=r"ratings.csv, line 3: rating 3 is not one of the declared levels"):
        _load(source, tmp_path / "bad", rating_levels=[1, 2])


def test_bad_settings(csv_dir, tmp_path):
    with pytest.raises(ValueError, match="test_fraction"):
        _load(csv_dir, tmp_path, test_fraction=0.0)
    with pytest.raises(ValueError, match="columns must name"):
        _load(csv_dir, tmp_path, columns=("user", "item"))
    with pytest.raises(DataFormatError, match="GNNREC_CSV_DIR"):
        CSVRatings(tmp_path / "root", log=False)


def test_test_split_is_seeded(csv_dir, tmp_path):
    a = _load(csv_dir, tmp_path / "a", seed=5).rating_split()
    b = _load(csv_dir, tmp_path / "b", seed=5).rating_split()
    c = _load(csv_dir, tmp_path / "c", seed=6).rating_split()
    assert torch.equal(a.test.edge_label_index, b.test.edge_label_index)
    assert not torch.equal(a.test.edge_label_index, c.test.edge_label_index)
    assert len(a.test) == round(0.1 * 60)


def test_a_model_fits_on_own_data(csv_dir, tmp_path):
    from gnnrec.evaluation import evaluate
    from gnnrec.models import create_model

    split = _load(csv_dir, tmp_path, **CSV_FILES).rating_split()
    model = create_model("gnn", test_config=True).fit(split)
    prediction = model.predict(split.test.user, split.test.movie)
    assert prediction.shape == split.test.rating.shape and torch.isfinite(prediction).all()
    assert evaluate(model, split, part="test", metrics=["rmse"]).metrics["rmse"] > 0
