"""``GlassBoxUMAP``: the AnnData-free estimator, a drop-in for ``umap.UMAP``.

A scikit-learn transformer (``clone``, ``Pipeline``, ``GridSearchCV``, ``set_output``) that
also takes every parameter name of ``umap.UMAP`` and of the reference package's
``glass_box_umap.GlassBoxUMAP``: each either works with the same meaning or is refused at
``fit`` with the reason (see ``docs/compat.md``).
"""

from __future__ import annotations

from . import _torch  # noqa: F401  (first: torch loads under the OpenMP wait policy)

# isort: split
import logging
import numbers
import os
import warnings
from typing import Any

import numpy as np
import torch
from scipy import sparse
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data
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
    _scalar,
    build_from_block,
    check_block,
    input_map_arrays,
    load_block,
    load_weights,
    save_block,
    state_dict_to_numpy,
)
from ._threads import torch_threads
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

#: The default of ``lr``: Adam's step size on the network's weights.
DEFAULT_LR = 3e-3
#: Above this, ``lr``/``learning_rate`` is probably umap-learn's SGD step size (1.0) by habit.
LR_WARN_ABOVE = 0.1

#: ``init`` layouts: the encoder first regresses the layout for this many Adam steps ...
INIT_STEPS = 300
#: ... on this many cells per step.
INIT_BATCH = 4096
INITS = ("random", "spectral", "pca", "tswspectral")

#: Largest float32: float64 input beyond it would become inf in the float32 encoder.
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Trainer options that the estimator sets itself; passing them in ``trainer_kwargs`` would
#: desynchronise the loss history, the epoch count or the device from the estimator's record.
OWNED_TRAINER_KWARGS = {
    "max_epochs": "epochs",
    "min_epochs": "epochs",
    "max_steps": "epochs",
    "min_steps": "epochs",
    "max_time": "epochs",
    "limit_train_batches": "num_batches",
    "overfit_batches": "num_batches",
    "fast_dev_run": "epochs",
    "accelerator": "accelerator",
    "devices": "devices",
    "precision": "precision",
}

#: umap-learn parameters refused unless left at their default: ``name: (default, why)``.
UNSUPPORTED = {
    "output_metric": (
        "euclidean",
        "the embedding is Euclidean: the loss uses q = 1 / (1 + a d^(2b)) with Euclidean d",
    ),
    "output_metric_kwds": (None, "only the Euclidean output metric is supported"),
    "target_n_neighbors": (-1, "supervised UMAP (fit with y) is not implemented; y is ignored"),
    "target_metric": (
        "categorical",
        "supervised UMAP (fit with y) is not implemented; y is ignored",
    ),
    "target_metric_kwds": (None, "supervised UMAP (fit with y) is not implemented"),
    "target_weight": (0.5, "supervised UMAP (fit with y) is not implemented; y is ignored"),
    "transform_mode": (
        "embedding",
        "transform always embeds with the trained encoder; there is no graph mode",
    ),
    "densmap": (False, "densMAP's density-preserving loss is not implemented"),
    "output_dens": (False, "densMAP's local radii are not computed"),
    "checkpoint_dir": (
        None,
        "scglassbox writes no training checkpoints (Lightning's are pickles); "
        "use restore_best_weights=True to keep the best epoch in memory and save() the model",
    ),
}

#: Parameters that only steer how a kNN graph is built by ``fit``.
GRAPH_OPTIONS = {
    "metric_kwds": None,
    "set_op_mix_ratio": 1.0,
    "local_connectivity": 1.0,
    "disconnection_distance": None,
    "precomputed_knn": (None, None, None),
    "force_approximation_algorithm": False,
    "angular_rp_forest": False,
}

#: Settings that steer a fit but do not describe the fitted model: not stored by ``to_dict``.
RUNTIME_PARAMS = frozenset(
    {
        "quiet",
        "verbose",
        "accelerator",
        "devices",
        "trainer_kwargs",
        "extra_callbacks",
        "checkpoint_dir",
        "num_workers",
        "n_jobs",
        "tqdm_kwds",
        "low_memory",
        "transform_queue_size",
        "transform_seed",
        "encoder",  # stored as the block's 'architecture'
        "encoder_name",
        "encoder_kwargs",
        "n_epochs",  # synonyms: 'epochs' and 'lr' hold the values used
        "learning_rate",
    }
)
#: Model-block ``params`` entries that record what a fit used, beyond the constructor's.
FITTED_PARAMS = ("batch_size_used", "precision_used")


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


def _str_array(names: object) -> np.ndarray:
    """Names as a numpy array of str (h5ad may hand back bytes or object arrays)."""
    arr = np.asarray(names, dtype=object).ravel()
    return np.array([n.decode() if isinstance(n, bytes) else str(n) for n in arr], dtype=object)


#: ``sklearn.utils.estimator_checks`` checks that cannot pass by design, with the reason; pass
#: it as ``expected_failed_checks`` to ``check_estimator`` / ``parametrize_with_checks``.
SKLEARN_EXPECTED_FAILED_CHECKS = {
    "check_dataframe_column_names_consistency": (
        "GlassBoxUMAP aligns the columns of a DataFrame by name (reordered columns are put "
        "back in the order seen at fit) instead of refusing them; missing names are refused "
        "with the names listed."
    ),
}


class _RestoreBestWeights:
    """Lightning callback: keep the encoder's weights of the epoch with the lowest loss.

    The weights at the start of epoch ``e`` are those at the end of epoch ``e - 1``, whose
    loss is then already in the module's history, so no hook order matters.
    """

    def __init__(self) -> None:
        self.best = float("inf")
        self.epoch: int | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def _consider(self, module: UMAPModule, epoch: int) -> None:
        loss = float(module.history[epoch])
        if np.isfinite(loss) and loss < self.best:
            self.best, self.epoch = loss, epoch
            self.state = {k: v.detach().clone() for k, v in module.encoder.state_dict().items()}

    def on_train_epoch_start(self, trainer: Any, module: UMAPModule) -> None:
        if trainer.current_epoch > 0:
            self._consider(module, trainer.current_epoch - 1)

    def on_train_end(self, trainer: Any, module: UMAPModule) -> None:
        written = np.flatnonzero(np.isfinite(module.history.cpu().numpy()))
        if written.size:
            self._consider(module, int(written[-1]))
        if self.state is not None:
            module.encoder.load_state_dict(self.state)


def _lightning_callback(cls: type) -> type:
    """``cls`` as a subclass of Lightning's ``Callback`` (Lightning is imported by training)."""
    import lightning.pytorch as lp

    return type(cls.__name__, (cls, lp.Callback), {})


class GlassBoxUMAP(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Parametric UMAP whose embedding is an exact sum of per-feature contributions.

    A scikit-learn transformer and a drop-in for :class:`umap.UMAP` and for the reference
    package's ``glass_box_umap.GlassBoxUMAP``: ``fit``, ``transform``, ``fit_transform``,
    ``compute_contributions``, ``compute_jacobian``, ``save``/``load`` and ``to(device)``.
    Every parameter name of both is accepted; each either works with the same meaning or is
    refused at ``fit`` with the reason (the table is in the documentation's compatibility
    page). ``transform`` returns float32 whatever the input dtype.

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
        Adam learning rate on the network's weights (decays linearly over training). The
        canonical name; umap-learn's ``learning_rate`` is the same setting.
    epochs
        Training epochs; one epoch is ``|E|`` edge draws, as in the reference package.
        ``None``: about 1,000 optimiser steps (at least 10 and at most 500 epochs). The
        canonical name; umap-learn's ``n_epochs`` is the same setting.
    batch_size
        Edges per training step, and cells per batch for inference. ``None``:
        ``min(4 n, 30,000 - 2 n)`` edges clipped to [10,000, 20,000] (``n`` cells), so 10,000
        except around 5,000 cells, where a step encodes nearly every cell anyway and more edges
        cost little; inference then uses 10,000 cells per batch.
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
        Hide progress bars and Lightning's messages.
    accelerator, devices
        Passed to :class:`lightning.pytorch.Trainer` (``"cpu"``, ``"gpu"``, ``"mps"``,
        ``"auto"``). :meth:`to` before ``fit`` sets both.
    precision
        Arithmetic of the encoder's hidden layers during training: ``"32"`` (float32),
        ``"bf16"`` (bfloat16 autocast; the output layer and the loss stay float32) or
        ``"auto"``: ``"bf16"`` for the built-in encoders, from 1,000 cells up, on CPUs with
        native bfloat16 instructions (AVX512-BF16 or AMX), where fits were 1.4-1.6x faster at
        about the same quality, else ``"32"``. Stored weights, the embedding, ``transform`` and the
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
        The reference package's parameters. ``encoder_name`` = ``encoder``; ``num_batches``:
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
        Number of features, and their names when ``X`` was a DataFrame with string columns.
    loss_history_
        Mean loss per epoch.
    precision_
        Training arithmetic actually used, ``"32"`` or ``"bf16"``.
    epochs_, batch_size_
        Epochs trained and edges per step actually used.
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
        negative_sample_rate: int = 5,
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
        encoder_name: str | None = None,
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

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> dict[str, Any]:
        """Check every parameter (scikit-learn forbids it in ``__init__``); return settings.

        Each error names the parameter the user passed. The returned dict holds the values
        a fit uses once synonyms are resolved: ``epochs``, ``lr``, ``encoder``, ``quiet``,
        ``a``, ``b``, ``accelerator``, ``devices``, ``threads`` and ``custom_graph``.
        """

        def integer(name: str, minimum: int = 1, optional: bool = False) -> None:
            v = getattr(self, name)
            if optional and v is None:
                return
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}.")

        def real(name: str, allow_zero: bool = False, optional: bool = False) -> None:
            v = getattr(self, name)
            if optional and v is None:
                return
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v)
            if not ok or v < 0 or (v == 0 and not allow_zero):
                bound = ">= 0" if allow_zero else "> 0"
                raise ValueError(f"{name} must be a finite number {bound}, got {v!r}.")

        def flag(name: str, optional: bool = False) -> None:
            v = getattr(self, name)
            if not (isinstance(v, (bool, np.bool_)) or (optional and v is None)):
                raise ValueError(f"{name} must be True or False, got {v!r}.")

        def mapping(name: str) -> None:
            v = getattr(self, name)
            if v is not None and not isinstance(v, dict):
                raise ValueError(f"{name} must be a dict or None, got {type(v).__name__}.")

        integer("n_neighbors", 2)
        integer("n_components", 1)
        integer("negative_sample_rate", 1)
        integer("pca_components", 1, optional=True)
        integer("epochs", 1, optional=True)
        integer("n_epochs", 1, optional=True)
        integer("batch_size", 1, optional=True)
        integer("num_batches", 1, optional=True)
        integer("num_workers", 0)
        real("min_dist", allow_zero=True)
        real("spread")
        real("repulsion_strength", allow_zero=True)
        real("lr")
        real("learning_rate", optional=True)
        real("a", optional=True)
        real("b", optional=True)
        real("set_op_mix_ratio", allow_zero=True)
        real("local_connectivity")
        real("transform_queue_size")
        real("disconnection_distance", optional=True)
        real("dens_lambda", allow_zero=True)
        real("dens_frac", allow_zero=True)
        real("dens_var_shift", allow_zero=True)
        for name in ("low_memory", "angular_rp_forest", "force_approximation_algorithm"):
            flag(name)
        for name in ("unique", "densmap", "output_dens", "quiet", "restore_best_weights"):
            flag(name)
        flag("verbose", optional=True)
        for name in ("encoder_kwargs", "trainer_kwargs", "metric_kwds", "tqdm_kwds"):
            mapping(name)
        if self.set_op_mix_ratio > 1:
            raise ValueError(f"set_op_mix_ratio must be in [0, 1], got {self.set_op_mix_ratio}.")
        if self.min_dist > self.spread:
            raise ValueError(f"min_dist ({self.min_dist}) must not exceed spread ({self.spread}).")
        if (self.a is None) != (self.b is None):
            raise ValueError("a and b set the curve q = 1 / (1 + a d^(2b)) together: pass both.")
        for name in ("random_state", "transform_seed"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral)):
                raise ValueError(f"{name} must be an int or None, got {v!r}.")
        for name, (default, why) in UNSUPPORTED.items():
            v = getattr(self, name)
            if not (v is default or (isinstance(v, (str, numbers.Number)) and v == default)):
                raise ValueError(f"{name}={v!r} is not supported: {why}.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}.")
        if not isinstance(self.metric, str):
            raise ValueError(f"metric must be a string, got {self.metric!r}.")
        if not isinstance(self.init, str) and np.ndim(self.init) != 2:
            raise ValueError(
                f"init must be one of {INITS} or an array (n_samples, n_components), "
                f"got {self.init!r}."
            )
        if isinstance(self.init, str) and self.init not in INITS:
            raise ValueError(f"init must be one of {INITS} or an array, got {self.init!r}.")
        if self.n_jobs is not None and (
            isinstance(self.n_jobs, bool)
            or not isinstance(self.n_jobs, numbers.Integral)
            or self.n_jobs == 0
            or self.n_jobs < -1
        ):
            raise ValueError(f"n_jobs must be a positive int, -1 or None, got {self.n_jobs!r}.")
        knn = self.precomputed_knn
        if not (isinstance(knn, tuple | list) and len(knn) == 3):
            raise ValueError(
                f"precomputed_knn must be (knn_indices, knn_dists, knn_search_index), got {knn!r}."
            )
        if self.extra_callbacks is not None and not isinstance(self.extra_callbacks, list | tuple):
            raise ValueError("extra_callbacks must be a list of Lightning callbacks or None.")
        owned = sorted(set(self.trainer_kwargs or {}) & set(OWNED_TRAINER_KWARGS))
        if owned:
            use = sorted({OWNED_TRAINER_KWARGS[k] for k in owned})
            raise ValueError(
                f"trainer_kwargs may not set {owned}: the estimator sets them itself and "
                f"records what it used; use its parameter(s) {use} instead."
            )

        epochs = _same("epochs", self.epochs, "n_epochs", self.n_epochs, None)
        lr = _same("lr", self.lr, "learning_rate", self.learning_rate, DEFAULT_LR)
        if lr > LR_WARN_ABOVE:
            name = "learning_rate" if self.learning_rate is not None else "lr"
            warnings.warn(
                f"{name}={lr} is Adam's step size on the network's weights (default "
                f"{DEFAULT_LR}), not umap-learn's SGD step size on coordinates (1.0); "
                f"values above {LR_WARN_ABOVE} usually make training diverge.",
                UserWarning,
                stacklevel=3,
            )
        encoder = _same("encoder", self.encoder, "encoder_name", self.encoder_name, "default")
        if not isinstance(encoder, nn.Module) and encoder not in ("default", *ENCODERS):
            name = "encoder_name" if self.encoder_name is not None else "encoder"
            raise ValueError(
                f"{name} must be one of {('default', *ENCODERS)} or a torch.nn.Module, "
                f"got {encoder!r}."
            )
        quiet = self.quiet
        if self.verbose is not None:
            if self.verbose and self.quiet:
                raise ValueError("verbose=True and quiet=True contradict each other.")
            quiet = not self.verbose
        if (self.tqdm_kwds or {}).get("disable") is True:
            quiet = True
        accelerator, devices = self.accelerator, self.devices
        device = getattr(self, "_device", None)
        if device is not None:  # .to(device) before fit, as in the reference package
            accelerator = {"cuda": "gpu"}.get(device.type, device.type)
            devices = [device.index] if device.index is not None else 1
        custom_graph = any(
            not _is_default(getattr(self, k), v) for k, v in GRAPH_OPTIONS.items()
        ) or bool(self.metric_kwds)
        n_jobs = self.n_jobs
        return {
            "epochs": epochs,
            "lr": float(lr),
            "encoder": encoder,
            "quiet": bool(quiet),
            "a": None if self.a is None else float(self.a),
            "b": None if self.b is None else float(self.b),
            "accelerator": accelerator,
            "devices": devices,
            "threads": None if n_jobs is None or n_jobs == -1 else int(n_jobs),
            "custom_graph": custom_graph,
        }

    def _validate_X(self, X: object, *, reset: bool) -> np.ndarray | sparse.csr_matrix:
        """scikit-learn's validation, then what the float32 encoder needs.

        A DataFrame whose string columns hold every name seen at fit is put in that order
        first (never silently positional); missing names are refused, listed.
        """
        if not reset:
            X = self._align_columns(X)
        X = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse="csr",
            dtype="numeric",
            ensure_min_samples=2 if reset else 1,
        )
        if sparse.issparse(X) and not isinstance(X, sparse.csr_matrix):
            X = sparse.csr_matrix(X)  # shares the arrays of a csr_array
        if X.dtype.kind == "f" and X.dtype.itemsize > 4:
            values = X.data if sparse.issparse(X) else X
            if values.size and max(-values.min(), values.max()) > FLOAT32_MAX:
                raise ValueError(
                    f"X has values beyond float32's range (|x| > {FLOAT32_MAX:.3g}); the "
                    "encoder computes in float32, where they would become infinite."
                )
        return X

    def _align_columns(self, X: object) -> object:
        names = getattr(self, "feature_names_in_", None)
        columns = getattr(X, "columns", None)
        if names is None or columns is None or not hasattr(X, "__getitem__"):
            return X
        columns = list(columns)
        if not all(isinstance(c, str) for c in columns) or columns == list(names):
            return X  # scikit-learn's own checks report non-string or absent names
        present = set(columns)
        missing = [n for n in names if n not in present]
        if missing:
            shown = ", ".join(map(repr, missing[:20])) + (" ..." if len(missing) > 20 else "")
            raise ValueError(
                f"X lacks {len(missing)} of the {len(names)} feature names seen at fit: {shown}."
            )
        return X[list(names)]

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
            a DataFrame (its string column names are kept in ``feature_names_in_``).
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
        settings = self._check_params()
        X = self._validate_X(X, reset=True)
        with torch_threads(settings["threads"]):
            module, graph, input_map, features = self._training_module(
                X, graph, projection, settings
            )
            best = _lightning_callback(_RestoreBestWeights)() if self.restore_best_weights else None
            history = train(
                module,
                quiet=settings["quiet"],
                accelerator=settings["accelerator"],
                devices=settings["devices"],
                trainer_kwargs=self._trainer_kwargs(best),
            )
        device = getattr(self, "_device", None)
        self.encoder_ = module.encoder.cpu().eval()
        self.input_map_ = input_map
        self.graph_ = graph
        self.a_, self.b_ = module.a, module.b
        self.loss_history_ = history
        self.epochs_ = module.epochs
        self.batch_size_ = module.batch_size
        self.precision_ = "32" if module.compute_dtype is None else "bf16"
        self._n_features_out = self.n_components
        if best is not None:
            self.best_epoch_ = best.epoch
        self.embedding_ = self._encode(features)
        if device is not None:
            self.encoder_ = self.encoder_.to(device)
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
    ) -> tuple[UMAPModule, sparse.csr_matrix, InputMap, np.ndarray]:
        """The module ``fit`` trains, with the graph, input map and encoder inputs it used."""
        settings = self._check_params() if settings is None else settings
        n, n_features = X.shape
        if self.pca_components is not None and self.pca_components > min(n, n_features):
            raise ValueError(
                f"pca_components ({self.pca_components}) exceeds min(n_samples, n_features) "
                f"= {min(n, n_features)}."
            )
        if graph is None:
            n_neighbors = self.n_neighbors
            if n_neighbors >= n:
                warnings.warn(
                    f"n_neighbors ({n_neighbors}) is not smaller than the number of samples "
                    f"({n}); using {n - 1}, as umap-learn does.",
                    UserWarning,
                    stacklevel=3,
                )
                n_neighbors = n - 1
            if settings["custom_graph"]:
                graph = self._umap_graph(X, n_neighbors)
            else:
                graph = _graph.fuzzy_graph(
                    X, n_neighbors=n_neighbors, metric=self.metric, random_state=self.random_state
                )
        else:
            if settings["custom_graph"]:
                changed = [
                    k for k, v in GRAPH_OPTIONS.items() if not _is_default(getattr(self, k), v)
                ]
                raise ValueError(
                    f"{changed or ['metric_kwds']} "
                    "steer the kNN graph that fit builds, but a graph was passed: set them "
                    "where that graph is built (e.g. sc.pp.neighbors) instead."
                )
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
        encoder = self._make_encoder(input_map.n_inputs, settings["encoder"])
        features = np.concatenate(
            [z for _, _, z in input_map.chunks(X, max(self._inference_batch, 4096))], axis=0
        )
        if not np.isfinite(features).all():
            raise ValueError("X's centred values overflow float32: rescale X.")
        if settings["a"] is None:
            a, b = _graph.find_ab_params(self.spread, self.min_dist)
        else:
            a, b = settings["a"], settings["b"]
        batch_size = self.batch_size or auto_batch_size(n)
        if settings["epochs"] is not None:
            epochs = settings["epochs"]
        elif self.num_batches:
            lo, hi = AUTO_EPOCHS
            epochs = int(min(hi, max(lo, round(AUTO_STEPS / self.num_batches))))
        else:
            epochs = auto_epochs(edges.n_edges, batch_size)
        seed = self._seed()
        if not (isinstance(self.init, str) and self.init == "random"):
            target = self._init_layout(X, graph, seed)
            _regress_layout(encoder, features, target, seed=seed, lr=settings["lr"])
        module = UMAPModule(
            encoder,
            torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
            edges,
            a=a,
            b=b,
            negative_sample_rate=self.negative_sample_rate,
            repulsion_strength=self.repulsion_strength,
            lr=settings["lr"],
            batch_size=batch_size,
            epochs=epochs,
            seed=seed,
            precision=self.precision,
        )
        if self.num_batches:
            module.steps_per_epoch = int(self.num_batches)
        return module, graph, input_map, features

    def _umap_graph(self, X: np.ndarray | sparse.csr_matrix, n_neighbors: int) -> sparse.csr_matrix:
        """The fuzzy graph with umap-learn's graph options (``metric_kwds``, ...) applied."""
        from umap.umap_ import fuzzy_simplicial_set, nearest_neighbors

        n = X.shape[0]
        rng = np.random.RandomState(self.random_state)
        kwds = dict(self.metric_kwds or {})
        knn_indices, knn_dists, _ = self.precomputed_knn
        if knn_indices is not None:
            knn_indices, knn_dists = np.asarray(knn_indices), np.asarray(knn_dists)
            if (
                knn_dists is None
                or knn_indices.ndim != 2
                or knn_indices.shape != knn_dists.shape
                or knn_indices.shape[0] != n
                or knn_indices.shape[1] < n_neighbors
            ):
                raise ValueError(
                    f"precomputed_knn must hold indices and distances of shape ({n}, >= "
                    f"{n_neighbors}), got {knn_indices.shape} and {np.shape(knn_dists)}."
                )
            knn_indices = knn_indices[:, :n_neighbors]
            knn_dists = knn_dists[:, :n_neighbors]
        elif n < _graph.EXACT_KNN_BELOW and not self.force_approximation_algorithm:
            from sklearn.neighbors import NearestNeighbors

            nn_kwds = dict(kwds)
            p = nn_kwds.pop("p") if self.metric == "minkowski" and "p" in nn_kwds else 2
            nn_ = NearestNeighbors(
                n_neighbors=n_neighbors, metric=self.metric, p=p, metric_params=nn_kwds or None
            )
            knn_dists, knn_indices = nn_.fit(X).kneighbors(X)
        else:
            knn_indices, knn_dists, _ = nearest_neighbors(
                X,
                n_neighbors,
                self.metric,
                kwds,
                self.angular_rp_forest,
                rng,
                low_memory=self.low_memory,
                n_jobs=1 if self.random_state is not None else -1,
            )
        knn_indices = np.array(knn_indices, dtype=np.int32)
        knn_dists = np.array(knn_dists, dtype=np.float32)
        if self.disconnection_distance is not None:
            cut = knn_dists >= self.disconnection_distance
            knn_indices[cut], knn_dists[cut] = -1, np.inf
        graph, _, _ = fuzzy_simplicial_set(
            X,
            n_neighbors,
            rng,
            self.metric,
            kwds,
            knn_indices,
            knn_dists,
            self.angular_rp_forest,
            self.set_op_mix_ratio,
            self.local_connectivity,
        )
        return sparse.csr_matrix(graph)

    def _init_layout(
        self, X: np.ndarray | sparse.csr_matrix, graph: sparse.csr_matrix, seed: int
    ) -> np.ndarray:
        """The ``init`` layout, scaled as umap-learn scales it, centred on 0 (float32)."""
        n, d = X.shape[0], self.n_components
        init = self.init
        if isinstance(init, str) and init == "pca":
            from sklearn.decomposition import PCA, TruncatedSVD

            if d > min(X.shape):
                raise ValueError(f"init='pca' needs n_components ({d}) <= {min(X.shape)}.")
            cls = TruncatedSVD if sparse.issparse(X) else PCA
            layout = cls(n_components=d, random_state=seed % 2**32).fit_transform(X)
        elif isinstance(init, str):
            from umap import spectral

            fn = spectral.spectral_layout if init == "spectral" else spectral.tswspectral_layout
            rng = np.random.RandomState(seed % 2**32)
            layout = fn(X, graph, d, rng, metric=self.metric, metric_kwds=self.metric_kwds or {})
        else:
            layout = np.asarray(init, dtype=np.float64)
            if layout.shape != (n, d) or not np.isfinite(layout).all():
                raise ValueError(
                    f"init as an array must be finite with shape (n_samples, n_components) = "
                    f"({n}, {d}), got shape {layout.shape}."
                )
        layout = np.asarray(layout, dtype=np.float64)
        lo, hi = layout.min(axis=0), layout.max(axis=0)
        layout = 10.0 * (layout - lo) / np.where(hi > lo, hi - lo, 1.0)
        # The encoder has no bias, so the mean sample maps near 0: centre the target there.
        return (layout - layout.mean(axis=0)).astype(np.float32)

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

    def _make_encoder(self, n_inputs: int, encoder: str | nn.Module | None = None) -> nn.Module:
        encoder = self.encoder if encoder is None else encoder
        if not isinstance(encoder, nn.Module):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self._seed())
                return build_encoder(
                    encoder, n_inputs, self.n_components, **(self.encoder_kwargs or {})
                )
        check_encoder(encoder, n_inputs, self.n_components)
        return encoder

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
    def _inference_batch(self) -> int:
        return self.batch_size or INFERENCE_BATCH

    def _encode(self, z: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        out = np.empty((z.shape[0], self.n_components), dtype=np.float32)
        device = next(self.encoder_.parameters()).device
        bs = batch_size or self._inference_batch
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
        batch_size
            Samples per encoder call (default ``self.batch_size``, or 10,000).

        Returns
        -------
        ``(n, n_components)`` float32.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        bs = _batch(batch_size) or self._inference_batch
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
        check_is_fitted(self)
        check_reduction(reduction)
        X = self._validate_X(X, reset=False)
        bs = _batch(batch_size) or self._inference_batch
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

    def compute_jacobian(self, X: object, batch_size: int | None = None) -> np.ndarray:
        """Jacobian of the embedding with respect to the input features, per sample.

        ``(n, n_components, n_features)`` float32, per raw feature also with
        ``pca_components`` (``J_input @ components.T``). ``compute_contributions`` is this
        times ``X - mean_``. For ``encoder="mlp_norm"`` it is the Jacobian with the
        normalisation scales frozen (the attribution Jacobian), not the true gradient.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        bs = _batch(batch_size) or self._inference_batch
        out = np.empty((X.shape[0], self.n_components, self.n_features_in_), dtype=np.float32)
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
        return out

    def to(self, device: str | torch.device) -> GlassBoxUMAP:
        """Use ``device`` for training and inference; returns ``self``.

        Before ``fit`` it records the device, and ``fit`` trains there (as Lightning's
        ``accelerator``/``devices``), as the reference package does. After ``fit`` it moves
        the trained encoder, e.g. ``est.to("cuda")`` to speed up contributions of large
        data; results then agree with the CPU's to float32 rounding, not bitwise.
        """
        self._device = torch.device(device)
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
        arch = getattr(self.encoder_, "architecture", None)
        if arch is None:
            arch = {"name": "custom", "class": type(self.encoder_).__qualname__}
        lr = _same("lr", self.lr, "learning_rate", self.learning_rate, DEFAULT_LR)
        defaults = _defaults()
        params: dict[str, Any] = {}
        for k, v in self.get_params(deep=False).items():
            v = _scalar(v)
            if k in RUNTIME_PARAMS or v is None or not isinstance(v, str | numbers.Real):
                continue  # arrays, modules and dicts do not describe the stored model
            if k not in CORE_PARAMS and _is_default(v, defaults[k]):
                continue
            params[k] = float(v) if isinstance(v, float) else v
        params.update(epochs=int(self.epochs_), lr=float(lr), a=self.a_, b=self.b_)
        if getattr(self, "batch_size_", None) is not None:
            params["batch_size_used"] = int(self.batch_size_)
        if getattr(self, "precision_", None) is not None:
            params["precision_used"] = self.precision_
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
        check_block(block)
        params = block.get("params", {})
        if not isinstance(params, dict):
            raise ModelFormatError("model field 'params' must be a dict.")
        allowed = (set(cls._get_param_names()) - RUNTIME_PARAMS) | set(FITTED_PARAMS)
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ModelFormatError(
                f"model field 'params' has entries that do not describe a model: {unknown}."
            )
        values = {k: _scalar(v) for k, v in params.items()}
        for k in ("epochs", "a", "b"):
            if k not in values:
                raise ModelFormatError(f"model field params[{k!r}] is missing.")
        a, b = values.pop("a"), values.pop("b")
        fitted = {k: values.pop(k) for k in FITTED_PARAMS if k in values}
        est = cls(**values, quiet=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a stored lr was accepted once already
                est._check_params()
            est.a_, est.b_ = _positive_float(a, "a"), _positive_float(b, "b")
        except (ValueError, TypeError) as e:
            raise ModelFormatError(f"invalid model field 'params': {e}") from e
        mean, comps = input_map_arrays(block)
        if encoder is None:
            module = build_from_block(block)
        else:
            load_weights(encoder, block)
            module = encoder
        est.input_map_ = InputMap(mean, comps)
        est.encoder_ = module.cpu().eval()
        est.encoder = block["architecture"].get("name", "custom") if encoder is None else encoder
        est.n_features_in_ = mean.shape[0]
        est._n_features_out = est.n_components
        est.epochs_ = est.epochs
        if "batch_size_used" in fitted:
            est.batch_size_ = int(fitted["batch_size_used"])
        if "precision_used" in fitted:
            est.precision_ = str(fitted["precision_used"])
        try:
            est.loss_history_ = np.asarray(block.get("loss_history", []), dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ModelFormatError(f"model field 'loss_history' is not numeric: {e}") from e
        if block.get("var_names") is not None:
            est.feature_names_in_ = _str_array(block["var_names"])
        _check_io(est)
        return est

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


#: Parameters stored in every model block (as before parameters were collected generically).
CORE_PARAMS = frozenset(
    {
        "n_neighbors",
        "min_dist",
        "spread",
        "metric",
        "n_components",
        "negative_sample_rate",
        "repulsion_strength",
        "pca_components",
        "lr",
        "epochs",
        "batch_size",
        "random_state",
        "precision",
    }
)


def _defaults() -> dict[str, Any]:
    import inspect

    sig = inspect.signature(GlassBoxUMAP.__init__)
    return {k: p.default for k, p in sig.parameters.items() if k != "self"}


def _is_default(value: object, default: object) -> bool:
    if value is default:
        return True
    if isinstance(default, tuple):
        return isinstance(value, tuple | list) and all(v is None for v in value)
    if default is None or isinstance(value, np.ndarray):
        return False
    try:
        return bool(value == default)
    except (TypeError, ValueError):
        return False


def _same(name: str, value: object, alias: str, alias_value: object, default: object) -> object:
    """One setting under two names: the alias when given, and no contradiction."""
    if alias_value is None:
        return value
    if not _is_default(value, default) and value is not alias_value and value != alias_value:
        raise ValueError(
            f"{name}={value!r} and {alias}={alias_value!r} are the same setting under two "
            f"names; pass only one."
        )
    return alias_value


def _batch(batch_size: object) -> int | None:
    if batch_size is None:
        return None
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be an integer >= 1 or None, got {batch_size!r}.")
    return int(batch_size)


def _positive_float(v: object, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}.")
    return float(v)


def _regress_layout(
    encoder: nn.Module, features: np.ndarray, target: np.ndarray, *, seed: int, lr: float
) -> None:
    """Train ``encoder`` briefly to map ``features`` to the ``init`` layout ``target``."""
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    t = torch.from_numpy(target)
    n = x.shape[0]
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(encoder.parameters(), lr=lr)
    was_training = encoder.training
    encoder.train()
    for _ in range(INIT_STEPS):
        idx = torch.randint(n, (min(n, INIT_BATCH),), generator=gen)
        loss = (encoder(x.index_select(0, idx)) - t.index_select(0, idx)).pow(2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    encoder.train(was_training)
    with torch.no_grad():
        resid = float((encoder(x[:INIT_BATCH]) - t[:INIT_BATCH]).pow(2).sum(1).mean())
    spread = float(t[:INIT_BATCH].pow(2).sum(1).mean())
    logger.info("init layout regressed: R^2 = %.3f", 1.0 - resid / max(spread, 1e-12))


def _check_io(est: GlassBoxUMAP) -> None:
    """Check that the rebuilt encoder maps the stored input width to n_components."""
    arch = getattr(est.encoder_, "architecture", None)
    if arch is not None:
        if arch["n_in"] != est.input_map_.n_inputs:
            raise ModelFormatError(
                f"model field architecture['n_in'] ({arch['n_in']}) does not match the "
                f"encoder input width of 'mean'/'components' ({est.input_map_.n_inputs})."
            )
        if arch["n_out"] != est.n_components:
            raise ModelFormatError(
                f"model field architecture['n_out'] ({arch['n_out']}) does not match "
                f"params['n_components'] ({est.n_components})."
            )
    z = torch.zeros(1, est.input_map_.n_inputs)
    try:
        with torch.no_grad():
            out = est.encoder_(z)
    except RuntimeError as e:
        raise ModelFormatError(f"encoder does not accept the stored input width: {e}") from e
    if tuple(out.shape) != (1, est.n_components):
        raise ModelFormatError(
            f"the encoder outputs {out.shape[1]} dimensions, but params['n_components'] is "
            f"{est.n_components}."
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
