"""LightGCN (He et al. 2020) through PyG's ``torch_geometric.nn.models.LightGCN``, trained with BPR.

Users and movies are the nodes of one bipartite graph whose edges are the training interactions.
The final embedding of a node is the mean of its layer-wise propagated embeddings,
``e = Σ_l α_l Â^l e^(0)`` with ``α_l = 1/(L+1)`` and ``Â`` the symmetrically normalised adjacency;
``score(u, i) = e_u · e_i``. Each step samples one uniformly random negative movie per positive
(user, movie) pair and minimises PyG's ``recommendation_loss`` (BPR with an L2 penalty ``reg`` on the
batch's initial embeddings). Early stopping keeps the epoch with the best validation
``selection_metric`` (default ``ndcg@10``). Ranking-only: the scores are not ratings.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.models import LightGCN as PyGLightGCN
from torch_geometric.utils import to_torch_csr_tensor

from gnnrec.config import Range, check_config
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation.validation import check_selection_metric, improved, validation_metrics
from gnnrec.models.base import RatingModel
from gnnrec.models.registry import register_model
from gnnrec.nn.sparse import ConstantSparse


@dataclass
class LightGCNConfig:
    """Embedding size, propagation depth, Adam and BPR settings, and early stopping.

    ``min_rating``: a training rating ≥ this is a positive interaction (0: every rating).
    ``eval_every``: validate every this many epochs (patience counts validations).
    """

    dim: int = 64
    num_layers: int = 3
    lr: float = 0.02  # chosen on u1 validation ndcg@10 (benchmarks/bench_topk.py)
    reg: float = 1e-4
    batch_size: int = 8192
    max_epochs: int = 150
    patience: int = 5
    eval_every: int = 5
    min_rating: float = 0.0
    selection_metric: str = "ndcg@10"
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        counts = dict.fromkeys(("dim", "batch_size", "max_epochs", "patience", "eval_every"), Range(1, integer=True))
        ranges = {**counts, "num_layers": Range(0, integer=True), "lr": Range(0.0, low_open=True)}
        check_config(self, {**ranges, "reg": Range(0.0), "min_rating": Range(0.0)})
        check_selection_metric(self.selection_metric)


@register_model
class LightGCN(RatingModel):
    """LightGCN on the user-movie interaction graph; BPR with sampled negatives; ranking-only."""

    name = "lightgcn"
    fit_cost = 10.0
    config_class = LightGCNConfig
    predicts_ratings = False

    @classmethod
    def test_config(cls) -> LightGCNConfig:
        return LightGCNConfig(dim=8, num_layers=2, max_epochs=4, eval_every=1, patience=2, batch_size=256)

    @staticmethod
    def _graph(user: Tensor, movie: Tensor, num_users: int) -> Tensor:
        """Undirected ``[2, 2E]`` edge index with movies numbered after the users."""
        src, dst = user, movie + num_users
        return torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])

    @staticmethod
    def _adjacency(edge_index: Tensor, num_nodes: int) -> ConstantSparse:
        """The symmetrically normalised adjacency ``Â`` as sparse CSR, built once.

        PyG's layers would re-normalise the adjacency in every layer of every step, and ``torch.sparse.mm``'s
        backward would transpose it; ``Â`` is symmetric, so it serves as its own transpose: same scores, a faster
        fit (``benchmarks/results/same_predictions_lightgcn.md``). Sparse matmul is also faster than scatter on CPU.
        """
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
            adjacency = to_torch_csr_tensor(edge_index, size=(num_nodes, num_nodes))
            normalized, _ = gcn_norm(adjacency, None, num_nodes, add_self_loops=False)
        return ConstantSparse(normalized, normalized)

    def _embedding_of_graph(self, adjacency: ConstantSparse) -> Tensor:
        """PyG's ``LightGCN.get_embedding`` over the pre-normalised ``Â``: ``Σ_l α_l Â^l e^(0)``."""
        x = self.module.embedding.weight
        out = x * self.module.alpha[0]
        for layer in range(self.module.num_layers):
            x = adjacency @ x
            out = out + x * self.module.alpha[layer + 1]
        return out

    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        cfg = self.config
        check_selection_metric(cfg.selection_metric)
        device = self.device
        start = time.perf_counter()
        torch.manual_seed(cfg.seed)  # PyG initialises the embedding table with the global generator
        generator = torch.Generator().manual_seed(cfg.seed)
        num_users, num_movies = split.num_users, split.num_movies
        train = split.train
        keep = train.rating >= cfg.min_rating
        user, movie = train.user[keep], train.movie[keep]
        if len(user) == 0:
            raise ValueError(f"lightgcn: no training rating ≥ min_rating={cfg.min_rating}")
        edge_index = self._graph(user, movie, num_users)
        adjacency = self._adjacency(edge_index.to(device), num_users + num_movies)
        self.module = PyGLightGCN(num_users + num_movies, cfg.dim, cfg.num_layers, normalize=False).to(device)
        optimizer = torch.optim.Adam(self.module.parameters(), lr=cfg.lr)
        self._edge_index, self._adj = edge_index, adjacency
        metric_key = f"val_{cfg.selection_metric}"
        best, best_state, stale = None, None, 0
        for epoch in range(1, cfg.max_epochs + 1):
            self.module.train()
            self._embedding = None
            order = torch.randperm(len(user), generator=generator)
            negatives = torch.randint(num_movies, (len(user),), generator=generator)
            total = 0.0
            for batch in order.split(cfg.batch_size):
                u = user[batch].to(device)
                pos = movie[batch].to(device) + num_users
                neg = negatives[batch].to(device) + num_users
                emb = self._embedding_of_graph(adjacency)
                pos_rank = (emb[u] * emb[pos]).sum(-1)
                neg_rank = (emb[u] * emb[neg]).sum(-1)
                nodes = torch.cat([u, pos, neg]).unique()
                loss = self.module.recommendation_loss(pos_rank, neg_rank, node_id=nodes, lambda_reg=cfg.reg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(batch)
            entry: dict[str, Any] = {"epoch": epoch, "train_loss": total / len(user)}
            validate = len(split.val) > 0 and (epoch % cfg.eval_every == 0 or epoch == cfg.max_epochs)
            if validate:
                self._cache_embedding()
                value = validation_metrics(self, split, [cfg.selection_metric])[cfg.selection_metric]
                entry[metric_key] = value
            entry["seconds"] = time.perf_counter() - start
            self.history.append(entry)
            if logger is not None:
                logger.add_scalar("loss/train", entry["train_loss"], epoch)
                if validate:
                    logger.add_scalar(f"{cfg.selection_metric}/val", entry[metric_key], epoch)
            if validate:
                if improved(cfg.selection_metric, entry[metric_key], best):
                    best, best_state, stale = entry[metric_key], copy.deepcopy(self.module.state_dict()), 0
                    self.best_epoch = epoch
                else:
                    stale += 1
                    if stale >= cfg.patience:
                        break
        if best_state is None:
            self.best_epoch = len(self.history)
        else:
            self.module.load_state_dict(best_state)
        self.module = self.module.cpu()
        if device.type != "cpu":  # scoring runs on the CPU
            self._adj = self._adjacency(edge_index, num_users + num_movies)
        self._cache_embedding()

    def refit_overrides(self) -> dict[str, Any]:
        return {"max_epochs": max(1, self.best_epoch)}

    def _cache_embedding(self) -> None:
        """Final node embeddings with the current weights, on the CPU (for scoring)."""
        self.module.eval()
        with torch.no_grad():
            self._embedding = self._embedding_of_graph(self._adj).cpu()

    def _split_embedding(self) -> tuple[Tensor, Tensor]:
        num_users = self.info.num_users
        return self._embedding[:num_users], self._embedding[num_users:]

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        users, movies = self._split_embedding()
        return (users[user] * movies[movie]).sum(-1)

    def _score_matrix(self, users: Tensor) -> Tensor:
        user_emb, movie_emb = self._split_embedding()
        return user_emb[users] @ movie_emb.T

    def _state(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "edge_index": self._edge_index, "best_epoch": self.best_epoch}

    def _load_state(self, state: dict[str, Any]) -> None:
        cfg = self.config
        weights = state["module"]
        num_nodes, dim = weights["embedding.weight"].shape
        self.module = PyGLightGCN(num_nodes, dim, cfg.num_layers, normalize=False)
        self.module.load_state_dict(weights)
        self._edge_index = state["edge_index"]
        self._adj = self._adjacency(self._edge_index, num_nodes)
        self.best_epoch = int(state["best_epoch"])
        self._cache_embedding()
