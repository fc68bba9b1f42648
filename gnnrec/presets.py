"""Per-dataset presets for model configs: defaults that follow the split's dataset.

A config marks a field as "from the preset" by leaving it ``None``; an explicit value always wins.
At fit time :func:`resolve_preset` fills the ``None`` fields from the preset of ``split.dataset``
(or from a documented fallback preset when the dataset has none) and names the preset it used,
so that the model can record it (``protocol_note``, checkpoints).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

C = TypeVar("C")


def preset_for(presets: Mapping[str, Mapping[str, Any]], dataset: str | None, fallback: str) -> tuple[str, str]:
    """``(preset name, reason)`` for ``dataset``: its own preset, else ``fallback``.

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
