"""GLocal-K (Han et al., "GLocal-K: Global and Local Kernels for Recommender Systems", CIKM 2021).

An item-based autoencoder over the item × user rating matrix (0 = unobserved) whose dense
layers are re-weighted by learned local kernels (:class:`gnnrec.nn.KernelLayer`). Training has
two stages, both with L-BFGS-B restarted every epoch, exactly as the authors' TensorFlow code:

1. pre-training: the autoencoder reconstructs the training rating matrix;
2. fine-tuning: the (shared) autoencoder's output, averaged over users per item, gives a global
   ``k × k`` convolution kernel (:class:`gnnrec.nn.GlobalKernel`); the rating matrix convolved
   with it (ReLU) is fed to the same autoencoder, and every weight, the global one included, is
   optimised.

The objective of both stages is ``½ Σ_observed (r − r̂)² + λ₂ ½ Σ W² + λₛ ½ Σ Ŵ²`` (a sum, not
a mean) over all kernel layers. Loss and gradients are evaluated only where they are needed:
the first layer multiplies the sparse rating matrix, the global convolution is a sparse product
with the shifted ratings, and during optimisation the output layer is computed at the observed
entries only (the full matrix only for the per-epoch evaluation); these are the same numbers as
the dense computation, up to float rounding (``tests/test_glocal_k.py`` checks it).

Protocols: ``honest`` (default) never reads the test ratings while fitting and keeps the
fine-tuning epoch of best validation RMSE (``selection="best_val"``) or the last one
(``selection="last"``); ``paper`` keeps the fine-tuning epoch of best TEST RMSE, as the paper's
numbers were produced, and is labelled as such in :attr:`GLocalK.protocol_note`, the history
and the checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.optimize
import torch
from torch import Tensor, nn

from gnnrec.data.split import RatingEdges, RatingSplit
from gnnrec.models.base import RatingModel
from gnnrec.models.registry import register_model
from gnnrec.nn.kernel import GlobalKernel, KernelLayer

PROTOCOLS = ("honest", "paper")
SELECTIONS = ("best_val", "last")

# The authors' per-dataset settings (their notebook); ``iterations`` = L-BFGS-B iterations per epoch.
PRESETS: dict[str, dict[str, Any]] = {
    "ml-100k": {
        "lambda_2": 20.0,
        "lambda_s": 0.006,
        "pretrain_iterations": 5,
        "finetune_iterations": 5,
        "pretrain_epochs": 30,
        "finetune_epochs": 60,
        "dot_scale": 1.0,
    },
    "ml-1m": {
        "lambda_2": 70.0,
        "lambda_s": 0.018,
        "pretrain_iterations": 50,
        "finetune_iterations": 10,
        "pretrain_epochs": 20,
        "finetune_epochs": 30,
        "dot_scale": 0.5,
    },
    "douban": {
        "lambda_2": 10.0,
        "lambda_s": 0.022,
        "pretrain_iterations": 5,
        "finetune_iterations": 5,
        "pretrain_epochs": 20,
        "finetune_epochs": 60,
        "dot_scale": 2.0,
    },
}


@dataclasses.dataclass
class GLocalKConfig:
    """Hyper-parameters of :class:`GLocalK`; the defaults are the authors' ML-100k preset."""

    hidden_sizes: tuple[int, ...] = (500, 500)
    kernel_dim: int = 5
    global_kernel_size: int = 3
    lambda_2: float = 20.0
    lambda_s: float = 0.006
    pretrain_epochs: int = 30
    finetune_epochs: int = 60
    pretrain_iterations: int = 5
    finetune_iterations: int = 5
    lbfgs_history: int = 10
    dot_scale: float = 1.0
    protocol: str = "honest"
    selection: str = "best_val"
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must hold at least one positive size, got {self.hidden_sizes}")
        positive = ("kernel_dim", "global_kernel_size", "pretrain_iterations", "finetune_iterations", "lbfgs_history")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.global_kernel_size % 2 == 0:
            raise ValueError(f"global_kernel_size must be odd ('same' padding), got {self.global_kernel_size}")
        for name in ("pretrain_epochs", "finetune_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.pretrain_epochs + self.finetune_epochs == 0:
            raise ValueError("pretrain_epochs and finetune_epochs cannot both be 0")
        for name in ("lambda_2", "lambda_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if not math.isfinite(self.dot_scale):
            raise ValueError(f"dot_scale must be finite, got {self.dot_scale}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; choose one of {', '.join(SELECTIONS)}")

    @classmethod
    def preset(cls, dataset: str, **overrides: Any) -> GLocalKConfig:
        """The authors' settings for ``"ml-100k"``, ``"ml-1m"`` or ``"douban"``, updated by ``overrides``."""
        key = dataset.lower()
        if key not in PRESETS:
            raise ValueError(f"no GLocal-K preset for {dataset!r}; presets: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[key], **overrides})


class _RatingMatrix:
    """The training ratings as the ``[items, users]`` matrix, in the layouts the fast paths need.

    Entries are kept in CSR (item-major) order; ``transpose_order`` lists them in user-major
    order, so that a gradient given per entry can be laid out as the transposed CSR matrix.
    """

    def __init__(self, edges: RatingEdges, num_items: int, num_users: int, device: torch.device) -> None:
        item, user, rating = edges.movie.long(), edges.user.long(), edges.rating.float()
        key = item * num_users + user
        order = torch.argsort(key)
        if len(key) and bool((key[order][1:] == key[order][:-1]).any()):
            raise ValueError("the training edges hold a (user, movie) pair twice; GLocal-K needs one rating per pair")
        item, user, rating = item[order], user[order], rating[order]
        self.shape = (num_items, num_users)
        self.item, self.user, self.values = item.to(device), user.to(device), rating.to(device)
        self.crow = _crow_indices(item, num_items).to(device)
        self.col = self.user
        self.csr = self.with_values(self.values)
        self.pattern = self.with_values(torch.ones_like(self.values))
        transpose_order = torch.argsort(user * num_items + item)
        self.transpose_order = transpose_order.to(device)
        self.crow_t = _crow_indices(user[transpose_order], num_users).to(device)
        self.col_t = item[transpose_order].to(device)
        self.csr_t = self.transposed(self.values)
        self._patches: dict[int, tuple[Tensor, Tensor]] = {}

    def patches(self, size: int) -> tuple[Tensor, Tensor]:
        """``P`` (CSR ``[items · users, size²]``) with ``P @ vec(K) = vec(R ⋆ K)`` ('same' padding), and ``Pᵀ``.

        The rating matrix is sparse, so its cross-correlation with a small kernel is a sparse
        matrix-vector product: rating ``R[r, c]`` reaches output ``(r − a + size//2, c − b + size//2)``
        through ``K[a, b]``.
        """
        if size not in self._patches:
            num_items, num_users = self.shape
            pad = size // 2
            rows, cols, values = [], [], []
            for a in range(size):
                for b in range(size):
                    out_item, out_user = self.item - a + pad, self.user - b + pad
                    inside = (out_item >= 0) & (out_item < num_items) & (out_user >= 0) & (out_user < num_users)
                    rows.append(out_item[inside] * num_users + out_user[inside])
                    cols.append(torch.full_like(rows[-1], a * size + b))
                    values.append(self.values[inside])
            index, value = torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(values)
            shape = (num_items * num_users, size * size)
            patches = torch.sparse_coo_tensor(index, value, shape, check_invariants=False).coalesce()
            patches_t = torch.sparse_coo_tensor(index.flip(0), value, shape[::-1], check_invariants=False).coalesce()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                self._patches[size] = (patches.to_sparse_csr(), patches_t.to_sparse_csr())
        return self._patches[size]

    def with_values(self, values: Tensor) -> Tensor:
        """CSR ``[items, users]`` matrix of the observed pattern holding ``values`` (CSR order)."""
        return _csr(self.crow, self.col, values, self.shape)

    def transposed(self, values: Tensor) -> Tensor:
        """CSR ``[users, items]`` matrix of the observed pattern holding ``values`` (given in CSR order)."""
        return _csr(self.crow_t, self.col_t, values[self.transpose_order], self.shape[::-1])


def _csr(crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the few operations used here are stable
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def _crow_indices(rows: Tensor, num_rows: int) -> Tensor:
    counts = torch.bincount(rows, minlength=num_rows)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


class _SparseInputMatmul(torch.autograd.Function):
    """``R @ weight`` for the constant sparse rating matrix ``R`` (gradient only for ``weight``)."""

    @staticmethod
    def forward(ctx: Any, weight: Tensor, matrix: _RatingMatrix) -> Tensor:
        ctx.matrix = matrix
        return matrix.csr @ weight

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return ctx.matrix.csr_t @ grad, None


class _PatchProduct(torch.autograd.Function):
    """``P @ kernel`` for the constant patch matrix ``P`` of :meth:`_RatingMatrix.patches` (gradient for ``kernel``)."""

    @staticmethod
    def forward(ctx: Any, kernel: Tensor, patches: Tensor, patches_t: Tensor) -> Tensor:
        ctx.patches_t = patches_t
        return (patches @ kernel[:, None]).squeeze(1)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        return (ctx.patches_t @ grad[:, None]).squeeze(1), None, None


class _ObservedMatmul(torch.autograd.Function):
    """``(hidden @ weight + bias)`` at the observed entries of the rating matrix only, in CSR order.

    Every gradient is a sparse-dense product over the observed pattern, which keeps them
    bitwise reproducible with several threads (an indexed ``bias[user]`` backward is not).
    """

    @staticmethod
    def forward(ctx: Any, hidden: Tensor, weight: Tensor, bias: Tensor, matrix: _RatingMatrix) -> Tensor:
        ctx.save_for_backward(hidden, weight)
        ctx.matrix = matrix
        return torch.sparse.sampled_addmm(matrix.pattern, hidden, weight, beta=0.0).values() + bias[matrix.col]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:
        hidden, weight = ctx.saved_tensors
        matrix: _RatingMatrix = ctx.matrix
        grad_hidden = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_hidden = matrix.with_values(grad) @ weight.T
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_t = matrix.transposed(grad)  # [users, items]
            if ctx.needs_input_grad[1]:
                grad_weight = (grad_t @ hidden).T
            if ctx.needs_input_grad[2]:
                grad_bias = (grad_t @ hidden.new_ones(hidden.shape[0], 1)).squeeze(1)
        return grad_hidden, grad_weight, grad_bias, None


class GLocalKNetwork(nn.Module):
    """The kernel-layer autoencoder (``n_users → hidden… → n_users``) and the global kernel."""

    def __init__(
        self,
        num_items: int,
        num_users: int,
        hidden_sizes: tuple[int, ...] = (500, 500),
        kernel_dim: int = 5,
        global_kernel_size: int = 3,
        dot_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        sizes = [num_users, *hidden_sizes, num_users]
        self.layers = nn.ModuleList(
            KernelLayer(
                sizes[i],
                sizes[i + 1],
                kernel_dim,
                "sigmoid" if i < len(hidden_sizes) else "identity",
                generator=generator,
            )
            for i in range(len(sizes) - 1)
        )
        self.global_kernel = GlobalKernel(num_items, global_kernel_size, dot_scale, generator=generator)

    def local_parameters(self) -> list[nn.Parameter]:
        return [p for layer in self.layers for p in (layer.weight, layer.u, layer.v, layer.bias)]

    def all_parameters(self) -> list[nn.Parameter]:
        return [*self.local_parameters(), self.global_kernel.weight]

    def objective(
        self, matrix: _RatingMatrix, stage: str, lambda_2: float, lambda_s: float, full: bool = False
    ) -> tuple[dict[str, Tensor], Tensor | None]:
        """Loss terms of ``stage`` ("pretrain" or "finetune") and, with ``full``, the completed matrix."""
        kernels = [layer.kernel() for layer in self.layers]
        weights = [layer.weight * kernel for layer, kernel in zip(self.layers, kernels, strict=True)]
        if stage == "finetune":
            # The global kernel needs only the users' mean of the local output, so its output
            # layer collapses to one matrix-vector product.
            hidden = self._hidden(matrix, weights)
            item_summary = hidden @ weights[-1].mean(1) + self.layers[-1].bias.mean()
            kernel = self.global_kernel.kernel(item_summary)
            # ReLU(R ⋆ K) as in GlobalKernel.forward, from the sparse ratings
            convolved = _PatchProduct.apply(kernel.reshape(-1), *matrix.patches(kernel.shape[0]))
            hidden = self._hidden(torch.relu(convolved).view(matrix.shape), weights)
        else:
            hidden = self._hidden(matrix, weights)
        bias = self.layers[-1].bias
        if full:
            completed = hidden @ weights[-1] + bias
            observed = completed[matrix.item, matrix.user]
        else:
            completed = None
            observed = _ObservedMatmul.apply(hidden, weights[-1], bias, matrix)
        residual = matrix.values - observed
        l2 = sum(0.5 * (layer.weight * layer.weight).sum() for layer in self.layers)
        sparse = sum(0.5 * (kernel * kernel).sum() for kernel in kernels)
        terms = {"squared_error": 0.5 * (residual * residual).sum(), "l2": lambda_2 * l2, "sparse": lambda_s * sparse}
        terms["total"] = terms["squared_error"] + terms["l2"] + terms["sparse"]
        return terms, completed

    def _hidden(self, inputs: Tensor | _RatingMatrix, weights: list[Tensor]) -> Tensor:
        hidden = inputs
        for layer, weight in zip(self.layers[:-1], weights[:-1], strict=True):
            if isinstance(hidden, _RatingMatrix):
                product = _SparseInputMatmul.apply(weight, hidden)
            else:
                product = hidden @ weight
            hidden = layer.activate(product + layer.bias)
        return hidden


class _FlatObjective:
    """SciPy's view of a loss: a float64 vector in, (loss, float64 gradient) out, as TF's ScipyOptimizerInterface."""

    def __init__(self, parameters: list[nn.Parameter], loss: Any) -> None:
        self.parameters = parameters
        self.loss = loss
        self.numels = [p.numel() for p in parameters]
        self.evaluations = 0

    def get(self) -> np.ndarray:
        return torch.cat([p.detach().reshape(-1) for p in self.parameters]).to("cpu", torch.float64).numpy()

    def set(self, x: np.ndarray) -> None:
        flat = torch.from_numpy(x).to(self.parameters[0].device, torch.float32)
        with torch.no_grad():
            for p, chunk in zip(self.parameters, flat.split(self.numels), strict=True):
                p.copy_(chunk.view_as(p))

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.set(x)
        self.evaluations += 1
        with torch.enable_grad():
            value = self.loss()
            grads = torch.autograd.grad(value, self.parameters)
        grad = torch.cat([g.reshape(-1) for g in grads]).to("cpu", torch.float64).numpy()
        return float(value.detach()), grad

    def minimize(self, iterations: int, history: int) -> scipy.optimize.OptimizeResult:
        """One L-BFGS-B run from the current parameters (a fresh curvature history), then keep its result."""
        result = scipy.optimize.minimize(
            self, self.get(), jac=True, method="L-BFGS-B", options={"maxiter": iterations, "maxcor": history}
        )
        self.set(result.x)
        return result


@register_model
class GLocalK(RatingModel):
    """GLocal-K: a local-kernel autoencoder fine-tuned with a global convolution kernel (Han et al., CIKM 2021).

    A faithful port of the authors' TensorFlow code: the same layers, initialisers, summed loss,
    regularisers and L-BFGS-B schedule. Use :meth:`GLocalKConfig.preset` for their ML-1M and
    Douban settings. See the module docstring for the ``honest`` and ``paper`` protocols.
    """

    name: ClassVar[str] = "glocal-k"
    config_class: ClassVar[type] = GLocalKConfig

    def __init__(self, config: GLocalKConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.network: GLocalKNetwork | None = None
        self.selected: dict[str, Any] = {}
        self._completed: Tensor | None = None  # [num_movies, num_users], unclipped

    @classmethod
    def test_config(cls) -> GLocalKConfig:
        """A seconds-long configuration for tests on tiny data."""
        return GLocalKConfig(
            hidden_sizes=(16, 16),
            pretrain_epochs=2,
            finetune_epochs=2,
            pretrain_iterations=3,
            finetune_iterations=3,
            device="cpu",
        )

    @property
    def protocol_note(self) -> str:
        """How the reported epoch was chosen, e.g. ``"paper protocol (best test epoch: finetune epoch 41)"``."""
        protocol = self.config.protocol
        if not self.selected:
            return f"{protocol} protocol"
        where = f"{self.selected['stage']} epoch {self.selected['stage_epoch']}"
        how = {
            "test_rmse": "best test epoch",
            "val_rmse": "best validation epoch",
            "last": "fixed schedule, last epoch",
        }[self.selected["criterion"]]
        return f"{protocol} protocol ({how}: {where})"

    # ------------------------------------------------------------------ training
    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        config = self.config
        if split.rating_min <= 0:
            raise ValueError(
                f"GLocal-K encodes unobserved entries as 0, so ratings must be positive; "
                f"{split.name} has ratings down to {split.rating_min:g}"
            )
        if len(split.train) == 0:
            raise ValueError(f"{split.name} has no training ratings")
        device = self.device
        generator = torch.Generator().manual_seed(config.seed)
        network = GLocalKNetwork(
            split.num_movies,
            split.num_users,
            config.hidden_sizes,
            config.kernel_dim,
            config.global_kernel_size,
            config.dot_scale,
            generator,
        ).to(device)
        matrix = _RatingMatrix(split.train, split.num_movies, split.num_users, device)
        parts = {"train": split.train, "val": split.val}
        if config.protocol == "paper":
            parts["test"] = split.test  # the paper's protocol selects its epoch on the test ratings
        parts = {name: edges for name, edges in parts.items() if len(edges)}
        criterion = {"paper": "test_rmse", "honest": "val_rmse" if config.selection == "best_val" else "last"}
        criterion = criterion[config.protocol]
        if criterion == "test_rmse" and "test" not in parts:
            raise ValueError(f"the paper protocol selects its epoch on test ratings, but {split.name} has none")
        if criterion == "val_rmse" and "val" not in parts:
            criterion = "last"  # nothing to select on: the fixed schedule
        self.network, self.history, self.selected = network, [], {}
        best = math.inf
        schedule = [("pretrain", config.pretrain_epochs, config.pretrain_iterations, network.local_parameters())]
        schedule.append(("finetune", config.finetune_epochs, config.finetune_iterations, network.all_parameters()))
        epoch = 0
        for stage, epochs, iterations, parameters in schedule:
            objective = _FlatObjective(
                parameters,
                lambda stage=stage: network.objective(matrix, stage, config.lambda_2, config.lambda_s)[0]["total"],
            )
            for stage_epoch in range(1, epochs + 1):
                epoch += 1
                start = time.perf_counter()
                evaluations = objective.evaluations
                objective.minimize(iterations, config.lbfgs_history)
                with torch.no_grad():
                    terms, completed = network.objective(matrix, stage, config.lambda_2, config.lambda_s, full=True)
                if not bool(torch.isfinite(completed).all()):
                    raise FloatingPointError(
                        f"GLocal-K diverged in {stage} epoch {stage_epoch} (non-finite predictions); "
                        "try larger lambda_2 or fewer iterations"
                    )
                record: dict[str, Any] = {"stage": stage, "epoch": epoch, "stage_epoch": stage_epoch}
                for part, edges in parts.items():
                    record[f"{part}_rmse"] = self._rmse(completed, edges, split)
                record.update({f"loss_{name}" if name != "total" else "loss": float(v) for name, v in terms.items()})
                record["lbfgs_evaluations"] = objective.evaluations - evaluations
                record["seconds"] = time.perf_counter() - start
                record["protocol"] = config.protocol
                self.history.append(record)
                self._log(logger, record)
                # The reported epoch is a fine-tuning one (a pre-training one only without fine-tuning).
                if stage == "finetune" or config.finetune_epochs == 0:
                    score = record.get(criterion, math.inf)
                    if criterion == "last" or score < best:
                        best = score
                        self.selected = {"stage": stage, "stage_epoch": stage_epoch, "epoch": epoch}
                        self.selected["criterion"] = criterion
                        self._completed = completed.detach().to("cpu", torch.float32).clone()
                        best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            if logger is not None:
                for i, layer in enumerate(network.layers):
                    logger.add_histogram(f"glocal_k/{stage}/local_kernel_{i}", layer.kernel().detach().cpu(), epoch)
        network.load_state_dict(best_state)
        self.network = network.cpu()

    def _rmse(self, completed: Tensor, edges: RatingEdges, split: RatingSplit) -> float:
        pred = completed[edges.movie.to(completed.device), edges.user.to(completed.device)]
        pred = pred.clamp(split.rating_min, split.rating_max)
        return float(torch.sqrt(((pred - edges.rating.to(pred.device).float()) ** 2).mean()))

    @staticmethod
    def _log(logger: Any | None, record: dict[str, Any]) -> None:
        if logger is None:
            return
        prefix, step = f"glocal_k/{record['stage']}", record["epoch"]
        for key, value in record.items():
            if key.endswith("_rmse"):
                logger.add_scalar(f"{prefix}/rmse_{key[: -len('_rmse')]}", value, step)
            elif key.startswith("loss"):
                logger.add_scalar(f"{prefix}/{key}", value, step)

    # ------------------------------------------------------------------ prediction and state
    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        return self._completed[movie, user]

    def _score_matrix(self, users: Tensor) -> Tensor:
        return self._completed[:, users].T.contiguous()

    def _state(self) -> dict[str, Any]:
        return {
            "network": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "completed": self._completed,
            "selected": dict(self.selected),
            "protocol": self.config.protocol,
            "protocol_note": self.protocol_note,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        config, info = self.config, self.info
        self.network = GLocalKNetwork(
            info.num_movies,
            info.num_users,
            config.hidden_sizes,
            config.kernel_dim,
            config.global_kernel_size,
            config.dot_scale,
        )
        self.network.load_state_dict(state["network"])
        self._completed = state["completed"]
        self.selected = dict(state["selected"])
