"""``batch_key`` on the plugin: the batch indicator columns appended to what the encoder reads.

See :mod:`scglassbox.get._batch` for what the columns are. Here the fit's input map is
extended block-diagonally: the genes keep their centring and projection (scanpy's PCA, a
corrected PCA, or none), the batch columns pass through uncentred, so the split over genes
is the one a fit without ``batch_key`` would give plus one batch term.
"""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from scipy import sparse
from scipy.linalg import block_diag

from .._contributions import InputMap, column_mean
from ..get._access import ColumnView
from ..get._batch import BatchInfo, WithBatch, batch_codes, indicators


def _block_diag(components: np.ndarray | None, n_levels: int) -> np.ndarray | None:
    """The genes' projection, then the identity for the batch columns (``None``: no PCA)."""
    if components is None:
        return None
    eye = np.eye(n_levels, dtype=np.float32)
    return block_diag(components.astype(np.float32, copy=False), eye)


def check_batch(adata: AnnData, batch_key: str, var_names: np.ndarray) -> tuple[np.ndarray, list]:
    """The cells' batch codes and the batch levels; refuse what cannot be split.

    The column itself was checked by :func:`~scglassbox.get._batch.batch_codes` already.
    """
    levels = [str(c) for c in np.unique(adata.obs[batch_key].astype(str))]
    codes = batch_codes(adata, batch_key, np.asarray(levels))
    if len(levels) < 2:
        raise ValueError(
            f"adata.obs[{batch_key!r}] holds one batch ({levels[0]!r}): there is no batch "
            "effect to split off; drop batch_key."
        )
    clash = set(f"{batch_key}={lev}" for lev in levels) & set(map(str, var_names))
    if clash:
        raise ValueError(
            f"the batch features' names {sorted(clash)[:5]} are also names of genes used: "
            "rename the obs column given as batch_key."
        )
    return codes, levels


def augment(
    X: object,
    rows: object,
    projection: tuple | None,
    inputs: np.ndarray | None,
    pca_components: int | None,
    random_state: int | None,
    codes: np.ndarray,
    batch_key: str,
    levels: list,
) -> tuple[object, WithBatch, tuple, np.ndarray, BatchInfo]:
    """``X``, row source, input map and encoder inputs with the batch columns; the batch info.

    The indicator value is the largest standard deviation among the encoder's other inputs,
    so a batch weighs about as much at the start of training as the first principal
    component does.
    """
    if projection is not None:
        imap = InputMap(*projection)
    elif pca_components is not None:  # the PCA the estimator would fit, on the genes alone
        from .._fit import fit_input_map

        imap = fit_input_map(X, pca_components, random_state)
    else:
        imap = InputMap(column_mean(X))
    if inputs is None or inputs.shape != (X.shape[0], imap.n_inputs):
        inputs = imap.inputs_of(X, 16_384)
    scale = float(inputs.std(axis=0, dtype=np.float64).max()) if inputs.size else 1.0
    scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    info = BatchInfo(batch_key, np.asarray(levels, dtype=str), scale)
    ind = indicators(codes, len(levels), scale)
    X_aug = (
        sparse.hstack([X, ind], format="csr")
        if sparse.issparse(X)
        else np.hstack([np.asarray(X), ind.toarray().astype(np.asarray(X).dtype)])
    )
    base = rows if hasattr(rows, "rows") else ColumnView(rows, np.arange(rows.shape[1]))
    mean = np.concatenate([imap.mean, np.zeros(len(levels), dtype=np.float32)])
    projection = (mean, _block_diag(imap.components, len(levels)))
    inputs = np.hstack([inputs, ind.toarray()])
    return X_aug, WithBatch(base, codes, info), projection, inputs, info
