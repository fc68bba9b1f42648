"""Every bad input a command can meet: one line on stderr naming what is wrong and where, exit status 2,
checked before anything is fitted or written."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from gnnrec.cli import main
from gnnrec.data import load_split
from gnnrec.testing import write_csv_fixture

BOM = b"\xef\xbb\xbf"


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _refused(capsys, *argv) -> str:
    """Run a command that must fail cleanly; its one stderr line."""
    code, _, err = _cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    return lines[0]


def _copy(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "data"))


def _set_line(path: Path, line: int, text: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = text
    path.write_bytes(b"\n".join(lines))


# ---------------------------------------------------------------------- data files
@pytest.mark.parametrize(
    ("file", "line", "text", "split", "message"),
    [
        ("u.data", 2, b"12345678901234567890123\t1\t5\t881250949", "random",
         "u.data, line 2: user id 12345678901234567890123 does not fit in a 64-bit integer"),
        ("u1.base", 3, b"1\t99999999999999999999999\t5\t881250949", "u1",
         "u1.base, line 3: movie id 99999999999999999999999 does not fit in a 64-bit integer"),
        ("u.data", 4, b"1\t2\t5\t1e308", "random", "u.data, line 4: timestamp must be an integer, got '1e308'"),
        ("u.data", 3, b"1\t\xff2\t5\t881250949", "random",
         "u.data, line 3: byte 0xff at column 3 is not valid utf-8 text"),
        ("u.user", 2, b"2|3\xe9|M|other|10002", "u1", "u.user, line 2: byte 0xe9 at column 4 is not valid utf-8 text"),
        ("u.data", 2, "1\t\u0662\t5\t881250949".encode(), "random", "u.data, line 2: movie id must be an integer"),
    ],
)  # fmt: skip
def test_bad_movielens_files_name_file_and_line(file, line, text, split, message, ml100k_fixture_dir, tmp_path, capsys):
    source = _copy(ml100k_fixture_dir, tmp_path)
    _set_line(source / file, line, text)
    assert message in _refused(capsys, "data", "--data-dir", source, "--split", split)
    assert not list((tmp_path / "home").rglob("*.safetensors"))  # nothing cached


def test_a_utf8_byte_order_mark_is_accepted_by_every_movielens_file(ml100k_fixture_dir, tmp_path, capsys):
    plain = load_split("ml-100k", "u1", source_dir=ml100k_fixture_dir, log=False)
    source = _copy(ml100k_fixture_dir, tmp_path)
    for name in ("u.data", "u.user", "u.item", "u.genre", "u.occupation", "u1.base", "u1.test"):
        (source / name).write_bytes(BOM + (source / name).read_bytes())
    marked = load_split("ml-100k", "u1", source_dir=source, log=False)
    assert (marked.num_users, marked.num_movies, len(marked.train)) == (
        plain.num_users,
        plain.num_movies,
        len(plain.train),
    )
    assert marked.graph["movie"].title == plain.graph["movie"].title
    assert _cli(capsys, "data", "--data-dir", source)[0] == 0


@pytest.fixture
def csv_source(tmp_path) -> Path:
    return write_csv_fixture(tmp_path / "csv", num_users=8, num_items=10, ratings_per_user=5, unrated_users=0)


def _csv_rows(source: Path) -> list[list[str]]:
    return [line.split(",") for line in (source / "ratings.csv").read_text().splitlines()]


def _write_csv_rows(source: Path, rows: list[list[str]], bom: bool = False) -> None:
    (source / "ratings.csv").write_bytes((BOM if bom else b"") + "\n".join(",".join(r) for r in rows).encode())


def test_csv_ids_that_are_huge_or_non_ascii_numbers_stay_strings(csv_source, capsys):
    rows = _csv_rows(csv_source)
    renamed = {rows[1][0]: "123456789012345678901234567890", rows[2][0]: "\u0661\u0662\u0663"}
    rows = [rows[0]] + [[renamed.get(r[0], r[0]), *r[1:]] for r in rows[1:]]
    _write_csv_rows(csv_source, rows, bom=True)
    split = load_split("csv", source_dir=csv_source, log=False)
    ids = split.graph["user"].ids
    assert set(renamed.values()) <= set(ids) and "raw_id" not in split.graph["user"]
    assert split.graph["movie"].ids[0].startswith("i")
    assert _cli(capsys, "data", "--dataset", "csv", "--data-dir", csv_source)[0] == 0


def test_csv_integer_ids_give_raw_ids_only_when_plain(csv_source):
    rows = _csv_rows(csv_source)
    numbers = {old: str(index + 1) for index, old in enumerate(dict.fromkeys(r[0] for r in rows[1:]))}
    _write_csv_rows(csv_source, [rows[0]] + [[numbers[r[0]], *r[1:]] for r in rows[1:]])
    split = load_split("csv", source_dir=csv_source, log=False)
    assert split.graph["user"].raw_id.tolist() == [int(v) for v in split.graph["user"].ids]


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (2, "1e308", "rating 1e308 is out of range: it does not fit in float32"),
        (2, "nan", "rating must be a number, got 'nan'"),
        (3, "1e30", "time 1e30 does not fit in a 64-bit integer"),
    ],
)
def test_csv_values_are_checked_in_the_dtype_they_are_stored_in(column, value, message, csv_source, capsys):
    rows = _csv_rows(csv_source)
    rows[3][column] = value
    _write_csv_rows(csv_source, rows)
    line = _refused(capsys, "data", "--dataset", "csv", "--data-dir", csv_source)
    assert f"ratings.csv, line 4: {message}" in line


def test_a_non_utf8_csv_byte_names_its_line(csv_source, capsys):
    data = (csv_source / "ratings.csv").read_bytes().split(b"\n")
    data[5] = data[5].replace(b",", b"\xff,", 1)
    (csv_source / "ratings.csv").write_bytes(b"\n".join(data))
    assert "ratings.csv, line 6: byte 0xff" in _refused(capsys, "data", "--dataset", "csv", "--data-dir", csv_source)


# ---------------------------------------------------------------------- suites
SUITE = {"name": "errors", "splits": ["u1"], "seeds": [0], "models": ["global-mean"]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seeds": [None]}, "suite 'seeds' must hold integers, got None"),
        ({"seeds": [1.7]}, "suite 'seeds' must hold integers, got 1.7"),
        ({"seeds": [True]}, "suite 'seeds' must hold integers, got True"),
        ({"k": "ten"}, "suite 'k' (the top-K cutoff) must be a positive integer, got 'ten'"),
        ({"k": -1}, "suite 'k' (the top-K cutoff) must be a positive integer, got -1"),
        ({"relevance_threshold": "high"}, "suite 'relevance_threshold' must be a finite number or null, got 'high'"),
        ({"selection_metric": "foo", "select_on": "validation"}, "unknown selection metric 'foo'"),
        ({"selection_metric": "ndcg@5", "select_on": "validation"}, "needs the cutoff of 'k' (10)"),
        ({"name": "../escape"}, "suite 'name' must be letters, digits"),
        ({"name": "a/b"}, "suite 'name' must be letters, digits"),
        ({"splits": ["u9"]}, "suite split 'u9' is not a split of ml-100k"),
        ({"val_fraction": 2}, "suite 'val_fraction' must be a number in [0, 1)"),
        ({"refit": "yes"}, "suite 'refit' must be true or false"),
        ({"models": [{"model": "mf", "overrides": {"max_epochs": "x"}}]}, "config key 'max_epochs' expects int"),
        ({"models": [{"model": "mf", "overrides": {"max_epochs": 1.5}}]}, "config key 'max_epochs' expects int"),
        ({"overrides": {"mf": {"lr": [1]}}, "models": ["mf"]}, "config key 'lr' expects float"),
    ],
)
def test_bad_suite_fields_are_refused_before_any_fit(change, message, ml100k_fixture_dir, tmp_path, capsys):
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({**SUITE, **change}))
    out = tmp_path / "run"
    line = _refused(capsys, "benchmark", path, "--out", out, "--data-dir", ml100k_fixture_dir)
    assert message in line and (str(path) in line or "suite 'errors', model 'mf'" in line)
    assert not out.exists()  # refused before the run directory, let alone a fit


@pytest.mark.parametrize("text", ["[1, 2]", '"quick"', "{", "\ufeff{}"])
def test_a_suite_that_is_not_an_object_is_refused(text, tmp_path, capsys):
    path = tmp_path / "suite.json"
    path.write_text(text, encoding="utf-8")
    line = _refused(capsys, "benchmark", path, "--out", tmp_path / "run")
    assert str(path) in line and ("JSON object" in line or "not valid JSON" in line or "missing" in line)


def test_a_resumed_run_with_a_bad_stored_suite_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "suite.json").write_text(json.dumps({**SUITE, "seeds": [1.7]}))
    line = _refused(capsys, "benchmark", "--resume", run)
    assert "suite.json" in line and "got 1.7" in line


def test_seeds_given_on_the_command_line_are_checked_against_the_dataset(ml100k_fixture_dir, tmp_path, capsys):
    line = _refused(capsys, "benchmark", "quick", "--splits", "nope", "--out", tmp_path / "run")
    assert "suite split 'nope' is not a split of ml-100k" in line and not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- command options
def test_train_k_0_is_refused_before_the_fit(ml100k_fixture_dir, tmp_path, capsys):
    out = tmp_path / "run"
    line = _refused(capsys, "train", "global-mean", "-k", "0", "--data-dir", ml100k_fixture_dir, "--out", out)
    assert "-k/--k must be a positive integer" in line and not out.exists()
    assert "positive integer" in _refused(capsys, "evaluate", out, "-k", "0")


@pytest.mark.parametrize("option", ["--seed", "--data-seed"])
def test_seeds_beyond_64_bits_are_refused(option, ml100k_fixture_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "mf", "--test-config", option, str(2**70), "--data-dir", ml100k_fixture_dir, "--out", out]
    assert f"{option} must be a 64-bit integer" in _refused(capsys, *argv) and not out.exists()


@pytest.mark.parametrize(
    ("liked", "message"),
    [
        (["50", "50"], "--liked lists movie 50 twice ('50' and '50')"),
        (["7", "007:4"], "--liked lists movie 007 twice ('7' and '007:4')"),
        (["50:9"], "--liked '50:9': rating must lie in 1..5"),
        (["50:nan"], "--liked '50:nan': rating must lie in 1..5"),
        (["999"], "unknown movie id(s) 999"),
    ],
)
def test_liked_names_the_ids_as_typed(liked, message, ml100k_fixture_dir, tmp_path, capsys):
    person = ["--age", "30", "--gender", "F", "--occupation", "artist"]
    line = _refused(capsys, "recommend", *person, "--liked", *liked, "--data-dir", ml100k_fixture_dir)
    assert message in line and "index" not in line
    assert not (Path(os.environ["GNNREC_HOME"]) / "models").exists()  # no model trained for it


@pytest.fixture
def read_only(monkeypatch):
    """``make(folder)``: ``folder`` becomes unwritable (chmod; root ignores that, so writes are refused too)."""
    blocked: list[Path] = []

    def inside(path) -> bool:
        path = Path(path).absolute()
        return any(path == b or b in path.parents for b in blocked)

    def denied(path) -> PermissionError:
        return PermissionError(errno.EACCES, "Permission denied", str(path))

    original_mkdir, original_mkstemp, original_temporary = Path.mkdir, tempfile.mkstemp, tempfile.TemporaryFile

    def mkdir(self, *args, **kwargs):
        if inside(self) and not self.exists():
            raise denied(self)
        return original_mkdir(self, *args, **kwargs)

    def mkstemp(*args, dir=None, **kwargs):  # noqa: A002 - tempfile's name
        if dir is not None and inside(dir):
            raise denied(dir)
        return original_mkstemp(*args, dir=dir, **kwargs)

    def temporary(*args, dir=None, **kwargs):  # noqa: A002 - tempfile's name
        if dir is not None and inside(dir):
            raise denied(dir)
        return original_temporary(*args, dir=dir, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(tempfile, "TemporaryFile", temporary)

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        blocked.append(folder.absolute())
        folder.chmod(0o555)
        return folder

    yield make
    for folder in blocked:
        folder.chmod(0o755)


def test_a_read_only_out_folder_is_refused_before_the_fit(read_only, ml100k_fixture_dir, tmp_path, capsys):
    locked = read_only(tmp_path / "locked")
    code, out, err = _cli(
        capsys, "train", "mf", "--test-config", "--data-dir", ml100k_fixture_dir, "--out", locked / "x"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "training" not in out
    assert f"Permission denied: {locked / 'x'}" in err and "--out or $GNNREC_HOME" in err


def test_a_read_only_gnnrec_home_is_one_line(read_only, ml100k_fixture_dir, tmp_path, monkeypatch, capsys):
    home = read_only(tmp_path / "home")
    monkeypatch.setenv("GNNREC_HOME", str(home))
    line = _refused(capsys, "data", "--data-dir", ml100k_fixture_dir)
    assert "Permission denied" in line and str(home) in line
    line = _refused(capsys, "benchmark", json_suite(tmp_path), "--data-dir", ml100k_fixture_dir)
    assert "Permission denied" in line and str(home) in line


def json_suite(tmp_path: Path) -> Path:
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(SUITE))
    return path


def test_a_truncated_checkpoint_is_one_line(ml100k_fixture_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _cli(capsys, "train", "global-mean", "--data-dir", ml100k_fixture_dir, "--out", out)[0] == 0
    checkpoint = out / "model.safetensors"
    checkpoint.write_bytes(checkpoint.read_bytes()[:-7])
    assert "model.safetensors" in _refused(capsys, "evaluate", out)


@pytest.mark.parametrize("how", ["flag", "flag after the command", "environment"])
def test_debug_shows_the_traceback(how, ml100k_fixture_dir, tmp_path, capsys, monkeypatch):
    argv = ["train", "global-mean", "-k", "0", "--data-dir", ml100k_fixture_dir]
    if how == "flag":
        argv = ["--debug", *argv]
    elif how == "flag after the command":
        argv = [*argv, "--debug"]
    else:
        monkeypatch.setenv("GNNREC_DEBUG", "1")
    code, _, err = _cli(capsys, *argv)
    assert code == 2 and "Traceback (most recent call last)" in err
    assert (
        err.strip().splitlines()[-1]
        == "gnnrec train: error: -k/--k must be a positive integer (the top-K cutoff), got 0"
    )


# ---------------------------------------------------------------------- model configs
@pytest.mark.parametrize(("setting", "message"), [("device=tpu", "device"), ("lr=nan", "lr")])
def test_gnn_config_values_are_refused_before_the_fit(setting, message, ml100k_fixture_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "gnn", "--test-config", "--set", setting, "--data-dir", ml100k_fixture_dir, "--out", out]
    assert message in _refused(capsys, *argv)
    assert not out.exists()
