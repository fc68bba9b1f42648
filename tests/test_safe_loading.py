"""Nothing gnnrec reads runs code: checkpoints, dataset caches and benchmark cells, shown with payload files."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from gnnrec.benchmark import run_benchmark
from gnnrec.benchmark.runner import path_in_run
from gnnrec.cli import main
from gnnrec.data import MovieLens100K
from gnnrec.models import RatingModel, create_model
from gnnrec.models.checkpoint import CheckpointError, convert_pickle_checkpoint, read_checkpoint, write_checkpoint
from gnnrec.tensor_files import PickleFileError, TensorFileError, read_tensor_file, write_tensor_file
from gnnrec.utils import remove_stray_temporaries


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def fitted_mf(tiny_split):
    torch.manual_seed(0)
    return create_model("mf", {"max_epochs": 3}, test_config=True).fit(tiny_split)


# ---------------------------------------------------------------------- the file format
def test_tensor_file_round_trips_nested_values(tmp_path):
    base = torch.arange(10)
    value = {
        "tensor": torch.randn(3, 2),
        "view": base[2:5],
        "same_storage": base,
        "one_element": torch.arange(10).as_strided((1,), (5,)),
        "bf16": torch.ones(2, dtype=torch.bfloat16),
        "mask": torch.tensor([True, False]),
        "empty": torch.zeros(0, 4),
        "scalar": torch.tensor(3.0),
        "sparse": torch.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (2, 2)),
        "array": np.arange(4.0),
        "tuple": (1, (2, "x")),
        ("user", "rates", "movie"): {"$odd": 1, 7: None},
        "floats": [float("nan"), float("inf"), -0.5, 2**70],
        "text": ["é", ""],
    }
    write_tensor_file(tmp_path / "f.safetensors", value, "test-kind")
    loaded, metadata = read_tensor_file(tmp_path / "f.safetensors", "test-kind")
    assert metadata["kind"] == "test-kind" and len(metadata["sha256"]) == 64
    for key in ("tensor", "view", "same_storage", "one_element", "bf16", "mask", "empty", "scalar"):
        torch.testing.assert_close(loaded[key], value[key])
    torch.testing.assert_close(loaded["sparse"].to_dense(), value["sparse"].to_dense())
    np.testing.assert_array_equal(loaded["array"], value["array"])
    assert loaded["tuple"] == (1, (2, "x")) and loaded[("user", "rates", "movie")] == {"$odd": 1, 7: None}
    assert np.isnan(loaded["floats"][0]) and loaded["floats"][1:] == [float("inf"), -0.5, 2**70]
    assert loaded["text"] == ["é", ""]
    with pytest.raises(TensorFileError, match="not a other-kind"):
        read_tensor_file(tmp_path / "f.safetensors", "other-kind")


def test_a_header_length_whose_low_byte_opens_a_pickle_still_reads(tmp_path):
    """A safetensors file starts with its header length (little-endian): 384 bytes begin with 0x80, the byte
    that opens a raw pickle; such a file is still a tensor file, and a real pickle is still refused."""
    path = tmp_path / "value.safetensors"
    for pad in range(256):
        write_tensor_file(path, {"x": torch.arange(3)}, "test", metadata={"pad": "p" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("no padding gave a header length with low byte 0x80")
    value, _ = read_tensor_file(path, "test")
    assert torch.equal(value["x"], torch.arange(3))
    pickled = tmp_path / "value.pkl"
    pickled.write_bytes(pickle.dumps({"x": 1}, protocol=2))  # b"\x80\x02..."
    with pytest.raises(PickleFileError):
        read_tensor_file(pickled, "test")


def test_values_that_json_cannot_hold_are_refused_on_writing(tmp_path):
    with pytest.raises(TypeError, match="cannot store a set"):
        write_tensor_file(tmp_path / "f.safetensors", {"x": {1, 2}}, "test-kind")


def _retamper(path: Path, change) -> None:
    """Rewrite ``path`` with ``change(tensors)`` applied but the old metadata (and so the old SHA-256) kept."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 - not a dict
    change(tensors)
    save_file(tensors, str(path), metadata=metadata)


def test_a_checkpoint_with_one_weight_changed_is_refused(fitted_mf, tiny_split, ml100k_fixture_dir, tmp_path, capsys):
    path = fitted_mf.save(tmp_path / "model.safetensors")
    torch.testing.assert_close(RatingModel.load(path, tiny_split).score_matrix(), fitted_mf.score_matrix())

    def nudge(tensors):  # the largest weight matrix, one entry moved by 0.5
        name = max((n for n, t in tensors.items() if t.is_floating_point()), key=lambda n: tensors[n].numel())
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[0] += 0.5

    _retamper(path, nudge)
    with pytest.raises(CheckpointError, match="SHA-256"):
        RatingModel.load(path)
    code, _, err = _cli(capsys, "evaluate", path, "--data-dir", ml100k_fixture_dir)
    assert code == 2 and "fails its SHA-256 check" in _one_line(err)


# ---------------------------------------------------------------------- payload files: no code runs
def test_a_pickle_checkpoint_runs_no_code_and_says_how_to_convert(payload_pickle, ml100k_fixture_dir, tmp_path, capsys):
    evil = payload_pickle(tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"gnnrec convert --trust .*evil\.pt"):
        RatingModel.load(evil)
    run = tmp_path / "old-run"
    payload_pickle(run / "model.pt")  # a run directory of an older version
    for target in (evil, run):
        code, _, err = _cli(capsys, "evaluate", target, "--data-dir", ml100k_fixture_dir)
        assert code == 2 and "unpickling can run code" in _one_line(err)
    code, _, err = _cli(capsys, "recommend", "--checkpoint", evil, "--user", "1", "--data-dir", ml100k_fixture_dir)
    assert code == 2 and "gnnrec convert --trust" in _one_line(err)
    assert not payload_pickle.marker.exists()


def test_convert_needs_trust_and_never_unpickles_code(fitted_mf, tiny_split, payload_pickle, tmp_path, capsys):
    payload = read_checkpoint(fitted_mf.save(tmp_path / "new.safetensors"))
    old = tmp_path / "model.pt"
    torch.save({**payload, "format": 1}, old)  # what older versions wrote
    code, _, err = _cli(capsys, "convert", old, tmp_path / "converted.safetensors")
    assert code == 2 and "--trust" in _one_line(err) and not (tmp_path / "converted.safetensors").exists()
    code, out, _ = _cli(capsys, "convert", "--trust", old, tmp_path / "converted.safetensors")
    assert code == 0 and "'mf' checkpoint" in out
    loaded = RatingModel.load(tmp_path / "converted.safetensors", tiny_split)
    torch.testing.assert_close(loaded.score_matrix(), fitted_mf.score_matrix())

    evil = payload_pickle(tmp_path / "evil.pt")  # even trusted, only the restricted unpickler reads it
    code, _, err = _cli(capsys, "convert", "--trust", evil, tmp_path / "evil.safetensors")
    assert code == 2 and "cannot be read as a gnnrec pickle checkpoint" in _one_line(err)
    assert not payload_pickle.marker.exists() and not (tmp_path / "evil.safetensors").exists()
    with pytest.raises(CheckpointError, match="not a pickle checkpoint"):
        convert_pickle_checkpoint(tmp_path / "converted.safetensors", tmp_path / "again.safetensors")


def _cache_file(root: Path) -> Path:
    (cache,) = (root / "processed").glob("*.safetensors")
    return cache


def test_planted_dataset_cache_files_run_no_code(payload_pickle, ml100k_fixture_dir, tmp_path, capsys, monkeypatch):
    root = tmp_path / "home" / "datasets" / "ml-100k"
    monkeypatch.setenv("GNNREC_HOME", str(tmp_path / "home"))
    assert _cli(capsys, "data", "--data-dir", ml100k_fixture_dir)[0] == 0
    cache = _cache_file(root)
    for name in ("pre_transform.pt", "pre_filter.pt", cache.with_suffix(".pt").name):
        payload_pickle(root / "processed" / name, {"x": payload_pickle.payload()})
    assert _cli(capsys, "data", "--data-dir", ml100k_fixture_dir)[0] == 0  # the planted files are never read
    payload_pickle(cache, {"x": payload_pickle.payload()})  # the cache itself replaced by a pickle
    with pytest.warns(UserWarning, match="rebuilding the processed cache"):
        split = MovieLens100K(root, source_dir=ml100k_fixture_dir, log=False).rating_split()
    assert split.num_users == 40 and not payload_pickle.marker.exists()
    read_tensor_file(_cache_file(root), "gnnrec-dataset-cache")  # rebuilt as a safetensors cache


@pytest.mark.parametrize("damage", ["truncated", "empty", "changed"])
def test_an_unreadable_cache_is_rebuilt_with_a_warning(damage, ml100k_fixture_dir, tmp_path):
    first = MovieLens100K(tmp_path, source_dir=ml100k_fixture_dir, log=False).rating_split()
    cache = _cache_file(tmp_path)
    data = cache.read_bytes()
    if damage == "changed":
        _retamper(cache, lambda tensors: tensors.__setitem__("t0", torch.zeros_like(tensors["t0"])))
    else:
        cache.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    (tmp_path / "processed" / "pre_transform.pt").write_bytes(b"")  # an empty pre_transform.pt is never read
    with pytest.warns(UserWarning, match="rebuilding the processed cache"):
        again = MovieLens100K(tmp_path, source_dir=ml100k_fixture_dir, log=False).rating_split()
    assert again.fingerprint == first.fingerprint and torch.equal(again.train.rating, first.train.rating)
    rebuilt, _ = read_tensor_file(cache, "gnnrec-dataset-cache")  # rebuilt whole, atomically
    (tmp_path / "copy.safetensors").write_bytes(data)
    original, _ = read_tensor_file(tmp_path / "copy.safetensors", "gnnrec-dataset-cache")
    assert rebuilt.keys() == original.keys() and str(rebuilt) == str(original)
    assert not list((tmp_path / "processed").glob("*.tmp"))


def test_torch_load_is_only_ever_called_with_weights_only(
    fitted_mf, tiny_split, ml100k_fixture_dir, tmp_path, monkeypatch
):
    calls = []
    original = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    MovieLens100K(tmp_path / "root", source_dir=ml100k_fixture_dir, log=False).rating_split()
    RatingModel.load(fitted_mf.save(tmp_path / "m.safetensors"), tiny_split)
    torch.save({**read_checkpoint(tmp_path / "m.safetensors"), "format": 1}, tmp_path / "old.pt")
    convert_pickle_checkpoint(tmp_path / "old.pt", tmp_path / "converted.safetensors")
    assert calls == [True]  # the conversion alone unpickles, and with weights_only=True
    sources = Path(__file__).resolve().parents[1] / "gnnrec"
    unsafe = [p for p in sources.rglob("*.py") if re.search(r"weights_only\s*=\s*False", p.read_text())]
    assert unsafe == []


# ---------------------------------------------------------------------- malformed checkpoints
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["state"].pop("module"), "KeyError"),
        (lambda p: p["state"]["module"].__setitem__("user_factor", torch.zeros(3, 2)), "size mismatch"),
        (lambda p: p.__setitem__("model", "no-such-model"), "unknown model"),
        (lambda p: p["split"].pop("fingerprint"), "malformed split record"),
        (lambda p: p.__setitem__("seen", torch.zeros(3)), "'seen' must be a [2, E] int64 tensor"),
        (lambda p: p.__setitem__("seen", torch.full((2, 1), 10**6)), "outside the split's users"),
        (lambda p: p.__setitem__("history", {"a": 1}), "'history' is missing or not a list"),
        (lambda p: p["config"].__setitem__("bogus", 1), "unknown config key"),
    ],
)
def test_malformed_checkpoint_payloads_give_one_checkpoint_error(change, message, fitted_mf, tmp_path, capsys):
    path = fitted_mf.save(tmp_path / "model.safetensors")
    payload = read_checkpoint(path)
    change(payload)
    write_checkpoint(path, payload)  # a valid file with a valid SHA-256 around a bad payload
    with pytest.raises(CheckpointError) as info:
        RatingModel.load(path)
    assert message in str(info.value)
    code, _, err = _cli(capsys, "evaluate", path, "--dataset", "ml-100k")
    assert code == 2 and message in _one_line(err)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"\x08\x00\x00\x00\x00\x00\x00\x00{}"])
def test_files_that_are_no_checkpoint_are_refused(content, tmp_path, capsys):
    (tmp_path / "model.safetensors").write_bytes(content)
    with pytest.raises(CheckpointError):
        RatingModel.load(tmp_path / "model.safetensors")
    code, _, err = _cli(capsys, "evaluate", tmp_path)
    assert code == 2 and "model.safetensors" in _one_line(err)


def test_a_safetensors_file_of_another_kind_is_no_checkpoint(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "weights.safetensors"))
    with pytest.raises(CheckpointError, match="not a gnnrec-checkpoint"):
        RatingModel.load(tmp_path / "weights.safetensors")
    with pytest.raises(PickleFileError):
        torch.save({"w": torch.zeros(2)}, tmp_path / "w.pt")
        read_tensor_file(tmp_path / "w.pt", "gnnrec-checkpoint")


# ---------------------------------------------------------------------- benchmark cells
ABLATION = {
    "name": "safety",
    "splits": ["u1"],
    "seeds": [0],
    "models": [
        {"model": "bias", "label": "bias-a", "overrides": {"reg_grid": [1.0]}},
        {"model": "bias", "label": "bias-b", "overrides": {"reg_grid": [30.0]}},
    ],
    "select_on": "validation",
}


def _run(suite, run_dir, data_dir, **kwargs):
    return run_benchmark(suite, run_dir, data_dir=data_dir, tensorboard=False, plots=False, progress=False,
                         log=lambda line: None, **kwargs)  # fmt: skip


def test_a_cell_checkpoint_outside_the_run_is_never_loaded(payload_pickle, ml100k_fixture_dir, tmp_path):
    run_dir = tmp_path / "run"
    first = _run(ABLATION, run_dir, ml100k_fixture_dir)
    chosen = first.results["selection"]["chosen"]
    evil = payload_pickle(tmp_path / "elsewhere" / "evil.safetensors", {"x": payload_pickle.payload()})
    for cell in (run_dir / "cells").glob("*.json"):
        record = json.loads(cell.read_text())
        record["checkpoint"] = str(evil)  # an absolute path planted in every finished cell
        record["metrics"] = {}
        cell.write_text(json.dumps(record))
    again = _run(ABLATION, run_dir, ml100k_fixture_dir)
    assert again.results["run"]["cells_reused"] == 0  # refused as evidence: fitted anew
    assert again.results["selection"]["chosen"] == chosen
    assert all(record["checkpoint"].startswith("models/") for record in again.cells)
    assert not payload_pickle.marker.exists()
    for bad in (str(evil), "../elsewhere/evil.safetensors", "", None):
        with pytest.raises(ValueError, match="run directory|relative path"):
            path_in_run(run_dir, bad)
    assert path_in_run(run_dir, "models/x.safetensors") == (run_dir / "models" / "x.safetensors").resolve()


def test_pickled_suites_and_cells_run_no_code(payload_pickle, ml100k_fixture_dir, tmp_path, capsys):
    suite = payload_pickle(tmp_path / "suite.json", {"x": payload_pickle.payload()})
    line = _one_line(_cli(capsys, "benchmark", suite, "--out", tmp_path / "run")[2])
    assert "suite file" in line and str(suite) in line
    run_dir = tmp_path / "resumed"
    _run(QUICK, run_dir, ml100k_fixture_dir)
    for cell in (run_dir / "cells").glob("*.json"):
        payload_pickle(cell, {"x": payload_pickle.payload()})  # a cell record replaced by a pickle
    again = _run(QUICK, run_dir, ml100k_fixture_dir)
    assert again.results["run"]["cells_reused"] == 0 and again.results["run"]["cells_failed"] == 0
    payload_pickle(run_dir / "suite.json", {"x": payload_pickle.payload()})
    assert "suite.json" in _one_line(_cli(capsys, "benchmark", "--resume", run_dir)[2])
    assert not payload_pickle.marker.exists()


QUICK = {"name": "safety-quick", "splits": ["u1"], "seeds": [0], "models": ["global-mean", "bias"]}


def test_a_cell_whose_npz_is_missing_is_recomputed_and_stray_temporaries_go(ml100k_fixture_dir, tmp_path):
    run_dir = tmp_path / "run"
    first = _run(QUICK, run_dir, ml100k_fixture_dir)
    assert first.results["significance"]
    arrays = run_dir / "cells" / first.cells[1]["per_user"]
    arrays.unlink()
    dead = run_dir / "cells" / ".x.json.999999999.abc_123.tmp"  # left by a killed process
    alive = run_dir / "cells" / f".y.json.{os.getpid()}.abc_123.tmp"  # being written by a running one
    dead.write_text("{")
    alive.write_text("{")
    again = _run(QUICK, run_dir, ml100k_fixture_dir)
    assert again.results["run"]["cells_reused"] == 1 and arrays.is_file()
    assert again.results["significance"]["rating"]["rows"]
    assert not dead.exists() and alive.exists()
    assert remove_stray_temporaries(run_dir / "cells") == []


def _mark(data):
    data.marked = True
    return data


def test_a_pre_transform_names_its_own_cache(ml100k_fixture_dir, tmp_path):
    MovieLens100K(tmp_path, source_dir=ml100k_fixture_dir, log=False)
    transformed = MovieLens100K(tmp_path, source_dir=ml100k_fixture_dir, log=False, pre_transform=_mark)
    again = MovieLens100K(tmp_path, source_dir=ml100k_fixture_dir, log=False, pre_transform=_mark)
    assert transformed[0].marked and again[0].marked
    assert len(list((tmp_path / "processed").glob("*.safetensors"))) == 2  # the plain and the transformed cache
    assert not list((tmp_path / "processed").glob("*.pt"))
