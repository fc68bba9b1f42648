"""The one config-validation helper (gnnrec.config.check_config) in every registered model's config."""

from __future__ import annotations

import dataclasses
import math
import warnings

import pytest

from gnnrec.config import check_config, update_config
from gnnrec.models import available_models, create_model, get_model_class
from gnnrec.models.gnn import GNNConfig, GNNModel


def _float_fields(config_class: type) -> list[str]:
    config = config_class()
    return [f.name for f in dataclasses.fields(config) if isinstance(getattr(config, f.name), float)]


@pytest.mark.parametrize("name", available_models())
def test_every_model_refuses_a_bad_device_and_non_finite_numbers(name):
    config_class = get_model_class(name).config_class
    fields = {f.name for f in dataclasses.fields(config_class)}
    if "device" in fields:
        for bad in ("tpu", "gpu0", "cuda:x", ""):
            with pytest.raises(ValueError, match=r"device=.* is invalid; use 'auto', 'cpu', 'cuda' or 'cuda:N'"):
                create_model(name, {"device": bad})
        for good in ("auto", "cpu", "cuda", "cuda:1"):
            assert create_model(name, {"device": good}).config.device == good
    for key in _float_fields(config_class):
        for bad in (math.nan, math.inf):
            with pytest.raises(ValueError, match=rf"^{config_class.__name__}: {key}=(nan|inf) is invalid"):
                config_class(**{key: bad})
            with pytest.raises(ValueError, match=rf"{key}="):
                create_model(name, {key: str(bad)})  # as from --set


def test_the_learning_rate_and_device_of_the_trained_models_are_checked():
    for name in ("gnn", "mf", "lightgcn"):
        with pytest.raises(ValueError, match="lr=nan is invalid"):
            create_model(name, {"lr": "nan"})
    for name in ("gnn", "mf", "lightgcn", "glocal-k", "ease"):
        with pytest.raises(ValueError, match="device='tpu' is invalid"):
            create_model(name, {"device": "tpu"})


def test_check_config_reports_the_field_in_one_line():
    @dataclasses.dataclass
    class Example:
        rate: float = 0.5
        choice: str = "a"

    check_config(Example())
    with pytest.raises(ValueError, match=r"^Example: rate=nan is invalid; it must be a finite number$"):
        check_config(Example(rate=math.nan))
    with pytest.raises(ValueError, match=r"^Example: choice='z'; choose one of a, b$"):
        check_config(Example(choice="z"), choices={"choice": ("a", "b")})


def test_epochs_is_a_deprecated_alias_of_max_epochs():
    with pytest.warns(DeprecationWarning, match="'epochs' is deprecated; use 'max_epochs'"):
        assert GNNConfig(epochs=7).max_epochs == 7
    with pytest.warns(DeprecationWarning, match="'epochs' is deprecated"):
        assert dataclasses.replace(GNNConfig(), epochs=4).max_epochs == 4
    with pytest.warns(DeprecationWarning, match="'epochs' is deprecated"):
        assert create_model("gnn", {"epochs": "5"}).config.max_epochs == 5  # --set epochs=5
    with pytest.warns(DeprecationWarning, match="'epochs' is deprecated"):
        assert GNNModel(epochs=6).config.max_epochs == 6
    with pytest.raises(ValueError, match="name the same field"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        update_config(GNNConfig(), {"epochs": 3, "max_epochs": 4})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert GNNConfig(max_epochs=8).max_epochs == 8  # the new spelling does not warn
        assert dataclasses.replace(GNNConfig(max_epochs=8), lr=0.1).max_epochs == 8
    assert "epochs" not in dataclasses.asdict(GNNConfig())  # results and checkpoints record max_epochs


def test_suites_map_the_deprecated_epochs_to_max_epochs():
    from gnnrec.benchmark.suite import Suite, build_cells

    suite = Suite.from_dict({"name": "s", "splits": ["u1"], "seeds": [0], "models": ["gnn", "bias"],
                             "overrides": {"*": {"epochs": 3}}})  # fmt: skip
    with pytest.warns(DeprecationWarning, match="'epochs' is deprecated"):
        cells = build_cells(suite)
    gnn = next(cell for cell in cells if cell.entry.model == "gnn")
    with pytest.warns(DeprecationWarning):
        assert create_model("gnn", gnn.overrides).config.max_epochs == 3
    assert all("epochs" not in cell.overrides for cell in cells if cell.entry.model == "bias")
