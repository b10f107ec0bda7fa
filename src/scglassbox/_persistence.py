"""The fitted estimator as a model block (a dict of arrays and scalars), and back.

A model block is what :mod:`scglassbox._storage` writes to disk (``.npz``, no pickle) and what
``gb.tl.glassbox_umap`` stores in ``adata.uns``. Its ``params`` are collected from the
constructor's parameters, so a new parameter is stored without further code; run-time settings
(:data:`~scglassbox._params.RUNTIME_PARAMS`) are not stored.
"""

from __future__ import annotations

import numbers
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from ._checks import check_io
from ._contributions import InputMap
from ._params import (
    CORE_PARAMS,
    DEFAULT_LR,
    FITTED_PARAMS,
    RUNTIME_PARAMS,
    _defaults,
    _is_default,
    _positive_float,
    _same,
)
from ._storage import (
    FORMAT_VERSION,
    LIBRARY,
    ModelFormatError,
    _positive_int,
    build_from_block,
    check_block,
    input_map_arrays,
    load_weights,
    state_dict_to_numpy,
    uns_safe_kwargs,
)
from ._validation import scalar

if TYPE_CHECKING:
    from ._estimator import GlassBoxUMAP


def to_block(est: GlassBoxUMAP) -> dict:
    """The model block of a fitted ``GlassBoxUMAP`` (see its ``to_dict``)."""
    arch = getattr(est.encoder_, "architecture", None)
    if arch is None:
        arch = {"name": "custom", "class": type(est.encoder_).__qualname__}
    lr = _same("lr", est.lr, "learning_rate", est.learning_rate, DEFAULT_LR)
    defaults = _defaults(type(est))
    params: dict[str, Any] = {}
    for k, v in est.get_params(deep=False).items():
        v = scalar(v)
        if k in RUNTIME_PARAMS or v is None or not isinstance(v, str | numbers.Real):
            continue  # arrays, modules and dicts do not describe the stored model
        if k not in CORE_PARAMS and _is_default(v, defaults[k]):
            continue
        params[k] = float(v) if isinstance(v, float) else v
    params.update(epochs=int(est.epochs_), lr=float(lr), a=est.a_, b=est.b_)
    # The negatives used, as the epochs: a refit of a loaded model trains the same way.
    params["negative_sample_rate"] = int(est.negative_sample_rate_)
    if getattr(est, "batch_size_", None) is not None:
        params["batch_size_used"] = int(est.batch_size_)
    if getattr(est, "precision_", None) is not None:
        params["precision_used"] = est.precision_
    arch = {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in arch.items()}
    if isinstance(arch.get("kwargs"), dict):  # a registered encoder's constructor arguments
        arch["kwargs"] = uns_safe_kwargs(arch["kwargs"])
    block = {
        "library": LIBRARY,
        "format_version": FORMAT_VERSION,
        "architecture": arch,
        "params": params,
        "state_dict": state_dict_to_numpy(est.encoder_),
        "mean": est.input_map_.mean.copy(),
        "loss_history": np.asarray(est.loss_history_, dtype=np.float64),
    }
    if est.input_map_.components is not None:
        block["components"] = est.input_map_.components.copy()
    shape = tuple(getattr(est, "input_shape_", ()))
    if len(shape) > 1:  # images: the shape transform and the contributions give back
        block["input_shape"] = np.asarray(shape, dtype=np.int64)
    return block


def from_block(cls: type, block: dict, encoder: nn.Module | None = None) -> Any:
    """A fitted estimator of class ``cls`` rebuilt from ``block`` (see ``GlassBoxUMAP.from_dict``).

    Every field is checked before anything is built; a bad one raises
    :class:`~scglassbox._storage.ModelFormatError` naming it.
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
    values = {k: scalar(v) for k, v in params.items()}
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
    est.input_shape_ = _input_shape(block, mean.shape[0])
    est._n_features_out = est.n_components
    est.epochs_ = est.epochs
    est.negative_sample_rate_ = est.negative_sample_rate
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
    check_io(est.encoder_, est.input_map_.n_inputs, est.n_components)
    return est


def _input_shape(block: dict, n_features: int) -> tuple[int, ...]:
    """The stored sample shape of images, or ``(n_features,)`` for rows; checked."""
    if block.get("input_shape") is None:
        return (n_features,)
    arr = np.asarray(block["input_shape"])
    if arr.ndim != 1 or arr.dtype.kind not in "iu" or arr.shape[0] not in (2, 3):
        raise ModelFormatError(
            f"model field 'input_shape' must be 2 or 3 integers, got {arr.tolist()!r}."
        )
    shape = tuple(_positive_int(v, "'input_shape'") for v in arr)
    if int(np.prod(shape)) != n_features:
        raise ModelFormatError(
            f"model field 'input_shape' {shape} does not hold the {n_features} features of 'mean'."
        )
    return shape


def _str_array(names: object) -> np.ndarray:
    """Names as a numpy array of str (h5ad may hand back bytes or object arrays)."""
    arr = np.asarray(names, dtype=object).ravel()
    return np.array([n.decode() if isinstance(n, bytes) else str(n) for n in arr], dtype=object)
