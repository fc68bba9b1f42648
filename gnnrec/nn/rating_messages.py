r"""Which message weights an edge of each rating level uses: its own level's, its bin's, or an interpolation.

GC-MC gives every rating level :math:`r` its own message matrices :math:`\mathbf{W}_r`. On a scale with
many levels (YahooMusic: 71 values among 1–100) that multiplies the parameters and leaves few edges per
level, so :class:`RatingMessageMap` maps the :math:`R` levels onto :math:`K` *message channels*, each
with its own weights in :class:`~gnnrec.nn.RatingConv`. A level :math:`r` with value :math:`v_r` and
position :math:`\tilde r = (v_r - v_{\min}) / (v_{\max} - v_{\min}) \in [0, 1]` on the scale sends

* ``levels``: through channel :math:`r` (:math:`K = R`; GC-MC);
* ``binned``: through the channel of its bin, :math:`b(r) = \min(B - 1, \lfloor B \tilde r \rfloor)`, one of
  ``bins`` :math:`= B` equal-width bins of the scale; bins that hold no level are dropped, so
  :math:`K \le \min(B, R)` (two levels and five bins: two channels);
* ``continuous``: through every channel :math:`k` with weight
  :math:`\varphi_k(\tilde r) = \max(0,\, 1 - |(B-1)\tilde r - k|)`, the linear interpolation between
  :math:`B` basis levels evenly spaced on the scale (:math:`K = B`):

  .. math::
      \mathbf{m}(\mathbf{h}, r) = \sum_{k=0}^{B-1} \varphi_k(\tilde r)\, \mathbf{W}_k \mathbf{h}

  so at most two channels carry an edge, the message varies linearly with the rating between basis
  levels, and with :math:`B = 2` it is
  :math:`\mathbf{W}_0\mathbf{h} + \tilde r\,(\mathbf{W}_1 - \mathbf{W}_0)\mathbf{h}`.

The map depends only on the level, so callers keep passing 0-based level indices; the decoder and the
loss still see the real rating values.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

RATING_MESSAGES = ("levels", "binned", "continuous")


def scale_position(values: Tensor) -> Tensor:
    """``(v - min) / (max - min)`` of each level value, in ``[0, 1]`` (all 0 on a single-level scale)."""
    values = values.double()
    span = values.max() - values.min()
    if span <= 0:
        return torch.zeros_like(values)
    return (values - values.min()) / span


def level_bins(values: Tensor, bins: int) -> Tensor:
    """``[R]`` 0-based channel of each level under ``binned``: its equal-width bin, empty bins dropped."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if values.numel() == 0:
        raise ValueError("the rating scale has no levels")
    raw = (scale_position(values) * bins).floor().long().clamp_(0, bins - 1)
    return torch.unique(raw, return_inverse=True)[1]  # renumber the bins that hold a level: 0..K-1 in order


def level_interpolation(values: Tensor, basis: int) -> tuple[Tensor, Tensor]:
    """``([R, 2] channels, [R, 2] weights)`` of each level under ``continuous`` with ``basis`` basis levels.

    A level between basis levels ``k`` and ``k + 1`` sends ``1 - a`` through ``k`` and ``a`` through
    ``k + 1``; the weights of every level sum to 1.
    """
    if basis < 2:
        raise ValueError(f"continuous rating messages need at least 2 basis levels, got {basis}")
    if values.numel() == 0:
        raise ValueError("the rating scale has no levels")
    position = scale_position(values) * (basis - 1)
    low = position.floor().long().clamp_(0, basis - 2)
    share = (position - low).float()  # weight of the upper basis level, in [0, 1]
    return torch.stack([low, low + 1], -1), torch.stack([1.0 - share, share], -1)


class RatingMessageMap(nn.Module):
    r"""Maps 0-based rating levels to message channels (and weights) of :class:`~gnnrec.nn.RatingConv`.

    See the module docstring for the three modes and their formulas.

    Args:
        rating_values: ``[R]`` the values of the rating levels, ascending.
        mode: ``"levels"``, ``"binned"`` or ``"continuous"``.
        bins: number of bins (``binned``) or basis levels (``continuous``) :math:`B`; unused by ``levels``.

    Shapes:
        - **input:** ``rating_index`` :math:`(E)` of 0-based levels
        - **output:** ``(channel, weight)``: :math:`(E)` and ``None`` (``levels``, ``binned``), or
          :math:`(E, 2)` and :math:`(E, 2)` (``continuous``)
    """

    def __init__(self, rating_values: Tensor, mode: str = "levels", bins: int = 5) -> None:
        super().__init__()
        if mode not in RATING_MESSAGES:
            raise ValueError(f"unknown rating message mode {mode!r}; choose one of {', '.join(RATING_MESSAGES)}")
        values = torch.as_tensor(rating_values).flatten()
        self.mode = mode
        self.num_levels = values.numel()
        weight = None
        if mode == "levels":
            channel = torch.arange(self.num_levels)
        elif mode == "binned":
            channel = level_bins(values, bins)
        else:
            channel, weight = level_interpolation(values, bins)
        self.num_channels = bins if mode == "continuous" else int(channel.max()) + 1
        # derived from the level values, so not saved in state dicts
        self.register_buffer("channel", channel, persistent=False)
        self.register_buffer("weight", weight, persistent=False)

    def reset_parameters(self) -> None:
        """No parameters: the map is fixed by the level values."""

    def forward(self, rating_index: Tensor) -> tuple[Tensor, Tensor | None]:
        """Channels (and weights) of the edges with levels ``rating_index``."""
        if rating_index.numel() and (int(rating_index.min()) < 0 or int(rating_index.max()) >= self.num_levels):
            raise ValueError(f"rating_index must lie in 0..{self.num_levels - 1}")
        channel = self.channel[rating_index]
        return channel, (None if self.weight is None else self.weight[rating_index])

    def extra_repr(self) -> str:
        return f"mode={self.mode}, levels={self.num_levels}, channels={self.num_channels}"
