"""MovieLens-1M loading on a tiny fixture in the ``.dat`` formats: graph, splits (GLocal-K's), bad input."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import gnnrec.data.movielens1m as ml1m_module
from gnnrec.data import RATED_BY, RATES, DataFormatError, MovieLens1M, get_dataset, load_split
from gnnrec.data.graph import PARTS
from gnnrec.testing.ml1m_monti import write_ml1m_fixture

NUM_USERS, NUM_LISTED, UNRATED, PER_USER = 30, 50, 4, 20


@pytest.fixture(scope="module")
def ml1m_dir(tmp_path_factory) -> Path:
    return write_ml1m_fixture(
        tmp_path_factory.mktemp("ml1m"), NUM_USERS, NUM_LISTED, ratings_per_user=PER_USER, unrated_movies=UNRATED
    )


def _load(source: Path, root: Path, split: str = "random-90", **kwargs) -> MovieLens1M:
    return MovieLens1M(root, split=split, source_dir=source, log=False, **kwargs)


def _triples(user, movie, rating) -> set[tuple[int, int, float]]:
    return set(
        zip(
            torch.as_tensor(user).tolist(),
            torch.as_tensor(movie).tolist(),
            torch.as_tensor(rating).tolist(),
            strict=True,
        )
    )


def test_graph_layout(ml1m_dir, tmp_path):
    data = _load(ml1m_dir, tmp_path)[0]
    num_movies = NUM_LISTED - UNRATED  # only rated movies are nodes, as in GLocal-K
    assert data["user"].num_nodes == NUM_USERS and data["movie"].num_nodes == num_movies
    assert data.num_unrated_movies == UNRATED and data.num_unrated_users == 0
    assert data["user"].x.shape == (NUM_USERS, 1 + 7 + 21)
    assert torch.all(data["user"].x[:, 1:8].sum(1) == 1) and torch.all(data["user"].x[:, 8:].sum(1) == 1)
    assert data["movie"].x.shape == (num_movies, 18 + 2)
    assert data["movie"].raw_id.tolist() == (1 + 2 * np.arange(num_movies)).tolist()  # ascending, gaps kept
    assert data["movie"].title[1] == "Café Movie 3 (1994)"  # latin-1 decoded
    assert data["movie"].year[1] == 1994 and data["movie"].year[2] == 0
    assert data["movie"].x[2, -1] == 1 and data["movie"].x[:, -1].sum() == 1  # "Untitled 5" has no year
    assert torch.all(data["movie"].x[:, :18].sum(1) >= 1)
    year = data["movie"].x[:, 18]
    assert year.min() == 0 and year.max() == 1
    assert data.rating_levels.tolist() == [1, 2, 3, 4, 5]
    assert data.dataset_name == "ml-1m" and data.split_name == "random-90"
    store = data[RATES]
    assert torch.equal(store.edge_index, store.train_edge_label_index)
    assert torch.equal(data[RATED_BY].edge_index, store.edge_index.flip(0))
    total = store.train_edge_label.numel() + store.val_edge_label.numel() + store.test_edge_label.numel()
    assert total == NUM_USERS * PER_USER


def test_user_feature_vector_matches_rows(ml1m_dir, tmp_path):
    data = _load(ml1m_dir, tmp_path)[0]
    for row in (0, 7, NUM_USERS - 1):
        user = data["user"]
        expected = MovieLens1M.user_feature_vector(user.gender[row], int(user.age[row]), int(user.occupation[row]))
        assert torch.equal(user.x[row], expected)
    with pytest.raises(ValueError, match="age must be one of"):
        MovieLens1M.user_feature_vector("F", 20, 3)


def _notebook_split(path: Path) -> tuple[set, set]:
    """An independent re-implementation of GLocal-K's ``load_data_1m`` (frac=0.1, seed=1234).

    Returns the (movie, user, rating) triples of its test and train matrices, indexed
    like the notebook: users and movies by rank of their id among those in the file.
    """
    # the notebook's np.loadtxt(delimiter="::"); NumPy >= 1.23 takes single-character delimiters only
    data = np.array([line.split("::") for line in path.read_text("latin-1").splitlines()], dtype="int32")
    n_r = data.shape[0]
    udict = {u: i for i, u in enumerate(np.unique(data[:, 0]).tolist())}
    mdict = {m: i for i, m in enumerate(np.unique(data[:, 1]).tolist())}
    state = np.random.get_state()
    try:
        np.random.seed(1234)
        idx = np.arange(n_r)
        np.random.shuffle(idx)
    finally:
        np.random.set_state(state)
    test, train = set(), set()
    for i in range(n_r):
        u_id, m_id, r = data[idx[i], 0], data[idx[i], 1], data[idx[i], 2]
        (test if i < int(0.1 * n_r) else train).add((mdict[m_id], udict[u_id], float(r)))
    return test, train


def test_random_90_reproduces_glocal_k(ml1m_dir, tmp_path):
    split = _load(ml1m_dir, tmp_path).rating_split()
    test, train = _notebook_split(ml1m_dir / "ratings.dat")
    assert len(split.test) == int(0.1 * NUM_USERS * PER_USER)
    assert _triples(split.test.movie, split.test.user, split.test.rating) == test
    known = split.known
    assert _triples(known.movie, known.user, known.rating) == train


def test_random_90_ignores_seed_and_is_identical_across_runs(ml1m_dir, tmp_path):
    a = _load(ml1m_dir, tmp_path / "a").rating_split()
    b = _load(ml1m_dir, tmp_path / "b").rating_split()
    c = _load(ml1m_dir, tmp_path / "c", seed=5).rating_split()
    assert torch.equal(a.test.edge_label_index, b.test.edge_label_index)
    assert torch.equal(a.val.edge_label_index, b.val.edge_label_index)
    assert torch.equal(a.test.edge_label_index, c.test.edge_label_index)  # the protocol's shuffle seed is fixed
    assert not torch.equal(a.val.edge_label_index, c.val.edge_label_index)  # the carve-out follows `seed`
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_random_80_is_seeded(ml1m_dir, tmp_path):
    a = _load(ml1m_dir, tmp_path / "a", split="random-80", seed=1).rating_split()
    b = _load(ml1m_dir, tmp_path / "b", split="random-80", seed=1).rating_split()
    c = _load(ml1m_dir, tmp_path / "c", split="random-80", seed=2).rating_split()
    assert torch.equal(a.test.edge_label_index, b.test.edge_label_index)
    assert not torch.equal(a.test.edge_label_index, c.test.edge_label_index)
    assert len(a.test) == round(0.2 * NUM_USERS * PER_USER)
    assert a.name == "ml-1m/random-80" and a.settings["test_fraction"] == 0.2


def test_validation_carve_out(ml1m_dir, tmp_path):
    split = _load(ml1m_dir, tmp_path, val_fraction=0.1).rating_split()
    keys = {
        part: set(zip(split.edges(part).user.tolist(), split.edges(part).movie.tolist(), strict=True)) for part in PARTS
    }
    assert keys["val"] and not keys["train"] & keys["val"] and not keys["val"] & keys["test"]
    assert torch.all(torch.bincount(split.train.user, minlength=split.num_users) >= 1)
    assert split.rating_min == 1 and split.rating_max == 5


def test_registry_and_default_split(ml1m_dir, monkeypatch):
    assert get_dataset("ml-1m") is MovieLens1M and MovieLens1M.default_split == "random-90"
    monkeypatch.setenv(MovieLens1M.env_var, str(ml1m_dir))
    split = load_split("ml-1m", log=False)
    assert split.name == "ml-1m/random-90" and split.num_users == NUM_USERS


def test_bad_arguments(ml1m_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown split 'u1' for ml-1m"):
        _load(ml1m_dir, tmp_path, split="u1")
    with pytest.raises(DataFormatError, match="does not exist"):
        _load(tmp_path / "nowhere", tmp_path)


def _corrupt(tmp_path: Path, fixture: Path, file: str, line: int, new_text: str | None) -> Path:
    source = Path(shutil.copytree(fixture, tmp_path / "src"))
    path = source / file
    lines = path.read_bytes().decode("latin-1").splitlines()
    if new_text is None:
        path.write_text("")
    else:
        lines[line - 1] = new_text
        path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return source


BAD_INPUTS = [
    ("ratings.dat", 3, "1::3::5", "ratings.dat, line 3: expected 4 '::'-separated columns, found 3"),
    ("ratings.dat", 2, "1::x::5::978300760", "ratings.dat, line 2: movie id must be an integer, got 'x'"),
    ("ratings.dat", 5, "1::3::6::978300760", "ratings.dat, line 5: rating 6 is outside 1..5"),
    ("ratings.dat", 4, "999::3::4::978300760", "ratings.dat, line 4: user id 999 is not in users.dat"),
    ("ratings.dat", 6, "1::4::4::978300760", "ratings.dat, line 6: movie id 4 is not in movies.dat"),
    ("ratings.dat", 1, None, "ratings.dat: file is empty"),
    ("users.dat", 2, "2::X::18::3::10002", "users.dat, line 2: gender must be 'M' or 'F', got 'X'"),
    ("users.dat", 3, "3::F::20::3::10003", "users.dat, line 3: age must be one of the codes"),
    ("users.dat", 4, "4::F::18::21::10004", "users.dat, line 4: occupation must lie in 0..20, got 21"),
    ("users.dat", 5, "4::F::18::2::10005", "users.dat, line 5: duplicate user id 4 (first on line 4)"),
    ("movies.dat", 2, "3::Movie 3 (1931)::Action|Space", "movies.dat, line 2: unknown genre 'Space'"),
    ("movies.dat", 1, "1::Movie 1 (1930)", "movies.dat, line 1: expected 3 '::'-separated columns, found 2"),
]


@pytest.mark.parametrize(("file", "line", "text", "message"), BAD_INPUTS)
def test_bad_input_names_file_and_line(ml1m_dir, tmp_path, file, line, text, message):
    source = _corrupt(tmp_path, ml1m_dir, file, line, text)
    root = tmp_path / "root"
    with pytest.raises(DataFormatError) as info:
        _load(source, root)
    assert message in str(info.value)
    assert info.value.path.endswith(file)
    processed = root / "processed"
    leftovers = [p.name for p in processed.glob("*.pt") if p.name not in ("pre_transform.pt", "pre_filter.pt")]
    assert leftovers == [] and not list(processed.glob("*.tmp"))


def test_duplicate_rating_names_the_repeat(ml1m_dir, tmp_path):
    source = Path(shutil.copytree(ml1m_dir, tmp_path / "src"))
    first = (source / "ratings.dat").read_text().splitlines()[0]
    with (source / "ratings.dat").open("a") as handle:
        handle.write(first + "\n")
    n = len((source / "ratings.dat").read_text().splitlines())
    with pytest.raises(DataFormatError, match=rf"ratings.dat, line {n}: user 1 rates movie \d+ again"):
        _load(source, tmp_path / "root")


def test_missing_file(ml1m_dir, tmp_path):
    source = Path(shutil.copytree(ml1m_dir, tmp_path / "src"))
    (source / "movies.dat").unlink()
    with pytest.raises(DataFormatError, match="missing MovieLens-1M files: movies.dat"):
        _load(source, tmp_path / "root")


def test_download_verifies_md5(ml1m_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(MovieLens1M.env_var, raising=False)
    archive = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for file in sorted(ml1m_dir.iterdir()):
            handle.write(file, f"ml-1m/{file.name}")
    digest = hashlib.md5(archive.read_bytes()).hexdigest()

    def fake_download(url, folder, log=True):
        assert url == MovieLens1M.url
        Path(folder).mkdir(parents=True, exist_ok=True)
        return shutil.copy(archive, Path(folder) / "ml-1m.zip")

    monkeypatch.setattr(ml1m_module, "download_url", fake_download)
    root = tmp_path / "root"
    with pytest.raises(DataFormatError, match="MD5 mismatch"):
        MovieLens1M(root, log=False)  # the class expects the official md5
    assert not (root / "raw" / "ml-1m.zip").exists() and not (root / "raw" / "ml-1m" / "ratings.dat").exists()

    monkeypatch.setattr(MovieLens1M, "md5", digest)
    split = MovieLens1M(root, log=False).rating_split()
    assert split.num_users == NUM_USERS and (root / "raw" / "ml-1m" / "ratings.dat").is_file()


def test_no_download_when_disabled(tmp_path, monkeypatch):
    monkeypatch.delenv(MovieLens1M.env_var, raising=False)
    with pytest.raises(DataFormatError, match="MovieLens-1M not found"):
        MovieLens1M(tmp_path / "root", download=False, log=False)
