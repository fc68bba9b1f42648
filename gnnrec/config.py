"""Model configs are dataclasses: plain data, recorded with every result."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
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


def update_config(config: C, overrides: dict[str, Any]) -> C:
    """Return a copy of ``config`` with ``overrides`` applied; unknown keys are refused."""
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
    """Refuse ``value`` of config key ``key`` (of config ``owner``) unless it is a number within the range.

    ``low``/``high`` of None mean unbounded; ``low_open``/``high_open`` exclude the bound itself;
    ``integer`` also requires an ``int``.
    """
    lower = "-inf" if low is None else f"{low:g}"
    upper = "inf" if high is None else f"{high:g}"
    interval = f"{'(' if low_open or low is None else '['}{lower}, {upper}{')' if high_open or high is None else ']'}"
    number = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    inside = number and not (
        (low is not None and (value < low or (low_open and value == low)))
        or (high is not None and (value > high or (high_open and value == high)))
        or value != value  # NaN
    )
    if not inside:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{owner}: {key}={value!r} is invalid; it must be {kind} in {interval}")


def check_device(owner: str, value: Any) -> None:
    """Refuse a ``device`` config value that is neither ``"auto"`` nor a torch device string."""
    import torch

    try:
        if value != "auto":
            torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f"{owner}: device={value!r} is invalid; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
