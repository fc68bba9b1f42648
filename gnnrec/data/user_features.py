"""How a dataset encodes a person's demographics into one row of ``graph["user"].x``.

Each dataset stores a plain-dict spec of its layout in ``graph.user_layout`` (plain data, so the
processed cache and model checkpoints pickle without gnnrec classes); :func:`layout_from_spec` and
``RatingSplit.user_layout`` turn it into one of the classes below. Cold start and the CLI use the
layout to encode a new person with errors naming the bad field and its valid values.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

GENDERS = ("M", "F")


class UserFeatureLayout:
    """A dataset's encoding of user demographics (base class)."""

    kind = ""

    @property
    def num_features(self) -> int:
        """Width of one encoded row."""
        raise NotImplementedError

    def fields(self) -> dict[str, str]:
        """``field -> help text`` (with the valid values) of the keyword arguments :meth:`encode` takes."""
        raise NotImplementedError

    def encode(self, **person: Any) -> Tensor:
        """One feature row ``[num_features]`` for a person; ``ValueError`` naming a missing, unknown or bad field."""
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        """Plain-data description that :func:`layout_from_spec` turns back into this layout."""
        raise NotImplementedError

    def _check_fields(self, person: dict[str, Any]) -> None:
        fields = self.fields()
        unknown = [name for name in person if name not in fields]
        if unknown:
            valid = ", ".join(fields) or "none (this dataset has no user demographics)"
            raise ValueError(f"unknown user field(s) {', '.join(unknown)}; valid fields: {valid}")
        missing = [name for name in fields if person.get(name) is None]
        if missing:
            raise ValueError("missing user field(s): " + "; ".join(f"{name} ({fields[name]})" for name in missing))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UserFeatureLayout) and self.spec() == other.spec()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec()})"


def _age(value: Any, low: float = 0.0, high: float = 130.0) -> float:
    try:
        age = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"age must be a number of years, got {value!r}") from None
    if not math.isfinite(age) or not low < age < high:
        raise ValueError(f"age must be a number of years in ({low:g}, {high:g}), got {value!r}")
    return age


def _gender(value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in GENDERS:
        raise ValueError(f"gender must be one of {', '.join(GENDERS)}, got {value!r}")
    return value.upper()


def _occupation(value: Any, names: list[str]) -> int:
    if value not in names:
        raise ValueError(f"unknown occupation {value!r}; valid occupations: {', '.join(names)}")
    return names.index(value)


class NoUserFeatures(UserFeatureLayout):
    """Datasets without user demographics: :meth:`encode` takes no fields and returns an empty row."""

    kind = "none"

    @property
    def num_features(self) -> int:
        return 0

    def fields(self) -> dict[str, str]:
        return {}

    def encode(self, **person: Any) -> Tensor:
        self._check_fields(person)
        return torch.zeros(0)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind}


class ML100KUserFeatures(UserFeatureLayout):
    """MovieLens-100k: ``[min-max scaled age, is_female, occupation one-hot]``."""

    kind = "ml-100k"

    def __init__(self, age_min: float, age_max: float, occupations: list[str]) -> None:
        self.age_min, self.age_max = float(age_min), float(age_max)
        self.occupations = list(occupations)

    @property
    def num_features(self) -> int:
        return 2 + len(self.occupations)

    def fields(self) -> dict[str, str]:
        return {
            "age": f"years, a number in (0, 130); scaled by the data's range {self.age_min:g}-{self.age_max:g}",
            "gender": "M or F",
            "occupation": "one of " + ", ".join(self.occupations),
        }

    def encode(self, **person: Any) -> Tensor:
        self._check_fields(person)
        age = _age(person["age"])
        row = torch.zeros(self.num_features)
        row[0] = (age - self.age_min) / max(self.age_max - self.age_min, 1.0)
        row[1] = 1.0 if _gender(person["gender"]) == "F" else 0.0
        row[2 + _occupation(person["occupation"], self.occupations)] = 1.0
        return row

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "age_min": self.age_min, "age_max": self.age_max, "occupations": self.occupations}


class ML1MUserFeatures(UserFeatureLayout):
    """MovieLens-1M: ``[is_female, age-bucket one-hot, occupation one-hot]``.

    An age in years falls in the last bucket (codes 1, 18, 25, ...) starting at or below it.
    """

    kind = "ml-1m"

    def __init__(self, age_buckets: list[int], occupations: list[str]) -> None:
        self.age_buckets = [int(b) for b in age_buckets]
        self.occupations = list(occupations)

    @property
    def num_features(self) -> int:
        return 1 + len(self.age_buckets) + len(self.occupations)

    def fields(self) -> dict[str, str]:
        buckets = ", ".join(map(str, self.age_buckets))
        return {
            "age": f"years, a number in (0, 130); mapped to the age bucket codes {buckets}",
            "gender": "M or F",
            "occupation": "one of " + ", ".join(self.occupations),
        }

    def encode(self, **person: Any) -> Tensor:
        self._check_fields(person)
        age = _age(person["age"])
        bucket = max((b for b in self.age_buckets if b <= age), default=min(self.age_buckets))
        row = torch.zeros(self.num_features)
        row[0] = 1.0 if _gender(person["gender"]) == "F" else 0.0
        row[1 + self.age_buckets.index(bucket)] = 1.0
        row[1 + len(self.age_buckets) + _occupation(person["occupation"], self.occupations)] = 1.0
        return row

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "age_buckets": self.age_buckets, "occupations": self.occupations}


LAYOUTS: dict[str, type[UserFeatureLayout]] = {
    cls.kind: cls for cls in (NoUserFeatures, ML100KUserFeatures, ML1MUserFeatures)
}


def layout_from_spec(spec: dict[str, Any] | None) -> UserFeatureLayout:
    """The layout a :meth:`UserFeatureLayout.spec` dict describes (``None``: :class:`NoUserFeatures`)."""
    if spec is None:
        return NoUserFeatures()
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in LAYOUTS:
        raise ValueError(f"unknown user-feature layout kind {kind!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[kind](**spec)


def graph_user_layout(graph: Any) -> UserFeatureLayout:
    """The layout of a dataset graph: its ``user_layout`` spec, else inferred from older caches' attributes."""
    if "user_layout" in graph:
        return layout_from_spec(graph.user_layout)
    occupations = getattr(graph, "occupation_names", None)
    if occupations is not None and "age_buckets" in graph:
        return ML1MUserFeatures([int(b) for b in graph.age_buckets], list(occupations))
    if occupations is not None and "age_range" in graph:
        return ML100KUserFeatures(float(graph.age_range[0]), float(graph.age_range[1]), list(occupations))
    return NoUserFeatures()
