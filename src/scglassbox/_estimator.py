"""``GlassBoxUMAP``: the AnnData-free estimator, a drop-in for ``umap.UMAP``."""

from __future__ import annotations

import logging
import numbers
import os
from typing import Any

import numpy as np
import torch
from scipy import sparse
from torch import nn

from . import _graph
from ._contributions import (
    InputMap,
    Reduction,
    check_reduction,
    column_mean,
    jacobian,
    stream_contributions,
)
from ._encoder import ENCODERS, build_encoder
from ._storage import (
    FORMAT_VERSION,
    LIBRARY,
    ModelFormatError,
    build_from_block,
    check_block,
    load_block,
    load_weights,
    save_block,
    state_dict_to_numpy,
)
from ._training import PRECISIONS, UMAPModule, train

logger = logging.getLogger(__name__)

#: Tolerance for the exactness check of a custom encoder on random inputs.
CUSTOM_ENCODER_RTOL = 1e-4


#: With ``epochs=None``: aim for this many optimiser steps, within the epoch bounds below.
AUTO_STEPS = 1000
AUTO_EPOCHS = (10, 500)


#: With ``batch_size=None``: edges per step, between these bounds (see :func:`auto_batch_size`).
AUTO_BATCH = (10_000, 20_000)
#: Cells per chunk of ``transform`` and ``compute_contributions`` with ``batch_size=None``.
INFERENCE_BATCH = 10_000


def auto_batch_size(n_cells: int) -> int:
    """Edges per step: ``min(4 n, 30,000 - 2 n)``, clipped to :data:`AUTO_BATCH`.

    That is 10,000 edges, rising to 20,000 at 5,000 cells and back to 10,000 at 10,000. Up to a
    few thousand cells a step of 10,000 edges already encodes nearly every cell, so more edges
    cost only the cheap 2-D loss and give a steadier gradient: on the 5,000-cell benchmark set,
    20,000 edges raised kNN preservation from 0.469-0.477 to 0.482-0.486 (three seeds) for 10%
    more time. On larger data each extra edge adds cells to encode, and the default stays at
    10,000.
    """
    lo, hi = AUTO_BATCH
    return int(min(hi, max(lo, min(4 * n_cells, 30_000 - 2 * n_cells))))


def auto_epochs(n_edges: int, batch_size: int) -> int:
    """Epochs for about :data:`AUTO_STEPS` steps, clipped to :data:`AUTO_EPOCHS`.

    A network generalises across cells, so it needs a number of gradient steps rather than a
    number of passes per cell: small data gets many epochs (like umap-learn's 500), large
    data few.
    """
    steps_per_epoch = -(-n_edges // max(min(batch_size, n_edges), 1))
    lo, hi = AUTO_EPOCHS
    return int(min(hi, max(lo, round(AUTO_STEPS / steps_per_epoch))))


class GlassBoxUMAP:
    """Parametric UMAP whose embedding is an exact sum of per-feature contributions.

    A drop-in for :class:`umap.UMAP` and for ``glass_box_umap.GlassBoxUMAP``: ``fit``,
    ``transform``, ``fit_transform`` and ``compute_contributions``.

    Parameters
    ----------
    n_neighbors
        Size of the neighbourhood of the fuzzy kNN graph (ignored when ``graph`` is passed).
    min_dist
        Minimum distance between embedded points (with ``spread``, sets ``a`` and ``b``).
    spread
        Scale of the embedded points.
    metric
        Distance metric for the kNN graph (any umap-learn / pynndescent metric).
    n_components
        Dimension of the embedding.
    negative_sample_rate
        Negative samples per positive edge.
    repulsion_strength
        Weight of the repulsive term of the loss.
    pca_components
        If set, the encoder reads the first ``pca_components`` principal components of the
        centred input; contributions are projected back to the input features and still sum
        exactly to the embedding.
    encoder
        ``"default"`` (currently ``"mlp_norm"``), ``"mlp"``, ``"mlp_norm"``, or a
        :class:`torch.nn.Module` mapping ``(n, n_inputs)`` to ``(n, n_components)``. A custom
        module must be bias-free and piecewise linear through the origin; ``fit`` checks that
        its contributions reconstruct its output and refuses it otherwise.
    encoder_kwargs
        For built-in encoders: ``hidden``, the hidden layer widths.
    lr
        Adam learning rate (decays linearly over training).
    epochs
        Training epochs; one epoch is ``|E|`` edge draws, as in the reference package.
        ``None``: about 1,000 optimiser steps (at least 10 and at most 500 epochs).
    batch_size
        Edges per training step, and cells per batch for inference. ``None``:
        ``min(4 n, 30,000 - 2 n)`` edges clipped to [10,000, 20,000] (``n`` cells), so 10,000
        except around 5,000 cells, where a step encodes nearly every cell anyway and more edges
        cost little; inference then uses 10,000 cells per batch.
    random_state
        Seed for the graph, the initial weights and the sampling. The same seed gives the same
        result on the same machine.
    quiet
        Hide progress bars and Lightning's messages.
    accelerator, devices
        Passed to :class:`lightning.pytorch.Trainer` (``"cpu"``, ``"gpu"``, ``"mps"``, ``"auto"``).
    precision
        Arithmetic of the encoder's hidden layers during training: ``"32"`` (float32),
        ``"bf16"`` (bfloat16 autocast; the output layer and the loss stay float32) or
        ``"auto"``: ``"bf16"`` for the built-in encoders, from 1,000 cells up, on CPUs with
        native bfloat16 instructions (AVX512-BF16 or AMX), where fits were 1.4-1.6x faster at
        about the same quality, else ``"32"``. Stored weights, the embedding, ``transform`` and the
        contributions are always float32, so exactness does not depend on it; the trained
        weights do (``precision_`` says which was used).
    trainer_kwargs
        More :class:`~lightning.pytorch.Trainer` options (``strategy="ddp"``...).

    Attributes
    ----------
    embedding_
        Embedding of the training data, ``(n_obs, n_components)`` float32.
    graph_
        The fuzzy graph trained on (CSR).
    encoder_
        The trained :class:`torch.nn.Module`.
    mean_
        Per-feature centring mean, the baseline of all contributions.
    components_
        PCA loadings ``(n_features, pca_components)`` or ``None``.
    loss_history_
        Mean loss per epoch.
    precision_
        Training arithmetic actually used, ``"32"`` or ``"bf16"``.
    epochs_, batch_size_
        Epochs trained and edges per step actually used.
    """

    def __init__(
        self,
        *,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        spread: float = 1.0,
        metric: str = "euclidean",
        n_components: int = 2,
        negative_sample_rate: int = 5,
        repulsion_strength: float = 1.0,
        pca_components: int | None = None,
        encoder: str | nn.Module = "default",
        encoder_kwargs: dict[str, Any] | None = None,
        lr: float = 3e-3,
        epochs: int | None = None,
        batch_size: int | None = None,
        random_state: int | None = None,
        quiet: bool = False,
        accelerator: str = "auto",
        devices: int | str | list[int] = 1,
        precision: str = "auto",
        trainer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.spread = spread
        self.metric = metric
        self.n_components = n_components
        self.negative_sample_rate = negative_sample_rate
        self.repulsion_strength = repulsion_strength
        self.pca_components = pca_components
        self.encoder = encoder
        self.encoder_kwargs = encoder_kwargs
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state
        self.quiet = quiet
        self.accelerator = accelerator
        self.devices = devices
        self.precision = precision
        self.trainer_kwargs = trainer_kwargs

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        def positive_int(name: str, minimum: int = 1, optional: bool = False) -> None:
            v = getattr(self, name)
            if optional and v is None:
                return
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}.")

        def positive_float(name: str, allow_zero: bool = False) -> None:
            v = getattr(self, name)
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v)
            if not ok or v < 0 or (v == 0 and not allow_zero):
                bound = ">= 0" if allow_zero else "> 0"
                raise ValueError(f"{name} must be a finite number {bound}, got {v!r}.")

        positive_int("n_neighbors", 2)
        positive_int("n_components", 1)
        positive_int("negative_sample_rate", 1)
        positive_int("pca_components", 1, optional=True)
        positive_int("epochs", 1, optional=True)
        positive_int("batch_size", 1, optional=True)
        positive_float("min_dist", allow_zero=True)
        positive_float("spread")
        positive_float("repulsion_strength", allow_zero=True)
        positive_float("lr")
        if self.min_dist > self.spread:
            raise ValueError(f"min_dist ({self.min_dist}) must not exceed spread ({self.spread}).")
        if self.random_state is not None and (
            isinstance(self.random_state, bool)
            or not isinstance(self.random_state, numbers.Integral)
        ):
            raise ValueError(f"random_state must be an int or None, got {self.random_state!r}.")
        if not isinstance(self.encoder, nn.Module) and self.encoder not in ("default", *ENCODERS):
            raise ValueError(
                f"encoder must be one of {('default', *ENCODERS)} or a torch.nn.Module, "
                f"got {self.encoder!r}."
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}.")
        if not isinstance(self.metric, str):
            raise ValueError(f"metric must be a string, got {self.metric!r}.")

    @staticmethod
    def _check_X(X: object, name: str = "X") -> np.ndarray | sparse.csr_matrix:
        if sparse.issparse(X):
            X = sparse.csr_matrix(X)
            values = X.data
        else:
            X = np.asarray(X)
            values = X
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}.")
        if X.dtype.kind not in "fiub":
            raise ValueError(f"{name} must be numeric, got dtype {X.dtype}.")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"{name} is empty (shape {X.shape}).")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} contains NaN or infinite values.")
        return X

    def _check_fitted(self) -> None:
        if not hasattr(self, "encoder_"):
            raise RuntimeError("This GlassBoxUMAP is not fitted yet: call fit(X) first.")

    def _check_features(self, X: object) -> np.ndarray | sparse.csr_matrix:
        X = self._check_X(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but the model was fitted on {self.n_features_in_}."
            )
        return X

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: object,
        y: object = None,
        *,
        graph: object = None,
        projection: tuple[np.ndarray, np.ndarray | None] | None = None,
    ) -> GlassBoxUMAP:
        """Fit the encoder on ``X``.

        Parameters
        ----------
        X
            ``(n_samples, n_features)``, dense or scipy sparse, any float or int dtype.
        y
            Ignored (for scikit-learn compatibility).
        graph
            Optional precomputed fuzzy graph ``(n_samples, n_samples)``, for example scanpy's
            ``adata.obsp['connectivities']``. Without it the kNN graph is built here.
        projection
            Optional fixed input map ``(mean, components)``: the encoder then reads
            ``(X - mean) @ components`` (or ``X - mean`` when ``components`` is ``None``)
            instead of fitting its own centring and PCA, e.g. to reuse scanpy's PCA.

        Returns
        -------
        The fitted estimator.
        """
        self._check_params()
        X = self._check_X(X)
        module, graph, input_map, features = self._training_module(X, graph, projection)
        history = train(
            module,
            quiet=self.quiet,
            accelerator=self.accelerator,
            devices=self.devices,
            trainer_kwargs=self.trainer_kwargs,
        )
        self.encoder_ = module.encoder.cpu().eval()
        self.input_map_ = input_map
        self.graph_ = graph
        self.a_, self.b_ = module.a, module.b
        self.n_features_in_ = X.shape[1]
        self.loss_history_ = history
        self.epochs_ = module.epochs
        self.batch_size_ = module.batch_size
        self.precision_ = "32" if module.compute_dtype is None else "bf16"
        self.embedding_ = self._encode(features)
        return self

    def _training_module(
        self,
        X: np.ndarray | sparse.spmatrix,
        graph: object,
        projection: tuple[np.ndarray, np.ndarray | None] | None,
    ) -> tuple[UMAPModule, sparse.csr_matrix, InputMap, np.ndarray]:
        """The module ``fit`` trains, with the graph, input map and encoder inputs it used."""
        n, n_features = X.shape
        if self.pca_components is not None and self.pca_components > min(n, n_features):
            raise ValueError(
                f"pca_components ({self.pca_components}) exceeds min(n_samples, n_features) "
                f"= {min(n, n_features)}."
            )
        if graph is None:
            if self.n_neighbors >= n:
                raise ValueError(f"n_neighbors ({self.n_neighbors}) must be < n_samples ({n}).")
            graph = _graph.fuzzy_graph(
                X, n_neighbors=self.n_neighbors, metric=self.metric, random_state=self.random_state
            )
        else:
            graph = _graph.check_graph(graph, n)
        edges = _graph.edge_list(graph)

        if projection is None:
            input_map = self._fit_input_map(X)
        else:
            input_map = InputMap(*projection)
            if input_map.n_features != n_features or (
                input_map.components is not None and input_map.components.shape[0] != n_features
            ):
                raise ValueError(f"projection does not match X's {n_features} features.")
        encoder = self._make_encoder(input_map.n_inputs)
        features = np.concatenate(
            [z for _, _, z in input_map.chunks(X, max(self._inference_batch, 4096))], axis=0
        )
        a, b = _graph.find_ab_params(self.spread, self.min_dist)
        batch_size = self.batch_size or auto_batch_size(n)
        epochs = self.epochs or auto_epochs(edges.n_edges, batch_size)
        seed = self._seed()
        module = UMAPModule(
            encoder,
            torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
            edges,
            a=a,
            b=b,
            negative_sample_rate=self.negative_sample_rate,
            repulsion_strength=self.repulsion_strength,
            lr=self.lr,
            batch_size=batch_size,
            epochs=epochs,
            seed=seed,
            precision=self.precision,
        )
        return module, graph, input_map, features

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.SeedSequence().generate_state(1)[0])
        return int(self.random_state)

    def _fit_input_map(self, X: np.ndarray | sparse.csr_matrix) -> InputMap:
        mean = column_mean(X)
        if self.pca_components is None:
            return InputMap(mean)
        from sklearn.decomposition import PCA

        solver = "covariance_eigh" if X.shape[1] <= 4096 else "arpack"
        pca = PCA(self.pca_components, svd_solver=solver, random_state=self.random_state or 0)
        pca.fit(X)
        return InputMap(mean, pca.components_.T)

    def _make_encoder(self, n_inputs: int) -> nn.Module:
        if not isinstance(self.encoder, nn.Module):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self._seed())
                return build_encoder(
                    self.encoder, n_inputs, self.n_components, **(self.encoder_kwargs or {})
                )
        check_encoder(self.encoder, n_inputs, self.n_components)
        return self.encoder

    # ------------------------------------------------------------------ inference
    @property
    def mean_(self) -> np.ndarray:
        """Per-feature centring mean: the baseline of every contribution."""
        self._check_fitted()
        return self.input_map_.mean

    @property
    def components_(self) -> np.ndarray | None:
        """PCA loadings ``(n_features, pca_components)``, or ``None`` without PCA."""
        self._check_fitted()
        return self.input_map_.components

    @property
    def _inference_batch(self) -> int:
        return self.batch_size or INFERENCE_BATCH

    def _encode(self, z: np.ndarray) -> np.ndarray:
        out = np.empty((z.shape[0], self.n_components), dtype=np.float32)
        device = next(self.encoder_.parameters()).device
        bs = self._inference_batch
        with torch.no_grad():
            for start in range(0, z.shape[0], bs):
                chunk = torch.from_numpy(np.ascontiguousarray(z[start : start + bs]))
                out[start : start + chunk.shape[0]] = self.encoder_(chunk.to(device)).cpu().numpy()
        return out

    def transform(self, X: object) -> np.ndarray:
        """Embed new samples with the trained encoder; returns ``(n, n_components)`` float32."""
        self._check_fitted()
        X = self._check_features(X)
        z = np.concatenate([z for _, _, z in self.input_map_.chunks(X, self._inference_batch)])
        return self._encode(z)

    def fit_transform(self, X: object, y: object = None, *, graph: object = None) -> np.ndarray:
        """Fit on ``X`` and return its embedding."""
        return self.fit(X, graph=graph).embedding_

    @classmethod
    def from_adata(cls, adata: object, key: str = "glassbox_umap") -> GlassBoxUMAP:
        """Rebuild the estimator that :func:`scglassbox.tl.glassbox_umap` stored in ``adata``.

        Its ``transform`` is bitwise identical to the original model's on the same machine.
        Features are the genes in ``adata.uns[key]['var_names']``, in that order.
        """
        uns = getattr(adata, "uns", None)
        if uns is None or key not in uns or "model" not in uns[key]:
            raise KeyError(
                f"adata.uns[{key!r}]['model'] not found: run gb.tl.glassbox_umap(adata) first "
                "(or pass the key_added you used)."
            )
        est = cls.from_dict(uns[key]["model"])
        names = uns[key]["model"].get("var_names")
        if names is not None:
            est.feature_names_in_ = np.asarray(names, dtype=object).astype(str)
        return est

    def compute_contributions(
        self,
        X: object,
        batch_size: int | None = None,
        reduction: Reduction = None,
        *,
        dtype: np.dtype | type = np.float32,
        return_embedding: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Per-feature contributions to the embedding (gradient x input of the centred input).

        ``contributions[n, d, :].sum() == embedding[n, d]`` up to float32 rounding. With
        ``pca_components`` the contributions are per input feature, not per component.

        Parameters
        ----------
        X
            Samples ``(n, n_features)``, as for :meth:`transform`.
        batch_size
            Cells per batch (default ``self.batch_size``, or 10,000). Memory is streamed batch by
            batch; only the requested output is allocated.
        reduction
            ``None``: ``(n, n_components, n_features)``. ``"l2"``: the L2 norm over embedding
            dimensions, ``(n, n_features)``. ``"normed_l2"``: that, divided per cell by its sum.
        dtype
            Output dtype (``np.float16`` halves the memory).
        return_embedding
            Also return the embedding computed in the same pass.

        Returns
        -------
        The contributions (and the embedding when ``return_embedding``).
        """
        self._check_fitted()
        check_reduction(reduction)
        X = self._check_features(X)
        bs = batch_size or self._inference_batch
        n, d, f = X.shape[0], self.n_components, self.n_features_in_
        shape = (n, d, f) if reduction is None else (n, f)
        out = np.empty(shape, dtype=dtype)
        emb = np.empty((n, d), dtype=np.float32)
        for rows, y, c in stream_contributions(
            self.encoder_,
            X,
            self.input_map_,
            batch_size=bs,
            reduction=reduction,
            dtype=dtype,
            progress=not self.quiet and n > 10 * bs,
        ):
            out[rows], emb[rows] = c, y
        return (out, emb) if return_embedding else out

    def to(self, device: str | torch.device) -> GlassBoxUMAP:
        """Move the trained encoder (for ``transform`` and contributions) to ``device``.

        After ``fit`` the encoder is on the CPU; ``est.to("cuda")`` speeds up contributions
        of large data sets. Results agree with the CPU's to float32 rounding, not bitwise.
        """
        self._check_fitted()
        self.encoder_ = self.encoder_.to(device)
        return self

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        """The fitted model as a nested dict of numpy arrays and scalars (``uns``-safe)."""
        self._check_fitted()
        arch = getattr(self.encoder_, "architecture", None)
        if arch is None:
            arch = {"name": "custom", "class": type(self.encoder_).__qualname__}
        params = {
            k: v
            for k, v in {
                "n_neighbors": self.n_neighbors,
                "min_dist": float(self.min_dist),
                "spread": float(self.spread),
                "metric": self.metric,
                "n_components": self.n_components,
                "negative_sample_rate": self.negative_sample_rate,
                "repulsion_strength": float(self.repulsion_strength),
                "pca_components": self.pca_components,
                "lr": float(self.lr),
                "epochs": self.epochs_,
                "batch_size": self.batch_size,
                "batch_size_used": getattr(self, "batch_size_", None),
                "random_state": self.random_state,
                "precision": self.precision,
                "precision_used": getattr(self, "precision_", None),
                "a": self.a_,
                "b": self.b_,
            }.items()
            if v is not None
        }
        arch = {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in arch.items()}
        block = {
            "library": LIBRARY,
            "format_version": FORMAT_VERSION,
            "architecture": arch,
            "params": params,
            "state_dict": state_dict_to_numpy(self.encoder_),
            "mean": self.input_map_.mean.copy(),
            "loss_history": np.asarray(self.loss_history_, dtype=np.float64),
        }
        if self.input_map_.components is not None:
            block["components"] = self.input_map_.components.copy()
        return block

    @classmethod
    def from_dict(cls, block: dict, *, encoder: nn.Module | None = None) -> GlassBoxUMAP:
        """Rebuild a fitted estimator from :meth:`to_dict`'s output.

        Parameters
        ----------
        block
            The model block.
        encoder
            A module of the same class as the one trained, needed only for custom encoders;
            its weights are replaced by the stored ones.
        """
        check_block(block)
        params = dict(block.get("params", {}))
        try:
            est = cls(
                **{
                    k: _scalar(v)
                    for k, v in params.items()
                    if k not in ("a", "b", "epochs", "precision_used", "batch_size_used")
                },
                epochs=int(params["epochs"]),
                quiet=True,
            )
            est.a_, est.b_ = float(params["a"]), float(params["b"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFormatError(f"invalid model parameters: {e}") from e
        if encoder is None:
            module = build_from_block(block)
        else:
            load_weights(encoder, block)
            module = encoder
        mean = np.asarray(block.get("mean"), dtype=np.float32)
        comps = block.get("components")
        if mean.ndim != 1:
            raise ModelFormatError("model 'mean' must be a 1-D array.")
        if comps is not None:
            comps = np.asarray(comps, dtype=np.float32)
            if comps.ndim != 2 or comps.shape[0] != mean.shape[0]:
                raise ModelFormatError("model 'components' does not match its 'mean'.")
        est.input_map_ = InputMap(mean, comps)
        est.encoder_ = module.cpu().eval()
        est.encoder = block["architecture"].get("name", "custom") if encoder is None else encoder
        est.n_features_in_ = mean.shape[0]
        est.epochs_ = est.epochs
        if "batch_size_used" in params:
            est.batch_size_ = int(_scalar(params["batch_size_used"]))
        if "precision_used" in params:
            est.precision_ = str(_scalar(params["precision_used"]))
        est.loss_history_ = np.asarray(block.get("loss_history", []), dtype=np.float64)
        _check_io(est)
        return est

    def save(self, path: str | os.PathLike) -> os.PathLike:
        """Save the fitted model to one ``.npz`` file (weights and JSON metadata, no pickle)."""
        return save_block(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, encoder: nn.Module | None = None) -> GlassBoxUMAP:
        """Load a model saved by :meth:`save`. Reading the file never runs code."""
        return cls.from_dict(load_block(path), encoder=encoder)

    def __repr__(self) -> str:
        fitted = "fitted" if hasattr(self, "encoder_") else "not fitted"
        enc = self.encoder if isinstance(self.encoder, str) else type(self.encoder).__name__
        return (
            f"GlassBoxUMAP(n_components={self.n_components}, encoder={enc!r}, "
            f"pca_components={self.pca_components}, {fitted})"
        )


def _scalar(v: object) -> object:
    """Undo the 0-d arrays that h5ad/zarr may hand back for scalars."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def _check_io(est: GlassBoxUMAP) -> None:
    """Check that the rebuilt encoder maps the stored input width to n_components."""
    z = torch.zeros(1, est.input_map_.n_inputs)
    try:
        with torch.no_grad():
            out = est.encoder_(z)
    except RuntimeError as e:
        raise ModelFormatError(f"encoder does not accept the stored input width: {e}") from e
    if tuple(out.shape) != (1, est.n_components):
        raise ModelFormatError(
            f"encoder outputs {tuple(out.shape)[1:]} dimensions, model says {est.n_components}."
        )


def check_encoder(
    module: nn.Module, n_inputs: int, n_components: int, *, n_samples: int = 64, seed: int = 0
) -> None:
    """Refuse a custom encoder whose contributions do not reconstruct its output.

    Checks on random inputs (two scales) that ``f(x)`` has the right shape and that
    ``sum_g J(x)[d, g] x[g] == f(x)[d]``, which holds exactly for bias-free networks with
    piecewise-linear activations through the origin.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"encoder must be a torch.nn.Module, got {type(module).__name__}.")
    gen = torch.Generator().manual_seed(seed)
    dtype = next(module.parameters(), torch.empty(0)).dtype
    x = torch.randn(n_samples, n_inputs, generator=gen, dtype=dtype)
    for scale in (1.0, 10.0):
        try:
            y, jac = jacobian(module.eval(), x * scale)
        except RuntimeError as e:
            raise ValueError(
                f"the custom encoder failed on input of shape ({n_samples}, {n_inputs}): {e}"
            ) from e
        if tuple(y.shape) != (n_samples, n_components):
            raise ValueError(
                f"the custom encoder maps ({n_samples}, {n_inputs}) to {tuple(y.shape)}, "
                f"expected ({n_samples}, {n_components})."
            )
        recon = (jac * (x * scale)[:, None, :]).sum(-1)
        err = float((recon - y).abs().max() / y.abs().max().clamp_min(1e-12))
        if not err <= CUSTOM_ENCODER_RTOL:
            raise ValueError(
                "the custom encoder's contributions do not sum to its output (relative error "
                f"{err:.2e}): use bias-free layers and activations that are piecewise linear "
                "through the origin (ReLU, LeakyReLU, PReLU), and no batch-dependent layers."
            )
    module.train()
