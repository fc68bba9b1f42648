"""Douban, Flixster and YahooMusic: the 3,000 × 3,000 matrices of Monti et al. (2017).

Each dataset is one MATLAB 7.3 file, ``training_test_dataset.mat`` (an HDF5 file), as
shipped with the GC-MC and IGMC code. Its variables: ``M`` (ratings, users × items,
0 = unrated), ``Otraining`` and ``Otest`` (0/1 masks of the same shape: the given split)
and, where present, the side graphs ``W_users`` (users × users) and ``W_movies`` /
``W_tracks`` (items × items). MATLAB stores matrices column-major, so a dense variable
of MATLAB size ``r × c`` is an HDF5 dataset of shape ``(c, r)`` and is transposed on
reading; a sparse one is an HDF5 group with ``data``, ``ir`` (row indices) and ``jc``
(column pointers), i.e. compressed sparse columns, with the row count in the
``MATLAB_sparse`` attribute. Both layouts are accepted for every variable.
Error messages give matrix positions as 1-based MATLAB row and column numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np
import scipy.sparse as sp
import torch

from gnnrec.data.base import RatingGraphDataset
from gnnrec.data.errors import DataFormatError
from gnnrec.data.graph import FOLLOWS, SIMILAR

MAT_FILE = "training_test_dataset.mat"
MAX_ELEMENTS = 200_000_000  # entries of one matrix; the Monti matrices have 9 million
SIDE_GRAPHS = {"W_users": FOLLOWS, "W_movies": SIMILAR, "W_tracks": SIMILAR}
RATING_KEYS = ("M", "Otraining", "Otest")
NUMERIC_CLASSES = {
    "double",
    "single",
    "logical",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
}


@dataclass(frozen=True)
class RatingScale:
    """Ratings ``low, low + step, ..., high``."""

    low: float
    high: float
    step: float

    def contains(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask: which ``values`` lie on the scale."""
        steps = (values - self.low) / self.step
        on_grid = np.abs(steps - np.rint(steps)) < 1e-6
        return on_grid & (values >= self.low - 1e-9) & (values <= self.high + 1e-9)

    def __str__(self) -> str:
        return f"{self.low:g}..{self.high:g} in steps of {self.step:g}"


@dataclass
class MontiMatrices:
    """The variables of one ``training_test_dataset.mat``, in MATLAB orientation."""

    path: Path
    ratings: np.ndarray  # [users, items] float64, 0 = unrated
    train_mask: np.ndarray  # [users, items] bool
    test_mask: np.ndarray  # [users, items] bool
    side: dict[str, sp.csc_matrix]  # W_* variables present in the file


def _matlab_class(node: h5py.HLObject) -> str | None:
    value = node.attrs.get("MATLAB_class")
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def read_mat_variable(path: Path, handle: h5py.File, key: str) -> np.ndarray | sp.csc_matrix:
    """One 2-D numeric variable of an open MATLAB 7.3 file, in MATLAB's (row, column) orientation."""
    if key not in handle:
        found = ", ".join(sorted(k for k in handle if not k.startswith("#"))) or "none"
        raise DataFormatError(path, f"missing variable {key!r} (variables found: {found})")
    node = handle[key]
    matlab_class = _matlab_class(node)
    if matlab_class is not None and matlab_class not in NUMERIC_CLASSES:
        raise DataFormatError(path, f"variable {key!r} is a MATLAB {matlab_class}, not a numeric matrix")
    if isinstance(node, h5py.Group):
        if "jc" not in node:
            raise DataFormatError(path, f"variable {key!r} is an HDF5 group but not a MATLAB sparse matrix (no 'jc')")
        for part in ("jc", "ir", "data"):
            if part in node:
                _check_size(path, f"{key}.{part}", tuple(getattr(node[part], "shape", None) or ()))
        jc = np.asarray(node["jc"][()], dtype=np.int64).reshape(-1)
        ir = np.asarray(node["ir"][()], dtype=np.int64).reshape(-1) if "ir" in node else np.zeros(0, np.int64)
        data = np.asarray(node["data"][()]).reshape(-1) if "data" in node else np.zeros(0)
        if "MATLAB_sparse" in node.attrs:
            num_rows = int(node.attrs["MATLAB_sparse"])
        else:
            num_rows = int(ir.max()) + 1 if len(ir) else 0
        if len(jc) < 1 or len(data) != len(ir) or jc[-1] != len(ir) or np.any(np.diff(jc) < 0):
            raise DataFormatError(path, f"sparse variable {key!r} has inconsistent data/ir/jc arrays")
        if len(ir) and (ir.min() < 0 or ir.max() >= num_rows):
            raise DataFormatError(path, f"sparse variable {key!r} has a row index outside 0..{num_rows - 1}")
        if data.dtype.kind not in "biuf":
            raise DataFormatError(path, f"variable {key!r} has non-numeric entries ({data.dtype})")
        return sp.csc_matrix((data.astype(np.float64), ir, jc), shape=(num_rows, len(jc) - 1))
    _check_size(path, key, tuple(node.shape or ()))
    array = np.asarray(node[()])
    if array.dtype.kind not in "biuf":
        raise DataFormatError(path, f"variable {key!r} has non-numeric entries ({array.dtype})")
    if array.ndim != 2:
        raise DataFormatError(path, f"variable {key!r} must be a 2-D matrix, found {array.ndim} dimensions")
    return array.T.astype(np.float64)  # HDF5 holds MATLAB's column-major data: (c, r) -> (r, c)


def _check_size(path: Path, key: str, shape: tuple[int, ...]) -> None:
    """Refuse a variable too large to hold (a damaged file can claim any shape)."""
    if int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
        raise DataFormatError(path, f"variable {key!r} of shape {shape} is too large (over {MAX_ELEMENTS:,} entries)")


def _dense(path: Path, key: str, matrix: np.ndarray | sp.csc_matrix) -> np.ndarray:
    if sp.issparse(matrix):
        _check_size(path, key, matrix.shape)
        return matrix.toarray()
    return matrix


def _cell(mask: np.ndarray) -> str:
    row, column = (int(i) for i in np.argwhere(mask)[0])
    return f"row {row + 1}, column {column + 1}"


def read_monti_mat(path: str | Path) -> MontiMatrices:
    """Read and check ``M``, ``Otraining``, ``Otest`` and any ``W_*`` side graph of a Monti et al. file."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    if not h5py.is_hdf5(path):
        raise DataFormatError(
            path, "not a MATLAB 7.3 (HDF5) .mat file; re-save it in MATLAB with save(file, ..., '-v7.3')"
        )
    try:
        with h5py.File(path, "r") as handle:
            ratings, train, test = (_dense(path, key, read_mat_variable(path, handle, key)) for key in RATING_KEYS)
            side = {key: sp.csc_matrix(read_mat_variable(path, handle, key)) for key in SIDE_GRAPHS if key in handle}
    except DataFormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError, IndexError, OverflowError) as error:
        # h5py and SciPy meet a damaged file with many kinds of error; each means the same to the user
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DataFormatError(path, f"cannot read the HDF5 file: {reason}") from None

    if not np.isfinite(ratings).all():
        raise DataFormatError(path, f"M has a non-finite entry at {_cell(~np.isfinite(ratings))}")
    masks = {}
    for key, mask in (("Otraining", train), ("Otest", test)):
        if mask.shape != ratings.shape:
            raise DataFormatError(path, f"{key} has shape {mask.shape} but M has shape {ratings.shape}")
        bad = (mask != 0) & (mask != 1)
        if bad.any():
            raise DataFormatError(path, f"{key} must hold only 0 and 1; found {mask[bad][0]:g} at {_cell(bad)}")
        masks[key] = mask == 1
        if not masks[key].any():
            raise DataFormatError(path, f"{key} marks no rating")
    overlap = masks["Otraining"] & masks["Otest"]
    if overlap.any():
        raise DataFormatError(
            path, f"Otraining and Otest overlap in {int(overlap.sum())} entries, the first at {_cell(overlap)}"
        )
    for key, graph in side.items():
        size = ratings.shape[0] if SIDE_GRAPHS[key][0] == "user" else ratings.shape[1]
        if graph.shape != (size, size):
            raise DataFormatError(path, f"{key} has shape {graph.shape}, expected ({size}, {size}) to match M")
        if not np.isfinite(graph.data).all():
            raise DataFormatError(path, f"{key} has non-finite entries")
    if "W_movies" in side and "W_tracks" in side:
        raise DataFormatError(path, "both W_movies and W_tracks are present; expected at most one item graph")
    return MontiMatrices(path, ratings, masks["Otraining"], masks["Otest"], side)


def masked_ratings(
    matrices: MontiMatrices, mask: np.ndarray, key: str, scale: RatingScale
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user, item, rating)`` of the entries of ``mask`` in row-major order, checked against ``scale``."""
    user, item = np.nonzero(mask)
    rating = matrices.ratings[user, item]
    unrated = rating == 0
    if unrated.any():
        first = int(np.flatnonzero(unrated)[0])
        raise DataFormatError(
            matrices.path,
            f"{key} marks {int(unrated.sum())} entries where M is 0 (unrated), "
            f"the first at row {user[first] + 1}, column {item[first] + 1}",
        )
    outside = ~scale.contains(rating)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise DataFormatError(
            matrices.path,
            f"{key} marks {int(outside.sum())} ratings outside the scale {scale}, "
            f"the first M(row {user[first] + 1}, column {item[first] + 1}) = {rating[first]:g}",
        )
    return user.astype(np.int64), item.astype(np.int64), rating


class MontiDataset(RatingGraphDataset):
    r"""A matrix of Monti et al. (2017) as a rating graph, with its given train/test split.

    ``dataset[0]`` is a :class:`~torch_geometric.data.HeteroData` laid out like
    :class:`~gnnrec.data.MovieLens100K`'s (items are the ``movie`` node type, for every
    dataset, so models need no special case): edge type ``('user', 'rates', 'movie')``
    with the training ratings as message edges, its reverse ``('movie', 'rated_by',
    'user')`` and supervision edges ``{train,val,test}_edge_label_index`` / ``_edge_label``.
    With ``side_graphs`` the file's ``W_users`` becomes ``('user', 'follows', 'user')`` and
    ``W_movies`` / ``W_tracks`` becomes ``('movie', 'similar', 'movie')``, each with
    ``edge_index`` (every non-zero entry, both directions as stored) and ``edge_weight``.

    The originals have no node features. ``x`` is a single constant column of ones, so
    feature-based layers get a valid input without an identity matrix that would tie a
    model to one node set; embedding-based models ignore it.

    ``rating_levels`` are the sorted distinct ratings marked by the two masks; every such
    rating must lie on the dataset's declared :class:`RatingScale` (``rating_scale``).

    The only split, ``given``, is the file's: ``Otraining`` entries are train (minus
    ``val_fraction`` of each user's, carved out for validation with ``seed``) and ``Otest``
    entries are test. Ratings have no timestamps (``time`` is 0). Node ``raw_id``\ s are the
    1-based MATLAB row (user) and column (item) numbers.

    The file is looked up in ``source_dir``, ``$<env_var>``, ``root/raw/<name>``; it is
    not downloaded (there is no official public URL).

    Args:
        root: writable dataset root (default ``$GNNREC_HOME/datasets/<name>``).
        split: ``given``.
        source_dir: a directory holding ``training_test_dataset.mat``.
        val_fraction: share of each user's training ratings carved out for validation.
        seed: seed of the validation carve-out.
        side_graphs: add the ``W_*`` side graphs as extra edge types.
    """

    raw_folder: ClassVar[str]
    rating_scale: ClassVar[RatingScale]
    splits = ("given",)
    default_split = "given"

    def __init__(
        self, root: str | Path | None = None, split: str | None = None, *, side_graphs: bool = True, **common: Any
    ) -> None:
        self.side_graphs = bool(side_graphs)
        super().__init__(root, split, **common)

    @property
    def raw_file_names(self) -> list[str]:
        return [MAT_FILE]

    def _settings(self) -> dict:
        return {
            "split": self.split,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "side_graphs": self.side_graphs,
        }

    def download(self) -> None:
        where = (
            f"the directory given by source_dir or ${self.env_var} ({self.raw_dir})"
            if self._source_dir is not None
            else f"{self.raw_dir}, or point source_dir / ${self.env_var} at the directory holding it"
        )
        raise DataFormatError(
            Path(self.raw_dir) / MAT_FILE,
            f"{self.display_name} not found and it cannot be downloaded: put {MAT_FILE} of Monti et al. "
            f"(shipped with the GC-MC code, github.com/riannevdberg/gc-mc) into {where}",
        )

    def process(self) -> None:
        matrices = read_monti_mat(Path(self.raw_dir) / MAT_FILE)
        num_users, num_items = matrices.ratings.shape
        train = masked_ratings(matrices, matrices.train_mask, "Otraining", self.rating_scale)
        test = masked_ratings(matrices, matrices.test_mask, "Otest", self.rating_scale)
        levels = np.unique(np.concatenate([train[2], test[2]])).tolist()

        def with_time(part: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
            return (*part, np.zeros(len(part[0]), dtype=np.int64))

        data = self._build(
            torch.ones(num_users, 1), torch.ones(num_items, 1), with_time(train), with_time(test), levels
        )
        if self.side_graphs:
            for key, matrix in matrices.side.items():
                coo = matrix.tocoo()
                store = data[SIDE_GRAPHS[key]]
                store.edge_index = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
                store.edge_weight = torch.from_numpy(coo.data.astype(np.float32))
        data["user"].raw_id = torch.arange(1, num_users + 1)
        data["movie"].raw_id = torch.arange(1, num_items + 1)
        scale = self.rating_scale
        data.rating_scale = torch.tensor([scale.low, scale.high, scale.step], dtype=torch.float32)
        data.side_graph_variables = sorted(matrices.side) if self.side_graphs else []
        self._save_graph(data)


class Douban(MontiDataset):
    """Douban (Monti et al.): 3,000 users × 3,000 movies, ratings 1–5, user social graph ``W_users``."""

    name = "douban"
    raw_folder = "douban"
    display_name = "Douban"
    env_var = "GNNREC_DOUBAN_DIR"
    rating_scale = RatingScale(1.0, 5.0, 1.0)


class Flixster(MontiDataset):
    """Flixster (Monti et al.): 3,000 × 3,000, half stars 0.5–5, ``W_users`` and ``W_movies`` graphs."""

    name = "flixster"
    raw_folder = "flixster"
    display_name = "Flixster"
    env_var = "GNNREC_FLIXSTER_DIR"
    rating_scale = RatingScale(0.5, 5.0, 0.5)


class YahooMusic(MontiDataset):
    """YahooMusic (Monti et al.): 3,000 users × 3,000 tracks, ratings 1–100, track graph ``W_tracks``."""

    name = "yahoo-music"
    raw_folder = "yahoo_music"
    display_name = "YahooMusic"
    env_var = "GNNREC_YAHOO_MUSIC_DIR"
    rating_scale = RatingScale(1.0, 100.0, 1.0)
