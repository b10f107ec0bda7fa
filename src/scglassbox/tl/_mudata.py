"""``gb.tl.glassbox_umap`` on a MuData: every modality's features, one exact map.

Each modality is read as :func:`~scglassbox.tl.glassbox_umap` reads an AnnData (its
``.X``, the genes of ``var['highly_variable']`` when present, its PCA when that reproduces
what its graph was built on, else a PCA of its own when it has more than ``n_pcs`` features,
else the centred features). The blocks are put side by side, each scaled to the same total
variance so that no modality dominates the start of training by its units alone; the scale
is part of the input map, so the split stays exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.linalg import block_diag

from .. import _logging as logg
from .._contributions import InputMap, column_mean
from ..get import _access as acc
from ..get._access import MASK_DEFAULT
from ..get._modalities import Modalities, Stacked
from ._pca import scanpy_projection

if TYPE_CHECKING:
    from .._estimator import GlassBoxUMAP


def _graph_params(params: dict, mod: str) -> dict:
    """A modality's part of the graph's parameters (muon's WNN keeps one per modality)."""
    out = {}
    for name in ("use_rep", "n_pcs"):
        value = params.get(name)
        if isinstance(value, dict):
            value = value.get(mod)
        if value is not None and not (isinstance(value, int | np.integer) and value < 0):
            out[name] = value  # muon writes -1 for "none" (h5 cannot hold None)
    return out


def _block(mdata: object, mod: str, params: dict, n_pcs: int, random_state: int | None):
    """One modality's features, input map, encoder inputs and a sentence saying how."""
    from .._fit import fit_input_map

    ad = mdata.mod[mod]
    expr = acc.expression(ad, layer=None, use_raw=False, mask_var=MASK_DEFAULT)
    reused, why = scanpy_projection(ad, expr, _graph_params(params, mod))
    if reused is not None:
        mean, comps, inputs = reused
        return expr, InputMap(mean, comps), inputs, f"{mod}: {why}"
    if expr.X.shape[1] > n_pcs:
        k = min(n_pcs, *expr.X.shape)
        imap = fit_input_map(expr.X, k, random_state)
        how = f"{mod}: a PCA of its own ({k} components of {expr.X.shape[1]} features)"
    else:
        imap = InputMap(column_mean(expr.X))
        how = f"{mod}: its {expr.X.shape[1]} centred features"
    return expr, imap, imap.inputs_of(expr.X, 16_384), how


def check_mudata_options(**options: tuple[object, object]) -> None:
    """Refuse the AnnData-only options (``name=(value, default)``) a MuData fit does not read."""
    given = sorted(name for name, (value, default) in options.items() if value is not default)
    if given:
        raise ValueError(
            f"{given} apply to an AnnData; on a MuData each modality is read from its own .X "
            "(the genes of var['highly_variable'] when present): subset the modalities, or "
            "choose them with modalities=."
        )


def mudata_plan(
    mdata: object,
    *,
    params: dict,
    est: GlassBoxUMAP,
    n_pcs: int,
    modalities: Sequence[str] | None,
) -> tuple:
    """``(X, rows, projection, inputs, var_names, modalities, how)`` of a MuData fit."""
    names = list(mdata.mod) if modalities is None else [str(m) for m in modalities]
    unknown = [m for m in names if m not in mdata.mod]
    if unknown or not names:
        raise ValueError(f"modalities {unknown or names} are not in the MuData: {list(mdata.mod)}.")
    blocks = [_block(mdata, m, params, n_pcs, est.random_state) for m in names]
    var_names = np.concatenate([b[0].var_names for b in blocks])
    if not pd.Index(var_names).is_unique:
        raise ValueError(
            "feature names repeat across modalities: run mdata.var_names_make_unique() first."
        )
    # Equal total variance per block (the largest block's): units do not pick the winner.
    spread = [float(np.sqrt(b[2].var(axis=0, dtype=np.float64).sum())) for b in blocks]
    target = max(spread)
    means, comps, inputs = [], [], []
    for (_, imap, z, _), s in zip(blocks, spread, strict=True):
        scale = np.float32(target / s if s > 0 else 1.0)
        c = imap.components
        c = np.eye(imap.n_features, dtype=np.float32) if c is None else c
        means.append(imap.mean)
        comps.append(c * scale)
        inputs.append(z * scale)
    components = block_diag(*comps).astype(np.float32, copy=False)
    X = (
        sparse.hstack([b[0].X for b in blocks], format="csr", dtype=np.float32)
        if any(sparse.issparse(b[0].X) for b in blocks)
        else np.hstack([np.asarray(b[0].X, dtype=np.float32) for b in blocks])
    )
    rows = Stacked([acc.ColumnView(b[0].X, np.arange(b[0].X.shape[1])) for b in blocks])
    mods = Modalities(tuple(names), tuple(b[0].X.shape[1] for b in blocks),
                      tuple(b[0].source for b in blocks))  # fmt: skip
    how = "; ".join(b[3] for b in blocks) + " (each block scaled to equal total variance)"
    logg.info(f"glassbox_umap: {X.shape[0]} cells; MuData {how}")
    projection = (np.concatenate(means), components)
    return X, rows, projection, np.hstack(inputs), var_names, mods, how
