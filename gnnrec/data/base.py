"""Shared machinery of the rating-graph datasets: locating raw files, caching, splitting."""

from __future__ import annotations

import abc
import hashlib
import os
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch_geometric.data import HeteroData, InMemoryDataset, download_url, extract_zip

from gnnrec.data.errors import DataFormatError
from gnnrec.data.graph import build_rating_graph, fingerprint_files
from gnnrec.data.partition import carve_validation
from gnnrec.data.split import RatingSplit
from gnnrec.tensor_files import TensorFileError, read_tensor_file, write_tensor_file
from gnnrec.utils import atomic_path, gnnrec_home, remove_stray_temporaries

CACHE_KIND = "gnnrec-dataset-cache"
CACHE_SUFFIX = ".safetensors"

Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # user, movie, rating, time


def find_source(source_dir: str | Path | None, env_var: str) -> Path | None:
    """The first of ``source_dir`` and ``$env_var`` that is set; it must be an existing directory."""
    for origin, candidate in (("source_dir", source_dir), (env_var, os.environ.get(env_var))):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_dir():
                raise DataFormatError(path, f"directory given by {origin} does not exist")
            return path
    return None


def fetch_zip(
    url: str,
    md5: str,
    raw_root: str | Path,
    folder: str,
    target: str | Path,
    download: Callable,
    log: bool = True,
    *,
    instead: str = "",
) -> None:
    """Download ``url`` into ``raw_root``, check its MD5, and move its ``folder`` to ``target``.

    A zip with the wrong MD5 is deleted before the error is raised; a half-extracted
    archive never appears at ``target``. A failed download (no network, a proxy, a moved file) raises a
    :class:`DataFormatError` that names the URL and what to do ``instead``.
    """
    try:
        zip_path = download(url, str(raw_root), log=log)
    except OSError as error:  # urllib's URLError and HTTPError are OSErrors
        reason = getattr(error, "reason", None) or error
        raise DataFormatError(
            target, f"could not download {url} ({reason}); {instead or 'download it by hand'}"
        ) from None
    actual = hashlib.md5(Path(zip_path).read_bytes()).hexdigest()
    if actual != md5:
        os.remove(zip_path)
        raise DataFormatError(zip_path, f"MD5 mismatch: expected {md5}, got {actual}; file deleted")
    partial = os.path.join(raw_root, ".extracting")
    shutil.rmtree(partial, ignore_errors=True)
    extract_zip(zip_path, partial, log=log)
    extracted = os.path.join(partial, folder)
    if not os.path.isdir(extracted):
        shutil.rmtree(partial, ignore_errors=True)
        raise DataFormatError(zip_path, f"archive has no folder {folder!r}")
    os.replace(extracted, target)
    shutil.rmtree(partial, ignore_errors=True)
    os.remove(zip_path)


def year_range(year: np.ndarray) -> torch.Tensor:
    """``[min, max]`` of the known (non-zero) years; ``[0, 1]`` when none is known."""
    known = year[year > 0]
    return torch.tensor([float(known.min()), float(known.max())]) if len(known) else torch.tensor([0.0, 1.0])


def movie_features(genres: np.ndarray, year: np.ndarray) -> torch.Tensor:
    """``[genre flags, min–max year, missing-year flag]``; a missing year (0) gets the mean year."""
    low, high = year_range(year).tolist()
    known = year > 0
    scaled = np.where(known, (year - low) / max(high - low, 1.0), 0.0)
    if known.any():
        scaled = np.where(known, scaled, scaled[known].mean())
    return torch.from_numpy(np.column_stack([genres, scaled, (~known).astype(np.float64)])).float()


class RatingGraphDataset(InMemoryDataset, abc.ABC):
    r"""Base of the datasets that hold one user–movie rating graph with its train/val/test split.

    ``dataset[0]`` is a :class:`~torch_geometric.data.HeteroData` built by
    :func:`gnnrec.data.graph.build_rating_graph` (message edges = training ratings)
    carrying ``rating_levels``, ``dataset_name``, ``split_name``, ``fingerprint`` and
    ``split_settings``; :meth:`rating_split` wraps it in a :class:`~gnnrec.data.RatingSplit`.

    Raw files are looked up in ``source_dir``, then ``$<env_var>``, then
    ``root/raw/<raw_folder>``. The processed graph is cached under a name that holds a
    fingerprint of the raw files and split settings, so a changed file is never served stale.

    Subclasses set ``name``, ``env_var``, ``raw_folder``, ``splits``, ``default_split``
    (and ``url``/``md5``/``display_name`` when the raw files can be downloaded) and
    implement :attr:`raw_file_names`, :meth:`_settings` and :meth:`process` (which ends
    with :meth:`_save_graph`). A subclass's ``__init__`` takes only its own keyword-only
    settings and passes the shared ones (``source_dir``, ``val_fraction``, ``seed``,
    ``transform``, ``pre_transform``, ``force_reload``, ``log``) on as ``**common``.

    Args:
        root: writable dataset root (default ``$GNNREC_HOME/datasets/<name>``).
        split: one of ``splits`` (default ``default_split``).
        source_dir: a directory holding the raw files.
        val_fraction: share of each user's training ratings carved out for validation.
        seed: seed of the validation carve-out (and of any random split).
    """

    name: ClassVar[str]
    env_var: ClassVar[str]
    raw_folder: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    default_split: ClassVar[str]
    display_name: ClassVar[str]
    url: ClassVar[str | None] = None
    md5: ClassVar[str | None] = None
    allow_download: bool = False

    def __init__(
        self,
        root: str | Path | None = None,
        split: str | None = None,
        *,
        source_dir: str | Path | None = None,
        val_fraction: float = 0.05,
        seed: int = 0,
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        force_reload: bool = False,
        log: bool = True,
    ) -> None:
        split = self.default_split if split is None else split
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r} for {self.name}; choose one of {', '.join(self.splits)}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
        self.split = split
        self.val_fraction = float(val_fraction)
        self.seed = int(seed)
        self._source_dir = find_source(source_dir, self.env_var)
        self._fingerprint: str | None = None
        root = Path(root) if root is not None else gnnrec_home() / "datasets" / self.name
        super().__init__(str(root), transform, pre_transform, force_reload=force_reload, log=log)
        try:
            self.load(self.processed_paths[0], data_cls=HeteroData)
        except TensorFileError as error:  # truncated, damaged or planted: never trusted, rebuilt from the raw files
            warnings.warn(f"rebuilding the processed cache: {error}", stacklevel=2)
            self.process()
            self.load(self.processed_paths[0], data_cls=HeteroData)

    @property
    def raw_dir(self) -> str:
        if self._source_dir is not None:
            return str(self._source_dir)
        return os.path.join(self.root, "raw", self.raw_folder)

    @abc.abstractmethod
    def _settings(self) -> dict:
        """Every option that changes the processed graph (stored as ``split_settings``)."""

    @property
    def fingerprint(self) -> str:
        """MD5 of the raw files this split is built from, plus the split settings."""
        if self._fingerprint is None:
            digest = hashlib.md5(fingerprint_files([Path(p) for p in self.raw_paths]).encode())
            digest.update(repr(sorted(self._settings().items())).encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    @property
    def processed_file_names(self) -> list[str]:
        name = f"{self.split}-{self.fingerprint[:16]}"
        if self.pre_transform is not None:  # a cache made with another pre_transform is another file
            described = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(self.pre_transform))  # no memory address
            name += "-" + hashlib.md5(described.encode()).hexdigest()[:8]
        return [name + CACHE_SUFFIX]

    def _process(self) -> None:
        """Build the processed cache unless it exists; unlike PyG's, never reads ``pre_transform.pt``/``pre_filter.pt``.

        Those two files are pickles, and unpickling can run code; the ``pre_transform`` is part of the cache's
        name instead. A stray temporary of a killed build is removed first.
        """
        processed = Path(self.processed_dir)
        remove_stray_temporaries(processed)
        if not self.force_reload and all(Path(p).is_file() for p in self.processed_paths):
            return
        processed.mkdir(parents=True, exist_ok=True)
        self.process()

    @classmethod
    def save(cls, data_list: list[HeteroData], path: str) -> None:
        """Write the processed graph as a safetensors cache file (tensors plus a JSON skeleton, no pickle)."""
        data, slices = cls.collate(data_list)
        write_tensor_file(path, {"data": data.to_dict(), "slices": slices}, CACHE_KIND)

    def load(self, path: str, data_cls: type = HeteroData) -> None:
        """Read a cache written by :meth:`save`, checking its SHA-256 (``TensorFileError`` if it is unusable)."""
        value, _ = read_tensor_file(path, CACHE_KIND)
        if not isinstance(value, dict) or not isinstance(value.get("data"), dict):
            raise TensorFileError(f"{path} does not hold a rating graph")
        try:
            self.data = data_cls.from_dict(value["data"])
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            raise TensorFileError(f"{path} does not hold a rating graph: {error}") from None
        self.slices = value.get("slices")

    def _missing_files(self) -> list[str]:
        return [f for f in self.raw_file_names if not (Path(self.raw_dir) / f).is_file()]

    def download_hint(self) -> str:
        """What to do when the official zip cannot be downloaded."""
        return (
            f"download and unpack it by hand, then pass its {self.raw_folder}/ folder as source_dir "
            f"(--data-dir on the command line) or set ${self.env_var}"
        )

    def download(self) -> None:
        """Fetch the official zip (``url``, checked against ``md5``) when no local copy is found."""
        if self._source_dir is not None:
            raise DataFormatError(
                self._source_dir, f"missing {self.display_name} files: {', '.join(self._missing_files())}"
            )
        if self.url is None or self.md5 is None or not self.allow_download:
            how = ", or allow download" if self.url else ""
            raise DataFormatError(
                self.raw_dir, f"{self.display_name} not found; pass source_dir or set ${self.env_var}{how}"
            )
        raw_root = os.path.join(self.root, "raw")
        fetch_zip(
            self.url, self.md5, raw_root, self.raw_folder, self.raw_dir, download_url, log=self.log,
            instead=self.download_hint(),
        )  # fmt: skip

    def _carve(self, train_all: Columns, test: Columns) -> dict[str, Columns]:
        """Split ``train_all`` into train and validation with :func:`carve_validation`."""
        val_mask = carve_validation(train_all[0], self.val_fraction, self.seed)
        return {
            "train": tuple(a[~val_mask] for a in train_all),
            "val": tuple(a[val_mask] for a in train_all),
            "test": test,
        }

    def _build(
        self, user_x: torch.Tensor, movie_x: torch.Tensor, train_all: Columns, test: Columns, levels: list[float]
    ) -> HeteroData:
        return build_rating_graph(
            user_x=user_x, movie_x=movie_x, parts=self._carve(train_all, test), rating_levels=levels
        )

    def _save_graph(self, data: HeteroData) -> None:
        """Attach the identity attributes every dataset carries, then cache ``data`` atomically."""
        data.dataset_name = self.name
        data.split_name = self.split
        data.fingerprint = self.fingerprint
        data.split_settings = self._settings()
        if self.pre_transform is not None:
            data = self.pre_transform(data)
        with atomic_path(self.processed_paths[0]) as tmp:
            self.save([data], str(tmp))

    def rating_split(self) -> RatingSplit:
        """This dataset's graph wrapped with convenient accessors for models."""
        return RatingSplit(self[0])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(split={self.split!r}, val_fraction={self.val_fraction}, seed={self.seed})"
