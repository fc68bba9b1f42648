"""Every registered dataset honours the same contract, checked on tiny fixtures written by gnnrec.testing.

Layout of the graph, splits, validation carve-out, cache fingerprint, bad input naming file and
line, missing files, download MD5 check (with a patched fetch) and :func:`load_split` by name.
A dataset added to :data:`gnnrec.data.DATASETS` needs a :class:`Case` here.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import urllib.error
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import gnnrec.data.base as base_module
from gnnrec.data import DATASETS, RATED_BY, RATES, DataFormatError, RatingGraphDataset, load_split
from gnnrec.data.graph import PARTS
from gnnrec.data.monti import MAT_FILE
from gnnrec.testing import CSV_FILES, write_csv_fixture, write_ml1m_fixture, write_ml100k_fixture, write_monti_fixture
from gnnrec.testing.movielens_large import write_ml10m_fixture, write_ml25m_fixture


def _drop_last_line(file: str) -> Callable[[Path], None]:
    def change(directory: Path) -> None:
        lines = (directory / file).read_bytes().decode("latin-1").splitlines()
        (directory / file).write_bytes(("\n".join(lines[:-1]) + "\n").encode("latin-1"))

    return change


def _rewrite_monti(name: str) -> Callable[[Path], None]:
    return lambda directory: write_monti_fixture(directory, name, seed=9) and None


@dataclass
class Case:
    """How to write, change and break one dataset's raw files."""

    write: Callable[[Path], Path]
    change: Callable[[Path], None] | None  # a valid edit of the raw files (None: a generated dataset)
    removable: str | None  # a raw file whose absence is reported (None: a generated dataset)
    settings: dict = field(default_factory=dict)
    bad_inputs: list[tuple[str, int, str | None, str]] = field(default_factory=list)  # file, line, text, message
    duplicate: tuple[str, str, int] | None = None  # append line of file B to file A: a repeated rating
    changed_settings: dict = field(default_factory=dict)  # generated datasets: settings giving other data

    @property
    def has_files(self) -> bool:
        """False for a dataset generated from its settings (no raw files, no source_dir)."""
        return self.removable is not None


CASES: dict[str, Case] = {
    "ml-100k": Case(
        write=write_ml100k_fixture,
        change=_drop_last_line("u1.test"),
        removable="u1.test",
        duplicate=("u1.test", "u1.base", 1),
        bad_inputs=[
            ("u1.base", 3, "1\t2\t3", "u1.base, line 3: expected 4"),
            ("u1.base", 2, "x\t2\t3\t881250949", "u1.base, line 2: user id must be an integer, got 'x'"),
            ("u1.test", 5, "1\t2\t6\t881250949", "u1.test, line 5: rating 6 is outside 1..5"),
            ("u1.test", 1, "999\t2\t3\t881250949", "u1.test, line 1: user id 999 is not in u.user"),
            ("u1.base", 4, "1\t777\t3\t881250949", "u1.base, line 4: movie id 777 is not in u.item"),
            ("u1.test", 1, None, "u1.test: file is empty"),
            ("u.user", 2, "2|x|F|artist|10002", "u.user, line 2: age must be an integer"),
            ("u.user", 3, "3|30|F|astronaut|10003", "u.user, line 3: unknown occupation 'astronaut'"),
            ("u.user", 3, "2|30|F|artist|10003", "u.user, line 3: duplicate user id 2 (first on line 2)"),
            ("u.item", 2, "2|Movie 2 (1952)|01-Jan-1952||url|0|1", "u.item, line 2: expected 24"),
            ("u.genre", 1, "unknown|5", "u.genre, line 1: expected index 0"),
        ],
    ),
    "ml-1m": Case(
        write=write_ml1m_fixture,
        change=_drop_last_line("ratings.dat"),
        removable="movies.dat",
        duplicate=("ratings.dat", "ratings.dat", 1),
        bad_inputs=[
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
        ],
    ),
    **{
        name: Case(
            write=lambda directory, name=name: write_monti_fixture(directory, name),
            change=_rewrite_monti(name),
            removable=MAT_FILE,
            # matrix files have no lines; their bad-input cases are in test_monti.py
        )
        for name in ("douban", "flixster", "yahoo-music")
    },
    "csv": Case(
        write=write_csv_fixture,
        change=_drop_last_line("ratings.csv"),
        removable="items.csv",
        settings=dict(CSV_FILES),
        duplicate=("ratings.csv", "ratings.csv", 2),
        bad_inputs=[
            ("ratings.csv", 1, "usr,item,rating,time", "ratings.csv, line 1: no column 'user'; columns found: usr"),
            ("ratings.csv", 3, "u1,i2", "ratings.csv, line 3: missing value in column 'rating'"),
            ("ratings.csv", 3, "u1,i2,3,4,5", "ratings.csv, line 3: expected 4 ','-separated columns, found 5"),
            ("ratings.csv", 2, "u1,i2,abc,1600000000", "ratings.csv, line 2: rating must be a number, got 'abc'"),
            ("ratings.csv", 2, "u1,i2,3,12.5", "ratings.csv, line 2: time must be an integer, got '12.5'"),
            ("ratings.csv", 4, "u99,i1,3,1600000000", "ratings.csv, line 4: user id 'u99' is not in users.csv"),
            ("ratings.csv", 4, "u1,i99,3,1600000000", "ratings.csv, line 4: item id 'i99' is not in items.csv"),
            ("ratings.csv", 1, None, "ratings.csv: file is empty"),
            ("users.csv", 3, "u1,30,fr", "users.csv, line 3: id 'u1' repeated (first on line 2)"),
            ("users.csv", 4, "u3,,fr", "users.csv, line 4: missing value in column 'age'"),
            ("items.csv", 1, "", "items.csv: file is empty"),
            ("user_edges.csv", 2, "u1,u999,0.5", "user_edges.csv, line 2: id 'u999' is not in users.csv"),
            ("user_edges.csv", 3, "u1,u2,0.5", "user_edges.csv, line 3: edge 'u1' -> 'u2' repeated (first on line 2)"),
            ("item_edges.csv", 3, "i1,i2,heavy", "item_edges.csv, line 3: edge weight must be a number, got 'heavy'"),
            ("item_edges.csv", 3, "i1,i2", "item_edges.csv, line 3: missing value in column 'weight'"),
        ],
    ),
    "ml-10m": Case(
        write=write_ml10m_fixture,
        change=_drop_last_line("ratings.dat"),
        removable="movies.dat",
        duplicate=("ratings.dat", "ratings.dat", 1),
        bad_inputs=[
            ("ratings.dat", 3, "1::3::4.5", "ratings.dat, line 3: missing field 'time'"),
            ("ratings.dat", 3, "1::x::4.5::99", "ratings.dat, line 3: movie must be a number, got 'x'"),
            ("ratings.dat", 3, "1::3::7::99", "ratings.dat, line 3: rating 7 is not a half star"),
            ("movies.dat", 2, "1::Again (1999)::Drama", "movies.dat, line 2: duplicate movie id 1"),
        ],
    ),
    **{
        name: Case(
            write=write_ml25m_fixture,
            change=_drop_last_line("ratings.csv"),
            removable="movies.csv",
            duplicate=("ratings.csv", "ratings.csv", 2),
            bad_inputs=[
                ("ratings.csv", 5, "3,7,four,1200000000", "ratings.csv, line 5: rating must be a number, got 'four'"),
                ("ratings.csv", 5, "3,7,5.5,1200000000", "ratings.csv, line 5: rating 5.5 is not a half star"),
                ("ratings.csv", 1, "user,movie,rating,timestamp", "ratings.csv, line 1: header must be userId,"),
            ],
        )
        for name in ("ml-20m", "ml-25m")
    },
    "synthetic": Case(
        write=lambda directory: directory,
        change=None,
        removable=None,
        settings={"num_users": 30, "num_movies": 40, "num_ratings": 400},
        changed_settings={"data_seed": 1},
    ),
}
NAMES = sorted(set(DATASETS) & set(CASES))
FILE_NAMES = [name for name in NAMES if CASES[name].has_files]
BAD_INPUTS = [(name, *bad) for name in NAMES for bad in CASES[name].bad_inputs]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    return {name: CASES[name].write(tmp_path_factory.mktemp(name)) for name in NAMES}


def _copy(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "src"))


def _load(name: str, source: Path, root: Path, **settings) -> RatingGraphDataset:
    files = {"source_dir": source} if CASES[name].has_files else {}
    return DATASETS[name](root, log=False, **files, **{**CASES[name].settings, **settings})


def _pairs(index: torch.Tensor) -> set[tuple[int, int]]:
    return set(zip(index[0].tolist(), index[1].tolist(), strict=True))


def test_every_registered_dataset_has_a_case():
    assert not set(DATASETS) - set(CASES), "add a conformance Case for each new dataset"


@pytest.mark.parametrize("name", NAMES)
def test_graph_layout(name, sources, tmp_path):
    cls = DATASETS[name]
    data = _load(name, sources[name], tmp_path)[0]
    assert data.dataset_name == name and data.split_name == cls.default_split
    for node in ("user", "movie"):
        assert data[node].x.dim() == 2 and data[node].x.size(0) == data[node].num_nodes > 0
        assert len(data[node].raw_id if "raw_id" in data[node] else data[node].ids) == data[node].num_nodes
    store = data[RATES]
    assert torch.equal(store.edge_index, store.train_edge_label_index)
    assert torch.equal(store.rating, store.train_edge_label)
    assert torch.equal(data[RATED_BY].edge_index, store.edge_index.flip(0))
    levels = data.rating_levels
    assert torch.equal(levels, levels.sort().values) and len(levels.unique()) == len(levels)
    for part in PARTS:
        assert torch.isin(store[f"{part}_edge_label"], levels).all()
        index = store[f"{part}_edge_label_index"]
        assert index.size(1) == 0 or (
            index[0].max() < data["user"].num_nodes and index[1].max() < data["movie"].num_nodes
        )
    assert len(data.fingerprint) == 32 and data.split_settings["split"] == cls.default_split


@pytest.mark.parametrize("name", NAMES)
def test_parts_are_disjoint_and_validation_is_carved_from_training(name, sources, tmp_path):
    a = _load(name, sources[name], tmp_path / "a", val_fraction=0.3, seed=1).rating_split()
    b = _load(name, sources[name], tmp_path / "b", val_fraction=0.3, seed=1).rating_split()
    c = _load(name, sources[name], tmp_path / "c", val_fraction=0.3, seed=2).rating_split()
    none = _load(name, sources[name], tmp_path / "d", val_fraction=0.0, seed=1).rating_split()
    parts = {part: _pairs(a.edges(part).edge_label_index) for part in PARTS}
    assert parts["val"] and parts["test"]
    assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"] and not parts["val"] & parts["test"]
    assert torch.equal(a.val.edge_label_index, b.val.edge_label_index)
    assert not torch.equal(a.val.edge_label_index, c.val.edge_label_index)
    assert len(none.val) == 0 and len(none.train) == len(a.train) + len(a.val)
    rated = torch.bincount(a.known.user, minlength=a.num_users) > 0
    assert torch.all(torch.bincount(a.train.user, minlength=a.num_users)[rated] >= 1)


@pytest.mark.parametrize("name", NAMES)
def test_cache_is_reused_and_rebuilt_when_files_or_settings_change(name, sources, tmp_path):
    source, root = _copy(sources[name], tmp_path), tmp_path / "root"
    first = _load(name, source, root)
    again = _load(name, source, root)
    assert first.processed_paths == again.processed_paths and first.fingerprint == again.fingerprint
    assert torch.equal(first[0][RATES].edge_index, again[0][RATES].edge_index)
    assert _load(name, source, root, val_fraction=0.2).processed_paths != first.processed_paths
    if CASES[name].has_files:
        CASES[name].change(source)
    changed = _load(name, source, root, **CASES[name].changed_settings)
    assert changed.processed_paths != first.processed_paths
    assert (
        not torch.equal(changed[0].rating_levels, first[0].rating_levels)
        or not torch.equal(changed[0][RATES].test_edge_label_index, first[0][RATES].test_edge_label_index)
        or changed[0][RATES].edge_index.shape != first[0][RATES].edge_index.shape
    )


def _corrupt(source: Path, file: str, line: int, text: str | None) -> None:
    path = source / file
    lines = path.read_bytes().decode("latin-1").splitlines()
    if text is None:
        path.write_text("")
        return
    lines[line - 1] = text
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))


@pytest.mark.parametrize(("name", "file", "line", "text", "message"), BAD_INPUTS)
def test_bad_input_names_file_and_line(name, file, line, text, message, sources, tmp_path):
    source, root = _copy(sources[name], tmp_path), tmp_path / "root"
    _corrupt(source, file, line, text)
    with pytest.raises(DataFormatError) as info:
        _load(name, source, root)
    assert message in str(info.value)
    assert info.value.path.endswith(file)
    processed = root / "processed"
    leftovers = [p.name for p in processed.glob("*") if p.name not in ("pre_transform.pt", "pre_filter.pt")]
    assert leftovers == [] and not list(processed.glob("*.tmp"))


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].duplicate])
def test_repeated_rating_names_the_repeat(name, sources, tmp_path):
    target, origin, origin_line = CASES[name].duplicate
    source = _copy(sources[name], tmp_path)
    repeated = (source / origin).read_bytes().decode("latin-1").splitlines()[origin_line - 1]
    with (source / target).open("a", encoding="latin-1") as handle:
        handle.write(repeated + "\n")
    n = len((source / target).read_bytes().decode("latin-1").splitlines())
    with pytest.raises(DataFormatError, match=rf"{target}, line {n}: .*(again|repeated)"):
        _load(name, source, tmp_path / "root")


@pytest.mark.parametrize("name", FILE_NAMES)
def test_missing_file_is_named(name, sources, tmp_path):
    source = _copy(sources[name], tmp_path)
    (source / CASES[name].removable).unlink()
    with pytest.raises(DataFormatError, match=CASES[name].removable.replace(".", r"\.")):
        _load(name, source, tmp_path / "root")


@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments(name, sources, tmp_path):
    with pytest.raises(ValueError, match=f"unknown split 'no-such-split' for {name}"):
        _load(name, sources[name], tmp_path, split="no-such-split")
    if CASES[name].has_files:
        with pytest.raises(DataFormatError, match="does not exist"):
            _load(name, tmp_path / "nowhere", tmp_path)
    else:
        with pytest.raises(ValueError, match="source_dir"):
            DATASETS[name](tmp_path, source_dir=tmp_path, log=False)
    with pytest.raises(ValueError, match="val_fraction"):
        _load(name, sources[name], tmp_path, val_fraction=1.0)


@pytest.mark.parametrize("name", NAMES)
def test_load_split_by_name_and_unknown_setting(name, sources, monkeypatch, tmp_path):
    cls = DATASETS[name]
    if CASES[name].has_files:
        monkeypatch.setenv(cls.env_var, str(sources[name]))
    split = load_split(name, root=tmp_path, log=False, **CASES[name].settings)
    assert split.name == f"{name}/{cls.default_split}" and split.dataset == name
    with pytest.raises(ValueError, match=f"dataset '{name}' takes no setting 'bogus'"):
        load_split(name, bogus=1)


@pytest.mark.parametrize("name", FILE_NAMES)
def test_download_checks_md5_or_says_where_files_go(name, sources, tmp_path, monkeypatch):
    cls = DATASETS[name]
    monkeypatch.delenv(cls.env_var, raising=False)
    root = tmp_path / "root"
    if cls.url is None:
        with pytest.raises(DataFormatError, match=cls.env_var):
            cls(root, log=False, **CASES[name].settings)
        return
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for file in sorted(sources[name].iterdir()):
            handle.write(file, f"{cls.raw_folder}/{file.name}")
    digest = hashlib.md5(archive.read_bytes()).hexdigest()

    def fake_download(url, folder, log=True):
        assert url == cls.url
        Path(folder).mkdir(parents=True, exist_ok=True)
        return shutil.copy(archive, Path(folder) / "data.zip")

    monkeypatch.setattr(base_module, "download_url", fake_download)
    monkeypatch.setattr(sys.modules[cls.__module__], "download_url", fake_download, raising=False)
    with pytest.raises(DataFormatError, match="MD5 mismatch"):
        cls(root, log=False)  # the class expects the official md5
    assert (
        not (root / "raw" / "data.zip").exists()
        and not (root / "raw" / cls.raw_folder / CASES[name].removable).exists()
    )
    monkeypatch.setattr(cls, "md5", digest)
    split = cls(root, log=False).rating_split()
    assert split.num_users > 0 and (root / "raw" / cls.raw_folder / CASES[name].removable).is_file()
    with pytest.raises(DataFormatError, match="not found"):
        cls(tmp_path / "elsewhere", download=False, log=False)

    def no_network(url, folder, log=True):
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(base_module, "download_url", no_network)
    monkeypatch.setattr(sys.modules[cls.__module__], "download_url", no_network, raising=False)
    message = f"could not download {re.escape(cls.url)} .*Name or service not known.*--data-dir.*{cls.env_var}"
    with pytest.raises(DataFormatError, match=message):
        cls(tmp_path / "offline", log=False)
