"""Shared fixtures: tiny datasets in the ML-100k formats, and the real data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

from gnnrec.data import MovieLens100K, RatingSplit
from gnnrec.testing.ml100k import write_ml100k_fixture
from gnnrec.threads import available_cores

REAL_ML100K = Path(
    os.environ.get("GNNREC_ML100K_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-100k"
)


# ---------------------------------------------------------------------- parallel runs (pytest-xdist)
MAX_TEST_WORKERS = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker per core this process may use (CPU affinity and cgroup quota, as gnnrec counts
    them), at most MAX_TEST_WORKERS: past that each worker's start-up (torch, the session fixtures) and the one
    long test outweigh the gain. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still overrides it (None: xdist decides)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return min(MAX_TEST_WORKERS, available_cores())


def pytest_configure(config: pytest.Config) -> None:
    """Under ``pytest -n N`` each worker gets its share of the cores (at least one thread), so that N workers do
    not oversubscribe them; the share also goes to the subprocesses the tests start (``OMP_NUM_THREADS``)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 0:
        share = max(1, available_cores() // workers)
        torch.set_num_threads(share)
        os.environ["OMP_NUM_THREADS"] = str(share)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, run the ``slow`` tests first (a stable sort keeps the rest in file order): the
    longest test then starts at once instead of ending the run alone on one worker."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def _session_home(tmp_path_factory):
    """Session- and module-scoped fixtures write under a temporary GNNREC_HOME too (one per xdist worker)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GNNREC_HOME", str(tmp_path_factory.mktemp("session_home")))
        yield


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test writes caches under its own temporary GNNREC_HOME, never into ../shared."""
    monkeypatch.setenv("GNNREC_HOME", str(tmp_path_factory.mktemp("gnnrec_home")))


@pytest.fixture(scope="session")
def ml100k_fixture_dir(tmp_path_factory) -> Path:
    """A tiny dataset (40 users, 60 movies, 1,000 ratings) in the ML-100k file formats. Do not modify."""
    return write_ml100k_fixture(tmp_path_factory.mktemp("ml100k_fixture"))


@pytest.fixture
def tiny_split(ml100k_fixture_dir, tmp_path) -> RatingSplit:
    """The u1 split of the tiny fixture dataset."""
    return MovieLens100K(tmp_path / "root", split="u1", source_dir=ml100k_fixture_dir, log=False).rating_split()


@pytest.fixture(scope="session")
def real_ml100k_dir() -> Path:
    if not (REAL_ML100K / "u.data").is_file():
        pytest.skip(f"real MovieLens-100k not found at {REAL_ML100K} (set GNNREC_ML100K_DIR)")
    return REAL_ML100K


@pytest.fixture(scope="session")
def real_u1_split(real_ml100k_dir, tmp_path_factory) -> RatingSplit:
    root = tmp_path_factory.mktemp("real_root")
    return MovieLens100K(root, split="u1", source_dir=real_ml100k_dir, log=False).rating_split()


# ---------------------------------------------------------------------- property-based tests and payload files
settings.register_profile(
    "gnnrec",
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("thorough", parent=settings.get_profile("gnnrec"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gnnrec"))


class _Payload:
    """Unpickling this creates ``marker``: the proof that a file's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def payload_pickle(tmp_path):
    """``write(path, wrap=dict)``: a ``torch.save`` pickle at ``path`` that would create ``marker`` if unpickled."""
    import torch

    marker = tmp_path / "PAYLOAD-RAN"

    def write(path: Path, value: object = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": 1, "model": "mf", "state": _Payload(marker)} if value is None else value, path)
        return path

    write.marker = marker
    write.payload = lambda: _Payload(marker)
    return write


@pytest.fixture(scope="session")
def u1_split(ml100k_fixture_dir, tmp_path_factory) -> RatingSplit:
    """The u1 split of the tiny fixture dataset, shared by the session's tests. Do not modify."""
    root = tmp_path_factory.mktemp("u1_split")
    return MovieLens100K(root, split="u1", source_dir=ml100k_fixture_dir, log=False).rating_split()


@pytest.fixture(scope="session")
def gnn_checkpoint(u1_split, tmp_path_factory) -> Path:
    """A GNN (test config) fitted on the tiny fixture's u1 split, saved once per session; load it with
    ``RatingModel.load(path, split)``."""
    from gnnrec.models import create_model

    path = tmp_path_factory.mktemp("gnn_checkpoint") / "model.safetensors"
    return create_model("gnn", test_config=True).fit(u1_split).save(path)
