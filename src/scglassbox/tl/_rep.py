"""``use_rep``: an integrated representation in ``obsm`` as the encoder's input.

Two kinds, told apart by their width:

- a *corrected PCA* (Harmony's ``X_pca_harmony``): as wide as the PCA whose loadings
  ``varm['PCs']`` holds. The encoder reads the corrected scores ``z``; contributions are per
  gene of the corrected expression ``mean + V z`` that those scores stand for. Since
  ``V^T V = I`` the encoder's input for that expression is ``z`` again, so the split over genes
  is exact, and batch shifts that the integration removed do not come back in it;
- a *latent space* without loadings (scVI's ``X_scVI``): the encoder reads it as is and
  contributions are per latent dimension, not per gene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from anndata import AnnData

from .. import _logging as logg
from .._contributions import column_mean
from ..get import _access as acc
from ..get._access import ColumnView, Reconstruction

#: ``max|V^T V - I|`` above this: the loadings are not orthonormal, and the corrected scores
#: are read through ``V^T V`` (still exact, but not quite the scores the graph was built on).
ORTHONORMAL_ATOL = 1e-3


@dataclass
class RepInput:
    """What a fit on ``obsm[rep]`` trains on and attributes to."""

    X: np.ndarray | object  # validated by the estimator: features x cells, or the expression
    projection: tuple[np.ndarray, np.ndarray] | None
    inputs: np.ndarray | None  # the encoder's inputs when ``projection`` is given
    source: ColumnView | Reconstruction  # rows that contributions are computed from
    var_names: np.ndarray  # genes (corrected PCA) or ``<rep>_1``, ``<rep>_2``... (latent)
    on_genes: bool
    how: str  # for the log and ``uns[key]['input']``


def graph_rep(params: dict) -> str | None:
    """The ``obsm`` key the neighbour graph was built on, when scanpy recorded one."""
    rep = acc.scalar(params.get("use_rep"))
    return None if rep in (None, "X", "X_pca", "pca") else str(rep)


def loadings_for(adata: AnnData, width: int, rep_loadings: object) -> str | None:
    """The ``varm`` key of ``rep``'s loadings, or ``None`` for a latent space.

    By default ``'PCs'`` when it is exactly as wide as the representation.
    """
    if rep_loadings is None:
        return None
    if isinstance(rep_loadings, str) and rep_loadings != "auto":
        if rep_loadings not in adata.varm:
            raise KeyError(f"rep_loadings={rep_loadings!r} is not in adata.varm.")
        if adata.varm[rep_loadings].shape[1] != width:
            raise ValueError(
                f"adata.varm[{rep_loadings!r}] has {adata.varm[rep_loadings].shape[1]} columns "
                f"but the representation has {width}: they must match."
            )
        return rep_loadings
    if rep_loadings != "auto":
        raise ValueError(f"rep_loadings must be 'auto', a varm key or None, got {rep_loadings!r}.")
    return "PCs" if "PCs" in adata.varm and adata.varm["PCs"].shape[1] == width else None


def rep_input(
    adata: AnnData, rep: str, *, rep_loadings: object, source: str, mask_var: object
) -> RepInput:
    """Read ``obsm[rep]`` and decide how contributions are attributed; nothing is changed."""
    Z = acc.rep_array(adata, rep)
    if Z.shape[0] != adata.n_obs:  # anndata enforces it; a hand-edited store might not
        raise ValueError(f"adata.obsm[{rep!r}] has {Z.shape[0]} rows for {adata.n_obs} cells.")
    if Z.ndim > 2:
        return image_input(Z, rep)
    loadings = loadings_for(adata, Z.shape[1], rep_loadings)
    if loadings is None:
        names = np.asarray([f"{rep}_{i + 1}" for i in range(Z.shape[1])])
        X = np.asarray(Z, dtype=np.float32)
        how = (
            f"obsm[{rep!r}] as is ({Z.shape[1]} dimensions, no gene loadings): contributions "
            "are per dimension of that representation, not per gene"
        )
        return RepInput(X, None, None, ColumnView(X, np.arange(X.shape[1])), names, False, how)
    if source != "X":
        raise ValueError(
            f"use_rep={rep!r} is read through varm[{loadings!r}], the loadings of a PCA of "
            f"adata.X's genes, so contributions are on adata.X; drop layer / use_raw."
        )
    expr = acc.expression(adata, layer=None, use_raw=False, mask_var=mask_var)
    V = np.asarray(adata.varm[loadings], dtype=np.float64)
    outside = ~expr.var_mask & (np.nan_to_num(np.abs(V)).sum(axis=1) > 0)
    if outside.any():
        raise ValueError(
            f"{int(outside.sum())} genes with loadings in varm[{loadings!r}] are outside "
            "mask_var: pass the gene mask the PCA was computed on (e.g. "
            "mask_var='highly_variable')."
        )
    V = V[expr.var_mask]
    if not np.isfinite(V).all():
        raise ValueError(f"varm[{loadings!r}] holds NaN or infinite loadings for genes used.")
    gram = V.T @ V
    off = float(np.abs(gram - np.eye(V.shape[1])).max())
    if off > ORTHONORMAL_ATOL:
        logg.warning(
            f"varm[{loadings!r}] is not orthonormal (max|V^T V - I| = {off:.1e}): the encoder "
            f"reads obsm[{rep!r}] through V^T V; contributions still sum exactly."
        )
    components = V.astype(np.float32)
    mean = column_mean(expr.X)
    # The encoder's input for the rebuilt expression: (mean + V z - mean) @ V = z V^T V.
    inputs = (np.asarray(Z, dtype=np.float64) @ gram).astype(np.float32)
    how = (
        f"obsm[{rep!r}] as a corrected PCA ({Z.shape[1]} components): contributions are per "
        f"gene of the corrected expression mean + varm[{loadings!r}] z"
    )
    source_rows = Reconstruction(Z, mean, components)
    return RepInput(expr.X, (mean, components), inputs, source_rows, expr.var_names, True, how)


def pixel_names(rep: str, shape: tuple[int, ...]) -> np.ndarray:
    """One name per pixel in C order: ``<rep>_c<c>_y<y>_x<x>`` (no ``_c`` for 2-D images)."""
    idx = np.indices(shape).reshape(len(shape), -1).T
    tags = ("y", "x") if len(shape) == 2 else ("c", "y", "x")
    return np.asarray(["_".join([rep, *(f"{t}{i}" for t, i in zip(tags, row, strict=True))])
                       for row in idx])  # fmt: skip


def image_input(Z: np.ndarray, rep: str) -> RepInput:
    """Images in ``obsm[rep]``: the estimator reads them as images, contributions are per pixel.

    The estimator is given the images themselves (it remembers their shape, so
    ``encoder='conv'`` sees them as images); contributions are computed from the same pixels,
    flattened in C order.
    """
    X = np.asarray(Z, dtype=np.float32)
    flat = X.reshape(X.shape[0], -1)
    how = (
        f"obsm[{rep!r}] as images of shape {tuple(X.shape[1:])}: contributions are per pixel "
        "(relative to the mean image); gb.get.image_contributions gives them that shape"
    )
    names = pixel_names(rep, tuple(X.shape[1:]))
    return RepInput(X, None, None, ColumnView(flat, np.arange(flat.shape[1])), names, False, how)
