"""Benchmark suites as data: a grid of model entries × splits × seeds, and the cells it expands to.

The suites shipped with gnnrec are JSON files in the package folder ``gnnrec/benchmark/suites/``
(found with :mod:`importlib.resources`, so they work from an installed wheel too); any other
suite is given by a path to a ``.json`` file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gnnrec import distributed
from gnnrec.coldstart.protocol import DEFAULT_SUPPORT_SIZES, KINDS, ORDERS
from gnnrec.coldstart.references import REFERENCES
from gnnrec.config import config_keys, update_config
from gnnrec.models import available_models, get_model_class

if TYPE_CHECKING:  # importlib.resources.abc is new in Python 3.11
    from importlib.resources.abc import Traversable

    from gnnrec.data.split import RatingSplit

ALL_MODELS = "all"
ANY_MODEL = "*"
# dataset settings a suite sets through its own fields (or the runner's data directory), not dataset_settings
SUITE_DATA_FIELDS = {"source_dir": "--data-dir", "val_fraction": "val_fraction", "seed": "data_seed", "log": None}
NOT_DATA_SETTINGS = {"transform", "pre_transform", "force_reload"}  # torch_geometric's, not the data's
SUITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "null")


def builtin_suites_dir() -> Traversable:
    """The folder of the suites shipped as package data."""
    return resources.files("gnnrec.benchmark").joinpath("suites")


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One column of a suite: a registered ``model`` under a ``label``, with config ``overrides``.

    ``refit`` (None: the suite's setting) says whether the cell refits on train + validation after selection.
    """

    label: str
    model: str
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    refit: bool | None = None

    @classmethod
    def parse(cls, entry: str | Mapping[str, Any]) -> ModelEntry:
        """``"mf"`` or ``{"model": "glocal-k", "label": "glocal-k[paper]", "overrides": {"protocol": "paper"}}``."""
        if isinstance(entry, str):
            return cls(entry, entry, {})
        if not isinstance(entry, Mapping) or "model" not in entry:
            raise ValueError(f"a suite model entry is a model name or a dict with a 'model' key, got {entry!r}")
        unknown = set(entry) - {"model", "label", "overrides", "refit"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))} in suite model entry {entry!r}")
        overrides = entry.get("overrides") or {}
        if not isinstance(overrides, Mapping) or not all(isinstance(key, str) for key in overrides):
            raise ValueError(f"'overrides' of suite model entry {entry!r} must map config keys to values")
        for key in ("model", "label"):
            if key in entry and not isinstance(entry[key], str):
                raise ValueError(f"{key!r} of suite model entry {entry!r} must be a string")
        overrides = dict(overrides)
        refit = entry.get("refit")
        if refit is not None and not isinstance(refit, bool):
            raise ValueError(f"'refit' of suite model entry {entry!r} must be true or false")
        return cls(str(entry.get("label") or entry["model"]), str(entry["model"]), overrides, refit)

    def to_dict(self) -> dict[str, Any]:
        out = {"label": self.label, "model": self.model, "overrides": dict(self.overrides)}
        return out if self.refit is None else {**out, "refit": self.refit}


@dataclasses.dataclass(frozen=True)
class ColdstartSettings:
    """The ``coldstart`` block of a suite: its cells are (model, kind, support size n, draw seed).

    ``kinds``: ``users`` and/or ``movies``; ``support_sizes``: the n revealed ratings per held-out node;
    ``share``: held-out share per kind (default 20% of users, 10% of movies); ``order``: ``earliest`` or
    ``random`` support; ``tune``: per model label or name, config key → values tried on validation cold nodes
    (all combinations; the references' own grids, :data:`~gnnrec.coldstart.references.REFERENCES`, apply
    unless given here).
    """

    kinds: tuple[str, ...] = KINDS
    support_sizes: tuple[int, ...] = DEFAULT_SUPPORT_SIZES
    share: dict[str, float] = dataclasses.field(default_factory=dict)
    order: str = "earliest"
    tune: dict[str, dict[str, list[Any]]] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, block: Any) -> ColdstartSettings:
        if not isinstance(block, Mapping):
            raise ValueError(f"suite 'coldstart' must be an object or absent, got {block!r}")
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = set(block) - set(fields)
        if unknown:
            raise ValueError(
                f"unknown coldstart key(s) {', '.join(sorted(map(str, unknown)))}; valid: {', '.join(fields)}"
            )
        kinds = block.get("kinds", list(KINDS))
        if not isinstance(kinds, list) or not kinds or any(kind not in KINDS for kind in kinds):
            raise ValueError(f"suite coldstart 'kinds' must be a non-empty list of {', '.join(KINDS)}, got {kinds!r}")
        sizes = block.get("support_sizes", list(DEFAULT_SUPPORT_SIZES))
        if not isinstance(sizes, list) or not sizes or not all(_is_int(n) and n >= 0 for n in sizes):
            raise ValueError(f"suite coldstart 'support_sizes' must be a list of integers ≥ 0, got {sizes!r}")
        share = block.get("share", {})
        if not isinstance(share, Mapping) or any(
            kind not in KINDS or not _is_number(value) or not 0 < value < 1 for kind, value in share.items()
        ):
            raise ValueError(f"suite coldstart 'share' must map users/movies to a number in (0, 1), got {share!r}")
        order = block.get("order", "earliest")
        if order not in ORDERS:
            raise ValueError(f"suite coldstart 'order' must be one of {', '.join(ORDERS)}, got {order!r}")
        tune = block.get("tune", {})
        if not isinstance(tune, Mapping) or not all(
            isinstance(grid, Mapping) and all(isinstance(v, list) and v for v in grid.values())
            for grid in tune.values()
        ):
            raise ValueError(f"suite coldstart 'tune' must map a model to {{config key: [values, ...]}}, got {tune!r}")
        return cls(tuple(kinds), tuple(int(n) for n in sizes), dict(share), str(order),
                   {str(k): {str(key): list(v) for key, v in grid.items()} for k, grid in tune.items()})  # fmt: skip

    def grid_axes(self, entry: ModelEntry) -> dict[str, list[Any]]:
        """The values tried on validation cold nodes for ``entry``, per setting (``{}``: nothing to choose)."""
        reference = REFERENCES.get(entry.model)
        axes = {key: list(values) for key, values in reference.grid.items()} if reference is not None else {}
        axes.update(self.tune.get(entry.model, {}))
        axes.update(self.tune.get(entry.label, {}) if entry.label != entry.model else {})
        return axes

    def grid(self, entry: ModelEntry) -> list[dict[str, Any]]:
        """Every combination of :meth:`grid_axes` (``[{}]``: nothing to choose)."""
        settings: list[dict[str, Any]] = [{}]
        for key, values in self.grid_axes(entry).items():
            settings = [{**setting, key: value} for setting in settings for value in values]
        return settings


@dataclasses.dataclass
class Suite:
    """A benchmark grid: every model entry × split × seed.

    ``models=None`` means every registered model (``"all"`` in JSON). ``overrides`` maps a model
    name, a label or ``"*"`` (every model whose config has the key) to config overrides; they are
    applied after an entry's own overrides. ``test_config`` starts each model from its
    ``test_config()`` (tiny settings for smoke tests) instead of its default config.
    ``relevance_threshold=None`` lets the evaluator use 3/4 of the rating scale.
    ``dataset_settings``: the dataset's own keyword settings (e.g. ``num_users`` or ``levels`` of ``synthetic``,
    ``path`` of ``csv``; see :func:`gnnrec.data.dataset_settings`), so that a screen on other data is a suite.
    ``refit``: after a fit that selects on validation, fit again on train ∪ validation with what was selected
    (:meth:`~gnnrec.models.base.RatingModel.refit_overrides`) and evaluate that model on test.
    ``select_on="validation"`` (ablations): the entries are variants; every cell is evaluated on validation,
    the variant with the best mean validation ``selection_metric`` is chosen, and only its cells are
    evaluated on test.
    ``test_chosen=False`` (with ``select_on``): a validation-only screen, which scores no test rating, not even
    the chosen variant's.
    ``score_without_refit`` (with ``refit``): also score the selection fit on test, before the refit, so that
    ``results.md`` shows the effect of refitting (refit on / off) without a second fit of every model.
    """

    name: str
    splits: list[str]
    seeds: list[int]
    models: list[ModelEntry] | None = None
    overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    dataset: str = "ml-100k"
    dataset_settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""
    k: int = 10
    relevance_threshold: float | None = None
    val_fraction: float = 0.05
    data_seed: int = 0
    test_config: bool = False
    refit: bool = True
    select_on: str | None = None
    selection_metric: str = "rmse"
    test_chosen: bool = True
    score_without_refit: bool = False
    # a cold-start protocol instead of warm cells: kinds, support_sizes, share, order, tune (see ColdstartSettings)
    coldstart: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Suite:
        """A suite from its JSON object; every field is checked here, before anything is fitted."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a suite is a JSON object (name, splits, seeds, models, ...), got a {_json_type(data)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(
                f"unknown suite key(s) {', '.join(sorted(map(str, unknown)))}; valid keys: {', '.join(fields)}"
            )
        missing = {"name", "splits", "seeds"} - set(data)
        if missing:
            raise ValueError(f"suite is missing {', '.join(sorted(missing))}")
        values = dict(data)
        models = values.get("models", ALL_MODELS)
        if models is None or models == ALL_MODELS:
            values["models"] = None
        elif isinstance(models, list) and models:
            values["models"] = [ModelEntry.parse(entry) for entry in models]
        else:
            raise ValueError(f"suite 'models' must be {ALL_MODELS!r} or a non-empty list, got {models!r}")
        for key in ("splits", "seeds"):
            if not isinstance(values[key], list) or not values[key]:
                raise ValueError(f"suite {key!r} must be a non-empty list, got {values[key]!r}")
        overrides = values.get("overrides") or {}
        if not isinstance(overrides, Mapping) or not all(isinstance(v, Mapping) for v in overrides.values()):
            raise ValueError("suite 'overrides' must map a model name, label or '*' to a dict of config values")
        values["overrides"] = {str(target): dict(v) for target, v in overrides.items()}
        suite = cls(**values)
        suite.validate()
        labels = [entry.label for entry in suite.entries()] if suite.models is not None else []
        duplicated = sorted({label for label in labels if labels.count(label) > 1})
        if duplicated:
            raise ValueError(f"suite {suite.name!r} has duplicate model label(s) {', '.join(duplicated)}")
        return suite

    def validate(self) -> Suite:
        """Refuse a field of the wrong type or out of range, naming it; returns the suite."""
        from gnnrec.data import DATASETS
        from gnnrec.evaluation import check_selection_metric

        if not isinstance(self.name, str) or not SUITE_NAME.fullmatch(self.name) or ".." in self.name:
            raise ValueError(
                f"suite 'name' must be letters, digits, '.', '_' or '-' (it names the run folder), got {self.name!r}"
            )
        for key in ("splits", "seeds"):
            if not isinstance(getattr(self, key), list) or not getattr(self, key):
                raise ValueError(f"suite {key!r} must be a non-empty list, got {getattr(self, key)!r}")
        for seed in self.seeds:
            if not _is_int(seed) or not -(2**63) <= seed < 2**63:
                raise ValueError(f"suite 'seeds' must hold integers, got {seed!r}")
        if not isinstance(self.dataset, str) or self.dataset not in DATASETS:
            raise ValueError(f"suite 'dataset' must be one of {', '.join(sorted(DATASETS))}, got {self.dataset!r}")
        self._validate_dataset_settings()
        known_splits = DATASETS[self.dataset].splits
        for split in self.splits:
            if not isinstance(split, str) or split not in known_splits:
                raise ValueError(
                    f"suite split {split!r} is not a split of {self.dataset}; choose from {', '.join(known_splits)}"
                )
        if not _is_int(self.k) or self.k < 1:
            raise ValueError(f"suite 'k' (the top-K cutoff) must be a positive integer, got {self.k!r}")
        threshold = self.relevance_threshold
        if threshold is not None and (not _is_number(threshold) or not math.isfinite(threshold)):
            raise ValueError(f"suite 'relevance_threshold' must be a finite number or null, got {threshold!r}")
        if not _is_number(self.val_fraction) or not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"suite 'val_fraction' must be a number in [0, 1), got {self.val_fraction!r}")
        if not _is_int(self.data_seed):
            raise ValueError(f"suite 'data_seed' must be an integer, got {self.data_seed!r}")
        for key in ("test_config", "refit", "score_without_refit", "test_chosen"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"suite {key!r} must be true or false, got {getattr(self, key)!r}")
        if not isinstance(self.description, str):
            raise ValueError(f"suite 'description' must be a string, got {self.description!r}")
        if self.select_on not in (None, "validation"):
            raise ValueError(f"suite 'select_on' must be \"validation\" or absent, got {self.select_on!r}")
        if not self.test_chosen and self.select_on is None:
            raise ValueError("suite 'test_chosen': false is for a screen (select_on \"validation\"); set select_on")
        if not isinstance(self.selection_metric, str):
            raise ValueError(f"suite 'selection_metric' must be a metric name, got {self.selection_metric!r}")
        try:
            check_selection_metric(self.selection_metric)
        except ValueError as error:
            raise ValueError(f"suite 'selection_metric': {error}") from None
        cutoff = self.selection_metric.partition("@")[2]
        if cutoff and int(cutoff) != self.k:
            raise ValueError(
                f"suite 'selection_metric' {self.selection_metric!r} needs the cutoff of 'k' ({self.k}): "
                f"use {self.selection_metric.partition('@')[0]}@{self.k}"
            )
        if self.coldstart is not None:
            ColdstartSettings.parse(self.coldstart)
        return self

    def coldstart_settings(self) -> ColdstartSettings | None:
        """The cold-start protocol of the suite (None: a warm suite)."""
        return None if self.coldstart is None else ColdstartSettings.parse(self.coldstart)

    def _validate_dataset_settings(self) -> None:
        from gnnrec.data import dataset_settings

        if not isinstance(self.dataset_settings, Mapping) or not all(isinstance(k, str) for k in self.dataset_settings):
            raise ValueError(f"suite 'dataset_settings' must be an object of settings, got {self.dataset_settings!r}")
        known = [n for n in dataset_settings(self.dataset) if n not in SUITE_DATA_FIELDS and n not in NOT_DATA_SETTINGS]
        for key in self.dataset_settings:
            if key in SUITE_DATA_FIELDS:
                where = SUITE_DATA_FIELDS[key]
                hint = f"; set it with {where!r}" if where else ""
                raise ValueError(f"suite 'dataset_settings' may not hold {key!r}{hint}")
            if key not in known:
                raise ValueError(
                    f"suite 'dataset_settings': dataset {self.dataset!r} has no setting {key!r}; "
                    f"it takes: {', '.join(known) or 'none'}"
                )

    def load_split(self, split: str, data_dir: str | Path | None = None, **options: Any) -> RatingSplit:
        """Split ``split`` of the suite's dataset with the suite's validation carve-out, data seed and dataset
        settings; ``data_dir`` holds the raw files (None: the dataset's environment variable, else download)."""
        from gnnrec.data import load_split

        return load_split(
            self.dataset,
            split,
            source_dir=data_dir,
            val_fraction=self.val_fraction,
            seed=self.data_seed,
            **self.dataset_settings,
            **options,
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["models"] = ALL_MODELS if self.models is None else [entry.to_dict() for entry in self.models]
        return out

    def entries(self) -> list[ModelEntry]:
        """The model entries, with ``models=None`` expanded to every registered model."""
        if self.models is None:
            return [ModelEntry(name, name, {}) for name in available_models()]
        return list(self.models)

    def select_models(self, names: Sequence[str]) -> Suite:
        """A copy restricted to the entries whose label or model name is in ``names`` (in suite order).

        Overrides that target only the dropped entries are dropped with them.
        """
        entries = self.entries()
        known = {e.label for e in entries} | {e.model for e in entries}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(
                f"suite {self.name!r} has no model {', '.join(map(repr, unknown))}; "
                f"its models: {', '.join(e.label for e in entries)}"
            )
        chosen = [e for e in entries if e.label in names or e.model in names]
        kept = {e.label for e in chosen} | {e.model for e in chosen} | {ANY_MODEL}
        overrides = {target: values for target, values in self.overrides.items() if target in kept}
        return dataclasses.replace(self, models=chosen, overrides=overrides)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> Suite:
        """A copy with further ``{target: {key: value}}`` overrides merged in (later values win)."""
        merged = {target: dict(values) for target, values in self.overrides.items()}
        for target, values in overrides.items():
            merged.setdefault(target, {}).update(values)
        return dataclasses.replace(self, overrides=merged)


def _suite_files(directory: str | Path | Traversable | None) -> dict[str, Traversable | Path]:
    folder = builtin_suites_dir() if directory is None else directory
    folder = Path(folder) if isinstance(folder, str) else folder
    if not folder.is_dir():
        return {}
    return {entry.name[: -len(".json")]: entry for entry in folder.iterdir() if entry.name.endswith(".json")}


def available_suites(directory: str | Path | Traversable | None = None) -> list[str]:
    """Names of the suites in ``directory`` (default: the suites shipped with gnnrec)."""
    return sorted(_suite_files(directory))


def load_suite(name_or_path: str | Path, directory: str | Path | Traversable | None = None) -> Suite:
    """A suite by name (shipped with gnnrec, or in ``directory``) or from a path to a JSON file."""
    if Path(name_or_path).suffix == ".json":
        source: Traversable | Path | None = Path(name_or_path)
        if not source.is_file():
            raise ValueError(f"suite file {name_or_path} does not exist")
    else:
        source = _suite_files(directory).get(str(name_or_path))
        if source is None:
            where = "shipped with gnnrec" if directory is None else f"in {directory}"
            choices = ", ".join(available_suites(directory)) or f"none {where}"
            raise ValueError(f"unknown suite {str(name_or_path)!r}; available suites: {choices} (or a path to a .json)")
    try:
        data = json.loads(source.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as error:
        raise ValueError(f"suite file {source} is not UTF-8 text (byte {error.start})") from None
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"suite file {source} is not valid JSON: {error}") from None
    try:
        return Suite.from_dict(data)
    except ValueError as error:
        raise ValueError(f"suite file {source}: {error}") from None


def parse_targeted_overrides(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"max_epochs": 3, "gnn.lr": 0.1}`` → ``{"*": {"max_epochs": 3}, "gnn": {"lr": 0.1}}`` (``--set``)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        target, _, name = key.rpartition(".")
        out.setdefault(target or ANY_MODEL, {})[name] = value
    return out


# ---------------------------------------------------------------------- cells
@dataclasses.dataclass(frozen=True)
class Cell:
    entry: ModelEntry
    split: str
    seed: int
    overrides: dict[str, Any]
    kind: str | None = None  # cold-start cells: "users" or "movies" held out ...
    n: int | None = None  # ... with n revealed ratings each; the seed is the draw's

    def refit(self, suite: Suite) -> bool:
        """Whether this cell refits on train + validation (the entry's setting, else the suite's)."""
        if suite.select_on is not None or self.kind is not None:
            return False  # variants are compared on their validation fits; the chosen one is tested as fitted
        return self.entry.refit if self.entry.refit is not None else suite.refit

    @property
    def id(self) -> str:
        label = re.sub(r"[^A-Za-z0-9._-]+", "-", self.entry.label).strip("-")
        scenario = f"__{self.kind}-n{self.n}" if self.kind is not None else ""
        return f"{label}__{self.split}{scenario}__seed{self.seed}"


def cell_model_class(name: str, coldstart: bool = False) -> type:
    """The class of a suite's model name: a registered model, or in a cold-start suite also a reference
    (:data:`~gnnrec.coldstart.references.REFERENCES`)."""
    if coldstart and name in REFERENCES:
        return REFERENCES[name].model_class
    return get_model_class(name)


def create_cell_model(name: str, overrides: Mapping[str, Any], *, test_config: bool, coldstart: bool = False) -> Any:
    """A fresh model of a cell: its default config (or ``test_config()``), a reference's fixed overrides, then
    ``overrides``; unknown names, keys and values raise ``ValueError``."""
    cls = cell_model_class(name, coldstart)
    base = cls.test_config() if test_config else cls.config_class()
    fixed = dict(REFERENCES[name].overrides) if coldstart and name in REFERENCES else {}
    return cls(update_config(base, {**fixed, **dict(overrides)}))


def _config_fields(model: str, coldstart: bool = False) -> set[str]:
    """The config keys of ``model``, deprecated names included (they warn when used)."""
    return config_keys(cell_model_class(model, coldstart).config_class)


def build_cells(suite: Suite) -> list[Cell]:
    """Every (split, seed, model entry) cell with its resolved overrides; bad names and keys raise here."""
    suite.validate()
    entries = suite.entries()
    if not entries:
        raise ValueError("no models are registered")
    coldstart = suite.coldstart_settings()
    fields = {e.label: _config_fields(e.model, coldstart is not None) for e in entries}
    targets = {e.label for e in entries} | {e.model for e in entries} | {ANY_MODEL}
    for target, values in suite.overrides.items():
        if target not in targets:
            raise ValueError(
                f"override target {target!r} is not a model of suite {suite.name!r}; "
                f"its models: {', '.join(e.label for e in entries)}"
            )
        if target == ANY_MODEL:
            orphan = [key for key in values if not any(key in f for f in fields.values())]
            if orphan:
                raise ValueError(f"no model of suite {suite.name!r} has config key(s) {', '.join(orphan)}")
    cells = []
    for split in suite.splits:
        for seed in suite.seeds:
            for entry in entries:
                overrides = dict(entry.overrides)
                overrides.update(
                    {k: v for k, v in suite.overrides.get(ANY_MODEL, {}).items() if k in fields[entry.label]}
                )
                overrides.update(suite.overrides.get(entry.model, {}))
                if entry.label != entry.model:
                    overrides.update(suite.overrides.get(entry.label, {}))
                if "seed" in fields[entry.label]:
                    overrides["seed"] = seed
                if coldstart is None:
                    cells.append(Cell(entry, split, seed, overrides))
                    continue
                for kind in coldstart.kinds:
                    cells.extend(Cell(entry, split, seed, overrides, kind, n) for n in coldstart.support_sizes)
    first = {}
    for cell in cells:
        first.setdefault(cell.entry.label, cell)
    for cell in first.values():  # refuse bad keys and values now, before any fit
        try:
            model = create_cell_model(
                cell.entry.model, cell.overrides, test_config=suite.test_config, coldstart=coldstart is not None
            )
            for setting in coldstart.grid(cell.entry) if coldstart is not None else []:
                update_config(model.config, setting)
        except ValueError as error:
            raise ValueError(f"suite {suite.name!r}, model {cell.entry.label!r}: {error}") from None
    return cells


def check_data_parallel_suite(suite: Suite) -> None:
    """Under torchrun, refuse a suite that the ranks could not run in step (alone: nothing to check)."""
    if not distributed.is_distributed():
        return
    kind = "an ablation (select_on)" if suite.select_on is not None else "a cold-start" if suite.coldstart else None
    if kind is not None:
        raise ValueError(f"suite {suite.name!r} is {kind} suite, which does not run under torchrun yet; run it alone")
    for entry in suite.entries():
        distributed.check_data_parallel(entry.model)
