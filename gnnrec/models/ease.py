"""EASE (Steck 2019): a shallow item-item autoencoder with a closed-form solution.

With ``X`` the binary ``[users, movies]`` matrix of training interactions and
``P = (XᵀX + λI)⁻¹``, the item-item weights are ``B = I − P · diagMat(1 / diag(P))`` (zero
diagonal), and user ``u`` scores movie ``i`` with ``(X B)_ui``. ``λ`` is chosen from a grid on the
validation part by a top-K metric (``selection_metric``, default ``ndcg@10``). The model keeps the
training-only fit after selection (the benchmark runner refits on train + validation with
``refit_overrides``) and scores from each user's training interactions.

The λ search costs one decomposition, of the smaller of the two Gram matrices:

- movies ≤ users: ``XᵀX = QΛQᵀ`` (float64, :class:`GramSpectrum`), so that ``P(λ) = Q diag(1/(Λ+λ)) Qᵀ``;
  a candidate λ is scored on the validation users straight from the factors, through
  ``C(λ) = I/λ − P(λ) = Q diag(Λ/(λ(Λ+λ))) Qᵀ`` (one symmetric product per λ) and ``diag P = (Q∘Q) / (Λ+λ)``.
- users < movies (a wide catalogue): ``XXᵀ = UΛUᵀ`` (:class:`UserGramSpectrum`) and the Woodbury identity
  ``P(λ) = (I − Xᵀ(XXᵀ + λI)⁻¹X) / λ``, so that every λ costs products with the sparse ``X`` and
  ``users × users`` matrices, and ``movies × movies`` is formed once, for the chosen λ.

A candidate λ never forms its ``B``; only the chosen λ's ``B`` is built. A single given λ (``reg``) is one
inversion (for a wide catalogue, one ``users × users`` Cholesky factorisation).

``X`` is kept sparse (CSR) and scored a chunk of users at a time; the dense ``movies × movies`` matrices
(and, for a wide catalogue, the ``movies × users`` factors) are what limit the catalogue size, so the fit first
estimates that memory (:func:`fit_memory_estimate`) and refuses with a ``MemoryError`` when it exceeds what is
available.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.linalg
import scipy.linalg.blas
import scipy.sparse
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from gnnrec.config import Range, check_config
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation.validation import check_selection_metric, improved, validation_metrics
from gnnrec.models.base import RatingModel
from gnnrec.models.registry import register_model
from gnnrec.nn.sparse import csr_tensor, to_csr
from gnnrec.utils import available_memory

# Bytes per entry of the decomposed Gram matrix (movies² or, for a wide catalogue, users²) at the fit's peak: the
# float64 Gram matrix (8), eigh's input copy, eigenvectors and divide-and-conquer workspace (8 + 8 + 16), then a
# candidate λ's float32 scaled eigenvectors and symmetric product (4 + 4), the chosen λ's float64 P (8) and float32
# B (4); a single λ's torch.linalg.inv needs less.
FIT_BYTES_PER_GRAM_ENTRY = 60
# A wide catalogue's fit also holds the chosen λ's float64 P and float32 B (movies²) and the float64 and float32
# factors XᵀU and their float64 squares, with the float64 XᵀM and its transpose (movies × users).
WIDE_BYTES_PER_MOVIE_PAIR = 12
WIDE_BYTES_PER_MOVIE_USER = 36
# λ grid: log-spaced over six decades (about three points a decade), holding the earlier 50..1000 grid, so that
# the chosen λ lies inside it on ML-100k and on Douban-like data.
REG_GRID = (1.0, 3.0, 10.0, 30.0, 50.0, 100.0, 200.0, 300.0, 500.0, 1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6)
PREDICT_MEMORY_BUDGET = 1 << 28  # bytes of dense [pairs, movies] rows per predict chunk


@dataclass
class EASEConfig:
    """``reg`` = None: pick λ from ``reg_grid`` by validation ``selection_metric``.

    ``min_rating``: a training rating ≥ this counts as an interaction (0: every rating).
    """

    reg: float | None = None
    reg_grid: tuple[float, ...] = REG_GRID
    selection_metric: str = "ndcg@10"
    min_rating: float = 0.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.reg_grid:
            raise ValueError("EASEConfig: reg_grid=() is invalid; give at least one λ")
        positive = Range(0.0, low_open=True)
        check_config(self, {"reg": positive, "reg_grid": positive, "min_rating": Range(0.0)})
        check_selection_metric(self.selection_metric)


def interaction_matrix(split: RatingSplit, min_rating: float) -> scipy.sparse.csr_matrix:
    """Binary ``[users, movies]`` CSR matrix of the training ratings ≥ ``min_rating`` (0: every rating)."""
    train = split.train
    keep = train.rating >= min_rating
    rows = scipy.sparse.csr_matrix(
        (np.ones(int(keep.sum())), (train.user[keep].numpy(), train.movie[keep].numpy())),
        shape=(split.num_users, split.num_movies),
    )
    rows.sum_duplicates()
    rows.data[:] = 1.0
    return rows


def gram_of(interactions: scipy.sparse.spmatrix, device: torch.device | str = "cpu") -> Tensor:
    """``XᵀX`` of a sparse interaction matrix, dense float64: integer counts, exact (what a dense product gives)."""
    return torch.from_numpy((interactions.T @ interactions).toarray()).to(device)


def ease_weights(gram: Tensor, reg: float) -> Tensor:
    """``B = I − P·diagMat(1/diag(P))`` with ``P = (G + λI)⁻¹`` for a Gram matrix ``G = XᵀX``."""
    if reg <= 0:
        raise ValueError(f"ease: the regularisation λ must be positive, got {reg}")
    eye = torch.eye(gram.size(0), dtype=gram.dtype, device=gram.device)
    precision = torch.linalg.inv(gram + reg * eye)
    weights = -precision / torch.diagonal(precision)[None, :]
    weights.fill_diagonal_(0.0)
    return weights


class GramSpectrum:
    """The eigendecomposition ``G = QΛQᵀ`` of a Gram matrix, from which EASE's ``P(λ) = (G + λI)⁻¹`` follows for any λ.

    Args:
        gram: ``[movies, movies]`` symmetric positive semi-definite (float64 recommended: one decomposition
            serves every λ, so it is worth its precision).
    """

    def __init__(self, gram: Tensor) -> None:
        if gram.device.type == "cpu":  # SciPy's LAPACK (OpenBLAS) runs this several times faster than torch's MKL
            with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):  # torch's thread policy
                values, vectors = scipy.linalg.eigh(gram.numpy(), driver="evr", overwrite_a=False)
            self.eigenvalues, self.eigenvectors = torch.from_numpy(values), torch.from_numpy(vectors)
        else:
            self.eigenvalues, self.eigenvectors = torch.linalg.eigh(gram)
        self._set_factors(self.eigenvalues, self.eigenvectors)

    @classmethod
    def from_factors(cls, eigenvalues: Tensor, eigenvectors: Tensor) -> GramSpectrum:
        """The spectrum of a decomposition computed before (e.g. stored in a checkpoint)."""
        spectrum = cls.__new__(cls)
        spectrum._set_factors(eigenvalues.double(), eigenvectors.double())
        return spectrum

    def _set_factors(self, eigenvalues: Tensor, eigenvectors: Tensor) -> None:
        self.eigenvalues, self.eigenvectors = eigenvalues, eigenvectors
        self.squared = self.eigenvectors * self.eigenvectors  # diag P(λ) = (Q∘Q) @ (1/(Λ+λ))
        self._precision: tuple[float, Tensor] | None = None  # (λ, float32 C(λ)) of the last λ scored

    def inverse_spectrum(self, reg: float) -> Tensor:
        """``1 / (Λ + λ)``; λ > 0 keeps it finite (the eigenvalues of ``XᵀX`` are ≥ 0 up to rounding)."""
        if reg <= 0:
            raise ValueError(f"ease: the regularisation λ must be positive, got {reg}")
        return 1.0 / (self.eigenvalues + reg)

    def precision_diagonal(self, reg: float) -> Tensor:
        """``diag P(λ)``, ``[movies]``."""
        return self.squared @ self.inverse_spectrum(reg)

    def scores(self, rows: Tensor, reg: float) -> Tensor:
        """``X_u B(λ) = X_u − (X_u P) diag(1/diag P)`` for dense float32 rows ``X_u`` (``[n, movies]``), float32.

        With ``P(λ) = I/λ − C(λ)``, ``C(λ) = Q diag(Λ/(λ(Λ+λ))) Qᵀ`` and ``s = diag C``, this is
        ``(X_u C − X_u diag(s)) diag(1/diag P)``. ``C`` is formed once per λ in float32 (a symmetric product, half
        a matrix product) and kept for the next chunk of rows; the sparse rows then multiply it. Forming ``C``
        rather than ``P`` keeps float32 exact enough at large λ, where ``P`` is nearly ``I/λ`` and its small
        off-diagonal entries would be differences of nearly equal terms.
        """
        if self._precision is None or self._precision[0] != reg:
            self._precision = None  # free the previous λ's before forming this one
            factor = (self.eigenvectors * self.correction_spectrum(reg).sqrt()).float()
            self._precision = (reg, symmetric_product(factor))
        correction = to_csr(rows) @ self._precision[1]
        shortfall = self.squared @ self.correction_spectrum(reg)
        return (correction - rows * shortfall.float()) / self.precision_diagonal(reg).float()

    def correction_spectrum(self, reg: float) -> Tensor:
        """``Λ / (λ(Λ + λ)) = 1/λ − 1/(Λ + λ)``, the spectrum of ``C(λ) = I/λ − P(λ)``."""
        values = self.eigenvalues.clamp_min(0)
        return values * self.inverse_spectrum(reg) / reg

    def weights(self, reg: float) -> Tensor:
        """``B(λ)`` as :func:`ease_weights` gives it (float64, zero diagonal)."""
        self._precision = None  # the search is over: free its float32 C
        precision = (self.eigenvectors * self.inverse_spectrum(reg)) @ self.eigenvectors.T
        weights = -precision / self.precision_diagonal(reg)[None, :]
        weights.fill_diagonal_(0.0)
        return weights


class UserGramSpectrum:
    """EASE's ``P(λ) = (XᵀX + λI)⁻¹`` for any λ from the eigendecomposition of the *user* Gram matrix
    ``XXᵀ = UΛUᵀ``, for catalogues wider than their user base.

    By the Woodbury identity ``P(λ) = (I − Xᵀ M(λ) X) / λ`` with ``M(λ) = (XXᵀ + λI)⁻¹ / λ =
    U diag(1/(λ(Λ+λ))) Uᵀ``, so a λ costs products with the sparse ``X`` and ``users × users`` matrices instead
    of a ``movies × movies`` decomposition. The same methods as :class:`GramSpectrum`.

    Args:
        interactions: the binary ``[users, movies]`` training matrix (SciPy CSR).
        device: where the factors live.
    """

    def __init__(self, interactions: scipy.sparse.csr_matrix, device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        gram = gram_of(interactions.T, device)  # XXᵀ
        if device.type == "cpu":  # as GramSpectrum: SciPy's LAPACK under torch's thread policy
            with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
                values, vectors = scipy.linalg.eigh(gram.numpy(), driver="evd", overwrite_a=True)  # faster than evr
            self.eigenvalues, self.eigenvectors = torch.from_numpy(values), torch.from_numpy(vectors)
        else:
            self.eigenvalues, self.eigenvectors = torch.linalg.eigh(gram)
        del gram
        self._training_product: tuple[float, Tensor] | None = None
        self.transpose = interactions_transpose(interactions).to(device)  # Xᵀ, float64
        self.transpose32 = interactions_transpose(interactions, torch.float32).to(device)
        self.factors = self.transpose @ self.eigenvectors  # XᵀU, [movies, users]
        self.squared = self.factors * self.factors

    @cached_property
    def factors32(self) -> Tensor:
        """``XᵀU`` in float32, for :meth:`scores` of rows that are not training users' (the λ search needs none)."""
        return self.factors.float()

    @cached_property
    def eigenvectors32(self) -> Tensor:
        """``U`` in float32, for :meth:`scores`."""
        return self.eigenvectors.float()

    def woodbury_spectrum(self, reg: float) -> Tensor:
        """``1 / (λ(Λ + λ))``, the spectrum of ``M(λ)``."""
        if reg <= 0:
            raise ValueError(f"ease: the regularisation λ must be positive, got {reg}")
        return 1.0 / (reg * (self.eigenvalues.clamp_min(0) + reg))

    def woodbury_diagonal(self, reg: float) -> Tensor:
        """``diag(Xᵀ M(λ) X) = (XᵀU ∘ XᵀU) @ (1/(λ(Λ+λ)))``, ``[movies]``: what ``diag P`` falls short of ``1/λ``."""
        return self.squared @ self.woodbury_spectrum(reg)

    def precision_diagonal(self, reg: float) -> Tensor:
        """``diag P(λ) = 1/λ − diag(Xᵀ M(λ) X)``, ``[movies]``."""
        return 1.0 / reg - self.woodbury_diagonal(reg)

    def scores(self, rows: Tensor, reg: float) -> Tensor:
        """``X_u B(λ) = X_u − (X_u P) diag(1/diag P)`` for dense float32 rows ``X_u`` (``[n, movies]``), float32.

        With ``C = X_u Xᵀ M X = ((X_u XᵀU) / (λ(Λ+λ))) UᵀX`` and ``s = diag(Xᵀ M X)``, this is
        ``(C − X_u diag(s)) diag(1/diag P)``, which avoids subtracting nearly equal terms on rated movies.
        """
        projected = (to_csr(rows) @ self.factors32) * self.woodbury_spectrum(reg).float()
        correction = (self.transpose32 @ (projected @ self.eigenvectors32.T).T).T
        shortfall = self.woodbury_diagonal(reg)
        return (correction - rows * shortfall.float()) / (1.0 / reg - shortfall).float()

    def training_scores(self, users: Tensor, rows: Tensor, reg: float) -> Tensor:
        """:meth:`scores` of training users from their own rows ``rows = X[users]``, faster for a λ search.

        For a training row ``X_u Xᵀ U = U_u Λ``, so ``C = F(λ)[users] X`` with ``F(λ) = U diag(Λ/(λ(Λ+λ))) Uᵀ``,
        computed once per λ (a symmetric product) and kept for the next chunk of users.
        """
        if self._training_product is None or self._training_product[0] != reg:
            spectrum = self.eigenvalues.clamp_min(0) * self.woodbury_spectrum(reg)
            self._training_product = (reg, symmetric_product((self.eigenvectors * spectrum.sqrt()).float()))
        inner = self._training_product[1][users.to(self.eigenvalues.device)]
        correction = (self.transpose32 @ inner.T).T
        shortfall = self.woodbury_diagonal(reg)
        return (correction - rows * shortfall.float()) / (1.0 / reg - shortfall).float()

    def weights(self, reg: float) -> Tensor:
        """``B(λ)`` as :func:`ease_weights` gives it (float64, zero diagonal)."""
        self._training_product = None  # the search is over: free its users × users product
        inner = symmetric_product(self.eigenvectors * self.woodbury_spectrum(reg).sqrt())  # M(λ), [users, users]
        return woodbury_weights(self.transpose, inner, reg)


def interactions_transpose(interactions: scipy.sparse.csr_matrix, dtype: torch.dtype = torch.float64) -> Tensor:
    """``Xᵀ`` of a binary SciPy CSR matrix as a torch CSR tensor, ``[movies, users]``."""
    transpose = interactions.T.tocsr()
    crow, col = torch.from_numpy(transpose.indptr).long(), torch.from_numpy(transpose.indices).long()
    return csr_tensor(crow, col, torch.ones(len(col), dtype=dtype), transpose.shape)


def woodbury_weights(transpose: Tensor, inner: Tensor, reg: float) -> Tensor:
    """``B(λ)`` (float64, zero diagonal) from ``P(λ) = I/λ − Xᵀ M X`` with ``M = M(λ) = (XXᵀ + λI)⁻¹ / λ``.

    Args:
        transpose: ``Xᵀ``, sparse CSR float64, ``[movies, users]``.
        inner: ``M(λ)``, float64, ``[users, users]``.
    """
    half = (transpose @ inner).T.contiguous()  # M X, [users, movies]
    precision = (transpose @ half).neg_()  # −Xᵀ M X, [movies, movies]
    precision.diagonal().add_(1.0 / reg)
    precision.div_(-precision.diagonal().clone()[None, :])
    return precision.fill_diagonal_(0.0)


def wide_ease_weights(interactions: scipy.sparse.csr_matrix, reg: float, device: torch.device | str = "cpu") -> Tensor:
    """One λ's ``B(λ)`` for a catalogue wider than its user base: one Cholesky factorisation of ``XXᵀ + λI``
    (``users × users``) instead of a ``movies × movies`` inversion or a decomposition that serves every λ."""
    if reg <= 0:
        raise ValueError(f"ease: the regularisation λ must be positive, got {reg}")
    gram = gram_of(interactions.T, device)  # XXᵀ
    gram.diagonal().add_(reg)
    inner = torch.cholesky_inverse(torch.linalg.cholesky(gram)).div_(reg)
    del gram
    return woodbury_weights(interactions_transpose(interactions).to(device), inner, reg)


def symmetric_product(factor: Tensor) -> Tensor:
    """``A Aᵀ`` for a square ``A``; on CPU by BLAS ``syrk``, which computes one triangle (half the work of a GEMM)."""
    if factor.device.type != "cpu":
        return factor @ factor.T
    syrk = scipy.linalg.blas.dsyrk if factor.dtype == torch.float64 else scipy.linalg.blas.ssyrk
    out = np.zeros(factor.shape, dtype=factor.numpy().dtype, order="F")
    with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
        syrk(1.0, factor.numpy(), beta=0.0, c=out, overwrite_c=True)  # the upper triangle; the lower stays 0
    lower = torch.from_numpy(out).T  # C-contiguous: the product's lower triangle, zeros above the diagonal
    return lower.add_(lower.T.triu(1))


def wide(num_movies: int, num_users: int | None) -> bool:
    """Whether EASE decomposes the user Gram matrix (:class:`UserGramSpectrum`): fewer users than movies."""
    return num_users is not None and num_users < num_movies


def fit_memory_estimate(num_movies: int, num_users: int | None = None) -> int:
    """Bytes an EASE fit needs for its dense matrices (``num_users=None``: the movie-side decomposition)."""
    if not wide(num_movies, num_users):
        return FIT_BYTES_PER_GRAM_ENTRY * num_movies * num_movies
    return (
        FIT_BYTES_PER_GRAM_ENTRY * num_users * num_users
        + WIDE_BYTES_PER_MOVIE_PAIR * num_movies * num_movies
        + WIDE_BYTES_PER_MOVIE_USER * num_movies * num_users
    )


def check_fit_memory(num_movies: int, device: torch.device, num_users: int | None = None) -> None:
    """Refuse (``MemoryError``) a fit whose dense matrices would not fit, instead of being killed mid-way."""
    need, have = fit_memory_estimate(num_movies, num_users), available_memory(device)
    if need > have:
        raise MemoryError(
            f"EASE needs about {need / 2**30:.1f} GiB on {device} for its dense {num_movies:,} × {num_movies:,} "
            f"movie-movie matrices, but only {have / 2**30:.1f} GiB is available; use a smaller catalogue "
            "(e.g. drop rarely rated movies) or a machine with more memory"
        )


@register_model
class EASE(RatingModel):
    """Embarrassingly shallow autoencoder: score(u, ·) = X_u · B, ranking-only."""

    name = "ease"
    fit_cost = 5.0
    fold_in_kinds = ("users",)
    config_class = EASEConfig
    predicts_ratings = False
    # during the λ search: score from these factors
    _candidate: tuple[GramSpectrum | UserGramSpectrum, float] | None = None

    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        cfg = self.config
        check_selection_metric(cfg.selection_metric)
        start = time.perf_counter()
        device = self.device
        check_fit_memory(split.num_movies, device, split.num_users)
        rows = interaction_matrix(split, cfg.min_rating)
        self._set_interactions(torch.from_numpy(rows.indptr).long(), torch.from_numpy(rows.indices).long())
        grid = [cfg.reg] if cfg.reg is not None else list(cfg.reg_grid)
        if len(grid) > 1 and len(split.val) == 0:
            raise ValueError("ease: choosing λ needs validation ratings; set reg explicitly")
        is_wide = wide(split.num_movies, split.num_users)
        if len(grid) == 1:
            self.reg = float(grid[0])
            if is_wide:
                self.weights = wide_ease_weights(rows, self.reg, device).float().cpu()
            else:
                self.weights = ease_weights(gram_of(rows, device), self.reg).float().cpu()
            self.history.append({"epoch": 1, "reg": self.reg, "seconds": time.perf_counter() - start})
            return
        spectrum = UserGramSpectrum(rows, device) if is_wide else GramSpectrum(gram_of(rows, device))
        best, best_reg = None, grid[0]
        self.weights = None
        for epoch, reg in enumerate(grid, start=1):
            self._candidate = (spectrum, float(reg))  # _score_matrix scores from the factors
            try:
                value = validation_metrics(self, split, [cfg.selection_metric])[cfg.selection_metric]
            finally:
                self._candidate = None
            entry: dict[str, Any] = {"epoch": epoch, "reg": float(reg), f"val_{cfg.selection_metric}": value}
            if logger is not None:
                logger.add_scalar(f"selection/val_{cfg.selection_metric}", value, epoch)
            if improved(cfg.selection_metric, value, best):
                best, best_reg = value, float(reg)
            entry["seconds"] = time.perf_counter() - start
            self.history.append(entry)
        self.reg = best_reg
        self.weights = spectrum.weights(best_reg).float().cpu()

    def refit_overrides(self) -> dict[str, Any]:
        return {"reg": self.reg}

    def _set_interactions(self, indptr: Tensor, indices: Tensor) -> None:
        """The training interactions as CSR rows (``indptr``, ``indices``), one row per user."""
        self._indptr, self._indices = indptr, indices

    def _dense_rows(self, users: Tensor) -> Tensor:
        """``X[users]`` as a dense float32 ``[len(users), movies]`` block."""
        start, stop = self._indptr[users], self._indptr[users + 1]
        counts = stop - start
        row = torch.repeat_interleave(torch.arange(len(users)), counts)
        first = torch.repeat_interleave(start - (torch.cumsum(counts, 0) - counts), counts)
        dense = torch.zeros(len(users), self.info.num_movies)
        dense[row, self._indices[first + torch.arange(len(row))]] = 1.0
        return dense

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        chunk = max(1, PREDICT_MEMORY_BUDGET // (8 * self.weights.size(0)))
        parts = zip(user.split(chunk), movie.split(chunk), strict=True)
        return torch.cat([(self._dense_rows(u) * self.weights[:, m].T).sum(-1) for u, m in parts])

    def _score_matrix(self, users: Tensor) -> Tensor:
        if self._candidate is not None:
            spectrum, reg = self._candidate
            rows = self._dense_rows(users).to(spectrum.eigenvectors.device)
            if isinstance(spectrum, UserGramSpectrum):
                return spectrum.training_scores(users, rows, reg).cpu()
            return spectrum.scores(rows, reg).cpu()
        return self._dense_rows(users) @ self.weights

    def _fold_in(self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        if kind != "users":
            return super()._fold_in(kind, features, support, rating, num_new)  # B has no column for a new movie
        rows = torch.zeros(num_new, self.weights.size(0))
        keep = rating >= self.config.min_rating
        rows[support[0, keep], support[1, keep]] = 1.0
        return rows @ self.weights

    def _state(self) -> dict[str, Any]:
        num_users = len(self._indptr) - 1
        row = torch.repeat_interleave(torch.arange(num_users), self._indptr.diff())
        interactions = torch.sparse_coo_tensor(
            torch.stack([row, self._indices]), torch.ones(len(row)), (num_users, self.weights.size(0))
        )
        return {"interactions": interactions.coalesce(), "weights": self.weights, "reg": self.reg}

    def _load_state(self, state: dict[str, Any]) -> None:
        csr = to_csr(state["interactions"].coalesce())
        self._set_interactions(csr.crow_indices().long(), csr.col_indices().long())
        self.weights = state["weights"].float()
        self.reg = float(state["reg"])
