"""Rating decoders: pairwise forward and the all-pairs scorer agree; shapes; reset."""

from __future__ import annotations

import pytest
import torch

from gnnrec.nn import BilinearDecoder, DotDecoder, MLPDecoder

LEVELS = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])


def make(name: str):
    torch.manual_seed(0)
    if name == "bilinear":
        return BilinearDecoder(6, LEVELS, num_bases=3)
    if name == "mlp":
        return MLPDecoder(6, LEVELS, dropout=0.3)
    return DotDecoder(6, global_mean=3.5)


@pytest.mark.parametrize("name", ["bilinear", "mlp", "dot"])
def test_forward_matches_all_pairs_scorer(name):
    decoder = make(name).eval()
    for parameter in decoder.parameters():  # non-zero biases so they are part of the check
        torch.nn.init.normal_(parameter)
    z_user, z_movie = torch.randn(4, 6), torch.randn(7, 6)
    user = torch.arange(4).repeat_interleave(7)
    movie = torch.arange(7).repeat(4)
    logits, rating = decoder(z_user, z_movie, user, movie)
    assert rating.shape == (28,)
    assert (logits is None) == (name == "dot")
    if logits is not None:
        assert logits.shape == (28, 5)
        assert float(rating.min()) >= 1.0 and float(rating.max()) <= 5.0
    all_pairs = decoder.score_all(z_user, z_movie)
    torch.testing.assert_close(all_pairs, rating.view(4, 7), rtol=1e-5, atol=1e-5)
    # small chunks give the same numbers as one block
    torch.testing.assert_close(decoder.score_all(z_user, z_movie, chunk_pairs=1), all_pairs, rtol=1e-5, atol=1e-5)
    assert decoder.score_all(z_user[:0], z_movie).shape == (0, 7)


@pytest.mark.parametrize("name", ["bilinear", "mlp", "dot"])
def test_reset_parameters_zeroes_the_biases(name):
    decoder = make(name)
    for parameter in decoder.parameters():
        torch.nn.init.normal_(parameter)
    decoder.reset_parameters()
    assert float(decoder.user_bias.weight.abs().sum()) == 0.0 and float(decoder.movie_bias.bias.abs().sum()) == 0.0


def test_dot_decoder_starts_at_the_global_mean():
    decoder = DotDecoder(4, global_mean=3.5)
    _, rating = decoder(torch.zeros(2, 4), torch.zeros(3, 4), torch.tensor([0, 1]), torch.tensor([2, 0]))
    torch.testing.assert_close(rating, torch.full((2,), 3.5))
