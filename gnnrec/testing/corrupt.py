"""Random corruptions of valid dataset files, and the check that a reader meets them cleanly.

Used by the property-based tests (with a ``random.Random`` drawn by Hypothesis) and by the fuzz campaign
(``benchmarks/fuzz_readers.py``, seeded). Each reader is a :class:`ReaderCase`: a fixture writer, the files
to corrupt and a loader; :func:`check_reader` builds the dataset from a corrupted copy and classifies the
outcome as ``valid`` (a usable split), ``error`` (a :class:`~gnnrec.data.DataFormatError`) or ``uncaught``
(any other exception), and counts files left half-written in the dataset root.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

from gnnrec.data import DataFormatError

# byte strings that readers must meet: encodings, separators, numbers at the edge of their dtype, odd ids
TOKENS = [
    b"", b"\xef\xbb\xbf", b"\xff", b"\xfe\xff", b"\x00", b"\xe9", b"\xc3\xa9", b"\xd9\xa1\xd9\xa2", b"\xc2\xb2",
    b"1e308", b"-1e308", b"1e39", b"3.4e38", b"nan", b"NaN", b"inf", b"-inf", b"-0", b"0", b"-1", b"1.7", b"3.5",
    b"4.5", b"5", b"6", b"1", b"2", b"12345678901234567890123", b"9223372036854775807", b"9223372036854775808",
    b"-9223372036854775809", b"0x10", b"1_0", b" 1 ", b"+3", b"007", b"\t", b"|", b",", b"::", b":", b";",
    b"\n", b"\r\n", b"\r", b'"', b"'", b" ", b"NULL", b"None", b"M", b"F", b"(1995)", b"Action", b"1" * 400,
]  # fmt: skip
SEPARATORS = b"\t|,:\n"


def corrupt_bytes(data: bytes, rng: random.Random, max_edits: int = 3) -> bytes:
    """``data`` with 1..``max_edits`` random edits: tokens inserted or put in place of a field, bytes flipped,
    spans deleted, lines repeated or swapped, the file truncated or given a byte-order mark."""
    out = bytearray(data)
    for _ in range(rng.randint(1, max_edits)):
        kind = rng.randrange(9)
        size = len(out)
        position = rng.randrange(size + 1)
        if kind == 0:  # a token in place of the field around a position
            start = position
            while start > 0 and out[start - 1] not in SEPARATORS:
                start -= 1
            end = position
            while end < size and out[end] not in SEPARATORS:
                end += 1
            out[start:end] = rng.choice(TOKENS)
        elif kind == 1:
            out[position:position] = rng.choice(TOKENS)
        elif kind == 2 and size:
            out[min(position, size - 1)] = rng.randrange(256)
        elif kind == 3:
            out[position : position + rng.randint(1, 40)] = b""
        elif kind in (4, 5):
            lines = bytes(out).split(b"\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            if kind == 4:
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            out = bytearray(b"\n".join(lines))
        elif kind == 6:
            del out[position:]
        elif kind == 7:
            out[0:0] = b"\xef\xbb\xbf"
        else:  # a number field made huge, negative or fractional
            lines = bytes(out).split(b"\n")
            i = rng.randrange(len(lines))
            fields = lines[i].replace(b"::", b"\t").replace(b"|", b"\t").replace(b",", b"\t").split(b"\t")
            if fields and lines[i]:
                target = rng.randrange(len(fields))
                token = rng.choice([b"12345678901234567890123", b"-5", b"2.5", b"1e308", b"99", b"0"])
                lines[i] = lines[i].replace(fields[target], token, 1) if fields[target] else lines[i] + token
                out = bytearray(b"\n".join(lines))
    return bytes(out)


def corrupt_hdf5(data: bytes, rng: random.Random, max_edits: int = 3) -> bytes:
    """Binary corruption of an HDF5 file: bytes overwritten, spans zeroed or deleted, the file truncated."""
    out = bytearray(data)
    for _ in range(rng.randint(1, max_edits)):
        kind = rng.randrange(4)
        position = rng.randrange(max(len(out), 1))
        if kind == 0 and out:
            for offset in range(rng.randint(1, 8)):
                if position + offset < len(out):
                    out[position + offset] = rng.randrange(256)
        elif kind == 1:
            length = rng.randint(1, 64)
            out[position : position + length] = bytes(min(length, max(len(out) - position, 0)))
        elif kind == 2:
            out[position : position + rng.randint(1, 64)] = b""
        else:
            del out[max(position, 1) :]
    return bytes(out)


@dataclasses.dataclass(frozen=True)
class ReaderCase:
    """One reader under test: write a valid fixture into a folder, the files to corrupt, and load a split."""

    name: str
    write: Callable[[Path], object]
    files: tuple[str, ...]
    load: Callable[[Path, Path], object]  # (source folder, dataset root) -> RatingSplit
    binary: bool = False


def _loader(dataset: str, **settings) -> Callable[[Path, Path], object]:
    def load(source: Path, root: Path) -> object:
        from gnnrec.data import load_split

        return load_split(dataset, root=root, source_dir=source, log=False, **settings)

    return load


def reader_cases() -> dict[str, ReaderCase]:
    """The readers of every dataset format, each with a small valid fixture."""
    from gnnrec.testing.csv_ratings import CSV_FILES, write_csv_fixture
    from gnnrec.testing.ml1m_monti import write_ml1m_fixture, write_monti_fixture
    from gnnrec.testing.ml100k import write_ml100k_fixture
    from gnnrec.testing.movielens_large import write_ml10m_fixture, write_ml25m_fixture

    csv_settings = {key: name for key, name in CSV_FILES.items() if key != "ratings"}
    cases = [
        ReaderCase(
            "ml-100k",
            lambda d: write_ml100k_fixture(d, num_users=12, num_movies=24, ratings_per_user=20),
            ("u.data", "u.user", "u.item", "u.genre", "u.occupation"),
            _loader("ml-100k", split="random"),
        ),
        ReaderCase(
            "ml-100k-u1",
            lambda d: write_ml100k_fixture(d, num_users=12, num_movies=24, ratings_per_user=20),
            ("u1.base", "u1.test"),
            _loader("ml-100k", split="u1"),
        ),
        ReaderCase(
            "ml-1m",
            lambda d: write_ml1m_fixture(d, num_users=12, num_movies=20, ratings_per_user=8),
            ("ratings.dat", "users.dat", "movies.dat"),
            _loader("ml-1m", download=False),
        ),
        ReaderCase(
            "ml-10m",
            lambda d: write_ml10m_fixture(d, num_users=15, num_movies=15, num_ratings=80),
            ("ratings.dat", "movies.dat"),
            _loader("ml-10m", download=False),
        ),
        ReaderCase(
            "ml-25m",
            lambda d: write_ml25m_fixture(d, num_users=15, num_movies=15, num_ratings=80),
            ("ratings.csv", "movies.csv"),
            _loader("ml-25m", download=False),
        ),
        ReaderCase(
            "csv",
            lambda d: write_csv_fixture(d, num_users=12, num_items=15, ratings_per_user=6),
            tuple(CSV_FILES.values()),
            _loader("csv", **csv_settings),
        ),
        ReaderCase(
            "douban",
            lambda d: write_monti_fixture(d, "douban", num_users=12, num_items=15),
            ("training_test_dataset.mat",),
            _loader("douban"),
            binary=True,
        ),
    ]
    return {case.name: case for case in cases}


@dataclasses.dataclass
class Outcome:
    """How a reader met one corrupted input."""

    kind: str  # "valid", "error" (DataFormatError) or "uncaught"
    half_written: list[str]  # files left in the dataset root that are not a complete cache
    detail: str = ""


def leftover_files(root: Path, complete: bool) -> list[str]:
    """Files under ``root`` that a clean outcome would not leave: temporaries always, a cache after an error."""
    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        if path.name.endswith(".tmp") or (not complete and path.parent.name == "processed"):
            found.append(str(path.relative_to(root)))
    return found


def check_reader(case: ReaderCase, valid_source: Path, work: Path, rng: random.Random) -> Outcome:
    """Corrupt one file of a copy of ``valid_source`` and build the dataset from it in ``work``."""
    from gnnrec.data.split import RatingSplit

    source, root = work / "source", work / "root"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(valid_source, source)
    target = source / rng.choice(case.files)
    mutate = corrupt_hdf5 if case.binary else corrupt_bytes
    target.write_bytes(mutate(target.read_bytes(), rng))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            split = case.load(source, root)
        if not isinstance(split, RatingSplit) or split.num_users < 1 or split.num_movies < 1:
            return Outcome("uncaught", [], f"loader returned {split!r}")
        split.describe()  # the accessors every command uses work on it
        return Outcome("valid", leftover_files(root, complete=True))
    except DataFormatError as error:
        return Outcome("error", leftover_files(root, complete=False), str(error))
    except Exception:  # noqa: BLE001 - any other exception is what this check looks for
        return Outcome("uncaught", leftover_files(root, complete=False), traceback.format_exc())


# ---------------------------------------------------------------------- suites and --set options
VALID_SUITE = {
    "name": "fuzz",
    "dataset": "ml-100k",
    "splits": ["u1", "u2"],
    "seeds": [0, 1],
    "models": ["global-mean", {"model": "mf", "label": "mf-small", "overrides": {"max_epochs": 2}}],
    "overrides": {"*": {"seed": 3}, "mf": {"dim": 4}},
    "k": 10,
    "relevance_threshold": None,
    "val_fraction": 0.05,
    "data_seed": 0,
    "test_config": True,
    "refit": True,
    "selection_metric": "rmse",
}
JSON_VALUES = [
    None, True, False, 0, -1, 1, 2, 1.7, 1e308, -1e308, 2**70, "", "ten", "u1", "rmse", "ndcg@10", "ndcg@5", "foo",
    "../x", "a/b", "..", "all", "*", "validation", "nan", "mf", "gnn", [], [None], [1.7], [0], ["u1"], [[]], {},
    {"a": 1}, {"model": "mf"}, {"model": 3}, {"epochs": "x"}, {"epochs": 1.5}, {"lr": [1]},
]  # fmt: skip


def corrupt_suite(rng: random.Random) -> bytes:
    """The JSON text of a suite with 1-3 random edits: a field given a random value, removed or added, a nested
    value (a seed, a model entry, an override) replaced, the document replaced, or the text itself corrupted."""
    import copy
    import json

    suite: object = copy.deepcopy(VALID_SUITE)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(6)
        if not isinstance(suite, dict):
            break
        key = rng.choice(sorted(suite) + ["select_on", "score_without_refit", "coldstart", "bogus"])
        if kind == 0:
            suite[key] = copy.deepcopy(rng.choice(JSON_VALUES))
        elif kind == 1:
            suite.pop(key, None)
        elif kind == 2 and isinstance(suite.get(key), list) and suite[key]:
            suite[key][rng.randrange(len(suite[key]))] = copy.deepcopy(rng.choice(JSON_VALUES))
        elif kind == 3 and isinstance(suite.get("overrides"), dict):
            target = rng.choice(["*", "mf", "mf-small", "global-mean", "gnn", "nobody"])
            field = rng.choice(["max_epochs", "dim", "lr", "seed", "device", "bogus", "reg_grid"])
            suite["overrides"].setdefault(target, {})[field] = copy.deepcopy(rng.choice(JSON_VALUES))
        elif kind == 4:
            suite = copy.deepcopy(rng.choice(JSON_VALUES))
        else:
            return corrupt_bytes(json.dumps(suite).encode(), rng)
    return json.dumps(suite).encode()


SET_VALUES = [
    "", "1", "0", "-1", "2", "1.7", "1e308", "nan", "inf", "none", "null", "true", "false", "yes", "ten", "cpu",
    "cuda", "auto", "[1, 2]", "[]", "[[1]]", '["a"]', "1,2", "{}", "rmse", "ndcg@10", "12345678901234567890123",
    "\u0661", "=", "x=y", "levels", "paper",
]  # fmt: skip


def corrupt_set_items(rng: random.Random, fields: list[str]) -> list[str]:
    """1-4 ``--set`` items: a config key of the model (or a stranger) ``=`` a random value, or malformed items."""
    items = []
    for _ in range(rng.randint(1, 3)):
        strangers = ["bogus", "", " ", "a.b", "mf.max_epochs"]
        key = rng.choice(fields) if fields and rng.random() < 0.9 else rng.choice(strangers)
        value = rng.choice(SET_VALUES)
        items.append(f"{key}={value}" if rng.random() < 0.9 else rng.choice([f"{key}{value}", f"={value}", key]))
    return items
