"""``GlassBoxUMAP``: the AnnData-free estimator, a drop-in for ``umap.UMAP``.

A scikit-learn transformer (``clone``, ``Pipeline``, ``GridSearchCV``, ``set_output``) that
also takes every parameter name of ``umap.UMAP`` and of the reference package's
``glass_box_umap.GlassBoxUMAP``: each either works with the same meaning or is refused at
``fit`` with the reason (see ``docs/compat.md``).
"""

from __future__ import annotations

from . import _torch  # noqa: F401  (first: torch loads under the OpenMP wait policy)

# isort: split
import os
from typing import Any

import numpy as np
import torch
from scipy import sparse
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from . import _logging
from ._callbacks import RestoreBestWeights, lightning_callback
from ._checks import check_encoder, check_X
from ._chunks import cells_per_chunk, inference_cells
from ._contributions import InputMap, jacobian, stream_contributions
from ._equality import estimators_equal
from ._fit import training_module
from ._params import (
    DEFAULT_LR,
    _batch,
    auto_batch_size,
    auto_epochs,
    check_device,
    check_params,
    training_device,
)
from ._persistence import from_block, to_block
from ._storage import load_block, save_block
from ._threads import torch_threads
from ._training import UMAPModule, train
from ._views import Reduction, check_reduction

# With the names that tests and docs import from here since before the split into modules.
__all__ = [
    "SKLEARN_EXPECTED_FAILED_CHECKS",
    "GlassBoxUMAP",
    "auto_batch_size",
    "auto_epochs",
    "check_encoder",
]

#: ``sklearn.utils.estimator_checks`` checks that cannot pass by design, with the reason; pass
#: it as ``expected_failed_checks`` to ``check_estimator`` / ``parametrize_with_checks``.
SKLEARN_EXPECTED_FAILED_CHECKS = {
    "check_dataframe_column_names_consistency": (
        "GlassBoxUMAP aligns the columns of a DataFrame by name (reordered columns are put "
        "back in the order seen at fit) instead of refusing them; missing names are refused "
        "with the names listed."
    ),
}


class GlassBoxUMAP(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Parametric UMAP whose embedding is an exact sum of per-feature contributions.

    A scikit-learn transformer and a drop-in for :class:`umap.UMAP` and for the reference
    package's ``glass_box_umap.GlassBoxUMAP``: ``fit``, ``transform``, ``fit_transform``,
    ``compute_contributions``, ``compute_jacobian``, ``save``/``load`` and ``to(device)``.
    Every parameter name of both is accepted; each either works with the same meaning or is
    refused at ``fit`` with the reason (the table is in the documentation's compatibility
    page). ``transform`` returns float32 whatever the input dtype.

    ``X`` may be rows ``(n, n_features)`` or images ``(n, H, W)`` / ``(n, C, H, W)`` (numpy
    arrays or torch tensors), e.g. for ``encoder="conv"``. Images are centred per pixel (the
    mean image is the baseline) and their contributions come back in the input's shape:
    ``(n, n_components, H, W)`` or ``(n, n_components, C, H, W)``.

    ``==`` compares the model, as in the reference package: two estimators are equal when
    their parameters (synonyms resolved; ``quiet``, ``verbose``, ``tqdm_kwds``,
    ``num_workers``, ``checkpoint_dir`` and ``extra_callbacks`` ignored) and, once fitted,
    their stored models (the parameters the fit used, architecture, weights bit for bit,
    centring mean, PCA loadings) are equal; this survives ``save``/``load``. A fitted and an
    unfitted estimator are never equal. Estimators are mutable and compare by value, so they
    are not hashable (as in the reference package, and as Python requires of such objects):
    key dictionaries by ``id(est)`` if needed.

    Parameters
    ----------
    n_neighbors
        Size of the neighbourhood of the fuzzy kNN graph (ignored when ``graph`` is passed).
        At least the number of samples: ``n_samples - 1`` is used, with a warning, as in
        umap-learn.
    n_components
        Dimension of the embedding.
    metric
        Distance metric for the kNN graph (any umap-learn / pynndescent metric).
    min_dist
        Minimum distance between embedded points (with ``spread``, sets ``a`` and ``b``).
    spread
        Scale of the embedded points.
    negative_sample_rate
        Negative samples per positive edge. ``None`` (default): umap-learn's 5, or
        :data:`~scglassbox._params.ROUTED_NEGATIVES` (15) for ``"mlp_routed"`` (the CPU default
        from 10,000 cells), whose experts kept markedly more local structure with more
        negatives in the same steps (docs/performance.md). The number a fit used is
        ``negative_sample_rate_``.
    repulsion_strength
        Weight of the repulsive term of the loss.
    pca_components
        If set, the encoder reads the first ``pca_components`` principal components of the
        centred input; contributions are projected back to the input features and still sum
        exactly to the embedding. Rows only: refused for images (as in the reference package).
    encoder
        ``"default"`` (``"mlp_routed"`` when the fit trains on a CPU on 10,000 cells or more
        and ``encoder_kwargs`` is not given, ``"mlp_norm"`` otherwise), ``"mlp"``,
        ``"mlp_norm"``, ``"mlp_gate"``, ``"mlp_routed"`` (one small ``"mlp_norm"`` per
        k-means centroid of the inputs; a cell is encoded by its nearest centroid's, and a
        cell near the boundary of two by a blend of both, so the map stays continuous: the
        same exact split as ``"mlp_norm"``, with more local structure in less time on a CPU),
        ``"conv"`` (alias ``"default_conv"``; images only: bias-free stride-2 3x3
        convolutions with per-channel PReLU, then a bias-free PReLU MLP head; contributions
        are gradient x input per pixel), a name registered with
        :func:`scglassbox.register_encoder`, or a :class:`torch.nn.Module` mapping
        ``(n, n_inputs)`` to ``(n, n_components)`` (images reach it flattened, ``n_inputs =
        C * H * W``). A custom or registered module must be bias-free and piecewise linear
        through the origin; ``fit`` checks that its contributions reconstruct its output and
        refuses it otherwise.
    encoder_kwargs
        For the MLPs: ``hidden``, the hidden layer widths. Without it, ``(128, 128)``
        on a CPU (or MPS) and ``(512, 512, 512, 512)`` when the fit trains on a CUDA GPU on
        1,000 cells or more, where the wider network costs little and keeps more local
        structure (measured in docs/performance.md). The widths used are stored with the
        model, so a model trained on a GPU loads and maps new cells anywhere. For
        ``"mlp_routed"``: ``hidden`` (each expert's; default ``(48, 48)`` while the automatic
        experts have at most 400 cells each, ``(64, 64)`` beyond or when ``experts`` is
        given), ``experts`` (default: one per 208 cells, 1 to 128) and ``blend`` (the share
        of cells encoded by a
        blend of their two nearest experts, default 0.2; 0 routes every cell to one expert)
        and ``gate`` (units gated around each expert's centroid, default ``False``: PReLU
        experts; see docs/method.md); from 10,000 cells it trains half the automatic
        epochs, its hidden layers stepped by Muon (see ``lr``). For ``"conv"``:
        ``channels`` (default ``(16, 32)``, one stride-2 convolution each), ``hidden`` (the
        head's widths, default ``(128,)``) and ``norm`` (default ``False``; ``True`` puts
        a scale normalisation after each hidden layer of the head, frozen for attribution as
        in ``"mlp_norm"``, so the contributions are then an exact split but not a gradient).
        For a registered encoder: its constructor's keyword arguments.
    lr
        Adam learning rate on the network's weights (constant over training). The
        ``"mlp_routed"`` experts' hidden layers are stepped by Muon at ``lr * 25 / 3``
        (0.025 by default). The canonical name; umap-learn's ``learning_rate`` is the same
        setting.
    epochs
        Training epochs; one epoch is ``|E|`` edge draws, as in the reference package.
        ``None``: about 1,000 optimiser steps (at least 10 and at most 500 epochs). The
        canonical name; umap-learn's ``n_epochs`` is the same setting.
    batch_size
        Edges per training step. ``None``:
        ``min(4 n, 30,000 - 2 n)`` edges clipped to [10,000, 20,000] (``n`` cells), so 10,000
        except around 5,000 cells, where a step encodes nearly every cell anyway and more edges
        cost little; on graphs where 10 epochs would be more than 1,000 such steps (from about
        50,000 cells) up to 20,000, as many as make 10 epochs about 1,000 steps (unless
        ``num_batches`` is set). On a CUDA GPU: 160,000 edges (all of them on smaller
        graphs), as many steps. As in the reference package, the same number is also the
        cells per batch of inference (:meth:`transform`, :meth:`compute_contributions`,
        :meth:`compute_jacobian`) when their own ``batch_size`` is ``None``; with
        ``batch_size=None`` inference uses 10,000 cells per batch
        (:attr:`inference_batch_size` says which).
    init
        Starting layout. ``"random"`` (default): the network's random initial weights, as
        before this option existed. ``"spectral"``, ``"tswspectral"``, ``"pca"`` or an array
        ``(n_samples, n_components)``: umap-learn's layout of that name, scaled as umap-learn
        scales it (a box 10 wide per dimension, here centred on 0 because the mean sample maps
        to the origin), which the encoder is first trained to reproduce (mean squared error,
        :data:`INIT_STEPS` Adam steps) before the UMAP loss.
    random_state
        Seed for the graph, the initial weights and the sampling. The same seed gives the same
        result on the same machine.
    quiet
        Hide progress bars and Lightning's messages. Progress goes to stderr (tqdm's and
        scanpy's convention), so stdout stays clean for a program's own output; the reference
        package writes its progress bar and a TensorBoard hint to stdout instead.
    accelerator, devices
        Passed to :class:`lightning.pytorch.Trainer` (``"cpu"``, ``"gpu"``, ``"mps"``,
        ``"auto"``). :meth:`to` before ``fit`` sets both.
    precision
        Arithmetic of the encoder's hidden layers during training: ``"32"`` (float32),
        ``"bf16"`` (bfloat16 autocast; the output layer and the loss stay float32) or
        ``"auto"``: ``"bf16"`` for the built-in encoders, from 1,000 cells up, on CPUs with
        native bfloat16 instructions (AVX512-BF16 or AMX), where fits were 1.4-1.6x faster at
        about the same quality, and on CUDA GPUs with bfloat16 (1.9x faster on an H200), else
        ``"32"``. Stored weights, the embedding, ``transform`` and the
        contributions are always float32, so exactness does not depend on it; the trained
        weights do (``precision_`` says which was used).
    trainer_kwargs
        More :class:`~lightning.pytorch.Trainer` options (``strategy="ddp"``,
        ``callbacks=[...]``...). Options the estimator sets itself (``max_epochs``,
        ``accelerator``, ``precision``...) are refused: use its own parameters.
    n_epochs, learning_rate, verbose, n_jobs, metric_kwds, output_metric, output_metric_kwds, \
low_memory, set_op_mix_ratio, local_connectivity, transform_queue_size, a, b, \
angular_rp_forest, target_n_neighbors, target_metric, target_metric_kwds, target_weight, \
transform_seed, transform_mode, force_approximation_algorithm, tqdm_kwds, unique, densmap, \
dens_lambda, dens_frac, dens_var_shift, output_dens, disconnection_distance, precomputed_knn
        umap-learn's parameters, with umap-learn's defaults. ``n_epochs`` = ``epochs``,
        ``learning_rate`` = ``lr`` (Adam on weights: umap-learn's 1.0 is far too large here),
        ``verbose=True``/``False`` = ``quiet=False``/``True``, ``n_jobs``: CPU threads.
        ``a``, ``b``, ``metric_kwds``, ``set_op_mix_ratio``, ``local_connectivity``,
        ``disconnection_distance``, ``precomputed_knn``, ``angular_rp_forest``,
        ``force_approximation_algorithm`` and ``low_memory`` work as in umap-learn (the
        graph options only when ``fit`` builds the graph). ``unique``, ``transform_seed``,
        ``transform_queue_size`` and ``tqdm_kwds`` have nothing to do here (a network maps
        equal rows to one point and transforms deterministically); ``tqdm_kwds={'disable':
        True}`` hides the progress bar. ``densmap``, ``output_dens``, supervised UMAP
        (``target_*``), ``transform_mode='graph'`` and non-Euclidean ``output_metric`` are
        refused when set.
    encoder_name, num_batches, num_workers, checkpoint_dir, restore_best_weights, \
extra_callbacks
        The reference package's parameters. ``encoder_name`` = ``encoder`` (default
        ``"default"`` as there; when both are set to other values they must agree);
        ``num_batches``:
        optimiser steps per epoch (default ``|E| / batch_size``); ``num_workers`` has nothing
        to do (edges are sampled on the training device, there is no data loader to
        parallelise); ``restore_best_weights``: keep the weights of the epoch with the lowest
        loss (default ``False`` here, ``True`` in the reference); ``extra_callbacks``: more
        Lightning callbacks. ``checkpoint_dir`` is refused: Lightning's checkpoints are
        pickles.

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
    n_features_in_, feature_names_in_
        Number of features (pixels times channels for images), and their names when ``X`` was
        a DataFrame with string columns.
    input_shape_
        Shape of one sample at fit: ``(n_features,)`` for rows, ``(H, W)`` or ``(C, H, W)``
        for images.
    loss_history_
        Mean loss per epoch.
    precision_
        Training arithmetic actually used, ``"32"`` or ``"bf16"``.
    epochs_, batch_size_
        Epochs trained and edges per step actually used.
    inference_batch_size
        Cells per batch of inference when a call's ``batch_size`` is ``None``:
        ``batch_size``, or 10,000 when that is ``None`` (set before ``fit`` too).
    best_epoch_
        With ``restore_best_weights``: the epoch whose weights were kept.
    """

    def __init__(
        self,
        *,
        n_neighbors: int = 15,
        n_components: int = 2,
        metric: str = "euclidean",
        min_dist: float = 0.1,
        spread: float = 1.0,
        negative_sample_rate: int | None = None,
        repulsion_strength: float = 1.0,
        pca_components: int | None = None,
        encoder: str | nn.Module = "default",
        encoder_kwargs: dict[str, Any] | None = None,
        lr: float = DEFAULT_LR,
        epochs: int | None = None,
        batch_size: int | None = None,
        init: str | np.ndarray = "random",
        random_state: int | None = None,
        quiet: bool = False,
        accelerator: str = "auto",
        devices: int | str | list[int] = 1,
        precision: str = "auto",
        trainer_kwargs: dict[str, Any] | None = None,
        # umap-learn's names (docs/compat.md)
        n_epochs: int | None = None,
        learning_rate: float | None = None,
        verbose: bool | None = None,
        n_jobs: int | None = -1,
        metric_kwds: dict[str, Any] | None = None,
        output_metric: str = "euclidean",
        output_metric_kwds: dict[str, Any] | None = None,
        low_memory: bool = True,
        set_op_mix_ratio: float = 1.0,
        local_connectivity: float = 1.0,
        transform_queue_size: float = 4.0,
        a: float | None = None,
        b: float | None = None,
        angular_rp_forest: bool = False,
        target_n_neighbors: int = -1,
        target_metric: str = "categorical",
        target_metric_kwds: dict[str, Any] | None = None,
        target_weight: float = 0.5,
        transform_seed: int = 42,
        transform_mode: str = "embedding",
        force_approximation_algorithm: bool = False,
        tqdm_kwds: dict[str, Any] | None = None,
        unique: bool = False,
        densmap: bool = False,
        dens_lambda: float = 2.0,
        dens_frac: float = 0.3,
        dens_var_shift: float = 0.1,
        output_dens: bool = False,
        disconnection_distance: float | None = None,
        precomputed_knn: tuple = (None, None, None),
        # the reference package's names
        encoder_name: str | None = "default",
        num_batches: int | None = None,
        num_workers: int = 0,
        checkpoint_dir: str | os.PathLike | None = None,
        restore_best_weights: bool = False,
        extra_callbacks: list | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.metric = metric
        self.min_dist = min_dist
        self.spread = spread
        self.negative_sample_rate = negative_sample_rate
        self.repulsion_strength = repulsion_strength
        self.pca_components = pca_components
        self.encoder = encoder
        self.encoder_kwargs = encoder_kwargs
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.init = init
        self.random_state = random_state
        self.quiet = quiet
        self.accelerator = accelerator
        self.devices = devices
        self.precision = precision
        self.trainer_kwargs = trainer_kwargs
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.metric_kwds = metric_kwds
        self.output_metric = output_metric
        self.output_metric_kwds = output_metric_kwds
        self.low_memory = low_memory
        self.set_op_mix_ratio = set_op_mix_ratio
        self.local_connectivity = local_connectivity
        self.transform_queue_size = transform_queue_size
        self.a = a
        self.b = b
        self.angular_rp_forest = angular_rp_forest
        self.target_n_neighbors = target_n_neighbors
        self.target_metric = target_metric
        self.target_metric_kwds = target_metric_kwds
        self.target_weight = target_weight
        self.transform_seed = transform_seed
        self.transform_mode = transform_mode
        self.force_approximation_algorithm = force_approximation_algorithm
        self.tqdm_kwds = tqdm_kwds
        self.unique = unique
        self.densmap = densmap
        self.dens_lambda = dens_lambda
        self.dens_frac = dens_frac
        self.dens_var_shift = dens_var_shift
        self.output_dens = output_dens
        self.disconnection_distance = disconnection_distance
        self.precomputed_knn = precomputed_knn
        self.encoder_name = encoder_name
        self.num_batches = num_batches
        self.num_workers = num_workers
        self.checkpoint_dir = checkpoint_dir
        self.restore_best_weights = restore_best_weights
        self.extra_callbacks = extra_callbacks

    # ------------------------------------------------------------------ scikit-learn
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = False
        # transform always returns float32 (the encoder's arithmetic), whatever X's dtype.
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "encoder_")

    def __eq__(self, other: object) -> bool:
        """Equal parameters and, once fitted, an equal model (see the class docstring)."""
        if other.__class__ is not self.__class__:
            return NotImplemented
        return estimators_equal(self, other)

    # Mutable and compared by value: not hashable (as the reference package; Python's rule).
    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> dict[str, Any]:
        """Check every parameter (scikit-learn forbids it in ``__init__``); return settings.

        See :func:`scglassbox._params.check_params` for the settings a fit uses.
        """
        return check_params(self)

    def _validate_X(self, X: object, *, reset: bool) -> np.ndarray | sparse.csr_matrix:
        """scikit-learn's validation, then what the float32 encoder needs (:func:`check_X`).

        Images come back flattened to rows of pixels.
        """
        return check_X(self, X, reset=reset)

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
            ``(n_samples, n_features)``, dense, scipy sparse (never densified as a whole) or
            a DataFrame (its string column names are kept in ``feature_names_in_``); or dense
            images ``(n_samples, H, W)`` or ``(n_samples, C, H, W)`` (not with
            ``pca_components``). A torch tensor is read as a numpy array.
        y
            Ignored: there is no supervised UMAP here (for scikit-learn compatibility).
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
        return self._fit(X, graph=graph, projection=projection)

    def _fit(
        self,
        X: object,
        *,
        graph: object = None,
        projection: tuple[np.ndarray, np.ndarray | None] | None = None,
        inputs: np.ndarray | None = None,
    ) -> GlassBoxUMAP:
        """Fit; with the encoder's ``inputs`` when the caller has computed them already.

        ``inputs``: ``projection`` applied to ``X``, float32 (as ``gb.tl.glassbox_umap``'s
        check of scanpy's PCA computes it).
        """
        settings = self._check_params()
        X = self._validate_X(X, reset=True)
        with torch_threads(settings["threads"]):
            module, graph, input_map, features = self._training_module(
                X, graph, projection, settings, inputs
            )
            best = lightning_callback(RestoreBestWeights)() if self.restore_best_weights else None
            history = train(
                module,
                quiet=settings["quiet"],
                accelerator=settings["accelerator"],
                devices=settings["devices"],
                trainer_kwargs=self._trainer_kwargs(best),
            )
        device = getattr(self, "_device", None)
        # Lightning hands the module back on the CPU: the pass over all cells below (and
        # gb.tl.glassbox_umap's contributions, through _train_device) run where it trained.
        self._train_device = training_device(settings["accelerator"], settings["devices"])
        self.encoder_ = module.encoder.eval().to(self._train_device or "cpu")
        self.input_map_ = input_map
        self.graph_ = graph
        self.a_, self.b_ = module.a, module.b
        self.loss_history_ = history
        self.epochs_ = module.epochs
        self.batch_size_ = module.batch_size
        self.negative_sample_rate_ = module.negative_sample_rate
        self.precision_ = "32" if module.compute_dtype is None else "bf16"
        self._n_features_out = self.n_components
        if best is not None:
            self.best_epoch_ = best.epoch
        self.embedding_ = self._encode(features)
        self.encoder_ = self.encoder_.to(device if device is not None else "cpu")
        return self

    def _trainer_kwargs(self, best: object) -> dict[str, Any] | None:
        extra = list(self.extra_callbacks or []) + ([best] if best is not None else [])
        if not extra:
            return self.trainer_kwargs
        kwargs = dict(self.trainer_kwargs or {})
        kwargs["callbacks"] = list(kwargs.get("callbacks", [])) + extra
        return kwargs

    def _training_module(
        self,
        X: np.ndarray | sparse.spmatrix,
        graph: object,
        projection: tuple[np.ndarray, np.ndarray | None] | None,
        settings: dict[str, Any] | None = None,
        inputs: np.ndarray | None = None,
    ) -> tuple[UMAPModule, sparse.csr_matrix, InputMap, np.ndarray]:
        """The module ``fit`` trains, with the graph, input map and encoder inputs it used."""
        settings = self._check_params() if settings is None else settings
        return training_module(self, X, graph, projection, settings, inputs)

    # ------------------------------------------------------------------ inference
    @property
    def mean_(self) -> np.ndarray:
        """Per-feature centring mean: the baseline of every contribution."""
        check_is_fitted(self)
        return self.input_map_.mean

    @property
    def components_(self) -> np.ndarray | None:
        """PCA loadings ``(n_features, pca_components)``, or ``None`` without PCA."""
        check_is_fitted(self)
        return self.input_map_.components

    @property
    def inference_batch_size(self) -> int:
        """Cells per batch of inference when a call's ``batch_size`` is ``None``.

        The estimator's ``batch_size`` (edges per training step; the reference package uses
        the one number for both), or 10,000 when it is ``None``
        (:func:`scglassbox._chunks.inference_cells`).
        """
        return inference_cells(self.batch_size)

    def _encode(self, z: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        out = np.empty((z.shape[0], self.n_components), dtype=np.float32)
        device = next(self.encoder_.parameters()).device
        bs = batch_size or self.inference_batch_size
        with torch.no_grad():
            for start in range(0, z.shape[0], bs):
                chunk = torch.from_numpy(np.ascontiguousarray(z[start : start + bs]))
                out[start : start + chunk.shape[0]] = self.encoder_(chunk.to(device)).cpu().numpy()
        return out

    def transform(self, X: object, batch_size: int | None = None) -> np.ndarray:
        """Embed samples with the trained encoder.

        Parameters
        ----------
        X
            ``(n, n_features)``, as for :meth:`fit`; a DataFrame is aligned by column name.
            Images of the shape seen at fit, or their flattened rows.
        batch_size
            Samples per encoder call (default :attr:`inference_batch_size`: the estimator's
            ``batch_size``, or 10,000).

        Returns
        -------
        ``(n, n_components)`` float32.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        bs = _batch(batch_size) or self.inference_batch_size
        z = np.concatenate([z for _, _, z in self.input_map_.chunks(X, bs)])
        return self._encode(z, bs)

    def fit_transform(
        self,
        X: object,
        y: object = None,
        *,
        graph: object = None,
        projection: tuple[np.ndarray, np.ndarray | None] | None = None,
    ) -> np.ndarray:
        """Fit on ``X`` and return its embedding (float32)."""
        return self.fit(X, graph=graph, projection=projection).embedding_

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
        return cls.from_dict(uns[key]["model"])

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
        ``pca_components`` the contributions are per input feature, not per component. For
        images they are per pixel (and channel), in the input's shape: ``(n, n_components,
        H, W)`` or ``(n, n_components, C, H, W)``, and sum over the pixels to the embedding.

        Parameters
        ----------
        X
            Samples ``(n, n_features)`` or images, as for :meth:`transform`.
        batch_size
            Cells per batch (default :attr:`inference_batch_size`: the estimator's
            ``batch_size``, or 10,000, fewer with many features so that a batch's float64
            buffer stays near 64 MiB). Memory is streamed batch by batch; only the requested
            output is allocated.
        reduction
            ``None``: ``(n, n_components, n_features)``. ``"l2"``: the L2 norm over embedding
            dimensions, ``(n, n_features)``. ``"normed_l2"``: that, divided per cell by its sum.
            For images ``n_features`` stands for the image's shape (``(n, H, W)`` reduced).
        dtype
            Output dtype (``np.float16`` halves the memory).
        return_embedding
            Also return the embedding computed in the same pass.

        Returns
        -------
        The contributions (and the embedding when ``return_embedding``).
        """
        check_is_fitted(self)
        check_reduction(reduction)
        X, sample = check_X(self, X, reset=False, return_shape=True)
        n, d, f = X.shape[0], self.n_components, self.n_features_in_
        # By default a batch also stays within the chunk budget (many genes: fewer cells).
        bs = _batch(batch_size) or cells_per_chunk(d, f, self.inference_batch_size)
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
            progress=_logging.progress_enabled(self.quiet) and n > 10 * bs,
        ):
            out[rows], emb[rows] = c, y
        out = out.reshape(*shape[:-1], *sample)  # a view: images get their own shape back
        return (out, emb) if return_embedding else out

    def compute_jacobian(self, X: object, batch_size: int | None = None) -> np.ndarray:
        """Jacobian of the embedding with respect to the input features, per sample.

        ``(n, n_components, n_features)`` float32, per raw feature also with
        ``pca_components`` (``J_input @ components.T``); for images ``(n, n_components,
        H, W)`` or ``(n, n_components, C, H, W)``. ``compute_contributions`` is this
        times ``X - mean_``. For ``encoder="mlp_norm"`` it is the Jacobian with the
        normalisation scales frozen (the attribution Jacobian), not the true gradient.
        ``batch_size``: samples per batch, as for :meth:`compute_contributions`.
        """
        check_is_fitted(self)
        X, sample = check_X(self, X, reset=False, return_shape=True)
        d, f = self.n_components, self.n_features_in_
        bs = _batch(batch_size) or cells_per_chunk(d, f, self.inference_batch_size)
        out = np.empty((X.shape[0], d, f), dtype=np.float32)
        device = next(self.encoder_.parameters()).device
        comps = self.input_map_.components
        was_training = self.encoder_.training
        self.encoder_.eval()
        try:
            for rows, _, z in self.input_map_.chunks(X, bs):
                _, jac = jacobian(self.encoder_, torch.from_numpy(z).to(device))
                jac = jac.cpu().numpy()
                if comps is not None:
                    jac = jac.astype(np.float64) @ comps.T.astype(np.float64)
                out[rows] = jac
        finally:
            self.encoder_.train(was_training)
        return out.reshape(X.shape[0], self.n_components, *sample)

    def to(self, device: str | torch.device) -> GlassBoxUMAP:
        """Use ``device`` for training and inference; returns ``self``.

        Before ``fit`` it records the device, and ``fit`` trains there (as Lightning's
        ``accelerator``/``devices``), as the reference package does. After ``fit`` it moves
        the trained encoder, e.g. ``est.to("cuda")`` to speed up contributions of large
        data; results then agree with the CPU's to float32 rounding, not bitwise. A GPU that
        torch cannot see is refused here, in plain words, and nothing changes.
        """
        device = torch.device(device)
        check_device(device)
        self._device = device
        if hasattr(self, "encoder_"):
            self.encoder_ = self.encoder_.to(self._device)
        return self

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        """The fitted model as a nested dict of numpy arrays and scalars (``uns``-safe).

        ``params`` holds every constructor parameter that describes the model (built from
        :meth:`get_params`, so a new parameter is stored without further code): the core
        ones always, the others when they differ from their default. Run-time settings
        (``quiet``, ``accelerator``, ``trainer_kwargs``...) are not stored.
        """
        check_is_fitted(self)
        return to_block(self)

    @classmethod
    def from_dict(cls, block: dict, *, encoder: nn.Module | None = None) -> GlassBoxUMAP:
        """Rebuild a fitted estimator from :meth:`to_dict`'s output.

        Every field is checked before anything is built; a bad one raises
        :class:`~scglassbox._storage.ModelFormatError` naming it.

        Parameters
        ----------
        block
            The model block (with ``var_names`` when it came from an AnnData).
        encoder
            A module of the same class as the one trained, needed only for custom encoders;
            its weights are replaced by the stored ones.
        """
        return from_block(cls, block, encoder)

    def save(self, path: str | os.PathLike) -> os.PathLike:
        """Save the fitted model to one file at exactly ``path``, whatever its suffix.

        The file holds the weights and JSON metadata in numpy's ``.npz`` format, no pickle;
        ``model.npz``, ``model.pt`` and ``model`` all work, and :meth:`load` reads the same
        path back.
        """
        return save_block(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, encoder: nn.Module | None = None) -> GlassBoxUMAP:
        """Load a model saved by :meth:`save`. Reading the file never runs code.

        A file written by the reference package (a ``torch.save`` pickle) is refused with a
        :class:`~scglassbox._storage.ModelFormatError` that says how to convert it.
        """
        return cls.from_dict(load_block(path), encoder=encoder)
