"""MovieLens-100k loading on tiny fixture datasets: graph layout, splits, caching and every bad-input case."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import gnnrec.data.movielens as movielens_module
from gnnrec.data import RATED_BY, RATES, DataFormatError, MovieLens100K, RatingSplit, load_split
from gnnrec.data.partition import carve_validation, random_split


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _load(source: Path, root: Path, split: str = "u1", **kwargs) -> MovieLens100K:
    return MovieLens100K(root, split=split, source_dir=source, log=False, **kwargs)


def _pair_keys(index: torch.Tensor, num_movies: int) -> set[int]:
    return set((index[0] * num_movies + index[1]).tolist())


def test_graph_layout(ml100k_fixture_dir, tmp_path):
    data = _load(ml100k_fixture_dir, tmp_path)[0]
    assert data["user"].num_nodes == 40 and data["movie"].num_nodes == 60
    assert data["user"].x.shape == (40, 2 + 8)  # age, gender, 8 occupations
    assert data["movie"].x.shape == (60, 19 + 2)  # genres, year, missing-year flag
    assert torch.all((data["user"].x[:, 2:].sum(1)) == 1)
    assert data["user"].x[:, 0].min() == 0 and data["user"].x[:, 0].max() == 1
    # the fixture's last movie has no release date: flagged, year filled with the mean
    assert data["movie"].x[-1, -1] == 1 and data["movie"].x[:-1, -1].sum() == 0
    store = data[RATES]
    assert torch.equal(store.edge_index, store.train_edge_label_index)
    assert torch.equal(data[RATED_BY].edge_index, store.edge_index.flip(0))
    assert torch.equal(store.rating, store.train_edge_label)
    assert data["movie"].title[0] == "Movie 1 (1951)"
    assert data.genre_names[1] == "Action" and data.occupation_names[0] == "administrator"
    assert data["user"].raw_id.tolist() == list(range(1, 41))


def test_message_edges_are_training_only(ml100k_fixture_dir, tmp_path):
    split = _load(ml100k_fixture_dir, tmp_path).rating_split()
    message = _pair_keys(split.graph[RATES].edge_index, split.num_movies)
    val = _pair_keys(split.val.edge_label_index, split.num_movies)
    test = _pair_keys(split.test.edge_label_index, split.num_movies)
    assert message == _pair_keys(split.train.edge_label_index, split.num_movies)
    assert not message & val and not message & test and not val & test


@pytest.mark.parametrize("name", ["u1", "u2", "u3", "u4", "u5"])
def test_predefined_split_sizes(ml100k_fixture_dir, tmp_path, name):
    split = _load(ml100k_fixture_dir, tmp_path, split=name).rating_split()
    base = len((ml100k_fixture_dir / f"{name}.base").read_text().splitlines())
    test = len((ml100k_fixture_dir / f"{name}.test").read_text().splitlines())
    assert len(split.train) + len(split.val) == base and len(split.test) == test


def test_random_split_is_seeded(ml100k_fixture_dir, tmp_path):
    a = _load(ml100k_fixture_dir, tmp_path / "a", split="random", seed=3).rating_split()
    b = _load(ml100k_fixture_dir, tmp_path / "b", split="random", seed=3).rating_split()
    c = _load(ml100k_fixture_dir, tmp_path / "c", split="random", seed=4).rating_split()
    assert torch.equal(a.test.edge_label_index, b.test.edge_label_index)
    assert not torch.equal(a.test.edge_label_index, c.test.edge_label_index)
    assert len(a.test) == 200 and len(a.train) + len(a.val) == 800


def test_validation_carve_out_properties():
    users = np.repeat(np.arange(5), [1, 2, 20, 40, 100])
    mask = carve_validation(users, 0.05, seed=0)
    assert np.array_equal(mask, carve_validation(users, 0.05, seed=0))
    per_user_val = np.bincount(users[mask], minlength=5)
    assert per_user_val.tolist() == [0, 0, 1, 2, 5]
    assert np.all(np.bincount(users[~mask], minlength=5) >= 1)
    assert not carve_validation(users, 0.0, seed=0).any()
    with pytest.raises(ValueError, match="val_fraction"):
        carve_validation(users, 1.0, seed=0)


def test_random_split_helper():
    train, test = random_split(10, 0.2, seed=1)
    assert len(test) == 2 and sorted(np.r_[train, test].tolist()) == list(range(10))
    with pytest.raises(ValueError, match="test_fraction"):
        random_split(10, 1.5, seed=1)


def test_rating_split_accessors(tiny_split: RatingSplit):
    assert tiny_split.rating_min == 1 and tiny_split.rating_max == 5
    assert tiny_split.name == "ml-100k/u1"
    mask = tiny_split.seen_mask()
    assert mask.sum() == len(tiny_split.known)
    test_data = tiny_split.test_data
    assert torch.equal(test_data[RATES].edge_label, tiny_split.test.rating)
    assert "edge_label" not in tiny_split.graph[RATES]  # the shared graph is left untouched
    info = tiny_split.describe()
    assert sum(info["test"]["histogram"].values()) == len(tiny_split.test)
    with pytest.raises(ValueError, match="unknown part"):
        tiny_split.edges("holdout")


def test_processed_cache_reused_and_rebuilt_on_change(ml100k_fixture_dir, tmp_path):
    source = _copy(ml100k_fixture_dir, tmp_path / "src")
    root = tmp_path / "root"
    first = _load(source, root)
    again = _load(source, root)
    assert first.processed_paths == again.processed_paths
    assert torch.equal(first[0][RATES].edge_index, again[0][RATES].edge_index)
    lines = (source / "u1.test").read_text().splitlines()
    (source / "u1.test").write_text("\n".join(lines[:-1]) + "\n")  # drop one test rating
    changed = _load(source, root)
    assert changed.processed_paths != first.processed_paths
    assert len(changed.rating_split().test) == len(lines) - 1


def test_load_split_by_name(ml100k_fixture_dir, monkeypatch):
    monkeypatch.setenv(MovieLens100K.env_var, str(ml100k_fixture_dir))
    split = load_split("ml-100k", "u2", log=False)
    assert split.name == "ml-100k/u2"
    with pytest.raises(ValueError, match="unknown dataset"):
        load_split("netflix", "u1")


def test_bad_arguments(ml100k_fixture_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown split 'u9'"):
        _load(ml100k_fixture_dir, tmp_path, split="u9")
    with pytest.raises(DataFormatError, match="does not exist"):
        _load(tmp_path / "nowhere", tmp_path)


def _corrupt(tmp_path, fixture, file: str, line: int, new_text: str | None) -> Path:
    source = _copy(fixture, tmp_path / "src")
    path = source / file
    lines = path.read_bytes().decode("latin-1").splitlines()
    if new_text is None:
        path.write_text("")
    else:
        lines[line - 1] = new_text
        path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return source


BAD_INPUTS = [
    ("u1.base", 3, "1\t2\t3", "u1.base, line 3: expected 4"),
    ("u1.base", 2, "x\t2\t3\t881250949", "u1.base, line 2: user id must be an integer, got 'x'"),
    ("u1.test", 5, "1\t2\t6\t881250949", "u1.test, line 5: rating 6 is outside 1..5"),
    ("u1.test", 1, "999\t2\t3\t881250949", "u1.test, line 1: user id 999 is not in u.user"),
    ("u1.base", 4, "1\t777\t3\t881250949", "u1.base, line 4: movie id 777 is not in u.item"),
    ("u1.test", 1, None, "u1.test: file is empty"),
    ("u.user", 2, "2|x|F|artist|10002", "u.user, line 2: age must be an integer"),
    ("u.user", 3, "3|30|F|astronaut|10003", "u.user, line 3: unknown occupation 'astronaut'"),
    ("u.item", 2, "2|Movie 2 (1952)|01-Jan-1952||url|0|1", "u.item, line 2: expected 24"),
    ("u.genre", 1, "unknown|5", "u.genre, line 1: expected index 0"),
]


@pytest.mark.parametrize(("file", "line", "text", "message"), BAD_INPUTS)
def test_bad_input_names_file_and_line(ml100k_fixture_dir, tmp_path, file, line, text, message):
    source = _corrupt(tmp_path, ml100k_fixture_dir, file, line, text)
    root = tmp_path / "root"
    with pytest.raises(DataFormatError) as info:
        _load(source, root)
    assert message in str(info.value)
    assert info.value.path.endswith(file)
    processed = root / "processed"
    leftovers = [p.name for p in processed.glob("*.pt") if p.name not in ("pre_transform.pt", "pre_filter.pt")]
    assert leftovers == [] and not list(processed.glob("*.tmp"))


def test_duplicate_rating_names_the_repeat(ml100k_fixture_dir, tmp_path):
    source = _copy(ml100k_fixture_dir, tmp_path / "src")
    first = (source / "u1.base").read_text().splitlines()[0]
    with (source / "u1.test").open("a") as handle:
        handle.write(first + "\n")
    n = len((source / "u1.test").read_text().splitlines())
    with pytest.raises(DataFormatError, match=rf"u1.test, line {n}: user \d+ rates movie \d+ again"):
        _load(source, tmp_path / "root")


def test_missing_file(ml100k_fixture_dir, tmp_path):
    source = _copy(ml100k_fixture_dir, tmp_path / "src")
    (source / "u1.test").unlink()
    with pytest.raises(DataFormatError, match="missing MovieLens-100k files: u1.test"):
        _load(source, tmp_path / "root")


def _zip_fixture(fixture: Path, zip_path: Path) -> str:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for file in sorted(fixture.iterdir()):
            archive.write(file, f"ml-100k/{file.name}")
    return hashlib.md5(zip_path.read_bytes()).hexdigest()


def test_download_verifies_md5(ml100k_fixture_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(MovieLens100K.env_var, raising=False)
    archive = tmp_path / "ml-100k.zip"
    digest = _zip_fixture(ml100k_fixture_dir, archive)

    def fake_download(url, folder, log=True):
        Path(folder).mkdir(parents=True, exist_ok=True)
        return shutil.copy(archive, Path(folder) / "ml-100k.zip")

    monkeypatch.setattr(movielens_module, "download_url", fake_download)
    root = tmp_path / "root"
    with pytest.raises(DataFormatError, match="MD5 mismatch"):
        MovieLens100K(root, log=False)  # the class expects the official md5
    assert not (root / "raw" / "ml-100k.zip").exists()

    monkeypatch.setattr(MovieLens100K, "md5", digest)
    split = MovieLens100K(root, log=False).rating_split()
    assert split.num_users == 40 and (root / "raw" / "ml-100k" / "u.data").is_file()


def test_no_download_when_disabled(tmp_path, monkeypatch):
    monkeypatch.delenv(MovieLens100K.env_var, raising=False)
    with pytest.raises(DataFormatError, match="not found"):
        MovieLens100K(tmp_path / "root", download=False, log=False)
