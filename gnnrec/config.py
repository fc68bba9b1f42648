"""Model configs are dataclasses: plain data, recorded with every result.

Here is what every config shares: ``--set`` parsing (:func:`update_config`), the one validation helper
(:func:`check_config`, with :func:`check_range` and :func:`check_device`), deprecated field names
(:func:`deprecated_key`) and per-dataset presets (:func:`resolve_preset`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

C = TypeVar("C")


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation))


def _check_value(value: Any, annotation: Any, key: str) -> Any:
    """A non-string value (from a suite's JSON, or Python) must already have the field's type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _check_value(value, option, key)
            except ValueError:
                continue
        raise ValueError(f"config key {key!r} expects {annotation}, got {value!r}")
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif annotation is str:
        ok = isinstance(value, str)
    elif origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            raise ValueError(f"config key {key!r} expects a list of {_type_name(args[0]) if args else 'values'}, "
                             f"got {value!r}")  # fmt: skip
        element = args[0] if args else Any
        items = [v if element is Any else _check_value(v, element, key) for v in value]
        return origin(items)
    else:
        return value
    if not ok:
        raise ValueError(f"config key {key!r} expects {_type_name(annotation)}, got {value!r}")
    return value


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Turn a ``--set key=value`` string into the field's type (bool, int, float, str, tuples, lists).

    Values that are not strings must already have the field's type; anything else is a ``ValueError``.
    """
    if not isinstance(value, str):
        return _check_value(value, annotation, key)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value.lower() in ("none", "null") and type(None) in args:
            return None
        annotation = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    try:
        if annotation is bool:
            lowered = value.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if annotation in (int, float, str):
            return annotation(value)
        if origin in (tuple, list):
            parsed = json.loads(value if value.strip().startswith("[") else f"[{value}]")
            if not isinstance(parsed, list):
                raise ValueError(value)
            return _check_value(parsed, annotation, key)
    except (ValueError, json.JSONDecodeError, RecursionError):
        raise ValueError(f"config key {key!r} expects {_type_name(annotation)}, got {value!r}") from None
    return value


def deprecated_keys(config_class: type) -> dict[str, str]:
    """``{old name: new name}`` of a config class's deprecated field names (its ``DEPRECATED_KEYS``)."""
    return dict(getattr(config_class, "DEPRECATED_KEYS", {}))


def config_keys(config_class: type) -> set[str]:
    """Every key a config class accepts: its fields and its deprecated names."""
    return {f.name for f in dataclasses.fields(config_class)} | set(deprecated_keys(config_class))


def deprecated_key(owner: str, old: str, new: str) -> None:
    """Warn that config key ``old`` of ``owner`` is spelled ``new`` now (a ``DeprecationWarning``)."""
    warnings.warn(f"{owner}: config key {old!r} is deprecated; use {new!r}", DeprecationWarning, stacklevel=3)


def update_config(config: C, overrides: dict[str, Any]) -> C:
    """Return a copy of ``config`` with ``overrides`` applied; unknown keys are refused.

    A deprecated key (``DEPRECATED_KEYS`` of the config class) warns and sets the field it names.
    """
    renamed = deprecated_keys(type(config))
    for old in [key for key in overrides if key in renamed]:
        deprecated_key(type(config).__name__, old, renamed[old])
        if renamed[old] in overrides:
            new = renamed[old]
            raise ValueError(f"config keys {old!r} and {new!r} name the same field; give only {new!r}")
        overrides = {(renamed[old] if key == old else key): value for key, value in overrides.items()}
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {', '.join(unknown)} for {type(config).__name__}; valid keys: {', '.join(fields)}"
        )
    coerced = {k: _coerce(v, hints[k], k) for k, v in overrides.items()}
    return dataclasses.replace(config, **coerced)


def parse_set_options(items: list[str]) -> dict[str, str]:
    """Parse ``["key=value", ...]`` as given to ``--set``."""
    out = {}
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"--set expects key=value strings, got {item!r}")
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def epochs_hint(config: Any) -> int | None:
    """Expected number of logged steps for a progress bar: the sum of the config's ``*epochs`` fields."""
    total = sum(
        value
        for key, value in vars(config).items()
        if (key == "epochs" or key.endswith("_epochs")) and isinstance(value, int) and not isinstance(value, bool)
    )
    return total or None


def check_range(
    owner: str,
    key: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    """Refuse ``value`` of config key ``key`` (of config ``owner``) unless it is a finite number within the range.

    ``low``/``high`` of None mean unbounded; ``low_open``/``high_open`` exclude the bound itself;
    ``integer`` also requires an ``int``.
    """
    lower = "-inf" if low is None else f"{low:g}"
    upper = "inf" if high is None else f"{high:g}"
    interval = f"{'(' if low_open or low is None else '['}{lower}, {upper}{')' if high_open or high is None else ']'}"
    number = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    inside = (
        number
        and math.isfinite(value)
        and not (
            (low is not None and (value < low or (low_open and value == low)))
            or (high is not None and (value > high or (high_open and value == high)))
        )
    )
    if not inside:
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{owner}: {key}={value!r} is invalid; it must be {kind} in {interval}")


DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(owner: str, value: Any) -> None:
    """Refuse a ``device`` config value other than ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    if not isinstance(value, str) or DEVICE_PATTERN.fullmatch(value) is None:
        raise ValueError(f"{owner}: device={value!r} is invalid; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric config field may take (see :func:`check_range`)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False


def check_config(
    config: Any,
    ranges: Mapping[str, Range] | None = None,
    choices: Mapping[str, Sequence[Any]] | None = None,
) -> None:
    """The validation every model config runs in ``__post_init__``; raises a one-line ``ValueError`` naming the field.

    Every config: each float (also inside a tuple or list) must be finite and a ``device`` field must be
    ``auto``/``cpu``/``cuda``/``cuda:N``. Then each field of ``ranges`` must lie in its :class:`Range` and each
    field of ``choices`` must be one of its values (``None`` values are skipped: "from the preset").
    """
    owner = type(config).__name__
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name == "device":
            check_device(owner, value)
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{owner}: {field.name}={value!r} is invalid; it must be a finite number")
    for key, rule in (ranges or {}).items():
        values = getattr(config, key)
        for value in values if isinstance(values, (tuple, list)) else (values,):
            if value is not None:
                check_range(owner, key, value, rule.low, rule.high, low_open=rule.low_open,
                            high_open=rule.high_open, integer=rule.integer)  # fmt: skip
    for key, valid in (choices or {}).items():
        value = getattr(config, key)
        if value is not None and value not in valid:
            raise ValueError(f"{owner}: {key}={value!r}; choose one of {', '.join(map(str, valid))}")


# ---------------------------------------------------------------------- presets
def preset_for(presets: Mapping[str, Mapping[str, Any]], dataset: str | None, fallback: str) -> tuple[str, str]:
    """``(preset name, reason)`` for ``dataset``: its own preset, else ``fallback``.

    A config marks a field as "from the preset" by leaving it ``None``; an explicit value always wins.
    The reason is ``"dataset"`` or ``"fallback"``; ``dataset`` is matched case-insensitively.
    """
    if fallback not in presets:
        raise ValueError(f"fallback preset {fallback!r} is not one of {', '.join(presets)}")
    key = (dataset or "").lower()
    return (key, "dataset") if key in presets else (fallback, "fallback")


def resolve_preset(
    config: C,
    presets: Mapping[str, Mapping[str, Any]],
    dataset: str | None,
    fallback: str,
    *,
    preset: str = "auto",
) -> tuple[C, str]:
    """``config`` with every ``None`` field that a preset sets taken from that preset; and the preset's name.

    At fit time a model fills its config's ``None`` fields from the preset of ``split.dataset`` (or from a
    documented fallback preset when the dataset has none) and records the preset's name.

    Args:
        config: a dataclass config; ``None`` fields are "not set by the user".
        presets: ``{name: {field: value}}``.
        dataset: the split's dataset (``split.dataset``), used when ``preset`` is ``"auto"``.
        fallback: the preset for datasets without one.
        preset: ``"auto"`` (follow ``dataset``) or a preset name to use whatever the dataset.
    """
    if preset == "auto":
        name, _ = preset_for(presets, dataset, fallback)
    elif preset.lower() in presets:
        name = preset.lower()
    else:
        raise ValueError(f"unknown preset {preset!r}; choose 'auto' or one of {', '.join(presets)}")
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(presets[name]) - fields)
    if unknown:
        raise ValueError(f"preset {name!r} sets unknown field(s) {', '.join(unknown)} of {type(config).__name__}")
    filled = {key: value for key, value in presets[name].items() if getattr(config, key) is None}
    return dataclasses.replace(config, **filled), name
