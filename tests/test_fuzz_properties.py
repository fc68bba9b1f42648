"""Property-based tests: random corruptions of valid inputs give a clean refusal or a valid result, never
another exception and never a half-written file.

The number of examples comes from the Hypothesis profile (``tests/conftest.py``: 40 per test; set
``HYPOTHESIS_PROFILE=thorough`` for 1,000); ``benchmarks/fuzz_readers.py`` runs the long campaign.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gnnrec.benchmark import load_suite
from gnnrec.benchmark.suite import build_cells
from gnnrec.config import parse_set_options
from gnnrec.models import available_models, create_model, get_model_class
from gnnrec.testing.corrupt import SET_VALUES, VALID_SUITE, check_reader, corrupt_suite, reader_cases

CASES = reader_cases()


@pytest.fixture(scope="module")
def valid_sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("valid_sources")
    for name, case in CASES.items():
        case.write(root / name)
    return {name: root / name for name in CASES}


def test_the_fixtures_are_valid(valid_sources, tmp_path):
    for name, case in CASES.items():
        split = case.load(valid_sources[name], tmp_path / name)
        assert split.num_users > 0 and len(split.train) > 0


@pytest.mark.parametrize("name", sorted(CASES))
@given(rng=st.randoms(use_true_random=False))
def test_a_corrupted_dataset_gives_a_split_or_a_data_format_error(name, rng, valid_sources, tmp_path_factory):
    outcome = check_reader(CASES[name], valid_sources[name], tmp_path_factory.mktemp(name), rng)
    assert outcome.kind in ("valid", "error"), outcome.detail
    assert outcome.half_written == [], outcome.detail


def _suite_outcome(path: Path) -> str:
    try:
        build_cells(load_suite(path))
        return "valid"
    except ValueError:
        return "refused"


@given(rng=st.randoms(use_true_random=False))
def test_a_corrupted_suite_is_valid_or_a_value_error(rng, tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "suite.json"
    path.write_bytes(corrupt_suite(rng))
    assert _suite_outcome(path) in ("valid", "refused")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


@given(fields=st.dictionaries(st.sampled_from(sorted(VALID_SUITE) + ["select_on", "coldstart"]), JSON, max_size=3))
def test_any_json_in_the_suite_fields_is_valid_or_a_value_error(fields, tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "suite.json"
    path.write_text(json.dumps({**VALID_SUITE, **fields}))
    assert _suite_outcome(path) in ("valid", "refused")


MODEL_FIELDS = {
    name: [field.name for field in dataclasses.fields(get_model_class(name).config_class)]
    for name in available_models()
}
SET_ITEMS = st.lists(
    st.one_of(
        st.builds(
            lambda key, value: f"{key}={value}",
            st.sampled_from(sorted({f for fields in MODEL_FIELDS.values() for f in fields})),
            st.sampled_from(SET_VALUES) | st.text(max_size=10),
        ),
        st.text(max_size=12),
    ),
    min_size=1,
    max_size=4,
)


@pytest.mark.parametrize("model", sorted(MODEL_FIELDS))
@given(items=SET_ITEMS)
def test_set_options_give_a_model_or_a_value_error(model, items):
    try:
        overrides = parse_set_options(items)
        create_model(model, overrides, test_config=True)
    except ValueError:
        pass
