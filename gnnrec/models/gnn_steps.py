"""Mini-batch and data-parallel training epochs of the ``gnn`` model (used by :mod:`gnnrec.models.gnn_training`).

Full-batch training, the default on small graphs, makes one optimizer step per epoch: encode the whole graph,
decode every supervision edge, rank every user against the whole catalogue. With ``batch_size`` (config; ``"auto"``
picks it on graphs of more than :data:`FULL_BATCH_MAX_EDGES` training ratings) an epoch is one pass over the
training edges in a seeded random order, in batches of ``batch_size`` edges, one optimizer step each:

* the step's message graph is the training graph minus its edge dropout, drawn exactly as in a full-batch step;
* its rating targets are the batch's edges that edge dropout removed (``supervision="dropped"``: the model never
  reads a rating it predicts) or all the batch's edges (``"all"``); a batch of the whole set is the full-batch step;
* its ranking loss covers ``rank_users`` users drawn per step (every user on small graphs), the targets being the
  batch's dropped edges of those users (scaled by ``E / batch``, so that its expectation is the full-batch loss)
  and every other edge of theirs masked; scores are computed per block of users (at most
  :data:`RANK_BLOCK_CELLS` users x movies at once, each block recomputed in the backward pass when there are
  several), never as a whole users x movies matrix.

Under ``torchrun`` (:mod:`gnnrec.distributed`) every rank holds the graph and encodes it with the same random masks
(all ranks seed the global generator with the run seed and draw only shared masks from it; the batch order and the
ranking users come from a generator seeded alike), takes its shard of the step's rating targets and ranking users,
and :class:`~torch.nn.parallel.DistributedDataParallel` averages the gradients of ``world x`` the shard's loss, so
N processes take the same steps as one process with the same global batch. Draws that depend on the shard
(dropout in the MLP decoder, BPR negatives) use a per-rank generator seeded by :func:`gnnrec.distributed.rank_seed`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from gnnrec import distributed
from gnnrec.malloc import keep_freed_memory
from gnnrec.models.induction import induction_step
from gnnrec.nn.masked_adjacency import MaskedAdjacency
from gnnrec.nn.network import RatingGNN
from gnnrec.nn.ranking import ranking_loss, scale_gradient
from gnnrec.nn.sparse import row_pointer

FULL_BATCH_MAX_EDGES = 2_000_000  # batch_size="auto": one full-batch step per epoch up to this many training ratings
AUTO_BATCH_EDGES = 2**18  # batch_size="auto" on larger graphs: training edges per optimizer step
RANK_BLOCK_CELLS = 2**25  # users x movies scores of one block of the mini-batch ranking loss (128 MiB of float32)
RANK_STEP_CELLS = 2**23  # rank_users=0 on large catalogues: about this many scores per step (2^23 / movies users)


def batch_edges(batch_size: int | str, num_edges: int) -> int | None:
    """Training edges per optimizer step, or ``None`` for the full-batch step (``"auto"``/0 on small graphs)."""
    if batch_size in ("auto", 0):
        return None if num_edges <= FULL_BATCH_MAX_EDGES else AUTO_BATCH_EDGES
    return int(batch_size)


def ema_update(averaged: nn.Module, member: nn.Module, step: int, ema_decay: float) -> None:
    """Move the averaged weights towards ``member``'s (warm-up: about an average over the last tenth of the steps)."""
    decay = min(ema_decay, step / (step + 10))
    with torch.no_grad():
        for average, parameter in zip(averaged.parameters(), member.parameters(), strict=True):
            average.lerp_(parameter, 1.0 - decay)


class StepPlan:
    """What every mini-batch step of one member needs: the graph, its batches, the per-user edge lists, generators."""

    def __init__(self, config: Any, member: RatingGNN, graph: Any, batch: int | None, full_adjacency: Any) -> None:
        self.config, self.graph, self.batch = config, graph, batch
        self.full_adjacency = full_adjacency
        self.world = distributed.world_size()
        self.num_users, self.num_movies = graph.user_x.size(0), graph.movie_x.size(0)
        self.num_edges = graph.edge_index.size(1)
        self.device = graph.edge_index.device
        # the batch order and the ranking users: one seeded stream, the same on every rank
        self.shared = torch.Generator().manual_seed(int(config.seed))
        self.rank_generator = torch.Generator().manual_seed(distributed.rank_seed(config.seed))
        self.induction = bool(config.induction_users or config.induction_movies)
        convs = member.encoder.convs
        # MaskedAdjacency lays out one weight per edge and level; binned / continuous messages go through
        # the encoder's own adjacency (an edge may feed two basis levels there)
        use_masked = (
            len(convs) > 0 and config.edge_dropout > 0 and not self.induction and member.encoder.rating_map is None
        )
        self.masked = (
            MaskedAdjacency(convs[0], graph.edge_index, graph.rating_index, self.num_users, self.num_movies)
            if use_masked
            else None
        )
        self.block_users = max(1, RANK_BLOCK_CELLS // max(self.num_movies, 1))
        self.rank_users = min(config.rank_users or max(1, RANK_STEP_CELLS // max(self.num_movies, 1)), self.num_users)
        if member.ranker is not None:  # the edges of each user, for the ranking loss of a block of users
            self.by_user = torch.sort(graph.edge_index[0], stable=True).indices
            self.user_pointer = row_pointer(graph.edge_index[0][self.by_user], self.num_users)
        self.steps = 0
        if self.num_edges > FULL_BATCH_MAX_EDGES:  # every step allocates tensors of 100s of MB: reuse their memory
            keep_freed_memory()

    def batches(self) -> list[Tensor | None]:
        """This epoch's batches of edge indices (``[None]``: one step on the whole set, no reordering)."""
        if self.batch is None:
            return [None]
        return list(torch.randperm(self.num_edges, generator=self.shared).to(self.device).split(self.batch))

    def ranking_rows(self) -> Tensor:
        """The users of this step's ranking loss, ascending: all, or ``rank_users`` drawn without replacement."""
        if self.rank_users >= self.num_users:
            return torch.arange(self.num_users, device=self.device)
        drawn = torch.randperm(self.num_users, generator=self.shared)[: self.rank_users]
        return drawn.sort().values.to(self.device)

    def user_edges(self, users: Tensor) -> Tensor:
        """Indices of every edge of ``users``."""
        start = self.user_pointer[users]
        count = self.user_pointer[users + 1] - start
        first = torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
        offset = torch.arange(int(count.sum()), device=users.device) - first
        return self.by_user[torch.repeat_interleave(start, count) + offset]

    @contextlib.contextmanager
    def per_rank_draws(self) -> Iterator[None]:
        """Under torchrun: draws in the block use this rank's generator and leave the shared global one untouched."""
        if self.world == 1:
            yield
            return
        devices = [torch.cuda.current_device()] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=self.rank_generator)))
            yield


class StepLoss(nn.Module):
    """One step's loss of a member as a module, so that :func:`gnnrec.distributed.wrap` (DDP) can wrap its forward.

    Returns ``(loss x world, squared error sum, ranking loss)`` of this rank's shard; the last two detached.
    """

    def __init__(self, member: RatingGNN, plan: StepPlan) -> None:
        super().__init__()
        self.member = member
        self.plan = plan

    def forward(
        self,
        keep: Tensor,
        user_ids: Tensor,
        movie_ids: Tensor | None,
        targets: Tensor,
        num_targets: int,
        rows: Tensor,
        num_rows: int,
        rank_targets: Tensor,
        rank_scale: float,
    ) -> tuple[Tensor, Tensor, Tensor]:
        member, plan = self.member, self.plan
        config, graph = plan.config, plan.graph
        edge_index, rating_index, adjacency = graph.edge_index, graph.rating_index, plan.full_adjacency
        if plan.masked is not None:  # the kept graph's matrices (the encoder reads no edge list then)
            adjacency = plan.masked(keep)
            if config.rating_stats:  # ... except for the rating statistics: those of the kept edges
                edge_index, rating_index = graph.edge_index[:, keep], graph.rating_index[keep]
        elif config.edge_dropout > 0 or movie_ids is not None:
            edge_index, rating_index, adjacency = graph.edge_index[:, keep], graph.rating_index[keep], None
        if movie_ids is not None:
            z_user, z_movie = member.encode(
                graph.user_x, graph.movie_x, edge_index, rating_index, user_ids, None,
                movie_ids=movie_ids, side=graph.side,
            )  # fmt: skip
        else:
            z_user, z_movie = member.encode(
                graph.user_x, graph.movie_x, edge_index, rating_index, user_ids, adjacency, side=graph.side
            )
        with plan.per_rank_draws():
            level = graph.rating_index[targets]
            logits, pred = member.decode(z_user, z_movie, graph.edge_index[0, targets], graph.edge_index[1, targets])
            scale = plan.world / max(num_targets, 1)
            squared = (pred - member.rating_values[level]).pow(2).sum()
            loss = config.mse_weight * scale * squared
            if logits is not None and config.ce_weight > 0:
                loss = loss + config.ce_weight * scale * F.cross_entropy(logits, level, reduction="sum")
            rank = squared.new_zeros(())
            if member.ranker is not None:
                rank = self._ranking_loss(z_user, z_movie, rows, num_rows, rank_targets) * rank_scale
                loss = loss + config.rank_weight * plan.world * rank
        return loss, squared.detach(), rank.detach()

    def _ranking_loss(self, z_user: Tensor, z_movie: Tensor, rows: Tensor, num_rows: int, targets: Tensor) -> Tensor:
        """The full-batch ranking loss restricted to ``rows`` (of ``num_rows``), one block of users at a time.

        ``targets`` ``[E]`` marks the target edges; every other edge of a row's user is masked (never a negative).
        """
        member, plan = self.member, self.plan
        config, graph = plan.config, plan.graph
        values = member.rating_values
        low, high = float(values.min()), float(values.max())
        level_weight = 1.0 + config.rank_like_weight * (values >= low + 0.75 * (high - low)).float()
        g = config.rank_grad_scale
        blocks = rows.split(plan.block_users) or (rows,)

        def block_loss(z_block: Tensor, z_all: Tensor, block: Tensor, target: Tensor, masked: Tensor) -> Tensor:
            scores = member.ranker(scale_gradient(z_block, g), scale_gradient(z_all, g))
            weight = level_weight[graph.rating_index[target]]
            return ranking_loss(
                scores, block, plan.num_users, *graph.edge_index[:, target], weight, *graph.edge_index[:, masked],
                loss=config.rank_loss,
            )  # fmt: skip

        total = z_user.new_zeros(())
        for block in blocks:
            edges = plan.user_edges(block)
            is_target = targets[edges]
            args = (z_user.index_select(0, block), z_movie, block, edges[is_target], edges[~is_target])
            # several blocks: keep only each block's inputs and recompute its scores in the backward pass
            part = checkpoint(block_loss, *args, use_reentrant=False) if len(blocks) > 1 else block_loss(*args)
            total = total + part * len(block)
        return total / max(num_rows, 1)


def train_epoch(
    plan: StepPlan, step_loss: nn.Module, member: RatingGNN, averaged: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[Tensor, Tensor, Tensor]:
    """One epoch of steps; returns the epoch's ``(loss, mean squared error, ranking loss)`` over every rank."""
    config, graph = plan.config, plan.graph
    num_users, num_edges, device = plan.num_users, plan.num_edges, plan.device
    all_ids = torch.arange(num_users, device=device)
    totals = torch.zeros(4, dtype=torch.float64)  # loss, squared errors, ranking loss, targets
    batches = plan.batches()
    for batch in batches:
        # the masks of a full-batch step, drawn in the same order from the shared global generator
        keep = torch.rand(num_edges, device=device) >= config.edge_dropout
        user_ids = torch.where(torch.rand(num_users, device=device) < config.id_dropout, num_users, all_ids)
        movie_ids = None
        if plan.induction:
            keep, user_ids, movie_ids = induction_step(
                keep, user_ids, graph.edge_index, num_users, plan.num_movies,
                config.induction_users, config.induction_movies,
            )  # fmt: skip
        dropped = ~keep
        if batch is not None:
            in_batch = torch.zeros(num_edges, dtype=torch.bool, device=device)
            in_batch[batch] = True
            dropped &= in_batch
        if config.supervision == "dropped":
            targets = dropped.nonzero().squeeze(1)
        else:
            targets = batch if batch is not None else torch.arange(num_edges, device=device)
        rows = plan.ranking_rows() if member.ranker is not None else all_ids[:0]
        rank_scale = 1.0 if batch is None else num_edges / len(batch)
        loss, squared, rank = step_loss(
            keep, user_ids, movie_ids, distributed.shard(targets), len(targets),
            distributed.shard(rows), len(rows), dropped, rank_scale,
        )  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        plan.steps += 1
        if averaged is not member:
            ema_update(averaged, member, plan.steps, config.ema_decay)
        totals += torch.tensor(
            [float(loss.detach()) / plan.world, float(squared), float(rank), len(targets) / plan.world]
        )
    loss, squared, rank, count = (distributed.all_reduce_sum(float(value)) for value in totals)
    steps = len(batches)
    return torch.tensor(loss / steps), torch.tensor(squared / max(count, 1.0)), torch.tensor(rank / steps)
