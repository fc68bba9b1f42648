"""CUDA smoke test: every registered model fits, predicts and ranks on the GPU (skipped without CUDA)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from gnnrec.evaluation import evaluate
from gnnrec.models import available_models, create_model, get_model_class

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


@pytest.mark.parametrize("name", available_models())
def test_model_fits_and_scores_on_cuda(name, tiny_split):
    fields = {f.name for f in dataclasses.fields(get_model_class(name).config_class)}
    model = create_model(name, {"device": "cuda"} if "device" in fields else {}, test_config=True).fit(tiny_split)
    result = evaluate(model, tiny_split, part="test")
    for metric, value in result.metrics.items():
        assert value is None or math.isfinite(value), f"{name} {metric} = {value}"
    top, _ = model.recommend([0, 1], k=5)
    assert top.shape == (2, 5)
