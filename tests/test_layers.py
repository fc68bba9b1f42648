"""The package's import graph: every import stays within its layer or goes down, and no private name crosses modules.

Layers, lowest first: the top-level helpers (config, utils, threads, ...), ``data``, ``nn``, ``evaluation`` (the
evaluator only duck-types models, so models' training loops may use it for validation), ``models``,
``serving`` and ``benchmark``, then ``cli`` and ``testing`` (fixture writers and test helpers). The modules of
``gnnrec.coldstart`` are named one by one: its protocol and fold-in interface are data, its evaluation evaluation,
its references models.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gnnrec"

LAYERS = {
    "gnnrec": 0,
    "gnnrec.data": 1,
    # the cold-start package spans layers: each module is named (anything else in it is a top-level helper)
    "gnnrec.coldstart": 0,
    "gnnrec.coldstart.fold_in": 1,
    "gnnrec.coldstart.protocol": 1,
    "gnnrec.coldstart.evaluation": 3,
    "gnnrec.coldstart.references": 4,
    "gnnrec.nn": 2,
    "gnnrec.tensorboard": 3,
    "gnnrec.evaluation": 3,
    "gnnrec.models": 4,
    "gnnrec.serving": 5,
    "gnnrec.benchmark": 5,
    "gnnrec.cli": 6,
    "gnnrec.__main__": 6,
    "gnnrec.testing": 6,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    """The layer of the longest prefix of ``module`` named in LAYERS."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise KeyError(module)


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` for every ``gnnrec`` import in the file, at any depth (lazy imports too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("gnnrec"):
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names if alias.name.startswith("gnnrec"))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    assert MODULES
    for path in MODULES:
        _layer(_module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_never_run_back_up_a_layer(path):
    here = _module_name(path)
    upward = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for line, module, _ in _imports(path)
        if _layer(module) > _layer(here)
    ]
    assert not upward


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_private_name_is_imported_from_another_module(path):
    private = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name} from {module}"
        for line, module, names in _imports(path)
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not private


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The checker itself: a data module importing models is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from gnnrec.models import create_model\n", encoding="utf-8")
    ((line, module, names),) = _imports(bad)
    assert (line, module, names) == (2, "gnnrec.models", ["create_model"])
    assert _layer(module) > _layer("gnnrec.data.parsing")


def test_the_coldstart_modules_keep_the_layer_order():
    """A module of the cold-start package has its own layer: the protocol may not import the references."""
    assert _layer("gnnrec.coldstart.references") > _layer("gnnrec.coldstart.evaluation")
    assert _layer("gnnrec.coldstart.evaluation") > _layer("gnnrec.coldstart.protocol")
    assert _layer("gnnrec.coldstart.references") == _layer("gnnrec.models")
    assert _layer("gnnrec.coldstart.evaluation") == _layer("gnnrec.evaluation")
    assert _layer("gnnrec.coldstart.protocol") == _layer("gnnrec.data")
    assert _layer("gnnrec.coldstart.anything_new") == _layer("gnnrec")  # an unnamed module: the lowest layer
