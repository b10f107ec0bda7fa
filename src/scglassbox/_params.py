"""Parameters of ``GlassBoxUMAP``: what is accepted, refused or stored, and their checks.

scikit-learn forbids validation in ``__init__``, so :func:`check_params` runs at ``fit`` and
resolves synonyms (``n_epochs``/``epochs``, ``learning_rate``/``lr``...) into the settings a fit
uses. The tables say which umap-learn parameters are refused and why, which only steer the kNN
graph, and which are run-time settings rather than part of a stored model.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ._encoder import canonical_name, encoder_names
from ._training import PRECISIONS
from ._validation import (
    InvalidParameterError,
    check_dict,
    check_flag,
    check_int,
    check_option,
    check_real,
    check_seed,
    is_integer,
)
from ._warnings import warn

if TYPE_CHECKING:
    from ._estimator import GlassBoxUMAP

#: With ``epochs=None``: aim for this many optimiser steps, within the epoch bounds below.
AUTO_STEPS = 1000
AUTO_EPOCHS = (10, 500)


#: With ``batch_size=None``: edges per step, between these bounds (see :func:`auto_batch_size`).
AUTO_BATCH = (10_000, 20_000)
#: On a CUDA GPU, with ``batch_size=None``: edges per step (all of them on smaller graphs). A
#: step costs about the same few milliseconds of kernel launches from 10,000 to 160,000 edges,
#: so a GPU trains on 8x the edges of a CPU step in the same number of steps; 160,000 edges
#: gave kNN 0.139 at 100,000 cells against 0.135 with 80,000 (docs/performance.md).
GPU_BATCH = 160_000
#: On a CUDA GPU, with the built-in encoders and no ``encoder_kwargs['hidden']``: the hidden
#: widths (16x the CPU default's weights; cheap on a GPU, measured in docs/performance.md).
GPU_HIDDEN = (512, 512, 512, 512)
# Cells per chunk outside training (``batch_size`` is edges per step): see _chunks.py.

#: The default of ``lr``: Adam's step size on the network's weights.
DEFAULT_LR = 3e-3
#: Above this, ``lr``/``learning_rate`` is probably umap-learn's SGD step size (1.0) by habit.
LR_WARN_ABOVE = 0.1

#: ``init`` layouts by name (an array ``(n_samples, n_components)`` is accepted too).
INITS = ("random", "spectral", "pca", "tswspectral")

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


def device_type(accelerator: object) -> str:
    """The kind of device a fit with ``accelerator`` trains on: ``"cuda"``, ``"mps"`` or ``"cpu"``.

    As Lightning resolves it: ``"auto"`` is a CUDA GPU when torch sees one, else Apple's MPS
    when available, else the CPU. The defaults that follow the device (:data:`GPU_HIDDEN`,
    :data:`GPU_BATCH`, bfloat16) are chosen from this before the trainer exists.
    """
    name = str(getattr(accelerator, "type", accelerator)).lower()
    if name in ("gpu", "cuda"):
        return "cuda"
    if name == "mps":
        return "mps"
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
    return "cpu"


def check_device(accelerator: object) -> None:
    """Refuse, before any work and in plain words, a GPU that torch cannot see."""
    name = str(getattr(accelerator, "type", accelerator)).lower()
    if name in ("gpu", "cuda") and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise ValueError(
            f"accelerator={accelerator!r}, but PyTorch sees no CUDA GPU here (torch "
            f"{torch.__version__}, {build}). Use accelerator='auto' (the GPU when there is one, "
            "else the CPU) or 'cpu'."
        )
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                "accelerator='mps', but PyTorch sees no Apple GPU (MPS) here. Use "
                "accelerator='auto' or 'cpu'."
            )


def training_device(accelerator: object, devices: object) -> torch.device | None:
    """The CUDA device a fit trains on (the first of ``devices``), or ``None`` off CUDA.

    Lightning hands the trained module back on the CPU; the fit's own passes over all cells
    (the embedding, and ``gb.tl.glassbox_umap``'s contributions) run here instead.
    """
    if device_type(accelerator) != "cuda" or not torch.cuda.is_available():
        return None
    first = devices[0] if isinstance(devices, list | tuple) and devices else 0
    return torch.device("cuda", int(first) if isinstance(first, int) else 0)


#: The GPU network only from this many cells: below, a fit is quick anyway and the wider
#: network's kNN preservation was mixed (breast cancer, 569 cells, lower; docs/performance.md).
GPU_HIDDEN_MIN_CELLS = 1000


def auto_hidden(device: str, n_cells: int) -> tuple[int, ...] | None:
    """Hidden widths for a built-in encoder without ``encoder_kwargs['hidden']`` on ``device``.

    :data:`GPU_HIDDEN` on a CUDA GPU from :data:`GPU_HIDDEN_MIN_CELLS` cells up. ``None`` keeps
    the encoder's own default (the CPU-sized ``(128, 128)``; also on MPS, where nothing larger
    has been measured).
    """
    return GPU_HIDDEN if device == "cuda" and n_cells >= GPU_HIDDEN_MIN_CELLS else None


#: From this many cells, ``"mlp_routed"`` trains this share of the automatic epochs: its
#: experts learn more per step, and half the steps first met issue 21's time targets
#: (synthetic_20k: 17.0 s, 1.5x ``sc.tl.umap``, kNN 0.271 against 0.238 for mlp_norm in
#: 31.6 s). Muon on the experts' hidden layers (stop 40, ``_optim``) learns more per step
#: and costs a little more per step: half the epochs with Muon keep more local structure in
#: less time than 60% with Adam did (synthetic_20k: kNN 0.283 / 0.278 in 10.1-10.4 s against
#: 0.278 / 0.269 in 11.3-12.1 s, one run; docs/performance.md). Below, a fit is quick and
#: keeps every step (synthetic_5k: +0.017 at the same time; half: -0.001, noise).
ROUTED_SHORT_CELLS = 10_000
ROUTED_EPOCH_SHARE = 0.5


#: With ``negative_sample_rate=None``: umap-learn's negatives per edge, and those of
#: ``"mlp_routed"``. The routed experts (trained with Muon) kept markedly more local structure
#: with 15 negatives drawn among the step's cells in the same steps, for about a tenth more
#: time (synthetic_20k: kNN 0.303 / 0.297 against 0.284 / 0.282, seeds 0 / 1). A stronger
#: repulsion with 5 did not (repulsion_strength 2 or 3: 0.276-0.283). Without the seam pull
#: (``_routed.SEAM_PULL``) the stronger repulsion tore cell types in two along the experts'
#: boundaries; with it they stay whole (docs/performance.md).
AUTO_NEGATIVES = 5
ROUTED_NEGATIVES = 15


def auto_negatives(encoder: object) -> int:
    """Negatives per edge with ``negative_sample_rate=None`` for ``encoder`` (name or module)."""
    if isinstance(encoder, str) and encoder == "mlp_routed":
        return ROUTED_NEGATIVES
    return AUTO_NEGATIVES


#: From this many cells, ``encoder="default"`` on a CPU is ``"mlp_routed"``: blended experts
#: keep more local structure than the single network in about half the time there
#: (synthetic_20k: kNN 0.262 in 9.3 s against 0.238 in 21.0 s when chosen; 0.278 in 10.9 s
#: since the fused kernels; 0.283 with Muon; docs/performance.md). Below,
#: and on a GPU (where wide single networks were measured), it is ``"mlp_norm"``.
ROUTED_DEFAULT_CELLS = 10_000


def default_encoder(device: str, n_cells: int, encoder_kwargs: dict | None) -> str:
    """What ``encoder="default"`` means for a fit of ``n_cells`` cells on ``device``.

    ``"mlp_routed"`` on a CPU from :data:`ROUTED_DEFAULT_CELLS` cells, unless
    ``encoder_kwargs`` is given (those were written for the single network); ``"mlp_norm"``
    otherwise.
    """
    if device == "cpu" and n_cells >= ROUTED_DEFAULT_CELLS and not encoder_kwargs:
        return "mlp_routed"
    return "mlp_norm"


def encoder_epochs(epochs: int, encoder: object, n_cells: int) -> int:
    """Automatic ``epochs`` for ``encoder``: fewer for a routed encoder on larger data.

    :data:`ROUTED_EPOCH_SHARE` of them for ``"mlp_routed"`` from :data:`ROUTED_SHORT_CELLS`
    cells; unchanged otherwise.
    """
    if isinstance(encoder, str) and encoder == "mlp_routed" and n_cells >= ROUTED_SHORT_CELLS:
        return max(1, int(epochs * ROUTED_EPOCH_SHARE))
    return epochs


def auto_batch_size(n_cells: int, n_edges: int | None = None, device: str = "cpu") -> int:
    """Edges per step: ``min(4 n, 30,000 - 2 n)``, clipped to :data:`AUTO_BATCH`.

    That is 10,000 edges, rising to 20,000 at 5,000 cells and back to 10,000 at 10,000. Up to a
    few thousand cells a step of 10,000 edges already encodes nearly every cell, so more edges
    cost only the cheap 2-D loss and give a steadier gradient; on larger data each extra edge
    adds cells to encode. The measurements behind it are in docs/performance.md.

    With ``n_edges``, large graphs get larger steps (up to the same 20,000): where the floor of
    :data:`AUTO_EPOCHS` would take more than :data:`AUTO_STEPS` steps, the batch grows so that it
    takes about that many. From about 50,000 cells at 15 neighbours; 100,000 cells then train
    1,000 steps of 20,000 edges instead of 2,000 of 10,000, which encode 9% fewer cells per edge
    and take about a quarter less time per epoch at the same kNN preservation (figures in
    docs/performance.md, from benchmarks/local_structure.py).

    On a CUDA GPU (``device="cuda"``): :data:`GPU_BATCH` edges, or all of them when the graph
    has fewer.
    """
    if device == "cuda":
        return int(GPU_BATCH if n_edges is None else max(1, min(GPU_BATCH, n_edges)))
    lo, hi = AUTO_BATCH
    size = min(hi, max(lo, min(4 * n_cells, 30_000 - 2 * n_cells)))
    if n_edges is not None:
        size = max(size, min(hi, -(-n_edges * AUTO_EPOCHS[0] // AUTO_STEPS)))
    return int(size)


def auto_epochs(n_edges: int, batch_size: int) -> int:
    """Epochs for about :data:`AUTO_STEPS` steps, clipped to :data:`AUTO_EPOCHS`.

    A network generalises across cells, so it needs a number of gradient steps rather than a
    number of passes per cell: small data gets many epochs (like umap-learn's 500), large
    data few.
    """
    steps_per_epoch = -(-n_edges // max(min(batch_size, n_edges), 1))
    lo, hi = AUTO_EPOCHS
    return int(min(hi, max(lo, round(AUTO_STEPS / steps_per_epoch))))


def _init(value: object, name: str) -> None:
    ok = value in INITS if isinstance(value, str) else np.ndim(value) == 2
    if not ok:
        raise InvalidParameterError(
            f"{name} must be one of {INITS} or an array (n_samples, n_components), got {value!r}."
        )


def _n_jobs(value: object, name: str) -> None:
    # joblib's convention: -1 is every core; 0 and other negatives mean nothing here.
    if value is not None and not (is_integer(value) and (value == -1 or value >= 1)):
        raise InvalidParameterError(f"{name} must be an integer >= 1, -1 or None, got {value!r}.")


def _metric(value: object, name: str) -> None:
    if not isinstance(value, str):
        raise InvalidParameterError(f"{name} must be a string, got {value!r}.")


def _knn(value: object, name: str) -> None:
    if not (isinstance(value, tuple | list) and len(value) == 3):
        raise InvalidParameterError(
            f"{name} must be (knn_indices, knn_dists, knn_search_index), got {value!r}."
        )


def _callbacks(value: object, name: str) -> None:
    if value is not None and not isinstance(value, list | tuple):
        raise InvalidParameterError(f"{name} must be a list of Lightning callbacks or None.")


_count = partial(check_int, min=1)
_count_or_none = partial(check_int, min=1, optional=True)
_positive = partial(check_real, min=0, include_min=False)
_positive_or_none = partial(check_real, min=0, include_min=False, optional=True)
_non_negative = partial(check_real, min=0)

#: The rules on one parameter each, ``name: check(value, name)``, as scikit-learn's
#: ``_parameter_constraints`` (whose ranges accept ``True`` as 1); the rules that relate
#: parameters are in :func:`check_params`.
PARAM_CHECKS: dict[str, Callable[[object, str], object]] = {
    "n_neighbors": partial(check_int, min=2),
    "n_components": _count,
    "negative_sample_rate": _count_or_none,
    "pca_components": _count_or_none,
    "epochs": _count_or_none,
    "n_epochs": _count_or_none,
    "batch_size": _count_or_none,
    "num_batches": _count_or_none,
    "num_workers": partial(check_int, min=0),
    "n_jobs": _n_jobs,
    "min_dist": _non_negative,
    "spread": _positive,
    "repulsion_strength": _non_negative,
    "lr": _positive,
    "learning_rate": _positive_or_none,
    "a": _positive_or_none,
    "b": _positive_or_none,
    "set_op_mix_ratio": partial(check_real, min=0, max=1),
    "local_connectivity": _positive,
    "transform_queue_size": _positive,
    "disconnection_distance": _positive_or_none,
    "dens_lambda": _non_negative,
    "dens_frac": _non_negative,
    "dens_var_shift": _non_negative,
    "low_memory": check_flag,
    "angular_rp_forest": check_flag,
    "force_approximation_algorithm": check_flag,
    "unique": check_flag,
    "densmap": check_flag,
    "output_dens": check_flag,
    "quiet": check_flag,
    "restore_best_weights": check_flag,
    "verbose": partial(check_flag, optional=True),
    "encoder_kwargs": check_dict,
    "trainer_kwargs": check_dict,
    "metric_kwds": check_dict,
    "tqdm_kwds": check_dict,
    "random_state": check_seed,
    "transform_seed": check_seed,
    "precision": partial(check_option, options=PRECISIONS),
    "metric": _metric,
    "init": _init,
    "precomputed_knn": _knn,
    "extra_callbacks": _callbacks,
}


def check_params(est: GlassBoxUMAP) -> dict[str, Any]:
    """Check every parameter of ``est`` (a ``GlassBoxUMAP``); return the settings of a fit.

    Each error names the parameter the user passed. The returned dict holds the values
    a fit uses once synonyms are resolved: ``epochs``, ``lr``, ``encoder``, ``quiet``,
    ``a``, ``b``, ``accelerator``, ``devices``, ``threads`` and ``custom_graph``.

    Each parameter is checked by its rule in :data:`PARAM_CHECKS` (with the helpers of
    :mod:`scglassbox._validation`, not scikit-learn's ``_parameter_constraints``, whose
    ``Interval`` takes ``True`` for 1 and whose ``"random_state"`` takes a ``RandomState``),
    then how the parameters fit together.
    """
    for name, check in PARAM_CHECKS.items():
        check(getattr(est, name), name)
    _check_combinations(est)
    settings = {
        "epochs": _same("epochs", est.epochs, "n_epochs", est.n_epochs, None),
        "lr": _lr(est),
        "encoder": _encoder(est),
        "quiet": _quiet(est),
        "a": None if est.a is None else float(est.a),
        "b": None if est.b is None else float(est.b),
    }
    accelerator, devices = _device(est)
    check_device(accelerator)
    custom_graph = any(not _is_default(getattr(est, k), v) for k, v in GRAPH_OPTIONS.items())
    n_jobs = est.n_jobs
    return {
        **settings,
        "accelerator": accelerator,
        "devices": devices,
        "threads": None if n_jobs is None or n_jobs == -1 else int(n_jobs),
        "custom_graph": custom_graph or bool(est.metric_kwds),
    }


def _check_combinations(est: GlassBoxUMAP) -> None:
    """The rules that relate parameters, and umap-learn's options left unimplemented."""
    if est.min_dist > est.spread:
        raise ValueError(f"min_dist ({est.min_dist}) must not exceed spread ({est.spread}).")
    if (est.a is None) != (est.b is None):
        raise ValueError("a and b set the curve q = 1 / (1 + a d^(2b)) together: pass both.")
    for name, (default, why) in UNSUPPORTED.items():
        v = getattr(est, name)
        if not (v is default or (isinstance(v, (str, numbers.Number)) and v == default)):
            raise ValueError(f"{name}={v!r} is not supported: {why}.")
    owned = sorted(set(est.trainer_kwargs or {}) & set(OWNED_TRAINER_KWARGS))
    if owned:
        use = sorted({OWNED_TRAINER_KWARGS[k] for k in owned})
        raise ValueError(
            f"trainer_kwargs may not set {owned}: the estimator sets them itself and "
            f"records what it used; use its parameter(s) {use} instead."
        )


def _lr(est: GlassBoxUMAP) -> float:
    """``lr`` or its synonym ``learning_rate``; warn at umap-learn's SGD step sizes."""
    lr = _same("lr", est.lr, "learning_rate", est.learning_rate, DEFAULT_LR)
    if lr > LR_WARN_ABOVE:
        name = "learning_rate" if est.learning_rate is not None else "lr"
        warn(
            f"{name}={lr} is Adam's step size on the network's weights (default "
            f"{DEFAULT_LR}), not umap-learn's SGD step size on coordinates (1.0); "
            f"values above {LR_WARN_ABOVE} usually make training diverge."
        )
    return float(lr)


def _encoder(est: GlassBoxUMAP) -> str | nn.Module:
    """``encoder`` or its synonym ``encoder_name``: a registered name or a module."""
    # encoder_name (the reference's name) defaults to "default" as there: it counts when set
    # to anything else. Aliases ("default_conv") are compared by their canonical name.
    alias = canonical_name(est.encoder_name)
    given = alias is not None and not _is_default(alias, "default")
    encoder = _same(
        "encoder", canonical_name(est.encoder), "encoder_name", alias if given else None, "default"
    )
    names = encoder_names()
    if not isinstance(encoder, nn.Module) and not (isinstance(encoder, str) and encoder in names):
        name = "encoder_name" if given else "encoder"
        raise ValueError(
            f"{name} must be one of {names}, a name registered with gb.register_encoder, or a "
            f"torch.nn.Module; got {encoder!r}."
        )
    return encoder


def _quiet(est: GlassBoxUMAP) -> bool:
    """``quiet``, or ``not verbose`` (umap-learn's name) when given; ``tqdm_kwds`` may disable."""
    quiet = est.quiet
    if est.verbose is not None:
        if est.verbose and est.quiet:
            raise ValueError("verbose=True and quiet=True contradict each other.")
        quiet = not est.verbose
    if (est.tqdm_kwds or {}).get("disable") is True:
        quiet = True
    return bool(quiet)


def _device(est: GlassBoxUMAP) -> tuple[object, object]:
    """``accelerator`` and ``devices``, or the device of ``.to(device)`` before fit."""
    device = getattr(est, "_device", None)
    if device is None:
        return est.accelerator, est.devices
    accelerator = {"cuda": "gpu"}.get(device.type, device.type)  # as the reference package
    return accelerator, [device.index] if device.index is not None else 1


def _defaults(cls: type) -> dict[str, Any]:
    """The constructor defaults of the estimator class ``cls``."""
    sig = inspect.signature(cls.__init__)
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
    """``batch_size`` of ``transform`` and the like: ``None`` or an integer >= 1."""
    return check_int(batch_size, "batch_size", min=1, optional=True)


def _positive_float(v: object, name: str) -> float:
    """A stored ``a`` or ``b``: a finite number > 0."""
    return check_real(v, name, min=0, include_min=False)
