"""Shared helpers of gnnrec.utils."""

import torch

from gnnrec.models import create_model
from gnnrec.utils import subnormals_flushed

SUBNORMAL = torch.tensor([1e-39])  # below float32's smallest normal (1.18e-38)


def _flushing() -> bool:
    return bool((SUBNORMAL * 1.0 == 0).item())


def test_subnormals_are_zero_inside_the_block_only():
    assert SUBNORMAL.item() > 0 and not _flushing()
    with subnormals_flushed() as supported:
        if supported:
            assert _flushing()
            assert bool((torch.tensor([1e-20]) * 1e-20 == 0).item())  # a subnormal result is flushed too
    assert not _flushing()


def test_the_gnn_fits_with_subnormals_flushed_and_restores_the_default(tiny_split, monkeypatch):
    import gnnrec.models.gnn.training as training

    seen = []
    flushed = training.subnormals_flushed

    def spy():
        seen.append(True)
        return flushed()

    monkeypatch.setattr(training, "subnormals_flushed", spy)
    create_model("gnn", {"max_epochs": 2}, test_config=True).fit(tiny_split)
    assert seen and not _flushing()
