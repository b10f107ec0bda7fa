"""The one place that reads AnnData: results, graph, genes, expression and cell selections.

Tools (``tl``), plots (``pl``), the explorer and the CLI read through these functions, so a
key, a default or an error message is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .. import _keys
from .._chunks import READ_CELLS
from .._validation import scalar as scalar  # re-exported: the access layer reads uns with it

MASK_DEFAULT = _keys.Default("'highly_variable' when that var column exists, else all genes")


def str_array(values: object) -> np.ndarray:
    """Names as a plain ``<U`` array (zarr may hand back numpy's variable-width StringDType)."""
    return np.asarray(values, dtype=object).astype(str)


# ---------------------------------------------------------------------------- results
def key_info(adata: AnnData, key: str) -> dict:
    """``adata.uns[key]``, or an error that says to run :func:`~scglassbox.tl.glassbox_umap`."""
    if key not in adata.uns:
        raise KeyError(
            f"adata.uns[{key!r}] not found: run gb.tl.glassbox_umap(adata"
            + ("" if key == _keys.DEFAULT_KEY else f", key_added={key!r}")
            + ") first."
        )
    return adata.uns[key]


def embedding(adata: AnnData, key: str) -> np.ndarray:
    """The embedding ``obsm['X_' + key]`` (``obsm[key]`` is accepted too)."""
    for k in (_keys.embedding_key(key), key):
        if k in adata.obsm:
            return np.asarray(adata.obsm[k])
    raise KeyError(
        f"adata.obsm[{_keys.embedding_key(key)!r}] not found: run gb.tl.glassbox_umap(adata) first."
    )


def gene_names(adata: AnnData, key: str) -> np.ndarray:
    """Names of the genes along the last axis of the contributions, in the model's order.

    Checked against the model's own list (``uns[key]['model']['var_names']``): a list that
    was edited or damaged (another length, another order, a duplicate) would put one gene's
    values in another gene's column without any error downstream.
    """
    return checked_names(key_info(adata, key), key)


def checked_names(uns: dict, key: str) -> np.ndarray:
    """:func:`gene_names` of a results block ``uns`` (``adata.uns[key]``)."""
    if "var_names" not in uns:
        raise KeyError(f"adata.uns[{key!r}]['var_names'] is missing.")
    names = str_array(uns["var_names"])
    where = f"adata.uns[{key!r}]['var_names']"
    fix = (
        f"The file was edited or damaged; the model's list is authoritative: "
        f"adata.uns[{key!r}]['var_names'] = adata.uns[{key!r}]['model']['var_names']."
    )
    dup = pd.Index(names).duplicated()
    if dup.any():
        raise ValueError(f"{where} holds duplicate gene names {list(names[dup][:5])}. {fix}")
    model = uns.get("model")
    own = model.get("var_names") if isinstance(model, dict) else None
    if own is not None:
        own = str_array(own)
        if own.shape != names.shape:
            raise ValueError(
                f"{where} lists {names.size} genes but the model reads {own.size}. {fix}"
            )
        differ = np.flatnonzero(own != names)
        if differ.size:
            i = int(differ[0])
            raise ValueError(
                f"{where} differs from the model's gene list at {differ.size} positions "
                f"(first: position {i}, {names[i]!r} where the model has {own[i]!r}). {fix}"
            )
    return names


def source(adata: AnnData, key: str) -> str:
    """What the model of ``key`` reads: ``'X'``, ``'raw'``, ``'layers/<name>'`` or ``'obsm/<rep>'``.

    ``'obsm/<rep>'``: the fit's ``use_rep``; see :func:`rep_matrix`.
    """
    return str(scalar(key_info(adata, key).get("params", {}).get("source", "X")))


# ---------------------------------------------------------------------------- obs and var
def categorical(adata: AnnData, groupby: str) -> pd.Categorical:
    """``adata.obs[groupby]`` as a categorical in the user's order, unused categories removed.

    Missing values get code ``-1``.
    """
    if not isinstance(groupby, str) or groupby not in adata.obs.columns:
        raise KeyError(f"groupby={groupby!r} is not a column of adata.obs.")
    col = adata.obs[groupby]
    cat = col.cat if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category").cat
    return cat.remove_unused_categories().values


def obs_mask(adata: AnnData, mask: object) -> np.ndarray:
    """A boolean cell mask from a boolean array / Series or the name of a boolean obs column."""
    if isinstance(mask, str):
        if mask not in adata.obs.columns:
            raise KeyError(f"mask={mask!r} is not a column of adata.obs.")
        mask = adata.obs[mask]
    if isinstance(mask, pd.Series):
        mask = mask.reindex(adata.obs_names).to_numpy()
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (adata.n_obs,):
        raise ValueError(f"mask must be a boolean array of length n_obs={adata.n_obs}.")
    if not mask.any():
        raise ValueError("mask selects no cells.")
    return mask


def obs_positions(adata: AnnData, obs: object) -> np.ndarray:
    """Integer positions of a cell selection: ``None`` (all), a mask, positions or obs names."""
    n = adata.n_obs
    if obs is None:
        return np.arange(n)
    if isinstance(obs, slice):
        return np.arange(n)[obs]
    if isinstance(obs, str):
        obs = [obs]
    arr = np.asarray(obs)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"a boolean obs mask must have length n_obs={n}, got {arr.shape}.")
        return np.flatnonzero(arr)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < -n or arr.max() >= n):
            raise IndexError(f"obs positions must lie in [-{n}, {n}).")
        return np.where(arr < 0, arr + n, arr).astype(np.int64).ravel()
    pos = adata.obs_names.get_indexer(arr.astype(str).ravel())
    if (pos < 0).any():
        missing = arr.ravel()[pos < 0][:10].tolist()
        raise KeyError(f"{int((pos < 0).sum())} cell name(s) not in adata.obs_names: {missing}")
    return pos


def gene_index(names: np.ndarray, genes: str | Sequence[str]) -> np.ndarray:
    """Positions of ``genes`` in ``names``; unknown genes raise one error naming them all."""
    genes = [genes] if isinstance(genes, str) else [str(g) for g in genes]
    index = pd.Index(names).get_indexer(genes)
    missing = [g for g, i in zip(genes, index, strict=True) if i < 0]
    if missing:
        raise KeyError(
            f"{len(missing)} gene(s) not among the {len(names)} genes of the model: "
            f"{missing}. Available genes are in adata.uns[key]['var_names']."
        )
    return index


def var_mask(var: pd.DataFrame, mask_var: object) -> np.ndarray:
    """The genes to use, from a boolean var column name, a boolean mask, ``None`` or the default."""
    n = var.shape[0]
    if isinstance(mask_var, _keys.Default):
        if "highly_variable" not in var.columns:
            return np.ones(n, dtype=bool)
        mask_var = "highly_variable"
    if mask_var is None:
        return np.ones(n, dtype=bool)
    if isinstance(mask_var, str):
        if mask_var not in var.columns:
            raise ValueError(f"mask_var={mask_var!r} is not a column of var.")
        col = var[mask_var]
        if col.isna().any():
            raise ValueError(
                f"var[{mask_var!r}] has {int(col.isna().sum())} missing values: a gene mask "
                "must be True or False for every gene."
            )
        if col.dtype.kind != "b" and str(col.dtype) != "boolean":
            raise ValueError(f"var[{mask_var!r}] must be boolean, got dtype {col.dtype}.")
        return col.to_numpy(bool)
    mask = np.asarray(mask_var)
    if mask.dtype != bool or mask.shape != (n,):
        raise ValueError(f"mask_var must be a column name or a boolean array of length {n}.")
    return mask


# ---------------------------------------------------------------------------- graph
def neighbors(adata: AnnData, neighbors_key: str | None) -> tuple[sparse.csr_matrix, dict]:
    """Scanpy's connectivities and the parameters it recorded, or a clear error."""
    nk = _keys.neighbors_key(neighbors_key)
    info = adata.uns.get(nk)
    if info is None:
        raise ValueError(
            f"No neighbour graph found in adata.uns[{nk!r}]: run sc.pp.neighbors(adata"
            + ("" if neighbors_key is None else f", key_added={nk!r}")
            + ") first."
        )
    if not isinstance(info, dict):
        raise ValueError(
            f"adata.uns[{nk!r}] is a {type(info).__name__}, not the dict sc.pp.neighbors "
            "writes: rerun sc.pp.neighbors."
        )
    conn_key = str(scalar(info.get("connectivities_key", "connectivities")))
    if conn_key not in adata.obsp:
        raise ValueError(f"adata.obsp[{conn_key!r}] (from uns[{nk!r}]) is missing.")
    params = info.get("params", {})
    return sparse.csr_matrix(adata.obsp[conn_key]), dict(params) if isinstance(params, dict) else {}


# ---------------------------------------------------------------------------- expression
def source_name(layer: str | None, use_raw: bool) -> str:
    """The name under which a choice of expression is recorded."""
    if use_raw and layer is not None:
        raise ValueError("Pass either layer or use_raw=True, not both.")
    return "raw" if use_raw else ("X" if layer is None else f"layers/{layer}")


def source_matrix(adata: AnnData, source: str) -> tuple[object, pd.Index]:
    """The matrix (``X``, a layer or ``raw.X``) and its gene names for a recorded source."""
    if source == "raw":
        if adata.raw is None:
            raise ValueError("the expression is adata.raw, but adata.raw is None.")
        X, names = adata.raw.X, adata.raw.var_names
    elif source.startswith("layers/"):
        layer = source.removeprefix("layers/")
        if layer not in adata.layers:
            raise ValueError(f"layer {layer!r} not found; available: {list(adata.layers)}.")
        X, names = adata.layers[layer], adata.var_names
    elif source == "X":
        X, names = adata.X, adata.var_names
    elif source.startswith("obsm/"):
        raise ValueError(
            f"the model reads {source}: its inputs are rebuilt from that representation "
            "(rep_matrix), not read from an expression matrix."
        )
    else:
        raise ValueError(f"unknown expression source {source!r}.")
    if X is None:
        raise ValueError(f"adata.{source} is empty (None).")
    return X, names


def _check_numeric(X: object, source: str) -> None:
    dtype = getattr(X, "dtype", None)
    if dtype is None or np.dtype(dtype).kind not in "fiub":
        raise ValueError(f"adata.{source} must be numeric, got dtype {dtype}.")


def check_finite(X: np.ndarray | sparse.spmatrix, source: str) -> None:
    """Refuse NaN, infinite and beyond-float32 values: the encoder computes in float32."""
    values = X.data if sparse.issparse(X) else np.asarray(X)
    if values.dtype.kind != "f" or values.size == 0:
        return
    top = np.finfo(np.float32).max
    # Block by block: a mask of all the values would be as large as X's data (0.7 GB at 1M
    # cells).
    step = max(1, 2**22 // max(1, int(np.prod(values.shape[1:]))))
    if all(
        np.isfinite(block).all() and (block.dtype.itemsize <= 4 or np.abs(block).max() <= top)
        for block in (values[i : i + step] for i in range(0, values.shape[0], step))
    ):
        return
    n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
    n_big = int((np.abs(values) > top).sum()) - n_inf
    found = [f"{n_nan} NaN value(s)", f"{n_inf} infinite value(s)",
             f"{n_big} value(s) beyond float32's range (|x| > 3.4e38)"]  # fmt: skip
    found = [text for n, text in zip((n_nan, n_inf, n_big), found, strict=True) if n]
    where = {"X": "adata.X", "raw": "adata.raw.X"}.get(
        source, f"adata.layers[{source.removeprefix('layers/')!r}]"
    )
    raise ValueError(
        f"{where} holds {', '.join(found)} in the genes used: the embedding and contributions "
        "would be NaN. Fix or remove them (or leave those genes out with mask_var)."
    )


class ColumnView:
    """Rows of a matrix restricted to some columns, read block by block without a copy.

    Works for numpy, scipy sparse and backed (on-disk) matrices; ``fill`` marks requested
    columns the matrix lacks, which read as zeros.
    """

    def __init__(self, X: object, cols: np.ndarray) -> None:
        self.X = X
        self.cols = np.asarray(cols, dtype=np.int64)
        self.present = self.cols >= 0
        self.shape = (X.shape[0], len(self.cols))
        self.dtype = np.dtype(X.dtype)
        self._all = bool(self.present.all()) and np.array_equal(self.cols, np.arange(X.shape[1]))

    def rows(self, index: slice | np.ndarray) -> np.ndarray | sparse.csr_matrix:
        """The selected columns of ``index`` (a slice or sorted positions), dense or CSR."""
        block = self.X[index]
        if not sparse.issparse(block):
            block = np.asarray(block)
        if self._all:
            return sparse.csr_matrix(block) if sparse.issparse(block) else block
        if sparse.issparse(block):
            block = sparse.csr_matrix(block)
            if self.present.all():
                return block[:, self.cols]
            out = sparse.lil_matrix((block.shape[0], len(self.cols)), dtype=block.dtype)
            out[:, np.flatnonzero(self.present)] = block[:, self.cols[self.present]]
            return sparse.csr_matrix(out)
        out = np.zeros((block.shape[0], len(self.cols)), dtype=block.dtype)
        out[:, self.present] = block[:, self.cols[self.present]]
        return out

    def __getitem__(self, index: slice) -> np.ndarray | sparse.csr_matrix:
        return self.rows(index)

    def materialise(self, chunk: int = READ_CELLS) -> np.ndarray | sparse.csr_matrix:
        """The whole view in memory (CSR for sparse input), read ``chunk`` rows at a time."""
        if self.present.all() and (isinstance(self.X, np.ndarray) or sparse.issparse(self.X)):
            # In memory: one indexing keeps the input's memory order (and so results bitwise).
            X = self.X if self._all else self.X[:, self.cols]
            return sparse.csr_matrix(X) if sparse.issparse(X) else np.asarray(X)
        blocks = [self.rows(slice(s, s + chunk)) for s in range(0, self.shape[0], chunk)]
        if blocks and sparse.issparse(blocks[0]):
            return sparse.vstack(blocks, format="csr")
        return np.concatenate(blocks) if blocks else np.empty(self.shape, self.dtype)


@dataclass
class Expression:
    """The expression matrix that contributions are attributed to."""

    X: np.ndarray | sparse.csr_matrix  # (n_obs, n_genes_used), in memory
    var_names: np.ndarray  # genes used, in column order
    var_mask: np.ndarray  # boolean over the source's genes
    source: str  # 'X', 'raw' or 'layers/<name>'


def expression(adata: AnnData, *, layer: str | None, use_raw: bool, mask_var: object) -> Expression:
    """Select the expression (``.X``, a layer or ``.raw``) and the genes contributions use."""
    src = source_name(layer, use_raw)
    X, _ = source_matrix(adata, src)
    var = adata.raw.var if src == "raw" else adata.var
    _check_numeric(X, src)
    if not var.index.is_unique:
        dup = var.index[var.index.duplicated()].unique()[:5].tolist()
        raise ValueError(
            f"var_names of adata.{'raw' if src == 'raw' else 'var'} are not unique "
            f"(e.g. {dup}): run adata.var_names_make_unique() first."
        )
    mask = var_mask(var, mask_var)
    if not mask.any():
        raise ValueError("mask_var selects no genes.")
    view = ColumnView(X, np.flatnonzero(mask))
    X = view.materialise()
    check_finite(X, src)
    return Expression(X, str_array(var.index[mask]), mask, src)


def model_expression(
    adata: AnnData, key: str, *, missing: str = "error"
) -> ColumnView | Reconstruction:
    """The expression of ``key``'s model genes in ``adata``, aligned by name (no copy).

    ``missing='error'`` refuses model genes that ``adata`` lacks; ``'zero'`` reads them as 0.
    A model fitted with ``use_rep`` reads its representation instead (:func:`rep_matrix`);
    one fitted with ``batch_key`` also reads ``adata.obs[batch_key]`` (its batch columns).
    """
    return model_rows(adata, key_info(adata, key), key, missing=missing)


def model_rows(
    adata: AnnData, uns: dict, key: str, *, missing: str = "error"
) -> ColumnView | Reconstruction:
    """:func:`model_expression` for the results block ``uns`` (a reference's, for a query)."""
    from ._batch import WithBatch, batch_codes, batch_of
    from ._modalities import modalities_of, modality_rows

    mods = modalities_of(uns)
    if mods is not None:  # a MuData's modalities, side by side
        return modality_rows(adata, uns, key, mods, missing)
    src = str(scalar(uns.get("params", {}).get("source", "X")))
    batch = batch_of(uns)
    n_batch = 0 if batch is None else len(batch.levels)
    if src.startswith("obsm/"):
        model = uns.get("model", {})
        mean, comps = model.get("mean"), model.get("components")
        if n_batch:  # the representation's own map: the block before the batch columns
            n = np.shape(mean)[0] - n_batch
            mean = np.asarray(mean)[:n]
            comps = None if comps is None else np.asarray(comps)[:n, :-n_batch]
        base = rep_matrix(adata, src, mean, comps)
    else:
        genes = checked_names(uns, key)
        base = aligned_expression(adata, genes[: genes.size - n_batch], src, missing=missing)[0]
    if batch is None:
        return base
    return WithBatch(base, batch_codes(adata, batch.key, batch.levels), batch)


class Reconstruction:
    """Rows of ``mean + Z @ components.T``: expression rebuilt from PCA-like scores ``Z``.

    An integrated PCA (Harmony's ``X_pca_harmony``) gives corrected scores but no corrected
    expression; through the PCA's loadings these rows are that expression, computed block by
    block. Since ``components`` has orthonormal columns, the encoder's input for a row,
    ``(x - mean) @ components``, is the row's scores again.
    """

    def __init__(self, Z: object, mean: np.ndarray, components: np.ndarray) -> None:
        self.Z = Z
        self.mean = np.asarray(mean, dtype=np.float32)
        self.components = np.asarray(components, dtype=np.float32)
        self.shape = (Z.shape[0], self.components.shape[0])
        self.dtype = np.dtype(np.float32)

    def rows(self, index: slice | np.ndarray) -> np.ndarray:
        """The rebuilt expression of the cells ``index`` (dense float32)."""
        Z = np.asarray(self.Z[index], dtype=np.float32)
        return Z @ self.components.T + self.mean

    def __getitem__(self, index: slice) -> np.ndarray:
        return self.rows(index)

    def materialise(self, chunk: int = READ_CELLS) -> np.ndarray:
        """All rows in memory (dense: ``n_obs x n_genes`` float32)."""
        return self.rows(slice(None))


def rep_name(source: str) -> str:
    """The ``obsm`` key in an ``'obsm/<rep>'`` source."""
    return source.removeprefix("obsm/")


def rep_array(adata: AnnData, rep: str) -> np.ndarray:
    """``adata.obsm[rep]`` as a checked float array (a DataFrame's values).

    2-D (cells x features), or images: 3-D ``(n, H, W)`` or 4-D ``(n, C, H, W)``.
    """
    if rep not in adata.obsm:
        raise KeyError(f"use_rep={rep!r} is not in adata.obsm (keys: {list(adata.obsm)}).")
    Z = adata.obsm[rep]
    Z = Z.to_numpy() if isinstance(Z, pd.DataFrame) else Z
    if sparse.issparse(Z):
        Z = Z.toarray()
    Z = np.asarray(Z)
    if Z.ndim not in (2, 3, 4) or 0 in Z.shape[1:]:
        raise ValueError(
            f"adata.obsm[{rep!r}] must be cells x features (2-D) or images, (n, H, W) or "
            f"(n, C, H, W); got shape {Z.shape}."
        )
    if Z.dtype.kind not in "fiu":
        raise ValueError(f"adata.obsm[{rep!r}] must be numeric, got dtype {Z.dtype}.")
    if not np.isfinite(Z).all():
        raise ValueError(f"adata.obsm[{rep!r}] holds NaN or infinite values.")
    return Z


def rep_matrix(
    adata: AnnData, source: str, mean: object, components: object
) -> ColumnView | Reconstruction:
    """What a ``use_rep`` model reads in ``adata``: its scores through the loadings, or as is.

    With ``components`` (a corrected PCA), the expression rebuilt from ``obsm[rep]``; without
    (a latent space such as scVI's), ``obsm[rep]`` itself, whose columns are the features.
    """
    rep = rep_name(source)
    Z = rep_array(adata, rep)
    Z = Z.reshape(Z.shape[0], -1)  # images: their pixels, in the model's (C order) columns
    width = None if components is None else np.shape(components)[1]
    expected = width if width is not None else np.shape(mean)[0]
    if Z.shape[1] != expected:
        raise ValueError(
            f"adata.obsm[{rep!r}] has {Z.shape[1]} columns; the model reads {expected}."
        )
    if components is None:
        return ColumnView(Z, np.arange(Z.shape[1]))
    return Reconstruction(Z, np.asarray(mean), np.asarray(components))


def aligned_expression(
    adata: AnnData, genes: np.ndarray, source: str, *, missing: str = "error"
) -> tuple[ColumnView, np.ndarray]:
    """A view of ``adata``'s ``source`` expression with columns ``genes``, and the missing ones."""
    X, names = source_matrix(adata, source)
    _check_numeric(X, source)
    if not names.is_unique:
        raise ValueError(
            "adata's var_names are not unique: run adata.var_names_make_unique() first."
        )
    pos = names.get_indexer(genes)
    absent = genes[pos < 0]
    if absent.size and missing == "error":
        shown = ", ".join(absent[:20]) + (" ..." if absent.size > 20 else "")
        raise ValueError(
            f"{absent.size} of the model's {genes.size} genes are missing from adata.{source}: "
            f"{shown}. Pass missing_genes='zero' to treat them as zero expression."
        )
    return ColumnView(X, pos), absent
