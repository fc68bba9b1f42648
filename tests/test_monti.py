"""Douban / Flixster / YahooMusic from tiny MATLAB 7.3 fixtures: orientation, scales, side graphs, bad input."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnnrec.data import (
    FOLLOWS,
    RATES,
    SIMILAR,
    DataFormatError,
    Douban,
    Flixster,
    MontiDataset,
    YahooMusic,
)
from gnnrec.data.monti import MAT_FILE
from gnnrec.testing.ml1m_monti import monti_fixture_arrays, write_mat_v73, write_monti_fixture

NUM_USERS, NUM_ITEMS = 30, 45  # non-square, so a missed transposition cannot go unnoticed
CLASSES = {"douban": Douban, "flixster": Flixster, "yahoo-music": YahooMusic}
SIDE_EDGES = {"douban": {FOLLOWS}, "flixster": {FOLLOWS, SIMILAR}, "yahoo-music": {SIMILAR}}


def _arrays(dataset: str) -> dict:
    return monti_fixture_arrays(dataset, NUM_USERS, NUM_ITEMS, seed=3)


def _write(directory: Path, arrays: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_mat_v73(directory / MAT_FILE, arrays)
    return directory


def _load(cls: type[MontiDataset], source: Path, root: Path, **kwargs) -> MontiDataset:
    return cls(root, source_dir=source, log=False, **kwargs)


@pytest.mark.parametrize("dataset", list(CLASSES))
def test_orientation_counts_and_ratings(dataset, tmp_path):
    arrays = _arrays(dataset)
    source = _write(tmp_path / "src", arrays)
    with h5py.File(source / MAT_FILE, "r") as handle:
        assert handle["M"].shape == (NUM_ITEMS, NUM_USERS)  # stored column-major, as MATLAB does
    split = _load(CLASSES[dataset], source, tmp_path / "root").rating_split()
    assert split.num_users == NUM_USERS and split.num_movies == NUM_ITEMS
    M, train_mask, test_mask = arrays["M"], arrays["Otraining"] == 1, arrays["Otest"] == 1
    test = split.test
    assert len(test) == test_mask.sum() and len(split.known) == train_mask.sum()
    assert torch.all(torch.from_numpy(test_mask)[test.user, test.movie])
    assert np.array_equal(test.rating.numpy(), M[test.user.numpy(), test.movie.numpy()].astype(np.float32))
    known = split.known
    assert torch.all(torch.from_numpy(train_mask)[known.user, known.movie])
    assert np.array_equal(known.rating.numpy(), M[known.user.numpy(), known.movie.numpy()].astype(np.float32))
    assert split.name == f"{dataset}/given" and CLASSES[dataset].default_split == "given"
    assert split.graph["user"].raw_id.tolist() == list(range(1, NUM_USERS + 1))


@pytest.mark.parametrize("dataset", list(CLASSES))
def test_rating_levels_and_scale(dataset, tmp_path):
    arrays = _arrays(dataset)
    split = _load(CLASSES[dataset], _write(tmp_path / "src", arrays), tmp_path / "root").rating_split()
    observed = arrays["M"][(arrays["Otraining"] + arrays["Otest"]) == 1]
    assert split.rating_levels.tolist() == np.unique(observed).tolist()
    assert split.rating_min == observed.min() and split.rating_max == observed.max()
    scale = CLASSES[dataset].rating_scale
    assert split.graph.rating_scale.tolist() == [scale.low, scale.high, scale.step]
    if dataset == "flixster":
        assert split.rating_levels.tolist() == [0.5 * k for k in range(1, 11)]
    if dataset == "yahoo-music":
        assert len(split.rating_levels) > 20 and split.rating_max > 90


@pytest.mark.parametrize("dataset", list(CLASSES))
def test_side_graphs_become_edge_types(dataset, tmp_path):
    arrays = _arrays(dataset)
    source = _write(tmp_path / "src", arrays)
    graph = _load(CLASSES[dataset], source, tmp_path / "root").rating_split().graph
    extra = set(graph.edge_types) - {RATES, ("movie", "rated_by", "user")}
    assert extra == SIDE_EDGES[dataset]
    for key, value in arrays.items():
        if not key.startswith("W_"):
            continue
        edge_type = FOLLOWS if key == "W_users" else SIMILAR
        expected = set(zip(*value.nonzero(), strict=True))
        got = set(zip(*graph[edge_type].edge_index.tolist(), strict=True))
        assert got == expected and graph[edge_type].edge_weight.shape == (len(expected),)
    assert graph["user"].x.shape == (NUM_USERS, 1) and torch.all(graph["movie"].x == 1)
    plain = _load(CLASSES[dataset], source, tmp_path / "plain", side_graphs=False).rating_split().graph
    assert set(plain.edge_types) == {RATES, ("movie", "rated_by", "user")}


def test_dense_and_sparse_storage_read_alike(tmp_path):
    sparse_source = write_monti_fixture(tmp_path / "sparse", "flixster", NUM_USERS, NUM_ITEMS, seed=1)
    arrays = monti_fixture_arrays("flixster", NUM_USERS, NUM_ITEMS, seed=1)
    dense = {k: (v.toarray() if sp.issparse(v) else v) for k, v in arrays.items()}
    dense["M"] = sp.csc_matrix(dense["M"])  # the rating matrix itself may be stored sparse, too
    dense_source = _write(tmp_path / "dense", dense)
    with h5py.File(sparse_source / MAT_FILE, "r") as handle:
        assert isinstance(handle["W_users"], h5py.Group) and isinstance(handle["M"], h5py.Dataset)
    a = _load(Flixster, sparse_source, tmp_path / "ra").rating_split().graph
    b = _load(Flixster, dense_source, tmp_path / "rb").rating_split().graph
    for edge_type in (RATES, FOLLOWS, SIMILAR):
        assert set(zip(*a[edge_type].edge_index.tolist(), strict=True)) == set(
            zip(*b[edge_type].edge_index.tolist(), strict=True)
        )
    assert torch.equal(a[RATES].test_edge_label, b[RATES].test_edge_label)


def test_validation_carve_out_is_seeded(tmp_path):
    source = _write(tmp_path / "src", _arrays("douban"))
    a = _load(Douban, source, tmp_path / "a", val_fraction=0.2, seed=1).rating_split()
    b = _load(Douban, source, tmp_path / "b", val_fraction=0.2, seed=1).rating_split()
    c = _load(Douban, source, tmp_path / "c", val_fraction=0.2, seed=2).rating_split()
    assert torch.equal(a.val.edge_label_index, b.val.edge_label_index)
    assert not torch.equal(a.val.edge_label_index, c.val.edge_label_index)
    assert torch.equal(a.test.edge_label_index, c.test.edge_label_index)  # the given test set never moves
    train = set(zip(a.train.user.tolist(), a.train.movie.tolist(), strict=True))
    val = set(zip(a.val.user.tolist(), a.val.movie.tolist(), strict=True))
    assert val and not train & val
    assert torch.equal(a.graph[RATES].edge_index, a.train.edge_label_index)  # message edges: train only


def test_missing_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.delenv(Douban.env_var, raising=False)
    with pytest.raises(DataFormatError) as info:
        Douban(tmp_path / "root", log=False)
    message = str(info.value)
    assert "cannot be downloaded" in message and MAT_FILE in message and "GNNREC_DOUBAN_DIR" in message
    assert str(tmp_path / "root" / "raw" / "douban") in message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="Douban not found"):
        _load(Douban, empty, tmp_path / "root2")


def _without(arrays: dict, key: str) -> dict:
    return {k: v for k, v in arrays.items() if k != key}


def _edit(arrays: dict, key: str, change) -> dict:
    arrays = dict(arrays)
    arrays[key] = change(np.array(arrays[key], dtype=np.float64, copy=True))
    return arrays


def _set(array: np.ndarray, where: tuple[int, int], value: float) -> np.ndarray:
    array[where] = value
    return array


def _bad_cases(dataset: str) -> dict:
    arrays = _arrays(dataset)
    train_cell = tuple(int(i) for i in np.argwhere(arrays["Otraining"] == 1)[0])
    test_cell = tuple(int(i) for i in np.argwhere(arrays["Otest"] == 1)[0])
    empty_cell = tuple(int(i) for i in np.argwhere((arrays["Otraining"] + arrays["Otest"]) == 0)[0])
    return {
        "missing M": _without(arrays, "M"),
        "missing Otest": _without(arrays, "Otest"),
        "mask shape": _edit(arrays, "Otest", lambda a: a.T),
        "overlap": _edit(arrays, "Otraining", lambda a: _set(a, test_cell, 1.0)),
        "train rating 0": _edit(
            _edit(arrays, "Otraining", lambda a: _set(a, empty_cell, 1.0)), "M", lambda a: _set(a, empty_cell, 0.0)
        ),
        "test rating above scale": _edit(arrays, "M", lambda a: _set(a, test_cell, 101.0)),
        "train rating off grid": _edit(arrays, "M", lambda a: _set(a, train_cell, 0.7)),
        "mask not 0/1": _edit(arrays, "Otest", lambda a: _set(a, test_cell, 2.0)),
        "side graph shape": {**arrays, "W_users": sp.csc_matrix((NUM_ITEMS, NUM_ITEMS))},
        "3-d variable": {**arrays, "M": np.zeros((2, 2, 2))},
    }


BAD_MESSAGES = {
    "missing M": "missing variable 'M' (variables found: Otest, Otraining, W_users)",
    "missing Otest": "missing variable 'Otest'",
    "mask shape": f"Otest has shape ({NUM_ITEMS}, {NUM_USERS}) but M has shape ({NUM_USERS}, {NUM_ITEMS})",
    "overlap": "Otraining and Otest overlap in 1 entries, the first at row",
    "train rating 0": "Otraining marks 1 entries where M is 0 (unrated), the first at row",
    "test rating above scale": "Otest marks 1 ratings outside the scale 1..5 in steps of 1, the first M(row",
    "train rating off grid": "Otraining marks 1 ratings outside the scale 1..5 in steps of 1",
    "mask not 0/1": "Otest must hold only 0 and 1; found 2 at row",
    "side graph shape": f"W_users has shape ({NUM_ITEMS}, {NUM_ITEMS}), expected ({NUM_USERS}, {NUM_USERS})",
    "3-d variable": "variable 'M' must be a 2-D matrix, found 3 dimensions",
}


@pytest.mark.parametrize("case", list(BAD_MESSAGES))
def test_bad_input_names_file_and_problem(case, tmp_path):
    source = _write(tmp_path / "src", _bad_cases("douban")[case])
    root = tmp_path / "root"
    with pytest.raises(DataFormatError) as info:
        _load(Douban, source, root)
    assert BAD_MESSAGES[case] in str(info.value)
    assert info.value.path.endswith(MAT_FILE)
    leftovers = [p.name for p in (root / "processed").glob("*") if p.name not in ("pre_transform.pt", "pre_filter.pt")]
    assert leftovers == []


@pytest.mark.parametrize(
    ("dataset", "value", "message"),
    [("flixster", 5.5, "0.5..5 in steps of 0.5"), ("flixster", 1.25, "0.5..5"), ("yahoo-music", 100.5, "1..100")],
)
def test_scale_is_per_dataset(dataset, value, message, tmp_path):
    arrays = _arrays(dataset)
    arrays["M"][tuple(np.argwhere(arrays["Otest"] == 1)[0])] = value
    with pytest.raises(DataFormatError, match=rf"Otest marks 1 ratings outside the scale {message}"):
        _load(CLASSES[dataset], _write(tmp_path / "src", arrays), tmp_path / "root")


def test_not_an_hdf5_file(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / MAT_FILE).write_bytes(b"MATLAB 5.0 MAT-file, Platform: GLNXA64" + b"\0" * 200)
    with pytest.raises(DataFormatError, match=r"not a MATLAB 7.3 \(HDF5\) .mat file"):
        _load(Douban, source, tmp_path / "root")


def test_struct_variable_is_refused(tmp_path):
    source = _write(tmp_path / "src", _arrays("douban"))
    with h5py.File(source / MAT_FILE, "r+") as handle:
        del handle["Otest"]
        group = handle.create_group("Otest")
        group.attrs["MATLAB_class"] = np.bytes_("struct")
    with pytest.raises(DataFormatError, match="variable 'Otest' is a MATLAB struct, not a numeric matrix"):
        _load(Douban, source, tmp_path / "root")
