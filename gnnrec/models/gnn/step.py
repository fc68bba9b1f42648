"""The one training step of the ``gnn`` model, and the epochs made of it: full batch, mini-batch, data-parallel.

Every optimizer step runs :class:`TrainingStep` and :func:`ema_update`, whatever the batching:

* the step's message graph is the training graph minus its edge dropout (and, for cold-start training,
  :func:`induction_step`'s "new" nodes); its ID dropout draws "unknown user" rows;
* its rating targets are its batch's edges that edge dropout removed (``supervision="dropped"``: the model never
  reads a rating it predicts) or all its batch's edges (``"all"``); the loss is cross-entropy over the levels
  plus the squared error of the expected rating, each the mean over the step's targets;
* its ranking loss (with a ranking head) covers some users: targets are their dropped edges in the batch, liked
  ones weighted up, every other edge of theirs masked (never a negative); scores are computed per block of users.

How the epoch is cut (:class:`StepPlan`): up to :data:`FULL_BATCH_MAX_EDGES` training ratings
(``batch_size="auto"``) an epoch is one step on the whole edge set, ranking every user in one block; with
``batch_size`` an epoch is one pass over the training edges in a seeded random order, in batches of
``batch_size`` edges, its ranking loss covering ``rank_users`` users drawn per step (scaled by ``E / batch``, so
that its expectation is the full-batch loss), in blocks of at most :data:`RANK_BLOCK_CELLS` users x movies
(each block recomputed in the backward pass when there are several).

Under ``torchrun`` (:mod:`gnnrec.distributed`) every rank holds the graph and encodes it with the same random masks
(all ranks seed the global generator with the run seed and draw only shared masks from it; the batch order and the
ranking users come from a generator seeded alike), takes its shard of the step's rating targets and ranking users,
and :class:`~torch.nn.parallel.DistributedDataParallel` averages the gradients of ``world x`` the shard's share of
the loss, so N processes take the same steps as one process with the same global batch. Draws that depend on the
shard (dropout in the MLP decoder, BPR negatives) use a per-rank generator seeded by
:func:`gnnrec.distributed.rank_seed`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from gnnrec import distributed
from gnnrec.malloc import keep_freed_memory
from gnnrec.models.gnn.config import GNNConfig
from gnnrec.models.gnn.graph import TrainingGraph
from gnnrec.nn.masked_adjacency import MaskedAdjacency
from gnnrec.nn.network import RatingGNN
from gnnrec.nn.ranking import multinomial_loss, ranking_loss, scale_gradient
from gnnrec.nn.sparse import row_pointer

FULL_BATCH_MAX_EDGES = 2_000_000  # batch_size="auto": one full-batch step per epoch up to this many training ratings
AUTO_BATCH_EDGES = 2**18  # batch_size="auto" on larger graphs: training edges per optimizer step
RANK_BLOCK_CELLS = 2**25  # users x movies scores of one block of the mini-batch ranking loss (128 MiB of float32)
RANK_STEP_CELLS = 2**23  # rank_users=0 on large catalogues: about this many scores per step (2^23 / movies users)
INDUCTION_MAX_KEPT = 0.2  # a "new" node keeps a random fraction in [0, this) of its message edges


def batch_edges(batch_size: int | str, num_edges: int) -> int | None:
    """Training edges per optimizer step, or ``None`` for the full-batch step (``"auto"``/0 on small graphs)."""
    if batch_size in ("auto", 0):
        return None if num_edges <= FULL_BATCH_MAX_EDGES else AUTO_BATCH_EDGES
    return int(batch_size)


def induction_step(
    keep: Tensor,
    user_ids: Tensor,
    edge_index: Tensor,
    num_users: int,
    num_movies: int,
    share_users: float,
    share_movies: float,
    max_kept: float = INDUCTION_MAX_KEPT,
    arrival: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Cold-start training: pretend a random ``share_users`` / ``share_movies`` of the nodes are new.

    A "new" node's ID is replaced by the encoder's unknown row and most of its message edges are dropped, so the
    network learns to encode a node from its side features and a few ratings (what a fold-in sees). Each new node
    keeps a fraction (uniform in ``[0, max_kept)``) of its message edges: its earliest ones where ``arrival``
    (:func:`~gnnrec.models.gnn.graph.arrival_shares`: each edge's share of its user's / movie's ratings given
    before it) is given, else a random draw; the rest are removed from ``keep`` (with ``supervision="dropped"``
    they become targets). Returns ``(keep, user_ids, movie_ids, new_edge)`` with new users mapped to row
    ``num_users`` and new movies to row ``num_movies`` of the ID tables, and ``new_edge`` ``[E]`` marking the
    edges of a new node.
    """
    device = keep.device
    user, movie = edge_index[0], edge_index[1]
    new_user = torch.rand(num_users, device=device) < share_users
    new_movie = torch.rand(num_movies, device=device) < share_movies
    user_ids = torch.where(new_user, num_users, user_ids)
    movie_ids = torch.where(new_movie, num_movies, torch.arange(num_movies, device=device))
    draw = torch.rand(edge_index.size(1), device=device)
    user_fraction = torch.rand(num_users, device=device) * max_kept
    movie_fraction = torch.rand(num_movies, device=device) * max_kept
    user_order, movie_order = (draw, draw) if arrival is None else arrival
    keep = (
        keep
        & (~new_user[user] | (user_order < user_fraction[user]))
        & (~new_movie[movie] | (movie_order < movie_fraction[movie]))
    )
    return keep, user_ids, movie_ids, new_user[user] | new_movie[movie]


def ema_update(averaged: nn.Module, member: nn.Module, step: int, ema_decay: float) -> None:
    """Move the averaged weights towards ``member``'s (warm-up: about an average over the last tenth of the steps)."""
    decay = min(ema_decay, step / (step + 10))
    with torch.no_grad():  # one multi-tensor update (as torch.optim.swa_utils' EMA does), same values as a loop
        torch._foreach_lerp_(list(averaged.parameters()), list(member.parameters()), 1.0 - decay)


def mean_loss(loss: Callable[..., Tensor], input: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """``loss`` averaged over the targets, each scaled by ``weight`` ``[T]`` (None: 1); 0 (still part of the
    graph) for none, e.g. an empty shard."""
    if not target.numel():
        return loss(input, target, reduction="sum")
    if weight is None:
        return loss(input, target)
    return (loss(input, target, reduction="none").reshape(-1) * weight).mean()


def sampled_negatives(config: GNNConfig, num_edges: int, num_users: int, num_movies: int) -> int | None:
    """Movies sampled per step for the multinomial ranking loss's normaliser (``None``: the whole catalogue)."""
    if config.rank_loss != "multinomial" or not config.rank_negatives:
        return None
    count = math.ceil(config.rank_negatives * num_edges / max(num_users, 1))
    return count if 0 < count < num_movies else None


class StepPlan:
    """How one member's epochs are cut into steps: the graph, its batches, the ranking users and blocks, generators.

    Args:
        config: the resolved config of the fit.
        member: the network being trained.
        graph: the training graph on the training device.
        full_adjacency: the encoder's matrices of the whole graph (``member.adjacency``), for steps that drop
            no edge.
        arrival: each edge's share of its user's / movie's ratings given before it
            (:func:`~gnnrec.models.gnn.graph.arrival_shares`): induction keeps a new node's earliest edges;
            ``None`` (``induction_order="random"``, or no rating times): random edges.
    """

    def __init__(
        self,
        config: GNNConfig,
        member: RatingGNN,
        graph: TrainingGraph,
        full_adjacency: Any,
        arrival: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        self.config, self.graph, self.full_adjacency = config, graph, full_adjacency
        device = graph.edge_index.device
        self.arrival = None if arrival is None else tuple(share.to(device) for share in arrival)
        self.world = distributed.world_size()
        self.num_users, self.num_movies = graph.num_users, graph.num_movies
        self.num_edges = graph.edge_index.size(1)
        self.device = graph.edge_index.device
        self.batch = batch_edges(config.batch_size, self.num_edges)
        # one step per epoch on one process: every user ranked in one block
        self.single_step = self.batch is None and self.world == 1
        # the batch order and the ranking users: one seeded stream, the same on every rank
        self.shared = torch.Generator().manual_seed(int(config.seed))
        self.rank_generator = torch.Generator().manual_seed(distributed.rank_seed(config.seed))
        self.induction = bool(config.induction_users or config.induction_movies)
        convs = member.encoder.convs
        # MaskedAdjacency lays out one weight per edge and level once and reuses it at every step (full batch
        # too: its products equal those of the kept edges' rebuilt matrices bit for bit); binned / continuous
        # messages go through the encoder's own adjacency (an edge may feed two basis levels there)
        use_masked = (
            len(convs) > 0 and config.edge_dropout > 0 and not self.induction and member.encoder.rating_map is None
        )
        self.masked = (
            MaskedAdjacency(convs[0], graph.edge_index, graph.rating_index, self.num_users, self.num_movies)
            if use_masked
            else None
        )
        self.negatives = sampled_negatives(config, self.num_edges, self.num_users, self.num_movies)
        if self.single_step:
            self.block_users = self.rank_users = self.num_users
        else:
            self.block_users = max(1, RANK_BLOCK_CELLS // max(self.negatives or self.num_movies, 1))
            automatic = max(1, RANK_STEP_CELLS // max(self.num_movies, 1))
            self.rank_users = min(config.rank_users or automatic, self.num_users)
        self.by_user: Tensor | None = None  # edges sorted by user, for the edges of a block of users
        self.user_pointer: Tensor | None = None
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
        """Indices of every edge of ``users`` (ascending ``users``; all users: every edge in edge order)."""
        if len(users) == self.num_users:
            return torch.arange(self.num_edges, device=self.device)
        if self.by_user is None:
            user = self.graph.edge_index[0]
            self.by_user = torch.sort(user, stable=True).indices
            self.user_pointer = row_pointer(user[self.by_user], self.num_users)
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


class TrainingStep(nn.Module):
    """The loss of one training step of a member, as a module so that DDP (:func:`gnnrec.distributed.wrap`) can
    wrap its forward.

    Args:
        member: the network being trained.
        plan: the member's :class:`StepPlan`.

    Returns ``(loss, squared error sum, ranking loss)`` of this rank's shard; the last two detached. Under
    ``torchrun`` the loss is ``world x`` the shard's share, so that DDP's average of the gradients is the
    gradient of the whole step.
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
        target_weight: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One step on message edges ``keep`` ``[E]`` (bool), ID rows ``user_ids`` / ``movie_ids`` (None: every
        movie's own), rating ``targets`` (this shard's edge indices of ``num_targets``), ranking ``rows`` (this
        shard's users of ``num_rows``) whose ``rank_targets`` ``[E]`` edges are targets, scaled by ``rank_scale``;
        ``target_weight`` ``[E]`` scales each edge's rating and ranking loss as a target (None: 1)."""
        member, plan = self.member, self.plan
        config, graph = plan.config, plan.graph
        edge_index, rating_index, adjacency = graph.edge_index, graph.rating_index, plan.full_adjacency
        if plan.masked is not None:  # the kept graph's matrices (the encoder reads no edge list then)
            adjacency = plan.masked(keep)
            if config.rating_stats:  # ... except for the rating statistics: those of the kept edges
                edge_index, rating_index = graph.edge_index[:, keep], graph.rating_index[keep]
        elif config.edge_dropout > 0 or movie_ids is not None:
            edge_index, rating_index, adjacency = graph.edge_index[:, keep], graph.rating_index[keep], None
        inputs = (graph.user_x, graph.movie_x, edge_index, rating_index, user_ids)
        if movie_ids is not None:
            encoding: dict[str, Any] = {"adjacency": None, "movie_ids": movie_ids, "side": graph.side}
        else:
            encoding = {"adjacency": adjacency, "side": graph.side}
        z_user, z_movie = member.encode(*inputs, **encoding)
        with plan.per_rank_draws():
            level = graph.rating_index[targets]
            logits, pred = member.decode(z_user, z_movie, graph.edge_index[0, targets], graph.edge_index[1, targets])
            target = member.rating_values[level]
            share = plan.world * len(targets) / max(num_targets, 1)  # of the step's mean, x world (DDP averages)
            weight = None if target_weight is None else target_weight[targets]
            loss = config.mse_weight * share * mean_loss(F.mse_loss, pred, target, weight)
            if logits is not None and config.ce_weight > 0:
                # as (1, levels, targets): the levels-first layout, which the bilinear decoder's logits view holds
                ce = mean_loss(F.cross_entropy, logits.t().unsqueeze(0), level.unsqueeze(0), weight)
                loss = loss + config.ce_weight * share * ce
            squared = (pred.detach() - target).pow(2).sum()
            rank = squared.new_zeros(())
            if member.ranker is not None:
                # the same masks: both encoders read the step's kept edges, the head's targets are the dropped ones
                r_user, r_movie = (
                    (z_user, z_movie) if member.rank_encoder is None else member.encode_ranking(*inputs, **encoding)
                )
                rank = self.ranking_loss(r_user, r_movie, rows, num_rows, rank_targets, target_weight) * rank_scale
                loss = loss + config.rank_weight * plan.world * rank
        return loss, squared, rank.detach()

    def ranking_loss(
        self,
        z_user: Tensor,
        z_movie: Tensor,
        rows: Tensor,
        num_rows: int,
        targets: Tensor,
        target_weight: Tensor | None = None,
    ) -> Tensor:
        """The ranking loss of ``rows`` (of ``num_rows``), one block of users at a time.

        ``targets`` ``[E]`` marks the target edges; every other edge of a row's user is masked (never a negative);
        ``target_weight`` ``[E]`` scales each target's term (None: 1).
        """
        member, plan = self.member, self.plan
        config, graph = plan.config, plan.graph
        values = member.rating_values
        low, high = float(values.min()), float(values.max())
        level_weight = 1.0 + config.rank_like_weight * (values >= low + 0.75 * (high - low)).float()
        # the share of the ranking gradient for an encoder shared with the rating head (an own encoder gets it all)
        g = config.rank_grad_scale if member.rank_encoder is None else 1.0
        blocks = rows.split(plan.block_users) or (rows,)

        negatives = None
        if plan.negatives is not None:  # shared by the step's blocks
            negatives = torch.randperm(plan.num_movies, device=z_movie.device)[: plan.negatives]

        def block_loss(z_block: Tensor, z_all: Tensor, block: Tensor, target: Tensor, masked: Tensor) -> Tensor:
            weight = level_weight[graph.rating_index[target]]
            if target_weight is not None:
                weight = weight * target_weight[target]
            z_block, z_all = scale_gradient(z_block, g), scale_gradient(z_all, g)
            pairs = (*graph.edge_index[:, target], weight, *graph.edge_index[:, masked])
            if config.rank_loss == "multinomial":
                # the item-item term reads the masked edges, scaled up to the user's whole history in expectation
                scale = (len(target) + len(masked)) / max(len(masked), 1)
                return multinomial_loss(
                    member.ranker, z_block, z_all, block, plan.num_users, *pairs, negatives, history_scale=scale
                )
            return ranking_loss(member.ranker(z_block, z_all), block, plan.num_users, *pairs, loss=config.rank_loss)

        total = z_user.new_zeros(())
        for block in blocks:
            edges = plan.user_edges(block)
            is_target = targets[edges]
            z_block = z_user if len(block) == plan.num_users else z_user.index_select(0, block)
            args = (z_block, z_movie, block, edges[is_target], edges[~is_target])
            # several blocks: keep only each block's inputs and recompute its scores in the backward pass
            part = checkpoint(block_loss, *args, use_reentrant=False) if len(blocks) > 1 else block_loss(*args)
            total = total + part * (len(block) / max(num_rows, 1))
        if member.ranker.neighbour_weight is not None:
            total = total + config.rank_neighbour_decay * member.ranker.neighbour_weight.pow(2).sum()
        return total


def train_epoch(
    plan: StepPlan, step: nn.Module, member: RatingGNN, averaged: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[Tensor, Tensor, Tensor]:
    """One epoch of :class:`TrainingStep` ``step`` (DDP-wrapped under torchrun), each followed by the optimizer and
    :func:`ema_update` of ``averaged``; returns the epoch's ``(loss, mean squared error, ranking loss)`` over every
    rank."""
    config, graph = plan.config, plan.graph
    num_users, num_edges, device = plan.num_users, plan.num_edges, plan.device
    all_ids = torch.arange(num_users, device=device)
    totals = torch.zeros(4, dtype=torch.float64)  # loss, squared errors, ranking loss, targets
    batches = plan.batches()
    for batch in batches:
        # the masks of a full-batch step, drawn in the same order from the shared global generator
        keep = torch.rand(num_edges, device=device) >= config.edge_dropout
        user_ids = torch.where(torch.rand(num_users, device=device) < config.id_dropout, num_users, all_ids)
        movie_ids = target_weight = None
        if plan.induction:
            keep, user_ids, movie_ids, new_edge = induction_step(
                keep, user_ids, graph.edge_index, num_users, plan.num_movies,
                config.induction_users, config.induction_movies, arrival=plan.arrival,
            )  # fmt: skip
            if config.induction_weight != 1.0:  # a new node's targets count less (or more) than a warm node's
                target_weight = torch.where(new_edge, config.induction_weight, 1.0)
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
        loss, squared, rank = step(
            keep, user_ids, movie_ids, distributed.shard(targets), len(targets),
            distributed.shard(rows), len(rows), dropped, rank_scale, target_weight,
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
