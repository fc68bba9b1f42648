"""Models by name, so the runner, CLI and tests can enumerate them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gnnrec.config import update_config

MODEL_CLASSES: dict[str, type] = {}  # name -> model class, filled by register_model


def register_model(cls: type) -> type:
    """Class decorator: make ``cls`` available as ``cls.name``."""
    name = getattr(cls, "name", None)
    if not name:
        raise ValueError(f"{cls.__name__} needs a class attribute 'name' to be registered")
    if name in MODEL_CLASSES and MODEL_CLASSES[name] is not cls:
        raise ValueError(f"model name {name!r} is already registered by {MODEL_CLASSES[name].__name__}")
    MODEL_CLASSES[name] = cls
    return cls


def available_models() -> list[str]:
    return sorted(MODEL_CLASSES)


def get_model_class(name: str) -> type:
    try:
        return MODEL_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}") from None


def create_model(name: str, overrides: Mapping[str, Any] | None = None, test_config: bool = False):
    """A fresh registered model: its default config (or ``test_config()``, tiny settings for smoke
    tests) updated by ``overrides``; unknown keys and invalid values raise ``ValueError`` here."""
    cls = get_model_class(name)
    base = cls.test_config() if test_config else cls.config_class()
    return cls(update_config(base, dict(overrides or {})))
