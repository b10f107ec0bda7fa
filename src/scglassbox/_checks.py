"""Checks of what the estimator is given: the input ``X``, a custom encoder, a rebuilt one.

:func:`check_X` adds to scikit-learn's validation what the float32 encoder needs.
Contributions are exact only for bias-free networks that are piecewise linear through the
origin, so :func:`check_encoder` refuses a custom module whose contributions do not reconstruct
its output. :func:`check_io` checks that a module rebuilt from a model block maps the stored
input width to ``n_components``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import sparse
from sklearn.utils.validation import validate_data
from torch import nn

from ._contributions import jacobian
from ._storage import ModelFormatError

if TYPE_CHECKING:
    from ._estimator import GlassBoxUMAP

#: Largest float32: float64 input beyond it would become inf in the float32 encoder.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Tolerance for the exactness check of a custom encoder on random inputs.
CUSTOM_ENCODER_RTOL = 1e-4


#: Ranks of ``X`` accepted: rows of features, and images ``(n, H, W)`` or ``(n, C, H, W)``.
INPUT_RANKS = (2, 3, 4)


def check_X(
    est: GlassBoxUMAP, X: object, *, reset: bool, return_shape: bool = False
) -> np.ndarray | sparse.csr_matrix | tuple[np.ndarray | sparse.csr_matrix, tuple[int, ...]]:
    """scikit-learn's validation of ``X`` for ``est``, then what the float32 encoder needs.

    A DataFrame whose string columns hold every name seen at fit is put in that order
    first (never silently positional); missing names are refused, listed. A torch tensor is
    read as a numpy array. Images ``(n, H, W)`` or ``(n, C, H, W)`` are flattened to rows of
    pixels (C order); with ``reset`` their sample shape is stored in ``est.input_shape_``
    (``(n_features,)`` for rows), and later inputs must have that shape, or be its flattened
    rows. With ``return_shape`` the sample shape of this ``X`` is returned too, so that results
    can be given back in the input's own shape.
    """
    X = _from_torch(X)
    ndim = _ndim(X)
    if ndim is not None and ndim not in INPUT_RANKS:
        shape = getattr(X, "shape", None)
        raise ValueError(
            f"Expected a 2D array (n_samples, n_features) or images, 3D (n_samples, H, W) or "
            f"4D (n_samples, C, H, W); got a {ndim}D input"
            + (f" of shape {tuple(shape)}" if shape is not None else "")
            + ". Reshape your data: X.reshape(1, -1) for one sample, X.reshape(-1, 1) for one "
            "feature."
        )
    sample: tuple[int, ...] | None = None
    if ndim is not None and ndim > 2:
        X, sample = _flatten_images(est, X, reset=reset)
    elif not reset:
        X = align_columns(X, getattr(est, "feature_names_in_", None))
    X = validate_data(
        est,
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
    if reset:
        est.input_shape_ = sample if sample is not None else (int(X.shape[1]),)
    if return_shape:
        return X, sample if sample is not None else (int(X.shape[1]),)
    return X


def _from_torch(X: object) -> object:
    """A torch tensor as a numpy array (on the CPU); anything else unchanged."""
    if type(X).__module__.split(".")[0] == "torch" and hasattr(X, "detach"):
        return X.detach().cpu().numpy()
    return X


def _ndim(X: object) -> int | None:
    """``X``'s number of axes when it has them (arrays, sparse, DataFrames, nested lists)."""
    ndim = getattr(X, "ndim", None)
    if ndim is None and isinstance(X, list | tuple):
        try:
            ndim = np.ndim(X)
        except ValueError:  # ragged: scikit-learn reports it
            return None
    return None if ndim is None else int(ndim)


def _flatten_images(
    est: GlassBoxUMAP, X: object, *, reset: bool
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Rows of pixels ``(n, prod(sample))`` of images ``X``, and the sample shape."""
    if sparse.issparse(X) or not isinstance(X, np.ndarray | list | tuple):
        raise ValueError(
            f"images ({_ndim(X)}-D X) must be a dense numpy array or torch tensor, got "
            f"{type(X).__name__}; sparse input must be 2-D (n_samples, n_features)."
        )
    X = np.asarray(X)
    sample = tuple(int(s) for s in X.shape[1:])
    if reset:
        pca = getattr(est, "pca_components", None)
        if pca is not None:
            raise ValueError(
                f"pca_components={pca} needs 2-D input (n_samples, n_features), and X holds "
                f"images of shape {sample}: leave pca_components=None for images (or flatten "
                "them to rows first)."
            )
    else:
        fitted = tuple(getattr(est, "input_shape_", ()))
        if not _same_image_shape(sample, fitted):
            what = "rows of features" if len(fitted) < 2 else "images of shape"
            raise ValueError(
                f"X holds images of shape {sample}, but the model was fitted on {what} {fitted}."
            )
    return X.reshape(X.shape[0], -1), sample


def _same_image_shape(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Equal image shapes, where ``(H, W)`` and ``(1, H, W)`` are the same."""

    def canon(s: tuple[int, ...]) -> tuple[int, ...]:
        return s[1:] if len(s) == 3 and s[0] == 1 else s

    return len(b) > 1 and canon(a) == canon(b)


def align_columns(X: object, names: np.ndarray | None) -> object:
    """``X``'s columns in the order of ``names`` (seen at fit), when ``X`` is a DataFrame."""
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


def check_io(encoder: nn.Module, n_inputs: int, n_components: int) -> None:
    """Refuse a rebuilt ``encoder`` that does not map ``n_inputs`` to ``n_components``.

    ``n_inputs`` is the input width of the stored ``mean``/``components`` and ``n_components``
    the stored parameter; each mismatch raises :class:`~scglassbox._storage.ModelFormatError`.
    """
    arch = getattr(encoder, "architecture", None)
    if arch is not None:
        if arch["n_in"] != n_inputs:
            raise ModelFormatError(
                f"model field architecture['n_in'] ({arch['n_in']}) does not match the "
                f"encoder input width of 'mean'/'components' ({n_inputs})."
            )
        if arch["n_out"] != n_components:
            raise ModelFormatError(
                f"model field architecture['n_out'] ({arch['n_out']}) does not match "
                f"params['n_components'] ({n_components})."
            )
    z = torch.zeros(1, n_inputs)
    try:
        with torch.no_grad():
            out = encoder(z)
    except RuntimeError as e:
        raise ModelFormatError(f"encoder does not accept the stored input width: {e}") from e
    if tuple(out.shape) != (1, n_components):
        raise ModelFormatError(
            f"the encoder outputs {out.shape[1]} dimensions, but params['n_components'] is "
            f"{n_components}."
        )
